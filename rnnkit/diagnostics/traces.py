"""What the diagnostics read from a model: its recurrent layers and what their last forward
pass kept (the ``bptt.Trace``), float64 copies, the ``dy`` each layer's backward receives,
and carried states kept across a measurement.  Shared by the gradient records, the gate
and Jacobian measurements and the truncation study, none of which imports another for it.
"""

from __future__ import annotations

import contextlib
import copy

from ..layers.recurrent import Recurrent


# -- finding the recurrent layers and what their last forward pass kept -----------------------
def recurrent_layers(model):
    """Every recurrent layer (SimpleRNN, LSTM, GRU) inside ``model``, in walk order; the
    two directions of a Bidirectional layer are two layers."""
    if isinstance(model, Recurrent):
        return [model]
    return [layer for layer in model.walk() if isinstance(layer, Recurrent)]


def cell_kind(layer):
    """'rnn', 'lstm' or 'gru'."""
    name = type(layer.cell).__name__
    return {"SimpleCell": "rnn", "LSTMCell": "lstm", "GRUCell": "gru"}.get(name, name)


def state_names(layer):
    """Names of the states: ('h',) or ('h', 'c') for an LSTM.  (h is the lecture's s.)"""
    return ("h", "c") if len(layer.state_sizes) == 2 else ("h",)


def trace_of(layer):
    """The ``bptt.Trace`` of the layer's last forward pass (run again with a trace, once, if
    it was an inference forward that kept none)."""
    return layer.trace()


def layer_inputs(layer):
    """(T, N, D): the inputs x_t of every step as the layer used them (processing order,
    after input dropout)."""
    return layer.step_inputs()


def as_float64(model):
    """A float64 copy of ``model`` (the original is not changed): diagnostics in double
    precision, as the gradient checks run."""
    m = copy.deepcopy(model)
    m.astype("float64")
    return m


# -- capturing what each layer's backward receives ------------------------------------------------
@contextlib.contextmanager
def capture_backward(layers):
    """Within the block, remember the ``dy`` each of ``layers`` receives in backward
    (``captured[layer.name]``).  The layers compute exactly as before."""
    captured = {}

    def wrap(layer):
        method = type(layer).backward

        def backward(dy):
            captured[layer.name] = dy
            return method(layer, dy)

        layer.backward = backward  # an instance attribute shadows the method

    for layer in layers:
        wrap(layer)
    try:
        yield captured
    finally:
        for layer in layers:
            layer.__dict__.pop("backward", None)


@contextlib.contextmanager
def kept_states(model):
    """Restore the carried states of stateful layers after the block."""
    saved = [
        (l, None if l.states is None else [s.copy() for s in l.states])
        for l in recurrent_layers(model)
        if l.stateful
    ]
    try:
        yield
    finally:
        for layer, states in saved:
            layer.states = states


__all__ = [
    "recurrent_layers",
    "cell_kind",
    "state_names",
    "trace_of",
    "layer_inputs",
    "as_float64",
    "capture_backward",
    "kept_states",
]
