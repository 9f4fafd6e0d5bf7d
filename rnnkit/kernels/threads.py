"""Who does the parallel work while a layer runs: rnnkit's own team, not the BLAS's pool.

OpenBLAS's pool threads keep spinning for a while after every call that used them; a
training step alternates large products with the time loops, whose own team of threads
would then share the cores with those spinning threads (measured in BENCHMARKS.md,
"Threads").  Inside ``own_threads`` NumPy's BLAS is held at one thread (through
``threadpoolctl``) and rnnkit's team does all the parallel work: the loops cut the batch
into chunks, and the large products of the layers (``kernels.matmul``) are cut into one
block per thread.
"""

from __future__ import annotations

import contextlib
import os
import threading

from . import blas

_own: dict[str, int] = {"depth": 0, "threads": 1, "restore": 0}
_lock = threading.Lock()


def _env_threads() -> int:
    """RNNKIT_THREADS when set to a positive integer, else 0."""
    env = os.environ.get("RNNKIT_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else 0


def inside() -> bool:
    """Whether a layer's ``own_threads`` block is running."""
    return _own["depth"] > 0


def team_size() -> int:
    """Threads the compiled loops may use: inside ``own_threads``, the team's size; else
    ``RNNKIT_THREADS`` when set, else as many as NumPy's BLAS is set to."""
    if _own["depth"]:
        return _own["threads"]
    return _env_threads() or blas.threads()


@contextlib.contextmanager
def own_threads(active: bool):
    """Inside the block (when ``active``), NumPy's BLAS runs on one thread and rnnkit's own
    team (as many threads as the BLAS had, or ``RNNKIT_THREADS``) does the parallel work.
    Re-entrant and shared by threads: the BLAS's setting is restored when the outermost
    block ends."""
    if not active:
        yield
        return
    with _lock:
        if _own["depth"] == 0:
            before = blas.threads()
            _own["restore"] = before
            _own["threads"] = _env_threads() or before
            if before > 1:
                blas.set_threads(1)
        _own["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _own["depth"] -= 1
            if _own["depth"] == 0 and _own["restore"] and _own["restore"] > 1:
                blas.set_threads(_own["restore"])
