"""Word features and training shared by the sequence-labelling applications (tag, ner).

Each token becomes a row of integer ids, one per feature, and a ``FeatureEmbedding`` layer
looks each id up in its own table and concatenates the vectors:

    word      the lowercased word, digits -> 0 (tweets: URLs -> <url>, @users -> <user>)
    pre1-3    its first 1, 2, 3 characters (lowercased)
    suf1-3    its last 1, 2, 3 characters (lowercased)
    shape     capitalisation / digits / punctuation, e.g. "Xx", "XX", "d", "x-x", "#x", "<url>"

Id 0 is padding (the word feature's 0 is the mask), id 1 the unknown value.  A word never
seen in training still gets its affixes and shape, which is what tags unseen words.
During training, words seen once are replaced by the unknown id with probability
``word_dropout`` so that the unknown word's vector is learned.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np

from .. import backend, optim, validation
from ..layers import LAYER_CLASSES, Embedding, Wrapper
from ..progress import ProgressBar, format_duration

PAD, UNK = 0, 1
FEATURES = ("word", "pre1", "pre2", "pre3", "suf1", "suf2", "suf3", "shape")
CHAR_LEN = 12  # characters a word keeps for the character encoder

# -- tokenizing the user's text ------------------------------------------------------------------
_URL = r"(?:https?://|www\.)\S+"
_TOKEN = re.compile(
    _URL + r"|[@#]\w+"  # URLs, @users, #hashtags
    r"|\d+(?:[.,:/]\d+)*"  # 3.5  1,000  12:30  9/11
    r"|\w+(?:[-'’]\w+)*"  # words, hyphenated words, o'clock
    r"|\.\.\.|--|[!?]+|&\w+;|\S",
    re.UNICODE,
)
_CLITIC = re.compile(r"(?i)^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")


def tokenize(text: str) -> list[str]:
    """Words and punctuation, Penn Treebank style: ``don't`` -> ``do n't``, ``Bob's`` ->
    ``Bob 's``, every punctuation mark its own token; URLs, @users and #hashtags whole."""
    out = []
    for tok in _TOKEN.findall(text.replace("’", "'")):
        m = _CLITIC.match(tok) if tok[0].isalpha() else None
        out += [m.group(1), m.group(2)] if m else [tok]  # can't -> ca n't, as Penn
    return out


# -- features of one token -----------------------------------------------------------------------
def is_url(w):
    return bool(re.match(_URL, w, re.I)) or w.lower().startswith(("http:", "https:"))


def normalize(word: str, tweets=False) -> str:
    """The word feature: lowercased, every digit 0; on tweets URLs and @users collapsed."""
    if tweets:
        if is_url(word):
            return "<url>"
        if len(word) > 1 and word[0] == "@":
            return "<user>"
    return re.sub(r"\d", "0", word.lower())


def shape(word: str, tweets=False) -> str:
    """A short shape: A-Z -> X, a-z -> x, digits -> d, runs collapsed, at most 5 symbols."""
    if tweets and is_url(word):
        return "<url>"
    if tweets and len(word) > 1 and word[0] in "@#":
        return word[0] + shape(word[1:])
    s = re.sub(r"[A-Z]", "X", word)
    s = re.sub(r"[a-z]", "x", s)
    s = re.sub(r"\d", "d", s)
    s = re.sub(r"(.)\1+", r"\1", s)
    return s[:5]


def word_chars(word: str, tweets=False, n=CHAR_LEN) -> str:
    """The characters the character encoder reads: the word (URLs and @users as on the word
    feature), its first and last n/2 when it is longer than n."""
    w = normalize(word, tweets) if tweets and (is_url(word) or word[:1] == "@") else word
    return w if len(w) <= n else w[: n // 2] + w[-(n - n // 2) :]


def token_features(word: str, tweets=False) -> list[str]:
    """The string value of every feature in FEATURES for one token."""
    low = word.lower()
    norm = normalize(word, tweets)
    base = norm if norm.startswith("<") else low
    return [
        norm,
        base[:1],
        base[:2],
        base[:3],
        base[-1:],
        base[-2:],
        base[-3:],
        shape(word, tweets),
    ]


class FeatureVocab:
    """Vocabularies of every feature, built from the training sentences."""

    def __init__(self, vocabs: dict, word_counts: dict, tweets=False, chars=None):
        self.vocabs = vocabs  # feature -> {value: id}, ids from 2
        self.word_counts = word_counts  # normalized word -> training count
        self.tweets = bool(tweets)
        self.chars = chars  # {character: id}, ids from 2; None: no chars
        self._lookup = [vocabs[f] for f in FEATURES]

    @classmethod
    def build(cls, sentences, tweets=False, min_count=None, chars=False):
        """``min_count``: feature -> the fewest occurrences a value needs (default 1 for
        words, 2 for affixes and shapes).  ``chars``: also each word's characters, as
        CHAR_LEN more ids (characters seen at least twice)."""
        min_count = {**{f: 2 for f in FEATURES}, "word": 1, **(min_count or {})}
        counts = {f: Counter() for f in FEATURES}
        char_counts = Counter()
        for sent in sentences:
            for w in sent:
                for f, v in zip(FEATURES, token_features(w, tweets)):
                    counts[f][v] += 1
                if chars:
                    char_counts.update(word_chars(w, tweets))
        char_ids = None
        if chars:
            kept = sorted(
                (c for c, k in char_counts.items() if k >= 2), key=lambda c: (-char_counts[c], c)
            )
            char_ids = {c: i + 2 for i, c in enumerate(kept)}
        vocabs = {}
        for f in FEATURES:
            kept = sorted(
                (v for v, c in counts[f].items() if c >= min_count[f]),
                key=lambda v: (-counts[f][v], v),
            )
            vocabs[f] = {v: i + 2 for i, v in enumerate(kept)}
        return cls(vocabs, dict(counts["word"]), tweets, char_ids)

    def sizes(self):
        """input_dim of each feature's embedding table (padding and unknown included)."""
        return [len(self.vocabs[f]) + 2 for f in FEATURES]

    def encode(self, words, extra=None) -> np.ndarray:
        """(T, F) ids of one sentence; ``extra``: (T, E) ids of the application's own
        features (e.g. a gazetteer's), appended after FEATURES."""
        rows = [
            [lk.get(v, UNK) for lk, v in zip(self._lookup, token_features(w, self.tweets))]
            for w in words
        ]
        ids = np.asarray(rows, dtype=np.int64).reshape(len(words), len(FEATURES))
        if extra is not None:
            extra = np.asarray(extra, dtype=np.int64).reshape(len(words), -1)
            ids = np.concatenate([ids, extra], axis=1)
        if self.chars is not None:
            c = np.zeros((len(words), CHAR_LEN), dtype=np.int64)
            for t, w in enumerate(words):
                cs = word_chars(w, self.tweets)
                c[t, : len(cs)] = [self.chars.get(ch, UNK) for ch in cs]
            ids = np.concatenate([ids, c], axis=1)
        return ids

    def char_size(self):
        """input_dim of the character table (0 without characters)."""
        return 0 if self.chars is None else len(self.chars) + 2

    def known(self, word) -> bool:
        return normalize(word, self.tweets) in self.vocabs["word"]

    def rare_word_ids(self, max_count=1) -> np.ndarray:
        """The word ids seen at most ``max_count`` times in training (for word dropout)."""
        ids = [i for v, i in self.vocabs["word"].items() if self.word_counts.get(v, 0) <= max_count]
        return np.asarray(sorted(ids), dtype=np.int64)

    def to_json(self) -> dict:
        return {
            "tweets": self.tweets,
            "features": list(FEATURES),
            "vocabs": {f: sorted(self.vocabs[f], key=self.vocabs[f].get) for f in FEATURES},
            "chars": None
            if self.chars is None
            else "".join(sorted(self.chars, key=self.chars.get)),
        }

    @classmethod
    def from_json(cls, d) -> FeatureVocab:
        if not isinstance(d, dict) or list(d.get("features", [])) != list(FEATURES):
            raise ValueError(
                "the model file's feature vocabularies do not match this version of "
                "rnnkit; train the model again"
            )
        vocabs = {f: {v: i + 2 for i, v in enumerate(d["vocabs"][f])} for f in FEATURES}
        chars = d.get("chars")
        chars = None if chars is None else {c: i + 2 for i, c in enumerate(chars)}
        return cls(vocabs, {}, d.get("tweets", False), chars)


# -- the layer -----------------------------------------------------------------------------------
class FeatureEmbedding(Wrapper):
    """(N, T, F) integer ids -> (N, T, Σ dims): one Embedding per feature, concatenated.
    The output mask is ``ids[..., 0] != 0`` (the first feature's padding).

    With ``char_len`` > 0 the last ``char_len`` columns are a word's character ids
    (0 = padding): an Embedding and a Bidirectional LSTM read each real word's characters
    and its last states (2 · ``char_units``) are concatenated too (Lample et al. 2016)."""

    def __init__(
        self,
        input_dims,
        output_dims,
        char_input_dim=0,
        char_len=0,
        char_dim=16,
        char_units=25,
        **kwargs,
    ):
        super().__init__(**kwargs)
        input_dims, output_dims = list(input_dims), list(output_dims)
        if not input_dims or len(input_dims) != len(output_dims):
            raise ValueError(
                f"{self.who}: input_dims and output_dims must be lists of the same "
                f"non-zero length; got {input_dims!r} and {output_dims!r}"
            )
        self.input_dims = [validation.positive_int(d, "input_dims", self.who) for d in input_dims]
        self.output_dims = [
            validation.positive_int(d, "output_dims", self.who) for d in output_dims
        ]
        self.embeddings = [
            Embedding(i, o, mask_zero=(k == 0), name=f"f{k}", dtype=self.dtype)
            for k, (i, o) in enumerate(zip(self.input_dims, self.output_dims))
        ]
        self.char_len = int(char_len)
        self.char_input_dim, self.char_dim, self.char_units = (
            int(char_input_dim),
            int(char_dim),
            int(char_units),
        )
        self.char_embedding = self.char_rnn = None
        if self.char_len:
            from ..layers import LSTM, Bidirectional

            self.char_embedding = Embedding(
                self.char_input_dim, self.char_dim, mask_zero=True, name="chars", dtype=self.dtype
            )
            self.char_rnn = Bidirectional(
                LSTM(self.char_units, name="char_lstm", dtype=self.dtype), name="char_birnn"
            )
            self.char_rnn.build((None, self.char_len, self.char_dim))
        self._ctx = None

    def sublayers(self):
        return list(self.embeddings) + (
            [self.char_embedding, self.char_rnn] if self.char_len else []
        )

    @property
    def width(self):
        return len(self.embeddings) + self.char_len

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (
            sum(self.output_dims) + 2 * self.char_units * bool(self.char_len),
        )

    def forward(self, x, training=False, mask=None):
        if not hasattr(x, "ndim"):
            x = np.asarray(x)
        F = self.width
        if x.ndim != 3 or x.shape[-1] != F:
            raise ValueError(
                f"{self.who}: x must be integer ids of shape (batch, time, {F}); "
                f"got shape {tuple(x.shape)}"
            )
        parts = [emb.forward(x[..., k]) for k, emb in enumerate(self.embeddings)]
        self.output_mask = self.embeddings[0].output_mask
        rows = None
        if self.char_len:
            xp = backend.xp()
            chars = x[..., -self.char_len :].reshape(-1, self.char_len)
            rows = xp.nonzero(chars[:, 0] != 0)[0]  # the words that have characters
            h = xp.zeros((chars.shape[0], 2 * self.char_units), dtype=parts[0].dtype)
            if rows.size:
                sub = chars[rows]
                sub = sub[:, : max(1, int((sub != 0).sum(axis=1).max()))]
                e = self.char_embedding.forward(sub)
                h[rows] = self.char_rnn.forward(
                    e, training=training, mask=self.char_embedding.output_mask
                )
            parts.append(h.reshape(x.shape[:2] + (h.shape[-1],)))
        self._ctx = rows
        return backend.xp().concatenate(parts, axis=-1)

    def backward(self, dy):
        if not self.built or self.embeddings[0]._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        start = 0
        for emb, d in zip(self.embeddings, self.output_dims):
            emb.backward(dy[..., start : start + d])
            start += d
        if self.char_len:
            rows = self._ctx
            dh = dy[..., start:].reshape(-1, 2 * self.char_units)
            if rows.size:
                self.char_embedding.backward(self.char_rnn.backward(dh[rows]))
            else:  # no word had characters: zero gradients
                for layer in (self.char_embedding, self.char_rnn):
                    for lay in layer.walk():
                        lay._grads = {k: backend.xp().zeros_like(v) for k, v in lay.params.items()}
        return None

    def get_config(self):
        config = super().get_config()
        config.update(input_dims=self.input_dims, output_dims=self.output_dims)
        if self.char_len:
            config.update(
                char_input_dim=self.char_input_dim,
                char_len=self.char_len,
                char_dim=self.char_dim,
                char_units=self.char_units,
            )
        return config


LAYER_CLASSES.setdefault("FeatureEmbedding", FeatureEmbedding)  # so that load_model finds it


def build_tagger(
    vocab: FeatureVocab,
    num_tags: int,
    *,
    units=100,
    cell="lstm",
    word_dim=64,
    affix_dim=16,
    shape_dim=16,
    dropout=0.3,
    extra_sizes=(),
    extra_dim=8,
    char_units=25,
):
    """FeatureEmbedding -> Dropout -> Bidirectional(LSTM|GRU) -> Dropout -> softmax per token.
    ``extra_sizes``: input_dim of each extra feature (embedded in ``extra_dim`` each)."""
    from .. import GRU, LSTM, Bidirectional, Dense, Dropout, Sequential

    dims = [word_dim] + [affix_dim] * 6 + [shape_dim] + [extra_dim] * len(extra_sizes)
    rnn = {"lstm": LSTM, "gru": GRU}[cell](units, return_sequences=True)
    sizes = vocab.sizes() + [int(n) for n in extra_sizes]
    char_len = CHAR_LEN if vocab.chars is not None else 0
    return Sequential(
        [
            FeatureEmbedding(
                sizes,
                dims,
                name="features",
                char_len=char_len,
                char_input_dim=vocab.char_size(),
                char_units=char_units,
                input_shape=(None, len(sizes) + char_len),
            ),
            Dropout(dropout, name="dropout_in"),
            Bidirectional(rnn, name="birnn"),
            Dropout(dropout, name="dropout_out"),
            Dense(num_tags, activation="softmax", name="tags"),
        ]
    )


# -- batches, training and prediction ------------------------------------------------------------
def pad(rows, dtype=np.int64):
    """Stack (T_i, ...) arrays into (N, max T, ...), zero-padded at the end."""
    T = max(len(r) for r in rows)
    out = np.zeros((len(rows), T) + rows[0].shape[1:], dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def length_batches(lengths, batch_size, rng=None):
    """Index batches of similar lengths (little padding); shuffled when ``rng`` is given."""
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def predict_ids(model, X, batch_size=128):
    """Most likely tag id of every token: a list of (T_i,) arrays, in X's order."""
    out = [None] * len(X)
    for idx in length_batches([len(x) for x in X], batch_size):
        probs = backend.to_numpy(model.forward(pad([X[i] for i in idx]), training=False))
        for j, i in enumerate(idx):
            out[i] = probs[j, : len(X[i])].argmax(-1)
    return out


def fit_labeller(
    model,
    X,
    Y,
    X_val,
    Y_val,
    *,
    score,
    seconds,
    epochs,
    batch_size,
    rng,
    rare_ids=(),
    word_dropout=0.0,
    tag_weights=None,
    patience=4,
    quiet=False,
    stream=None,
    average_from=None,
):
    """Train ``model`` on sentences X (list of (T, F) ids) with tags Y (list of (T,) ids):
    length-bucketed batches, words in ``rare_ids`` replaced by UNK with probability
    ``word_dropout``, per-tag loss weights ``tag_weights`` (K,), until ``epochs`` are done,
    ``seconds`` have passed, or ``score(Y_val, predictions)`` has not improved for
    ``patience`` epochs.  The weights of the best validation epoch are kept.  With
    ``average_from`` = k, the mean of the weights at the ends of epochs k, k+1, ... (weight
    averaging, Izmailov et al. 2018) is scored on the validation set too after every epoch,
    and kept when it scores best.  Returns the history:
    [{"epoch", "loss", "val_score", "seconds"[, "averaged_val_score"]}, ...]."""
    rare = np.zeros(max(model.layers[0].input_dims[0], 1), dtype=bool)
    rare[np.asarray(rare_ids, dtype=np.int64)] = True
    weights = None if tag_weights is None else np.asarray(tag_weights, dtype=np.float64)
    start = time.perf_counter()
    best, best_weights, bad, history = -np.inf, None, 0, []
    avg, n_avg = None, 0
    for epoch in range(1, epochs + 1):
        batches = length_batches([len(x) for x in X], batch_size, rng)
        bar = None if quiet else ProgressBar(len(batches), unit="batches", stream=stream)
        if bar is not None:
            print(
                f"Epoch {epoch}/{epochs} (time left {format_duration(seconds - (time.perf_counter() - start))})",
                file=bar.stream,
            )
        total, n, out_of_time = 0.0, 0, False
        for b, idx in enumerate(batches, 1):
            xb = pad([X[i] for i in idx])
            yb = pad([Y[i] for i in idx])
            if word_dropout > 0:
                drop = rare[xb[..., 0]] & (rng.random(xb.shape[:2]) < word_dropout)
                xb[..., 0][drop] = UNK
            sw = None
            if weights is not None:
                sw = weights[yb] * (xb[..., 0] != PAD)
            rec = model.train_on_batch(xb, yb, sample_weight=sw)
            if not np.isfinite(rec["loss"]):
                raise FloatingPointError(
                    f"the training loss became {rec['loss']} at epoch {epoch}; "
                    f"try a smaller learning rate"
                )
            total += rec["loss"] * len(idx)
            n += len(idx)
            if bar is not None:
                bar.update(b, {"loss": total / n})
            if time.perf_counter() - start > seconds:
                out_of_time = True
                break
        val = float(score(Y_val, predict_ids(model, X_val)))
        record = {"epoch": epoch, "loss": total / max(n, 1), "val_score": val}
        improved = val > best
        if improved:
            best, best_weights = val, model.get_weights()
        if average_from is not None and epoch >= average_from:
            current = model.get_weights()
            n_avg += 1
            avg = (
                [w.copy() for w in current]
                if avg is None
                else [a + (w - a) / n_avg for a, w in zip(avg, current)]
            )
            model.set_weights(avg)
            record["averaged_val_score"] = float(score(Y_val, predict_ids(model, X_val)))
            model.set_weights(current)
            if record["averaged_val_score"] > best:
                best, best_weights, improved = (
                    record["averaged_val_score"],
                    [a.copy() for a in avg],
                    True,
                )
        record["seconds"] = round(time.perf_counter() - start, 1)
        history.append(record)
        if bar is not None:
            bar.finish(
                b,
                {
                    "loss": record["loss"],
                    "val": val,
                    **(
                        {"val(avg)": record["averaged_val_score"]}
                        if "averaged_val_score" in record
                        else {}
                    ),
                },
            )
        bad = 0 if improved else bad + 1
        if out_of_time or bad >= patience:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history


def split_validation(n, fraction=0.1):
    """(train indices, validation indices): the validation set is the last ``fraction``."""
    n_val = max(1, int(round(n * fraction)))
    if n - n_val < 1:
        raise ValueError(f"{n} training sentences are too few to hold out a validation tail")
    return np.arange(n - n_val), np.arange(n - n_val, n)


# -- the picture of an evaluation ----------------------------------------------------------------
def plot_report(path, title, groups: dict, history, score_name, history_scale=1.0):
    """A PNG: bars of ``groups`` ({group: {series: value}}) beside the validation score of
    every training epoch (``history`` as fit_labeller returns it, times ``history_scale``)."""
    from ..plotting import pyplot, save

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    names = list(groups)
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    width = 0.8 / max(len(series), 1)
    for k, s in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(names))]
        ys = [groups[g].get(s, 0.0) for g in names]
        bars = ax.bar(xs, ys, width, label=s)
        for b, y in zip(bars, ys):
            ax.annotate(
                f"{y:.1f}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom", fontsize=7
            )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(
        names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    ax.set_ylabel(score_name)
    ax.set_title(title)
    ax.legend()
    if history:
        bx.plot(
            [h["epoch"] for h in history],
            [history_scale * h["val_score"] for h in history],
            marker="o",
            label="this epoch's weights",
        )
        avg = [h for h in history if "averaged_val_score" in h]
        if avg:
            bx.plot(
                [h["epoch"] for h in avg],
                [history_scale * h["averaged_val_score"] for h in avg],
                marker="s",
                label=f"weights averaged since epoch {avg[0]['epoch']}",
            )
            bx.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    bx.xaxis.set_major_locator(MaxNLocator(integer=True))
    bx.set_xlabel("epoch")
    bx.set_ylabel(f"validation {score_name}")
    bx.set_title("training")
    return save(fig, path)


def add_plot_command(app_name, evaluate, groups_of, score_name, history_scale=1.0):
    """The ``plot`` action of an application: evaluate, then draw ``groups_of(result)``."""

    def configure(p):
        p.add_argument(
            "--out",
            metavar="PNG",
            default=f"{app_name}.png",
            help="the picture to write (default: %(default)s)",
        )

    def run(args):
        """evaluate on the test split and draw the scores and the training curve as a PNG"""
        import importlib

        from .task import default_model_path, load_app_model

        app = importlib.import_module(f"rnnkit.apps.{app_name}").APP
        model, meta = load_app_model(args.model or default_model_path(app_name), app)
        result = evaluate(model, meta, args)
        path = plot_report(
            args.out,
            f"rnnkit {app_name}: test split",
            groups_of(result),
            meta.get("history"),
            score_name,
            history_scale,
        )
        print(f"Wrote {path}")
        return 0

    return {"plot": (configure, run)}


def add_labeller_options(p, *, unit, epochs, cell, units_help):
    """--epochs, --units, --cell and --batch of the word labellers (tag, ner); ``unit`` names
    what a batch holds (sentence, tweet)."""
    from .task import positive_int

    p.add_argument(
        "--epochs",
        type=positive_int,
        default=epochs,
        help=f"at most this many passes over the training {unit}s (default: {epochs})",
    )
    p.add_argument(
        "--units",
        type=positive_int,
        default=100,
        help=f"{units_help} in each direction (default: 100)",
    )
    other = "gru" if cell == "lstm" else "lstm"
    p.add_argument(
        "--cell", choices=(cell, other), default=cell, help=f"recurrent cell (default: {cell})"
    )
    p.add_argument("--batch", type=positive_int, default=32, help=f"{unit}s a batch (default: 32)")


def compile_labeller(model):
    """Sparse cross-entropy, Adam(2e-3) with global norm clipping at 5."""
    model.compile(
        loss="sparse_categorical_crossentropy", optimizer=optim.Adam(2e-3, clip_global_norm=5.0)
    )


def train_settings(args, **more) -> dict:
    """The settings a labeller's model file records, then ``more``."""
    return {
        "units": args.units,
        "cell": args.cell,
        "batch": args.batch,
        "epochs": args.epochs,
        "minutes": args.minutes,
        "seed": args.seed,
        **more,
    }


def fit_summary(meta) -> dict:
    """The training time and epoch count an evaluation reports."""
    return {"train_seconds": meta.get("train_seconds"), "epochs": len(meta.get("history", []))}


def read_token_inputs(inputs, max_words, *, verb, unit):
    """The inputs tokenized; AppInputError for one without words or over ``max_words``."""
    from .task import AppInputError

    out = []
    for text in inputs:
        toks = tokenize(text)
        if not toks:
            raise AppInputError(f"nothing to {verb} in {text!r}: give a sentence with words")
        if len(toks) > max_words:
            raise AppInputError(
                f"a {unit} of {len(toks)} tokens is too long; at most {max_words} a line"
            )
        out.append(toks)
    return out
