"""The calls into the compiled loops: the same two loops as ``rnnkit.bptt``, run in C.

``forward`` builds the very ``Trace`` that ``bptt.forward`` builds and fills it in one call;
``backward`` writes ∂L/∂XW and ∂L/∂(initial states) as ``bptt.backward`` does.  Both return
None whenever the compiled loop does not apply (not built, no BLAS, a cell class or an
activation it does not know, another array backend, a dtype other than float32/float64),
and the layer then runs ``bptt``.  The arrays go to C as objects (buffer protocol), where
their shapes, item sizes and strides are checked against the loop's sizes.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np

from .. import activations, backend
from ..bptt import Trace
from ..cells import GRUCell, LSTMCell, SimpleCell
from . import blas, choose, switch, threads

try:
    from . import _loops  # type: ignore[attr-defined]

    IMPORT_ERROR = None
except ImportError as e:  # not built (no compiler at install time): the NumPy loops run
    import importlib.util

    _loops = None
    IMPORT_ERROR = (
        "no compiled module (no C compiler when rnnkit was installed?)"
        if importlib.util.find_spec(f"{__package__}._loops") is None
        else f"{type(e).__name__}: {e}"
    )

# Activation codes shared with _loops.c; exact classes only (a subclass may change the math).
ACTIVATIONS = {
    activations.Linear: 0,
    activations.Tanh: 1,
    activations.Sigmoid: 2,
    activations.HardSigmoid: 3,
    activations.ReLU: 4,
    activations.Softsign: 5,
}
CELLS = {SimpleCell: "simple", LSTMCell: "lstm", GRUCell: "gru"}

# A product smaller than this (multiply-adds) stays one BLAS call: cutting it into blocks
# on the team costs more than it saves.
MATMUL_MIN_WORK = 1 << 17
# Whether a float32 product of this size class goes through MKL's sgemm (rnnkit[mkl])
# rather than NumPy's BLAS, measured on its first two products: {(M, K, N rounded to powers
# of two, op(A), op(B)): bool} (classes, not exact shapes: inference over inputs of ever
# new lengths measures a handful of classes once, not every length).
# On the 2-core Xeon an autocomplete training step's products took 6.1 ms with MKL against
# 6.8 without (BENCHMARKS.md, "MKL's packed GEMM as a fourth way", with the command).
_matmul_mkl: dict[tuple, bool] = {}
# Inference forms each step's x_t U inside the loop, for these cells, from this many rows
# up (float32, the packed kernel's products); with fewer rows each step would be a
# matrix-vector product that reads all of U again, slower than one product before the loop
# (BENCHMARKS.md, "Inference without a trace").
X_IN_LOOP_CELLS = ("lstm", "gru", "simple")
X_IN_LOOP_MIN_ROWS = 4
# Inference (NumPy) reads x where it lies, the batch-first array the layer was given, and
# writes each h_t straight into the batch-first output (``forward``'s ``x_keep``, ``out``),
# instead of a time-major copy of x before the loop and of the outputs after it, two
# passes on one thread while the other waits (BENCHMARKS.md, "The layer's copies moved
# into the loop"; benchmarks/ab_x_in_loop.py --switch loop_io sets this False for its
# other side).
LOOP_IO = True
# The backward's ∂L/∂a buffer (T, N, G) is kept for the next backward of the same shape and
# dtype (one buffer, ``release_memory`` hands it back).  A fresh one is fresh pages, which
# the kernel zeroes as the loop first writes them: 9 % of an LSTM(512) training iteration
# at N = 128, T = 100 on the 2-core Xeon (perf, BENCHMARKS.md, "The Xeon again, and the
# backward's buffer kept").  Switch: ``KEEP_DXW`` (benchmarks/ab_keep_dxw.py turns it off for
# its other side).
KEEP_DXW = True
_kept_dxw: np.ndarray | None = None
_kept_lock = threading.Lock()


def available() -> bool:
    """Whether the compiled loops are built and found NumPy's BLAS."""
    return _loops is not None and bool(blas.find(_loops, _self_test))


def enabled() -> bool:
    """Whether the layers will use the compiled loops (for the cells and options they cover)."""
    return switch.requested() and available()


def _self_test():
    """One SimpleRNN step with a linear activation through the compiled loop, against NumPy."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for N in (1, 3):
            W = rng.standard_normal((5, 5)).astype(dtype)
            xw = rng.standard_normal((1, N, 5)).astype(dtype)
            h = np.zeros((2, N, 5), dtype)
            h[0] = rng.standard_normal((N, 5))
            _loops.forward(
                "simple",
                {
                    "itemsize": h.itemsize,
                    "T": 1,
                    "N": N,
                    "H": 5,
                    "act": 0,
                    "rec_act": 0,
                    "xw": xw,
                    "W": W,
                    "h": h,
                    "threads": 1,
                },
            )
            if not np.allclose(h[1], h[0] @ W + xw[0], rtol=1e-4, atol=1e-5):
                return False
    return True


def matmul(a, b):
    """``a @ b``; inside ``own_threads``, a large float32/float64 product of two 2-d NumPy
    arrays is cut into blocks on rnnkit's team (the same numbers)."""
    if (
        not threads.inside()
        or threads.team_size() < 2
        or _loops is None
        or type(a) is not np.ndarray
        or type(b) is not np.ndarray
        or a.ndim != 2
        or b.ndim != 2
        or a.dtype != b.dtype
        or a.dtype not in (np.float32, np.float64)
    ):
        return a @ b
    (M, K), (K2, N) = a.shape, b.shape
    if K != K2 or M * N * K < MATMUL_MIN_WORK or not blas.describe():
        return a @ b
    if not blas.describe()["ilp64"] and max(M, N, K) > 2**31 - 1:
        return a @ b
    out = np.empty((M, N), a.dtype)
    try:
        _matmul_on_team(a, b, out, threads.team_size())
    except ValueError:  # a layout BLAS cannot read as it is (strided)
        return a @ b
    return out


def _matmul_on_team(a, b, out, team: int) -> None:
    """``out = a @ b`` on the team, through NumPy's BLAS or, for float32 where MKL is
    installed, whichever of the two its first two products of this size class found faster
    (those products are the results, not extra work beyond the second way's)."""
    if a.dtype != np.float32 or not blas.find_mkl(_loops):
        _loops.matmul(a, b, out, 0.0, team)
        return
    M, K = a.shape
    size_class = tuple(int(d).bit_length() for d in (M, K, b.shape[1]))
    key = (*size_class, a.flags.c_contiguous, b.flags.c_contiguous)
    mkl = _matmul_mkl.get(key)
    if mkl is not None:
        _loops.matmul(a, b, out, 0.0, team, mkl)
        return
    best: dict[bool, float] = {}
    for way in (False, True, False, True):  # alternated; the best of two each
        t0 = time.perf_counter()
        _loops.matmul(a, b, out, 0.0, team, way)
        best[way] = min(best.get(way, float("inf")), time.perf_counter() - t0)
    _matmul_mkl[key] = best[True] < best[False]


# add_rows cuts by columns over the team from this many values: below it the hand-off
# costs more than the second thread's reads.  On the 2-core Xeon, 12,800 x 2,048 float32
# rows took 9.2 ms alone and 4.3 on two threads (`python benchmarks/scatter_rows.py`), while
# 12,800 x 512 rows took 1.3 ms alone and 1.8 on two.
ADD_ROWS_TEAM_MIN = 1 << 24


def add_rows(target, ids, values) -> Any:
    """``target[ids[r]] += values[r]`` for every row r, repeated ids adding up: an
    embedding's gradient (``target`` (V, G), ``ids`` (n,) in [0, V), ``values`` (n, G)).
    One compiled pass, cut by columns over the team, where the loops are on and the arrays
    are C-contiguous NumPy arrays of one float dtype; else ``backend.scatter_add`` (the same
    sums, to rounding).  An id outside [0, V) is refused (ValueError).  Returns ``target``."""
    # ids where the target lives: a GPU target (the cupy backend) keeps them on the device
    ids = np.asarray(ids) if type(target) is np.ndarray else backend.asarray(ids)
    if (
        _loops is None
        or not switch.requested()
        or type(target) is not np.ndarray
        or type(values) is not np.ndarray
        or target.ndim != 2
        or values.ndim != 2
        or ids.ndim != 1
        or values.shape != (ids.size, target.shape[1])
        or target.dtype not in (np.float32, np.float64)
        or values.dtype != target.dtype
        or not target.flags.c_contiguous
        or not target.flags.writeable
        or ids.dtype.kind not in "iu"
    ):
        V = target.shape[0] if getattr(target, "ndim", 0) else 0
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= V):  # np.add.at would wrap
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            raise ValueError(
                f"add_rows: ids must be in [0, {V}) (the rows of the target); got {bad}"
            )
        return backend.scatter_add(target, ids, values)
    _loops.add_rows(
        target,
        np.ascontiguousarray(ids, dtype=np.int64),
        np.ascontiguousarray(values),
        target.shape[1],
        target.itemsize,
        threads.team_size() if threads.inside() and values.size >= ADD_ROWS_TEAM_MIN else 1,
    )
    return target


def adam(p, g, m, v, alpha: float, c1: float, c2: float, eps: float) -> bool:
    """Adam's update of ``p`` (and its moments ``m``, ``v``) in place in one compiled pass:
    m += c1 (g - m); v += c2 (g² - v); p -= alpha m / (√v + eps).  Returns False, having
    done nothing, where it does not apply (the loops switched off or not built, not four
    C-contiguous NumPy arrays of one float dtype and shape): the caller then uses NumPy."""
    if _loops is None or not switch.requested():
        return False
    arrays = (p, g, m, v)
    if any(type(a) is not np.ndarray or not a.flags.c_contiguous for a in arrays):
        return False
    if p.dtype not in (np.float32, np.float64) or any(
        a.dtype != p.dtype or a.shape != p.shape for a in arrays
    ):
        return False
    if not p.flags.writeable or not m.flags.writeable or not v.flags.writeable:
        return False
    _loops.adam(p, g, m, v, float(alpha), float(c1), float(c2), float(eps), p.itemsize)
    return True


def xent_logits(z, labels) -> tuple[np.ndarray, np.ndarray] | None:
    """Softmax cross-entropy of the logits ``z`` (..., K) against integer ``labels`` (...)
    in [0, K), and its gradient: (loss (...), ∂loss/∂z = softmax(z) − onehot(labels)
    (..., K)), in ``z``'s dtype, each row read twice while it is in cache (``xent`` in
    _loops.c).  None, having done nothing, where it does not apply (the loops switched off
    or not built, ``z`` not a float32 NumPy array): the caller then uses NumPy."""
    if _loops is None or not switch.requested():
        return None
    if type(z) is not np.ndarray or z.dtype != np.float32 or z.ndim < 1 or z.shape[-1] < 1:
        return None
    z = np.ascontiguousarray(z)
    ids = np.ascontiguousarray(labels, dtype=np.int64)
    if ids.shape != z.shape[:-1]:
        return None
    d = np.empty_like(z)
    loss = np.empty(z.shape[:-1], dtype=z.dtype)
    _loops.xent(z, ids, d, loss, z.shape[-1])
    return loss, d


def _c(a, dtype):
    """``a`` as a C-contiguous array of ``dtype`` (the same array when it already is)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _rows(x, dtype):
    """x (T, N, D) as the loop reads it: itself where its rows lie as BLAS reads a matrix
    (unit stride along D, samples at least D items apart and in order, as in a transposed
    batch-first array), else a C-ordered copy."""
    s = x.strides
    if (
        x.dtype == dtype
        and s[2] == x.itemsize
        and (x.shape[1] == 1 or s[1] >= x.shape[2] * x.itemsize)
        and s[0] % x.itemsize == 0
    ):
        return x
    return _c(x, dtype)


class Untraced(Trace):
    """What an inference forward without a trace keeps (``forward(..., trace=False)``):
    one step's slot for every per-step cache (gates, σ(c_t), ...), two for LSTM's c, and
    for h every step when the output sequence is wanted (``keep_outputs``), else two.
    ``final_states()`` are the states after the last step.  A backward cannot start from
    it: the layer runs the forward again with a trace when one is asked for."""

    def __init__(self, T, N, dtype, state_sizes, mask, rec_mask, keep_outputs):
        self.xp = np
        self.T, self.N, self.dtype = T, N, dtype
        self.h_ring = not keep_outputs
        self.slots = [T + 1 if keep_outputs else 2] + [2] * (len(state_sizes) - 1)
        self.states = [
            np.empty((k, N, size), dtype=dtype) for k, size in zip(self.slots, state_sizes)
        ]
        self.cache = {}
        self.mask = mask
        self.rec_mask = rec_mask
        self.full_step = []  # (masks are handled in C)
        self.out = None  # (T, N, H): where the loop wrote every h_t, when it was given one

    def buffer(self, name, width):
        buf = np.empty((1, self.N, width), dtype=self.dtype)  # one step's slot
        self.cache[name] = buf
        return buf

    def final_states(self):
        return [
            s[self.T if k == self.T + 1 else self.T % 2] for s, k in zip(self.states, self.slots)
        ]


def _kind(cell, params, dtype, N):
    """'simple', 'lstm' or 'gru' when the compiled loop applies to this cell, its parameters,
    dtype and batch size; else None."""
    if not switch.requested() or _loops is None:
        return None
    kind = CELLS.get(type(cell))
    dtype = np.dtype(dtype)
    if kind is None or dtype not in (np.float32, np.float64) or not available():
        return None
    if (
        ACTIVATIONS.get(type(cell.activation)) is None
        or ACTIVATIONS.get(type(cell.recurrent_activation)) is None
    ):
        return None
    if not blas.describe()["ilp64"] and max(N, cell.width) > 2**31 - 1:
        return None
    arrays = [params[k] for k in ("U", "W", "P", "b", "b_rec") if k in params]
    if any(type(p) is not np.ndarray or p.dtype != dtype for p in arrays):
        return None
    return kind


def _args(kind, cell, params, trace):
    """The arguments every loop shares: sizes, codes and the trace's arrays."""
    dtype = trace.dtype
    args = {
        "itemsize": np.dtype(dtype).itemsize,
        "T": trace.T,
        "N": trace.N,
        "H": cell.units,
        "act": ACTIVATIONS[type(cell.activation)],
        "rec_act": ACTIVATIONS[type(cell.recurrent_activation)],
        "W": _c(params["W"], dtype),
        "h": trace.states[0],
        "threads": threads.team_size(),
        "own_threads": int(threads.inside()),
    }
    if kind == "lstm":
        args.update(c=trace.states[1], gates=trace.cache["gates"], act_c=trace.cache["act_c"])
        if cell.proj_size:
            args.update(
                proj_size=cell.proj_size,
                P=_c(params["P"], dtype),
                m=trace.cache["m"],
                dh_cache=trace.cache["dh"],
            )
    elif kind == "gru":
        args.update(gates=trace.cache["gates"], reset_after=int(cell.reset_after))
        if cell.reset_after:
            args.update(hn=trace.cache["hn"], dhn=trace.cache["dhn"])
            if cell.has_recurrent_bias:
                args["b_rec"] = _c(params["b_rec"], dtype)
        else:
            args["rh"] = trace.cache["rh"]
    if trace.rec_mask is not None:
        args["rec_mask"] = _c(
            np.broadcast_to(trace.rec_mask, (trace.N, cell.recurrent_size)), dtype
        )
    if trace.mask is not None:
        args["mask"] = _c(trace.mask.reshape(trace.T, trace.N), np.bool_)
    return args


def _choose_products(kind, cell, args, backward):
    """How this loop computes its recurrent products (``choose.py``): the code for C."""
    key = choose.Key(
        kind,
        bool(kind == "gru" and cell.reset_after),
        backward,
        args["N"],
        args["H"],
        args.get("D", 0),
        args.get("proj_size", 0),
        args["itemsize"],
        args["threads"],
        bool(args["own_threads"]),
    )
    return choose.code_for(choose.choose(key, _loops), args["T"])


def forward(
    cell,
    params,
    initial_states,
    mask=None,
    rec_mask=None,
    *,
    xw=None,
    x=None,
    bias=None,
    overwrite_xw=False,
    trace=True,
    keep_outputs=True,
    x_keep=None,
    out=None,
):
    """The compiled ``bptt.forward``: a filled Trace, or None when not handled.

    xw (T, N, G): the input projections x_t U, without the bias ``bias`` (G,) when that is
    given (added inside the loop while each step's pre-activations are in cache);
    ``overwrite_xw``: the caller no longer needs ``xw``, which then becomes the trace's gate
    cache (one buffer less).  Or, in float32 with ``X_IN_LOOP_MIN_ROWS`` rows or more
    (``X_IN_LOOP_CELLS``): x (T, N, D) instead of xw, and each step's x_t U is computed inside the loop
    (U = params["U"]), straight into that step's gates.

    ``trace=False`` (inference that no backward follows): an ``Untraced`` instead of a
    Trace, keeping no per-step caches, and h of every step only with ``keep_outputs``.

    With x: ``x`` may be a view (a batch-first array transposed: each sample's rows D
    items or more apart), read where it lies; ``x_keep`` (T, N, D), C order: x copied into
    it as the loop reads each x_t (the layer keeps it for a later backward).  ``out``
    (T, N, H), with ``trace=False``: h_t written to out[t] at each step (a view, as of the
    batch-first output), instead of keeping every h_t in the trace.  When the loop does not
    run (None), neither is touched."""
    src = x if xw is None else xw
    if (
        x is not None
        and xw is None
        and (
            CELLS.get(type(cell)) not in X_IN_LOOP_CELLS
            or src.shape[1] < X_IN_LOOP_MIN_ROWS
            or src.dtype != np.float32
        )
    ):
        return None
    if type(src) is not np.ndarray:
        return None
    T, N = src.shape[:2]
    kind = _kind(cell, params, src.dtype, N)
    if kind is None:
        return None
    if trace:
        trace, out = Trace(T, N, src.dtype, cell.state_sizes, mask, rec_mask), None
    else:
        keep_outputs = keep_outputs and out is None
        trace = Untraced(T, N, src.dtype, cell.state_sizes, mask, rec_mask, keep_outputs)
    cell.allocate(trace)
    for s, s0 in zip(trace.states, initial_states):
        s[0] = s0
    args = _args(kind, cell, params, trace)
    if isinstance(trace, Untraced):
        args.update(no_trace=1, h_ring=int(trace.h_ring))
    if bias is not None:
        args["b_in"] = _c(bias, trace.dtype)
    if out is not None:
        args["out"] = trace.out = out
    if xw is None:
        U = params["U"]
        args.update(x=_rows(x, trace.dtype), U=_c(U, trace.dtype), D=U.shape[0])
        if x_keep is not None:
            args["x_keep"] = x_keep
    else:
        if xw.dtype != trace.dtype or xw.strides[-1] != xw.itemsize:
            xw = _c(xw, trace.dtype)
        args["xw"] = xw
        gates = trace.cache.get("gates")
        if (
            overwrite_xw
            and isinstance(trace, Trace)
            and not isinstance(trace, Untraced)
            and gates is not None
            and xw.shape == gates.shape
            and xw.flags.c_contiguous
            and xw.flags.writeable
        ):
            trace.cache["gates"] = xw  # the gates are computed in place in xw
            args["gates"] = xw
    args["products"] = _choose_products(kind, cell, args, False)
    _loops.forward(kind, args)
    return trace


def _dxw_buffer(shape, dtype) -> np.ndarray:
    """An uninitialized (T, N, G) array for a backward's ∂L/∂a: the kept one when it has
    this shape and dtype and nothing else refers to it any more (a caller that kept the
    last backward's array, or a view of it, gets a new one), else a new one, then kept."""
    global _kept_dxw
    if not KEEP_DXW:
        return np.empty(shape, dtype=dtype)
    with _kept_lock:
        buf = _kept_dxw
        # references: _kept_dxw, buf and getrefcount's own argument
        if buf is None or buf.shape != shape or buf.dtype != dtype or sys.getrefcount(buf) > 3:
            buf = _kept_dxw = np.empty(shape, dtype=dtype)
        return buf


def release_kept() -> int:
    """Drop the kept backward buffer; returns its bytes (0 when none was kept)."""
    global _kept_dxw
    with _kept_lock:
        n, _kept_dxw = (0 if _kept_dxw is None else _kept_dxw.nbytes), None
    return n


def backward(cell, params, trace, d_outputs=None, d_final=None):
    """The compiled ``bptt.backward``: (dxw, d_initial), or None when not handled."""
    kind = _kind(cell, params, trace.dtype, trace.N) if trace.xp is np else None
    if kind is None or isinstance(trace, Untraced):
        return None
    args = _args(kind, cell, params, trace)
    ds = [np.zeros((trace.N, s.shape[-1]), dtype=trace.dtype) for s in trace.states]
    if d_final is not None:
        for d, g in zip(ds, d_final):
            if g is not None:
                d += g
    dxw = _dxw_buffer((trace.T, trace.N, cell.width), trace.dtype)
    if d_outputs is not None:
        if d_outputs.dtype != trace.dtype or d_outputs.strides[-1] != d_outputs.itemsize:
            d_outputs = _c(d_outputs, trace.dtype)
        args["dout"] = d_outputs
    args.update(dxw=dxw, dh=ds[0])
    if kind == "lstm":
        args["dc"] = ds[1]
    args["products"] = _choose_products(kind, cell, args, True)
    _loops.backward(kind, args)
    return dxw, ds
