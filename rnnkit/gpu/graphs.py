"""CUDA graphs of whole time loops: captured once per shape, replayed per batch.

A layer's forward loop launches T·(1 kernel + 1 product) (a little more for GRU
reset_before and the projected LSTM), the reverse loop as many: at small batches the GPU
waits for Python.  A CUDA graph records that sequence once (stream capture) and replays it
with one launch.  A graph holds the addresses of the arrays it was recorded with, so each
cache entry owns its buffers (inputs, parameters, trace, scratch): a replay copies the
inputs in, launches, and the caller copies the results out.

Keys: (kind, cell signature, T, N, dtype, masked) — a new shape, dtype or mask flag is a
new entry (captured anew); the least recently used entry goes when ``max_entries`` are held.
The first run of a key is eager (it warms up cuBLAS and compiles the kernels, which must
not happen during a capture) and captures right after; a key whose capture fails runs
eagerly from then on (``failures``, ``last_failure``).

``capturer`` is anything with ``capture(record) -> graph`` (``graph.launch()`` replays):
``rnnkit.gpu.cuda.CupyCapture`` on a GPU, a fake in the CPU tests.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

FAILED = "capture failed"


def make_key(kind: str, signature: tuple, T: int, N: int, dtype: Any, masked: bool) -> tuple:
    return (kind, tuple(signature), int(T), int(N), str(dtype), bool(masked))


class Entry:
    """One key's buffers and its graphs (one per loop variant: forward, reverse with or
    without a sequence gradient); ``generation`` counts forward runs, so that a reverse
    run knows whether the buffers still hold its trace."""

    def __init__(self, buffers: Any) -> None:
        self.buffers = buffers
        self.graphs: dict[Any, Any] = {}
        self.generation = 0


class GraphCache:
    def __init__(self, capturer: Any, max_entries: int = 8) -> None:
        self.capturer = capturer
        self.max_entries = max_entries
        self.enabled = True
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.misses = self.captures = self.replays = self.failures = 0
        self.last_failure: str | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple) -> bool:
        return key in self._entries

    def clear(self) -> None:
        self._entries.clear()

    def entry(self, key: tuple, make_buffers: Callable[[], Any]) -> Entry:
        """The entry of ``key``, made (with ``make_buffers()``) if there is none."""
        e = self._entries.get(key)
        if e is not None:
            self._entries.move_to_end(key)
            return e
        self.misses += 1
        e = Entry(make_buffers())
        self._entries[key] = e
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return e

    def run(self, entry: Entry, variant: Any, record: Callable[[], None]) -> str:
        """Run ``record`` (which issues the launches on the entry's buffers): replay its
        graph if there is one ('graph'), else run it eagerly and capture it ('eager')."""
        graph = entry.graphs.get(variant)
        if self.enabled and graph is not None and graph is not FAILED:
            graph.launch()
            self.replays += 1
            return "graph"
        record()
        if self.enabled and graph is None:
            try:
                entry.graphs[variant] = self.capturer.capture(record)
                self.captures += 1
            except Exception as e:  # the driver refused: this key runs eagerly
                entry.graphs[variant] = FAILED
                self.failures += 1
                self.last_failure = f"{type(e).__name__}: {e}"
                if isinstance(e, NotImplementedError):
                    # the array library refuses capture itself (CuPy 14: no cuBLAS call
                    # while a stream captures), so every key would fail alike: stop trying
                    self.enabled = False
                    self.last_failure += " (graphs off from here on)"
        return "eager"
