"""The Elman recurrence of the lecture."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backend import matmul
from .base import Cell, MatMul, Params, flat

if TYPE_CHECKING:
    from ..bptt import Trace


class SimpleCell(Cell):
    """Elman RNN step, row-vector convention (x_t is 1×D, s_t is 1×H):

        a_t = x_t U + s_{t-1} W + b        U: D×H   W: H×H   b: H
        s_t = σ(a_t)

    Reverse step, given δ_t = ∂L/∂s_t:

        ∂L/∂a_t     = δ_t ⊙ σ'(a_t)        (σ' written through s_t)
        ∂L/∂s_{t-1} = (∂L/∂a_t) Wᵀ         (the recurrent path of the chain rule)

    and after the loop ∂L/∂W = Σ_t s_{t-1}ᵀ ∂L/∂a_t, one product over all steps.
    """

    gates = 1

    def step(self, p: Params, tr: Trace, t: int, xw_t: np.ndarray) -> None:
        s_prev, s = tr.states[0][t], tr.states[0][t + 1]
        if tr.rec_mask is not None:
            s_prev = s_prev * tr.rec_mask  # variational recurrent dropout
        tr.xp.matmul(s_prev, p["W"], out=s)  # s_{t-1} W
        s += xw_t  # a_t = x_t U + b + s_{t-1} W
        self.activation(s, out=s)  # s_t = σ(a_t)

    def step_back(
        self, p: Params, tr: Trace, t: int, ds: list[np.ndarray], dxw_t: np.ndarray
    ) -> list[np.ndarray]:
        da = self.activation.backprop(ds[0], tr.states[0][t + 1], out=dxw_t)  # ∂L/∂a_t
        d_prev = da @ p["W"].T  # ∂L/∂s_{t-1} = ∂L/∂a_t Wᵀ
        if tr.rec_mask is not None:
            d_prev *= tr.rec_mask
        return [d_prev]

    def recurrent_grads(
        self, p: Params, tr: Trace, dxw: np.ndarray, matmul: MatMul = matmul
    ) -> Params:
        return {"W": matmul(flat(tr.prev_input()).T, flat(dxw))}  # Σ_t s_{t-1}ᵀ ∂L/∂a_t
