"""Plots to PNG files (matplotlib is an optional extra: pip install "rnnkit[plot]")."""

from __future__ import annotations

import os


def pyplot():
    """matplotlib.pyplot with a file-only backend, or a clear ImportError."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError('plotting needs matplotlib: pip install "rnnkit[plot]"') from e
    return plt


def save(fig, path):
    """Save a figure as PNG atomically (temporary file, then rename)."""
    from .atomicfile import atomic_write

    path = os.fspath(path)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
    pyplot().close(fig)
    return path


def plot_history(history, path, keys=None, title=None):
    """Training curves from a History: one panel per quantity, validation dashed."""
    plt = pyplot()
    h = history.history
    if keys is None:
        keys = [
            k
            for k in h
            if not k.startswith("val_") and not k.startswith("grad_") and not k.startswith("clip")
        ]
    if not keys:
        raise ValueError("plot_history: the history has no values to plot")
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = [e + 1 for e in history.epoch]
        ax.plot(epochs, h[key], marker="o", label=f"training {key}")
        if f"val_{key}" in h:
            ax.plot(epochs, h[f"val_{key}"], marker="s", linestyle="--", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Training history")
    return save(fig, path)
