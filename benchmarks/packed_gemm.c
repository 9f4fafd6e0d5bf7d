/* The packed float32 product of rnnkit's time loops (rnnkit/kernels/_packed.h) alone, on one
 * thread, against OpenBLAS's sgemm (the one inside NumPy's wheel) on the same data:
 * C (M x N) += A (M x K) B (K x N), B packed once as the loops do, A packed at every call.
 * With M = 1, the one-row kernel (wide panels) against OpenBLAS's sgemv.
 *
 *   LIB=$(python -c "import glob, os, numpy; print(glob.glob(os.path.join(os.path.dirname(numpy.__file__), '..', 'numpy.libs', 'libscipy_openblas64_*.so'))[0])")
 *   gcc -O3 -fno-trapping-math benchmarks/packed_gemm.c -o /tmp/packed_gemm "$LIB" -lpthread -Wl,-rpath,"$(dirname "$LIB")"
 *   /tmp/packed_gemm 16 1024 4096        # M K N: one thread's step of an LSTM, H = 1024, N = 32
 *
 * The register kernel is the best the CPU has (AVX-512: 8 x 32, AVX2: 4 x 24);
 * RNNKIT_PACKED_ISA=avx2 runs the AVX2 one on a CPU with AVX-512.
 * -DPREFETCH_MAX_ROWS=0 builds the kernel that never prefetches the next weight panel,
 * -DPREFETCH_MIN_BYTES=0 one that always does (for M <= PREFETCH_MAX_ROWS); -march=native
 * shows what GCC's tuning for the build machine does to the kernel.  Prints the best of
 * five alternated 0.3 s rounds of each, in GFLOP/s.  BENCHMARKS.md quotes it ("the part alone"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <time.h>

typedef ptrdiff_t Py_ssize_t;
#define MAX_CHUNKS 16
#include "../rnnkit/kernels/_packed.h"

typedef int64_t blasint;
extern void scipy_cblas_sgemm64_(int, int, int, blasint, blasint, blasint, float, const float *,
                                 blasint, const float *, blasint, float, float *, blasint);
extern void scipy_cblas_sgemv64_(int, int, blasint, blasint, float, const float *, blasint,
                                 const float *, blasint, float, float *, blasint);
extern void scipy_openblas_set_num_threads64_(int);

/* OpenBLAS as a loop would call it: sgemm, or for one row sgemv (as F(gemm) does) */
static void blas_product(Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, const float *A, const float *B,
                         float *C)
{
    if (M == 1)
        scipy_cblas_sgemv64_(101, 112, K, N, 1.0f, B, N, A, 1, 1.0f, C, 1);
    else
        scipy_cblas_sgemm64_(101, 111, 111, M, N, K, 1.0f, A, K, B, N, 1.0f, C, N);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5 || !packed_available()) {
        fprintf(stderr, "usage: %s M K N [seconds per round, 0.3] (on an x86-64 CPU with AVX2 and FMA)\n",
                argv[0]);
        return 2;
    }
    Py_ssize_t M = atol(argv[1]), K = atol(argv[2]), N = atol(argv[3]);
    double round_s = argc == 5 ? atof(argv[4]) : 0.3;
    scipy_openblas_set_num_threads64_(1);
    float *A = aligned_alloc(64, (M * K * 4 + 63) / 64 * 64), *B = aligned_alloc(64, (K * N * 4 + 63) / 64 * 64);
    float *C = aligned_alloc(64, (M * N * 4 + 63) / 64 * 64), *C2 = aligned_alloc(64, (M * N * 4 + 63) / 64 * 64);
    for (Py_ssize_t i = 0; i < M * K; i++) A[i] = (float)rand() / RAND_MAX - 0.5f;
    for (Py_ssize_t i = 0; i < K * N; i++) B[i] = (float)rand() / RAND_MAX - 0.5f;
    for (Py_ssize_t i = 0; i < M * N; i++) C[i] = C2[i] = 0.0f;
    PackedB pb;
    Packer pk;
    if (pack_b(&pb, B, 0, K, N, N, M == 1, 1) != 0 || packer_open(&pk, 1, M, K) != 0)
        return 1;
    gemm_packed(&pk, M, A, K, &pb, 1.0f, C, N);                   /* the same numbers first */
    blas_product(M, K, N, A, B, C2);
    double err = 0;
    for (Py_ssize_t i = 0; i < M * N; i++) {
        double e = C[i] > C2[i] ? C[i] - C2[i] : C2[i] - C[i];
        err = e > err ? e : err;
    }
    double flops = 2.0 * M * K * N, best_packed = 1e9, best_blas = 1e9;
    for (int round = 0; round < 5; round++) {                     /* alternated rounds */
        int n = 0;
        double t = now();
        while (now() - t < round_s) { gemm_packed(&pk, M, A, K, &pb, 1.0f, C, N); n++; }
        double d = (now() - t) / n;
        best_packed = d < best_packed ? d : best_packed;
        n = 0;
        t = now();
        while (now() - t < round_s) {
            blas_product(M, K, N, A, B, C2);
            n++;
        }
        d = (now() - t) / n;
        best_blas = d < best_blas ? d : best_blas;
    }
    if (M == 1)                                                   /* the one-row kernel */
        printf("%s ", packed_isa() == ISA_AVX512 ? "avx512 1x128" : "avx2 1x96");
    else
        printf("%s ", packed_isa() == ISA_AVX512 ? "avx512 8x32" : "avx2 4x24");
    printf("M=%ld K=%ld N=%ld (weights %.1f MB): packed %.1f GFLOP/s, OpenBLAS %.1f GFLOP/s "
           "(time packed/OpenBLAS %.2f; largest difference after one product %.1e)\n",
           (long)M, (long)K, (long)N, K * N * 4 / 1048576.0, flops / best_packed / 1e9,
           flops / best_blas / 1e9, best_packed / best_blas, err);
    free_b(&pb);
    packer_close(&pk);
    return 0;
}
