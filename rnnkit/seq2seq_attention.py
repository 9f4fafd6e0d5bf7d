"""The encoder–decoder with Luong's global attention (general score, no input feeding).

    encoder:  e_1 .. e_S = the top encoder layer's outputs; the decoder starts from the
              encoder's final states, as in ``EncoderDecoder``
    decoder:  h_t = cell(E[y_{t-1}], h_{t-1})
    attend:   a_ts = softmax_s(h_t Wa e_sᵀ)   (padding positions of the source excluded)
              c_t = Σ_s a_ts e_s              h̃_t = tanh([c_t; h_t] Wc + bc)
    output:   p(y_t | y_<t, x) = softmax(h̃_t V + c)

Without input feeding (h̃_{t-1} is not fed back into the decoder) the decoder still runs as
one recurrent layer over the whole target under teacher forcing, and the attention is computed
for all steps at once; its backward pass is written out in ``Attention.backward``.  Decoding
(greedy and beam search) is ``EncoderDecoder``'s: the encoder outputs and the source mask
travel with the decoder states as one more "layer" of state, so beam search reorders them
with the beams.

``LexiconAttentionEncoderDecoder`` adds a fixed translation lexicon L[x, y] = p_lex(y | x) to
the output as a bias (Arthur, Neubig & Nakamura 2016):

    logits_t = h̃_t V + c + log(Σ_s a_ts L[x_s, ·] + ε)
"""

from __future__ import annotations

import numpy as np

from . import backend
from .kernels import own_threads
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
        k = backend.matmul(e.reshape(-1, self.units), P["Wa"]).reshape(e.shape)  # e Wa
        scores = xp.matmul(h, xp.swapaxes(k, 1, 2))  # (N, T, S)
        scores = scores + (m[:, None, :] - 1.0) * 1e9
        scores = scores - scores.max(axis=-1, keepdims=True)
        a = xp.exp(scores)
        a /= a.sum(axis=-1, keepdims=True)
        c = xp.matmul(a, e)  # (N, T, H)
        z = xp.concatenate([c, h], axis=-1)
        out = xp.tanh(backend.matmul(z.reshape(-1, 2 * self.units), P["Wc"]) + P["bc"])
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
        self._grads = {"Wc": backend.matmul(z.reshape(-1, 2 * H).T, dpre), "bc": dpre.sum(axis=0)}
        dz = backend.matmul(dpre, P["Wc"].T).reshape(z.shape)
        dc, dh = dz[..., :H], dz[..., H:].copy()
        da_c = xp.matmul(dc, xp.swapaxes(e, 1, 2))  # (N, T, S)
        da = da_c if da is None else da_c + da
        de = xp.matmul(xp.swapaxes(a, 1, 2), dc)  # (N, S, H)
        ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
        dh += xp.matmul(ds, k)
        dk = xp.matmul(xp.swapaxes(ds, 1, 2), h)  # (N, S, H)
        self._grads["Wa"] = backend.matmul(e.reshape(-1, H).T, dk.reshape(-1, H))
        de += backend.matmul(dk.reshape(-1, H), P["Wa"].T).reshape(e.shape)
        return dh, de

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


class AttentionEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` (source="tokens") with Luong attention between the decoder's top
    layer and the output layer; same arguments, same training and decoding."""

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
        return base[:-1] + ([att] if att is not None else []) + base[-1:]

    def encode(self, source, training=False):
        h = self.source_embedding.forward(source, training=training)
        mask = self.source_embedding.output_mask
        states = []
        for enc in self.encoders:
            out = enc.forward(h, training=training, mask=mask)
            h, st = out[0], out[1:]
            states.append(st)
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
        return self.head.forward(att, training=training), mask, new_states + [states[-1]]

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
        dh = de
        for enc, ds in zip(reversed(self.encoders), reversed(d_init)):
            dh = enc.backward([dh, *ds])
        self.source_embedding.backward(dh)
        return None

    def _attention_backward(self, dy):
        """(d decoder outputs, d encoder outputs) from d logits."""
        return self.attention.backward(self.head.backward(dy))


class Lexicon(Layer):
    """A fixed translation lexicon L (source_vocab, target_vocab), L[x, y] = p_lex(y | x):
    a parameter that is saved with the model but not trained (``trainable=False``).
    forward(source ids (N, S)) -> the rows L[x] (N, S, target_vocab); no gradient."""

    def __init__(self, source_vocab, target_vocab, **kwargs):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.source_vocab, self.target_vocab = int(source_vocab), int(target_vocab)
        self._add_param("L", (self.source_vocab, self.target_vocab), "zeros")
        self.built = True

    def forward(self, x, training=False, mask=None):
        return self.params["L"][backend.xp().asarray(x)]

    def backward(self, dy):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(source_vocab=self.source_vocab, target_vocab=self.target_vocab)
        return config


class LexiconAttentionEncoderDecoder(AttentionEncoderDecoder):
    """``AttentionEncoderDecoder`` with a discrete translation lexicon added to the output
    as a bias (Arthur, Neubig & Nakamura 2016, "Incorporating Discrete Translation Lexicons
    into Neural Machine Translation", the bias method):

        lex_t(y) = Σ_s a_ts L[x_s, y]        (a_ts: the attention weights)
        logits_t = h̃_t V + c + log(lex_t(y) + ε)

    L (source_vocab, target_vocab) is p_lex(target word | source word), e.g. from IBM model
    1; it is fixed (not trained), saved in the model file and set with ``set_lexicon``.
    It starts at zero, where the bias is the constant log ε and the model is the plain
    attention model.  ``lexicon_eps``: ε (0.001 in the paper).  The rows L[x] travel with
    the decoder states, next to the encoder outputs and the source mask, so beam search
    reorders them with the beams.  Backward: the bias adds
    ∂L/∂a_ts = Σ_y ∂L/∂logits_ty · L[x_s, y] / (lex_t(y) + ε) to the attention's gradient."""

    def __init__(self, *args, lexicon_eps=1e-3, **kwargs):
        super().__init__(*args, **kwargs)
        eps = lexicon_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < float("inf"):
            raise ValueError(f"{self.who}: lexicon_eps must be a positive number; got {eps!r}")
        self.lexicon_eps = float(eps)
        self.lexicon = Lexicon(
            self.source_vocab, self.target_vocab, name="lexicon", dtype=self.dtype
        )
        self.layers = self.sublayers()
        self._lex_ctx = None

    def sublayers(self):
        lex = getattr(self, "lexicon", None)
        return super().sublayers() + ([lex] if lex is not None else [])

    def set_lexicon(self, table):
        """Copy ``table`` (source_vocab, target_vocab), finite and not negative, into L."""
        t = np.asarray(table)
        shape = (self.source_vocab, self.target_vocab)
        if t.shape != shape:
            raise ValueError(f"{self.who}: the lexicon must have shape {shape}; got {t.shape}")
        if t.dtype.kind not in "fiu" or not np.isfinite(t).all() or (t < 0).any():
            raise ValueError(f"{self.who}: the lexicon must hold finite numbers >= 0")
        self.lexicon.params["L"][...] = backend.asarray(t, dtype=self.dtype)

    def encode(self, source, training=False):
        states = super().encode(source, training=training)
        states[-1] = states[-1] + [self.lexicon.forward(source)]
        return states

    def _decode(self, target_in, states, training=False):
        logits, mask, new_states = super()._decode(target_in, states, training=training)
        xp = backend.xp()
        lx = states[-1][2]
        lex = xp.matmul(self.attention.last_weights, lx)  # (N, T, V)
        lex += self.lexicon_eps
        self._lex_ctx = (lx, lex)
        return logits + xp.log(lex), mask, new_states

    def _attention_backward(self, dy):
        xp = backend.xp()
        lx, lex = self._lex_ctx
        da = xp.matmul(dy / lex, xp.swapaxes(lx, 1, 2))  # (N, T, S)
        return self.attention.backward(self.head.backward(dy), da=da)

    def get_config(self):
        config = super().get_config()
        config["lexicon_eps"] = self.lexicon_eps
        return config


MODEL_CLASSES.setdefault("AttentionEncoderDecoder", AttentionEncoderDecoder)
MODEL_CLASSES.setdefault("LexiconAttentionEncoderDecoder", LexiconAttentionEncoderDecoder)

__all__ = ["Attention", "AttentionEncoderDecoder", "Lexicon", "LexiconAttentionEncoderDecoder"]
