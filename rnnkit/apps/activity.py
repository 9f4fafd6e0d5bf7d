"""rnnkit activity: which activity a smart watch recording shows, a sequence -> class RNN.

Task: 10 s of a smart watch's 3-D accelerometer and 3-D gyroscope (100 steps x 6 channels)
-> standing, running, walking or badminton.  Data: UEA BasicMotions, the archive's fixed
split of 40 training and 40 test recordings (``rnnkit.datasets.basic_motions``, from the data
files of PyPI's aeon 1.6.0).

Model: each channel standardised with the training split's mean and standard deviation, a
Bidirectional GRU over the 100 steps, the two directions' last states -> Dense(4, softmax).
Baselines (computed by rnnkit): majority class; 1-nearest-neighbour with dependent DTW
(full window) on the raw recordings, as in the archive's reference results.

predict: a CSV file of 100 rows x 6 columns (acc x, y, z, gyro x, y, z; a header row is
allowed), or a .ts file in the archive's format (every case is answered).
"""

from __future__ import annotations

import numpy as np

from ..datasets import basic_motions
from ._baselines import cached, dtw_distances, majority_class, nearest_neighbour
from ._seqclass import (
    add_plot_command,
    add_train_options,
    build_classifier,
    classification_report,
    plot_confusion,
    plot_training,
    predict_classes,
    read_recordings,
    recording_inputs,
    seed_everything,
    train_classifier,
)
from .task import App

PUBLISHED = {
    "source": "Bagnall et al., The UEA multivariate time series classification archive, 2018 "
    "(arXiv:1811.00075), reference results on the same 40 / 40 split",
    "1nn_dtw_dependent_accuracy": 0.975,
    "1nn_dtw_independent_accuracy": 1.0,
    "note": "the best recent classifiers average at or near 1.0 over resamples of this data "
    "(Ruiz et al., The great multivariate time series classification bake off, Data "
    "Mining and Knowledge Discovery 35, 2021)",
}


def _normalize(x, meta):
    return (
        (x - np.asarray(meta["mean"], np.float32)) / np.asarray(meta["std"], np.float32)
    ).astype(np.float32)


def _train(args):
    seed_everything(args)
    (x_train, y_train), _ = basic_motions.load_data(args.data)
    mean = x_train.mean(axis=(0, 1))
    std = np.maximum(x_train.std(axis=(0, 1)), 1e-6)
    meta = {
        "mean": mean.tolist(),
        "std": std.tolist(),
        "classes": list(basic_motions.CLASSES),
        "channels": list(basic_motions.CHANNELS),
    }
    x = _normalize(x_train, meta)
    model = build_classifier(
        steps=basic_motions.STEPS,
        features=x.shape[2],
        classes=len(basic_motions.CLASSES),
        cell=args.cell,
        hidden=args.hidden,
        dropout=args.dropout,
    )
    meta["training"] = train_classifier(model, x, y_train, args)
    return model, meta


def _configure_train(p):
    add_train_options(
        p, cell="gru", hidden=32, epochs=60, batch=16, learning_rate=1e-2, dropout=0.3
    )


def _evaluate(model, meta, args):
    (x_train, y_train), (x_test, y_test) = basic_motions.load_data(args.data)
    classes = list(basic_motions.CLASSES)
    report = classification_report(
        y_test, predict_classes(model, _normalize(x_test, meta)), classes
    )
    train_acc = classification_report(
        y_train, predict_classes(model, _normalize(x_train, meta)), classes
    )["accuracy"]

    def compute():
        dist = dtw_distances(list(x_test), list(x_train))
        return {
            "majority_class": classification_report(
                y_test, majority_class(y_train, len(y_test)), classes
            )["accuracy"],
            "1nn_dtw_dependent": classification_report(
                y_test, nearest_neighbour(dist, y_train), classes
            )["accuracy"],
        }

    arrays = [
        np.concatenate(list(x_train)),
        np.concatenate(list(x_test)),
        y_train,
        y_test,
        np.array([len(s) for s in x_train]),
        np.array([len(s) for s in x_test]),
    ]
    baselines = cached("activity", arrays, compute)
    return {
        "task": "activity",
        "split": f"UEA BasicMotions: {len(y_train)} train / {len(y_test)} test",
        "model": {
            "test_accuracy": report["accuracy"],
            "train_accuracy": train_acc,
            **{k: v for k, v in report.items() if k != "accuracy"},
        },
        "baselines": baselines,
        "published": PUBLISHED,
        "training": {k: v for k, v in meta.get("training", {}).items() if k != "history"},
    }


def _predict(model, meta, inputs, args):
    recs = []
    for f in recording_inputs(inputs, args):
        recs += read_recordings(
            f, len(basic_motions.CHANNELS), basic_motions.STEPS, "acc x, y, z, gyro x, y, z"
        )
    x = _normalize(np.stack([r[1] for r in recs]), meta)
    probs = model.predict(x)
    classes = meta.get("classes", list(basic_motions.CLASSES))
    lines = []
    for (name, _, truth), p in zip(recs, probs):
        best = int(np.argmax(p))
        line = f"{name}: {classes[best]} (p {p[best]:.3f})"
        if truth is not None:
            line += f"  [file says {truth}]"
        lines.append(line)
    return lines


def _plots(model, meta, args, out):
    (x_train, y_train), (x_test, y_test) = basic_motions.load_data(args.data)
    classes = list(basic_motions.CLASSES)
    rep = classification_report(y_test, predict_classes(model, _normalize(x_test, meta)), classes)
    yield plot_confusion(
        out / "activity_confusion.png",
        rep["confusion"],
        classes,
        f"rnnkit activity: test accuracy {rep['accuracy']:.3f}",
    )
    hist = meta.get("training", {}).get("history")
    if hist:
        yield plot_training(out / "activity_training.png", hist, "rnnkit activity: training")


APP = App(
    name="activity",
    help="activity recognition: 10 s of smart-watch motion -> standing/running/walking/badminton",
    description=__doc__,
    train=_train,
    evaluate=_evaluate,
    predict=_predict,
    configure_train=_configure_train,
    input_help="recording files: CSV (100 rows x 6 columns) or .ts; or --file FILE",
    default_minutes=10.0,
    extra={"plot": add_plot_command("activity", _plots)},
)
