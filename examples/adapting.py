"""Where an autocomplete model gains by adapting to the text it reads: the bits per
character of a trained model along the held-out text, with its weights fixed and while
it learns from each 32-character segment after predicting it (``adapt_steps``; dynamic
evaluation).  Writes a PNG of the running figures and prints the totals (mixed with the
model's n-gram memory too, where its file keeps one) and the segments where adapting
gains most.

    rnnkit autocomplete --prompt x        # trains the default model once (3 minutes)
    python examples/adapting.py MODEL [--text FILE] [--png adapting.png]

Without --text the held-out text is the last 5 % of Shakespeare's works, as the model
file's own figures are.  Needs matplotlib (pip install "rnnkit[plot]").
"""

import argparse

import numpy as np

from rnnkit.apps import autocomplete as app
from rnnkit.apps.ngram import best_weight
from rnnkit.plotting import pyplot, save


def per_segment(model, ids, learning_rate):
    """(ends, bits, p) as adapt_steps reads ``ids``: where each segment ends, its cost in
    bits, and the probability of every character of ``ids[1:]``; the weights restored."""
    with app.keeping_weights(model):
        ends, probs = zip(*app.adapt_steps(model, ids, learning_rate))
    bits = np.array([-np.log2(p).sum() for p in probs])
    return np.array(ends), bits, np.concatenate(probs)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", help="an autocomplete model file (rnnkit autocomplete prints it)")
    p.add_argument("--text", help="the text it was trained on (default: Shakespeare's works)")
    p.add_argument("--png", default="adapting.png", help="where the plot goes")
    args = p.parse_args(argv)

    ac = app.Autocompleter.load(args.model)
    if args.text:
        text = app.read_text_file(args.text)
    else:
        from rnnkit.data import shakespeare_works

        text = shakespeare_works(quiet=False)
    train, held_out = app.split(ac.vocab.encode(text), ac.settings.val_fraction)
    ends, fixed, p_fixed = per_segment(ac.model, held_out, 0.0)
    _, adapting, p_adapting = per_segment(ac.model, held_out, app.ADAPT_LEARNING_RATE)
    n = len(held_out) - 1
    print(
        f"weights fixed: {fixed.sum() / n:.3f} bits per character; adapting: {adapting.sum() / n:.3f}"
    )
    if ac.memory is not None:
        p_kn = ac.memory.model.probs(train, held_out)[1:]
        for name, p in (("weights fixed", p_fixed), ("adapting", p_adapting)):
            best = best_weight(p, p_kn)
            print(
                f"{name}, mixed with its {ac.memory.order}-gram memory: "
                f"{app.bpc(ac.memory.mix(p, p_kn)):.3f} with the file's λ "
                f"{ac.memory.weight:.2f}; best λ on this text {best:.2f}: "
                f"{app.bpc(best * p + (1 - best) * p_kn):.3f} (for comparison only)"
            )

    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for bits, label in ((fixed, "weights fixed"), (adapting, "adapting as it reads")):
        top.plot(ends / 1000, np.cumsum(bits) / ends, label=f"{label}: {bits.sum() / n:.3f}")
    top.set_ylabel("bits per character so far")
    top.legend()
    top.set_title(f"{ac!r} on the held-out text ({n:,} characters)")
    window = 50  # segments: 1,600 characters
    gain = np.convolve(fixed - adapting, np.ones(window), "valid") / (window * app.ADAPT_SEGMENT)
    bottom.plot(ends[window - 1 :] / 1000, gain, color="tab:green")
    bottom.axhline(0.0, color="grey", lw=0.8)
    bottom.set_ylabel(f"gain, bits per character\n(last {window * app.ADAPT_SEGMENT:,})")
    bottom.set_xlabel("position in the held-out text (thousands of characters)")
    print(f"wrote {save(fig, args.png)}")

    best = np.argsort(fixed - adapting)[-3:][::-1]
    for i in best:
        start = ends[i] - app.ADAPT_SEGMENT
        piece = ac.vocab.decode(held_out[start + 1 : ends[i] + 1])
        print(f"  at {start:>7,}: {fixed[i] - adapting[i]:5.1f} bits saved on {piece!r}")


if __name__ == "__main__":
    main()
