"""A next-note model of Bach's chorale melodies, written with the library's API (``rnnkit
music train`` is the full application): the soprano lines of the chorales in music21's
corpus (read from PyPI's music21==10.5.1 wheel, no music21 needed), one token per note
(pitch and length), an Embedding, an LSTM and a softmax; negative log-likelihood per note
on the held-out chorales, and a new melody written as a MIDI file.

    python examples/music.py [--epochs 5] [--out melody.mid]
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import optim
from rnnkit.apps import music
from rnnkit.atomicfile import atomic_write_bytes
from rnnkit.datasets import bach_chorales


def main(argv=None, path=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", default="melody.mid")
    args = p.parse_args(argv)
    rnnkit.set_seed(0)
    (_, train), (test_names, test) = bach_chorales.load_data(path)
    train, held = train[: -len(train) // 10], train[-len(train) // 10 :]  # held: sets the cache
    vocab = music.NoteVocab.from_chorales(train)  # e.g. "G4:1", "R:0.5"
    x, y = music.batch_arrays([vocab.encode(c) for c in train])  # <s> x1 .. -> x1 x2 ..
    model = music.build_model(len(vocab), units=256, embed=32, layers=1, dropout=0.3)
    model.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        ignore_class=0,
        time_reduction="mean",
        optimizer=optim.Adam(3e-3, clip_global_norm=1.0),
    )
    model.fit(x, y, batch_size=16, epochs=args.epochs)
    tests = [vocab.encode(c) for c in test]
    total, count = music.model_nll(model, tests)
    print(
        f"test NLL {total / count:.3f} nats per note on {len(test)} chorales "
        f"({', '.join(test_names[:3])}, ...)"
    )
    # the continuous cache of the chorale so far: θ and λ set on the held-out chorales
    theta, weight, _ = music.fit_cache(model, [vocab.encode(c) for c in held])
    cached = -sum(a.sum() for a in music.cache_logprobs(model, tests, theta, weight)) / count
    print(f"with its cache (θ {theta:g}, λ {weight:g}): {cached:.3f} nats per note")
    meta = {
        "tokens": vocab.tokens[len(music.SPECIALS) :],
        "cache": {"theta": theta, "weight": weight},
    }
    notes = music.generate_notes(
        model,
        meta,
        music.parse_primer("G4 G4 D5 C5 B4"),
        40,
        temperature=0.8,
        rng=np.random.default_rng(0),
    )
    atomic_write_bytes(args.out, music.midi_bytes(notes))
    print(" ".join(music.token(n) for n in notes))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
