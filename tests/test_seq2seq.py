"""The encoder–decoder: exact gradients, teacher forcing, greedy and beam decoding,
and the vector-to-sequence configurations."""

import numpy as np
import pytest

import rnnkit
from rnnkit import Dense, EncoderDecoder, RepeatVector, Sequential, SimpleRNN, optim, shift_targets

rng = np.random.default_rng(11)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_encoder_decoder_gradients(cell, layers):
    m = EncoderDecoder(7, 6, units=4, embed_dim=3, num_layers=layers, cell=cell, dtype="float64")
    src = rng.integers(1, 7, (3, 5))
    src[0, 3:] = 0  # a shorter source, padded
    tgt = np.concatenate([np.ones((3, 1), int), rng.integers(3, 6, (3, 4))], axis=1)
    tgt[1, 3:] = 0
    assert rnnkit.gradcheck(m, (src, tgt[:, :-1])) < 1e-6


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("attention", [False, True])
def test_bidirectional_encoder_gradients(cell, layers, attention):
    """units // 2 a direction; the decoder starts from [h→; h←]: every weight of both
    directions (and of the attention, which reads the two directions side by side)."""
    from rnnkit.seq2seq_attention import AttentionEncoderDecoder

    Model = AttentionEncoderDecoder if attention else EncoderDecoder
    m = Model(
        7,
        6,
        units=4,
        embed_dim=3,
        num_layers=layers,
        cell=cell,
        bidirectional=True,
        dtype="float64",
    )
    for p in m.trainable_params().values():  # weights of size 0.5: gradients well away from 0
        p[...] = rng.normal(0.0, 0.5, p.shape)
    names = list(m.trainable_params())
    assert any("forward_encoder_0" in k for k in names), names
    assert any("backward_encoder_0" in k for k in names), names
    src = rng.integers(1, 7, (3, 5))
    src[0, 3:] = 0
    tgt = np.concatenate([np.ones((3, 1), int), rng.integers(3, 6, (3, 4))], axis=1)
    tgt[1, 3:] = 0
    # eps 1e-4: attention/Wa's gradient is small beside the loss, and with eps 1e-6 the
    # rounding of the loss differences alone makes its relative error about 1e-5
    worst, report = rnnkit.gradcheck(m, (src, tgt[:, :-1]), eps=1e-4, return_report=True)
    assert sorted(report) == sorted(names) and worst < 1e-6, report
    # padding at the end of a source changes nothing, in either direction
    short, padded = np.array([[3, 4, 5]]), np.array([[3, 4, 5, 0, 0]])
    t = np.array([[1, 4, 5]])
    np.testing.assert_allclose(m.forward((short, t)), m.forward((padded, t)), rtol=1e-12)


def test_dropout_is_for_training_only_and_its_gradients_are_exact():
    m = EncoderDecoder(7, 6, units=4, embed_dim=3, dropout=0.5, dtype="float64")
    src = rng.integers(1, 7, (3, 5))
    tgt = np.concatenate([np.ones((3, 1), int), rng.integers(3, 6, (3, 4))], axis=1)[:, :-1]
    np.testing.assert_array_equal(m.forward((src, tgt)), m.forward((src, tgt)))
    assert not np.allclose(m.forward((src, tgt), training=True), m.forward((src, tgt)))
    assert rnnkit.gradcheck(m, (src, tgt), training=True) < 1e-6  # with the masks held


def test_vector_to_sequence_gradients():
    m = EncoderDecoder(
        target_vocab=6,
        units=4,
        embed_dim=3,
        cell="lstm",
        source="vector",
        source_dim=3,
        dtype="float64",
    )
    v = rng.standard_normal((3, 3))
    tgt = rng.integers(1, 6, (3, 4))
    assert rnnkit.gradcheck(m, (v, tgt)) < 1e-6
    rv = Sequential(
        [
            Dense(4, activation="tanh", input_shape=[3], dtype="float64"),
            RepeatVector(5, dtype="float64"),
            SimpleRNN(4, return_sequences=True, dtype="float64"),
            Dense(2, dtype="float64"),
        ]
    )
    assert rnnkit.gradcheck(rv, v) < 1e-6


def test_padding_in_the_source_does_not_change_the_translation():
    m = EncoderDecoder(9, 8, units=6, embed_dim=4, cell="gru", dtype="float64")
    src = np.array([[3, 4, 5]])
    padded = np.array([[3, 4, 5, 0, 0]])
    tgt = np.array([[1, 4, 5]])
    np.testing.assert_allclose(m.forward((src, tgt)), m.forward((padded, tgt)), rtol=1e-12)


def reverse_task(n, vocab=10, max_len=5):
    S = np.zeros((n, max_len), int)
    T = np.zeros((n, max_len + 2), int)
    for i in range(n):
        L = rng.integers(2, max_len + 1)
        s = rng.integers(3, vocab, L)
        S[i, :L] = s
        T[i, 0], T[i, 1 : L + 1], T[i, L + 1] = 1, s[::-1], 2
    return S, T


def test_learns_to_reverse_with_teacher_forcing_and_decodes():
    rnnkit.set_seed(3)
    S, T = reverse_task(1500)
    t_in, t_out = shift_targets(T)
    m = EncoderDecoder(10, 10, units=48, embed_dim=12, cell="gru")
    m.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        ignore_class=0,
        optimizer=optim.Adam(0.01, clip_global_norm=5.0),
        metrics=["accuracy"],
    )
    h = m.fit([S, t_in], t_out, epochs=12, batch_size=50, verbose=0)
    assert h.history["accuracy"][-1] > 0.9
    S2, T2 = reverse_task(100)
    want = [list(t[1 : list(t).index(2)]) for t in T2]
    greedy = m.generate(S2, max_length=8)
    beam = m.generate(S2, max_length=8, method="beam", beam_width=3)
    assert np.mean([g == w for g, w in zip(greedy, want)]) > 0.8
    assert (
        np.mean([b == w for b, w in zip(beam, want)])
        >= np.mean([g == w for g, w in zip(greedy, want)]) - 0.05
    )


def test_beam_search_with_width_one_is_greedy():
    rnnkit.set_seed(4)
    m = EncoderDecoder(9, 8, units=6, embed_dim=4, cell="lstm")
    src = rng.integers(1, 9, (5, 4))
    assert m.generate(src, max_length=6) == m.generate(
        src, max_length=6, method="beam", beam_width=1
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="bidirectional needs a token source and an even"):
        EncoderDecoder(5, 5, units=3, bidirectional=True)
    with pytest.raises(ValueError, match="dropout"):
        EncoderDecoder(5, 5, dropout=1.5)
    with pytest.raises(ValueError, match="cell must be one of"):
        EncoderDecoder(5, 5, cell="transformer")
    with pytest.raises(ValueError, match="end_id must be a token id"):
        EncoderDecoder(5, 5, end_id=9)
    m = EncoderDecoder(5, 5, units=3, embed_dim=2)
    with pytest.raises(ValueError, match=r"the input must be \(source, target_in\)"):
        m.forward(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="method must be one of"):
        m.generate(np.ones((1, 2), int), method="sample")
