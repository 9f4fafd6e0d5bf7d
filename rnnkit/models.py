"""Models: containers of layers that keep the layer contract (forward/backward,
params/grads) and add training (``compile``/``fit``, see ``rnnkit.training``).

    Sequential   Keras's Sequential: a list of layers, each feeding the next
    RNNStack     stacked recurrent layers called the way PyTorch's nn.RNN/LSTM/GRU are
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import backend, validation
from .layers import Bidirectional, Dropout, Embedding, Layer, Recurrent, Wrapper

if TYPE_CHECKING:
    from .callbacks import Callback, History
    from .distributed import Communicator
    from .losses import Loss
    from .metrics import Metric
    from .optim import Optimizer


class Model(Wrapper):
    """Base class of rnnkit's models: the layer contract plus Keras's training API
    (compile, fit, evaluate, predict), summary() and save()."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.compiled = False
        self.loss = self.optimizer = None
        self.metrics = []
        self.stop_training = False
        self.history = None

    # -- training (rnnkit.training holds the loops) ---------------------------------------
    def compile(
        self,
        loss: str | Loss,
        optimizer: str | Optimizer = "adam",
        metrics: Sequence[str | Metric] | None = None,
        time_reduction: str | None = None,
        **loss_kwargs: Any,
    ) -> Model:
        """Choose the loss (a name or rnnkit.losses.Loss), the optimizer (a name or
        rnnkit.optim.Optimizer) and metrics.  ``time_reduction``: 'sum' (the lecture's
        L = Σ_t L_t, default) or 'mean' over the steps of each sequence."""
        from . import training

        training.compile_model(self, loss, optimizer, metrics, time_reduction, **loss_kwargs)
        return self

    def fit(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        batch_size: int = 32,
        epochs: int = 1,
        verbose: int = 1,
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple | None = None,
        shuffle: bool = True,
        initial_epoch: int = 0,
        tbptt: int | tuple[int, int] | None = None,
        sample_weight: npt.ArrayLike | None = None,
        distributed: bool | Communicator = False,
    ) -> History:
        """Train; returns a History.  ``tbptt=k`` or ``(k1, k2)`` trains with truncated BPTT.
        ``distributed=True``: data-parallel over the MPI processes this program was started
        as (``mpiexec -n 4 python train.py``; see rnnkit.distributed)."""
        from . import training

        if distributed:
            from .distributed import fit as fit_distributed

            return fit_distributed(
                self,
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose,
                callbacks=callbacks,
                validation_split=validation_split,
                validation_data=validation_data,
                shuffle=shuffle,
                initial_epoch=initial_epoch,
                tbptt=tbptt,
                sample_weight=sample_weight,
                comm=distributed,
            )
        return training.fit(
            self,
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            validation_data=validation_data,
            shuffle=shuffle,
            initial_epoch=initial_epoch,
            tbptt=tbptt,
            sample_weight=sample_weight,
        )

    def evaluate(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        batch_size: int = 32,
        verbose: int = 0,
        sample_weight: npt.ArrayLike | None = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        from . import training

        return training.evaluate(
            self,
            x,
            y,
            sample_weight=sample_weight,
            batch_size=batch_size,
            verbose=verbose,
            return_dict=return_dict,
        )

    def predict(self, x: npt.ArrayLike, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        from . import training

        return training.predict(self, x, batch_size=batch_size, verbose=verbose)

    def train_on_batch(
        self, x: npt.ArrayLike, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None
    ) -> dict[str, Any]:
        """One update on one batch; returns the step record (loss, grad_norm, clipped, lr)."""
        from . import training

        if not self.compiled:
            raise RuntimeError(f"{self.who}: call compile(...) before train_on_batch")
        return training.train_step(self, x, y, sample_weight)[0]

    # -- files ----------------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike,
        include_optimizer: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Write the model to ``path`` (see rnnkit.io.saving): safe (no pickle) and atomic.
        ``metadata`` (a JSON-serializable dict) is stored with it as ``model.metadata``."""
        from .io.saving import save_model

        return save_model(self, path, include_optimizer=include_optimizer, metadata=metadata)

    def summary(self, print_fn: Callable[[str], Any] | None = print, line_length: int = 80) -> str:
        """A table of layers, output shapes and parameter counts, as Keras prints it."""
        from .summary import summary_lines

        text = "\n".join(summary_lines(self, line_length))
        if print_fn is not None:
            print_fn(text)
        return text

    def _check_child(self, layer, existing):
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.who}: layers must be rnnkit layers; got {type(layer).__name__}")
        if any(layer.name == other.name for other in existing):
            raise ValueError(
                f"{self.who}: two layers are named {layer.name!r}; "
                f"layer names must be unique within a model"
            )


def _takes_lookup(layer, training, embedding, x) -> bool:
    """Whether ``layer``, after ``embedding`` in a Sequential, takes its output as a
    ``Lookup`` in this forward (``Recurrent.takes_lookup``)."""
    return isinstance(layer, Recurrent) and layer.takes_lookup(
        training, embedding.input_dim, int(np.size(x))
    )


class Sequential(Model):
    """A linear stack of layers, as Keras's ``Sequential``::

        model = Sequential([
            SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
            SimpleRNN(20),
            Dense(1),
        ])

    Masks propagate from layer to layer (Embedding(mask_zero=True), Masking).
    """

    def __init__(self, layers: Sequence[Layer] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layers: list[Layer] = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Layer) -> None:
        self._check_child(layer, self.layers)
        if getattr(layer, "return_state", False):
            raise ValueError(
                f"{self.who}: layer {layer.name!r} has return_state=True, which "
                f"gives several outputs; Sequential models pass one output on"
            )
        self.layers.append(layer)
        self._build_known_shapes()

    def _build_known_shapes(self):
        """As in Keras: once the first layer knows its input shape, every layer can be
        built (its weights created) before any data arrives, so summary() counts them."""
        from .summary import _input_shape

        shape = _input_shape(self)
        for layer in self.layers:
            if shape is None:
                return
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
            if isinstance(shape, list):
                return

    def sublayers(self):
        return list(self.layers)

    def forward(self, x, training=False, mask=None):
        if not self.layers:
            raise ValueError(f"{self.who} has no layers; add some first")
        for layer, after in zip(self.layers, [*self.layers[1:], None]):
            if isinstance(layer, Embedding) and _takes_lookup(after, training, layer, x):
                x = layer.lookup(x, mask)  # the recurrent layer gathers (E U)[ids] itself
            else:
                x = layer.forward(x, training=training, mask=mask)
            mask = layer.output_mask
        self.output_mask = mask
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            if dy is None:
                raise RuntimeError(
                    f"{self.who}: layer {layer.name!r} gives no input gradient, "
                    f"so nothing can flow back to the layers before it"
                )
            dy = layer.backward(dy)
        return dy

    def compute_output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["layers"] = [
            {"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers
        ]
        return config

    @classmethod
    def from_config(cls, config):
        from .layers import deserialize

        config = dict(config)
        layers = [deserialize(spec) for spec in config.pop("layers", [])]
        return cls(layers, **config)


class RNNStack(Model):
    """Stacked recurrent layers with PyTorch's calling convention::

        output, h_n = stack(x, h_0)                 # SimpleRNN, GRU
        output, (h_n, c_n) = stack(x, (h_0, c_0))   # LSTM

    x is (N, T, D) with ``batch_first=True``, else (T, N, D); output has the same
    layout; h_n is (num_layers * num_directions, N, H_out), layer-major as in
    PyTorch.  ``layers`` are recurrent layers (or Bidirectional ones) built with
    return_sequences=True and return_state=True; ``dropout`` is applied between
    layers in training, as PyTorch's ``dropout`` argument.  A (N, T) ``mask`` makes
    it behave like PyTorch with packed sequences of those lengths.

    ``backward(dy)`` takes dy in the same structure as the output,
    (d_output, d_h_n) or (d_output, (d_h_n, d_c_n)); either part may be None.
    """

    def __init__(self, layers, batch_first=True, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.layers = []
        for layer in layers:
            self._check_child(layer, self.layers)
            core = layer.forward_layer if isinstance(layer, Bidirectional) else layer
            if not isinstance(core, Recurrent) or not (
                layer.return_sequences and layer.return_state
            ):
                raise ValueError(
                    f"{self.who}: every layer must be recurrent with "
                    f"return_sequences=True and return_state=True; "
                    f"{layer.name!r} is not"
                )
            self.layers.append(layer)
        if not self.layers:
            raise ValueError(f"{self.who}: needs at least one layer")
        # h_n stacks the final states of every layer and direction, as PyTorch does
        kinds = {
            (
                type(self._core(l)).__name__,
                tuple(self._core(l).state_sizes),
                isinstance(l, Bidirectional),
            )
            for l in self.layers
        }
        if len(kinds) > 1:
            raise ValueError(
                f"{self.who}: every layer must be of one kind, state size and "
                f"direction count (h_n stacks their final states); got "
                f"(kind, state sizes, bidirectional) = {sorted(kinds)}"
            )
        self.batch_first = bool(batch_first)
        self.dropouts = [
            Dropout(dropout, name=f"{self.name}_dropout_{i}", dtype=layers[0].dtype)
            for i in range(len(self.layers) - 1)
        ]
        self.is_lstm = len(self._core(self.layers[0]).state_sizes) == 2
        self.initial_state_grads = None
        self._ctx = None

    @staticmethod
    def _core(layer):
        return layer.forward_layer if isinstance(layer, Bidirectional) else layer

    @property
    def num_directions(self):
        return 2 if isinstance(self.layers[0], Bidirectional) else 1

    def sublayers(self):
        # the dropouts between layers are children too (no parameters), so that walk()
        # reaches them: astype() converts them and gradcheck fixes their masks
        return list(self.layers) + list(self.dropouts)

    def forward(self, x, h0=None, training=False, mask=None):
        np_ = backend.xp()
        if not isinstance(x, np_.ndarray):
            x = np_.asarray(x)  # lists, other libraries' CPU arrays
        if x.ndim == 3 and not self.batch_first:
            x = x.transpose(1, 0, 2)
        D = self.num_directions
        states0 = None
        if h0 is not None:
            if self.is_lstm and not (isinstance(h0, (tuple, list)) and len(h0) == 2):
                raise ValueError(
                    f"{self.who}: the initial state of an LSTM stack is a pair "
                    f"(h_0, c_0); got {validation.describe(h0)}"
                )
            parts = [np_.asarray(s) for s in (h0 if self.is_lstm else [h0])]  # (L*D, N, size)
            sizes = self._core(self.layers[0]).state_sizes
            want_N = x.shape[0] if x.ndim == 3 else "batch"
            for name, s, size in zip(("h_0", "c_0"), parts, sizes):
                want = (len(self.layers) * D, want_N, size)
                if (
                    s.ndim != 3
                    or s.shape[0] != want[0]
                    or s.shape[2] != size
                    or (x.ndim == 3 and s.shape[1] != want_N)
                ):
                    raise ValueError(
                        f"{self.who}: {name} must have shape (num_layers * "
                        f"num_directions, batch, {size}) = {want}; got "
                        f"{tuple(s.shape)}"
                    )
            states0 = parts
        finals = []
        for i, layer in enumerate(self.layers):
            init = None
            if states0 is not None:
                init = [s[i * D + d] for d in range(D) for s in states0]
            out = layer.forward(x, training=training, mask=mask, initial_state=init)
            x, states = out[0], out[1:]
            finals.append(states)
            if i < len(self.dropouts):
                x = self.dropouts[i].forward(x, training=training)
        n_state = 2 if self.is_lstm else 1
        stacked = [
            np_.stack([f[d * n_state + k] for f in finals for d in range(D)])
            for k in range(n_state)
        ]
        y = x if self.batch_first else x.transpose(1, 0, 2)
        self._ctx = (n_state, D)
        return (y, tuple(stacked)) if self.is_lstm else (y, stacked[0])

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        n_state, D = self._ctx
        d_out, d_final = dy
        if d_out is not None and not self.batch_first:
            d_out = d_out.transpose(1, 0, 2)
        parts = None
        if d_final is not None:
            parts = list(d_final) if self.is_lstm else [d_final]
        d_init = []
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            d_states = [None] * (n_state * D)
            if parts is not None:
                d_states = [None if p is None else p[i * D + d] for d in range(D) for p in parts]
            if i < len(self.dropouts) and d_out is not None:
                d_out = self.dropouts[i].backward(d_out)
            d_out = layer.backward([d_out, *d_states])
            d_init.append(layer.initial_state_grads)
        d_init.reverse()
        np_ = backend.xp()
        grads0 = [
            np_.stack([g[d * n_state + k] for g in d_init for d in range(D)])
            for k in range(n_state)
        ]
        self.initial_state_grads = tuple(grads0) if self.is_lstm else grads0[0]
        return d_out if self.batch_first else d_out.transpose(1, 0, 2)

    def get_config(self):
        config = super().get_config()
        config.update(
            batch_first=self.batch_first,
            dropout=self.dropouts[0].rate if self.dropouts else 0.0,
            layers=[
                {"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers
            ],
        )
        return config

    @classmethod
    def from_config(cls, config):
        from .layers import deserialize

        config = dict(config)
        layers = [deserialize(spec) for spec in config.pop("layers")]
        return cls(layers, **config)


# Model classes by name, for the model files (rnnkit.io.saving); seq2seq.py and
# seq2seq_attention.py add theirs.
MODEL_CLASSES = {"Sequential": Sequential, "RNNStack": RNNStack}
