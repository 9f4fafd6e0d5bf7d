"""Fused GPU time loops: an accelerator of ``rnnkit.bptt`` for the CuPy backend.

Under ``set_backend("cupy")`` the NumPy loops of ``rnnkit.bptt`` run unchanged on GPU arrays,
a dozen small kernels per step launched from Python.  This package runs the same loops with

- one fused kernel per step and direction for the gate arithmetic of SimpleRNN, LSTM (two with
  ``proj_size``) and GRU (two for ``reset_after=False``): ``source.py`` generates the CUDA C
  of every stage from one description per cell, ``fused.py`` runs the loops; the recurrent
  products stay cuBLAS calls (``cupy.matmul``), the input projection x U one product for all
  steps before the loop (the layer's, as before);
- the whole forward and reverse loop of a layer captured as a CUDA graph per
  (cell, T, N, dtype, mask) and replayed per batch (``graphs.py``).

The recurrent layers ask :func:`forward` / :func:`backward` after the compiled CPU loops and
before ``bptt``; they return None where the fused loops do not apply (NumPy backend, host
arrays, a cell or activation the kernels do not know, recurrent dropout) and the layer runs
``bptt``.  Masks are supported (a 0/1 per sample and step, read by the kernels).

Switches: ``RNNKIT_GPU=0`` (or :func:`set_enabled`) turns the fused loops off,
``RNNKIT_CUDA_GRAPHS=0`` (or :func:`set_graphs`) keeps them but launches eagerly;
``RNNKIT_GPU_STRICT=1`` raises instead of falling back when the fused path fails.
:func:`info` says what ran and why not.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

from .. import backend
from . import fused, graphs, source

__all__ = [
    "forward",
    "backward",
    "enabled",
    "set_enabled",
    "set_graphs",
    "info",
    "stats",
    "fused",
    "graphs",
    "source",
]


def _env_on(name: str, default: str = "1") -> bool:
    return os.environ.get(name, default).strip().lower() not in ("0", "off", "false", "numpy", "no")


_state: dict[str, Any] = {
    "enabled": _env_on("RNNKIT_GPU"),
    "graphs": _env_on("RNNKIT_CUDA_GRAPHS"),
    "strict": _env_on("RNNKIT_GPU_STRICT", "0"),
    "reason": None,  # why the fused path last stepped aside after an error
}
_stats = {"fused_forward": 0, "fused_backward": 0, "graph_replays": 0, "fallbacks": 0}
_cache: graphs.GraphCache | None = None


def enabled() -> bool:
    return bool(_state["enabled"])


def set_enabled(flag: bool) -> None:
    """Use the fused GPU loops where they apply (True, the default) or never (False)."""
    _state["enabled"] = bool(flag)


def set_graphs(flag: bool) -> None:
    """Replay the fused loops from CUDA graphs (True, the default) or launch them eagerly."""
    _state["graphs"] = bool(flag)
    if _cache is not None:
        _cache.enabled = bool(flag)


def stats() -> dict[str, int]:
    """Counters: fused forward and reverse loops run, graph replays, fallbacks after errors."""
    return _stats


def info() -> dict[str, Any]:
    out: dict[str, Any] = {
        "enabled": enabled(),
        # asked for, and not turned off by the cache (a library that refuses capture)
        "graphs": bool(_state["graphs"]) and (_cache is None or _cache.enabled),
        "backend": backend.backend_name(),
        "stats": dict(_stats),
        "reason": _state["reason"],
    }
    if _cache is not None:
        out["graph_cache"] = {
            "entries": len(_cache),
            "captures": _cache.captures,
            "replays": _cache.replays,
            "capture_failures": _cache.failures,
            "last_failure": _cache.last_failure,
        }
    return out


def _applies(cell, arrays, rec_mask) -> bool:
    if not _state["enabled"] or backend.backend_name() != "cupy" or rec_mask is not None:
        return False
    if fused.kind_of(cell) is None:
        return False
    import cupy

    a = arrays[0]
    return isinstance(a, cupy.ndarray) and str(a.dtype) in source.REALS


def _kernels(cell, dtype):
    from .cuda import CupyKernels

    return CupyKernels(
        fused.kind_of(cell) or "", str(dtype), cell.activation.name, cell.recurrent_activation.name
    )


def _graph_cache() -> graphs.GraphCache:
    global _cache
    if _cache is None:
        from .cuda import CupyCapture

        _cache = graphs.GraphCache(CupyCapture())
        _cache.enabled = bool(_state["graphs"])
    return _cache


def _failed(e: Exception) -> None:
    if _state["strict"]:
        raise e
    _stats["fallbacks"] += 1
    _state["reason"] = f"{type(e).__name__}: {e}"
    _state["enabled"] = False  # once: the NumPy loops from here on
    warnings.warn(
        f"rnnkit.gpu: the fused GPU loops failed ({_state['reason']}); running the "
        f"NumPy loops on the GPU instead",
        RuntimeWarning,
        stacklevel=3,
    )


def forward(cell, p, xw, initial_states, mask=None, rec_mask=None):
    """``bptt.forward`` with the fused kernels: a filled ``bptt.Trace``, or None where they
    do not apply.  Arguments as ``bptt.forward`` (xw (T, N, G) = x_t U + b)."""
    if not _applies(cell, (xw,), rec_mask):
        return None
    try:
        tr = _forward(cell, p, xw, initial_states, mask)
    except Exception as e:
        _failed(e)
        return None
    _stats["fused_forward"] += 1
    return tr


def backward(cell, p, trace, d_outputs=None, d_final=None):
    """``bptt.backward`` with the fused kernels: (dxw, d_initial), or None where they do not
    apply."""
    if not _applies(cell, (trace.states[0],), trace.rec_mask):
        return None
    try:
        out = _backward(cell, p, trace, d_outputs, d_final)
    except Exception as e:
        _failed(e)
        return None
    _stats["fused_backward"] += 1
    return out


# ---------------------------------------------------------------------------------------------
def _forward(cell, p, xw, s0, m, xp=None, k=None, cache=None):
    """The fused forward: eager, or through ``cache`` (a ``graphs.GraphCache``).  ``xp``,
    ``k`` (the kernels: ``launch``, ``matmul``) and ``cache`` default to CuPy's; the CPU
    tests pass NumPy, the kernels built as C and a fake capture."""
    if xp is None:
        import cupy as xp
    if k is None:
        k = _kernels(cell, xw.dtype)
    if cache is None and _state["graphs"]:
        cache = _graph_cache()
    if cache is None or not cache.enabled:
        return fused.run_forward(k.launch, k.matmul, xp, cell, p, xw, s0, m)
    T, N = int(xw.shape[0]), int(xw.shape[1])
    key = graphs.make_key("loops", fused.signature(cell) or (), T, N, xw.dtype, m is not None)

    def make():
        return {
            "p": {name: xp.empty_like(v) for name, v in p.items()},
            "xw": xp.empty((T, N, cell.width), dtype=xw.dtype),
            "trace": fused.new_trace(cell, T, N, xw.dtype),
            "mask": None if m is None else xp.empty((T, N), dtype=xw.dtype),
            "work": fused.new_work(xp, cell, N, T, xw.dtype),
            "d_out": None,
        }

    entry = cache.entry(key, make)
    b = entry.buffers
    for name, v in p.items():
        b["p"][name][...] = v
    b["xw"][...] = xw
    for s, v in zip(b["trace"].states, s0):
        s[0] = v
    if m is not None:
        b["mask"][...] = m[:, :, 0]

    def record():
        fused.forward_loop(
            k.launch, k.matmul, cell, b["p"], b["xw"], b["trace"], b["mask"], b["work"]
        )

    if cache.run(entry, "forward", record) == "graph":
        _stats["graph_replays"] += 1
    entry.generation += 1
    out = _clone(b["trace"], m)
    out._gpu_entry = (entry, entry.generation)
    return out


def _clone(tr, m):
    """A trace of its own (the entry's buffers are overwritten by the next replay)."""
    out = copy.copy(tr)
    out.states = [s.copy() for s in tr.states]
    out.cache = {name: v.copy() for name, v in tr.cache.items()}
    out.mask = m
    out.full_step = [False] * tr.T if m is not None else [True] * tr.T
    return out


def _backward(cell, p, tr, d_out, d_final, xp=None, k=None, cache=None):
    """The fused reverse loop: replayed from the graph cache where the trace came from it."""
    if xp is None:
        import cupy as xp
    if k is None:
        k = _kernels(cell, tr.dtype)
    held = getattr(tr, "_gpu_entry", None)
    if cache is None and _state["graphs"] and held is not None:
        cache = _graph_cache()
    if cache is None or not cache.enabled or held is None:
        return fused.run_backward(k.launch, k.matmul, xp, cell, p, tr, d_out, d_final)
    entry, generation = held
    b = entry.buffers
    if entry.generation != generation:  # another forward ran since: put this trace back
        for dst, src in zip(b["trace"].states, tr.states):
            dst[...] = src
        for name, v in tr.cache.items():
            b["trace"].cache[name][...] = v
        if tr.mask is not None:
            b["mask"][...] = tr.mask[:, :, 0]
        entry.generation += 1
        tr._gpu_entry = (entry, entry.generation)
    for name, v in p.items():
        b["p"][name][...] = v
    fused.set_final(b["work"], d_final)
    if d_out is not None:
        if b["d_out"] is None:
            b["d_out"] = xp.empty(d_out.shape, dtype=tr.dtype)
        b["d_out"][...] = d_out
    dout = b["d_out"] if d_out is not None else None

    def record():
        fused.backward_loop(
            k.launch, k.matmul, cell, b["p"], b["trace"], dout, b["mask"], b["work"]
        )

    if cache.run(entry, ("backward", d_out is not None), record) == "graph":
        _stats["graph_replays"] += 1
    for name in ("dh", "dhn"):  # the caches the reverse loop fills, for recurrent_grads
        if name in tr.cache:
            tr.cache[name][...] = b["trace"].cache[name]
    return b["work"]["dxw"].copy(), fused.initial_grads(b["work"], len(tr.states))
