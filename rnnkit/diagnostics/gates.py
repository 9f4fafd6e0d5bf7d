"""Every step's gates and states, and statistics of them.

The forward pass already keeps, in its Trace, every state s_t and (LSTM, GRU) every
gate after its activation, because the reverse loop needs them.  ``record`` hands them
out as views of those buffers, batch-first (N, T, ·) like the rest of the public API:
nothing is computed or copied unless ``copy=True``, and a forward pass that nobody
records from costs nothing extra.  Each forward pass allocates a new Trace, so the views
stay valid after later passes.

    record(model, x, ["gates", "states"])
        {layer: {"states": {"h": (N, T+1, H)[, "c": ...]},       index 0: the initial state
                 "gates":  {"i","f","g","o"} (LSTM) or {"z","r","n"} (GRU): (N, T, H)}}

    gate_statistics(model, x)
        saturation fractions of every gate and state (σ'(a) < threshold·γ: the unit
        passes almost no gradient), gate means, forget-gate timescales τ = -1/ln f̄ per
        unit (LSTM; the number of steps over which the cell keeps 1/e of its content),
        update-gate statistics and timescales -1/ln z̄ (GRU, h_t = z h_{t-1} + (1-z) n).
"""

from __future__ import annotations

import numpy as np

from .. import activations, backend
from .traces import cell_kind, kept_states, recurrent_layers, state_names, trace_of

GATE_NAMES = {"lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "n"), "rnn": ()}
RECORDABLE = ("gates", "states")


def _bf(a):
    """(T, N, K) time-major -> (N, T, K) batch-first view."""
    return a.transpose(1, 0, 2)


def layer_record(layer, what=RECORDABLE, copy=False):
    """The recorded quantities of one layer's last forward pass (views unless ``copy``)."""
    what = _check_what(what)
    trace = trace_of(layer)
    out = {}
    take = (lambda a: a.copy()) if copy else (lambda a: a)
    if "states" in what:
        out["states"] = {k: take(_bf(s)) for k, s in zip(state_names(layer), trace.states)}
    if "gates" in what:
        names = GATE_NAMES.get(cell_kind(layer), ())
        gates = {}
        if names:
            z = trace.cache["gates"]
            H = layer.units
            for i, g in enumerate(names):
                gates[g] = take(_bf(z[:, :, i * H : (i + 1) * H]))
        out["gates"] = gates
    return out


def _check_what(what):
    if isinstance(what, str):
        what = [what]
    what = tuple(what)
    bad = [w for w in what if w not in RECORDABLE]
    if bad:
        raise ValueError(f"record: can record {list(RECORDABLE)}; got {bad}")
    return what


def record(model, x, what=RECORDABLE, mask=None, training=False, copy=False):
    """Forward ``x`` and return each recurrent layer's gates and/or states of every step
    (see the module docstring).  ``what``: 'gates', 'states' or both.  Views of the
    forward pass's own buffers unless ``copy=True``."""
    what = _check_what(what)
    kwargs = {"training": training}
    if mask is not None:
        kwargs["mask"] = mask
    with kept_states(model):
        model.forward(x, **kwargs)
    return {l.name: layer_record(l, what, copy) for l in recurrent_layers(model)}


# -- statistics ----------------------------------------------------------------------------------
def _weights(trace):
    """(T, N) float weights of the active (unmasked) steps."""
    if trace.mask is None:
        return np.ones((trace.T, trace.N))
    return backend.to_numpy(trace.mask)[:, :, 0].astype(np.float64)


def _stats(y, act, w, threshold):
    """Mean, std and saturation of activation outputs y (T, N, H) weighted by w (T, N)."""
    y = backend.to_numpy(y).astype(np.float64)
    W = np.broadcast_to(w[:, :, None], y.shape)
    total = W.sum()
    mean = float((y * W).sum() / total)
    std = float(np.sqrt(((y - mean) ** 2 * W).sum() / total))
    sat = np.abs(backend.to_numpy(act.deriv(y))) < threshold * act.gamma
    mid = 0.5 if act.name in ("sigmoid", "hard_sigmoid") else 0.0
    return {
        "mean": mean,
        "std": std,
        "saturated": float((sat * W).sum() / total),
        "saturated_low": float((sat * (y < mid) * W).sum() / total),
        "saturated_high": float((sat * (y > mid) * W).sum() / total),
    }


def _timescales(g, w):
    """Per-unit mean gate value ḡ over active steps and τ = -1/ln ḡ (steps)."""
    g = backend.to_numpy(g).astype(np.float64)
    mean = (g * w[:, :, None]).sum(axis=(0, 1)) / w.sum()
    with np.errstate(divide="ignore"):
        tau = np.where(mean >= 1.0, np.inf, -1.0 / np.log(np.clip(mean, 1e-300, None)))
    finite = tau[np.isfinite(tau)]
    return {
        "per_unit_mean": mean.tolist(),
        "per_unit": tau.tolist(),
        "median": float(np.median(tau)),
        "mean": float(finite.mean()) if finite.size else None,
        "max": float(tau.max()),
        "min": float(tau.min()),
    }


def layer_gate_statistics(layer, threshold=0.1):
    """Statistics of one layer's last forward pass (see ``gate_statistics``)."""
    trace = trace_of(layer)
    kind = cell_kind(layer)
    w = _weights(trace)
    cell = layer.cell
    rec = layer_record(layer)
    out = {"kind": kind, "threshold": threshold, "gates": {}, "states": {}}
    gate_act = {
        "lstm": {
            "i": cell.recurrent_activation,
            "f": cell.recurrent_activation,
            "g": cell.activation,
            "o": cell.recurrent_activation,
        },
        "gru": {
            "z": cell.recurrent_activation,
            "r": cell.recurrent_activation,
            "n": cell.activation,
        },
    }.get(kind, {})
    for name, g in rec["gates"].items():
        out["gates"][name] = _stats(_bf(g), gate_act[name], w, threshold)
    h = rec["states"]["h"][:, 1:]  # (N, T, H), states after each step
    if kind == "rnn":
        out["states"]["h"] = _stats(_bf(h), cell.activation, w, threshold)
        d = backend.to_numpy(cell.activation.deriv(backend.to_numpy(h))).astype(np.float64)
        out["states"]["h"]["mean_derivative"] = float((d * _bf_w(w, d)).sum() / _bf_w(w, d).sum())
    else:
        # h = o ⊙ tanh(c) (LSTM) or a convex mix of tanh outputs (GRU): |h| ≤ 1, saturated
        # where tanh' would be small
        out["states"]["h"] = _stats(_bf(h), activations.get("tanh"), w, threshold)
    if kind == "lstm":
        c = backend.to_numpy(rec["states"]["c"][:, 1:]).astype(np.float64)
        W = _bf_w(w, c)
        out["states"]["c"] = {
            "mean_abs": float((np.abs(c) * W).sum() / W.sum()),
            "max_abs": float(np.abs(c).max()),
            "fraction_abs_above_1": float(((np.abs(c) > 1) * W).sum() / W.sum()),
        }
        out["forget_timescale"] = _timescales(
            trace.cache["gates"][:, :, layer.units : 2 * layer.units], w
        )
    if kind == "gru":
        z = trace.cache["gates"][:, :, : layer.units]
        out["update_timescale"] = _timescales(z, w)
        zz = backend.to_numpy(z).astype(np.float64)
        W = np.broadcast_to(w[:, :, None], zz.shape)
        out["update"] = {
            "mean": float((zz * W).sum() / W.sum()),
            "fraction_keep_above_0.9": float(((zz > 0.9) * W).sum() / W.sum()),
            "fraction_overwrite_below_0.1": float(((zz < 0.1) * W).sum() / W.sum()),
        }
    return out


def _bf_w(w, a_bf):
    """Weights (T, N) broadcast to a batch-first (N, T, H) array."""
    return np.broadcast_to(w.T[:, :, None], a_bf.shape)


def gate_statistics(model, x, mask=None, threshold=0.1):
    """Forward ``x`` (inference mode) and summarize each recurrent layer's gates and
    states over the batch's active steps: {layer: {"gates": {name: {mean, std,
    saturated, saturated_low, saturated_high}}, "states": {...}, "forget_timescale"
    (LSTM) / "update_timescale", "update" (GRU)}}.  A value is saturated where the
    derivative of its activation is below ``threshold`` times its maximum γ."""
    kwargs = {} if mask is None else {"mask": mask}
    with kept_states(model):
        model.forward(x, training=False, **kwargs)
    return {l.name: layer_gate_statistics(l, threshold) for l in recurrent_layers(model)}


__all__ = ["record", "layer_record", "gate_statistics", "layer_gate_statistics", "GATE_NAMES"]
