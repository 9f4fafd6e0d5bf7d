"""Jacobians ∂s_t/∂s_k of the recurrence, exactly, next to the lecture's bounds.

The lecture (row-vector convention, s_j = σ(a_j), a_j = x_j U + s_{j-1} W + b):

    ∂s_t/∂s_k = Π_{j=k+1..t} ∂s_j/∂s_{j-1},      ∂s_j/∂s_{j-1} = diag(σ'(a_j)) Wᵀ

    ‖∂s_t/∂s_k‖ ≤ Π_j ‖diag(σ'(a_j))‖ ‖W‖ ≤ (γλ)^{t-k}        γ = sup σ', λ = ‖W‖₂

so the gradient vanishes when γλ < 1 and may explode when γλ > 1.  Here, for one
sequence of a batch:

    step_jacobians(layer, n)   the exact one-step Jacobians J_j = ∂s_j/∂s_{j-1}, (T, M, M),
                               for any cell: rows come from the cell's own reverse step fed
                               with the unit vectors (a vector-Jacobian product per row), so
                               they hold for every activation and both GRU variants; for an
                               LSTM the state is the pair (h, c) and M = size(h) + size(c)
    jacobian_norms(model, x)   ‖∂s_t/∂s_k‖₂ (spectral norm) against t - k, with
                                 product    Π_j ‖J_j‖₂          (any cell; a valid bound)
                                 data       Π_j max σ'(a_j) · λ  (Elman: the tighter bound)
                                 lecture    (γλ)^{t-k}           (Elman: the lecture's)
                               and for an LSTM the cell block ∂c_t/∂c_k of the full
                               Jacobian and the carousel path Π_j diag(f_j) alone.

Rows: entry [m, m'] of J_j is ∂s_{j,m}/∂s_{j-1,m'} (the layout of the lecture's column
vectors; in the row-vector code this is diag(σ'(a_j)) Wᵀ).  Steps where the sample is
masked carry the state unchanged: their Jacobian is the identity and the bounds skip them.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend
from .traces import cell_kind, kept_states, recurrent_layers, state_names, trace_of


def _sample_trace(trace, n, rows):
    """The Trace of sample n alone, repeated ``rows`` times along the batch axis."""
    tr = copy.copy(trace)
    np_ = trace.xp
    T, N = trace.T, trace.N
    tr.N = rows
    tr.states = [np_.repeat(s[:, n : n + 1], rows, axis=1) for s in trace.states]
    tr.cache = {
        k: (np_.repeat(v[:, n : n + 1], rows, axis=1) if v.shape[:2] == (T, N) else v)
        for k, v in trace.cache.items()
    }
    tr.mask, tr.full_step = None, None
    tr.rec_mask = None if trace.rec_mask is None else np_.repeat(trace.rec_mask[n : n + 1], rows, 0)
    return tr


def step_jacobians(layer, sample=0):
    """(T, M, M) float64: J[j-1] = ∂s_j/∂s_{j-1} for j = 1..T, for sequence ``sample`` of
    the layer's last forward pass; the state s is the concatenation of the layer's states
    ((h, c) for an LSTM)."""
    trace = trace_of(layer)
    cell, p = layer.cell, layer.params
    np_ = trace.xp
    sizes = [s.shape[-1] for s in trace.states]
    M = sum(sizes)
    tr = _sample_trace(trace, sample, M)
    eye = np_.eye(M, dtype=trace.dtype)
    seeds, off = [], 0
    for size in sizes:
        seeds.append(np_.ascontiguousarray(eye[:, off : off + size]))
        off += size
    dxw = np_.empty((M, cell.width), dtype=trace.dtype)
    J = np.empty((trace.T, M, M))
    mask = None if trace.mask is None else backend.to_numpy(trace.mask)[:, sample, 0]
    for t in range(trace.T):
        if mask is not None and not mask[t]:
            J[t] = np.eye(M)  # a skipped step: s_t = s_{t-1}
            continue
        rows = cell.step_back(p, tr, t, [s.copy() for s in seeds], dxw)
        J[t] = np.concatenate([backend.to_numpy(r) for r in rows], axis=1)
    return J


def spectral_norm(a):
    """‖a‖₂, the largest singular value."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64), 2))


def product_norms(J, t=None, blocks=None):
    """‖∂s_t/∂s_k‖₂ for k = t, t-1, ..., 0, from one-step Jacobians J (T, M, M) (J[j-1] =
    ∂s_j/∂s_{j-1}).  Returns an array indexed by the lag t - k (entry 0 is ‖I‖ = 1), and
    with ``blocks`` {name: (rows slice, cols slice)} also the norms of those blocks."""
    T, M = J.shape[0], J.shape[1]
    t = T if t is None else int(t)
    P = np.eye(M)
    norms = np.empty(t + 1)
    block_norms = {k: np.empty(t + 1) for k in (blocks or {})}
    norms[0] = 1.0
    for name, (r, c) in (blocks or {}).items():
        block_norms[name][0] = spectral_norm(P[r, c])
    for lag in range(1, t + 1):
        k = t - lag
        P = P @ J[k]  # ∂s_t/∂s_k = (∂s_t/∂s_{k+1}) (∂s_{k+1}/∂s_k)
        norms[lag] = spectral_norm(P)
        for name, (r, c) in (blocks or {}).items():
            block_norms[name][lag] = spectral_norm(P[r, c])
    return (norms, block_norms) if blocks else norms


def norm_matrix(J):
    """(T+1, T+1): entry [t, k] = ‖∂s_t/∂s_k‖₂ for k ≤ t, NaN above the diagonal."""
    T = J.shape[0]
    out = np.full((T + 1, T + 1), np.nan)
    for t in range(T + 1):
        out[t, t::-1] = product_norms(J, t)
    return out


def recurrent_weight_norm(layer, sample=None):
    """λ = ‖W‖₂ of the recurrent weights (for a sample with recurrent dropout in the
    last forward pass, of diag(mask) W, what that sample's steps used)."""
    W = backend.to_numpy(layer.params["W"]).astype(np.float64)
    trace = getattr(layer, "_ctx", None) and trace_of(layer)
    if trace is not None and trace.rec_mask is not None and sample is not None:
        W = backend.to_numpy(trace.rec_mask[sample])[:, None] * W
    return spectral_norm(W)


def _elman_bounds(layer, trace, n, t, lam):
    """(data bound, lecture bound) against the lag, for an Elman layer."""
    act = layer.cell.activation
    gamma = act.gamma
    s = backend.to_numpy(trace.states[0]).astype(np.float64)  # (T+1, N, H)
    dmax = np.abs(backend.to_numpy(act.deriv(s[1:, n]))).max(axis=-1)  # max σ'(a_j), j = 1..T
    active = np.ones(trace.T, bool)
    if trace.mask is not None:
        active = backend.to_numpy(trace.mask)[:, n, 0].astype(bool)
    data, lecture = np.ones(t + 1), np.ones(t + 1)
    for lag in range(1, t + 1):
        j = t - lag  # step j+1's Jacobian
        fd = dmax[j] * lam if active[j] else 1.0
        fl = gamma * lam if active[j] else 1.0
        data[lag] = data[lag - 1] * fd
        lecture[lag] = lecture[lag - 1] * fl
    return data, lecture


def _carousel(trace, n, t, H):
    """max_i Π_j f_{j,i}: the LSTM's cell path alone (∂c_t/∂c_k through c only)."""
    f = backend.to_numpy(trace.cache["gates"][:, n, H : 2 * H]).astype(np.float64)  # (T, H)
    out, prod = np.ones(t + 1), np.ones(H)
    active = np.ones(trace.T, bool)
    if trace.mask is not None:
        active = backend.to_numpy(trace.mask)[:, n, 0].astype(bool)
    for lag in range(1, t + 1):
        j = t - lag
        if active[j]:
            prod = prod * f[j]
        out[lag] = prod.max()
    return out


def layer_jacobian_norms(layer, samples=(0,), t=None):
    """The numbers of ``jacobian_norms`` for one layer, from its last forward pass."""
    trace = trace_of(layer)
    kind = cell_kind(layer)
    T = trace.T
    t = T if t is None else int(t)
    sizes = [s.shape[-1] for s in trace.states]
    out = {
        "kind": kind,
        "t": t,
        "lag": list(range(t + 1)),
        "samples": [int(n) for n in samples],
        "exact": [],
        "product": [],
    }
    if kind == "rnn":
        out.update(
            gamma=layer.cell.activation.gamma,
            activation=layer.cell.activation.name,
            data=[],
            lecture=[],
        )
    out["lambda"] = recurrent_weight_norm(layer)
    blocks = None
    if kind == "lstm":
        P, H = sizes
        blocks = {"cell": (slice(P, P + H), slice(P, P + H))}
        out.update(cell=[], carousel=[])
    for n in samples:
        J = step_jacobians(layer, n)
        res = product_norms(J, t, blocks)
        exact, block_norms = res if blocks else (res, {})
        one = np.array([spectral_norm(J[j]) for j in range(t)])  # ‖J_j‖, j = 1..t
        prod = np.ones(t + 1)
        for lag in range(1, t + 1):
            prod[lag] = prod[lag - 1] * one[t - lag]
        out["exact"].append(exact.tolist())
        out["product"].append(prod.tolist())
        if kind == "rnn":
            data, lecture = _elman_bounds(layer, trace, n, t, recurrent_weight_norm(layer, n))
            out["data"].append(data.tolist())
            out["lecture"].append(lecture.tolist())
        if kind == "lstm":
            out["cell"].append(block_norms["cell"].tolist())
            out["carousel"].append(_carousel(trace, n, t, sizes[1]).tolist())
    return out


def jacobian_norms(model, x, samples=(0,), t=None, mask=None, layers=None):
    """Forward ``x`` (inference mode) and, for each recurrent layer (or ``layers``, names),
    ‖∂s_t/∂s_k‖₂ against the lag t - k (t = the last step unless given) for each sequence
    in ``samples``, with the bounds described in this module's docstring.  Returns
    {layer: {"lag": [...], "exact": [[...] per sample], "product": ..., "data": ...,
    "lecture": ..., "lambda": λ, "gamma": γ, ...}}."""
    kwargs = {} if mask is None else {"mask": mask}
    with kept_states(model):
        model.forward(x, training=False, **kwargs)
    chosen = recurrent_layers(model)
    if layers is not None:
        chosen = [l for l in chosen if l.name in set(layers)]
    return {l.name: layer_jacobian_norms(l, samples, t) for l in chosen}


__all__ = [
    "step_jacobians",
    "product_norms",
    "norm_matrix",
    "spectral_norm",
    "recurrent_weight_norm",
    "layer_jacobian_norms",
    "jacobian_norms",
    "state_names",
]
