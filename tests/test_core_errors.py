"""Bad input raises ValueError/TypeError naming the argument, what was expected and
what was given."""

import numpy as np
import pytest

from rnnkit import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Masking,
    RNNStack,
    Sequential,
    SimpleRNN,
    TimeDistributed,
    set_floatx,
    set_seed,
)

RECURRENT = [SimpleRNN, LSTM, GRU]


def built(cls, D=3, **kw):
    return cls(4, input_shape=(None, D), **kw)


# --------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("cls", RECURRENT)
@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 5, 3, 1)])
def test_wrong_rank(cls, shape):
    with pytest.raises(
        ValueError,
        match=rf"x must have rank 3 \(batch, time, features\); "
        rf"got shape {re_shape(shape)}",
    ):
        built(cls).forward(np.zeros(shape))


def re_shape(shape):
    return "\\(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + "\\)"


def test_wrong_rank_suggests_a_batch_axis():
    with pytest.raises(ValueError, match=r"add a batch axis: x\[None\]"):
        built(LSTM).forward(np.zeros((5, 3)))


@pytest.mark.parametrize("cls", RECURRENT)
def test_feature_size_of_a_built_layer(cls):
    layer = built(cls)
    with pytest.raises(
        ValueError,
        match=r"x has 2 features in its last axis, but the layer "
        r"was built for 3 \(shape \(2, 5, 2\)\)",
    ):
        layer.forward(np.zeros((2, 5, 2)))
    layer = cls(4)
    layer.forward(np.zeros((2, 5, 3)))  # built by its first input
    with pytest.raises(ValueError, match="x has 4 features.*built for 3"):
        layer.forward(np.zeros((2, 5, 4)))


def test_feature_size_of_dense_and_bidirectional():
    with pytest.raises(ValueError, match="x has 5 features.*built for 3"):
        Dense(2, input_shape=(3,)).forward(np.zeros((2, 5)))
    layer = Bidirectional(LSTM(4, input_shape=(None, 3)))
    with pytest.raises(ValueError, match="x has 2 features.*built for 3"):
        layer.forward(np.zeros((1, 4, 2)))


@pytest.mark.parametrize(
    "bad,where", [(np.nan, r"\(1, 2, 0\)"), (np.inf, r"\(0, 3, 1\)"), (-np.inf, r"\(1, 0, 2\)")]
)
@pytest.mark.parametrize("cls", RECURRENT + [Dense])
def test_non_finite_values(cls, bad, where):
    x = np.zeros((2, 4, 3))
    index = tuple(int(i) for i in where.removeprefix(r"\(").removesuffix(r"\)").split(", "))
    x[index] = bad
    layer = cls(4, input_shape=(None, 3)) if cls is not Dense else Dense(4)
    with pytest.raises(ValueError, match=rf"x contains NaN or infinity \(first at index {where}\)"):
        layer.forward(x)


def test_non_finite_initial_state():
    with pytest.raises(ValueError, match=r"initial_state\[1\] contains NaN"):
        built(LSTM).forward(
            np.zeros((2, 4, 3)), initial_state=[np.zeros((2, 4)), np.full((2, 4), np.nan)]
        )


@pytest.mark.parametrize(
    "x,err,match",
    [
        ("abc", TypeError, "x must be a numeric array.*got str 'abc'"),
        (None, TypeError, "x must be an array.*got None"),
        (np.array([[["a"]]]), TypeError, "x must be a numeric array.*dtype <U1"),
        ([[[1.0, 2.0], [3.0]]], TypeError, "x must be a numeric array.*could not convert"),
        (np.zeros((0, 4, 3)), ValueError, r"x is empty \(shape \(0, 4, 3\)\)"),
        (np.zeros((2, 0, 3)), ValueError, r"x is empty \(shape \(2, 0, 3\)\)"),
    ],
)
def test_not_an_array(x, err, match):
    with pytest.raises(err, match=match):
        built(GRU).forward(x)


# --------------------------------------------------------------------------- masks
@pytest.mark.parametrize("shape", [(2, 5), (3, 4), (2, 4, 1), (8,)])
def test_mask_of_the_wrong_shape(shape):
    with pytest.raises(
        ValueError,
        match=rf"mask must have shape \(batch, time\) = \(2, 4\); "
        rf"got shape {re_shape(shape)}",
    ):
        built(LSTM).forward(np.zeros((2, 4, 3)), mask=np.ones(shape, bool))


def test_mask_of_the_wrong_type():
    with pytest.raises(TypeError, match="mask must be boolean.*got dtype <U1"):
        built(GRU).forward(np.zeros((2, 4, 3)), mask=np.full((2, 4), "a"))


def test_mask_of_the_wrong_shape_through_containers():
    model = Sequential([Masking(), LSTM(4)])
    model.forward(np.ones((2, 4, 3)))
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, time\) = \(2, 4\)"):
        Bidirectional(LSTM(3)).forward(np.ones((2, 4, 3)), mask=np.ones((4, 2), bool))


# --------------------------------------------------------------------------- constructor
@pytest.mark.parametrize("cls", RECURRENT)
@pytest.mark.parametrize("arg", ["activation", "recurrent_activation"])
def test_unknown_activation(cls, arg):
    if cls is SimpleRNN and arg == "recurrent_activation":
        with pytest.raises(
            TypeError, match="unexpected keyword argument 'recurrent_activation'.*one activation"
        ):
            cls(3, recurrent_activation="tanh")  # Keras's SimpleRNN has no such argument
        return
    with pytest.raises(
        ValueError,
        match=rf"{arg} must be one of \[.*'tanh'.*'sigmoid'.*\]; "
        rf"got 'swish'",
    ):
        cls(3, **{arg: "swish"})


def test_softmax_is_not_a_recurrent_activation():
    with pytest.raises(ValueError, match="activation must be one of.*got 'softmax'"):
        SimpleRNN(3, activation="softmax")
    with pytest.raises(ValueError, match="activation must be one of.*'softmax'.*got 'gelu'"):
        Dense(3, activation="gelu")


@pytest.mark.parametrize("arg", ["kernel_initializer", "recurrent_initializer", "bias_initializer"])
def test_unknown_initializer(arg):
    with pytest.raises(
        ValueError,
        match=rf"{arg} must be one of \[.*'glorot_uniform'.*"
        rf"'orthogonal'.*\].*; got 'he_normal'",
    ):
        LSTM(3, **{arg: "he_normal"})
    with pytest.raises(ValueError, match="embeddings_initializer must be one of.*got 'x'"):
        Embedding(3, 2, embeddings_initializer="x")


@pytest.mark.parametrize("cls", RECURRENT + [Dense])
@pytest.mark.parametrize("units", [0, -2, 2.5, "4", True, None])
def test_bad_units(cls, units):
    with pytest.raises(ValueError, match=rf"units must be a positive integer; got {units!r}"):
        cls(units)


@pytest.mark.parametrize("arg", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("value", [1.0, -0.1, 1.5, "0.5", None, True])
def test_bad_dropout(arg, value):
    with pytest.raises(ValueError, match=rf"{arg} must be a float in \[0, 1\); got {value!r}"):
        GRU(3, **{arg: value})
    if arg == "dropout":
        with pytest.raises(ValueError, match=rf"rate must be a float in \[0, 1\); got {value!r}"):
            Dropout(value)


def test_bad_lstm_and_gru_options():
    with pytest.raises(ValueError, match="proj_size must be smaller than units \\(4\\); got 4"):
        LSTM(4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size must be a positive integer; got -1"):
        LSTM(4, proj_size=-1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['reset_afer'\]"):
        GRU(4, reset_afer=False)


def test_bad_dtype_and_names():
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'; got 'int32'"):
        LSTM(3, dtype="int32")
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'; got 'float16'"):
        Dense(3, dtype="float16")
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'; got 'int8'"):
        set_floatx("int8")
    with pytest.raises(ValueError, match="name must be a non-empty string without '/'; got 'a/b'"):
        GRU(3, name="a/b")
    with pytest.raises(ValueError, match="seed must be a non-negative integer or None; got -1"):
        set_seed(-1)


def test_bad_wrappers():
    with pytest.raises(
        ValueError,
        match=r"merge_mode must be one of \['concat', 'sum', 'mul', "
        r"'ave', None\]; got 'max'",
    ):
        Bidirectional(LSTM(3), merge_mode="max")
    with pytest.raises(TypeError, match="layer must be a SimpleRNN, LSTM or GRU; got Dense"):
        Bidirectional(Dense(3))
    with pytest.raises(TypeError, match="layer must be an rnnkit layer; got int"):
        TimeDistributed(3)
    with pytest.raises(ValueError, match="x must have rank 3 or more"):
        TimeDistributed(Dense(2)).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="two layers are named 'same'"):
        Sequential([LSTM(3, name="same", return_sequences=True), GRU(3, name="same")])
    with pytest.raises(ValueError, match="has return_state=True"):
        Sequential([LSTM(3, return_state=True)])
    with pytest.raises(ValueError, match="return_sequences=True and return_state=True"):
        RNNStack([LSTM(3)])
    with pytest.raises(ValueError, match="mask_value must be a number; got 'x'"):
        Masking("x")


# --------------------------------------------------------------------------- states
@pytest.mark.parametrize(
    "states,match",
    [
        ([np.zeros((2, 4))], r"initial_state must be a list of 2 array\(s\) \[h, c\]; got 1"),
        ([np.zeros((2, 4))] * 3, r"initial_state must be a list of 2 array\(s\) \[h, c\]; got 3"),
        (
            [np.zeros((3, 4)), np.zeros((2, 4))],
            r"initial_state\[0\] must have shape \(2, 4\); "
            r"got \(3, 4\)",
        ),
        (
            [np.zeros((2, 4)), np.zeros((2, 5))],
            r"initial_state\[1\] must have shape \(2, 4\); "
            r"got \(2, 5\)",
        ),
        (
            [np.zeros((2, 4)), np.zeros((2, 4, 1))],
            r"initial_state\[1\] must have rank 2 "
            r"\(batch, 4\); got shape \(2, 4, 1\)",
        ),
    ],
)
def test_wrong_initial_state_lstm(states, match):
    with pytest.raises(ValueError, match=match):
        built(LSTM).forward(np.zeros((2, 5, 3)), initial_state=states)


def test_wrong_initial_state_gru_and_projection():
    with pytest.raises(
        ValueError,
        match=r"initial_state must be a list of 1 array\(s\) \[h\]; "
        r"got 2",
    ):
        built(GRU).forward(np.zeros((2, 5, 3)), initial_state=[np.zeros((2, 4))] * 2)
    with pytest.raises(
        ValueError,
        match=r"initial_state\[0\] must have shape \(2, 2\); "
        r"got \(2, 4\)",
    ):
        LSTM(4, proj_size=2).forward(
            np.zeros((2, 5, 3)), initial_state=[np.zeros((2, 4)), np.zeros((2, 4))]
        )
    with pytest.raises(ValueError, match="initial_state must be a list of 4 arrays"):
        Bidirectional(LSTM(3)).forward(np.zeros((2, 5, 3)), initial_state=[np.zeros((2, 3))])
    with pytest.raises(
        ValueError,
        match=r"states\[0\] must have shape \(batch, 4\); "
        r"got \(2, 3\)",
    ):
        built(SimpleRNN, stateful=True).reset_state([np.zeros((2, 3))])


def test_wrong_initial_state_rnnstack():
    lstm = RNNStack(
        [
            LSTM(4, return_sequences=True, return_state=True),
            LSTM(4, return_sequences=True, return_state=True),
        ],
        batch_first=False,
    )
    x = np.zeros((5, 2, 3))  # (T, N, D)
    h = np.zeros((2, 2, 4))
    with pytest.raises(
        ValueError,
        match=r"initial state of an LSTM stack is a pair \(h_0, c_0\); "
        r"got an array of shape \(2, 2, 4\)",
    ):
        lstm.forward(x, h)
    with pytest.raises(
        ValueError,
        match=r"c_0 must have shape \(num_layers \* num_directions, "
        r"batch, 4\) = \(2, 2, 4\); got \(1, 2, 4\)",
    ):
        lstm.forward(x, (h, np.zeros((1, 2, 4))))
    with pytest.raises(ValueError, match=r"h_0 must have shape .* = \(2, 2, 4\); got \(2, 5, 4\)"):
        lstm.forward(x, (np.zeros((2, 5, 4)), h))
    gru = RNNStack([Bidirectional(GRU(3, return_sequences=True, return_state=True))])
    with pytest.raises(ValueError, match=r"h_0 must have shape .* = \(2, 2, 3\); got \(1, 2, 3\)"):
        gru.forward(np.zeros((2, 5, 3)), np.zeros((1, 2, 3)))


def test_rnnstack_layers_must_stack():
    with pytest.raises(
        ValueError, match="every layer must be of one kind, state size and direction count"
    ):
        RNNStack(
            [
                LSTM(3, return_sequences=True, return_state=True),
                LSTM(4, return_sequences=True, return_state=True),
            ]
        )
    with pytest.raises(ValueError, match="every layer must be of one kind"):
        RNNStack(
            [
                GRU(3, return_sequences=True, return_state=True),
                Bidirectional(GRU(3, return_sequences=True, return_state=True)),
            ]
        )


# --------------------------------------------------------------------------- embeddings
@pytest.mark.parametrize("ids,value", [([[1, 5]], 5), ([[0, -1]], -1), ([[9, 2]], 9)])
def test_token_ids_out_of_range(ids, value):
    with pytest.raises(
        ValueError,
        match=rf"x holds token id {value}, outside \[0, 5\) "
        rf"\(input_dim=5\)",
    ):
        Embedding(5, 2).forward(np.array(ids))


def test_token_ids_of_the_wrong_type():
    with pytest.raises(TypeError, match="x must hold integer token ids.*non-integer values"):
        Embedding(5, 2).forward(np.array([[1.5, 2.0]]))
    with pytest.raises(TypeError, match="x must hold integer token ids.*dtype <U1"):
        Embedding(5, 2).forward(np.array([["a"]]))
    with pytest.raises(
        ValueError,
        match=r"x must have rank 1 or 2 \(batch, time\); "
        r"got shape \(1, 2, 1\)",
    ):
        Embedding(5, 2).forward(np.zeros((1, 2, 1), dtype=int))
    np.testing.assert_array_equal(Embedding(5, 2).forward(np.array([[1.0, 4.0]])).shape, (1, 2, 2))
    with pytest.raises(ValueError, match="input_dim must be a positive integer; got 0"):
        Embedding(0, 2)


# --------------------------------------------------------------------------- order of calls
def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        built(LSTM).backward(np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Dense(3, input_shape=(2,)).backward(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Bidirectional(GRU(3)).backward(np.zeros((2, 6)))
