"""Watching training: the recurrent weights' spectral norm and gradient clipping.

SpectralNormTracker()     a callback for ``fit``: λ = ‖W‖₂ of every recurrent layer
                          (and of each gate block of LSTM/GRU) at the start and after
                          every epoch (or every ``every`` updates).  For an Elman
                          layer the lecture's threshold is λ = 1/γ: below it every
                          Jacobian ∂s_t/∂s_{t-1} has norm < 1 and gradients must
                          vanish; above it they may explode.
clipping_telemetry(h)     from a History: per epoch, how often clipping fired
                          (clip_fraction), by how much (clip_scale_mean: mean of
                          ‖g_clipped‖/‖g‖ over the updates where it fired), and the
                          gradient norms before clipping; per update, the norm and
                          whether clipping fired.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..callbacks import Callback
from .gates import GATE_NAMES
from .jacobians import spectral_norm
from .traces import cell_kind, recurrent_layers


def weight_norms(model):
    """{layer: {"W": ‖W‖₂, gate blocks (LSTM: W_i, W_f, W_g, W_o; GRU: W_z, W_r, W_n)}}."""
    out = {}
    for layer in recurrent_layers(model):
        W = backend.to_numpy(layer.params["W"]).astype(np.float64)
        d = {"W": spectral_norm(W)}
        names = GATE_NAMES.get(cell_kind(layer), ())
        H = layer.units
        for i, g in enumerate(names):
            d[f"W_{g}"] = spectral_norm(W[:, i * H : (i + 1) * H])
        out[layer.name] = d
    return out


class SpectralNormTracker(Callback):
    """Records ‖W‖₂ of each recurrent layer over training.

    ``every``: None records after every epoch; an integer n also every n updates.
    After fit: ``steps`` (the update count at each record), ``epochs`` (the epoch, or
    None for the record before training), ``norms[layer][block]`` (lists), ``gamma``
    and ``kind`` per layer.  ``plot(path)`` draws them with the 1/γ line.
    """

    def __init__(self, every=None):
        self.every = None if every is None else int(every)
        self.steps, self.epochs = [], []
        self.norms = {}
        self.gamma, self.kind = {}, {}
        self._updates = 0

    def _record(self, epoch):
        for name, d in weight_norms(self.model).items():
            for block, v in d.items():
                self.norms.setdefault(name, {}).setdefault(block, []).append(v)
        self.steps.append(self._updates)
        self.epochs.append(epoch)

    def on_train_begin(self, logs=None):
        for layer in recurrent_layers(self.model):
            self.kind[layer.name] = cell_kind(layer)
            self.gamma[layer.name] = layer.cell.activation.gamma
        if not self.steps:
            self._record(None)

    def on_batch_end(self, step, logs=None):
        self._updates += 1
        if self.every and self._updates % self.every == 0:
            self._record(getattr(self.model, "_current_epoch", None))

    def on_epoch_end(self, epoch, logs=None):
        if not self.steps or self.steps[-1] != self._updates:
            self._record(epoch)

    def summary(self):
        return {
            "steps": list(self.steps),
            "epochs": list(self.epochs),
            "norms": self.norms,
            "gamma": self.gamma,
            "kind": self.kind,
            "threshold": {n: 1.0 / g for n, g in self.gamma.items()},
        }

    def plot(self, path, title=None):
        from .plots import plot_weight_norms

        return plot_weight_norms(self.summary(), path, title=title)


def clipping_telemetry(history):
    """The clipping numbers a History holds (see the module docstring) as a JSON-ready
    dict: {"epochs": {clip_fraction, clip_scale_mean, grad_norm_mean, grad_norm_max},
    "steps": {grad_norm, clipped, grad_norm_after}}; empty lists where training did not
    record them."""
    h, s = history.history, history.steps
    keys = ("clip_fraction", "clip_scale_mean", "grad_norm_mean", "grad_norm_max")
    return {
        "epochs": {k: [float(v) for v in h.get(k, [])] for k in keys},
        "steps": {
            "grad_norm": [float(v) for v in s.get("grad_norm", [])],
            "clipped": [bool(v) for v in s.get("clipped", [])],
            "grad_norm_after": [float(v) for v in s.get("grad_norm_after", [])],
            "loss": [float(v) for v in s.get("loss", [])],
        },
    }


__all__ = ["SpectralNormTracker", "weight_norms", "clipping_telemetry"]
