"""Element-wise activations σ and their derivatives, written through the output.

Every activation used inside a recurrence has a derivative that can be computed
from its output y = σ(a) alone, so BPTT only keeps outputs, never pre-activations:

    tanh          y = tanh(a)                 σ'(a) = 1 - y²            γ = 1
    sigmoid       y = 1 / (1 + e^-a)          σ'(a) = y (1 - y)         γ = 1/4
    hard_sigmoid  y = clip(a/6 + 1/2, 0, 1)   σ'(a) = 1/6 where 0<y<1   γ = 1/6
    relu          y = max(a, 0)               σ'(a) = [y > 0]           γ = 1
    linear        y = a                       σ'(a) = 1                 γ = 1
    softsign      y = a / (1 + |a|)           σ'(a) = (1 - |y|)²        γ = 1

γ = sup |σ'| is the constant of the lecture's bound ‖∂s_t/∂s_k‖ ≤ (γ‖W‖)^(t-k).
``softmax`` (for output layers) is here too; its backward is a Jacobian-vector product.
"""

from __future__ import annotations

from .backend import xp


class Activation:
    """σ with ``__call__(a, out=None)`` and ``backprop(d, y, out=None) = d * σ'(a)``."""

    name = ""
    gamma = 1.0  # sup over a of |σ'(a)|

    def __call__(self, a, out=None):
        raise NotImplementedError

    def deriv(self, y):
        """σ'(a) written through y = σ(a)."""
        raise NotImplementedError

    def backprop(self, d, y, out=None):
        """d * σ'(a): the chain-rule step through σ, given its output y."""
        return xp().multiply(d, self.deriv(y), out=out)

    def __repr__(self):
        return self.name


class Tanh(Activation):
    name, gamma = "tanh", 1.0

    def __call__(self, a, out=None):
        return xp().tanh(a, out=out)

    def deriv(self, y):
        return 1.0 - y * y

    def backprop(self, d, y, out=None):
        np = xp()
        if out is None or np.may_share_memory(out, d):
            return super().backprop(d, y, out)
        np.multiply(y, y, out=out)  # the same operations as d * (1 - y²),
        np.subtract(1.0, out, out=out)  # without temporaries
        return np.multiply(d, out, out=out)


class Sigmoid(Activation):
    """The logistic function, computed as (1 + tanh(a/2)) / 2: one transcendental
    call, no overflow for any finite a."""

    name, gamma = "sigmoid", 0.25

    def __call__(self, a, out=None):
        np = xp()
        out = np.multiply(a, 0.5, out=out)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out

    def deriv(self, y):
        return y * (1.0 - y)

    def backprop(self, d, y, out=None):
        np = xp()
        if out is None or np.may_share_memory(out, d):
            return super().backprop(d, y, out)
        np.subtract(1.0, y, out=out)  # d * (y (1 - y)), without temporaries
        np.multiply(y, out, out=out)
        return np.multiply(d, out, out=out)


class HardSigmoid(Activation):
    """Keras 3's hard sigmoid: relu6(a + 3) / 6."""

    name, gamma = "hard_sigmoid", 1.0 / 6.0

    def __call__(self, a, out=None):
        np = xp()
        out = np.multiply(a, 1.0 / 6.0, out=out)
        out += 0.5
        return np.clip(out, 0.0, 1.0, out=out)

    def deriv(self, y):
        return ((y > 0.0) & (y < 1.0)) * (1.0 / 6.0)


class ReLU(Activation):
    name, gamma = "relu", 1.0

    def __call__(self, a, out=None):
        return xp().maximum(a, 0.0, out=out)

    def deriv(self, y):
        return (y > 0.0).astype(y.dtype)


class Linear(Activation):
    name, gamma = "linear", 1.0

    def __call__(self, a, out=None):
        if out is None:
            return a.copy()
        if out is not a:
            xp().copyto(out, a)
        return out

    def deriv(self, y):
        return xp().ones_like(y)

    def backprop(self, d, y, out=None):
        if out is None:
            return d.copy()
        if out is not d:
            xp().copyto(out, d)
        return out


class Softsign(Activation):
    name, gamma = "softsign", 1.0

    def __call__(self, a, out=None):
        np = xp()
        return np.divide(a, 1.0 + np.abs(a), out=out)

    def deriv(self, y):
        s = 1.0 - xp().abs(y)
        return s * s


class Softmax(Activation):
    """softmax over the last axis; backprop is the Jacobian-vector product
    y ⊙ (d - Σ_k d_k y_k).  Not for use inside a recurrence."""

    name, gamma = "softmax", 0.5

    def __call__(self, a, out=None):
        np = xp()
        out = np.subtract(a, a.max(axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=-1, keepdims=True)
        return out

    def deriv(self, y):  # pragma: no cover - softmax has a full Jacobian
        raise TypeError("softmax has no element-wise derivative; use backprop()")

    def backprop(self, d, y, out=None):
        np = xp()
        inner = (d * y).sum(axis=-1, keepdims=True)
        out = np.subtract(d, inner, out=out)
        out *= y
        return out


_REGISTRY = {cls.name: cls for cls in (Tanh, Sigmoid, HardSigmoid, ReLU, Linear, Softsign, Softmax)}
RECURRENT_CHOICES = tuple(n for n in _REGISTRY if n != "softmax")


def get(name, *, argument="activation", allow_softmax=False) -> Activation:
    """The activation called ``name`` (or ``None`` for linear, as Keras allows)."""
    if isinstance(name, Activation):
        return name
    if name is None:
        name = "linear"
    choices = tuple(_REGISTRY) if allow_softmax else RECURRENT_CHOICES
    if not isinstance(name, str) or name not in choices:
        raise ValueError(f"{argument} must be one of {list(choices)}; got {name!r}")
    return _REGISTRY[name]()
