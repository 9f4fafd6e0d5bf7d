"""Whether the compiled loops are asked for: ``RNNKIT_KERNELS``, ``set_enabled``,
``numpy_loops``."""

from __future__ import annotations

import contextlib
import os

ENV_VAR = "RNNKIT_KERNELS"
_OFF = ("0", "off", "false", "no", "numpy", "none")

_state = {"enabled": os.environ.get(ENV_VAR, "auto").strip().lower() not in _OFF}


def requested() -> bool:
    """Whether the compiled loops are switched on (they may still be unavailable)."""
    return _state["enabled"]


def set_enabled(flag: bool) -> None:
    """Use the compiled loops when they are available (True, the default) or always the
    NumPy loops (False)."""
    _state["enabled"] = bool(flag)


@contextlib.contextmanager
def numpy_loops():
    """Run the NumPy reference loops inside the block."""
    before = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = before
