"""Character-level autocomplete: the lecture's running example, as a product.

An LSTM language model reads text one character at a time and predicts the next,

    h_t = LSTM(E[x_t], h_{t-1})        p(x_{t+1} | x_≤t) = softmax(h_t V + c)

trained with truncated BPTT on B parallel streams of the training text (char-rnn's
setup: the state is carried from chunk to chunk, gradients flow back k steps), with
AdamW (Adam plus decoupled weight decay, θ ← (1 − ηλ) θ each update).
Quality is measured in bits per character (bpc) on a held-out tail of the text, with
the weights fixed and while the model adapts to it as it reads it (``adapt_steps``:
each segment is predicted, then learned from).  The budget and the text's size pick
the model's size and dropout (``fit_to_budget``).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import optim
from ..data.fetch import cache_dir
from ..data.text import CharVocab
from ..io.saving import ModelFileError, load_model
from ..layers import GRU, LSTM, Dense, Dropout, Embedding, SimpleRNN
from ..models import Sequential
from ..progress import ProgressBar, format_duration
from ..seeding import set_seed
from ..training import tbptt_steps
from ..validation import NonFiniteError
from .ngram import KneserNey, NgramMemory, max_order, tune_mask

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
    hidden: int = 256  # the command and Autocompleter.train: hidden_for decides when not given
    layers: int = 1
    embed: int = 32
    batch: int = 64  # parallel streams (64 beat 16, 32 and 128 in 2-minute runs)
    bptt: int = 32  # truncation length k (k1 = k2)
    learning_rate: float = 1e-2  # Adam's, decayed along a cosine over the time budget
    clip: float = 5.0  # global-norm clipping
    val_fraction: float = 0.05
    seed: int = 0
    dropout: float = 0.0  # each recurrent layer's input (variational), its output (per character)
    ngram: int = 9  # the order of the n-gram memory mixed in after training (0: none)
    max_passes: float = 60.0  # the most passes over the training text a run makes (0: no limit)
    weight_decay: float = 0.1  # decoupled (AdamW's): θ ← (1 - η λ) θ each update, η as scheduled


# The budget decides the regularization: a budget that reads the training text many times
# over overfits it (measured in docs/autocomplete.md, "Regularization for the budget").
NOMINAL_CHARS_PER_SECOND = (
    50_000  # LSTM(256), 2 cores: 36 k (32 streams, AMD EPYC), 90 k (64, Xeon)
)
DROPOUT_BY_PASSES = ((3.0, 0.0), (10.0, 0.1), (math.inf, 0.2))  # (passes up to, dropout)


def expected_passes(train_chars: int, minutes: float, max_updates=None, s=None) -> float:
    """How many times the budget reads a training text of ``train_chars`` characters:
    ``max_updates`` updates of ``s.batch`` × ``s.bptt`` characters when that is given,
    else ``minutes`` at NOMINAL_CHARS_PER_SECOND; at most ``s.max_passes`` (where
    ``train`` stops)."""
    s = s or Settings()
    if max_updates is not None:
        chars = float(max_updates) * s.batch * s.bptt
    else:
        chars = NOMINAL_CHARS_PER_SECOND * 60.0 * minutes
    passes = chars / max(int(train_chars), 1)
    return min(passes, s.max_passes) if s.max_passes else passes


def dropout_for(train_chars: int, minutes: float, max_updates=None, s=None) -> float:
    """The dropout the budget asks for: none while it reads the text at most 3 times,
    0.1 up to 10 times, 0.2 beyond (DROPOUT_BY_PASSES)."""
    passes = expected_passes(train_chars, minutes, max_updates, s)
    return next(d for limit, d in DROPOUT_BY_PASSES if passes <= limit)


# The budget and the text's size decide the model's size too (docs/autocomplete.md, "The
# size for the budget"): on Shakespeare an LSTM(256) levels off at about 2.03 bits per
# character held out after 3 minutes, while an LSTM(512) with dropout 0.2, 3.5 times
# slower, is behind at 3 minutes (2.14 after 2) and ahead from 10 (2.022; 1.985 at 20).
# On a small text a budget that would read it 2 × max_passes times or more ends an
# LSTM(256) at its pass limit in half the budget; an LSTM(512) with dropout 0.3 spends
# the rest better (the Python source, 30 minutes: 1.860 against 1.911).
LARGE_HIDDEN, LARGE_DROPOUT = 512, 0.2
LARGE_FROM_MINUTES = 10.0  # of budget, at NOMINAL_CHARS_PER_SECOND
LARGE_FROM_CHARS = 2_000_000  # training characters
LARGE_FROM_PASSES = 2.0  # × s.max_passes: the budget would read a smaller text this often
OUTGROWN_DROPOUT = 0.3  # the dropout of an LSTM(512) chosen for that reason


def _outgrown(train_chars: int, minutes: float, max_updates=None, s=None) -> bool:
    """Whether the budget would read the text at least LARGE_FROM_PASSES × s.max_passes
    times (uncapped, at NOMINAL_CHARS_PER_SECOND): an LSTM(256) would stop at its pass
    limit in half the budget or sooner."""
    s = s or Settings()
    if not s.max_passes:
        return False
    uncapped = expected_passes(train_chars, minutes, max_updates, replace(s, max_passes=0))
    return uncapped >= LARGE_FROM_PASSES * s.max_passes


def hidden_for(train_chars: int, minutes: float, max_updates=None, s=None) -> int:
    """The units the budget asks for: LARGE_HIDDEN (512) when the budget reads at least
    as much as LARGE_FROM_MINUTES (10 minutes) do at NOMINAL_CHARS_PER_SECOND and either
    the text has at least LARGE_FROM_CHARS (2 M) training characters or the budget would
    read it LARGE_FROM_PASSES × s.max_passes times (``_outgrown``); else 256."""
    chars = expected_passes(train_chars, minutes, max_updates, s) * max(int(train_chars), 1)
    long_budget = chars >= NOMINAL_CHARS_PER_SECOND * 60.0 * LARGE_FROM_MINUTES
    large = train_chars >= LARGE_FROM_CHARS or _outgrown(train_chars, minutes, max_updates, s)
    return LARGE_HIDDEN if long_budget and large else 256


def fit_to_budget(
    s: Settings, train_chars: int, minutes: float, max_updates=None, size=True, dropout=True
) -> Settings:
    """Set what the budget and the text decide on ``s`` (in place; returned): the units
    (``hidden_for``) when ``size``, the dropout (``dropout_for``, and at least
    LARGE_DROPOUT for a model of LARGE_HIDDEN units or more, OUTGROWN_DROPOUT when the
    budget outgrows the text) when ``dropout``."""
    if size:
        s.hidden = hidden_for(train_chars, minutes, max_updates, s)
    if dropout:
        s.dropout = dropout_for(train_chars, minutes, max_updates, s)
        if s.hidden >= LARGE_HIDDEN:
            outgrown = _outgrown(train_chars, minutes, max_updates, s)
            s.dropout = max(s.dropout, OUTGROWN_DROPOUT if outgrown else LARGE_DROPOUT)
    return s


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


def kneser_ney_bpc(train, val, order, vocab_size) -> float:
    """Validation bits per character of the interpolated Kneser-Ney character n-gram model
    of ``kneser_ney_probs``."""
    return float(-np.log2(kneser_ney_probs(train, val, order, vocab_size)).mean())


def kneser_ney_probs(train, val, order, vocab_size) -> np.ndarray:
    """(len(val),) the probability of each validation character under an interpolated
    Kneser-Ney character n-gram model of ``order`` counted on ``train``
    (``ngram.KneserNey``); each is predicted from the ``order - 1`` characters before it
    (the end of ``train`` before the first ones)."""
    return KneserNey(train, order, vocab_size).probs(train, val)


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
        layers.append(
            Cell(s.hidden, return_sequences=True, stateful=True, dropout=s.dropout, **rec_init)
        )
    if s.dropout:
        layers.append(Dropout(s.dropout))
    layers.append(Dense(vocab_size))  # logits
    model = Sequential(layers, name="autocomplete")
    model.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        metrics=["bpc"],
        optimizer=(
            optim.AdamW(s.learning_rate, weight_decay=s.weight_decay, clip_global_norm=s.clip)
            if s.weight_decay
            else optim.Adam(s.learning_rate, clip_global_norm=s.clip)
        ),
    )
    return model


def reset(model):
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def char_probs(model, ids, batch=32, chunk=256) -> np.ndarray:
    """(n,) the model's probability of each of ids[1 : n + 1], each predicted from the
    characters before it, reading ``ids`` as ``batch`` streams (``streams``: n is
    ``batch`` × ⌊(len(ids) − 1) / batch⌋; each stream starts from an empty state)."""
    reset(model)
    x, y = streams(ids, batch)
    logp = np.empty(x.shape)  # (batch, L), in the text's order once flattened
    for start in range(0, x.shape[1], chunk):
        target = y[:, start : start + chunk]
        lp = log_softmax(model.forward(x[:, start : start + chunk]))  # (batch, n, V)
        logp[:, start : start + chunk] = np.take_along_axis(lp, target[..., None], -1)[..., 0]
    reset(model)
    return np.exp(logp.reshape(-1))


def bpc(probs) -> float:
    """Bits per character of a text whose characters had probabilities ``probs``."""
    return float(-np.log2(probs).mean())


def evaluate_bpc(model, ids, batch=32, chunk=256):
    """Bits per character of the model on ``ids``, reading it as ``batch`` streams."""
    return bpc(char_probs(model, ids, batch, chunk))


def memory_bpc(
    model, memory: NgramMemory, before, ids, batch=32, p_net=None, p_ngram=None
) -> float:
    """Bits per character on ``ids`` of the model mixed with its n-gram ``memory``
    (``NgramMemory``): p = λ p_net + (1 − λ) p_KN, the n-gram model reading on from the
    end of ``before`` (the text it counted).  ``p_net``: the network's probabilities of
    ids[1:] (or of their first ones) where they are already computed (``char_probs``, or
    ``adaptive_char_probs`` for the network adapting); ``p_ngram``: likewise the n-gram
    model's (``memory.model.probs(before, ids)[1:]``)."""
    p_net = char_probs(model, ids, batch) if p_net is None else p_net
    p_ngram = memory.model.probs(before, ids)[1:] if p_ngram is None else p_ngram
    return bpc(memory.mix(p_net, p_ngram[: len(p_net)]))


def held_out_figures(model, memory, train_ids, val_ids, p_net=None, stream=None) -> dict:
    """The held-out figures beside the network's own (``HELD_OUT_FIGURES``), in bits per
    character: the network adapting (``adaptive_bpc``; ``stream``: its progress bar) and,
    with an n-gram ``memory`` of ``train_ids``, the network mixed with it (``memory_bpc``),
    fixed and adapting.  ``p_net``: the network's ``char_probs`` of ``val_ids`` where
    already computed."""
    p_adapt = adaptive_char_probs(model, val_ids, stream=stream)
    figures = {"val_bpc_adaptive": bpc(p_adapt)}
    if memory is not None:
        p_ngram = memory.model.probs(train_ids, val_ids)[1:]  # once, for both mixtures
        for key, p in (("val_bpc_memory", p_net), ("val_bpc_adaptive_memory", p_adapt)):
            figures[key] = memory_bpc(model, memory, train_ids, val_ids, p_net=p, p_ngram=p_ngram)
    return figures


def network_ids(train_ids, s: Settings):
    """The part of the training text the network learns from: all of it when ``s.ngram``
    is 0, else all but the blocks that choose the n-gram memory's λ (``tune_mask``), which
    must be new to the network (``NgramMemory.fit``)."""
    return train_ids[~tune_mask(len(train_ids))] if s.ngram else train_ids


def build_memory(model, train_ids, s: Settings, vocab_size) -> NgramMemory | None:
    """The n-gram memory of the training text (``NgramMemory.fit``: λ chosen on blocks of
    it that the network was not trained on: ``network_ids``), of order ``s.ngram`` (at
    most what int64 keys hold for this vocabulary); None when ``s.ngram`` is 0."""
    if not s.ngram:
        return None
    order = min(int(s.ngram), max_order(vocab_size))
    return NgramMemory.fit(train_ids, order, vocab_size, lambda tail: char_probs(model, tail))


def memory_from(meta: dict) -> NgramMemory | None:
    """The n-gram memory a model file keeps (None: a file without one)."""
    d = meta.get("ngram_memory")
    if not d:
        return None
    try:
        return NgramMemory.from_json(d)
    except (KeyError, TypeError, ValueError, zlib.error) as e:
        raise ModelFileError(f"the model file's n-gram memory is damaged ({e})") from None


# -- adapting to the text being read (dynamic evaluation) -------------------------------------------
ADAPT_LEARNING_RATE = 3e-4  # Adam's; Shakespeare's held-out plays: 1e-4: 1.865, 3e-4: 1.822
ADAPT_SEGMENT = 32  # characters scored, then learned from, per update


def adapt_steps(model, ids, learning_rate=ADAPT_LEARNING_RATE, segment=ADAPT_SEGMENT):
    """Read ``ids`` as one stream, in order, and go on learning from it (dynamic
    evaluation, Krause et al. 2018): each ``segment`` of characters is first predicted
    with the weights learned so far, then learned from by one step of a fresh Adam
    (clipped at norm 5) through the segment.  No character is learned from before it
    is predicted, so the bits it yields are held-out figures of a model that adapts to
    what it reads, as an editor's autocomplete adapts to the document.  Dropout is off.
    Yields (end, p) per segment: ``end`` the position after the segment, ``p`` (n,) the
    probability the model gave each of its characters before learning from them.  The
    weights change; ``adaptive_char_probs`` restores them."""
    _check_count(segment, "segment")
    if not (_is_number(learning_rate) and math.isfinite(learning_rate) and learning_rate >= 0):
        raise ValueError(f"learning_rate must be a finite number >= 0; got {learning_rate!r}")
    ids = np.asarray(ids)
    opt = optim.Adam(float(learning_rate), clip_global_norm=5.0)
    reset(model)
    with _dropout_off(model):
        for start in range(0, len(ids) - 1, segment):
            y = ids[start + 1 : start + segment + 1][None]  # (1, n)
            x = ids[start : start + y.shape[1]][None]
            logits = model.forward(x, training=True)  # (1, n, V); the state carries on
            value, dy = model.loss(y, logits)  # summed over the n steps: scored first,
            if not math.isfinite(value):
                raise diverged(f"adapting: the loss became {value} at character {start}")
            logp = np.take_along_axis(log_softmax(logits[0]), y[0][:, None], -1)[:, 0]  # (n,)
            model.backward(dy)  # then learned from
            if learning_rate:
                opt.apply(model.trainable_params(), model.trainable_grads())
            yield start + x.shape[1], np.exp(logp)


@contextmanager
def keeping_weights(model):
    """The model's weights as they were before the block, whatever it does to them (and an
    empty state after it)."""
    saved = [w.copy() for w in model.get_weights()]
    try:
        yield model
    finally:
        model.set_weights(saved)
        reset(model)


@contextmanager
def _dropout_off(model):
    """The model's dropout rates set to 0 for the block (restored after it)."""
    rates = [
        (layer, name, getattr(layer, name))
        for layer in model.walk()
        for name in ("dropout", "recurrent_dropout", "rate")
        if isinstance(getattr(layer, name, None), float)
    ]
    try:
        for layer, name, _ in rates:
            setattr(layer, name, 0.0)
        yield
    finally:
        for layer, name, rate in rates:
            setattr(layer, name, rate)


def adaptive_char_probs(
    model, ids, learning_rate=ADAPT_LEARNING_RATE, segment=ADAPT_SEGMENT, stream=None
) -> np.ndarray:
    """(len(ids) − 1,) the probability of each of ids[1:] while the model adapts to ``ids``
    (``adapt_steps``: each predicted before it is learned from); the weights are restored
    afterwards.  ``stream``: where a progress bar is drawn (None: none)."""
    if len(ids) < 2:
        raise ValueError(f"ids must hold at least 2 characters; got {len(ids)}")
    n = len(ids) - 1  # characters predicted
    bar = ProgressBar(n, unit="chars", stream=stream) if stream else None
    probs, bits = [], 0.0
    with keeping_weights(model):
        for end, p in adapt_steps(model, ids, learning_rate, segment):
            probs.append(p)
            if bar:
                bits -= float(np.log2(p).sum())
                bar.update(end, {"bpc": round(bits / end, 3)})
    if bar:
        bar.finish(n, {"bpc": round(bits / n, 3)})
    return np.concatenate(probs)


def adaptive_bpc(
    model, ids, learning_rate=ADAPT_LEARNING_RATE, segment=ADAPT_SEGMENT, stream=None
) -> float:
    """Bits per character on ``ids`` while the model adapts to it (``adaptive_char_probs``)."""
    return bpc(adaptive_char_probs(model, ids, learning_rate, segment, stream))


# -- training --------------------------------------------------------------------------------------
class Interrupted(Exception):
    pass


class TrainResult(NamedTuple):
    position: int  # where the next chunk of the streams starts
    seconds: float  # wall-clock seconds trained in all (earlier sessions included)
    bpc: float | None  # the last smoothed training loss, bits per character (None: no update)
    updates: int  # optimizer steps of this session
    chars: int  # characters trained on in this session (streams × steps)
    passes: float  # passes over the text in this session (train stops at s.max_passes)


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
    """Train for ``minutes`` of wall-clock time, ``max_updates`` updates or ``s.max_passes``
    passes over ``train_ids``, whichever ends first, from stream position ``position``.
    The learning rate decays along a cosine over the time budget, or over ``max_updates``
    when that is given, or over the passes when they end the run sooner (in both cases the
    run does not depend on the machine's speed).  Returns a TrainResult (stream position,
    seconds trained, last smoothed loss in bpc, updates, characters, passes).  On Ctrl-C calls
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
    # a small text read more often than s.max_passes times is overfitted: more minutes make
    # the held-out figure worse (docs/autocomplete.md, "At most 60 passes over the text")
    most_chars = s.max_passes * B * L if s.max_passes else math.inf
    start = clock()
    bar = ProgressBar(None, unit="updates", stream=stream) if verbose else None
    smooth = None
    last_ckpt = start
    updates, chars = 0, 0

    def seen_rate():
        dt = clock() - start
        if dt <= 0:
            return ""
        left = budget - dt
        if chars:  # the passes may end the run first
            left = min(left, (most_chars - chars) * dt / chars)
        return f"{chars / dt:,.0f} chars/s - ETA: {format_duration(left)}"

    if bar:
        bar.extra = seen_rate
    try:
        while (
            clock() - start < budget
            and (max_updates is None or updates < max_updates)
            and chars < most_chars
        ):
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
                # cosine decay of the learning rate over the budget (updates, else time, or
                # the passes when they end the run sooner), to 5 %
                progress = min(
                    max(
                        updates / max_updates if max_updates else (clock() - start) / budget,
                        chars / most_chars,
                    ),
                    1.0,
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
                if (
                    now - start >= budget
                    or (max_updates is not None and updates >= max_updates)
                    or chars >= most_chars
                ):
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
    return TrainResult(position, elapsed + clock() - start, smooth, updates, chars, chars / (B * L))


# -- completion --------------------------------------------------------------------------------------
def check_sampling(temperature=0.0, top_k=0, top_p=1.0, names=None):
    """Refuse sampling options outside their ranges: temperature a finite number ≥ 0,
    top_k an integer ≥ 0 (0: all characters), top_p a number in (0, 1].  ``names`` maps
    each to the name the message uses (the CLI's --option names)."""
    names = {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p", **(names or {})}
    if not (_is_number(temperature) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"{names['temperature']} must be a finite number ≥ 0; got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ValueError(
            f"{names['top_k']} must be an integer ≥ 0 (0: all characters); got {top_k!r}"
        )
    if not (_is_number(top_p) and 0.0 < top_p <= 1.0):
        raise ValueError(f"{names['top_p']} must be a number in (0, 1]; got {top_p!r}")


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _prompt_ids(vocab: CharVocab, prompt: str) -> np.ndarray:
    """The prompt's ids (T,); an empty prompt reads as the start of a line (one newline)."""
    return vocab.encode(prompt) if prompt else np.array([vocab.index.get("\n", 1)])


def complete(
    model,
    vocab: CharVocab,
    prompt: str,
    length=60,
    temperature=0.0,
    top_k=0,
    stop_at_newline=True,
    rng=None,
    top_p=1.0,
    memory: NgramMemory | None = None,
):
    """Continue ``prompt``: greedy (temperature 0), sampled at ``temperature``, sampled
    from the ``top_k`` most likely characters, or from the nucleus of the ``top_p`` most
    likely probability mass (see ``pick``).  With ``stop_at_newline`` the completion ends
    at the end of a line that has some text in it (after "ROMEO:" the speech on the next
    line is the completion).  ``memory``: the n-gram memory mixed in (``next_logp``)."""
    check_sampling(temperature, top_k, top_p)
    rng = rng or np.random.default_rng()
    reset(model)
    history = list(_prompt_ids(vocab, prompt))
    logp = next_logp(model, np.array([history]), memory, [history])[0]
    out: list[str] = []
    for _ in range(length):
        nxt = pick(logp, temperature, top_k, rng, top_p=top_p)
        ch = vocab.chars[nxt]
        if stop_at_newline and ch == "\n" and "".join(out).strip():
            break
        out.append(ch)
        history.append(nxt)
        logp = next_logp(model, np.array([[nxt]]), memory, [history])[0]
    reset(model)
    return "".join(out)


def next_logp(model, ids, memory: NgramMemory | None = None, histories=None) -> np.ndarray:
    """(n, V) log-probabilities of the character after each row of ``ids`` (n, T), the
    model's carried state read on by the T steps; with an n-gram ``memory``, of its
    mixture with the network, each row's n-gram context the end of ``histories[i]`` (all
    the ids that row has read, the earlier calls' included)."""
    logp = log_softmax(model.forward(ids)[:, -1])
    if memory is None:
        return logp
    return memory.mix_logp(logp, memory.contexts(histories))


def pick(logits, temperature, top_k, rng, top_p=1.0):
    """The id of the next character, never 0 ("unknown").  Greedy (argmax) at temperature
    0 without top_k or top_p; otherwise drawn from p = softmax(logits / T) (T = 1 when the
    temperature is 0) restricted to the ``top_k`` most likely characters (0: all), then to
    the nucleus: the smallest set of most likely characters whose probabilities sum to at
    least ``top_p`` (1: all), renormalised.  A tiny top_p keeps one character (greedy);
    top_p = 1 draws exactly as plain sampling does."""
    logits = np.asarray(logits, dtype=np.float64).copy()
    logits[0] = -np.inf  # never emit "unknown"
    if temperature <= 0 and not top_k and top_p >= 1.0:
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
    if top_p < 1.0:
        p = _nucleus(p, top_p)
    return int(rng.choice(len(p), p=p))


def _nucleus(p, top_p):
    """p (V,) restricted to its smallest most-likely set with Σ p ≥ top_p, renormalised
    (ties in the order of the ids, so the set is deterministic)."""
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(p[order])
    n = int(np.searchsorted(cum, top_p * cum[-1]) + 1)  # the first prefix reaching top_p
    keep = np.zeros_like(p)
    keep[order[:n]] = p[order[:n]]
    return keep / keep.sum()


def log_softmax(logits) -> np.ndarray:
    """log p = z - log Σ exp z over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def next_chars(
    model, vocab: CharVocab, prompt: str, k=10, memory: NgramMemory | None = None
) -> list[tuple[str, float]]:
    """The ``k`` most likely next characters after ``prompt`` with their probabilities,
    most likely first (the "unknown" character left out; ties in vocabulary order);
    ``memory``: the n-gram memory mixed in."""
    _check_count(k, "k")
    reset(model)
    ids = _prompt_ids(vocab, prompt)
    logp = next_logp(model, ids[None], memory, [ids])[0]  # (V,)
    reset(model)
    order = [int(i) for i in np.argsort(-logp, kind="stable") if i != 0][:k]
    return [(vocab.chars[i], float(np.exp(logp[i]))) for i in order]


def _check_count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}; got {value!r}")


# -- suggestions: beam search ------------------------------------------------------------------------
PHRASE_END = ",;:.!?\n"  # the characters that end a phrase
UNTIL = ("word", "phrase")
MAX_CHARS = {"word": 20, "phrase": 80}  # suggest's default max_chars


class Suggestion(NamedTuple):
    """A completion of a prompt: ``text`` (what follows the prompt, the terminating
    character left out), its ``probability`` (that the prompt goes on with text and then
    ends it: the product of the model's probabilities of text's characters, times the
    summed probability of the characters that may end it), and its most probable
    terminating character ``end`` (a space, punctuation or a newline)."""

    text: str
    probability: float
    end: str = ""


def quoted(text: str) -> str:
    """A completion between double quotes, its newlines and tabs visible."""
    return '"' + text.replace("\n", "\\n").replace("\t", "\\t") + '"'


def percent_text(p: float) -> str:
    """A probability as the suggestions show it: 21.9 %, 0.04 %."""
    return f"{100 * p:.1f} %" if p >= 0.001 else f"{100 * p:.2g} %"


def word_typed(prompt: str) -> str:
    """The letters ``prompt`` ends with: the part of the current word already typed (what
    a word suggestion completes; "" after a space or punctuation)."""
    start = len(prompt)
    while start and prompt[start - 1].isalpha():
        start -= 1
    return prompt[start:]


def accepted_text(s: Suggestion, until: str) -> str:
    """What accepting suggestion ``s`` (found with ``until``) adds to the prompt: its text,
    then the character that ends it where that closes it (a word's space, a phrase's
    punctuation); a word ended by "'" stays open, so that "'s" can follow."""
    closes = s.end == " " or (until == "phrase" and s.end != "\n")
    return s.text + (s.end if closes else "")


def _ends(vocab: CharVocab, until: str) -> np.ndarray:
    """(V,) bool: the characters that end a completion once it may end (``_search``): for
    "word" any character that is not a letter, for "phrase" , ; : . ! ? and newline."""
    if until == "word":
        return np.array([not c.isalpha() for c in vocab.chars])
    return np.array([c in PHRASE_END for c in vocab.chars])


def _gather_states(model, rows) -> bool:
    """Reorder the carried states of the model's stateful layers: row i of each becomes
    its row ``rows[i]`` (one row per beam).  False when a layer keeps no ``states`` list
    that can be indexed (then the caller recomputes from the text)."""
    layers = [l for l in model.layers if getattr(l, "stateful", False)]
    if not all(isinstance(getattr(l, "states", None), list) for l in layers):
        return False
    for layer in layers:
        layer.states = [s[rows] for s in layer.states]  # (beams, size) each
    return True


def _beam_logp(model, vocab, prompt_ids, texts, parents, last_ids, memory=None) -> np.ndarray:
    """(n, V) log-probabilities of the next character of each of n hypotheses: the
    carried states gathered by ``parents`` and one step on ``last_ids`` (n,), or, for a
    model whose states cannot be gathered, the whole prompt + text run again."""
    if _gather_states(model, np.asarray(parents)):
        read = [np.concatenate([prompt_ids, vocab.encode(t)]) for t in texts] if memory else None
        return next_logp(model, np.asarray(last_ids)[:, None], memory, read)
    reset(model)
    batch = np.stack([np.concatenate([prompt_ids, vocab.encode(t)]) for t in texts])  # (n, T)
    return next_logp(model, batch, memory, list(batch))


def suggest(
    model,
    vocab: CharVocab,
    prompt: str,
    k=3,
    until="word",
    beam=8,
    max_chars=None,
    memory: NgramMemory | None = None,
) -> list[Suggestion]:
    """The ``k`` most probable completions of ``prompt`` by beam search over characters,
    most probable first, each a Suggestion(text, probability, end).

    With until="word" a completion ends at the first character that is not a letter:
    when the prompt ends inside a word (with a letter), it is the rest of that word (the
    empty completion "" is the word as typed, ended there, as an editor offers what was
    typed beside the longer words); otherwise the next whole word (leading spaces and
    punctuation belong to the completion).  With until="phrase" it ends at , ; : . ! ?
    or a newline once it has begun a word of its own (a letter after a character that is
    neither a letter nor ' or -): the rest of the current word alone is not a phrase, so
    "To be, or not to be" is not completed by "d" (then ","), but may be by ", that is
    the question" (then ":").  A completion never holds a newline (it may end with
    one).  Its probability is Π_t p(c_t | prompt, c_<t) over its characters times
    Σ_e p(e | prompt, text) over the characters e that end it; the "unknown" character is
    never emitted.

    The prompt is read once; then each step runs the ``beam`` best unfinished hypotheses
    as one (beam, 1) batch, each with its own row of the carried LSTM/GRU state.  Finished
    hypotheses go to a separate pool (one per text, its endings summed); the search
    stops when no unfinished hypothesis is more probable than the pool's k-th, or when
    the completions reach ``max_chars`` characters (default: 20 for a word, 80 for a
    phrase; fewer than k suggestions then when fewer ended).  Deterministic: ties go to
    the earlier hypothesis and the lower character id.  ``memory``: the n-gram memory
    mixed in (``next_logp``)."""
    _check_count(k, "k")
    _check_count(beam, "beam")
    if until not in UNTIL:
        raise ValueError(f'until must be "word" or "phrase"; got {until!r}')
    max_chars = MAX_CHARS[until] if max_chars is None else max_chars
    _check_count(max_chars, "max_chars")
    prompt_ids = _prompt_ids(vocab, prompt)
    reset(model)
    try:
        logp = next_logp(model, prompt_ids[None], memory, [prompt_ids])  # (1, V)
        return _search(model, vocab, prompt_ids, logp, k, until, beam, max_chars, memory)
    finally:
        reset(model)


def _search(
    model, vocab, prompt_ids, logp, k, until, beam, max_chars, memory=None
) -> list[Suggestion]:
    """suggest's beam search, from the model's carried state after the prompt (one row)
    and ``logp`` (1, V), the log-probabilities of the character after it."""
    ends = _ends(vocab, until)  # (V,)
    letters = np.array([c.isalpha() for c in vocab.chars])  # (V,)
    joins = np.array([c in "'-" for c in vocab.chars])  # (V,): "king's", "well-met"
    newline = np.array([c == "\n" for c in vocab.chars])[None, :]  # (1, V)
    texts, scores = [""], np.zeros(1)
    # per hypothesis (n,): whether it ends with a letter; whether it ends inside a word (a
    # letter, or ' or - after one: a letter next goes on that word); whether it may end at
    # its next character (a word at once when the prompt ends inside one)
    at_letter = np.array([len(prompt_ids) > 0 and bool(letters[prompt_ids[-1]])])
    in_word = at_letter
    can_end = at_letter & (until == "word")
    pool: dict[str, tuple[float, str]] = {}  # text -> (log-probability, end)
    for step in range(max_chars + 1):
        cand = scores[:, None] + logp  # (n, V): log p of each one-character extension
        cand[:, 0] = -np.inf  # never "unknown"
        done = can_end[:, None] & ends[None, :]  # (n, V): extensions that finish
        _add_finished(pool, texts, cand, done, vocab)
        if step == max_chars:
            break
        live = np.where(done | newline, -np.inf, cand).ravel()  # (n V,): a line's end ends it
        order = np.argsort(-live, kind="stable")[:beam]
        order = order[live[order] > _kth(pool, k)]  # the others can never reach the top k
        if not len(order):
            break
        parents, chars = np.divmod(order, len(vocab))
        texts = [texts[b] + vocab.chars[c] for b, c in zip(parents, chars)]
        # a word completion may end once it holds a letter, a phrase once it began a word
        ready = letters[chars] & (until == "word" or ~in_word[parents])
        in_word = letters[chars] | (joins[chars] & at_letter[parents])
        scores, can_end, at_letter = live[order], can_end[parents] | ready, letters[chars]
        logp = _beam_logp(model, vocab, prompt_ids, texts, parents, chars, memory)  # (n, V)
    best = sorted(pool.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
    return [Suggestion(text, float(np.exp(score)), end) for text, (score, end) in best]


def _add_finished(pool, texts, cand, done, vocab):
    """Put the hypotheses that can finish (rows with a char where ``done``) into ``pool``:
    each text with the log of its probability summed over the characters that end it
    (the probability that the completion is that text, however it ends: "summer " and
    "summer," are one word) and its most probable ending (the lowest id on a tie)."""
    ok = done & np.isfinite(cand)  # (n, V)
    for b in np.flatnonzero(ok.any(axis=1)):
        ends = np.flatnonzero(ok[b])
        score, text = float(np.logaddexp.reduce(cand[b, ends])), texts[b]
        if text not in pool or score > pool[text][0]:
            pool[text] = (score, vocab.chars[ends[np.argmax(cand[b, ends])]])


def _kth(pool, k) -> float:
    """The k-th best log-probability in the pool (-inf while it holds fewer than k)."""
    if len(pool) < k:
        return -np.inf
    return sorted((s for s, _ in pool.values()), reverse=True)[k - 1]


# -- top-k next-word accuracy --------------------------------------------------------------------------
class WordAccuracy(NamedTuple):
    fraction: float  # of the boundaries whose next word is among the top k (nan: none)
    boundaries: int  # word boundaries asked


def word_boundaries(text: str) -> list[int]:
    """Positions i where a word starts after a space that follows a word: text[i-2] is a
    letter, text[i-1] a space, text[i] a letter."""
    return [
        i
        for i in range(2, len(text))
        if text[i - 1] == " " and text[i - 2].isalpha() and text[i].isalpha()
    ]


def next_word(text: str, i: int) -> str:
    """The word starting at ``i``: its letters up to the next non-letter."""
    j = i
    while j < len(text) and text[j].isalpha():
        j += 1
    return text[i:j]


def _suggest_many(model, vocab, prompts, k, beam, until="word", chunk=64, memory=None) -> list:
    """suggest(prompt) for each of ``prompts``, in order; the prompts of equal length are
    read together, ``chunk`` at a time as one (chunk, T) batch (a batch of one reads
    a long prompt several times slower per character), and each beam search then starts
    from its row of the carried states."""
    out: list = [None] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for j, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(j)
    for group in by_length.values():
        for start in range(0, len(group), chunk):
            rows = group[start : start + chunk]
            ids = np.stack([_prompt_ids(vocab, prompts[j]) for j in rows])  # (n, T)
            reset(model)
            try:
                logp = next_logp(model, ids, memory, list(ids))  # (n, V)
                layers = [l for l in model.layers if getattr(l, "stateful", False)]
                carried = [list(getattr(l, "states", None) or []) for l in layers]
                for r, j in enumerate(rows):
                    if not _gather_states(model, np.array([r])):  # no states to gather:
                        out[j] = suggest(  # one by one
                            model, vocab, prompts[j], k, until, beam, memory=memory
                        )
                        continue
                    out[j] = _search(
                        model,
                        vocab,
                        ids[r],
                        logp[r : r + 1],
                        k,
                        until,
                        beam,
                        MAX_CHARS[until],
                        memory,
                    )
                    for layer, states in zip(layers, carried):  # back to all the rows
                        layer.states = list(states)
            finally:
                reset(model)
    return out


def next_word_accuracy(
    model,
    vocab: CharVocab,
    text: str,
    k=3,
    samples=200,
    context=200,
    beam=8,
    typed=0,
    memory: NgramMemory | None = None,
) -> WordAccuracy:
    """Top-k next-word accuracy on ``text``: at m = min(samples, N) of its N word
    boundaries (``word_boundaries``), evenly spaced (boundary ⌊j N / m⌋ for j < m),
    ``suggest(..., until="word")`` reads the ``context`` characters before the boundary;
    a hit is the true next word (its letters up to the next non-letter) among the top
    ``k`` texts.  ``typed``: the first ``typed`` letters of the word are part of the
    prompt, as when an editor offers completions after a keystroke (then only boundaries
    whose word is longer count, and a hit is the rest of the word).  Returns
    WordAccuracy(fraction of hits, boundaries asked).  ``memory``: the n-gram memory mixed
    in, as the suggestions it measures are offered."""
    chosen = _chosen_boundaries(text, k, samples, context, typed)
    hits = _word_hits(model, vocab, text, chosen, k, context, beam, typed, memory)
    return WordAccuracy(hits / len(chosen) if chosen else float("nan"), len(chosen))


def _chosen_boundaries(text, k, samples, context, typed) -> list[int]:
    """The boundaries ``next_word_accuracy`` asks, once its arguments are checked."""
    _check_count(k, "k")
    _check_count(samples, "samples")
    _check_count(context, "context")
    if isinstance(typed, bool) or not isinstance(typed, (int, np.integer)) or typed < 0:
        raise ValueError(f"typed must be an integer ≥ 0; got {typed!r}")
    found = [i for i in word_boundaries(text) if len(next_word(text, i)) > typed]
    n = min(samples, len(found))
    return [found[j * len(found) // n] for j in range(n)]  # evenly spaced, from the first


def _word_hits(model, vocab, text, chosen, k, context, beam, typed, memory=None) -> int:
    prompts = [text[max(0, i - context) : i + typed] for i in chosen]
    guesses = _suggest_many(model, vocab, prompts, k, beam, memory=memory)
    return sum(
        next_word(text, i)[typed:] in {s.text for s in got} for i, got in zip(chosen, guesses)
    )


def adaptive_word_accuracy(
    model,
    vocab: CharVocab,
    text: str,
    k=3,
    samples=200,
    context=200,
    beam=8,
    typed=0,
    learning_rate=ADAPT_LEARNING_RATE,
    segment=ADAPT_SEGMENT,
) -> WordAccuracy:
    """``next_word_accuracy`` of a model that adapts to ``text`` as it reads it
    (``adapt_steps``): each boundary is asked with the weights learned from the text
    before it (up to the last whole segment that ends before the word begins), never
    from the word itself.  The weights are restored afterwards."""
    chosen = _chosen_boundaries(text, k, samples, context, typed)
    layers = [l for l in model.layers if getattr(l, "stateful", False)]
    hits, todo = 0, list(reversed(chosen))
    with keeping_weights(model):
        learned = 0  # the model has learned from the characters up to this index
        steps = adapt_steps(model, vocab.encode(text), learning_rate, segment)
        while todo:
            asked = []  # the words that start within the next segment's targets
            while todo and todo[-1] <= learned + segment:
                asked.append(todo.pop())
            if asked:
                states = [l.states for l in layers]  # the stream's, kept for the next segment
                hits += _word_hits(model, vocab, text, asked, k, context, beam, typed)
                for l, st in zip(layers, states):
                    l.states = st
            learned, _ = next(steps)
        steps.close()
    return WordAccuracy(hits / len(chosen) if chosen else float("nan"), len(chosen))


# -- model files -------------------------------------------------------------------------------------
# The held-out figures a model file may keep beside "val_bpc" (bits per character): mixed
# with the n-gram memory (``memory_bpc``), adapting (``adaptive_bpc``), and both.
HELD_OUT_FIGURES = ("val_bpc_memory", "val_bpc_adaptive", "val_bpc_adaptive_memory")


def default_model_path(corpus_name: str, text: str, s: Settings) -> Path:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return (
        cache_dir()
        / "models"
        / f"autocomplete-{corpus_name}-{digest}-{s.cell}{s.hidden}x{s.layers}.rnnkit"
    )


def save(
    model,
    path,
    vocab,
    s: Settings,
    position,
    seconds,
    val_bpc=None,
    history=None,
    complete=True,
    next_word=None,
    memory: NgramMemory | None = None,
    figures: dict | None = None,
):
    """Write the model with everything needed to use it or to train it further; a
    checkpoint of an unfinished (interrupted) training has ``complete=False``.
    ``next_word``: a WordAccuracy measured on the held-out text, kept as the optional
    key "next_word_top3" ({"accuracy", "boundaries"}; files without it load as before);
    ``memory``: the n-gram memory (``NgramMemory``), the optional key "ngram_memory" (its
    order, λ and the training text); ``figures``: the other held-out figures measured
    (``HELD_OUT_FIGURES``; each an optional key, files without it load as before)."""
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
    if memory is not None:
        meta["ngram_memory"] = memory.to_json()
    for key, value in (figures or {}).items():
        if key not in HELD_OUT_FIGURES:
            raise ValueError(f"figures: {key!r} is not one of {HELD_OUT_FIGURES}")
        if value is not None:
            meta[key] = float(value)
    if next_word is not None:
        meta["next_word_top3"] = {
            "accuracy": float(next_word.fraction),
            "boundaries": int(next_word.boundaries),
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
        # files from before weight decay trained with plain Adam
        settings = Settings(**{"weight_decay": 0.0, **meta["settings"]})
        check_max_passes(settings.max_passes)  # a negative one would train nothing
        check_weight_decay(settings.weight_decay)
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


# -- the library API ---------------------------------------------------------------------------------
def _read_text_or_path(text_or_path) -> tuple[str, str]:
    """(text, where it came from): a path (str shorter than MIN_CHARS without a newline,
    or os.PathLike) is read as a UTF-8 file; a longer str is the text itself."""
    if isinstance(text_or_path, os.PathLike) or (
        isinstance(text_or_path, str) and len(text_or_path) < MIN_CHARS and "\n" not in text_or_path
    ):
        if not Path(text_or_path).exists():
            raise TextError(
                f"text_or_path: {str(text_or_path)!r} is neither a file nor a text of at "
                f"least {MIN_CHARS} characters"
            )
        return read_text_file(text_or_path), str(text_or_path)
    if not isinstance(text_or_path, str):
        raise TypeError(
            f"text_or_path must be a str (a text or a file name) or a path; "
            f"got {type(text_or_path).__name__}"
        )
    return text_or_path.replace("\r\n", "\n"), "the text"


def _settings_from(settings: dict) -> Settings:
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(
            f"Autocompleter.train: unknown settings {unknown}; the settings are {sorted(known)}"
        )
    s = Settings(**settings)
    if s.cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got {s.cell!r}")
    for name in ("hidden", "layers", "embed", "batch", "bptt"):
        _check_count(getattr(s, name), name)
    _check_count(s.ngram, "ngram", minimum=0)  # 0: no n-gram memory
    check_max_passes(s.max_passes)
    check_dropout(s.dropout, "dropout")
    check_weight_decay(s.weight_decay)
    return s


def check_max_passes(value, name="max_passes"):
    """Refuse a pass limit that is not a finite number ≥ 0 (0: no limit)."""
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number ≥ 0 (0: no limit); got {value!r}")


def check_weight_decay(value, name="weight_decay"):
    """Refuse a weight decay that is not a finite number ≥ 0 (0: none)."""
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number ≥ 0 (0: none); got {value!r}")


def check_dropout(rate, name="dropout"):
    """Refuse a dropout rate outside [0, 1)."""
    if not (_is_number(rate) and 0.0 <= rate < 1.0):
        raise ValueError(f"{name} must be a number in [0, 1); got {rate!r}")


class Autocompleter:
    """A trained character model and its vocabulary: the Python face of ``rnnkit
    autocomplete``, reading and writing the same model files.

    >>> ac = Autocompleter.train("sonnets.txt", minutes=1)      # or Autocompleter.load(path)
    >>> ac.suggest("Shall I compare thee to a ", k=3)           # [Suggestion(text, p, end)]
    >>> ac.generate("ROMEO:", 200, temperature=0.8, top_p=0.95, seed=1)
    """

    def __init__(
        self,
        model,
        vocab: CharVocab,
        settings: Settings | None = None,
        metadata=None,
        memory: NgramMemory | None = None,
    ):
        self.model, self.vocab, self.memory = model, vocab, memory
        self.settings = settings or Settings()
        self.metadata: dict = dict(metadata or {})
        self.metadata.pop("ngram_memory", None)  # kept as ``memory``, not twice

    # -- training and files --
    @classmethod
    def train(
        cls,
        text_or_path,
        minutes: float = 3.0,
        max_updates: int | None = None,
        verbose: bool = False,
        accuracy_samples: int = 200,
        **settings,
    ) -> Autocompleter:
        """Train a new model on a text (a str of at least 1,000 characters) or a UTF-8
        file (a path) for ``minutes`` of wall clock or ``max_updates`` updates, as ``rnnkit
        autocomplete`` does (``settings``: the Settings fields, e.g. hidden=128, cell="gru",
        seed=1; without ``hidden`` or ``dropout``, ``fit_to_budget`` picks them from the
        budget and the text's size); then score it on the held-out tail: ``val_bpc``,
        the others of ``held_out_figures`` (adapting takes seconds, a minute or more for
        512 units on a long text; the n-gram memory's, ``build_memory``, none with
        ``ngram=0``) and, on ``accuracy_samples`` word boundaries (0: skip), top-3
        next-word accuracy (with the memory)."""
        text, source = _read_text_or_path(text_or_path)
        check_text(text, source)
        s = _settings_from(settings)
        vocab = CharVocab.from_text(text)
        train_ids, val_ids = split(vocab.encode(text), s.val_fraction)
        fit_to_budget(  # what is not given, the budget and the text's size decide
            s,
            len(train_ids),
            minutes,
            max_updates,
            "hidden" not in settings,
            "dropout" not in settings,
        )
        check_size(len(vocab), s, chars=len(train_ids))
        model = build_model(len(vocab), s)
        result = train(
            model, network_ids(train_ids, s), s, minutes, verbose=verbose, max_updates=max_updates
        )
        p_val = char_probs(model, val_ids)  # the network's, once for all figures
        val_bpc = bpc(p_val)
        memory = build_memory(model, train_ids, s, len(vocab))
        meta = {
            "position": result.position,
            "trained_seconds": result.seconds,
            "val_bpc": val_bpc,
            "history": [{"trained_seconds": result.seconds, "val_bpc": val_bpc}],
            **held_out_figures(model, memory, train_ids, val_ids, p_net=p_val),
        }
        if accuracy_samples:
            acc = next_word_accuracy(
                model, vocab, vocab.decode(val_ids), samples=accuracy_samples, memory=memory
            )
            meta["next_word_top3"] = {"accuracy": acc.fraction, "boundaries": acc.boundaries}
        return cls(model, vocab, s, meta, memory)

    @classmethod
    def load(cls, path) -> Autocompleter:
        """An autocomplete model file, written by ``save`` or by ``rnnkit autocomplete``."""
        model, vocab, s, meta = load(path)
        return cls(model, vocab, s, meta, memory_from(meta))

    def save(self, path) -> None:
        """Write the model file (``rnnkit autocomplete --model PATH`` uses it as it is)."""
        m = self.metadata
        acc = m.get("next_word_top3")
        save(
            self.model,
            path,
            self.vocab,
            self.settings,
            m.get("position", 0),
            m.get("trained_seconds", 0.0),
            val_bpc=m.get("val_bpc"),
            history=m.get("history"),
            complete=m.get("complete", True),
            next_word=WordAccuracy(acc["accuracy"], acc["boundaries"]) if acc else None,
            memory=self.memory,
            figures={k: m[k] for k in HELD_OUT_FIGURES if k in m},
        )

    @property
    def val_bpc(self) -> float | None:
        """Bits per character on the held-out text when it was trained (None: unknown)."""
        return self.metadata.get("val_bpc")

    @property
    def val_bpc_memory(self) -> float | None:
        """The held-out figure of the network mixed with its n-gram memory (None: none)."""
        return self.metadata.get("val_bpc_memory")

    @property
    def val_bpc_adaptive(self) -> float | None:
        """The same held-out figure with the model adapting to the text as it reads it
        (``adaptive_bpc``; None: not measured)."""
        return self.metadata.get("val_bpc_adaptive")

    @property
    def val_bpc_adaptive_memory(self) -> float | None:
        """The held-out figure of the model adapting, mixed with its n-gram memory: what
        the interactive session offers (None: not measured)."""
        return self.metadata.get("val_bpc_adaptive_memory")

    # -- using it --
    def adapt(self, text: str, learning_rate=ADAPT_LEARNING_RATE) -> float:
        """Go on learning from ``text`` (your own writing, the document being edited), as
        ``adapt_steps`` does: the weights change in memory (``save`` keeps them).
        Returns the bits per character ``text`` cost as it was read."""
        if not isinstance(text, str) or len(text) < 2:
            raise ValueError(f"text must be a str of at least 2 characters; got {text!r:.40}")
        try:
            steps = adapt_steps(self.model, self.vocab.encode(text), learning_rate)
            return bpc(np.concatenate([p for _, p in steps]))
        finally:
            reset(self.model)

    def suggest(self, prompt: str, k=3, until="word", beam=8, max_chars=None) -> list[Suggestion]:
        """The k most probable completions to the end of the word or phrase (``suggest``)."""
        return suggest(self.model, self.vocab, prompt, k, until, beam, max_chars, self.memory)

    def next_chars(self, prompt: str, k=10) -> list[tuple[str, float]]:
        """The k most likely next characters with their probabilities (``next_chars``)."""
        return next_chars(self.model, self.vocab, prompt, k, self.memory)

    def generate(
        self,
        prompt: str = "",
        length=200,
        temperature=0.8,
        top_k=0,
        top_p=1.0,
        seed=None,
        stop_at_newline=False,
    ) -> str:
        """``length`` characters that continue ``prompt`` (the prompt not repeated),
        sampled as ``complete`` does; the same ``seed`` gives the same text."""
        _check_count(length, "length")
        rng = np.random.default_rng(seed)
        return complete(
            self.model,
            self.vocab,
            prompt,
            length=length,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            stop_at_newline=stop_at_newline,
            rng=rng,
            memory=self.memory,
        )

    def bits_per_char(self, text: str, streams=1, adapt=False, memory=True) -> float:
        """Bits per character the model spends on text[1:], each character predicted from
        those before it (read as ``streams`` parallel pieces; more is faster on a long
        text, and each piece then starts from an empty state).  ``adapt``: read as one
        stream while learning from it (``adaptive_bpc``; the weights are restored).
        ``memory``: mixed with the n-gram memory where the model has one (``memory_bpc``);
        False: the network alone."""
        if not isinstance(text, str) or len(text) < 2:
            raise ValueError(f"text must be a str of at least 2 characters; got {text!r:.40}")
        _check_count(streams, "streams")
        ids = self.vocab.encode(text)
        p_net = adaptive_char_probs(self.model, ids) if adapt else None
        if memory and self.memory is not None:
            return memory_bpc(self.model, self.memory, ids[:0], ids, streams, p_net=p_net)
        return bpc(p_net) if adapt else evaluate_bpc(self.model, ids, batch=streams)

    def word_accuracy(self, text: str, k=3, samples=200, typed=0, adapt=False) -> WordAccuracy:
        """Top-k next-word accuracy on ``text`` (``next_word_accuracy``; ``typed``: with the
        word's first letters typed; ``adapt``: ``adaptive_word_accuracy``)."""
        if adapt:
            return adaptive_word_accuracy(
                self.model, self.vocab, text, k=k, samples=samples, typed=typed
            )
        return next_word_accuracy(
            self.model, self.vocab, text, k=k, samples=samples, typed=typed, memory=self.memory
        )

    def __repr__(self):
        s = self.settings
        bpc = f", val_bpc={self.val_bpc:.3f}" if self.val_bpc is not None else ""
        return (
            f"Autocompleter({s.layers}x{s.cell.upper()}({s.hidden}), {len(self.vocab)} chars{bpc})"
        )


__all__ = [
    "Settings",
    "dropout_for",
    "hidden_for",
    "fit_to_budget",
    "TextError",
    "read_text_file",
    "check_text",
    "split",
    "streams",
    "ngram_bpc",
    "kneser_ney_bpc",
    "build_model",
    "evaluate_bpc",
    "char_probs",
    "bpc",
    "memory_bpc",
    "build_memory",
    "held_out_figures",
    "network_ids",
    "memory_from",
    "next_logp",
    "adapt_steps",
    "adaptive_char_probs",
    "adaptive_bpc",
    "keeping_weights",
    "train",
    "complete",
    "pick",
    "check_sampling",
    "next_chars",
    "Suggestion",
    "suggest",
    "WordAccuracy",
    "next_word_accuracy",
    "adaptive_word_accuracy",
    "Autocompleter",
    "default_model_path",
    "save",
    "load",
    "Interrupted",
]
