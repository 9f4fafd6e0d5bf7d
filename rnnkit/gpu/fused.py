"""The time loops of a recurrent layer with one fused kernel per stage (``source.py``).

The loops here know no array library: they receive

    launch(name, count, K, *args)   run kernel ``name`` over ``count`` elements (K units)
    matmul(a, b, out)               out = a @ b, into a preallocated array

and arrays that support ``[t]`` slicing.  ``rnnkit.gpu.cuda`` hands in CuPy's
(``RawModule`` kernels, cuBLAS through ``cupy.matmul``); the CPU tests hand in the same
kernels compiled as C and NumPy's matmul.  The loops allocate nothing: every buffer is made
beforehand (``new_work``), so the loops can be captured as a CUDA graph and replayed.

They fill the very ``bptt.Trace`` the NumPy loops fill (states and the caches each cell's
``allocate`` makes), so everything after the loop (``recurrent_grads``, outputs,
diagnostics) is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import bptt
from ..cells import GRUCell, LSTMCell, SimpleCell
from ..cells.base import Cell
from .source import ACTIVATIONS

Array = Any
Launch = Callable[..., None]
MatMul = Callable[[Array, Array, Array], None]


def kind_of(cell: Cell) -> str | None:
    """The kernel family of a cell ('simple', 'lstm', 'gru', 'gru_before'), or None when the
    fused kernels do not apply (another cell, subclasses included, or an activation the
    kernels do not know)."""
    if type(cell) is SimpleCell:
        kind = "simple"
    elif type(cell) is LSTMCell:
        kind = "lstm"
    elif type(cell) is GRUCell:
        kind = "gru" if cell.reset_after else "gru_before"
    else:
        return None
    acts = (cell.activation, cell.recurrent_activation)
    if any(type(a).__module__ != "rnnkit.activations" or a.name not in ACTIVATIONS for a in acts):
        return None  # a user's own activation: the NumPy loops
    return kind


def signature(cell: Cell) -> tuple | None:
    """What fixes the kernels and the loop of a cell: part of every graph key."""
    kind = kind_of(cell)
    if kind is None:
        return None
    return (
        kind,
        cell.activation.name,
        cell.recurrent_activation.name,
        cell.units,
        getattr(cell, "proj_size", 0),
        cell.has_recurrent_bias,
    )


def new_work(xp, cell: Cell, N: int, T: int, dtype) -> dict[str, Array]:
    """The scratch buffers of both loops for a batch of N (and T steps: dxw)."""
    kind, H = kind_of(cell), cell.units
    P = cell.recurrent_size
    e = xp.empty
    w = {
        "dummy": xp.zeros((1,), dtype=dtype),
        "R": e((N, P), dtype=dtype),
        "base": e((N, P), dtype=dtype),
        "d_final0": xp.zeros((N, P), dtype=dtype),
        "d_init0": e((N, P), dtype=dtype),
        "dxw": e((T, N, cell.width), dtype=dtype),
    }
    if kind == "lstm":
        w |= {
            "dc": e((N, H), dtype=dtype),
            "d_final1": xp.zeros((N, H), dtype=dtype),
            "d_init1": e((N, H), dtype=dtype),
        }
        if getattr(cell, "proj_size", 0):
            w["dm"] = e((N, H), dtype=dtype)
    elif kind == "gru":
        w |= {"hw": e((N, 3 * H), dtype=dtype), "dhw": e((N, 3 * H), dtype=dtype)}
    elif kind == "gru_before":
        w |= {
            "Wzr": e((P, 2 * H), dtype=dtype),
            "Wn": e((H, H), dtype=dtype),
            "hzr": e((N, 2 * H), dtype=dtype),
            "hnv": e((N, H), dtype=dtype),
            "dan": e((N, H), dtype=dtype),
            "drh": e((N, H), dtype=dtype),
            "dzr": e((N, 2 * H), dtype=dtype),
        }
    return w


def _copy(dst, src) -> None:
    dst[...] = src


def forward_loop(
    launch: Launch, matmul: MatMul, cell: Cell, p: dict, xw: Array, tr, mask, work: dict
) -> None:
    """The forward loop over xw (T, N, G) = x_t U + b from ``tr.states[k][0]``; ``mask``
    (T, N) of 0/1 in the dtype, or None.  Fills ``tr``."""
    kind, H = kind_of(cell), cell.units
    T, N = xw.shape[0], xw.shape[1]
    NH, W = N * H, p["W"]
    hm = int(mask is not None)
    dummy = work["dummy"]
    h = tr.states[0]
    if kind == "gru_before":
        _copy(work["Wzr"], W[:, : 2 * H])
        _copy(work["Wn"], W[:, 2 * H :])
    for t in range(T):
        mt = mask[t] if hm else dummy
        if kind == "simple":
            matmul(h[t], W, h[t + 1])  # s_{t-1} W
            launch("simple_fwd", NH, H, xw[t], h[t + 1], h[t], mt, hm)
        elif kind == "lstm":
            c, z, act_c = tr.states[1], tr.cache["gates"][t], tr.cache["act_c"][t]
            matmul(h[t], W, z)  # h_{t-1} W
            if cell.proj_size:  # type: ignore[attr-defined]
                m_t = tr.cache["m"][t]
                launch(
                    "lstm_fwd", NH, H, xw[t], z, c[t], h[t], dummy, c[t + 1], act_c, m_t, 1, mt, hm
                )
                matmul(m_t, p["P"], h[t + 1])  # h_t = m_t P
                if hm:
                    launch(
                        "carry", N * cell.recurrent_size, cell.recurrent_size, h[t + 1], h[t], mt, 1
                    )
            else:
                launch(
                    "lstm_fwd",
                    NH,
                    H,
                    xw[t],
                    z,
                    c[t],
                    h[t],
                    h[t + 1],
                    c[t + 1],
                    act_c,
                    dummy,
                    0,
                    mt,
                    hm,
                )
        elif kind == "gru":
            hw = work["hw"]
            matmul(h[t], W, hw)  # h_{t-1} W
            brec = p.get("b_rec")
            launch(
                "gru_fwd", NH, H, xw[t], hw, dummy if brec is None else brec, int(brec is not None),
                h[t], h[t + 1], tr.cache["gates"][t], tr.cache["hn"][t], mt, hm,
            )  # fmt: skip
        else:  # gru_before
            g, rh = tr.cache["gates"][t], tr.cache["rh"][t]
            matmul(h[t], work["Wzr"], work["hzr"])  # h_{t-1} W_zr
            launch("grub_fwd1", NH, H, xw[t], work["hzr"], h[t], g, rh)
            matmul(rh, work["Wn"], work["hnv"])  # (r ⊙ h_{t-1}) W_n
            launch("grub_fwd2", NH, H, xw[t], work["hnv"], g, h[t], h[t + 1], mt, hm)


def backward_loop(
    launch: Launch, matmul: MatMul, cell: Cell, p: dict, tr, d_out, mask, work: dict
) -> None:
    """The reverse loop.  Starts from ``work["d_final0"]`` (and ``"d_final1"``, LSTM's c);
    ``d_out`` (T, N, P) ∂L/∂(output of step t) or None.  Writes ∂L/∂XW into ``work["dxw"]``,
    ∂L/∂(initial states) into ``work["d_init0"]`` (``"d_init1"``) and the caches the
    cells' ``recurrent_grads`` read (LSTM's ``dh`` with a projection, GRU's ``dhn``)."""
    kind, H = kind_of(cell), cell.units
    T, N = tr.T, tr.N
    P = cell.recurrent_size
    NH, NP, W = N * H, N * P, p["W"]
    hm, hd = int(mask is not None), int(d_out is not None)
    dummy, R, base, dxw = work["dummy"], work["R"], work["base"], work["dxw"]
    h = tr.states[0]
    R[...] = 0
    _copy(base, work["d_final0"])
    if kind == "lstm":
        _copy(work["dc"], work["d_final1"])
    if kind == "gru_before":
        _copy(work["Wzr"], W[:, : 2 * H])
        _copy(work["Wn"], W[:, 2 * H :])
    for t in range(T - 1, -1, -1):
        mt = mask[t] if hm else dummy
        has_mn = int(hm and t + 1 < T)
        mn = mask[t + 1] if has_mn else dummy
        inc = (R, base, d_out[t] if hd else dummy, hd, mn, has_mn, mt, hm)
        if kind == "simple":
            launch("simple_bwd", NH, H, *inc, h[t + 1], dxw[t])
            matmul(dxw[t], W.T, R)  # ∂L/∂s_{t-1} = ∂L/∂a_t Wᵀ
        elif kind == "lstm":
            z, act_c, c_prev = tr.cache["gates"][t], tr.cache["act_c"][t], tr.states[1][t]
            if cell.proj_size:  # type: ignore[attr-defined]
                dh_t = tr.cache["dh"][t]
                launch("lstmp_bwd_h", NP, P, *inc, dh_t)
                matmul(dh_t, p["P"].T, work["dm"])  # ∂L/∂m_t = ∂L/∂h_t Pᵀ
                launch(
                    "lstmp_bwd_gates",
                    NH,
                    H,
                    work["dm"],
                    z,
                    act_c,
                    c_prev,
                    work["dc"],
                    dxw[t],
                    mt,
                    hm,
                )
            else:
                launch("lstm_bwd", NH, H, *inc, z, act_c, c_prev, work["dc"], dxw[t])
            matmul(dxw[t], W.T, R)  # ∂L/∂h_{t-1} = ∂L/∂a Wᵀ
        elif kind == "gru":
            g, hn, dhn = tr.cache["gates"][t], tr.cache["hn"][t], tr.cache["dhn"][t]
            launch("gru_bwd", NH, H, *inc, g, hn, h[t], dxw[t], work["dhw"], dhn)
            matmul(work["dhw"], W.T, R)  # ∂L/∂(h_{t-1} W) Wᵀ
        else:  # gru_before
            g = tr.cache["gates"][t]
            launch("grub_bwd1", NH, H, *inc, g, h[t], dxw[t], work["dan"])
            matmul(work["dan"], work["Wn"].T, work["drh"])  # ∂L/∂(r ⊙ h_{t-1})
            launch("grub_bwd2", NH, H, work["drh"], g, h[t], dxw[t], work["dzr"], base, mt, hm)
            matmul(work["dzr"], work["Wzr"].T, R)  # ∂L/∂a_zr W_zrᵀ
    launch("combine", NP, P, R, base, mask[0] if hm else dummy, hm, work["d_init0"])
    if kind == "lstm":
        _copy(work["d_init1"], work["dc"])


def mask_values(xp, m, dtype) -> Array:
    """The layer's mask (T, N, 1) bool as the kernels read it: (T, N) of 0/1, contiguous."""
    return None if m is None else xp.ascontiguousarray(m[:, :, 0]).astype(dtype)


def new_trace(cell: Cell, T: int, N: int, dtype, m=None) -> bptt.Trace:
    """An empty ``bptt.Trace`` with the cell's caches; ``m`` the layer's (T, N, 1) mask.
    (``full_step`` all False: the NumPy reverse loop, should it run on this trace, takes its
    masked branch everywhere, which is right for any mask and needs no look at the data.)"""
    tr = bptt.Trace(T, N, dtype, cell.state_sizes)
    tr.mask = m
    if m is not None:
        tr.full_step = [False] * T
    cell.allocate(tr)
    return tr


def run_forward(launch: Launch, matmul: MatMul, xp, cell: Cell, p: dict, xw, s0, m) -> bptt.Trace:
    """The forward loop, run once (no graph): a new trace from xw (T, N, G) and the initial
    states ``s0``; ``m`` the layer's (T, N, 1) bool mask or None."""
    T, N = xw.shape[0], xw.shape[1]
    tr = new_trace(cell, T, N, xw.dtype, m)
    for s, v in zip(tr.states, s0):
        s[0] = v
    work = new_work(xp, cell, N, T, xw.dtype)
    forward_loop(launch, matmul, cell, p, xw, tr, mask_values(xp, m, xw.dtype), work)
    return tr


def run_backward(launch: Launch, matmul: MatMul, xp, cell: Cell, p: dict, tr, d_out, d_final):
    """The reverse loop, run once: (dxw, [∂L/∂(initial state k)]) as ``bptt.backward``."""
    work = new_work(xp, cell, tr.N, tr.T, tr.dtype)
    set_final(work, d_final)
    if d_out is not None:
        d_out = xp.ascontiguousarray(d_out)
    mask = mask_values(xp, tr.mask, tr.dtype)
    backward_loop(launch, matmul, cell, p, tr, d_out, mask, work)
    return work["dxw"], initial_grads(work, len(tr.states))


def set_final(work: dict, d_final) -> None:
    """∂L/∂(final states) into the buffers the reverse loop starts from (zeros where None)."""
    for k in range(2):
        buf = work.get(f"d_final{k}")
        if buf is None:
            continue
        g = None if d_final is None or k >= len(d_final) else d_final[k]
        if g is None:
            buf[...] = 0
        else:
            buf[...] = g


def initial_grads(work: dict, n_states: int) -> list:
    return [work[f"d_init{k}"].copy() for k in range(n_states)]
