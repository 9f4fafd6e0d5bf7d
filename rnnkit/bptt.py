"""Backpropagation through time: the lecture's loops over time, forward and reverse.

A recurrent layer hands over the input projections of all steps at once,

    XW[t] = x_t U + b          (T, N, G): one large matrix product, done by the layer

and a cell that knows one step of its recurrence (``cells/``).  ``forward`` runs the
recurrence step by step and keeps, in a ``Trace``, what the reverse loop needs;
``backward`` walks the steps in reverse, applying the chain rule

    ∂L/∂s_{t-1} = ∂L/∂s_{t-1}|direct + (∂L/∂s_t)(∂s_t/∂s_{t-1}),

and returns ∂L/∂XW[t] for every step, from which the layer gets the weight gradients
with single matrix products after the loop (dU = Xᵀ dXW, dW = S_prevᵀ dA).

Masks (Keras semantics): where ``mask[t, n]`` is False, sample n skips step t: its state
is carried over unchanged (s_t = s_{t-1}), and in reverse the gradient passes through the
carry untouched and nothing reaches that step's weights.

This module is the reference and knows no accelerator.  A compiled version of the same two
loops (``rnnkit.kernels``) fills the same ``Trace``; the layers try it first and fall back
to these loops, which every accelerator is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .backend import xp

Array = Any  # a NumPy (or CuPy) array
Params = dict[str, Array]


class Trace:
    """What one forward pass keeps, all time-major.

    states[k][t]   (T+1, N, size_k)  state k after t steps; index 0 holds the initial state
    cache[name]    (T, N, ...)       per-step quantities a cell needs in reverse (gates, ...)
    mask           (T, N, 1) bool or None
    rec_mask       (N, H_rec) or None   recurrent dropout mask, one per sequence
    """

    def __init__(
        self,
        T: int,
        N: int,
        dtype,
        state_sizes: Sequence[int],
        mask: Array = None,
        rec_mask: Array = None,
    ) -> None:
        self.xp = xp()
        self.T, self.N, self.dtype = T, N, dtype
        self.states = [self.xp.empty((T + 1, N, size), dtype=dtype) for size in state_sizes]
        self.cache: dict[str, Array] = {}
        self.mask = mask
        self.rec_mask = rec_mask
        # Steps where every sample is active skip the mask arithmetic entirely.
        self.full_step: list[bool] = (
            [True] * T if mask is None else [bool(v) for v in mask.all(axis=(1, 2)).tolist()]
        )

    def buffer(self, name: str, width: int) -> Array:
        """A preallocated (T, N, width) per-step buffer called ``name``."""
        buf = self.xp.empty((self.T, self.N, width), dtype=self.dtype)
        self.cache[name] = buf
        return buf

    def prev_input(self, k: int = 0) -> Array:
        """The states that entered each step's recurrent product, (T, N, size):
        s_{t-1}, times the recurrent dropout mask if there is one."""
        s_prev = self.states[k][:-1]
        return s_prev if self.rec_mask is None else s_prev * self.rec_mask


def forward(
    cell,
    params: Params,
    xw: Array,
    initial_states: Sequence[Array],
    mask: Array = None,
    rec_mask: Array = None,
) -> Trace:
    """Run ``cell`` over all T steps of ``xw`` (T, N, G) = x_t U + b from
    ``initial_states`` [(N, size_k)].  ``mask`` (T, N, 1) bool or None; ``rec_mask``
    (N, H_rec) or None: the recurrent dropout mask.  Returns the Trace."""
    T, N = xw.shape[:2]
    trace = Trace(T, N, xw.dtype, cell.state_sizes, mask, rec_mask)
    cell.allocate(trace)
    for s, s0 in zip(trace.states, initial_states):
        s[0] = s0
    np_ = trace.xp
    for t in range(T):
        cell.step(params, trace, t, xw[t])
        if mask is not None and not trace.full_step[t]:
            skip = ~mask[t]  # (N, 1): samples that skip step t
            for s in trace.states:
                np_.copyto(s[t + 1], s[t], where=skip)  # s_t = s_{t-1} where masked
    return trace


def backward(
    cell,
    params: Params,
    trace: Trace,
    d_outputs: Array = None,
    d_final: Sequence[Array | None] | None = None,
    deltas: Sequence[Array] | None = None,
) -> tuple[Array, list[Array]]:
    """The reverse loop.

    d_outputs: (T, N, size_0) ∂L/∂(output of step t) = ∂L/∂s_t through the layer's
               output sequence, or None when only the final state was used.
    d_final:   list of ∂L/∂(final state k), or None.
    deltas:    None, or one (T+1, N, size_k) array per state to fill with the total
               gradient δ_t = ∂L/∂s_t at every step (index 0: the initial state) — what
               the loop computes on its way back and otherwise forgets (diagnostics).
    Returns (dxw, d_initial): dxw (T, N, G) = ∂L/∂XW[t], and ∂L/∂(initial state k).
    """
    np_ = trace.xp
    T, N = trace.T, trace.N
    ds = [np_.zeros((N, s.shape[-1]), dtype=trace.dtype) for s in trace.states]
    if d_final is not None:
        for d, g in zip(ds, d_final):
            if g is not None:
                d += g
    dxw = np_.empty((T, N, cell.width), dtype=trace.dtype)
    for t in range(T - 1, -1, -1):
        if d_outputs is not None:
            ds[0] += d_outputs[t]  # ∂L_t/∂s_t enters here
        if deltas is not None:
            for keep, d in zip(deltas, ds):
                keep[t + 1] = d  # δ_t = ∂L/∂s_t
        if trace.mask is None or trace.full_step[t]:
            ds = cell.step_back(params, trace, t, ds, dxw[t])
        else:
            m = trace.mask[t]  # (N, 1)
            new = cell.step_back(params, trace, t, [d * m for d in ds], dxw[t])
            for d_new, d in zip(new, ds):  # masked samples: s_t = s_{t-1},
                np_.copyto(d_new, d, where=~m)  # their gradient is carried over
            ds = new
    if deltas is not None:
        for keep, d in zip(deltas, ds):
            keep[0] = d  # ∂L/∂(initial state)
    return dxw, ds
