/* STREAM triad, measured the way John McCalpin's stream.c measures it, for
 * scripts/compare-calibrate.sh (stream.c itself is not vendored and cannot be fetched offline).
 *
 *   stream_triad N NTIMES          (threads from OMP_NUM_THREADS)
 *
 * Three static arrays of N doubles, initialised in parallel with the kernel's static schedule
 * (first touch), one untimed pass, then NTIMES timed passes of a[j] = b[j] + q*c[j] under
 * `#pragma omp parallel for` (schedule static, as stream.c), bytes counted STREAM's way
 * (24 per element, no write-allocate). Prints one line:
 *
 *   threads=T n=N best_gbps=X median_gbps=Y
 *
 * Build: gcc -O3 -march=native -fopenmp stream_triad.c -o stream_triad
 * -DNT: the same loop with non-temporal (streaming) stores, as scalelab's triad writes by default:
 * each thread's static block, a scalar head to 32-byte alignment, AVX `_mm256_stream_pd`, a scalar
 * tail, `_mm_sfence` (gcc ignores OpenMP's `nontemporal` clause, so it is written out).
 * Reference: https://www.cs.virginia.edu/stream/ (stream.c, version 5.10).
 */
#include <omp.h>
#ifdef NT
#include <immintrin.h>
#include <stdint.h>
#endif
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s N NTIMES\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int ntimes = atoi(argv[2]);
    if (n < 1 || ntimes < 1) {
        fprintf(stderr, "N and NTIMES must be positive\n");
        return 2;
    }
    double *a = aligned_alloc(64, ((n * 8 + 63) / 64) * 64);
    double *b = aligned_alloc(64, ((n * 8 + 63) / 64) * 64);
    double *c = aligned_alloc(64, ((n * 8 + 63) / 64) * 64);
    double *rate = malloc(sizeof(double) * ntimes);
    if (!a || !b || !c || !rate) {
        fprintf(stderr, "out of memory for 3 x %ld doubles\n", n);
        return 1;
    }
    const double q = 3.0;
#pragma omp parallel for schedule(static)
    for (long j = 0; j < n; j++) {
        a[j] = 1.0;
        b[j] = 2.0;
        c[j] = 0.0;
    }
    for (int k = 0; k <= ntimes; k++) {
        double t = omp_get_wtime();
#ifdef NT
#pragma omp parallel
        {
            /* The block schedule(static) would give this thread. */
            long nt = omp_get_num_threads(), id = omp_get_thread_num();
            long chunk = (n + nt - 1) / nt, lo = id * chunk, hi = lo + chunk < n ? lo + chunk : n;
            long j = lo;
            while (j < hi && ((uintptr_t)(a + j) & 31))
                a[j] = b[j] + q * c[j], j++;
            __m256d qv = _mm256_set1_pd(q);
            for (; j + 4 <= hi; j += 4)
                _mm256_stream_pd(a + j, _mm256_add_pd(_mm256_loadu_pd(b + j),
                                                      _mm256_mul_pd(qv, _mm256_loadu_pd(c + j))));
            for (; j < hi; j++)
                a[j] = b[j] + q * c[j];
            _mm_sfence();
        }
#else
#pragma omp parallel for schedule(static)
        for (long j = 0; j < n; j++)
            a[j] = b[j] + q * c[j];
#endif
        t = omp_get_wtime() - t;
        if (k > 0)
            rate[k - 1] = 24.0 * (double)n / t / 1e9;
    }
    /* Keep the result live and check it (stream.c validates all arrays). */
    double want = 2.0 + q * 0.0;
    for (long j = 0; j < n; j += 4099)
        if (a[j] != want) {
            fprintf(stderr, "triad result wrong at %ld: %g != %g\n", j, a[j], want);
            return 1;
        }
    qsort(rate, ntimes, sizeof(double), cmp);
    double median = ntimes % 2 ? rate[ntimes / 2] : (rate[ntimes / 2 - 1] + rate[ntimes / 2]) / 2;
    printf("threads=%d n=%ld best_gbps=%.3f median_gbps=%.3f\n", omp_get_max_threads(), n,
           rate[ntimes - 1], median);
    return 0;
}
