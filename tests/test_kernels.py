"""The compiled time loops (rnnkit.kernels) against the NumPy reference loops (rnnkit/cells).

Every option the layers have goes through both paths with the same weights, inputs, masks
and dropout masks: outputs, final states, all gradients, ∂L/∂x and ∂L/∂(initial states)
must agree to ~1e-12 in float64 and to float32 rounding in float32.  Skipped where the
extension is not built (the NumPy loops then run everywhere, which the rest of the suite
covers).
"""

import copy
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit import GRU, LSTM, SimpleRNN, kernels

from helpers import recurrent_layer, seed_of

pytestmark = pytest.mark.skipif(not kernels.available(), reason="rnnkit.kernels._loops not built")


class Spy:
    """Counts the calls that reach the compiled loops."""

    def __init__(self, loops):
        self.loops, self.calls, self.args = loops, [], []

    def forward(self, kind, args):
        self.calls.append(("forward", kind))
        self.args.append(args)
        return self.loops.forward(kind, args)

    def backward(self, kind, args):
        self.calls.append(("backward", kind))
        return self.loops.backward(kind, args)

    def __getattr__(self, name):
        return getattr(self.loops, name)


@pytest.fixture(autouse=True)
def compiled_loops_on():
    """These tests compare both paths, whatever RNNKIT_KERNELS says for the rest of the run."""
    before = kernels.switch.requested()
    kernels.set_enabled(True)
    yield
    kernels.set_enabled(before)


@pytest.fixture
def spy(monkeypatch):
    s = Spy(kernels.loops._loops)
    monkeypatch.setattr(kernels.loops, "_loops", s)
    return s


def run(layer, x, *, fast, mask=None, initial_state=None, seed=0, training=True):
    """forward (training, or inference with ``training=False``) + backward with a random
    upstream gradient; everything returned."""
    layer = copy.deepcopy(layer)  # the same weights and random generator each time
    ctx = kernels.numpy_loops() if not fast else _nothing()
    with ctx:
        out = layer.forward(x, training=training, mask=mask, initial_state=initial_state)
        outs = out if isinstance(out, list) else [out]
        rng = np.random.default_rng(seed)
        dys = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
        dx = layer.backward(dys if isinstance(out, list) else dys[0])
    return {
        "out": outs,
        "dx": dx,
        "grads": dict(layer.grads),
        "d_init": list(layer.initial_state_grads),
    }


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def assert_same(a, b, rtol, atol):
    for o1, o2 in zip(a["out"], b["out"]):
        np.testing.assert_allclose(o1, o2, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a["dx"], b["dx"], rtol=rtol, atol=atol)
    assert a["grads"].keys() == b["grads"].keys()
    for k in a["grads"]:
        np.testing.assert_allclose(a["grads"][k], b["grads"][k], rtol=rtol, atol=atol, err_msg=k)
    for d1, d2 in zip(a["d_init"], b["d_init"]):
        np.testing.assert_allclose(d1, d2, rtol=rtol, atol=atol)


def make_mask(N, T, rng):
    mask = rng.random((N, T)) > 0.3
    mask[0] = True  # one full sequence
    if N > 1:
        mask[1, T // 2 :] = False  # one padded at the end
    mask[:, 1] = False  # a step every sample skips
    return mask


CASES = {  # the kinds of tests/helpers.py, with their sizes here
    "rnn": dict(units=7),
    "rnn_relu": dict(units=7),
    "rnn_softsign": dict(units=7),
    "rnn_linear": dict(units=7),
    "lstm": dict(units=6),
    "lstm_proj": dict(units=6, proj_size=4),
    "lstm_hard_sigmoid": dict(units=5),
    "lstm_nobias": dict(units=5),
    "gru": dict(units=6),
    "gru_before": dict(units=6),
    "gru_nobias": dict(units=6),
    "gru_before_relu": dict(units=6),
}

OPTIONS = {
    "plain": dict(layer={"return_sequences": True}, mask=False),
    "last": dict(layer={}, mask=False),
    "mask": dict(layer={"return_sequences": True}, mask=True),
    "mask-zero-output": dict(
        layer={"return_sequences": True, "zero_output_for_mask": True}, mask=True
    ),
    "backwards-mask": dict(layer={"return_sequences": True, "go_backwards": True}, mask=True),
    "dropout": dict(
        layer={"return_sequences": True, "dropout": 0.3, "recurrent_dropout": 0.4}, mask=True
    ),
    "state": dict(layer={"return_sequences": True, "return_state": True}, mask=False, init=True),
}


def make_case(case, option, N, dtype, *salt):
    """A built layer of CASES with OPTIONS, its input (N, T=9, D=4), mask and initial states."""
    opt = OPTIONS[option]
    rng = np.random.default_rng(seed_of(case, option, N, *salt))  # the same in every process
    T, D = 9, 4
    layer = recurrent_layer(case, **CASES[case], dtype=dtype, seed=3, **opt["layer"])
    x = rng.standard_normal((N, T, D)).astype(dtype)
    layer.build(x.shape)
    mask = make_mask(N, T, rng) if opt["mask"] else None
    init = None
    if opt.get("init"):
        init = [rng.standard_normal((N, s)).astype(dtype) for s in layer.state_sizes]
    return layer, x, mask, init


@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-10, 1e-12), ("float32", 2e-4, 2e-5)])
@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("N", [1, 3, 6])  # float32 with 6 rows: the packed products
def test_compiled_loops_match_numpy_loops(case, option, N, dtype, rtol, atol, spy):
    layer, x, mask, init = make_case(case, option, N, dtype)
    ref = run(layer, x, fast=False, mask=mask, initial_state=init)
    assert spy.calls == []
    fast = run(layer, x, fast=True, mask=mask, initial_state=init)
    kind = {"SimpleRNN": "simple", "LSTM": "lstm", "GRU": "gru"}[type(layer).__name__]
    assert spy.calls == [("forward", kind), ("backward", kind)]
    assert_same(fast, ref, rtol, atol)


@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-10, 1e-12), ("float32", 2e-4, 2e-5)])
@pytest.mark.parametrize(
    "option", ["plain", "last", "mask", "mask-zero-output", "backwards-mask", "state"]
)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("N", [1, 6, 20])
def test_inference_computes_x_u_in_the_loop(case, option, N, dtype, rtol, atol, spy):
    """float32 inference with at least 4 rows hands the compiled loop x itself (x_t U per
    step with packed U; chunks of the batch at N = 20 with two threads), and keeps no
    trace: the NumPy loops' outputs, and the same gradients from a backward that follows
    (which runs the forward again, with a trace)."""
    layer, x, mask, init = make_case(case, option, N, dtype, "infer")
    kind = {"SimpleRNN": "simple", "LSTM": "lstm", "GRU": "gru"}[type(layer).__name__]
    ref = run(layer, x, fast=False, mask=mask, initial_state=init, training=False)
    fast = run(layer, x, fast=True, mask=mask, initial_state=init, training=False)
    assert spy.calls == [("forward", kind), ("forward", kind), ("backward", kind)]
    assert spy.args[0].get("no_trace") == 1 and not spy.args[1].get("no_trace")
    if dtype == "float32" and N >= 4:  # else one product before the loop
        assert spy.args[0]["x"] is not None and spy.args[0]["D"] == x.shape[2]
        assert "xw" not in spy.args[0]
    else:
        assert "x" not in spy.args[0] and spy.args[0]["xw"] is not None
    assert_same(fast, ref, rtol, atol)
    trained = run(layer, x, fast=True, mask=mask, initial_state=init)  # xw computed first
    assert_same(fast, trained, rtol, atol)


def test_inference_takes_x_training_takes_xw(spy):
    """Inference (float32, 4 rows or more) forms x_t U inside the loop; every training
    forward gets x U from one product before the loop."""
    x = np.random.default_rng(0).standard_normal((5, 4, 3)).astype("float32")
    for layer in (
        SimpleRNN(6, seed=1),
        GRU(6, seed=1),
        GRU(6, reset_after=False, seed=1),
        LSTM(6, seed=1),
    ):
        layer.forward(x)
        layer.forward(x, training=True)
    xs = [a.get("x") is not None for a in spy.args]
    assert xs == [True, False] * 4


@pytest.fixture(params=["avx512", "avx2", "blas"])
def packed(request, monkeypatch):
    """float32 products with packed weights on the loops' own threads (the AVX-512 or the
    AVX2 register kernel, each where the CPU has it), or BLAS calls."""
    isa = request.param
    monkeypatch.setenv("RNNKIT_PRODUCTS", "blas" if isa == "blas" else "packed")
    used = kernels._loops.set_packed(isa != "blas", "" if isa == "blas" else isa)
    if isa != "blas" and kernels._loops.packed_isa() != isa:
        kernels._loops.set_packed(True)
        pytest.skip(f"this CPU has no {isa} register kernel")
    yield used
    kernels._loops.set_packed(True)


def test_packed_isa_is_named_and_capped():
    """The packed products name their register kernel; 'avx2' caps a CPU with AVX-512, a
    bad name is refused, and set_packed(True) restores the best the CPU has."""
    best = kernels._loops.packed_isa()
    assert best in ("avx512", "avx2", "")
    with pytest.raises(ValueError, match="isa must be"):
        kernels._loops.set_packed(True, "sse")
    try:
        kernels._loops.set_packed(True, "avx2")
        assert kernels._loops.packed_isa() == ("avx2" if best else "")
        kernels._loops.set_packed(False)
        assert kernels._loops.packed_isa() == ""
    finally:
        kernels._loops.set_packed(True)
    assert kernels._loops.packed_isa() == best


@pytest.mark.parametrize("N", [33, 130])
@pytest.mark.parametrize(
    "cls,kw",
    [
        (SimpleRNN, {}),
        (LSTM, {}),
        (LSTM, {"proj_size": 30}),
        (GRU, {}),
        (GRU, {"reset_after": False}),
    ],
)
def test_larger_float32_layers_agree(cls, kw, N, packed, spy):
    """Sizes where BLAS blocks, threads and the packed products' blocks (K > 256, partial
    panels and row blocks) differ from the small cases, sigmoid/tanh arguments spread wide:
    float32 rounding only."""
    rng = np.random.default_rng(1)
    layer = cls(70 if N > 100 else 300, return_sequences=True, seed=2, **kw)
    x = 3 * rng.standard_normal((N, 7, 16)).astype("float32")
    mask = np.ones((N, 7), bool)
    mask[::3, 4:] = False
    layer.build(x.shape)
    ref = run(layer, x, fast=False, mask=mask)
    fast = run(layer, x, fast=True, mask=mask)
    assert len(spy.calls) == 2
    assert_same(fast, ref, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "cls,H,kw",
    [
        (SimpleRNN, 300, {}),
        (LSTM, 130, {}),
        (LSTM, 130, {"proj_size": 70}),
        (GRU, 150, {}),
        (GRU, 200, {"reset_after": False}),
    ],
)
def test_one_row_products_on_the_team(cls, H, kw, training, packed, team_of_two, spy):
    """A batch of one with packed weights: the one-row kernel, each thread on its own
    panels (products large enough for the team, a partial last group of panels and a
    partial last panel; K over one block of 256 for SimpleRNN(300)), forward and backward
    and inference: float32 rounding only."""
    rng = np.random.default_rng(3)
    layer = cls(H, return_sequences=True, seed=4, **kw)
    x = 3 * rng.standard_normal((1, 6, 20)).astype("float32")
    layer.build(x.shape)
    ref = run(layer, x, fast=False, training=training)
    fast = run(layer, x, fast=True, training=training)
    code = kernels.choose.CODES["blas" if packed is False else "packed"]
    assert spy.args and all(a["products"] == code for a in spy.args)
    assert_same(fast, ref, rtol=2e-3, atol=2e-4)


def test_stateful_and_inference(spy):
    layer = LSTM(5, stateful=True, return_sequences=True, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype("float32")
    ref_layer = copy.deepcopy(layer)
    with kernels.numpy_loops():
        r1, r2 = ref_layer(x), ref_layer(x)  # the state carries over
    f1, f2 = layer(x), layer(x)
    np.testing.assert_allclose(f1, r1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f2, r2, rtol=1e-5, atol=1e-6)
    assert spy.calls == [("forward", "lstm")] * 2


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("H", [5, 16, 37])
def test_lstm_gates_agree_at_any_scale(scale, H, packed):
    """LSTM's element-wise step (in one AVX-512 pass where the CPU has it, H not a multiple
    of 16 included): the same as NumPy's from small pre-activations to saturated ones, and
    finite there.  (Saturated gates' derivatives y (1 - y) are a few float32 units apart
    and differ relatively: at 1e4 the gradients are only checked finite.)"""
    rng = np.random.default_rng(H)
    layer = LSTM(H, return_sequences=True, seed=3)
    x = (scale * rng.standard_normal((9, 6, 4))).astype("float32")
    layer.build(x.shape)
    for training in (False, True):
        ref = run(layer, x, fast=False, training=training)
        fast = run(layer, x, fast=True, training=training)
        assert np.isfinite(fast["out"][0]).all() and np.isfinite(fast["dx"]).all()
        assert all(np.isfinite(g).all() for g in fast["grads"].values())
        if scale > 100:
            np.testing.assert_allclose(fast["out"][0], ref["out"][0], rtol=2e-4, atol=2e-5)
        else:
            assert_same(fast, ref, rtol=2e-4, atol=2e-5)


def test_float32_tanh_is_accurate():
    """The loops' own float32 tanh: within a few units in the last place of the exact
    value over the whole range, NaN and infinities included."""
    x = np.concatenate(
        [
            np.linspace(-12, 12, 200001),
            np.geomspace(1e-30, 20, 20000),
            -np.geomspace(1e-30, 20, 20000),
            [0.0, -0.0, 0.625, -0.625, 44.0, 89.0, 1e30, -1e30],
        ]
    ).astype(np.float32)
    y = np.empty_like(x)
    kernels._loops.tanh_f32(x, y)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(y - exact) / ulp) <= 4
    special = np.array([np.nan, np.inf, -np.inf], np.float32)
    out = np.empty_like(special)
    kernels._loops.tanh_f32(special, out)
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == -1.0


def test_switches(monkeypatch):
    assert kernels.enabled()
    with kernels.numpy_loops():
        assert not kernels.enabled() and "switched off" in kernels.info()["reason"]
    assert kernels.enabled()
    kernels.set_enabled(False)
    try:
        assert not kernels.enabled()
    finally:
        kernels.set_enabled(True)
    info = kernels.info()
    assert info["enabled"] and info["built"] and "blas" in info


def test_unknown_cells_and_backends_fall_back(spy):
    """A cell subclass may change the math: it runs the NumPy loop (its own step)."""

    class Doubled(rnnkit.cells.SimpleCell):
        def step(self, p, tr, t, xw_t):
            super().step(p, tr, t, 2 * xw_t)

    class DoubledRNN(SimpleRNN):
        cell_class = Doubled

    layer = DoubledRNN(4, seed=0)
    x = np.ones((2, 3, 2), "float32")
    layer(x)
    assert spy.calls == []


def test_compiled_forward_leaves_xw_alone_unless_allowed():
    """kernels.forward(..., overwrite_xw=True) lets the compiled loop compute the gates in
    place in xw (the layer's own temporary); by default xw is left as it was."""
    rng = np.random.default_rng(0)
    cell = rnnkit.cells.LSTMCell(4)
    params = {"W": rng.standard_normal((4, 16)).astype("float32")}
    xw = rng.standard_normal((5, 2, 16)).astype("float32")
    before = xw.copy()
    s0 = [np.zeros((2, 4), "float32")] * 2
    tr = kernels.forward(cell, params, s0, xw=xw)
    np.testing.assert_array_equal(xw, before)
    tr2 = kernels.forward(cell, params, s0, xw=xw, overwrite_xw=True)
    assert tr2.cache["gates"] is xw
    np.testing.assert_array_equal(tr2.cache["gates"], tr.cache["gates"])
    np.testing.assert_array_equal(tr2.states[0], tr.states[0])


# -- rnnkit's own threads: BLAS held at one thread, the team does the parallel work ----------
@pytest.fixture
def team_of_two(monkeypatch):
    """A team of two threads whatever the machine has (RNNKIT_THREADS)."""
    if not kernels.blas.set_threads(kernels.blas.threads()):
        pytest.skip("this BLAS cannot be set to one thread")
    monkeypatch.setenv("RNNKIT_THREADS", "2")


@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-10, 1e-12), ("float32", 2e-3, 2e-4)])
@pytest.mark.parametrize("N", [1, 2, 20, 130])
@pytest.mark.parametrize(
    "cls,kw",
    [
        (SimpleRNN, {}),
        (LSTM, {}),
        (LSTM, {"proj_size": 24}),
        (GRU, {}),
        (GRU, {"reset_after": False}),
    ],
)
def test_team_paths_agree(cls, kw, N, dtype, rtol, atol, team_of_two, spy):
    """Inside own_threads the loops cut the batch into chunks at any size and dtype, and
    products the packed kernel does not take are cut by columns: same numbers."""
    rng = np.random.default_rng(3)
    layer = cls(40, return_sequences=True, seed=4, dtype=dtype, **kw)
    x = 2 * rng.standard_normal((N, 6, 12)).astype(dtype)
    mask = np.ones((N, 6), bool)
    mask[::2, 3:] = False
    layer.build(x.shape)
    ref = run(layer, x, fast=False, mask=mask)
    fast = run(layer, x, fast=True, mask=mask)
    assert len(spy.calls) == 2 and spy.args[0]["own_threads"] == 1 and spy.args[0]["threads"] == 2
    assert_same(fast, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("N", [10, 32])
def test_prefetching_products_agree(N, team_of_two, spy, monkeypatch):
    """Weights over 12 MB multiplied with at most 16 rows (a product of its own at N = 10,
    two chunks of 16 at N = 32) take the packed kernel that prefetches the next panel; K =
    1000 leaves a last block of 232 rows and 4000 columns a partial last panel: float32
    rounding only, forward and backward."""
    rng = np.random.default_rng(5)
    monkeypatch.setenv("RNNKIT_PRODUCTS", "packed")
    layer = LSTM(1000, return_sequences=True, seed=6, dtype="float32")
    x = 2 * rng.standard_normal((N, 3, 8)).astype("float32")
    layer.build(x.shape)
    assert layer.params["W"].nbytes > 12 << 20
    ref = run(layer, x, fast=False)
    fast = run(layer, x, fast=True)
    assert len(spy.calls) == 2 and spy.args[0]["threads"] == 2
    assert spy.args[0]["products"] == kernels.choose.CODES["packed"]
    assert_same(fast, ref, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("N", [1, 32])
def test_packed_weights_buffers_are_kept_repacked_and_released(N, team_of_two, spy, monkeypatch):
    """A loop's packed weights of 4 MB or more go to a buffer kept for the next loop (no
    fresh pages to fault in): the next loop packs its own weights into it (changed weights
    give their own outputs; the same weights give the same outputs bit for bit), and
    release_memory() hands the kept buffers back (once)."""
    rng = np.random.default_rng(8)
    monkeypatch.setenv("RNNKIT_PRODUCTS", "packed")
    kernels.release_memory()
    layer = LSTM(1000, return_sequences=True, seed=9, dtype="float32")
    x = rng.standard_normal((N, 3, 8)).astype("float32")
    layer.build(x.shape)
    first = run(layer, x, fast=True, training=False)
    again = run(layer, x, fast=True, training=False)
    np.testing.assert_array_equal(again["out"][0], first["out"][0])
    layer.params["W"][...] = -0.5 * layer.params["W"][::-1]  # in place: same array
    fast = run(layer, x, fast=True, training=False)
    ref = run(layer, x, fast=False, training=False)
    assert spy.args and all(a["products"] == kernels.choose.CODES["packed"] for a in spy.args)
    assert_same(fast, ref, rtol=2e-3, atol=2e-4)
    assert not np.allclose(fast["out"][0], first["out"][0])
    kept = kernels.release_memory()
    if kernels._loops.packed_isa():
        assert kept >= layer.params["W"].nbytes  # the packed W (zero-padded panels)
    assert kernels.release_memory() == 0


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_backward_buffer_is_kept_reused_and_released(cls, monkeypatch):
    """The compiled backward's (T, N, G) buffer of ∂L/∂a is kept for the next backward of
    the same shape: the gradients are those of a new buffer, bit for bit, at every step
    (its old contents never leak in); a caller still holding the last one gets a new one
    (the held values stay as they were); release_memory() hands it back."""
    rng = np.random.default_rng(11)
    kernels.release_memory()
    layer = cls(6, return_sequences=True, seed=12)
    xs = [rng.standard_normal((5, 7, 3)) for _ in range(3)]
    layer.build(xs[0].shape)

    def grads_of(keep):
        monkeypatch.setattr(kernels.loops, "KEEP_DXW", keep)
        kernels.loops.release_kept()
        return [run(layer, x, fast=True, seed=i) for i, x in enumerate(xs)]

    new, kept = grads_of(False), grads_of(True)
    assert kernels.loops._kept_dxw.shape == (7, 5, layer.cell.width)
    for a, b in zip(new, kept):
        np.testing.assert_array_equal(a["dx"], b["dx"])
        for k in a["grads"]:
            np.testing.assert_array_equal(a["grads"][k], b["grads"][k])

    dt = layer.params["W"].dtype
    zeros = [np.zeros((5, s), dt) for s in layer.cell.state_sizes]
    xw = rng.standard_normal((7, 5, layer.cell.width)).astype(dt)
    trace = kernels.forward(layer.cell, layer.params, zeros, xw=xw)
    held, _ = kernels.backward(layer.cell, layer.params, trace, np.ones((7, 5, 6), dt))
    copy_of_held = held.copy()
    again, _ = kernels.backward(layer.cell, layer.params, trace, 2 * np.ones((7, 5, 6), dt))
    assert again is not held and not np.shares_memory(again, held)
    np.testing.assert_array_equal(held, copy_of_held)
    del held, again
    assert kernels.release_memory() >= 7 * 5 * layer.cell.width * dt.itemsize
    assert kernels.loops._kept_dxw is None


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-5), ("float64", 1e-12)])
def test_matmul_on_the_team(dtype, rtol, team_of_two):
    rng = np.random.default_rng(0)
    before = kernels.blas.threads()
    for M, K, N in [(300, 70, 500), (1000, 64, 40), (33, 257, 1030)]:
        a = rng.standard_normal((M, K)).astype(dtype)
        b = rng.standard_normal((K, N)).astype(dtype)
        assert not kernels.threads.inside()
        np.testing.assert_array_equal(kernels.matmul(a, b), a @ b)  # outside own_threads: a @ b
        with kernels.own_threads():
            assert kernels.blas.threads() == 1 and kernels.threads.team_size() == 2
            with kernels.own_threads():  # re-entrant
                pass
            assert kernels.blas.threads() == 1
            for A, B in [
                (a, b),
                (np.ascontiguousarray(a.T).T, b),
                (a, np.ascontiguousarray(b.T).T),
                (np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T),
            ]:
                out = kernels.matmul(A, B)
                assert out.dtype == dtype and out.flags.c_contiguous
                np.testing.assert_allclose(out, a.astype("float64") @ b, rtol=rtol, atol=rtol * K)
            small, strided = (a[:4, :4], b[:4, :4]), (a[:, ::2], b[::2])
            for A, B in (small, strided):  # one BLAS call / NumPy's matmul
                np.testing.assert_allclose(kernels.matmul(A, B), A @ B, rtol=rtol, atol=rtol * K)
        assert kernels.blas.threads() == before  # restored


# -- the recurrent products' way: measured per shape (auto) or forced (RNNKIT_PRODUCTS) ------
@pytest.fixture
def fresh_choices(monkeypatch):
    """An empty cache of choices for the test, the process's own restored after it; MKL's
    way left out (RNNKIT_MKL=0) unless a test asks for it (the chooser's logic is tested
    on the three ways every install has)."""
    monkeypatch.setattr(kernels.choose, "_cache", {})
    monkeypatch.delenv("RNNKIT_PRODUCTS", raising=False)
    monkeypatch.setenv("RNNKIT_MKL", "0")


def mkl_found():
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.delenv("RNNKIT_MKL", raising=False)
    try:
        return bool(kernels.blas.find_mkl(kernels._loops))
    finally:
        monkeypatch.undo()


def expected_way(way, dtype, N, chunks, cls=LSTM):
    """What a forced way becomes: packed needs float32 and one row or at least 4 a product;
    split a team of two (the batch not cut into chunks); mkl float32 and MKL installed;
    team what packed needs, an LSTM and a batch cut into chunks; else one BLAS call."""
    packed_cpu = kernels._loops.plan(N, 2, 4, True)[1]
    rows = -(-N // chunks)
    packed_ok = dtype == "float32" and packed_cpu and not 1 < rows < 4
    if way == "packed" and not packed_ok:
        return "blas"
    if way == "team" and not (packed_ok and cls is LSTM and chunks > 1):
        return "blas"
    if way == "split" and chunks > 1:
        return "blas"
    if way == "mkl" and (dtype != "float32" or not mkl_found()):
        return "blas"
    return way


@pytest.mark.parametrize("way", ["packed", "blas", "split", "mkl", "team"])
@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-10, 1e-12), ("float32", 2e-3, 2e-4)])
@pytest.mark.parametrize("N", [1, 6, 20])
@pytest.mark.parametrize(
    "cls,kw",
    [
        (SimpleRNN, {}),
        (LSTM, {"proj_size": 24}),
        (LSTM, {}),
        (GRU, {}),
        (GRU, {"reset_after": False}),
    ],
)
def test_forced_products_agree(
    cls, kw, N, dtype, rtol, atol, way, team_of_two, spy, monkeypatch, fresh_choices
):
    """RNNKIT_PRODUCTS=packed|blas|split|mkl|team: each way reaches the loop where it
    applies (one BLAS call where it does not) and gives the NumPy loops' numbers, training
    forward and backward and inference (x_t U in the loop at 4 rows or more)."""
    monkeypatch.setenv("RNNKIT_PRODUCTS", way)
    monkeypatch.delenv("RNNKIT_MKL")
    rng = np.random.default_rng(7)
    layer = cls(40, return_sequences=True, seed=8, dtype=dtype, **kw)
    x = 2 * rng.standard_normal((N, 5, 12)).astype(dtype)
    mask = np.ones((N, 5), bool)
    mask[::2, 3:] = False
    layer.build(x.shape)
    ref = run(layer, x, fast=False, mask=mask)
    fast = run(layer, x, fast=True, mask=mask)
    chunks = kernels._loops.plan(N, 2, np.dtype(dtype).itemsize, True)[0]
    code = kernels.choose.CODES[expected_way(way, dtype, N, chunks, cls)]
    assert [a["products"] for a in spy.args] == [code]
    assert_same(fast, ref, rtol=rtol, atol=atol)
    ref_inf = run(layer, x, fast=False, mask=mask, training=False)
    fast_inf = run(layer, x, fast=True, mask=mask, training=False)
    assert spy.args[1].get("no_trace") == 1 and spy.args[1]["products"] == code
    assert_same(fast_inf, ref_inf, rtol=rtol, atol=atol)
    recs = [r for r in kernels.choices() if r["N"] == N and r["H"] == 40]
    assert recs and all(r["mode"] == way and r["times"] == {} for r in recs)
    assert all(("note" in r) == (r["way"] != way) for r in recs)


def fake_timer(times, calls, setup=None):
    """A timer that answers from tables (seconds a step by way, and of the loop's setup:
    none unless given) and records what it was asked.  A prefetching way (packed_pf,
    team_pf) not in the table takes twice its own way's time."""

    def timer(key, way, plan, loops):
        calls.append((key, way))
        base = kernels.choose.base(way)
        t = times[way] if way in times else 2 * times[base]
        return t, (setup or {}).get(way, (setup or {}).get(base, 0.0))

    return timer


def lstm_key(N=8, itemsize=4, threads=2, own_threads=True, H=64):
    return kernels.choose.Key("lstm", False, False, N, H, 0, 0, itemsize, threads, own_threads)


@pytest.mark.parametrize(
    "times,best",
    [
        ({"packed": 3e-6, "blas": 2e-6, "split": 5e-6}, "blas"),
        ({"packed": 1e-6, "blas": 2e-6, "split": 5e-6}, "packed"),
        ({"packed": 3e-6, "blas": 2e-6, "split": 1e-6}, "split"),
        ({"packed": 1.9e-6, "blas": 2e-6, "split": 1.95e-6}, "blas"),  # within the margin
    ],
)
def test_chooser_takes_the_fastest_way_once_per_key(times, best, fresh_choices, monkeypatch):
    if not kernels._loops.plan(8, 2, 4, True)[1]:
        pytest.skip("no packed kernel on this CPU")
    calls = []
    monkeypatch.setattr(kernels.choose, "timer", fake_timer(times, calls))
    key = lstm_key()
    rec = kernels.choose.choose(key, kernels._loops)
    assert rec["way"] == best and rec["code"] == kernels.choose.CODES[best]
    assert {w for _, w in calls} == {"packed", "blas", "split"}
    assert rec["times"] == times
    n = len(calls)
    assert kernels.choose.choose(key, kernels._loops) is rec and len(calls) == n  # cached
    other = lstm_key(H=65)
    kernels.choose.choose(other, kernels._loops)  # another key is measured on its own
    assert len(calls) == 2 * n and {k for k, _ in calls[n:]} == {other}
    assert [(r["H"], r["way"]) for r in kernels.choices()] == [(64, best), (65, best)]


@pytest.mark.parametrize("team,best", [(8.5e-6, "team"), (9.5e-6, "packed"), (11e-6, "packed")])
def test_chooser_takes_the_team_way_only_well_ahead_of_the_chunks(
    team, best, fresh_choices, monkeypatch
):
    """An LSTM loop whose batch is cut into chunks may run whole on the team (products cut
    by columns, gates by rows): only TEAM_MARGIN faster than the best chunked way (packed
    10 µs here: 9 µs or less); never for another cell or a batch that is not cut."""
    if not kernels._loops.plan(32, 2, 4, True)[1] or kernels._loops.plan(32, 2, 4, True)[0] < 2:
        pytest.skip("no packed kernel or no chunks here")
    calls = []
    monkeypatch.setattr(
        kernels.choose,
        "timer",
        fake_timer({"packed": 10e-6, "blas": 20e-6, "split": 30e-6, "team": team}, calls),
    )
    rec = kernels.choose.choose(lstm_key(N=32), kernels._loops)
    assert {w for _, w in calls} == {"packed", "blas", "team"}
    assert rec["way"] == best and rec["code"] == kernels.choose.CODES[best]
    back = kernels.choose.Key("lstm", False, True, 32, 64, 0, 0, 4, 2, True)
    assert kernels.choose.choose(back, kernels._loops)["way"] == best  # the same for a backward
    gru = kernels.choose.Key("gru", True, False, 32, 64, 0, 0, 4, 2, True)
    for key in (gru, lstm_key(N=8)):
        rec = kernels.choose.choose(key, kernels._loops)
        assert "team" in rec["why_not"] and "team" not in rec["times"]


def test_chooser_measures_a_far_slower_way_again_later(fresh_choices, monkeypatch):
    """A way SUSPECT times (and SUSPECT_S seconds) slower than the best may only have been
    disturbed (e.g. BLAS's pool threads spinning after a multi-threaded call): the first
    loop of the key RECHECK_S later measures it again, and it wins if it was only
    disturbed; one that stays slow is measured RETRIES times more and loses; a tiny
    product's hand-off (microseconds) is measured once."""
    if not kernels._loops.plan(8, 2, 4, True)[1]:
        pytest.skip("no packed kernel on this CPU")
    answers = {"packed": [3e-6] * 9, "blas": [2e-6] * 9, "split": [225e-6, 225e-6, 1e-6]}
    calls = []

    def timer(key, way, plan, loops):
        calls.append(way)
        return answers[way].pop(0), 0.0

    clock = [100.0]
    monkeypatch.setattr(kernels.choose, "timer", timer)
    monkeypatch.setattr(kernels.choose.time, "perf_counter", lambda: clock[0])
    key = lstm_key()
    rec = kernels.choose.choose(key, kernels._loops)
    assert rec["way"] == "blas" and rec["recheck_at"] == 100.0 + kernels.choose.RECHECK_S
    assert kernels.choose.choose(key, kernels._loops)["way"] == "blas"  # not yet
    assert calls.count("split") == 2
    clock[0] += kernels.choose.RECHECK_S
    rec = kernels.choose.choose(key, kernels._loops)
    assert rec["way"] == "split" and rec["code"] == kernels.choose.CODES["split"]
    assert rec["times"]["split"] == 1e-6 and "recheck_at" not in rec
    assert calls.count("split") == 3 and calls.count("blas") == 2

    calls.clear()
    answers["split"] = [225e-6] * 9  # slow for good
    other = lstm_key(H=65)
    for _ in range(10):
        rec = kernels.choose.choose(other, kernels._loops)
        clock[0] += 10 * kernels.choose.RECHECK_S
    assert rec["way"] == "blas" and "recheck_at" not in rec
    assert calls.count("split") == 2 + kernels.choose.RETRIES

    calls.clear()
    answers["split"] = [20e-6] * 9  # 10x BLAS's 2 µs, but only 18 µs behind
    rec = kernels.choose.choose(lstm_key(H=66), kernels._loops)
    assert rec["way"] == "blas" and "recheck_at" not in rec and calls.count("split") == 2


def test_chooser_respects_the_override(fresh_choices, monkeypatch):
    calls = []
    monkeypatch.setattr(
        kernels.choose, "timer", fake_timer({"packed": 1, "blas": 2, "split": 3}, calls)
    )
    for way in ("blas", "split", "packed"):
        monkeypatch.setenv("RNNKIT_PRODUCTS", way)
        assert kernels.choose.choose(lstm_key(N=3), kernels._loops)["way"] == (
            "blas" if way == "packed" else way  # packed does not apply at three rows
        )
    assert calls == []  # forced: nothing measured
    monkeypatch.setenv("RNNKIT_PRODUCTS", "fastest")
    with pytest.raises(ValueError, match="RNNKIT_PRODUCTS"):
        kernels.choose.choose(lstm_key(), kernels._loops)
    monkeypatch.setenv("RNNKIT_PRODUCTS", "auto")
    kernels.choose.choose(lstm_key(N=3), kernels._loops)
    assert {w for _, w in calls} == {"blas", "split"}
    calls.clear()
    kernels.choose.choose(lstm_key(N=1), kernels._loops)  # one row: its own packed kernel
    packed_cpu = kernels._loops.plan(1, 2, 4, True)[1]
    assert {w for _, w in calls} == (
        {"packed", "blas", "split"} if packed_cpu else {"blas", "split"}
    )


@pytest.mark.parametrize("way", ["packed_pf", "team_pf"])
@pytest.mark.parametrize("N", [6, 20])
def test_prefetching_ways_agree(way, N, team_of_two, spy, monkeypatch, fresh_choices):
    """RNNKIT_PRODUCTS=packed_pf|team_pf: the packed kernel prefetching the next panel in
    every product whose weights exceed 1 MB (LSTM(300): 1.4 MB) gives the NumPy loops'
    numbers, training and inference; with weights under 1 MB it is its own way without
    the prefetch, and says so."""
    monkeypatch.setenv("RNNKIT_PRODUCTS", way)
    chunks = kernels._loops.plan(N, 2, 4, True)[0]
    own = expected_way(kernels.choose.base(way), "float32", N, chunks)
    expected = way if own != "blas" else "blas"
    rng = np.random.default_rng(3)
    layer = LSTM(300, return_sequences=True, seed=4)
    x = rng.standard_normal((N, 6, 12)).astype("float32")
    layer.build(x.shape)
    for training in (True, False):
        ref = run(layer, x, fast=False, training=training)
        fast = run(layer, x, fast=True, training=training)
        assert spy.args[-1]["products"] == kernels.choose.CODES[expected]
        assert_same(fast, ref, rtol=2e-3, atol=2e-4)
    if expected != "blas":
        assert kernels.choose.CODES[way] == kernels.choose.CODES[own] | 8
        small = LSTM(40, seed=0)
        small(x)
        rec = [r for r in kernels.choices() if r["H"] == 40][0]
        assert rec["way"] == own and f"{own} instead" in rec["note"]
        assert "nothing to prefetch" in rec["why_not"][way]


def test_chooser_measures_the_prefetch_where_the_weights_are_large(fresh_choices, monkeypatch):
    """Where a product's weights exceed PREFETCH_MIN_BYTES the packed ways are also timed
    prefetching (packed_pf, and team_pf where team applies), and taken when fastest; with
    small weights they are not timed."""
    if not kernels._loops.plan(64, 2, 4, True)[1] or kernels._loops.plan(64, 2, 4, True)[0] < 2:
        pytest.skip("no packed kernel or no chunks here")
    calls = []
    times = {"packed": 10e-6, "packed_pf": 8e-6, "blas": 20e-6, "split": 30e-6, "team": 15e-6}
    monkeypatch.setattr(kernels.choose, "timer", fake_timer(times, calls))
    big = lstm_key(N=64, H=300)
    rec = kernels.choose.choose(big, kernels._loops)
    assert {w for _, w in calls} == {"packed", "packed_pf", "blas", "team", "team_pf"}
    assert rec["way"] == "packed_pf" and rec["code"] == kernels.choose.CODES["packed"] | 8
    assert kernels.choose.code_for(rec, 1) == rec["code"]  # no setup to count
    times["packed_pf"] = 11e-6
    monkeypatch.setattr(kernels.choose, "_cache", {})
    assert kernels.choose.choose(big, kernels._loops)["way"] == "packed"
    calls.clear()
    small = kernels.choose.choose(lstm_key(N=64, H=64), kernels._loops)
    assert not {w for _, w in calls} & {"packed_pf", "team_pf"}
    assert "nothing to prefetch" in small["why_not"]["packed_pf"]
    one = kernels.choose.plan(lstm_key(N=1, H=300), kernels._loops)["why_not"]
    assert "one row a product" in one["packed_pf"]  # a batch of one streams wide panels


def test_the_margin_is_for_ways_that_hand_off_each_step(fresh_choices, monkeypatch):
    """Packed 5 % faster than one BLAS call: within the margin where the team shares each
    step's product (BLAS kept), the faster way where chunks of the batch run on their own."""
    times = {"packed": 0.95e-3, "blas": 1e-3, "split": 2e-3, "team": 1.5e-3}
    monkeypatch.setattr(kernels.choose, "timer", fake_timer(times, []))
    whole, chunked = lstm_key(N=8, H=300), lstm_key(N=64, H=300)
    plans = [kernels.choose.plan(k, kernels._loops)["chunks"] for k in (whole, chunked)]
    if plans != [1, 2] or not kernels._loops.plan(8, 2, 4, True)[1]:
        pytest.skip("needs the packed kernel and a team of two")
    assert kernels.choose.choose(whole, kernels._loops)["way"] == "blas"
    assert kernels.choose.choose(chunked, kernels._loops)["way"] == "packed"


def test_short_loops_count_the_packing(fresh_choices, monkeypatch):
    """The packed way's setup (packing the weights once a loop) counts a T-th a step: a
    loop of one step (text generation) takes the next fastest way, a long loop the packed
    one; a forced way stays whatever T."""
    calls = []
    times = {"packed": 10e-6, "blas": 30e-6, "split": 20e-6}
    monkeypatch.setattr(kernels.choose, "timer", fake_timer(times, calls, setup={"packed": 400e-6}))
    rec = kernels.choose.choose(lstm_key(N=1), kernels._loops)
    if rec["way"] != "packed":
        pytest.skip("no packed kernel on this CPU")
    assert rec["setup"]["packed"] == 400e-6
    code = kernels.choose.CODES
    # packed: 10 + 400 / T µs a step, split 20: packed from T = 40 on
    assert [kernels.choose.code_for(rec, T) for T in (1, 39, 40, 1000)] == [
        code["split"],
        code["split"],
        code["packed"],
        code["packed"],
    ]
    monkeypatch.setenv("RNNKIT_PRODUCTS", "packed")
    forced = kernels.choose.choose(lstm_key(N=1), kernels._loops)
    assert kernels.choose.code_for(forced, 1) == code["packed"]


@pytest.mark.parametrize("chunks", [1, 2])
def test_time_products_reports_the_setup(chunks, team_of_two):
    """time_products measures the steps and the setup before them (packing, for packed),
    with the chunks of a batch running at once where the loop would cut it."""
    LSTM(3, seed=0)(np.zeros((1, 2, 2), "float32"))  # the loops know NumPy's BLAS
    specs = [(256, 1024, False), (64, 1024, False)]
    with kernels.own_threads():
        for way in ("packed", "blas"):
            code = kernels.choose.CODES[way]
            steps, setup = kernels._loops.time_products(4, code, 8, 2, 1, specs, 3, chunks)
            assert len(steps) == 3 and all(t > 0 for t in steps) and setup >= 0
    with pytest.raises(ValueError, match="out of range"):
        kernels._loops.time_products(4, 1, 8, 2, 1, specs, 3, 0)


needs_mkl = pytest.mark.skipif(not mkl_found(), reason="MKL not installed (rnnkit[mkl])")


@needs_mkl
def test_mkl_is_measured_and_taken_when_fastest(fresh_choices, monkeypatch):
    """With MKL installed it is one more way the chooser measures (float32 only), taken when
    the fastest, its packing counted as the packed kernel's for short loops."""
    monkeypatch.delenv("RNNKIT_MKL")
    calls = []
    times = {"packed": 30e-6, "blas": 40e-6, "split": 35e-6, "mkl": 10e-6, "team": 50e-6}
    monkeypatch.setattr(kernels.choose, "timer", fake_timer(times, calls, setup={"mkl": 400e-6}))
    rec = kernels.choose.choose(lstm_key(N=64, H=300), kernels._loops)
    assert rec["way"] == "mkl" and rec["code"] == kernels.choose.CODES["mkl"] == 4
    assert "mkl" in {w for _, w in calls} and "mkl" not in rec["why_not"]
    # 10 + 400 / T µs a step against packed's 30 (x MKL_MARGIN 0.88 = 26.4): mkl from T = 25
    assert kernels.choose.code_for(rec, 24) == kernels.choose.CODES["packed"]
    assert kernels.choose.code_for(rec, 25) == kernels.choose.CODES["mkl"]
    # within MKL_MARGIN of the best other way it is not taken
    monkeypatch.setattr(kernels.choose, "_cache", {})
    times["mkl"] = 0.92 * times["packed"]
    assert kernels.choose.choose(lstm_key(N=64, H=300), kernels._loops)["way"] == "packed"
    rec64 = kernels.choose.choose(lstm_key(N=64, H=300, itemsize=8), kernels._loops)
    assert rec64["why_not"]["mkl"] == "float64" and rec64["way"] != "mkl"
    info = kernels.info()["mkl"]
    assert "libmkl_rt" in info["library"] and info["sequential"]


@needs_mkl
@pytest.mark.parametrize("chunks", [1, 2])
def test_mkl_time_products(chunks, team_of_two, monkeypatch):
    """time_products runs MKL's way: the steps and the packing before them."""
    monkeypatch.delenv("RNNKIT_MKL", raising=False)
    kernels.blas.find_mkl(kernels._loops)
    specs = [(256, 1024, False), (1024, 256, True)]
    with kernels.own_threads():
        steps, setup = kernels._loops.time_products(4, 4, 16, 2, 1, specs, 3, chunks)
    assert len(steps) == 3 and all(t > 0 for t in steps) and setup > 0


@needs_mkl
def test_mkl_leaves_torch_its_threads():
    """torch imported after rnnkit loaded MKL still runs on its own MKL and threads (its
    wheel's MKL symbols would otherwise bind to the sequential MKL loaded first)."""
    pytest.importorskip("torch")
    code = (
        "import sys\n"
        "if sys.argv[1] == 'mkl':\n"
        "    from rnnkit import kernels\n"
        "    import numpy as np\n"
        "    from rnnkit import LSTM\n"
        "    LSTM(3, seed=0)(np.zeros((1, 2, 2), 'float32'))\n"
        "    assert kernels.blas.find_mkl(kernels._loops)\n"
        "import torch\n"
        "print(torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RNNKIT_MKL"}
    counts = [
        subprocess.run(
            [sys.executable, "-c", code, arg], capture_output=True, text=True, env=env, check=True
        ).stdout.strip()
        for arg in ("alone", "mkl")
    ]
    assert counts[0] == counts[1], counts


@needs_mkl
def test_matmul_measures_mkl_once_per_size_class(monkeypatch, team_of_two):
    """kernels.matmul times BLAS and MKL on the first product of a size class, keeps the
    faster for the class (another length of the same class is not measured again), and
    gives the same products either way."""
    monkeypatch.delenv("RNNKIT_MKL", raising=False)
    monkeypatch.setattr(kernels.loops, "_matmul_mkl", {})
    rng = np.random.default_rng(3)
    b = rng.standard_normal((96, 80)).astype("float32")
    with kernels.own_threads():
        for M in (300, 400, 300):  # one class: 257..512 rows
            a = rng.standard_normal((M, 96)).astype("float32")
            np.testing.assert_allclose(kernels.matmul(a, b), a @ b, rtol=1e-4, atol=1e-4)
    assert list(kernels.loops._matmul_mkl) == [(9, 7, 7, True, True)]


def test_mkl_not_found_says_why(monkeypatch):
    """RNNKIT_MKL names a library that is not there, or turns MKL off: the chooser leaves the
    way out and says why; a forced mkl runs one BLAS call and notes it."""
    monkeypatch.setattr(kernels.blas, "_mkl", None)
    monkeypatch.setenv("RNNKIT_MKL", "/nonexistent/libmkl_rt.so.9")
    assert kernels.blas.find_mkl(kernels._loops) == {}
    assert "/nonexistent/libmkl_rt.so.9" in kernels.blas.mkl_why_not()
    monkeypatch.setattr(kernels.choose, "_cache", {})
    monkeypatch.setenv("RNNKIT_PRODUCTS", "mkl")
    rec = kernels.choose.choose(lstm_key(N=64, H=300), kernels._loops)
    assert rec["way"] == "blas" and "mkl forced but does not apply" in rec["note"]
    monkeypatch.setenv("RNNKIT_MKL", "0")
    assert kernels.blas.find_mkl(kernels._loops) == {}
    assert kernels.blas.mkl_why_not() == "RNNKIT_MKL='0'"


@pytest.mark.parametrize(
    "key,never",
    [
        (lstm_key(N=2), "packed"),  # two rows a product
        (lstm_key(N=3), "packed"),
        (lstm_key(itemsize=8), "packed"),  # float64
        (lstm_key(threads=1), "split"),  # no team
        (lstm_key(own_threads=False), "split"),  # BLAS keeps its own threads
        (lstm_key(N=64), "split"),  # two chunks of the batch, one per thread
        (lstm_key(N=8), "team"),  # one chunk: the packed way is the team's
    ],
)
def test_chooser_never_picks_a_way_that_does_not_apply(key, never, fresh_choices, monkeypatch):
    calls = []
    times = {"packed": 1e-9, "blas": 2e-6, "split": 1e-9, "team": 1e-3}
    times[never] = 0.0
    monkeypatch.setattr(kernels.choose, "timer", fake_timer(times, calls))
    rec = kernels.choose.choose(key, kernels._loops)
    assert rec["way"] != never and never in rec["why_not"]
    assert never not in {w for _, w in calls}


def test_layers_report_their_choices(fresh_choices):
    """A loop asks the chooser for its shape; kernels.choices() reports it with the times."""
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype("float32")
    with kernels.own_threads():
        LSTM(8, seed=0)(x)
    (rec,) = kernels.choices()
    assert (rec["kind"], rec["N"], rec["H"], rec["backward"], rec["mode"]) == (
        "lstm",
        2,
        8,
        False,
        "auto",
    )
    assert rec["way"] in ("blas", "split") and "packed" in rec["why_not"]
    assert set(rec["times"]) == ({"blas", "split"} if "split" not in rec["why_not"] else set())
    assert all(t > 0 for t in rec["times"].values())
    assert kernels.info()["choices"] == 1
