/* The time loops of SimpleRNN, LSTM and GRU for one floating-point type.
 *
 * Included twice by _loops.c, with REAL = float (suffix f32) and REAL = double
 * (suffix f64).  Every loop follows the cells of rnnkit/cells/ line by line (the
 * reference implementation) and fills the same Trace buffers; see there for the
 * equations.  Shapes, all C order, time-major:
 *
 *   xw      (T, N, G)   x_t U + b, rows with strides xw_st (per step), xw_sn (per sample)
 *   x       (T, N, D)   or, in inference, x itself (x_t U formed in the loop), strides x_st,
 *                       x_sn: a transposed batch-first array is read where it lies, and
 *                       copied to x_keep (T, N, D) when given
 *   out     (T, N, Hs)  inference: h_t copied to out[t] (strides out_st, out_sn) at each step
 *   W       (R, G)      recurrent weights (R = size of the state that enters W)
 *   h       (T+1, N, Hs) states; c (T+1, N, H) the LSTM cell state
 *   mask    (T, N)      uint8, 0 where a sample skips a step; NULL for none
 *   rec_mask (N, R)     variational recurrent dropout; NULL for none
 */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define F(name) CAT(name, SUFFIX)

/* ----------------------------------------------------------------------------------------- */
/* Matrix products: C (M x Nc) = A (M x K) op(B) + beta C, row major, through NumPy's BLAS.   */
/* ----------------------------------------------------------------------------------------- */
static void F(gemm)(int transB, Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K,
                    const REAL *A, Py_ssize_t lda, const REAL *B, Py_ssize_t ldb,
                    REAL beta, REAL *C, Py_ssize_t ldc)
{
    if (M == 0 || Nc == 0)
        return;
    if (K == 0) {
        for (Py_ssize_t i = 0; i < M; i++)
            for (Py_ssize_t j = 0; j < Nc; j++)
                C[i * ldc + j] = beta == 0 ? (REAL)0 : beta * C[i * ldc + j];
        return;
    }
    if (M == 1) {
        /* a row vector times a matrix: gemv, as NumPy's matmul does.  y = op(B)ᵀ a */
        if (beta == 0)
            memset(C, 0, (size_t)Nc * sizeof(REAL));
        if (transB)      /* B stored (Nc, K): y = B a */
            GEMV(CblasRowMajor, CblasNoTrans, Nc, K, (REAL)1, B, ldb, A, 1, beta, C, 1);
        else             /* B stored (K, Nc): y = Bᵀ a */
            GEMV(CblasRowMajor, CblasTrans, K, Nc, (REAL)1, B, ldb, A, 1, beta, C, 1);
        return;
    }
    GEMM(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, Nc, K,
         (REAL)1, A, lda, B, ldb, beta, C, ldc);
}

/* The recurrent products of one loop, as `mode` says (PRODUCTS_* in _loops.c).  LEGACY:
 * float32 on CPUs with AVX2 and FMA, with MR to PACKED_MAX_ROWS rows per product: the
 * weights are packed once per loop and multiplied with the packed kernel, on `threads`
 * threads (_packed.h); otherwise each product is one BLAS call, cut by columns over the
 * team when BLAS is held at one thread (own_threads) and the product is large enough.
 * PACKED, BLAS, SPLIT, MKL: that way for every product, where it can run (else one BLAS call).
 * `slot` names the packed matrix; a chunk of the batch borrows the packed matrices of the
 * whole loop (`borrowed`) and has its own workspace. */
static void F(products_open)(Products *pr, Py_ssize_t rows, Py_ssize_t Kmax, int threads,
                             int own_threads, int mode, int prefetch)
{
    pr->prefetch = prefetch;                     /* PACKED or TEAM: prefetch_all (_packed.h) */
    pr->on = 0;
    pr->borrowed = 0;
    pr->split = 1;
    pr->split_min = mode == PRODUCTS_SPLIT ? 0.0 : 16384.0;
    pr->mkl = IS_F32 && mode == PRODUCTS_MKL && p_mkl_compute != NULL;
    pr->mkl_rows = rows;
    for (int i = 0; i < MAX_PACKED; i++)
        pr->mb[i] = NULL;
#if IS_F32 && defined(RNNKIT_PACKED)
    for (int i = 0; i < MAX_PACKED; i++)
        pr->b[i].data = NULL;
    /* BLAS is better where the state has many rows (its blocking) or very few (gemv), on
     * the CPU these limits were measured on */
    int want = mode == PRODUCTS_PACKED || mode == PRODUCTS_TEAM
               || (mode == PRODUCTS_LEGACY && rows >= MR && rows <= PACKED_MAX_ROWS);
    if (want && packed_available() && packer_open(&pr->pk, threads, rows, Kmax) == 0)
        pr->on = 1;
#endif
#ifdef RNNKIT_PACKED
    /* BLAS held at one thread: the products the packed kernel does not take (a few rows,
     * float64) are cut by columns over the team instead */
    if (!pr->on && (mode == PRODUCTS_LEGACY || mode == PRODUCTS_SPLIT) && own_threads
        && threads > 1 && pthread_mutex_trylock(&team.lock) == 0) {
        pr->split = team_start(threads);
        if (pr->split < 2) {
            pr->split = 1;
            pthread_mutex_unlock(&team.lock);
        }
    }
#else
    (void)own_threads;
#endif
}

/* Pack the weights of `slot` (sp) for the way opened, on `threads` threads of the team
 * (held by the caller: the loop's own, or its chunks'). */
static void F(products_pack)(Products *pr, int slot, const PackSpec *sp, int threads)
{
    if (pr->mkl) {              /* no memory, or sizes beyond MKL's 32-bit integers: BLAS */
        pr->mb[slot] = NULL;
        if (pr->mkl_rows >= INT32_MAX || sp->Nc >= INT32_MAX || sp->K >= INT32_MAX
            || sp->ldb >= INT32_MAX)
            return;
        size_t bytes = ((mkl_pack_size_t)p_mkl_pack_size)(CblasBMatrix, (int32_t)pr->mkl_rows,
                                                          (int32_t)sp->Nc, (int32_t)sp->K);
        float *buf = bytes > 0 ? (float *)malloc(bytes) : NULL;
        if (buf != NULL)
            ((mkl_pack_t)p_mkl_pack)(CblasRowMajor, CblasBMatrix,
                                     sp->transB ? CblasTrans : CblasNoTrans,
                                     (int32_t)pr->mkl_rows, (int32_t)sp->Nc, (int32_t)sp->K, 1.0f,
                                     (const float *)sp->B, (int32_t)sp->ldb, buf);
        pr->mb[slot] = buf;
        return;
    }
#if IS_F32 && defined(RNNKIT_PACKED)
    if (pr->on) {                                         /* no memory: that product uses BLAS */
        pack_b(&pr->b[slot], (const float *)sp->B, sp->transB, sp->K, sp->Nc, sp->ldb,
               pr->pk.rows == 1, threads > pr->pk.threads ? threads : pr->pk.threads);
        pr->b[slot].prefetch_all = pr->prefetch;
    }
#else
    (void)threads;
#endif
}

/* A chunk's products: the loop's packed matrices, its own workspace for `rows` rows. */
static int F(products_borrow)(Products *pr, const Products *loop, Py_ssize_t rows, Py_ssize_t Kmax)
{
    pr->on = 0;
    pr->borrowed = 1;
    pr->prefetch = loop->prefetch;
    pr->split = 1;
    pr->split_min = 0.0;
    pr->mkl = loop->mkl;
    pr->mkl_rows = loop->mkl_rows;
    for (int i = 0; i < MAX_PACKED; i++)
        pr->mb[i] = loop->mb[i];
#if IS_F32 && defined(RNNKIT_PACKED)
    for (int i = 0; i < MAX_PACKED; i++)
        pr->b[i] = loop->b[i];
    if (loop->on && packer_open(&pr->pk, 1, rows, Kmax) == 0)
        pr->on = 1;
#endif
    return 0;
}

/* Columns c0..c1 of one product, a part of a product cut over the team */
typedef struct {
    int transB;
    Py_ssize_t M, Nc, K, lda, ldb, ldc;
    const REAL *A, *B;
    REAL beta, *C;
} F(SplitJob);

static void F(split_job)(void *ctx, int part, int parts)
{
    const F(SplitJob) *j = (const F(SplitJob) *)ctx;
    Py_ssize_t c0 = (j->Nc * part / parts) / 16 * 16;
    Py_ssize_t c1 = part == parts - 1 ? j->Nc : (j->Nc * (part + 1) / parts) / 16 * 16;
    if (c1 > c0)
        F(gemm)(j->transB, j->M, c1 - c0, j->K, j->A, j->lda,
                j->B + (j->transB ? c0 * j->ldb : c0), j->ldb, j->beta, j->C + c0, j->ldc);
}

/* C (M x Nc) = A (M x K) op(B) + beta C, through the packed op(B) of `slot` when there is one */
static void F(product)(Products *pr, int slot, int transB, Py_ssize_t M, Py_ssize_t Nc,
                       Py_ssize_t K, const REAL *A, Py_ssize_t lda, const REAL *B, Py_ssize_t ldb,
                       REAL beta, REAL *C, Py_ssize_t ldc)
{
    if (pr->mkl && pr->mb[slot] != NULL && M > 0) {
        ((mkl_compute_t)p_mkl_compute)(CblasRowMajor, CblasNoTrans, CblasPacked, (int32_t)M,
                                       (int32_t)Nc, (int32_t)K, (const float *)A, (int32_t)lda,
                                       pr->mb[slot], (int32_t)Nc, (float)beta, (float *)C,
                                       (int32_t)ldc);
        return;
    }
#if IS_F32 && defined(RNNKIT_PACKED)
    if (pr->on && pr->b[slot].data != NULL) {
        gemm_packed(&pr->pk, M, (const float *)A, lda, &pr->b[slot], beta, (float *)C, ldc);
        return;
    }
#endif
#ifdef RNNKIT_PACKED
    if (pr->split > 1 && Nc >= 32 && (double)M * (double)Nc * (double)K >= pr->split_min) {
        F(SplitJob) j = {transB, M, Nc, K, lda, ldb, ldc, A, B, beta, C};
        team_run(F(split_job), &j, pr->split);
        return;
    }
#endif
    F(gemm)(transB, M, Nc, K, A, lda, B, ldb, beta, C, ldc);
}

static void F(products_close)(Products *pr)
{
    if (pr->mkl && !pr->borrowed)
        for (int i = 0; i < MAX_PACKED; i++)
            free(pr->mb[i]);
#ifdef RNNKIT_PACKED
    if (pr->split > 1)
        pthread_mutex_unlock(&team.lock);
#endif
#if IS_F32 && defined(RNNKIT_PACKED)
    if (pr->on) {
        if (!pr->borrowed)
            for (int i = 0; i < MAX_PACKED; i++)
                free_b(&pr->b[i]);
        packer_close(&pr->pk);
    }
#endif
}

/* ----------------------------------------------------------------------------------------- */
/* Activations, in place over n contiguous values, and their derivatives written through     */
/* the output y (rnnkit/activations.py).                                                      */
/* ----------------------------------------------------------------------------------------- */
CLONES static void F(act)(int code, REAL *x, Py_ssize_t n)
{
    switch (code) {
    case ACT_TANH:
        for (Py_ssize_t j = 0; j < n; j++) x[j] = F(tanh_)(x[j]);
        break;
    case ACT_SIGMOID:   /* (1 + tanh(a/2)) / 2, as rnnkit's Sigmoid */
        for (Py_ssize_t j = 0; j < n; j++) x[j] = F(tanh_)(x[j] * (REAL)0.5) * (REAL)0.5 + (REAL)0.5;
        break;
    case ACT_HARD_SIGMOID:
        for (Py_ssize_t j = 0; j < n; j++) {
            REAL v = x[j] * (REAL)(1.0 / 6.0) + (REAL)0.5;
            x[j] = v < 0 ? (REAL)0 : (v > 1 ? (REAL)1 : v);
        }
        break;
    case ACT_RELU:
        for (Py_ssize_t j = 0; j < n; j++) x[j] = x[j] > 0 ? x[j] : (REAL)0;
        break;
    case ACT_SOFTSIGN:
        for (Py_ssize_t j = 0; j < n; j++) x[j] = x[j] / ((REAL)1 + (x[j] < 0 ? -x[j] : x[j]));
        break;
    default:            /* linear */
        break;
    }
}

/* out = σ'(a), written through y = σ(a) */
CLONES static void F(dact)(int code, const REAL *y, REAL *out, Py_ssize_t n)
{
    switch (code) {
    case ACT_TANH:
        for (Py_ssize_t j = 0; j < n; j++) out[j] = (REAL)1 - y[j] * y[j];
        break;
    case ACT_SIGMOID:
        for (Py_ssize_t j = 0; j < n; j++) out[j] = y[j] * ((REAL)1 - y[j]);
        break;
    case ACT_HARD_SIGMOID:
        for (Py_ssize_t j = 0; j < n; j++) out[j] = (y[j] > 0 && y[j] < 1) ? (REAL)(1.0 / 6.0) : (REAL)0;
        break;
    case ACT_RELU:
        for (Py_ssize_t j = 0; j < n; j++) out[j] = y[j] > 0 ? (REAL)1 : (REAL)0;
        break;
    case ACT_SOFTSIGN:
        for (Py_ssize_t j = 0; j < n; j++) {
            REAL s = (REAL)1 - (y[j] < 0 ? -y[j] : y[j]);
            out[j] = s * s;
        }
        break;
    default:
        for (Py_ssize_t j = 0; j < n; j++) out[j] = (REAL)1;
        break;
    }
}

/* ----------------------------------------------------------------------------------------- */
/* Helpers shared by the three cells.                                                          */
/* ----------------------------------------------------------------------------------------- */

/* The state that enters the recurrent product: h_{t-1}, or h_{t-1} ⊙ rec_mask in `buf`. */
static const REAL *F(rec_input)(const LoopArgs *a, const REAL *h_prev, REAL *buf, Py_ssize_t R)
{
    const REAL *rm = (const REAL *)a->rec_mask;
    if (rm == NULL)
        return h_prev;
    for (Py_ssize_t k = 0; k < a->N * R; k++)
        buf[k] = h_prev[k] * rm[k];
    return buf;
}

/* Masked samples skip step t: s_{t} = s_{t-1} for each state. */
static void F(carry_masked)(const LoopArgs *a, Py_ssize_t t, const REAL *prev, REAL *next,
                            Py_ssize_t width)
{
    const unsigned char *m = a->mask + t * a->NT;
    for (Py_ssize_t n = 0; n < a->N; n++)
        if (!m[n])
            memcpy(next + n * width, prev + n * width, (size_t)width * sizeof(REAL));
}

static int F(step_is_full)(const LoopArgs *a, Py_ssize_t t)
{
    if (a->mask == NULL)
        return 1;
    const unsigned char *m = a->mask + t * a->NT;
    for (Py_ssize_t n = 0; n < a->N; n++)
        if (!m[n])
            return 0;
    return 1;
}

/* ∂L/∂s_t += ∂L_t/∂s_t from the output sequence (a strided view: d_outputs[t]) */
static void F(add_d_output)(const LoopArgs *a, Py_ssize_t t, REAL *ds, Py_ssize_t width)
{
    const REAL *dout = (const REAL *)a->dout;
    if (dout == NULL)
        return;
    for (Py_ssize_t n = 0; n < a->N; n++) {
        const REAL *src = dout + t * a->dout_st + n * a->dout_sn;
        REAL *dst = ds + n * width;
        for (Py_ssize_t j = 0; j < width; j++)
            dst[j] += src[j];
    }
}

/* d_in = d ⊙ m (masked rows zero), as bptt.backward hands the cell d * m */
static const REAL *F(masked_copy)(const LoopArgs *a, Py_ssize_t t, int full, const REAL *d,
                                  REAL *buf, Py_ssize_t width)
{
    if (full)
        return d;
    const unsigned char *m = a->mask + t * a->NT;
    for (Py_ssize_t n = 0; n < a->N; n++) {
        if (m[n])
            memcpy(buf + n * width, d + n * width, (size_t)width * sizeof(REAL));
        else
            memset(buf + n * width, 0, (size_t)width * sizeof(REAL));
    }
    return buf;
}

/* masked rows: the gradient passes through the carry untouched (0 + carried) */
static void F(pass_masked)(const LoopArgs *a, Py_ssize_t t, int full, const REAL *d_carried,
                           REAL *d_new, Py_ssize_t width)
{
    if (full)
        return;
    const unsigned char *m = a->mask + t * a->NT;
    for (Py_ssize_t n = 0; n < a->N; n++)
        if (!m[n])
            memcpy(d_new + n * width, d_carried + n * width, (size_t)width * sizeof(REAL));
}

static void F(mul_rec_mask)(const LoopArgs *a, REAL *d, Py_ssize_t R)
{
    const REAL *rm = (const REAL *)a->rec_mask;
    if (rm == NULL)
        return;
    for (Py_ssize_t k = 0; k < a->N * R; k++)
        d[k] *= rm[k];
}

static REAL *F(xw_row)(const LoopArgs *a, Py_ssize_t t, Py_ssize_t n)
{
    return (REAL *)a->xw + t * a->xw_st + n * a->xw_sn;
}

/* b_in, when the layer left it out of xw: added to one sample's pre-activations while they
 * are in cache (one pass less over the (T, N, G) projections). */
CLONES static void F(add_bias)(const LoopArgs *a, REAL *z, Py_ssize_t off, Py_ssize_t n)
{
    const REAL *b = (const REAL *)a->b_in;
    if (b == NULL)
        return;
    b += off;
    for (Py_ssize_t j = 0; j < n; j++)
        z[j] += b[j];
}

/* The step's gate buffer starts as x_t U (+ b); nothing to copy when the gates are
 * computed in place in xw (the layer lets its own temporary be overwritten). */
static void F(copy_xw)(const LoopArgs *a, Py_ssize_t t, REAL *z, Py_ssize_t G)
{
    for (Py_ssize_t n = 0; n < a->N; n++) {
        const REAL *src = F(xw_row)(a, t, n);
        if (src != z + n * G)
            memcpy(z + n * G, src, (size_t)G * sizeof(REAL));
    }
}

/* Inference with x (T, N, D) and U instead of xw: the step's x_t U, formed here into the
 * scratch rows `xbuf` (N x G) while they are in cache, is what `la` (a copy of the loop's
 * arguments pointing xw at xbuf) reads as this step's xw. */
static void F(x_times_u)(const LoopArgs *a, Products *pr, int slot, Py_ssize_t t, Py_ssize_t G,
                         REAL *xbuf)
{
    const REAL *xt = (const REAL *)a->x + t * a->x_st;    /* rows x_sn apart (a view) */
    F(product)(pr, slot, 0, a->N, G, a->D, xt, a->x_sn, (const REAL *)a->U, G, (REAL)0, xbuf, G);
    if (a->x_keep) {                                       /* the layer's copy, while in cache */
        REAL *keep = (REAL *)a->x_keep + t * a->NT * a->D;
        for (Py_ssize_t n = 0; n < a->N; n++)
            memcpy(keep + n * a->D, xt + n * a->x_sn, (size_t)a->D * sizeof(REAL));
    }
}

/* Inference: h_t (N x Hs, after the masked rows' carry) copied to the output view out[t] */
static void F(put_output)(const LoopArgs *a, Py_ssize_t t, const REAL *h_next, Py_ssize_t Hs)
{
    if (!a->out)
        return;
    REAL *o = (REAL *)a->out + t * a->out_st;
    for (Py_ssize_t n = 0; n < a->N; n++)
        memcpy(o + n * a->out_sn, h_next + n * Hs, (size_t)Hs * sizeof(REAL));
}

static LoopArgs F(xw_from)(const LoopArgs *a, REAL *xbuf, Py_ssize_t G)
{
    LoopArgs la = *a;
    if (xbuf) {
        la.xw = (char *)xbuf;
        la.xw_st = 0;
        la.xw_sn = G;
    }
    return la;
}

/* ========================================================================================= */
/* SimpleRNN:  s_t = σ(x_t U + s_{t-1} W + b)                                                 */
/* ========================================================================================= */
static int F(simple_forward)(const LoopArgs *a, Products *pr)
{
    const Py_ssize_t T = a->T, N = a->N, NT = a->NT, H = a->H;
    const REAL *W = (const REAL *)a->W;
    REAL *s = (REAL *)a->h;
    REAL *buf = (REAL *)malloc((size_t)(N * H * (a->x ? 2 : 1)) * sizeof(REAL));
    if (!buf)
        return -1;
    REAL *xbuf = a->x ? buf + N * H : NULL;
    const LoopArgs la = F(xw_from)(a, xbuf, H);
    for (Py_ssize_t t = 0; t < T; t++) {
        const REAL *s_prev = s + HSLOT(a, t) * NT * H;
        REAL *s_next = s + HSLOT(a, t + 1) * NT * H;
        const REAL *sd = F(rec_input)(a, s_prev, buf, H);
        if (xbuf)
            F(x_times_u)(a, pr, 1, t, H, xbuf);            /* x_t U here (slot 1: U) */
        for (Py_ssize_t n = 0; n < N; n++)                 /* a_t = x_t U + b ... */
            memcpy(s_next + n * H, F(xw_row)(&la, t, n), (size_t)H * sizeof(REAL));
        F(product)(pr, 0, 0, N, H, H, sd, H, W, H, (REAL)1, s_next, H);   /* ... + s_{t-1} W */
        for (Py_ssize_t n = 0; n < N; n++)
            F(add_bias)(a, s_next + n * H, 0, H);
        F(act)(a->act, s_next, N * H);                      /* s_t = σ(a_t) */
        if (!F(step_is_full)(a, t))
            F(carry_masked)(a, t, s_prev, s_next, H);
        F(put_output)(a, t, s_next, H);
    }
    free(buf);
    return 0;
}

static int F(simple_backward)(const LoopArgs *a, Products *pr)
{
    const Py_ssize_t T = a->T, N = a->N, NT = a->NT, H = a->H;
    const REAL *W = (const REAL *)a->W, *s = (const REAL *)a->h;
    REAL *ds = (REAL *)a->dh;                              /* in: ∂L/∂s_T; out: ∂L/∂s_0 */
    REAL *work = (REAL *)malloc((size_t)(3 * N * H) * sizeof(REAL));
    if (!work)
        return -1;
    REAL *d_cur = work, *d_new = work + N * H, *d_in = work + 2 * N * H;
    memcpy(d_cur, ds, (size_t)(N * H) * sizeof(REAL));
    for (Py_ssize_t t = T - 1; t >= 0; t--) {
        F(add_d_output)(a, t, d_cur, H);
        int full = F(step_is_full)(a, t);
        const REAL *d = F(masked_copy)(a, t, full, d_cur, d_in, H);
        REAL *da = (REAL *)a->dxw + t * NT * H;            /* ∂L/∂a_t = δ_t ⊙ σ'(a_t) */
        F(dact)(a->act, s + (t + 1) * NT * H, da, N * H);
        for (Py_ssize_t k = 0; k < N * H; k++)
            da[k] = d[k] * da[k];
        F(product)(pr, 0, 1, N, H, H, da, H, W, H, (REAL)0, d_new, H);    /* ∂L/∂a_t Wᵀ */
        F(mul_rec_mask)(a, d_new, H);
        F(pass_masked)(a, t, full, d_cur, d_new, H);
        REAL *tmp = d_cur; d_cur = d_new; d_new = tmp;
    }
    memcpy(ds, d_cur, (size_t)(N * H) * sizeof(REAL));
    free(work);
    return 0;
}

/* ========================================================================================= */
/* LSTM (gates i, f, g, o), with the optional projection h_t = m_t P                          */
/* ========================================================================================= */
CLONES static void F(lstm_cell_fwd)(const REAL *RESTRICT i, const REAL *RESTRICT f,
                                   const REAL *RESTRICT g, const REAL *RESTRICT o,
                                   const REAL *RESTRICT c_prev, REAL *RESTRICT c,
                                   REAL *RESTRICT act_c, Py_ssize_t H)
{
    for (Py_ssize_t j = 0; j < H; j++) {
        REAL cf = f[j] * c_prev[j];                        /* c_t = f ⊙ c_{t-1} + i ⊙ g */
        c[j] = cf + i[j] * g[j];
        act_c[j] = c[j];
    }
}

CLONES static void F(lstm_mul)(const REAL *RESTRICT o, const REAL *RESTRICT act_c,
                              REAL *RESTRICT out, Py_ssize_t H)
{
    for (Py_ssize_t j = 0; j < H; j++)
        out[j] = o[j] * act_c[j];                          /* o ⊙ σ(c_t) */
}

/* One step's gates and cell for samples n0 .. n1-1 (the rows of z = x_t U + h_{t-1} W) */
typedef struct {
    const LoopArgs *a;
    REAL *z, *act_c, *m, *h_next, *c_next;
    const REAL *c_prev;
    int fused;
} F(LstmRows);

static void F(lstm_rows)(const F(LstmRows) *r, Py_ssize_t n0, Py_ssize_t n1)
{
    const LoopArgs *a = r->a;
    const Py_ssize_t H = a->H, G = 4 * H, Hs = a->proj ? a->proj : H;
    for (Py_ssize_t n = n0; n < n1; n++) {
        REAL *zi = r->z + n * G;
        REAL *i = zi, *f = zi + H, *g = zi + 2 * H, *o = zi + 3 * H;
        REAL *out = a->proj ? r->m + n * H : r->h_next + n * Hs;
#if IS_F32 && defined(RNNKIT_GATES_AVX512)
        if (r->fused) {                                     /* the same, in one pass */
            lstm_gates_avx512(zi, (const float *)a->b_in, r->c_prev + n * H, r->c_next + n * H,
                              r->act_c + n * H, out, H);
            continue;
        }
#endif
        F(add_bias)(a, zi, 0, G);
        F(act)(a->rec_act, i, 2 * H);                       /* i, f */
        F(act)(a->act, g, H);                               /* g */
        F(act)(a->rec_act, o, H);                           /* o */
        F(lstm_cell_fwd)(i, f, g, o, r->c_prev + n * H, r->c_next + n * H, r->act_c + n * H, H);
        F(act)(a->act, r->act_c + n * H, H);                /* σ(c_t) */
        F(lstm_mul)(o, r->act_c + n * H, out, H);
    }
}

#if IS_F32 && defined(RNNKIT_PACKED)
static void F(lstm_rows_job)(void *ctx, int part, int parts)   /* PRODUCTS_TEAM: rows cut */
{
    const F(LstmRows) *r = (const F(LstmRows) *)ctx;
    const Py_ssize_t N = r->a->N;
    F(lstm_rows)(r, N * part / parts, N * (part + 1) / parts);
}
#endif

static int F(lstm_forward)(const LoopArgs *a, Products *pr)
{
    const Py_ssize_t T = a->T, N = a->N, NT = a->NT, H = a->H, G = 4 * a->H;
    const Py_ssize_t Hs = a->proj ? a->proj : H;                 /* size of h */
    const REAL *W = (const REAL *)a->W, *Pr = (const REAL *)a->P;
    const int slot_U = a->proj ? 2 : 1;                       /* loop_packs: W, P, U */
    REAL *h = (REAL *)a->h, *c = (REAL *)a->c;
    REAL *buf = a->rec_mask ? (REAL *)malloc((size_t)(N * Hs) * sizeof(REAL)) : NULL;
    if (a->rec_mask && !buf)
        return -1;
    int fused = 0;                          /* the AVX-512 gates: float32, default activations */
#if IS_F32 && defined(RNNKIT_GATES_AVX512)
    fused = a->rec_act == ACT_SIGMOID && a->act == ACT_TANH && packed_isa() == ISA_AVX512;
#endif
    for (Py_ssize_t t = 0; t < T; t++) {
        const REAL *h_prev = h + HSLOT(a, t) * NT * Hs, *c_prev = c + CSLOT(a, t) * NT * H;
        REAL *h_next = h + HSLOT(a, t + 1) * NT * Hs, *c_next = c + CSLOT(a, t + 1) * NT * H;
        REAL *z = (REAL *)a->gates + STEP(a, t) * NT * G;
        REAL *act_c = (REAL *)a->act_c + STEP(a, t) * NT * H;
        REAL *m = a->proj ? (REAL *)a->m + STEP(a, t) * NT * H : NULL;
        const REAL *hd = F(rec_input)(a, h_prev, buf, Hs);
        if (a->x)                                           /* x_t U here, while z is in cache */
            F(x_times_u)(a, pr, slot_U, t, G, z);
        else
            F(copy_xw)(a, t, z, G);
        F(product)(pr, 0, 0, N, G, Hs, hd, Hs, W, G, (REAL)1, z, G);   /* a = x_t U + b + h_{t-1} W */
        F(LstmRows) rows = {a, z, act_c, m, h_next, c_next, c_prev, fused};
#if IS_F32 && defined(RNNKIT_PACKED)
        if (a->products == PRODUCTS_TEAM && pr->on && pr->pk.threads > 1) {
            team_run(F(lstm_rows_job), &rows, pr->pk.threads);   /* the team's rows */
        } else
#endif
            F(lstm_rows)(&rows, 0, N);
        if (a->proj)
            F(product)(pr, 1, 0, N, Hs, H, m, H, Pr, Hs, (REAL)0, h_next, Hs);   /* h_t = m_t P */
        if (!F(step_is_full)(a, t)) {
            F(carry_masked)(a, t, h_prev, h_next, Hs);
            F(carry_masked)(a, t, c_prev, c_next, H);
        }
        F(put_output)(a, t, h_next, Hs);
    }
    free(buf);
    return 0;
}

/* One sample's reverse step through the gates; `dd` holds 5H scratch values. */
CLONES static void F(lstm_cell_bwd)(const LoopArgs *a, const REAL *RESTRICT zi,
                                   const REAL *RESTRICT act_c, const REAL *RESTRICT c_prev,
                                   const REAL *RESTRICT dm, const REAL *RESTRICT dc_in,
                                   REAL *RESTRICT dxw, REAL *RESTRICT dc_prev, REAL *RESTRICT dd,
                                   Py_ssize_t H)
{
    const REAL *i = zi, *f = zi + H, *g = zi + 2 * H, *o = zi + 3 * H;
    F(dact)(a->rec_act, i, dd, 2 * H);                      /* ρ'(i), ρ'(f) */
    F(dact)(a->act, g, dd + 2 * H, H);                      /* σ'(g) */
    F(dact)(a->rec_act, o, dd + 3 * H, H);                  /* ρ'(o) */
    F(dact)(a->act, act_c, dd + 4 * H, H);                  /* σ'(c_t) */
    for (Py_ssize_t j = 0; j < H; j++) {
        REAL dc = dc_in[j] + (dm[j] * o[j]) * dd[4 * H + j];   /* ∂L/∂c_t += ∂L/∂m ⊙ o ⊙ σ'(c_t) */
        dxw[j] = (dc * g[j]) * dd[j];                           /* ∂L/∂a_i */
        dxw[H + j] = (dc * c_prev[j]) * dd[H + j];              /* ∂L/∂a_f */
        dxw[2 * H + j] = (dc * i[j]) * dd[2 * H + j];           /* ∂L/∂a_g */
        dxw[3 * H + j] = (dm[j] * act_c[j]) * dd[3 * H + j];    /* ∂L/∂a_o */
        dc_prev[j] = dc * f[j];                                 /* ∂L/∂c_{t-1} */
    }
}

/* One reverse step through the gates for samples n0 .. n1-1, with 5H scratch values `dd` */
typedef struct {
    const LoopArgs *a;
    const REAL *z, *act_c, *c_t, *dm, *dc;
    REAL *dxw, *dc_new, *dd;
} F(LstmBackRows);

static void F(lstm_back_rows)(const F(LstmBackRows) *r, Py_ssize_t n0, Py_ssize_t n1, REAL *dd)
{
    const Py_ssize_t H = r->a->H, G = 4 * H;
    for (Py_ssize_t n = n0; n < n1; n++)
        F(lstm_cell_bwd)(r->a, r->z + n * G, r->act_c + n * H, r->c_t + n * H, r->dm + n * H,
                         r->dc + n * H, r->dxw + n * G, r->dc_new + n * H, dd, H);
}

#if IS_F32 && defined(RNNKIT_PACKED)
static void F(lstm_back_rows_job)(void *ctx, int part, int parts)   /* PRODUCTS_TEAM */
{
    const F(LstmBackRows) *r = (const F(LstmBackRows) *)ctx;
    const Py_ssize_t N = r->a->N;
    F(lstm_back_rows)(r, N * part / parts, N * (part + 1) / parts, r->dd + part * 5 * r->a->H);
}
#endif

static int F(lstm_backward)(const LoopArgs *a, Products *pr)
{
    const Py_ssize_t T = a->T, N = a->N, NT = a->NT, H = a->H, G = 4 * a->H;
    const Py_ssize_t Hs = a->proj ? a->proj : H;
    const REAL *W = (const REAL *)a->W, *Pr = (const REAL *)a->P, *c = (const REAL *)a->c;
    REAL *dh_out = (REAL *)a->dh, *dc_out = (REAL *)a->dc;
    size_t count = (size_t)(3 * N * Hs + 4 * N * H + 5 * H * MAX_CHUNKS);   /* dd: a thread's */
    REAL *work = (REAL *)malloc(count * sizeof(REAL));
    if (!work)
        return -1;
    REAL *dh_cur = work, *dh_new = dh_cur + N * Hs, *dh_in = dh_new + N * Hs;
    REAL *dc_cur = dh_in + N * Hs, *dc_new = dc_cur + N * H, *dc_in = dc_new + N * H;
    REAL *dm_buf = dc_in + N * H, *dd = dm_buf + N * H;
    memcpy(dh_cur, dh_out, (size_t)(N * Hs) * sizeof(REAL));
    memcpy(dc_cur, dc_out, (size_t)(N * H) * sizeof(REAL));
    for (Py_ssize_t t = T - 1; t >= 0; t--) {
        F(add_d_output)(a, t, dh_cur, Hs);
        int full = F(step_is_full)(a, t);
        const REAL *dh = F(masked_copy)(a, t, full, dh_cur, dh_in, Hs);
        const REAL *dc = F(masked_copy)(a, t, full, dc_cur, dc_in, H);
        const REAL *z = (const REAL *)a->gates + t * NT * G;
        const REAL *act_c = (const REAL *)a->act_c + t * NT * H;
        REAL *dxw = (REAL *)a->dxw + t * NT * G;
        const REAL *dm = dh;
        if (a->proj) {
            memcpy((REAL *)a->dh_cache + t * NT * Hs, dh, (size_t)(N * Hs) * sizeof(REAL));
            F(product)(pr, 1, 1, N, H, Hs, dh, Hs, Pr, Hs, (REAL)0, dm_buf, H);   /* ∂L/∂m = ∂L/∂h Pᵀ */
            dm = dm_buf;
        }
        F(LstmBackRows) rows = {a, z, act_c, c + t * NT * H, dm, dc, dxw, dc_new, dd};
#if IS_F32 && defined(RNNKIT_PACKED)
        if (a->products == PRODUCTS_TEAM && pr->on && pr->pk.threads > 1) {
            team_run(F(lstm_back_rows_job), &rows, pr->pk.threads);   /* the team's rows */
        } else
#endif
            F(lstm_back_rows)(&rows, 0, N, dd);
        F(product)(pr, 0, 1, N, Hs, G, dxw, G, W, G, (REAL)0, dh_new, Hs);   /* ∂L/∂h_{t-1} = ∂L/∂a Wᵀ */
        F(mul_rec_mask)(a, dh_new, Hs);
        F(pass_masked)(a, t, full, dh_cur, dh_new, Hs);
        F(pass_masked)(a, t, full, dc_cur, dc_new, H);
        REAL *tmp = dh_cur; dh_cur = dh_new; dh_new = tmp;
        tmp = dc_cur; dc_cur = dc_new; dc_new = tmp;
    }
    memcpy(dh_out, dh_cur, (size_t)(N * Hs) * sizeof(REAL));
    memcpy(dc_out, dc_cur, (size_t)(N * H) * sizeof(REAL));
    free(work);
    return 0;
}

/* ========================================================================================= */
/* GRU (gates z, r, n), reset_after (PyTorch, cuDNN) or before (Keras's other variant)        */
/* ========================================================================================= */
CLONES static void F(gru_new_state)(const REAL *RESTRICT h_prev, const REAL *RESTRICT z,
                                   const REAL *RESTRICT nn, REAL *RESTRICT h, Py_ssize_t H)
{
    for (Py_ssize_t j = 0; j < H; j++)                     /* h_t = n + z ⊙ (h_{t-1} - n) */
        h[j] = (h_prev[j] - nn[j]) * z[j] + nn[j];
}

static int F(gru_forward)(const LoopArgs *a, Products *pr)
{
    const Py_ssize_t T = a->T, N = a->N, NT = a->NT, H = a->H, G = 3 * a->H;
    const REAL *W = (const REAL *)a->W, *b_rec = (const REAL *)a->b_rec;
    REAL *h = (REAL *)a->h;
    /* rec_mask buffer (N x H); reset_after: the step's h_{t-1} W + b_rec (N x G); with x:
     * the step's x_t U (N x G) */
    REAL *buf = (REAL *)malloc((size_t)(N * H + (a->reset_after ? N * G : 0)
                                        + (a->x ? N * G : 0) + 1) * sizeof(REAL));
    if (!buf)
        return -1;
    REAL *hw = buf + N * H;
    REAL *xbuf = a->x ? hw + (a->reset_after ? N * G : 0) : NULL;
    const LoopArgs la = F(xw_from)(a, xbuf, G);
    const int slot_U = a->reset_after ? 1 : 2;              /* loop_packs: W (or W_zr, W_n), U */
    for (Py_ssize_t t = 0; t < T; t++) {
        const REAL *h_prev = h + HSLOT(a, t) * NT * H;
        REAL *h_next = h + HSLOT(a, t + 1) * NT * H;
        REAL *gt = (REAL *)a->gates + STEP(a, t) * NT * G;
        const REAL *hd = F(rec_input)(a, h_prev, buf, H);
        if (xbuf)
            F(x_times_u)(a, pr, slot_U, t, G, xbuf);        /* x_t U here, while it is in cache */
        if (a->reset_after) {
            REAL *hn = (REAL *)a->hn + STEP(a, t) * NT * H;   /* kept for the reverse step */
            for (Py_ssize_t n = 0; n < N; n++) {
                if (b_rec)
                    memcpy(hw + n * G, b_rec, (size_t)G * sizeof(REAL));
                else
                    memset(hw + n * G, 0, (size_t)G * sizeof(REAL));
            }
            F(product)(pr, 0, 0, N, G, H, hd, H, W, G, (REAL)1, hw, G);   /* h_{t-1} W + b_rec */
            for (Py_ssize_t n = 0; n < N; n++) {
                REAL *g = gt + n * G, *hwn = hw + n * G;
                const REAL *x = F(xw_row)(&la, t, n);
                for (Py_ssize_t j = 0; j < 2 * H; j++)
                    g[j] = x[j] + hwn[j];
                F(add_bias)(a, g, 0, 2 * H);
                F(act)(a->rec_act, g, 2 * H);               /* z, r */
                memcpy(hn + n * H, hwn + 2 * H, (size_t)H * sizeof(REAL));
                for (Py_ssize_t j = 0; j < H; j++)          /* r ⊙ h_n + x_n */
                    g[2 * H + j] = g[H + j] * hwn[2 * H + j] + x[2 * H + j];
                F(add_bias)(a, g + 2 * H, 2 * H, H);
                F(act)(a->act, g + 2 * H, H);               /* n */
                F(gru_new_state)(h_prev + n * H, g, g + 2 * H, h_next + n * H, H);
            }
        } else {
            REAL *rh = (REAL *)a->rh + STEP(a, t) * NT * H;
            F(copy_xw)(&la, t, gt, G);
            F(product)(pr, 0, 0, N, 2 * H, H, hd, H, W, G, (REAL)1, gt, G);   /* x U_zr + h_{t-1} W_zr */
            for (Py_ssize_t n = 0; n < N; n++) {
                REAL *g = gt + n * G;
                F(add_bias)(a, g, 0, 2 * H);
                F(act)(a->rec_act, g, 2 * H);               /* z, r */
                for (Py_ssize_t j = 0; j < H; j++)          /* r ⊙ h_{t-1} */
                    rh[n * H + j] = g[H + j] * hd[n * H + j];
            }
            F(product)(pr, 1, 0, N, H, H, rh, H, W + 2 * H, G, (REAL)1, gt + 2 * H, G);  /* + (r ⊙ h) W_n */
            for (Py_ssize_t n = 0; n < N; n++) {
                REAL *g = gt + n * G;
                F(add_bias)(a, g + 2 * H, 2 * H, H);
                F(act)(a->act, g + 2 * H, H);               /* n */
                F(gru_new_state)(h_prev + n * H, g, g + 2 * H, h_next + n * H, H);
            }
        }
        if (!F(step_is_full)(a, t))
            F(carry_masked)(a, t, h_prev, h_next, H);
        F(put_output)(a, t, h_next, H);
    }
    free(buf);
    return 0;
}

/* The gate part of one sample's reverse step: ∂L/∂a_z and ∂L/∂a_n; `dd` holds 2H values. */
CLONES static void F(gru_bwd_zn)(const LoopArgs *a, const REAL *RESTRICT g,
                                const REAL *RESTRICT h_prev, const REAL *RESTRICT dh,
                                REAL *RESTRICT dxw, REAL *RESTRICT dd, Py_ssize_t H)
{
    const REAL *z = g, *nn = g + 2 * H;
    F(dact)(a->rec_act, z, dd, H);
    F(dact)(a->act, nn, dd + H, H);
    for (Py_ssize_t j = 0; j < H; j++) {
        dxw[j] = (dh[j] * (h_prev[j] - nn[j])) * dd[j];             /* ∂L/∂a_z */
        dxw[2 * H + j] = (dh[j] * ((REAL)1 - z[j])) * dd[H + j];    /* ∂L/∂a_n */
    }
}

/* reset_after: ∂L/∂a_r = ∂L/∂a_n ⊙ h_n ⊙ ρ'(r) (dd), and ∂L/∂h_n = ∂L/∂a_n ⊙ r, kept in dhn and
 * in the n part of dw (∂L/∂(h_{t-1} W)) */
CLONES static void F(gru_bwd_r_after)(const REAL *RESTRICT r, const REAL *RESTRICT hn,
                                     const REAL *RESTRICT dd, REAL *RESTRICT dx,
                                     REAL *RESTRICT dw, REAL *RESTRICT dhn, Py_ssize_t H)
{
    for (Py_ssize_t j = 0; j < H; j++) {
        REAL dan = dx[2 * H + j];
        dx[H + j] = (dan * hn[j]) * dd[j];                          /* ∂L/∂a_r */
        dw[2 * H + j] = dhn[j] = dan * r[j];                        /* ∂L/∂h_n */
    }
}

/* reset before: with drh = ∂L/∂(r ⊙ h) in, ∂L/∂a_r = drh ⊙ h_{t-1} (⊙ rec_mask) ⊙ ρ'(r) (dd),
 * and drh ⊙ r out (h_{t-1}'s share through r ⊙ h) */
CLONES static void F(gru_bwd_r_before)(const REAL *RESTRICT r, const REAL *RESTRICT hp,
                                      const REAL *RESTRICT rmn, const REAL *RESTRICT dd,
                                      REAL *RESTRICT dx, REAL *RESTRICT drh, Py_ssize_t H)
{
    if (rmn)
        for (Py_ssize_t j = 0; j < H; j++) {
            dx[H + j] = (drh[j] * (hp[j] * rmn[j])) * dd[j];         /* ∂L/∂a_r */
            drh[j] = drh[j] * r[j];                                  /* ∂L/∂(r⊙h) ⊙ r */
        }
    else
        for (Py_ssize_t j = 0; j < H; j++) {
            dx[H + j] = (drh[j] * hp[j]) * dd[j];
            drh[j] = drh[j] * r[j];
        }
}

/* out += d ⊙ z */
CLONES static void F(add_product)(REAL *RESTRICT out, const REAL *RESTRICT d,
                                 const REAL *RESTRICT z, Py_ssize_t H)
{
    for (Py_ssize_t j = 0; j < H; j++)
        out[j] += d[j] * z[j];
}

static int F(gru_backward)(const LoopArgs *a, Products *pr)
{
    const Py_ssize_t T = a->T, N = a->N, NT = a->NT, H = a->H, G = 3 * a->H;
    const REAL *W = (const REAL *)a->W, *hs = (const REAL *)a->h;
    const REAL *rm = (const REAL *)a->rec_mask;
    REAL *dh_out = (REAL *)a->dh;
    size_t count = (size_t)(3 * N * H + 2 * H + (a->reset_after ? N * G : 0));
    REAL *work = (REAL *)malloc(count * sizeof(REAL));
    if (!work)
        return -1;
    REAL *d_cur = work, *d_new = d_cur + N * H, *d_in = d_new + N * H, *dd = d_in + N * H;
    REAL *dhw = dd + 2 * H;                    /* reset_after: the step's ∂L/∂(h_{t-1} W), N x G */
    memcpy(d_cur, dh_out, (size_t)(N * H) * sizeof(REAL));
    for (Py_ssize_t t = T - 1; t >= 0; t--) {
        F(add_d_output)(a, t, d_cur, H);
        int full = F(step_is_full)(a, t);
        const REAL *dh = F(masked_copy)(a, t, full, d_cur, d_in, H);
        const REAL *gt = (const REAL *)a->gates + t * NT * G;
        const REAL *h_prev = hs + t * NT * H;
        REAL *dxw = (REAL *)a->dxw + t * NT * G;
        for (Py_ssize_t n = 0; n < N; n++)
            F(gru_bwd_zn)(a, gt + n * G, h_prev + n * H, dh + n * H, dxw + n * G, dd, H);
        if (a->reset_after) {
            const REAL *hn = (const REAL *)a->hn + t * NT * H;
            REAL *dhn = (REAL *)a->dhn + t * NT * H;
            for (Py_ssize_t n = 0; n < N; n++) {
                const REAL *r = gt + n * G + H;
                REAL *dx = dxw + n * G, *dw = dhw + n * G;
                F(dact)(a->rec_act, r, dd, H);
                F(gru_bwd_r_after)(r, hn + n * H, dd, dx, dw, dhn + n * H, H);
                memcpy(dw, dx, (size_t)(2 * H) * sizeof(REAL));         /* z, r */
            }
            F(product)(pr, 0, 1, N, H, G, dhw, G, W, G, (REAL)0, d_new, H);      /* ∂L/∂(h W) Wᵀ */
        } else {
            /* ∂L/∂(r ⊙ h_{t-1}) = ∂L/∂a_n W_nᵀ */
            F(product)(pr, 1, 1, N, H, H, dxw + 2 * H, G, W + 2 * H, G, (REAL)0, d_new, H);
            for (Py_ssize_t n = 0; n < N; n++) {
                const REAL *r = gt + n * G + H;
                F(dact)(a->rec_act, r, dd, H);
                F(gru_bwd_r_before)(r, h_prev + n * H, rm ? rm + n * H : NULL, dd, dxw + n * G,
                                    d_new + n * H, H);
            }
            F(product)(pr, 0, 1, N, H, 2 * H, dxw, G, W, G, (REAL)1, d_new, H);  /* + ∂L/∂a_zr W_zrᵀ */
        }
        F(mul_rec_mask)(a, d_new, H);
        for (Py_ssize_t n = 0; n < N; n++)                             /* + ∂L/∂h_t ⊙ z */
            F(add_product)(d_new + n * H, dh + n * H, gt + n * G, H);
        F(pass_masked)(a, t, full, d_cur, d_new, H);
        REAL *tmp = d_cur; d_cur = d_new; d_new = tmp;
    }
    memcpy(dh_out, d_cur, (size_t)(N * H) * sizeof(REAL));
    free(work);
    return 0;
}

/* ========================================================================================= */
/* Running a loop: the matrices it multiplies by at every step are packed once; with more    */
/* than one thread the batch is cut into chunks that run the whole loop side by side (the    */
/* samples of a batch never meet inside the recurrence: no synchronisation at all).          */
/* ========================================================================================= */
static int F(loop_packs)(const LoopArgs *a, int cell, int backward, PackSpec *sp, Py_ssize_t *Kmax)
{
    const Py_ssize_t H = a->H, Hs = a->proj ? a->proj : H;
    const REAL *W = (const REAL *)a->W;
    int n = 0;
    if (cell == CELL_SIMPLE) {
        sp[n++] = (PackSpec){W, backward, H, H, H};                     /* W or Wᵀ */
        *Kmax = H;
        if (!backward && a->x) {                                        /* U */
            sp[n++] = (PackSpec){(const REAL *)a->U, 0, a->D, H, H};
            *Kmax = a->D > H ? a->D : H;
        }
    } else if (cell == CELL_LSTM) {
        const Py_ssize_t G = 4 * H;
        const REAL *Pr = (const REAL *)a->P;
        if (!backward) {
            sp[n++] = (PackSpec){W, 0, Hs, G, G};                       /* W */
            if (a->proj)
                sp[n++] = (PackSpec){Pr, 0, H, Hs, Hs};                 /* P */
            *Kmax = H;
            if (a->x) {                                                 /* U */
                sp[n++] = (PackSpec){(const REAL *)a->U, 0, a->D, G, G};
                *Kmax = a->D > H ? a->D : H;
            }
        } else {
            sp[n++] = (PackSpec){W, 1, G, Hs, G};                       /* Wᵀ */
            if (a->proj)
                sp[n++] = (PackSpec){Pr, 1, Hs, H, Hs};                 /* Pᵀ */
            *Kmax = G;
        }
    } else {
        const Py_ssize_t G = 3 * H;
        if (!backward) {                                                /* W, or W_zr and W_n */
            sp[n++] = (PackSpec){W, 0, H, a->reset_after ? G : 2 * H, G};
            if (!a->reset_after)
                sp[n++] = (PackSpec){W + 2 * H, 0, H, H, G};
            *Kmax = H;
            if (a->x) {                                                 /* U */
                sp[n++] = (PackSpec){(const REAL *)a->U, 0, a->D, G, G};
                *Kmax = a->D > H ? a->D : H;
            }
        } else {                                                        /* Wᵀ, or W_zrᵀ and W_nᵀ */
            sp[n++] = (PackSpec){W, 1, a->reset_after ? G : 2 * H, H, G};
            if (!a->reset_after)
                sp[n++] = (PackSpec){W + 2 * H, 1, H, H, G};
            *Kmax = G;
        }
    }
    return n;
}

/* The arguments of samples n0 .. n1-1: every (T, N, ·) buffer keeps its step stride NT. */
static LoopArgs F(chunk_args)(const LoopArgs *a, int cell, Py_ssize_t n0, Py_ssize_t n1)
{
    LoopArgs ca = *a;
    const Py_ssize_t H = a->H, Hs = a->proj ? a->proj : H;
    const Py_ssize_t G = (cell == CELL_LSTM ? 4 : cell == CELL_GRU ? 3 : 1) * H;
    ca.N = n1 - n0;
#define OFFSET(field, width) \
    if (ca.field) ca.field += (size_t)(n0 * (width)) * sizeof(REAL)
    OFFSET(xw, a->xw_sn); OFFSET(x, a->x_sn); OFFSET(x_keep, a->D); OFFSET(out, a->out_sn);
    OFFSET(dout, a->dout_sn);
    OFFSET(h, Hs); OFFSET(c, H); OFFSET(gates, G); OFFSET(act_c, H); OFFSET(m, H);
    OFFSET(hn, H); OFFSET(rh, H); OFFSET(dh_cache, Hs); OFFSET(dhn, H); OFFSET(dxw, G);
    OFFSET(rec_mask, Hs); OFFSET(dh, Hs); OFFSET(dc, H);
#undef OFFSET
    if (ca.mask)
        ca.mask += n0;
    return ca;
}

typedef int (*F(loop_fn))(const LoopArgs *, Products *);

typedef struct {
    F(loop_fn) fn;
    const LoopArgs *a;
    int cell;
    const Products *loop;
    Py_ssize_t Kmax;
    int rc[MAX_CHUNKS];
} F(ChunkJob);

static void F(chunk_job)(void *ctx, int part, int parts)
{
    F(ChunkJob) *job = (F(ChunkJob) *)ctx;
    Py_ssize_t N = job->a->N, n0 = N * part / parts, n1 = N * (part + 1) / parts;
    LoopArgs ca = F(chunk_args)(job->a, job->cell, n0, n1);
    Products pr;
    F(products_borrow)(&pr, job->loop, n1 - n0, job->Kmax);
    job->rc[part] = job->fn(&ca, &pr);
    F(products_close)(&pr);
}

static int F(run_loop)(F(loop_fn) fn, const LoopArgs *a, int cell, int backward)
{
    PackSpec sp[MAX_PACKED];
    Py_ssize_t Kmax = 1;
    int ns = F(loop_packs)(a, cell, backward, sp, &Kmax);
    int chunks = a->products == PRODUCTS_TEAM ? 1
                 : chunk_count(a->N, a->threads, IS_F32, a->own_threads);
    Products loop;
    Py_ssize_t rows = (a->N + chunks - 1) / chunks;
    F(products_open)(&loop, rows, Kmax, chunks > 1 ? 1 : a->threads, a->own_threads,
                     a->products, a->prefetch);
    for (int i = 0; i < ns; i++)
        F(products_pack)(&loop, i, &sp[i], chunks);
    int rc;
    if (chunks <= 1) {
        rc = fn(a, &loop);
    } else {
        F(ChunkJob) job = {fn, a, cell, &loop, Kmax, {0}};
        team_run_chunks(F(chunk_job), &job, chunks);
        rc = 0;
        for (int i = 0; i < chunks; i++)
            if (job.rc[i] < 0)
                rc = job.rc[i];
        chunks_done();
    }
    F(products_close)(&loop);
    return rc;
}

/* Time one step's recurrent products as a loop would run them with `mode`: `rows` rows a
 * product, on `chunks` chunks of the batch at once where the loop cuts it (each chunk on its
 * own thread, all reading the same weights: they share the caches and the memory as in the
 * loop), else on the loop's `threads`; the products op(B_i) (K[i] x Nc[i], transposed
 * where tr[i]) of a state A (rows x max K), weights and state filled with small values.
 * One step untimed first (the team wakes, the weights come into cache; three for weights over
 * TIME_WARM_BYTES), then `reps` steps;
 * out[r]: the seconds of step r (the first chunk's); out[reps]: of the loop's setup before
 * its first step (packing the weights, where the way packs them).  Returns 0, or -1 when
 * there is no memory. */
#define TIME_WARM_BYTES (4.0 * (1 << 20))
typedef struct {
    Py_ssize_t rows, Kmax, nc;
    int ns, reps;
    const Py_ssize_t *K, *Nc;
    const int *tr;
    REAL *A, *B, *C;                    /* A: chunks x rows x Kmax; C: chunks x nc */
    const Products *loop;
    double *out;
} F(TimeJob);

static void F(time_steps)(const F(TimeJob) *j, Products *pr, int part, double *out)
{
    const REAL *A = j->A + part * j->rows * j->Kmax;
    double bytes = 0;
    for (int i = 0; i < j->ns; i++)
        bytes += (double)j->K[i] * (double)j->Nc[i] * sizeof(REAL);
    /* weights larger than the cores' L2 come from memory at the first steps, and only after
     * two or three passes from L3, as in a loop's steady state (AMD's L3 holds what L2
     * evicts): LSTM(1024) at one row, packed, 280 205 129 108 103 ... µs a step */
    const int warm = bytes > TIME_WARM_BYTES ? 3 : 1;
    for (int r = -warm; r < j->reps; r++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        REAL *bi = j->B, *ci = j->C + part * j->nc;
        for (int i = 0; i < j->ns; i++) {
            F(product)(pr, i, j->tr[i], j->rows, j->Nc[i], j->K[i], A, j->Kmax, bi,
                       j->tr[i] ? j->K[i] : j->Nc[i], (REAL)1, ci, j->Nc[i]);
            bi += j->K[i] * j->Nc[i];
            ci += j->rows * j->Nc[i];
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r >= 0 && out)
            out[r] = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
}

static void F(time_chunk)(void *ctx, int part, int parts)
{
    F(TimeJob) *j = (F(TimeJob) *)ctx;
    Products pr;
    (void)parts;
    F(products_borrow)(&pr, j->loop, j->rows, j->Kmax);
    F(time_steps)(j, &pr, part, part == 0 ? j->out : NULL);
    F(products_close)(&pr);
}

static int F(time_products)(int mode, int prefetch, Py_ssize_t rows, int chunks, int threads,
                            int own_threads, int ns, const Py_ssize_t *K, const Py_ssize_t *Nc, const int *tr,
                            int reps, double *out)
{
    Py_ssize_t Kmax = 1, nb = 0, nc = 0;
    for (int i = 0; i < ns; i++) {
        Kmax = K[i] > Kmax ? K[i] : Kmax;
        nb += K[i] * Nc[i];
        nc += rows * Nc[i];
    }
    if (chunks > 1)                     /* the team, as run_loop takes it (else one chunk alone) */
        chunks = chunk_count(rows * chunks, chunks, IS_F32, own_threads);
    if (chunks < 1)
        chunks = 1;
    size_t n = (size_t)(chunks * rows * Kmax + nb + chunks * nc);
    REAL *A = (REAL *)malloc(n * sizeof(REAL));
    if (!A) {
        if (chunks > 1)
            chunks_done();
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        A[i] = (REAL)(0.001 * (double)(i % 7 + 1));
    F(TimeJob) j = {rows, Kmax, nc, ns, reps, K, Nc, tr, A, A + chunks * rows * Kmax,
                    A + chunks * rows * Kmax + nb, NULL, out};
    Products pr;
    for (int first = 1; first >= 0; first--) {    /* the second setup is a loop's typical one: */
        struct timespec s0, s1;                    /* the first one's fresh pages fault in */
        clock_gettime(CLOCK_MONOTONIC, &s0);
        F(products_open)(&pr, rows, Kmax, chunks > 1 ? 1 : threads, own_threads, mode, prefetch);
        REAL *b = j.B;
        for (int i = 0; i < ns; i++) {
            PackSpec sp = {b, tr[i], K[i], Nc[i], tr[i] ? K[i] : Nc[i]};
            F(products_pack)(&pr, i, &sp, chunks);
            b += K[i] * Nc[i];
        }
        clock_gettime(CLOCK_MONOTONIC, &s1);
        out[reps] = (double)(s1.tv_sec - s0.tv_sec) + 1e-9 * (double)(s1.tv_nsec - s0.tv_nsec);
        if (first)
            F(products_close)(&pr);
    }
    if (chunks > 1) {
        j.loop = &pr;
        team_run_chunks(F(time_chunk), &j, chunks);
        chunks_done();
    } else {
        F(time_steps)(&j, &pr, 0, out);
    }
    F(products_close)(&pr);
    free(A);
    return 0;
}

#undef F
