"""A Keras-style progress bar with no dependencies.

    Epoch 3/10
     120/200 [=================>............] - ETA: 4s - loss: 1.2345 - bpc: 1.78 - 31.2 steps/s

On a terminal the line is redrawn in place (at most ten times a second); in a log
file (not a TTY) only the finished line of each epoch is written.
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if 1e-3 <= abs(v) < 1e4 or v == 0 else f"{v:.3e}"
    return str(v)


class ProgressBar:
    """``update(done, values)`` redraws; ``finish(values)`` ends the line."""

    def __init__(
        self, total: int | None, *, width=30, unit="steps", stream=None, interval=0.1, extra=None
    ):
        self.total = total
        self.width = width
        self.unit = unit
        self.stream = stream or sys.stdout
        self.interval = interval
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.extra = extra  # callable -> str appended to the line (e.g. chars/s)

    def _line(self, done, values, final=False):
        elapsed = time.perf_counter() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            digits = len(str(self.total))
            frac = min(done / self.total, 1.0)
            filled = int(self.width * frac)
            bar = "=" * max(filled - 1, 0) + (">" if filled < self.width else "=") if filled else ""
            bar = bar.ljust(self.width, ".")
            head = f"{done:>{digits}}/{self.total} [{bar}]"
            if final:
                timing = f" - {format_duration(elapsed)}"
            else:
                eta = (self.total - done) / rate if rate > 0 else 0.0
                timing = f" - ETA: {format_duration(eta)}"
        else:
            head, timing = f"{done} {self.unit}", f" - {format_duration(elapsed)}"
        parts = [f"{k}: {format_value(v)}" for k, v in values.items()]
        tail = "".join(f" - {p}" for p in parts)
        speed = f" - {rate:.1f} {self.unit}/s"
        extra = f" - {self.extra()}" if self.extra else ""
        return head + timing + tail + speed + extra

    def update(self, done, values):
        if not self.tty:
            return
        now = time.perf_counter()
        if now - self.last_draw < self.interval and done != self.total:
            return
        self.last_draw = now
        self.stream.write("\r" + self._line(done, values) + "\033[K")
        self.stream.flush()

    def finish(self, done, values):
        line = self._line(done, values, final=True)
        self.stream.write(("\r" + line + "\033[K\n") if self.tty else (line + "\n"))
        self.stream.flush()
