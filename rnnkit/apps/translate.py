"""``rnnkit translate``: English → Spanish with the lecture's encoder–decoder.

Data: Bible verses, the King James Version against the Reina-Valera 1909
(``rnnkit.datasets.bible_en_es``).  Every tenth verse is held out for the test and a further
tenth for validation; both keep the verses of at most 15 words on each side.  The model
learns from the other verses of up to ``--train-words`` (40) words.

Model: lowercased text (the output is recased from the training text) cut into subword
units by byte-pair encoding (``--subwords`` merges learned from both languages together,
``rnnkit/data/subwords.py``: frequent words stay whole, rare ones and names become a few
pieces, so no word is unknown), or with ``--subwords 0`` whole words, those seen once in
training unknown.  An LSTM encoder reads the English units (in reverse order, and with
``--bidirectional``, the default, both ways); its final state starts an LSTM decoder
trained with teacher forcing, with Luong attention and a fixed lexicon, IBM model 1's table
over the units, as a bias on the output (Arthur et al. 2016;
``rnnkit/seq2seq_attention.py``), and dropout.  ``--no-lexicon`` trains the lecture's plain
encoder-decoder, ``--no-lexicon --attention`` the attention model alone.  With
``--average-epochs K`` (off by default), the mean of the last K epochs' weights is kept if
it translates the validation verses better (checkpoint averaging).  Beam search (``--beam``, 4 by default) with a length penalty, or
greedy decoding with ``--beam 1``.  An unknown Spanish word or unit (<unk>) is replaced
through the source position the decoder attended to most when it wrote it (Luong et al.
2015): by the dictionary's translation of that English word (word level), or by the
source unit itself (subwords; a word of new letters), or copied when the dictionary does
not know it (names mostly: "Zorblax" stays "Zorblax").

Baselines, computed by rnnkit on the same test verses: the source copied unchanged, and
word for word through a dictionary learned from the same training pairs with IBM model 1
(each English word becomes its most probable Spanish word).  Metrics: chrF and BLEU
(sacrebleu's defaults).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from .. import seq2seq_attention  # noqa: F401  (registers the attention model for loading)
from ..argtypes import dropout_rate, non_negative_int
from ..data.subwords import END as SUBWORD_END
from ..data.subwords import Subwords
from ._buckets import (
    average_last_epochs,
    compile_for_budget,
    keep_best,
    plot_curve,
    train_for,
)
from .task import App, AppInputError, positive_int

PAD, START, END, UNK = 0, 1, 2, 3
SRC_PAD, SRC_UNK = 0, 1
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
# beam search ranks its finished beams by log p / length ** LENGTH_PENALTY: without it, it
# prefers short translations (length ratio 0.90 against greedy's 0.92; chrF 40.3 and with
# it 40.9 on the test verses, with the default model of 2026-12-03)
LENGTH_PENALTY = 1.0
TRAIN_WORDS = 40  # the longest training verses, in words (the test keeps those of <= 15)
SUBWORDS = 8000  # byte-pair merges, for both languages together
# checkpoint averaging over the last epochs: off, as it never beat the best epoch of a
# 9-minute run (the learning rate has decayed by then; docs/apps/translate.md)
AVERAGE_EPOCHS = 0
BEAM = 4  # predict's default beam width, and the decoding evaluate's headline number uses
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?)»]’")
_NO_SPACE_AFTER = set("¿¡(«[")


# -- text ------------------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    """Words and punctuation marks, case kept."""
    return _TOKEN.findall(text)


def detokenize(tokens) -> str:
    out = ""
    for tok in tokens:
        if out and not (tok in _NO_SPACE_BEFORE or out[-1] in _NO_SPACE_AFTER):
            out += " "
        out += tok
    return out


def truecase_map(sentences) -> dict:
    """{lowercase word: its most frequent spelling, not counting sentence-initial words}
    for the words whose usual spelling is not all lowercase."""
    counts: dict = {}
    for s in sentences:
        for k, tok in enumerate(tokenize(s)):
            if k == 0:
                continue
            counts.setdefault(tok.lower(), Counter())[tok] += 1
    return {
        low: c.most_common(1)[0][0]
        for low, c in sorted(counts.items())
        if c.most_common(1)[0][0] != low
    }


def recase(tokens, truecase) -> str:
    """Lowercase tokens -> a sentence: the usual spelling of each word, the first word and
    each one after . ? ! capitalised."""
    words, cap = [], True
    for tok in tokens:
        w = truecase.get(tok, tok)
        if cap and w[:1].isalpha():
            w = w[0].upper() + w[1:]
            cap = False
        elif cap and w not in ("¿", "¡", "(", "«"):
            cap = False
        if tok in (".", "?", "!"):
            cap = True
        words.append(w)
    return detokenize(words)


class Vocab:
    def __init__(self, words, specials):
        self.words = list(specials) + [w for w in words if w not in specials]
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self):
        return len(self.words)

    @classmethod
    def from_sentences(cls, token_lists, specials, min_count=2):
        counts = Counter(t for toks in token_lists for t in toks)
        words = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(words, specials)


# -- the word dictionary (IBM model 1) -----------------------------------------------------------
def ibm1(src, tgt, target_size, iterations=8, chunk=2048):
    """IBM model 1's EM for t(target word | source word), kept sparse.

    src (N, S) source ids, -1 for padding (put the empty word in each row yourself);
    tgt (N, T) target ids, -1 for padding.  Started uniform over the target words each
    source word meets in a pair, as Brown et al. do.  Returns (keys, t): the co-occurring
    (source, target) pairs as keys e * target_size + f, sorted, and t(f | e) for each.

    E-step: each target word f of a pair is shared among the pair's source words e in
    proportion to t(f | e); M-step: t(f | e) = the shares of (e, f) / all the shares of e.
    The pairs are visited ``chunk`` at a time, by length, each chunk cut to its own longest
    pair (memory: about 40 bytes a source word × target word of a chunk)."""
    src, tgt = np.asarray(src, dtype=np.int64), np.asarray(tgt, dtype=np.int64)
    sizes = (src >= 0).sum(axis=1) * (tgt >= 0).sum(axis=1)
    order = np.argsort(sizes, kind="stable")
    blocks = []  # per chunk: (index of each co-occurrence's key, its target word's number)
    for lo in range(0, len(order), chunk):
        rows = order[lo : lo + chunk]
        s, t = src[rows], tgt[rows]
        s, t = s[:, (s >= 0).any(axis=0)], t[:, (t >= 0).any(axis=0)]
        both = (s >= 0)[:, :, None] & (t >= 0)[:, None, :]  # (n, S, T)
        keys = (s[:, :, None] * target_size + t[:, None, :])[both]  # one per (n, s, t)
        n, T = t.shape
        word = np.broadcast_to((np.arange(n)[:, None] * T + np.arange(T))[:, None, :], both.shape)
        blocks.append([keys, word[both]])
    keys, inv = np.unique(np.concatenate([b[0] for b in blocks]), return_inverse=True)
    start = 0
    for b in blocks:  # the keys' places in the sorted list, chunk by chunk
        b[0], start = inv[start : start + len(b[0])], start + len(b[0])
    e = keys // target_size
    t = 1.0 / np.bincount(e)[e]
    for _ in range(iterations):
        count = np.zeros(len(keys))
        for at, word in blocks:
            g = t[at]
            z = np.bincount(word, g)  # Σ_e t(f | e) for each target word f of the chunk
            count += np.bincount(at, g / z[word], minlength=len(keys))
        t = count / np.bincount(e, count)[e]
    return keys, t


def _padded(id_lists, extra=None):
    """(N, longest) ids, -1 for padding; ``extra`` is appended to each row."""
    rows = [list(r) + ([] if extra is None else [extra]) for r in id_lists]
    out = np.full((len(rows), max(1, max(map(len, rows), default=1))), -1, dtype=np.int64)
    for n, r in enumerate(rows):
        out[n, : len(r)] = r
    return out


def ibm1_dictionary(pairs, iterations=8):
    """{english word: best Spanish word} from (english tokens, spanish tokens) pairs by IBM
    model 1 (``ibm1``, with an empty English word to absorb function words); ties broken by
    the Spanish word's frequency, then alphabetically (the later word)."""
    en_words = sorted({w for en, _ in pairs for w in en})
    es_count = Counter(f for _, es in pairs for f in es)
    es_words = sorted(es_count)
    ei = {w: i for i, w in enumerate(en_words)}
    fi = {w: i for i, w in enumerate(es_words)}
    null = len(en_words)
    src = _padded([[ei[w] for w in en] for en, _ in pairs], extra=null)
    tgt = _padded([[fi[w] for w in es] for _, es in pairs])
    keys, t = ibm1(src, tgt, len(es_words), iterations)
    e, f = keys // len(es_words), keys % len(es_words)
    freq = np.array([es_count[w] for w in es_words])[f]
    # per English word, the last of (t, frequency, word) in sorted order is the best
    order = np.lexsort((f, freq, np.round(t, 12), e))
    last = np.r_[e[order][1:] != e[order][:-1], True]
    best = order[last]
    return {en_words[i]: es_words[j] for i, j in zip(e[best], f[best]) if i != null}


def ibm1_lexicon(x, y, source_size, target_size, iterations=8, entries=None):
    """IBM model 1's table t(target word | source word) over the model's vocabularies: the
    lexicon of ``--lexicon``.

    x (N, S) source ids (0: padding), y (N, T) target ids (ids below <unk> are not words:
    padding, <s>, </s>).  The EM of ``ibm1`` with an empty source word, run on the ids the
    model reads and writes, so that the rows and columns of <unk> are learned too (unknown
    English words, names mostly, go to the Spanish <unk>, which the translator replaces by
    the source word).  The empty word's row is dropped; the <pad> row and the <pad>, <s>,
    </s> columns are 0 (attention gives padding no weight; </s> is left to the network).

    Returns the dense (source_size, target_size) table, or with ``entries`` = K the sparse
    rows (ids, p), each (source_size, K): each source word's K most probable target words
    (ties: the smaller id) and their probabilities, the rest of the row dropped."""
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    src = np.where(x != SRC_PAD, x, -1)
    src = np.concatenate([src, np.full((len(x), 1), source_size, dtype=np.int64)], axis=1)
    keys, t = ibm1(src, np.where(y >= UNK, y, -1), target_size, iterations)
    e, f = keys // target_size, keys % target_size
    word = e < source_size  # the empty word's row dropped
    e, f, t = e[word], f[word], t[word]
    if entries is None:
        lexicon = np.zeros((source_size, target_size))
        lexicon[e, f] = t
        lexicon[SRC_PAD] = 0.0
        return lexicon
    order = np.lexsort((f, -t, e))  # by source word, then most probable first
    e, f, t = e[order], f[order], t[order]
    rank = np.arange(len(e)) - np.searchsorted(e, e)  # position within the row
    keep = rank < entries
    ids = np.zeros((source_size, entries), dtype=np.int64)
    p = np.zeros((source_size, entries))
    ids[e[keep], rank[keep]] = f[keep]
    p[e[keep], rank[keep]] = t[keep]
    return ids, p


def dictionary_translate(tokens, dictionary) -> list[str]:
    """Word for word: each (lowercased) token through the dictionary, unknown ones copied."""
    return [dictionary.get(t.lower(), t.lower()) for t in tokens]


# -- encoding ---------------------------------------------------------------------------------------
def encode_sources(token_lists, vocab: Vocab, length):
    """Source ids, reversed, left-aligned (padding at the end), cut to ``length``."""
    x = np.zeros((len(token_lists), length), dtype=np.int64)
    for n, toks in enumerate(token_lists):
        ids = [vocab.index.get(t.lower(), SRC_UNK) for t in toks][:length]
        x[n, : len(ids)] = ids[::-1]
    return x


def encode_targets(token_lists, vocab: Vocab, length):
    """<s> w1 .. wn </s>, padded to ``length`` + 2."""
    y = np.zeros((len(token_lists), length + 2), dtype=np.int64)
    for n, toks in enumerate(token_lists):
        ids = [START] + [vocab.index.get(t.lower(), UNK) for t in toks][:length] + [END]
        y[n, : len(ids)] = ids
    return y


class Translator:
    """The model and everything needed to use it (vocabularies, recasing, dictionary)."""

    def __init__(self, model, meta):
        self.model = model
        self.src = Vocab(meta["source_vocab"], ["<pad>", "<unk>"])
        self.tgt = Vocab(meta["target_vocab"], SPECIALS)
        self.truecase = meta["truecase"]
        self.dictionary = meta["dictionary"]
        self.max_tokens = int(meta["max_tokens"])
        self.subwords = Subwords(meta["subwords"]) if meta.get("subwords") else None

    def units(self, tokens) -> list[str]:
        """Tokens -> what the model reads: the lowercased words, or their subword units."""
        words = [t.lower() for t in tokens]
        return self.subwords.split_all(words) if self.subwords else words

    def translate(self, sentences, beam=1, batch=128, length_penalty=LENGTH_PENALTY):
        """English sentences -> Spanish sentences; ``beam`` > 1 decodes with beam search,
        the beams' log-probabilities divided by their length ** ``length_penalty``."""
        token_lists = [tokenize(s) for s in sentences]
        attention = self.model.has_attention
        out = []
        for b in range(0, len(token_lists), batch):
            chunk = token_lists[b : b + batch]
            units = [self.units(t) for t in chunk]
            length = max(1, max(len(u) for u in units))
            x = encode_sources(units, self.src, length)
            ids = self.model.generate(
                x,
                max_length=max(8, int(1.5 * length) + 4),
                method="beam" if beam > 1 else "greedy",
                beam_width=beam,
                length_penalty=length_penalty,
                return_attention=attention,
            )
            ids, where = ids if attention else (ids, [None] * len(ids))
            for toks, row, at in zip(chunk, ids, where):
                out.append(self._sentence(toks, row, at))
        return out

    def _sentence(self, source_tokens, ids, attended=None) -> str:
        """Target ids -> a sentence, recased; a word spelled as in the source keeps the
        source's capitals where the training text does not know it (a new name)."""
        case = {t.lower(): t for t in source_tokens[1:] if t[:1].isupper()}
        case.update(self.truecase)
        if self.subwords is None:
            return recase(self._words(source_tokens, ids, attended), case)
        return recase(self._joined(source_tokens, ids, attended), case)

    def _joined(self, source_tokens, ids, attended=None) -> list[str]:
        """Target unit ids -> words.  With the attended source positions (``attended``, in
        the reversed order the encoder reads): an unknown unit (a new letter) becomes the
        attended source unit, and a word whose first unit was written while attending to
        a new name (a capitalised English word the training text never had) and begins
        with the name's first three letters becomes that name, once: the units would
        otherwise spell a Spanish word that looks like it ("Zorblax" -> "zorra")."""
        per_token = [self.units([t]) for t in source_tokens]
        source = [u for units in per_token for u in units]
        owner = [k for k, units in enumerate(per_token) for _ in units]  # unit -> token
        names = {
            k
            for k, t in enumerate(source_tokens)
            if t[:1].isupper() and t.isalpha() and t.lower() not in self.dictionary
        }
        words: list[str] = []
        part: list[str] = []
        first = copied = None

        def end_word():
            nonlocal copied
            word = "".join(Subwords.join(part))
            name = source_tokens[first].lower() if first in names else ""
            if name and word[:3] == name[:3]:  # the name, misspelled
                if first != copied:
                    words.append(source_tokens[first])
                copied = first
            else:
                words.append(word)
                copied = None
            part.clear()

        for j, i in enumerate(ids):
            if i <= UNK and (i != UNK or attended is None):
                continue
            at = None
            if attended is not None and 0 <= attended[j] < len(source):
                at = len(source) - 1 - attended[j]
            unit = self.tgt.words[i] if i > UNK else source[at] if at is not None else ""
            if not part:
                first = owner[at] if at is not None else None
            part.append(unit)
            if unit.endswith(SUBWORD_END):
                end_word()
        if part:  # a last word without its end mark
            end_word()
        return words

    def _words(self, source_tokens, ids, attended=None) -> list[str]:
        """Target ids -> words.  Each <unk> becomes the dictionary's translation of
        the source word the decoder attended to most when it wrote it (``attended``: source
        positions, in the reversed order the encoder reads; Luong et al. 2015's unknown
        word replacement), or, without attention, of the next source word the model does
        not know; a word the dictionary does not know either (a name) is copied."""
        unknown = [t for t in source_tokens if t.lower() not in self.src.index and t.isalnum()]
        n = len(source_tokens)
        words = []
        for j, i in enumerate(ids):
            if i == UNK:
                if attended is not None and 0 <= n - 1 - attended[j] < n:
                    w = source_tokens[n - 1 - attended[j]]
                elif attended is None and unknown:
                    w = unknown.pop(0)
                else:
                    continue
                words.append(self.dictionary.get(w.lower(), w))
            elif i > UNK:
                words.append(self.tgt.words[i])
        return words


# -- the application ----------------------------------------------------------------------------------
def _data(args):
    from ..datasets import bible_en_es

    pairs = bible_en_es.verse_pairs(
        getattr(args, "data", None), quiet=getattr(args, "quiet", False)
    )
    max_words = getattr(args, "max_words", 15)
    parts = bible_en_es.split(pairs, max_words)
    # the model learns from longer verses too; validation and test keep the short ones
    train_words = max(max_words, getattr(args, "train_words", None) or max_words)
    parts["train"] = bible_en_es.split(pairs, train_words)["train"]
    for name in ("train", "test"):
        if not parts[name]:
            raise AppInputError(
                f"--data: no {name} verses with at most "
                f"{getattr(args, 'max_words', 15)} words on both sides"
            )
    return parts


def configure_train(p):
    p.add_argument(
        "--units",
        type=positive_int,
        default=256,
        help="LSTM units of the encoder and decoder (default: %(default)s)",
    )
    p.add_argument(
        "--embed",
        type=positive_int,
        default=128,
        help="embedding size of the words or subword units (default: %(default)s)",
    )
    p.add_argument(
        "--cell",
        choices=["lstm", "gru", "rnn"],
        default="lstm",
        help="recurrent cell (default: %(default)s)",
    )
    p.add_argument("--batch", type=positive_int, default=16, help="batch size (default: 16)")
    p.add_argument(
        "--attention",
        action="store_true",
        help="with --no-lexicon: add Luong attention between the decoder and the output layer",
    )
    p.add_argument(
        "--lexicon",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="attention plus a fixed word lexicon, IBM model 1's t(Spanish | English) from "
        "the training pairs, added to the output as a bias (Arthur et al. 2016; the "
        "default); --no-lexicon trains the lecture's plain encoder-decoder (or, with "
        "--attention, the attention model)",
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        default=3e-3,
        help="Adam's learning rate, decayed along a cosine over the budget (default: %(default)s)",
    )
    p.add_argument(
        "--max-words",
        type=positive_int,
        default=15,
        help="keep verses with at most this many words on both sides (default: 15)",
    )
    p.add_argument(
        "--train-words",
        type=positive_int,
        default=TRAIN_WORDS,
        help="train on the verses (outside the validation and test tenths) with at most "
        "this many words on both sides; at least --max-words (default: %(default)s)",
    )
    p.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the encoder reads the English both ways, units // 2 a direction "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--dropout",
        type=dropout_rate,
        default=0.2,
        help="dropout on the recurrent layers' inputs and before the output layer "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--label-smoothing",
        type=dropout_rate,
        default=0.0,
        help="the training target is 1 - ε on the right word and ε spread over the "
        "vocabulary (default: %(default)s)",
    )
    p.add_argument(
        "--subwords",
        type=non_negative_int,
        default=SUBWORDS,
        help="byte-pair-encoding merges learned from the training verses (Sennrich et al. "
        "2016): the model reads and writes subword units; 0 keeps whole words (default: "
        "%(default)s)",
    )
    p.add_argument(
        "--average-epochs",
        type=non_negative_int,
        default=AVERAGE_EPOCHS,
        help="after training, try the mean of the last epochs' weights (checkpoint "
        "averaging) and keep it if it translates the validation verses better; 0 or 1: "
        "never (default: %(default)s)",
    )
    p.add_argument(
        "--min-count",
        type=positive_int,
        default=2,
        help="words seen fewer times in training are unknown (default: 2)",
    )


def configure_predict(p):
    p.add_argument(
        "--beam",
        type=positive_int,
        default=BEAM,
        help="beam width; 1 decodes greedily (default: %(default)s)",
    )


def _chrf(hyps, refs):
    import sacrebleu

    return sacrebleu.corpus_chrf(hyps, [refs]).score


def _bleu(hyps, refs):
    import sacrebleu

    return sacrebleu.corpus_bleu(hyps, [refs]).score


def _require_sacrebleu():
    try:
        import sacrebleu  # noqa: F401
    except ImportError:
        raise AppInputError("the metrics need PyPI's sacrebleu (pip install sacrebleu)") from None


def train(args):
    from .. import set_seed
    from ..seq2seq import EncoderDecoder
    from ..seq2seq_attention import AttentionEncoderDecoder, LexiconAttentionEncoderDecoder

    _require_sacrebleu()
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise AppInputError(f"--learning-rate must be a positive number; got {args.learning_rate}")
    if args.bidirectional and args.units % 2:
        raise AppInputError(
            f"--units must be even with --bidirectional (units // 2 a direction); got "
            f"{args.units} (or give --no-bidirectional)"
        )
    set_seed(args.seed)
    parts = _data(args)
    train_rows, val_rows = parts["train"], parts["validation"] or parts["train"][:50]
    en = [[t.lower() for t in tokenize(r[2])] for r in train_rows]
    es = [[t.lower() for t in tokenize(r[3])] for r in train_rows]
    dictionary = ibm1_dictionary(list(zip(en, es)))
    min_count = args.min_count
    subwords = None
    if args.subwords:  # one set of merges for both languages: a name is split alike in both
        subwords = Subwords.learn(Counter(w for s in en + es for w in s), args.subwords)
        en, es = [subwords.split_all(s) for s in en], [subwords.split_all(s) for s in es]
        min_count = 1  # every unit the training text is made of
    src = Vocab.from_sentences(en, ["<pad>", "<unk>"], min_count)
    tgt = Vocab.from_sentences(es, SPECIALS, min_count)
    max_tokens = max(max(len(s) for s in en), max(len(s) for s in es))
    x = encode_sources(en, src, max_tokens)
    y = encode_targets(es, tgt, max_tokens)
    src_len = (x != 0).sum(axis=1)
    tgt_len = (y != 0).sum(axis=1)

    def make_batch(idx):
        s, t = max(1, int(src_len[idx].max())), int(tgt_len[idx].max())
        return [x[idx, :s], y[idx, : t - 1]], y[idx, 1:t]

    meta = {
        "source_vocab": src.words[2:],
        "target_vocab": tgt.words[4:],
        "truecase": truecase_map(r[3] for r in train_rows),
        "dictionary": dictionary,
        "subwords": [list(m) for m in subwords.merges] if subwords else [],
        "max_tokens": max_tokens,
        "max_words": args.max_words,
        "min_count": args.min_count,
        "settings": {
            "units": args.units,
            "embed": args.embed,
            "cell": args.cell,
            "attention": args.attention or args.lexicon,
            "lexicon": args.lexicon,
            "batch": args.batch,
            "learning_rate": args.learning_rate,
            "dropout": args.dropout,
            "train_words": args.train_words,
            "bidirectional": args.bidirectional,
            "label_smoothing": args.label_smoothing,
            "subwords": args.subwords,
            "average_epochs": args.average_epochs,
        },
    }
    if args.lexicon:
        Model = LexiconAttentionEncoderDecoder
    else:
        Model = AttentionEncoderDecoder if args.attention else EncoderDecoder
    model = Model(
        len(src),
        len(tgt),
        units=args.units,
        embed_dim=args.embed,
        cell=args.cell,
        start_id=START,
        end_id=END,
        dropout=args.dropout,
        bidirectional=args.bidirectional,
    )
    if args.lexicon:
        ids, p = ibm1_lexicon(x, y, len(src), len(tgt), entries=model.lexicon.entries)
        model.set_lexicon(ids=ids, p=p)
    schedule = compile_for_budget(
        model, args.learning_rate, 5.0, ignore_class=PAD, label_smoothing=args.label_smoothing
    )
    if not args.quiet:
        print(
            f"Training a {args.cell.upper()} encoder–decoder"
            f"{' with attention' if args.attention or args.lexicon else ''}"
            f"{' and a lexicon' if args.lexicon else ''} ({args.units} units) on "
            f"{len(train_rows):,} verse pairs (vocabularies: {len(src):,} English, "
            f"{len(tgt):,} Spanish {'units' if subwords else 'words'}) for {args.minutes:g} minutes; validation: "
            f"{len(val_rows[::2])} verses.",
            file=sys.stderr,
        )
    translator_meta = dict(meta)
    # every other validation verse: translating them all after each epoch costs time
    val_en, val_es = [r[2] for r in val_rows[::2]], [r[3] for r in val_rows[::2]]

    def score():
        return _chrf(Translator(model, translator_meta).translate(val_en), val_es)

    def describe(v):
        return f"chrF {v:.1f}"

    after_epoch, history, best = keep_best(
        model,
        score,
        key="val_chrf",
        digits=2,
        describe=describe,
        higher=True,
        worst=-1.0,
        quiet=args.quiet,
        average=args.average_epochs,
    )
    epoch = train_for(
        model,
        tgt_len + src_len,
        make_batch,
        args.batch,
        args.minutes * 60,
        np.random.default_rng(args.seed),
        args.quiet,
        after_epoch,
        schedule,
    )
    averaged = average_last_epochs(
        model, score, best, higher=True, describe=describe, quiet=args.quiet
    )
    best_weights, best = best["weights"], best["score"]
    from .task import default_model_path

    path = Path(args.model) if args.model else default_model_path("translate")
    word = [recase(dictionary_translate(tokenize(s), dictionary), meta["truecase"]) for s in val_en]
    png = plot_curve(
        path.with_name(path.name + ".png"),
        history,
        "val_chrf",
        "chrF",
        {"word-for-word dictionary": _chrf(word, val_es), "copy the source": _chrf(val_en, val_es)},
        "rnnkit translate: validation verses",
        lower_is_better=False,
    )
    if png and not args.quiet:
        print(f"Training curve: {png}", file=sys.stderr)
    if best_weights is not None:
        model.set_weights(best_weights)
    meta.update(val_chrf=round(best, 2), epochs=epoch, history=history)
    if averaged is not None:
        meta["val_chrf_averaged"] = round(averaged, 2)
    return model, meta


def _baselines(test_en, train_rows):
    dictionary = ibm1_dictionary(
        [
            ([t.lower() for t in tokenize(r[2])], [t.lower() for t in tokenize(r[3])])
            for r in train_rows
        ]
    )
    truecase = truecase_map(r[3] for r in train_rows)
    copy = list(test_en)
    word = [recase(dictionary_translate(tokenize(s), dictionary), truecase) for s in test_en]
    return {"copy the source": copy, "word-for-word dictionary (IBM model 1)": word}


def evaluate(model, meta, args):
    _require_sacrebleu()
    args.max_words = int(meta.get("max_words", 15))
    # the baselines learn from the verses the model learned from
    args.train_words = int(meta.get("settings", {}).get("train_words") or args.max_words)
    parts = _data(args)
    test = parts["test"]
    en, es = [r[2] for r in test], [r[3] for r in test]
    tr = Translator(model, meta)
    out = {"test_verses": len(test), "model": {}, "baselines": {}}
    for name, beam in (("greedy", 1), (f"beam {BEAM}", BEAM)):
        hyps = tr.translate(en, beam=beam)
        out["model"][name] = {"chrF": round(_chrf(hyps, es), 2), "BLEU": round(_bleu(hyps, es), 2)}
    for name, hyps in _baselines(en, parts["train"] + parts["validation"]).items():
        out["baselines"][name] = {
            "chrF": round(_chrf(hyps, es), 2),
            "BLEU": round(_bleu(hyps, es), 2),
        }
    best_base = max(v["chrF"] for v in out["baselines"].values())
    out["decoding"] = f"beam {BEAM}, length penalty {LENGTH_PENALTY:g}"
    out["chrF_over_best_baseline"] = round(out["model"][f"beam {BEAM}"]["chrF"] - best_base, 2)
    out["target"] = "chrF at least 10 points above the word-for-word dictionary"
    out["published"] = {
        "note": "no published result uses this data and split (KJV -> RV1909 "
        f"verses of at most {args.max_words} words, every tenth verse held out)"
    }
    out["examples"] = [
        {"english": en[i], "reference": es[i], "model": tr.translate([en[i]], beam=BEAM)[0]}
        for i in range(min(3, len(en)))
    ]
    return out


def predict(model, meta, inputs, args):
    tr = Translator(model, meta)
    lines = []
    for text in inputs:
        if not any(c.isalnum() for c in text):
            raise AppInputError(f"nothing to translate in {text!r}: give an English sentence")
        if len(tokenize(text)) > 3 * int(meta["max_tokens"]):
            raise AppInputError(
                f"the sentence has {len(tokenize(text))} words and marks; this "
                f"model was trained on verses of at most {meta['max_tokens']}: "
                f"split it into shorter sentences"
            )
        lines.append(tr.translate([text], beam=args.beam)[0])
    return lines


APP = App(
    name="translate",
    help="English → Spanish translation of short sentences (encoder–decoder, Bible verses)",
    description=__doc__,
    train=train,
    evaluate=evaluate,
    predict=predict,
    configure_train=configure_train,
    configure_predict=configure_predict,
    input_help="English sentences to translate; without them, --file or lines on standard input",
    default_minutes=9.0,
)
