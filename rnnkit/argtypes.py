"""argparse ``type=`` checks of the command lines (applications, ``rnnkit diagnose``): each
returns the parsed value or raises ``argparse.ArgumentTypeError`` with what it expected."""

from __future__ import annotations

import argparse
import math


def _int(text, fallback):
    try:
        return int(text)
    except ValueError:
        return fallback


def _float(text):
    try:
        return float(text)
    except ValueError:
        return math.nan


def positive_int(text):
    v = _int(text, 0)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return v


def non_negative_int(text):
    v = _int(text, -1)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0; got {text!r}")
    return v


def positive_float(text):
    v = _float(text)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {text!r}")
    return v


def non_negative_float(text):
    v = _float(text)
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number ≥ 0; got {text!r}")
    return v


def positive_minutes(text):
    """Minutes in (0, 1440]: at most a day."""
    v = _float(text)
    if not (math.isfinite(v) and 0 < v <= 24 * 60):
        raise argparse.ArgumentTypeError(f"expected minutes in (0, 1440]; got {text!r}")
    return v


def unit_rate(text):
    """A number in (0, 1] (a learning rate)."""
    v = _float(text)
    if not (math.isfinite(v) and 0 < v <= 1):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; got {text!r}")
    return v


def dropout_rate(text):
    """A number in [0, 1) (a dropout rate)."""
    v = _float(text)
    if not (math.isfinite(v) and 0 <= v < 1):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1); got {text!r}")
    return v
