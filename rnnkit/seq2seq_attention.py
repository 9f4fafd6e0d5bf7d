"""The encoder–decoder with Luong's global attention (general score, no input feeding).

    encoder:  e_1 .. e_S = the top encoder layer's outputs; the decoder starts from the
              encoder's final states, as in ``EncoderDecoder``
    decoder:  h_t = cell(E[y_{t-1}], h_{t-1})
    attend:   a_ts = softmax_s(h_t Wa e_sᵀ)   (padding positions of the source excluded)
              c_t = Σ_s a_ts e_s              h̃_t = tanh([c_t; h_t] Wc + bc)
    output:   p(y_t | y_<t, x) = softmax(h̃_t V + c)    (``dropout`` on h̃_t in training)

Without input feeding (h̃_{t-1} is not fed back into the decoder) the decoder still runs as
one recurrent layer over the whole target under teacher forcing, and the attention is computed
for all steps at once; its backward pass is written out in ``Attention.backward``.  Decoding
(greedy and beam search) is ``EncoderDecoder``'s: the encoder outputs and the source mask
travel with the decoder states as one more "layer" of state, so beam search reorders them
with the beams.

``LexiconAttentionEncoderDecoder`` adds a fixed translation lexicon L[x, y] = p_lex(y | x) to
the output as a bias (Arthur, Neubig & Nakamura 2016):

    logits_t = h̃_t V + c + log(1 + Σ_s a_ts L[x_s, ·] / ε)
"""

from __future__ import annotations

import numpy as np

from . import backend, validation
from .kernels import matmul, own_threads
from .layers import Layer
from .models import MODEL_CLASSES
from .seq2seq import EncoderDecoder


class Attention(Layer):
    """Luong's general attention with the attentional layer h̃ = tanh([c; h] Wc + bc).

    forward((h, e, m)): h (N, T, H) decoder outputs, e (N, S, H) encoder outputs,
    m (N, S) 1 for real source positions, 0 for padding; returns h̃ (N, T, H).
    backward(dh̃) -> (dh, de)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self._add_param("Wa", (self.units, self.units), "glorot_uniform")
        self._add_param("Wc", (2 * self.units, self.units), "glorot_uniform")
        self._add_param("bc", (self.units,), "zeros")
        self.built = True

    @own_threads()
    def forward(self, x, training=False, mask=None):
        h, e, m = x
        xp = backend.xp()
        P = self.params
        k = matmul(e.reshape(-1, self.units), P["Wa"]).reshape(e.shape)  # e Wa
        scores = xp.matmul(h, xp.swapaxes(k, 1, 2))  # (N, T, S)
        scores = scores + (m[:, None, :] - 1.0) * 1e9
        scores = scores - scores.max(axis=-1, keepdims=True)
        a = xp.exp(scores)
        a /= a.sum(axis=-1, keepdims=True)
        c = xp.matmul(a, e)  # (N, T, H)
        z = xp.concatenate([c, h], axis=-1)
        out = xp.tanh(matmul(z.reshape(-1, 2 * self.units), P["Wc"]) + P["bc"])
        out = out.reshape(h.shape)
        self._ctx = (h, e, k, a, z, out)
        self.last_weights = a
        return out

    @own_threads()
    def backward(self, dy, da=None):
        """(dh, de) from dh̃; ``da`` (N, T, S), if given, is a further gradient of the loss
        with respect to the attention weights a (a lexicon bias reads them too)."""
        h, e, k, a, z, out = self._ctx
        xp = backend.xp()
        H = self.units
        P = self.params
        dpre = (dy * (1.0 - out * out)).reshape(-1, H)
        self._grads = {"Wc": matmul(z.reshape(-1, 2 * H).T, dpre), "bc": dpre.sum(axis=0)}
        dz = matmul(dpre, P["Wc"].T).reshape(z.shape)
        dc, dh = dz[..., :H], dz[..., H:].copy()
        da_c = xp.matmul(dc, xp.swapaxes(e, 1, 2))  # (N, T, S)
        da = da_c if da is None else da_c + da
        de = xp.matmul(xp.swapaxes(a, 1, 2), dc)  # (N, S, H)
        ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
        dh += xp.matmul(ds, k)
        dk = xp.matmul(xp.swapaxes(ds, 1, 2), h)  # (N, S, H)
        self._grads["Wa"] = matmul(e.reshape(-1, H).T, dk.reshape(-1, H))
        de += matmul(dk.reshape(-1, H), P["Wa"].T).reshape(e.shape)
        return dh, de

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


class AttentionEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` (source="tokens") with Luong attention between the decoder's top
    layer and the output layer; same arguments, same training and decoding."""

    has_attention = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.source != "tokens":
            raise ValueError(
                f"{self.who}: attention needs a token source; got source={self.source!r}"
            )
        self.attention = Attention(self.units, name="attention", dtype=self.dtype)
        self.layers = self.sublayers()

    def sublayers(self):
        base = super().sublayers()
        att = getattr(self, "attention", None)
        return base[:-2] + ([att] if att is not None else []) + base[-2:]

    def encode(self, source, training=False):
        h, states = self._encode_tokens(source, training)
        m = (backend.xp().asarray(source) != 0).astype(h.dtype)
        return states + [[h, m]]

    def _decode(self, target_in, states, training=False):
        d = self.target_embedding.forward(target_in, training=training)
        mask = self.target_embedding.output_mask
        new_states = []
        for dec, s0 in zip(self.decoders, states[:-1]):
            out = dec.forward(d, training=training, mask=mask, initial_state=s0)
            d, st = out[0], out[1:]
            new_states.append(st)
        e, m = states[-1][:2]
        att = self.attention.forward((d, e, m), training=training)
        att = self.head_dropout.forward(att, training=training)
        return self.head.forward(att, training=training), mask, new_states + [states[-1]]

    def _attended(self):
        return backend.to_numpy(self.attention.last_weights[:, -1].argmax(axis=-1))

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        d, de = self._attention_backward(dy)
        d_init = []
        for dec in reversed(self.decoders):
            d = dec.backward([d] + [None] * self.n_states)
            d_init.append(dec.initial_state_grads)
        d_init.reverse()
        self.target_embedding.backward(d)
        self._encoder_backward(de, d_init)
        return None

    def _attention_backward(self, dy):
        """(d decoder outputs, d encoder outputs) from d logits."""
        return self.attention.backward(self.head_dropout.backward(self.head.backward(dy)))


class Lexicon(Layer):
    """A fixed translation lexicon p_lex(y | x), kept sparse: for each source word x its
    ``entries`` most probable target words, ``ids[x]`` (target ids, stored as floats: exact
    below 2**24) and their probabilities ``p[x]``.  Both are weights that are saved with
    the model but not trained (``trainable=False``).

    forward(source ids (N, S)) -> (ids (N, S, K) int64, p (N, S, K)); no gradient."""

    def __init__(self, source_vocab, target_vocab, entries=32, **kwargs):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.source_vocab, self.target_vocab = int(source_vocab), int(target_vocab)
        self.entries = min(validation.positive_int(entries, "entries", self.who), self.target_vocab)
        exact = 2 ** np.finfo(self.dtype).nmant + 1
        if self.target_vocab > exact:
            raise ValueError(
                f"{self.who}: target_vocab {self.target_vocab:,} is too large for ids stored "
                f"as {np.dtype(self.dtype).name} (at most {exact:,})"
            )
        self._add_param("ids", (self.source_vocab, self.entries), "zeros")
        self._add_param("p", (self.source_vocab, self.entries), "zeros")
        self.built = True

    def set_table(self, table):
        """Keep the ``entries`` largest values of each row of a dense table (source_vocab,
        target_vocab) of finite numbers >= 0 (ties: the smaller target id)."""
        t = np.asarray(table)
        shape = (self.source_vocab, self.target_vocab)
        if t.shape != shape:
            raise ValueError(f"{self.who}: the lexicon must have shape {shape}; got {t.shape}")
        if t.dtype.kind not in "fiu" or not np.isfinite(t).all() or (t < 0).any():
            raise ValueError(f"{self.who}: the lexicon must hold finite numbers >= 0")
        ids = np.argsort(-t, axis=1, kind="stable")[:, : self.entries]
        self.set_entries(ids, np.take_along_axis(t, ids, axis=1))

    def set_entries(self, ids, p):
        """Set the rows directly: ids (source_vocab, K) target ids, p (source_vocab, K)
        their probabilities (K <= entries; the rest of a row is empty)."""
        ids, p = np.asarray(ids), np.asarray(p)
        if ids.shape != p.shape or ids.ndim != 2 or ids.shape[0] != self.source_vocab:
            raise ValueError(
                f"{self.who}: ids and p must both have shape ({self.source_vocab}, K); "
                f"got {ids.shape} and {p.shape}"
            )
        if ids.shape[1] > self.entries:
            raise ValueError(
                f"{self.who}: at most {self.entries} entries a row; got {ids.shape[1]}"
            )
        if ids.size and (
            ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= self.target_vocab
        ):
            raise ValueError(f"{self.who}: ids must be target ids in [0, {self.target_vocab})")
        if p.dtype.kind not in "fiu" or not np.isfinite(p).all() or (p < 0).any():
            raise ValueError(f"{self.who}: the lexicon must hold finite numbers >= 0")
        K = ids.shape[1]
        self.params["ids"][...] = 0
        self.params["p"][...] = 0
        self.params["ids"][:, :K] = backend.asarray(ids, dtype=self.dtype)
        self.params["p"][:, :K] = backend.asarray(p, dtype=self.dtype)

    def table(self):
        """The lexicon as a dense (source_vocab, target_vocab) NumPy array."""
        ids = backend.to_numpy(self.params["ids"]).astype(np.int64)
        out = np.zeros((self.source_vocab, self.target_vocab), dtype=self.dtype)
        np.add.at(
            out, (np.arange(self.source_vocab)[:, None], ids), backend.to_numpy(self.params["p"])
        )
        return out

    def forward(self, x, training=False, mask=None):
        x = backend.xp().asarray(x)
        return self.params["ids"][x].astype(np.int64), self.params["p"][x]

    def backward(self, dy):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocab=self.source_vocab, target_vocab=self.target_vocab, entries=self.entries
        )
        return config


class LexiconAttentionEncoderDecoder(AttentionEncoderDecoder):
    """``AttentionEncoderDecoder`` with a discrete translation lexicon added to the output
    as a bias (Arthur, Neubig & Nakamura 2016, "Incorporating Discrete Translation Lexicons
    into Neural Machine Translation", the bias method):

        lex_t(y) = Σ_s a_ts L[x_s, y]        (a_ts: the attention weights)
        logits_t = h̃_t V + c + log(1 + lex_t(y) / ε)

    (the paper's log(lex_t(y) + ε) less the constant log ε: the same probabilities, and a
    bias of 0 wherever the lexicon has nothing to say.)  L (source_vocab, target_vocab) is
    p_lex(target word | source word), e.g. from IBM model 1; it is fixed (not trained),
    saved in the model file and set with ``set_lexicon``.  It is kept sparse, the
    ``lexicon_entries`` largest values of each row (``Lexicon``): lex_t is then a scatter
    of N·T·S·K products, not a product with the whole table.  It starts at zero, where the
    bias is 0 and the model is the plain attention model.  ``lexicon_eps``: ε (0.001 in
    the paper).  The rows L[x] travel with the decoder states, next to the encoder outputs
    and the source mask, so beam search reorders them with the beams.  Backward: the bias
    adds ∂L/∂a_ts = Σ_y ∂L/∂logits_ty · L[x_s, y] / (lex_t(y) + ε) to the attention's
    gradient, a gather at the same N·T·S·K places."""

    def __init__(self, *args, lexicon_eps=1e-3, lexicon_entries=32, **kwargs):
        super().__init__(*args, **kwargs)
        eps = lexicon_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < float("inf"):
            raise ValueError(f"{self.who}: lexicon_eps must be a positive number; got {eps!r}")
        self.lexicon_eps = float(eps)
        self.lexicon = Lexicon(
            self.source_vocab,
            self.target_vocab,
            entries=lexicon_entries,
            name="lexicon",
            dtype=self.dtype,
        )
        self.layers = self.sublayers()
        self._lex_ctx = None

    def sublayers(self):
        lex = getattr(self, "lexicon", None)
        return super().sublayers() + ([lex] if lex is not None else [])

    def set_lexicon(self, table=None, *, ids=None, p=None):
        """Set L from a dense ``table`` (source_vocab, target_vocab) of finite numbers >= 0
        (each row's ``lexicon_entries`` largest values are kept), or from its sparse rows
        ``ids`` and ``p`` (source_vocab, K)."""
        if table is not None:
            self.lexicon.set_table(table)
        else:
            self.lexicon.set_entries(ids, p)

    def encode(self, source, training=False):
        states = super().encode(source, training=training)
        states[-1] = states[-1] + list(self.lexicon.forward(source))
        return states

    def _decode(self, target_in, states, training=False):
        logits, mask, new_states = super()._decode(target_in, states, training=training)
        xp = backend.xp()
        ids, p = states[-1][2], states[-1][3]  # (N, S, K) each
        a = self.attention.last_weights  # (N, T, S)
        N, T, S = a.shape
        V = self.target_vocab
        # lex[n, t, ids[n, s, k]] += a[n, t, s] p[n, s, k]: a scatter of N·T·S·K products
        at = ((xp.arange(N * T) * V).reshape(N, T, 1, 1) + ids[:, None]).ravel()
        lex = xp.zeros(N * T * V, dtype=logits.dtype)
        backend.scatter_add(lex, at, (a[..., None] * p[:, None]).ravel())
        hit = lex[at]  # lex_t(y) where some source word's row has y, (N·T·S·K,)
        lex[at] = xp.log1p(hit / self.lexicon_eps)  # the bias; 0 where lex_t(y) = 0
        self._lex_ctx = (ids, p, hit)
        return logits + lex.reshape(N, T, V), mask, new_states

    def _attention_backward(self, dy):
        xp = backend.xp()
        ids, p, hit = self._lex_ctx
        N, S, K = ids.shape
        T = dy.shape[1]
        # da[n, t, s] = Σ_k dy[n, t, ids[n, s, k]] p[n, s, k] / (lex + ε)
        dyk = dy[xp.arange(N)[:, None, None], xp.arange(T)[None, :, None], ids.reshape(N, 1, S * K)]
        g = dyk.reshape(N, T, S, K) / (hit.reshape(N, T, S, K) + self.lexicon_eps)
        da = (g * p[:, None]).sum(axis=-1)
        return self.attention.backward(self.head_dropout.backward(self.head.backward(dy)), da=da)

    def get_config(self):
        config = super().get_config()
        config["lexicon_eps"] = self.lexicon_eps
        config["lexicon_entries"] = self.lexicon.entries
        return config


MODEL_CLASSES.setdefault("AttentionEncoderDecoder", AttentionEncoderDecoder)
MODEL_CLASSES.setdefault("LexiconAttentionEncoderDecoder", LexiconAttentionEncoderDecoder)

__all__ = ["Attention", "AttentionEncoderDecoder", "Lexicon", "LexiconAttentionEncoderDecoder"]
