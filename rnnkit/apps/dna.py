"""rnnkit dna: splice-junction recognition in primate DNA, a sequence -> class RNN.

Task: 60 bases around a possible splice junction (between bases 30 and 31) -> ei (exon/intron
boundary), ie (intron/exon boundary) or n (neither).  Data: the StatLog version of the UCI
primate splice-junction data (3,186 sequences, R's mlbench in Debian's r-cran-mlbench),
StatLog's fixed split: 2,000 training / 1,186 test sequences (``rnnkit.datasets.splice_dna``).

Model: bases one-hot (A, C, G, T; an IUPAC ambiguity code spreads its weight over its bases).
By default the window is read *folded at the junction*: step t (t = 1..30) sees the base t
places upstream and the base t places downstream of the junction (8 inputs), and a
Bidirectional GRU reads these 30 steps both ways; the backward direction ends at the junction,
so the bases that matter most are the freshest in its last state.  ``--order natural`` reads
the 60 bases left to right instead (the plain lecture recipe; it learns far more slowly: the
RNN has to count 30 steps to find the junction).  The two directions' last states ->
Dense(3, softmax).  Baselines (computed by rnnkit): majority class; logistic regression on
position-specific one-hot bases; logistic regression on positional 1-, 2- and 3-mers.
"""

from __future__ import annotations

import numpy as np

from ..datasets import splice_dna
from ._baselines import LogisticRegression, OneHotBlocks, cached, choose_l2, majority_class
from ._seqclass import (
    add_plot_command,
    add_train_options,
    build_classifier,
    classification_report,
    evaluation_result,
    predict_classes,
    seed_everything,
    standard_plots,
    train_classifier,
)
from .task import App, AppInputError

ORDERS = ("folded", "natural")
PUBLISHED = {
    "source_statlog": "Michie, Spiegelhalter & Taylor (eds.), Machine Learning, Neural and "
    "Statistical Classification (the StatLog project), 1994, ch. 9: the same "
    "2,000 / 1,186 split",
    "statlog_best_rbf_network_accuracy": 0.959,
    "source_uci": "UCI splice-junction data, splice.names (Towell, Shavlik & Noordewier 1990): "
    "per-class error rates on a 1,000-case subset, cross-validated, weighted "
    "here by the class shares (52 % n, 24 % ei, 24 % ie)",
    "kbann_accuracy": 0.937,
    "backprop_mlp_accuracy": 0.932,
    "note": "the UCI figures come from another protocol (cross-validation on a subset), so "
    "they are a guide, not a like-for-like comparison",
}


def encode(sequences, order="folded"):
    """(N, 30, 8) folded or (N, 60, 4) natural float32 inputs of 60-base sequences."""
    x = splice_dna.one_hot(sequences)
    if order == "natural":
        return x
    half = splice_dna.LENGTH // 2
    return np.concatenate([x[:, half - 1 :: -1], x[:, half:]], axis=-1)


def kmer_features(sequences, ks=(1, 2, 3)):
    """Positional k-mer indicators: for each k and each start position, which of the 4^k
    k-mers starts there (ambiguity codes spread as in one_hot)."""
    x = splice_dna.one_hot(sequences)  # (N, L, 4)
    N, L, _ = x.shape
    blocks = []
    for k in ks:
        f = x[:, : L - k + 1]
        for j in range(1, k):
            f = (f[..., :, None] * x[:, j : L - k + 1 + j, None, :]).reshape(N, L - k + 1, -1)
        blocks.append(f.reshape(N, -1))
    return np.concatenate(blocks, axis=1)


def kmer_blocks(sequences, ks=(1, 2, 3)) -> OneHotBlocks:
    """The same features as ``kmer_features`` for sequences of A, C, G, T only, stored as
    the index of the one k-mer present at each (k, position): fast products."""
    codes = np.array([[splice_dna.BASES.index(c) for c in s] for s in sequences], dtype=np.int64)
    N, L = codes.shape
    blocks, offset = [], 0
    for k in ks:
        idx = np.zeros((N, L - k + 1), dtype=np.int64)
        for j in range(k):
            idx = idx * 4 + codes[:, j : L - k + 1 + j]
        blocks.append(offset + np.arange(L - k + 1) * 4**k + idx)
        offset += (L - k + 1) * 4**k
    return OneHotBlocks(np.concatenate(blocks, axis=1), offset)


def _train(args):
    seed_everything(args)
    (x_train, y_train), _ = splice_dna.load_data(args.data)
    x = encode(x_train, args.order)
    model = build_classifier(
        steps=x.shape[1],
        features=x.shape[2],
        classes=len(splice_dna.CLASSES),
        cell=args.cell,
        hidden=args.hidden,
        dropout=args.dropout,
    )
    record = train_classifier(model, x, y_train, args)
    return model, {"order": args.order, "classes": list(splice_dna.CLASSES), "training": record}


def _configure_train(p):
    add_train_options(
        p, cell="gru", hidden=16, epochs=15, batch=32, learning_rate=1e-2, dropout=0.3
    )
    p.add_argument(
        "--order",
        choices=ORDERS,
        default="folded",
        help="folded: read outwards from the junction, 30 steps of 8 inputs; "
        "natural: the 60 bases left to right (default: %(default)s)",
    )


def _baselines(x_train, y_train, x_test, y_test):
    classes = list(splice_dna.CLASSES)
    out = {
        "majority_class": classification_report(
            y_test, majority_class(y_train, len(y_test)), classes
        )["accuracy"]
    }
    for name, feats in (
        ("logistic_regression_onehot", lambda s: kmer_blocks(s, (1,))),
        ("logistic_regression_kmers_1_3", kmer_blocks),
    ):
        f_train, f_test = feats(x_train), feats(x_test)
        l2, _ = choose_l2(f_train, y_train)
        lr = LogisticRegression(l2=l2).fit(f_train, y_train, n_classes=len(classes))
        out[name] = {
            "accuracy": classification_report(y_test, lr.predict(f_test), classes)["accuracy"],
            "l2": l2,
            "features": int(f_train.shape[1]),
        }
    return out


def _evaluate(model, meta, args):
    (x_train, y_train), (x_test, y_test) = splice_dna.load_data(args.data)
    classes = list(splice_dna.CLASSES)
    order = meta.get("order", "folded")
    return evaluation_result(
        "dna",
        f"StatLog: {len(y_train)} train / {len(y_test)} test",
        model,
        classes,
        (encode(x_test, order), y_test),
        (encode(x_train, order), y_train),
        lambda: cached(
            "dna",
            [x_train, y_train, x_test, y_test],
            lambda: _baselines(x_train, y_train, x_test, y_test),
        ),
        PUBLISHED,
        meta,
    )


def _predict(model, meta, inputs, args):
    seqs = []
    for i, text in enumerate(inputs):
        try:
            seqs.append(splice_dna.check_sequence(text))
        except ValueError as e:
            where = f"input {i + 1}: " if len(inputs) > 1 else ""
            raise AppInputError(f"{where}{e}") from None
    probs = model.predict(encode(seqs, meta.get("order", "folded")))
    lines = []
    for s, p in zip(seqs, probs):
        best = int(np.argmax(p))
        cls = splice_dna.CLASSES[best]
        shares = "  ".join(f"{c} {q:.3f}" for c, q in zip(splice_dna.CLASSES, p))
        lines.append(
            f"{cls} ({splice_dna.CLASS_NAMES[cls]})  p: {shares}  [{s[:30]}|{s[30:]}]"
            if len(seqs) > 1 or args.verbose
            else f"{cls} ({splice_dna.CLASS_NAMES[cls]})  p: {shares}"
        )
    return lines


def _configure_predict(p):
    p.add_argument(
        "--verbose", action="store_true", help="also print the sequence, split at the junction"
    )


def _plots(model, meta, args, out):
    (x_train, y_train), (x_test, y_test) = splice_dna.load_data(args.data)
    pred = predict_classes(model, encode(x_test, meta.get("order", "folded")))
    rep = classification_report(y_test, pred, list(splice_dna.CLASSES))
    yield from standard_plots("dna", out, rep, list(splice_dna.CLASSES), meta)


APP = App(
    name="dna",
    help="splice junctions in primate DNA: 60 bases -> exon/intron, intron/exon or neither",
    description=__doc__,
    train=_train,
    evaluate=_evaluate,
    predict=_predict,
    configure_train=_configure_train,
    configure_predict=_configure_predict,
    input_help="60 bases (A, C, G, T; IUPAC codes such as N allowed), junction between 30 "
    "and 31; without it, --file or lines typed on standard input",
    default_minutes=10.0,
    extra={"plot": add_plot_command("dna", _plots)},
)
