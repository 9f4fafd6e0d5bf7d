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
from ._seqclass import (
    add_plot_command,
    add_train_options,
    build_classifier,
    read_input_recordings,
    recording_evaluate,
    recording_lines,
    recording_plots,
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


_evaluate = recording_evaluate("activity", basic_motions, "BasicMotions", _normalize, PUBLISHED)


def _predict(model, meta, inputs, args):
    recs = read_input_recordings(
        inputs, args, len(basic_motions.CHANNELS), basic_motions.STEPS, "acc x, y, z, gyro x, y, z"
    )
    x = _normalize(np.stack([r[1] for r in recs]), meta)
    probs = model.predict(x)
    classes = meta.get("classes", list(basic_motions.CLASSES))
    return recording_lines(recs, probs, classes, lambda c, p, s: f"{c} (p {p:.3f})")


_plots = recording_plots("activity", basic_motions, _normalize)


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
