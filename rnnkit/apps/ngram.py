"""Character n-gram models, and the n-gram memory that autocomplete mixes with its network.

A small recurrent network learns the text's regularities; it cannot hold every phrase it
read. A Kneser-Ney n-gram model holds them all, and nothing else. Their mixture

    p(w | h) = λ · p_net(w | h) + (1 − λ) · p_KN(w | the last n − 1 characters of h)

spends fewer bits on held-out text than either alone (docs/autocomplete.md, "The n-gram
memory"). λ is chosen on text the n-gram model did not count (``NgramMemory.fit``), never on
the held-out text that is reported.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable

import numpy as np

MAX_ORDER = 9  # longer contexts gain little on the texts measured, and cost memory


def max_order(vocab_size: int, limit: int = MAX_ORDER) -> int:
    """The largest order k ≤ ``limit`` whose k-grams fit one int64 key (V^k < 2^62)."""
    k = 1
    while k < limit and int(vocab_size) ** (k + 1) < 2**62:
        k += 1
    return k


def gram_keys(ids, k: int, V: int) -> np.ndarray:
    """(len(ids) - k + 1,) int64: each k-gram x_{i-k+1} .. x_i as one number in base V."""
    ids = np.asarray(ids, dtype=np.int64)
    keys = np.zeros(max(len(ids) - k + 1, 0), dtype=np.int64)
    for j in range(k):
        keys = keys * V + ids[j : len(ids) - k + 1 + j]
    return keys


def _counts(keys) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys, sorted; how often each occurs)."""
    keys = np.sort(keys)
    if not len(keys):
        return keys, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[starts], np.diff(np.append(starts, len(keys)))


def _lookup(sorted_keys, values, keys) -> np.ndarray:
    """values[i] where sorted_keys[i] == key, else 0, for each key (any shape)."""
    if not len(sorted_keys):
        return np.zeros(np.shape(keys), dtype=np.float64)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == keys, values[at], 0).astype(np.float64)


class KneserNey:
    """An interpolated Kneser-Ney character n-gram model of ``order`` counted on ``ids``
    (Chen & Goodman's, one discount per order, D_k = n1 / (n1 + 2 n2)):

        P_k(w | h) = max(c_k(h w) − D_k, 0) / c_k(h) + D_k N1+(h •) / c_k(h) · P_{k−1}(w | h')

    h' drops h's first character; c_k is the count at the top order and the number of
    distinct left neighbours (the continuation count) below it; P_0 = 1 / V; a context
    never seen falls back to P_{k−1}."""

    def __init__(self, ids, order: int, vocab_size: int):
        V, order = int(vocab_size), int(order)
        if order < 1 or V**order >= 2**62:
            raise ValueError(
                f"order must be ≥ 1 with V^order < 2^62 (int64 keys); got order {order} over "
                f"{V} characters (at most {max_order(V, 64)})"
            )
        self.order, self.V = order, V
        ids = np.asarray(ids, dtype=np.int64)
        self.tables = []  # per k = 1 .. order: (keys, counts, context keys, c(h), N1+(h •), D)
        distinct_above = None  # the distinct (k+1)-grams, for order k's continuation counts
        for k in range(order, 0, -1):
            distinct, counts = _counts(gram_keys(ids, k, V))
            keys = distinct
            if k < order:  # continuation counts: distinct (k+1)-grams ending in each k-gram
                keys, counts = _counts(distinct_above % V**k)
            distinct_above = distinct
            cc = np.bincount(np.minimum(counts, 3), minlength=4)
            D = cc[1] / (cc[1] + 2 * cc[2]) if cc[1] + 2 * cc[2] > 0 else 0.5
            contexts = keys // V  # the k - 1 characters before w; sorted, as keys are
            first = np.flatnonzero(np.diff(contexts, prepend=-1))  # where each context starts
            ctx_keys = contexts[first]
            totals = np.add.reduceat(counts, first) if len(first) else counts[:0]
            types = np.diff(np.append(first, len(keys)))
            self.tables.append((keys, counts, ctx_keys, totals, types, float(D)))
        self.tables.reverse()

    def probs(self, before, ids) -> np.ndarray:
        """(len(ids),) the probability of each of ``ids``, each predicted from the
        ``order − 1`` characters before it (the end of ``before`` for the first ones)."""
        m = self.order - 1
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros(0)
        before = np.asarray(before, dtype=np.int64)[len(before) - m :] if m else ids[:0]
        history = np.concatenate([np.full(m - len(before), -1, np.int64), before, ids])
        p = np.full(len(ids), 1.0 / self.V)  # P_0
        for k, (keys, counts, ctx_keys, totals, types, D) in enumerate(self.tables, start=1):
            grams = np.lib.stride_tricks.sliding_window_view(history, k)[m - k + 1 :]
            known = (grams >= 0).all(axis=1)  # the text's first characters have no history
            q = (np.where(grams >= 0, grams, 0) * self.V ** np.arange(k - 1, -1, -1)).sum(1)
            p = self._interpolate(
                p, q // self.V, q, known, keys, counts, ctx_keys, totals, types, D
            )
        return p

    def next_probs(self, contexts) -> np.ndarray:
        """(n, V) the distribution of the next character after each row of ``contexts``
        (n, m) of ids, the last m characters before it (m ≥ order − 1 uses the last
        order − 1; -1 marks a character before the text began)."""
        contexts = np.asarray(contexts, dtype=np.int64)
        n, V = len(contexts), self.V
        p = np.full((n, V), 1.0 / V)
        w = np.arange(V)
        for k, (keys, counts, ctx_keys, totals, types, D) in enumerate(self.tables, start=1):
            ctx = contexts[:, contexts.shape[1] - (k - 1) :] if k > 1 else contexts[:, :0]
            if ctx.shape[1] < k - 1:
                break  # no longer context to condition on
            known = (ctx >= 0).all(axis=1)
            h = (np.where(ctx >= 0, ctx, 0) * V ** np.arange(k - 2, -1, -1)).sum(1)  # (n,)
            q = h[:, None] * V + w  # (n, V)
            p = self._interpolate(
                p, h[:, None], q, known[:, None], keys, counts, ctx_keys, totals, types, D
            )
        return p

    @staticmethod
    def _interpolate(p, h, q, known, keys, counts, ctx_keys, totals, types, D):
        """One order of the recursion: P_k from P_{k-1} = p, for grams q with contexts h."""
        c = _lookup(keys, counts, q)
        total = _lookup(ctx_keys, totals, h)
        n = _lookup(ctx_keys, types, h)
        seen = known & (total > 0)
        safe = np.where(seen, total, 1.0)
        return np.where(seen, np.maximum(c - D, 0.0) / safe + D * n / safe * p, p)


WEIGHTS = np.round(np.linspace(0.05, 1.0, 20), 2)  # the network's weights λ tried by fit


def best_weight(p_net, p_ngram) -> float:
    """The λ among WEIGHTS whose mixture λ p_net + (1 − λ) p_ngram spends the fewest bits
    on the characters these are the probabilities of."""
    p_net = np.asarray(p_net, dtype=np.float64)
    bits = [-np.log2(lam * p_net + (1 - lam) * p_ngram).mean() for lam in WEIGHTS]
    return float(WEIGHTS[int(np.argmin(bits))])


TUNE_FRACTION, TUNE_MAX, TUNE_BLOCK = 0.05, 250_000, 1_000  # the characters λ is chosen on


def tune_mask(n: int) -> np.ndarray:
    """(n,) bool: the training characters that choose λ (``NgramMemory.fit``), and that the
    network does not learn from: blocks of 1,000 characters (fewer in a text under 40,000),
    evenly spread, 5 % of the text and at most 250,000 characters. Spread, not the text's
    tail: on a text made of parts (modules, books, plays) the held-out tail is most like the
    training text's tail, and the network should learn from that."""
    n = int(n)
    block = int(min(TUNE_BLOCK, max(n // 40, 1)))
    blocks = n // block
    m = int(min(max(round(blocks * TUNE_FRACTION), 1), TUNE_MAX // block, blocks // 2))
    mask = np.zeros(n, dtype=bool)
    for j in range(m):
        b = int((j + 0.5) * blocks / m)
        mask[b * block : (b + 1) * block] = True
    return mask


class NgramMemory:
    """A Kneser-Ney model of the training text, mixed with the network's predictions:
    p = λ p_net + (1 − λ) p_KN. ``ids``: the training text (kept, so that a model file
    can rebuild the counts); ``weight``: λ."""

    def __init__(self, ids, order: int, vocab_size: int, weight: float):
        if not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"weight must be in [0, 1]; got {weight!r}")
        self.ids = np.asarray(ids, dtype=np.int64)
        self.order, self.V, self.weight = int(order), int(vocab_size), float(weight)
        self.model = KneserNey(self.ids, self.order, self.V)

    @classmethod
    def fit(
        cls,
        ids,
        order: int,
        vocab_size: int,
        net_probs: Callable[[np.ndarray], np.ndarray],
    ) -> NgramMemory:
        """The memory of ``ids`` with λ chosen on the blocks of ``tune_mask``: the n-gram
        model counted on the rest, and λ among WEIGHTS that gives the blocks (read one
        after another) the fewest bits. ``net_probs(tune)``: the network's probabilities
        of tune[1:] (each from the characters before it). The network must not have
        learned from those blocks (autocomplete's ``network_ids`` keeps them out of its
        training): a network that has read a text looks better on it than on new text,
        and λ would lean to it (on 600 KB of Python source, 0.90 where 0.55 was best)."""
        ids = np.asarray(ids, dtype=np.int64)
        mask = tune_mask(len(ids))
        head, tail = ids[~mask], ids[mask]
        p_ngram = KneserNey(head, order, vocab_size).probs(head, tail)[1:]
        p_net = net_probs(tail)
        return cls(ids, order, vocab_size, best_weight(p_net, p_ngram[: len(p_net)]))

    def mix_logp(self, logp, contexts) -> np.ndarray:
        """(n, V) log-probabilities of the mixture, from the network's ``logp`` (n, V) and
        each row's ``contexts`` (n, m): the ids before the predicted character."""
        p_net = np.exp(np.asarray(logp, dtype=np.float64))
        with np.errstate(divide="ignore"):
            return np.log(self.weight * p_net + (1 - self.weight) * self.model.next_probs(contexts))

    def mix(self, p_net, p_ngram) -> np.ndarray:
        """λ p_net + (1 − λ) p_ngram, elementwise."""
        return self.weight * np.asarray(p_net, np.float64) + (1 - self.weight) * p_ngram

    def contexts(self, histories) -> np.ndarray:
        """(n, order − 1) the last ids of each history (a sequence of ids), -1-padded."""
        m = self.order - 1
        out = np.full((len(histories), m), -1, dtype=np.int64)
        for i, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64)[len(h) - m :] if m else []
            if len(h):
                out[i, m - len(h) :] = h
        return out

    def to_json(self) -> dict:
        """What a model file keeps: the order, λ and the text's ids (zlib, base64)."""
        width = np.uint8 if self.V <= 256 else np.uint16 if self.V <= 65536 else np.uint32
        packed = zlib.compress(self.ids.astype(width).tobytes(), 6)
        return {
            "order": self.order,
            "weight": self.weight,
            "vocab_size": self.V,
            "dtype": np.dtype(width).name,
            "ids": base64.b64encode(packed).decode("ascii"),
        }

    @classmethod
    def from_json(cls, d: dict) -> NgramMemory:
        """The memory ``to_json`` wrote (the counts are rebuilt: seconds for a long text)."""
        raw = zlib.decompress(base64.b64decode(d["ids"]))
        ids = np.frombuffer(raw, dtype=np.dtype(d["dtype"]))
        if len(ids) and int(ids.max()) >= int(d["vocab_size"]):
            raise ValueError("the n-gram memory's text has ids outside its vocabulary")
        return cls(ids, int(d["order"]), int(d["vocab_size"]), float(d["weight"]))


__all__ = [
    "KneserNey",
    "NgramMemory",
    "best_weight",
    "max_order",
    "gram_keys",
    "tune_mask",
    "MAX_ORDER",
]
