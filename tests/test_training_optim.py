"""Optimizers against their formulas (and PyTorch where the formula is the same),
clipping of the three kinds, and learning-rate schedules."""

import math

import numpy as np
import pytest
import torch

from rnnkit import optim

rng = np.random.default_rng(1)


def run(opt, steps=5, shape=(3, 4)):
    p = {"w": rng.standard_normal(shape)}
    start = p["w"].copy()
    grads = [rng.standard_normal(shape) for _ in range(steps)]
    for g in grads:
        opt.apply(p, {"w": g})
    return start, grads, p["w"]


def torch_run(make, start, grads):
    w = torch.tensor(start, requires_grad=True)
    opt = make([w])
    for g in grads:
        opt.zero_grad()
        w.grad = torch.tensor(g)
        opt.step()
    return w.detach().numpy()


def test_sgd_momentum_and_nesterov_match_pytorch():
    for nesterov in (False, True):
        start, grads, got = run(optim.SGD(0.1, momentum=0.9, nesterov=nesterov))
        ref = torch_run(
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov), start, grads
        )
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_adagrad_is_min_char_rnns_update():
    start, grads, got = run(optim.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-8))
    w, mem = start.copy(), np.zeros_like(start)
    for g in grads:  # min-char-rnn: mem += dparam²; param -= lr dparam/√(mem+1e-8)
        mem += g * g
        w -= 0.1 * g / np.sqrt(mem + 1e-8)
    np.testing.assert_allclose(got, w, rtol=1e-12)


def test_adam_formula():
    start, grads, got = run(optim.Adam(0.01, epsilon=1e-7))
    w, m, v = start.copy(), 0.0, 0.0
    for t, g in enumerate(grads, 1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(got, w, rtol=1e-10)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
# (atol: the moments are differences of O(1) gradients, rounded once or twice apart)
@pytest.mark.parametrize("shape", [(7,), (33, 65), (3, 4, 5)])
def test_adam_one_pass_update_matches_numpy(dtype, rtol, shape):
    """Adam's compiled one-pass update (rnnkit.kernels.adam) and NumPy's passes: the same
    weights and moments after a few steps, float32 and float64, odd sizes; where it does
    not apply (a strided view, mixed dtypes) NumPy does the update."""
    from rnnkit import kernels

    if not kernels.available():
        pytest.skip("rnnkit.kernels._loops not built")
    r = np.random.default_rng(3)
    start = r.standard_normal(shape).astype(dtype)
    grads = [r.standard_normal(shape).astype(dtype) for _ in range(4)]
    out, before = {}, kernels.switch.requested()
    for compiled in (True, False):
        kernels.set_enabled(compiled)
        try:
            opt, p = optim.Adam(0.01), {"w": start.copy()}
            for g in grads:
                opt.apply(p, {"w": g})
            out[compiled] = (p["w"], opt.state["w"]["m"], opt.state["w"]["v"])
        finally:
            kernels.set_enabled(before)
    for a, b in zip(out[True], out[False]):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol / 2)
    p = r.standard_normal((6, 8)).astype(dtype)
    view, g = p[:, ::2], np.ones((6, 4), dtype)
    assert not kernels.adam(view, g, np.zeros_like(g), np.zeros_like(g), 0.1, 0.1, 0.001, 1e-7)
    assert not kernels.adam(g.astype(np.float16), g, g, g, 0.1, 0.1, 0.001, 1e-7)


def test_adamw_decays_weights_and_rmsprop_matches_formula():
    start, grads, got = run(optim.AdamW(0.01, weight_decay=0.1))
    _, _, plain = run(optim.Adam(0.01))
    assert not np.allclose(got, plain)
    start, grads, got = run(optim.RMSprop(0.01, rho=0.9, epsilon=1e-7))
    w, r = start.copy(), 0.0
    for g in grads:
        r = 0.9 * r + 0.1 * g * g
        w -= 0.01 * g / np.sqrt(r + 1e-7)
    np.testing.assert_allclose(got, w, rtol=1e-10)


def test_three_kinds_of_clipping():
    g = {"a": np.array([3.0, -4.0]), "b": np.array([0.5, 0.0])}  # ‖a‖ = 5, ‖G‖ ≈ 5.02
    by_value, fired = optim.clip_gradients(g, clip_value=1.0)
    assert fired and np.allclose(by_value["a"], [1, -1]) and np.allclose(by_value["b"], [0.5, 0])
    per_tensor, fired = optim.clip_gradients(g, clip_norm_per_tensor=1.0)
    assert (
        fired and np.allclose(per_tensor["a"], [0.6, -0.8]) and np.allclose(per_tensor["b"], g["b"])
    )
    glob, fired = optim.clip_gradients(g, clip_global_norm=1.0)
    n = math.sqrt(25.25)
    assert fired and np.allclose(glob["a"], g["a"] / n) and np.allclose(glob["b"], g["b"] / n)
    assert optim.global_norm(glob) == pytest.approx(1.0)
    untouched, fired = optim.clip_gradients(g, clip_global_norm=10.0)
    assert not fired and untouched["a"] is g["a"]


def test_apply_reports_norm_before_clipping_and_keras_aliases():
    opt = optim.SGD(1.0, global_clipnorm=1.0)
    assert opt.clip_global_norm == 1.0
    p = {"w": np.zeros(2)}
    rec = opt.apply(p, {"w": np.array([3.0, 4.0])})
    assert rec["grad_norm"] == pytest.approx(5.0) and rec["clipped"]
    assert rec["grad_norm_after"] == pytest.approx(1.0)
    np.testing.assert_allclose(p["w"], [-0.6, -0.8])
    assert optim.SGD(1.0, clipvalue=2).clip_value == 2.0
    assert optim.SGD(1.0, clipnorm=2).clip_norm_per_tensor == 2.0


def test_schedules():
    s = optim.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert (
        s(0) == pytest.approx(0.1)
        and s(10) == pytest.approx(0.05)
        and s(5) == pytest.approx(0.1 * 0.5**0.5)
    )
    assert optim.ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.05)
    c = optim.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert (
        c(0) == pytest.approx(1.0) and c(100) == pytest.approx(0.1) and c(50) == pytest.approx(0.55)
    )
    pw = optim.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [pw(0), pw(10), pw(25)] == [1.0, 0.5, 0.1]
    opt = optim.SGD(s)
    p = {"w": np.zeros(1)}
    for _ in range(3):
        rec = opt.apply(p, {"w": np.ones(1)})
    assert rec["lr"] == pytest.approx(s(2))


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="learning_rate must be a non-negative number"):
        optim.SGD(-1)
    with pytest.raises(ValueError, match="clip_global_norm must be a positive number"):
        optim.Adam(clip_global_norm=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        optim.get("lbfgs")
