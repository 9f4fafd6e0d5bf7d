/* rnnkit.kernels._loops: the whole BPTT time loop (forward and reverse) of SimpleRNN,
 * LSTM and GRU in C, calling the very BLAS that NumPy uses.
 *
 * This is an optional accelerator.  the cells in rnnkit/cells/ are the reference: the loops here
 * compute the same quantities in the same order and fill the same Trace buffers, so that
 * everything after the loop (weight gradients, outputs, diagnostics) is unchanged.  The
 * arrays arrive through the buffer protocol and are checked here (item size, shape, strides)
 * against the loop's sizes; rnnkit/kernels/blas.py finds NumPy's BLAS and hands its
 * sgemm/dgemm/sgemv/dgemv to set_blas(); no BLAS header or library is needed at build time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- CPU dispatch: the element-wise loops get AVX-512 and AVX2/FMA clones where GCC can make
 * them (chosen at load time by the CPU's features). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__x86_64__) \
    && defined(__linux__) && !defined(RNNKIT_NO_CLONES)
/* x86-64-v4 (AVX-512F/BW/DQ/VL) or x86-64-v3 (AVX2, FMA, ...), by the CPU's features,
 * whatever its vendor */
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

/* Pointers that no other argument of the function reaches: without it GCC leaves element-wise
 * loops over many arrays scalar (more possible overlaps than it will check at run time). */
#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
#define RESTRICT __restrict
#else
#define RESTRICT
#endif

#if defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))   /* also into the clones */
#else
#define ALWAYS_INLINE static inline
#endif

/* ---- BLAS, reached through function pointers (CBLAS interface, row major). */
enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };

typedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                          const float *, int64_t, float, float *, int64_t);
typedef void (*sgemm32_t)(int, int, int, int32_t, int32_t, int32_t, float, const float *, int32_t,
                          const float *, int32_t, float, float *, int32_t);
typedef void (*dgemm64_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                          int64_t, const double *, int64_t, double, double *, int64_t);
typedef void (*dgemm32_t)(int, int, int, int32_t, int32_t, int32_t, double, const double *,
                          int32_t, const double *, int32_t, double, double *, int32_t);
typedef void (*sgemv64_t)(int, int, int64_t, int64_t, float, const float *, int64_t, const float *,
                          int64_t, float, float *, int64_t);
typedef void (*sgemv32_t)(int, int, int32_t, int32_t, float, const float *, int32_t, const float *,
                          int32_t, float, float *, int32_t);
typedef void (*dgemv64_t)(int, int, int64_t, int64_t, double, const double *, int64_t,
                          const double *, int64_t, double, double *, int64_t);
typedef void (*dgemv32_t)(int, int, int32_t, int32_t, double, const double *, int32_t,
                          const double *, int32_t, double, double *, int32_t);

static void *p_sgemm, *p_dgemm, *p_sgemv, *p_dgemv;
static int blas_ilp64;

/* ---- MKL's packed float32 GEMM (optional: the `mkl` wheel, found by blas.find_mkl and handed
 * to set_mkl; LP64, sequential threading layer).  The weights are packed once per loop
 * (cblas_sgemm_pack) and each step multiplies by them (cblas_sgemm_compute); a matrix packed
 * for B serves products of any number of rows. */
enum { CblasPacked = 151, CblasBMatrix = 162 };
typedef size_t (*mkl_pack_size_t)(int, int32_t, int32_t, int32_t);
typedef void (*mkl_pack_t)(int, int, int, int32_t, int32_t, int32_t, float, const float *,
                           int32_t, float *);
typedef void (*mkl_compute_t)(int, int32_t, int32_t, int32_t, int32_t, int32_t, const float *,
                              int32_t, const float *, int32_t, float, float *, int32_t);
typedef void (*mkl_sgemm_t)(int, int, int, int32_t, int32_t, int32_t, float, const float *,
                            int32_t, const float *, int32_t, float, float *, int32_t);
static void *p_mkl_pack_size, *p_mkl_pack, *p_mkl_compute, *p_mkl_sgemm;

static void sgemm_(int o, int ta, int tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, float al,
                   const float *A, Py_ssize_t lda, const float *B, Py_ssize_t ldb, float be,
                   float *C, Py_ssize_t ldc)
{
    if (blas_ilp64)
        ((sgemm64_t)p_sgemm)(o, ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
    else
        ((sgemm32_t)p_sgemm)(o, ta, tb, (int32_t)M, (int32_t)N, (int32_t)K, al, A, (int32_t)lda,
                             B, (int32_t)ldb, be, C, (int32_t)ldc);
}

static void dgemm_(int o, int ta, int tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, double al,
                   const double *A, Py_ssize_t lda, const double *B, Py_ssize_t ldb, double be,
                   double *C, Py_ssize_t ldc)
{
    if (blas_ilp64)
        ((dgemm64_t)p_dgemm)(o, ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
    else
        ((dgemm32_t)p_dgemm)(o, ta, tb, (int32_t)M, (int32_t)N, (int32_t)K, al, A, (int32_t)lda,
                             B, (int32_t)ldb, be, C, (int32_t)ldc);
}

static void sgemv_(int o, int ta, Py_ssize_t M, Py_ssize_t N, float al, const float *A,
                   Py_ssize_t lda, const float *x, Py_ssize_t incx, float be, float *y,
                   Py_ssize_t incy)
{
    if (blas_ilp64)
        ((sgemv64_t)p_sgemv)(o, ta, M, N, al, A, lda, x, incx, be, y, incy);
    else
        ((sgemv32_t)p_sgemv)(o, ta, (int32_t)M, (int32_t)N, al, A, (int32_t)lda, x,
                             (int32_t)incx, be, y, (int32_t)incy);
}

static void dgemv_(int o, int ta, Py_ssize_t M, Py_ssize_t N, double al, const double *A,
                   Py_ssize_t lda, const double *x, Py_ssize_t incx, double be, double *y,
                   Py_ssize_t incy)
{
    if (blas_ilp64)
        ((dgemv64_t)p_dgemv)(o, ta, M, N, al, A, lda, x, incx, be, y, incy);
    else
        ((dgemv32_t)p_dgemv)(o, ta, (int32_t)M, (int32_t)N, al, A, (int32_t)lda, x,
                             (int32_t)incx, be, y, (int32_t)incy);
}

/* ---- tanh.  float: a branch-free version that compilers vectorize (Cephes' tanhf and expf,
 * within a few units in the last place of the exact value, as NumPy's own SIMD tanh is);
 * double: the C library's. */
ALWAYS_INLINE float exp_f32(float x)
{
    /* e^x = 2^n e^r, n = round(x / ln 2), |r| ≤ ln(2)/2; valid for |x| ≤ 88 */
    const float magic = 12582912.0f;                      /* 1.5 * 2^23: rounds to integer */
    float n = (x * 1.44269504088896341f + magic) - magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

ALWAYS_INLINE float tanh__f32(float x)
{
    float ax = x < 0 ? -x : x;
    float z = x * x;                                      /* |x| < 0.625: odd polynomial */
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    p = p * z * x + x;
    float e = exp_f32(ax > 44.0f ? 88.0f : 2.0f * ax);    /* else 1 - 2 / (e^{2|x|} + 1) */
    float q = 1.0f - 2.0f / (e + 1.0f);
    q = x < 0 ? -q : q;                                   /* NaN stays NaN: e is NaN */
    return ax < 0.625f ? p : q;
}

ALWAYS_INLINE double tanh__f64(double x) { return tanh(x); }

/* ---- activations by code: the order of rnnkit.kernels.ACTIVATIONS */
enum { ACT_LINEAR = 0, ACT_TANH = 1, ACT_SIGMOID = 2, ACT_HARD_SIGMOID = 3, ACT_RELU = 4,
       ACT_SOFTSIGN = 5 };

/* ---- what one loop needs; pointers are NULL where absent */
typedef struct {
    Py_ssize_t T, N, H, proj;       /* proj: LSTM projection size p, 0 for none */
    Py_ssize_t NT;                  /* samples per step in the (T, N, ·) buffers (N: a chunk's) */
    int act, rec_act, reset_after;
    int threads;                    /* threads the loop may use (the team's size) */
    int own_threads;                /* 1: BLAS is held at one thread, the team does it all */
    int no_trace, h_ring;           /* inference without a trace (see STEP, CSLOT, HSLOT) */
    int products;                   /* how the recurrent products run: PRODUCTS_* below */
    int prefetch;                   /* PRODUCTS_PREFETCH was in the code passed (taken off
                                       products): the packed weights' prefetch_all */
    char *xw; Py_ssize_t xw_st, xw_sn;
    char *x, *U; Py_ssize_t D;      /* inference: x (T, N, D) and U instead of xw (x_t U per step) */
    Py_ssize_t x_st, x_sn;          /* x's strides (per step, per sample): a view of (N, T, D) */
    char *x_keep;                   /* x copied here (T, N, D), C order, as each x_t is read */
    char *out; Py_ssize_t out_st, out_sn;   /* inference: every h_t copied to out[t], a view */
    char *W, *b_in, *b_rec, *P;    /* P: LSTM projection (H, p); b_in: the input bias b, added
                                      in the loop (or NULL: already in xw) */
    char *h, *c;
    char *gates, *act_c, *m, *hn, *rh, *dh_cache, *dhn;
    char *rec_mask;
    unsigned char *mask;
    char *dout; Py_ssize_t dout_st, dout_sn;
    char *dxw, *dh, *dc;
} LoopArgs;

enum { CELL_SIMPLE = 0, CELL_LSTM = 1, CELL_GRU = 2 };

/* How a loop computes its recurrent products (rnnkit/kernels/choose.py measures which is
 * fastest per shape and passes it as `products`): LEGACY picks by the fixed thresholds of
 * products_open; the others are that way for every product of the loop where it can run
 * (PACKED: float32 with AVX2/FMA, else BLAS; SPLIT: a team of two or more threads and
 * own_threads, else BLAS; MKL: float32 with MKL found (set_mkl), else BLAS). */
enum { PRODUCTS_LEGACY = 0, PRODUCTS_PACKED = 1, PRODUCTS_BLAS = 2, PRODUCTS_SPLIT = 3,
       PRODUCTS_MKL = 4, PRODUCTS_TEAM = 5 };
/* A flag on PACKED or TEAM: the packed kernel prefetches the next panel of weights in every
 * product whose packed weights exceed 1 MB, whatever its rows (prefetch_all in _packed.h) */
#define PRODUCTS_PREFETCH 8
/* PRODUCTS_TEAM: the packed kernel on the whole batch, each step's products cut by columns
 * over the team (and LSTM's gates, forward or reverse, by rows), where the batch would
 * otherwise be cut into chunks that each multiply by all of W at every step */

/* Where step t's values live.  With a trace (training, or a backward to follow) every step
 * has its own slot.  An inference forward without a trace (no_trace) reuses one slot for the
 * per-step caches (gates, σ(c_t), ...), so they stay in cache, and two for LSTM's c; h keeps
 * every step when the output sequence is wanted, else two slots as well (h_ring). */
#define STEP(a, t) ((a)->no_trace ? 0 : (t))
#define CSLOT(a, t) ((a)->no_trace ? ((t) & 1) : (t))
#define HSLOT(a, t) ((a)->h_ring ? ((t) & 1) : (t))
#define MAX_CHUNKS 16

#include "_packed.h"
#include "_gates_avx512.h"

/* ---- the recurrent products of one loop: packed weights (float32, _packed.h) or BLAS */
#define MAX_PACKED 3
typedef struct {                    /* one matrix a loop multiplies by: op(B) is K x Nc */
    const void *B;
    int transB;
    Py_ssize_t K, Nc, ldb;
} PackSpec;

typedef struct {
    int on, borrowed;
    int prefetch;                   /* PRODUCTS_PREFETCH: packed weights prefetch_all */
    int split;                      /* > 1: BLAS products cut by columns over this many threads */
    double split_min;               /* ... those of at least this many multiply-adds */
    int mkl;                        /* float32 products through MKL's packed weights mb[], */
    Py_ssize_t mkl_rows;            /* packed for products of this many rows */
    float *mb[MAX_PACKED];
#ifdef RNNKIT_PACKED
    Packer pk;
    PackedB b[MAX_PACKED];
#endif
} Products;

#define REAL float
#define IS_F32 1
#define SUFFIX _f32
#define GEMM sgemm_
#define GEMV sgemv_
#include "_loops_impl.h"
#undef REAL
#undef IS_F32
#undef SUFFIX
#undef GEMM
#undef GEMV

#define REAL double
#define IS_F32 0
#define SUFFIX _f64
#define GEMM dgemm_
#define GEMV dgemv_
#include "_loops_impl.h"
#undef REAL
#undef IS_F32
#undef SUFFIX
#undef GEMM
#undef GEMV

/* ---- Python interface.  Every array reaches C through the buffer protocol: its item size,
 * number of dimensions, shape and strides are checked here against the loop's own sizes
 * (T, N, H, p, D and the cell's width), so that a wrong array is a ValueError and never a
 * read or write past the end of a buffer.  The buffers are held (their owners cannot resize
 * or free them) until the loop returns. */
#define MAX_HELD 32
typedef struct {
    Py_buffer views[MAX_HELD];
    int n;
} Held;

static void release_held(Held *held)
{
    for (int i = 0; i < held->n; i++)
        PyBuffer_Release(&held->views[i]);
    held->n = 0;
}

static int get_int(PyObject *d, const char *key, Py_ssize_t *out)
{
    PyObject *v = PyDict_GetItemString(d, key);           /* borrowed */
    if (v == NULL || v == Py_None) {
        *out = 0;
        return 0;
    }
    *out = PyLong_AsSsize_t(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int format_is(const char *format, char want)
{
    if (format == NULL)
        return want == 'B';
    while (*format == '@' || *format == '=' || *format == '<')
        format++;
    return format[0] == want && format[1] == '\0';
}

/* The array under `key` (absent or None: *ptr = NULL).  `shape`: the expected sizes of its
 * `ndim` axes.  The last axis must have unit stride; `contig`: C-contiguous as a whole, else
 * the strides of the first two axes (in items, of any sign: buf points at element [0, 0, 0],
 * and the exporter vouches for every element of the shape) go to *st and *sn.  `write`:
 * writable. */
static int take(PyObject *d, const char *key, Held *held, int isz, int write, int contig,
                int ndim, const Py_ssize_t *shape, char **ptr, Py_ssize_t *st, Py_ssize_t *sn)
{
    *ptr = NULL;
    PyObject *o = PyDict_GetItemString(d, key);           /* borrowed */
    if (o == NULL || o == Py_None)
        return 0;
    if (held->n >= MAX_HELD) {
        PyErr_SetString(PyExc_RuntimeError, "too many loop arrays");
        return -1;
    }
    Py_buffer *v = &held->views[held->n];
    if (PyObject_GetBuffer(o, v, PyBUF_RECORDS_RO | (write ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    held->n++;
    int ok_type = isz == 1 ? (format_is(v->format, '?') || format_is(v->format, 'B'))
                : format_is(v->format, isz == 4 ? 'f' : 'd');
    if (!ok_type || v->itemsize != isz) {
        PyErr_Format(PyExc_ValueError, "loop array %s: expected items of %d bytes (%s), got "
                     "format %s of %zd bytes", key, isz,
                     isz == 1 ? "bool" : isz == 4 ? "float32" : "float64",
                     v->format ? v->format : "B", v->itemsize);
        return -1;
    }
    int same = v->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = v->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), i ? ", %zd" : "%zd",
                     shape[i]);
        for (int i = 0; i < v->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), i ? ", %zd" : "%zd",
                     v->shape[i]);
        PyErr_Format(PyExc_ValueError, "loop array %s: expected shape (%s), got (%s)", key,
                     want, got);
        return -1;
    }
    if (contig) {
        if (!PyBuffer_IsContiguous(v, 'C')) {
            PyErr_Format(PyExc_ValueError, "loop array %s: expected a C-contiguous array", key);
            return -1;
        }
    } else {
        for (int i = 0; i < ndim; i++) {
            Py_ssize_t s = v->strides[i];
            int unit = i == ndim - 1;
            if (v->shape[i] > 1 && (unit ? s != isz : s % isz != 0)) {   /* any sign: views */
                PyErr_Format(PyExc_ValueError, "loop array %s: unsupported strides (axis %d: "
                             "%zd bytes)", key, i, s);
                return -1;
            }
        }
        if (st)
            *st = v->shape[0] > 1 ? v->strides[0] / isz : 0;
        if (sn)
            *sn = v->shape[1] > 1 ? v->strides[1] / isz : 0;
    }
    *ptr = (char *)v->buf;
    return 0;
}

#define TAKE(key, field, write, contig, ...)                                         \
    do {                                                                              \
        const Py_ssize_t shape_[] = {__VA_ARGS__};                                    \
        char *p_;                                                                     \
        if (take(d, key, held, isz, write, contig, (int)(sizeof shape_ / sizeof *shape_), \
                 shape_, &p_, NULL, NULL) < 0) return -1;                             \
        a->field = (void *)p_;                                                        \
    } while (0)

static int parse_args(PyObject *d, LoopArgs *a, int *itemsize, int cell, int backward,
                      Held *held)
{
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "expected a dict of loop arguments");
        return -1;
    }
    memset(a, 0, sizeof *a);
    Py_ssize_t v, isz;
    if (get_int(d, "itemsize", &isz) < 0) return -1;
    if (isz != 4 && isz != 8) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 4 (float32) or 8 (float64)");
        return -1;
    }
    *itemsize = (int)isz;
#define INT(key, field) do { if (get_int(d, key, &v) < 0) return -1; a->field = v; } while (0)
    INT("T", T); INT("N", N); INT("H", H); INT("proj_size", proj); INT("D", D);
    INT("act", act); INT("rec_act", rec_act); INT("reset_after", reset_after);
    INT("threads", threads); INT("own_threads", own_threads);
    INT("no_trace", no_trace); INT("h_ring", h_ring); INT("products", products);
#undef INT
    a->NT = a->N;
    a->prefetch = (a->products & PRODUCTS_PREFETCH) != 0;
    a->products &= ~PRODUCTS_PREFETCH;
    if (a->T < 0 || a->N < 1 || a->H < 1 || a->proj < 0 || a->D < 0 || a->threads < 0
        || (cell != CELL_LSTM && a->proj) || a->act < 0 || a->act > 5 || a->rec_act < 0
        || a->rec_act > 5 || a->products < PRODUCTS_LEGACY || a->products > PRODUCTS_TEAM) {
        PyErr_SetString(PyExc_ValueError, "loop sizes out of range");
        return -1;
    }
    if ((isz == 4 && (!p_sgemm || !p_sgemv)) || (isz == 8 && (!p_dgemm || !p_dgemv))) {
        PyErr_SetString(PyExc_RuntimeError, "no BLAS: call set_blas() first");
        return -1;
    }
    const Py_ssize_t T = a->T, N = a->N, H = a->H, p = a->proj;
    const Py_ssize_t G = cell == CELL_LSTM ? 4 * H : cell == CELL_GRU ? 3 * H : H;
    const Py_ssize_t R = p ? p : H;                       /* size of h, the recurrent input */
    if ((a->no_trace && backward) || (a->h_ring && !a->no_trace)) {
        PyErr_SetString(PyExc_ValueError, "the reverse loop needs a forward with a trace");
        return -1;
    }
    /* steps kept: of the caches (Tc), of LSTM's c (Tcs) and of h (Th) */
    const Py_ssize_t Tc = a->no_trace ? 1 : T, Tcs = a->no_trace ? 2 : T + 1;
    const Py_ssize_t Th = a->h_ring ? 2 : T + 1;
    TAKE("W", W, 0, 1, R, G);
    TAKE("h", h, 1, 1, Th, N, R);
    TAKE("rec_mask", rec_mask, 0, 1, N, R);
    {
        const Py_ssize_t shape_[] = {T, N};
        char *p_;
        if (take(d, "mask", held, 1, 0, 1, 2, shape_, &p_, NULL, NULL) < 0) return -1;
        a->mask = (unsigned char *)p_;
    }
    if (cell == CELL_LSTM) {
        TAKE("c", c, 1, 1, Tcs, N, H);
        TAKE("gates", gates, 1, 1, Tc, N, G);
        TAKE("act_c", act_c, 1, 1, Tc, N, H);
        if (p) {
            TAKE("P", P, 0, 1, H, p);
            TAKE("m", m, 1, 1, Tc, N, H);
            TAKE("dh_cache", dh_cache, 1, 1, Tc, N, p);
        }
    } else if (cell == CELL_GRU) {
        TAKE("gates", gates, 1, 1, Tc, N, G);
        if (a->reset_after) {
            TAKE("hn", hn, 1, 1, Tc, N, H);
            TAKE("dhn", dhn, 1, 1, Tc, N, H);
            TAKE("b_rec", b_rec, 0, 1, G);
        } else {
            TAKE("rh", rh, 1, 1, Tc, N, H);
        }
    }
    if (!backward) {
        TAKE("b_in", b_in, 0, 1, G);
        {
            const Py_ssize_t shape_[] = {T, N, G};
            char *p_;
            if (take(d, "xw", held, (int)isz, 0, 0, 3, shape_, &p_, &a->xw_st, &a->xw_sn) < 0)
                return -1;
            a->xw = p_;
        }
        if (a->D > 0) {
            const Py_ssize_t shape_[] = {T, N, a->D};
            char *p_;
            if (take(d, "x", held, (int)isz, 0, 0, 3, shape_, &p_, &a->x_st, &a->x_sn) < 0)
                return -1;
            a->x = p_;
            if (N == 1)
                a->x_sn = a->D;                               /* one row: any lda >= D */
            if (a->x && a->x_sn < a->D) {                     /* BLAS's lda: rows apart */
                PyErr_SetString(PyExc_ValueError, "loop array x: its samples must lie at "
                                "least D items apart, in increasing order");
                return -1;
            }
            TAKE("x_keep", x_keep, 1, 1, T, N, a->D);
            TAKE("U", U, 0, 1, a->D, G);
        }
        {
            const Py_ssize_t shape_[] = {T, N, R};
            char *p_;
            if (take(d, "out", held, (int)isz, 1, 0, 3, shape_, &p_, &a->out_st, &a->out_sn) < 0)
                return -1;
            a->out = p_;
        }
        if (!a->xw && !(a->x && a->U)) {
            PyErr_SetString(PyExc_ValueError, "the forward loop needs xw (or x and U)");
            return -1;
        }
    } else {
        {
            const Py_ssize_t shape_[] = {T, N, R};
            char *p_;
            if (take(d, "dout", held, (int)isz, 0, 0, 3, shape_, &p_, &a->dout_st, &a->dout_sn) < 0)
                return -1;
            a->dout = p_;
        }
        TAKE("dxw", dxw, 1, 1, T, N, G);
        TAKE("dh", dh, 1, 1, N, R);
        if (cell == CELL_LSTM)
            TAKE("dc", dc, 1, 1, N, H);
        if (!a->dxw || !a->dh || (cell == CELL_LSTM && !a->dc)) {
            PyErr_SetString(PyExc_ValueError, "the reverse loop needs dxw, dh (and dc for LSTM)");
            return -1;
        }
    }
    int required = a->W && a->h && (cell != CELL_LSTM || (a->c && a->gates && a->act_c
                   && (!p || (a->P && a->m && a->dh_cache))))
                   && (cell != CELL_GRU || (a->gates && (a->reset_after ? (a->hn && a->dhn)
                                                                         : a->rh != NULL)));
    if (!required) {
        PyErr_SetString(PyExc_ValueError, "a loop array the cell needs is missing");
        return -1;
    }
    return 0;
}
#undef TAKE

static PyObject *run(PyObject *args, int backward)
{
    const char *name;
    PyObject *d;
    if (!PyArg_ParseTuple(args, "sO", &name, &d))
        return NULL;
    int cell = strcmp(name, "simple") == 0 ? CELL_SIMPLE : strcmp(name, "lstm") == 0 ? CELL_LSTM
             : strcmp(name, "gru") == 0 ? CELL_GRU : -1;
    if (cell < 0) {
        PyErr_Format(PyExc_ValueError, "unknown cell %s", name);
        return NULL;
    }
    LoopArgs a;
    int itemsize;
    Held held = {.n = 0};
    if (parse_args(d, &a, &itemsize, cell, backward, &held) < 0) {
        release_held(&held);
        return NULL;
    }
    static loop_fn_f32 const f32[3][2] = {{simple_forward_f32, simple_backward_f32},
                                          {lstm_forward_f32, lstm_backward_f32},
                                          {gru_forward_f32, gru_backward_f32}};
    static loop_fn_f64 const f64[3][2] = {{simple_forward_f64, simple_backward_f64},
                                          {lstm_forward_f64, lstm_backward_f64},
                                          {gru_forward_f64, gru_backward_f64}};
    int rc = 0;
    if (a.T > 0) {
        Py_BEGIN_ALLOW_THREADS
        if (itemsize == 4)
            rc = run_loop_f32(f32[cell][backward], &a, cell, backward);
        else
            rc = run_loop_f64(f64[cell][backward], &a, cell, backward);
        Py_END_ALLOW_THREADS
    }
    release_held(&held);
    if (rc < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_forward(PyObject *self, PyObject *args) { return run(args, 0); }

/* ---- one large product C (M x N) = op(A) op(B) + beta C on the team: the output is cut into
 * blocks of rows (or of columns, whichever dimension is larger), one per thread, each one
 * single-threaded BLAS call.  Used while rnnkit holds NumPy's BLAS at one thread
 * (rnnkit.kernels.own_threads), so that BLAS's own pool never wakes up to spin. */
typedef struct {
    int isz, ta, tb, by_rows, mkl;
    Py_ssize_t M, N, K, lda, ldb, ldc;
    const char *A, *B;
    char *C;
    double beta;
} GemmJob;

static void gemm_job(void *ctx, int part, int parts)
{
    const GemmJob *g = (const GemmJob *)ctx;
    Py_ssize_t D = g->by_rows ? g->M : g->N, q = 16;   /* blocks start on multiples of 16 */
    Py_ssize_t i0 = (D * part / parts) / q * q;
    Py_ssize_t i1 = part == parts - 1 ? D : (D * (part + 1) / parts) / q * q;
    if (i1 <= i0)
        return;
    const char *A = g->A, *B = g->B;
    char *C = g->C;
    Py_ssize_t M = g->M, N = g->N;
    if (g->by_rows) {                              /* rows i0..i1 of op(A) and of C */
        A += (size_t)(g->ta ? i0 : i0 * g->lda) * g->isz;
        C += (size_t)(i0 * g->ldc) * g->isz;
        M = i1 - i0;
    } else {                                       /* columns i0..i1 of op(B) and of C */
        B += (size_t)(g->tb ? i0 * g->ldb : i0) * g->isz;
        C += (size_t)i0 * g->isz;
        N = i1 - i0;
    }
    int ta = g->ta ? CblasTrans : CblasNoTrans, tb = g->tb ? CblasTrans : CblasNoTrans;
    if (g->mkl)                                    /* float32, every size below 2^31 */
        ((mkl_sgemm_t)p_mkl_sgemm)(CblasRowMajor, ta, tb, (int32_t)M, (int32_t)N, (int32_t)g->K,
                                   1.0f, (const float *)A, (int32_t)g->lda, (const float *)B,
                                   (int32_t)g->ldb, (float)g->beta, (float *)C, (int32_t)g->ldc);
    else if (g->isz == 4)
        sgemm_(CblasRowMajor, ta, tb, M, N, g->K, 1.0f, (const float *)A, g->lda,
               (const float *)B, g->ldb, (float)g->beta, (float *)C, g->ldc);
    else
        dgemm_(CblasRowMajor, ta, tb, M, N, g->K, 1.0, (const double *)A, g->lda,
               (const double *)B, g->ldb, g->beta, (double *)C, g->ldc);
}

/* op(X) of a 2-d buffer as BLAS reads it: (transposed, leading dimension), from its strides */
static int operand(const Py_buffer *v, int *trans, Py_ssize_t *ld)
{
    Py_ssize_t isz = v->itemsize, r = v->strides[0], c = v->strides[1];
    Py_ssize_t rows = v->shape[0], cols = v->shape[1];
    if ((c == isz || cols <= 1) && r % isz == 0 && r / isz >= (cols > 1 ? cols : 1)) {
        *trans = 0;
        *ld = r / isz;
        return 0;
    }
    if ((r == isz || rows <= 1) && c % isz == 0 && c / isz >= (rows > 1 ? rows : 1)) {
        *trans = 1;
        *ld = c / isz;
        return 0;
    }
    return -1;
}

/* fn(ctx, part, parts) on `threads` threads of the team when it is free (a loop on another
 * Python thread may hold it), else on this thread alone.  Called without the GIL. */
static void run_on_team(void (*fn)(void *, int, int), void *ctx, int threads)
{
#ifdef RNNKIT_PACKED
    if (threads > 1 && pthread_mutex_trylock(&team.lock) == 0) {
        int size = team_start(threads);
        team_run(fn, ctx, size);
        pthread_mutex_unlock(&team.lock);
        return;
    }
#else
    (void)threads;
#endif
    fn(ctx, 0, 1);
}

static PyObject *py_matmul(PyObject *self, PyObject *args)
{
    PyObject *oa, *ob, *oc;
    int threads, mkl = 0;
    double beta;
    if (!PyArg_ParseTuple(args, "OOOdi|p", &oa, &ob, &oc, &beta, &threads, &mkl))
        return NULL;
    Py_buffer va, vb, vc;
    if (PyObject_GetBuffer(oa, &va, PyBUF_RECORDS_RO) < 0)
        return NULL;
    if (PyObject_GetBuffer(ob, &vb, PyBUF_RECORDS_RO) < 0) {
        PyBuffer_Release(&va);
        return NULL;
    }
    if (PyObject_GetBuffer(oc, &vc, PyBUF_RECORDS_RO | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&va);
        PyBuffer_Release(&vb);
        return NULL;
    }
    GemmJob g;
    const char *err = NULL;
    g.isz = (int)va.itemsize;
    char f = g.isz == 4 ? 'f' : 'd';
    if (va.ndim != 2 || vb.ndim != 2 || vc.ndim != 2)
        err = "matmul: three 2-d arrays expected";
    else if ((g.isz != 4 && g.isz != 8) || vb.itemsize != g.isz || vc.itemsize != g.isz
             || !format_is(va.format, f) || !format_is(vb.format, f) || !format_is(vc.format, f))
        err = "matmul: float32 or float64 arrays of one dtype expected";
    else if (va.shape[1] != vb.shape[0] || vc.shape[0] != va.shape[0]
             || vc.shape[1] != vb.shape[1])
        err = "matmul: shapes do not match (A (M, K), B (K, N), C (M, N))";
    else if (!PyBuffer_IsContiguous(&vc, 'C'))
        err = "matmul: C must be C-contiguous";
    else if (operand(&va, &g.ta, &g.lda) < 0 || operand(&vb, &g.tb, &g.ldb) < 0)
        err = "matmul: A and B must each be C-ordered or the transpose of a C-ordered array";
    else if ((g.isz == 4 && !p_sgemm) || (g.isz == 8 && !p_dgemm))
        err = "matmul: no BLAS: call set_blas() first";
    if (err) {
        PyBuffer_Release(&va);
        PyBuffer_Release(&vb);
        PyBuffer_Release(&vc);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    g.M = va.shape[0]; g.K = va.shape[1]; g.N = vb.shape[1];
    g.ldc = g.N > 0 ? g.N : 1;
    g.mkl = mkl && g.isz == 4 && p_mkl_sgemm != NULL && g.M < INT32_MAX && g.N < INT32_MAX
            && g.K < INT32_MAX && g.lda < INT32_MAX && g.ldb < INT32_MAX;
    g.lda = g.lda > 0 ? g.lda : 1;
    g.ldb = g.ldb > 0 ? g.ldb : 1;
    g.A = (const char *)va.buf; g.B = (const char *)vb.buf; g.C = (char *)vc.buf;
    g.beta = beta;
    g.by_rows = g.M >= g.N;
    if (g.M > 0 && g.N > 0) {
        Py_BEGIN_ALLOW_THREADS
        run_on_team(gemm_job, &g, threads);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&va);
    PyBuffer_Release(&vb);
    PyBuffer_Release(&vc);
    Py_RETURN_NONE;
}
static PyObject *py_backward(PyObject *self, PyObject *args) { return run(args, 1); }

/* set_mkl(pack_get_size, pack, compute, sgemm): the addresses of MKL's
 * cblas_sgemm_pack_get_size, cblas_sgemm_pack, cblas_sgemm_compute and cblas_sgemm
 * (all 0: none) */
static PyObject *py_set_mkl(PyObject *self, PyObject *args)
{
    Py_ssize_t size, pack, compute, sgemm;
    if (!PyArg_ParseTuple(args, "nnnn", &size, &pack, &compute, &sgemm))
        return NULL;
    int all = size && pack && compute && sgemm;
    p_mkl_pack_size = all ? (void *)size : NULL;
    p_mkl_pack = all ? (void *)pack : NULL;
    p_mkl_compute = all ? (void *)compute : NULL;
    p_mkl_sgemm = all ? (void *)sgemm : NULL;
    return PyBool_FromLong(all);
}

static PyObject *py_set_blas(PyObject *self, PyObject *args)
{
    Py_ssize_t s, dd, sv, dv;
    int ilp64;
    if (!PyArg_ParseTuple(args, "nnnnp", &s, &dd, &sv, &dv, &ilp64))
        return NULL;
    p_sgemm = (void *)s; p_dgemm = (void *)dd; p_sgemv = (void *)sv; p_dgemv = (void *)dv;
    blas_ilp64 = ilp64;
    Py_RETURN_NONE;
}

/* ---- Adam's update in one pass (rnnkit/optim.py, Adam.update): for each element
 *     m += (1 - β₁)(g - m);   v += (1 - β₂)(g² - v);   θ -= α m / (√v + ε)
 * where NumPy would make about ten passes and as many temporaries.  float32 or float64,
 * four contiguous buffers of one size. */
#define ADAM_LOOP(REAL, SQRT)                                                                   \
    for (Py_ssize_t j = 0; j < n; j++) {                                                        \
        REAL gj = g[j];                                                                         \
        REAL mj = m[j] + (REAL)c1 * (gj - m[j]);                                                \
        REAL vj = v[j] + (REAL)c2 * (gj * gj - v[j]);                                           \
        m[j] = mj;                                                                              \
        v[j] = vj;                                                                              \
        p[j] -= (REAL)alpha * mj / (SQRT(vj) + (REAL)eps);                                      \
    }

CLONES static void adam_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n,
                            double alpha, double c1, double c2, double eps)
{
    ADAM_LOOP(float, sqrtf)
}

CLONES static void adam_f64(double *p, const double *g, double *m, double *v, Py_ssize_t n,
                            double alpha, double c1, double c2, double eps)
{
    ADAM_LOOP(double, sqrt)
}

/* adam(p, g, m, v, alpha, c1, c2, eps, itemsize): c1 = 1 - β₁, c2 = 1 - β₂ */
static PyObject *py_adam(PyObject *self, PyObject *args)
{
    Py_buffer bp, bg, bm, bv;
    double alpha, c1, c2, eps;
    int itemsize;
    if (!PyArg_ParseTuple(args, "w*y*w*w*ddddi", &bp, &bg, &bm, &bv, &alpha, &c1, &c2, &eps,
                          &itemsize))
        return NULL;
    const char *err = NULL;
    if (itemsize != 4 && itemsize != 8)
        err = "adam: itemsize must be 4 or 8";
    else if (bp.len != bg.len || bp.len != bm.len || bp.len != bv.len || bp.len % itemsize)
        err = "adam: p, g, m and v must be buffers of one size";
    if (!err) {
        Py_ssize_t n = bp.len / itemsize;
        Py_BEGIN_ALLOW_THREADS
        if (itemsize == 4)
            adam_f32((float *)bp.buf, (const float *)bg.buf, (float *)bm.buf, (float *)bv.buf, n,
                     alpha, c1, c2, eps);
        else
            adam_f64((double *)bp.buf, (const double *)bg.buf, (double *)bm.buf,
                     (double *)bv.buf, n, alpha, c1, c2, eps);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&bp);
    PyBuffer_Release(&bg);
    PyBuffer_Release(&bm);
    PyBuffer_Release(&bv);
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- Rows added up by index:  T[ids[r]] += S[r]  for r < n.  T (V, G) and S (n, G)
 * C-contiguous, of one float type.  An embedding's gradient, and ∂L/∂(E U) of an Embedding
 * fused with the recurrent layer after it (rnnkit/layers/recurrent.py).  Cut by columns over
 * the team, so that no two threads write one element. */
typedef struct {
    char *T;
    const char *S;
    const long long *ids;
    Py_ssize_t n, G;
    int isz;
} AddRowsJob;

#define ADD_ROWS(REAL)                                                                          \
    CLONES static void add_rows_##REAL(REAL *RESTRICT T, const REAL *RESTRICT S,                \
                                       const long long *RESTRICT ids, Py_ssize_t n,              \
                                       Py_ssize_t G, Py_ssize_t c0, Py_ssize_t c1)               \
    {                                                                                           \
        for (Py_ssize_t r = 0; r < n; r++) {                                                    \
            REAL *t = T + (Py_ssize_t)ids[r] * G;                                               \
            const REAL *s = S + r * G;                                                          \
            for (Py_ssize_t c = c0; c < c1; c++)                                                \
                t[c] += s[c];                                                                   \
        }                                                                                       \
    }
ADD_ROWS(float)
ADD_ROWS(double)
#undef ADD_ROWS

static void add_rows_job(void *ctx, int part, int parts)
{
    const AddRowsJob *j = (const AddRowsJob *)ctx;
    Py_ssize_t blocks = (j->G + 15) / 16;                    /* 64-byte blocks of float32 */
    Py_ssize_t c0 = blocks * part / parts * 16, c1 = blocks * (part + 1) / parts * 16;
    if (c1 > j->G)
        c1 = j->G;
    if (c0 >= c1)
        return;
    if (j->isz == 4)
        add_rows_float((float *)j->T, (const float *)j->S, j->ids, j->n, j->G, c0, c1);
    else
        add_rows_double((double *)j->T, (const double *)j->S, j->ids, j->n, j->G, c0, c1);
}

/* add_rows(T, ids, S, G, itemsize, threads): T[ids[r]] += S[r]; ids int64, each in [0, V) */
static PyObject *py_add_rows(PyObject *self, PyObject *args)
{
    Py_buffer bt, bi, bs;
    Py_ssize_t G;
    int isz, threads;
    if (!PyArg_ParseTuple(args, "w*y*y*nii", &bt, &bi, &bs, &G, &isz, &threads))
        return NULL;
    const char *err = NULL;
    Py_ssize_t n = bi.len / 8, V = 0;
    if (isz != 4 && isz != 8)
        err = "add_rows: itemsize must be 4 or 8";
    else if (G <= 0 || bt.len % (G * isz) || bi.len % 8 || bs.len != n * G * isz)
        err = "add_rows: T (V, G), ids (n,) int64 and S (n, G) expected";
    else {
        V = bt.len / (G * isz);
        const long long *ids = (const long long *)bi.buf;
        for (Py_ssize_t r = 0; r < n; r++)
            if (ids[r] < 0 || ids[r] >= V) {
                PyErr_Format(PyExc_ValueError, "add_rows: ids must be in [0, %zd) (the rows of "
                             "the target); got %lld at position %zd", V, ids[r], r);
                err = "";
                break;
            }
    }
    if (!err && n > 0) {
        AddRowsJob j = {(char *)bt.buf, (const char *)bs.buf, (const long long *)bi.buf, n, G, isz};
        Py_BEGIN_ALLOW_THREADS
        run_on_team(add_rows_job, &j, G >= 32 ? threads : 1);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&bt);
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bs);
    if (err) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- Softmax cross-entropy from logits, float32, one row at a time.  For each of the M
 * rows z (K logits, C-contiguous) with its label y in [0, K):
 *
 *     m = max_k z_k      s = Σ_k e^{z_k − m}      loss = log s − (z_y − m)
 *     d_k = e^{z_k − m} / s − [k = y]            (∂loss/∂z: softmax(z) − onehot(y))
 *
 * the row read once for its maximum and once more for everything else, while it is in
 * cache (NumPy takes seven passes over the whole array).  e^x is the loops' exp_f32, its
 * argument held at −87 and above (e^−87 is 1.6e-38 where NumPy's underflows to 0; a NaN
 * passes); the maximum and the sum run in XENT_LANES independent lanes, which compilers
 * vectorize without reordering a float sum.  A NaN or +∞ logit makes its row's loss NaN. */
#define XENT_LANES 16
CLONES static void xent_f32(const float *RESTRICT z, const long long *RESTRICT y,
                            float *RESTRICT d, float *RESTRICT loss, Py_ssize_t M, Py_ssize_t K)
{
    const Py_ssize_t Kv = K / XENT_LANES * XENT_LANES;
    for (Py_ssize_t r = 0; r < M; r++) {
        const float *zr = z + r * K;
        float *dr = d + r * K;
        float lane[XENT_LANES];
        for (int j = 0; j < XENT_LANES; j++)
            lane[j] = zr[0];
        for (Py_ssize_t k = 0; k < Kv; k += XENT_LANES)
            for (int j = 0; j < XENT_LANES; j++)
                lane[j] = zr[k + j] > lane[j] ? zr[k + j] : lane[j];
        float m = zr[0];
        for (int j = 0; j < XENT_LANES; j++)
            m = lane[j] > m ? lane[j] : m;
        for (Py_ssize_t k = Kv; k < K; k++)
            m = zr[k] > m ? zr[k] : m;
        for (int j = 0; j < XENT_LANES; j++)
            lane[j] = 0.0f;
        for (Py_ssize_t k = 0; k < Kv; k += XENT_LANES)
            for (int j = 0; j < XENT_LANES; j++) {
                float x = zr[k + j] - m;
                float e = exp_f32(x < -87.0f ? -87.0f : x);
                dr[k + j] = e;
                lane[j] += e;
            }
        float s = 0.0f;
        for (int j = 0; j < XENT_LANES; j++)
            s += lane[j];
        for (Py_ssize_t k = Kv; k < K; k++) {
            float x = zr[k] - m;
            float e = exp_f32(x < -87.0f ? -87.0f : x);
            dr[k] = e;
            s += e;
        }
        const float inv = 1.0f / s;
        for (Py_ssize_t k = 0; k < K; k++)
            dr[k] *= inv;
        loss[r] = logf(s) - (zr[y[r]] - m);
        dr[y[r]] -= 1.0f;
    }
}

/* xent(z, y, d, loss, K): see xent_f32; z, d (M, K) float32, y (M,) int64, loss (M,) */
static PyObject *py_xent(PyObject *self, PyObject *args)
{
    Py_buffer bz, by, bd, bl;
    Py_ssize_t K;
    if (!PyArg_ParseTuple(args, "y*y*w*w*n", &bz, &by, &bd, &bl, &K))
        return NULL;
    const char *err = NULL;
    Py_ssize_t M = by.len / 8;
    if (K < 1 || by.len % 8 || bz.len != M * K * 4 || bd.len != bz.len || bl.len != M * 4)
        err = "xent: z and d (M, K) float32, y (M,) int64 and loss (M,) float32 expected";
    else {
        const long long *y = (const long long *)by.buf;
        for (Py_ssize_t r = 0; r < M; r++)
            if (y[r] < 0 || y[r] >= K) {
                PyErr_Format(PyExc_ValueError, "xent: labels must be in [0, %zd); got %lld at "
                             "position %zd", K, y[r], r);
                err = "";
                break;
            }
    }
    if (!err && M > 0) {
        Py_BEGIN_ALLOW_THREADS
        xent_f32((const float *)bz.buf, (const long long *)by.buf, (float *)bd.buf,
                 (float *)bl.buf, M, K);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&bz);
    PyBuffer_Release(&by);
    PyBuffer_Release(&bd);
    PyBuffer_Release(&bl);
    if (err) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* tanh of a float32 buffer with the loops' own tanh (for tests of its accuracy) */
static PyObject *py_tanh_f32(PyObject *self, PyObject *args)
{
    Py_buffer in, out;
    if (!PyArg_ParseTuple(args, "y*w*", &in, &out))
        return NULL;
    if (in.len != out.len || in.len % 4) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "two float32 buffers of equal size expected");
        return NULL;
    }
    Py_ssize_t n = in.len / 4;
    const float *x = (const float *)in.buf;
    float *y = (float *)out.buf;
    for (Py_ssize_t j = 0; j < n; j++)
        y[j] = x[j];
    act_f32(ACT_TANH, y, n);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *py_set_packed(PyObject *self, PyObject *args)
{
    int flag;
    const char *isa = "";
    if (!PyArg_ParseTuple(args, "p|s", &flag, &isa))
        return NULL;
    if (strcmp(isa, "") != 0 && strcmp(isa, "avx2") != 0 && strcmp(isa, "avx512") != 0) {
        PyErr_Format(PyExc_ValueError, "set_packed: isa must be 'avx2', 'avx512' or '' (the "
                     "best this CPU has); got %R", PyTuple_GET_ITEM(args, 1));
        return NULL;
    }
#ifdef RNNKIT_PACKED
    packed_cap = strcmp(isa, "avx2") == 0 ? ISA_AVX2 : ISA_AVX512;
    packed_cpu = flag ? -1 : 0;              /* on: ask the CPU (and RNNKIT_NO_PACKED) again */
    return PyBool_FromLong(packed_available());
#else
    Py_RETURN_FALSE;
#endif
}

/* release_memory() -> bytes: free the buffers kept for the next loop's packed weights */
static PyObject *py_release_memory(PyObject *self, PyObject *args)
{
#ifdef RNNKIT_PACKED
    return PyLong_FromSize_t(pack_release());
#else
    return PyLong_FromLong(0);
#endif
}

/* packed_isa() -> "avx512", "avx2" or "": the register kernel of the packed products */
static PyObject *py_packed_isa(PyObject *self, PyObject *args)
{
#ifdef RNNKIT_PACKED
    int isa = packed_isa();
    return PyUnicode_FromString(isa == ISA_AVX512 ? "avx512" : isa == ISA_AVX2 ? "avx2" : "");
#else
    return PyUnicode_FromString("");
#endif
}

/* plan(N, threads, itemsize, own_threads) -> (chunks, packed, team): how a loop of N samples
 * would run here: the chunks of its batch, whether the packed kernel can run (float32 on a
 * CPU with AVX2 and FMA), whether the loops have a team of threads at all. */
static PyObject *py_plan(PyObject *self, PyObject *args)
{
    Py_ssize_t N;
    int threads, itemsize, own_threads;
    if (!PyArg_ParseTuple(args, "niip", &N, &threads, &itemsize, &own_threads))
        return NULL;
    int chunks = chunk_plan(N, threads, itemsize == 4, own_threads);
#ifdef RNNKIT_PACKED
    int team_ok = 1;
#else
    int team_ok = 0;
#endif
    return Py_BuildValue("iOO", chunks, itemsize == 4 && packed_available() ? Py_True : Py_False,
                         team_ok ? Py_True : Py_False);
}

/* time_products(itemsize, mode, rows, threads, own_threads, specs, reps, chunks=1) -> ([seconds
 * per step], seconds of the setup):
 * specs is a sequence of (K, Nc, transB), the products of one step (F(time_products)). */
static PyObject *py_time_products(PyObject *self, PyObject *args)
{
    int itemsize, mode, threads, own_threads, reps, chunks = 1;
    Py_ssize_t rows;
    PyObject *specs;
    if (!PyArg_ParseTuple(args, "iiniiOi|i", &itemsize, &mode, &rows, &threads, &own_threads,
                          &specs, &reps, &chunks))
        return NULL;
    PyObject *seq = PySequence_Fast(specs, "specs: a sequence of (K, Nc, transB)");
    if (!seq)
        return NULL;
    Py_ssize_t ns = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t K[MAX_PACKED], Nc[MAX_PACKED];
    int tr[MAX_PACKED];
    const char *err = NULL;
    const int prefetch = (mode & PRODUCTS_PREFETCH) != 0;
    mode &= ~PRODUCTS_PREFETCH;
    if ((itemsize != 4 && itemsize != 8) || mode < PRODUCTS_LEGACY || mode > PRODUCTS_TEAM
        || rows < 1 || threads < 1 || reps < 1 || reps > 1000 || ns < 1 || ns > MAX_PACKED
        || chunks < 1 || chunks > MAX_CHUNKS)
        err = "time_products: arguments out of range";
    for (Py_ssize_t i = 0; !err && i < ns; i++) {
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "nnp", &K[i], &Nc[i], &tr[i])) {
            Py_DECREF(seq);
            return NULL;
        }
        if (K[i] < 1 || Nc[i] < 1 || K[i] > (1 << 20) || Nc[i] > (1 << 20))
            err = "time_products: product sizes out of range";
    }
    Py_DECREF(seq);
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    if ((itemsize == 4 && !p_sgemm) || (itemsize == 8 && !p_dgemm)) {
        PyErr_SetString(PyExc_RuntimeError, "no BLAS: call set_blas() first");
        return NULL;
    }
    double *out = (double *)malloc((size_t)(reps + 1) * sizeof(double));
    if (!out)
        return PyErr_NoMemory();
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (itemsize == 4)
        rc = time_products_f32(mode, prefetch, rows, chunks, threads, own_threads, (int)ns, K, Nc,
                               tr, reps, out);
    else
        rc = time_products_f64(mode, prefetch, rows, chunks, threads, own_threads, (int)ns, K, Nc,
                               tr, reps, out);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        free(out);
        return PyErr_NoMemory();
    }
    PyObject *list = PyList_New(reps);
    for (int r = 0; list && r < reps; r++)
        PyList_SET_ITEM(list, r, PyFloat_FromDouble(out[r]));
    PyObject *result = list ? Py_BuildValue("(Nd)", list, out[reps]) : NULL;
    free(out);
    return result;
}

static PyMethodDef methods[] = {
    {"plan", py_plan, METH_VARARGS,
     "plan(N, threads, itemsize, own_threads) -> (chunks, packed, team): how a loop would run"},
    {"time_products", py_time_products, METH_VARARGS,
     "time_products(itemsize, mode, rows, threads, own_threads, specs, reps, chunks=1) -> "
     "(steps, setup): seconds of each of reps steps of the products specs [(K, Nc, transB)] "
     "run as `mode` runs them (on `chunks` chunks of `rows` rows at once), and of the loop's "
     "setup (packing the weights) before them"},
    {"forward", py_forward, METH_VARARGS, "forward(cell, args): the forward time loop"},
    {"backward", py_backward, METH_VARARGS, "backward(cell, args): the reverse time loop"},
    {"set_mkl", py_set_mkl, METH_VARARGS,
     "set_mkl(pack_get_size, pack, compute, sgemm): MKL's sgemm functions (all 0: none)"},
    {"set_blas", py_set_blas, METH_VARARGS,
     "set_blas(sgemm, dgemm, sgemv, dgemv, ilp64): CBLAS function addresses"},
    {"matmul", py_matmul, METH_VARARGS,
     "matmul(A, B, C, beta, threads, mkl=False): C = A B + beta C (2-d arrays of one float "
     "dtype; A and B C-ordered or transposed views) cut into one block per thread of the team; "
     "float32 blocks through MKL's sgemm where mkl and set_mkl gave it"},
    {"adam", py_adam, METH_VARARGS,
     "adam(p, g, m, v, alpha, c1, c2, eps, itemsize): Adam's update in place, one pass "
     "(c1 = 1 - beta_1, c2 = 1 - beta_2)"},
    {"add_rows", py_add_rows, METH_VARARGS,
     "add_rows(T, ids, S, G, itemsize, threads): T[ids[r]] += S[r] (T (V, G), S (n, G) "
     "C-contiguous of one float type, ids int64 in [0, V)), cut by columns over the team"},
    {"tanh_f32", py_tanh_f32, METH_VARARGS, "tanh_f32(x, out): the loops' float32 tanh"},
    {"xent", py_xent, METH_VARARGS,
     "xent(z, y, d, loss, K): float32 softmax cross-entropy and its gradient by rows"},
    {"set_packed", py_set_packed, METH_VARARGS,
     "set_packed(flag): float32 recurrent products with packed weights on the loops' own "
     "threads (True, the default where the CPU has AVX2 and FMA) or one BLAS call each; "
     "returns whether the packed products are in use; set_packed(True, 'avx2') keeps the AVX2 "
     "kernel on a CPU with AVX-512"},
    {"release_memory", py_release_memory, METH_NOARGS,
     "release_memory() -> bytes: free the buffers kept for the next loop's packed weights"},
    {"packed_isa", py_packed_isa, METH_NOARGS,
     "packed_isa() -> 'avx512', 'avx2' or '': the register kernel of the packed products"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_loops",
                                    "Compiled BPTT time loops (optional).", -1, methods};

PyMODINIT_FUNC PyInit__loops(void) { return PyModule_Create(&module); }
