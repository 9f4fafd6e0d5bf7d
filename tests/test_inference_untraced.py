"""Inference without a trace: forward(training=False) run by the compiled loops keeps one
step's caches (and two slots of the states it does not return), gives the traced loop's
outputs exactly, and a backward after it still gives the exact gradients."""

import copy

import numpy as np
import pytest

from rnnkit import GRU, LSTM, SimpleRNN, kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason="compiled loops not built")


@pytest.fixture(autouse=True)
def compiled_loops_on():
    """These tests are about the compiled loops, whatever RNNKIT_KERNELS says for the run."""
    before = kernels.switch.requested()
    kernels.set_enabled(True)
    yield
    kernels.set_enabled(before)


LAYERS = [
    (SimpleRNN, {}),
    (LSTM, {}),
    (LSTM, {"proj_size": 3}),
    (GRU, {}),
    (GRU, {"reset_after": False}),
]


@pytest.mark.parametrize("cls,kw", LAYERS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("N", [2, 9])
def test_untraced_forward_matches_the_traced_one(cls, kw, return_sequences, N):
    rng = np.random.default_rng(N)
    layer = cls(7, return_sequences=return_sequences, return_state=True, seed=3, **kw)
    x = rng.standard_normal((N, 11, 5)).astype("float32")
    mask = rng.random((N, 11)) < 0.8
    out = layer.forward(x, mask=mask)  # inference: no trace
    trace = layer._ctx[1]
    assert isinstance(trace, kernels.Untraced)
    assert all(buf.shape[0] == 1 for buf in trace.cache.values())  # one step's slot
    assert trace.states[0].shape[0] == (12 if return_sequences else 2)
    assert all(s.shape[0] == 2 for s in trace.states[1:])  # LSTM's c: two slots
    traced = copy.deepcopy(layer)
    ref = traced._run_forward(
        np.ascontiguousarray(x.transpose(1, 0, 2)),
        [np.zeros((N, s), "float32") for s in layer.state_sizes],
        mask.T[:, :, None],
        None,
        layer.params.get("b"),
        training=False,
        trace=True,
    )
    want_final = [s[11] for s in ref.states]
    for got, want in zip(out[1:], want_final):
        np.testing.assert_array_equal(got, want)
    if return_sequences:
        np.testing.assert_array_equal(out[0], ref.states[0][1:].transpose(1, 0, 2))
    with kernels.numpy_loops():  # the reference loops agree
        numpy_out = copy.deepcopy(layer).forward(x, mask=mask)
    for got, want in zip(out, numpy_out):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("cls,kw", LAYERS)
def test_backward_after_an_untraced_forward_is_exact(cls, kw):
    rng = np.random.default_rng(0)
    layer = cls(6, return_sequences=True, seed=1, dtype="float64", **kw)
    x = rng.standard_normal((5, 8, 4))
    dy = rng.standard_normal((5, 8, 6 if not kw.get("proj_size") else 3))
    a, b = copy.deepcopy(layer), copy.deepcopy(layer)
    ya = a.forward(x)  # inference, no trace
    yb = b.forward(x, training=True)  # a trace (no dropout here)
    np.testing.assert_array_equal(ya, yb)
    dxa, dxb = a.backward(dy), b.backward(dy)
    np.testing.assert_array_equal(dxa, dxb)
    for k in a.grads:
        np.testing.assert_array_equal(a.grads[k], b.grads[k])


def test_diagnostics_see_the_trace_of_an_inference_forward():
    from rnnkit import diagnostics as dg
    from rnnkit.models import Sequential

    model = Sequential([LSTM(5, return_sequences=True, seed=0, input_shape=[None, 3])])
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype("float32")
    rec = dg.record(model, x, ["gates", "states"])
    layer = model.layers[0]
    assert not isinstance(layer._ctx[1], kernels.Untraced)  # traced again when asked
    assert rec[layer.name]["gates"]["i"].shape == (4, 6, 5)  # every step's gates
    assert rec[layer.name]["states"]["h"].shape == (4, 7, 5)
