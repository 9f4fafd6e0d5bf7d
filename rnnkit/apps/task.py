"""The shape every application of the lecture shares on the command line.

    rnnkit <task> train [--minutes M] [--model PATH] [--data PATH] [task options]
    rnnkit <task> evaluate [--json]          the model's and every baseline's metrics, test split
    rnnkit <task> predict [INPUT ...]        answers INPUT, a --file, or lines typed on stdin

An application module (``rnnkit/apps/<task>.py``) defines one ``APP = App(...)`` with four
functions; this module turns it into the subcommands, finds and saves the model file
(atomically, with the application's metadata in the file's header), and turns the user's
mistakes into one-line messages.  ``rnnkit/cli.py`` registers every module named in
``APPS`` that is present.

    train(args)                         -> (model, metadata)   metadata: JSON, e.g. vocabularies
    evaluate(model, metadata, args)     -> {"model": {...}, "baselines": {...}, ...}
    predict(model, metadata, inputs, args) -> list of lines to print, one or more per input
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..argtypes import positive_int, positive_minutes
from ..callbacks import Callback
from ..data.fetch import cache_dir

APP_FORMAT = 1


class AppInputError(ValueError):
    """Input that an application cannot use (an empty prompt, a malformed line, ...)."""


@dataclass
class App:
    name: str  # the command: rnnkit <name>
    help: str  # one line for 'rnnkit --help'
    description: str  # the task, the data, the split, the default model
    train: Callable[[argparse.Namespace], tuple[Any, dict]]
    evaluate: Callable[[Any, dict, argparse.Namespace], dict]
    predict: Callable[[Any, dict, list[str], argparse.Namespace], list[str]]
    configure_train: Callable[[argparse.ArgumentParser], None] = lambda p: None
    configure_predict: Callable[[argparse.ArgumentParser], None] = lambda p: None
    configure_evaluate: Callable[[argparse.ArgumentParser], None] = lambda p: None
    input_help: str = "text to answer; without it, --file or lines typed on standard input"
    default_minutes: float = 5.0
    extra: dict = field(default_factory=dict)  # name -> (configure(p), run(args) -> int)


def default_model_path(name: str) -> Path:
    return cache_dir() / "models" / f"{name}.rnnkit"


def add_batch_and_learning_rate(g, *, batch, learning_rate):
    """--batch and --learning-rate (Adam's), with the application's defaults."""
    g.add_argument(
        "--batch", type=positive_int, default=batch, help=f"batch size (default: {batch})"
    )
    g.add_argument(
        "--learning-rate",
        type=float,
        default=learning_rate,
        help=f"Adam's learning rate (default: {learning_rate})",
    )


class TimeLimit(Callback):
    """Stops ``fit`` once ``seconds`` of wall clock have passed (checked after each update)."""

    def __init__(self, seconds):
        self.seconds = float(seconds)
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_batch_end(self, step, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def save_app_model(model, path, app: App, metadata: dict, seconds: float):
    meta = {
        "app": app.name,
        "app_format": APP_FORMAT,
        "train_seconds": round(seconds, 1),
        **metadata,
    }
    model.save(path, metadata=meta)


def load_app_model(path, app: App):
    """(model, metadata) from ``path``, checked to be a model of ``app``."""
    from ..io.saving import ModelFileError, load_model

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no trained {app.name} model at {path}; run "
            f"'rnnkit {app.name} train' first (or give --model PATH)"
        )
    if path.is_dir():
        raise ModelFileError(f"--model {path} is a directory; give a model file")
    model = load_model(path)
    meta = getattr(model, "metadata", None) or {}
    if meta.get("app") != app.name:
        raise ModelFileError(
            f"{path} is not a model of 'rnnkit {app.name}' (it was made by "
            f"{meta.get('app') or 'the library, not an application'})"
        )
    return model, meta


def read_inputs(args) -> list[str]:
    """The user's inputs: the positional arguments, else the lines of --file, else stdin."""
    if args.inputs:
        return list(args.inputs)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise AppInputError(f"--file {path}: no such file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AppInputError(f"--file {path} is not UTF-8 text") from None
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise AppInputError(f"--file {path} has no non-empty lines")
        return lines
    return []


def _run_train(app: App, args):
    path = Path(args.model) if args.model else default_model_path(app.name)
    if path.is_dir():
        raise AppInputError(f"--model {path} is a directory; give a file name")
    start = time.perf_counter()
    model, metadata = app.train(args)
    seconds = time.perf_counter() - start
    save_app_model(model, path, app, metadata, seconds)
    print(
        f"Saved the {app.name} model to {path} (trained {seconds / 60:.1f} min). "
        f"Next: rnnkit {app.name} evaluate" + (f" --model {path}" if args.model else ""),
        file=sys.stderr,
    )
    return 0


def _run_evaluate(app: App, args):
    path = Path(args.model) if args.model else default_model_path(app.name)
    model, meta = load_app_model(path, app)
    result = app.evaluate(model, meta, args)
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=False))
    else:
        _print_nested(result)
    return 0


def _print_nested(d, indent=0):
    for k, v in d.items():
        if isinstance(v, dict):
            print(" " * indent + f"{k}:")
            _print_nested(v, indent + 2)
        elif isinstance(v, float):
            print(" " * indent + f"{k}: {v:.4g}")
        else:
            print(" " * indent + f"{k}: {v}")


def _run_predict(app: App, args):
    path = Path(args.model) if args.model else default_model_path(app.name)
    model, meta = load_app_model(path, app)
    inputs = read_inputs(args)
    if inputs:
        for line in app.predict(model, meta, inputs, args):
            print(line)
        return 0
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            f"rnnkit {app.name}: type an input and press Enter (Ctrl-D to quit).", file=sys.stderr
        )
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        try:
            for out in app.predict(model, meta, [line], args):
                print(out, flush=True)
        except AppInputError as e:
            if not interactive:
                raise
            print(f"rnnkit: {e}", file=sys.stderr)
    return 0


def add_app_parser(sub, app: App):
    """Register ``rnnkit <app.name> train|evaluate|predict`` on an argparse subparsers."""
    p = sub.add_parser(
        app.name,
        help=app.help,
        description=app.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(
        dest="action", metavar="{train,evaluate,predict" + "".join("," + k for k in app.extra) + "}"
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    def common(q):
        q.add_argument(
            "--model",
            metavar="PATH",
            help=f"the model file (default: {default_model_path(app.name)})",
        )
        q.add_argument(
            "--data",
            metavar="PATH",
            help="a local copy of the data set's source file, instead of the cached download",
        )

    t = actions.add_parser(
        "train",
        help="train the default model and save it",
        description=f"Train the {app.name} model and save it.",
    )
    common(t)
    t.add_argument(
        "--minutes",
        type=positive_minutes,
        default=app.default_minutes,
        help="wall-clock training budget (default: %(default)s)",
    )
    t.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    app.configure_train(t)
    t.set_defaults(func=lambda args: _run_train(app, args))

    e = actions.add_parser(
        "evaluate", help="metrics of the model and of the baselines on the test split"
    )
    common(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    app.configure_evaluate(e)
    e.set_defaults(func=lambda args: _run_evaluate(app, args))

    q = actions.add_parser("predict", help="answer your own input")
    common(q)
    q.add_argument("inputs", nargs="*", metavar="INPUT", help=app.input_help)
    q.add_argument("--file", metavar="FILE", help="answer each non-empty line of FILE")
    app.configure_predict(q)
    q.set_defaults(func=lambda args: _run_predict(app, args))

    for name, (configure, run) in app.extra.items():
        x = actions.add_parser(name, help=getattr(run, "__doc__", None) or name)
        common(x)
        configure(x)
        x.set_defaults(func=run)
    return p


__all__ = [
    "App",
    "AppInputError",
    "TimeLimit",
    "add_app_parser",
    "default_model_path",
    "load_app_model",
    "read_inputs",
    "positive_int",
    "positive_minutes",
]
