"""Losses: values against their definitions, gradients against finite differences,
the lecture's L = Σ_t L_t, masks and time_reduction."""

import numpy as np
import pytest

from rnnkit import losses

rng = np.random.default_rng(0)


def fd_grad(loss, y, yhat, **kw):
    g = np.zeros_like(yhat)
    flat, gf = yhat.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + 1e-6
        up = loss(y, yhat, **kw)[0]
        flat[i] = old - 1e-6
        down = loss(y, yhat, **kw)[0]
        flat[i] = old
        gf[i] = (up - down) / 2e-6
    return g


def probs(shape):
    z = rng.standard_normal(shape)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


CASES = [
    ("mse", {}, lambda s: rng.standard_normal(s), lambda s: rng.standard_normal(s)),
    ("mae", {}, lambda s: rng.standard_normal(s), lambda s: rng.standard_normal(s)),
    (
        "binary_crossentropy",
        {},
        lambda s: rng.uniform(0.05, 0.95, s),
        lambda s: (rng.random(s) > 0.5).astype(float),
    ),
    (
        "binary_crossentropy",
        {"from_logits": True},
        lambda s: rng.standard_normal(s),
        lambda s: (rng.random(s) > 0.5).astype(float),
    ),
    (
        "categorical_crossentropy",
        {},
        probs,
        lambda s: np.eye(s[-1])[rng.integers(0, s[-1], s[:-1])],
    ),
    (
        "categorical_crossentropy",
        {"from_logits": True},
        lambda s: rng.standard_normal(s),
        lambda s: np.eye(s[-1])[rng.integers(0, s[-1], s[:-1])],
    ),
    ("sparse_categorical_crossentropy", {}, probs, lambda s: rng.integers(0, s[-1], s[:-1])),
    (
        "sparse_categorical_crossentropy",
        {"from_logits": True},
        lambda s: rng.standard_normal(s),
        lambda s: rng.integers(0, s[-1], s[:-1]),
    ),
    (
        "sparse_categorical_crossentropy",
        {"from_logits": True, "label_smoothing": 0.1},
        lambda s: rng.standard_normal(s),
        lambda s: rng.integers(0, s[-1], s[:-1]),
    ),
]


@pytest.mark.parametrize("name,kw,make_pred,make_true", CASES)
@pytest.mark.parametrize("shape", [(4, 3), (3, 5, 4)])
@pytest.mark.parametrize("time_reduction", ["sum", "mean"])
def test_gradient_matches_finite_differences(name, kw, make_pred, make_true, shape, time_reduction):
    loss = losses.get(name, time_reduction=time_reduction, **kw)
    yhat, y = make_pred(shape), make_true(shape)
    mask = None
    if len(shape) == 3:
        mask = rng.random(shape[:2]) > 0.3
        mask[:, 0] = True
    value, grad = loss(y, yhat, mask=mask)
    assert np.isfinite(value)
    num = fd_grad(loss, y, yhat, mask=mask)
    assert np.abs(grad - num).max() <= 1e-6 * max(1.0, np.abs(num).max())


def test_sequence_loss_is_sum_over_steps_averaged_over_batch():
    yhat, y = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    value, _ = losses.get("mse")(y, yhat)
    per_step = ((yhat - y) ** 2).mean(-1)  # L_t of each sequence
    assert value == pytest.approx(per_step.sum(1).mean())  # mean_n Σ_t L_t
    mean_value, _ = losses.get("mse", time_reduction="mean")(y, yhat)
    assert mean_value == pytest.approx(per_step.mean())


def test_masked_steps_count_for_nothing():
    yhat, y = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 3))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    value, grad = losses.get("mse")(y, yhat, mask=mask)
    y2 = y.copy()
    y2[0, 3:] = 1e6  # garbage under the mask
    assert losses.get("mse")(y2, yhat, mask=mask)[0] == pytest.approx(value)
    assert np.all(grad[0, 3:] == 0)
    # per-step mean divides by each sequence's own number of real steps
    mean_value, _ = losses.get("mse", time_reduction="mean")(y, yhat, mask=mask)
    per = ((yhat - y) ** 2).mean(-1)
    assert mean_value == pytest.approx((per[0, :3].mean() + per[1].mean()) / 2)


def test_ignore_class_masks_padding_labels():
    logits = rng.standard_normal((2, 4, 5))
    labels = np.array([[1, 2, 0, 0], [3, 4, 1, 0]])
    loss = losses.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=0)
    value, grad = loss(labels, logits)
    assert np.all(grad[labels == 0] == 0)
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(lp[0, 0, 1] + lp[0, 1, 2] + lp[1, 0, 3] + lp[1, 1, 4] + lp[1, 2, 1]) / 2
    assert value == pytest.approx(expected)


def test_logits_and_probabilities_agree():
    z = rng.standard_normal((4, 6))
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    y = rng.integers(0, 6, 4)
    a = losses.get("sparse_categorical_crossentropy", from_logits=True)(y, z)[0]
    b = losses.get("sparse_categorical_crossentropy")(y, p)[0]
    assert a == pytest.approx(b, rel=1e-6)


def test_bad_targets_are_named():
    with pytest.raises(ValueError, match=r"label 7 is outside \[0, 5\)"):
        losses.get("sparse_categorical_crossentropy")(np.array([1, 7]), probs((2, 5)))
    with pytest.raises(ValueError, match="one-hot targets"):
        losses.get("sparse_categorical_crossentropy")(np.eye(5)[[1, 2]], probs((2, 5)))
    with pytest.raises(ValueError, match=r"targets must have the model's output shape \(2, 5\)"):
        losses.get("mse")(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="targets must lie in"):
        losses.get("binary_crossentropy")(np.array([[2.0]]), np.array([[0.5]]))
    with pytest.raises(ValueError, match="time_reduction must be 'sum'"):
        losses.get("mse", time_reduction="avg")
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.get("hinge")


def test_label_smoothing_is_pytorchs():
    """Against torch.nn.functional.cross_entropy(label_smoothing=ε, ignore_index=0), summed
    over the steps (time_reduction="sum") and averaged over the batch."""
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((3, 4, 6))
    y = rng.integers(1, 6, (3, 4))
    y[0, 2:] = 0  # padding
    loss = losses.get(
        "sparse_categorical_crossentropy", from_logits=True, ignore_class=0, label_smoothing=0.2
    )
    value, grad = loss(y, z)
    zt = torch.tensor(z, requires_grad=True)
    ref = (
        torch.nn.functional.cross_entropy(
            zt.reshape(-1, 6),
            torch.tensor(y).reshape(-1),
            ignore_index=0,
            label_smoothing=0.2,
            reduction="sum",
        )
        / 3
    )
    ref.backward()
    assert abs(value - ref.item()) < 1e-12
    np.testing.assert_allclose(grad, zt.grad.numpy(), atol=1e-14)
    plain = losses.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=0)
    assert loss.get_config()["label_smoothing"] == 0.2 and abs(plain(y, z)[0] - value) > 1e-3
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        losses.get("sparse_categorical_crossentropy", from_logits=True, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing needs from_logits=True"):
        losses.get("sparse_categorical_crossentropy", label_smoothing=0.1)


@pytest.mark.parametrize("shape", [(3, 5, 1), (4, 7, 16), (2, 9, 85), (5, 130)])
def test_float32_logits_take_the_compiled_pass_and_agree(shape, monkeypatch):
    """Sparse cross-entropy from float32 logits runs one compiled pass per row
    (kernels.xent_logits, where the loops are built): the loss and its gradient equal the
    float64 NumPy formula to float32 rounding, for any number of classes (a multiple of the
    16 lanes or not), an ignored class and a mask included; NaN and +inf logits give NaN
    and inf losses as NumPy's do."""
    from rnnkit import kernels

    calls = []
    real = kernels.xent_logits
    monkeypatch.setattr(kernels, "xent_logits", lambda *a: calls.append(1) or real(*a))
    r = np.random.default_rng(sum(shape))
    yhat = (4 * r.standard_normal(shape)).astype(np.float32)
    y = r.integers(0, shape[-1], shape[:-1])
    mask = r.random(shape[:-1]) > 0.3 if len(shape) == 3 else None
    for kw in ({}, {"ignore_class": 0}):
        loss = losses.get("sparse_categorical_crossentropy", from_logits=True, **kw)
        value, grad = loss(y, yhat, mask=mask)
        ref_value, ref_grad = loss(y, yhat.astype(np.float64), mask=mask)
        assert grad.dtype == np.float32
        np.testing.assert_allclose(value, ref_value, rtol=1e-5)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)
    assert calls if kernels.available() and kernels.enabled() else not calls
    bad = yhat.copy()
    bad.reshape(-1, shape[-1])[0, 0] = np.nan
    bad.reshape(-1, shape[-1])[1, 0] = np.inf
    step, _ = losses.get("sparse_categorical_crossentropy", from_logits=True).per_step(y, bad)
    flat = step.reshape(-1)
    assert np.isnan(flat[0]) and (np.isnan(flat[1]) or np.isinf(flat[1]))


def test_compiled_cross_entropy_names_a_label_out_of_range():
    from rnnkit import kernels

    if not kernels.available():
        pytest.skip("the compiled loops are not built")
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\); got 3 at position 1"):
        kernels._loops.xent(z, np.array([0, 3]), np.empty_like(z), np.empty(2, np.float32), 3)
    with pytest.raises(ValueError, match="float32 expected"):
        kernels._loops.xent(z, np.array([0, 1]), np.empty_like(z), np.empty(3, np.float32), 3)
