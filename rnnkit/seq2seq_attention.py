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
"""

from __future__ import annotations

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
    def backward(self, dy):
        h, e, k, a, z, out = self._ctx
        xp = backend.xp()
        H = self.units
        P = self.params
        dpre = (dy * (1.0 - out * out)).reshape(-1, H)
        self._grads = {"Wc": backend.matmul(z.reshape(-1, 2 * H).T, dpre), "bc": dpre.sum(axis=0)}
        dz = backend.matmul(dpre, P["Wc"].T).reshape(z.shape)
        dc, dh = dz[..., :H], dz[..., H:].copy()
        da = xp.matmul(dc, xp.swapaxes(e, 1, 2))  # (N, T, S)
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
        e, m = states[-1]
        att = self.attention.forward((d, e, m), training=training)
        return self.head.forward(att, training=training), mask, new_states + [states[-1]]

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        d, de = self.attention.backward(self.head.backward(dy))
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


MODEL_CLASSES.setdefault("AttentionEncoderDecoder", AttentionEncoderDecoder)

__all__ = ["Attention", "AttentionEncoderDecoder"]
