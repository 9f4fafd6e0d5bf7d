"""Per-step gradient records: what BPTT computes on its way back, one step at a time.

The lecture writes the gradient of the recurrent weights as a sum over steps,

    ∂L/∂W = Σ_t ∂L_t/∂W = Σ_t ∂L_t/∂s_t Σ_{k≤t} (∂s_t/∂s_k)(∂⁺s_k/∂W),

and regrouping the double sum by k gives what the reverse loop actually computes:

    ∂L/∂W = Σ_k δ_k (∂⁺s_k/∂W),        δ_k = ∂L/∂s_k = Σ_{t≥k} ∂L_t/∂s_k,

whose k-th term, for the Elman cell s_k = σ(x_k U + s_{k-1} W + b), is
s_{k-1}ᵀ ∂L/∂a_k with ∂L/∂a_k = δ_k ⊙ σ'(a_k).  rnnkit's layers compute the sum as
one matrix product after the loop and never keep δ_k; the functions here replay the
reverse loop on the forward pass's own Trace with the cell's own reverse step and keep
every δ_k and every term:

    gradient_records(model, x, y)   ‖δ_t‖ per layer and step, each step's term of ∂L/∂θ
                                    for every parameter of every recurrent layer (their
                                    sum is the layer's gradient), and the gradients
    gradient_flow(model, x, y)      the t × k map ‖∂L_t/∂s_k‖: each step's loss L_t
                                    backpropagated on its own

Arrays are time-major, as the Trace keeps them: index t of a (T+1, N, H) array is the
state after t steps (0: the initial state), in processing order (a go_backwards layer
processes the sequence from its end).  Norms of a batch are Frobenius norms over the
batch: ‖∂L/∂S_t‖ with L the batch loss that training minimizes.

These functions run forward and backward on the model they are given (in its dtype:
use ``as_float64(model)`` for float64 precision) and leave its gradients as the full
loss's; the carried states of stateful layers are restored.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend, bptt, losses
from .traces import (
    as_float64,
    capture_backward,
    cell_kind,
    kept_states,
    layer_inputs,
    recurrent_layers,
    state_names,
    trace_of,
)


# -- the reverse loop, replayed with every step kept ---------------------------------------------
def replay_backward(cell, params, trace, d_outputs=None, d_final=None):
    """``bptt.backward`` on a forward pass's Trace, keeping ∂L/∂s_t at every step.

    Returns (dxw, deltas): dxw (T, N, G) = ∂L/∂a_t, the pre-activation gradients; and
    deltas, one (T+1, N, size_k) array per state, where deltas[k][t] = ∂L/∂(state k after
    t steps): the total gradient, through step t's output and through the future.  For an
    LSTM, ∂L/∂c_t is taken with h_t as a separate variable, i.e. what flows into c_t from
    step t+1 (the state of the recurrence is the pair (h_t, c_t)).
    """
    np_ = trace.xp
    deltas = [
        np_.empty((trace.T + 1, trace.N, s.shape[-1]), dtype=trace.dtype) for s in trace.states
    ]
    dxw, _ = bptt.backward(cell, params, trace, d_outputs, d_final, deltas=deltas)
    return dxw, deltas


def _step_view(trace, t):
    """A one-step Trace that shares step t's buffers (no copies)."""
    view = copy.copy(trace)
    view.T = 1
    view.states = [s[t : t + 2] for s in trace.states]
    view.cache = {
        k: (v[t : t + 1] if v.shape[:2] == (trace.T, trace.N) else v)
        for k, v in trace.cache.items()
    }
    view.mask = None if trace.mask is None else trace.mask[t : t + 1]
    view.full_step = None if trace.full_step is None else trace.full_step[t : t + 1]
    return view


def step_terms(layer, dxw, trace=None, names=None):
    """Each step's term of the gradient of each of the layer's parameters.

    dxw      (T, N, G) ∂L/∂a_t from ``replay_backward`` (run just before: the GRU and
             projected-LSTM reverse steps leave per-step quantities in the Trace)
    names    the parameters to split (default: all)
    Returns {name: (T, *shape)}: U: x_tᵀ ∂L/∂a_t, b: Σ_n ∂L/∂a_t, and the cell's own
    recurrent terms (W: s_{t-1}ᵀ ∂L/∂a_t for the Elman cell; the gate blocks of LSTM and
    GRU the same way; GRU's b_rec, LSTM's projection P), each from the cell's
    ``recurrent_grads`` on a one-step view of the Trace, so Σ_t terms = the gradient.
    """
    tr = trace if trace is not None else trace_of(layer)
    p = layer.params
    want = list(p) if names is None else [n for n in names if n in p]
    np_ = tr.xp
    terms = {}
    if "U" in want:
        X = layer_inputs(layer)  # (T, N, D)
        terms["U"] = np_.matmul(X.transpose(0, 2, 1), dxw)  # x_tᵀ ∂L/∂a_t
    if "b" in want:
        terms["b"] = dxw.sum(axis=1, dtype=np.float64).astype(dxw.dtype)
    rec = [n for n in want if n not in ("U", "b")]
    if rec:
        per_step = [
            layer.cell.recurrent_grads(p, _step_view(tr, t), dxw[t : t + 1]) for t in range(tr.T)
        ]
        for n in rec:
            terms[n] = np_.stack([g[n] for g in per_step])
    return {n: terms[n] for n in want}


def _norms(a, axes):
    a = backend.to_numpy(a).astype(np.float64, copy=False)
    return np.sqrt((a * a).sum(axis=axes))


# -- the loss of a batch ---------------------------------------------------------------------------
def _loss_fn(model, loss):
    if loss is not None:
        return losses.get(loss)
    if getattr(model, "loss", None) is not None:
        return model.loss
    return losses.get("mse")


def loss_and_output_grad(model, x, y, loss=None, mask=None, sample_weight=None, training=False):
    """Forward ``x``, then (L, ∂L/∂ŷ, ŷ) for targets ``y`` and the model's loss (or
    ``loss``; mse when the model is not compiled)."""
    kwargs = {"training": training}
    if mask is not None:
        kwargs["mask"] = mask
    out = model.forward(x, **kwargs)
    fn = _loss_fn(model, loss)
    out_mask = getattr(model, "output_mask", None) if out.ndim >= 3 else None
    value, dy = fn(y, out, mask=out_mask, sample_weight=sample_weight)
    return value, dy, out


# -- records -----------------------------------------------------------------------------------------
class LayerRecord:
    """What one recurrent layer's reverse loop computed, step by step.

    name, kind ('rnn'/'lstm'/'gru'), states ('h',) or ('h', 'c')
    deltas        {state: (T+1, N, size)}  ∂L/∂s_t (index 0: the initial state)
    delta_norms   {state: (T+1,)}          ‖∂L/∂S_t‖ over the batch
    dxw           (T, N, G)               ∂L/∂a_t, pre-activation gradients
    terms         {param: (T, *shape)}    each step's term of the gradient
    term_norms    {param: (T,)}
    grads         {param: array}          the layer's gradient from its own backward
    """

    def __init__(self, layer, dxw, deltas, terms, grads):
        self.name = layer.name
        self.kind = cell_kind(layer)
        self.states = state_names(layer)
        self.go_backwards = layer.go_backwards
        self.dxw = dxw
        self.deltas = dict(zip(self.states, deltas))
        self.delta_norms = {k: _norms(d, (1, 2)) for k, d in self.deltas.items()}
        self.terms = terms
        self.term_norms = {k: _norms(v, tuple(range(1, v.ndim))) for k, v in terms.items()}
        self.grads = grads

    def sum_check(self):
        """{param: ‖Σ_t term_t - gradient‖ / ‖gradient‖}: how exactly the per-step terms
        add up to the layer's gradient (≈1e-16 in float64)."""
        out = {}
        for k, v in self.terms.items():
            s = backend.to_numpy(v).astype(np.float64).sum(axis=0)
            g = backend.to_numpy(self.grads[k]).astype(np.float64)
            scale = max(np.linalg.norm(g), np.linalg.norm(s))
            out[k] = 0.0 if scale == 0 else float(np.linalg.norm(s - g) / scale)
        return out

    def summary(self):
        """JSON-ready numbers."""
        return {
            "kind": self.kind,
            "go_backwards": self.go_backwards,
            "delta_norms": {k: v.tolist() for k, v in self.delta_norms.items()},
            "term_norms": {k: v.tolist() for k, v in self.term_norms.items()},
            "grad_norms": {
                k: float(np.linalg.norm(backend.to_numpy(g))) for k, g in self.grads.items()
            },
            "sum_check": self.sum_check(),
        }


class GradientRecords:
    """``loss``: the batch loss (None when an output gradient was given); ``layers``:
    {name: LayerRecord}, in walk order; ``recorded``: what ``record=`` asked for
    ({layer: {"gates": ..., "states": ...}}, views; see ``rnnkit.diagnostics.record``),
    else None."""

    def __init__(self, loss, layers, recorded=None):
        self.loss = loss
        self.layers = layers
        self.recorded = recorded

    def __getitem__(self, name):
        return self.layers[name]

    def __iter__(self):
        return iter(self.layers.values())

    def summary(self):
        return {"loss": self.loss, "layers": {n: r.summary() for n, r in self.layers.items()}}


def gradient_records(
    model,
    x,
    y=None,
    loss=None,
    mask=None,
    sample_weight=None,
    terms=True,
    training=False,
    record=None,
    output_grad=None,
):
    """Forward and backward one batch, and replay every recurrent layer's reverse loop
    keeping each step: δ_t = ∂L/∂s_t, ∂L/∂a_t and each step's term of each parameter's
    gradient (``terms``: True, False or a list of parameter names).  Returns
    GradientRecords; ``model.grads`` is the batch's gradient afterwards.

    record        'gates', 'states' or both: also return every step's gates and states of
                  the same forward pass (views of its buffers, ``.recorded``)
    output_grad   instead of targets and a loss: ∂L/∂(model output), in the structure the
                  model's ``backward`` takes (e.g. (d_output, d_h_n) for an RNNStack)
    """
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError("gradient_records: the model has no recurrent layer")
    with kept_states(model):
        if output_grad is None:
            if y is None:
                raise ValueError(
                    "gradient_records: give targets y (with the model's loss or "
                    "loss=...) or output_grad"
                )
            value, dy, _ = loss_and_output_grad(model, x, y, loss, mask, sample_weight, training)
        else:
            kwargs = {"training": training}
            if mask is not None:
                kwargs["mask"] = mask
            model.forward(x, **kwargs)
            value, dy = None, output_grad
        recorded = None
        if record:
            from .gates import layer_record

            recorded = {l.name: layer_record(l, record) for l in layers}
        with capture_backward(layers) as captured:
            model.backward(dy)
    records = {}
    for layer in layers:
        if layer.name not in captured:
            continue
        tr = trace_of(layer)
        d_out, d_final = layer.bptt_inputs(captured[layer.name])
        dxw, deltas = replay_backward(layer.cell, layer.params, tr, d_out, d_final)
        names = None if terms is True else ([] if not terms else list(terms))
        t = step_terms(layer, dxw, tr, names)
        grads = {k: backend.to_numpy(g).copy() for k, g in layer.grads.items()}
        records[layer.name] = LayerRecord(layer, dxw, deltas, t, grads)
    return GradientRecords(value, records, recorded)


# -- the t × k gradient-flow map ----------------------------------------------------------------------
class GradientFlow:
    """``steps``: the output steps t whose losses were backpropagated one at a time
    (None for a model with one output per sequence: its loss is the final step's);
    ``maps``: {layer: {state: (len(steps), T+1) array}}, entry [i, k] = ‖∂L_t/∂S_k‖ for
    t = steps[i] (k = 0 is the initial state)."""

    def __init__(self, steps, maps, loss):
        self.steps = steps
        self.maps = maps
        self.loss = loss

    def summary(self):
        return {
            "steps": None if self.steps is None else list(self.steps),
            "maps": {n: {k: v.tolist() for k, v in m.items()} for n, m in self.maps.items()},
        }


def gradient_flow(
    model, x, y, loss=None, mask=None, sample_weight=None, steps=None, training=False
):
    """The map ‖∂L_t/∂s_k‖: for each output step t (all, or ``steps``), the loss of that
    step alone is backpropagated through the whole model and each recurrent layer's
    reverse loop is replayed, keeping ∂L_t/∂s_k for every k.  For a model with one output
    per sequence, the map has one row.  Costs one backward pass per row."""
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError("gradient_flow: the model has no recurrent layer")
    np_ = backend.xp()
    with kept_states(model):
        value, dy, out = loss_and_output_grad(model, x, y, loss, mask, sample_weight, training)
        if out.ndim >= 3:
            rows = list(range(out.shape[1])) if steps is None else [int(s) for s in steps]
        else:
            rows = None
        maps = {l.name: {k: [] for k in state_names(l)} for l in layers}
        for t in rows if rows is not None else [None]:
            if t is None:
                dy_t = dy
            else:
                dy_t = np_.zeros_like(dy)
                dy_t[:, t] = dy[:, t]  # ∂L_t/∂ŷ_t alone
            with capture_backward(layers) as captured:
                model.backward(dy_t)
            for layer in layers:
                if layer.name not in captured:
                    continue
                d_out, d_final = layer.bptt_inputs(captured[layer.name])
                _, deltas = replay_backward(
                    layer.cell, layer.params, trace_of(layer), d_out, d_final
                )
                for k, d in zip(state_names(layer), deltas):
                    maps[layer.name][k].append(_norms(d, (1, 2)))
        model.backward(dy)  # leave the full loss's gradient
    maps = {n: {k: np.array(v) for k, v in m.items()} for n, m in maps.items() if m["h"]}
    return GradientFlow(rows, maps, value)


__all__ = [
    "recurrent_layers",
    "trace_of",
    "as_float64",
    "replay_backward",
    "step_terms",
    "gradient_records",
    "gradient_flow",
    "GradientRecords",
    "LayerRecord",
    "GradientFlow",
    "capture_backward",
    "loss_and_output_grad",
]
