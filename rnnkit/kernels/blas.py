"""NumPy's BLAS, found through ``threadpoolctl`` and handed to the compiled loops.

The loops call the BLAS that NumPy itself uses (no BLAS is needed to build them).
``threadpoolctl`` lists the BLAS libraries loaded in the process with their file paths;
the one inside NumPy's own directory comes first.  Its CBLAS functions are looked up by
the symbol names that NumPy's wheels (scipy-openblas, ILP64: ``scipy_cblas_sgemm64_``)
and other builds use, and a one-step self-test catches a BLAS reached with the wrong
integer size before anything relies on it.  The same ``threadpoolctl`` controller reads
and sets the BLAS's thread count (``threads``, ``set_threads``).

MKL's packed float32 GEMM is an optional extra (``pip install rnnkit[mkl]``, Intel's ``mkl``
wheel): where it is installed, ``find_mkl`` loads its ``libmkl_rt`` (the 32-bit-integer
interface, the sequential threading layer: rnnkit's own team does the parallel work),
self-tests it, and hands ``cblas_sgemm_pack_get_size``/``_pack``/``_compute`` and
``cblas_sgemm`` to ``loops.set_mkl``: ``choose.py`` then measures it as one more way of the
recurrent products, and ``loops.matmul`` as one more way of the large float32 products.
``RNNKIT_MKL=0`` leaves it out; ``RNNKIT_MKL=/path/libmkl_rt.so.N`` names the library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import importlib.util
import os
import sys

import numpy as np

# CBLAS symbol sets, most specific first, with whether their integers are 64-bit (ILP64).
_SYMBOL_SETS = (
    (
        (
            "scipy_cblas_sgemm64_",
            "scipy_cblas_dgemm64_",
            "scipy_cblas_sgemv64_",
            "scipy_cblas_dgemv64_",
        ),
        True,
    ),
    (("cblas_sgemm64_", "cblas_dgemm64_", "cblas_sgemv64_", "cblas_dgemv64_"), True),
    (("scipy_cblas_sgemm", "scipy_cblas_dgemm", "scipy_cblas_sgemv", "scipy_cblas_dgemv"), False),
    (("cblas_sgemm", "cblas_dgemm", "cblas_sgemv", "cblas_dgemv"), False),
)

_found: dict | None = None  # None: not looked for yet; {} : not found; else what was found
_why_not = ""


def _numpy_blas_ilp64():
    """True when NumPy's build configuration says its BLAS is ILP64, else None."""
    try:
        cfg = np.__config__.CONFIG["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):
        return None
    text = " ".join(str(v) for v in cfg.values()).lower()
    return True if ("use64bitint" in text or "ilp64" in text or "openblas64" in text) else None


def _controllers():
    """threadpoolctl's controllers of the BLAS libraries loaded here, NumPy's own first."""
    from threadpoolctl import ThreadpoolController

    numpy_dir = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return sorted(blas, key=lambda lc: not os.path.abspath(lc.filepath).startswith(numpy_dir))


def find(loops, self_test) -> dict:
    """Look for NumPy's BLAS once; hand its functions to ``loops.set_blas``.  Returns what
    was found ({} when nothing usable was)."""
    global _found, _why_not
    if _found is not None:
        return _found
    _found = {}
    try:
        controllers = _controllers()
    except ImportError:
        _why_not = "threadpoolctl is not installed (pip install threadpoolctl)"
        return _found
    if not controllers:
        _why_not = "threadpoolctl found no BLAS library loaded with NumPy"
        return _found
    want_ilp64 = _numpy_blas_ilp64()
    for lc in controllers:
        try:
            lib = ctypes.CDLL(lc.filepath)
        except OSError:
            continue
        for names, ilp64 in _SYMBOL_SETS:
            if want_ilp64 and not ilp64:
                continue
            try:
                functions = [getattr(lib, n) for n in names]
            except AttributeError:
                continue
            loops.set_blas(*[ctypes.cast(f, ctypes.c_void_p).value for f in functions], ilp64)
            if self_test():
                info = lc.info()
                _found = {
                    "library": os.path.normpath(lc.filepath),
                    "symbols": names[0],
                    "ilp64": ilp64,
                    "internal_api": info.get("internal_api"),
                    "version": info.get("version"),
                    "architecture": info.get("architecture"),
                    "controller": lc,
                }
                return _found
    loops.set_blas(0, 0, 0, 0, False)
    _why_not = "no CBLAS sgemm/dgemm that passes the self-test in " + ", ".join(
        lc.filepath for lc in controllers
    )
    return _found


def why_not() -> str:
    return _why_not


def describe() -> dict:
    """What a user's install runs: the library, its version and kernel architecture."""
    return {k: v for k, v in (_found or {}).items() if k != "controller"}


def threads() -> int:
    """How many threads NumPy's BLAS is set to use (1 when it cannot be asked)."""
    lc = (_found or {}).get("controller")
    try:
        return max(1, int(lc.get_num_threads())) if lc is not None else 1
    except (OSError, ValueError, TypeError):
        return 1


def set_threads(n: int) -> bool:
    """Set NumPy's BLAS to ``n`` threads; False when it cannot be set."""
    lc = (_found or {}).get("controller")
    if lc is None:
        return False
    lc.set_num_threads(int(n))
    return True


# -- MKL's packed GEMM (optional) ---------------------------------------------------------------
MKL_ENV_VAR = "RNNKIT_MKL"
_MKL_LP64, _MKL_SEQUENTIAL = 0, 1  # MKL_INTERFACE_LP64, MKL_THREADING_SEQUENTIAL
_CBLAS_ROW_MAJOR, _CBLAS_NO_TRANS, _CBLAS_TRANS, _CBLAS_PACKED, _CBLAS_B = 101, 111, 112, 151, 162
_mkl: dict | None = None  # as _found, for MKL
_mkl_why_not = ""


def _mkl_candidates() -> list[str]:
    """Where libmkl_rt may be: RNNKIT_MKL's path, the ``mkl`` wheel's files, the loader's
    search path."""
    named = os.environ.get(MKL_ENV_VAR, "").strip()
    if named and named not in ("1", "auto"):
        return [named]
    try:
        files = importlib.metadata.distribution("mkl").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    paths = sorted(
        (str(f.locate()) for f in files if os.path.basename(str(f)).startswith("libmkl_rt.so")),
        reverse=True,  # the newest soname first
    )
    found = ctypes.util.find_library("mkl_rt")
    return paths + ([found] if found else [])


def _bind_torch_first() -> None:
    """Load PyTorch's libtorch_cpu (not torch itself) before MKL, where torch is installed
    and not imported yet.  torch's wheel links its own MKL and exports its symbols, and
    libmkl_rt loads MKL's core for the whole process (RTLD_GLOBAL): a torch imported after
    it would bind its MKL calls to that core, sequential here, and run its matrix products
    on one thread whatever ``torch.set_num_threads`` says (measured: 133 against 318
    GFLOP/s, ``tests/test_kernels.py::test_mkl_leaves_torch_its_threads``).  Loaded first,
    libtorch_cpu binds them to its own copy (0.15 s, file-backed pages)."""
    if "torch" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.origin:
        return
    path = os.path.join(os.path.dirname(spec.origin), "lib", "libtorch_cpu.so")
    if os.path.exists(path):
        try:
            ctypes.CDLL(path)
        except OSError:
            pass


def _mkl_self_test(lib) -> bool:
    """A 5 x 7 by 7 x 3 product through pack + compute and through sgemm, with op(B) = B and
    Bᵀ, against NumPy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(np.float32)
    row, packed_b = _CBLAS_ROW_MAJOR, _CBLAS_B
    for trans in (False, True):
        b = rng.standard_normal((3, 7) if trans else (7, 3)).astype(np.float32)
        want = a.astype(np.float64) @ (b.T if trans else b) + 1
        size = lib.cblas_sgemm_pack_get_size(packed_b, 5, 3, 7)
        if not 0 < size < 1 << 30:
            return False
        packed = np.zeros(size // 4 + 16, np.float32)
        flag = _CBLAS_TRANS if trans else _CBLAS_NO_TRANS
        ldb = b.shape[1]
        lib.cblas_sgemm_pack(
            row, packed_b, flag, 5, 3, 7, 1.0, b.ctypes.data, ldb, packed.ctypes.data
        )
        c = np.ones((5, 3), np.float32)
        lib.cblas_sgemm_compute(
            row, _CBLAS_NO_TRANS, _CBLAS_PACKED, 5, 3, 7, a.ctypes.data, 7, packed.ctypes.data, 3,
            1.0, c.ctypes.data, 3,
        )  # fmt: skip
        c2 = np.ones((5, 3), np.float32)
        lib.cblas_sgemm(
            row, _CBLAS_NO_TRANS, flag, 5, 3, 7, 1.0, a.ctypes.data, 7, b.ctypes.data, ldb, 1.0,
            c2.ctypes.data, 3,
        )  # fmt: skip
        for got in (c, c2):
            if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
                return False
    return True


def find_mkl(loops) -> dict:
    """Look for MKL's packed sgemm once (see the module's docstring); hand it to
    ``loops.set_mkl``.  Returns what was found ({} when nothing usable was, or
    RNNKIT_MKL=0: then ``mkl_why_not`` says why)."""
    global _mkl, _mkl_why_not
    if os.environ.get(MKL_ENV_VAR, "").strip().lower() in ("0", "off", "no", "false"):
        _mkl_why_not = f"{MKL_ENV_VAR}={os.environ[MKL_ENV_VAR]!r}"
        return {}
    if _mkl is not None:
        return _mkl
    _mkl = {}
    candidates = _mkl_candidates()
    if not candidates:
        _mkl_why_not = "MKL is not installed (pip install rnnkit[mkl])"
        return _mkl
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    _bind_torch_first()
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.MKL_Set_Interface_Layer.argtypes = [i]
            lib.MKL_Set_Threading_Layer.argtypes = [i]
            lib.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
            lib.cblas_sgemm_pack_get_size.argtypes = [i, i, i, i]
            lib.cblas_sgemm_pack.argtypes = [i, i, i, i, i, i, f, p, i, p]
            lib.cblas_sgemm_compute.argtypes = [i, i, i, i, i, i, p, i, p, i, f, p, i]
            lib.cblas_sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
        except (OSError, AttributeError) as e:
            _mkl_why_not = f"{path}: {e}"
            continue
        # before any other MKL call; each returns the layer in force (another user of this
        # libmkl_rt may have chosen first)
        if lib.MKL_Set_Interface_Layer(_MKL_LP64) != _MKL_LP64:
            _mkl_why_not = f"{path}: its integer interface is not LP64"
            continue
        sequential = lib.MKL_Set_Threading_Layer(_MKL_SEQUENTIAL) == _MKL_SEQUENTIAL
        if not sequential:
            lib.MKL_Set_Num_Threads(1)
        if not _mkl_self_test(lib):
            _mkl_why_not = f"{path}: its sgemm (packed or not) failed the self-test"
            continue
        fns = (
            lib.cblas_sgemm_pack_get_size,
            lib.cblas_sgemm_pack,
            lib.cblas_sgemm_compute,
            lib.cblas_sgemm,
        )
        loops.set_mkl(*[ctypes.cast(fn, ctypes.c_void_p).value for fn in fns])
        version = ctypes.create_string_buffer(256)
        try:
            lib.MKL_Get_Version_String(version, 256)
        except AttributeError:  # pragma: no cover
            pass
        _mkl = {
            "library": os.path.normpath(path),
            "version": version.value.decode(errors="replace"),
            "sequential": sequential,
            "lib": lib,
        }
        return _mkl
    return _mkl


def mkl_why_not() -> str:
    return _mkl_why_not


def describe_mkl() -> dict:
    """The MKL in use for packed products ({} when none)."""
    return {k: v for k, v in (_mkl or {}).items() if k != "lib"}
