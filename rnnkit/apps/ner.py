"""Named entities in tweets: a bidirectional GRU gives every token a BIO tag of 10 entity
types (person, geo-loc, company, facility, product, musicartist, movie, sportsteam,
tvshow, other); the entities are the spans the tags mark.

    features_t = [E_word[w_t]; E_pre1..3[w_t]; E_suf1..3[w_t]; E_shape[w_t]]
    h_t = [GRU→(features)_t ; GRU←(features)_t]          p(tag_t) = softmax(h_t V + c)

The features also hold the tag a gazetteer of the training entities gives the token.
Words are lowercased, digits become 0, URLs <url> and @users <user>; capitalisation
lives on in the shape feature.  Entity tokens weigh more in the loss (most tokens are O).

Data: the 2,394 tweets of the WNUT-16 training set (rnnkit.datasets.wnut16), the first
80 % for training, the last 20 % for the test.  Metric: entity-level precision, recall
and F1 (exact span and type, as conlleval counts).  Baseline: a gazetteer of the training
entities (longest match, each string's most frequent type).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import numpy as np

from ..datasets import wnut16
from ..seeding import make_rng, set_seed
from . import _wordfeatures as wf
from .task import App, positive_int

MAX_WORDS = 200
ENTITY_WEIGHT = 2.0  # loss weight of B-/I- tokens; O tokens weigh 1
AVERAGE_FROM = 6  # weight averaging over the epochs from this one on
GAZ_FOLDS = 5  # training tweets see a gazetteer built without their fold
PUBLISHED = {
    "source": "Strauss et al. 2016, Results of the WNUT16 Named Entity Recognition Shared "
    "Task (W-NUT 2016), 10 types, test set",
    "baseline_crf_gazetteer_f1": 35.8,
    "winner_f1": 52.4,
    "note": "measured on the shared task's own test set (tweets from a later period), with "
    "training + development data; not directly comparable with this split",
}


# -- entities and their scores ---------------------------------------------------------------
def spans(tags):
    """Entities of one BIO sequence as (start, end, type), end exclusive, conlleval's way:
    an I- tag that does not continue an entity of its type starts a new one."""
    out, start, kind = [], None, None
    for i, t in enumerate(list(tags) + ["O"]):
        prefix, _, typ = t.partition("-")
        continues = prefix == "I" and kind == typ and start is not None
        if start is not None and not continues:
            out.append((start, i, kind))
            start, kind = None, None
        if prefix in ("B", "I") and not continues:
            start, kind = i, typ
    return out


def entity_scores(gold, pred):
    """Entity-level precision, recall and F1 (in %, conlleval's) over lists of tag lists,
    overall and per type: an entity counts when its span and type are both exact."""
    tp, n_gold, n_pred = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        if len(g) != len(p):
            raise ValueError(
                f"entity_scores: a gold sequence of {len(g)} tags and a predicted one of {len(p)}"
            )
        gs, ps = set(spans(g)), set(spans(p))
        for s in gs:
            n_gold[s[2]] += 1
        for s in ps:
            n_pred[s[2]] += 1
        for s in gs & ps:
            tp[s[2]] += 1

    def prf(t, ng, np_):
        p = 100.0 * t / np_ if np_ else 0.0
        r = 100.0 * t / ng if ng else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": p, "recall": r, "f1": f, "gold": ng, "predicted": np_, "correct": t}

    overall = prf(sum(tp.values()), sum(n_gold.values()), sum(n_pred.values()))
    overall["per_type"] = {
        k: prf(tp[k], n_gold[k], n_pred[k]) for k in sorted(set(n_gold) | set(n_pred))
    }
    return overall


# -- the gazetteer baseline ------------------------------------------------------------------
def build_gazetteer(words, tags):
    """{lowercased token tuple: most frequent type} of every training entity."""
    counts = defaultdict(Counter)
    for ws, ts in zip(words, tags):
        for s, e, k in spans(ts):
            counts[tuple(w.lower() for w in ws[s:e])][k] += 1
    return {key: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for key, c in counts.items()}


def gazetteer_tags(gazetteer, words):
    """BIO tags of a token list: the longest gazetteer match at each position, left to right."""
    longest = max((len(k) for k in gazetteer), default=0)
    low = [w.lower() for w in words]
    tags, i = ["O"] * len(words), 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            kind = gazetteer.get(tuple(low[i : i + n]))
            if kind is not None:
                tags[i : i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                i += n
                break
        else:
            i += 1
    return tags


def gazetteer_feature(gazetteer, words, tagset):
    """(T, 1) ids of the gazetteer's BIO tag of each token: 1 + its index in ``tagset``."""
    index = {t: i + 1 for i, t in enumerate(tagset)}
    return np.asarray([[index[t]] for t in gazetteer_tags(gazetteer, words)], dtype=np.int64)


def crossfold_gazetteer_features(words, tags, tagset, folds=GAZ_FOLDS):
    """The gazetteer feature of training tweets, each from a gazetteer built from the other
    folds (tweet i is in fold i mod ``folds``), so that the feature is as reliable in
    training as on unseen tweets, not always right."""
    out = [None] * len(words)
    for k in range(folds):
        rest = [i for i in range(len(words)) if i % folds != k]
        gaz = build_gazetteer([words[i] for i in rest], [tags[i] for i in rest])
        for i in range(k, len(words), folds):
            out[i] = gazetteer_feature(gaz, words[i], tagset)
    return out


# -- the application -------------------------------------------------------------------------
def configure_train(p):
    wf.add_labeller_options(p, unit="tweet", epochs=40, cell="gru", units_help="recurrent units")
    p.add_argument(
        "--entity-weight",
        type=_weight,
        default=ENTITY_WEIGHT,
        help="loss weight of entity tokens, O tokens weigh 1 (default: %(default)s)",
    )
    p.add_argument(
        "--chars",
        type=positive_int,
        default=0,
        metavar="UNITS",
        help="also read each word's characters with a BiLSTM of UNITS units a "
        "direction (default: 0, no character encoder)",
    )
    p.add_argument(
        "--average-from",
        type=positive_int,
        default=AVERAGE_FROM,
        metavar="EPOCH",
        help="also try the mean of the weights of every epoch from EPOCH on (default: %(default)s)",
    )
    p.add_argument(
        "--no-gazetteer",
        action="store_true",
        help="leave out the gazetteer feature (words and their spelling only)",
    )


def _weight(text):
    import argparse

    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (0 < v <= 100):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 100]; got {text!r}")
    return v


def _f1(gold_ids, pred_ids, tagset):
    return entity_scores(
        [[tagset[i] for i in g] for g in gold_ids], [[tagset[i] for i in p] for p in pred_ids]
    )["f1"]


def train(args):
    set_seed(args.seed)
    rng = make_rng()
    (words, tags), _ = wnut16.load_data(args.data)
    fit_idx, val_idx = wf.split_validation(len(words), 0.15)
    tagset = list(wnut16.TAGS)
    tag_id = {t: i for i, t in enumerate(tagset)}
    fit_w, fit_t = [words[i] for i in fit_idx], [tags[i] for i in fit_idx]
    vocab = wf.FeatureVocab.build(fit_w, tweets=True, chars=bool(args.chars))
    gaz_fit = crossfold_gazetteer_features(fit_w, fit_t, tagset)
    gaz_all = build_gazetteer(fit_w, fit_t)
    if args.no_gazetteer:  # the feature says "no match" everywhere
        gaz_fit = [np.ones((len(w), 1), np.int64) for w in fit_w]
        gaz_all = {}
    X = [vocab.encode(w, g) for w, g in zip(fit_w, gaz_fit)]
    X_val = [vocab.encode(words[i], gazetteer_feature(gaz_all, words[i], tagset)) for i in val_idx]
    Y = [np.asarray([tag_id[t] for t in ts], dtype=np.int64) for ts in tags]
    model = wf.build_tagger(
        vocab,
        len(tagset),
        units=args.units,
        cell=args.cell,
        dropout=0.5,
        extra_sizes=[len(tagset) + 1],
        char_units=args.chars or 25,
    )
    wf.compile_labeller(model)
    weights = np.full(len(tagset), args.entity_weight)
    weights[tag_id["O"]] = 1.0
    if not args.quiet:
        print(
            f"rnnkit ner: {len(fit_idx)} training tweets, {len(val_idx)} for validation; "
            f"{len(tagset)} tags; {model.count_params():,} parameters; "
            f"budget {args.minutes:g} min"
        )
    start = time.perf_counter()
    history = wf.fit_labeller(
        model,
        X,
        [Y[i] for i in fit_idx],
        X_val,
        [Y[i] for i in val_idx],
        score=lambda g, p: _f1(g, p, tagset),
        seconds=args.minutes * 60 - 10,
        epochs=args.epochs,
        batch_size=args.batch,
        rng=rng,
        rare_ids=vocab.rare_word_ids(1),
        word_dropout=0.5,
        tag_weights=weights,
        patience=8,
        quiet=args.quiet,
        average_from=args.average_from,
    )
    gazetteer = build_gazetteer(words, tags)  # every training tweet's entities
    meta = {
        "data": "wnut16",
        "tags": tagset,
        "features": vocab.to_json(),
        "gazetteer": [[list(k), v] for k, v in sorted(gazetteer.items())],
        "settings": wf.train_settings(
            args,
            entity_weight=args.entity_weight,
            chars=args.chars,
            average_from=args.average_from,
            gazetteer_feature=not args.no_gazetteer,
        ),
        "history": history,
        "fit_seconds": round(time.perf_counter() - start, 1),
    }
    return model, meta


def tag_tweets(model, meta, tweets):
    try:
        vocab = wf.FeatureVocab.from_json(meta["features"])
        tagset = list(meta["tags"])
        gazetteer = {tuple(k): v for k, v in meta["gazetteer"]}
        if not meta.get("settings", {}).get("gazetteer_feature", True):
            gazetteer = {}
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"the ner model file lacks its vocabularies ({e}); train it again"
        ) from None
    ids = wf.predict_ids(
        model, [vocab.encode(t, gazetteer_feature(gazetteer, t, tagset)) for t in tweets]
    )
    return [_repair([tagset[i] for i in row]) for row in ids]


def _repair(tags):
    """An I- tag that does not continue an entity of its type begins one (conlleval's reading,
    written out so that the printed tags and the counted spans agree)."""
    out = list(tags)
    for i, t in enumerate(out):
        if t.startswith("I-") and (i == 0 or out[i - 1][2:] != t[2:]):
            out[i] = "B-" + t[2:]
    return out


def evaluate(model, meta, args):
    (train_words, train_tags), (test_words, test_tags) = wnut16.load_data(args.data)
    pred = tag_tweets(model, meta, test_words)
    gazetteer = build_gazetteer(train_words, train_tags)
    base = [gazetteer_tags(gazetteer, ws) for ws in test_words]
    model_scores = entity_scores(test_tags, pred)
    return {
        "task": "named entities in tweets, 10 types, entity-level (exact span and type)",
        "data": {
            "name": "wnut16",
            "split": "file order: first 80 % train, last 20 % test",
            "test_tweets": len(test_words),
            "test_tokens": sum(map(len, test_words)),
            "test_entities": model_scores["gold"],
        },
        "model": {
            **model_scores,
            **wf.fit_summary(meta),
        },
        "baselines": {
            "gazetteer": {
                **entity_scores(test_tags, base),
                "note": "longest match of training entity strings, "
                "each string's most frequent type",
            }
        },
        "published": PUBLISHED,
    }


def predict(model, meta, inputs, args):
    tweets = wf.read_token_inputs(inputs, MAX_WORDS, verb="read", unit="text")
    out = []
    for toks, tags in zip(tweets, tag_tweets(model, meta, tweets)):
        found = [f"{' '.join(toks[s:e])} ({k})" for s, e, k in spans(tags)]
        out.append("; ".join(found) if found else "(no entities)")
    return out


APP = App(
    name="ner",
    help="named entities in tweets with a bidirectional GRU (WNUT-16, 10 types)",
    description=__doc__,
    train=train,
    evaluate=evaluate,
    predict=predict,
    configure_train=configure_train,
    input_help="a text to find entities in; without it, --file or lines typed on standard input",
    default_minutes=9.0,
    extra=wf.add_plot_command(
        "ner",
        evaluate,
        score_name="entity F1 (%)",
        groups_of=lambda r: {
            k: {
                "rnnkit": (r["model"] if k == "all" else r["model"]["per_type"].get(k, {})).get(
                    "f1", 0.0
                ),
                "gazetteer": (
                    r["baselines"]["gazetteer"]
                    if k == "all"
                    else r["baselines"]["gazetteer"]["per_type"].get(k, {})
                ).get("f1", 0.0),
            }
            for k in ["all"] + sorted(r["model"]["per_type"])
        },
    ),
)
