"""Compiled time loops: an optional accelerator of ``rnnkit.bptt``.

``rnnkit/cells/`` and ``rnnkit/bptt.py`` are the reference: every recurrence one step at a
time in NumPy.  ``rnnkit.kernels._loops`` (C, built at install time when a compiler is
there; see ``setup.py``) runs the *whole* time loop of SimpleRNN, LSTM and GRU, forward and
reverse, without returning to Python between steps: each step's recurrent product is a
packed float32 kernel or a call of the BLAS that NumPy itself uses, and the gate arithmetic
is fused into one pass per sample.  It fills the very ``Trace`` that ``bptt`` fills, so
everything after the loop (weight gradients, outputs, diagnostics) is unchanged, and it gives
the same numbers to rounding (float64: ~1e-13; float32: its tanh differs from NumPy's by a
few units in the last place).

A recurrent layer asks :func:`forward` / :func:`backward` first; they return None whenever
the compiled loop does not apply, and the layer runs ``bptt``.  The package, by job:

    switch.py    RNNKIT_KERNELS, set_enabled, numpy_loops
    blas.py      NumPy's BLAS, found and its threads held through threadpoolctl
    threads.py   own_threads: the BLAS on one thread, rnnkit's team does the parallel work
    loops.py     the calls: forward, backward, matmul, adam, add_rows, xent_logits (arrays reach C
                 through the buffer protocol; C checks every shape, item size and stride)
    choose.py    how each loop's recurrent products run (packed kernel, BLAS, cut by
                 columns over the team, or MKL's packed GEMM), measured once per shape;
                 RNNKIT_PRODUCTS

Selecting the NumPy loops:

    RNNKIT_KERNELS=numpy python train.py        # environment: numpy (or 0, off) / auto

    import rnnkit.kernels
    rnnkit.kernels.set_enabled(False)           # for the rest of the process
    with rnnkit.kernels.numpy_loops():          # for a block
        ...

``rnnkit.kernels.info()`` says whether the compiled loops are in use (and why not), and
which BLAS the install runs; ``rnnkit.kernels.choices()`` what each loop shape's recurrent
products were found fastest with (``RNNKIT_PRODUCTS=auto|packed|blas|split|mkl`` forces
one; mkl: MKL's packed GEMM, where ``pip install rnnkit[mkl]`` put it).
"""

from __future__ import annotations

import contextlib
from typing import Any

from . import blas, choose, switch, threads
from .loops import (
    IMPORT_ERROR,
    Untraced,
    _loops,
    adam,
    add_rows,
    available,
    backward,
    enabled,
    forward,
    matmul,
    release_kept,
    xent_logits,
)
from .switch import ENV_VAR, numpy_loops, set_enabled

__all__ = [
    "available",
    "enabled",
    "set_enabled",
    "numpy_loops",
    "info",
    "choices",
    "own_threads",
    "forward",
    "backward",
    "matmul",
    "adam",
    "add_rows",
    "xent_logits",
    "Untraced",
    "release_memory",
]


def info() -> dict:
    """What is in use, and why the compiled loops are not, if they are not."""
    import os

    out: dict[str, Any] = {
        "enabled": enabled(),
        "requested": switch.requested(),
        "built": _loops is not None,
    }
    if _loops is None:
        out["reason"] = f"rnnkit.kernels._loops is not available: {IMPORT_ERROR}"
    elif available():
        out["blas"] = blas.describe()
        out["mkl"] = blas.describe_mkl() or blas.mkl_why_not() or "not looked for yet"
        out["threads"] = threads.team_size()
        out["products"] = os.environ.get(choose.ENV_VAR, "auto")
        out["choices"] = len(choose.choices())
    else:
        out["reason"] = f"NumPy's BLAS could not be used: {blas.why_not()}"
    if not switch.requested():
        out["reason"] = (
            f"switched off ({ENV_VAR}={os.environ.get(ENV_VAR)!r} or set_enabled(False))"
        )
    return out


def choices() -> list[dict]:
    """How the recurrent products of each loop shape run (``choose.py``): one record per
    shape (cell kind, N, H, D, proj, itemsize, threads, direction) with the way chosen
    (``way``: packed, blas, split or mkl), ``mode`` (auto or forced by ``RNNKIT_PRODUCTS``), the
    measured seconds per step of each way (``times``) and why the others do not apply."""
    return choose.choices()


def release_memory() -> int:
    """Free what the compiled loops keep between calls: the buffers (4 MB and larger) that
    a loop packs its weights into are kept for the next loop, which then finds its pages
    already mapped (a fresh 16 MB buffer costs about 6 ms of page faults, LSTM(1024)'s
    forward of 50 steps at one sample); at most four, 256 MB in all; and the last
    backward's (T, N, G) buffer of ∂L/∂a, kept for the next backward.  Returns the bytes
    handed back."""
    kept = release_kept()
    return kept + (int(_loops.release_memory()) if _loops is not None else 0)


@contextlib.contextmanager
def own_threads():
    """While the block runs (or the decorated method: ``@own_threads()``), NumPy's BLAS is
    held at one thread and rnnkit's own team does the parallel work (``threads.py``).
    Does nothing when the compiled loops are off."""
    with threads.own_threads(enabled()):
        yield
