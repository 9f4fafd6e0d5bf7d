"""The ``rnnkit`` command: parse the arguments, then call the library.

rnnkit autocomplete            learn Shakespeare (or --text FILE) and complete what you type
rnnkit generate                write free text with the autocomplete model
rnnkit diagnose                gradients through time: vanishing/exploding, Jacobians, gates
rnnkit <task> train|evaluate|predict   the lecture's applications (forecast, sentiment,
                               tag, ner, translate, dna, music, activity, speaker)
rnnkit <command> --help        every option of a command
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

EXIT_USAGE, EXIT_FAILURE = 2, 1
MAX_LENGTH = 1_000_000  # --length: a completion is written one character per forward step
REPORT_WORDS = 200  # word boundaries of the held-out text scored after training (seconds)


def _fail(message, code=EXIT_FAILURE):
    print(f"rnnkit: {message}", file=sys.stderr)
    from .distributed import stop_job

    stop_job(code)  # under mpiexec: the other ranks stop too, instead of waiting
    return code


# -- autocomplete / generate ---------------------------------------------------------------------
def _add_model_options(p):
    g = p.add_argument_group("what to learn")
    g.add_argument(
        "--text",
        metavar="FILE",
        help="a UTF-8 text file to learn instead of Shakespeare's works (a regular "
        "file of at most 64 MiB)",
    )
    g.add_argument(
        "--model",
        metavar="PATH",
        help="the model file (default: one per text and architecture in the cache "
        "directory, ~/.cache/rnnkit/models)",
    )
    g = p.add_argument_group("training (when no saved model exists, or with --retrain/--resume)")
    g.add_argument(
        "--minutes", type=float, default=3.0, help="wall-clock training time (default: 3)"
    )
    g.add_argument(
        "--max-updates",
        type=int,
        default=None,
        metavar="N",
        help="stop after N updates if --minutes has not run out first; the learning "
        "rate's cosine then runs over the N updates, so the run does not depend "
        "on the machine's speed (default: no limit)",
    )
    g.add_argument(
        "--max-passes",
        type=float,
        default=None,
        metavar="P",
        help="stop after reading the training text P times if --minutes has not run out "
        "first (the learning rate's cosine then runs over the P passes): a small text read "
        "more often is overfitted; 0: no limit (default: 60; with --resume, the saved "
        "model's)",
    )
    g.add_argument(
        "--cell",
        choices=["lstm", "gru", "rnn"],
        default="lstm",
        help="recurrent cell (default: lstm)",
    )
    g.add_argument(
        "--hidden",
        type=int,
        default=None,
        help="hidden units per layer (default: from the budget and the text's size: 512 "
        "for a budget of 10 minutes or more on a text of 2 M characters or more, else 256)",
    )
    g.add_argument("--layers", type=int, default=1, help="stacked recurrent layers (default: 1)")
    g.add_argument(
        "--bptt", type=int, default=32, help="truncated-BPTT length in characters (default: 32)"
    )
    g.add_argument("--batch", type=int, default=64, help="parallel text streams (default: 64)")
    g.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="variational dropout on the recurrent layers' inputs and output, in [0, 1) "
        "(default: from the budget and the text's size: 0 while the budget reads the text "
        "at most 3 times, 0.1 up to 10 times, 0.2 beyond)",
    )
    g.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        metavar="LAMBDA",
        help="decoupled weight decay (AdamW's): every weight shrinks by the learning rate "
        "× LAMBDA each update; 0: plain Adam (default: 0.1)",
    )
    g.add_argument(
        "--learning-rate",
        type=float,
        default=1e-2,
        help="Adam's initial learning rate, decayed along a cosine to 5%% of it by "
        "the end of --minutes (default: 0.01)",
    )
    g.add_argument(
        "--ngram",
        type=int,
        default=9,
        metavar="ORDER",
        help="after training, mix the network's predictions with a Kneser-Ney n-gram model "
        "of this order counted on the training text (its weight chosen on 5%% of the text, "
        "blocks the network does not train on); "
        "0: the network alone (default: 9)",
    )
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g.add_argument("--retrain", action="store_true", help="train a new model even if one is saved")
    g.add_argument(
        "--resume",
        action="store_true",
        help="train the saved model further for --minutes (the learning rate "
        "starts a new cosine decay from --learning-rate)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("completion")
    g.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="0: the most likely character each time; > 0: sample, lower is more "
        "conservative (default: %(default)s)",
    )
    g.add_argument(
        "--top-k",
        type=int,
        default=0,
        help="sample only among the k most likely characters (default: 0, all)",
    )
    g.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        help="sample only from the nucleus: the fewest most likely characters whose "
        "probabilities sum to at least p, in (0, 1] (default: 1, all)",
    )


def _settings(args):
    from .apps.autocomplete import Settings, check_dropout, check_max_passes, check_weight_decay

    for name in ("hidden", "layers", "bptt", "batch"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1; got {getattr(args, name)}")
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        raise ValueError(f"--minutes must be a finite number > 0; got {args.minutes}")
    if getattr(args, "max_updates", None) is not None and args.max_updates < 1:
        raise ValueError(f"--max-updates must be at least 1; got {args.max_updates}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise ValueError(f"--learning-rate must be a finite number > 0; got {args.learning_rate}")
    if args.seed < 0:
        raise ValueError(f"--seed must be ≥ 0; got {args.seed}")
    if args.ngram < 0:
        raise ValueError(f"--ngram must be ≥ 0 (0: no n-gram memory); got {args.ngram}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise ValueError(f"--temperature must be a finite number ≥ 0; got {args.temperature}")
    if args.top_k < 0:
        raise ValueError(f"--top-k must not be negative; got {args.top_k}")
    if args.dropout is not None:
        check_dropout(args.dropout, "--dropout")
    if args.max_passes is not None:
        check_max_passes(args.max_passes, "--max-passes")
    if args.weight_decay is not None:
        check_weight_decay(args.weight_decay, "--weight-decay")
    if not (0.0 < args.top_p <= 1.0):  # NaN fails too
        raise ValueError(f"--top-p must be a number in (0, 1]; got {args.top_p}")
    for name in ("suggestions", "beam"):
        if getattr(args, name, 1) < 1:
            raise ValueError(f"--{name} must be at least 1; got {getattr(args, name)}")
    if args.length < 1:
        raise ValueError(f"--length must be at least 1; got {args.length}")
    if args.length > MAX_LENGTH:
        raise ValueError(f"--length must be at most {MAX_LENGTH:,} characters; got {args.length}")
    return Settings(
        cell=args.cell,
        hidden=args.hidden or Settings.hidden,  # None: set from the budget once the text
        layers=args.layers,  # is read, as the dropout is
        batch=args.batch,
        bptt=args.bptt,
        learning_rate=args.learning_rate,
        seed=args.seed,
        dropout=args.dropout or 0.0,
        weight_decay=Settings.weight_decay if args.weight_decay is None else args.weight_decay,
        ngram=args.ngram,
        max_passes=Settings.max_passes if args.max_passes is None else args.max_passes,
    )


def _corpus(args):
    from .apps import autocomplete as app
    from .data import shakespeare_works

    if args.text:
        text = app.read_text_file(args.text)
        name = "".join(c if c.isalnum() else "-" for c in Path(args.text).stem)[:40] or "text"
        source = args.text
    else:
        text = shakespeare_works(quiet=False)
        name, source = "shakespeare", "Shakespeare's works"
    app.check_text(text, source)
    return text, name, source


def prepare_model(args, out=None):
    """Load the saved model, or train one; returns (model, vocab, its n-gram memory or
    None).  Messages go to
    ``out`` (standard output by default)."""
    out = out or sys.stdout
    from .apps import autocomplete as app
    from .data.text import CharVocab
    from .io.saving import ModelFileError

    settings = _settings(args)
    from .distributed import fingerprint, for_command

    dp = for_command()  # mpiexec -n p rnnkit ...: data-parallel training
    out = out if dp is None else dp.output(out)
    if args.retrain and args.resume:
        raise ValueError(
            "--retrain and --resume contradict each other: --retrain starts a new "
            "model, --resume trains the saved one further"
        )
    if args.model:
        _refuse_directory(Path(args.model))  # before the corpus is read or fetched
    only_load = args.model and Path(args.model).is_file() and not (args.retrain or args.resume)
    text, name, source = (
        (None, None, None)
        if only_load
        else _corpus(args)
        if dp is None
        else dp.root_first(_corpus, args)
    )
    if text is not None:  # what is not given, the budget and the text's size decide
        n_train = len(app.split(range(len(text)), settings.val_fraction)[0])
        app.fit_to_budget(
            settings,
            n_train,
            args.minutes,
            getattr(args, "max_updates", None),
            size=args.hidden is None,
            dropout=args.dropout is None,
        )
    path = Path(args.model) if args.model else app.default_model_path(name, text, settings)

    model = None
    position, seconds, history = 0, 0.0, []
    if path.exists() and not args.retrain:
        _refuse_directory(path)
        try:
            model, vocab, settings, meta = app.load(path)
        except (ModelFileError, KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{e}\n  Run with --retrain to train a new model there.") from None
        position, seconds = meta.get("position", 0), meta.get("trained_seconds", 0.0)
        history = meta.get("history", [])
        fixed = ("cell", "hidden", "layers", "dropout", "weight_decay")  # set at training
        asked = {k: getattr(args, k) for k in fixed}
        asked = {k: v for k, v in asked.items() if v is not None}  # --hidden etc.: when given
        saved = {k: getattr(settings, k) for k in asked}
        if asked != saved:
            print(
                f"note: {path} is a {settings.layers}-layer {settings.cell.upper()} with "
                f"{settings.hidden} units, dropout {settings.dropout:g} and weight decay "
                f"{settings.weight_decay:g}; --cell/--hidden/--layers/--dropout/--weight-decay "
                f"apply to a new model (--retrain).",
                file=out,
            )
        if args.resume and args.max_passes is not None:
            settings.max_passes = args.max_passes  # this session's limit, when given
        if not args.resume:
            if meta.get("complete", True):
                state = f"validation {meta.get('val_bpc') or float('nan'):.3f} bits per character"
                others = [  # optional: newer files have some or all
                    f"{meta[key]:.3f} {what}"
                    for key, what in (
                        ("val_bpc_memory", "with its n-gram memory"),
                        ("val_bpc_adaptive", "adapting"),
                        ("val_bpc_adaptive_memory", "adapting, with the memory"),
                    )
                    if isinstance(meta.get(key), float)
                ]
                if others:
                    state += f" ({'; '.join(others)})"
                words = meta.get("next_word_top3")
                if isinstance(words, dict) and "accuracy" in words:  # optional: newer files
                    state += f", top-3 next-word accuracy {100 * words['accuracy']:.1f} %"
            else:
                state = (
                    "not validated yet: its training was interrupted; --resume trains it further"
                )
            print(f"Using the model in {path}: trained {seconds / 60:.1f} min, {state}.", file=out)
            return model, vocab, app.memory_from(meta)
        print(
            f"Resuming the training of {path} ({seconds / 60:.1f} min so far) for "
            f"{args.minutes:g} more minutes{_updates_note(args)}.",
            file=out,
        )
    else:
        if args.resume:
            print(f"No saved model at {path} to resume; training a new one.", file=out)
        _check_writable(path)
        vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    train_ids, val_ids = app.split(ids, settings.val_fraction)

    if model is None:
        app.check_size(len(vocab), settings, chars=len(train_ids))  # before allocating it
        model = app.build_model(len(vocab), settings)
        regularized = f", dropout {settings.dropout:g}" if settings.dropout else ""
        if settings.weight_decay:
            regularized += f", weight decay {settings.weight_decay:g}"
        print(
            f"Training a {settings.layers}-layer {settings.cell.upper()} with {settings.hidden} "
            f"units{regularized} on {source} ({_training_chars(app, train_ids, settings)}; "
            f"{len(val_ids):,} held out for validation; {len(vocab) - 1} distinct characters) "
            f"for {args.minutes:g} minutes"
            f"{_updates_note(args)}.",
            file=out,
        )

    def checkpoint(pos, secs):
        app.save(model, path, vocab, settings, pos, secs, history=history, complete=False)

    if dp is not None:
        checkpoint = dp.begin_command(
            model,
            checkpoint,
            out,
            {
                "the text": fingerprint(train_ids, val_ids),
                "the settings": str(settings),
                "the model file": str(path),
                "the stream position": position,
            },
        )
    try:
        before = seconds
        result = app.train(
            model,
            app.network_ids(train_ids, settings),  # the memory's λ is chosen on the rest
            settings,
            args.minutes,
            position=position,
            elapsed=seconds,
            verbose=not args.quiet,
            on_checkpoint=checkpoint,
            stream=out,
            max_updates=getattr(args, "max_updates", None),
            distributed=dp,
        )
        position, seconds, chars = result.position, result.seconds, result.chars
    except app.Interrupted:
        print(
            f"\nInterrupted. Saved a resumable checkpoint to {path}; run the same command "
            f"with --resume to continue.",
            file=out,
        )
        raise
    if dp is not None and not dp.is_root:
        return model, vocab, None  # rank 0 validates and saves
    if settings.max_passes and result.passes >= settings.max_passes:
        print(
            f"Stopped after {result.passes:.3g} passes over the training text, "
            f"{(seconds - before) / 60:.1f} of the {args.minutes:g} minutes: a text this "
            f"small is overfitted when read more often (--max-passes, 0: no limit).",
            file=out,
        )
    try:
        p_val = app.char_probs(model, val_ids)  # the network's, once for all figures
        val_bpc = app.bpc(p_val)
        accuracy = typed1 = memory = None  # next-word accuracy: seconds
        figures = {}  # the held-out figures beside val_bpc (app.held_out_figures)
        if val_bpc <= app.absurd_bpc(len(vocab)):
            if settings.ngram and not args.quiet:
                print("Counting the n-gram memory of the training text.", file=out)
            memory = app.build_memory(model, train_ids, settings, len(vocab))
            if not args.quiet:
                print(
                    f"Held-out text: {val_bpc:.3f} bits per character. Reading it again, "
                    f"learning as it goes (each character predicted before it is learned "
                    f"from):",
                    file=out,
                )
            figures = app.held_out_figures(
                model, memory, train_ids, val_ids, p_val, stream=None if args.quiet else out
            )
            held_out = vocab.decode(val_ids)
            accuracy = app.next_word_accuracy(
                model, vocab, held_out, k=3, samples=REPORT_WORDS, memory=memory
            )
            typed1 = app.next_word_accuracy(
                model, vocab, held_out, k=3, samples=REPORT_WORDS, typed=1, memory=memory
            )
    except KeyboardInterrupt:  # trained, not yet validated: keep the training
        checkpoint(position, seconds)
        print(
            f"\nInterrupted during validation. Saved the trained model to {path}; "
            f"--resume validates it after more training.",
            file=out,
        )
        raise app.Interrupted() from None
    if not val_bpc <= app.absurd_bpc(len(vocab)):  # NaN, inf, or far above a uniform guess
        raise app.diverged(
            f"the held-out text costs {val_bpc:.4g} bits per character, where a "
            f"uniform guess costs {math.log2(len(vocab)):.2f}; it is not saved as "
            f"a trained model"
        )
    uni = app.ngram_bpc(train_ids, val_ids, 1, len(vocab))
    bi = app.ngram_bpc(train_ids, val_ids, 2, len(vocab))
    try:  # the smoothed 5-gram the issue compares with (needs V^5 < 2^62: V up to 5,404)
        five = app.kneser_ney_bpc(train_ids, val_ids, 5, len(vocab))
    except ValueError:
        five = None
    rate = chars / (seconds - before) if seconds > before else 0.0  # this session's speed
    history.append(
        {"trained_seconds": seconds, "val_bpc": val_bpc, "chars_per_second": round(rate)}
    )
    app.save(
        model,
        path,
        vocab,
        settings,
        position,
        seconds,
        val_bpc=val_bpc,
        history=history,
        next_word=accuracy if accuracy and accuracy.boundaries else None,
        memory=memory,
        figures=figures,
    )
    adaptive = f"{figures['val_bpc_adaptive']:.3f} for the network"
    if memory is not None:
        adaptive += f" and {figures['val_bpc_adaptive_memory']:.3f} mixed with the memory"
    with_memory = (
        f", {figures['val_bpc_memory']:.3f} mixed with the {memory.order}-gram memory of "
        f"the training text (the network's weight {memory.weight:.2f})"
        if memory is not None
        else ""
    )
    print(
        f"Validation: {val_bpc:.3f} bits per character for the network alone{with_memory}; "
        f"adapting to the held-out text as it reads it, {adaptive}; after {seconds / 60:.1f} min of "
        f"training at {rate:,.0f} characters a second (unigram model: {uni[0]:.3f}, bigram model: {bi[0]:.3f}"
        + (f", Kneser-Ney 5-gram: {five:.3f}" if five is not None else "")
        + "). "
        f"Saved to {path}.",
        file=out,
    )
    if accuracy and accuracy.boundaries:
        after_one = (
            f"; with the word's first letter typed: {100 * typed1.fraction:.1f} %"
            if typed1 and typed1.boundaries
            else ""
        )
        print(
            f"Validation: top-3 next-word accuracy: {100 * accuracy.fraction:.1f} % "
            f"({accuracy.boundaries} boundaries of the held-out text){after_one}.",
            file=out,
        )
    if val_bpc > bi[0]:
        why = (
            f"the training text is small ({len(train_ids):,} characters; a character model "
            f"needs hundreds of thousands to generalise)"
            if len(train_ids) < 200_000
            else "train longer (--minutes), or lower --learning-rate if the loss was unstable"
        )
        print(
            f"note: the model does worse than a bigram model on the held-out text: {why}.", file=out
        )
    return model, vocab, memory


def _training_chars(app, train_ids, settings) -> str:
    """How the training text is used: "N characters", or with an n-gram memory "N
    characters for the network and M for its memory" (the blocks that choose its λ)."""
    n_net = len(app.network_ids(train_ids, settings))
    if n_net == len(train_ids):
        return f"{n_net:,} characters"
    return f"{n_net:,} characters for the network and {len(train_ids) - n_net:,} for its memory"


def _updates_note(args):
    n = getattr(args, "max_updates", None)
    return f" or {n:,} updates, whichever comes first" if n else ""


def _refuse_directory(path):
    from .io.saving import ModelFileError

    if path.is_dir():
        raise ModelFileError(
            f"--model {path} is a directory; give a file name, e.g. {path / 'model.rnnkit'}"
        )
    if path.exists() and not path.is_file():  # a device, pipe or socket: never read it,
        raise ModelFileError(
            f"--model {path} is not a regular file (a device, pipe or "
            f"socket); give a model file's name"
        )  # nor rename over it


def _check_writable(path):
    """Fail before training, not after it, when the model cannot be saved at ``path``."""
    import tempfile

    from .io.saving import ModelFileError

    _refuse_directory(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelFileError(f"cannot save the model at {path}: {e.strerror or e}") from None
    try:  # the save writes a temporary file there first
        fd, probe = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ModelFileError(f"cannot save the model at {path}: {e.strerror or e}") from None


def _warn_unknown(vocab, prompt):
    unknown = vocab.unknown_chars(prompt)
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:10])
        print(
            f"note: the model has never seen {shown}; it reads "
            f"{'them' if len(unknown) > 1 else 'it'} as an unknown character.",
            file=sys.stderr,
        )


def _suggestions(suggest, prompt, k, print_fn, first=1):
    """Print the top-k completions of ``prompt`` to the end of the word and of the phrase,
    numbered from ``first``, each after the part of its word already typed (the prompt's
    last letters: "The king" shows "kings", "kingdom" and "king", the word as typed);
    returns [(until, Suggestion)] in the order of their numbers."""
    from .apps import autocomplete as app

    shown = []
    typed = app.word_typed(prompt)
    for until in ("word", "phrase"):
        found = suggest(prompt, until)
        print_fn(f"  to the end of the {until}:" + ("" if found else " (none found)"))
        for s in found:
            shown.append((until, s))
            line = f"{app.quoted(typed + s.text)} {app.percent_text(s.probability)}"
            print_fn(f"  {first + len(shown) - 1:2d}. {line}")
    return shown


def _suggest_fn(app, model, vocab, args, memory=None):
    """suggest(prompt, until) with the command's --suggestions and --beam."""

    def suggest(prompt, until):
        return app.suggest(
            model, vocab, prompt, k=args.suggestions, until=until, beam=args.beam, memory=memory
        )

    return suggest


def _sampling(args):
    """Sample (the old behaviour) rather than suggest: --sample, or any sampling option."""
    return args.sample or args.temperature > 0 or args.top_k > 0 or args.top_p < 1


def run_autocomplete(args):
    import numpy as np

    from .apps import autocomplete as app

    model, vocab, memory = prepare_model(args)
    from .distributed import launched_size, rank

    if launched_size() > 1 and rank() != 0:
        return 0  # under mpiexec the other ranks only train
    rng = np.random.default_rng(args.seed)
    suggest = _suggest_fn(app, model, vocab, args, memory)

    def show(prompt):
        _warn_unknown(vocab, prompt)
        return app.complete(
            model,
            vocab,
            prompt,
            length=args.length,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            rng=rng,
            memory=memory,
        )

    def answer(prompt):
        if _sampling(args):
            print(prompt + show(prompt))
        else:
            _warn_unknown(vocab, prompt)
            print(prompt)
            _suggestions(suggest, prompt, args.suggestions, print)

    if args.prompt is not None:
        answer(args.prompt)
        return 0
    if launched_size() > 1 or not sys.stdin.isatty():  # mpiexec: no typing, some completions
        lines = [] if launched_size() > 1 else [line.rstrip("\n") for line in sys.stdin]
        if lines:
            for line in lines:
                answer(line)
            return 0
        print("Some completions:")
        for prompt in ("To be, or not to ", "What light through yon", "My lord, I ", "The king"):
            if _sampling(args):
                print(f"  {prompt!r} -> {prompt + show(prompt)!r}")
            else:
                answer(prompt)
        return 0
    if _sampling(args):
        return _interactive(lambda i, p: _complete_lines(show, i, p))

    def next_chars(prompt):
        return app.next_chars(model, vocab, prompt, k=10, memory=memory)

    learn = app.Autocompleter(model, vocab).adapt if args.adapt else None
    live = None if args.line_mode else _live_session()
    if live is not None:
        from .data.fetch import cache_dir

        return live(suggest, next_chars, learn, history_file=cache_dir() / "autocomplete_live")
    return _interactive(
        lambda i, p: suggestion_session(suggest, next_chars, i, p, args.suggestions, learn)
    )


def _live_session():
    """``typing_ui.live_session`` (suggestions as you type), or None without prompt_toolkit."""
    try:
        from .apps.typing_ui import live_session
    except ImportError:
        return None
    return live_session


def _interactive(session):
    """Run ``session(input, print)`` with readline's line editing and history (kept in the
    cache directory); Ctrl-C ends it quietly."""
    from .data.fetch import cache_dir

    try:
        import readline

        history = cache_dir() / "autocomplete_history"
        history.parent.mkdir(parents=True, exist_ok=True)
        try:
            readline.read_history_file(history)
        except OSError:
            pass
    except ImportError:  # pragma: no cover - Windows without pyreadline
        readline = history = None
    try:
        session(input, print)
    except KeyboardInterrupt:
        print()
    finally:
        if readline is not None:
            try:
                readline.write_history_file(history)
            except OSError:
                pass
    return 0


def _complete_lines(show, input_fn, print_fn):
    """--sample: each line typed is completed by sampling (or greedily at temperature 0)."""
    print_fn(
        "Type the beginning of a line and press Enter; rnnkit completes it. "
        "Ctrl-D (or an empty line) quits; the arrow keys edit and recall lines."
    )
    while True:
        try:
            prompt = input_fn("> ")
        except EOFError:
            print_fn()
            return
        if not prompt:
            return
        completion = show(prompt)
        bold, end = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
        print_fn(f"  {prompt}{bold}{completion}{end}")


def suggestion_session(suggest, next_chars, input_fn, print_fn, k=3, learn=None):
    """The interactive suggestions, line by line.  Each line typed is appended to the
    current line, which is shown with its numbered suggestions (1..k to the end of the
    word, k+1..2k to the end of the phrase).  Typing a shown number accepts that
    suggestion: its text is appended, and the character that ends it when that is a
    space, or the punctuation that ends a phrase (a word's "summer" before "'s" stays
    open, so the next suggestions can go on with "'s"); other numbers are text.  ``?``
    lists the 10 most likely next characters; an empty line starts a new line (on an empty
    line it quits, as Ctrl-D does).  ``suggest(prompt, until)`` and ``next_chars(prompt)``
    are the model's; ``input_fn``/``print_fn`` are input and print, or a test's script.
    ``learn(text)``, when given, is called with each line that is finished (an empty line
    or Ctrl-D after it): the model adapts to what is written."""
    from .apps import autocomplete as app

    print_fn(
        "Type text and press Enter to see suggestions; type a suggestion's number to accept "
        "it, ? for the likeliest next characters, an empty line to start over. Ctrl-D quits."
    )
    line, shown = "", []
    while True:
        try:
            typed = input_fn("+ " if line else "> ")
        except EOFError:
            typed = None
        if not typed:
            if learn and len(line) >= 2:
                learn(line + "\n")
            if not line or typed is None:
                if typed is None:
                    print_fn()
                return
            line, shown = "", []
            print_fn("  (a new line)")
            continue
        if typed.strip() == "?":
            for ch, p in next_chars(line):
                print_fn(f"    {app.quoted(ch)} {app.percent_text(p)}")
            continue
        number = typed.strip()
        if number.isdigit() and 1 <= int(number) <= len(shown):
            until, chosen = shown[int(number) - 1]
            line += app.accepted_text(chosen, until)
        else:
            line += typed
        print_fn(f"  {line}")
        shown = _suggestions(suggest, line, k, print_fn)


def run_generate(args):
    import numpy as np

    from .apps import autocomplete as app

    model, vocab, memory = prepare_model(args, out=sys.stderr)
    from .distributed import launched_size, rank

    if launched_size() > 1 and rank() != 0:
        return 0  # under mpiexec the other ranks only train
    rng = np.random.default_rng(args.seed)
    prompt = args.prompt or ""
    _warn_unknown(vocab, prompt)
    text = app.complete(
        model,
        vocab,
        prompt,
        length=args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        rng=rng,
        stop_at_newline=False,
        memory=memory,
    )
    sys.stdout.write(prompt + text + "\n")
    return 0


# -- the parser ------------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks from the lecture's equations, trained with "
        "hand-written backpropagation through time.",
        epilog="Run 'rnnkit <command> --help' for the options of a command.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")

    p = sub.add_parser(
        "autocomplete",
        help="learn a text character by character and complete what you type",
        description="Train (once) a character-level LSTM language model on "
        "Shakespeare's works, or on --text FILE, with truncated "
        "BPTT, report its validation bits per character and top-3 next-word "
        "accuracy, save it, and suggest the most probable ends of the word and "
        "of the phrase for the lines you type (--sample: complete them). The model "
        "is reused next time unless --retrain or --resume is given.",
    )
    _add_model_options(p)
    p.add_argument(
        "--prompt",
        help="show the suggestions for this text (or complete it with --sample) and exit "
        "(no interactive prompt)",
    )
    p.add_argument(
        "--sample",
        action="store_true",
        help="complete each line by sampling (greedy at --temperature 0), instead of "
        "suggesting words and phrases; --temperature > 0, --top-k or --top-p imply it",
    )
    p.add_argument(
        "--suggestions",
        type=int,
        default=3,
        metavar="K",
        help="suggestions to the end of the word and of the phrase (default: 3)",
    )
    p.add_argument(
        "--beam",
        type=int,
        default=8,
        help="hypotheses the beam search keeps per character (default: 8)",
    )
    p.add_argument(
        "--no-adapt",
        dest="adapt",
        action="store_false",
        help="do not learn from the lines you type (by default the model, in memory only, "
        "goes on learning from each line you finish, as an editor's autocomplete adapts "
        "to the document)",
    )
    p.add_argument(
        "--line-mode",
        action="store_true",
        help="in a terminal, show numbered suggestions after each line you enter instead "
        "of a list that drops down as you type (the way without prompt_toolkit)",
    )
    p.add_argument(
        "--length",
        type=int,
        default=60,
        help="--sample: at most this many characters per completion (default: 60; a "
        "newline ends it earlier)",
    )
    p.set_defaults(func=run_autocomplete, temperature=0.0)

    p = sub.add_parser(
        "generate",
        help="write free text with the autocomplete model",
        description="Write --length characters of free text with the "
        "autocomplete model (trained first if there is none).",
    )
    _add_model_options(p)
    p.add_argument("--prompt", default="", help="text to start from")
    p.add_argument("--length", type=int, default=500, help="characters to write (default: 500)")
    p.set_defaults(func=run_generate)
    p.set_defaults(temperature=0.8)

    from .diagnostics.command import add_parser as add_diagnose  # rnnkit diagnose

    add_diagnose(sub)
    _add_apps(sub)
    return parser


# The lecture's applications: each rnnkit/apps/<name>.py that exists defines APP (apps/task.py).
APPS = ("forecast", "sentiment", "tag", "ner", "translate", "dna", "music", "activity", "speaker")


def _add_apps(sub):
    import importlib
    import importlib.util

    from .apps.task import add_app_parser

    for name in APPS:
        if importlib.util.find_spec(f"rnnkit.apps.{name}") is None:
            continue
        add_app_parser(sub, importlib.import_module(f"rnnkit.apps.{name}").APP)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from .apps.autocomplete import Interrupted, TextError
    from .apps.task import AppInputError
    from .data.fetch import DataUnavailable
    from .io.saving import ModelFileError

    try:
        return args.func(args)
    except (TextError, ValueError) as e:  # AppInputError is a ValueError
        usage = isinstance(e, (TextError, AppInputError))
        return _fail(str(e), EXIT_USAGE if usage else EXIT_FAILURE)
    except DataUnavailable as e:
        hint = (
            "\nOr train on any UTF-8 text of your own: --text FILE" if hasattr(args, "text") else ""
        )  # only autocomplete/generate have --text
        return _fail(f"{e}{hint}")
    except (ModelFileError, FileNotFoundError) as e:
        return _fail(str(e))
    except FloatingPointError as e:
        return _fail(str(e))
    except OSError as e:  # e.g. the disk filled up while saving
        return _fail(f"{e.strerror or e}{': ' + str(e.filename) if e.filename else ''}")
    except Interrupted:
        return 130
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into head
        return 0


if __name__ == "__main__":
    sys.exit(main())
