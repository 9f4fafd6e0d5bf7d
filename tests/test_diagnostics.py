"""rnnkit.diagnostics: per-step gradients, Jacobians and bounds, gates, truncation bias,
clipping telemetry, plots and the ``diagnose`` command.

Every check is in float64 and compares against an independent computation: the layer's
own gradient (one matrix product after the loop), central finite differences, a manual
NumPy recomputation, or PyTorch autograd on the same equations.
"""

import json
import os

import numpy as np
import pytest

import rnnkit
from rnnkit import GRU, LSTM, Bidirectional, Dense, Sequential, SimpleRNN
from rnnkit import diagnostics as dg
from rnnkit.diagnostics import tasks

from helpers import recurrent_layer

N, T, D, H = 3, 6, 3, 4
F64 = "float64"
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=bool)


def rnn_layer(kind, **kw):
    kw.setdefault("dtype", F64)
    kw.setdefault("seed", 11)
    kw.setdefault("bias_initializer", "torch_uniform")  # non-zero biases
    return recurrent_layer(kind, H, **kw)


KINDS = ["rnn", "rnn_sigmoid", "rnn_relu", "rnn_linear", "lstm", "lstm_proj", "gru", "gru_before"]


def seq_model(kind, **kw):
    m = Sequential(
        [
            rnn_layer(kind, return_sequences=True, input_shape=[None, D], **kw),
            Dense(2, dtype=F64, seed=5),
        ]
    )
    m.compile("mse")
    return m


def batch(seed=0, n=N, t=T, k=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, t, D)), rng.standard_normal((n, t, k))


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    s = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if s == 0 else float(np.linalg.norm(a - b) / s)


def same_grads(a, b, tol=1e-12):
    """Gradients of two equal models (layer names differ): compared in order."""
    return len(a) == len(b) and all(rel(u, v) < tol for u, v in zip(a.values(), b.values()))


def plain_grads(model, x, y, mask=None):
    kw = {} if mask is None else {"mask": mask}
    out = model.forward(x, **kw)
    _, dy = model.loss(y, out, mask=model.output_mask)
    model.backward(dy)
    return {k: g.copy() for k, g in model.grads.items()}


# ------------------------------------------------------------------- 1. per-step records
@pytest.mark.parametrize("kind", KINDS)
def test_step_terms_sum_to_the_full_gradient(kind):
    m = seq_model(kind)
    x, y = batch()
    rec = dg.gradient_records(m, x, y)
    (r,) = list(rec)
    layer = m.layers[0]
    assert set(r.terms) == set(layer.params)
    for name, terms in r.terms.items():
        assert terms.shape == (T,) + layer.params[name].shape
        assert rel(terms.sum(axis=0), layer.grads[name]) < 1e-10, name
    assert max(r.sum_check().values()) < 1e-10
    # and the model is left with the batch's full gradient
    assert same_grads(m.grads, plain_grads(seq_model(kind), x, y))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "gru_before"])
def test_step_terms_match_finite_differences(kind):
    """Term k of ∂L/∂W is the derivative of L with respect to the copy of W used at step k
    alone: perturb W at that one step (running the layer one step at a time, the state
    carried over) and compare with central differences."""
    m = seq_model(kind)
    x, y = batch(t=4)
    (r,) = list(dg.gradient_records(m, x, y))
    layer, head = m.layers

    def loss(k, dW):
        W0, outs, state = layer.params["W"].copy(), [], None
        for t in range(x.shape[1]):
            layer.params["W"][...] = W0 + (dW if t == k else 0.0)
            outs.append(layer.forward(x[:, t : t + 1], initial_state=state).copy())
            state = [s.copy() for s in layer.final_states]
        layer.params["W"][...] = W0
        return m.loss(y, head.forward(np.concatenate(outs, axis=1)))[0]

    eps = 1e-6
    for k in range(x.shape[1]):
        fd = np.zeros_like(layer.params["W"])
        for idx in np.ndindex(fd.shape):
            d = np.zeros_like(fd)
            d[idx] = eps
            fd[idx] = (loss(k, d) - loss(k, -d)) / (2 * eps)
        assert rel(r.terms["W"][k], fd) < 1e-6, k


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "gru_before"])
def test_step_terms_with_masks_stacks_bidirectional_and_vector_outputs(kind):
    m = Sequential(
        [
            Bidirectional(rnn_layer(kind, return_sequences=True), input_shape=[None, D]),
            rnn_layer(kind, go_backwards=True),  # one output per sequence
            Dense(1, dtype=F64, seed=2),
        ]
    )
    m.compile("mse")
    x, _ = batch(1)
    y = np.random.default_rng(2).standard_normal((N, 1))
    rec = dg.gradient_records(m, x, y, mask=MASK)
    assert len(rec.layers) == 3
    for r in rec:
        assert max(r.sum_check().values()) < 1e-10, (r.name, r.sum_check())
    # masked steps pass nothing to the weights
    fw = rec.layers[m.layers[0].forward_layer.name]
    assert np.all(fw.dxw[~MASK.T] == 0)


def test_records_of_an_rnnstack_from_an_output_gradient_with_gates_recorded():
    from rnnkit import RNNStack

    stack = RNNStack(
        [
            LSTM(
                H,
                return_sequences=True,
                return_state=True,
                dtype=F64,
                seed=1,
                input_shape=[None, D],
            ),
            LSTM(H, return_sequences=True, return_state=True, dtype=F64, seed=2),
        ]
    )
    x, _ = batch(20)
    rng = np.random.default_rng(21)
    d_out, d_h = rng.standard_normal((N, T, H)), rng.standard_normal((2, N, H))
    d_c = rng.standard_normal((2, N, H))
    with pytest.raises(ValueError, match="output_grad"):
        dg.gradient_records(stack, x)
    rec = dg.gradient_records(stack, x, output_grad=(d_out, (d_h, d_c)), record=["gates"])
    assert rec.loss is None and len(rec.layers) == 2
    for r in rec:
        assert max(r.sum_check().values()) < 1e-10
    low, top = stack.layers
    # ∂L/∂(final state) enters at the last step: δ_T = d_out[:, -1] + d_h (+ d_c for c)
    assert rel(rec[low.name].deltas["c"][T], d_c[0]) < 1e-14
    assert rel(rec[top.name].deltas["c"][T], d_c[1]) < 1e-14
    assert rel(rec[top.name].deltas["h"][T], d_out[:, -1] + d_h[1]) < 1e-14
    assert set(rec.recorded[low.name]["gates"]) == {"i", "f", "g", "o"}
    assert "states" not in rec.recorded[top.name]
    assert np.shares_memory(rec.recorded[top.name]["gates"]["f"], dg.trace_of(top).cache["gates"])
    plain = dg.gradient_records(seq_model("lstm"), x, batch(20)[1])
    assert plain.recorded is None


def test_elman_terms_are_the_lectures_formula():
    """term_t(W) = s_{t-1}ᵀ (δ_t ⊙ σ'(a_t)) and term_t(U) = x_tᵀ (δ_t ⊙ σ'(a_t))."""
    m = seq_model("rnn")
    x, y = batch(3)
    r = dg.gradient_records(m, x, y)[m.layers[0].name]
    tr = dg.trace_of(m.layers[0])
    s = tr.states[0]
    for t in range(1, T + 1):
        da = r.deltas["h"][t] * (1 - s[t] ** 2)
        assert rel(r.terms["W"][t - 1], s[t - 1].T @ da) < 1e-13
        assert rel(r.terms["U"][t - 1], x[:, t - 1].T @ da) < 1e-13
        assert rel(r.dxw[t - 1], da) < 1e-13


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_deltas_match_pytorch_autograd_of_the_same_equations(kind):
    torch = pytest.importorskip("torch")
    m = seq_model(kind)
    x, y = batch(4)
    r = dg.gradient_records(m, x, y)[m.layers[0].name]
    p = {k: torch.tensor(v, requires_grad=True) for k, v in m.layers[0].params.items()}
    V, c = (torch.tensor(m.layers[1].params[k]) for k in ("V", "c"))
    xs = torch.tensor(x)
    h = torch.zeros(N, H, dtype=torch.float64)
    cst = torch.zeros(N, H, dtype=torch.float64)
    hs, outs = [], []
    for t in range(T):
        a = xs[:, t] @ p["U"] + p["b"]
        if kind == "rnn":
            h = torch.tanh(a + h @ p["W"])
        elif kind == "lstm":
            z = a + h @ p["W"]
            i, f, g, o = (z[:, k * H : (k + 1) * H] for k in range(4))
            cst = torch.sigmoid(f) * cst + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(cst)
        else:
            hw = h @ p["W"] + p["b_rec"]
            zz = torch.sigmoid(a[:, :H] + hw[:, :H])
            rr = torch.sigmoid(a[:, H : 2 * H] + hw[:, H : 2 * H])
            n = torch.tanh(a[:, 2 * H :] + rr * hw[:, 2 * H :])
            h = zz * h + (1 - zz) * n
        h.retain_grad()
        hs.append(h)
        outs.append(h @ V + c)
    out = torch.stack(outs, 1)
    loss = ((out - torch.tensor(y)) ** 2).mean(-1).sum() / N  # mse, summed over time
    loss.backward()
    for t in range(T):
        assert rel(r.deltas["h"][t + 1], hs[t].grad.numpy()) < 1e-12, t
    assert abs(loss.item() - dg.gradient_records(m, x, y).loss) < 1e-12


def test_gradient_flow_rows_add_up_and_are_causal():
    m = seq_model("rnn")
    x, y = batch(5)
    flow = dg.gradient_flow(m, x, y)
    a = flow.maps[m.layers[0].name]["h"]
    assert a.shape == (T, T + 1)
    assert flow.steps == list(range(T))
    for t in range(T):
        assert np.all(a[t, t + 2 :] == 0)  # L_t does not depend on later states
        assert a[t, t + 1] > 0
    # the model keeps the full loss's gradient afterwards
    assert same_grads(m.grads, plain_grads(seq_model("rnn"), x, y))


def test_gradient_flow_equals_jacobian_products_of_reverse_mode():
    """‖∂L_t/∂S_k‖ from separate backward passes = ‖(∂L_t/∂s_t)(∂s_t/∂s_k)‖ from the
    exact Jacobians (per sample, then over the batch)."""
    m = seq_model("lstm")
    x, y = batch(6)
    flow = dg.gradient_flow(m, x, y)
    layer, dense = m.layers
    out = m.forward(x)
    _, dy = m.loss(y, out)
    g = dy @ dense.params["V"].T  # ∂L_t/∂h_t, (N, T, H)
    Js = [dg.step_jacobians(layer, n) for n in range(N)]
    M = 2 * H
    for t in (T - 1, 2):
        want = np.zeros(T + 1)
        for n in range(N):
            P = np.eye(M)
            v = np.concatenate([g[n, t], np.zeros(H)])  # ∂L_t/∂(h, c)_{t+1}: through h only
            for k in range(t + 1, -1, -1):
                if k < t + 1:
                    P = P @ Js[n][k]
                want[k] += np.sum((v @ P)[:H] ** 2)
        want = np.sqrt(want)
        got = flow.maps[layer.name]["h"][t]
        assert rel(got[: t + 2], want[: t + 2]) < 1e-12


# ------------------------------------------------------------------------ 2. Jacobians
def final_states(layer, x, s0):
    layer.forward(x, initial_state=s0)
    return np.concatenate([s.copy() for s in layer.final_states], axis=1)


@pytest.mark.parametrize("kind", KINDS)
def test_jacobian_products_match_finite_differences(kind):
    layer = rnn_layer(kind, input_shape=[None, D])
    x, _ = batch(7)
    rng = np.random.default_rng(8)
    s0 = [rng.standard_normal((N, s)) * 0.5 for s in layer.state_sizes]
    sizes = list(layer.state_sizes)
    M = sum(sizes)
    layer.forward(x, initial_state=s0)
    n = 1
    J = dg.step_jacobians(layer, n)
    assert J.shape == (T, M, M)
    P = np.eye(M)
    for k in range(T - 1, -1, -1):
        P = P @ J[k]  # ∂s_T/∂s_0 after the loop
    eps = 1e-6
    fd = np.empty((M, M))
    for j in range(M):
        plus = [s.copy() for s in s0]
        minus = [s.copy() for s in s0]
        which = 0 if j < sizes[0] else 1
        col = j if which == 0 else j - sizes[0]
        plus[which][n, col] += eps
        minus[which][n, col] -= eps
        fd[:, j] = (final_states(layer, x, plus)[n] - final_states(layer, x, minus)[n]) / (2 * eps)
    assert np.allclose(P, fd, rtol=1e-6, atol=1e-9)
    if kind == "rnn_relu":
        return
    layer.forward(x, initial_state=s0)
    norms = dg.product_norms(dg.step_jacobians(layer, n))
    assert abs(norms[T] - np.linalg.norm(fd, 2)) < 1e-6 * max(1.0, norms[T])


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "linear", "softsign"])
def test_elman_step_jacobian_is_diag_derivative_times_w_transpose(act):
    layer = rnn_layer("rnn", activation=act, input_shape=[None, D])
    x, _ = batch(9)
    layer.forward(x)
    J = dg.step_jacobians(layer, 2)
    s = dg.trace_of(layer).states[0]
    W = layer.params["W"]
    for t in range(1, T + 1):
        want = np.diag(layer.cell.activation.deriv(s[t, 2])) @ W.T
        assert rel(J[t - 1], want) < 1e-14


@pytest.mark.parametrize(
    "act,scale", [("tanh", 0.5), ("tanh", 3.0), ("sigmoid", 1.0), ("sigmoid", 8.0), ("linear", 1.5)]
)
def test_bounds_bound_the_exact_norms(act, scale):
    layer = SimpleRNN(8, activation=act, dtype=F64, seed=3, input_shape=[None, D])
    layer.params["W"][...] *= scale
    m = Sequential([layer])
    x = np.random.default_rng(10).standard_normal((4, 30, D))
    jac = dg.jacobian_norms(m, x, samples=range(4))[layer.name]
    lam = np.linalg.norm(layer.params["W"], 2)
    assert jac["lambda"] == pytest.approx(lam, rel=1e-12)
    assert jac["gamma"] == layer.cell.activation.gamma
    lag = np.arange(31)
    for n in range(4):
        exact, prod, data, lect = (
            np.array(jac[k][n]) for k in ("exact", "product", "data", "lecture")
        )
        tol = 1 + 1e-10
        assert np.all(exact <= prod * tol)
        assert np.all(prod <= data * tol)
        assert np.all(data <= lect * tol)
        assert np.allclose(lect, (jac["gamma"] * lam) ** lag, rtol=1e-10)
    if act == "linear":  # σ' = 1: data bound = lecture bound
        assert np.allclose(jac["data"], jac["lecture"], rtol=1e-12)


def test_bounds_skip_masked_steps_and_hold_for_gated_cells():
    m = Sequential([LSTM(H, dtype=F64, seed=1, input_shape=[None, D])])
    x, _ = batch(11)
    jac = dg.jacobian_norms(m, x, samples=range(N), mask=MASK)[m.layers[0].name]
    for n in range(N):
        exact, prod = np.array(jac["exact"][n]), np.array(jac["product"][n])
        assert np.all(exact <= prod * (1 + 1e-10))
        cell = np.array(jac["cell"][n])
        assert np.all(cell <= exact * (1 + 1e-10))  # a block is no larger than the whole
        assert np.all(np.array(jac["carousel"][n]) <= 1.0)
    layer = m.layers[0]
    layer.forward(x, mask=MASK)
    J = dg.step_jacobians(layer, 1)
    assert np.array_equal(J[4], np.eye(2 * H)) and np.array_equal(J[5], np.eye(2 * H))


def test_lecture_amplified_sixteen_times():
    """The lecture's example: one linear unit with recurrent weight 2, unrolled 4 steps."""
    layer = SimpleRNN(1, activation="linear", use_bias=False, dtype=F64, input_shape=[None, 1])
    layer.params["U"][...] = 1.0
    layer.params["W"][...] = 2.0
    m = Sequential([layer])
    m.compile("mse")
    x = np.array([[[1.0], [0.0], [0.0], [0.0], [0.0]]])
    out = dg.record(m, x, "states")[layer.name]["states"]["h"][0, :, 0]
    assert out.tolist() == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]  # input_1 × 2⁴ at the last copy
    jac = dg.jacobian_norms(m, x)[layer.name]
    assert jac["exact"][0] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert jac["exact"][0][4] == 16.0 == jac["lecture"][0][4]  # ∂s_5/∂s_1 = w⁴ = (γλ)⁴
    # L = s_5² (mse against 0): δ_5 = 2 s_5 = 32, and every step back doubles it
    rec = dg.gradient_records(m, x, np.zeros((1, 1)))[layer.name]
    assert rec.deltas["h"][:, 0, 0].tolist() == [1024.0, 512.0, 256.0, 128.0, 64.0, 32.0]
    assert rec.terms["U"][:, 0, 0].tolist() == [512.0, 0.0, 0.0, 0.0, 0.0]  # ∂L/∂U = 16·32
    assert rec.terms["W"][:, 0, 0].tolist() == [0.0, 256.0, 256.0, 256.0, 256.0]


# -------------------------------------------------------------------------- 3. gates and states
def test_record_returns_views_equal_to_a_manual_recomputation():
    def sig(a):
        return 1 / (1 + np.exp(-a))

    x, _ = batch(12)
    for kind in ("lstm", "gru", "gru_before", "rnn"):
        m = seq_model(kind)
        layer = m.layers[0]
        rec = dg.record(m, x, ["gates", "states"])[layer.name]
        p = layer.params
        h = np.zeros((N, H))
        c = np.zeros((N, H))
        for t in range(T):
            a = x[:, t] @ p["U"] + p["b"]
            if kind == "lstm":
                z = a + h @ p["W"]
                i, f, g, o = (
                    sig(z[:, :H]),
                    sig(z[:, H : 2 * H]),
                    np.tanh(z[:, 2 * H : 3 * H]),
                    sig(z[:, 3 * H :]),
                )
                c = f * c + i * g
                h = o * np.tanh(c)
                gates = {"i": i, "f": f, "g": g, "o": o}
            elif kind == "gru":
                hw = h @ p["W"] + p["b_rec"]
                zz, rr = sig(a[:, :H] + hw[:, :H]), sig(a[:, H : 2 * H] + hw[:, H : 2 * H])
                n = np.tanh(a[:, 2 * H :] + rr * hw[:, 2 * H :])
                h = zz * h + (1 - zz) * n
                gates = {"z": zz, "r": rr, "n": n}
            elif kind == "gru_before":
                zz = sig(a[:, :H] + h @ p["W"][:, :H])
                rr = sig(a[:, H : 2 * H] + h @ p["W"][:, H : 2 * H])
                n = np.tanh(a[:, 2 * H :] + (rr * h) @ p["W"][:, 2 * H :])
                h = zz * h + (1 - zz) * n
                gates = {"z": zz, "r": rr, "n": n}
            else:
                h = np.tanh(a + h @ p["W"])
                gates = {}
            assert set(rec["gates"]) == set(gates)
            for name, v in gates.items():
                assert rel(rec["gates"][name][:, t], v) < 1e-13, (kind, name, t)
            assert rel(rec["states"]["h"][:, t + 1], h) < 1e-13
            if kind == "lstm":
                assert rel(rec["states"]["c"][:, t + 1], c) < 1e-13
        # views of the forward pass's buffers, not copies (unless asked)
        tr = dg.trace_of(layer)
        assert np.shares_memory(rec["states"]["h"], tr.states[0])
        if rec["gates"]:
            assert all(np.shares_memory(v, tr.cache["gates"]) for v in rec["gates"].values())
        copied = dg.record(m, x, "states", copy=True)[layer.name]
        assert "gates" not in copied
        assert not np.shares_memory(copied["states"]["h"], dg.trace_of(layer).states[0])
    with pytest.raises(ValueError, match="can record"):
        dg.record(m, x, ["grads"])


def test_gate_statistics_timescales_and_saturation():
    layer = LSTM(H, dtype=F64, input_shape=[None, D], seed=0)
    layer.params["U"][...] = 0
    layer.params["W"][...] = 0
    b = layer.params["b"]
    b[...] = 0
    b[H : 2 * H] = [3.0, 0.0, -3.0, 6.0]  # forget gates σ(3), σ(0), σ(-3), σ(6)
    b[3 * H :] = 10.0  # output gate saturated open
    m = Sequential([layer])
    x, _ = batch(13)
    st = dg.gate_statistics(m, x)[layer.name]
    f = 1 / (1 + np.exp(-np.array([3.0, 0.0, -3.0, 6.0])))
    assert np.allclose(st["forget_timescale"]["per_unit"], -1 / np.log(f), rtol=1e-12)
    assert st["gates"]["o"]["saturated_high"] == 1.0 and st["gates"]["o"]["saturated"] == 1.0
    assert st["gates"]["i"]["saturated"] == 0.0 and st["gates"]["i"]["mean"] == pytest.approx(0.5)
    # the forget gate: σ(6) saturates high (σ' = 0.0025 < 0.1·γ), σ(3)=0.95 does not (0.045)
    assert st["gates"]["f"]["saturated_high"] == pytest.approx(0.25)
    g = GRU(H, dtype=F64, input_shape=[None, D], seed=0)
    g.params["U"][...] = 0
    g.params["W"][...] = 0
    g.params["b"][...] = 0
    g.params["b_rec"][...] = 0
    g.params["b"][:H] = 2.0  # update gate z = σ(2) everywhere
    sg = dg.gate_statistics(Sequential([g]), x)[g.name]
    assert sg["update_timescale"]["median"] == pytest.approx(-1 / np.log(1 / (1 + np.exp(-2))))
    assert sg["update"]["mean"] == pytest.approx(1 / (1 + np.exp(-2)))


# ---------------------------------------------------------------------------- 4. truncation
@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_truncation_meter_is_exact_at_k2_ge_T(kind):
    m = seq_model(kind)
    x, y = batch(14)
    meter = dg.truncation_bias(m, x, y, k2_values=[1, 2, T, T + 3])
    assert meter["cosine"][-2:] == pytest.approx([1.0, 1.0], abs=1e-12)
    assert max(meter["relative_error"][-2:]) < 1e-12
    assert meter["cosine"][0] < 1 - 1e-6 and meter["relative_error"][0] > 1e-6
    # the k1 = 1 windows with k2 = T reproduce plain BPTT of the whole loss
    g = dg.truncated_gradient(m, x, y, k2=T, k1=1)
    assert same_grads(g, plain_grads(seq_model(kind), x, y))


def test_truncated_gradient_with_k2_1_is_the_no_recurrence_gradient():
    """k2 = 1: each L_t reaches only its own step: ∂L/∂W = Σ_t s_{t-1}ᵀ (∂L_t/∂s_t ⊙ σ')."""
    m = seq_model("rnn")
    x, y = batch(15)
    g = dg.truncated_gradient(m, x, y, k2=1, k1=1)
    layer, dense = m.layers
    out = m.forward(x)
    _, dy = m.loss(y, out)
    s = dg.trace_of(layer).states[0]
    da = (dy @ dense.params["V"].T).transpose(1, 0, 2) * (1 - s[1:] ** 2)
    W = sum(s[t].T @ da[t] for t in range(T))
    assert rel(g[f"{layer.name}/W"], W) < 1e-12


def test_truncation_meter_for_one_output_per_sequence():
    m = Sequential([LSTM(H, dtype=F64, seed=2, input_shape=[None, D]), Dense(1, dtype=F64)])
    m.compile("mse")
    x, _ = batch(16)
    y = np.ones((N, 1))
    meter = dg.truncation_bias(m, x, y)
    assert meter["k2"] == [1, 2, 4, T]
    assert meter["cosine"][-1] == pytest.approx(1.0, abs=1e-12)
    ref = plain_grads(m, x, y)
    g = dg.truncated_gradient(m, x, y, k2=T)
    assert all(rel(g[k], ref[k]) < 1e-12 for k in ref)


# ------------------------------------------------ 5. training: ‖W‖ tracking and clipping telemetry
def test_spectral_norm_tracker_and_clipping_telemetry(tmp_path):
    rnnkit.set_seed(0)
    x, y = tasks.adding_problem(64, 10, seed=1)
    model = tasks.build_model("adding", "rnn", units=8, learning_rate=0.05, clip_global_norm=0.05)
    tracker = dg.SpectralNormTracker(every=2)
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[tracker])
    name = model.layers[0].name
    assert tracker.steps == [0, 2, 4, 6, 8]
    assert len(tracker.norms[name]["W"]) == 5
    assert tracker.norms[name]["W"][-1] == pytest.approx(
        np.linalg.norm(model.layers[0].params["W"], 2)
    )
    assert tracker.gamma[name] == 1.0
    tel = dg.clipping_telemetry(hist)
    assert tel["epochs"]["clip_fraction"] == hist.history["clip_fraction"]
    assert len(tel["steps"]["grad_norm"]) == 8
    clipped = np.array(tel["steps"]["clipped"])
    norms = np.array(tel["steps"]["grad_norm"])
    assert np.array_equal(clipped, norms > 0.05)
    assert tel["epochs"]["clip_fraction"][0] == pytest.approx(clipped[:4].mean())
    fig = dg.figure_clipping(hist, threshold=0.05)
    check_labels(fig)
    assert os.path.exists(dg.plot_clipping(hist, tmp_path / "clip.png", threshold=0.05))
    assert os.path.exists(tracker.plot(tmp_path / "w.png"))


# -------------------------------------------------------------------------------- 6. plots
def check_labels(fig):
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert panels
    for ax in panels:
        assert ax.get_title(), "panel without a title"
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        if len([l for l in ax.get_lines() if not l.get_label().startswith("_")]) > 1:
            assert ax.get_legend() is not None, ax.get_title()
    assert fig._suptitle is not None and fig._suptitle.get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_every_figure_has_titles_labels_and_legends():
    m = Sequential(
        [
            LSTM(H, return_sequences=True, dtype=F64, input_shape=[None, D]),
            GRU(H, return_sequences=True, dtype=F64),
            Dense(2, dtype=F64),
        ]
    )
    m.compile("mse")
    x, y = batch(17)
    check_labels(dg.figure_step_gradients(dg.gradient_records(m, x, y)))
    check_labels(dg.figure_gradient_flow(dg.gradient_flow(m, x, y)))
    check_labels(dg.figure_jacobians(dg.jacobian_norms(m, x, samples=[0, 1])))
    check_labels(dg.figure_gates(dg.gate_statistics(m, x)))
    check_labels(dg.figure_truncation(dg.truncation_bias(m, x, y, k2_values=[1, 3, T])))
    e = Sequential([SimpleRNN(H, dtype=F64, input_shape=[None, D])])
    check_labels(dg.figure_jacobians(dg.jacobian_norms(e, x)))
    tr = dg.SpectralNormTracker()
    tr.set_model(e)
    tr.on_train_begin()
    check_labels(dg.figure_weight_norms(tr.summary()))


# ------------------------------------------------------------------------------------ 7. CLI
def test_diagnose_command_writes_pngs_and_json(tmp_path):
    from rnnkit.diagnostics.command import main

    out = tmp_path / "fresh"
    saved = tmp_path / "m.rnnkit"
    assert (
        main(
            [
                "--task",
                "copy",
                "--cell",
                "gru",
                "--lag",
                "3",
                "--units",
                "6",
                "--epochs",
                "1",
                "--train-size",
                "32",
                "--batch-size",
                "16",
                "--batch",
                "4",
                "--samples",
                "2",
                "--out",
                str(out),
                "--save",
                str(saved),
                "-q",
            ]
        )
        == 0
    )
    names = {
        "step_gradients",
        "gradient_flow",
        "jacobians",
        "gates",
        "truncation",
        "clipping",
        "weight_norms",
    }
    for n in names:
        with open(out / f"{n}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "diagnostics.json").read_text())
    assert data["config"]["task"] == "copy" and data["config"]["lag"] == 3
    rec = next(iter(data["gradient_records"]["layers"].values()))
    assert max(rec["sum_check"].values()) < 1e-10
    assert len(rec["delta_norms"]["h"]) == 3 + 20 + 1
    assert data["truncation"]["cosine"][-1] == pytest.approx(1.0, abs=1e-10)
    assert len(data["clipping"]["steps"]["grad_norm"]) == 2
    # the saved model, diagnosed again: task and lag come from its metadata
    out2 = tmp_path / "saved"
    assert (
        main(
            [
                "--model",
                str(saved),
                "--out",
                str(out2),
                "--batch",
                "3",
                "--samples",
                "1",
                "--no-truncation",
                "-q",
            ]
        )
        == 0
    )
    data2 = json.loads((out2 / "diagnostics.json").read_text())
    assert data2["config"]["task"] == "copy" and "truncation" not in data2
    assert os.path.exists(out2 / "jacobians.png") and not os.path.exists(out2 / "clipping.png")


def test_diagnose_is_a_subcommand_of_the_rnnkit_cli(tmp_path):
    import argparse

    parser = argparse.ArgumentParser(prog="rnnkit")
    sub = parser.add_subparsers(dest="command")
    dg.add_parser(sub)
    args = parser.parse_args(
        [
            "diagnose",
            "--task",
            "adding",
            "--cell",
            "rnn",
            "--activation",
            "sigmoid",
            "--lag",
            "5",
            "--epochs",
            "0",
            "--batch",
            "2",
            "--samples",
            "1",
            "--k2",
            "1,5",
            "--out",
            str(tmp_path),
            "-q",
        ]
    )
    assert args.func(args) == 0
    data = json.loads((tmp_path / "diagnostics.json").read_text())
    assert data["truncation"]["k2"] == [1, 5]
    jac = next(iter(data["jacobians"].values()))
    assert jac["gamma"] == 0.25 and jac["activation"] == "sigmoid"
    try:
        from rnnkit import cli
    except ImportError:
        return
    if hasattr(cli, "main"):
        assert cli.main(
            [
                "diagnose",
                "--task",
                "adding",
                "--lag",
                "4",
                "--epochs",
                "0",
                "--batch",
                "2",
                "--samples",
                "1",
                "--no-truncation",
                "--out",
                str(tmp_path / "cli"),
                "-q",
            ]
        ) in (0, None)
        assert (tmp_path / "cli" / "diagnostics.json").exists()


def test_tasks_have_the_documented_shapes_and_baselines():
    x, y = tasks.adding_problem(500, 20, seed=0)
    assert x.shape == (500, 20, 2) and y.shape == (500, 1)
    assert np.all(x[:, :, 1].sum(1) == 2)
    assert np.all(x[:, :10, 1].sum(1) == 1)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.03)
    x, y = tasks.copy_memory(5, 7, seed=0)
    assert x.shape == (5, 27, 10) and y.shape == (5, 27)
    ids = x.argmax(-1)
    assert np.array_equal(y[:, -10:], ids[:, :10]) and np.all(ids[:, 16] == 9)
    assert np.all(y[:, :-10] == 0)
