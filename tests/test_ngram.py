"""The n-gram memory: Kneser-Ney against a direct transcription of its recursion, the two
ways of asking it (a sequence, a batch of contexts), the choice of λ, and files."""

from collections import Counter

import numpy as np
import pytest

from rnnkit.apps import autocomplete as app
from rnnkit.apps.ngram import WEIGHTS, KneserNey, NgramMemory, max_order

TEXT = (
    "the cat sat on the mat. the dog sat on the log. a cat and a dog sat on a mat, "
    "and the cat saw the dog on the log by the mat. "
) * 3 + "zebra"


def encoded(text=TEXT):
    chars = sorted(set(text))
    return np.array([chars.index(c) for c in text]), len(chars)


def reference_probs(ids, order, V, history):
    """P(w | history) for every w, by the formulas of KneserNey's docstring, with dicts."""
    ids = [int(i) for i in ids]

    def grams(k):
        return Counter(tuple(ids[i : i + k]) for i in range(len(ids) - k + 1))

    def table(k):  # counts at the top order, continuation counts below it
        if k == order:
            return grams(k)
        return Counter(g[1:] for g in grams(k + 1))

    def P(k, h, w):
        if k == 0:
            return 1.0 / V
        t = table(k)
        cc = Counter(min(c, 3) for c in t.values())
        D = cc[1] / (cc[1] + 2 * cc[2]) if cc[1] + 2 * cc[2] > 0 else 0.5
        ctx = tuple(h[len(h) - (k - 1) :]) if k > 1 else ()
        total = sum(c for g, c in t.items() if g[:-1] == ctx)
        if len(ctx) < k - 1 or total == 0:
            return P(k - 1, h, w)
        types = sum(1 for g in t if g[:-1] == ctx)
        c = t.get(ctx + (w,), 0)
        return max(c - D, 0) / total + D * types / total * P(k - 1, h, w)

    return np.array([P(order, list(history), w) for w in range(V)])


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_follows_its_formulas(order):
    ids, V = encoded()
    kn = KneserNey(ids, order, V)
    rng = np.random.default_rng(order)
    histories = [ids[s : s + order - 1] for s in rng.integers(0, len(ids) - order, 5)]
    histories.append(np.array([V - 1] * (order - 1)))  # a context never seen
    for h in histories:
        got = kn.next_probs(np.array([h]))[0]
        np.testing.assert_allclose(got, reference_probs(ids, order, V, h), rtol=1e-12)
        assert got.sum() == pytest.approx(1.0, abs=1e-12)


def test_a_sequence_and_a_batch_of_contexts_give_the_same_probabilities():
    ids, V = encoded()
    train, val = ids[:300], ids[300:]
    for order in (1, 3, 6):
        kn = KneserNey(train, order, V)
        seq = kn.probs(train, val)  # each from the order - 1 characters before it
        history = np.concatenate([train, val])
        m = order - 1
        ctx = np.stack([history[300 + i - m : 300 + i] for i in range(len(val))])
        batch = kn.next_probs(ctx)
        np.testing.assert_allclose(seq, batch[np.arange(len(val)), val], rtol=1e-12)
        # with nothing before it, the first characters back off to the orders they have
        cold = kn.probs(train[:0], val[:3])
        padded = np.full((3, m), -1)
        for i in range(3):
            padded[i, m - i :] = val[:i][len(val[:i]) - m :] if m else []
        np.testing.assert_allclose(cold, kn.next_probs(padded)[np.arange(3), val[:3]])


def test_nothing_to_predict_and_a_short_history():
    ids, V = encoded()
    kn = KneserNey(ids, 5, V)
    assert kn.probs(ids, []).shape == (0,)
    np.testing.assert_allclose(kn.probs(ids[:2], ids[2:4]), kn.probs([], ids[:4])[2:])


def test_order_is_refused_where_int64_keys_overflow():
    assert max_order(85) == 9 and max_order(200) == 8 and max_order(70_000) == 3
    with pytest.raises(ValueError, match="order"):
        KneserNey([0, 1, 2], 9, 200)
    with pytest.raises(ValueError, match="order"):
        KneserNey([0, 1, 2], 0, 10)


def test_the_weight_goes_to_the_better_predictor():
    ids, V = encoded()
    perfect = NgramMemory.fit(ids, 3, V, lambda tail: np.ones(len(tail) - 1))
    assert perfect.weight == 1.0  # a network that is never wrong needs no memory
    uniform = NgramMemory.fit(ids, 3, V, lambda tail: np.full(len(tail) - 1, 1.0 / V))
    assert uniform.weight == WEIGHTS[0]  # one that knows nothing gets the least weight
    with pytest.raises(ValueError, match="weight"):
        NgramMemory(ids, 3, V, 1.5)


def test_the_memory_survives_its_json_and_refuses_a_damaged_one():
    ids, V = encoded()
    mem = NgramMemory(ids, 4, V, 0.7)
    again = NgramMemory.from_json(mem.to_json())
    assert (again.order, again.V, again.weight) == (4, V, 0.7)
    np.testing.assert_array_equal(again.ids, ids)
    ctx = mem.contexts([ids[:10], ids[:2], []])
    assert ctx.shape == (3, 3) and (ctx[1, :1] == -1).all() and (ctx[2] == -1).all()
    np.testing.assert_array_equal(again.model.next_probs(ctx), mem.model.next_probs(ctx))
    bad = dict(mem.to_json(), ids="not base64 at all!")
    with pytest.raises(app.ModelFileError, match="n-gram memory"):
        app.memory_from({"ngram_memory": bad})
    outside = NgramMemory(ids, 2, V, 0.5).to_json()
    outside["vocab_size"] = 2  # ids beyond the vocabulary it claims
    with pytest.raises(app.ModelFileError, match="outside its vocabulary"):
        app.memory_from({"ngram_memory": outside})
    assert app.memory_from({}) is None  # a file from before the memory


def test_the_mixture_is_a_distribution():
    ids, V = encoded()
    mem = NgramMemory(ids, 3, V, 0.6)
    logp = np.log(np.random.default_rng(0).dirichlet(np.ones(V), size=4))
    mixed = np.exp(mem.mix_logp(logp, mem.contexts([ids[:5], ids[:9], ids[:1], []])))
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-12)


def test_the_network_does_not_learn_from_the_blocks_that_choose_lambda():
    from rnnkit.apps.ngram import tune_mask

    for n, tuned in [(100_000, 5_000), (10_000_000, 250_000), (3_000, 150), (40, 2)]:
        mask = tune_mask(n)
        assert mask.shape == (n,) and mask.sum() == tuned, n
    mask = tune_mask(100_000)  # five blocks of 1,000, spread over the text
    starts = np.flatnonzero(np.diff(mask.astype(int), prepend=0) == 1)
    assert len(starts) == 5 and starts[0] > 0 and starts[-1] < 99_000
    train = np.arange(100_000) % 7
    s = app.Settings()
    np.testing.assert_array_equal(app.network_ids(train, s), train[~mask])
    s.ngram = 0  # without a memory the network reads all of it
    assert len(app.network_ids(train, s)) == 100_000


def test_best_weight_is_the_mixture_with_the_fewest_bits():
    from rnnkit.apps.ngram import best_weight

    rng = np.random.default_rng(3)
    p_net, p_ngram = rng.uniform(0.01, 1, 500), rng.uniform(0.01, 1, 500)
    bits = {float(w): -np.log2(w * p_net + (1 - w) * p_ngram).mean() for w in WEIGHTS}
    assert best_weight(p_net, p_ngram) == min(bits, key=bits.get)
    assert best_weight(np.ones(10), np.full(10, 0.5)) == 1.0  # a perfect network
    assert best_weight(np.full(10, 0.5), np.ones(10)) == WEIGHTS[0]
