"""Model files as untrusted input (issue 15): no crash, no memory bomb, no silent wrong
number.  Each forged file is written here, byte by byte where needed; every case must
end in a ModelFileError that names the file and what is wrong, before anything large
is allocated, and what held before (exact round trips, no pickle, atomic saves that
survive SIGKILL) must keep holding."""

import io
import json
import os
import signal
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import GRU, LSTM, Dense, Sequential, optim
from rnnkit.atomicfile import _host, atomic_write_bytes, clean_stale_temporaries
from rnnkit.io import saving
from rnnkit.io.saving import ModelFileError

ROOT = Path(rnnkit.__file__).resolve().parents[1]
rng = np.random.default_rng(15)
X = rng.standard_normal((8, 5, 3)).astype("float32")
Y = rng.standard_normal((8, 2)).astype("float32")


def trained(seed=3):
    rnnkit.set_seed(seed)
    m = Sequential(
        [LSTM(4, input_shape=[None, 3], dropout=0.1, name="lstm"), Dense(2, name="dense")],
        name="seq",
    )
    m.compile(loss="mse", optimizer=optim.Adam(0.01))
    m.fit(X, Y, epochs=1, batch_size=4, verbose=0)
    return m


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "m.rnnkit"
    trained().save(path)
    return path


def members(path):
    """{member name: raw .npy bytes} of a zip."""
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=True)
    return buf.getvalue()


def header_of(path):
    raw = members(path)["__rnnkit__.npy"]
    return json.loads(np.load(io.BytesIO(raw)).tobytes())


def header_bytes(header):
    text = header if isinstance(header, (str, bytes)) else json.dumps(header)
    raw = text.encode() if isinstance(text, str) else text
    return npy(np.frombuffer(raw, np.uint8))


def forge(src, dst, header=None, drop=(), add=None, deflate=False):
    """A copy of model file ``src`` with the header replaced, members dropped or added
    ({name: array or raw .npy bytes})."""
    m = members(src)
    if header is not None:
        m["__rnnkit__.npy"] = header_bytes(header)
    for k in drop:
        del m[k]
    for k, v in (add or {}).items():
        m[k] = v if isinstance(v, bytes) else npy(v)
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(dst, "w", method) as z:
        for k, v in m.items():
            z.writestr(k, v)
    return dst


def peak_mib(f):
    """Peak of traced allocations (NumPy reports its arrays to tracemalloc) while f runs."""
    tracemalloc.start()
    try:
        f()
        return None
    except Exception as e:
        return e, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def deflated_zeros_member(z, name, n_bytes, dtype="<f4"):
    """Write member ``name``: an .npy header declaring n_bytes of zeros, and the zeros,
    deflated (1000:1), streamed in 1 MiB pieces."""
    head = io.BytesIO()
    count = n_bytes // np.dtype(dtype).itemsize
    np.lib.format.write_array_header_1_0(
        head, {"descr": dtype, "fortran_order": False, "shape": (count,)}
    )
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    chunk = bytes(1 << 20)
    with z.open(info, "w", force_zip64=True) as f:
        f.write(head.getvalue())
        for _ in range(n_bytes >> 20):
            f.write(chunk)


# -- memory bombs ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["junk.npy", "params/junk.npy", "optimizer/x/m.npy"])
def test_a_deflated_extra_member_is_refused_without_unpacking_it(saved, tmp_path, name):
    bomb = forge(saved, tmp_path / "bomb.rnnkit")
    with zipfile.ZipFile(bomb, "a") as z:
        deflated_zeros_member(z, name, 64 << 20)  # 64 MiB in ~64 KiB
    assert bomb.stat().st_size < 1 << 20
    err, peak = peak_mib(lambda: rnnkit.load_model(bomb))
    assert isinstance(err, ModelFileError), err
    assert str(bomb) in str(err)
    assert "unpack to 64" in str(err) or "do not have: ['junk.npy']" in str(err)
    assert peak < 16, f"{peak:.0f} MiB allocated"


def test_a_header_declaring_a_huge_architecture_is_refused_before_drawing_weights(saved, tmp_path):
    h = header_of(saved)
    h["model"]["config"]["layers"][0]["config"]["units"] = 3000  # LSTM(3000): W 3000x12000
    path = forge(saved, tmp_path / "big.rnnkit", header=h)
    assert path.stat().st_size < 10_000
    err, peak = peak_mib(lambda: rnnkit.load_model(path))
    assert isinstance(err, ModelFileError), err
    assert "does not fit its weights" in str(err) and "LSTM 'lstm'" in str(err)
    assert peak < 16, f"{peak:.0f} MiB allocated"


def test_an_array_declaring_8_terabytes_is_named_as_corruption(saved, tmp_path):
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f4", "fortran_order": False, "shape": (2**40, 2)}
    )
    path = forge(
        saved, tmp_path / "tb.rnnkit", add={"params/lstm/U.npy": head.getvalue() + bytes(48)}
    )
    err, peak = peak_mib(lambda: rnnkit.load_model(path))
    assert isinstance(err, ModelFileError), err
    assert "corrupted" in str(err) and "params/lstm/U" in str(err)
    assert peak < 16


def test_the_default_and_an_explicit_size_limit(saved, tmp_path):
    # a plain rnnkit file is far inside the default limit; an explicit max_bytes binds
    size = saved.stat().st_size
    rnnkit.load_model(saved, max_bytes=size + 1000)
    with pytest.raises(ModelFileError, match="max_bytes"):
        rnnkit.load_model(saved, max_bytes=size // 2)


def test_a_deep_or_oversized_header_is_refused(saved, tmp_path, monkeypatch):
    deep = forge(saved, tmp_path / "deep.rnnkit", header="[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError, match="nested more than 64 levels"):
        rnnkit.load_model(deep)
    h = header_of(saved)
    nest = 1
    for _ in range(70):
        nest = [nest]
    h["metadata"] = {"x": nest}
    with pytest.raises(ModelFileError, match="nested more than 64 levels"):
        rnnkit.load_model(forge(saved, tmp_path / "deep2.rnnkit", header=h))
    h["metadata"] = {"vocab": "x" * 5000}
    big = forge(saved, tmp_path / "big.rnnkit", header=h)
    assert rnnkit.load_model(big).metadata == {"vocab": "x" * 5000}
    monkeypatch.setattr(saving, "MAX_HEADER_BYTES", 4000)
    with pytest.raises(ModelFileError, match="the header is .* more than the"):
        rnnkit.load_model(big)


# -- messages that name the file and the problem ------------------------------------------------
def forged_error(saved, tmp_path, **kw):
    path = forge(saved, tmp_path / "f.rnnkit", **kw)
    with pytest.raises(ModelFileError) as info:
        rnnkit.load_model(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_a_header_without_model(saved, tmp_path):
    h = header_of(saved)
    del h["model"]
    assert "no valid 'model' entry" in forged_error(saved, tmp_path, header=h)
    h["model"] = {"class_name": "Sequential", "config": "nope"}
    assert "no valid 'model' entry" in forged_error(saved, tmp_path, header=h)
    h["model"] = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "LSTM", "config": {"units": -3}}]},
    }
    assert "cannot rebuild the model" in forged_error(saved, tmp_path, header=h)


def test_unknown_state_members(saved, tmp_path):
    msg = forged_error(saved, tmp_path, add={"states/nosuch/0.npy": np.zeros((2, 4), "f4")})
    assert "'nosuch', which is not a stateful recurrent layer" in msg
    msg = forged_error(saved, tmp_path, add={"states/lstm/0.npy": np.zeros((2, 4), "f4")})
    assert "'lstm', which is not a stateful" in msg
    assert "optimizer state" in forged_error(
        saved, tmp_path, add={"optimizer/lstm/U/velocity.npy": np.zeros((3, 16), "f4")}
    )


def test_carried_states_are_checked_and_restored(tmp_path):
    m = Sequential([GRU(4, stateful=True, input_shape=[None, 2], name="gru"), Dense(1)])
    m.predict(rng.standard_normal((3, 5, 2)))
    path = m.save(tmp_path / "s.rnnkit")
    np.testing.assert_array_equal(
        rnnkit.load_model(path).layers[0].states[0], m.layers[0].states[0]
    )
    for bad, match in [
        (np.zeros((3, 5), "f4"), r"needs \(batch, 4\)"),
        (np.zeros((3, 4), "f8"), "is float64"),
        (np.zeros((3, 4, 1), "f4"), "needs"),
    ]:
        p = forge(path, tmp_path / "bad.rnnkit", add={"states/gru/0.npy": bad})
        with pytest.raises(ModelFileError, match=match):
            rnnkit.load_model(p)
    p = forge(path, tmp_path / "bad.rnnkit", add={"states/gru/1.npy": np.zeros((3, 4), "f4")})
    with pytest.raises(
        ModelFileError, match=r"carries 1 state\(s\); the file holds indices \[0, 1\]"
    ):
        rnnkit.load_model(p)


def test_garbage_rng_states(saved, tmp_path):
    h = header_of(saved)
    h["rng_states"]["lstm"] = {"bit_generator": "PCG64", "state": "garbage"}
    assert "random-generator state of layer 'lstm'" in forged_error(saved, tmp_path, header=h)
    h["rng_states"]["lstm"] = 7
    assert "random-generator state of layer 'lstm'" in forged_error(saved, tmp_path, header=h)
    h = header_of(saved)
    h["rng_states"]["ghost"] = h["rng_states"]["lstm"]
    assert "['ghost'] that the architecture does not have" in forged_error(
        saved, tmp_path, header=h
    )
    h = header_of(saved)
    h["rng_states"] = [1, 2]
    assert "'rng_states' must be a JSON object" in forged_error(saved, tmp_path, header=h)


def test_format_version_messages(saved, tmp_path):
    h = header_of(saved)
    for bad in ["1", 1.0, None, 0, True]:
        h["format_version"] = bad
        msg = forged_error(saved, tmp_path, header=h)
        assert "Upgrade" not in msg and f"format_version {bad!r}" in msg, msg
    h["format_version"] = 2
    msg = forged_error(saved, tmp_path, header=h)
    assert "format 2; this rnnkit reads format 1 only. Upgrade rnnkit" in msg


def test_optimizer_problems_are_found_at_load(saved, tmp_path):
    h = header_of(saved)
    h["compile"]["optimizer"]["class_name"] = "Nadam2"
    assert "unknown optimizer class 'Nadam2'" in forged_error(saved, tmp_path, header=h)
    h = header_of(saved)
    h["compile"]["optimizer_iterations"] = -1
    assert "optimizer_iterations" in forged_error(saved, tmp_path, header=h)
    wrong = {"optimizer/lstm/U/m.npy": np.zeros((4, 16), "f4")}  # U is (3, 16)
    assert (
        "'optimizer/lstm/U/m' is float32 (4, 16); its weight 'lstm/U' is float32 (3, 16)"
        in forged_error(saved, tmp_path, add=wrong)
    )
    msg = forged_error(saved, tmp_path, drop=["optimizer/lstm/U/v.npy"])
    assert "weight 'lstm/U' has slots ['m']; Adam needs ['m', 'v']" in msg
    # compile=False reads no optimizer state, and the model still predicts
    rnnkit.load_model(forge(saved, tmp_path / "ok.rnnkit", add=wrong), compile=False).predict(X)


@pytest.mark.parametrize(
    "dtype,match",
    [
        ("c8", "is complex"),
        ("c16", "is complex"),
        ("i4", "is int32"),
        ("f8", "is float64, the arch"),
    ],
)
def test_weights_of_another_dtype_are_refused_not_cast(saved, tmp_path, dtype, match):
    U = np.zeros((3, 16), dtype)
    assert match in forged_error(saved, tmp_path, add={"params/lstm/U.npy": U})


def test_big_endian_float32_weights_load_exactly(saved, tmp_path):
    U = members(saved)["params/lstm/U.npy"]
    U = np.load(io.BytesIO(U))
    path = forge(saved, tmp_path / "be.rnnkit", add={"params/lstm/U.npy": U.astype(">f4")})
    loaded = rnnkit.load_model(path)
    np.testing.assert_array_equal(loaded.params["lstm/U"], U)
    assert loaded.params["lstm/U"].dtype == np.float32 and loaded.params["lstm/U"].dtype.isnative


def test_from_torch_and_to_onnx_say_what_they_expect():
    pytest.importorskip("torch")
    from rnnkit.io import from_torch, to_onnx

    with pytest.raises(TypeError, match="module must be a torch.nn.Module .* got str 'lstm'"):
        from_torch("lstm")
    m = Sequential([LSTM(2, input_shape=[None, 3])])
    for opset in (7, 18, "17"):
        with pytest.raises(ValueError, match=r"opset must be one of \[15, 16, 17\]"):
            to_onnx(m, opset=opset)


# -- what held and must keep holding -------------------------------------------------------------
class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_members_are_refused_without_running_them(saved, tmp_path):
    marker = tmp_path / "pwned"
    payload = np.array([_Marker(str(marker))], dtype=object)
    for name in ["params/lstm/U.npy", "__rnnkit__.npy"]:
        msg = forged_error(saved, tmp_path, add={name: npy(payload)})
        assert "pickled data is never loaded" in msg
    assert not marker.exists()


def test_path_traversal_names_write_nothing(saved, tmp_path):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    before = sorted(p for p in tmp_path.rglob("*"))
    for name in ["../../evil.npy", "/tmp/evil.npy", "params/../../../evil.npy"]:
        path = forge(saved, work / "t.rnnkit", add={name: np.zeros(3, "f4")})
        with pytest.raises(ModelFileError):
            rnnkit.load_model(path)
        os.unlink(path)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_truncation_and_flipped_bytes_are_named_as_corruption(saved, tmp_path):
    data = saved.read_bytes()
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("params/lstm/W.npy")
    local_extra = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + len(info.filename) + local_extra + 128  # inside W's data
    for cut in [10, len(data) // 3, len(data) - 10]:
        (tmp_path / "t.rnnkit").write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="corrupted, truncated"):
            rnnkit.load_model(tmp_path / "t.rnnkit")
    for bit in (0x01, 0x80):
        flipped = bytearray(data)
        flipped[start + 5] ^= bit
        (tmp_path / "f.rnnkit").write_bytes(bytes(flipped))
        with pytest.raises(ModelFileError, match="corrupted.*Bad CRC"):
            rnnkit.load_model(tmp_path / "f.rnnkit")


def test_everything_comes_back_bit_for_bit_and_resumes_exactly(tmp_path):
    a = trained()
    path = a.save(tmp_path / "m.rnnkit")
    b = rnnkit.load_model(path)
    for k, p in a.params.items():
        np.testing.assert_array_equal(b.params[k], p)
    assert a.optimizer.state_arrays().keys() == b.optimizer.state_arrays().keys()
    for k, v in a.optimizer.state_arrays().items():
        np.testing.assert_array_equal(b.optimizer.state_arrays()[k], v)
    assert b.optimizer.iterations == a.optimizer.iterations == 2
    a.fit(X, Y, epochs=2, batch_size=4, verbose=0)  # dropout draws too
    b.fit(X, Y, epochs=2, batch_size=4, verbose=0)
    for k, p in a.params.items():
        np.testing.assert_array_equal(b.params[k], p)


# -- atomic saves: leftovers of killed saves, symbolic links --------------------------------------
KILLED_SAVE = """
import sys, numpy as np, rnnkit
from rnnkit import LSTM, Dense, Sequential
real = np.savez
def savez(f, **arrays):
    f.write(b"half a model" * 1000)
    f.flush()
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
np.savez = savez
rnnkit.set_seed(9)
Sequential([LSTM(4, input_shape=[None, 3]), Dense(2)]).save(sys.argv[1])
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_killed_save_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    m = trained()
    path = m.save(tmp_path / "m.rnnkit")
    good = Path(path).read_bytes()
    for _ in range(3):  # each killed save removes the one before's leftover
        r = subprocess.run(
            [sys.executable, "-c", KILLED_SAVE, path],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
        )
        assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-2000:]
        left = list(tmp_path.glob("*.part"))
        assert len(left) == 1 and left[0].name.startswith(".tmp-m.rnnkit-")
        assert left[0].stat().st_size == 12000
        assert Path(path).read_bytes() == good
        np.testing.assert_array_equal(rnnkit.load_model(path).predict(X), m.predict(X))
    m.save(path)  # their writers are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.rnnkit"]


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "m.rnnkit"
    me, host, dead = os.getpid(), _host(), 2**22 + 1  # pid_max is at most 2^22
    fresh = 4_000_000_000  # mtime in 2096
    names = {
        f".tmp-m.rnnkit-{host}-{me}-old12345.part": 0,  # live writer, untouched since 1970
        f".tmp-m.rnnkit-{host}-{me}-new12345.part": fresh,  # live writer, fresh
        f".tmp-m.rnnkit-{host}-{dead}-gone1234.part": fresh,  # writer gone
        f".tmp-m.rnnkit-otherhost-{dead}-remote12.part": fresh,  # another machine's writer
        f".tmp-other.rnnkit-{host}-{dead}-abc.part": 0,  # another target
        ".tmp-m.rnnkit.part": 0,
        ".tmp-abc123.part": 0,  # not named by rnnkit
        "m.rnnkit-1-x.part": 0,
    }
    for n, t in names.items():
        (tmp_path / n).write_bytes(b"x")
        os.utime(tmp_path / n, (t, t))
    removed = sorted(clean_stale_temporaries(target))
    expected = [f".tmp-m.rnnkit-{host}-{me}-old12345.part"]
    if os.name == "posix":
        expected.append(f".tmp-m.rnnkit-{host}-{dead}-gone1234.part")
    assert removed == sorted(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(names) - set(removed))


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_save_over_a_symbolic_link_writes_through_it(tmp_path):
    (tmp_path / "store").mkdir()
    real = tmp_path / "store" / "model.rnnkit"
    atomic_write_bytes(real, b"old")
    link = tmp_path / "current.rnnkit"
    link.symlink_to(real)
    m = trained()
    m.save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(rnnkit.load_model(real).predict(X), m.predict(X))
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["model.rnnkit"]


def test_weights_of_another_form_are_named_as_another_version(saved, tmp_path):
    """A layer whose weights changed names between versions (the lexicon went from a dense
    table L to sparse rows ids and p): the message names both and says what to do."""
    m = members(saved)
    (old,) = [k for k in m if k.startswith("params/dense/V")]
    renamed = old.replace("params/dense/V", "params/dense/V_dense")
    forge(saved, tmp_path / "old.rnnkit", drop=[old], add={renamed: m[old]})
    with pytest.raises(
        ModelFileError,
        match=r"has weights \['dense/V_dense'\] where this "
        r"version of rnnkit's Sequential has \['dense/V'\].*train the model again",
    ):
        rnnkit.load_model(tmp_path / "old.rnnkit")
