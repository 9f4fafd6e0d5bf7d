"""An Embedding fused with the recurrent layer after it (``Lookup``): in a training forward
of a Sequential, x_t U + b = (E U + b)[id_t], and backward sums ∂L/∂a_t per id before the
products.  The fused path must give the gradients of the unfused one (layer by layer) and
of central differences, for every cell and option, and must be the path actually taken."""

import numpy as np
import pytest

from rnnkit import Dense, Embedding, Sequential, gradcheck, kernels
from rnnkit.layers.core import Lookup, LookupGrad

from helpers import CELL_KINDS, recurrent_layer

V, E, H, N, T = 7, 3, 4, 3, 6


def ids(seed=0, n=N, t=T, low=0):
    return np.random.default_rng(seed).integers(low, V, size=(n, t))


def model(kind, dtype="float64", mask_zero=False, **kw):
    kw.setdefault("bias_initializer", "torch_uniform")
    return Sequential(
        [
            Embedding(V, E, mask_zero=mask_zero, dtype=dtype, seed=2),
            recurrent_layer(kind, H, seed=5, dtype=dtype, return_sequences=True, **kw),
            Dense(2, dtype=dtype, seed=4),
        ]
    )


def layer_by_layer(m, x, dy):
    """Forward and backward one layer at a time: the unfused path."""
    mask = None
    for layer in m.layers:
        x = layer.forward(x, training=True, mask=mask)
        mask = layer.output_mask
    out = x
    for layer in reversed(m.layers):
        dy = layer.backward(dy)
    return out, {(l.name, k): g.copy() for l in m.layers for k, g in l.grads.items()}


def fused(m, x, dy):
    out = m.forward(x, training=True)
    assert isinstance(m.layers[1]._ctx[0], Lookup), "the Sequential did not fuse"
    m.backward(dy)
    return out, {(l.name, k): g.copy() for l in m.layers for k, g in l.grads.items()}


OPTIONS = [
    {},
    {"go_backwards": True},
    {"use_bias": False},
    {"recurrent_dropout": 0.3},
]


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_fused_equals_layer_by_layer(kind, options):
    m = model(kind, **options)
    x = ids(1)
    m.forward(x)  # builds
    for layer in m.layers[1:2]:
        layer.freeze_dropout = True  # the same recurrent mask in both passes
    dy = np.random.default_rng(2).standard_normal((N, T, 2))
    out_f, g_f = fused(m, x, dy)
    out_l, g_l = layer_by_layer(m, x, dy)
    np.testing.assert_allclose(out_f, out_l, rtol=1e-12, atol=1e-13)
    assert g_f.keys() == g_l.keys()
    for key in g_f:
        np.testing.assert_allclose(g_f[key], g_l[key], rtol=1e-10, atol=1e-12, err_msg=str(key))


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_fused_gradients_match_finite_differences(kind):
    x = ids(3)
    x[1, 4:] = 0  # padded with mask_zero
    for m in (model(kind), model(kind, mask_zero=True), model(kind, go_backwards=True)):
        m.forward(x, training=True)
        assert isinstance(m.layers[1]._ctx[0], Lookup)  # gradcheck's copy takes this path
        worst, report = gradcheck(m, x, training=True, return_report=True)
        assert set(report) == set(m.params)
        assert worst < 1e-6, report


def test_stateful_fused_carries_the_state_as_unfused():
    m = model("lstm", stateful=True)
    x = ids(4)
    m.forward(x)
    m.layers[1].reset_state()
    twin = model("lstm", stateful=True)
    twin.forward(x)
    twin.set_weights(m.get_weights())
    twin.layers[1].reset_state()
    dy = np.ones((N, T, 2))
    for _ in range(2):  # the second call starts from the first's final states
        out_f, g_f = fused(m, x, dy)
        out_l, g_l = layer_by_layer(twin, x, dy)
        np.testing.assert_allclose(out_f, out_l, rtol=1e-12, atol=1e-13)
        for key_f, key_l in zip(sorted(g_f), sorted(g_l)):
            np.testing.assert_allclose(g_f[key_f], g_l[key_l], rtol=1e-10, atol=1e-12)


def test_float32_fused_close_to_unfused():
    m = model("lstm", dtype="float32")
    x = ids(5, n=8, t=20)
    m.forward(x)
    dy = np.random.default_rng(6).standard_normal((8, 20, 2)).astype("float32")
    out_f, g_f = fused(m, x, dy)
    out_l, g_l = layer_by_layer(m, x, dy)
    np.testing.assert_allclose(out_f, out_l, rtol=1e-5, atol=1e-6)
    for key in g_f:
        np.testing.assert_allclose(g_f[key], g_l[key], rtol=1e-4, atol=1e-5, err_msg=str(key))


def test_when_it_fuses():
    m = model("gru")
    x = ids(7)
    m.forward(x, training=True)
    assert isinstance(m.layers[1]._ctx[0], Lookup)
    m.forward(x, training=False)  # inference: the layer's own path (x_t U inside the loop)
    assert not isinstance(m.layers[1]._ctx[0], Lookup)
    m.forward(x[:1, :2], training=True)  # 2 tokens, 7 ids: the products over tokens are cheaper
    assert not isinstance(m.layers[1]._ctx[0], Lookup)
    dropped = model("gru", dropout=0.5)
    dropped.forward(x, training=True)  # an input mask per sequence: no lookup
    assert not isinstance(dropped.layers[1]._ctx[0], Lookup)


def test_embedding_backward_takes_a_lookup_grad():
    emb = Embedding(V, E, dtype="float64")
    look = emb.lookup(ids(8))
    np.testing.assert_array_equal(look.table[look.ids], emb.forward(ids(8)))
    d = np.arange(V * E, dtype="float64").reshape(V, E)
    assert emb.backward(LookupGrad(d)) is None
    np.testing.assert_array_equal(emb.grads["E"], d)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_add_rows_matches_np_add_at(dtype):
    rng = np.random.default_rng(9)
    idx = rng.integers(0, 5, 300)
    values = rng.standard_normal((300, 37)).astype(dtype)
    want = np.zeros((5, 37), dtype)
    np.add.at(want, idx, values)
    with kernels.own_threads():
        got = kernels.add_rows(np.zeros((5, 37), dtype), idx, values)
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-13)
    strided = kernels.add_rows(np.zeros((5, 37), dtype), idx, values[:, ::1].T.copy().T)
    np.testing.assert_allclose(strided, want, rtol=1e-6 if dtype == "float32" else 1e-13)
    for bad in (5, -1):  # compiled or NumPy, the range and the id are named
        with pytest.raises(ValueError, match=rf"ids must be in \[0, 5\).*got {bad}"):
            kernels.add_rows(np.zeros((5, 37), dtype), np.r_[idx[:-1], bad], values)
        with kernels.numpy_loops(), pytest.raises(ValueError, match=rf"got {bad}"):
            kernels.add_rows(np.zeros((5, 37), dtype), np.r_[idx[:-1], bad], values)


def test_diagnostics_split_the_gradient_after_a_lookup():
    """The per-step terms of ∂L/∂U (x_tᵀ ∂L/∂a_t) read the inputs the layer used, which it
    gathers from the table after a Lookup; they sum to the gradient."""
    from rnnkit.diagnostics.records import replay_backward, step_terms

    m = model("lstm")
    x = ids(11)
    dy = np.random.default_rng(12).standard_normal((N, T, 2))
    fused(m, x, dy)
    layer = m.layers[1]
    np.testing.assert_array_equal(
        layer.step_inputs(), m.layers[0].params["E"][x].transpose(1, 0, 2)
    )
    d_out, d_final = layer.bptt_inputs(m.layers[2].backward(dy))
    dxw, _ = replay_backward(layer.cell, layer.params, layer.trace(), d_out, d_final)
    terms = step_terms(layer, dxw)
    for name in ("U", "b", "W"):
        np.testing.assert_allclose(terms[name].sum(axis=0), layer.grads[name], rtol=1e-10)
