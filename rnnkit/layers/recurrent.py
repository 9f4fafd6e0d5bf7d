"""Recurrent layers: SimpleRNN, LSTM and GRU, with Keras's names and arguments.

Each layer is a thin shell around a cell (the math of one step, ``rnnkit.cells``)
and the BPTT loops (``rnnkit.bptt``).  The shell does what is the same for every
recurrence: checking shapes, the input projection of all steps at once
(XW = X U + b, one matrix product), direction (go_backwards), masks, initial and
carried (stateful) states, variational dropout, and the input-side gradients
after the reverse loop (dU = Xᵀ dXW, db = Σ dXW, dX = dXW Uᵀ).  After an Embedding (a
``Lookup``: ids and the table E) the projection is a gather, XW = (E U + b)[ids], and the
gradients go through the per-id sums S = Σ_{id_t = v} dXW_t: dU = Eᵀ S, db = Σ_v S_v,
dE = S Uᵀ.

The loops run compiled where ``rnnkit.kernels`` applies, or fused on the GPU where
``rnnkit.gpu`` does (each returns None where it does not, and ``bptt`` runs), as Keras's
recurrent layers try their backend's fused kernel first.  At inference the compiled LSTM
loop forms each x_t U itself, inside the loop.

Shapes: x (N, T, D) -> output (N, T, H) with return_sequences, else (N, H).
Internally everything is time-major (T, N, ·) so that each step is a contiguous slice.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .. import backend, bptt, gpu, initializers, kernels, validation
from ..cells import Cell, GRUCell, LSTMCell, SimpleCell
from ..cells.base import flat, row_sum
from ..kernels import own_threads
from .base import Layer
from .core import Lookup, LookupGrad


def _steps(X2, T, N):
    """The layer's kept input as the loop takes it: (T, N, D) from the (T*N, D) rows, or a
    ``Lookup`` with ids (T, N)."""
    if isinstance(X2, Lookup):
        return Lookup(X2.table, X2.ids.reshape(T, N))
    return X2.reshape(T, N, -1)


class Recurrent(Layer):
    """What SimpleRNN, LSTM and GRU share.  Arguments as in Keras:

    units                 H, the size of the hidden state
    return_sequences      output every step's h_t (N, T, H) instead of the last (N, H)
    return_state          also return the final states: [output, h_T] or [output, h_T, c_T]
    go_backwards          process the sequence in reverse; with return_sequences the
                          output stays in processing (reversed) order, as in Keras
    stateful              the final states of one call start the next; reset_state() clears
    dropout               variational dropout on the inputs: one mask per sequence
    recurrent_dropout     variational dropout on h_{t-1} where it enters W
    use_bias              add b (and GRU's b_rec)
    kernel_initializer, recurrent_initializer, bias_initializer
                          names from rnnkit.initializers ('glorot_uniform', 'orthogonal',
                          'zeros', 'torch_uniform', ...)
    zero_output_for_mask  with a mask and return_sequences, output zeros (instead of the
                          carried state) at masked steps
    dtype                 'float32' (default) or 'float64'
    seed                  seed of this layer's initialization and dropout
    """

    cell_class: ClassVar[type[Cell]]

    def __init__(
        self,
        units,
        *,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        dropout=0.0,
        recurrent_dropout=0.0,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = self.who
        self.units = validation.positive_int(units, "units", who)
        self.cell = self.cell_class(
            self.units, activation, recurrent_activation, bool(use_bias), **(cell_kwargs or {})
        )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(
            kernel_initializer, argument="kernel_initializer"
        )
        self.recurrent_initializer = initializers.get(
            recurrent_initializer, argument="recurrent_initializer"
        )
        self.bias_initializer = initializers.get(bias_initializer, argument="bias_initializer")
        self.dropout = validation.rate(dropout, "dropout", who)
        self.recurrent_dropout = validation.rate(recurrent_dropout, "recurrent_dropout", who)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states = None  # carried states of a stateful layer, [(N, size)]
        self.final_states = None  # the final states of the last forward
        self.initial_state_grads = None  # ∂L/∂(initial states) after backward
        self.input_dim = None
        self._ctx = None
        self._dropout_masks = None
        self.freeze_dropout = False  # reuse the last dropout masks (for gradient checks)
        if self.input_shape is not None and self.input_shape[-1] is not None:
            self.build(self.input_shape)

    # -- shapes ------------------------------------------------------------------
    @property
    def state_sizes(self):
        return self.cell.state_sizes

    @property
    def output_size(self):
        return self.cell.output_size

    def compute_output_shape(self, input_shape):
        N, T = input_shape[0], input_shape[1]
        out = (N, T, self.output_size) if self.return_sequences else (N, self.output_size)
        if self.return_state:
            return [out] + [(N, s) for s in self.state_sizes]
        return out

    # -- parameters ----------------------------------------------------------------
    def build(self, input_shape):
        D = input_shape[-1] if isinstance(input_shape, (tuple, list)) else int(input_shape)
        self.input_dim = validation.positive_int(D, "the input feature size", self.who)
        for name, shape in self.cell.param_shapes(self.input_dim).items():
            self._add_param(name, shape, self._initializer_for(name), units=self.units)
        self.built = True

    def _initializer_for(self, name):
        return {
            "U": self.kernel_initializer,
            "W": self.recurrent_initializer,
            "P": self.kernel_initializer,
        }.get(name, self.bias_initializer)

    # -- state -----------------------------------------------------------------------
    def reset_state(self, states=None) -> None:
        """Forget the carried state of a stateful layer (or set it to ``states``)."""
        if states is None:
            self.states = None
            return
        self.states = self._check_states(states, None, "states")

    reset_states = reset_state  # Keras 2's name

    def _check_states(self, states, N, name):
        if not isinstance(states, (list, tuple)):
            states = [states]
        sizes = self.state_sizes
        if len(states) != len(sizes):
            kinds = "[h, c]" if len(sizes) == 2 else "[h]"
            raise ValueError(
                f"{self.who}: {name} must be a list of {len(sizes)} array(s) {kinds}; "
                f"got {len(states)}"
            )
        out = []
        for k, (s, size) in enumerate(zip(states, sizes)):
            s = validation.as_float_array(
                s, f"{name}[{k}]", self.who, self.dtype, ndim=2, shape_doc=f" (batch, {size})"
            )
            if s.shape[1] != size or (N is not None and s.shape[0] != N):
                raise ValueError(
                    f"{self.who}: {name}[{k}] must have shape "
                    f"({N if N is not None else 'batch'}, {size}); "
                    f"got {tuple(s.shape)}"
                )
            out.append(s)
        return out

    def _initial_states(self, initial_state, N):
        np_ = backend.xp()
        if initial_state is not None:
            return self._check_states(initial_state, N, "initial_state")
        if self.stateful and self.states is not None:
            if self.states[0].shape[0] != N:
                raise ValueError(
                    f"{self.who}: this stateful layer carries state for a batch of "
                    f"{self.states[0].shape[0]}; got a batch of {N}. Use batches of "
                    f"equal size, or call reset_state() first"
                )
            return self.states
        return [np_.zeros((N, s), dtype=self.dtype) for s in self.state_sizes]

    def state_at(self, step: int) -> list:
        """The states after ``step`` steps of the last forward pass (0: the initial states),
        in processing order; truncated BPTT restarts from these."""
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: state_at called before forward")
        return [s[step].copy() for s in self.trace().states]

    def _on_astype(self, dtype):
        if self.states is not None:
            self.states = [s.astype(dtype) for s in self.states]
        self._ctx = None
        self._dropout_masks = None  # redrawn in the new dtype

    # -- dropout -----------------------------------------------------------------------
    def _draw_dropout_masks(self, N, training):
        """One mask per sequence for the inputs and one for h_{t-1} (variational dropout)."""
        if not training or (self.dropout == 0.0 and self.recurrent_dropout == 0.0):
            return None, None
        frozen = self._dropout_masks
        if (
            self.freeze_dropout
            and frozen is not None
            and all(k is None or k.shape[0] == N for k in frozen)
        ):
            return frozen  # the masks of the last draw, for this batch size

        def draw(rate, width):
            if rate == 0.0:
                return None
            keep = self.rng.random((N, width)) >= rate
            return backend.asarray(keep / (1.0 - rate), dtype=self.dtype)

        self._dropout_masks = (
            draw(self.dropout, self.input_dim),
            draw(self.recurrent_dropout, self.cell.recurrent_size),
        )
        return self._dropout_masks

    # -- forward and backward ---------------------------------------------------------------
    def takes_lookup(self, training: bool, vocabulary: int, tokens: int) -> bool:
        """Whether a training forward should take the Embedding before it as a ``Lookup``
        (``Sequential`` asks): x_t U = (E U)[id_t] then costs one (V, E) x (E, G) product
        and a gather instead of a product over every token, and backward sums ∂L/∂a_t per
        id once (V rows) instead of two products over every token.  Where there are fewer
        ids in the table than tokens in the batch, no input dropout (its mask is per
        sequence, not per id) and NumPy arrays."""
        return (
            bool(training)
            and self.dropout == 0.0
            and backend.backend_name() == "numpy"
            and vocabulary <= tokens
        )

    @own_threads()
    def forward(self, x, training: bool = False, mask=None, initial_state=None) -> Any:
        lookup = x if isinstance(x, Lookup) else None
        if lookup is None:
            x = validation.as_float_array(
                x,
                "x",
                self.who,
                self.dtype,
                ndim=3,
                shape_doc=" (batch, time, features)",
                features=self.input_dim,
            )
            N, T, D = x.shape
        else:
            (N, T), D = lookup.ids.shape, lookup.table.shape[1]
        if not self.built:
            self.build((N, T, D))
        np_ = backend.xp()
        mask = validation.as_mask(mask, N, T, self.who)
        s0 = self._initial_states(initial_state, N)
        x_mask, rec_mask = self._draw_dropout_masks(N, training)
        self._ctx = None  # the last call's trace goes before this one is built

        m = None if mask is None else mask.T[:, :, None]  # (T, N, 1)
        if self.go_backwards:
            m = None if m is None else m[::-1]
        x_keep = out = None  # inference on NumPy: the loop reads x and writes the output
        loop_io = not training and kernels.loops.LOOP_IO and backend.backend_name() == "numpy"
        if lookup is None:
            X = x.transpose(1, 0, 2)  # (T, N, D), time-major (a view)
            if self.go_backwards:
                X = X[::-1]
            if x_mask is not None:
                X = X * x_mask  # the same mask at every step
            if not loop_io:
                X2 = np_.ascontiguousarray(X).reshape(T * N, D)
                X = X2.reshape(T, N, D)
            else:  # read where it lies; the loop copies it to X2 as it goes
                X2 = np_.empty((T * N, D), dtype=self.dtype)
                x_keep = X2.reshape(T, N, D)
        else:
            if x_mask is not None:
                raise ValueError(f"{self.who}: input dropout cannot take a Lookup")
            ids = lookup.ids.T[::-1] if self.go_backwards else lookup.ids.T  # (T, N)
            X2 = Lookup(lookup.table, np_.ascontiguousarray(ids).reshape(T * N))
        p = self.params
        bias = p["b"] if self.use_bias else None
        if loop_io and self.return_sequences and not (self.zero_output_for_mask and m is not None):
            out = np_.empty((N, T, self.output_size), dtype=self.dtype)
        trace = self._run_forward(
            X if x_keep is not None else _steps(X2, T, N),
            s0,
            m,
            rec_mask,
            bias,
            training,
            x_keep=x_keep,
            out=out,
        )

        untraced = isinstance(trace, kernels.Untraced)
        final = trace.final_states() if untraced else [s[T] for s in trace.states]
        self.final_states = final
        if self.stateful:
            self.states = [s.copy() for s in final]
        # what backward (or a trace asked for later) needs; s0 is kept, as a trace-less
        # forward overwrites its slot
        self._ctx = (X2, trace, x_mask, m, ([s.copy() for s in s0], rec_mask, bias))

        if self.return_sequences:
            if out is None or getattr(trace, "out", None) is None:  # not written by the loop
                out = trace.states[0][1:]  # (T, N, H)
                if self.zero_output_for_mask and m is not None:
                    out = out * m
                out = np_.ascontiguousarray(out.transpose(1, 0, 2))  # (N, T, H)
            self.output_mask = mask
        else:
            out = final[0]
            self.output_mask = None
        return [out, *final] if self.return_state else out

    def _run_forward(self, X, s0, m, rec_mask, bias, training, trace=None, x_keep=None, out=None):
        """The forward loop over X (T, N, D), or a ``Lookup`` with ids (T, N): compiled where
        it applies, else ``bptt``.  An inference forward (``training`` False) keeps no
        per-step trace where the compiled loop runs (``trace`` True asks for one: see
        ``trace()``).  ``x_keep`` (T, N, D), C order: where X, a view, is copied (by the
        loop as it reads it, else here).  ``out`` (N, T, H), with no trace: where the loop
        may write the output sequence (it did when the trace's ``out`` is set)."""
        p, cell = self.params, self.cell
        keep = bool(training) if trace is None else trace
        out_tnh = None if out is None or keep else out.transpose(1, 0, 2)  # (T, N, H) view
        if isinstance(X, Lookup):  # ids (T, N): x_t U + b = (E U + b)[id_t]
            table = backend.xp().asarray(X.table, dtype=self.dtype)
            xw_table = kernels.matmul(table, p["U"])  # (V, G)
            if bias is not None:
                xw_table += bias
            xw = xw_table[X.ids]  # (T, N, G)
            return self._loop_over(xw, s0, m, rec_mask, None, keep, out_tnh)
        T, N, D = X.shape
        if not training:  # the compiled loop may form each x_t U inside the loop
            done = kernels.forward(
                cell,
                p,
                s0,
                m,
                rec_mask,
                x=X,
                bias=bias,
                trace=keep,
                keep_outputs=self.return_sequences,
                x_keep=x_keep,
                out=out_tnh,
            )
            if done is not None:
                return done
        if x_keep is not None:
            x_keep[...] = X
            X = x_keep
        xw = kernels.matmul(X.reshape(T * N, D), p["U"]).reshape(T, N, cell.width)  # x_t U, all t
        return self._loop_over(xw, s0, m, rec_mask, bias, keep, out_tnh)

    def _loop_over(self, xw, s0, m, rec_mask, bias, keep, out=None):
        """The forward loop from the projections xw (T, N, G), a temporary it may overwrite
        (b is added in the loop, or before it where the loop is ``bptt``'s); ``out``
        (T, N, H): as ``_run_forward``'s, a view."""
        p, cell = self.params, self.cell
        done = kernels.forward(
            cell,
            p,
            s0,
            m,
            rec_mask,
            xw=xw,
            bias=bias,
            overwrite_xw=True,
            trace=keep,
            keep_outputs=self.return_sequences,
            out=None if keep else out,
        )
        if done is not None:
            return done
        if bias is not None:
            xw += bias  # XW[t] = x_t U + b
        done = gpu.forward(cell, p, xw, s0, m, rec_mask)  # fused CUDA loops (CuPy backend)
        if done is not None:
            return done
        return bptt.forward(cell, p, xw, s0, m, rec_mask)

    def trace(self) -> bptt.Trace:
        """The ``bptt.Trace`` of the last forward pass: every step's states and caches.  An
        inference forward run by the compiled loops keeps none (it needs one step's buffers,
        as PyTorch's ``inference_mode``); it is then run again once, with a trace, the
        first time one is asked for (by ``backward`` or the diagnostics)."""
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: no forward pass to look at; call forward first")
        X2, trace, x_mask, m, redo = self._ctx
        if not isinstance(trace, kernels.Untraced):
            return trace
        s0, rec_mask, bias = redo
        T, N = trace.T, trace.N
        with kernels.own_threads():
            trace = self._run_forward(
                _steps(X2, T, N), s0, m, rec_mask, bias, training=False, trace=True
            )
        self._ctx = (X2, trace, x_mask, m, redo)
        return trace

    def step_inputs(self) -> Any:
        """(T, N, D): the inputs x_t of every step of the last forward, as the layer used
        them (processing order, after input dropout; gathered from the table where the
        layer took a ``Lookup``)."""
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: no forward pass to look at; call forward first")
        X2, trace = self._ctx[0], self._ctx[1]
        if isinstance(X2, Lookup):
            X2 = backend.xp().asarray(X2.table, dtype=self.dtype)[X2.ids]
        return X2.reshape(trace.T, trace.N, -1)

    def bptt_inputs(self, dy) -> tuple[Any, list]:
        """What the reverse loop starts from, given ``dy`` as ``backward`` takes it:
        (d_out (T, N, H) ∂L/∂(output of step t) or None, d_final [∂L/∂(final state k)]).
        ``rnnkit.diagnostics`` replays the reverse loop from these."""
        if self._ctx is None:
            raise RuntimeError(f"{self.who}: backward called before forward")
        trace, m = self._ctx[1], self._ctx[3]
        N, T = trace.N, trace.T
        d_final = [None] * len(self.state_sizes)
        if self.return_state:
            if not isinstance(dy, (list, tuple)) or len(dy) != 1 + len(self.state_sizes):
                names = ", ".join(["d_output", "d_h", "d_c"][: 1 + len(self.state_sizes)])
                got = f"{len(dy)} arrays" if isinstance(dy, (list, tuple)) else type(dy).__name__
                raise ValueError(
                    f"{self.who}: backward: with return_state, dy must be a list "
                    f"[{names}] (None for an unused one); got {got}"
                )
            dy, *d_states = dy
            d_final = [
                None
                if d is None
                else validation.gradient(d, (N, size), self.who, self.dtype, f"dy[{k + 1}]")
                for k, (d, size) in enumerate(zip(d_states, self.state_sizes))
            ]
        d_out = None
        if dy is not None:
            out_shape = (N, T, self.output_size) if self.return_sequences else (N, self.output_size)
            dy = validation.gradient(dy, out_shape, self.who, self.dtype)
            if self.return_sequences:
                d_out = dy.transpose(1, 0, 2)  # (T, N, H)
                if self.zero_output_for_mask and m is not None:
                    d_out = d_out * m
            else:
                d_final[0] = dy if d_final[0] is None else d_final[0] + dy
        return d_out, d_final

    @own_threads()
    def backward(self, dy) -> Any:
        self._require_built()
        trace = self.trace()
        X2, _, x_mask, m, _ = self._ctx
        T, N = trace.T, trace.N
        d_out, d_final = self.bptt_inputs(dy)
        np_ = backend.xp()

        done = kernels.backward(self.cell, self.params, trace, d_out, d_final)  # compiled
        if done is None:  # fused CUDA loops (CuPy backend)
            done = gpu.backward(self.cell, self.params, trace, d_out, d_final)
        dxw, d_init = (
            done
            if done is not None
            else bptt.backward(self.cell, self.params, trace, d_out, d_final)
        )

        p, dA = self.params, flat(dxw)  # (T*N, G)
        if isinstance(X2, Lookup):  # x_t = E[id_t]: sum ∂L/∂a_t per id first
            table = np_.asarray(X2.table, dtype=self.dtype)
            dA_ids = kernels.add_rows(np_.zeros((len(table), dA.shape[1]), dA.dtype), X2.ids, dA)
            grads = {"U": kernels.matmul(table.T, dA_ids)}  # Σ_v E[v]ᵀ Σ_{id_t = v} ∂L/∂a_t
            if self.use_bias:
                grads["b"] = row_sum(dA_ids)
        else:
            dA_ids = None
            grads = {"U": kernels.matmul(X2.T, dA)}  # Σ_t x_tᵀ ∂L/∂a_t
            if self.use_bias:
                grads["b"] = row_sum(dA)  # Σ_t ∂L/∂a_t
        grads.update(self.cell.recurrent_grads(p, trace, dxw, matmul=kernels.matmul))
        self._grads = {k: grads[k] for k in p}  # keyed exactly like params
        self.initial_state_grads = d_init

        if dA_ids is not None:  # ∂L/∂E = (Σ per id ∂L/∂a) Uᵀ, for the Embedding
            return LookupGrad(kernels.matmul(dA_ids, p["U"].T).astype(X2.table.dtype, copy=False))
        dX = kernels.matmul(dA, p["U"].T).reshape(T, N, -1)  # ∂L/∂x_t = ∂L/∂a_t Uᵀ
        if x_mask is not None:
            dX *= x_mask
        if self.go_backwards:
            dX = dX[::-1]
        return np_.ascontiguousarray(dX.transpose(1, 0, 2))  # (N, T, D)

    # -- configuration -------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.cell.activation.name,
            use_bias=self.use_bias,
            kernel_initializer=initializers.name_of(self.kernel_initializer),
            recurrent_initializer=initializers.name_of(self.recurrent_initializer),
            bias_initializer=initializers.name_of(self.bias_initializer),
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        if self.input_dim is not None:
            config["input_shape"] = [None, self.input_dim]
        return config


class SimpleRNN(Recurrent):
    """The lecture's Elman RNN:  s_t = σ(x_t U + s_{t-1} W + b).

    Parameters: U (D, H), W (H, H), b (H,).  ``activation``: tanh (default),
    sigmoid, relu, linear, hard_sigmoid or softsign.  The math is in
    ``rnnkit.cells.SimpleCell``.

        >>> layer = SimpleRNN(20, return_sequences=True)
        >>> y = layer(np.zeros((8, 50, 1), "float32"))      # (8, 50, 20)
    """

    cell_class = SimpleCell

    def __init__(self, units, activation="tanh", **kwargs):
        if "recurrent_activation" in kwargs:  # it would be silently ignored
            raise TypeError(
                "SimpleRNN() got an unexpected keyword argument "
                "'recurrent_activation': a SimpleRNN has one activation"
            )
        super().__init__(units, activation=activation, **kwargs)


class LSTM(Recurrent):
    """Long short-term memory.  Gates stacked i, f, g, o (the order of PyTorch and
    Keras) in U (D, 4H), W (H, 4H), b (4H,); with ``proj_size`` p > 0 also the
    projection P (H, p), h_t = (o ⊙ σ(c_t)) P of size p, and W (p, 4H), as PyTorch's
    projected LSTM.

        i, f, o = ρ(...)   g = σ(...)   c_t = f ⊙ c_{t-1} + i ⊙ g   h_t = o ⊙ σ(c_t)

    ``activation`` σ (tanh), ``recurrent_activation`` ρ (sigmoid),
    ``unit_forget_bias`` starts the forget gate's bias at 1 (Keras's default).
    States: [h, c].  The math and its reverse step are in ``rnnkit.cells.LSTMCell``.
    """

    cell_class = LSTMCell

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias=True,
        proj_size=0,
        **kwargs,
    ):
        proj = (
            validation.positive_int(proj_size, "proj_size", type(self).__name__) if proj_size else 0
        )
        if proj and proj >= units:
            raise ValueError(f"LSTM: proj_size must be smaller than units ({units}); got {proj}")
        self.unit_forget_bias = bool(unit_forget_bias)
        self.proj_size = proj
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            cell_kwargs={"proj_size": proj},
            **kwargs,
        )

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_bias and self.unit_forget_bias:
            H = self.units
            self._params["b"][H : 2 * H] = 1.0  # as Keras: ones, whatever bias_initializer says

    def get_config(self):
        config = super().get_config()
        config.update(
            recurrent_activation=self.cell.recurrent_activation.name,
            unit_forget_bias=self.unit_forget_bias,
            proj_size=self.proj_size,
        )
        return config


class GRU(Recurrent):
    """Gated recurrent unit.  Gates stacked z, r, n (Keras's z, r, h order) in
    U (D, 3H), W (H, 3H), b (3H,); with ``reset_after=True`` (the default, as in
    Keras 3, PyTorch and cuDNN) also the recurrent bias b_rec (3H,):

        z = ρ(x_z + h_z)   r = ρ(x_r + h_r)   n = σ(x_n + r ⊙ (h_{t-1} W_n + b_rec_n))
        h_t = z ⊙ h_{t-1} + (1 - z) ⊙ n

    ``reset_after=False`` applies r before the product: n = σ(x_n + (r ⊙ h_{t-1}) W_n).
    The math and its reverse step are in ``rnnkit.cells.GRUCell``.
    """

    cell_class = GRUCell

    def __init__(
        self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs
    ):
        self.reset_after = bool(reset_after)
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            cell_kwargs={"reset_after": self.reset_after},
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            recurrent_activation=self.cell.recurrent_activation.name, reset_after=self.reset_after
        )
        return config
