"""Gated recurrent unit (Cho et al.), in both of the variants in use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backend import matmul
from .base import Cell, MatMul, Params, flat, row_sum

if TYPE_CHECKING:
    from .. import activations
    from ..bptt import Trace


class GRUCell(Cell):
    """GRU step, gates stacked in the order z, r, n (Keras's z, r, h; PyTorch
    stores r, z, n and rnnkit.io reorders).  ρ is recurrent_activation, σ activation.

    reset_after=True (PyTorch, cuDNN, Keras's default): the reset gate scales the
    recurrent product, which has its own bias b_rec:

        [x_z x_r x_n] = x_t U + b           [h_z h_r h_n] = h_{t-1} W + b_rec
        z = ρ(x_z + h_z)    r = ρ(x_r + h_r)    n = σ(x_n + r ⊙ h_n)
        h_t = z ⊙ h_{t-1} + (1 - z) ⊙ n

    reset_after=False (Keras's other variant; the original paper): the reset gate
    scales the state before the product:

        [z r] = ρ(x_t U_zr + h_{t-1} W_zr + b_zr)
        n     = σ(x_t U_n + (r ⊙ h_{t-1}) W_n + b_n)
        h_t   = z ⊙ h_{t-1} + (1 - z) ⊙ n

    Reverse step, given ∂L/∂h_t:
        ∂L/∂z = ∂L/∂h_t ⊙ (h_{t-1} - n)        ∂L/∂n = ∂L/∂h_t ⊙ (1 - z)
        ∂L/∂a_n = ∂L/∂n ⊙ σ'
        reset_after:   ∂L/∂h_n = ∂L/∂a_n ⊙ r      ∂L/∂r = ∂L/∂a_n ⊙ h_n
        reset_before:  ∂L/∂(r⊙h) = ∂L/∂a_n W_nᵀ   ∂L/∂r = ∂L/∂(r⊙h) ⊙ h_{t-1}
        ∂L/∂a_z = ∂L/∂z ⊙ ρ'    ∂L/∂a_r = ∂L/∂r ⊙ ρ'
        ∂L/∂h_{t-1} = ∂L/∂h_t ⊙ z + (recurrent-product paths) Wᵀ
    """

    gates = 3

    def __init__(
        self,
        units: int,
        activation: str | activations.Activation = "tanh",
        recurrent_activation: str | activations.Activation = "sigmoid",
        use_bias: bool = True,
        reset_after: bool = True,
    ) -> None:
        super().__init__(units, activation, recurrent_activation, use_bias)
        self.reset_after = reset_after

    @property
    def has_recurrent_bias(self) -> bool:
        return self.reset_after and self.use_bias

    def param_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        shapes = super().param_shapes(input_dim)
        if self.has_recurrent_bias:
            shapes["b_rec"] = (self.width,)
        return shapes

    def allocate(self, tr: Trace) -> None:
        tr.buffer("gates", 3 * self.units)  # z, r, n after their activations
        if self.reset_after:
            tr.buffer("hn", self.units)  # h_n = h_{t-1} W_n + b_rec_n, needed in reverse
            tr.buffer("dhn", self.units)  # ∂L/∂h_n (∂L/∂(h W_zr) is ∂L/∂a_zr itself)
        else:
            tr.buffer("rh", self.units)  # r ⊙ h_{t-1}, the input of W_n

    def step(self, p: Params, tr: Trace, t: int, xw_t: np.ndarray) -> None:
        np_, H = tr.xp, self.units
        h_prev, h = tr.states[0][t], tr.states[0][t + 1]
        hd = h_prev if tr.rec_mask is None else h_prev * tr.rec_mask
        g = tr.cache["gates"][t]
        zr, n = g[:, : 2 * H], g[:, 2 * H :]
        W = p["W"]
        if self.reset_after:
            hw = hd @ W  # h_{t-1} W
            if self.use_bias:
                hw += p["b_rec"]  #   + b_rec
            np_.add(xw_t[:, : 2 * H], hw[:, : 2 * H], out=zr)
            self.recurrent_activation(zr, out=zr)  # z, r
            hn = tr.cache["hn"][t]
            hn[...] = hw[:, 2 * H :]  # h_n, kept for the reverse step
            np_.multiply(g[:, H : 2 * H], hn, out=n)  # r ⊙ h_n
        else:
            np_.matmul(hd, W[:, : 2 * H], out=zr)  # h_{t-1} W_zr
            zr += xw_t[:, : 2 * H]
            self.recurrent_activation(zr, out=zr)  # z, r
            rh = np_.multiply(g[:, H : 2 * H], hd, out=tr.cache["rh"][t])  # r ⊙ h_{t-1}
            np_.matmul(rh, W[:, 2 * H :], out=n)  # (r ⊙ h_{t-1}) W_n
        n += xw_t[:, 2 * H :]
        self.activation(n, out=n)  # n = σ(a_n)
        np_.subtract(h_prev, n, out=h)  # h_t = n + z ⊙ (h_{t-1} - n)
        h *= g[:, :H]
        h += n

    def step_back(
        self, p: Params, tr: Trace, t: int, ds: list[np.ndarray], dxw_t: np.ndarray
    ) -> list[np.ndarray]:
        H = self.units
        dh = ds[0]
        g = tr.cache["gates"][t]
        z, r, n = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
        h_prev = tr.states[0][t]
        W = p["W"]
        rho, sigma = self.recurrent_activation, self.activation
        rho.backprop(dh * (h_prev - n), z, out=dxw_t[:, :H])  # ∂L/∂a_z
        dan = sigma.backprop(dh * (1.0 - z), n, out=dxw_t[:, 2 * H :])  # ∂L/∂a_n
        if self.reset_after:
            rho.backprop(dan * tr.cache["hn"][t], r, out=dxw_t[:, H : 2 * H])  # ∂L/∂a_r
            dhn = tr.xp.multiply(dan, r, out=tr.cache["dhn"][t])  # ∂L/∂h_n = ∂L/∂a_n ⊙ r
            dhw = tr.xp.concatenate([dxw_t[:, : 2 * H], dhn], axis=1)  # ∂L/∂(h_{t-1} W): z, r are
            d_hd = dhw @ W.T  # the pre-activations' own
        else:
            hd = h_prev if tr.rec_mask is None else h_prev * tr.rec_mask
            d_rh = dan @ W[:, 2 * H :].T  # ∂L/∂(r ⊙ h_{t-1})
            rho.backprop(d_rh * hd, r, out=dxw_t[:, H : 2 * H])  # ∂L/∂a_r
            d_hd = d_rh * r + dxw_t[:, : 2 * H] @ W[:, : 2 * H].T
        if tr.rec_mask is not None:
            d_hd *= tr.rec_mask
        d_hd += dh * z  # the direct path z ⊙ h_{t-1}
        return [d_hd]

    def recurrent_grads(
        self, p: Params, tr: Trace, dxw: np.ndarray, matmul: MatMul = matmul
    ) -> Params:
        H = self.units
        hd = flat(tr.prev_input())
        dA = flat(dxw)
        W = tr.xp.empty((H, 3 * H), dtype=tr.dtype)
        if self.reset_after:  # Σ_t h_{t-1}ᵀ ∂L/∂(h W):
            dhn = flat(tr.cache["dhn"])
            W[:, : 2 * H] = matmul(hd.T, dA[:, : 2 * H])  #   z, r: ∂L/∂a_zr
            W[:, 2 * H :] = matmul(hd.T, dhn)  #   n: ∂L/∂h_n
            grads = {"W": W}
            if self.use_bias:  # Σ_t ∂L/∂(h W + b_rec)
                grads["b_rec"] = tr.xp.concatenate([row_sum(dA[:, : 2 * H]), row_sum(dhn)])
            return grads
        W[:, : 2 * H] = matmul(hd.T, dA[:, : 2 * H])  # Σ_t h_{t-1}ᵀ ∂L/∂a_zr
        W[:, 2 * H :] = matmul(flat(tr.cache["rh"]).T, dA[:, 2 * H :])  # Σ_t (r ⊙ h_{t-1})ᵀ ∂L/∂a_n
        return {"W": W}
