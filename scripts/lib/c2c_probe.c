/*
 * Core-to-core placement probe for scripts/compare-reference.sh.
 *
 * Two threads pinned to CPU A and CPU B bounce one cache line: thread A writes i, thread B waits
 * for i and writes i+1, and so on. One round trip moves the line twice between the cores, so the
 * one-way latency is half a round trip. On the course VMs the two vCPUs move between a "near" and
 * a "far" placement (see /work/shared/NOTES.md); this number changes with it, and it costs well
 * under a second, so the comparison prints it beside every 2-core result.
 *
 * Build: cc -O2 -pthread -o c2c_probe c2c_probe.c
 * Usage: c2c_probe [cpuA cpuB [round_trips_per_block]]   (defaults: 0 1 2000)
 * Prints: c2c_ns=<one-way ns of the best block> c2c_median_ns=<median block>
 *
 * The machine is shared: when another process takes one of the two cores, a block stalls for a
 * whole time slice. Many short blocks (51 x 2000 round trips, about 0.1 ms each when the line
 * moves freely) and the best of them give the hardware latency; the median shows the contention.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BLOCKS 51

/* The bounced value sits alone in its own 64-byte line so nothing else shares it. */
static struct {
    _Alignas(64) atomic_long v;
    char pad[64 - sizeof(atomic_long)];
} line;

static long round_trips = 2000;
static atomic_int stop;

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *responder(void *arg) {
    if (pin(*(int *)arg) != 0) {
        fprintf(stderr, "c2c_probe: cannot pin to cpu %d\n", *(int *)arg);
        exit(2);
    }
    long expect = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* Wait for the odd value from the initiator, answer with the next even one. */
        if (atomic_load_explicit(&line.v, memory_order_acquire) == expect) {
            atomic_store_explicit(&line.v, expect + 1, memory_order_release);
            expect += 2;
        }
    }
    return NULL;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int cpu_a = argc > 2 ? atoi(argv[1]) : 0;
    int cpu_b = argc > 2 ? atoi(argv[2]) : 1;
    if (argc > 3) round_trips = atol(argv[3]);
    if (pin(cpu_a) != 0) {
        fprintf(stderr, "c2c_probe: cannot pin to cpu %d\n", cpu_a);
        return 2;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, responder, &cpu_b) != 0) {
        fprintf(stderr, "c2c_probe: pthread_create failed\n");
        return 2;
    }
    double one_way[BLOCKS];
    long next = 1;
    /* A short warm-up so both threads run and the line is hot, then the timed blocks. */
    for (int b = -1; b < BLOCKS; b++) {
        long n = b < 0 ? 20 * round_trips : round_trips;
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            atomic_store_explicit(&line.v, next, memory_order_release);
            while (atomic_load_explicit(&line.v, memory_order_acquire) != next + 1) {
            }
            next += 2;
        }
        double dt = now_ns() - t0;
        if (b >= 0) one_way[b] = dt / n / 2.0;
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    qsort(one_way, BLOCKS, sizeof one_way[0], cmp);
    printf("c2c_ns=%.1f c2c_median_ns=%.1f\n", one_way[0], one_way[BLOCKS / 2]);
    return 0;
}
