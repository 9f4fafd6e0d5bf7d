"""Optimizers, learning-rate schedules and gradient clipping.

Every optimizer updates ``model.params`` in place from ``model.grads`` (same keys):

    SGD       v = μ v - η g;  θ += v           (nesterov: θ += μ v - η g)
    RMSprop   r = ρ r + (1-ρ) g²;  θ -= η g / √(r + ε)
    Adagrad   r += g²;  θ -= η g / √(r + ε)                        (min-char-rnn's update)
    Adam      m = β₁m + (1-β₁)g;  v = β₂v + (1-β₂)g²;  θ -= η √(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε)
    AdamW     Adam, plus decoupled weight decay θ -= η λ θ

Gradient clipping, three kinds with names that say which (the lecture's cure for
exploding gradients), applied before the update in this order:

    clip_value=v             each element into [-v, v]                 (Keras: clipvalue)
    clip_norm_per_tensor=c   each tensor g ← c g / ‖g‖ where ‖g‖ > c   (Keras: clipnorm)
    clip_global_norm=c       all tensors g ← c g / ‖G‖ where ‖G‖ > c,  (Keras: global_clipnorm)
                             ‖G‖ = √(Σ ‖g‖²) over every tensor

``apply`` returns what happened: the global gradient norm before clipping,
whether any clipping fired, the norm after it and the learning rate used.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from . import backend, kernels
from .backend import xp


# -- learning-rate schedules ---------------------------------------------------------------
class Schedule:
    """A learning rate as a function of the optimizer's step count (0, 1, 2, ...)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self):
        return {"class_name": type(self).__name__, "config": dict(self.__dict__)}


class ExponentialDecay(Schedule):
    """η · rate^(step / decay_steps) (floored exponent with staircase=True), as Keras."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        if self.decay_steps < 1:
            raise ValueError(f"ExponentialDecay: decay_steps must be ≥ 1; got {decay_steps!r}")

    def __call__(self, step):
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (
            math.floor(p) if self.staircase else p
        )


class CosineDecay(Schedule):
    """Linear warm-up for ``warmup_steps``, then a cosine from η down to α·η over ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_steps=0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.initial_learning_rate * (step + 1) / self.warmup_steps
        p = min(step - self.warmup_steps, self.decay_steps) / max(self.decay_steps, 1)
        cos = 0.5 * (1.0 + math.cos(math.pi * p))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cos + self.alpha)


class PiecewiseConstantDecay(Schedule):
    """values[i] while step < boundaries[i]; values[-1] afterwards."""

    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise ValueError("PiecewiseConstantDecay: values needs one more entry than boundaries")
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step < b:
                return v
        return self.values[-1]


_SCHEDULES = {c.__name__: c for c in (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)}


# -- clipping ------------------------------------------------------------------------------------
# A learning rate: a number, a Schedule or any function of the step, or a schedule's config.
LearningRate = float | Schedule | Callable[[int], float] | dict


def _sum_of_squares(g) -> float:
    """‖g‖², one dot product (no g * g temporary)."""
    flat = g.reshape(-1)
    return float(xp().dot(flat, flat))


def global_norm(grads) -> float:
    """‖G‖ = √(Σ_tensors ‖g‖²)."""
    return math.sqrt(sum(_sum_of_squares(g) for g in grads.values()))


def clip_gradients(
    grads, clip_value=None, clip_norm_per_tensor=None, clip_global_norm=None, norm=None
):
    """Clipped copies of ``grads`` and whether any clipping changed them.  ``norm``: the
    global norm of ``grads`` when the caller has it already."""
    np_ = xp()
    fired = False
    out = dict(grads)
    if clip_value is not None:
        for k, g in out.items():
            if bool((np_.abs(g) > clip_value).any()):
                fired = True
                out[k] = np_.clip(g, -clip_value, clip_value)
    if clip_norm_per_tensor is not None:
        for k, g in out.items():
            n = math.sqrt(_sum_of_squares(g))
            if n > clip_norm_per_tensor:
                fired = True
                out[k] = g * (clip_norm_per_tensor / n)
    if clip_global_norm is not None:
        n = norm if norm is not None and not fired else global_norm(out)
        if n > clip_global_norm:
            fired = True
            scale = clip_global_norm / n
            out = {k: g * scale for k, g in out.items()}
    return out, fired


# -- optimizers --------------------------------------------------------------------------------------
class Optimizer:
    """Base class: learning rate (a float or a Schedule), clipping, step count, state."""

    slots: tuple = ()  # names of the per-parameter state arrays

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        *,
        clip_value: float | None = None,
        clip_norm_per_tensor: float | None = None,
        clip_global_norm: float | None = None,
        clipvalue: float | None = None,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        lr: LearningRate | None = None,
        name: str | None = None,
    ) -> None:
        who = type(self).__name__
        if lr is not None:
            learning_rate = lr
        if isinstance(learning_rate, dict):
            learning_rate = schedule_from_config(learning_rate)
        if not isinstance(learning_rate, Schedule) and not callable(learning_rate):
            if (
                isinstance(learning_rate, bool)
                or not isinstance(learning_rate, numbers.Real)
                or not float(learning_rate) >= 0
                or not math.isfinite(learning_rate)
            ):
                raise ValueError(
                    f"{who}: learning_rate must be a non-negative number or a "
                    f"schedule; got {learning_rate!r}"
                )
            learning_rate = float(learning_rate)
        self.learning_rate = learning_rate
        self.clip_value = _positive_or_none(
            clip_value if clip_value is not None else clipvalue, "clip_value", who
        )
        self.clip_norm_per_tensor = _positive_or_none(
            clip_norm_per_tensor if clip_norm_per_tensor is not None else clipnorm,
            "clip_norm_per_tensor",
            who,
        )
        self.clip_global_norm = _positive_or_none(
            clip_global_norm if clip_global_norm is not None else global_clipnorm,
            "clip_global_norm",
            who,
        )
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.state: dict[str, dict] = {}  # param key -> {slot name: array}

    def current_learning_rate(self) -> float:
        lr = self.learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    def apply(self, params: dict, grads: dict) -> dict:
        """One update of ``params`` in place from ``grads``; returns the step's record."""
        missing = [k for k in params if k not in grads]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: no gradients for {missing}; "
                f"call backward before the update"
            )
        norm = global_norm(grads)
        lr = self.current_learning_rate()
        if not math.isfinite(norm):  # no clipping makes a NaN gradient a step: skip it
            return {
                "grad_norm": norm,
                "clipped": False,
                "grad_norm_after": norm,
                "lr": lr,
                "skipped": True,
            }
        grads, fired = clip_gradients(
            grads, self.clip_value, self.clip_norm_per_tensor, self.clip_global_norm, norm
        )
        after = global_norm(grads) if fired else norm
        self.iterations += 1
        for key, p in params.items():
            slots = self.state.get(key)
            if slots is None:
                slots = self.state[key] = {s: self._init_slot(s, p) for s in self.slots}
            self.update(p, grads[key], slots, lr)
        return {"grad_norm": norm, "clipped": fired, "grad_norm_after": after, "lr": lr}

    def _init_slot(self, name, p):
        return xp().zeros_like(p)

    def update(self, p, g, slots, lr):
        raise NotImplementedError

    # -- saving -----------------------------------------------------------------------------------
    def get_config(self):
        lr = self.learning_rate
        if isinstance(lr, Schedule):
            lr = lr.get_config()
        elif callable(lr):
            raise ValueError(
                f"{type(self).__name__}: a learning rate given as a plain function "
                f"cannot be saved; use a rnnkit.optim schedule"
            )
        config = {
            "learning_rate": lr,
            "clip_value": self.clip_value,
            "clip_norm_per_tensor": self.clip_norm_per_tensor,
            "clip_global_norm": self.clip_global_norm,
            "name": self.name,
        }
        config.update(self._hyper())
        return config

    def _hyper(self):
        return {}

    def state_arrays(self) -> dict:
        """{"<param key>/<slot>": array} of the optimizer's state."""
        return {
            f"{k}/{s}": backend.to_numpy(a)
            for k, slots in self.state.items()
            for s, a in slots.items()
        }

    def load_state_arrays(self, arrays: dict, iterations: int):
        self.iterations = int(iterations)
        self.state = {}
        for name, a in arrays.items():
            key, slot = name.rsplit("/", 1)
            self.state.setdefault(key, {})[slot] = backend.asarray(a)


def _positive_or_none(v, name, who):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
        raise ValueError(f"{who}: {name} must be a positive number; got {v!r}")
    return float(v)


class SGD(Optimizer):
    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slots = ("velocity",) if self.momentum else ()

    def update(self, p, g, slots, lr):
        if not self.momentum:
            p -= lr * g
            return
        v = slots["velocity"]
        v *= self.momentum
        v -= lr * g  # v = μ v - η g
        if self.nesterov:
            p += self.momentum * v - lr * g
        else:
            p += v

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    slots = ("rms",)

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.9,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update(self, p, g, slots, lr):
        r = slots["rms"]
        r *= self.rho
        r += (1.0 - self.rho) * g * g  # r = ρ r + (1-ρ) g²
        p -= lr * g / xp().sqrt(r + self.epsilon)

    def _hyper(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


class Adagrad(Optimizer):
    slots = ("accumulator",)

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def _init_slot(self, name, p):
        return xp().full_like(p, self.initial_accumulator_value)

    def update(self, p, g, slots, lr):
        r = slots["accumulator"]
        r += g * g  # r += g²
        p -= lr * g / xp().sqrt(r + self.epsilon)

    def _hyper(self):
        return {
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adam(Optimizer):
    slots = ("m", "v")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, p, g, slots, lr):
        t = self.iterations  # already counts this step
        m, v = slots["m"], slots["v"]
        alpha = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        c1, c2 = 1.0 - self.beta_1, 1.0 - self.beta_2
        if kernels.adam(p, g, m, v, alpha, c1, c2, self.epsilon):  # the same, in one pass
            return
        m += c1 * (g - m)  # m = β₁ m + (1-β₁) g
        v += c2 * (g * g - v)  # v = β₂ v + (1-β₂) g²
        p -= alpha * m / (xp().sqrt(v) + self.epsilon)

    def _hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Adam):
    def __init__(
        self, learning_rate: LearningRate = 0.001, weight_decay: float = 0.004, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.weight_decay = float(weight_decay)

    def update(self, p, g, slots, lr):
        p *= 1.0 - lr * self.weight_decay  # decoupled weight decay, in place (as torch.optim.AdamW)
        super().update(p, g, slots, lr)

    def _hyper(self):
        return {**super()._hyper(), "weight_decay": self.weight_decay}


_OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adam": Adam, "adamw": AdamW}


def get(optimizer: str | Optimizer, **kwargs: Any) -> Optimizer:
    """An optimizer by name ('sgd', 'rmsprop', 'adagrad', 'adam', 'adamw') or instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[optimizer.lower()](**kwargs)
    raise ValueError(
        f"optimizer must be one of {sorted(_OPTIMIZERS)} or a "
        f"rnnkit.optim.Optimizer; got {optimizer!r}"
    )


def from_config(class_name, config):
    if class_name not in {c.__name__ for c in _OPTIMIZERS.values()}:
        raise ValueError(f"unknown optimizer class {class_name!r}")
    cls = {c.__name__: c for c in _OPTIMIZERS.values()}[class_name]
    return cls(**config)


def schedule_from_config(spec):
    cls = _SCHEDULES.get(spec.get("class_name"))
    if cls is None:
        raise ValueError(
            f"unknown learning-rate schedule {spec.get('class_name')!r}; "
            f"known: {sorted(_SCHEDULES)}"
        )
    return cls(**spec["config"])


__all__ = [
    "SGD",
    "RMSprop",
    "Adagrad",
    "Adam",
    "AdamW",
    "ExponentialDecay",
    "CosineDecay",
    "PiecewiseConstantDecay",
    "clip_gradients",
    "global_norm",
    "get",
]
