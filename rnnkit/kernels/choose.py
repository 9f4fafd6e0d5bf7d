"""How a compiled loop computes its recurrent products, chosen by measurement on this CPU.

Every step of a loop multiplies a small state by the same weights (h_{t-1} W, and with
inference's x in the loop x_t U, LSTM's m_t P).  There are up to five ways to do it
(``CANDIDATES``): the packed float32 kernel of ``_packed.h`` (on the team of threads, as
the loop runs it), one BLAS call per product, each product cut by columns over the team
(``split``: BLAS held at one thread inside ``own_threads``), MKL's packed float32 GEMM
(``mkl``, where the optional ``mkl`` wheel is installed: ``blas.find_mkl``; it must be
``MKL_MARGIN`` faster), or, for an LSTM loop that would cut its batch into chunks,
the packed kernel on the whole batch with the products cut by columns over the team
(``team``; it must be ``TEAM_MARGIN`` faster than the chunks).  The two packed ways are also
measured with the kernel prefetching the next panel of weights in every product whose
weights exceed ``PREFETCH_MIN_BYTES`` (``packed_pf``, ``team_pf``): whether that pays
depends on the core's L2 and on how many rows share each panel, so it is measured too
(without it, the kernel prefetches only by its fixed rule, for products of at most 16 rows
with weights over 12 MB).  Which is fastest depends on the CPU, the shape, and on whether
other processes share the cores (a team barrier per step costs microseconds on an idle
machine, a scheduler's time slice on a busy one).  So the
first loop of each shape (``key``) times one step's products each way that applies, a few
times, as the loop runs them (where the loop cuts the batch into chunks, every chunk's at
once: they share the caches and the memory), takes the fastest (one BLAS call unless a way
that hands each step to the team is ``MARGIN`` faster), and remembers it for the
process.  The packed ways also cost their loop a setup (packing the
weights, about one pass over them), measured with them: a loop of T steps counts a T-th of it
a step (``code_for``), so that a short loop (a step of text generation, T = 1) does not pay
for a packing that only long ones earn back.

``RNNKIT_PRODUCTS=auto|packed|packed_pf|blas|split|mkl|team|team_pf`` (auto, the default,
measures); a forced way
that cannot run for a shape (packed in float64, with 2 or 3 rows a product (one row has a
kernel of its own, from ``PACKED_MIN_ROWS`` the register tile) or without AVX2/FMA; split
without a team of two; mkl in float64 or without MKL; team but for an LSTM loop whose
batch is cut into chunks) runs as one BLAS call and says so in ``choices()``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from . import blas

ENV_VAR = "RNNKIT_PRODUCTS"
MODES = ("auto", "packed", "packed_pf", "blas", "split", "mkl", "team", "team_pf")
CANDIDATES = ("packed", "packed_pf", "blas", "split", "mkl", "team", "team_pf")
# the ways that pack the weights before a loop's first step
PACKS = ("packed", "packed_pf", "mkl", "team", "team_pf")
# the codes of _loops.c (PRODUCTS_*); 0 is its fixed thresholds (calls that pass nothing);
# PREFETCH (PRODUCTS_PREFETCH) on a packed way: prefetch_all in _packed.h
PREFETCH = 8
CODES = {"legacy": 0, "packed": 1, "blas": 2, "split": 3, "mkl": 4, "team": 5}
CODES.update(packed_pf=CODES["packed"] | PREFETCH, team_pf=CODES["team"] | PREFETCH)
# ``packed_pf``, ``team_pf``: measured where a product's weights exceed this (as
# PREFETCH_ALL_MIN_BYTES in _packed.h).  On the Xeon (L2 2 MB a core) the prefetch made
# products of 16-32 rows with 4-6 MB of weights 12-25 % faster, one of 64 rows 7 % slower
# (benchmarks/packed_gemm.c, one thread; BENCHMARKS.md, "The weight prefetch, chosen by
# measurement").
PREFETCH_MIN_BYTES = 1 << 20
# ``team``, LSTM loops (forward and backward) whose batch would be cut into chunks: the
# packed kernel on the whole batch, each step's products cut by columns over the team and
# the gates (or their reverse step) by rows, instead of chunks that each multiply by all
# of W at every step; each thread then
# reads only its columns of the weights, which pays where W outgrows the core's L2
# (LSTM(512), 4 MB, on the Xeon's 2 MB a core; BENCHMARKS.md, "The batch whole, W cut by
# columns").  The team meets twice a step, so it must beat the best chunked way by
# TEAM_MARGIN (its products timed alone).
TEAM_MARGIN = 0.9
PACKED_MIN_ROWS = 4  # the AVX2 register tile's rows (MR in _packed.h; AVX-512's: 8)
REPEATS = 5  # timed steps per way (after one untimed)
ROUNDS = 2  # the ways alternate this many times; each way's best round counts
# A way that hands each step's product to the team (split; packed when the batch is not cut
# into chunks) must beat one BLAS call by this factor: timed alone, back to back, a team
# barrier costs less than between a loop's gate arithmetic (LSTM N = 8, H = 64 on the Xeon
# of benchmarks/results/products-xeon-avx512: split 3.6 µs against BLAS 3.7 µs a step
# alone, 7.7 against 6.0 µs a step in the layer).  Chunks of the batch run their whole loops
# without a barrier, and are timed all at once (as they share the caches and the memory),
# so there the fastest way wins (LSTM(1024), N = 128, two chunks: packed 5.46 ms against
# BLAS 6.05 timed, 5.9 against 7.1 a step in the loop).
MARGIN = 0.9
# MKL's way must beat every other way by this factor timed alone: in the loop, between the
# gate arithmetic, it loses about 0.06-0.15 of its lead (the Xeon of
# benchmarks/results/products-xeon-mkl, LSTM inference, alone -> in the loop, MKL's time
# over the packed kernel's: N = 32, H = 256: 0.92 -> 1.07; N = 128, H = 256: 0.86 -> 0.92;
# N = 128, H = 1024: 0.77 -> 0.88; an autocomplete training step, N = 64, H = 256, its
# reverse loop at 0.96 alone: the layer 6-8 % slower with it).
MKL_MARGIN = 0.88
BUDGET_S = 0.002  # seconds of timed steps per way and round (at least one step)
# A way measured SUSPECT times slower than the fastest, and SUSPECT_S seconds a step slower,
# may only have been disturbed: a team's step can wait for a core that BLAS's own pool
# threads keep spinning on after a multi-threaded call (the orthogonal initializer's QR just
# before a first forward; on the Xeon of benchmarks/results/cpu-t7-xeon-avx512, LSTM(256),
# N = 1: split 225 µs against BLAS 11 µs a step, 8.5 against 16 in the loop; SimpleRNN(1024),
# N = 1: split 382 against 139, 77 when measured again a second later).  The choice stands,
# and the first loop of the key RECHECK_S later measures that way again (then 2x and 4x
# later, RETRIES in all, while it stays behind): no waiting, and a way slow for good (or a
# busy machine) costs three more measurements of a few milliseconds.  A team's few
# microseconds of hand-off on a tiny product are below SUSPECT_S and measured once.
SUSPECT = 2.0
SUSPECT_S = 50e-6
RETRIES = 3
RECHECK_S = 1.0


class Key(NamedTuple):
    """What a loop's products depend on: the cell, its sizes and how the loop runs."""

    kind: str  # simple, lstm, gru
    reset_after: bool  # GRU: one product h W, or two (W_zr, W_n)
    backward: bool
    N: int  # rows (samples) of the loop
    H: int
    D: int  # input size when x_t U is formed in the loop, else 0
    proj: int  # LSTM projection size, 0 for none
    itemsize: int  # 4: float32, 8: float64
    threads: int
    own_threads: bool


_cache: dict[tuple[str, Key], dict[str, Any]] = {}  # by (mode, key)
_lock = threading.Lock()


def mode() -> str:
    """``RNNKIT_PRODUCTS``: auto (the default), packed, blas, split or mkl."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(MODES)}; got {value!r}")
    return value


def products(key: Key) -> list[tuple[int, int, bool]]:
    """One step's recurrent products (K, Nc, transB): op(B) is K x Nc, in the order of the
    loop's packed slots (``loop_packs`` in ``_loops_impl.h``)."""
    H, D, P = key.H, key.D, key.proj
    R = P or H
    if key.kind == "simple":
        return [(H, H, True)] if key.backward else [(H, H, False)] + ([(D, H, False)] if D else [])
    if key.kind == "lstm":
        G = 4 * H
        if key.backward:
            return [(G, R, True)] + ([(R, H, True)] if P else [])
        return [(R, G, False)] + ([(H, R, False)] if P else []) + ([(D, G, False)] if D else [])
    G = 3 * H
    if key.backward:
        return [(G, H, True)] if key.reset_after else [(2 * H, H, True), (H, H, True)]
    own = [(H, G, False)] if key.reset_after else [(H, 2 * H, False), (H, H, False)]
    return own + ([(D, G, False)] if D else [])


def plan(key: Key, loops) -> dict[str, Any]:
    """How the loop runs at this key: rows and threads per product (a chunk's when the batch
    is cut into chunks), and why each way does not apply (None where it does)."""
    chunks, packed_cpu, team = loops.plan(key.N, key.threads, key.itemsize, key.own_threads)
    rows = -(-key.N // chunks)
    threads = 1 if chunks > 1 else key.threads
    why: dict[str, str | None] = {"blas": None}
    if key.itemsize != 4:
        why["packed"] = "float64"
    elif not packed_cpu:
        why["packed"] = "no AVX2/FMA (or RNNKIT_NO_PACKED, set_packed(False))"
    elif 1 < rows < PACKED_MIN_ROWS:
        why["packed"] = f"{rows} rows a product (one, or at least {PACKED_MIN_ROWS})"
    else:
        why["packed"] = None
    if not team:
        why["split"] = "no team of threads in this build"
    elif not key.own_threads or threads < 2:
        why["split"] = (
            "the batch is cut into chunks, one per thread"
            if chunks > 1
            else "no team of two threads holding BLAS at one"
        )
    elif all(nc < 32 for _, nc, _ in products(key)):
        why["split"] = "fewer than 32 columns a product"
    else:
        why["split"] = None
    if key.itemsize != 4:
        why["mkl"] = "float64"
    else:
        why["mkl"] = None if blas.find_mkl(loops) else blas.mkl_why_not()
    if key.kind != "lstm":
        why["team"] = "LSTM loops only"
    elif chunks <= 1:
        why["team"] = "the batch is not cut into chunks (packed is the team's way then)"
    else:
        why["team"] = why["packed"]
    largest = max(k * nc for k, nc, _ in products(key)) * key.itemsize
    small = (
        f"weights of at most {PREFETCH_MIN_BYTES >> 20} MB a product: nothing to prefetch"
        if largest <= PREFETCH_MIN_BYTES
        else None
    )
    one_row = "one row a product: its wide panels stream without the prefetch"
    why["packed_pf"] = why["packed"] or small or (one_row if rows == 1 else None)
    why["team_pf"] = why["team"] or small
    return {"chunks": chunks, "rows": rows, "threads": threads, "why_not": why}


def base(way: str) -> str:
    """The way without its prefetch: packed_pf -> packed, team_pf -> team."""
    return way.removesuffix("_pf")


def layout(key: Key, way: str, pl: dict[str, Any]) -> tuple[int, int, int]:
    """(rows a product, threads a product, chunks) of a loop that runs ``way``: team the
    whole batch on the team; the others the loop's plan (``plan``)."""
    if base(way) == "team":
        return key.N, key.threads, 1
    return pl["rows"], pl["threads"], pl["chunks"]


def time_way(key: Key, way: str, pl: dict[str, Any], loops) -> tuple[float, float]:
    """Seconds of one step of the key's products done ``way``, and of the loop's setup
    for that way (packing the weights; about 0 for the others).  The step: the median of up
    to ``REPEATS`` timed steps (as many as fit in ``BUDGET_S`` by a first guess of 20
    GFLOP/s, at least one).  The median, not the best: a team barrier that waits for a
    preempted thread on a busy machine is the typical step there, not an outlier."""
    specs = products(key)
    rows, threads, chunks = layout(key, way, pl)
    flops = 2.0 * rows * sum(k * nc for k, nc, _ in specs)
    reps = max(1, min(REPEATS, int(BUDGET_S / (flops / 20e9))))
    steps, setup = loops.time_products(
        key.itemsize, CODES[way], rows, threads, int(key.own_threads), specs, reps, chunks
    )
    return sorted(steps)[len(steps) // 2], setup


# What measures one way for a key: (key, way, plan, loops) -> (seconds a step, seconds of
# the loop's setup).  Tests put a fake here.
timer: Callable[[Key, str, dict[str, Any], Any], tuple[float, float]] = time_way


def _suspects(times: dict[str, float]) -> list[str]:
    """The ways measured far behind the fastest (SUSPECT, SUSPECT_S)."""
    best = min(times.values())
    return [w for w, t in times.items() if t > max(SUSPECT * best, best + SUSPECT_S)]


def _decide(times: dict[str, float], ways: list[str], chunks: int) -> str:
    way = min(ways, key=lambda w: times.get(w, 0.0))
    chunked = [w for w in ways if base(w) != "team" and w in times]
    if (
        base(way) == "team"
        and chunked
        and times[way] > TEAM_MARGIN * min(times[w] for w in chunked)
    ):
        way = min(chunked, key=lambda w: times[w])
    others = [w for w in ways if w != "mkl" and base(w) != "team" and w in times]
    if way == "mkl" and others and times["mkl"] > MKL_MARGIN * min(times[w] for w in others):
        way = min(others, key=lambda w: times[w])
    hands_off = base(way) in ("split", "team") or (base(way) == "packed" and chunks <= 1)
    if hands_off and "blas" in times and times[way] > MARGIN * times["blas"]:
        way = "blas"
    return way


def _recheck(key: Key, rec: dict[str, Any], loops) -> None:
    """Measure a record's suspect ways again (its ``recheck_at`` has come): a better time
    replaces theirs and may change the way; another recheck follows, twice as late, while
    some way stays suspect and RETRIES allow."""
    pl = plan(key, loops)
    times = dict(rec["times"])
    for w in _suspects(times):
        times[w] = min(times[w], timer(key, w, pl, loops)[0])
    ways = list(times)
    with _lock:
        rec["times"] = times
        rec["way"] = way = _decide(times, ways, pl["chunks"])
        rec["code"] = CODES[way]
        rec["rechecks"] = rec.get("rechecks", 0) + 1
        if _suspects(times) and rec["rechecks"] < RETRIES:
            rec["recheck_at"] = time.perf_counter() + RECHECK_S * 2 ** rec["rechecks"]
        else:
            rec.pop("recheck_at", None)


def choose(key: Key, loops) -> dict[str, Any]:
    """The way for ``key``: forced by ``RNNKIT_PRODUCTS``, or measured once (auto) and
    remembered.  A record: ``way``, ``code`` (for the loop), ``mode``, ``times`` (seconds
    per step of each way measured), ``why_not`` (the ways that do not apply); while a way
    measured far behind the fastest may only have been disturbed, ``recheck_at`` (a
    ``time.perf_counter()``): the first loop of the key after it measures that way again."""
    m = mode()
    rec = _cache.get((m, key))
    if rec is not None:
        if "recheck_at" in rec and time.perf_counter() >= rec["recheck_at"]:
            _recheck(key, rec, loops)
        return rec
    pl = plan(key, loops)
    why_not = {k: v for k, v in pl["why_not"].items() if v}
    rec = {"mode": m, "plan": {k: pl[k] for k in ("chunks", "rows", "threads")}}
    if m != "auto":
        # a prefetching way falls back to its own way where only the prefetch does not apply
        way = m if m not in why_not else base(m) if base(m) not in why_not else "blas"
        rec.update(way=way, times={}, why_not=why_not)
        if way != m:
            rec["note"] = f"{m} forced but does not apply ({why_not[m]}): " + (
                "one BLAS call" if way == "blas" else f"{way} instead"
            )
    else:
        ways = [w for w in CANDIDATES if w not in why_not]
        times: dict[str, float] = {}
        setup: dict[str, float] = {}
        t0 = time.perf_counter()
        if len(ways) > 1:
            for _ in range(ROUNDS):  # alternated, so that a busy moment does not pick one way
                for w in ways:
                    t, s = timer(key, w, pl, loops)
                    times[w] = min(times.get(w, t), t)
                    setup[w] = min(setup.get(w, s), s)
        way = _decide(times, ways, pl["chunks"])
        rec.update(
            way=way, times=times, setup=setup, why_not=why_not, cost_s=time.perf_counter() - t0
        )
        if len(ways) > 1 and _suspects(times):
            rec["recheck_at"] = time.perf_counter() + RECHECK_S
    rec["code"] = CODES[way]
    with _lock:
        _cache[(m, key)] = rec
    return rec


def code_for(rec: dict[str, Any], T: int) -> int:
    """The code of the way a loop of ``T`` steps takes at the record's key: its ``way``
    (the fastest a step), unless a packed way's setup, a T-th of it a step, makes another
    faster for so short a loop (measured ways only: a forced way stays)."""
    if rec.get("way") not in PACKS or not rec.get("setup"):
        return int(rec["code"])
    times, setup = rec["times"], rec["setup"]
    costs = {w: t + setup.get(w, 0.0) / T for w, t in times.items()}
    way = _decide(costs, list(times), rec["plan"]["chunks"])
    return CODES[way]


def choices() -> list[dict[str, Any]]:
    """What was chosen so far, one record per shape key (its fields included)."""
    with _lock:
        items = list(_cache.items())
    return [{**k._asdict(), **v} for (_, k), v in items]


def clear() -> None:
    """Forget every choice (the next loop of each shape measures again)."""
    with _lock:
        _cache.clear()
