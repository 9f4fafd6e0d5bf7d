"""Finite-difference checks (float64, central differences) of every layer and option.

Every check asserts that the worst relative error over all checked tensors is below
1e-6 and that the tensors expected to be checked (parameters, input, initial state)
were checked at all, so that a check cannot pass by checking nothing.
"""

import numpy as np
import pytest
import torch

from rnnkit import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Masking,
    Sequential,
    TimeDistributed,
    gradcheck,
)
from rnnkit.io import from_torch

from helpers import CELL_KINDS, TORCH_KINDS, half, normal, recurrent_layer, torch_module

TOL = 1e-6
N, T, D, H = 3, 5, 3, 4

# sample 0 uses every step, sample 1 is right-padded, sample 2 has a hole and a left pad
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 0, 1, 1]], dtype=bool)


def check(model, x, *, expect=(), **kw):
    """Run gradcheck and assert every tensor is below TOL; ``expect`` lists report
    keys that must be present (besides every parameter)."""
    worst, report = gradcheck(model, x, return_report=True, **kw)
    missing = [k for k in list(model.params) + list(expect) if k not in report]
    assert not missing, f"not checked: {missing}; report {report}"
    assert worst < TOL, report
    return report


def data(seed=0, shape=(N, T, D)):
    return normal(shape, seed)


def make(kind, **kw):
    kw.setdefault("bias_initializer", "torch_uniform")  # non-zero biases
    kw.setdefault("seed", 7)
    kw.setdefault("dtype", "float64")
    return recurrent_layer(kind, H, **kw)


def initial_states(layer, n=N, seed=3):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, s)) * 0.5 for s in layer.state_sizes]


def with_initial_states(layer, call, expect):
    """Pass random initial states in ``call`` and expect their gradients to be checked."""
    call["initial_state"] = initial_states(layer)
    expect += [f"initial_state[{k}]" for k in range(len(layer.state_sizes))]


# --------------------------------------------------------------------------- activations
@pytest.mark.parametrize(
    "activation", ["tanh", "sigmoid", "relu", "linear", "hard_sigmoid", "softsign"]
)
@pytest.mark.parametrize("return_sequences", [True, False])
def test_simple_rnn_activations(activation, return_sequences):
    layer = make("rnn", activation=activation, return_sequences=return_sequences)
    check(layer, data(), expect=["input"])


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "gru_before"])
@pytest.mark.parametrize(
    "activation,recurrent_activation",
    [
        ("tanh", "sigmoid"),
        ("softsign", "hard_sigmoid"),
        ("relu", "sigmoid"),
        ("sigmoid", "tanh"),
        ("linear", "softsign"),
    ],
)
def test_gated_activations(kind, activation, recurrent_activation):
    layer = make(
        kind,
        activation=activation,
        recurrent_activation=recurrent_activation,
        return_sequences=True,
    )
    check(layer, data(), expect=["input"])


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_lstm_unit_forget_bias(unit_forget_bias):
    layer = make("lstm", unit_forget_bias=unit_forget_bias, bias_initializer="zeros")
    check(layer, data(), expect=["input"])


# --------------------------------------------------------------------------- options
OPTIONS = {  # test_options: the layer's arguments for each option
    "sequences": dict(return_sequences=True),
    "last": {},
    "state_sequences": dict(return_sequences=True, return_state=True),
    "state_last": dict(return_state=True),
    "initial_state": dict(return_sequences=True, return_state=False),
    "initial_state_return_state": dict(return_sequences=True, return_state=True),
    "go_backwards": dict(go_backwards=True, return_sequences=True),
    "go_backwards_last": dict(go_backwards=True, return_state=True),
    "no_bias": dict(use_bias=False, return_sequences=True),
}
MASK_OPTIONS = {  # test_masks: the same with the mask
    "sequences": dict(return_sequences=True),
    "last_with_state": dict(return_state=True),
    "zero_output": dict(return_sequences=True, zero_output_for_mask=True),
    "go_backwards": dict(return_sequences=True, go_backwards=True),
    "initial_state": dict(return_sequences=True, return_state=True),
}


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("option", list(OPTIONS))
def test_options(kind, option):
    call, expect = {}, ["input"]
    layer = make(kind, **OPTIONS[option])
    if option.startswith("initial_state"):
        with_initial_states(layer, call, expect)
    report = check(layer, data(), expect=expect, **call)
    if option == "no_bias":
        assert not any(k.startswith("b") for k in report if k != "input")


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("option", list(MASK_OPTIONS))
def test_masks(kind, option):
    call, expect = {"mask": MASK}, ["input"]
    layer = make(kind, **MASK_OPTIONS[option])
    if option == "initial_state":
        with_initial_states(layer, call, expect)
    check(layer, data(1), expect=expect, **call)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("rates", [(0.3, 0.0), (0.0, 0.3), (0.3, 0.4)])
def test_dropout_training(kind, rates):
    layer = make(kind, dropout=rates[0], recurrent_dropout=rates[1], return_sequences=True, seed=11)
    x = data(2)
    # the masks are really on: training and inference differ
    assert not np.allclose(layer.forward(x, training=True), layer.forward(x))
    check(layer, x, training=True, expect=["input"])
    check(layer, x, training=True, mask=MASK, expect=["input"])


def test_dropout_masks_of_an_earlier_batch_are_not_reused():
    """gradcheck redraws the masks for its own batch (a stale mask of another batch
    size made the check crash)."""
    layer = make("lstm", dropout=0.3, recurrent_dropout=0.3, seed=5)
    layer.forward(data(0, (5, T, D)), training=True)
    check(layer, data(1), training=True, expect=["input"])


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_stateful_second_chunk(kind):
    layer = make(kind, stateful=True, return_sequences=True)
    x = data(3, (N, 2 * T, D))
    layer.forward(x[:, :T])  # the first chunk leaves a non-zero state
    assert np.abs(layer.states[0]).max() > 0.01
    carried = [s.copy() for s in layer.states]
    check(layer, x[:, T:], expect=["input"])
    for a, b in zip(layer.states, carried):  # gradcheck works on a copy
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_stateful_first_chunk(kind):
    """A stateful layer with no carried state yet: every finite-difference evaluation
    must start from the same (zero) state, not from the previous evaluation's."""
    layer = make(kind, stateful=True, return_sequences=True)
    check(layer, data(4), expect=["input"])
    assert layer.states is None


# --------------------------------------------------------------------------- containers
def test_deep_sequential():
    model = Sequential(
        [
            make("rnn", return_sequences=True),
            make("lstm_proj", return_sequences=True),
            make("gru_before", return_sequences=True),
            make("gru"),
            Dense(2, activation="softmax", dtype="float64"),
        ]
    )
    check(model, data(5), expect=["input"])


def test_deep_sequential_with_mask_and_dropout():
    model = Sequential(
        [
            make("lstm", return_sequences=True, dropout=0.2, recurrent_dropout=0.2),
            Dropout(0.3, seed=1),
            make("gru", return_sequences=True, dropout=0.2, recurrent_dropout=0.2),
            TimeDistributed(Dense(2, activation="tanh", dtype="float64")),
        ]
    )
    check(model, data(6), mask=MASK, training=True, expect=["input"])


@pytest.mark.parametrize("inner", CELL_KINDS)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional(inner, merge_mode):
    layer = Bidirectional(make(inner, return_sequences=True), merge_mode=merge_mode)
    check(layer, data(7), expect=["input"])


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_state_and_mask(merge_mode, return_sequences):
    inner = make("lstm", return_sequences=return_sequences, return_state=True)
    layer = Bidirectional(inner, merge_mode=merge_mode)
    h0 = initial_states(inner) + initial_states(inner, seed=4)
    check(
        layer,
        data(8),
        mask=MASK,
        initial_state=h0,
        expect=["input"] + [f"initial_state[{k}]" for k in range(4)],
    )


@pytest.mark.parametrize(
    "activation", [None, "linear", "tanh", "sigmoid", "relu", "softmax", "hard_sigmoid", "softsign"]
)
@pytest.mark.parametrize("shape", [(N, D), (N, T, D)])
def test_dense(activation, shape):
    layer = Dense(4, activation=activation, bias_initializer="uniform", dtype="float64", seed=2)
    check(layer, data(9, shape), expect=["input"])


def test_dense_without_bias():
    check(Dense(3, use_bias=False, dtype="float64"), data(9), expect=["input"])


def test_time_distributed_dense():
    model = Sequential(
        [
            make("gru", return_sequences=True),
            TimeDistributed(Dense(3, activation="softmax", dtype="float64")),
        ]
    )
    check(model, data(10), expect=["input"])
    check(TimeDistributed(Dense(3, activation="relu", dtype="float64")), data(10), expect=["input"])


def test_embedding():
    ids = np.array([[1, 2, 2, 0], [4, 3, 1, 1]])
    check(Embedding(5, 3, dtype="float64"), ids)
    model = Sequential([Embedding(6, 3, dtype="float64"), make("lstm"), Dense(2)])
    check(model, ids)


def test_embedding_mask_zero():
    ids = np.array([[3, 1, 2, 0, 0], [5, 5, 1, 4, 2], [0, 0, 3, 2, 1]])
    model = Sequential(
        [
            Embedding(6, D, mask_zero=True, dtype="float64", seed=3),
            Bidirectional(make("gru", return_sequences=True)),
            make("lstm"),
            Dense(2, dtype="float64"),
        ]
    )
    check(model, ids)


def test_masking_layer():
    """Masking's input gradient at padded steps is zero by definition (moving a padded
    value off mask_value would unmask the step), so finite differences check the
    parameters here, and test_core_behaviour checks the input gradient."""
    x = data(11)
    x[~MASK] = 0.0
    model = Sequential(
        [Masking(0.0), make("lstm", return_sequences=True), make("gru"), Dense(2, dtype="float64")]
    )
    check(model, x, check_inputs=False)


def _torch_stack(kind, bidirectional, num_layers=2, dropout=0.0):
    torch.manual_seed(0)
    module = torch_module(
        kind,
        D,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=True,
        dropout=dropout,
    ).double()
    return from_torch(module)


@pytest.mark.parametrize("kind", TORCH_KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnnstack(kind, bidirectional):
    stack = _torch_stack(kind, bidirectional)
    L = 2 * (2 if bidirectional else 1)
    rng = np.random.default_rng(12)
    Hout = half(H) if kind == "lstm_proj" else H
    lstm = kind.startswith("lstm")
    h0 = rng.standard_normal((L, N, Hout)) * 0.5
    if lstm:
        h0 = (h0, rng.standard_normal((L, N, H)) * 0.5)
    n_init = 2 if lstm else 1
    expect = ["input"] + [f"initial_state[{k}]" for k in range(n_init)]
    check(stack, data(12), initial_state=h0, expect=expect, max_checks=20)
    check(stack, data(12), initial_state=h0, mask=MASK, expect=expect, max_checks=20)


def test_rnnstack_dropout_between_layers():
    """PyTorch-style dropout between stacked layers: gradcheck must fix its masks too."""
    stack = _torch_stack("lstm", True, num_layers=3, dropout=0.5)
    assert [d.rate for d in stack.dropouts] == [0.5, 0.5]
    x = data(13)
    assert not np.allclose(stack.forward(x, training=True)[0], stack.forward(x)[0])
    check(stack, x, training=True, expect=["input"], max_checks=20)


def test_gradcheck_works_on_a_float64_copy_of_a_float32_model():
    model = Sequential([LSTM(H, return_sequences=True, seed=1), GRU(H, seed=2), Dense(2, seed=3)])
    x = data(14).astype(np.float32)
    before = [p.copy() for p in model.params.values()]
    check(model, x, expect=["input"])
    assert all(p.dtype == np.float32 for p in model.params.values())  # not changed
    for p, q in zip(model.params.values(), before):
        np.testing.assert_array_equal(p, q)


def test_gradcheck_detects_a_wrong_gradient():
    """The checker itself can fail: a layer whose backward is off by a factor is caught."""
    layer = make("gru", return_sequences=True)

    class Broken(type(layer)):
        def backward(self, dy):
            dx = super().backward(dy)
            self._grads["W"] = self._grads["W"] * 1.01
            return dx

    layer.__class__ = Broken
    worst, report = gradcheck(layer, data(), return_report=True)
    assert report["W"] > 1e-3 and worst == report["W"]
    assert report["U"] < TOL
