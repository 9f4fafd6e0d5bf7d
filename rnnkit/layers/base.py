"""The contract every layer and model keeps.

    y  = layer.forward(x, training=False, mask=None)   # also layer(x, ...)
    dx = layer.backward(dy)                            # fills layer.grads

``layer.params`` and ``layer.grads`` are dicts with the same keys; a container's
keys are its children's, prefixed with the child's name (``"lstm/U"``), and its
dicts hold the very same arrays as the children's, so an optimizer that updates
``model.params[k]`` in place updates the layer.  ``backward`` overwrites the
gradients of the last ``forward``; it does not accumulate.

After ``forward``, ``layer.output_mask`` holds the (N, T) mask of the output
(Keras's mask propagation), or None.

What one call of ``forward`` leaves for its ``backward`` and for the next layer (the
trace, ``output_mask``, ``final_states``) is kept per thread: several threads may call
``forward(training=False)`` / ``predict`` on one model at once, each seeing its own masks
and states.  Training (``backward``, the optimizer's updates) and the carried state of a
``stateful`` layer are shared: train from one thread at a time.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import backend, initializers, validation
from ..seeding import make_rng

_name_counts: dict[str, int] = defaultdict(int)

# Keras accepts these in every layer's constructor; so does rnnkit, and keeps them
# only to build the layer early (input_shape) and to print it in summary().
_KERAS_SHAPE_KWARGS = ("input_shape", "batch_input_shape", "input_dim", "batch_size")


def snake_case(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: lstm, lstm_1, lstm_2, ..."""
    n = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


class WeightBudgetExceeded(Exception):
    """Building layers inside ``weights_without_init`` needed more bytes than allowed."""


_building = threading.local()


@contextlib.contextmanager
def weights_without_init(max_bytes: int):
    """Within the block, layers built in this thread get zero weights instead of drawing
    them from their initializers (``np.zeros`` takes memory only once written), and the
    weights of all layers built add up to at most ``max_bytes``, else
    ``WeightBudgetExceeded``.  For rebuilding a saved architecture whose weights are copied
    in next: an architecture declared far larger than its file fails at once, without
    drawing gigabytes of random numbers first (rnnkit.io.saving)."""
    before = getattr(_building, "budget", None)
    _building.budget = [0, int(max_bytes)]
    try:
        yield
    finally:
        _building.budget = before


class PerThread:
    """An attribute whose value belongs to the thread that set it (None in other threads):
    what one call of ``forward`` leaves behind for its ``backward``."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return getattr(obj._per_thread(), self.name, None)

    def __set__(self, obj, value):
        setattr(obj._per_thread(), self.name, value)


class Layer:
    """Base class: names, dtype, random generator, parameters and gradients."""

    _ctx = PerThread()  # the last forward's trace/caches, for backward
    output_mask = PerThread()  # the last forward's output mask
    final_states = PerThread()  # a recurrent layer's final states of the last forward

    def _per_thread(self):
        local = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__.setdefault("_local", threading.local())
        return local

    def __init__(
        self,
        *,
        name: str | None = None,
        dtype=None,
        seed: int | None = None,
        trainable: bool = True,
        **kwargs,
    ) -> None:
        who = type(self).__name__
        shape_kwargs = {k: kwargs.pop(k) for k in _KERAS_SHAPE_KWARGS if k in kwargs}
        if kwargs:
            raise TypeError(f"{who}() got unexpected keyword argument(s) {sorted(kwargs)}")
        self.name = name if name is not None else unique_name(snake_case(who))
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"{who}: name must be a non-empty string without '/'; got {name!r}")
        self.dtype = validation.float_dtype(dtype, who) or backend.floatx()
        self.seed = seed
        self.rng = make_rng(seed)
        self.trainable = bool(trainable)
        self._params: dict = {}
        self._grads: dict = {}
        self.built = False
        self.output_mask = None
        self.input_shape = _declared_input_shape(shape_kwargs, who)

    # -- identity -------------------------------------------------------------
    @property
    def who(self) -> str:
        """How error messages name this layer."""
        return f"{type(self).__name__} {self.name!r}"

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"

    def __getstate__(self):
        # copies (copy.deepcopy) leave the caches of the last forward pass behind, and the
        # copy's own per-thread values start empty
        state = self.__dict__.copy()
        state.pop("_local", None)
        return state

    # -- parameters -----------------------------------------------------------
    @property
    def params(self) -> dict:
        return self._params

    @property
    def grads(self) -> dict:
        return self._grads

    def sublayers(self) -> list[Layer]:
        """Direct children (containers and wrappers override)."""
        return []

    def trainable_params(self) -> dict:
        """The parameters an optimizer updates (none if ``trainable`` is False)."""
        return dict(self.params) if self.trainable else {}

    def trainable_grads(self) -> dict:
        return {k: self.grads[k] for k in self.trainable_params()}

    def walk(self) -> Iterator[Layer]:
        """This layer and every layer inside it, depth first."""
        yield self
        for child in self.sublayers():
            yield from child.walk()

    def count_params(self) -> int:
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def get_weights(self) -> list[np.ndarray]:
        """The parameters as a list of NumPy arrays, in ``params`` order (Keras-like)."""
        return [backend.to_numpy(p).copy() for p in self.params.values()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy arrays into the parameters, in ``params`` order, checking shapes."""
        params = self.params
        if len(weights) != len(params):
            raise ValueError(
                f"{self.who}: set_weights expected {len(params)} arrays "
                f"({list(params)}); got {len(weights)}"
            )
        for (key, p), w in zip(params.items(), weights):
            w = np.asarray(w)
            if tuple(w.shape) != tuple(p.shape):
                raise ValueError(
                    f"{self.who}: weight {key!r} must have shape {tuple(p.shape)}; "
                    f"got {tuple(w.shape)}"
                )
            p[...] = backend.asarray(w, dtype=p.dtype)

    # -- the contract -----------------------------------------------------------
    def build(self, input_shape) -> None:
        self.built = True

    def forward(self, x, training: bool = False, mask=None) -> Any:
        raise NotImplementedError

    def backward(self, dy) -> Any:
        raise NotImplementedError

    def __call__(self, x, *args, **kwargs):
        return self.forward(x, *args, **kwargs)

    def compute_output_shape(self, input_shape):
        return input_shape

    # -- configuration (for model files) ---------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "dtype": self.dtype.name, "trainable": self.trainable}
        if self.seed is not None:
            config["seed"] = self.seed
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    # -- dtype -----------------------------------------------------------------
    def astype(self, dtype) -> Layer:
        """Convert this layer's parameters (and any kept state) to ``dtype`` in place."""
        dt = validation.float_dtype(dtype, self.who)
        for layer in self.walk():
            layer.dtype = dt
            for k, p in list(layer._params.items()):
                layer._params[k] = p.astype(dt, order="C")
            layer._grads = {}
            layer._on_astype(dt)
        return self

    def _on_astype(self, dtype):
        """Hook for layers that keep float state other than parameters."""

    # -- helpers for subclasses ---------------------------------------------------
    def _add_param(self, name, shape, initializer, units=None):
        shape = tuple(int(n) for n in shape)
        budget = getattr(_building, "budget", None)
        if budget is not None:  # inside weights_without_init
            budget[0] += math.prod(shape) * np.dtype(self.dtype).itemsize
            if budget[0] > budget[1]:
                raise WeightBudgetExceeded(
                    f"with {self.who}'s weight {name!r} of shape "
                    f"{shape} the layers need {budget[0]} bytes of "
                    f"weights, more than the {budget[1]} allowed"
                )
            value = np.zeros(shape, self.dtype)
        else:
            value = initializers.get(initializer)(shape, self.rng, self.dtype, units)
        self._params[name] = backend.xp().ascontiguousarray(
            backend.asarray(value, dtype=self.dtype)
        )
        return self._params[name]

    def _require_built(self, what="backward"):
        if not self.built or getattr(self, "_ctx", None) is None:
            raise RuntimeError(f"{self.who}: {what} called before forward")


def _declared_input_shape(kw, who):
    """The per-example input shape from Keras's constructor arguments, or None."""
    if kw.get("input_shape") is not None:
        shape = kw["input_shape"]
    elif kw.get("batch_input_shape") is not None:
        shape = kw["batch_input_shape"][1:]
    elif kw.get("input_dim") is not None:
        shape = (kw["input_dim"],)
    else:
        return None
    try:
        shape = tuple(None if s is None else int(s) for s in shape)
    except TypeError:
        raise ValueError(
            f"{who}: input_shape must be a tuple or list such as [None, 1]; got {shape!r}"
        ) from None
    return shape


class Wrapper(Layer):
    """A layer made of other layers: its params and grads are its children's,
    keyed ``"<child name>/<child key>"`` and holding the same arrays."""

    def sublayers(self):
        raise NotImplementedError

    @property
    def params(self):
        return {f"{c.name}/{k}": v for c in self.sublayers() for k, v in c.params.items()}

    @property
    def grads(self):
        return {f"{c.name}/{k}": v for c in self.sublayers() for k, v in c.grads.items()}

    def trainable_params(self):
        if not self.trainable:
            return {}
        return {
            f"{c.name}/{k}": v for c in self.sublayers() for k, v in c.trainable_params().items()
        }

    @property
    def built(self):
        children = self.sublayers()
        return bool(children) and all(c.built for c in children)

    @built.setter
    def built(self, value):  # set by Layer.__init__; a wrapper is built when its children are
        pass
