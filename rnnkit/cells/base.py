"""The contract between a recurrence and the BPTT loops (``rnnkit.bptt``).

A cell is stateless: it holds the recurrence's hyper-parameters (units,
activations) and receives the parameter dict on every call.  Its pieces:

    param_shapes(D)        {name: shape} with U (D, G) and b (G,) first, G = width
    state_sizes            sizes of the recurrent states (h) or (h, c)
    allocate(trace)        preallocate the per-step caches the reverse loop needs
    step(p, tr, t, xw_t)   one step forward: states[t] -> states[t+1]
    step_back(p, tr, t, ds, dxw_t)
                           one step in reverse: given ∂L/∂states[t+1] (a list),
                           write ∂L/∂XW[t] into dxw_t and return ∂L/∂states[t]
    recurrent_grads(p, tr, dxw, matmul)
                           gradients of the recurrent parameters (W, ...), each one
                           matrix product over all steps, after the reverse loop
                           (``matmul``: the product to use; the layer passes the
                           compiled kernels' threaded one when they run)

The input side (U, b) is the same for every cell and lives in the layer:
XW = X U + b before the loop, dU = Xᵀ dXW and db = Σ dXW after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import activations
from ..backend import matmul as _matmul

if TYPE_CHECKING:
    from ..bptt import Trace

# The parameter dict every call receives: {"U": (D, G), "W": (P, G), "b": (G,), ...}.
Params = dict[str, np.ndarray]
# A matrix product: the backend's ``a @ b``, or the compiled kernels' threaded one.
MatMul = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Cell:
    gates = 1  # G / units: how many blocks of `units` columns U and W have

    def __init__(
        self,
        units: int,
        activation: str | activations.Activation = "tanh",
        recurrent_activation: str | activations.Activation = "sigmoid",
        use_bias: bool = True,
    ) -> None:
        self.units = units
        self.activation = activations.get(activation, argument="activation")
        self.recurrent_activation = activations.get(
            recurrent_activation, argument="recurrent_activation"
        )
        self.use_bias = use_bias

    @property
    def has_recurrent_bias(self) -> bool:
        """Whether the recurrent product has a bias of its own (GRU with reset_after)."""
        return False

    @property
    def width(self) -> int:
        """G: the number of columns of U, W and b."""
        return self.gates * self.units

    @property
    def output_size(self) -> int:
        return self.state_sizes[0]

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.units,)

    @property
    def recurrent_size(self) -> int:
        """The size of the state that enters the recurrent product (rows of W)."""
        return self.state_sizes[0]

    def param_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {
            "U": (input_dim, self.width),
            "W": (self.recurrent_size, self.width),
        }
        if self.use_bias:
            shapes["b"] = (self.width,)
        return shapes

    def allocate(self, trace: Trace) -> None:
        pass

    def step(self, p: Params, tr: Trace, t: int, xw_t: np.ndarray) -> None:
        raise NotImplementedError

    def step_back(
        self, p: Params, tr: Trace, t: int, ds: list[np.ndarray], dxw_t: np.ndarray
    ) -> list[np.ndarray]:
        raise NotImplementedError

    def recurrent_grads(
        self, p: Params, tr: Trace, dxw: np.ndarray, matmul: MatMul = _matmul
    ) -> Params:
        raise NotImplementedError


def flat(a: np.ndarray) -> np.ndarray:
    """(T, N, K) -> (T*N, K): all steps as rows of one matrix."""
    return a.reshape(-1, a.shape[-1])


ROW_SUM_BLOCK = 64  # rows summed in a's own dtype before the float64 total


def row_sum(a: np.ndarray) -> np.ndarray:
    """Σ over the rows of a (M, K) matrix, e.g. db = Σ_t ∂L/∂a_t over all T*N rows.

    NumPy sums along axis 0 one row after another, so a float32 sum over thousands of
    steps would lose about 1e-6 relative accuracy (20x more than the rest of the
    gradient).  Here blocks of ROW_SUM_BLOCK rows are summed in a's dtype (an error of at
    most 64 roundings each) and the block sums in float64: as accurate, at a tenth of the
    cost of converting every value to float64 (which took 2-4 % of an LSTM training step)."""
    M = a.shape[0]
    if a.dtype == np.float64 or M <= ROW_SUM_BLOCK or not isinstance(a, np.ndarray):
        return a.sum(axis=0, dtype="float64").astype(a.dtype, copy=False)
    full = M - M % ROW_SUM_BLOCK
    blocks = a[:full].reshape(full // ROW_SUM_BLOCK, ROW_SUM_BLOCK, -1).sum(axis=1)
    total = blocks.sum(axis=0, dtype="float64")
    if full < M:
        total += a[full:].sum(axis=0, dtype="float64")
    return total.astype(a.dtype, copy=False)
