"""Character-level autocomplete: the lecture's running example, as a product.

An LSTM language model reads text one character at a time and predicts the next,

    h_t = LSTM(E[x_t], h_{t-1})        p(x_{t+1} | x_≤t) = softmax(h_t V + c)

trained with truncated BPTT on B parallel streams of the training text (char-rnn's
setup: the state is carried from chunk to chunk, gradients flow back k steps).
Quality is measured in bits per character (bpc) on a held-out tail of the text.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import optim
from ..data.fetch import cache_dir
from ..data.text import CharVocab
from ..io.saving import ModelFileError, load_model
from ..layers import GRU, LSTM, Dense, Embedding, SimpleRNN
from ..models import Sequential
from ..progress import ProgressBar, format_duration
from ..seeding import set_seed
from ..training import tbptt_steps
from ..validation import NonFiniteError

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN}
MIN_CHARS = 1000  # below this there is not enough text for a training and a validation split
MAX_TEXT_BYTES = 64 * 2**20  # --text: larger files are refused (Shakespeare's works are 5 MB)
MAX_PARAMS = 500_000_000  # more parameters than this are refused before any allocation
APP_VERSION = 1


class TextError(ValueError):
    """A text that cannot be trained on (empty, too short, binary, not UTF-8)."""


@dataclass
class Settings:
    cell: str = "lstm"
    hidden: int = 256
    layers: int = 1
    embed: int = 32
    batch: int = 32  # parallel streams
    bptt: int = 32  # truncation length k (k1 = k2)
    learning_rate: float = 1e-2  # Adam's, decayed along a cosine over the time budget
    clip: float = 5.0  # global-norm clipping
    val_fraction: float = 0.05
    seed: int = 0


# -- text ------------------------------------------------------------------------------------
def read_text_file(path) -> str:
    """The contents of a UTF-8 text file, or a TextError that says what is wrong."""
    import stat

    path = Path(path)
    if not path.exists():
        raise TextError(f"{path}: no such file")
    if path.is_dir():
        raise TextError(f"{path} is a directory; give a text file")
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):  # /dev/zero, a FIFO, a terminal: no end in sight
                raise TextError(
                    f"{path} is not a regular file (a device, pipe or socket); give a text file"
                )
            raw = f.read(MAX_TEXT_BYTES + 1)  # never more than the maximum
    except OSError as e:
        raise TextError(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise TextError(
            f"{path} is larger than {MAX_TEXT_BYTES:,} bytes "
            f"({MAX_TEXT_BYTES / 2**20:g} MiB), the most autocomplete reads; give a "
            f"shorter text (e.g. its beginning: head -c {MAX_TEXT_BYTES} FILE)"
        )
    if not raw.strip():
        raise TextError(f"{path} is empty")
    if b"\x00" in raw[:65536]:
        raise TextError(
            f"{path} looks like a binary file (it contains NUL bytes); give a UTF-8 text"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextError(f"{path} is not UTF-8 text (byte {e.start} cannot be decoded)") from None
    text = text.replace("\r\n", "\n")
    control = sum(1 for c in text[:65536] if ord(c) < 32 and c not in "\n\t\r\f")
    if control > 0.01 * min(len(text), 65536):
        raise TextError(
            f"{path} looks like a binary file ({control} control characters); give a UTF-8 text"
        )
    return text


def check_text(text: str, source: str):
    if len(text) < MIN_CHARS:
        raise TextError(
            f"{source} has {len(text)} characters; autocomplete needs at least "
            f"{MIN_CHARS} to train and to hold some out for validation"
        )


def split(ids, val_fraction):
    n_val = max(int(len(ids) * val_fraction), 200)
    return ids[:-n_val], ids[-n_val:]


def streams(ids, batch):
    """(batch, L) inputs and next-character targets: the text cut into ``batch`` parallel
    contiguous streams, so each row continues where the previous chunk stopped."""
    batch = max(1, min(batch, (len(ids) - 1) // 2))
    L = (len(ids) - 1) // batch
    x = ids[: batch * L].reshape(batch, L)
    y = ids[1 : batch * L + 1].reshape(batch, L)
    return x, y


# -- n-gram baselines -------------------------------------------------------------------------
def ngram_bpc(train, val, order, vocab_size, alpha=None):
    """Validation bits per character of an add-α smoothed unigram (order 1) or bigram
    (order 2) model counted on ``train``.  α defaults to the value that does best on
    the validation text among 1, 0.1, 0.01 (reported with the result)."""
    best = None
    for a in [alpha] if alpha is not None else [1.0, 0.1, 0.01]:
        if order == 1:
            counts = np.bincount(train, minlength=vocab_size) + a
            p = counts / counts.sum()
            bpc = -np.log2(p[val]).mean()
        elif order == 2:
            counts = np.full((vocab_size, vocab_size), a)
            np.add.at(counts, (train[:-1], train[1:]), 1.0)
            p = counts / counts.sum(axis=1, keepdims=True)
            bpc = -np.log2(p[val[:-1], val[1:]]).mean()
        else:
            raise ValueError("order must be 1 or 2")
        if best is None or bpc < best[0]:
            best = (float(bpc), a)
    return best


# -- the model -----------------------------------------------------------------------------------
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def parameter_count(vocab_size, s: Settings) -> int:
    """The number of weights build_model makes, computed without making them."""
    g, H = GATES[s.cell], s.hidden
    rec = sum(g * ((s.embed if i == 0 else H) * H + H * H + H) for i in range(s.layers))
    if s.cell == "gru":
        rec += s.layers * g * H  # reset_after's second bias
    return vocab_size * s.embed + rec + H * vocab_size + vocab_size


def training_bytes(vocab_size, s: Settings, chars=None) -> int:
    """About how much memory training takes: weights, gradients and Adam's two moments
    (float32), and one truncated-BPTT window's activations and their gradients.  With
    ``chars`` (the training text's length) the streams and window are those ``streams``
    cuts from it (never more rows or steps than the text has)."""
    n = parameter_count(vocab_size, s)
    B, k = s.batch, s.bptt
    if chars is not None:
        B = max(1, min(B, (chars - 1) // 2))
        k = max(1, min(k, (chars - 1) // B))
    window = B * k * (s.layers * s.hidden * (GATES[s.cell] + 4) + 3 * vocab_size)
    return 4 * (4 * n + 2 * window)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_size(vocab_size, s: Settings, available=None, chars=None):
    """Refuse, before anything is allocated, a model too large to train here."""
    n = parameter_count(vocab_size, s)
    need = training_bytes(vocab_size, s, chars)
    what = (
        f"a {s.layers}-layer {s.cell.upper()} with {s.hidden:,} units (--hidden), "
        f"--batch {s.batch}, --bptt {s.bptt} on {vocab_size} characters has {n:,} weights"
    )
    if n > MAX_PARAMS:
        raise ValueError(
            f"{what}; autocomplete trains at most {MAX_PARAMS:,}. Lower --hidden or --layers"
        )
    available = available_memory() if available is None else available
    if available is not None and need > 0.8 * available:
        raise ValueError(
            f"{what} and needs about {need / 2**30:.1f} GiB to train; this machine "
            f"has {available / 2**30:.1f} GiB available. Lower --hidden, --layers, "
            f"--batch or --bptt"
        )
    return need


def absurd_bpc(vocab_size) -> float:
    """Bits per character above which a model has diverged, not merely learned little: a
    uniform guess over the vocabulary costs log2(V) bits; this is 4 log2(V) + 8."""
    return 4.0 * math.log2(max(int(vocab_size), 2)) + 8.0


def build_model(vocab_size, s: Settings):
    set_seed(s.seed)
    Cell = CELLS[s.cell]
    # PyTorch's initial weights (embedding N(0, 1); recurrent weights and biases uniform in
    # ±1/√H) rather than Keras's (Glorot-uniform embedding, orthogonal W, forget bias 1): on
    # Shakespeare the small Keras embedding cost about 0.3 bpc after 300 updates, and with
    # PyTorch's start the loss follows PyTorch's own update for update.
    layers: list = [Embedding(vocab_size, s.embed, embeddings_initializer="normal")]
    rec_init: dict[str, object] = dict(
        kernel_initializer="torch_uniform",
        recurrent_initializer="torch_uniform",
        bias_initializer="torch_uniform",
    )
    if s.cell == "lstm":
        rec_init["unit_forget_bias"] = False
    for _ in range(s.layers):
        layers.append(Cell(s.hidden, return_sequences=True, stateful=True, **rec_init))
    layers.append(Dense(vocab_size))  # logits
    model = Sequential(layers, name="autocomplete")
    model.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        metrics=["bpc"],
        optimizer=optim.Adam(s.learning_rate, clip_global_norm=s.clip),
    )
    return model


def reset(model):
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def evaluate_bpc(model, ids, batch=32, chunk=256):
    """Bits per character of the model on ``ids``, reading it as ``batch`` streams."""
    reset(model)
    x, y = streams(ids, batch)
    total, count = 0.0, 0
    for start in range(0, x.shape[1], chunk):
        logits = model.forward(x[:, start : start + chunk])
        z = logits - logits.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        target = y[:, start : start + chunk]
        total -= float(np.take_along_axis(logp, target[..., None], axis=-1).sum())
        count += target.size
    reset(model)
    return total / count / math.log(2.0)


# -- training --------------------------------------------------------------------------------------
class Interrupted(Exception):
    pass


class TrainResult(NamedTuple):
    position: int  # where the next chunk of the streams starts
    seconds: float  # wall-clock seconds trained in all (earlier sessions included)
    bpc: float | None  # the last smoothed training loss, bits per character (None: no update)
    updates: int  # optimizer steps of this session
    chars: int  # characters trained on in this session (streams × steps)


DIVERGED = (
    "training diverged (the loss or the network's values became non-finite); "
    "lower the learning rate (--learning-rate)"
)


def diverged(what):
    return FloatingPointError(
        f"training diverged ({what}); lower the learning rate (--learning-rate)"
    )


def train(
    model,
    train_ids,
    s: Settings,
    minutes,
    position=0,
    elapsed=0.0,
    verbose=True,
    on_checkpoint=None,
    checkpoint_every=60.0,
    stream=None,
    max_updates=None,
    distributed=None,
):
    """Train for ``minutes`` of wall-clock time, or ``max_updates`` updates, whichever ends
    first, from stream position ``position``.  The learning rate decays along a cosine over
    the time budget, or over ``max_updates`` when that is given (then the run does not
    depend on the machine's speed).  Returns a TrainResult (stream position, seconds
    trained, last smoothed loss in bpc, updates, characters).  On Ctrl-C calls
    ``on_checkpoint`` and raises Interrupted.  Raises FloatingPointError when training
    diverges: a non-finite loss or gradient norm, or a loss above ``absurd_bpc`` (4 log2 V
    + 8 bits per character, far above a uniform guess's log2 V).  ``distributed``: a
    rnnkit.distributed.DataParallel; each rank then trains on its share of the streams."""
    if not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"train: minutes must be a finite number > 0; got {minutes!r}")
    if max_updates is not None and (
        isinstance(max_updates, bool)
        or not isinstance(max_updates, (int, np.integer))
        or max_updates < 1
    ):
        raise ValueError(f"train: max_updates must be a positive integer; got {max_updates!r}")
    x, y = streams(train_ids, s.batch)
    B, L = x.shape
    clock = time.perf_counter
    if distributed is not None:  # data-parallel (rnnkit.distributed): this rank's streams, and
        x, y = distributed.shard_streams(model, x, y)  # rank 0's clock on every rank
        clock = distributed.clock
    budget = minutes * 60.0
    start = clock()
    bar = ProgressBar(None, unit="updates", stream=stream) if verbose else None
    smooth = None
    last_ckpt = start
    updates, chars = 0, 0

    def seen_rate():
        dt = clock() - start
        return f"{chars / dt:,.0f} chars/s - ETA: {format_duration(budget - dt)}" if dt > 0 else ""

    if bar:
        bar.extra = seen_rate
    try:
        while clock() - start < budget and (max_updates is None or updates < max_updates):
            if position >= L - 1:
                position = 0  # a new pass over the text
                reset(model)
            xs, ys = x[:, position:], y[:, position:]
            steps = tbptt_steps(model, xs, ys, k1=s.bptt, k2=s.bptt)
            for record, out, _, _ in steps:
                n = out.shape[1]
                position += n
                updates += 1
                chars += B * n
                # cosine decay of the learning rate over the budget (updates, else time), to 5 %
                progress = min(
                    updates / max_updates if max_updates else (clock() - start) / budget, 1.0
                )
                model.optimizer.learning_rate = s.learning_rate * (
                    0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))
                )
                bpc = record["loss"] / n / math.log(2.0)  # the loss sums over n steps
                if not math.isfinite(record["loss"]):
                    raise diverged(f"the loss became {record['loss']} at update {updates}")
                if record.get("skipped") or not math.isfinite(record.get("grad_norm", 0.0)):
                    raise diverged(
                        f"the gradient norm became {record.get('grad_norm')} at update {updates}"
                    )
                if bpc > absurd_bpc(out.shape[-1]):
                    raise diverged(
                        f"{bpc:.4g} bits per character at update {updates}, where a "
                        f"uniform guess costs {math.log2(out.shape[-1]):.2f}"
                    )
                smooth = bpc if smooth is None else 0.98 * smooth + 0.02 * bpc
                if bar:
                    bar.update(
                        updates, {"loss": round(smooth * math.log(2.0), 4), "bpc": round(smooth, 3)}
                    )
                now = clock()
                if on_checkpoint and now - last_ckpt > checkpoint_every:
                    on_checkpoint(position, elapsed + now - start)
                    last_ckpt = now
                if now - start >= budget or (max_updates is not None and updates >= max_updates):
                    steps.close()
                    break
    except NonFiniteError:  # a layer refused non-finite values: the weights blew up
        raise diverged("the network's values became non-finite") from None
    except KeyboardInterrupt:
        if bar:
            bar.finish(updates, {"bpc": round(smooth, 3) if smooth else float("nan")})
        if on_checkpoint:
            on_checkpoint(position, elapsed + clock() - start)
        raise Interrupted() from None
    if bar:
        bar.finish(updates, {"bpc": round(smooth, 3) if smooth else float("nan")})
    return TrainResult(position, elapsed + clock() - start, smooth, updates, chars)


# -- completion --------------------------------------------------------------------------------------
def complete(
    model,
    vocab: CharVocab,
    prompt: str,
    length=60,
    temperature=0.0,
    top_k=0,
    stop_at_newline=True,
    rng=None,
):
    """Continue ``prompt``: greedy (temperature 0), sampled at ``temperature``, or sampled
    from the ``top_k`` most likely characters.  With ``stop_at_newline`` the completion ends
    at the end of a line that has some text in it (after "ROMEO:" the speech on the next
    line is the completion)."""
    rng = rng or np.random.default_rng()
    reset(model)
    ids = vocab.encode(prompt) if prompt else np.array([vocab.index.get("\n", 1)])
    logits = model.forward(ids[None])[0, -1]
    out: list[str] = []
    for _ in range(length):
        nxt = pick(logits, temperature, top_k, rng)
        ch = vocab.chars[nxt]
        if stop_at_newline and ch == "\n" and "".join(out).strip():
            break
        out.append(ch)
        logits = model.forward(np.array([[nxt]]))[0, -1]
    reset(model)
    return "".join(out)


def pick(logits, temperature, top_k, rng):
    logits = np.asarray(logits, dtype=np.float64).copy()
    logits[0] = -np.inf  # never emit "unknown"
    if temperature <= 0 and not top_k:
        return int(np.argmax(logits))
    t = temperature if temperature > 0 else 1.0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        z = (logits - np.max(logits)) / t  # ≤ 0 first: no inf - inf at tiny temperatures
    z[np.isnan(z)] = -np.inf
    if top_k:
        k = min(int(top_k), int(np.isfinite(z).sum()))  # at most the characters there are
        cut = np.sort(z)[-k]
        z[z < cut] = -np.inf
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    return int(rng.choice(len(p), p=p))


# -- model files -------------------------------------------------------------------------------------
def default_model_path(corpus_name: str, text: str, s: Settings) -> Path:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return (
        cache_dir()
        / "models"
        / f"autocomplete-{corpus_name}-{digest}-{s.cell}{s.hidden}x{s.layers}.rnnkit"
    )


def save(
    model, path, vocab, s: Settings, position, seconds, val_bpc=None, history=None, complete=True
):
    """Write the model with everything needed to use it or to train it further; a
    checkpoint of an unfinished (interrupted) training has ``complete=False``."""
    meta = {
        "app": "autocomplete",
        "app_version": APP_VERSION,
        "vocab": vocab.to_json(),
        "settings": asdict(s),
        "position": int(position),
        "trained_seconds": float(seconds),
        "val_bpc": val_bpc,
        "history": history or [],
        "complete": complete,
    }
    model.save(path, metadata=meta)


def load(path):
    """(model, vocab, settings, metadata) from an autocomplete model file."""
    model = load_model(path)
    meta = getattr(model, "metadata", {}) or {}
    if meta.get("app") != "autocomplete":
        raise ModelFileError(f"{path} is an rnnkit model, but not an autocomplete model")
    if meta.get("app_version", 0) > APP_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer rnnkit's autocomplete "
            f"(version {meta.get('app_version')}); upgrade rnnkit"
        )
    try:
        vocab = CharVocab.from_json(meta["vocab"])
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(meta["settings"]) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        settings = Settings(**meta["settings"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(
            f"{path}: its autocomplete metadata is damaged ({type(e).__name__}: {e})"
        ) from None
    out_dim = getattr(model.layers[-1], "units", None) if getattr(model, "layers", None) else None
    if out_dim != len(vocab):
        raise ModelFileError(
            f"{path}: the model predicts {out_dim} characters but its vocabulary "
            f"has {len(vocab)}; the file is damaged"
        )
    return model, vocab, settings, meta


__all__ = [
    "Settings",
    "TextError",
    "read_text_file",
    "check_text",
    "split",
    "streams",
    "ngram_bpc",
    "build_model",
    "evaluate_bpc",
    "train",
    "complete",
    "default_model_path",
    "save",
    "load",
    "Interrupted",
]
