"""What the n-gram memory adds to an autocomplete model: the held-out bits per character of
the network alone, of a Kneser-Ney model of the training text alone, and of their mixture
p = λ p_net + (1 − λ) p_KN, with λ chosen on blocks of the training text as ``rnnkit
autocomplete`` chooses it (``NgramMemory.fit``), for each order asked. For comparison only,
it also prints the λ that would have done best on the held-out text itself (that λ is never
used: choosing on the text that is reported would flatter the figure).

    python examples/ngram_memory.py MODEL [--text FILE] [--orders 5,7,9] [--save]

Without --text the text is Shakespeare's works, split as the model file's figures are.
``--save`` writes the memory of the last order into the model file (atomically), so that a
model trained before the memory existed gets it.
"""

import argparse
import time

import numpy as np

from rnnkit.apps import autocomplete as app
from rnnkit.apps.ngram import NgramMemory, best_weight, max_order


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", help="an autocomplete model file (rnnkit autocomplete prints it)")
    p.add_argument("--text", help="the text it was trained on (default: Shakespeare's works)")
    p.add_argument("--orders", default="5,7,9", help="n-gram orders to try (default: 5,7,9)")
    p.add_argument("--save", action="store_true", help="keep the last order's memory in MODEL")
    args = p.parse_args(argv)
    try:
        orders = [int(o) for o in args.orders.split(",")]
    except ValueError:
        p.error(f"--orders must be integers separated by commas; got {args.orders!r}")
    if not orders or min(orders) < 1:
        p.error(f"--orders must be integers ≥ 1; got {args.orders!r}")

    ac = app.Autocompleter.load(args.model)
    if args.text:
        text = app.read_text_file(args.text)
    else:
        from rnnkit.data import shakespeare_works

        text = shakespeare_works(quiet=False)
    train, val = app.split(ac.vocab.encode(text), ac.settings.val_fraction)
    V = len(ac.vocab)
    p_net = app.char_probs(ac.model, val)  # of val[1 : n + 1]
    print(f"{args.model}: {len(train):,} training and {len(val):,} held-out characters")
    print(f"  the network alone: {-np.log2(p_net).mean():.3f} bits per character")
    memory = None
    for order in orders:
        if order > max_order(V):
            print(f"  order {order}: too long for int64 keys over {V} characters; skipped")
            continue
        start = time.perf_counter()
        memory = NgramMemory.fit(train, order, V, lambda tail: app.char_probs(ac.model, tail))
        seconds = time.perf_counter() - start
        p_kn = memory.model.probs(train, val)[1 : len(p_net) + 1]  # counted on all of train
        mixed = -np.log2(memory.mix(p_net, p_kn)).mean()
        best = best_weight(p_net, p_kn)
        oracle = -np.log2(best * p_net + (1 - best) * p_kn).mean()
        print(
            f"  order {order}: Kneser-Ney alone {-np.log2(p_kn).mean():.3f}; mixed "
            f"{mixed:.3f} with λ = {memory.weight:.2f} chosen on held-back blocks "
            f"({seconds:.1f} s); best λ on the held-out text {best:.2f}: {oracle:.3f}"
        )
    if args.save and memory is not None:
        ac.memory = memory
        ac.metadata["val_bpc_memory"] = app.memory_bpc(ac.model, memory, train, val, p_net=p_net)
        ac.save(args.model)
        print(f"Saved the {memory.order}-gram memory into {args.model}.")


if __name__ == "__main__":
    main()
