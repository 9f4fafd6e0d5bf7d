"""Subword units by byte-pair encoding (Sennrich, Haddow and Birch 2016).

A word is first a sequence of characters, its last one marked as the end of the word
(``"dijo"`` -> ``d i j o</w>``).  Learning repeats ``merges`` times: the most frequent
pair of adjacent symbols in the training words (counted with the words' frequencies)
becomes one symbol.  Splitting a word applies the learned merges in the order they were
learned, so frequent words end up as one symbol and rare ones as a few frequent pieces:
a model over subwords has no unknown words, only rarely seen pieces, and a small output
layer.  ``join`` undoes ``split``: the end marks say where the words end.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

END = "</w>"


def _symbols(word: str) -> tuple:
    return (*word[:-1], word[-1] + END)


def _merge(symbols: tuple, a: str, b: str) -> tuple:
    out, k = [], 0
    while k < len(symbols):
        if k + 1 < len(symbols) and symbols[k] == a and symbols[k + 1] == b:
            out.append(a + b)
            k += 2
        else:
            out.append(symbols[k])
            k += 1
    return tuple(out)


class Subwords:
    """Learned merges, and the splitting and joining of words with them.

    >>> sw = Subwords.learn({"lower": 5, "lowest": 3, "newer": 6}, merges=4)
    >>> sw.merges
    [('w', 'e'), ('we', 'r</w>'), ('l', 'o'), ('e', 'wer</w>')]
    >>> sw.split("lower"), sw.split("lowers")
    (['lo', 'wer</w>'], ['lo', 'we', 'r', 's</w>'])
    >>> sw.join(sw.split("lowers") + sw.split("new"))
    ['lowers', 'new']
    """

    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.rank = {m: k for k, m in enumerate(self.merges)}
        self._cache: dict = {}

    @classmethod
    def learn(cls, word_counts, merges: int, min_count: int = 2) -> Subwords:
        """Up to ``merges`` merges from {word: count}; stops early when the most frequent
        pair is seen fewer than ``min_count`` times.  Ties go to the pair that sorts first,
        so the same words always give the same merges."""
        words = [_symbols(w) for w in sorted(word_counts) if w]
        counts = [word_counts[w] for w in sorted(word_counts) if w]
        pairs: Counter = Counter()
        where = defaultdict(set)  # pair -> the words that may hold it
        for i, (w, c) in enumerate(zip(words, counts)):
            for p in zip(w, w[1:]):
                pairs[p] += c
                where[p].add(i)
        heap = [(-c, p) for p, c in pairs.items()]
        heapq.heapify(heap)
        learned: list = []
        while heap and len(learned) < merges:
            c, best = heapq.heappop(heap)
            if -c != pairs.get(best, 0):  # a stale entry: the pair's count has changed since
                continue
            if -c < min_count:
                break
            learned.append(best)
            changed = set()
            for i in where.pop(best):
                old = words[i]
                new = _merge(old, *best)
                if new == old:
                    continue
                for p in zip(old, old[1:]):
                    pairs[p] -= counts[i]
                    changed.add(p)
                for p in zip(new, new[1:]):
                    pairs[p] += counts[i]
                    where[p].add(i)
                    changed.add(p)
                words[i] = new
            pairs.pop(best, None)
            for p in changed - {best}:
                if pairs[p] > 0:
                    heapq.heappush(heap, (-pairs[p], p))
                else:
                    pairs.pop(p)
        return cls(learned)

    def split(self, word: str) -> list[str]:
        """A word -> its subword units, the last one marked with ``</w>``."""
        if word in self._cache:
            return self._cache[word]
        symbols = _symbols(word)
        while len(symbols) > 1:
            ranked = [(self.rank.get(p, len(self.rank)), p) for p in zip(symbols, symbols[1:])]
            rank, pair = min(ranked)
            if rank == len(self.rank):
                break
            symbols = _merge(symbols, *pair)
        self._cache[word] = list(symbols)
        return self._cache[word]

    def split_all(self, words) -> list[str]:
        return [unit for w in words for unit in self.split(w)]

    @staticmethod
    def join(units) -> list[str]:
        """Subword units -> words (a last word without its end mark is kept too)."""
        words, part = [], ""
        for u in units:
            if u.endswith(END):
                words.append(part + u[: -len(END)])
                part = ""
            else:
                part += u
        if part:
            words.append(part)
        return words
