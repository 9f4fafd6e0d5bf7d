/* How fast the cores of this machine can read a buffer that does not fit in their caches:
 * the ceiling of a product of one row (a batch of one), which reads every weight once for
 * two flops.  Each thread sums its own share of the buffer with AVX-512 loads, all threads
 * starting each pass together (as the team of rnnkit's loops does at every step).
 *
 *   gcc -O2 -pthread benchmarks/read_bandwidth.c -o /tmp/read_bandwidth
 *   /tmp/read_bandwidth 16 2        # MB in all, threads: LSTM(1024)'s recurrent weights
 *
 * Prints GB/s and microseconds a pass (BENCHMARKS.md, "Products of one row"). */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_THREADS 64
#define PASSES 200

static size_t per_thread;                     /* floats */
static float *buf[MAX_THREADS];
static volatile float sink[MAX_THREADS];
static pthread_barrier_t start;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

__attribute__((target("avx512f"))) static void *reader(void *arg)
{
    int id = (int)(long)arg;
    const float *b = buf[id];
    __m512 a[8];
    for (int q = 0; q < 8; q++)
        a[q] = _mm512_setzero_ps();
    for (int pass = 0; pass < PASSES; pass++) {
        pthread_barrier_wait(&start);
        __asm__ volatile("" ::: "memory");    /* read it again: the sums are not reused */
        for (size_t i = 0; i < per_thread; i += 128)
            for (int q = 0; q < 8; q++)
                a[q] = _mm512_add_ps(a[q], _mm512_load_ps(b + i + 16 * q));
    }
    for (int q = 1; q < 8; q++)
        a[0] = _mm512_add_ps(a[0], a[q]);
    sink[id] = _mm512_reduce_add_ps(a[0]);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3 || !__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "usage: %s MB THREADS (on a CPU with AVX-512F)\n", argv[0]);
        return 2;
    }
    size_t mb = (size_t)atol(argv[1]);
    int threads = atoi(argv[2]);
    if (mb < 1 || threads < 1 || threads > MAX_THREADS)
        return 2;
    per_thread = (mb << 20) / sizeof(float) / threads / 128 * 128;
    for (int i = 0; i < threads; i++) {
        if (posix_memalign((void **)&buf[i], 64, per_thread * sizeof(float)) != 0)
            return 1;
        for (size_t j = 0; j < per_thread; j++)
            buf[i][j] = 1.0f;
    }
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    pthread_t tid[MAX_THREADS];
    double t0 = now();
    for (int i = 1; i < threads; i++)
        pthread_create(&tid[i], NULL, reader, (void *)(long)i);
    reader((void *)0);
    for (int i = 1; i < threads; i++)
        pthread_join(tid[i], NULL);
    double dt = now() - t0, bytes = (double)per_thread * sizeof(float) * threads;
    printf("%zu MB on %d threads: %.1f GB/s, %.1f us a pass\n", mb, threads,
           bytes * PASSES / dt / 1e9, dt / PASSES * 1e6);
    return 0;
}
