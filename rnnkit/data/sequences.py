"""Batching helpers for sequences of different lengths."""

from __future__ import annotations

import numpy as np


def pad_sequences(
    sequences, maxlen=None, padding="post", truncating="post", value=0, dtype="int64"
):
    """A (N, T) array from a list of sequences (Keras's pad_sequences, but padding at the
    end by default, which is what masks and packed sequences expect)."""
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError("pad_sequences: padding and truncating must be 'pre' or 'post'")
    seqs = [np.asarray(s) for s in sequences]
    T = maxlen if maxlen is not None else max((len(s) for s in seqs), default=0)
    feat = next((s.shape[1:] for s in seqs if len(s)), ())
    out = np.full((len(seqs), T) + tuple(feat), value, dtype=dtype)
    for i, s in enumerate(seqs):
        s = s[:T] if truncating == "post" else s[-T:] if T else s[:0]
        if len(s):
            if padding == "post":
                out[i, : len(s)] = s
            else:
                out[i, T - len(s) :] = s
    return out


def sliding_windows(series, length, horizon=1):
    """(x, y) for forecasting: x[i] = series[i : i+length], y[i] = series[i+length+horizon-1]."""
    series = np.asarray(series)
    n = len(series) - length - horizon + 1
    if n < 1:
        raise ValueError(
            f"sliding_windows: a series of {len(series)} steps has no window of "
            f"{length} steps with horizon {horizon}"
        )
    idx = np.arange(length)[None, :] + np.arange(n)[:, None]
    return series[idx], series[np.arange(n) + length + horizon - 1]
