/* LAPACK dgesv (HPL's problem: LU with partial pivoting and a solve) and DGEMM from OpenBLAS, in
 * GFLOP per CPU-second of the calling thread, three rounds; the reference for
 * kernels/examples/hpl_cpu.rs (docs/hpl.md). Flops as HPL counts them: 2/3 n^3 + 3/2 n^2.
 *
 *   gcc -O2 scripts/lib/openblas_dgesv.c -o /tmp/openblas_dgesv /usr/lib/x86_64-linux-gnu/libopenblas.so.0
 *   OPENBLAS_NUM_THREADS=1 env -u OPENBLAS_CORETYPE /tmp/openblas_dgesv 4000
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void dgesv_(int *n, int *nrhs, double *a, int *lda, int *ipiv, double *b, int *ldb, int *info);
void dgemm_(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a, int *lda,
            double *b, int *ldb, double *beta, double *c, int *ldc);

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4000, one = 1, info = 0;
    double *a = malloc(8L * n * n), *b = malloc(8L * n), *c = calloc((size_t)n * n, 8);
    int *ipiv = malloc(sizeof(int) * n);
    if (!a || !b || !c || !ipiv || n < 1) return 1;
    for (int r = 0; r < 3; r++) {
        srand(1);
        for (long i = 0; i < (long)n * n; i++) a[i] = rand() / (double)RAND_MAX - 0.5;
        for (int i = 0; i < n; i++) b[i] = rand() / (double)RAND_MAX - 0.5;
        double t = cpu_seconds();
        dgesv_(&n, &one, a, &n, ipiv, b, &n, &info);
        t = cpu_seconds() - t;
        double f = 2.0 / 3 * n * (double)n * n + 1.5 * (double)n * n;
        double alpha = 1, beta = 0, t2 = cpu_seconds();
        dgemm_("N", "N", &n, &n, &n, &alpha, a, &n, a, &n, &beta, c, &n);
        t2 = cpu_seconds() - t2;
        printf("n=%d: dgesv %.1f GFLOP per cpu-second (info %d), dgemm %.1f\n", n, f / t / 1e9,
               info, 2.0 * n * (double)n * n / t2 / 1e9);
    }
    return 0;
}
