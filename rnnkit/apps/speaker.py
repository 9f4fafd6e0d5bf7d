"""rnnkit speaker: which of nine speakers said the vowels, a variable-length sequence -> class RNN.

Task: an utterance of the Japanese vowel pair /ae/ as 7 to 29 frames of 12 LPC cepstral
coefficients -> the speaker (1..9).  Data: UEA JapaneseVowels, the archive's fixed split of
270 training and 370 test utterances (``rnnkit.datasets.japanese_vowels``, from the data
files of PyPI's aeon 1.6.0).

Model: each coefficient standardised with the training frames' mean and standard deviation;
the utterances padded with all-zero frames to the longest one and a ``Masking`` layer marks
the padding, so that each direction of the Bidirectional GRU skips it (the backward one
starts at each utterance's own last frame): nothing is truncated.  The two directions' last
states -> Dense(9, softmax).  Baselines (computed by rnnkit): majority class; 1-nearest-
neighbour with dependent DTW (full window) on the raw coefficients.

predict: a CSV file of one utterance (a row per frame, 12 numbers; a header row is allowed),
or a .ts file in the archive's format (every case is answered).
"""

from __future__ import annotations

import numpy as np

from ..datasets import japanese_vowels
from ..datasets._uea import pad
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
    "source_dtw": "Bagnall et al., The UEA multivariate time series classification archive, "
    "2018 (arXiv:1811.00075): 1-NN DTW_D on the same 270 / 370 split",
    "1nn_dtw_dependent_accuracy": 0.949,
    "source_deep": "Ismail Fawaz et al., Deep learning for time series classification: a "
    "review, Data Mining and Knowledge Discovery 33, 2019 (mean of 10 runs, "
    "same split; github.com/hfawaz/dl-4-tsc results-mts-avg-std.csv)",
    "fcn_accuracy": 0.993,
    "resnet_accuracy": 0.992,
}


def _inputs(series, meta):
    """Standardised utterances padded with all-zero frames (what Masking skips); a real frame
    that standardises to exactly zero is nudged by 1e-6 so that it is not taken for padding."""
    mean = np.asarray(meta["mean"], np.float32)
    std = np.asarray(meta["std"], np.float32)
    scaled = []
    for s in series:
        z = ((s - mean) / std).astype(np.float32)
        z[(z == 0).all(axis=-1)] = 1e-6
        scaled.append(z)
    return pad(scaled)[0]


def _train(args):
    seed_everything(args)
    (x_train, y_train), _ = japanese_vowels.load_data(args.data)
    frames = np.concatenate(x_train)
    meta = {
        "mean": frames.mean(axis=0).tolist(),
        "std": np.maximum(frames.std(axis=0), 1e-6).tolist(),
        "classes": list(japanese_vowels.CLASSES),
    }
    x = _inputs(x_train, meta)
    model = build_classifier(
        steps=None,
        features=japanese_vowels.COEFFICIENTS,
        classes=len(japanese_vowels.CLASSES),
        cell=args.cell,
        hidden=args.hidden,
        dropout=args.dropout,
        masking=True,
    )
    meta["training"] = train_classifier(model, x, y_train, args)
    return model, meta


def _configure_train(p):
    # chosen by 5-fold cross-validation on the training split (docs/apps/speaker.md)
    add_train_options(
        p, cell="gru", hidden=128, epochs=40, batch=16, learning_rate=3e-3, dropout=0.5
    )


_evaluate = recording_evaluate("speaker", japanese_vowels, "JapaneseVowels", _inputs, PUBLISHED)


def _predict(model, meta, inputs, args):
    recs = read_input_recordings(
        inputs, args, japanese_vowels.COEFFICIENTS, None, "12 cepstral coefficients per frame"
    )
    probs = model.predict(_inputs([r[1] for r in recs], meta))
    classes = meta.get("classes", list(japanese_vowels.CLASSES))
    return recording_lines(
        recs, probs, classes, lambda c, p, s: f"speaker {c} (p {p:.3f}, {len(s)} frames)"
    )


_plots = recording_plots("speaker", japanese_vowels, _inputs)


APP = App(
    name="speaker",
    help="speaker recognition: an utterance of /ae/ (LPC cepstra, 7-29 frames) -> speaker 1..9",
    description=__doc__,
    train=_train,
    evaluate=_evaluate,
    predict=_predict,
    configure_train=_configure_train,
    input_help="utterance files: CSV (a row of 12 coefficients per frame) or .ts; or --file",
    default_minutes=10.0,
    extra={"plot": add_plot_command("speaker", _plots)},
)
