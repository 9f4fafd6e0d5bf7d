"""Layers that wrap other layers: Bidirectional and TimeDistributed."""

from __future__ import annotations

from .. import backend, validation
from .base import Wrapper
from .recurrent import Recurrent

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Wrapper):
    """Runs a recurrent layer forwards and a copy of it backwards over the same
    input and merges the two outputs (Keras semantics):

        y = merge(forward(x), reverse(backward(x)))      merge_mode: 'concat' (default),
                                                          'sum', 'mul', 'ave' or None (a list)

    The backward output sequence is reversed back so that y[:, t] sees x[:, t] from
    both sides.  With a mask, each direction skips the padded steps, so the
    backward layer starts at each sequence's last real step.  With ``return_state``
    the output is [y, *forward_states, *backward_states].
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, Recurrent):
            raise TypeError(
                f"Bidirectional: layer must be a SimpleRNN, LSTM or GRU; got {type(layer).__name__}"
            )
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        self.merge_mode = validation.choice(merge_mode, "merge_mode", self.who, MERGE_MODES)
        self.forward_layer = layer
        if not layer.name.startswith("forward_"):
            layer.name = f"forward_{layer.name}"
        if backward_layer is None:
            config = layer.get_config()
            config["name"] = "backward_" + layer.name[len("forward_") :]
            config["go_backwards"] = not layer.go_backwards
            if config.get("seed") is not None:
                config["seed"] = config["seed"] + 1
            backward_layer = type(layer).from_config(config)
        elif not isinstance(backward_layer, Recurrent):
            raise TypeError(
                f"Bidirectional: backward_layer must be a recurrent layer; "
                f"got {type(backward_layer).__name__}"
            )
        elif backward_layer.go_backwards == layer.go_backwards:
            raise ValueError(
                "Bidirectional: backward_layer must have the opposite go_backwards of layer"
            )
        self.backward_layer = backward_layer
        for attr in ("return_sequences", "return_state"):
            if getattr(layer, attr) != getattr(backward_layer, attr):
                raise ValueError(f"Bidirectional: layer and backward_layer differ in {attr}")
        for child in (layer, backward_layer):
            # Keras does the same: a masked step must contribute zeros to the merge.
            child.zero_output_for_mask = child.return_sequences
        self._ctx = None
        self.final_states = None
        self.initial_state_grads = None
        if self.input_shape is not None and self.input_shape[-1] is not None:
            self.build((None,) + tuple(self.input_shape))  # Keras's input_shape=(T, D)

    # Keras-facing attributes of the wrapped layer
    return_sequences = property(lambda self: self.forward_layer.return_sequences)
    return_state = property(lambda self: self.forward_layer.return_state)
    stateful = property(lambda self: self.forward_layer.stateful)

    @property
    def state_sizes(self):
        return tuple(self.forward_layer.state_sizes) + tuple(self.backward_layer.state_sizes)

    @property
    def output_size(self):
        f, b = self.forward_layer.output_size, self.backward_layer.output_size
        return f + b if self.merge_mode == "concat" else f

    def sublayers(self):
        return [self.forward_layer, self.backward_layer]

    def build(self, input_shape):
        for child in self.sublayers():
            if not child.built:
                child.build(input_shape)

    def reset_state(self, states=None):
        n = len(self.forward_layer.state_sizes)
        self.forward_layer.reset_state(None if states is None else states[:n])
        self.backward_layer.reset_state(None if states is None else states[n:])

    def compute_output_shape(self, input_shape):
        N, T = input_shape[0], input_shape[1]
        out = (N, T, self.output_size) if self.return_sequences else (N, self.output_size)
        if self.merge_mode is None:
            out = [out[:-1] + (self.forward_layer.output_size,)] * 2
        if self.return_state:
            return [out] + [(N, s) for s in self.state_sizes]
        return out

    def forward(self, x, training=False, mask=None, initial_state=None):
        fw, bw = self.forward_layer, self.backward_layer
        init_f = init_b = None
        if initial_state is not None:
            n, total = len(fw.state_sizes), len(self.state_sizes)
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != total:
                raise ValueError(
                    f"{self.who}: initial_state must be a list of {total} arrays "
                    f"(forward states, then backward states)"
                )
            init_f, init_b = list(initial_state[:n]), list(initial_state[n:])
        yf = fw.forward(x, training=training, mask=mask, initial_state=init_f)
        yb = bw.forward(x, training=training, mask=mask, initial_state=init_b)
        if self.return_state:
            yf, *_ = yf
            yb, *_ = yb
        if self.return_sequences:
            yb = yb[:, ::-1]  # back to input order
        self._ctx = (yf, yb)
        self.final_states = list(fw.final_states) + list(bw.final_states)
        self.output_mask = mask if self.return_sequences else None
        y = self._merge(yf, yb)
        return [y, *self.final_states] if self.return_state else y

    def _merge(self, yf, yb):
        np_ = backend.xp()
        if self.merge_mode == "concat":
            return np_.concatenate([yf, yb], axis=-1)
        if self.merge_mode == "sum":
            return yf + yb
        if self.merge_mode == "mul":
            return yf * yb
        if self.merge_mode == "ave":
            return (yf + yb) * 0.5
        return [yf, yb]

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        yf, yb = self._ctx
        fw, bw = self.forward_layer, self.backward_layer
        n = len(fw.state_sizes)
        d_states = [None] * len(self.state_sizes)
        if self.return_state:
            if not isinstance(dy, (list, tuple)) or len(dy) != 1 + len(self.state_sizes):
                raise ValueError(
                    f"{self.who}: backward: with return_state, dy must be a list "
                    f"of {1 + len(self.state_sizes)} (the output's gradient, then "
                    f"each final state's, None for an unused one)"
                )
            dy, *d_states = dy
        if dy is not None and self.merge_mode is None:
            if not isinstance(dy, (list, tuple)) or len(dy) != 2:
                raise ValueError(
                    f"{self.who}: backward: with merge_mode=None, dy must be a "
                    f"list [d_forward, d_backward]"
                )
            dy = [
                validation.gradient(d, y.shape, self.who, y.dtype, f"dy[{k}]")
                for k, (d, y) in enumerate(zip(dy, (yf, yb)))
            ]
        elif dy is not None:
            shape = (
                yf.shape[:-1] + (yf.shape[-1] + yb.shape[-1],)
                if self.merge_mode == "concat"
                else yf.shape
            )
            dy = validation.gradient(dy, shape, self.who, yf.dtype)
        if dy is None:
            dyf = dyb = None
        elif self.merge_mode == "concat":
            Hf = yf.shape[-1]
            dyf, dyb = dy[..., :Hf], dy[..., Hf:]
        elif self.merge_mode == "sum":
            dyf = dyb = dy
        elif self.merge_mode == "mul":
            dyf, dyb = dy * yb, dy * yf
        elif self.merge_mode == "ave":
            dyf = dyb = dy * 0.5
        else:
            dyf, dyb = dy
        if dyb is not None and self.return_sequences:
            dyb = dyb[:, ::-1]
        if self.return_state:
            dyf, dyb = [dyf, *d_states[:n]], [dyb, *d_states[n:]]
        dx = fw.backward(dyf) + bw.backward(dyb)
        self.initial_state_grads = list(fw.initial_state_grads) + list(bw.initial_state_grads)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(
            merge_mode=self.merge_mode,
            layer={
                "class_name": type(self.forward_layer).__name__,
                "config": self.forward_layer.get_config(),
            },
            backward_layer={
                "class_name": type(self.backward_layer).__name__,
                "config": self.backward_layer.get_config(),
            },
        )
        return config

    @classmethod
    def from_config(cls, config):
        from . import deserialize

        config = dict(config)
        layer = deserialize(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        backward = deserialize(backward) if backward is not None else None
        return cls(layer, backward_layer=backward, **config)


class TimeDistributed(Wrapper):
    """Applies a layer to every time step: (N, T, ...) -> (N*T, ...) -> layer -> (N, T, ...)."""

    def __init__(self, layer, **kwargs):
        from .base import Layer

        if not isinstance(layer, Layer):
            raise TypeError(
                f"TimeDistributed: layer must be an rnnkit layer; got {type(layer).__name__}"
            )
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        self.layer = layer
        self._ctx = None
        if self.input_shape is not None and self.input_shape[-1] is not None:
            self.build((None,) + tuple(self.input_shape))  # Keras's input_shape=(T, ...)

    def sublayers(self):
        return [self.layer]

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build((None,) + tuple(input_shape[2:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return tuple(input_shape[:2]) + tuple(inner[1:])

    def forward(self, x, training=False, mask=None):
        if not hasattr(x, "shape") or len(x.shape) < 3:
            raise ValueError(
                f"{self.who}: x must have rank 3 or more (batch, time, ...); "
                f"got {validation.describe(x)}"
            )
        N, T = x.shape[:2]
        y = self.layer.forward(x.reshape((N * T,) + tuple(x.shape[2:])), training=training)
        self._ctx = (N, T)
        self.output_mask = mask
        return y.reshape((N, T) + tuple(y.shape[1:]))

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        N, T = self._ctx
        dx = self.layer.backward(dy.reshape((N * T,) + tuple(dy.shape[2:])))
        return None if dx is None else dx.reshape((N, T) + tuple(dx.shape[1:]))

    def get_config(self):
        config = super().get_config()
        config["layer"] = {
            "class_name": type(self.layer).__name__,
            "config": self.layer.get_config(),
        }
        return config

    @classmethod
    def from_config(cls, config):
        from . import deserialize

        config = dict(config)
        return cls(deserialize(config.pop("layer")), **config)
