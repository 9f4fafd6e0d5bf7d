"""What the sequence -> class applications (dna, activity, speaker) share.

add_train_options(parser, defaults)      --cell --hidden --epochs --batch --learning-rate
                                         --dropout, with the application's defaults
build_classifier(...)                    [Masking] -> Bidirectional(LSTM|GRU) -> Dropout
                                         -> Dense(softmax): the lecture's many-to-one RNN
train_classifier(model, x, y, args)      Adam, cosine decay over the planned epochs, global
                                         norm clipping, one progress bar, the time budget
classification_report(y, p, classes)     accuracy, per-class recall, confusion matrix
plot_confusion / plot_training           PNGs (matplotlib), written atomically
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .. import optim
from ..argtypes import dropout_rate, positive_int, unit_rate
from ..callbacks import Callback
from ..layers import GRU, LSTM, Bidirectional, Dense, Dropout, Masking
from ..models import Sequential
from ..progress import ProgressBar
from ..seeding import set_seed
from ._baselines import (
    accuracy,
    cached,
    confusion,
    dtw_distances,
    majority_class,
    nearest_neighbour,
)
from .task import AppInputError

CELLS = {"lstm": LSTM, "gru": GRU}


def add_train_options(p, *, cell, hidden, epochs, batch, learning_rate, dropout):
    g = p.add_argument_group("model and training")
    g.add_argument(
        "--cell",
        choices=sorted(CELLS),
        default=cell,
        help="recurrent cell of the bidirectional layer (default: %(default)s)",
    )
    g.add_argument(
        "--hidden",
        type=positive_int,
        default=hidden,
        help="units per direction (default: %(default)s)",
    )
    g.add_argument(
        "--epochs",
        type=positive_int,
        default=epochs,
        help="passes over the training split (default: %(default)s); --minutes "
        "stops earlier if it runs out",
    )
    g.add_argument(
        "--batch",
        type=positive_int,
        default=batch,
        help="sequences per update (default: %(default)s)",
    )
    g.add_argument(
        "--learning-rate",
        type=unit_rate,
        default=learning_rate,
        help="Adam's initial learning rate, decayed along a cosine to 5%% of it "
        "over the epochs (default: %(default)s)",
    )
    g.add_argument(
        "--dropout",
        type=dropout_rate,
        default=dropout,
        help="dropout before the output layer (default: %(default)s)",
    )


def build_classifier(
    *, steps, features, classes, cell="gru", hidden=32, dropout=0.3, masking=False
):
    """Many-to-one: the two directions' last states, concatenated, -> softmax over classes."""
    rnn = CELLS[cell](hidden)
    layers = []
    if masking:
        layers.append(Masking(0.0, input_shape=[steps, features]))
        layers.append(Bidirectional(rnn))
    else:
        layers.append(Bidirectional(rnn, input_shape=[steps, features]))
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(classes, activation="softmax"))
    return Sequential(layers)


class _Bar(Callback):
    """One progress bar over every update of every epoch (fit's own bar restarts each epoch)."""

    def __init__(self, total, epochs, quiet):
        self.bar = None if quiet else ProgressBar(total, unit="updates", stream=sys.stderr)
        self.epochs = epochs
        self.epoch = 0
        self.losses = []
        self.history = []  # per epoch: loss, accuracy
        self.done = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.losses = []

    def on_batch_end(self, step, logs=None):
        self.done += 1
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))
        if self.bar:
            values = {"epoch": f"{self.epoch + 1}/{self.epochs}"}
            if self.losses:
                values["loss"] = float(np.mean(self.losses))
            if self.history:
                values["acc"] = self.history[-1]["accuracy"]
            self.bar.update(self.done, values)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.history.append(
            {
                "loss": round(float(logs.get("loss", math.nan)), 5),
                "accuracy": round(float(logs.get("accuracy", math.nan)), 5),
            }
        )

    def finish(self):
        if self.bar:
            last = self.history[-1] if self.history else {}
            self.bar.finish(self.done, {"epochs": len(self.history), **last})


class _Budget(Callback):
    def __init__(self, seconds):
        self.seconds = seconds
        self.start = None
        self.hit = False

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_batch_end(self, step, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.hit = True
            self.model.stop_training = True


def train_classifier(model, x, y, args):
    """Fit ``model`` on (x, y) with the options of ``add_train_options`` and ``args.minutes``;
    returns a JSON record of the run (epochs done, seconds, per-epoch loss and accuracy)."""
    n = len(y)
    if n == 0:
        raise AppInputError("the training split is empty")
    batch = min(args.batch, n)
    per_epoch = math.ceil(n / batch)
    total = per_epoch * args.epochs
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=optim.Adam(
            optim.CosineDecay(args.learning_rate, total, alpha=0.05), clip_global_norm=5.0
        ),
        metrics=["accuracy"],
    )
    bar = _Bar(total, args.epochs, args.quiet)
    budget = _Budget(args.minutes * 60.0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=args.epochs, verbose=0, callbacks=[budget, bar])
    bar.finish()
    seconds = time.perf_counter() - start
    if budget.hit and not args.quiet:
        print(
            f"rnnkit: the --minutes {args.minutes:g} budget ran out after "
            f"{len(bar.history)} of {args.epochs} epochs",
            file=sys.stderr,
        )
    return {
        "epochs_planned": args.epochs,
        "epochs_done": len(bar.history),
        "stopped_by_time_limit": budget.hit,
        "train_seconds": round(seconds, 1),
        "batch": batch,
        "learning_rate": args.learning_rate,
        "cell": args.cell,
        "hidden": args.hidden,
        "dropout": args.dropout,
        "seed": args.seed,
        "history": bar.history,
    }


def seed_everything(args):
    if args.seed < 0:
        raise AppInputError(f"--seed must not be negative; got {args.seed}")
    set_seed(int(args.seed))


def classification_report(y_true, y_pred, classes) -> dict:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    recall = {}
    for c in range(k):
        sel = y_true == c
        recall[classes[c]] = round(float(np.mean(y_pred[sel] == c)), 4) if sel.any() else None
    return {
        "accuracy": round(accuracy(y_true, y_pred), 4),
        "errors": int(np.sum(y_true != y_pred)),
        "n": int(len(y_true)),
        "recall_per_class": recall,
        "confusion": confusion(y_true, y_pred, k),
    }


def predict_classes(model, x, batch_size=256):
    return np.argmax(model.predict(x, batch_size=batch_size), axis=-1)


def plot_confusion(path, matrix, classes, title):
    from ..plotting import pyplot, save

    plt = pyplot()
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(classes), 1.0 + 0.5 * len(classes)))
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                color="white" if m[i, j] > m.max() / 2 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def plot_training(path, history, title):
    from ..plotting import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    epochs = np.arange(1, len(history) + 1)
    ax.plot(epochs, [h["loss"] for h in history], label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(
        epochs, [h["accuracy"] for h in history], color="tab:orange", label="training accuracy"
    )
    ax2.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    fig.legend(loc="center right", fontsize=8)
    return save(fig, path)


def add_plot_command(app_name, make_plots):
    """An ``extra`` entry: ``rnnkit <task> plot --out DIR`` -> PNGs of the saved model."""
    from pathlib import Path

    from .task import default_model_path

    def configure(p):
        p.add_argument(
            "--out",
            default=".",
            metavar="DIR",
            help="folder for the PNG files (default: the current folder)",
        )

    def run(args):
        """PNGs of the saved model: test confusion matrix and training curve"""
        import importlib

        from . import __name__ as _pkg  # noqa: F401
        from .task import load_app_model

        app = importlib.import_module(f"rnnkit.apps.{app_name}").APP
        path = Path(args.model) if args.model else default_model_path(app_name)
        model, meta = load_app_model(path, app)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise AppInputError(f"--out {out} is a file; give a folder")
        out.mkdir(parents=True, exist_ok=True)
        for written in make_plots(model, meta, args, out):
            print(written)
        return 0

    run.__doc__ = "write PNGs: the test confusion matrix and the training curve"
    return configure, run


# -- the user's own recordings (activity, speaker) ------------------------------------------------
def read_recordings(path, channels: int, steps: int | None, what: str):
    """``[(label, array (T, channels) float32, true class or None)]`` from a CSV file (one
    recording: a row per step, ``channels`` numbers per row, an optional header row) or a
    ``.ts`` file (one recording per case).  ``steps``: the required number of rows (None: any
    number from 2 on).  Problems -> AppInputError naming the file and the line."""
    from pathlib import Path

    from ..datasets._uea import TsFormatError, parse_ts

    path = Path(path)
    if not path.is_file():
        raise AppInputError(f"{path}: no such file (expected a CSV of {what} or a .ts file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AppInputError(f"{path} is not a UTF-8 text file") from None
    out = []
    if path.suffix.lower() == ".ts":
        try:
            series, labels, _ = parse_ts(text, str(path))
        except TsFormatError as e:
            raise AppInputError(str(e)) from None
        for i, (s, lab) in enumerate(zip(series, labels)):
            out.append((f"{path.name} case {i + 1}", s, lab))
    else:
        rows: list[list[float]] = []
        header_seen = False
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in line.replace(";", ",").replace("\t", ",").split(",")]
            if len(cells) == 1:
                cells = line.split()  # blank-separated columns
            try:
                values = [float(c) for c in cells]
            except ValueError:
                if not rows and not header_seen:
                    header_seen = True  # a header row
                    continue
                raise AppInputError(
                    f"{path}, line {lineno}: expected {channels} numbers; got {line.strip()[:40]!r}"
                ) from None
            if len(values) != channels:
                raise AppInputError(
                    f"{path}, line {lineno}: expected {channels} numbers "
                    f"({what}); got {len(values)}"
                )
            rows.append(values)
        if not rows:
            raise AppInputError(f"{path} holds no rows of numbers")
        out.append((path.name, np.array(rows, dtype=np.float32), None))
    for name, s, _ in out:
        if s.shape[1] != channels:
            raise AppInputError(f"{name}: expected {channels} channels ({what}); got {s.shape[1]}")
        if steps is not None and len(s) != steps:
            raise AppInputError(f"{name}: expected {steps} rows (steps); got {len(s)}")
        if len(s) < 2:
            raise AppInputError(f"{name}: a recording needs at least 2 steps; got {len(s)}")
        if not np.isfinite(s).all():
            raise AppInputError(f"{name}: a value is not finite")
    return out


def recording_inputs(inputs, args):
    """The files to answer: --file, else each positional input (or stdin line) as a path."""
    return [args.file] if getattr(args, "file", None) else list(inputs)


def read_input_recordings(inputs, args, channels: int, steps: int | None, what: str):
    """:func:`read_recordings` of every file :func:`recording_inputs` names, in order."""
    recs = []
    for f in recording_inputs(inputs, args):
        recs += read_recordings(f, channels, steps, what)
    return recs


def evaluation_result(task, split, model, classes, test, train, baselines, published, meta):
    """The evaluation dictionary the sequence -> class applications print: the model's
    accuracy on ``test`` and ``train`` (each (model inputs, labels)), then ``baselines()``."""
    report = classification_report(test[1], predict_classes(model, test[0]), classes)
    train_accuracy = classification_report(train[1], predict_classes(model, train[0]), classes)[
        "accuracy"
    ]
    return {
        "task": task,
        "split": split,
        "model": {
            "test_accuracy": report["accuracy"],
            "train_accuracy": train_accuracy,
            **{k: v for k, v in report.items() if k != "accuracy"},
        },
        "baselines": baselines(),
        "published": published,
        "training": {k: v for k, v in meta.get("training", {}).items() if k != "history"},
    }


def dtw_baselines(task, x_train, y_train, x_test, y_test, classes) -> dict:
    """Majority class and 1-NN dependent DTW accuracy on raw recordings, cached per data."""

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
    return cached(task, arrays, compute)


def standard_plots(task, out, rep, classes, meta):
    """The confusion matrix of the test split and, when recorded, the training curves."""
    yield plot_confusion(
        out / f"{task}_confusion.png",
        rep["confusion"],
        classes,
        f"rnnkit {task}: test accuracy {rep['accuracy']:.3f}",
    )
    hist = meta.get("training", {}).get("history")
    if hist:
        yield plot_training(out / f"{task}_training.png", hist, f"rnnkit {task}: training")


def recording_lines(recs, probs, classes, label):
    """A line per recording: its name, ``label(class, probability, series)`` and what the
    file says the class is, where it says."""
    lines = []
    for (name, series, truth), p in zip(recs, probs):
        best = int(np.argmax(p))
        line = f"{name}: {label(classes[best], p[best], series)}"
        if truth is not None:
            line += f"  [file says {truth}]"
        lines.append(line)
    return lines


def recording_evaluate(task, dataset, title, inputs, published):
    """The ``evaluate`` of a classifier of UEA recordings (activity, speaker): ``dataset`` is
    the loader module, ``inputs(series, meta)`` the model inputs; DTW baselines."""

    def evaluate(model, meta, args):
        (x_train, y_train), (x_test, y_test) = dataset.load_data(args.data)
        classes = list(dataset.CLASSES)
        return evaluation_result(
            task,
            f"UEA {title}: {len(y_train)} train / {len(y_test)} test",
            model,
            classes,
            (inputs(x_test, meta), y_test),
            (inputs(x_train, meta), y_train),
            lambda: dtw_baselines(task, x_train, y_train, x_test, y_test, classes),
            published,
            meta,
        )

    return evaluate


def recording_plots(task, dataset, inputs):
    """The ``plot`` command's plots of a classifier of UEA recordings (see
    :func:`recording_evaluate`)."""

    def plots(model, meta, args, out):
        _, (x_test, y_test) = dataset.load_data(args.data)
        classes = list(dataset.CLASSES)
        rep = classification_report(y_test, predict_classes(model, inputs(x_test, meta)), classes)
        yield from standard_plots(task, out, rep, classes, meta)

    return plots
