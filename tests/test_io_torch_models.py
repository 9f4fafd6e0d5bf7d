"""Whole models between PyTorch and rnnkit: nn.Embedding -> nn.RNN/LSTM/GRU -> nn.Linear
heads (from_torch of a container) and rnnkit Sequentials as nn.Sequential
(to_torch(..., whole_model=True)), compared with PyTorch's own forward pass."""

import numpy as np
import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit.io import from_torch, to_torch
from rnnkit.io.torch_modules import RNNBlock

from helpers import max_diff, randomize

TOL = {np.float32: 1e-5, np.float64: 1e-12}
VOCAB, D = 13, 4


def ids(N, T, seed):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(N, T))


def floats(N, T, seed, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=(N, T, D)).astype(dtype)


def run_torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(np.asarray(x))).numpy()


class Classifier(nn.Module):
    """The usual hand-written PyTorch model: what the convention says it computes."""

    def __init__(self, dtype):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 6)
        self.rnn = nn.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=True, dropout=0.25)
        self.gru = nn.GRU(10, 4, batch_first=True)
        self.fc = nn.Linear(4, 3)
        self.softmax = nn.Softmax(dim=-1)
        self.to(dtype)

    def forward(self, x):  # seq -> vector: final hidden state
        out, _ = self.rnn(self.embedding(x))
        _, h_n = self.gru(out)
        return self.softmax(self.fc(h_n[-1]))


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 5)
        self.rnn = nn.GRU(5, 4, batch_first=True, bidirectional=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):  # seq -> seq: every step
        out, _ = self.rnn(self.embedding(x))
        return self.head(out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_torch_of_a_hand_written_module(dtype):
    torch.manual_seed(0)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    module = Classifier(tdtype).eval()
    model = from_torch(module)
    assert isinstance(model, rk.Sequential)
    lstm_bias_hh = sum(p.numel() for n, p in module.rnn.named_parameters() if "bias_hh" in n)
    # PyTorch's LSTM keeps two biases that only act through their sum; rnnkit keeps one
    assert model.count_params() == sum(p.numel() for p in module.parameters()) - lstm_bias_hh
    assert all(p.dtype == dtype for p in model.params.values())
    for seed, (N, T) in enumerate([(3, 7), (1, 2), (4, 11)]):
        x = ids(N, T, seed)
        assert max_diff(model(x), run_torch(module, x)) <= TOL[dtype]
    # the LSTM's inter-layer dropout is a Dropout layer (training only)
    assert any(isinstance(l, rk.Dropout) and l.rate == 0.25 for l in model.layers)


def test_from_torch_return_sequences_for_taggers():
    torch.manual_seed(1)
    module = Tagger().eval()
    model = from_torch(module, return_sequences=True)
    x = ids(3, 6, 0)
    assert max_diff(model(x), run_torch(module, x)) <= TOL[np.float32]


def test_from_torch_of_an_nn_sequential_and_of_a_list():
    torch.manual_seed(2)
    rnn = nn.RNN(D, 5, batch_first=True, nonlinearity="relu")
    lin = nn.Linear(5, 2)
    model = from_torch(nn.Sequential(rnn, lin, nn.Sigmoid()))
    x = floats(3, 5, 0)
    with torch.no_grad():
        _, h = rnn(torch.from_numpy(x))
        ref = torch.sigmoid(lin(h[-1])).numpy()
    assert max_diff(model(x), ref) <= TOL[np.float32]
    assert max_diff(from_torch([rnn, lin, nn.Sigmoid()])(x), ref) <= TOL[np.float32]


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Sequential(
            nn.Embedding(VOCAB, 4),
            RNNBlock(
                nn.LSTM(4, 3, batch_first=True, bidirectional=True),
                return_sequences=True,
                merge_mode="ave",
            ),
            nn.Linear(3, 2),
            nn.Tanh(),
        ),
        lambda: nn.Sequential(
            nn.Embedding(VOCAB, 4),
            RNNBlock(
                nn.GRU(4, 3, num_layers=2, batch_first=True),
                go_backwards=True,
                return_sequences=True,
            ),
            RNNBlock(nn.RNN(3, 2, batch_first=True, bidirectional=True), merge_mode="mul"),
            nn.Linear(2, 2),
        ),
        lambda: nn.Sequential(
            nn.Embedding(VOCAB, 4),
            RNNBlock(
                nn.LSTM(4, 5, proj_size=2, batch_first=True, bidirectional=True), go_backwards=True
            ),
            nn.Dropout(0.1),
            nn.Linear(4, 3),
            nn.Hardsigmoid(),
        ),
    ],
    ids=["bi_lstm_ave", "gru_backwards_bi_rnn_mul", "lstm_proj_bi_backwards"],
)
def test_from_torch_of_rnn_blocks(make):
    torch.manual_seed(3)
    module = make().eval()
    model = from_torch(module)
    for seed, (N, T) in enumerate([(3, 6), (2, 1)]):
        x = ids(N, T, seed)
        assert max_diff(model(x), run_torch(module, x)) <= TOL[np.float32]


def rnnkit_models():
    return {
        "classifier": lambda: rk.Sequential(
            [
                rk.Embedding(VOCAB, 5),
                rk.LSTM(4, return_sequences=True),
                rk.Dropout(0.2),
                rk.GRU(3),
                rk.Dense(2, activation="softmax"),
            ]
        ),
        "tagger_bidirectional": lambda: rk.Sequential(
            [
                rk.Embedding(VOCAB, 5),
                rk.Bidirectional(rk.GRU(3, return_sequences=True)),
                rk.TimeDistributed(rk.Dense(4, activation="relu")),
                rk.Dense(2),
            ]
        ),
        "go_backwards_and_merges": lambda: rk.Sequential(
            [
                rk.SimpleRNN(3, return_sequences=True, go_backwards=True, input_shape=(None, D)),
                rk.Bidirectional(rk.LSTM(2, return_sequences=True), merge_mode="sum"),
                rk.Bidirectional(
                    rk.SimpleRNN(3, activation="relu", return_sequences=True), merge_mode="ave"
                ),
                rk.Bidirectional(rk.GRU(2), merge_mode="mul"),
                rk.Dense(2, activation="tanh"),
            ]
        ),
        "lstm_proj_head": lambda: rk.Sequential(
            [
                rk.LSTM(5, proj_size=2, return_sequences=True, input_shape=(None, D)),
                rk.Dense(3, activation="sigmoid"),
                rk.LSTM(3),
                rk.Dense(1, use_bias=False, activation="softsign"),
            ]
        ),
    }


RNNKIT_MODELS = rnnkit_models()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(RNNKIT_MODELS))
def test_to_torch_whole_model_computes_the_same_function(name, dtype):
    model = RNNKIT_MODELS[name]().astype(dtype)
    uses_ids = isinstance(model.layers[0], rk.Embedding)
    x = ids(3, 6, 0) if uses_ids else floats(3, 6, 0, dtype)
    model(x)
    randomize(model, 5)
    module = to_torch(model, as_module=True, whole_model=True).eval()
    assert isinstance(module, nn.Sequential)
    for seed, (N, T) in enumerate([(3, 6), (1, 9), (4, 1)]):
        x = ids(N, T, seed) if uses_ids else floats(N, T, seed, dtype)
        assert max_diff(run_torch(module, x), model(x)) <= TOL[dtype]
    # the state_dict loads into that architecture; from_torch brings the model back
    state = to_torch(model, whole_model=True)
    module.load_state_dict(state)
    back = from_torch(module)
    x = ids(2, 5, 9) if uses_ids else floats(2, 5, 9, dtype)
    assert max_diff(back(x), model(x)) <= TOL[dtype] / 10


@pytest.mark.parametrize(
    "layers,match",
    [
        ([rk.Embedding(VOCAB, 3, mask_zero=True), rk.LSTM(2)], "mask_zero"),
        ([rk.Masking(0.0, input_shape=(None, D)), rk.LSTM(2)], "Masking"),
        ([rk.GRU(3, reset_after=False, input_shape=(None, D)), rk.Dense(1)], "reset_after=False"),
        (
            [
                rk.Bidirectional(
                    rk.LSTM(2, return_sequences=True), merge_mode=None, input_shape=(None, D)
                )
            ],
            "merge_mode=None",
        ),
        ([rk.LSTM(2, stateful=True, input_shape=(None, D)), rk.Dense(1)], "stateful"),
        (
            [
                rk.Bidirectional(
                    rk.LSTM(2), backward_layer=rk.GRU(2, go_backwards=True), input_shape=(None, D)
                ),
                rk.Dense(1),
            ],
            "share their configuration",
        ),
    ],
)
def test_to_torch_whole_model_refuses_what_pytorch_cannot_represent(layers, match):
    model = rk.Sequential(layers)
    x = ids(2, 3, 0) if isinstance(layers[0], rk.Embedding) else floats(2, 3, 0)
    model(x)
    with pytest.raises(ValueError, match=match):
        to_torch(model, whole_model=True)


def test_to_torch_without_whole_model_keeps_refusing_heads():
    model = rk.Sequential([rk.LSTM(3, input_shape=(None, D)), rk.Dense(2)])
    model(floats(1, 2, 0))
    with pytest.raises(ValueError, match="only recurrent layers.*whole_model=True"):
        to_torch(model)
    stack = from_torch(nn.LSTM(D, 3, batch_first=True))  # a bare module: an RNNStack still
    assert isinstance(stack, rk.RNNStack)


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: nn.Sequential(nn.Linear(D, 3), nn.ReLU()), TypeError, "at least one recurrent"),
        (
            lambda: nn.Sequential(nn.LSTM(D, 3, batch_first=True), nn.Conv1d(3, 3, 1)),
            TypeError,
            "Conv1d",
        ),
        (
            lambda: nn.Sequential(nn.LSTM(D, 3, batch_first=True), nn.ReLU()),
            ValueError,
            "right after an nn.Linear",
        ),
        (
            lambda: nn.Sequential(nn.LSTM(D, 3, batch_first=True), nn.Embedding(3, 3)),
            ValueError,
            "must be the first",
        ),
        (
            lambda: nn.Sequential(
                nn.Embedding(VOCAB, 3, max_norm=1.0), nn.GRU(3, 3, batch_first=True)
            ),
            ValueError,
            "max_norm",
        ),
        (
            lambda: nn.Sequential(
                nn.GRU(D, 3, batch_first=True), nn.Linear(3, 2), nn.Softmax(dim=0)
            ),
            ValueError,
            "last axis",
        ),
    ],
)
def test_from_torch_refuses_what_it_cannot_map(make, error, match):
    with pytest.raises(error, match=match):
        from_torch(make())
