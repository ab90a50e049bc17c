#!/usr/bin/env python3
"""numpy float64 matmul reference for scripts/compare-reference.sh.

Times C = A @ B for n x n float64 matrices under threadpoolctl limits (1 thread, then 2 threads),
best of --reps repetitions after one warm-up each, and prints one JSON object:

    {"n": 2048, "kernel": {"internal_api": "openblas", "version": ..., "architecture": ...},
     "env": {"OPENBLAS_CORETYPE": null, ...},
     "results": [{"threads": 1, "seen_threads": 1, "times_s": [...], "best_s": ...,
                  "gflops_best": ..., "gflops_median": ...}, ...]}

GFLOP/s = 2 n^3 / t / 1e9. Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (the caller
does `env -u ...`): on these machines they force OpenBLAS's Haswell kernel, which costs numpy about
40% of its DGEMM speed (NOTES.md). The kernel really used is printed so a forced one shows.
"""

import argparse
import json
import os
import statistics
import sys
import time


def blas_info(threadpool_info):
    """The BLAS entry of threadpoolctl's report (numpy's bundled OpenBLAS)."""
    for entry in threadpool_info():
        if entry.get("user_api") == "blas":
            return entry
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048, help="matrix order (default 2048)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=10, help="timed repetitions per thread count")
    args = ap.parse_args()

    try:
        import numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError as e:  # the caller turns this into "run install-deps.sh --reference"
        print(f"numpy_dgemm.py: {e}", file=sys.stderr)
        return 3

    info = blas_info(threadpool_info)
    if info is None:
        print("numpy_dgemm.py: threadpoolctl finds no BLAS behind numpy", file=sys.stderr)
        return 3
    kernel = {k: info.get(k) for k in ("internal_api", "version", "architecture", "threading_layer",
                                       "num_threads", "filepath")}

    n = args.n
    rng = np.random.default_rng(12345)
    a = rng.standard_normal((n, n))
    b = rng.standard_normal((n, n))
    c = np.empty((n, n))
    flops = 2.0 * n ** 3

    results = []
    for threads in args.threads:
        with threadpool_limits(limits=threads, user_api="blas"):
            seen = blas_info(threadpool_info).get("num_threads")
            np.matmul(a, b, out=c)  # warm-up: thread start-up, page faults of c
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                np.matmul(a, b, out=c)
                times.append(time.perf_counter() - t0)
        best = min(times)
        results.append({
            "threads": threads,
            "seen_threads": seen,
            "times_s": times,
            "best_s": best,
            "gflops_best": flops / best / 1e9,
            "gflops_median": flops / statistics.median(times) / 1e9,
        })

    # A cheap check that the product is a product (catches a broken BLAS build).
    i, j = 7, 11
    expect = float(a[i, :] @ b[:, j])
    if abs(c[i, j] - expect) > 1e-9 * max(1.0, abs(expect)) * n:
        print(f"numpy_dgemm.py: wrong result c[{i},{j}]={c[i, j]} expected {expect}", file=sys.stderr)
        return 4

    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                          "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(json.dumps({"n": n, "numpy": np.__version__, "kernel": kernel, "env": env,
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
