"""One seed for everything random: weight initialization, shuffling and dropout.

``rnnkit.set_seed(s)`` restarts a root ``numpy.random.SeedSequence``; every layer,
model and data loader built afterwards spawns its own independent generator from
it, in construction order, so a script that calls ``set_seed`` first runs the same
way every time.  A layer built with ``seed=`` uses its own seed instead.
"""

from __future__ import annotations

import numpy as np

_root = np.random.SeedSequence()


def set_seed(seed: int | None):
    """Make everything built after this call reproducible (``None``: fresh entropy)."""
    global _root
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}")
    _root = np.random.SeedSequence(seed)


def make_rng(seed: int | None = None) -> np.random.Generator:
    """A new generator: from ``seed`` if given, else the next child of the global seed."""
    if seed is not None:
        return np.random.default_rng(seed)
    return np.random.default_rng(_root.spawn(1)[0])
