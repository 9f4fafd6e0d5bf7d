"""Top-3 next-word accuracy of an autocomplete model with a suggestion's endings summed
(its probability: the text, then any character that ends it; rnnkit since 2026-12-04)
against its most probable ending alone (the code before), on the held-out tail of the text
the model was trained on, with and without the model's n-gram memory.

    python benchmarks/ab_word_endings.py MODEL.rnnkit [--text FILE] [--samples 1000]
    (default text: Shakespeare's works)"""

import argparse

import numpy as np

from rnnkit.apps import autocomplete as app
from rnnkit.data import shakespeare_works


def most_probable_ending(pool, texts, cand, done, vocab):
    """``autocomplete._add_finished`` as it was: each text with its most probable ending."""
    for b, c in zip(*np.nonzero(done & np.isfinite(cand))):
        score, text = float(cand[b, c]), texts[b]
        if text not in pool or score > pool[text][0]:
            pool[text] = (score, vocab.chars[c])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("model")
    p.add_argument("--text", help="the text the model was trained on (default: Shakespeare)")
    p.add_argument("--samples", type=int, default=1000, help="word boundaries (default 1000)")
    args = p.parse_args(argv)
    ac = app.Autocompleter.load(args.model)
    text = open(args.text, encoding="utf-8").read() if args.text else shakespeare_works()
    _, val_ids = app.split(ac.vocab.encode(text), ac.settings.val_fraction)
    val = ac.vocab.decode(val_ids)
    summed = app._add_finished
    try:
        for name, fn in (
            ("most probable ending", most_probable_ending),
            ("endings summed", summed),
        ):
            app._add_finished = fn
            for memory in (ac.memory, None):
                acc = app.next_word_accuracy(
                    ac.model, ac.vocab, val, samples=args.samples, memory=memory
                )
                label = "with the memory" if memory else "network alone"
                print(f"{name:22s} {label:16s} {100 * acc.fraction:.1f} % of {acc.boundaries}")
    finally:
        app._add_finished = summed


if __name__ == "__main__":
    main()
