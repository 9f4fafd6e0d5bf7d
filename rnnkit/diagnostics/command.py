"""``rnnkit diagnose``: the gradient diagnostics of a saved model or of a fresh model on a
long-range task, as PNGs and a JSON of the numbers.

    rnnkit diagnose --task adding --cell rnn --lag 50 --out diag/          # fresh, trained briefly
    rnnkit diagnose --task copy --cell lstm --lag 20 --epochs 0 --out d/   # at initialization
    rnnkit diagnose --model model.rnnkit --task adding --lag 100 --out d/  # a saved model

(``python -m rnnkit.diagnostics ...`` runs the same command.)
"""

# ``add_parser`` and ``run`` are what the ``rnnkit`` command line (rnnkit/cli.py) registers.
from __future__ import annotations

import argparse
import os
import sys
import time

from ..argtypes import non_negative_float, non_negative_int, positive_float, positive_int
from ..seeding import set_seed
from . import tasks
from .monitor import SpectralNormTracker
from .report import diagnose
from .traces import recurrent_layers

HELP = "gradient diagnostics: vanishing/exploding gradients, Jacobians, gates, truncation"


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas; got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas; got {text!r}"
        )
    return values


def configure(p):
    """Add the arguments of ``diagnose`` to an argparse parser."""
    src = p.add_argument_group("model")
    src.add_argument(
        "--model",
        metavar="PATH",
        help="a saved rnnkit model (rnnkit.load_model); without it a fresh model "
        "is built for --task with --cell",
    )
    src.add_argument(
        "--task",
        choices=tasks.TASKS,
        help="the data: the adding problem or copy-memory (default: the saved "
        "model's, else adding)",
    )
    src.add_argument(
        "--lag",
        type=positive_int,
        help="the task's time lag: adding: sequence length; copy: steps between "
        "the symbols and their recall (default: the saved model's, else 50)",
    )
    src.add_argument(
        "--cell",
        choices=tasks.CELLS,
        default="rnn",
        help="fresh model: the recurrence (default: rnn, the lecture's Elman cell)",
    )
    src.add_argument(
        "--activation",
        default="tanh",
        help="fresh rnn model: its activation σ (tanh, sigmoid, relu, linear, ...)",
    )
    src.add_argument(
        "--units", type=positive_int, default=32, help="fresh model: hidden units (32)"
    )
    tr = p.add_argument_group("training before the diagnostics")
    tr.add_argument(
        "--epochs",
        type=non_negative_int,
        help="train for this many epochs first (default: 2 for a fresh model, 0 "
        "for a saved one); the clipping and ‖W‖ plots need training",
    )
    tr.add_argument(
        "--train-size", type=positive_int, default=1024, help="training sequences (1024)"
    )
    tr.add_argument("--batch-size", type=positive_int, default=32, help="training batch size (32)")
    tr.add_argument(
        "--lr", type=positive_float, default=1e-2, help="fresh model: Adam's learning rate"
    )
    tr.add_argument(
        "--clip",
        type=non_negative_float,
        default=1.0,
        help="fresh model: clip the global gradient norm at this value (1.0; 0: off)",
    )
    tr.add_argument("--save", metavar="PATH", help="save the (trained) model here")
    dg = p.add_argument_group("diagnostics")
    dg.add_argument(
        "--batch", type=positive_int, default=32, help="sequences in the diagnosed batch (32)"
    )
    dg.add_argument(
        "--samples",
        type=positive_int,
        default=4,
        help="sequences whose exact Jacobians are computed (4)",
    )
    dg.add_argument(
        "--k2",
        type=_int_list,
        help="truncation windows for the bias meter, e.g. 1,2,4,8,16 "
        "(default: powers of two up to T)",
    )
    dg.add_argument(
        "--k1",
        type=positive_int,
        default=1,
        help="truncated BPTT's step k1 for the meter (1: every loss truncated at k2)",
    )
    dg.add_argument("--no-truncation", action="store_true", help="skip the truncation meter")
    dg.add_argument("--seed", type=int, default=0, help="random seed (0)")
    dg.add_argument(
        "--out",
        "-o",
        default="diagnostics",
        help="output folder for the PNGs and diagnostics.json (diagnostics/)",
    )
    dg.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    return p


def add_parser(subparsers):
    """Register ``diagnose`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "diagnose",
        help=HELP,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(p)
    p.set_defaults(func=run)
    return p


def _input_dim(model):
    layers = recurrent_layers(model)
    return layers[0].input_dim if layers else None


def _load(args, say):
    from ..io.saving import load_model

    model = load_model(args.model)
    meta = (getattr(model, "metadata", None) or {}).get("diagnose", {})
    task = args.task or meta.get("task") or "adding"
    lag = args.lag if args.lag is not None else meta.get("lag") or 50  # 0 is refused by argparse
    want = 2 if task == "adding" else 10
    got = _input_dim(model)
    if got is not None and got != want:
        raise SystemExit(
            f"rnnkit diagnose: {args.model!r} takes {got} input features; the "
            f"{task} task gives {want}. Pick the task the model was trained on "
            f"with --task"
        )
    if not getattr(model, "compiled", False):
        if task == "adding":
            model.compile("mse")
        else:
            model.compile("sparse_categorical_crossentropy", from_logits=True)
    say(f"loaded {args.model} ({type(model).__name__}, {model.count_params()} parameters)")
    return model, task, lag


def run(args):
    """Carry out ``rnnkit diagnose`` for parsed ``args``; returns 0."""
    say = (lambda *a: None) if args.quiet else print
    for flag, path in (("--model", args.model), ("--save", args.save)):
        if path and os.path.exists(path) and not os.path.isfile(path):
            # a directory, device, pipe or socket: never read it, nor rename a model over it
            raise ValueError(f"{flag} {path} is not a regular file; give a model file's name")
    set_seed(args.seed)
    t0 = time.perf_counter()
    if args.model:
        model, task, lag = _load(args, say)
        epochs = 0 if args.epochs is None else args.epochs
        desc = {"model": os.path.abspath(args.model)}
    else:
        task, lag = args.task or "adding", 50 if args.lag is None else args.lag
        clip = args.clip if args.clip and args.clip > 0 else None
        model = tasks.build_model(
            task,
            args.cell,
            args.units,
            args.activation,
            lag,
            seed=args.seed,
            learning_rate=args.lr,
            clip_global_norm=clip,
        )
        epochs = 2 if args.epochs is None else args.epochs
        desc = {
            "cell": args.cell,
            "activation": args.activation,
            "units": args.units,
            "lr": args.lr,
            "clip_global_norm": clip,
        }
        say(f"fresh {args.cell} model ({args.units} units) for the {task} task, lag {lag}")
    config = {"task": task, "lag": lag, "epochs": epochs, "seed": args.seed, **desc}
    history = tracker = None
    threshold = getattr(getattr(model, "optimizer", None), "clip_global_norm", None)
    if epochs > 0:
        x_tr, y_tr = tasks.make_batch(task, args.train_size, lag, seed=args.seed + 1)
        x_va, y_va = tasks.make_batch(task, max(args.batch_size, 256), lag, seed=args.seed + 2)
        tracker = SpectralNormTracker(every=max(1, args.train_size // args.batch_size // 8))
        say(f"training {epochs} epoch(s) on {args.train_size} sequences ...")
        history = model.fit(
            x_tr,
            y_tr,
            batch_size=args.batch_size,
            epochs=epochs,
            validation_data=(x_va, y_va),
            callbacks=[tracker],
            verbose=0 if args.quiet else 2,
        )
        config["final_val_loss"] = history.history.get("val_loss", [None])[-1]
    if args.save:
        model.save(
            args.save,
            metadata={
                **(getattr(model, "metadata", None) or {}),
                "diagnose": {"task": task, "lag": lag},
            },
        )
        say(f"saved the model to {args.save}")
    x, y = tasks.make_batch(task, args.batch, lag, seed=args.seed + 3)
    say(f"diagnosing a batch of {args.batch} sequences of {x.shape[1]} steps ...")
    result = diagnose(
        model,
        x,
        y,
        args.out,
        samples=args.samples,
        k2_values=args.k2,
        k1=args.k1,
        history=history,
        tracker=tracker,
        clip_threshold=threshold,
        truncation=not args.no_truncation,
        config=config,
        verbose=not args.quiet,
    )
    for f in result["files"].values():
        say(f"  wrote {f}")
    say(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="rnnkit diagnose",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(p)
    args = p.parse_args(argv)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
