"""Weight initializers, by the names Keras and PyTorch users know.

Each initializer is called as ``init(shape, rng, dtype, units)`` and returns a
NumPy array; ``units`` is the hidden size H of the layer that owns the weight
(only ``torch_uniform`` uses it).

    glorot_uniform   U(-l, l), l = sqrt(6 / (fan_in + fan_out))     Keras's kernel default
    glorot_normal    N(0, 2 / (fan_in + fan_out)), truncated at 2σ
    orthogonal       Q of a QR decomposition (Saxe et al.), as Keras's recurrent default
    torch_uniform    U(-1/√H, 1/√H)                                 PyTorch's RNN/LSTM/GRU default
    uniform          U(-0.05, 0.05)                                 Keras's Embedding default
    normal           N(0, 1)                                        PyTorch's Embedding default
    zeros, ones
"""

from __future__ import annotations

import math

import numpy as np


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, rng, dtype, units=None):
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(shape, rng, dtype, units=None):
    fan_in, fan_out = _fans(shape)
    std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978  # truncation correction
    w = rng.standard_normal(size=shape)
    bad = np.abs(w) > 2.0
    while bad.any():
        w[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(w) > 2.0
    return (w * std).astype(dtype)


def orthogonal(shape, rng, dtype, units=None, gain=1.0):
    rows = math.prod(shape[:-1])
    cols = shape[-1]
    a = rng.standard_normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique (uniform over O(n))
    if rows < cols:
        q = q.T
    return (gain * q.reshape(shape)).astype(dtype)


def torch_uniform(shape, rng, dtype, units=None):
    if not units:
        raise ValueError("torch_uniform needs the layer's hidden size (units)")
    k = 1.0 / math.sqrt(units)
    return rng.uniform(-k, k, size=shape).astype(dtype)


def uniform(shape, rng, dtype, units=None):
    return rng.uniform(-0.05, 0.05, size=shape).astype(dtype)


def normal(shape, rng, dtype, units=None):
    return rng.standard_normal(size=shape).astype(dtype)


def zeros(shape, rng, dtype, units=None):
    return np.zeros(shape, dtype=dtype)


def ones(shape, rng, dtype, units=None):
    return np.ones(shape, dtype=dtype)


_REGISTRY = {
    f.__name__: f
    for f in (
        glorot_uniform,
        glorot_normal,
        orthogonal,
        torch_uniform,
        uniform,
        normal,
        zeros,
        ones,
    )
}
_ALIASES = {
    "pytorch": "torch_uniform",
    "torch": "torch_uniform",
    "random_uniform": "uniform",
    "random_normal": "normal",
}


def get(name, *, argument="initializer"):
    """The initializer called ``name``; a callable is returned as it is."""
    if callable(name):
        return name
    key = _ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise ValueError(
            f"{argument} must be one of {sorted(_REGISTRY)} or a callable "
            f"(shape, rng, dtype, units) -> array; got {name!r}"
        )
    return _REGISTRY[key]


def name_of(init) -> str:
    """The registry name of an initializer (for saving configs); callables raise."""
    for name, f in _REGISTRY.items():
        if f is init:
            return name
    raise ValueError(f"initializer {init!r} is not a named initializer and cannot be saved")
