"""Non-recurrent layers: Dense (the lecture's output layer), Embedding, Dropout, Masking."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from .. import activations, backend, initializers, validation
from ..cells.base import row_sum
from ..kernels import add_rows, matmul, own_threads
from .base import Layer


class Dense(Layer):
    """The lecture's output layer, on the last axis of any input:

        y = O(s V + c)        V: (H, K)   c: (K,)

    s may be (N, H) or a sequence (N, T, H) (then it is applied at every step, as
    Keras's Dense and TimeDistributed(Dense) do).  ``activation`` O: None/'linear',
    'softmax', 'sigmoid', 'tanh', 'relu', ...  Reverse:

        ∂L/∂a = O'ᵀ ∂L/∂y    ∂L/∂V = Σ sᵀ ∂L/∂a    ∂L/∂c = Σ ∂L/∂a    ∂L/∂s = ∂L/∂a Vᵀ
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.positive_int(units, "units", self.who)
        self.activation = activations.get(activation, allow_softmax=True)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(
            kernel_initializer, argument="kernel_initializer"
        )
        self.bias_initializer = initializers.get(bias_initializer, argument="bias_initializer")
        self.input_dim = None
        self._ctx = None
        if self.input_shape is not None and self.input_shape[-1] is not None:
            self.build(self.input_shape)

    def build(self, input_shape):
        self.input_dim = validation.positive_int(
            input_shape[-1], "the input feature size", self.who
        )
        self._add_param("V", (self.input_dim, self.units), self.kernel_initializer)
        if self.use_bias:
            self._add_param("c", (self.units,), self.bias_initializer)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    @own_threads()
    def forward(self, x, training=False, mask=None):
        x = validation.as_float_array(
            x,
            "x",
            self.who,
            self.dtype,
            ndim=(2, 3, 4),
            shape_doc=" (batch, ..., features)",
            features=self.input_dim,
        )
        if not self.built:
            self.build(x.shape)
        a = matmul(x.reshape(-1, x.shape[-1]), self.params["V"])  # s V
        a = a.reshape(x.shape[:-1] + (self.units,))
        if self.use_bias:
            a += self.params["c"]  #   + c
        y = self.activation(a, out=a)  # y = O(s V + c)
        self._ctx = (x, y)
        self.output_mask = mask
        return y

    @own_threads()
    def backward(self, dy):
        self._require_built()
        x, y = self._ctx
        dy = validation.gradient(dy, y.shape, self.who, self.dtype)
        # ∂L/∂a (for the identity, dy itself: it is only read below)
        da = dy if self.activation.name == "linear" else self.activation.backprop(dy, y)
        x2, da2 = x.reshape(-1, x.shape[-1]), da.reshape(-1, self.units)
        self._grads = {"V": matmul(x2.T, da2)}  # Σ sᵀ ∂L/∂a
        if self.use_bias:
            self._grads["c"] = row_sum(da2)  # Σ ∂L/∂a (accumulated in float64)
        dx = matmul(da2, self.params["V"].T)  # ∂L/∂s = ∂L/∂a Vᵀ
        return dx.reshape(x.shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.activation.name,
            use_bias=self.use_bias,
            kernel_initializer=initializers.name_of(self.kernel_initializer),
            bias_initializer=initializers.name_of(self.bias_initializer),
        )
        if self.input_dim is not None:
            config["input_shape"] = [self.input_dim]
        return config


class Lookup(NamedTuple):
    """An Embedding's output left as what it is made of: the rows ``table[ids]``.  A layer
    whose first step is a product with its input can take it whole: (table[ids]) U =
    (table U)[ids], one small product and a gather instead of a product over every token."""

    table: Any  # (V, E), the embedding matrix
    ids: Any  # (N, T) integer ids


class LookupGrad(NamedTuple):
    """What a layer that took a ``Lookup`` hands back: ∂L/∂table (V, E), already summed
    over the ids."""

    d_table: Any


class Embedding(Layer):
    """Token ids (N, T) -> vectors (N, T, output_dim): row lookup in E (input_dim, output_dim).

    ``mask_zero=True`` treats id 0 as padding: the output mask is ``ids != 0``, and
    recurrent layers downstream skip those steps (Keras semantics).
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        mask_zero=False,
        input_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = validation.positive_int(input_dim, "input_dim", self.who)
        self.output_dim = validation.positive_int(output_dim, "output_dim", self.who)
        self.embeddings_initializer = initializers.get(
            embeddings_initializer, argument="embeddings_initializer"
        )
        self.mask_zero = bool(mask_zero)
        self._ctx = None
        self.build(None)

    def build(self, input_shape):
        if not self._params:
            self._add_param("E", (self.input_dim, self.output_dim), self.embeddings_initializer)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def forward(self, x, training=False, mask=None):
        return self.params["E"][self.lookup(x, mask).ids]

    def lookup(self, x, mask=None) -> Lookup:
        """``forward`` without the gather: the ids and the table, for a layer that takes them
        (``Sequential`` hands a recurrent layer its Embedding's output this way; see
        ``Recurrent.takes_lookup``).  Its ``backward`` then receives a ``LookupGrad``."""
        ids = validation.as_int_array(x, "x", self.who, high=self.input_dim)
        self._ctx = ids
        self.output_mask = (ids != 0) if self.mask_zero else mask
        return Lookup(self.params["E"], ids)

    def backward(self, dy):
        self._require_built()
        ids = self._ctx
        if isinstance(dy, LookupGrad):  # the layer after summed over the ids already
            self._grads = {"E": dy.d_table}
            return None
        dy = validation.gradient(dy, tuple(ids.shape) + (self.output_dim,), self.who, self.dtype)
        dE = backend.xp().zeros_like(self.params["E"])
        add_rows(dE, ids.ravel(), dy.reshape(-1, self.output_dim))  # ∂L/∂E[v] = Σ_{ids = v} dy
        self._grads = {"E": dE}
        return None  # integer inputs have no gradient

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=initializers.name_of(self.embeddings_initializer),
            mask_zero=self.mask_zero,
        )
        return config


class Dropout(Layer):
    """Inverted dropout in training, the identity otherwise.  ``noise_shape`` as in
    Keras: e.g. (None, 1, None) shares one mask over all time steps of a sequence."""

    def __init__(self, rate, noise_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = validation.rate(rate, "rate", self.who)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.freeze_dropout = False
        self._keep = None
        self._ctx = None
        self.built = True

    def forward(self, x, training=False, mask=None):
        dtype = x.dtype if getattr(x, "dtype", None) in (np.float32, np.float64) else self.dtype
        x = validation.as_float_array(x, "x", self.who, dtype, check_finite=False)
        self.output_mask = mask
        if not training or self.rate == 0.0:
            self._ctx = ("identity",)
            return x
        shape = tuple(x.shape)
        if self.noise_shape is not None:
            if len(self.noise_shape) != x.ndim:
                raise ValueError(
                    f"{self.who}: noise_shape {self.noise_shape} must have one "
                    f"entry per axis of x (shape {tuple(x.shape)})"
                )
            shape = tuple(s if n is None else n for n, s in zip(self.noise_shape, x.shape))
        if not (
            self.freeze_dropout and self._keep is not None and tuple(self._keep.shape) == shape
        ):
            keep = self.rng.random(shape) >= self.rate
            self._keep = backend.asarray(keep / (1.0 - self.rate), dtype=dtype)  # x's dtype
        self._ctx = ("mask",)
        return x * self._keep

    def backward(self, dy):
        self._require_built()
        return dy if self._ctx[0] == "identity" else dy * self._keep

    def _on_astype(self, dtype):
        self._keep = None  # redrawn in the new dtype

    def get_config(self):
        config = super().get_config()
        config.update(
            rate=self.rate, noise_shape=None if self.noise_shape is None else list(self.noise_shape)
        )
        return config


class Masking(Layer):
    """Marks as padding every step whose features all equal ``mask_value``: the
    output mask is any(x != mask_value) over the features, and those steps are zeroed."""

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, numbers.Real):
            raise ValueError(f"{self.who}: mask_value must be a number; got {mask_value!r}")
        self.mask_value = float(mask_value)
        self._ctx = None
        self.built = True

    def forward(self, x, training=False, mask=None):
        x = validation.as_float_array(
            x, "x", self.who, self.dtype, ndim=3, shape_doc=" (batch, time, features)"
        )
        keep = (x != self.mask_value).any(axis=-1)  # (N, T)
        self._ctx = keep[..., None]
        self.output_mask = keep
        return x * self._ctx

    def backward(self, dy):
        self._require_built()
        return dy * self._ctx

    def get_config(self):
        config = super().get_config()
        config.update(mask_value=self.mask_value)
        return config


__all__ = ["Dense", "Embedding", "Dropout", "Masking", "RepeatVector"]


class RepeatVector(Layer):
    """(N, D) -> (N, n, D): the same vector at every step, to feed a vector to a
    recurrent layer (the lecture's vector-to-sequence configuration)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = validation.positive_int(n, "n", self.who)
        self.built = True
        self._ctx = None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n) + tuple(input_shape[1:])

    def forward(self, x, training=False, mask=None):
        x = validation.as_float_array(
            x, "x", self.who, self.dtype, ndim=2, shape_doc=" (batch, features)"
        )
        self._ctx = True
        self.output_mask = None
        return backend.xp().repeat(x[:, None, :], self.n, axis=1)

    def backward(self, dy):
        self._require_built()
        return dy.sum(axis=1)  # the vector fed every step

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config
