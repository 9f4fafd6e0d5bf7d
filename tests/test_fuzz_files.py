"""Property-based fuzzing of model files (issue 15): whatever the bytes, load_model either
returns the model that was saved, bit for bit, or raises ModelFileError; never another
exception, never a model with other numbers.  Deterministic (derandomize=True, no
example database)."""

import io
import json
import os
import tempfile
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit import LSTM, Dense, Sequential
from rnnkit.io.saving import ModelFileError

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _good():
    rnnkit.set_seed(21)
    m = Sequential([LSTM(3, input_shape=[None, 2], name="lstm"), Dense(2, name="dense")])
    m.compile(loss="mse", optimizer="adam")
    x = np.random.default_rng(0).standard_normal((4, 3, 2)).astype("float32")
    m.train_on_batch(x, np.zeros((4, 2), "float32"))
    with tempfile.TemporaryDirectory() as d:
        path = m.save(os.path.join(d, "m.rnnkit"))
        with open(path, "rb") as f:
            data = f.read()
    return m, data


MODEL, GOOD = _good()
PARAMS = {k: np.array(v) for k, v in MODEL.params.items()}
STATE = MODEL.optimizer.state_arrays()
with zipfile.ZipFile(io.BytesIO(GOOD)) as _z:
    MEMBERS = {n: _z.read(n) for n in _z.namelist()}
HEADER = json.loads(np.load(io.BytesIO(MEMBERS["__rnnkit__.npy"])).tobytes())


def load(data):
    """The loaded model, or None when load_model raised ModelFileError (anything else
    propagates and fails the test)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f.rnnkit")
        with open(path, "wb") as f:
            f.write(data)
        try:
            return rnnkit.load_model(path)
        except ModelFileError as e:
            assert path in str(e)
            return None


def assert_same_numbers(model):
    assert {k: v.shape for k, v in model.params.items()} == {k: v.shape for k, v in PARAMS.items()}
    for k, v in PARAMS.items():
        np.testing.assert_array_equal(model.params[k], v)
    if model.compiled:
        got = model.optimizer.state_arrays()
        assert got.keys() == STATE.keys()
        for k, v in STATE.items():
            np.testing.assert_array_equal(got[k], v)


def zip_of(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def test_the_unmodified_file_loads():
    assert_same_numbers(load(GOOD))


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(1, 255)), min_size=1, max_size=6)
)
def test_flipped_bytes(flips):
    data = bytearray(GOOD)
    for pos, bits in flips:
        data[pos] ^= bits
    model = load(bytes(data))
    if model is not None:  # a flip in a field nothing reads (a timestamp)
        assert_same_numbers(model)


@FUZZ
@given(st.integers(0, len(GOOD) - 1), st.binary(max_size=40), st.integers(0, 40))
def test_truncated_spliced_and_cut_files(pos, insert, cut):
    assert load(GOOD[:pos]) is None
    model = load(GOOD[:pos] + insert + GOOD[pos + cut :])
    if model is not None:
        assert_same_numbers(model)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
PLACES = [
    ("format_version",),
    ("model",),
    ("model", "class_name"),
    ("model", "config"),
    ("model", "config", "layers"),
    ("model", "config", "layers", 0, "config", "units"),
    ("model", "config", "layers", 0, "config", "input_shape"),
    ("model", "config", "layers", 0, "class_name"),
    ("model", "config", "layers", 1, "config"),
    ("model", "config", "dtype"),
    ("rng_states",),
    ("rng_states", "lstm"),
    ("rng_states", "lstm", "state"),
    ("compile",),
    ("compile", "loss"),
    ("compile", "metrics"),
    ("compile", "optimizer"),
    ("compile", "optimizer", "class_name"),
    ("compile", "optimizer", "config"),
    ("compile", "optimizer", "config", "learning_rate"),
    ("compile", "optimizer_iterations"),
    ("metadata",),
]


@FUZZ
@given(st.sampled_from(PLACES), JSON)
def test_any_json_anywhere_in_the_header(place, value):
    header = json.loads(json.dumps(HEADER))
    node = header
    for k in place[:-1]:
        node = node[k]
    node[place[-1]] = value
    raw = json.dumps(header).encode()
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(raw, np.uint8))
    model = load(zip_of({**MEMBERS, "__rnnkit__.npy": buf.getvalue()}))
    if model is not None and place[:2] != ("model", "config") and place[0] != "compile":
        assert_same_numbers(model)


DESCRS = [
    "<f4",
    ">f4",
    "<f8",
    "<f2",
    "<c8",
    "|u1",
    "<i4",
    "|O",
    "<U3",
    "|V4",
    "|b1",
    [("a", "<f4")],
    "<f4 ",
    "garbage",
]


@FUZZ
@given(
    st.sampled_from(sorted(n for n in MEMBERS if n != "__rnnkit__.npy")),
    st.sampled_from(DESCRS),
    st.booleans(),
    st.lists(st.integers(0, 2**41), max_size=3).map(tuple),
    st.integers(0, 200),
)
def test_any_npy_header_on_a_member(name, descr, fortran, shape, n_data):
    head = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(
            head, {"descr": descr, "fortran_order": fortran, "shape": shape}
        )
    except ValueError:
        return
    member = head.getvalue() + MEMBERS[name][128:][:n_data].ljust(n_data, b"\0")
    model = load(zip_of({**MEMBERS, name: member}))
    if model is not None:
        assert_same_numbers(model)
