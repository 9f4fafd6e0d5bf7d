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
    assert trace.states[0].shape[0] == 2  # h: two slots; the sequence goes straight to out
    assert (trace.out is not None) == return_sequences
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


def _traced(layer, x, mask=None):
    """The output sequence (N, T, H) of a traced inference loop of a copy of ``layer`` over
    x made C-ordered and time-major first (as the layer did before it read x in place)."""
    X = x.transpose(1, 0, 2)[::-1] if layer.go_backwards else x.transpose(1, 0, 2)
    m = None if mask is None else mask.T[:: -1 if layer.go_backwards else 1, :, None]
    N = x.shape[0]
    trace = copy.deepcopy(layer)._run_forward(
        np.ascontiguousarray(X),
        [np.zeros((N, s), x.dtype) for s in layer.state_sizes],
        m,
        None,
        layer.params.get("b"),
        training=False,
        trace=True,
    )
    y = trace.states[0][1:]
    if layer.zero_output_for_mask and m is not None:
        y = y * m
    return y.transpose(1, 0, 2)


@pytest.mark.parametrize("cls,kw", LAYERS)
@pytest.mark.parametrize(
    "view",
    ["every other feature", "Fortran order", "time reversed", "one sample", "a column slice"],
)
def test_the_loop_reads_x_where_it_lies_and_keeps_a_copy(cls, kw, view):
    """Inference reads x as it is laid out (a transposed batch-first array, or any view) and
    writes the output sequence itself: the outputs are those of the loop over a C-ordered
    copy exactly, the copy of x the layer keeps is exact, and a later backward gives the
    training forward's gradients."""
    rng = np.random.default_rng(7)
    wide = rng.standard_normal((70, 12, 10)).astype("float32")  # two chunks on two threads
    x = {
        "every other feature": wide[:, :, ::2],
        "Fortran order": np.asfortranarray(wide[:, :, :5]),
        "time reversed": wide[:, ::-1, :5],
        "one sample": wide[:1, :, :5],
        "a column slice": wide[:, 2:9, 3:8],
    }[view]
    for go_backwards in (False, True):
        layer = cls(7, return_sequences=True, go_backwards=go_backwards, seed=3, **kw)
        before = x.copy()
        y = layer.forward(x)  # inference: the loop reads x, writes y
        np.testing.assert_array_equal(y, _traced(layer, x))
        assert y.flags.c_contiguous
        np.testing.assert_array_equal(x, before)  # x is only read
        X = x.transpose(1, 0, 2)
        np.testing.assert_array_equal(layer.step_inputs(), X[::-1] if go_backwards else X)
        ref = copy.deepcopy(layer)
        ref.forward(x, training=True)  # no dropout: the same function, products in another order
        dy = rng.standard_normal(y.shape).astype("float32")
        np.testing.assert_allclose(layer.backward(dy), ref.backward(dy), rtol=1e-4, atol=1e-6)
        for k in ref.grads:
            np.testing.assert_allclose(layer.grads[k], ref.grads[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls,kw", LAYERS)
def test_zeroed_masked_outputs_and_float64_take_the_kept_sequence(cls, kw):
    """zero_output_for_mask (the outputs multiplied by the mask) and float64 (no x in the
    loop) give the traced loop's outputs exactly."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 9, 4))
    mask = rng.random((6, 9)) < 0.7
    for dtype, zero in (("float32", True), ("float64", False), ("float64", True)):
        layer = cls(5, return_sequences=True, zero_output_for_mask=zero, dtype=dtype, seed=2, **kw)
        y = layer.forward(x.astype(dtype), mask=mask)
        np.testing.assert_array_equal(y, _traced(layer, x.astype(dtype), mask))


def test_views_the_loop_cannot_read_are_copied_first(monkeypatch):
    """x goes to the loop as it lies only when its rows are a matrix BLAS can read (unit
    stride along D, samples D items apart or more); other views are copied, and the loop
    itself refuses one whose samples overlap."""
    from numpy.lib.stride_tricks import as_strided

    from rnnkit.kernels import loops

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 10, 5)).astype("float32")
    view = x.transpose(1, 0, 2)  # (T, N, D): rows T·D apart
    assert loops._rows(view, np.float32) is view
    overlapping = as_strided(x, shape=(10, 6, 5), strides=(20, 8, 4))  # samples 2 items apart
    copied = loops._rows(overlapping, np.float32)
    assert copied is not overlapping and copied.flags.c_contiguous
    np.testing.assert_array_equal(copied, overlapping)
    assert loops._rows(view.astype("float64"), np.float32).dtype == np.float32

    layer = LSTM(4, return_sequences=True, seed=0)
    want = layer.forward(np.ascontiguousarray(overlapping.transpose(1, 0, 2)))
    got = copy.deepcopy(layer).forward(overlapping.transpose(1, 0, 2))  # copied, then read
    np.testing.assert_array_equal(got, want)
    monkeypatch.setattr(loops, "_rows", lambda x, dtype: x)  # hand the loop the bad view
    with pytest.raises(ValueError, match="at least D items apart"):
        copy.deepcopy(layer).forward(overlapping.transpose(1, 0, 2))
