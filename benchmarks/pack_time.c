/* How long the compiled loops take to pack a weight matrix for the register kernels
 * (pack_b in rnnkit/kernels/_packed.h), alone, on one thread: 21 packings, min / median /
 * max; each into a fresh buffer, or (kept = 1) into the buffer the last one freed, as the
 * loops do for buffers of 4 MB and more.
 *
 *   gcc -O3 -fno-trapping-math benchmarks/pack_time.c -o /tmp/pack_time -lpthread
 *   /tmp/pack_time 1024 4096 0 0     # K Nc transB one_row: LSTM(1024)'s W for the forward
 *   /tmp/pack_time 4096 1024 1 0     # its transpose, as the reverse loop packs it
 *   /tmp/pack_time 1024 4096 0 1     # the wide panels of a one-row loop
 *   /tmp/pack_time 1024 4096 0 1 1   # the same into the kept buffer
 *
 * BENCHMARKS.md quotes it ("Packing the weights faster, tried"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <time.h>

typedef ptrdiff_t Py_ssize_t;
#define MAX_CHUNKS 16
#include "../rnnkit/kernels/_packed.h"

#define ROUNDS 21

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if ((argc != 5 && argc != 6) || !packed_available()) {
        fprintf(stderr, "usage: %s K Nc transB one_row [kept] (needs AVX2 and FMA)\n", argv[0]);
        return 2;
    }
    Py_ssize_t K = atol(argv[1]), Nc = atol(argv[2]);
    int trans = atoi(argv[3]), one_row = atoi(argv[4]), kept = argc == 6 && atoi(argv[5]);
    float *B = malloc(sizeof(float) * K * Nc);     /* op(B) is K x Nc; B is Nc x K if trans */
    if (!B)
        return 1;
    for (Py_ssize_t i = 0; i < K * Nc; i++)
        B[i] = (float)(i % 97);
    double t[ROUNDS];
    PackedB pb;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        if (pack_b(&pb, B, trans, K, Nc, trans ? K : Nc, one_row, 1) != 0)
            return 1;
        t[r] = now() - t0;
        free_b(&pb);
        if (!kept)
            pack_release();
    }
    qsort(t, ROUNDS, sizeof *t, by_value);
    printf("K=%ld Nc=%ld transB=%d one_row=%d kept=%d (%.1f MB): pack min %.3f median %.3f max %.3f ms\n",
           (long)K, (long)Nc, trans, one_row, kept, K * Nc * 4 / 1e6, t[0] * 1e3, t[ROUNDS / 2] * 1e3,
           t[ROUNDS - 1] * 1e3);
    free(B);
    return 0;
}
