"""The encoder–decoder (sequence-to-sequence) model of the lecture's translation
example, and its vector-to-sequence variant.

    encoder:  s = final state of a recurrent stack over the source x_1 .. x_S
              (or, with source="vector", s = tanh(v B + d): a vector as the initial state)
    decoder:  h_0 = s,   h_t = cell(E[y_{t-1}], h_{t-1}),   p(y_t | y_<t, x) = softmax(h_t V + c)

``dropout`` (training only): variational dropout on the inputs of every recurrent layer
(one mask per sequence, as in the layers' own ``dropout``) and ordinary dropout on the
top decoder outputs where they enter the output layer (Zaremba et al. 2014's places).

Training uses teacher forcing: the decoder reads the true previous target token,
``fit([source, target_in], target_out)`` with ``target_in = target[:, :-1]`` and
``target_out = target[:, 1:]`` (see ``shift_targets``); id 0 is padding and counts
for nothing.  ``generate`` decodes greedily or with beam search.
"""

from __future__ import annotations

import numpy as np

from . import backend, validation
from .layers import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, SimpleRNN
from .models import MODEL_CLASSES, Model

CELLS = {"rnn": SimpleRNN, "simple": SimpleRNN, "lstm": LSTM, "gru": GRU}
MAX_DECODE_LENGTH = 100_000  # generate(): longer outputs are refused, not allocated
MAX_BEAM_WIDTH = 4096


def shift_targets(target):
    """(target_in, target_out) for teacher forcing from targets that start with the
    start token: the decoder reads target[:, :-1] and predicts target[:, 1:]."""
    target = np.asarray(target)
    return target[:, :-1], target[:, 1:]


class EncoderDecoder(Model):
    """An encoder–decoder RNN.

    source_vocab   size of the source vocabulary (source="tokens"), id 0 = padding
    target_vocab   size of the target vocabulary, id 0 = padding
    units, embed_dim, num_layers, cell ('lstm', 'gru' or 'rnn')
    source         "tokens" (a sequence of ids) or "vector" (a (N, source_dim) vector that
                   becomes the decoder's initial state: vector-to-sequence)
    start_id, end_id   the tokens that begin and end a target sequence
    dropout        rate of dropout on the recurrent layers' inputs and before the output
                   layer, in training (0: none)
    bidirectional  each encoder layer reads the source both ways, ``units // 2`` units a
                   direction (``units`` must be even): its outputs are the two directions'
                   outputs side by side, and the decoder starts from the two final states
                   side by side, [h→; h←] (and [c→; c←] for the LSTM)

    ``forward((source, target_in))`` returns logits (N, T, target_vocab); compile with
    ``loss="sparse_categorical_crossentropy", ignore_class=0``: a cross-entropy given by
    name reads logits here (from_logits=True is the default), and a loss set up for
    probabilities (from_logits=False) is refused.
    """

    def __init__(
        self,
        source_vocab=None,
        target_vocab=None,
        units=128,
        embed_dim=64,
        num_layers=1,
        cell="lstm",
        source="tokens",
        source_dim=None,
        start_id=1,
        end_id=2,
        dropout=0.0,
        bidirectional=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = self.who
        self.cell = validation.choice(cell, "cell", who, tuple(CELLS))
        self.source = validation.choice(source, "source", who, ("tokens", "vector"))
        self.units = validation.positive_int(units, "units", who)
        self.embed_dim = validation.positive_int(embed_dim, "embed_dim", who)
        self.num_layers = validation.positive_int(num_layers, "num_layers", who)
        self.target_vocab = validation.positive_int(target_vocab, "target_vocab", who)
        self.start_id, self.end_id = int(start_id), int(end_id)
        self.dropout = validation.rate(dropout, "dropout", who)
        self.bidirectional = bool(bidirectional)
        if self.bidirectional and (source != "tokens" or self.units % 2):
            raise ValueError(
                f"{who}: bidirectional needs a token source and an even number of units "
                f"(units // 2 a direction); got source={source!r}, units={self.units}"
            )
        for name, tok in (("start_id", self.start_id), ("end_id", self.end_id)):
            if not 0 < tok < self.target_vocab:
                raise ValueError(
                    f"{who}: {name} must be a token id in [1, {self.target_vocab}); got {tok}"
                )
        Cell = CELLS[self.cell]
        dt = self.dtype
        self.n_states = 2 if Cell is LSTM else 1
        if self.source == "tokens":
            self.source_vocab = validation.positive_int(source_vocab, "source_vocab", who)
            self.source_dim = None
            self.source_embedding = Embedding(
                self.source_vocab, self.embed_dim, mask_zero=True, name="source_embedding", dtype=dt
            )
            self.encoders = [self._encoder(Cell, i) for i in range(self.num_layers)]
            self.bridges = []
        else:
            self.source_vocab = None
            self.source_dim = validation.positive_int(source_dim, "source_dim", who)
            self.source_embedding = None
            self.encoders = []
            self.bridges = [
                Dense(
                    self.units,
                    activation="tanh",
                    name=f"bridge_{i}_{k}",
                    input_shape=[self.source_dim],
                    dtype=dt,
                )
                for i in range(self.num_layers)
                for k in range(self.n_states)
            ]
        self.target_embedding = Embedding(
            self.target_vocab, self.embed_dim, mask_zero=True, name="target_embedding", dtype=dt
        )
        self.decoders = [
            Cell(
                self.units,
                return_sequences=True,
                return_state=True,
                dropout=self.dropout,
                name=f"decoder_{i}",
                dtype=dt,
            )
            for i in range(self.num_layers)
        ]
        self.head_dropout = Dropout(self.dropout, name="head_dropout", dtype=dt)
        self.head = Dense(self.target_vocab, name="head", dtype=dt)
        for i, layer in enumerate(self.encoders + self.decoders):  # weights exist up front
            layer.build(
                (None, None, self.embed_dim if i in (0, len(self.encoders)) else self.units)
            )
        self.head.build((None, self.units))
        self.layers = self.sublayers()
        self._ctx = None

    def _encoder(self, Cell, i):
        """Encoder layer i: a recurrent layer, or two of half the units reading both ways."""
        layer = Cell(
            self.units // 2 if self.bidirectional else self.units,
            return_sequences=True,
            return_state=True,
            dropout=self.dropout,
            name=f"encoder_{i}",
            dtype=self.dtype,
        )
        if self.bidirectional:
            return Bidirectional(layer, name=f"encoder_{i}", dtype=self.dtype)
        return layer

    def compile(self, loss, optimizer="adam", metrics=None, time_reduction=None, **loss_kwargs):
        """As Model.compile, but the outputs are logits: a cross-entropy named by a string
        gets from_logits=True unless told otherwise, and one with from_logits=False is
        refused (it would read the logits as probabilities and learn nothing)."""
        from . import losses

        if isinstance(loss, str) and "crossentropy" in loss:
            loss_kwargs.setdefault("from_logits", True)
        probe = losses.get(
            loss,
            **(
                {}
                if isinstance(loss, losses.Loss)
                else {
                    **loss_kwargs,
                    **({"time_reduction": time_reduction} if time_reduction else {}),
                }
            ),
        )
        if getattr(probe, "from_logits", True) is False:
            head = getattr(getattr(self, "head", None), "name", "head")
            raise ValueError(
                f"{self.who}: the model's outputs are logits (raw scores of the "
                f"head {head!r}, no softmax), but loss {probe.name!r} "
                f"was set up with from_logits=False; use from_logits=True"
            )
        return super().compile(loss, optimizer, metrics, time_reduction, **loss_kwargs)

    def sublayers(self):
        pre = [self.source_embedding] + self.encoders if self.source == "tokens" else self.bridges
        return pre + [self.target_embedding] + self.decoders + [self.head_dropout, self.head]

    # -- the two halves ---------------------------------------------------------------------
    def encode(self, source, training=False):
        """The decoder's initial states, one list per layer."""
        if self.source == "vector":
            s = self.bridges
            return [
                [
                    s[i * self.n_states + k].forward(source, training=training)
                    for k in range(self.n_states)
                ]
                for i in range(self.num_layers)
            ]
        return self._encode_tokens(source, training)[1]

    def _encode_tokens(self, source, training):
        """(top encoder outputs (N, S, units), the decoder's initial states per layer)."""
        h = self.source_embedding.forward(source, training=training)
        mask = self.source_embedding.output_mask
        states = []
        n = self.n_states
        for enc in self.encoders:
            out = enc.forward(h, training=training, mask=mask)
            h, st = out[0], out[1:]
            if self.bidirectional:  # [h→, c→, h←, c←] -> [[h→; h←], [c→; c←]]
                xp = backend.xp()
                st = [xp.concatenate([f, b], axis=-1) for f, b in zip(st[:n], st[n:])]
            states.append(st)
        return h, states

    def _encoder_backward(self, dh, d_init):
        """Backward through the encoder stack from the gradients of its top outputs (or
        None) and of the decoder's initial states, one list per layer."""
        half = self.units // 2
        for enc, ds in zip(reversed(self.encoders), reversed(d_init)):
            if self.bidirectional:
                ds = [None if d is None else d[..., :half] for d in ds] + [
                    None if d is None else d[..., half:] for d in ds
                ]
            dh = enc.backward([dh, *ds])
        self.source_embedding.backward(dh)

    def _decode(self, target_in, states, training=False):
        d = self.target_embedding.forward(target_in, training=training)
        mask = self.target_embedding.output_mask
        new_states = []
        for dec, s0 in zip(self.decoders, states):
            out = dec.forward(d, training=training, mask=mask, initial_state=s0)
            d, st = out[0], out[1:]
            new_states.append(st)
        d = self.head_dropout.forward(d, training=training)
        return self.head.forward(d, training=training), mask, new_states

    # -- the layer contract --------------------------------------------------------------------
    def _split(self, x):
        if not isinstance(x, (list, tuple)) or len(x) != 2:
            raise ValueError(
                f"{self.who}: the input must be (source, target_in); got {validation.describe(x)}"
            )
        return x

    def forward(self, x, training=False, mask=None):
        source, target_in = self._split(x)
        states = self.encode(source, training=training)
        logits, dmask, _ = self._decode(target_in, states, training=training)
        self.output_mask = dmask
        self._ctx = True
        return logits

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        d = self.head_dropout.backward(self.head.backward(dy))
        d_init = []
        for dec in reversed(self.decoders):
            d = dec.backward([d] + [None] * self.n_states)
            d_init.append(dec.initial_state_grads)
        d_init.reverse()
        self.target_embedding.backward(d)
        if self.source == "vector":
            dv = 0.0
            for i in range(self.num_layers):
                for k in range(self.n_states):
                    dv = dv + self.bridges[i * self.n_states + k].backward(d_init[i][k])
            return dv
        self._encoder_backward(None, d_init)
        return None

    # -- decoding ------------------------------------------------------------------------------
    def _step(self, tokens, states):
        """One decoder step for a batch of previous tokens: (log-probs (B, V), new states)."""
        logits, _, states = self._decode(tokens[:, None], states)
        z = backend.to_numpy(logits[:, 0]).astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True)), states

    has_attention = False  # generate(return_attention=True) needs a model with attention

    def _attended(self):
        """After a decoder step: the source position each sequence attended to most, (B,)
        ints (models with attention)."""
        raise NotImplementedError

    def generate(
        self,
        source,
        max_length=50,
        method="greedy",
        beam_width=4,
        length_penalty=0.0,
        return_attention=False,
    ):
        """Decoded target ids for each source, without the start token and ending at (and
        excluding) the end token.  method: "greedy" or "beam" (``beam_width`` beams,
        scores divided by length ** length_penalty).

        ``return_attention`` (models with attention): returns (ids, positions), where
        positions[n][j] is the source position the decoder attended to most when it wrote
        ids[n][j] (to replace an unknown word by a translation of the word it came from)."""
        if return_attention and not self.has_attention:
            raise ValueError(f"{self.who}: return_attention needs a model with attention")
        validation.choice(method, "method", self.who, ("greedy", "beam"))
        max_length = validation.positive_int(max_length, "max_length", self.who)
        if max_length > MAX_DECODE_LENGTH:
            raise ValueError(
                f"{self.who}: max_length must be at most {MAX_DECODE_LENGTH:,}; got {max_length}"
            )
        if method == "beam":
            beam_width = validation.positive_int(beam_width, "beam_width", self.who)
            if beam_width > MAX_BEAM_WIDTH:
                raise ValueError(
                    f"{self.who}: beam_width must be at most {MAX_BEAM_WIDTH}; got {beam_width}"
                )
        if (
            isinstance(length_penalty, bool)
            or not isinstance(length_penalty, (int, float))
            or not np.isfinite(length_penalty)
        ):
            raise ValueError(
                f"{self.who}: length_penalty must be a finite number; got {length_penalty!r}"
            )
        states = self.encode(source)
        N = states[0][0].shape[0]
        if method == "greedy":
            tokens = np.full(N, self.start_id)
            out = np.zeros((N, max_length), dtype=np.int64)
            where = np.zeros((N, max_length), dtype=np.int64)
            done = np.zeros(N, dtype=bool)
            for t in range(max_length):
                logp, states = self._step(tokens, states)
                tokens = np.where(done, 0, logp.argmax(axis=-1))
                out[:, t] = tokens
                if return_attention:
                    where[:, t] = self._attended()
                done |= tokens == self.end_id
                if done.all():
                    break
        else:
            out, where = self._beam_search(
                states, N, max_length, beam_width, length_penalty, return_attention
            )
        keep = [self._kept(row) for row in out]
        ids = [[int(row[j]) for j in k] for row, k in zip(out, keep)]
        if return_attention:
            return ids, [[int(w[j]) for j in k] for w, k in zip(where, keep)]
        return ids

    def _kept(self, row):
        """The positions of ``row`` that generate returns: those before the end token, or
        without one, all but the padding."""
        row = [int(t) for t in row]
        if self.end_id in row:
            return list(range(row.index(self.end_id)))
        return [j for j, t in enumerate(row) if t]

    def _beam_search(self, states, N, max_length, B, alpha, attended=False):
        """(the best sequence of each source (N, L), the attended positions (N, L))."""
        np_ = backend.xp()
        rep = np.repeat(np.arange(N), B)  # (N*B,) source of each beam
        states = [[np_.asarray(s)[rep] for s in layer] for layer in states]
        scores = np.full((N, B), -np.inf)
        scores[:, 0] = 0.0  # one live beam to start
        tokens = np.full(N * B, self.start_id)
        seqs = np.zeros((N, B, 0), dtype=np.int64)
        where = np.zeros((N, B, 0), dtype=np.int64)  # attended positions, with attended
        finished = np.zeros((N, B), dtype=bool)
        lengths = np.zeros((N, B))
        V = self.target_vocab
        for _ in range(max_length):
            logp, states = self._step(tokens, states)
            logp = logp.reshape(N, B, V)
            # a finished beam can only be continued by padding, at no cost
            fin = np.full(V, -np.inf)
            fin[0] = 0.0
            logp = np.where(finished[..., None], fin, logp)
            total = (scores[..., None] + logp).reshape(N, B * V)
            best = np.argsort(-total, axis=1, kind="stable")[:, :B]  # (N, B)
            beam, tok = best // V, best % V
            scores = np.take_along_axis(total, best, axis=1)
            seqs = np.concatenate(
                [np.take_along_axis(seqs, beam[..., None], axis=1), tok[..., None]], axis=2
            )
            if attended:
                pos = np.asarray(self._attended()).reshape(N, B)
                where = np.concatenate(
                    [
                        np.take_along_axis(where, beam[..., None], axis=1),
                        np.take_along_axis(pos, beam, axis=1)[..., None],
                    ],
                    axis=2,
                )
            was_finished = np.take_along_axis(finished, beam, axis=1)
            lengths = np.take_along_axis(lengths, beam, axis=1) + ~was_finished
            finished = was_finished | (tok == self.end_id)
            flat = (np.arange(N)[:, None] * B + beam).reshape(-1)
            states = [[s[flat] for s in layer] for layer in states]
            tokens = tok.reshape(-1)
            if finished.all():
                break
        norm = scores / np.maximum(lengths, 1.0) ** alpha if alpha else scores
        pick = norm.argmax(axis=1)
        best = seqs[np.arange(N), pick]
        return best, (where[np.arange(N), pick] if attended else np.zeros_like(best))

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocab=self.source_vocab,
            target_vocab=self.target_vocab,
            units=self.units,
            embed_dim=self.embed_dim,
            num_layers=self.num_layers,
            cell=self.cell,
            source=self.source,
            source_dim=self.source_dim,
            start_id=self.start_id,
            end_id=self.end_id,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
        )
        return config


MODEL_CLASSES.setdefault("EncoderDecoder", EncoderDecoder)  # for the model files
