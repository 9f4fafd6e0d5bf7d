"""The array namespace that every numerical module of rnnkit goes through.

Cells, BPTT, layers and losses never write ``numpy.`` directly for array math;
they ask this module for the current namespace (``xp()``), which is NumPy by
default.  A GPU array library with NumPy's interface (CuPy) can replace it with
``set_backend("cupy")`` without touching the cells::

    import rnnkit
    rnnkit.backend.set_backend("cupy")   # arrays now live on the GPU

Only functions that both NumPy and CuPy provide with the same signature are
used through ``xp()`` (``matmul(..., out=)``, ufuncs with ``out=``, ``copyto``).
"""

from __future__ import annotations

import importlib

import numpy

_NAMESPACES = {"numpy": "numpy", "cupy": "cupy"}
_current = numpy


def xp():
    """The array module in use (``numpy`` unless ``set_backend`` changed it)."""
    return _current


def set_backend(name: str):
    """Select the array library by name: ``"numpy"`` (default) or ``"cupy"``."""
    global _current
    if name not in _NAMESPACES:
        raise ValueError(f"backend must be one of {sorted(_NAMESPACES)}; got {name!r}")
    try:
        _current = importlib.import_module(_NAMESPACES[name])
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ImportError(f"backend {name!r} needs the package {_NAMESPACES[name]!r}: {e}") from e
    return _current


def backend_name() -> str:
    return _current.__name__


def to_numpy(a):
    """A NumPy array from an array of the current backend (no copy for NumPy)."""
    if a is None or isinstance(a, numpy.ndarray):
        return a
    get = getattr(a, "get", None)  # cupy.ndarray.get() copies to host
    return get() if get is not None else numpy.asarray(a)


def scatter_add(target, indices, values):
    """target[indices] += values, adding repeated indices up (np.add.at; cupyx.scatter_add).
    Rows of a matrix (an embedding's gradient): the rows of ``values`` sorted by index
    and summed per index with one ``add.reduceat`` (the same sums to rounding, many
    times faster than np.add.at)."""
    if _current is numpy:
        indices = numpy.asarray(indices)
        # (negative indices go to np.add.at: -1 and n-1 would be two ids here, one row there)
        if (
            target.ndim == 2
            and indices.ndim == 1
            and indices.size
            and values.ndim == 2
            and indices.min() >= 0
        ):
            order = numpy.argsort(indices, kind="stable")
            idx = indices[order]
            starts = numpy.flatnonzero(numpy.r_[True, idx[1:] != idx[:-1]])
            target[idx[starts]] += numpy.add.reduceat(values[order], starts, axis=0)
        else:
            numpy.add.at(target, indices, values)
    else:  # pragma: no cover - needs a GPU
        add_at = getattr(_current.add, "at", None)  # CuPy ≥ 13; cupyx.scatter_add before
        if add_at is not None:
            add_at(target, indices, values)
        else:
            import cupyx

            cupyx.scatter_add(target, indices, values)
    return target


def matmul(a, b):
    """``a @ b`` in the current backend."""
    return a @ b


def asarray(a, dtype=None):
    """An array of the current backend (copies host data to the device if needed)."""
    return _current.asarray(a, dtype=dtype)


_floatx = numpy.dtype("float32")


def floatx():
    """The default float dtype of new layers (float32 unless ``set_floatx`` changed it)."""
    return _floatx


def set_floatx(dtype):
    """Set the default float dtype of layers built afterwards: 'float32' or 'float64'."""
    global _floatx
    dt = numpy.dtype(dtype)
    if dt not in (numpy.float32, numpy.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    _floatx = dt
