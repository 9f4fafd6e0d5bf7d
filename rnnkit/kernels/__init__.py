"""Compiled time loops: an optional accelerator of ``rnnkit.bptt``.

``rnnkit/cells/`` holds the reference implementation of every recurrence, one step at a
time in NumPy.  ``rnnkit.kernels._loops`` (C, built at install time when a compiler is
there; see ``setup.py``) runs the *whole* time loop of SimpleRNN, LSTM and GRU, forward
and reverse, without returning to Python between steps: each step's recurrent product is
one call of the BLAS that NumPy itself uses (found in the running process, no BLAS is
needed to build), and the gate arithmetic is fused into one pass per sample.  It fills the
very buffers of the ``Trace`` that the NumPy loop fills, so everything after the loop
(weight gradients, outputs, diagnostics) is unchanged, and it gives the same numbers to
rounding (in float64 the two agree to ~1e-13; in float32 its tanh differs from NumPy's by a
few units in the last place).

``bptt.forward``/``bptt.backward`` ask :func:`forward`/:func:`backward` first; these return
False whenever the compiled loop does not apply (not built, no BLAS found, a cell class or
activation it does not know, an array backend other than NumPy, a dtype other than
float32/float64, ...), and the NumPy loop runs.

Selecting the NumPy loop:

    RNNKIT_KERNELS=numpy python train.py        # environment: numpy (or 0, off) / auto

    import rnnkit.kernels
    rnnkit.kernels.set_enabled(False)           # for the rest of the process
    with rnnkit.kernels.numpy_loops():          # for a block
        ...

``rnnkit.kernels.info()`` says whether the compiled loops are in use, and why not.

Threads: while a layer runs forward or backward (``own_threads``), NumPy's BLAS is held at
one thread and rnnkit's own team of threads, as many as the BLAS had (or
``RNNKIT_THREADS``), does the parallel work: a batch is cut into chunks that run the whole
loop side by side, and the large products of the layers are cut into blocks.  The BLAS's
setting is restored when the layer returns.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import os
import threading

import numpy as np

from .. import activations
from ..cells import GRUCell, LSTMCell, SimpleCell

try:
    from . import _loops
    _IMPORT_ERROR = None
except ImportError as e:  # not built (no compiler at install time): the NumPy loops run
    _loops = None
    _IMPORT_ERROR = ("no compiled module (no C compiler when rnnkit was installed?)"
                     if importlib.util.find_spec(f"{__name__}._loops") is None
                     else f"{type(e).__name__}: {e}")

ENV_VAR = "RNNKIT_KERNELS"
_OFF = ("0", "off", "false", "no", "numpy", "none")

# Activation codes shared with _loops.c; exact classes only (a subclass may change the math).
_ACTIVATIONS = {activations.Linear: 0, activations.Tanh: 1, activations.Sigmoid: 2,
                activations.HardSigmoid: 3, activations.ReLU: 4, activations.Softsign: 5}
_CELLS = {SimpleCell: "simple", LSTMCell: "lstm", GRUCell: "gru"}

_enabled = os.environ.get(ENV_VAR, "auto").strip().lower() not in _OFF
_blas = None          # None: not looked for yet; False: not found; else a dict


# -- switching ------------------------------------------------------------------------------
def set_enabled(flag: bool) -> None:
    """Use the compiled loops when they are available (True, the default) or always the
    NumPy loops (False)."""
    global _enabled
    _enabled = bool(flag)


@contextlib.contextmanager
def numpy_loops():
    """Run the NumPy reference loops inside the block."""
    global _enabled
    before = _enabled
    _enabled = False
    try:
        yield
    finally:
        _enabled = before


def available() -> bool:
    """Whether the compiled loops are built and found NumPy's BLAS."""
    return _loops is not None and bool(_find_blas())


def enabled() -> bool:
    """Whether ``bptt`` will use the compiled loops (for the cells and options they cover)."""
    return _enabled and available()


def info() -> dict:
    """What is in use, and why the compiled loops are not, if they are not."""
    out = {"enabled": enabled(), "requested": _enabled, "built": _loops is not None}
    if _loops is None:
        out["reason"] = f"rnnkit.kernels._loops is not available: {_IMPORT_ERROR}"
    else:
        blas = _find_blas()
        if blas:
            out["blas"] = {k: blas[k] for k in ("library", "symbols", "ilp64")}
            out["threads"] = _threads()
        else:
            out["reason"] = "NumPy's BLAS (cblas_sgemm/dgemm) was not found in this process"
    if not _enabled:
        out["reason"] = f"switched off ({ENV_VAR}={os.environ.get(ENV_VAR)!r} or set_enabled(False))"
    return out


# -- NumPy's BLAS -----------------------------------------------------------------------------
# CBLAS symbol sets, most specific first: NumPy's wheels bundle scipy-openblas, ILP64
# (64-bit integers) with the prefix scipy_ and the suffix 64_.
_SYMBOL_SETS = (
    (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", "scipy_cblas_sgemv64_", "scipy_cblas_dgemv64_"), True),
    (("cblas_sgemm64_", "cblas_dgemm64_", "cblas_sgemv64_", "cblas_dgemv64_"), True),
    (("scipy_cblas_sgemm", "scipy_cblas_dgemm", "scipy_cblas_sgemv", "scipy_cblas_dgemv"), False),
    (("cblas_sgemm", "cblas_dgemm", "cblas_sgemv", "cblas_dgemv"), False),
)


def _numpy_blas_ilp64():
    """True/False when NumPy's build configuration says whether its BLAS is ILP64, else None."""
    try:
        cfg = np.__config__.CONFIG["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):
        return None
    text = " ".join(str(v) for v in cfg.values()).lower()
    if "use64bitint" in text or "ilp64" in text or "openblas64" in text:
        return True
    return None


def _candidate_libraries():
    """Shared libraries that may hold NumPy's BLAS: the ones bundled with NumPy first,
    then any BLAS loaded in this process (NumPy is loaded, so its BLAS is too)."""
    here = os.path.dirname(np.__file__)
    found = []
    for pattern in ("numpy.libs/*blas*", ".dylibs/*blas*", "numpy.libs/*mkl*"):
        found += sorted(glob.glob(os.path.join(here, os.pardir, pattern)))
        found += sorted(glob.glob(os.path.join(here, pattern)))
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if line.rstrip().count(" ") >= 5 else ""
                name = os.path.basename(path).lower()
                if path.startswith("/") and ("blas" in name or "mkl_rt" in name) and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def _find_blas():
    global _blas
    if _blas is not None:
        return _blas
    _blas = False
    if _loops is None:
        return _blas
    want_ilp64 = _numpy_blas_ilp64()
    for path in _candidate_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for names, ilp64 in _SYMBOL_SETS:
            if want_ilp64 is True and not ilp64:
                continue
            try:
                ptrs = [ctypes.cast(getattr(lib, n), ctypes.c_void_p).value for n in names]
            except AttributeError:
                continue
            _loops.set_blas(*ptrs, ilp64)
            if _self_test():
                _blas = {"library": os.path.normpath(path), "symbols": names[0], "ilp64": ilp64,
                         "get_threads": _thread_count_function(lib),
                         "set_threads": _thread_setting_function(lib)}
                return _blas
    _loops.set_blas(0, 0, 0, 0, False)
    return _blas


def _thread_count_function(lib):
    """The BLAS's own "how many threads" (which threadpoolctl and OPENBLAS_NUM_THREADS
    set), or None."""
    for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                 "openblas_get_num_threads64_", "openblas_get_num_threads", "MKL_Get_Max_Threads"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype, fn.argtypes = ctypes.c_int, []
            return fn
    return None


def _thread_setting_function(lib):
    """The BLAS's "use n threads", or None."""
    for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype, fn.argtypes = None, [ctypes.c_int]
            return fn
    return None


def _blas_threads():
    """How many threads NumPy's BLAS is set to use (1 when that cannot be asked)."""
    fn = _blas.get("get_threads") if _blas else None
    try:
        return max(1, int(fn())) if fn is not None else 1
    except (OSError, ValueError):
        return 1


def _threads():
    """Threads the compiled loops may use: inside ``own_threads``, the team's size; else
    ``RNNKIT_THREADS`` when set, else as many as NumPy's BLAS is set to."""
    if _own["depth"]:
        return _own["threads"]
    env = os.environ.get("RNNKIT_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return _blas_threads()


# -- threads ----------------------------------------------------------------------------------
# OpenBLAS's pool threads keep spinning (sched_yield) for about 0.1 s after every call that
# used them.  A training step alternates large products (input projections, weight
# gradients, the output layer) with the time loops, whose own team of threads then shares
# the cores with those spinning threads: on 2 cores the loops ran 1.5x slower, and with one
# other busy process on the machine a training step ran 10-17x slower.  Inside
# ``own_threads`` NumPy's BLAS is held at one thread (its pool never wakes), and rnnkit's
# team does all the parallel work: the loops cut the batch into chunks, and the large
# products of the layers (``matmul``, through ``rnnkit.backend.matmul``) are cut into one
# block per thread.
_own = {"depth": 0, "threads": 1, "restore": None}
_own_lock = threading.Lock()
MATMUL_MIN_WORK = 1 << 17       # multiply-adds below which a product stays one BLAS call


def _blas_set_threads(n):
    fn = _blas.get("set_threads") if _blas else None
    if fn is not None:
        fn(int(n))


@contextlib.contextmanager
def own_threads():
    """Inside the block, NumPy's BLAS runs on one thread and rnnkit's own team (as many
    threads as the BLAS had, or ``RNNKIT_THREADS``) does the parallel work of the layers.
    Re-entrant; the BLAS's setting is restored when the outermost block ends.  Does nothing
    when the compiled loops are off or the BLAS's threads cannot be set."""
    if not (_enabled and available() and _blas.get("set_threads")):
        yield
        return
    with _own_lock:
        if _own["depth"] == 0:
            before = _blas_threads()
            _own["restore"] = before
            env = os.environ.get("RNNKIT_THREADS", "").strip()
            _own["threads"] = int(env) if env.isdigit() and int(env) > 0 else before
            if before > 1:
                _blas_set_threads(1)
        _own["depth"] += 1
    try:
        yield
    finally:
        with _own_lock:
            _own["depth"] -= 1
            if _own["depth"] == 0 and _own["restore"] and _own["restore"] > 1:
                _blas_set_threads(_own["restore"])


def _operand(a):
    """(transposed, leading dimension) of a 2-d array as BLAS reads it, or None."""
    isz = a.itemsize
    r, c = a.strides
    if c == isz and r % isz == 0 and r // isz >= max(1, a.shape[1]):
        return 0, r // isz
    if r == isz and c % isz == 0 and c // isz >= max(1, a.shape[0]):
        return 1, c // isz                      # the transpose of a C-order array
    return None


def matmul(a, b):
    """``a @ b`` of two 2-d float32/float64 NumPy arrays cut into blocks on rnnkit's team,
    inside ``own_threads`` and for products large enough; None when not handled (the caller
    uses ``a @ b``)."""
    if not _own["depth"] or _own["threads"] < 2 or _loops is None:
        return None
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2:
        return None
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        return None
    (M, K), (K2, N) = a.shape, b.shape
    if K != K2 or M * N * K < MATMUL_MIN_WORK or M == 0 or N == 0:
        return None
    oa, ob = _operand(a), _operand(b)
    if oa is None or ob is None:
        return None
    if not _blas["ilp64"] and max(M, N, K, oa[1], ob[1]) > 2**31 - 1:
        return None
    out = np.empty((M, N), a.dtype)
    _loops.matmul(a.itemsize, oa[0], ob[0], M, N, K, _addr(a), oa[1], _addr(b), ob[1],
                  _addr(out), N, 0.0, _own["threads"])
    return out


def _self_test():
    """One SimpleRNN step with a linear activation through the compiled loop, against NumPy:
    catches a BLAS reached with the wrong integer size before anything relies on it."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for N in (1, 3):
            W = rng.standard_normal((5, 5)).astype(dtype)
            xw = rng.standard_normal((1, N, 5)).astype(dtype)
            h = np.zeros((2, N, 5), dtype)
            h[0] = rng.standard_normal((N, 5))
            _loops.forward("simple", {"itemsize": h.itemsize, "T": 1, "N": N, "H": 5, "act": 0,
                                      "rec_act": 0, "xw": _addr(xw), "xw_st": N * 5, "xw_sn": 5,
                                      "W": _addr(W), "h": _addr(h)})
            if not np.allclose(h[1], h[0] @ W + xw[0], rtol=1e-4, atol=1e-5):
                return False
    return True


# -- the loops --------------------------------------------------------------------------------
def _addr(a):
    return a.__array_interface__["data"][0]


def _plain(a, dtype):
    """``a`` as a C-contiguous array of ``dtype`` (the same array when it already is)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _rows(a, dtype):
    """``a`` (3-d) with unit stride along the last axis, and its (t, n) strides in elements."""
    if a.dtype != dtype or a.strides[2] != a.itemsize or any(s % a.itemsize for s in a.strides):
        a = np.ascontiguousarray(a, dtype=dtype)
    return a, a.strides[0] // a.itemsize, a.strides[1] // a.itemsize


def _setup(cell, params, trace):
    """The arguments every loop shares, or None when the compiled loop does not apply."""
    if not _enabled or _loops is None:
        return None
    kind = _CELLS.get(type(cell))
    if kind is None or trace.xp is not np or not _find_blas():
        return None
    dtype = np.dtype(trace.dtype)
    if dtype not in (np.float32, np.float64):
        return None
    act = _ACTIVATIONS.get(type(cell.activation))
    rec_act = _ACTIVATIONS.get(type(cell.recurrent_activation))
    if act is None or rec_act is None:
        return None
    if not _blas["ilp64"] and max(trace.N, cell.width) > 2**31 - 1:   # 32-bit BLAS integers
        return None
    W = params["W"]
    if not isinstance(W, np.ndarray) or W.dtype != dtype or not W.flags.c_contiguous:
        return None
    keep = [W]
    args = {"itemsize": dtype.itemsize, "T": trace.T, "N": trace.N, "H": cell.units,
            "act": act, "rec_act": rec_act, "W": _addr(W), "h": _addr(trace.states[0]),
            "threads": _threads(), "own_threads": int(bool(_own["depth"]))}
    if kind == "lstm":
        args["c"] = _addr(trace.states[1])
        args["gates"] = _addr(trace.cache["gates"])
        args["act_c"] = _addr(trace.cache["act_c"])
        if cell.proj_size:
            Pm = params["P"]
            if not isinstance(Pm, np.ndarray) or Pm.dtype != dtype or not Pm.flags.c_contiguous:
                return None
            keep.append(Pm)
            args.update(P=cell.proj_size, Pm=_addr(Pm), m=_addr(trace.cache["m"]),
                        dh_cache=_addr(trace.cache["dh"]))
    elif kind == "gru":
        args["gates"] = _addr(trace.cache["gates"])
        args["reset_after"] = int(cell.reset_after)
        if cell.reset_after:
            args["hn"] = _addr(trace.cache["hn"])
            args["dhn"] = _addr(trace.cache["dhn"])
            if cell.has_recurrent_bias:
                b_rec = params["b_rec"]
                if not isinstance(b_rec, np.ndarray) or b_rec.dtype != dtype or not b_rec.flags.c_contiguous:
                    return None
                keep.append(b_rec)
                args["b_rec"] = _addr(b_rec)
        else:
            args["rh"] = _addr(trace.cache["rh"])
    if trace.rec_mask is not None:
        rm = _plain(trace.rec_mask, dtype)
        if rm.shape != (trace.N, cell.recurrent_size):
            rm = _plain(np.broadcast_to(trace.rec_mask, (trace.N, cell.recurrent_size)), dtype)
        keep.append(rm)
        args["rec_mask"] = _addr(rm)
    if trace.mask is not None:
        m = np.ascontiguousarray(trace.mask.reshape(trace.T, trace.N), dtype=np.bool_).view(np.uint8)
        keep.append(m)
        args["mask"] = _addr(m)
    return kind, args, keep


def forward(cell, params, trace, xw, overwrite_xw=False, bias=None, x=None) -> bool:
    """Run the forward loop of ``bptt.forward`` compiled: fill ``trace`` (whose initial
    states are set) from the input projections ``xw`` (T, N, G), plus ``bias`` (G,) if
    given, added inside the loop.  With ``overwrite_xw`` the gates are computed in place
    in ``xw``, which becomes the trace's gate cache (no copy, one buffer less).
    ``x`` (T, N, D) instead of ``xw`` (LSTM only): each step's x_t U is computed inside the
    loop, straight into that step's gates (U = params["U"]).  Taken in float32 with at least
    4 rows (the packed kernel's products); with fewer rows each step's x_t U would be a
    matrix-vector product that reads all of U again, slower than one product before the
    loop.  False: not handled."""
    if x is not None and (_CELLS.get(type(cell)) != "lstm" or trace.N < 4
                          or np.dtype(trace.dtype) != np.float32):
        return False                       # before _setup: the caller falls back at once
    setup = _setup(cell, params, trace)
    if setup is None:
        return False
    kind, args, keep = setup
    if bias is not None:
        bias = _plain(bias, trace.dtype)
        if bias.shape != (cell.width,):
            return False
        keep.append(bias)
        args["b_in"] = _addr(bias)
    if x is not None:
        U = params["U"]
        if (not isinstance(x, np.ndarray) or not isinstance(U, np.ndarray)
                or x.dtype != trace.dtype or U.dtype != trace.dtype or not x.flags.c_contiguous
                or not U.flags.c_contiguous or U.ndim != 2 or U.shape[0] == 0
                or x.shape != (trace.T, trace.N, U.shape[0]) or U.shape[1] != cell.width):
            return False
        keep += [x, U]
        args.update(x=_addr(x), U=_addr(U), D=U.shape[0])
        _loops.forward(kind, args)
        return True
    xw, st, sn = _rows(xw, trace.dtype)
    keep.append(xw)
    args.update(xw=_addr(xw), xw_st=st, xw_sn=sn)
    gates = trace.cache.get("gates")
    if (overwrite_xw and gates is not None and xw.shape == gates.shape
            and xw.flags.c_contiguous and xw.flags.writeable):
        trace.cache["gates"] = xw
        args["gates"] = args["xw"]
    _loops.forward(kind, args)
    return True


def backward(cell, params, trace, d_outputs, ds, dxw) -> bool:
    """Run the reverse loop of ``bptt.backward`` compiled: write ∂L/∂XW into ``dxw``
    (T, N, G) and turn ``ds`` (∂L/∂final states, updated in place) into ∂L/∂initial
    states.  False: not handled."""
    setup = _setup(cell, params, trace)
    if setup is None:
        return False
    kind, args, keep = setup
    if not dxw.flags.c_contiguous or any(not d.flags.c_contiguous or d.dtype != trace.dtype for d in ds):
        return False
    if d_outputs is not None:
        d_outputs, st, sn = _rows(d_outputs, trace.dtype)
        keep.append(d_outputs)
        args.update(dout=_addr(d_outputs), dout_st=st, dout_sn=sn)
    args.update(dxw=_addr(dxw), dh=_addr(ds[0]))
    if kind == "lstm":
        args["dc"] = _addr(ds[1])
    _loops.backward(kind, args)
    return True


from .. import backend as _backend  # noqa: E402  (the hook is set once the module is complete)

_backend._matmul_hook = matmul
