"""The attention encoder–decoder with a lexicon bias (Arthur et al. 2016): exact gradients,
the lexicon kept out of training and saved with the model, decoding with the lexicon rows
carried along the beams."""

import numpy as np
import pytest

import rnnkit
from rnnkit.seq2seq_attention import AttentionEncoderDecoder, LexiconAttentionEncoderDecoder


def tiny(cell="lstm", seed=0, dtype="float64", entries=32):
    """A model with vocabularies of 7 (source) and 6 (target), 4 units, every trainable
    weight drawn from N(0, 0.5²) and a random lexicon: rows of probabilities, <pad>'s row
    and the <pad>/<s> columns zero (as the translate app builds it)."""
    rng = np.random.default_rng(seed)
    m = LexiconAttentionEncoderDecoder(
        7, 6, units=4, embed_dim=3, cell=cell, dtype=dtype, lexicon_entries=entries
    )
    for p in m.trainable_params().values():
        p[...] = rng.normal(0.0, 0.5, p.shape)
    L = rng.random((7, 6))
    L[:, :2] = 0.0
    L[0] = 0.0
    L[1:] /= L[1:].sum(axis=1, keepdims=True)
    m.set_lexicon(L)
    return m, L


def batch(seed=0):
    rng = np.random.default_rng(seed + 100)
    src = rng.integers(1, 7, (3, 4))
    src[0, 2:] = 0  # a shorter source, padded
    tgt = np.concatenate([np.ones((3, 1), int), rng.integers(2, 6, (3, 4))], axis=1)
    tgt[1, 3:] = 0  # a shorter target, padded
    return src, tgt[:, :-1]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_finite_differences(cell, seed):
    m, _ = tiny(cell, seed)
    # eps 1e-4: the loss holds log(ε) terms of size 7, whose rounding makes the error of
    # eps 1e-6 about 1e-6 by itself (it falls as 1/eps: 9e-7, 9e-8, 9e-9 for 1e-6 .. 1e-4)
    worst, report = rnnkit.gradcheck(m, batch(seed), eps=1e-4, return_report=True)
    assert sorted(report) == sorted(m.trainable_params())  # every trained weight checked
    assert worst < 1e-6, report


def test_a_sparse_lexicon_keeps_the_largest_entries_of_each_row():
    """lexicon_entries=2 of 6: the same model as the full one given the table with all but
    each row's two largest values set to zero, and its gradients are exact too."""
    sparse, L = tiny(entries=2)
    full, _ = tiny(entries=6)
    pruned = np.zeros_like(L)
    top = np.argsort(-L, axis=1, kind="stable")[:, :2]
    np.put_along_axis(pruned, top, np.take_along_axis(L, top, axis=1), axis=1)
    full.set_lexicon(pruned)
    np.testing.assert_array_equal(sparse.lexicon.table(), pruned)
    assert sparse.params["lexicon/p"].shape == (7, 2)
    x = batch()
    np.testing.assert_allclose(sparse.forward(x), full.forward(x), rtol=1e-13)
    worst, report = rnnkit.gradcheck(sparse, x, eps=1e-4, return_report=True)
    assert worst < 1e-6, report
    ids = np.array([[4, 5]] * 7)  # set the rows directly
    sparse.set_lexicon(ids=ids, p=np.full((7, 2), 0.5))
    assert (sparse.lexicon.table()[:, 4:] == 0.5).all() and sparse.lexicon.table()[:, :4].sum() == 0
    with pytest.raises(ValueError, match="at most 2 entries a row"):
        sparse.set_lexicon(ids=np.zeros((7, 3), int), p=np.zeros((7, 3)))
    with pytest.raises(ValueError, match=r"ids must be target ids in \[0, 6\)"):
        sparse.set_lexicon(ids=ids + 2, p=np.zeros((7, 2)))


def test_the_lexicon_term_of_the_attention_gradient_is_there(monkeypatch):
    """The check catches a backward without the lexicon's term in the attention gradient."""
    m, _ = tiny()
    x = batch()
    _, with_lex = rnnkit.gradcheck(m, x, eps=1e-4, return_report=True)
    monkeypatch.setattr(
        LexiconAttentionEncoderDecoder,
        "_attention_backward",
        lambda self, dy: self.attention.backward(self.head.backward(dy)),
    )
    _, without = rnnkit.gradcheck(m, x, eps=1e-4, return_report=True)
    assert with_lex["attention/Wa"] < 1e-6 < without["attention/Wa"]


def test_the_lexicon_is_saved_but_not_trained():
    m, L = tiny()
    for name in ("lexicon/ids", "lexicon/p"):
        assert name in m.params and name not in m.trainable_params()
    m.compile(loss="sparse_categorical_crossentropy", ignore_class=0, optimizer="adam")
    src, tgt_in = batch()
    before = {k: v.copy() for k, v in m.params.items()}
    m.train_on_batch([src, tgt_in], np.roll(tgt_in, -1, axis=1))
    np.testing.assert_array_equal(m.lexicon.table(), L)
    assert not np.array_equal(before["head/V"], m.params["head/V"])


def test_a_zero_lexicon_is_the_attention_model():
    m, _ = tiny()
    a = AttentionEncoderDecoder(7, 6, units=4, embed_dim=3, cell="lstm", dtype="float64")
    a.set_weights([w for k, w in zip(m.params, m.get_weights()) if not k.startswith("lexicon/")])
    m.set_lexicon(np.zeros((7, 6)))
    x = batch()
    np.testing.assert_allclose(m.forward(x), a.forward(x), rtol=1e-12)


def test_padding_in_the_source_does_not_change_the_output():
    m, _ = tiny()
    src, tgt = np.array([[3, 4, 5]]), np.array([[1, 4, 5]])
    padded = np.array([[3, 4, 5, 0, 0]])
    np.testing.assert_allclose(m.forward((src, tgt)), m.forward((padded, tgt)), rtol=1e-12)


def test_save_load_round_trip_and_decoding(tmp_path):
    m, L = tiny(dtype="float32")
    path = tmp_path / "lex.rnnkit"
    m.save(path)
    back = rnnkit.load_model(path)
    assert type(back) is LexiconAttentionEncoderDecoder and back.lexicon_eps == 1e-3
    np.testing.assert_array_equal(back.lexicon.table(), L.astype(np.float32))
    x = batch()
    np.testing.assert_array_equal(back.forward(x), m.forward(x))
    src = np.random.default_rng(5).integers(1, 7, (4, 3))
    src[1, 2:] = 0
    greedy = m.generate(src, max_length=6)
    assert len(greedy) == 4 and all(all(0 < t < 6 for t in row) for row in greedy)
    assert back.generate(src, max_length=6) == greedy
    assert m.generate(src, max_length=6, method="beam", beam_width=1) == greedy
    beam = m.generate(src, max_length=6, method="beam", beam_width=3)
    assert len(beam) == 4 and all(all(0 < t < 6 for t in row) for row in beam)


def test_generate_returns_the_attended_source_positions():
    """return_attention: for each written token, the source position with the largest
    attention weight at that step; beam search carries them along with the beams."""
    m, _ = tiny(seed=3)
    src = np.array([[3, 4, 5, 6], [2, 5, 0, 0]])
    ids, where = m.generate(src, max_length=5, return_attention=True)
    assert ids == m.generate(src, max_length=5)
    for n in range(2):  # replay teacher-forced: the same argmax at each step
        if not ids[n]:
            continue
        m.forward((src[n : n + 1], np.array([[1] + ids[n][:-1]])))
        np.testing.assert_array_equal(m.attention.last_weights[0].argmax(axis=-1), where[n])
        assert all(0 <= s < (src[n] != 0).sum() for s in where[n])  # never padding
    one = m.generate(src, max_length=5, method="beam", beam_width=1, return_attention=True)
    assert one == (ids, where)
    ids3, where3 = m.generate(src, 5, method="beam", beam_width=3, return_attention=True)
    assert [len(w) for w in where3] == [len(r) for r in ids3]
    plain = rnnkit.EncoderDecoder(7, 6, units=4, embed_dim=3)
    with pytest.raises(ValueError, match="return_attention needs a model with attention"):
        plain.generate(src, max_length=3, return_attention=True)


def test_a_strong_lexicon_decides_the_words():
    """With a one-word source and a lexicon that maps it to one target word with certainty,
    that word's bias is log(1 + 1/ε) against 0 for the others: it wins at every step."""
    m, _ = tiny()
    L = np.zeros((7, 6))
    L[3, 4] = 1.0
    m.set_lexicon(L)
    logits = m.forward((np.array([[3]]), np.array([[1, 4, 4]])))
    assert (logits.argmax(axis=-1) == 4).all()


def test_bad_arguments():
    m, _ = tiny()
    with pytest.raises(ValueError, match=r"lexicon must have shape \(7, 6\)"):
        m.set_lexicon(np.zeros((6, 7)))
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        m.set_lexicon(-np.ones((7, 6)))
    with pytest.raises(ValueError, match="lexicon_eps must be a positive number"):
        LexiconAttentionEncoderDecoder(7, 6, units=4, embed_dim=3, lexicon_eps=0)
