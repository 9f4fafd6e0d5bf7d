"""How far top-3 next-word accuracy can go on a text: an autocomplete model's suggestions
against a word-level trigram model of the same training text, the two mixed, and the
model's ten likeliest words.

At the held-out word boundaries that ``word_accuracy.py`` asks (the same split, the same
evenly spaced boundaries, nothing of the word typed or its first letters), it prints the
share of boundaries whose true next word is

- among the model's top 3 suggestions (with its n-gram memory, as the command offers them);
- among the top 3 of a word trigram model counted on the model's training text (absolute
  discounting, D = 0.75, interpolated with the bigram and unigram models; words are runs of
  letters, each other non-space character a token);
- among the top 3 of λ p_model + (1 − λ) p_trigram over both candidate lists, for λ in
  0.3, 0.5, 0.7 (λ is picked here on the held-out boundaries themselves, so the best of
  the three is an optimistic figure for such a mixture);
- among the model's 10 most probable words (what no re-ranking of its list can exceed).

    python benchmarks/word_ngram_reference.py MODEL.rnnkit [--text FILE] [--samples 1000]
    [--typed 0 1]   (default text: Shakespeare's works)"""

from __future__ import annotations

import collections
import re

from word_accuracy import model_and_split

from rnnkit.apps import autocomplete as app

TOKEN = re.compile(r"[A-Za-z]+|[^A-Za-z\s]")
DISCOUNT = 0.75
CANDIDATES = 30  # of the trigram model, beside the network's ten
LAMBDAS = (0.3, 0.5, 0.7)


class WordTrigram:
    """p(w | u, v) by absolute discounting, interpolated down to the unigram model."""

    def __init__(self, text: str):
        words = TOKEN.findall(text)
        self.uni = collections.Counter(w for w in words if w[0].isalpha())
        self.total = sum(self.uni.values())
        self.bi: dict = collections.defaultdict(collections.Counter)
        self.tri: dict = collections.defaultdict(collections.Counter)
        for u, v in zip(words, words[1:]):
            if v[0].isalpha():
                self.bi[u][v] += 1
        for u, v, w in zip(words, words[1:], words[2:]):
            if w[0].isalpha():
                self.tri[(u, v)][w] += 1
        self.top = [w for w, _ in self.uni.most_common(200)]

    def probs(self, context: str) -> dict[str, float]:
        """The probabilities of the 200 commonest words and of every word seen after the
        context's last one or two words."""
        words = TOKEN.findall(context)
        u = words[-2] if len(words) > 1 else None
        v = words[-1] if words else None
        p = {w: self.uni[w] / self.total for w in self.top}
        for table in (self.bi.get(v), self.tri.get((u, v))):
            if not table:
                continue
            n = sum(table.values())
            back = DISCOUNT * len(table) / n
            q = {w: back * pw for w, pw in p.items()}
            for w, c in table.items():
                q[w] = q.get(w, back * self.uni[w] / self.total) + (c - DISCOUNT) / n
            p = q
        return p


def top(scores: dict[str, float], k: int) -> list[str]:
    return sorted(scores, key=lambda w: (-scores[w], w))[:k]


def main(argv=None):
    args, ac, train, val = model_and_split(argv, __doc__)
    trigram = WordTrigram(train)
    context = 200
    for typed in args.typed:
        found = [i for i in app.word_boundaries(val) if len(app.next_word(val, i)) > typed]
        m = min(args.samples, len(found))
        if m == 0:
            print(f"{typed} letters typed: no word boundary in the held-out text", flush=True)
            continue
        chosen = [found[j * len(found) // m] for j in range(m)]
        prompts = [val[max(0, i - context) : i + typed] for i in chosen]
        guesses = app._suggest_many(ac.model, ac.vocab, prompts, 10, 8, memory=ac.memory)
        hits: collections.Counter = collections.Counter()
        for i, got in zip(chosen, guesses):
            truth = app.next_word(val, i)
            typed_part = truth[:typed]
            p_model = {typed_part + s.text: s.probability for s in got}
            p_word = {
                w: q
                for w, q in trigram.probs(val[max(0, i - context) : i]).items()
                if w.startswith(typed_part)
            }
            z = sum(p_word.values()) or 1.0
            p_word = {w: q / z for w, q in p_word.items()}
            hits["model"] += truth in top(p_model, 3)
            hits["trigram"] += truth in top(p_word, 3)
            hits["ten"] += truth in p_model
            candidates = set(p_model) | set(top(p_word, CANDIDATES))
            for lam in LAMBDAS:
                mixed = {
                    w: lam * p_model.get(w, 0.0) + (1 - lam) * p_word.get(w, 0.0)
                    for w in candidates
                }
                hits[lam] += truth in top(mixed, 3)
        best = max(LAMBDAS, key=lambda lam: hits[lam])
        print(
            f"{typed} letters typed, {m} boundaries: the model's top 3 "
            f"{100 * hits['model'] / m:.1f} %, the word trigram's {100 * hits['trigram'] / m:.1f} %, "
            f"mixed {100 * hits[best] / m:.1f} % (λ = {best}; "
            + ", ".join(f"{lam}: {100 * hits[lam] / m:.1f}" for lam in LAMBDAS)
            + f"), the model's 10 likeliest {100 * hits['ten'] / m:.1f} %",
            flush=True,
        )


if __name__ == "__main__":
    main()
