"""A public finite-difference check of hand-written gradients.

``gradcheck(model_or_layer, x)`` copies the model to float64, fixes its dropout
masks and carried states, and compares ``backward`` with central differences

    ∂L/∂θ_i ≈ (L(θ + ε e_i) - L(θ - ε e_i)) / 2ε

for every parameter, the input and (if given) the initial state, where
L = Σ ⟨output, R⟩ with a fixed random R.  It returns the worst relative error
‖analytic - numeric‖ / max(‖analytic‖, ‖numeric‖) over all checked tensors.
"""

from __future__ import annotations

import copy

import numpy as np

from . import backend


def _flatten(obj):
    if isinstance(obj, (list, tuple)):
        return [a for o in obj for a in _flatten(o)]
    return [obj]


def _like(obj, make):
    if isinstance(obj, tuple):
        return tuple(_like(o, make) for o in obj)
    if isinstance(obj, list):
        return [_like(o, make) for o in obj]
    return make(obj)


def _rel_error(a, n):
    a, n = np.asarray(a, dtype=np.float64).ravel(), np.asarray(n, dtype=np.float64).ravel()
    scale = max(np.linalg.norm(a), np.linalg.norm(n))
    if scale == 0.0:
        return 0.0
    return float(np.linalg.norm(a - n) / scale)


def gradcheck(
    model,
    x,
    *,
    mask=None,
    initial_state=None,
    training=False,
    eps=1e-6,
    max_checks=None,
    check_inputs=True,
    seed=0,
    return_report=False,
    **forward_kwargs,
):
    """Worst relative error between ``backward`` and central differences (float64).

    model          any rnnkit layer or model (it is copied, not changed)
    x              its input; float inputs are checked too (``check_inputs``)
    mask, initial_state, training, forward_kwargs
                   passed to ``forward``; with training=True the dropout masks of the
                   first forward are reused by every later one
    max_checks     check at most this many randomly chosen elements per tensor
    return_report  also return {tensor name: relative error}
    """
    rng = np.random.default_rng(seed)
    m = copy.deepcopy(model)
    m.astype("float64")
    stateful = []
    for layer in m.walk():
        if hasattr(layer, "freeze_dropout"):
            layer.freeze_dropout = True
        if getattr(layer, "stateful", False) and hasattr(layer, "states"):
            # every evaluation starts from the carried state as it is now (None: zeros)
            kept = None if layer.states is None else [s.copy() for s in layer.states]
            stateful.append((layer, kept))

    np_ = backend.xp()

    def as64(a):
        a = np_.asarray(a)
        return a.astype(np.float64) if np.dtype(a.dtype).kind == "f" else a

    # a model with several inputs (e.g. EncoderDecoder) reports the gradient of the first
    x = tuple(as64(a) for a in x) if isinstance(x, (list, tuple)) else as64(x)
    x_first = x[0] if isinstance(x, tuple) else x
    float_input = np.dtype(x_first.dtype).kind == "f"
    kwargs = dict(forward_kwargs, training=training)
    if mask is not None:
        kwargs["mask"] = mask
    h0 = None
    if initial_state is not None:
        h0 = _like(initial_state, lambda a: np_.asarray(a, dtype=np.float64).copy())

    def run(xin, state):
        for layer, states in stateful:
            layer.states = None if states is None else [s.copy() for s in states]
        if state is None:
            return m.forward(xin, **kwargs)
        key = "h0" if _accepts_h0(m) else "initial_state"
        return m.forward(xin, **{**kwargs, key: state})

    out = run(x, h0)
    R = _like(out, lambda a: np_.asarray(rng.standard_normal(a.shape)))
    R_flat = _flatten(R)

    def loss(xin, state):
        outs = _flatten(run(xin, state))
        return float(sum(float((o * r).sum()) for o, r in zip(outs, R_flat)))

    run(x, h0)
    dx = m.backward(R)
    analytic = {k: backend.to_numpy(g).copy() for k, g in m.grads.items()}
    if float_input and check_inputs and dx is not None:
        analytic["input"] = backend.to_numpy(dx).copy()
    d_h0 = None
    if h0 is not None:
        d_h0 = _initial_state_grads(m)
        for i, g in enumerate(_flatten(d_h0)):
            analytic[f"initial_state[{i}]"] = backend.to_numpy(g).copy()

    targets = {k: v for k, v in m.params.items()}
    if "input" in analytic:
        targets["input"] = x_first
    if d_h0 is not None:
        for i, s in enumerate(_flatten(h0)):
            targets[f"initial_state[{i}]"] = s

    report = {}
    for name, arr in targets.items():
        if name not in analytic:
            continue
        if not arr.flags.c_contiguous:
            raise ValueError(
                f"gradcheck: {name} is not C-contiguous, so it cannot be perturbed in place"
            )
        flat = arr.reshape(-1)
        idx = np.arange(flat.size)
        if max_checks is not None and flat.size > max_checks:
            idx = rng.choice(flat.size, size=max_checks, replace=False)
        numeric = np.empty(len(idx))
        for j, i in enumerate(idx):
            old = float(flat[i])
            flat[i] = old + eps
            up = loss(x, h0)
            flat[i] = old - eps
            down = loss(x, h0)
            flat[i] = old
            numeric[j] = (up - down) / (2 * eps)
        report[name] = _rel_error(analytic[name].reshape(-1)[idx], numeric)
    worst = max(report.values()) if report else 0.0
    return (worst, report) if return_report else worst


def _accepts_h0(model):
    from .models import RNNStack

    return isinstance(model, RNNStack)


def _initial_state_grads(m):
    g = getattr(m, "initial_state_grads", None)
    if g is None:
        raise TypeError(f"{type(m).__name__} does not report gradients for its initial state")
    return g
