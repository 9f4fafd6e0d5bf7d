/* float32 recurrent products with the weights packed once per loop, on a small team of
 * threads.
 *
 * Inside the time loop the same weights W multiply a new small state every step.  A BLAS
 * call repacks W every time (at N = 32, H = 1024 that repacking costs a third of the
 * product); here W (or Wᵀ) is packed once per forward or reverse loop into panels of NR
 * columns, K rows in blocks of KC, and a register kernel multiplies them with the step's
 * state (the AVX2 kernel packs it per step, it is small; the AVX-512 kernel reads it in
 * place).  Two register kernels, chosen once per process
 * from the CPU (RNNKIT_PACKED_ISA=avx2 keeps the first on a CPU that has both):
 *
 *   AVX2 + FMA:  MR x NR = 4 x 24 (3 ymm a row of B, 12 accumulators), KC = 256
 *   AVX-512F:    MR x NR = 8 x 32 (2 zmm a row of B, 16 accumulators), KC = 256
 *
 * The AVX-512 tile doubles the floats a register and the rows a tile: on a CPU with two
 * 512-bit FMA units it is the only way to more than half of the machine's peak.  A loop of
 * one row (a batch of one) packs its weights in wide panels instead, for a kernel that
 * streams them (gemv_x128, gemv_x96).
 *
 * Threads (as many as NumPy's BLAS is told to use, threadpoolctl limits included): the
 * samples of a batch never meet inside the recurrence, so a batch of 16 to 64 is cut into
 * chunks that run the whole loop side by side, one per thread, with no synchronisation
 * until the loop ends (run_loop in _loops_impl.h); a smaller batch shares each product's
 * panels out among the threads instead (one hand-off and one join per product).
 *
 * BLAS's own pool threads would compete with the team (they spin after each call), so the
 * layers hold BLAS at one thread while they run (rnnkit/kernels/threads.py).
 *
 * Used for float32 on x86-64 Linux with AVX2 and FMA (checked at run time) where it measures
 * faster than BLAS (rnnkit/kernels/choose.py); every other product goes to BLAS (F(gemm) in
 * _loops_impl.h).
 */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(RNNKIT_NO_PACKED)
#define RNNKIT_PACKED 1
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#define MR 4                                  /* rows of the AVX2 register kernel */
#define NR 24                                 /* columns of its panel (3 ymm registers) */
#define MR16 8                                /* rows of the AVX-512 register kernel */
#define NR16 32                               /* columns of its panel (2 zmm registers) */
#define NRW16 128                             /* one-row products' wide panels: AVX-512 */
#define NRW 96                                /* and AVX2 (gemv_x128, gemv_x96) */
#define MR_MAX 8
#define NR_MAX 32
#define KC 256                                /* rows of a panel per block (24 or 32 KB) */
#define MAX_TEAM MAX_CHUNKS
#define CHUNK_MIN_ROWS 8                      /* a chunk of the batch has at least 8 samples */
#define PACKED_MAX_ROWS 64                    /* above: BLAS blocks the products better */
#ifndef PREFETCH_MAX_ROWS                     /* (benchmarks/packed_gemm.c sets them) */
#define PREFETCH_MAX_ROWS 16                  /* prefetch the weights for products of <= 16 rows */
#endif
#ifndef PREFETCH_MIN_BYTES
#define PREFETCH_MIN_BYTES (12 << 20)         /* whose packed weights are larger than 12 MB */
#endif
#define PREFETCH_ALL_MIN_BYTES (1 << 20)      /* prefetch_all: every product over 1 MB */

/* ---- packed weights: blocks of KC rows, panels of NR columns, zero padded */
typedef struct {
    Py_ssize_t K, Nc, np;                     /* np = number of panels */
    int nr, mr;                               /* the kernel's tile: NR, MR or NR16, MR16 */
    int one_row;                              /* panels of NRW(16) columns over all K rows */
    int prefetch_all;                         /* prefetch the next panel whatever the rows
                                                 (weights over PREFETCH_ALL_MIN_BYTES) */
    size_t bytes;                             /* of data (a kept buffer may be larger) */
    float *data;                              /* block kb, panel p at (kb*KC*np + p*kc) * nr */
} PackedB;

enum { ISA_NONE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
static int packed_cpu = -1;                   /* -1: not asked yet, else ISA_* */
static int packed_cap = ISA_AVX512;           /* the most a caller allows (set_packed) */

/* The register kernel this CPU runs: ISA_AVX512 where it has AVX-512F, ISA_AVX2 with AVX2
 * and FMA, else none; RNNKIT_NO_PACKED turns it off, RNNKIT_PACKED_ISA=avx2 caps it. */
static int packed_isa(void)
{
    if (packed_cpu < 0) {
        __builtin_cpu_init();
        const char *cap = getenv("RNNKIT_PACKED_ISA");
        int isa = ISA_NONE;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            isa = __builtin_cpu_supports("avx512f") ? ISA_AVX512 : ISA_AVX2;
        if (cap && strcmp(cap, "avx2") == 0 && isa > ISA_AVX2)
            isa = ISA_AVX2;
        if (isa > packed_cap)
            isa = packed_cap;
        packed_cpu = getenv("RNNKIT_NO_PACKED") == NULL ? isa : ISA_NONE;
    }
    return packed_cpu;
}

static int packed_available(void) { return packed_isa() != ISA_NONE; }

/* ---- memory for packed weights.  Every loop packs its weights afresh (they may have
 * changed since the last one), into a buffer as large as the weights.  A fresh buffer of
 * 16 MB costs 4096 page faults, each zeroing its page: LSTM(1024)'s 6-7 ms a forward, more
 * than fifty steps of its one-row product.  So buffers of at least HUGE_MIN_BYTES are asked
 * for in huge pages (eight faults for 16 MB, and fewer TLB misses as the steps stream
 * through them) and, when freed, kept for the next loop: up to SPARE_MAX of them and
 * SPARE_MAX_BYTES in all, the first that fits taken (at most twice the size asked for).
 * rnnkit.kernels.release_memory() (pack_release) hands them back. */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN_BYTES ((size_t)4 << 20)
#define SPARE_MAX 4
#define SPARE_MAX_BYTES ((size_t)256 << 20)

static struct { void *p; size_t bytes; } spare[SPARE_MAX];
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;

/* A buffer of at least *bytes (a kept one, whose size goes to *bytes, or a new one) */
static void *pack_alloc(size_t *bytes)
{
    void *p = NULL;
    const size_t n = *bytes;
    if (n >= HUGE_MIN_BYTES) {
        pthread_mutex_lock(&spare_lock);
        for (int i = 0; i < SPARE_MAX && !p; i++)
            if (spare[i].p && spare[i].bytes >= n && spare[i].bytes <= 2 * n) {
                p = spare[i].p;
                *bytes = spare[i].bytes;
                spare[i].p = NULL;
            }
        pthread_mutex_unlock(&spare_lock);
        if (p)
            return p;
    }
    if (posix_memalign(&p, n >= HUGE_MIN_BYTES ? HUGE_PAGE : 64, n ? n : 64) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (n >= HUGE_MIN_BYTES)
        madvise(p, n / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
    return p;
}

static void pack_free(void *p, size_t bytes)
{
    if (p && bytes >= HUGE_MIN_BYTES) {
        pthread_mutex_lock(&spare_lock);
        size_t kept = 0;
        for (int i = 0; i < SPARE_MAX; i++)
            kept += spare[i].p ? spare[i].bytes : 0;
        for (int i = 0; i < SPARE_MAX && p && kept + bytes <= SPARE_MAX_BYTES; i++)
            if (!spare[i].p) {
                spare[i].p = p;
                spare[i].bytes = bytes;
                p = NULL;
            }
        pthread_mutex_unlock(&spare_lock);
    }
    free(p);
}

/* Free the kept buffers; returns the bytes handed back. */
static size_t pack_release(void)
{
    size_t n = 0;
    pthread_mutex_lock(&spare_lock);
    for (int i = 0; i < SPARE_MAX; i++) {
        n += spare[i].p ? spare[i].bytes : 0;
        free(spare[i].p);
        spare[i].p = NULL;
    }
    pthread_mutex_unlock(&spare_lock);
    return n;
}

/* Panels p0..p1 of op(B) (K x Nc) packed: B itself (stored K x Nc) or Bᵀ (B stored Nc x K),
 * leading dimension ldb, into pb's layout (set by pack_b). */
static void pack_panels(const PackedB *pb, const float *B, int transB, Py_ssize_t ldb,
                        Py_ssize_t p0, Py_ssize_t p1)
{
    const Py_ssize_t K = pb->K, Nc = pb->Nc, np = pb->np, nr = pb->nr;
    const Py_ssize_t KB = pb->one_row ? K : KC;
    /* in the order B lies in memory: a weight matrix of 16 MB read down its columns a panel
     * at a time (a page per row) took 3 ms, as long as ten steps of its product at N = 1 */
    for (Py_ssize_t k0 = 0; k0 < K; k0 += KB) {
        Py_ssize_t kc = K - k0 < KB ? K - k0 : KB;
        float *block = pb->data + k0 * np * nr;                   /* panel p at p * kc * nr */
        if (!transB) {
            for (Py_ssize_t k = 0; k < kc; k++) {                 /* row k0 + k of B */
                const float *src = B + (k0 + k) * ldb;
                for (Py_ssize_t p = p0; p < p1; p++) {
                    float *dst = block + (p * kc + k) * nr;
                    Py_ssize_t c0 = p * nr, w = Nc - c0 < nr ? Nc - c0 : nr;
                    for (Py_ssize_t j = 0; j < w; j++)
                        dst[j] = src[c0 + j];
                    for (Py_ssize_t j = w; j < nr; j++)
                        dst[j] = 0.0f;
                }
            }
        } else {
            for (Py_ssize_t c = p0 * nr; c < p1 * nr; c++) {      /* row c of B, column of op(B) */
                float *dst = block + (c / nr * kc) * nr + c % nr;
                if (c < Nc) {
                    const float *src = B + c * ldb + k0;
                    for (Py_ssize_t k = 0; k < kc; k++)
                        dst[k * nr] = src[k];
                } else {
                    for (Py_ssize_t k = 0; k < kc; k++)
                        dst[k * nr] = 0.0f;
                }
            }
        }
    }
}

typedef struct {
    const PackedB *pb;
    const float *B;
    int transB;
    Py_ssize_t ldb;
} PackJob;

static void pack_job(void *ctx, int part, int parts)
{
    const PackJob *j = (const PackJob *)ctx;
    Py_ssize_t np = j->pb->np;               /* the panels this thread's products will read */
    pack_panels(j->pb, j->B, j->transB, j->ldb, np * part / parts, np * (part + 1) / parts);
}

static void team_run(void (*fn)(void *, int, int), void *ctx, int threads);

/* Pack op(B) (K x Nc): B itself (stored K x Nc) or Bᵀ (B stored Nc x K), leading
 * dimension ldb; for products of one row (one_row), in the wide panels of gemv_x128.  On
 * `threads` threads of the team (held by the caller), each packing the panels it will
 * multiply (product_job's share), so that they are in its own cache at the first step.
 * Returns 0, or -1 when there is no memory (the caller uses BLAS). */
static int pack_b(PackedB *pb, const float *B, int transB, Py_ssize_t K, Py_ssize_t Nc,
                  Py_ssize_t ldb, int one_row, int threads)
{
    const int wide = packed_isa() == ISA_AVX512;
    const Py_ssize_t nr = one_row ? (wide ? NRW16 : NRW) : (wide ? NR16 : NR);
    const Py_ssize_t np = (Nc + nr - 1) / nr;
    pb->K = K; pb->Nc = Nc; pb->np = np; pb->one_row = one_row; pb->prefetch_all = 0;
    pb->nr = (int)nr; pb->mr = wide ? MR16 : MR;
    pb->bytes = (size_t)(K * np * nr) * sizeof(float);
    pb->data = (float *)pack_alloc(&pb->bytes);
    if (!pb->data)
        return -1;
    PackJob j = {pb, B, transB, ldb};
    team_run(pack_job, &j, threads < np ? threads : (int)np);
    return 0;
}

static void free_b(PackedB *pb)
{
    pack_free(pb->data, pb->bytes);
    pb->data = NULL;
}

/* ---- the register kernel: C[0:rows, 0:cols] (+)= Ap (MR x kc, k-major) Bp (kc x NR).
 * pf (or NULL): cache lines to prefetch into L2 meanwhile, one every pf_every values of k */
__attribute__((target("avx2,fma"), always_inline))
static inline void kernel_body(Py_ssize_t kc, const float *Ap, const float *Bp, float *C,
                               Py_ssize_t ldc, int rows, int cols, int accumulate,
                               const int with_pf, const float *pf, Py_ssize_t pf_lines,
                               Py_ssize_t pf_every)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    /* The tile of C is read at the end (accumulate), and its rows lie far apart (the step's
     * x_t U rows, G apart, usually not in cache): ask for them now, so that the loads
     * overlap the products instead of stalling the store. */
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + NR - 1), _MM_HINT_T0);
    }
    for (Py_ssize_t k = 0, next_pf = 0; k < kc; k++) {
        const float *b = Bp + k * NR, *a = Ap + k * MR;
        if (with_pf && k == next_pf && pf_lines > 0) {
            _mm_prefetch((const char *)pf, _MM_HINT_T1);
            pf += 16;
            pf_lines--;
            next_pf += pf_every;
        }
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), b2 = _mm256_load_ps(b + 16);
        /* Hold the row of B in registers: else GCC tuned for Zen folds the loads into the
         * FMAs as memory operands and the loads set the pace (BENCHMARKS.md). */
        __asm__("" : "+x"(b0), "+x"(b1), "+x"(b2));
        __m256 x = _mm256_broadcast_ss(a);
        c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01); c02 = _mm256_fmadd_ps(x, b2, c02);
        x = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11); c12 = _mm256_fmadd_ps(x, b2, c12);
        x = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21); c22 = _mm256_fmadd_ps(x, b2, c22);
        x = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31); c32 = _mm256_fmadd_ps(x, b2, c32);
    }
    __m256 acc[MR][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    for (int r = 0; r < rows; r++) {
        float *c = C + r * ldc;
        if (cols == NR) {
            for (int j = 0; j < 3; j++) {
                __m256 v = acc[r][j];
                if (accumulate)
                    v = _mm256_add_ps(_mm256_loadu_ps(c + 8 * j), v);
                _mm256_storeu_ps(c + 8 * j, v);
            }
        } else {
            float tile[NR];
            for (int j = 0; j < 3; j++)
                _mm256_storeu_ps(tile + 8 * j, acc[r][j]);
            for (int j = 0; j < cols; j++)
                c[j] = accumulate ? c[j] + tile[j] : tile[j];
        }
    }
}

/* the kernel without prefetching and with it: two copies, so that the first has no test in
 * its inner loop */
__attribute__((target("avx2,fma")))
static void kernel_4x24(Py_ssize_t kc, const float *Ap, const float *Bp, float *C, Py_ssize_t ldc,
                        int rows, int cols, int accumulate)
{
    kernel_body(kc, Ap, Bp, C, ldc, rows, cols, accumulate, 0, NULL, 0, 1);
}

__attribute__((target("avx2,fma")))
static void kernel_4x24_pf(Py_ssize_t kc, const float *Ap, const float *Bp, float *C,
                           Py_ssize_t ldc, int rows, int cols, int accumulate, const float *pf,
                           Py_ssize_t pf_lines, Py_ssize_t pf_every)
{
    kernel_body(kc, Ap, Bp, C, ldc, rows, cols, accumulate, 1, pf, pf_lines, pf_every);
}

/* ---- the AVX-512 register kernel: C[0:rows, 0:cols] (+)= Ap (MR16 x kc) Bp (kc x NR16),
 * the same contract as kernel_body; partial tiles are stored through masks. */
__attribute__((target("avx512f"), always_inline))
static inline void kernel16_body(Py_ssize_t kc, const float *A, Py_ssize_t lda, const float *Bp,
                                 float *C, Py_ssize_t ldc, int rows, int cols, int accumulate,
                                 const int with_pf, const float *pf, Py_ssize_t pf_lines,
                                 Py_ssize_t pf_every)
{
    /* A is read where it lies (rows lda apart; a missing row reads the last one, its
     * results are not stored): with 16 lanes a broadcast per row and k costs less than
     * packing the state at every step, which at H = 64 took a tenth of the loop */
    const float *ar[MR16];
#pragma GCC unroll 8
    for (int r = 0; r < MR16; r++)
        ar[r] = A + (r < rows ? r : rows - 1) * lda;
    __m512 c0[MR16], c1[MR16];
#pragma GCC unroll 8
    for (int r = 0; r < MR16; r++)
        c0[r] = c1[r] = _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {                 /* see kernel_body */
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + r * ldc + NR16 - 1), _MM_HINT_T0);
    }
    for (Py_ssize_t k = 0, next_pf = 0; k < kc; k++) {
        const float *b = Bp + k * NR16;
        if (with_pf && k == next_pf && pf_lines > 0) {
            _mm_prefetch((const char *)pf, _MM_HINT_T1);
            pf += 16;
            pf_lines--;
            next_pf += pf_every;
        }
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        __asm__("" : "+v"(b0), "+v"(b1));             /* held in registers (kernel_body) */
#pragma GCC unroll 8
        for (int r = 0; r < MR16; r++) {
            __m512 x = _mm512_set1_ps(ar[r][k]);
            c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);
        }
    }
    const __mmask16 m0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1u);
    const __mmask16 m1 = cols >= 32 ? (__mmask16)0xFFFF
                         : cols <= 16 ? (__mmask16)0 : (__mmask16)((1u << (cols - 16)) - 1u);
#pragma GCC unroll 8
    for (int r = 0; r < MR16; r++) {
        if (r >= rows)
            break;
        float *c = C + r * ldc;
        __m512 v0 = c0[r], v1 = c1[r];
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), v1);
        }
        _mm512_mask_storeu_ps(c, m0, v0);
        _mm512_mask_storeu_ps(c + 16, m1, v1);
    }
}

__attribute__((target("avx512f")))
static void kernel_8x32(Py_ssize_t kc, const float *A, Py_ssize_t lda, const float *Bp, float *C,
                        Py_ssize_t ldc, int rows, int cols, int accumulate)
{
    kernel16_body(kc, A, lda, Bp, C, ldc, rows, cols, accumulate, 0, NULL, 0, 1);
}

__attribute__((target("avx512f")))
static void kernel_8x32_pf(Py_ssize_t kc, const float *A, Py_ssize_t lda, const float *Bp,
                           float *C, Py_ssize_t ldc, int rows, int cols, int accumulate,
                           const float *pf, Py_ssize_t pf_lines, Py_ssize_t pf_every)
{
    kernel16_body(kc, A, lda, Bp, C, ldc, rows, cols, accumulate, 1, pf, pf_lines, pf_every);
}

/* ---- one row times the packed weights (a batch of one).  Such a product reads every weight
 * once for two flops: the memory sets its pace, not the FMAs.  So a loop of one row packs
 * its weights in wide panels of NRW columns over all K rows (pack_b's one_row layout): a
 * thread's share of the panels is one contiguous stream, the hardware prefetchers' best
 * case (the register kernels above would spend 8 or 4 FMAs on every vector loaded, for rows
 * that are not there; a column-split BLAS gemv reads half of every row of W instead).
 * C[0:cols] (+)= a (1 x K) Bp (K x NRW). */
__attribute__((target("avx512f")))
static void gemv_x128(Py_ssize_t K, const float *a, const float *Bp, float *C, Py_ssize_t cols,
                      int accumulate)
{
    __m512 acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < 8; q++)
        acc[q] = _mm512_setzero_ps();
    for (Py_ssize_t k = 0; k < K; k++) {
        const __m512 x = _mm512_set1_ps(a[k]);
        const float *b = Bp + k * NRW16;
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++)
            acc[q] = _mm512_fmadd_ps(x, _mm512_load_ps(b + 16 * q), acc[q]);
    }
    for (int q = 0; q < 8 && 16 * q < cols; q++) {
        Py_ssize_t left = cols - 16 * q;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m512 v = acc[q];
        if (accumulate)
            v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, C + 16 * q), v);
        _mm512_mask_storeu_ps(C + 16 * q, m, v);
    }
}

__attribute__((target("avx2,fma")))
static void gemv_x96(Py_ssize_t K, const float *a, const float *Bp, float *C, Py_ssize_t cols,
                     int accumulate)
{
    __m256 acc[12];
#pragma GCC unroll 12
    for (int q = 0; q < 12; q++)
        acc[q] = _mm256_setzero_ps();
    for (Py_ssize_t k = 0; k < K; k++) {
        const __m256 x = _mm256_broadcast_ss(a + k);
        const float *b = Bp + k * NRW;
#pragma GCC unroll 12
        for (int q = 0; q < 12; q++)
            acc[q] = _mm256_fmadd_ps(x, _mm256_load_ps(b + 8 * q), acc[q]);
    }
    for (int q = 0; q < 12 && 8 * q < cols; q++) {
        float tile[8];
        _mm256_storeu_ps(tile, acc[q]);
        for (Py_ssize_t j = 0; j < 8 && 8 * q + j < cols; j++)
            C[8 * q + j] = accumulate ? C[8 * q + j] + tile[j] : tile[j];
    }
}

/* ---- one product, split by panels: C (M x Nc) = Ap op(B) + beta C */
typedef struct {
    Py_ssize_t M;
    const float *Ap;                          /* A packed: block kb, row block i at (kb*KC*Mp + i*kc) */
    Py_ssize_t Mp;                            /* M rounded up to the kernel's MR */
    const float *A;                           /* A itself (the AVX-512 kernel reads it there) */
    Py_ssize_t lda;
    const PackedB *B;
    float beta, *C;
    Py_ssize_t ldc;
} Product;

/* Weights larger than a core's L2 come from L3, or memory, at every step.  With only a few
 * row blocks per product, the first row block multiplied with a panel waits for each of its
 * lines and the others are too few to hide it.  For such products the kernel prefetches
 * the panel that comes next while it works on the current one, a share of its lines in each
 * row block's call.  Which products: those of at most PREFETCH_MAX_ROWS rows with packed
 * weights over PREFETCH_MIN_BYTES (where it measured faster on the AVX2 EPYC and Zen 4,
 * BENCHMARKS.md), or, where the loop's way asks for it (prefetch_all: the chooser measured
 * it faster for the shape, rnnkit/kernels/choose.py), every product with packed weights
 * over PREFETCH_ALL_MIN_BYTES. */
static void product_part(const Product *w, Py_ssize_t p0, Py_ssize_t p1)
{
    const PackedB *B = w->B;
    const Py_ssize_t nr = B->nr, mr = B->mr;
    const int wide = nr == NR16 || nr == NRW16;
    const double bytes = (double)B->K * (double)B->np * nr * sizeof(float);
    const int prefetch = B->prefetch_all ? bytes > PREFETCH_ALL_MIN_BYTES
                                         : w->M <= PREFETCH_MAX_ROWS && bytes > PREFETCH_MIN_BYTES;
    if (B->one_row) {                         /* wide panels over all K, a row at a time */
        for (Py_ssize_t p = p0; p < p1; p++) {
            Py_ssize_t c0 = p * nr, cols = B->Nc - c0 < nr ? B->Nc - c0 : nr;
            for (Py_ssize_t i = 0; i < w->M; i++) {
                if (wide)
                    gemv_x128(B->K, w->A + i * w->lda, B->data + p * B->K * nr, w->C + i * w->ldc + c0,
                              cols, w->beta != 0.0f);
                else
                    gemv_x96(B->K, w->A + i * w->lda, B->data + p * B->K * nr, w->C + i * w->ldc + c0,
                             cols, w->beta != 0.0f);
            }
        }
        return;
    }
    const Py_ssize_t row_blocks = (w->M + mr - 1) / mr;
    for (Py_ssize_t k0 = 0; k0 < B->K; k0 += KC) {
        Py_ssize_t kc = B->K - k0 < KC ? B->K - k0 : KC;
        int accumulate = k0 > 0 || w->beta != 0.0f;
        Py_ssize_t lines = kc * nr * sizeof(float) / 64;                 /* of one panel */
        Py_ssize_t per_call = (lines + row_blocks - 1) / row_blocks;
        Py_ssize_t every = kc / per_call > 0 ? kc / per_call : 1;
        for (Py_ssize_t p = p0; p < p1; p++) {
            const float *bp = B->data + (k0 * B->np + p * kc) * nr, *next = NULL;
            if (prefetch && p + 1 < p1)                                  /* this block's next panel */
                next = bp + kc * nr;
            else if (prefetch && k0 + KC < B->K)                         /* the next block's first */
                next = B->data + ((k0 + KC) * B->np + p0 * (B->K - k0 - KC < KC ? B->K - k0 - KC : KC)) * nr;
            Py_ssize_t c0 = p * nr;
            int cols = (int)(B->Nc - c0 < nr ? B->Nc - c0 : nr);
            for (Py_ssize_t i = 0, r = 0; i < w->M; i += mr, r++) {
                int rows = (int)(w->M - i < mr ? w->M - i : mr);
                const float *ap = w->Ap + k0 * w->Mp + i * kc;
                float *c = w->C + i * w->ldc + c0;
                Py_ssize_t first = r * per_call, n = 0;
                if (next && first < lines)
                    n = lines - first < per_call ? lines - first : per_call;
                const float *a = w->A + i * w->lda + k0;
                if (wide && n)
                    kernel_8x32_pf(kc, a, w->lda, bp, c, w->ldc, rows, cols, accumulate,
                                   next + first * 16, n, every);
                else if (wide)
                    kernel_8x32(kc, a, w->lda, bp, c, w->ldc, rows, cols, accumulate);
                else if (n)
                    kernel_4x24_pf(kc, ap, bp, c, w->ldc, rows, cols, accumulate, next + first * 16, n, every);
                else
                    kernel_4x24(kc, ap, bp, c, w->ldc, rows, cols, accumulate);
            }
        }
    }
}

/* ---- the team: helpers that wait for work, spinning a little, then sleeping.  Work is
 * fn(ctx, part, parts) for part = 0 .. parts-1; the caller does part 0. */
typedef void (*team_fn)(void *ctx, int part, int parts);

static struct {
    pthread_mutex_t lock;                     /* one loop at a time uses the team */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    int started;                              /* helpers running */
    long generation;                          /* bumped for every product (atomic) */
    int pending;                              /* helpers still working on it (atomic) */
    int sleeping;                             /* helpers asleep (atomic) */
    int size;                                 /* threads taking part in this work */
    team_fn fn;
    void *ctx;
} team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void product_job(void *ctx, int part, int parts)
{
    const Product *w = (const Product *)ctx;
    Py_ssize_t np = w->B->np;
    product_part(w, np * part / parts, np * (part + 1) / parts);
}

static long helper_start_generation[MAX_TEAM];

static void *team_helper(void *arg)
{
    int id = (int)(intptr_t)arg;                     /* 1 .. MAX_TEAM - 1 */
    /* the generation when it was created: a product handed out before this thread got
     * going is still its to do */
    long seen = helper_start_generation[id];
    for (;;) {
        long g;
        int spins = 0;
        while ((g = __atomic_load_n(&team.generation, __ATOMIC_ACQUIRE)) == seen) {
            if (++spins < 20000) {
                _mm_pause();
                continue;
            }
            pthread_mutex_lock(&team.wake_lock);      /* nothing for a while: sleep */
            __atomic_add_fetch(&team.sleeping, 1, __ATOMIC_SEQ_CST);
            while ((g = __atomic_load_n(&team.generation, __ATOMIC_SEQ_CST)) == seen)
                pthread_cond_wait(&team.wake, &team.wake_lock);
            __atomic_sub_fetch(&team.sleeping, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&team.wake_lock);
            break;
        }
        seen = g;
        int size = team.size;
        if (id < size)
            team.fn(team.ctx, id, size);
        if (id < size)
            __atomic_sub_fetch(&team.pending, 1, __ATOMIC_ACQ_REL);
    }
    return NULL;
}

static void team_reset_after_fork(void)
{
    team.started = 0;                                /* the helpers did not come along */
    pthread_mutex_init(&team.lock, NULL);
    pthread_mutex_init(&team.wake_lock, NULL);
    pthread_cond_init(&team.wake, NULL);
    team.sleeping = 0;
    pthread_mutex_init(&spare_lock, NULL);
}

/* Start helpers up to `threads` - 1 (once); returns how many threads the team has. */
static int team_start(int threads)
{
    static int atfork = 0;
    if (threads > MAX_TEAM)
        threads = MAX_TEAM;
    if (!atfork) {
        pthread_atfork(NULL, NULL, team_reset_after_fork);
        atfork = 1;
    }
    while (team.started + 1 < threads) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        helper_start_generation[team.started + 1] = __atomic_load_n(&team.generation, __ATOMIC_SEQ_CST);
        int rc = pthread_create(&tid, &attr, team_helper, (void *)(intptr_t)(team.started + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        team.started++;
    }
    return team.started + 1;
}

/* Run fn on `threads` threads (the caller is one of them; the team is started). */
static void team_run(team_fn fn, void *ctx, int threads)
{
    if (threads <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    team.fn = fn;
    team.ctx = ctx;
    team.size = threads;
    __atomic_store_n(&team.pending, threads - 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&team.generation, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&team.sleeping, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&team.wake_lock);
        pthread_cond_broadcast(&team.wake);
        pthread_mutex_unlock(&team.wake_lock);
    }
    fn(ctx, 0, threads);
    int spins = 0;
    while (__atomic_load_n(&team.pending, __ATOMIC_ACQUIRE) > 0) {
        if (++spins < 100000)
            _mm_pause();
        else
            sched_yield();
    }
}

/* ---- what a loop uses: a workspace for the packed state, and the product */
typedef struct {
    int threads;                              /* team size for this loop (1: alone) */
    int locked;                               /* holds team.lock */
    Py_ssize_t rows;                          /* of every product (one: pack_b's one_row) */
    float *Ap;                                /* packed state, Mp x Kmax */
} Packer;

static int packer_open(Packer *pk, int threads, Py_ssize_t M, Py_ssize_t Kmax)
{
    pk->threads = 1;
    pk->locked = 0;
    pk->rows = M;
    pk->Ap = NULL;
    Py_ssize_t Mp = (M + MR_MAX - 1) / MR_MAX * MR_MAX;           /* room for either kernel */
    if (posix_memalign((void **)&pk->Ap, 64, (size_t)(Mp * Kmax) * sizeof(float)) != 0) {
        pk->Ap = NULL;
        return -1;
    }
    if (threads > 1 && pthread_mutex_trylock(&team.lock) == 0) {
        pk->locked = 1;
        pk->threads = team_start(threads);
    }
    return 0;
}

static void packer_close(Packer *pk)
{
    if (pk->locked)
        pthread_mutex_unlock(&team.lock);
    free(pk->Ap);
    pk->Ap = NULL;
}

/* C (M x Nc) = A (M x K, leading dimension lda) op(B) + beta C, beta 0 or 1 */
static void gemm_packed(Packer *pk, Py_ssize_t M, const float *A, Py_ssize_t lda,
                        const PackedB *B, float beta, float *C, Py_ssize_t ldc)
{
    const int mr = B->mr;
    Py_ssize_t K = B->K, Mp = (M + mr - 1) / mr * mr;
    for (Py_ssize_t k0 = 0; mr == MR && !B->one_row && k0 < K; k0 += KC) {  /* AVX2: pack the state, mr rows interleaved */
        Py_ssize_t kc = K - k0 < KC ? K - k0 : KC;
        for (Py_ssize_t i = 0; i < Mp; i += mr) {
            float *dst = pk->Ap + k0 * Mp + i * kc;
            for (int r = 0; r < mr; r++) {
                if (i + r < M) {
                    const float *src = A + (i + r) * lda + k0;
                    for (Py_ssize_t k = 0; k < kc; k++)
                        dst[k * mr + r] = src[k];
                } else {
                    for (Py_ssize_t k = 0; k < kc; k++)
                        dst[k * mr + r] = 0.0f;
                }
            }
        }
    }
    Product w = {M, pk->Ap, Mp, A, lda, B, beta, C, ldc};
    /* small products are not worth a hand-off */
    int threads = (double)M * (double)K * (double)B->Nc < 65536.0 ? 1 : pk->threads;
    if (threads > B->np)
        threads = (int)B->np;
    team_run(product_job, &w, threads);
}

/* ---- chunks of the batch, one per thread, each running a whole loop */
/* How many chunks a loop of N samples would cut its batch into (the team not asked) */
static int chunk_plan(Py_ssize_t N, int threads, int is_f32, int own_threads)
{
    /* With BLAS's threads in use: larger batches run faster on BLAS's threads for each
     * step's product.  With BLAS held at one thread (own_threads), every batch large enough
     * is cut into chunks, whose products use the packed kernel (up to PACKED_MAX_ROWS rows
     * a chunk) or single-threaded BLAS. */
    if (threads <= 1 || N < 2 * CHUNK_MIN_ROWS)
        return 1;
    if (!own_threads && (!is_f32 || N > PACKED_MAX_ROWS || !packed_available()))
        return 1;
    int chunks = threads < MAX_CHUNKS ? threads : MAX_CHUNKS;
    if (chunks > N / CHUNK_MIN_ROWS)
        chunks = (int)(N / CHUNK_MIN_ROWS);
    return chunks;
}

static int chunk_count(Py_ssize_t N, int threads, int is_f32, int own_threads)
{
    int chunks = chunk_plan(N, threads, is_f32, own_threads);
    if (chunks <= 1)
        return 1;
    if (pthread_mutex_trylock(&team.lock) != 0)      /* another loop has the team */
        return 1;
    int size = team_start(chunks);
    if (size < 2) {
        pthread_mutex_unlock(&team.lock);
        return 1;
    }
    return size < chunks ? size : chunks;           /* the team is held until chunks_done */
}

static void team_run_chunks(team_fn fn, void *ctx, int chunks)
{
    team_run(fn, ctx, chunks);
}

static void chunks_done(void)
{
    pthread_mutex_unlock(&team.lock);
}

#else /* no packed products, no team: every loop runs on one thread, products on BLAS */
static int chunk_plan(Py_ssize_t N, int threads, int is_f32, int own_threads) { return 1; }
static int packed_available(void) { return 0; }
static int chunk_count(Py_ssize_t N, int threads, int is_f32, int own_threads) { return 1; }
static void team_run_chunks(void (*fn)(void *, int, int), void *ctx, int chunks) { fn(ctx, 0, 1); }
static void chunks_done(void) {}
#endif /* RNNKIT_PACKED */
