"""The fused step kernels, written once as C and generated for CUDA and for a C test harness.

Each recurrence of ``rnnkit/cells/`` is described here by its *stages*: the element-wise
arithmetic between two matrix products of one step, forward and reverse.  A stage is one
kernel; every thread computes one (sample n, unit j) element and does all the gate
arithmetic of that element (the gate activations, c_t, h_t; in reverse every gate
derivative and the carried gradients).  The recurrent products (h_{t-1} W, ∂L/∂a Wᵀ, the
projection) stay matrix products between the stages (cuBLAS through ``cupy.matmul``).

The equations are those of the cells' docstrings, in the same order of operations as the
NumPy code (so float64 agrees to ~1e-15 per step).  σ is the cell's ``activation``, ρ its
``recurrent_activation``; both are written through their outputs (``rnnkit.activations``).

Every kernel is generated as

    RK_DEVICE void <name>_body(long i, int K, <params>) { ... }        the element
    RK_KERNEL void <name>(int count, int K, <params>) { RK_FOR(i, count) <name>_body(...); }

where ``RK_FOR`` is the CUDA thread index (``blockIdx.x * blockDim.x + threadIdx.x``, one
thread per element) under NVRTC and a plain C loop over the elements otherwise, so the very
same text is compiled by NVRTC for the GPU and by the system C compiler for the CPU tests
(``tests/test_gpu_kernels.py``).

Reverse-loop convention (all cells).  The gradient entering step t is

    d = R + base   (R: the recurrent product ∂L/∂a_{t+1} Wᵀ of step t+1; base: its direct,
                    matrix-free part, e.g. GRU's ∂L/∂h_t ⊙ z)
    d = base       where sample n skipped step t+1 (mask: the gradient is carried over)
    d += ∂L/∂(output of step t)

so the carry of one step and the start of the next are one kernel; each reverse stage
writes the ``base`` of its own step.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Activations, written through their outputs: y = ACT(a), σ'(a) = DACT(y)
# (rnnkit/activations.py; sigmoid as (1 + tanh(a/2)) / 2 like rnnkit's).
# ---------------------------------------------------------------------------------------------
ACTIVATIONS = {
    "tanh": ("TANH(a)", "(ONE - y * y)"),
    "sigmoid": ("(HALF * TANH(HALF * a) + HALF)", "(y * (ONE - y))"),
    "hard_sigmoid": (
        "FMIN(FMAX(a * SIXTH + HALF, ZERO), ONE)",
        "((y > ZERO && y < ONE) ? SIXTH : ZERO)",
    ),
    "relu": ("FMAX(a, ZERO)", "(y > ZERO ? ONE : ZERO)"),
    "linear": ("(a)", "ONE"),
    "softsign": ("(a / (ONE + FABS(a)))", "((ONE - FABS(y)) * (ONE - FABS(y)))"),
}

PRELUDE = r"""
#ifdef __CUDACC_RTC__
#define RK_DEVICE static __device__ __forceinline__
#define RK_KERNEL extern "C" __global__
#define RK_FOR(i, count) long i = (long)blockIdx.x * blockDim.x + threadIdx.x; if (i < (long)(count))
#else
#include <math.h>
#define RK_DEVICE static inline
#define RK_KERNEL
#define RK_FOR(i, count) for (long i = 0; i < (long)(count); ++i)
#endif
"""

REALS = {
    "float32": "typedef float real;\n#define TANH tanhf\n#define FABS fabsf\n"
    "#define FMIN fminf\n#define FMAX fmaxf\n",
    "float64": "typedef double real;\n#define TANH tanh\n#define FABS fabs\n"
    "#define FMIN fmin\n#define FMAX fmax\n",
}

CONSTANTS = r"""
#define ZERO ((real)0)
#define ONE ((real)1)
#define HALF ((real)0.5)
#define SIXTH ((real)(1.0 / 6.0))
#define MASKED(p, flag, n) ((flag) ? (p)[n] != ZERO : 1)
"""

# The reverse stages' common start: the gradient entering step t (module docstring).
INCOMING = """
    real d = base[i];
    if (!(has_mn && mn[n] == ZERO)) d = R[i] + d;
    if (has_dout) d += dout[i];
    const int m = MASKED(mask, has_mask, n);
    const real dd = m ? d : ZERO;  /* ∂L/∂s_t of an active sample, 0 of a skipping one */
"""
INCOMING_PARAMS = "R base dout has_dout mn has_mn mask has_mask"


@dataclass(frozen=True)
class Kernel:
    """One stage: ``params`` names its arguments (``has_*`` are int flags, the rest arrays of
    ``real``), ``body`` is C with n (sample), j (unit), i = n K + j and K (units) defined."""

    name: str
    params: tuple[str, ...]
    body: str

    @property
    def int_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if p.startswith("has_"))


def _k(name: str, params: str, body: str) -> Kernel:
    return Kernel(name, tuple(params.split()), body)


# ---------------------------------------------------------------------------------------------
# The cells (rnnkit/cells/*.py).  g = n G + j indexes gate block 0 of a (N, G) row.
# ---------------------------------------------------------------------------------------------
SIMPLE = (
    # s_t = σ(x_t U + b + s_{t-1} W); hw holds s_{t-1} W on entry and s_t on exit
    _k(
        "simple_fwd",
        "xw hw s_prev mask has_mask",
        """
    const real y = SIGMA(hw[i] + xw[i]);
    hw[i] = MASKED(mask, has_mask, n) ? y : s_prev[i];
""",
    ),
    # ∂L/∂a_t = δ_t ⊙ σ'(a_t)
    _k(
        "simple_bwd",
        INCOMING_PARAMS + " y dxw",
        INCOMING
        + """
    dxw[i] = dd * DSIGMA_OF(y[i]);
    base[i] = m ? ZERO : d;
""",
    ),
)

_LSTM_GATES = """
    const long g = n * 4L * K + j;
    const real ig = z[g], fg = z[g + K], gg = z[g + 2 * K], og = z[g + 3 * K];
    const real ac = act_c[i];
"""
_LSTM_GATE_GRADS = """
    const real dc2 = dcm + (dm * og) * DSIGMA_OF(ac);       /* ∂L/∂c_t += ∂L/∂m_t ⊙ o ⊙ σ'(c_t) */
    dxw[g] = (dc2 * gg) * DRHO_OF(ig);                      /* ∂L/∂a_i */
    dxw[g + K] = (dc2 * c_prev[i]) * DRHO_OF(fg);           /* ∂L/∂a_f */
    dxw[g + 2 * K] = (dc2 * ig) * DSIGMA_OF(gg);            /* ∂L/∂a_g */
    dxw[g + 3 * K] = (dm * ac) * DRHO_OF(og);               /* ∂L/∂a_o */
    dc[i] = m ? dc2 * fg : dcin;                            /* ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f */
"""
LSTM = (
    # z holds h_{t-1} W on entry and the activated gates i, f, g, o on exit
    _k(
        "lstm_fwd",
        "xw z c_prev h_prev h_next c_next act_c mproj has_proj mask has_mask",
        """
    const long g = n * 4L * K + j;
    const real ig = RHO(z[g] + xw[g]), fg = RHO(z[g + K] + xw[g + K]);
    const real gg = SIGMA(z[g + 2 * K] + xw[g + 2 * K]), og = RHO(z[g + 3 * K] + xw[g + 3 * K]);
    z[g] = ig; z[g + K] = fg; z[g + 2 * K] = gg; z[g + 3 * K] = og;
    const real c = fg * c_prev[i] + ig * gg;                /* c_t = f ⊙ c_{t-1} + i ⊙ g */
    const real ac = SIGMA(c);
    act_c[i] = ac;
    const real h = og * ac;                                 /* m_t = o ⊙ σ(c_t) */
    const int m = MASKED(mask, has_mask, n);
    c_next[i] = m ? c : c_prev[i];
    if (has_proj) mproj[i] = h;                             /* h_t = m_t P: a product after */
    else h_next[i] = m ? h : h_prev[i];
""",
    ),
    _k(
        "lstm_bwd",
        INCOMING_PARAMS + " z act_c c_prev dc dxw",
        INCOMING
        + _LSTM_GATES
        + """
    const real dm = dd, dcin = dc[i], dcm = m ? dcin : ZERO;
    base[i] = m ? ZERO : d;
"""
        + _LSTM_GATE_GRADS,
    ),
    # with proj_size: ∂L/∂h_t first (K = p), then ∂L/∂m_t = ∂L/∂h_t Pᵀ, then the gates
    _k(
        "lstmp_bwd_h",
        INCOMING_PARAMS + " dh_keep",
        INCOMING
        + """
    dh_keep[i] = dd;
    base[i] = m ? ZERO : d;
""",
    ),
    _k(
        "lstmp_bwd_gates",
        "dmv z act_c c_prev dc dxw mask has_mask",
        """
    const int m = MASKED(mask, has_mask, n);
"""
        + _LSTM_GATES
        + """
    const real dm = dmv[i], dcin = dc[i], dcm = m ? dcin : ZERO;
"""
        + _LSTM_GATE_GRADS,
    ),
    _k(
        "carry",  # s_t = s_{t-1} where the sample skips step t (after a product)
        "s_next s_prev mask has_mask",
        """
    if (!MASKED(mask, has_mask, n)) s_next[i] = s_prev[i];
""",
    ),
)

GRU_AFTER = (
    # hw = h_{t-1} W (N, 3H); b_rec added here
    _k(
        "gru_fwd",
        "xw hw brec has_brec h_prev h_next gates hn mask has_mask",
        """
    const long g = n * 3L * K + j;
    real hz = hw[g], hr = hw[g + K], hnv = hw[g + 2 * K];
    if (has_brec) { hz += brec[j]; hr += brec[j + K]; hnv += brec[j + 2 * K]; }
    const real zg = RHO(xw[g] + hz), rg = RHO(xw[g + K] + hr);
    const real ng = SIGMA(rg * hnv + xw[g + 2 * K]);        /* n = σ(x_n + r ⊙ h_n) */
    gates[g] = zg; gates[g + K] = rg; gates[g + 2 * K] = ng;
    hn[i] = hnv;
    const real h = (h_prev[i] - ng) * zg + ng;              /* h_t = n + z ⊙ (h_{t-1} - n) */
    h_next[i] = MASKED(mask, has_mask, n) ? h : h_prev[i];
""",
    ),
    _k(
        "gru_bwd",
        INCOMING_PARAMS + " gates hn h_prev dxw dhw dhn",
        INCOMING
        + """
    const long g = n * 3L * K + j;
    const real zg = gates[g], rg = gates[g + K], ng = gates[g + 2 * K];
    const real daz = (dd * (h_prev[i] - ng)) * DRHO_OF(zg);
    const real dan = (dd * (ONE - zg)) * DSIGMA_OF(ng);
    const real dar = (dan * hn[i]) * DRHO_OF(rg);
    const real dhnv = dan * rg;                             /* ∂L/∂h_n = ∂L/∂a_n ⊙ r */
    dxw[g] = daz; dxw[g + K] = dar; dxw[g + 2 * K] = dan;
    dhw[g] = daz; dhw[g + K] = dar; dhw[g + 2 * K] = dhnv;  /* ∂L/∂(h_{t-1} W) */
    dhn[i] = dhnv;
    base[i] = m ? dd * zg : d;                              /* direct path z ⊙ h_{t-1} */
""",
    ),
)

GRU_BEFORE = (
    # hzr = h_{t-1} W_zr (N, 2H)
    _k(
        "grub_fwd1",
        "xw hzr h_prev gates rh",
        """
    const long g = n * 3L * K + j, q = n * 2L * K + j;
    const real zg = RHO(hzr[q] + xw[g]), rg = RHO(hzr[q + K] + xw[g + K]);
    gates[g] = zg; gates[g + K] = rg;
    rh[i] = rg * h_prev[i];                                 /* r ⊙ h_{t-1}, the input of W_n */
""",
    ),
    # hnv = (r ⊙ h_{t-1}) W_n (N, H)
    _k(
        "grub_fwd2",
        "xw hnv gates h_prev h_next mask has_mask",
        """
    const long g = n * 3L * K + j;
    const real zg = gates[g], ng = SIGMA(hnv[i] + xw[g + 2 * K]);
    gates[g + 2 * K] = ng;
    const real h = (h_prev[i] - ng) * zg + ng;
    h_next[i] = MASKED(mask, has_mask, n) ? h : h_prev[i];
""",
    ),
    _k(
        "grub_bwd1",
        INCOMING_PARAMS + " gates h_prev dxw dan_keep",
        INCOMING
        + """
    const long g = n * 3L * K + j;
    const real zg = gates[g], ng = gates[g + 2 * K];
    const real daz = (dd * (h_prev[i] - ng)) * DRHO_OF(zg);
    const real dan = (dd * (ONE - zg)) * DSIGMA_OF(ng);
    dxw[g] = daz; dxw[g + 2 * K] = dan; dan_keep[i] = dan;
    base[i] = m ? dd * zg : d;
""",
    ),
    # drh = ∂L/∂(r ⊙ h_{t-1}) = ∂L/∂a_n W_nᵀ
    _k(
        "grub_bwd2",
        "drh gates h_prev dxw dzr base mask has_mask",
        """
    const long g = n * 3L * K + j, q = n * 2L * K + j;
    const real rg = gates[g + K];
    const real dar = (drh[i] * h_prev[i]) * DRHO_OF(rg);
    dxw[g + K] = dar;
    dzr[q] = dxw[g]; dzr[q + K] = dar;
    if (MASKED(mask, has_mask, n)) base[i] = drh[i] * rg + base[i];
""",
    ),
)

COMMON = (
    # ∂L/∂(initial state) after the loop: R + base unless the sample skipped step 0
    _k(
        "combine",
        "R base mn has_mn out",
        """
    out[i] = (has_mn && mn[n] == ZERO) ? base[i] : R[i] + base[i];
""",
    ),
)

CELL_KERNELS = {
    "simple": SIMPLE + COMMON,
    "lstm": LSTM + COMMON,
    "gru": GRU_AFTER + COMMON,
    "gru_before": GRU_BEFORE + COMMON,
}


def _function(k: Kernel) -> str:
    def decl(p: str) -> str:
        return f"int {p}" if p.startswith("has_") else f"real* {p}"

    args = ", ".join(decl(p) for p in k.params)
    names = ", ".join(k.params)
    return (
        f"RK_DEVICE void {k.name}_body(long i, int K, {args}) {{\n"
        f"    const long n = i / K; const long j = i % K; (void)n; (void)j;\n"
        f"{k.body}}}\n"
        f"RK_KERNEL void {k.name}(int count, int K, {args}) {{\n"
        f"    RK_FOR(i, count) {k.name}_body(i, K, {names});\n}}\n"
    )


def module_source(kind: str, dtype: str, activation: str, recurrent_activation: str) -> str:
    """The C/CUDA text of all kernels of one cell kind ('simple', 'lstm', 'gru',
    'gru_before') in one dtype ('float32', 'float64') with σ and ρ named as in
    ``rnnkit.activations``."""
    if kind not in CELL_KERNELS:
        raise ValueError(f"kind must be one of {sorted(CELL_KERNELS)}; got {kind!r}")
    if dtype not in REALS:
        raise ValueError(f"dtype must be one of {sorted(REALS)}; got {dtype!r}")
    for name in (activation, recurrent_activation):
        if name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    s_act, s_der = ACTIVATIONS[activation]
    r_act, r_der = ACTIVATIONS[recurrent_activation]
    parts = [PRELUDE, REALS[dtype], CONSTANTS]
    parts.append(
        f"RK_DEVICE real SIGMA(real a) {{ return {s_act}; }}\n"
        f"RK_DEVICE real DSIGMA_OF(real y) {{ return {s_der}; }}\n"
        f"RK_DEVICE real RHO(real a) {{ return {r_act}; }}\n"
        f"RK_DEVICE real DRHO_OF(real y) {{ return {r_der}; }}\n"
    )
    parts += [_function(k) for k in CELL_KERNELS[kind]]
    return "\n".join(parts)


def kernels(kind: str) -> dict[str, Kernel]:
    return {k.name: k for k in CELL_KERNELS[kind]}
