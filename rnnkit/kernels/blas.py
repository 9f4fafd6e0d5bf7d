"""NumPy's BLAS, found through ``threadpoolctl`` and handed to the compiled loops.

The loops call the BLAS that NumPy itself uses (no BLAS is needed to build them).
``threadpoolctl`` lists the BLAS libraries loaded in the process with their file paths;
the one inside NumPy's own directory comes first.  Its CBLAS functions are looked up by
the symbol names that NumPy's wheels (scipy-openblas, ILP64: ``scipy_cblas_sgemm64_``)
and other builds use, and a one-step self-test catches a BLAS reached with the wrong
integer size before anything relies on it.  The same ``threadpoolctl`` controller reads
and sets the BLAS's thread count (``threads``, ``set_threads``).
"""

from __future__ import annotations

import ctypes
import os

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
