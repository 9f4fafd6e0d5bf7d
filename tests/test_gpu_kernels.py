"""The fused GPU step kernels (rnnkit/gpu/): checked on the CPU and, where there is one, on a GPU.

Without a GPU: the generated kernel source is compiled as plain C by the system compiler (the
same text NVRTC compiles: ``RK_FOR`` becomes a loop over the elements), and the launcher of
``rnnkit.gpu.fused`` runs the layer's time loops with it and NumPy's matmul; the states,
caches and every gradient must agree with the NumPy cells and ``rnnkit.bptt`` (float64 to
1e-12, float32 to 1e-5), with and without masks.  The graph cache's bookkeeping is checked
with a fake capture.

With CuPy and a CUDA device: the recurrent layers under ``set_backend("cupy")`` run the
fused kernels (eagerly and replayed from CUDA graphs) and must give NumPy's outputs and
every gradient (masks, Bidirectional, go_backwards).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from rnnkit import activations, bptt
from rnnkit.cells import GRUCell, LSTMCell, SimpleCell
from rnnkit.gpu import fused, graphs, source

CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc) to build the kernels as C")

CELLS = {
    "simple tanh": lambda H: SimpleCell(H),
    "simple relu": lambda H: SimpleCell(H, activation="relu"),
    "lstm": lambda H: LSTMCell(H),
    "lstm proj": lambda H: LSTMCell(H, proj_size=3),
    "lstm hard_sigmoid softsign": lambda H: LSTMCell(
        H, activation="softsign", recurrent_activation="hard_sigmoid"
    ),
    "gru reset_after": lambda H: GRUCell(H),
    "gru reset_after no bias": lambda H: GRUCell(H, use_bias=False),
    "gru reset_before": lambda H: GRUCell(H, reset_after=False),
    "gru linear": lambda H: GRUCell(H, activation="linear"),
}
TOL = {"float64": 1e-12, "float32": 1e-5}


class CKernels:
    """The generated kernels of one cell, built as a C shared library: ``launch`` as
    ``rnnkit.gpu.fused`` calls it."""

    _cache: dict = {}

    def __init__(self, cell, dtype, tmpdir):
        kind = fused.kind_of(cell)
        key = (kind, dtype, cell.activation.name, cell.recurrent_activation.name)
        self.dtype = np.dtype(dtype)
        self.kernels = source.kernels(kind)
        if key not in CKernels._cache:
            text = source.module_source(kind, dtype, key[2], key[3])
            src = tmpdir / ("_".join(key) + ".c")
            src.write_text(text)
            lib = src.with_suffix(".so")
            cmd = [CC, "-O1", "-std=c99", "-ffp-contract=off", "-fPIC", "-shared", "-Wall"]
            r = subprocess.run(
                [*cmd, "-Werror=implicit-function-declaration", str(src), "-o", str(lib), "-lm"],
                capture_output=True,
                text=True,
            )
            assert r.returncode == 0, r.stderr[-3000:]
            CKernels._cache[key] = ctypes.CDLL(str(lib))
        self.lib = CKernels._cache[key]
        self.calls: list[str] = []

    def launch(self, name, count, K, *args):
        params = self.kernels[name].params
        assert len(args) == len(params), (name, len(args), params)
        cargs: list = [ctypes.c_int(count), ctypes.c_int(K)]
        for pname, a in zip(params, args):
            if pname.startswith("has_"):
                assert isinstance(a, int), (name, pname)
                cargs.append(ctypes.c_int(a))
            else:
                assert a.dtype == self.dtype and a.flags.c_contiguous, (name, pname)
                cargs.append(ctypes.c_void_p(a.ctypes.data))
        self.calls.append(name)
        getattr(self.lib, name)(*cargs)


def np_matmul(a, b, out):
    np.matmul(a, b, out=out)


def problem(cell, T, N, D, dtype, masked, seed=0):
    rng = np.random.default_rng(seed)
    p = {k: (0.5 * rng.standard_normal(s)).astype(dtype) for k, s in cell.param_shapes(D).items()}
    xw = rng.standard_normal((T, N, cell.width)).astype(dtype)
    s0 = [(0.5 * rng.standard_normal((N, s))).astype(dtype) for s in cell.state_sizes]
    m = None
    if masked:
        m = np.ones((T, N, 1), bool)
        m[T - 3 :, 0] = False  # padding at the end
        m[1:3, -1] = False  # skipped steps in the middle
        m[0, 1 % N] = False  # the first step skipped
    d_out = rng.standard_normal((T, N, cell.output_size)).astype(dtype)
    d_final = [rng.standard_normal((N, s)).astype(dtype) for s in cell.state_sizes]
    return p, xw, s0, m, d_out, d_final


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@needs_cc
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("name", list(CELLS))
def test_c_kernels_match_numpy_cells(tmp_path, name, masked, dtype):
    T, N, D, H = 7, 4, 3, 5
    cell = CELLS[name](H)
    p, xw, s0, m, d_out, d_final = problem(cell, T, N, D, dtype, masked)
    ref = bptt.forward(cell, p, xw.copy(), s0, m)
    ref_dxw, ref_d0 = bptt.backward(cell, p, ref, d_out, d_final)
    ref_grads = cell.recurrent_grads(p, ref, ref_dxw)

    k = CKernels(cell, dtype, tmp_path)
    tr = fused.run_forward(k.launch, np_matmul, np, cell, p, xw, s0, m)
    dxw, d0 = fused.run_backward(k.launch, np_matmul, np, cell, p, tr, d_out, d_final)
    grads = cell.recurrent_grads(p, tr, dxw)

    tol = TOL[dtype]
    for a, b in zip(tr.states, ref.states):
        assert rel(a, b) < tol
    for key in ref.cache:
        if key not in ("dh", "dhn"):  # filled by the reverse loop: checked through the grads
            assert rel(tr.cache[key], ref.cache[key]) < tol, key
    assert rel(dxw, ref_dxw) < tol
    for a, b in zip(d0, ref_d0):
        assert rel(a, b) < tol
    assert set(grads) == set(ref_grads)
    for key in ref_grads:
        assert rel(grads[key], ref_grads[key]) < tol, key
    # one fused kernel per step and direction; two where a product separates the stages
    # (GRU reset_before both ways, the projected LSTM in reverse)
    fwd = 2 if "before" in name else 1
    bwd = 2 if "before" in name or "proj" in name else 1
    assert sum("_fwd" in c for c in k.calls) == fwd * T
    assert sum("_bwd" in c for c in k.calls) == bwd * T


@needs_cc
def test_only_d_final_or_only_d_out(tmp_path):
    cell = LSTMCell(4)
    p, xw, s0, m, d_out, d_final = problem(cell, 5, 3, 2, "float64", True, seed=3)
    k = CKernels(cell, "float64", tmp_path)
    for dout, dfin in ((None, d_final), (d_out, None), (None, [None, d_final[1]])):
        ref = bptt.forward(cell, p, xw.copy(), s0, m)
        ref_dxw, ref_d0 = bptt.backward(cell, p, ref, dout, dfin)
        tr = fused.run_forward(k.launch, np_matmul, np, cell, p, xw, s0, m)
        dxw, d0 = fused.run_backward(k.launch, np_matmul, np, cell, p, tr, dout, dfin)
        assert rel(dxw, ref_dxw) < 1e-12
        assert all(rel(a, b) < 1e-12 for a, b in zip(d0, ref_d0))


def test_kernel_source_is_one_text_for_both_compilers():
    text = source.module_source("lstm", "float32", "tanh", "sigmoid")
    assert "#ifdef __CUDACC_RTC__" in text and 'extern "C" __global__' in text
    assert "typedef float real;" in text and "tanhf" in text
    assert "lstm_fwd_body" in text and "lstm_bwd_body" in text
    t64 = source.module_source("gru_before", "float64", "softsign", "hard_sigmoid")
    assert "typedef double real;" in t64 and "grub_bwd2" in t64
    with pytest.raises(ValueError, match="activation"):
        source.module_source("lstm", "float32", "swish", "sigmoid")
    with pytest.raises(ValueError, match="kind"):
        source.module_source("conv", "float32", "tanh", "sigmoid")


def test_which_cells_take_the_fused_path():
    assert fused.kind_of(SimpleCell(3)) == "simple"
    assert fused.kind_of(LSTMCell(3, proj_size=2)) == "lstm"
    assert fused.kind_of(GRUCell(3, reset_after=False)) == "gru_before"

    class MyCell(SimpleCell):
        pass

    class Swish(activations.Tanh):
        name = "swish"

    assert fused.kind_of(MyCell(3)) is None  # subclasses run the NumPy loops
    assert fused.kind_of(SimpleCell(3, activation=Swish())) is None
    assert fused.signature(LSTMCell(3, proj_size=2)) != fused.signature(LSTMCell(3))


# ---------------------------------------------------------------------------------------------
# The graph cache, with a fake capture
# ---------------------------------------------------------------------------------------------
class FakeGraph:
    def __init__(self, calls):
        self.calls, self.launches = calls, 0

    def launch(self):
        self.launches += 1
        for fn in self.calls:
            fn()


class FakeCapture:
    """Records the functions ``record`` issues (as a stream capture records launches)."""

    def __init__(self, fail=False, error=RuntimeError):
        self.fail, self.error, self.captures = fail, error, 0
        self.recording: list | None = None

    def capture(self, record):
        self.captures += 1
        self.recording = []
        try:
            record()
            if self.fail:
                raise self.error("operation not permitted when stream is capturing")
            return FakeGraph(self.recording)
        finally:
            self.recording = None


def test_graph_cache_captures_once_per_key_and_replays():
    cap = FakeCapture()
    cache = graphs.GraphCache(cap, max_entries=2)
    counter = {"n": 0}

    def work():
        if cap.recording is not None:
            cap.recording.append(work)
        else:
            counter["n"] += 1

    key_a = graphs.make_key(
        "fwd", ("lstm", "tanh", "sigmoid", 8, 0, False), 10, 4, "float32", False
    )
    entry = cache.entry(key_a, lambda: {"buffers": 1})
    assert entry.buffers == {"buffers": 1} and cache.misses == 1
    assert cache.run(entry, "fwd", work) == "eager"  # first call: run eagerly, then capture
    assert counter["n"] == 1 and cap.captures == 1
    assert cache.run(entry, "fwd", work) == "graph"  # then replays
    assert counter["n"] == 2 and cap.captures == 1 and cache.replays == 1
    assert cache.entry(key_a, lambda: {"other": 2}) is entry  # same key, same entry

    key_b = graphs.make_key(
        "fwd", ("lstm", "tanh", "sigmoid", 8, 0, False), 11, 4, "float32", False
    )
    assert key_b != key_a
    entry_b = cache.entry(key_b, lambda: {})
    assert entry_b is not entry and cache.misses == 2
    cache.run(entry_b, "fwd", work)
    assert cap.captures == 2  # a new shape: captured anew
    cache.entry(graphs.make_key("bwd", (), 1, 1, "float64", True), lambda: {})
    assert len(cache) == 2 and key_a not in cache  # least recently used goes first
    cache.clear()
    assert len(cache) == 0


def test_graph_cache_runs_eagerly_where_capture_fails():
    cap = FakeCapture(fail=True)
    cache = graphs.GraphCache(cap)
    n = {"eager": 0}

    def work():
        if cap.recording is not None:
            cap.recording.append(work)
        else:
            n["eager"] += 1

    entry = cache.entry(("k",), lambda: {})
    assert cache.run(entry, "fwd", work) == "eager"
    assert cache.run(entry, "fwd", work) == "eager"  # never captured again for this key
    assert n["eager"] == 2 and cap.captures == 1 and cache.failures == 1
    assert "not permitted" in cache.last_failure


def test_graph_cache_stops_capturing_when_the_library_refuses_capture():
    # CuPy 14 raises NotImplementedError for any cuBLAS call during capture (seen on an
    # H200): every key would fail alike, so the cache stops trying after the first
    cap = FakeCapture(fail=True, error=NotImplementedError)
    cache = graphs.GraphCache(cap)
    for key in (("a",), ("b",), ("c",)):
        entry = cache.entry(key, lambda: {})
        assert cache.run(entry, "fwd", lambda: None) == "eager"
    assert cap.captures == 1 and cache.failures == 1 and not cache.enabled
    assert "graphs off from here on" in cache.last_failure
    # a driver's refusal of one capture (RuntimeError) leaves the other keys to try
    cap = FakeCapture(fail=True)
    cache = graphs.GraphCache(cap)
    for key in (("a",), ("b",)):
        cache.run(cache.entry(key, lambda: {}), "fwd", lambda: None)
    assert cap.captures == 2 and cache.enabled


def test_graph_cache_disabled_runs_eagerly():
    cap = FakeCapture()
    cache = graphs.GraphCache(cap)
    cache.enabled = False
    entry = cache.entry(("k",), lambda: {})
    assert cache.run(entry, "fwd", lambda: None) == "eager"
    assert cache.run(entry, "fwd", lambda: None) == "eager" and cap.captures == 0


class ReplayCapture:
    """A 'graph' that replays by calling ``record`` again on the same buffers: what a CUDA
    graph does, so the dispatch's copies in and out can be checked on the CPU."""

    def __init__(self):
        self.captures = 0

    def capture(self, record):
        self.captures += 1

        class Graph:
            def launch(self):
                record()

        return Graph()


@needs_cc
@pytest.mark.parametrize("name", ["lstm proj", "gru reset_before", "simple tanh"])
def test_graph_dispatch_copies_in_and_out(tmp_path, name):
    """rnnkit.gpu's graph path (entry buffers, copy in, replay, copy out, a trace put back
    when another forward of the same shape ran in between) with NumPy, the C kernels and a
    replaying fake capture, against bptt."""
    import rnnkit.gpu as gpu

    T, N, D, H = 6, 3, 2, 4
    cell = CELLS[name](H)
    k = CKernels(cell, "float64", tmp_path)
    k.matmul = np_matmul
    cap = ReplayCapture()
    cache = graphs.GraphCache(cap)
    runs = []
    for seed in (0, 1, 2):
        p, xw, s0, m, d_out, d_final = problem(cell, T, N, D, "float64", True, seed=seed)
        tr = gpu._forward(cell, p, xw, s0, m, xp=np, k=k, cache=cache)
        runs.append((p, xw, s0, m, d_out, d_final, tr))
    assert cap.captures == 1 and cache.replays == 2 and len(cache) == 1
    # reverse in another order than forward: each trace must be put back into the buffers
    for p, xw, s0, m, d_out, d_final, tr in (runs[0], runs[2], runs[1], runs[1]):
        ref = bptt.forward(cell, p, xw.copy(), s0, m)
        for a, b in zip(tr.states, ref.states):
            assert rel(a, b) < 1e-12
        ref_dxw, ref_d0 = bptt.backward(cell, p, ref, d_out, d_final)
        ref_grads = cell.recurrent_grads(p, ref, ref_dxw)
        dxw, d0 = gpu._backward(cell, p, tr, d_out, d_final, xp=np, k=k, cache=cache)
        grads = cell.recurrent_grads(p, tr, dxw)
        assert rel(dxw, ref_dxw) < 1e-12
        assert all(rel(a, b) < 1e-12 for a, b in zip(d0, ref_d0))
        assert all(rel(grads[key], ref_grads[key]) < 1e-12 for key in ref_grads)
    assert cap.captures == 2  # the reverse loop: captured once, then replayed


# ---------------------------------------------------------------------------------------------
# On a GPU (run by benchmarks/gpu_session.sh): the layers against NumPy
# ---------------------------------------------------------------------------------------------
def _cuda():
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy is installed but there is no CUDA device")
    except Exception as e:  # CUDARuntimeError without a driver
        pytest.skip(f"CuPy is installed but there is no CUDA device: {e}")
    return cp


def _layer_run(make, x, mask, dy_seed=0, repeat=1):
    import rnnkit
    from rnnkit import backend

    out = None
    for _ in range(repeat):  # repeat: the second call replays the captured graphs
        rnnkit.set_seed(0)
        layer = make()
        xin = backend.asarray(x)
        y = layer.forward(xin, training=True, mask=None if mask is None else backend.asarray(mask))
        ys = y if isinstance(y, list) else [y]
        dys = [
            np.random.default_rng(dy_seed + k).standard_normal(v.shape) for k, v in enumerate(ys)
        ]
        dx = layer.backward(
            [backend.asarray(d) for d in dys] if isinstance(y, list) else backend.asarray(dys[0])
        )
        out = {f"y{k}": backend.to_numpy(v) for k, v in enumerate(ys)}
        out["dx"] = backend.to_numpy(dx)
        out |= {f"grad {k}": backend.to_numpy(g) for k, g in enumerate(layer.grads.values())}
    return out


GPU_CASES = {
    "SimpleRNN": lambda kw: __import__("rnnkit").SimpleRNN(8, **kw),
    "SimpleRNN relu": lambda kw: __import__("rnnkit").SimpleRNN(8, activation="relu", **kw),
    "LSTM": lambda kw: __import__("rnnkit").LSTM(8, **kw),
    "LSTM proj_size": lambda kw: __import__("rnnkit").LSTM(8, proj_size=3, **kw),
    "LSTM return_state": lambda kw: __import__("rnnkit").LSTM(8, return_state=True, **kw),
    "GRU": lambda kw: __import__("rnnkit").GRU(8, **kw),
    "GRU reset_before": lambda kw: __import__("rnnkit").GRU(8, reset_after=False, **kw),
    "LSTM go_backwards": lambda kw: __import__("rnnkit").LSTM(8, go_backwards=True, **kw),
    "GRU go_backwards": lambda kw: __import__("rnnkit").GRU(8, go_backwards=True, **kw),
    "Bidirectional LSTM": lambda kw: __import__("rnnkit").Bidirectional(
        __import__("rnnkit").LSTM(6, **kw)
    ),
    "Bidirectional GRU reset_before": lambda kw: __import__("rnnkit").Bidirectional(
        __import__("rnnkit").GRU(6, reset_after=False, **kw)
    ),
}


@pytest.mark.parametrize("graphs_on", [False, True], ids=["eager", "graphs"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(GPU_CASES))
def test_gpu_layers_match_numpy(name, dtype, graphs_on):
    _cuda()
    import rnnkit.gpu
    from rnnkit import backend

    rng = np.random.default_rng(1)
    N, T, D = 4, 12, 5
    x = rng.standard_normal((N, T, D))
    mask = np.ones((N, T), bool)
    mask[1, 8:] = False
    mask[3, 3:] = False
    kw = dict(return_sequences=True, dtype=dtype)
    tol = TOL[dtype]
    for m in (None, mask):
        backend.set_backend("numpy")
        ref = _layer_run(lambda: GPU_CASES[name](kw), x, m)
        backend.set_backend("cupy")
        rnnkit.gpu.set_graphs(graphs_on)
        before = rnnkit.gpu.stats().copy()
        try:
            got = _layer_run(lambda: GPU_CASES[name](kw), x, m, repeat=3 if graphs_on else 1)
        finally:
            backend.set_backend("numpy")
            rnnkit.gpu.set_graphs(True)
        after = rnnkit.gpu.stats()
        assert after["fused_forward"] > before["fused_forward"], rnnkit.gpu.info()
        assert after["fused_backward"] > before["fused_backward"], rnnkit.gpu.info()
        if graphs_on:
            assert after["graph_replays"] > before["graph_replays"], rnnkit.gpu.info()
        for k in ref:
            assert rel(got[k], ref[k]) < tol, (k, m is not None)


def test_gpu_training_step_stays_on_device():
    cp = _cuda()
    import rnnkit
    import rnnkit.gpu
    from rnnkit import backend

    backend.set_backend("cupy")
    try:
        rnnkit.set_seed(0)
        rng = np.random.default_rng(0)
        x = rng.integers(1, 20, (64, 15))
        y = (x + 1) % 20
        model = rnnkit.Sequential(
            [rnnkit.Embedding(20, 8), rnnkit.LSTM(16, return_sequences=True), rnnkit.Dense(20)]
        )
        model.compile(
            loss="sparse_categorical_crossentropy",
            from_logits=True,
            optimizer=rnnkit.optim.Adam(0.02, clip_global_norm=5.0),
        )
        before = rnnkit.gpu.stats()["fused_backward"]
        h = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        assert rnnkit.gpu.stats()["fused_backward"] > before
        assert h.history["loss"][-1] < h.history["loss"][0]
        assert all(isinstance(v, cp.ndarray) for v in model.layers[1].params.values())
    finally:
        backend.set_backend("numpy")
