"""How biased is truncated BPTT?  The truncated gradient against the full one.

Truncated BPTT backpropagates each loss at most k2 steps into the past, dropping the
terms k < t - k2 + 1 of the lecture's Σ_k (∂s_t/∂s_k)(∂⁺s_k/∂θ).  When those terms
matter (long-range dependencies), the truncated gradient points elsewhere.  For one
model and batch:

    truncated_gradient(model, x, y, k2, k1=1)
        the gradient of the whole sequence's loss with every L_t backpropagated through
        its own window: Williams & Peng's scheme as ``fit(tbptt=(k1, k2))`` runs it
        (``rnnkit.training.tbptt_steps`` without updates, gradients summed over the
        windows); k1 = 1 truncates every L_t at exactly k2 steps.  For a model with one
        output per sequence (the loss at the last step) it is the gradient through the
        last k2 steps only.
    truncation_bias(model, x, y, k2_values)
        for each k2: the cosine similarity and the relative error ‖g_k2 - g‖/‖g‖ between
        the truncated gradient and the full-BPTT gradient g (the same scheme with k2 = T),
        over all parameters and per parameter.  k2 ≥ T gives cosine 1, error 0.

Both run forward/backward on ``model`` in training mode (as fit does: models with
dropout get fresh masks in every window, which adds noise to the comparison) and leave
its parameters unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend, losses, training
from .traces import kept_states, recurrent_layers


def _as_numpy(grads):
    return {k: backend.to_numpy(g).astype(np.float64) for k, g in grads.items()}


class _TemporaryLoss:
    def __init__(self, model, loss):
        self.model, self.loss = model, loss

    def __enter__(self):
        self.saved = getattr(self.model, "loss", None)
        if self.loss is not None:
            self.model.loss = losses.get(self.loss)
        elif self.saved is None:
            self.model.loss = losses.get("mse")
        return self

    def __exit__(self, *exc):
        self.model.loss = self.saved


def _output_ndim(model, x):
    with kept_states(model):
        return model.forward(x[:2], training=False).ndim


def truncated_gradient(model, x, y, k2, k1=1, loss=None, sample_weight=None):
    """{param: gradient}: the k2-truncated BPTT gradient of the whole batch's loss (see the
    module docstring).  ``loss``: the model's loss unless given (mse if not compiled)."""
    T = int(x.shape[1])
    k2 = max(1, min(int(k2), T))
    with _TemporaryLoss(model, loss), kept_states(model):
        if _output_ndim(model, x) >= 3:
            k1 = max(1, min(int(k1), k2))
            total = None
            for _record in training.tbptt_steps(model, x, y, k1, k2, sample_weight, apply=False):
                g = _as_numpy(model.trainable_grads())
                total = g if total is None else {k: total[k] + g[k] for k in total}
            return total
        return _window_gradient(model, x, y, k2, sample_weight)


def _window_gradient(model, x, y, k2, sample_weight):
    """One output per sequence: run the first T - k2 steps without a backward pass,
    carrying the state, then forward and backward the last k2 steps from it."""
    T = int(x.shape[1])
    layers = recurrent_layers(model)
    saved = [(l, l.stateful, l.states) for l in layers]
    try:
        for l in layers:
            l.stateful = True
            l.states = None
        if k2 < T:
            if any(l.go_backwards for l in layers):
                raise ValueError(
                    "truncation_bias: a layer runs backwards in time; truncation "
                    "keeps the last k2 steps of forward-running layers only"
                )
            model.forward(x[:, : T - k2], training=True)  # carries the states forward
        out = model.forward(x[:, T - k2 :], training=True)
        value, dy = model.loss(y, out, sample_weight=sample_weight)
        if not math.isfinite(value):
            raise FloatingPointError(f"truncation_bias: the loss is {value}")
        model.backward(dy)
        return _as_numpy(model.trainable_grads())
    finally:
        for l, stateful, states in saved:
            l.stateful, l.states = stateful, states


def _compare(g, ref):
    keys = list(ref)
    a = np.concatenate([g[k].ravel() for k in keys])
    b = np.concatenate([ref[k].ravel() for k in keys])
    nb = np.linalg.norm(b)
    na = np.linalg.norm(a)
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")
    rel = float(np.linalg.norm(a - b) / nb) if nb > 0 else float("nan")
    per = {}
    for k in keys:
        u, v = g[k].ravel(), ref[k].ravel()
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        per[k] = {
            "cosine": float(u @ v / (nu * nv)) if nu > 0 and nv > 0 else float("nan"),
            "relative_error": float(np.linalg.norm(u - v) / nv) if nv > 0 else float("nan"),
        }
    return cos, rel, per


def default_k2_values(T):
    """1, 2, 4, ... up to T, and T itself."""
    vals, k = [], 1
    while k < T:
        vals.append(k)
        k *= 2
    return vals + [T]


def truncation_bias(model, x, y, k2_values=None, k1=1, loss=None, sample_weight=None):
    """The truncation-bias curve: {"k2": [...], "cosine": [...], "relative_error": [...],
    "per_param": {param: {"cosine": [...], "relative_error": [...]}}, "T": T, "k1": k1,
    "full_grad_norm": ‖g‖}, against the full-BPTT gradient g (see the module docstring)."""
    T = int(x.shape[1])
    k2_values = default_k2_values(T) if k2_values is None else [int(k) for k in k2_values]
    fn = (
        losses.get(loss)
        if loss is not None
        else (getattr(model, "loss", None) or losses.get("mse"))
    )
    # the reference: with L = Σ_t L_t one window of all T steps is the full gradient;
    # with time_reduction="mean" each window's loss is its own mean, so the reference
    # is the same k1-window scheme with k2 = T
    k1_full = T if fn.time_reduction == "sum" else k1
    full = truncated_gradient(model, x, y, T, k1_full, loss, sample_weight)
    out = {
        "T": T,
        "k1": k1,
        "k2": [],
        "cosine": [],
        "relative_error": [],
        "per_param": {},
        "full_grad_norm": float(math.sqrt(sum(float((g * g).sum()) for g in full.values()))),
    }
    for k2 in k2_values:
        g = truncated_gradient(model, x, y, k2, k1, loss, sample_weight)
        cos, rel, per = _compare(g, full)
        out["k2"].append(k2)
        out["cosine"].append(cos)
        out["relative_error"].append(rel)
        for name, v in per.items():
            d = out["per_param"].setdefault(name, {"cosine": [], "relative_error": []})
            d["cosine"].append(v["cosine"])
            d["relative_error"].append(v["relative_error"])
    return out


__all__ = ["truncated_gradient", "truncation_bias", "default_k2_values"]
