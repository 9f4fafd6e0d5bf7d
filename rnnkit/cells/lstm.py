"""Long short-term memory (Hochreiter & Schmidhuber), with optional projection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backend import matmul
from .base import Cell, MatMul, Params, flat

if TYPE_CHECKING:
    from .. import activations
    from ..bptt import Trace


class LSTMCell(Cell):
    """LSTM step, gates stacked in the order i, f, g, o (as PyTorch and Keras):

        [a_i a_f a_g a_o] = x_t U + h_{t-1} W + b        U: D×4H  W: P×4H  b: 4H
        i = ρ(a_i)   f = ρ(a_f)   g = σ(a_g)   o = ρ(a_o)  (ρ recurrent_activation, σ activation)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        m_t = o ⊙ σ(c_t)
        h_t = m_t                     (P = H)
        h_t = m_t P                   with proj_size p < H: P is H×p (PyTorch's weight_hr, transposed)

    Reverse step, given ∂L/∂h_t and ∂L/∂c_t (the latter from step t+1):

        ∂L/∂m_t      = ∂L/∂h_t (Prᵀ)
        ∂L/∂o        = ∂L/∂m_t ⊙ σ(c_t)
        ∂L/∂c_t     += ∂L/∂m_t ⊙ o ⊙ σ'(c_t)
        ∂L/∂i = ∂L/∂c_t ⊙ g    ∂L/∂f = ∂L/∂c_t ⊙ c_{t-1}    ∂L/∂g = ∂L/∂c_t ⊙ i
        ∂L/∂a_*      = ∂L/∂(gate) ⊙ (activation)'   for each of the four blocks
        ∂L/∂c_{t-1}  = ∂L/∂c_t ⊙ f                 (the cell path: no matrix, no squashing)
        ∂L/∂h_{t-1}  = ∂L/∂a Wᵀ
    """

    gates = 4

    def __init__(
        self,
        units: int,
        activation: str | activations.Activation = "tanh",
        recurrent_activation: str | activations.Activation = "sigmoid",
        use_bias: bool = True,
        proj_size: int = 0,
    ) -> None:
        super().__init__(units, activation, recurrent_activation, use_bias)
        self.proj_size = proj_size

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.proj_size or self.units, self.units)  # (h, c)

    def param_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        shapes = super().param_shapes(input_dim)
        if self.proj_size:
            shapes["P"] = (self.units, self.proj_size)
        return shapes

    def allocate(self, tr: Trace) -> None:
        H = self.units
        tr.buffer("gates", 4 * H)  # i, f, g, o after their activations
        tr.buffer("act_c", H)  # σ(c_t)
        if self.proj_size:
            tr.buffer("m", H)  # m_t = o ⊙ σ(c_t), the input of the projection
            tr.buffer("dh", self.proj_size)  # ∂L/∂h_t, for ∂L/∂P after the loop

    def step(self, p: Params, tr: Trace, t: int, xw_t: np.ndarray) -> None:
        np_, H = tr.xp, self.units
        h_prev, c_prev = tr.states[0][t], tr.states[1][t]
        h, c = tr.states[0][t + 1], tr.states[1][t + 1]
        if tr.rec_mask is not None:
            h_prev = h_prev * tr.rec_mask
        z = tr.cache["gates"][t]
        np_.matmul(h_prev, p["W"], out=z)  # h_{t-1} W
        z += xw_t  # a = x_t U + b + h_{t-1} W
        i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        self.recurrent_activation(z[:, : 2 * H], out=z[:, : 2 * H])  # i, f
        self.activation(g, out=g)  # g
        self.recurrent_activation(o, out=o)  # o
        act_c = tr.cache["act_c"][t]
        np_.multiply(f, c_prev, out=c)  # c_t = f ⊙ c_{t-1}
        c += np_.multiply(i, g, out=act_c)  #     + i ⊙ g  (act_c: scratch)
        self.activation(c, out=act_c)  # σ(c_t)
        if self.proj_size:
            m = np_.multiply(o, act_c, out=tr.cache["m"][t])  # m_t = o ⊙ σ(c_t)
            np_.matmul(m, p["P"], out=h)  # h_t = m_t P
        else:
            np_.multiply(o, act_c, out=h)  # h_t = o ⊙ σ(c_t)

    def step_back(
        self, p: Params, tr: Trace, t: int, ds: list[np.ndarray], dxw_t: np.ndarray
    ) -> list[np.ndarray]:
        H = self.units
        dh, dc = ds  # ∂L/∂h_t, ∂L/∂c_t
        z = tr.cache["gates"][t]
        i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        act_c, c_prev = tr.cache["act_c"][t], tr.states[1][t]
        if self.proj_size:
            tr.cache["dh"][t] = dh
            dm = dh @ p["P"].T  # ∂L/∂m_t = ∂L/∂h_t Prᵀ
        else:
            dm = dh
        dc = dc + self.activation.backprop(dm * o, act_c)  # ∂L/∂c_t += ∂L/∂m_t ⊙ o ⊙ σ'(c_t)
        rho, sigma = self.recurrent_activation, self.activation
        rho.backprop(dc * g, i, out=dxw_t[:, :H])  # ∂L/∂a_i = ∂L/∂c_t ⊙ g ⊙ ρ'
        rho.backprop(dc * c_prev, f, out=dxw_t[:, H : 2 * H])  # ∂L/∂a_f = ∂L/∂c_t ⊙ c_{t-1} ⊙ ρ'
        sigma.backprop(dc * i, g, out=dxw_t[:, 2 * H : 3 * H])  # ∂L/∂a_g = ∂L/∂c_t ⊙ i ⊙ σ'
        rho.backprop(dm * act_c, o, out=dxw_t[:, 3 * H :])  # ∂L/∂a_o = ∂L/∂m_t ⊙ σ(c_t) ⊙ ρ'
        dh_prev = dxw_t @ p["W"].T  # ∂L/∂h_{t-1} = ∂L/∂a Wᵀ
        if tr.rec_mask is not None:
            dh_prev *= tr.rec_mask
        return [dh_prev, dc * f]  # ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f

    def recurrent_grads(
        self, p: Params, tr: Trace, dxw: np.ndarray, matmul: MatMul = matmul
    ) -> Params:
        grads = {"W": matmul(flat(tr.prev_input()).T, flat(dxw))}  # Σ_t h_{t-1}ᵀ ∂L/∂a_t
        if self.proj_size:
            grads["P"] = matmul(flat(tr.cache["m"]).T, flat(tr.cache["dh"]))  # Σ_t m_tᵀ ∂L/∂h_t
        return grads
