"""Top-3 next-word accuracy of an autocomplete model on the held-out tail of the text it
was trained on, with nothing of the word typed and with its first letters typed, with the
model's n-gram memory (as the command offers suggestions).  To compare two versions of
the suggestions, run it at both commits on the same model file.

    python benchmarks/word_accuracy.py MODEL.rnnkit [--text FILE] [--samples 1000]
    [--typed 0 1 2]   (default text: Shakespeare's works)"""

import argparse

from rnnkit.apps import autocomplete as app
from rnnkit.data import shakespeare_works


def model_and_split(argv, description):
    """The command line of this script and of word_ngram_reference.py: (its arguments, the
    model, the training text, the held-out text), split as the model's training split it."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("model")
    p.add_argument("--text", help="the text the model was trained on (default: Shakespeare)")
    p.add_argument("--samples", type=int, default=1000, help="word boundaries (default 1000)")
    p.add_argument("--typed", type=int, nargs="+", default=[0, 1], help="letters typed")
    args = p.parse_args(argv)
    if args.samples < 1 or any(t < 0 for t in args.typed):
        p.error(f"--samples must be ≥ 1 and --typed ≥ 0; got {args.samples}, {args.typed}")
    try:
        ac = app.Autocompleter.load(args.model)
        text = open(args.text, encoding="utf-8").read() if args.text else shakespeare_works()
    except (OSError, ValueError) as e:  # no such file, not a model, not UTF-8 text
        p.error(str(e))
    train_ids, val_ids = app.split(ac.vocab.encode(text), ac.settings.val_fraction)
    return args, ac, ac.vocab.decode(train_ids), ac.vocab.decode(val_ids)


def main(argv=None):
    args, ac, _, val = model_and_split(argv, __doc__)
    for typed in args.typed:
        acc = ac.word_accuracy(val, k=3, samples=args.samples, typed=typed)
        print(f"{typed} letters typed: {100 * acc.fraction:.1f} % of {acc.boundaries}", flush=True)


if __name__ == "__main__":
    main()
