"""``rnnkit music``: the next note of a Bach chorale melody, and new melodies.

Data: the soprano lines of the 409 Bach chorales in music21's corpus
(``rnnkit.datasets.bach_chorales``; split by chorale: every tenth for the test, another
tenth for validation).  A token is one note: its pitch (or a rest) and its length together,
e.g. ``C5:1`` (a quarter-note C5) or ``R:0.5``; notes seen fewer than twice in training
share one unknown token.  Every model predicts the same tokens, each chorale's first note
after a start symbol.

Model: an embedding, an LSTM and a softmax over the notes (the lecture's language model,
over notes instead of words), trained on the training chorales and on copies of them
transposed by up to ±``--transpose`` semitones (a transposed copy's notes must all be known
notes); the epoch with the lowest validation loss is kept.  At prediction time the
LSTM also remembers the chorale so far: a continuous cache (Grave et al. 2017) over its own
states, ``p = (1 - λ) p_LSTM + λ p_cache`` with ``p_cache(w) ∝ Σ_{i<t, note_i = w}
exp(θ h_t·h_i)``, θ and λ set on the validation chorales; chorale melodies repeat their
opening phrases, and the cache lets the model copy them.

Metric: the negative log-likelihood per note (nats) of the held-out chorales; baselines
computed by rnnkit on the same notes: unigram (add-one), bigram and higher-order n-grams
with interpolated Kneser-Ney smoothing (the order chosen on the validation chorales).

    rnnkit music generate --primer "G4 G4 D5:0.5 C5:0.5 B4" --temperature 0.8 --out new.mid
"""

from __future__ import annotations

import math
import re
import struct
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ._buckets import compile_for_budget, keep_best, plot_curve, train_for
from .task import App, AppInputError, default_model_path, load_app_model, positive_int

PAD, BOS, UNK = 0, 1, 2
SPECIALS = ["<pad>", "<s>", "<unk>"]
NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_NOTE = re.compile(
    r"^(?:(?P<rest>[Rr])|(?P<step>[A-Ga-g])(?P<acc>#|b|-|s|)?(?P<oct>-?\d))"
    r"(?::(?P<dur>\d+(?:\.\d+)?(?:/\d+)?))?$"
)


# -- notes and tokens ---------------------------------------------------------------------------------
def pitch_name(midi) -> str:
    return "R" if midi is None else f"{NAMES[midi % 12]}{midi // 12 - 1}"


def _fmt_dur(d: float) -> str:
    return f"{d:g}"


def token(note) -> str:
    midi, dur = note
    return f"{pitch_name(midi)}:{_fmt_dur(dur)}"


def parse_note(text: str):
    """'C5', 'F#4:0.5', 'Bb3:2', 'B-3:1/2', 'R:1' -> (midi or None, quarter length); the
    length defaults to a quarter note (1)."""
    m = _NOTE.match(text.strip())
    if not m:
        raise AppInputError(
            f"--primer: cannot read the note {text!r}; write a pitch name "
            f"and octave with an optional length in quarter notes, e.g. C5, "
            f"F#4:0.5, Bb3:2, R:1 (a rest)"
        )
    dur_text = m.group("dur") or "1"
    if "/" in dur_text:
        a, b = dur_text.split("/")
        dur = float(a) / float(b) if float(b) else 0.0
    else:
        dur = float(dur_text)
    if not (0 < dur <= 64):
        raise AppInputError(
            f"--primer: the length of {text!r} must be between 0 and 64 quarter notes"
        )
    if m.group("rest"):
        return (None, dur)
    acc = {"#": 1, "s": 1, "b": -1, "-": -1}.get(m.group("acc") or "", 0)
    midi = 12 * (int(m.group("oct")) + 1) + "C D EF G A B".index(m.group("step").upper()) + acc
    if not 0 <= midi <= 127:
        raise AppInputError(f"--primer: {text!r} is outside the MIDI range (C-1 .. G9)")
    return (midi, dur)


def parse_primer(text: str):
    notes = [parse_note(t) for t in text.replace(",", " ").split()]
    if not notes:
        raise AppInputError('--primer: no notes given; write e.g. "G4 G4 D5:0.5 C5:0.5 B4"')
    return notes


def note_of(tok: str):
    p, _, d = tok.partition(":")
    return parse_note(f"{p}:{d}")


class NoteVocab:
    def __init__(self, tokens):
        self.tokens = SPECIALS + [t for t in tokens if t not in SPECIALS]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    @classmethod
    def from_chorales(cls, chorales, min_count=2):
        c = Counter(token(n) for notes in chorales for n in notes)
        return cls(sorted((t for t, k in c.items() if k >= min_count), key=lambda t: (-c[t], t)))

    def encode(self, notes):
        return [self.index.get(token(n), UNK) for n in notes]


def transposed(chorales, vocab, max_shift):
    """The chorales and their copies shifted by ±1..max_shift semitones whose notes are all
    known tokens."""
    out = [list(c) for c in chorales]
    for c in chorales:
        for k in range(-max_shift, max_shift + 1):
            if k == 0:
                continue
            moved = [(None if m is None else m + k, d) for m, d in c]
            if all(token(n) in vocab.index for n in moved):
                out.append(moved)
    return out


def batch_arrays(sequences, length=None):
    """(inputs, targets): inputs <s> x1 .. x_{T-1}, targets x1 .. xT, padded with 0."""
    T = length or max(len(s) for s in sequences)
    x = np.zeros((len(sequences), T), dtype=np.int64)
    y = np.zeros((len(sequences), T), dtype=np.int64)
    for n, s in enumerate(sequences):
        s = list(s)[:T]
        x[n, : len(s)] = [BOS] + s[:-1]
        y[n, : len(s)] = s
    return x, y


# -- n-gram baselines ------------------------------------------------------------------------------------
class KneserNey:
    """Interpolated Kneser-Ney n-gram model over token ids (contexts padded with <s>),
    one absolute discount per order from the counts of counts, D = n1 / (n1 + 2 n2); the
    lowest order interpolates with the uniform distribution over the V predictable tokens."""

    def __init__(self, sequences, order, vocab_size):
        self.n, self.V = int(order), int(vocab_size)
        self.counts = [defaultdict(Counter) for _ in range(self.n)]  # by context length
        for s in sequences:
            padded = [BOS] * (self.n - 1) + list(s)
            for i in range(self.n - 1, len(padded)):
                h = tuple(padded[i - self.n + 1 : i])
                self.counts[self.n - 1][h][padded[i]] += 1
        # lower orders: continuation counts (distinct left extensions)
        for k in range(self.n - 1, 0, -1):
            for h, nxt in self.counts[k].items():
                for w in nxt:
                    self.counts[k - 1][h[1:]][w] += 0  # make the key exist
            cont = defaultdict(Counter)
            for h, nxt in self.counts[k].items():
                for w in nxt:
                    cont[h[1:]][w] += 1
            self.counts[k - 1] = cont
        self.D, self.totals, self.types = [], [], []
        for k in range(self.n):
            cc = Counter(c for nxt in self.counts[k].values() for c in nxt.values())
            n1, n2 = cc.get(1, 0), cc.get(2, 0)
            self.D.append(n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5)
            self.totals.append({h: sum(nxt.values()) for h, nxt in self.counts[k].items()})
            self.types.append({h: len(nxt) for h, nxt in self.counts[k].items()})

    def prob(self, h, w, k=None):
        """P(w | the last k tokens of h)."""
        k = self.n - 1 if k is None else k
        lower = 1.0 / self.V if k < 0 else None
        if k < 0:
            return lower
        ctx = tuple(h[len(h) - k :]) if k else ()
        total = self.totals[k].get(ctx, 0)
        below = self.prob(h, w, k - 1)
        if total == 0:
            return below
        c = self.counts[k][ctx].get(w, 0)
        D = self.D[k]
        return max(c - D, 0.0) / total + D * self.types[k][ctx] / total * below

    def probs(self, s):
        """P of each token of the sequence given the ones before it."""
        padded = [BOS] * (self.n - 1) + list(s)
        return np.array(
            [
                self.prob(padded[i - self.n + 1 : i], padded[i])
                for i in range(self.n - 1, len(padded))
            ]
        )

    def nll(self, sequences):
        """(total negative log-likelihood in nats, number of tokens)."""
        ps = [self.probs(s) for s in sequences]
        return -float(sum(np.log(p).sum() for p in ps)), int(sum(len(p) for p in ps))


def unigram_nll(train, test, V):
    """Add-one unigram over the V predictable tokens."""
    c = Counter(t for s in train for t in s)
    n = sum(c.values())
    total = -sum(math.log((c.get(t, 0) + 1) / (n + V)) for s in test for t in s)
    return total, sum(len(s) for s in test)


# -- MIDI ----------------------------------------------------------------------------------------------
def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(notes, tempo_bpm=80, ticks=480, program=52) -> bytes:
    """A type-0 Standard MIDI File of one melody: [(midi or None, quarter length), ...]."""
    track = bytearray()
    track += b"\x00\xff\x51\x03" + int(60_000_000 / tempo_bpm).to_bytes(3, "big")
    track += b"\x00\xff\x58\x04\x04\x02\x18\x08"  # 4/4
    track += b"\x00" + bytes([0xC0, program & 0x7F])
    wait = 0
    for midi, dur in notes:
        length = max(1, int(round(dur * ticks)))
        if midi is None:
            wait += length
            continue
        track += _varlen(wait) + bytes([0x90, midi, 80])
        track += _varlen(length) + bytes([0x80, midi, 0])
        wait = 0
    track += _varlen(wait) + b"\xff\x2f\x00"
    return (
        b"MThd"
        + struct.pack(">IHHH", 6, 0, 1, ticks)
        + b"MTrk"
        + struct.pack(">I", len(track))
        + bytes(track)
    )


def read_midi_notes(data: bytes):
    """[(midi, quarter length), ...] of the notes of a type-0 file as midi_bytes writes it
    (a check that a written file reads back; rests appear as the gaps they leave)."""
    if data[:4] != b"MThd":
        raise ValueError("not a MIDI file")
    ticks = struct.unpack(">H", data[12:14])[0]
    pos = 14
    if data[pos : pos + 4] != b"MTrk":
        raise ValueError("no track")
    size = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
    body, i, now, on, out, status = data[pos + 8 : pos + 8 + size], 0, 0, {}, [], 0
    while i < len(body):
        delta = 0
        while True:
            b = body[i]
            i += 1
            delta = (delta << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        now += delta
        if body[i] == 0xFF:
            length = body[i + 2]
            i += 3 + length
            continue
        if body[i] & 0x80:
            status = body[i]
            i += 1
        kind = status & 0xF0
        if kind in (0xC0, 0xD0):
            i += 1
            continue
        a, b = body[i], body[i + 1]
        i += 2
        if kind == 0x90 and b > 0:
            on[a] = now
        elif kind in (0x80, 0x90) and a in on:
            began = on.pop(a)
            out.append((began, a, now - began))
    return [(a, t / ticks) for _, a, t in sorted(out)]


# -- the application ----------------------------------------------------------------------------------------
def _parts(args):
    from ..datasets import bach_chorales

    parts = bach_chorales.split(
        bach_chorales.chorales(getattr(args, "data", None), quiet=getattr(args, "quiet", True))
    )
    if not parts["train"] or not parts["test"]:
        raise AppInputError(
            f"--data: too few chorales to split (found "
            f"{sum(len(v) for v in parts.values())}; the test set is every "
            f"tenth, so at least 10 are needed)"
        )
    return parts


def configure_train(p):
    p.add_argument(
        "--units", type=positive_int, default=256, help="LSTM units (default: %(default)s)"
    )
    p.add_argument(
        "--embed", type=positive_int, default=32, help="note embedding size (default: %(default)s)"
    )
    p.add_argument("--layers", type=positive_int, default=1, help="stacked LSTMs (default: 1)")
    p.add_argument(
        "--dropout",
        type=float,
        default=0.3,
        help="dropout on the LSTM's inputs and outputs (default: %(default)s)",
    )
    p.add_argument("--batch", type=positive_int, default=16, help="chorales a batch (default: 16)")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=3e-3,
        help="Adam's learning rate (default: %(default)s)",
    )
    p.add_argument(
        "--transpose",
        type=int,
        default=5,
        help="also train on copies transposed by up to this many semitones up and "
        "down (default: %(default)s; 0: none)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not give the model a continuous cache of the chorale so far "
        "(by default its θ and λ are set on the validation chorales after training)",
    )


def configure_predict(p):
    p.add_argument(
        "--top",
        type=positive_int,
        default=5,
        help="how many of the most likely next notes to print (default: 5)",
    )


def build_model(vocab_size, units, embed, layers, dropout):
    from .. import LSTM, Dense, Sequential
    from ..layers import Dropout, Embedding

    stack = [Embedding(vocab_size, embed, mask_zero=True)]
    for _ in range(layers):
        stack += (
            [Dropout(dropout), LSTM(units, return_sequences=True)]
            if dropout
            else [LSTM(units, return_sequences=True)]
        )
    if dropout:
        stack.append(Dropout(dropout))
    stack.append(Dense(vocab_size))
    return Sequential(stack)


def model_logprobs(model, sequences, batch=32):
    """The model's log-probability (nats) of every note of every sequence, one array each."""
    out = []
    for b in range(0, len(sequences), batch):
        chunk = sequences[b : b + batch]
        x, y = batch_arrays(chunk)
        z = np.asarray(model.predict(x, batch_size=len(chunk)), dtype=np.float64)
        z -= z.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
        out += [picked[n, : len(s)] for n, s in enumerate(chunk)]
    return out


def model_nll(model, sequences, batch=32):
    """(total negative log-likelihood in nats, number of notes) of the model."""
    lp = model_logprobs(model, sequences, batch)
    return -float(sum(a.sum() for a in lp)), int(sum(len(a) for a in lp))


# -- the continuous cache ----------------------------------------------------------------------
CACHE_THETAS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)  # θ tried on validation
CACHE_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)  # λ tried on validation (0: no cache)


def states_and_probs(model, sequence):
    """(H, P) of one encoded melody: H (T, units) the last recurrent layer's state h_t after
    reading <s> x_1 .. x_{t-1} (the dense head's input), P (T, V) the model's next-note
    distribution softmax(h_t V + c); float64."""
    x, _ = batch_arrays([sequence])  # (1, T)
    h, mask = x, None
    for layer in model.layers[:-1]:  # Embedding, [Dropout, LSTM]*, Dropout: identity here
        h = layer.forward(h, training=False, mask=mask)
        mask = layer.output_mask
    z = np.asarray(model.layers[-1].forward(h, training=False), dtype=np.float64)[0]  # (T, V)
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return np.asarray(h, dtype=np.float64)[0], p / p.sum(axis=-1, keepdims=True)


def cache_weights(H, theta):
    """A (T, T) matrix whose row t holds softmax_i(θ h_t·h_i) over the earlier steps i < t
    (row 0, with no earlier step, is all zeros)."""
    T = len(H)
    S = theta * (H @ H.T)  # (T, T): S[t, i] = θ h_t·h_i
    earlier = np.tril(np.ones((T, T), dtype=bool), k=-1)
    S = np.where(earlier, S, -np.inf)
    S[0] = 0.0  # no history: any finite row, zeroed below
    A = np.exp(S - S.max(axis=1, keepdims=True))
    A /= A.sum(axis=1, keepdims=True)
    A[0] = 0.0
    return A


def cached_probs(H, P, notes, theta, weight):
    """The next-note distributions (T, V) of the LSTM with its continuous cache: at step t,
    (1 - λ) P[t] + λ Σ_{i<t} A[t, i] onehot(notes[i]); at t = 0 (no history) P[0]."""
    if weight == 0 or len(notes) < 2:
        return P
    A = cache_weights(H, theta)  # (T, T)
    onehot = np.zeros_like(P)
    onehot[np.arange(len(notes)), notes] = 1.0
    out = (1.0 - weight) * P + weight * (A @ onehot)
    out[0] = P[0]
    return out


def cache_logprobs(model, sequences, theta, weight):
    """The log-probability of every note of every melody under the LSTM with its cache."""
    out = []
    for s in sequences:
        H, P = states_and_probs(model, s)
        Q = cached_probs(H, P, list(s), theta, weight)
        out.append(np.log(Q[np.arange(len(s)), list(s)]))
    return out


def fit_cache(model, sequences):
    """(θ, λ, NLL) with the lowest NLL per note on ``sequences`` over the grid of
    CACHE_THETAS × CACHE_WEIGHTS (λ = 0, no cache, is in the grid)."""
    runs = [states_and_probs(model, s) for s in sequences]
    count = sum(len(s) for s in sequences)
    best = (0.0, 0.0, math.inf)
    for theta in CACHE_THETAS:
        for weight in CACHE_WEIGHTS:
            total = 0.0
            for (H, P), s in zip(runs, sequences):
                Q = cached_probs(H, P, list(s), theta, weight)
                total -= float(np.log(Q[np.arange(len(s)), list(s)]).sum())
            if total / count < best[2]:
                best = (theta, weight, total / count)
    return best


def train(args):
    from .. import set_seed

    if not (0.0 <= args.dropout < 1.0):
        raise AppInputError(f"--dropout must be in [0, 1); got {args.dropout}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise AppInputError(f"--learning-rate must be a positive number; got {args.learning_rate}")
    if not 0 <= args.transpose <= 11:
        raise AppInputError(f"--transpose must be between 0 and 11 semitones; got {args.transpose}")
    set_seed(args.seed)
    parts = _parts(args)
    train_notes = [n for _, n in parts["train"]]
    val_notes = [n for _, n in parts["validation"]] or train_notes[:5]
    vocab = NoteVocab.from_chorales(train_notes)
    augmented = transposed(train_notes, vocab, args.transpose)
    seqs = [vocab.encode(c) for c in augmented]
    val = [vocab.encode(c) for c in val_notes]
    model = build_model(len(vocab), args.units, args.embed, args.layers, args.dropout)
    schedule = compile_for_budget(
        model, args.learning_rate, 1.0, ignore_class=PAD, time_reduction="mean"
    )
    if not args.quiet:
        print(
            f"Training a {args.layers}-layer LSTM ({args.units} units) on {len(parts['train'])} "
            f"chorales ({len(seqs)} with the transposed copies, "
            f"{sum(len(s) for s in seqs):,} notes; {len(vocab) - 3} distinct notes) for "
            f"{args.minutes:g} minutes; validation: {len(val)} chorales.",
            file=sys.stderr,
        )

    def val_nll():
        total, count = model_nll(model, val)
        return total / count

    after_epoch, history, best = keep_best(
        model,
        val_nll,
        key="val_nll",
        digits=4,
        describe=lambda v: f"NLL {v:.3f} nats/note",
        higher=False,
        worst=math.inf,
        quiet=args.quiet,
    )
    epoch = train_for(
        model,
        [len(s) for s in seqs],
        lambda idx: batch_arrays([seqs[i] for i in idx]),
        args.batch,
        args.minutes * 60,
        np.random.default_rng(args.seed),
        args.quiet,
        after_epoch,
        schedule,
    )
    best_weights = best["weights"]
    best = best["score"]
    V = len(vocab) - 2
    lines = {
        "unigram (add-one)": unigram_nll(seqs[: len(train_notes)], val, V),
        "bigram (Kneser-Ney)": KneserNey(seqs[: len(train_notes)], 2, V).nll(val),
        "8-gram (Kneser-Ney)": KneserNey(seqs[: len(train_notes)], 8, V).nll(val),
    }
    _plot(args, history, {k: t / c for k, (t, c) in lines.items()})
    model.set_weights(best_weights)
    theta, weight, cached = (0.0, 0.0, best) if args.no_cache else fit_cache(model, val)
    if not args.quiet and not args.no_cache:
        print(
            f"Continuous cache set on the validation chorales: θ = {theta:g}, λ = {weight:g}; "
            f"validation NLL {best:.3f} → {cached:.3f} nats/note.",
            file=sys.stderr,
        )
    meta = {
        "tokens": vocab.tokens[len(SPECIALS) :],
        "val_nll": round(best, 4),
        "cache": {"theta": theta, "weight": weight, "val_nll": round(cached, 4)},
        "epochs": epoch,
        "history": history,
        "settings": {
            "units": args.units,
            "embed": args.embed,
            "layers": args.layers,
            "dropout": args.dropout,
            "transpose": args.transpose,
            "cache": not args.no_cache,
            "batch": args.batch,
            "learning_rate": args.learning_rate,
        },
    }
    return model, meta


def _plot(args, history, baselines):
    path = Path(args.model) if args.model else default_model_path(APP.name)
    png = plot_curve(
        path.with_name(path.name + ".png"),
        history,
        "val_nll",
        "NLL, nats per note",
        baselines,
        "rnnkit music: validation chorales",
        lower_is_better=True,
    )
    if png and not args.quiet:
        print(f"Training curve: {png}", file=sys.stderr)


def _vocab(meta):
    return NoteVocab(meta["tokens"])


def evaluate(model, meta, args):
    parts = _parts(args)
    vocab = _vocab(meta)
    V = len(vocab) - 2  # predictable: the notes and <unk>
    enc = {k: [vocab.encode(n) for _, n in v] for k, v in parts.items()}
    train_seqs = enc["train"]
    out = {
        "test_chorales": len(enc["test"]),
        "test_notes": sum(len(s) for s in enc["test"]),
        "unit": "nats per note (negative log-likelihood)",
        "model": {},
        "baselines": {},
    }
    total, count = model_nll(model, enc["test"])
    out["model"]["LSTM"] = {
        "nll": round(total / count, 4),
        "bits": round(total / count / math.log(2), 4),
    }
    theta, weight = _cache_of(meta)
    if weight:
        lp = cache_logprobs(model, enc["test"], theta, weight)
        nll = -float(sum(a.sum() for a in lp)) / count
        out["model"][f"LSTM with its continuous cache (θ {theta:g}, λ {weight:g})"] = {
            "nll": round(nll, 4),
            "bits": round(nll / math.log(2), 4),
        }
    total, count = unigram_nll(train_seqs, enc["test"], V)
    out["baselines"]["unigram (add-one)"] = {"nll": round(total / count, 4)}
    val_scores = {}
    for order in range(2, 11):
        lm = KneserNey(train_seqs, order, V)
        vt, vc = lm.nll(enc["validation"] or train_seqs[:5])
        val_scores[order] = vt / vc
        if order == 2:
            t, c = lm.nll(enc["test"])
            out["baselines"]["bigram (Kneser-Ney)"] = {"nll": round(t / c, 4)}
    best_order = min(val_scores, key=val_scores.get)
    kn = KneserNey(train_seqs, best_order, V)
    t, c = kn.nll(enc["test"])
    out["baselines"][f"{best_order}-gram (Kneser-Ney, order chosen on validation)"] = {
        "nll": round(t / c, 4)
    }
    out["ngram_validation_nll"] = {str(k): round(v, 4) for k, v in val_scores.items()}
    # the classic mixture (Mikolov et al.): lam p_LSTM + (1 - lam) p_KN, lam set on validation
    val_seqs = enc["validation"] or train_seqs[:5]
    pv = [np.exp(a) for a in model_logprobs(model, val_seqs)]
    kv = [kn.probs(s) for s in val_seqs]
    lams = [round(0.1 * i, 1) for i in range(1, 10)]
    lam = min(lams, key=lambda g: -sum(np.log(g * a + (1 - g) * b).sum() for a, b in zip(pv, kv)))
    pt = [np.exp(a) for a in model_logprobs(model, enc["test"])]
    mix = -sum(np.log(lam * a + (1 - lam) * kn.probs(s)).sum() for a, s in zip(pt, enc["test"])) / c
    out["model"][
        f"LSTM + {best_order}-gram mixture (weight {lam} on the LSTM, set on validation)"
    ] = {"nll": round(float(mix), 4)}
    best_base = min(v["nll"] for v in out["baselines"].values())
    ours = [v["nll"] for k, v in out["model"].items() if k.startswith("LSTM with its")]
    headline = ours[0] if ours else out["model"]["LSTM"]["nll"]  # the model as trained
    out["reduction_vs_best_ngram"] = round(1 - headline / best_base, 4)
    out["reduction_vs_best_ngram_lstm_alone"] = round(
        1 - out["model"]["LSTM"]["nll"] / best_base, 4
    )
    out["target"] = "NLL at least 10% below the best n-gram's"
    out["published"] = {"note": "no published result uses this tokenisation and split"}
    return out


def _cache_of(meta):
    """(θ, λ) of the model's continuous cache; (0, 0) for a model trained without one."""
    c = meta.get("cache") or {}
    return float(c.get("theta", 0.0)), float(c.get("weight", 0.0))


def _next_distribution(model, ids, meta=None):
    """The distribution of the note after ``ids`` (with the model's cache, if it has one)."""
    theta, weight = _cache_of(meta or {})
    H, P = states_and_probs(model, list(ids) + [PAD])  # one step more: the next note's row
    p = cached_probs(H, P, list(ids) + [PAD], theta, weight)[-1].copy()
    p[[PAD, BOS]] = 0.0
    return p / p.sum()


def predict(model, meta, inputs, args):
    vocab = _vocab(meta)
    lines = []
    for text in inputs:
        notes = parse_primer(text)
        p = _next_distribution(model, vocab.encode(notes), meta)
        order = np.argsort(-p, kind="stable")[: args.top]
        lines.append("  ".join(f"{vocab.tokens[i]} {p[i]:.3f}" for i in order))
    return lines


def generate_notes(model, meta, primer, length, temperature, rng):
    """The primer's notes followed by ``length`` sampled ones (temperature 0: the most
    likely each time; <unk> is never drawn)."""
    vocab = _vocab(meta)
    ids = vocab.encode(primer)
    notes = list(primer)
    for _ in range(length):
        p = _next_distribution(model, ids, meta)
        p[UNK] = 0.0
        if temperature == 0:
            i = int(np.argmax(p))
        else:
            logp = np.log(np.maximum(p, 1e-300)) / temperature
            q = np.exp(logp - logp.max())
            q[[PAD, BOS, UNK]] = 0.0
            i = int(rng.choice(len(q), p=q / q.sum()))
        ids.append(i)
        notes.append(note_of(vocab.tokens[i]))
    return notes


def _configure_generate(p):
    p.add_argument(
        "--out",
        metavar="PATH",
        default="melody.mid",
        help="the MIDI file to write (default: %(default)s)",
    )
    p.add_argument(
        "--primer",
        default="",
        help='notes to start from, e.g. "G4 G4 D5:0.5 C5:0.5 B4" (pitch and octave, '
        "# or b, an optional :length in quarter notes; R for a rest); "
        "default: none",
    )
    p.add_argument(
        "--length", type=positive_int, default=48, help="notes to add (default: %(default)s)"
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="sampling temperature; 0 takes the most likely note (default: 1.0)",
    )
    p.add_argument(
        "--tempo",
        type=positive_int,
        default=80,
        help="quarter notes a minute (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: fresh)")


def _run_generate(args):
    """write a new melody as a MIDI file"""
    from ..atomicfile import atomic_write_bytes

    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise AppInputError(f"--temperature must be a finite number ≥ 0; got {args.temperature}")
    if args.length > 10_000:
        raise AppInputError(f"--length must be at most 10000 notes; got {args.length}")
    out = Path(args.out)
    if out.is_dir():
        raise AppInputError(f"--out {out} is a directory; give a file name")
    primer = parse_primer(args.primer) if args.primer.strip() else []
    model, meta = load_app_model(
        Path(args.model) if args.model else default_model_path(APP.name), APP
    )
    rng = np.random.default_rng(args.seed)
    notes = generate_notes(model, meta, primer, args.length, args.temperature, rng)
    atomic_write_bytes(out, midi_bytes(notes, tempo_bpm=args.tempo))
    print(" ".join(token(n) for n in notes))
    print(f"Wrote {len(notes)} notes ({len(primer)} of them the primer) to {out}", file=sys.stderr)
    return 0


APP = App(
    name="music",
    help="the next note of a Bach chorale melody; new melodies as MIDI (LSTM over notes)",
    description=__doc__,
    train=train,
    evaluate=evaluate,
    predict=predict,
    configure_train=configure_train,
    configure_predict=configure_predict,
    input_help='primers, e.g. "G4 G4 D5:0.5 C5:0.5 B4"; without them, --file or stdin lines',
    default_minutes=3.0,  # the best epoch comes after about 40 (about a minute)
    extra={"generate": (_configure_generate, _run_generate)},
)
