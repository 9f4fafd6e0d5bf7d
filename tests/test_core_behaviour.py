"""Behaviour of the core layers, with numbers: direction, stateful chunks, masks,
dropout, dtypes, initializers, the grads/params contract and parameter counts."""

import numpy as np
import pytest

import rnnkit
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
)

from helpers import CELL_KINDS, normal, recurrent_layer

N, T, D, H = 3, 6, 3, 4


def make(kind, units=H, **kw):
    kw.setdefault("dtype", "float64")
    kw.setdefault("bias_initializer", "torch_uniform")
    kw.setdefault("seed", 3)
    layer = recurrent_layer(kind, units, **kw)
    layer.build((None, None, D))
    return layer


def twin(layer, **changes):
    """A layer of the same kind and weights with some constructor arguments changed."""
    config = {**layer.get_config(), **changes}
    config.pop("name")
    other = type(layer).from_config(config)
    other.build((None, None, layer.input_dim))
    other.set_weights(layer.get_weights())
    return other


def data(seed=0, shape=(N, T, D)):
    return normal(shape, seed)


def close(a, b, tol=1e-12):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- go_backwards
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_go_backwards_is_the_reversed_input(kind):
    """Keras semantics: the layer reads x from the end, and its output sequence stays in
    that (reversed) order."""
    back = make(kind, go_backwards=True, return_sequences=True, return_state=True)
    fwd = twin(back, go_backwards=False)
    x = data(1)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], bool)
    for m in (None, mask):
        yb = back.forward(x, mask=m)
        yf = fwd.forward(x[:, ::-1], mask=None if m is None else m[:, ::-1])
        for a, b in zip(yb, yf):
            close(a, b)
        R = [np.random.default_rng(2).standard_normal(a.shape) for a in yb]
        close(back.backward(R), fwd.backward(R)[:, ::-1])
        for k in back.params:
            close(back.grads[k], fwd.grads[k])
    # and it is really different from reading forwards
    assert not np.allclose(back.forward(x)[0], fwd.forward(x)[0])


# --------------------------------------------------------------------------- stateful
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_stateful_chunks_equal_the_whole_sequence(kind):
    whole = make(kind, return_sequences=True, return_state=True)
    chunked = twin(whole, stateful=True)
    x = data(3, (N, 10, D))
    y, *final = whole.forward(x)
    parts = []
    for lo, hi in [(0, 3), (3, 4), (4, 10)]:
        out, *states = chunked.forward(x[:, lo:hi])
        parts.append(out)
    close(np.concatenate(parts, axis=1), y)
    for a, b in zip(states, final):
        close(a, b)
    for a, b in zip(chunked.states, final):
        close(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_reset_state(kind):
    fresh = make(kind)
    layer = twin(fresh, stateful=True)
    x = data(4)
    first = layer.forward(x)
    second = layer.forward(x)
    assert not np.allclose(first, second)  # the carried state changed the result
    layer.reset_state()
    assert layer.states is None
    close(layer.forward(x), fresh.forward(x))
    close(layer.forward(x), second)  # carried again, from the first pass
    # reset_state(states) sets the carried state
    s = [np.full((N, size), 0.3) for size in layer.state_sizes]
    layer.reset_state(s)
    close(layer.forward(x), fresh.forward(x, initial_state=s))


def test_stateful_batch_size_must_not_change():
    layer = make("lstm", stateful=True)
    layer.forward(data(5))
    with pytest.raises(ValueError, match="carries state for a batch of 3; got a batch of 2"):
        layer.forward(data(5, (2, T, D)))


def test_stateful_gradient_is_truncated_at_the_chunk_boundary():
    """The carried state is an input of the chunk: backward reports its gradient in
    initial_state_grads and does not reach back into the previous chunk's weights."""
    layer = make("gru", stateful=True, return_sequences=True)
    x = data(6, (N, 8, D))
    layer.forward(x[:, :4])
    s = [a.copy() for a in layer.states]
    y = layer.forward(x[:, 4:])
    layer.backward(np.ones_like(y))
    plain = twin(layer, stateful=False)
    plain.forward(x[:, 4:], initial_state=s)
    plain.backward(np.ones_like(y))
    for k in layer.params:
        close(layer.grads[k], plain.grads[k])
    close(layer.initial_state_grads[0], plain.initial_state_grads[0])


# --------------------------------------------------------------------------- masks
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_masked_step_carries_the_state(kind):
    layer = make(kind, return_sequences=True)
    x = data(7)
    mask = np.ones((N, T), bool)
    mask[0, 2] = mask[0, 3] = mask[1, 5] = mask[2, 0] = False
    y = layer.forward(x, mask=mask)
    close(y[0, 2], y[0, 1])
    close(y[0, 3], y[0, 1])
    close(y[1, 5], y[1, 4])
    assert np.all(y[2, 0] == 0.0)  # carried from the zero initial state
    assert not np.allclose(y[0, 4], y[0, 3])
    zero = twin(layer, zero_output_for_mask=True).forward(x, mask=mask)
    assert np.all(zero[~mask] == 0.0)
    close(zero[mask], y[mask])


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_right_padding_changes_nothing(kind):
    """A right-padded sequence ends in the state of the unpadded one, its padded inputs
    get zero gradient, and whatever the padding holds does not matter."""
    layer = make(kind, return_state=True)
    x = data(8, (2, T, D))
    lengths = [T, 3]
    mask = np.arange(T)[None] < np.array(lengths)[:, None]
    x[1, 3:] = 1e3  # garbage in the padding
    out, *states = layer.forward(x, mask=mask)
    R = [np.random.default_rng(9).standard_normal(a.shape) for a in [out, *states]]
    dx = layer.backward(R)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert np.all(dx[1, 3:] == 0.0) and np.all(dx[1, :3] != 0.0)

    # the same two sequences, run one by one without padding
    expect = {k: 0.0 for k in grads}
    for n, L in enumerate(lengths):
        o, *s = layer.forward(x[n : n + 1, :L])
        close(o, out[n : n + 1])
        for a, b in zip(s, states):
            close(a, b[n : n + 1])
        d = layer.backward([r[n : n + 1] for r in R])
        close(d, dx[n : n + 1, :L])
        for k in expect:
            expect[k] = expect[k] + layer.grads[k]
    for k in grads:  # padded steps add nothing to the weights
        close(grads[k], expect[k])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_left_padding_with_a_zero_initial_state(kind):
    layer = make(kind)
    x = data(10, (1, T, D))
    mask = np.array([[0, 0, 1, 1, 1, 1]], bool)
    close(layer.forward(x, mask=mask), layer.forward(x[:, 2:]))


def test_masking_layer_equals_an_explicit_mask():
    x = data(11)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1]], bool)
    x[~mask] = -1.0
    lstm = make("lstm", return_sequences=True)
    model = Sequential([Masking(-1.0, dtype="float64"), lstm])
    y = model.forward(x)
    np.testing.assert_array_equal(model.layers[0].output_mask, mask)
    R = np.random.default_rng(12).standard_normal(y.shape)
    dx = model.backward(R)
    grads = {k: g.copy() for k, g in lstm.grads.items()}
    assert np.all(dx[~mask] == 0.0) and np.all(dx[mask] != 0.0)
    ref = twin(lstm)
    close(y, ref.forward(x, mask=mask))
    close(dx[mask], ref.backward(R)[mask])
    for k in grads:
        close(grads[k], ref.grads[k])


def test_embedding_mask_zero_equals_the_shorter_sequences():
    emb = Embedding(7, D, mask_zero=True, dtype="float64", seed=1)
    gru = make("gru")
    model = Sequential([emb, gru])
    ids = np.array([[4, 2, 6, 1, 0, 0], [3, 3, 5, 1, 2, 6]])
    y = model.forward(ids)
    np.testing.assert_array_equal(emb.output_mask, ids != 0)
    close(y[0], model.forward(ids[:1, :4])[0])
    close(y[1], model.forward(ids[1:])[0])
    # the padding id's embedding row gets no gradient
    model.forward(ids)
    model.backward(np.ones_like(y))
    assert np.all(model.grads[f"{emb.name}/E"][0] == 0.0)
    assert np.all(model.grads[f"{emb.name}/E"][[1, 2, 3, 4, 5, 6]] != 0.0)


def test_bidirectional_with_a_mask_reads_each_sequence_from_its_last_real_step():
    layer = Bidirectional(make("lstm", return_sequences=True), merge_mode="concat")
    x = data(13, (2, T, D))
    mask = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]], bool)
    y = layer.forward(x, mask=mask)
    short = layer.forward(x[1:, :4])
    close(y[1, :4], short[0])
    assert np.all(y[1, 4:] == 0.0)
    # the backward half at step 0 has read the whole (unpadded) sequence
    bw = twin(layer.backward_layer, go_backwards=False, zero_output_for_mask=False)
    close(y[1, 0, H:], bw.forward(x[1:, :4][:, ::-1])[0, -1])


# --------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_dropout_uses_one_mask_per_sequence(kind):
    """The same input features are dropped at every step of a sequence (variational
    dropout), and different sequences get different masks."""
    layer = make(kind, dropout=0.5, return_sequences=True, seed=21)
    x = data(14, (8, T, D))
    y = layer.forward(x, training=True)
    dx = layer.backward(np.random.default_rng(15).standard_normal(y.shape))
    dropped = dx == 0.0  # (N, T, D)
    assert np.all(dropped == dropped[:, :1, :])  # constant over time
    per_sequence = dropped[:, 0, :]
    assert 0 < per_sequence.sum() < per_sequence.size  # some dropped, some kept
    assert len({tuple(r) for r in per_sequence}) > 1  # masks differ between sequences


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_recurrent_dropout_uses_one_mask_per_sequence(kind):
    """With one sequence, ∂L/∂W = Σ_t (h_{t-1} ⊙ m)ᵀ ∂L/∂a_t: a unit dropped at every step
    leaves a zero row; a mask drawn per step would almost never do that."""
    layer = make(kind, units=8, recurrent_dropout=0.5, return_sequences=True, seed=22)
    x = data(16, (1, 12, D))
    y = layer.forward(x, training=True)
    layer.backward(np.random.default_rng(17).standard_normal(y.shape))
    zero_rows = np.all(layer.grads["W"] == 0.0, axis=1)
    assert 0 < zero_rows.sum() < zero_rows.size, zero_rows


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_dropout_only_in_training_and_reproducible_with_a_seed(kind):
    x = data(18)
    a = make(kind, dropout=0.3, recurrent_dropout=0.3, seed=5)
    b = make(kind, dropout=0.3, recurrent_dropout=0.3, seed=5)
    plain = twin(a, dropout=0.0, recurrent_dropout=0.0)
    close(a.forward(x), plain.forward(x))  # inference: no dropout
    ya, yb = a.forward(x, training=True), b.forward(x, training=True)
    close(ya, yb)  # same seed, same masks
    assert not np.allclose(ya, plain.forward(x))
    assert not np.allclose(ya, a.forward(x, training=True))  # a fresh mask per call


def test_dropout_scales_the_kept_inputs():
    """Inverted dropout: kept inputs are scaled by 1/(1-rate), so a linear layer's
    expected output is unchanged."""
    layer = make("rnn", activation="linear", dropout=0.25, use_bias=False, seed=8)
    plain = twin(layer, dropout=0.0)
    x = np.ones((4000, 1, D))
    close(layer.forward(x, training=True).mean(axis=0), plain.forward(x)[0], tol=0.08)


# --------------------------------------------------------------------------- dtypes
def _models(dtype=None):
    kw = {} if dtype is None else {"dtype": dtype}
    return [
        SimpleRNN(H, **kw),
        LSTM(H, proj_size=2, return_sequences=True, **kw),
        GRU(H, reset_after=False, **kw),
        Bidirectional(GRU(H, return_sequences=True, **kw)),
        Dense(2, activation="softmax", **kw),
        TimeDistributed(Dense(2, **kw)),
        Sequential(
            [
                Masking(**kw),
                LSTM(H, return_sequences=True, **kw),
                Dropout(0.2, **kw),
                GRU(H, **kw),
                Dense(2, **kw),
            ]
        ),
        RNNStack(
            [
                LSTM(H, return_sequences=True, return_state=True, **kw),
                LSTM(H, return_sequences=True, return_state=True, **kw),
            ],
            dropout=0.1,
        ),
    ]


def _run(model, x, training=True):
    y = model.forward(x, training=training)
    if isinstance(model, RNNStack):
        R = (np.ones_like(y[0]), tuple(np.ones_like(s) for s in y[1]))
        y = y[0]
    else:
        R = np.ones_like(y)
    dx = model.backward(R)
    return y, dx


@pytest.mark.parametrize("i", range(8))
@pytest.mark.parametrize("dtype", [None, "float32", "float64"])
def test_dtypes(i, dtype):
    model = _models(dtype)[i]
    want = np.float64 if dtype == "float64" else np.float32
    x = data(19)  # float64 input
    y, dx = _run(model, x)
    assert y.dtype == want and dx.dtype == want
    assert model.params and all(p.dtype == want for p in model.params.values())
    assert all(g.dtype == want for g in model.grads.values())


def test_set_floatx_changes_the_default():
    rnnkit.set_floatx("float64")
    layer = LSTM(H)
    assert layer.forward(data(20).astype(np.float32)).dtype == np.float64
    rnnkit.set_floatx("float32")
    assert LSTM(H).dtype == np.float32


def test_astype_converts_a_model():
    model = Sequential([GRU(H, return_sequences=True), Dense(2)])
    y32 = model.forward(data(21))
    model.astype("float64")
    y64 = model.forward(data(21))
    assert y64.dtype == np.float64 and all(p.dtype == np.float64 for p in model.params.values())
    np.testing.assert_allclose(y64, y32, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- initializers
def test_orthogonal_recurrent_kernel():
    rnn = SimpleRNN(16, input_shape=(None, 3))
    W = rnn.params["W"].astype(np.float64)
    close(W.T @ W, np.eye(16), tol=1e-6)
    lstm = LSTM(8, input_shape=(None, 3))  # W is 8 x 32: orthonormal rows
    W = lstm.params["W"].astype(np.float64)
    close(W @ W.T, np.eye(8), tol=1e-6)


def test_glorot_uniform_limit():
    layer = LSTM(32, input_shape=(None, 40))
    U = layer.params["U"]
    limit = np.sqrt(6.0 / (40 + 4 * 32))
    assert np.abs(U).max() <= limit and np.abs(U).max() > 0.95 * limit
    assert abs(U.mean()) < 0.05 * limit
    assert np.all(layer.params["b"][:32] == 0.0)  # bias: zeros


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_torch_uniform_limit(cls):
    H_ = 25
    layer = cls(
        H_,
        input_shape=(None, 10),
        kernel_initializer="torch_uniform",
        recurrent_initializer="torch_uniform",
        bias_initializer="torch_uniform",
        **({"unit_forget_bias": False} if cls is LSTM else {}),
    )
    k = 1.0 / np.sqrt(H_)
    for name, p in layer.params.items():
        assert np.abs(p).max() <= k, name
        assert np.abs(p).max() > 0.9 * k, name


def test_unit_forget_bias():
    layer = LSTM(5, input_shape=(None, 3))
    b = layer.params["b"]
    assert np.all(b[5:10] == 1.0)
    assert np.all(b[:5] == 0.0) and np.all(b[10:] == 0.0)
    assert np.all(LSTM(5, unit_forget_bias=False, input_shape=(None, 3)).params["b"] == 0.0)
    # as Keras: the forget block is exactly one, whatever the bias initializer
    b = LSTM(5, bias_initializer="uniform", input_shape=(None, 3)).params["b"]
    assert np.all(b[5:10] == 1.0) and np.abs(b[:5]).max() > 0.0


def test_seeds_make_weights_reproducible():
    rnnkit.set_seed(42)
    a = [LSTM(4, input_shape=(None, 2)), Dense(3, input_shape=(4,))]
    rnnkit.set_seed(42)
    b = [LSTM(4, input_shape=(None, 2)), Dense(3, input_shape=(4,))]
    for la, lb in zip(a, b):
        for k in la.params:
            np.testing.assert_array_equal(la.params[k], lb.params[k])
    assert not np.array_equal(a[0].params["U"], LSTM(4, input_shape=(None, 2)).params["U"])
    np.testing.assert_array_equal(
        GRU(3, seed=9, input_shape=(None, 2)).params["U"],
        GRU(3, seed=9, input_shape=(None, 2)).params["U"],
    )


@pytest.mark.parametrize(
    "name",
    [
        "zeros",
        "ones",
        "glorot_normal",
        "uniform",
        "normal",
        "orthogonal",
        "torch_uniform",
        "pytorch",
    ],
)
def test_initializer_names(name):
    layer = GRU(
        3,
        kernel_initializer=name,
        recurrent_initializer=name,
        bias_initializer=name,
        input_shape=(None, 2),
    )
    U = layer.params["U"]
    if name == "zeros":
        assert np.all(U == 0.0)
    elif name == "ones":
        assert np.all(U == 1.0)
    else:
        assert np.all(np.isfinite(U)) and np.std(U) > 0


# --------------------------------------------------------------------------- contract
def _contract_models():
    return _models("float64") + [
        Embedding(5, 3, dtype="float64"),
        Sequential([Embedding(5, D, mask_zero=True), Bidirectional(LSTM(H)), Dense(1)]),
        Bidirectional(LSTM(H, return_state=True, return_sequences=True), merge_mode=None),
        LSTM(H, use_bias=False),
        GRU(H, use_bias=False),
        GRU(H, reset_after=False, use_bias=False),
    ]


@pytest.mark.parametrize("i", range(14))
def test_grads_are_keyed_exactly_like_params(i):
    model = _contract_models()[i]
    x = np.array([[1, 2, 0], [3, 4, 1]]) if i in (8, 9) else data(23)
    y = model.forward(x, training=True)
    if isinstance(model, RNNStack):
        R = (np.ones_like(y[0]), (np.ones_like(y[1][0]), np.ones_like(y[1][1])))
    elif isinstance(y, list):
        R = [[np.ones_like(a) for a in o] if isinstance(o, list) else np.ones_like(o) for o in y]
    else:
        R = np.ones_like(y)
    model.backward(R)
    assert list(model.grads) == list(model.params) and model.params
    for k, p in model.params.items():
        assert model.grads[k].shape == p.shape, k
    # the container's dicts hold the children's very arrays
    for layer in model.walk():
        for k, p in layer.params.items():
            assert any(q is p for q in model.params.values()), k


def test_backward_overwrites_and_does_not_accumulate():
    layer = make("lstm")
    x = data(24)
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    first = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x)
    layer.backward(np.ones_like(y))
    for k in first:
        np.testing.assert_array_equal(layer.grads[k], first[k])


@pytest.mark.parametrize("D_,H_", [(1, 20), (3, 7), (10, 1)])
def test_parameter_counts_equal_keras(D_, H_):
    shape = dict(input_shape=(None, D_))
    assert SimpleRNN(H_, **shape).count_params() == H_ * (D_ + H_ + 1)
    assert LSTM(H_, **shape).count_params() == 4 * H_ * (D_ + H_ + 1)
    assert GRU(H_, **shape).count_params() == 3 * H_ * (D_ + H_ + 2)
    assert GRU(H_, reset_after=False, **shape).count_params() == 3 * H_ * (D_ + H_ + 1)
    assert SimpleRNN(H_, use_bias=False, **shape).count_params() == H_ * (D_ + H_)
    layer = Bidirectional(LSTM(H_, **shape))
    layer.build((None, None, D_))
    assert layer.count_params() == 2 * 4 * H_ * (D_ + H_ + 1)
    assert Dense(H_, input_shape=(D_,)).count_params() == (D_ + 1) * H_
    assert Embedding(D_ + 5, H_).count_params() == (D_ + 5) * H_
    if H_ > 1:
        P = H_ // 2 if H_ > 2 else 1
        assert LSTM(H_, proj_size=P, **shape).count_params() == 4 * H_ * (D_ + P + 1) + H_ * P


def test_the_lecture_model_runs_as_written():
    model = Sequential(
        [
            SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
            SimpleRNN(20),
            Dense(1),
        ]
    )
    assert model.count_params() == 20 * 22 + 20 * 41 + 21
    x = np.random.default_rng(25).standard_normal((7, 50, 1)).astype(np.float32)
    y = model.forward(x)
    assert y.shape == (7, 1)
    dx = model.backward(np.ones_like(y))
    assert dx.shape == x.shape


# --------------------------------------------------------------------------- shapes and wrappers
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_outputs_and_states(kind):
    layer = make(kind, return_sequences=True, return_state=True)
    out = layer.forward(data(26))
    Hout = 2 if kind == "lstm_proj" else H
    assert out[0].shape == (N, T, Hout)
    assert len(out) == 1 + len(layer.state_sizes)
    close(out[1], out[0][:, -1])  # h_T is the last output
    if kind.startswith("lstm"):
        assert out[2].shape == (N, H)
    assert make(kind).forward(data(26)).shape == (N, Hout)
    assert layer.compute_output_shape((N, T, D)) == [o.shape for o in out]
    s = [np.full((N, size), 0.5) for size in layer.state_sizes]
    assert not np.allclose(layer.forward(data(26), initial_state=s)[0], out[0])


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge(merge_mode):
    layer = Bidirectional(make("gru", return_sequences=True), merge_mode=merge_mode)
    x = data(27)
    y = layer.forward(x)
    f = twin(layer.forward_layer).forward(x)
    b = twin(layer.backward_layer).forward(x)[:, ::-1]  # back in input order
    expect = {
        "concat": np.concatenate([f, b], -1),
        "sum": f + b,
        "mul": f * b,
        "ave": (f + b) / 2,
        None: [f, b],
    }[merge_mode]
    if merge_mode is None:
        close(y[0], f)
        close(y[1], b)
    else:
        close(y, expect)
    assert layer.forward_layer.name.startswith("forward_")
    assert layer.backward_layer.name.startswith("backward_")
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards


def test_wrappers_accept_keras_input_shape():
    """Bidirectional(LSTM(...), input_shape=(T, D)) is built at once, as in Keras."""
    bi = Bidirectional(LSTM(4, return_sequences=True), input_shape=(None, 3))
    assert bi.built and bi.count_params() == 2 * 4 * 4 * (3 + 4 + 1)
    td = TimeDistributed(Dense(2), input_shape=(5, 4))
    assert td.built and td.count_params() == 10


def test_time_distributed_dense_equals_dense():
    dense = Dense(3, activation="tanh", dtype="float64", input_shape=(D,))
    td = TimeDistributed(dense)
    x = data(28)
    close(td.forward(x), dense.forward(x.reshape(-1, D)).reshape(N, T, 3))
    close(Dense(4, activation="softmax", dtype="float64").forward(x).sum(-1), np.ones((N, T)))


def test_scatter_add_matches_np_add_at():
    """backend.scatter_add sums rows per index (sort + reduceat) as np.add.at does, repeated
    and negative indices included (-1 is the last row, the same row as n - 1)."""
    from rnnkit import backend

    rng = np.random.default_rng(0)
    values = rng.standard_normal((40, 3))
    for idx in (rng.integers(0, 7, 40), np.r_[rng.integers(0, 7, 38), -1, 6], np.zeros(40, int)):
        want = np.ones((7, 3))
        np.add.at(want, idx, values)
        got = backend.scatter_add(np.ones((7, 3)), idx, values)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
