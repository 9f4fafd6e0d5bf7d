"""Part-of-speech tagging: a bidirectional LSTM reads a sentence both ways and gives every
word its Penn Treebank tag (the lecture's sequence-to-sequence configuration, one output
per input step).

    features_t = [E_word[w_t]; E_pre1..3[w_t]; E_suf1..3[w_t]; E_shape[w_t]]
    h_t = [LSTM→(features)_t ; LSTM←(features)_t]        p(tag_t) = softmax(h_t V + c)

Data: 20,000 OANC sentences (rnnkit.datasets.oanc_pos), the first 90 % for training, the
last 10 % for the test.  Baseline: each word's most frequent training tag, NN for words
never seen in training.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import numpy as np

from ..datasets import oanc_pos
from ..seeding import make_rng, set_seed
from . import _wordfeatures as wf
from .task import App

UNKNOWN_TAG = "NN"
MAX_WORDS = 200  # longest input sentence predict accepts
# Toutanova, Klein, Manning & Singer (2003), "Feature-rich part-of-speech tagging with a
# cyclic dependency network" (NAACL 2003): 97.24 % on the Wall Street Journal's Penn Treebank.
PUBLISHED = {
    "accuracy": 0.9724,
    "source": "Toutanova et al. 2003, NAACL (Penn Treebank WSJ, sections 22-24)",
    "note": "a different corpus (newswire, 1M training words); nothing is published "
    "on this OANC split",
}


def configure_train(p):
    wf.add_labeller_options(p, unit="sentence", epochs=20, cell="lstm", units_help="LSTM units")


def _baseline(train_words, train_tags):
    counts = defaultdict(Counter)
    for ws, ts in zip(train_words, train_tags):
        for w, t in zip(ws, ts):
            counts[w][t] += 1
    return {w: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for w, c in counts.items()}


def accuracy(gold, pred, keep=None):
    """Token accuracy over lists of tag sequences; ``keep``: the same shape of booleans."""
    right = total = 0
    for i, (g, p) in enumerate(zip(gold, pred)):
        g, p = np.asarray(g), np.asarray(p)
        k = np.ones(len(g), bool) if keep is None else np.asarray(keep[i], bool)
        right += int((g[k] == p[k]).sum())
        total += int(k.sum())
    return right / total if total else float("nan")


def train(args):
    set_seed(args.seed)
    rng = make_rng()
    (words, tags), _ = oanc_pos.load_data(args.data)
    fit_idx, val_idx = wf.split_validation(len(words), 0.1)
    tagset = sorted({t for ts in tags for t in ts})
    tag_id = {t: i for i, t in enumerate(tagset)}
    vocab = wf.FeatureVocab.build([words[i] for i in fit_idx])
    X = [vocab.encode(w) for w in words]
    Y = [np.asarray([tag_id[t] for t in ts], dtype=np.int64) for ts in tags]
    model = wf.build_tagger(vocab, len(tagset), units=args.units, cell=args.cell)
    wf.compile_labeller(model)
    if not args.quiet:
        print(
            f"rnnkit tag: {len(fit_idx)} training sentences ({sum(len(words[i]) for i in fit_idx)} "
            f"words), {len(val_idx)} for validation; {len(tagset)} tags; "
            f"{model.count_params():,} parameters; budget {args.minutes:g} min"
        )
    start = time.perf_counter()
    history = wf.fit_labeller(
        model,
        [X[i] for i in fit_idx],
        [Y[i] for i in fit_idx],
        [X[i] for i in val_idx],
        [Y[i] for i in val_idx],
        score=accuracy,
        seconds=args.minutes * 60 - 15,
        epochs=args.epochs,
        batch_size=args.batch,
        rng=rng,
        rare_ids=vocab.rare_word_ids(1),
        word_dropout=0.5,
        quiet=args.quiet,
    )
    meta = {
        "data": "oanc_pos",
        "tags": tagset,
        "features": vocab.to_json(),
        "settings": wf.train_settings(args),
        "history": history,
        "fit_seconds": round(time.perf_counter() - start, 1),
    }
    return model, meta


def _vocab(meta):
    try:
        return wf.FeatureVocab.from_json(meta["features"]), list(meta["tags"])
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"the tag model file lacks its vocabularies ({e}); train it again"
        ) from None


def tag_sentences(model, meta, sentences):
    """Tags (lists of str) of tokenized sentences."""
    vocab, tagset = _vocab(meta)
    ids = wf.predict_ids(model, [vocab.encode(s) for s in sentences])
    return [[tagset[i] for i in row] for row in ids]


def evaluate(model, meta, args):
    (train_words, train_tags), (test_words, test_tags) = oanc_pos.load_data(args.data)
    pred = tag_sentences(model, meta, test_words)
    seen = {w for ws in train_words for w in ws}
    unseen = [[w not in seen for w in ws] for ws in test_words]
    known = [[not u for u in row] for row in unseen]
    lookup = _baseline(train_words, train_tags)
    base = [[lookup.get(w, UNKNOWN_TAG) for w in ws] for ws in test_words]
    n_tokens = sum(map(len, test_words))
    n_unseen = sum(map(sum, unseen))

    def scores(p):
        return {
            "accuracy": accuracy(test_tags, p),
            "seen_word_accuracy": accuracy(test_tags, p, known),
            "unseen_word_accuracy": accuracy(test_tags, p, unseen),
        }

    return {
        "task": "part-of-speech tagging, Penn Treebank tags",
        "data": {
            "name": "oanc_pos",
            "split": "file order: first 90 % train, last 10 % test",
            "test_sentences": len(test_words),
            "test_tokens": n_tokens,
            "unseen_tokens": n_unseen,
            "unseen_fraction": n_unseen / n_tokens,
        },
        "model": {
            **scores(pred),
            **wf.fit_summary(meta),
        },
        "baselines": {
            "most_frequent_tag": {
                **scores(base),
                "note": "each word's most frequent training tag; unseen words NN",
            }
        },
        "published": PUBLISHED,
    }


def predict(model, meta, inputs, args):
    out = []
    sentences = wf.read_token_inputs(inputs, MAX_WORDS, verb="tag", unit="sentence")
    for toks, tags in zip(sentences, tag_sentences(model, meta, sentences)):
        out.append(" ".join(f"{w}/{t}" for w, t in zip(toks, tags)))
    return out


APP = App(
    name="tag",
    help="part-of-speech tagging with a bidirectional LSTM (OANC, Penn Treebank tags)",
    description=__doc__,
    train=train,
    evaluate=evaluate,
    predict=predict,
    configure_train=configure_train,
    input_help="a sentence to tag; without it, --file or lines typed on standard input",
    default_minutes=8.0,
    extra=wf.add_plot_command(
        "tag",
        evaluate,
        score_name="accuracy (%)",
        history_scale=100.0,
        groups_of=lambda r: {
            g: {
                "rnnkit": 100 * r["model"][k],
                "most frequent tag": 100 * r["baselines"]["most_frequent_tag"][k],
            }
            for g, k in [
                ("all words", "accuracy"),
                ("seen words", "seen_word_accuracy"),
                ("unseen words", "unseen_word_accuracy"),
            ]
        },
    ),
)
