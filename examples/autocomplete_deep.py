"""The lecture's BPTT example: autocomplete over the vocabulary {d, e, p, <stop>}.

At each step the RNN reads a character and predicts the next one; the loss of the
word is the sum of the per-step losses, L = Σ_t L_t, backpropagated through time.
After training, the network spells "deep" from its first letter.

    python examples/autocomplete_deep.py
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import Dense, Embedding, Sequential, SimpleRNN

VOCAB = ["d", "e", "p", "<stop>"]
IDX = {c: i for i, c in enumerate(VOCAB)}


def complete(model, first="d", max_len=10):
    word = [IDX[first]]
    while len(word) < max_len:
        probs = model.predict(np.array([word]))[0, -1]
        word.append(int(np.argmax(probs)))
        if word[-1] == IDX["<stop>"]:
            break
    return "".join(VOCAB[i] for i in word if VOCAB[i] != "<stop>")


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=500)
    args = p.parse_args(argv)
    rnnkit.set_seed(0)
    word = [IDX[c] for c in "deep"] + [IDX["<stop>"]]
    x = np.array([word[:-1]])  # d e e p
    y = np.array([word[1:]])  # e e p <stop>
    model = Sequential(
        [
            Embedding(len(VOCAB), 4),  # x_t as a vector
            SimpleRNN(8, return_sequences=True),  # s_t = σ(x_t U + s_{t-1} W + b)
            Dense(len(VOCAB), activation="softmax"),  # y_t = softmax(s_t V + c)
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    history = model.fit(x, y, epochs=args.epochs, verbose=0)
    probs = model.predict(x)[0]
    print(
        f"loss L = Σ_t L_t: {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.4f}"
    )
    for t, (c, nxt) in enumerate(zip("deep", ["e", "e", "p", "<stop>"])):
        print(
            f"  step {t + 1}: read {c!r}, predicts {VOCAB[int(probs[t].argmax())]!r} "
            f"(p = {probs[t].max():.2f}, target {nxt!r})"
        )
    spelled = complete(model)
    print(f"completing 'd' -> {spelled!r}")
    return {"loss": history.history["loss"][-1], "completion": spelled}


if __name__ == "__main__":
    main()
