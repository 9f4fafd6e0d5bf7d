"""Positive or negative? A bidirectional LSTM reads movie-review snippets, word by word,
with the library API (the command `rnnkit sentiment train` adds length-bucketed batches).

Data: 10,568 rottentomatoes.com snippets rated by people (Hutto & Gilbert 2014, in PyPI
vaderSentiment==3.3.2's source archive, fetched once); test = ids divisible by 5.

    Embedding(mask_zero=True) -> Bidirectional(LSTM) -> Dense(sigmoid), no pretrained vectors

    python examples/sentiment.py [--epochs 3]
"""

import argparse
from collections import Counter

import numpy as np

import rnnkit
from rnnkit import LSTM, Bidirectional, Dense, Dropout, Embedding, Sequential, optim
from rnnkit.callbacks import EarlyStopping
from rnnkit.data import pad_sequences
from rnnkit.datasets import movie_reviews


def main(argv=None, path=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--units", type=int, default=64)
    args = p.parse_args(argv)
    rnnkit.set_seed(0)
    (texts, y), (test_texts, y_test) = movie_reviews.load_data(path)

    counts = Counter(w for t in texts for w in movie_reviews.tokenize(t))
    words = [w for w, c in counts.most_common() if c >= 2]
    index = {w: i + 2 for i, w in enumerate(words)}  # 0: padding, 1: unknown word

    def encode(batch):
        return pad_sequences(
            [[index.get(w, 1) for w in movie_reviews.tokenize(t)] or [1] for t in batch],
            padding="post",
        ).astype("int64")

    model = Sequential(
        [
            Embedding(len(words) + 2, 128, mask_zero=True),
            Dropout(0.5),
            Bidirectional(LSTM(args.units)),
            Dropout(0.5),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        loss="binary_crossentropy",
        optimizer=optim.Adam(2e-3, clip_global_norm=5.0),
        metrics=["accuracy"],
    )
    model.fit(
        encode(texts),
        y[:, None].astype("float32"),
        epochs=args.epochs,
        batch_size=32,
        validation_split=0.1,
        verbose=1,
        callbacks=[EarlyStopping(patience=1, restore_best_weights=True)],
    )
    p_test = model.predict(encode(test_texts))[:, 0]
    accuracy = float(np.mean((p_test > 0.5) == (y_test == 1)))
    print(f"test accuracy {accuracy:.3f} on {len(y_test)} snippets")
    for s in ["a gripping, beautifully acted film", "a tedious, clumsy mess"]:
        print(f"{float(model.predict(encode([s]))[0, 0]):.3f}  {s}")
    return {"accuracy": accuracy}


if __name__ == "__main__":
    main()
