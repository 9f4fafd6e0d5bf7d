"""Parity with PyTorch 2.13 CPU through rnnkit.io.from_torch / to_torch.

Outputs, final states (h_n, c_n) and the gradients of every parameter, of the input
and of the initial states agree with nn.RNN / nn.LSTM / nn.GRU: relative error
max|a - b| / max|b| at most 1e-10 in float64 and 1e-5 in float32.
"""

import copy

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import GRU, LSTM, Bidirectional, Dense, RNNStack, Sequential, SimpleRNN
from rnnkit.io import from_torch, to_torch

from helpers import TORCH_KINDS, torch_module

TOL = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
KINDS = TORCH_KINDS  # rnn, rnn_relu, lstm, lstm_proj, gru

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These are tiny problems: PyTorch's thread pool only adds contention (a float64
    LSTM over 500 steps took 7 s with the default threads and 0.5 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rel_err(a, b):
    """max|a - b| / max|b| (b the PyTorch reference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.abs(b).max()
    if scale == 0.0:
        return float(np.abs(a).max())
    return float(np.abs(a - b).max() / scale)


def make_module(
    kind,
    D,
    H,
    num_layers=1,
    bidirectional=False,
    batch_first=True,
    bias=True,
    dtype=np.float64,
    dropout=0.0,
    seed=0,
):
    torch.manual_seed(seed)
    kw = dict(
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
        dropout=dropout,
    )
    m = torch_module(kind, D, H, **kw).to(TORCH_DTYPE[dtype])
    m.eval()  # no dropout: the same function on both sides
    return m


def sizes(module):
    L = module.num_layers * (2 if module.bidirectional else 1)
    H_out = getattr(module, "proj_size", 0) or module.hidden_size
    return L, H_out


def grads_as_torch(stack):
    """rnnkit's gradients written in PyTorch's names, through to_torch: a copy of the
    model whose parameters are its gradients."""
    g = copy.deepcopy(stack)
    for k, p in g.params.items():
        p[...] = stack.grads[k]
    return {k: v.numpy() for k, v in to_torch(g).items()}


def run_torch(module, x, h0, R_out, R_states, lengths=None):
    xt = torch.tensor(x, requires_grad=True)
    h0t = [torch.tensor(h, requires_grad=True) for h in h0]
    arg = tuple(h0t) if isinstance(module, torch.nn.LSTM) else h0t[0]
    if lengths is None:
        out, hn = module(xt, arg)
    else:
        packed = pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=module.batch_first, enforce_sorted=False
        )
        out, hn = module(packed, arg)
        out, _ = pad_packed_sequence(
            out,
            batch_first=module.batch_first,
            total_length=x.shape[1 if module.batch_first else 0],
        )
    states = list(hn) if isinstance(module, torch.nn.LSTM) else [hn]
    loss = (out * torch.tensor(R_out)).sum()
    for s, r in zip(states, R_states):
        loss = loss + (s * torch.tensor(r)).sum()
    module.zero_grad()
    loss.backward()
    return dict(
        out=out.detach().numpy(),
        states=[s.detach().numpy() for s in states],
        dx=xt.grad.numpy(),
        dh0=[h.grad.numpy() for h in h0t],
        grads={k: p.grad.numpy() for k, p in module.named_parameters()},
    )


def run_rnnkit(stack, x, h0, R_out, R_states, mask=None):
    is_lstm = stack.is_lstm
    out, hn = stack.forward(x, tuple(h0) if is_lstm else h0[0], mask=mask)
    states = list(hn) if is_lstm else [hn]
    dx = stack.backward((R_out, tuple(R_states) if is_lstm else R_states[0]))
    d0 = stack.initial_state_grads
    return dict(
        out=out,
        states=states,
        dx=dx,
        dh0=list(d0) if is_lstm else [d0],
        grads=grads_as_torch(stack),
    )


def compare(module, x, h0, dtype, mask=None, lengths=None, seed=0):
    """Run both and assert every number agrees; returns the worst relative error."""
    rng = np.random.default_rng(seed)
    stack = from_torch(module)
    L, H_out = sizes(module)
    dirs = 2 if module.bidirectional else 1
    out_shape = x.shape[:2] + (H_out * dirs,)
    R_out = rng.standard_normal(out_shape).astype(dtype)
    if mask is not None:  # padded outputs do not enter the loss
        valid = mask if module.batch_first else mask.T
        R_out *= valid[:, :, None]
    R_states = [rng.standard_normal(h.shape).astype(dtype) for h in h0]
    ref = run_torch(module, x, h0, R_out, R_states, lengths)
    got = run_rnnkit(stack, x, h0, R_out, R_states, mask)
    tol = TOL[dtype]
    errors = {}
    for k in ("out", "dx"):
        assert got[k].dtype == dtype, (k, got[k].dtype)
        a, b = got[k], ref[k]
        if k == "out" and mask is not None:
            valid = mask if module.batch_first else mask.T
            a, b = a[valid], b[valid]  # padded steps: PyTorch pads with zeros
        errors[k] = rel_err(a, b)
    for i, (a, b) in enumerate(zip(got["states"], ref["states"])):
        errors[f"state{i}"] = rel_err(a, b)
    for i, (a, b) in enumerate(zip(got["dh0"], ref["dh0"])):
        errors[f"dh0_{i}"] = rel_err(a, b)
    is_gru = isinstance(module, torch.nn.GRU)
    for name, g in ref["grads"].items():
        key = name
        if name.startswith("bias_hh") and not is_gru:
            key = name.replace("bias_hh", "bias_ih")  # rnnkit's b is bias_ih + bias_hh
        errors[name] = rel_err(got["grads"][key], g)
    worst = max(errors.values())
    assert worst <= tol, {k: v for k, v in errors.items() if v > tol}
    return worst


def random_inputs(module, N, T, dtype, seed):
    rng = np.random.default_rng(seed)
    L, H_out = sizes(module)
    D = module.input_size
    shape = (N, T, D) if module.batch_first else (T, N, D)
    x = rng.standard_normal(shape).astype(dtype)
    h0 = [(rng.standard_normal((L, N, H_out)) * 0.5).astype(dtype)]
    if isinstance(module, torch.nn.LSTM):
        h0.append((rng.standard_normal((L, N, module.hidden_size)) * 0.5).astype(dtype))
    return x, h0


def random_config(seed):
    rng = np.random.default_rng(1000 + seed)
    return dict(
        kind=KINDS[seed % len(KINDS)],
        D=int(rng.integers(1, 7)),
        H=int(rng.integers(2, 9)),
        num_layers=int(rng.integers(1, 4)),
        bidirectional=bool(rng.integers(2)),
        batch_first=bool(rng.integers(2)),
        bias=bool(rng.integers(0, 4) > 0),
        dtype=[np.float64, np.float32][seed // len(KINDS) % 2],
        N=int(rng.choice([1, 2, 3, 5])),
        T=int(rng.choice([1, 2, 7, 16, 33])),
    )


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("seed", range(40))
def test_random_configurations(seed):
    c = random_config(seed)
    module = make_module(
        c["kind"],
        c["D"],
        c["H"],
        c["num_layers"],
        c["bidirectional"],
        c["batch_first"],
        c["bias"],
        c["dtype"],
        seed=seed,
    )
    x, h0 = random_inputs(module, c["N"], c["T"], c["dtype"], seed)
    compare(module, x, h0, c["dtype"], seed=seed)


def test_random_configurations_cover_every_option():
    configs = [random_config(s) for s in range(40)]
    for key, values in [
        ("kind", KINDS),
        ("num_layers", [1, 2, 3]),
        ("bidirectional", [False, True]),
        ("batch_first", [False, True]),
        ("bias", [False, True]),
        ("dtype", [np.float32, np.float64]),
        ("N", [1]),
        ("T", [1]),
    ]:
        seen = {c[key] for c in configs}
        assert set(values) <= seen, (key, seen)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_kind(kind, dtype, bidirectional):
    module = make_module(kind, 3, 5, num_layers=2, bidirectional=bidirectional, dtype=dtype)
    x, h0 = random_inputs(module, 4, 9, dtype, seed=1)
    compare(module, x, h0, dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,T", [(1, 1), (1, 6), (4, 1)])
def test_single_step_and_single_sequence(kind, N, T):
    module = make_module(kind, 2, 4, num_layers=2, bidirectional=True, batch_first=False)
    x, h0 = random_inputs(module, N, T, np.float64, seed=2)
    compare(module, x, h0, np.float64)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_long_sequences(kind, dtype):
    module = make_module(
        kind, 3, 6, num_layers=2, bidirectional=kind in ("lstm", "gru"), dtype=dtype
    )
    x, h0 = random_inputs(module, 2, 500, dtype, seed=3)
    compare(module, x, h0, dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_module_with_dropout_in_eval_mode(kind):
    """PyTorch's dropout between layers is off in eval mode, as rnnkit's without training."""
    module = make_module(kind, 3, 4, num_layers=3, dropout=0.4, batch_first=False)
    stack = from_torch(module)
    assert [d.rate for d in stack.dropouts] == [0.4, 0.4]
    x, h0 = random_inputs(module, 2, 5, np.float64, seed=9)
    compare(module, x, h0, np.float64)


def test_compare_detects_a_wrong_weight():
    """The parity check itself can fail."""
    module = make_module("gru", 3, 4)
    x, h0 = random_inputs(module, 2, 5, np.float64, seed=10)
    real = from_torch

    def off_by_a_little(m):
        stack = real(m)
        stack.params["gru_l0/b_rec"][0] += 1e-6
        return stack

    globals()["from_torch"] = off_by_a_little
    try:
        with pytest.raises(AssertionError):
            compare(module, x, h0, np.float64)
    finally:
        globals()["from_torch"] = real


def test_default_initial_state_is_zero():
    module = make_module("lstm", 3, 4, num_layers=2)
    x, _ = random_inputs(module, 2, 5, np.float64, seed=4)
    out_t, (h_t, c_t) = module(torch.tensor(x))
    out, (h, c) = from_torch(module).forward(x)
    assert rel_err(out, out_t.detach().numpy()) < 1e-12
    assert rel_err(h, h_t.detach().numpy()) < 1e-12
    assert rel_err(c, c_t.detach().numpy()) < 1e-12


def test_stack_accepts_torch_tensors():
    module = make_module("gru", 3, 4, num_layers=2, batch_first=False)
    x, h0 = random_inputs(module, 2, 5, np.float64, seed=11)
    stack = from_torch(module)
    out, h = stack.forward(torch.tensor(x), torch.tensor(h0[0]))
    ref, h_ref = stack.forward(x, h0[0])
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(h, h_ref)


def test_from_torch_copies_the_weights():
    module = make_module("gru", 3, 4, num_layers=2, bidirectional=True)
    stack = from_torch(module)
    assert isinstance(stack, RNNStack) and stack.num_directions == 2 and len(stack.layers) == 2
    p = stack.params
    W = module.weight_ih_l1_reverse.detach().numpy()  # rows r, z, n
    U = p["bidirectional_l1/backward_gru_l1/U"]  # columns z, r, n
    np.testing.assert_array_equal(U[:, :4], W[4:8].T)
    np.testing.assert_array_equal(U[:, 4:8], W[:4].T)
    np.testing.assert_array_equal(U[:, 8:], W[8:].T)
    np.testing.assert_array_equal(
        p["bidirectional_l1/backward_gru_l1/b_rec"][:4],
        module.bias_hh_l1_reverse.detach().numpy()[4:8],
    )


# --------------------------------------------------------------------------- masks
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
def test_mask_matches_packed_sequences(kind, bidirectional, batch_first):
    N, T = 5, 7
    module = make_module(
        kind, 3, 4, num_layers=2, bidirectional=bidirectional, batch_first=batch_first
    )
    x, h0 = random_inputs(module, N, T, np.float64, seed=5)
    lengths = np.array([7, 3, 1, 5, 7])
    mask = np.arange(T)[None, :] < lengths[:, None]  # (N, T)
    if not batch_first:  # padded input is garbage
        x[~mask.T] = 1e3
    else:
        x[~mask] = 1e3
    compare(module, x, h0, np.float64, mask=mask, lengths=lengths)


def test_mask_outputs_at_padded_steps_are_zero_with_bidirectional():
    module = make_module("lstm", 3, 4, bidirectional=True)
    x, _ = random_inputs(module, 2, 5, np.float64, seed=6)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=bool)
    out, _ = from_torch(module).forward(x, mask=mask)
    assert np.all(out[1, 2:] == 0.0) and np.all(out[1, :2] != 0.0)


# --------------------------------------------------------------------------- to_torch
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_to_torch_round_trip(kind, bidirectional):
    module = make_module(kind, 3, 5, num_layers=2, bidirectional=bidirectional)
    stack = from_torch(module)
    back = to_torch(stack, as_module=True)
    assert type(back) is type(module)
    assert back.num_layers == 2 and back.bidirectional == bidirectional
    assert back.bias == module.bias and back.batch_first
    x, h0 = random_inputs(module, 3, 6, np.float64, seed=7)
    ref, _ = module(
        torch.tensor(x),
        *([tuple(map(torch.tensor, h0))] if len(h0) == 2 else [torch.tensor(h0[0])]),
    )
    out, _ = back(
        torch.tensor(x),
        *([tuple(map(torch.tensor, h0))] if len(h0) == 2 else [torch.tensor(h0[0])]),
    )
    assert rel_err(out.detach().numpy(), ref.detach().numpy()) < 1e-13
    # the state_dict loads into a fresh module of the original's configuration
    fresh = make_module(kind, 3, 5, num_layers=2, bidirectional=bidirectional, seed=99)
    fresh.load_state_dict(to_torch(stack))
    out2, _ = fresh(torch.tensor(x))
    ref2, _ = module(torch.tensor(x))
    assert rel_err(out2.detach().numpy(), ref2.detach().numpy()) < 1e-13


@pytest.mark.parametrize(
    "make_model",
    [
        lambda: Sequential(
            [
                LSTM(
                    5,
                    return_sequences=True,
                    input_shape=(None, 3),
                    bias_initializer="torch_uniform",
                ),
                LSTM(5, return_sequences=True),
            ]
        ),
        lambda: Sequential([GRU(4, return_sequences=True, bias_initializer="torch_uniform")]),
        lambda: SimpleRNN(4, activation="relu", return_sequences=True),
        lambda: LSTM(6, proj_size=3, return_sequences=True),
        lambda: Bidirectional(GRU(4, return_sequences=True, bias_initializer="uniform")),
        lambda: RNNStack(
            [
                Bidirectional(SimpleRNN(3, return_sequences=True, return_state=True)),
                Bidirectional(SimpleRNN(3, return_sequences=True, return_state=True)),
            ]
        ),
    ],
    ids=["lstm2", "gru", "relu_rnn", "lstm_proj", "bi_gru", "bi_rnn_stack"],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_torch_module_computes_the_same_function(make_model, dtype):
    model = make_model().astype(dtype)
    x = np.random.default_rng(8).standard_normal((2, 6, 3)).astype(dtype)
    y = model.forward(x)
    y = y[0] if isinstance(model, RNNStack) else y
    module = to_torch(model, as_module=True)
    assert module.weight_ih_l0.dtype == TORCH_DTYPE[np.dtype(dtype).type]
    with torch.no_grad():
        ref, _ = module(torch.tensor(x))
    assert rel_err(y, ref.numpy()) <= TOL[np.dtype(dtype).type]


@pytest.mark.parametrize(
    "model,match",
    [
        (GRU(3, reset_after=False), "reset_after=False"),
        (LSTM(3, activation="relu"), "activation='relu'"),
        (LSTM(3, recurrent_activation="hard_sigmoid"), "recurrent_activation='hard_sigmoid'"),
        (GRU(3, activation="softsign"), "activation='softsign'"),
        (SimpleRNN(3, activation="sigmoid"), "tanh or relu.*'sigmoid'"),
        (Bidirectional(LSTM(3), merge_mode="sum"), "merge_mode='sum'"),
        (LSTM(3, go_backwards=True), "go_backwards=True"),
        (Sequential([LSTM(3, return_sequences=True), GRU(3)]), "one kind of layer"),
        (Sequential([LSTM(3, return_sequences=True), LSTM(4)]), "units"),
        (
            Sequential([SimpleRNN(3, activation="relu", return_sequences=True), SimpleRNN(3)]),
            "activation",
        ),
        (Sequential([LSTM(3, return_sequences=True), LSTM(3, use_bias=False)]), "use_bias"),
        (Bidirectional(LSTM(3, go_backwards=True)), "go_backwards"),
    ],
)
def test_to_torch_refuses_what_pytorch_cannot_represent(model, match):
    x = np.zeros((1, 2, 3), dtype="float32")
    model.forward(x)  # built
    with pytest.raises(ValueError, match=match):
        to_torch(model)


def test_to_torch_refuses_unbuilt_and_non_recurrent():
    with pytest.raises(ValueError, match="not built"):
        to_torch(LSTM(3))
    with pytest.raises(TypeError, match="expected an RNNStack.*got Dense"):
        to_torch(Dense(3))
    with pytest.raises(TypeError, match="nn.RNN, nn.LSTM or nn.GRU.*got Linear"):
        from_torch(torch.nn.Linear(2, 3))
