"""Checks of user input with error messages that name the argument, what was
expected and what was given.  Bad input never reaches the math silently."""

from __future__ import annotations

import numbers

import numpy as np

from .backend import xp


class NonFiniteError(ValueError):
    """An array that must be finite holds NaN or infinity (input data, or a layer's input
    when training has diverged)."""


def describe(x) -> str:
    """A short description of a value for error messages."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    return f"{type(x).__name__} {x!r}"[:120]


def as_float_array(
    x, name: str, who: str, dtype, *, ndim=None, shape_doc="", features=None, check_finite=True
):
    """``x`` as an array of ``dtype`` on the current backend, after checking it.

    ndim:      the required rank (int) or ranks (tuple); shape_doc says what they mean.
    features:  the required size of the last axis, if the layer is built.
    """
    np_ = xp()
    if x is None:
        raise TypeError(f"{who}: {name} must be an array{shape_doc}; got None")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{who}: {name} must be a numeric array{shape_doc}; got {describe(x)}")
    if not hasattr(x, "dtype"):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise TypeError(
                f"{who}: {name} must be a numeric array{shape_doc}; "
                f"could not convert {describe(x)}: {e}"
            ) from None
    kind = np.dtype(x.dtype).kind
    if kind not in "fiub":
        raise TypeError(f"{who}: {name} must be a numeric array{shape_doc}; got {describe(x)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            hint = ""
            if x.ndim + 1 in allowed:
                hint = " (for a single example, add a batch axis: x[None])"
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(
                f"{who}: {name} must have rank {want}{shape_doc}; got shape {tuple(x.shape)}{hint}"
            )
    if features is not None and x.shape[-1] != features:
        raise ValueError(
            f"{who}: {name} has {x.shape[-1]} features in its last axis, "
            f"but the layer was built for {features} (shape {tuple(x.shape)})"
        )
    if 0 in x.shape[:2]:
        raise ValueError(
            f"{who}: {name} is empty (shape {tuple(x.shape)}); "
            f"batch size and sequence length must be at least 1"
        )
    x = np_.asarray(x, dtype=dtype)
    if check_finite and kind == "f" and not bool(np_.isfinite(x).all()):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(np.asarray(_host(x))))[0])
        raise NonFiniteError(f"{who}: {name} contains NaN or infinity (first at index {idx})")
    return x


def as_mask(mask, N: int, T: int, who: str, name="mask"):
    """A boolean (N, T) mask, or None."""
    if mask is None:
        return None
    np_ = xp()
    if not hasattr(mask, "shape"):
        mask = np.asarray(mask)
    if tuple(mask.shape) != (N, T):
        raise ValueError(
            f"{who}: {name} must have shape (batch, time) = ({N}, {T}); "
            f"got shape {tuple(mask.shape)}"
        )
    if np.dtype(mask.dtype).kind not in "biuf":
        raise TypeError(
            f"{who}: {name} must be boolean (True = use this step); got dtype {mask.dtype}"
        )
    return np_.asarray(mask).astype(bool)


def as_int_array(x, name: str, who: str, *, high: int, ndim=(1, 2)):
    """Integer token ids in [0, high)."""
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if np.dtype(x.dtype).kind == "f":
        xi = np.asarray(_host(x))
        if not np.all(np.isfinite(xi)) or not np.all(xi == np.round(xi)):
            raise TypeError(
                f"{who}: {name} must hold integer token ids; got {describe(x)} "
                f"with non-integer values"
            )
    elif np.dtype(x.dtype).kind not in "iub":
        raise TypeError(f"{who}: {name} must hold integer token ids; got {describe(x)}")
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        raise ValueError(
            f"{who}: {name} must have rank {' or '.join(map(str, allowed))} "
            f"(batch, time); got shape {tuple(x.shape)}"
        )
    x = xp().asarray(x).astype(np.int64)
    if x.size:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= high:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{who}: {name} holds token id {bad}, outside [0, {high}) (input_dim={high})"
            )
    return x


def positive_int(value, name: str, who: str, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer; got {value!r}")
    return int(value)


def rate(value, name: str, who: str):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) < 1.0
    ):
        raise ValueError(f"{who}: {name} must be a float in [0, 1); got {value!r}")
    return float(value)


def choice(value, name: str, who: str, choices):
    if value not in choices:
        raise ValueError(f"{who}: {name} must be one of {list(choices)}; got {value!r}")
    return value


def float_dtype(dtype, who: str):
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{who}: dtype must be 'float32' or 'float64'; got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{who}: dtype must be 'float32' or 'float64'; got {dtype!r}")
    return dt


def _host(a):
    get = getattr(a, "get", None)
    return get() if get is not None and not isinstance(a, np.ndarray) else a


def gradient(dy, shape, who: str, dtype, name: str = "dy"):
    """``dy``, the gradient of a layer's output, as an array of ``dtype`` with exactly the
    output's ``shape``: a wrong shape is a ValueError that names ``dy`` and the shape
    expected (a gradient of another shape would be broadcast into wrong numbers, or read
    past an array's end by the compiled loops)."""
    np_ = xp()
    if dy is None:
        raise TypeError(
            f"{who}: backward: {name} must be an array of shape {tuple(shape)}; got None"
        )
    if not hasattr(dy, "dtype"):
        try:
            dy = np.asarray(dy)
        except (ValueError, TypeError) as e:
            raise TypeError(
                f"{who}: backward: {name} must be a numeric array of shape "
                f"{tuple(shape)}; could not convert {describe(dy)}: {e}"
            ) from None
    if np.dtype(dy.dtype).kind not in "fiub":
        raise TypeError(
            f"{who}: backward: {name} must be a real numeric array of shape "
            f"{tuple(shape)}; got {describe(dy)}"
        )
    if tuple(dy.shape) != tuple(shape):
        raise ValueError(
            f"{who}: backward: {name} must have the shape of the layer's output "
            f"{tuple(shape)}; got {tuple(dy.shape)}"
        )
    return np_.asarray(dy, dtype=dtype)
