#!/usr/bin/env python3
"""Ratios for scripts/compare-calibrate.sh: `scalelab calibrate`'s triad and DGEMM against C STREAM
and numpy/OpenBLAS, measured in the same rounds.

    compare_calibrate.py report --out DIR
    compare_calibrate.py triad --out DIR

`triad` (compare-calibrate.sh --triad): DIR holds, per round R, calibrate/roundR.json (`scalelab
calibrate --triad-only`), after/roundR/ and, if measured, before/roundR/ (runs of stream.triad:
their measurements.csv), and load/roundR.txt. Prints per round and core count the workload's
median GB/s over calibrate's best (what report.md's "% measured" shows), median over median and
best over best, then their medians over rounds.

DIR holds, per round R: calibrate/roundR.json (the machine profile), stream/roundR-tT.txt (one
line of stream_triad per thread count T, plain and -nt), numpy/roundR.json (numpy_dgemm.py) and
load/roundR.txt (load averages before each step). Prints one table row per round and core count,
then the median ratio over rounds with the target (within 5%: 0.95 <= ratio <= 1.05). Exit status 1 when a
file is missing or unreadable.
"""

import argparse
import glob
import json
import os
import re
import statistics
import sys


def stream_line(path):
    with open(path) as f:
        m = re.search(r"threads=(\d+) n=(\d+) best_gbps=([\d.]+) median_gbps=([\d.]+)", f.read())
    if not m:
        raise ValueError(f"{path}: no stream_triad result line")
    return {"threads": int(m[1]), "n": int(m[2]), "best": float(m[3]), "median": float(m[4])}


def run_gbps(run_dir):
    """{threads: [GB/s of each repetition]} from a run's measurements.csv (ok rows only)."""
    import csv

    per, sizes = {}, set()
    with open(os.path.join(run_dir, "measurements.csv")) as f:
        for row in csv.DictReader(f):
            if row["status"] == "ok" and row["gbps"]:
                sizes.add(int(row["size"]))
                per.setdefault(int(row["threads"]), []).append(float(row["gbps"]))
    if not per:
        raise ValueError(f"{run_dir}/measurements.csv: no ok repetitions")
    return per, sizes


def triad(out):
    rounds = sorted(int(re.search(r"round(\d+)", p)[1]) for p in glob.glob(f"{out}/calibrate/round*.json"))
    if not rounds:
        print(f"no calibrate/round*.json in {out}", file=sys.stderr)
        return 1
    rows = {}
    print("round  which   cores  calib best/median GB/s  workload best/median GB/s  median/best  median/median  best/best  load (1 min)")
    for r in rounds:
        with open(f"{out}/calibrate/round{r}.json") as f:
            doc = json.load(f)
        cal = {b["cores"]: b for b in doc["triad"]}
        with open(f"{out}/load/round{r}.txt") as f:
            load = f.read().strip()
        for which in ["after", "before"]:
            d = f"{out}/{which}/round{r}"
            if not os.path.isdir(d):
                continue
            try:
                wl, sizes = run_gbps(d)
            except (OSError, ValueError) as e:
                print(f"{d}: {e}", file=sys.stderr)
                return 1
            if sizes != {doc["elements"]}:
                print(f"{d}: arrays of {sorted(sizes)} elements, calibrate's of {doc['elements']}: not comparable", file=sys.stderr)
                return 1
            for cores, reps in sorted(wl.items()):
                c = cal.get(cores)
                if c is None:
                    continue
                med, best = statistics.median(reps), max(reps)
                ratios = (med / c["gbps"], med / c["gbps_median"], best / c["gbps"])
                rows.setdefault((which, cores), []).append(ratios)
                print(f"{r:5}  {which:6}  {cores:5}  {c['gbps']:8.1f} / {c['gbps_median']:<8.1f}     {best:8.1f} / {med:<8.1f}        "
                      f"{ratios[0]:.3f}        {ratios[1]:.3f}          {ratios[2]:.3f}      {load}")
    print()
    print("median over rounds          median/best  median/median  best/best")
    for (which, cores), rs in sorted(rows.items()):
        m = [statistics.median(x[i] for x in rs) for i in range(3)]
        print(f"  {which:6} {cores} core(s)           {m[0]:.3f}        {m[1]:.3f}          {m[2]:.3f}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["report", "triad"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = args.out
    if args.what == "triad":
        return triad(out)
    rounds = sorted(int(re.search(r"round(\d+)", p)[1]) for p in glob.glob(f"{out}/calibrate/round*.json"))
    if not rounds:
        print(f"no calibrate/round*.json in {out}", file=sys.stderr)
        return 1
    triad_rows, gemm_rows = [], []
    for r in rounds:
        prof = json.load(open(f"{out}/calibrate/round{r}.json"))
        numpy = json.load(open(f"{out}/numpy/round{r}.json"))
        load = open(f"{out}/load/round{r}.txt").read().split()
        for t in prof["triad"]:
            cores = t["cores"]
            c = stream_line(f"{out}/stream/round{r}-t{cores}.txt")
            nt = stream_line(f"{out}/stream/round{r}-t{cores}-nt.txt")
            n = t["working_set_bytes"] // 24
            if c["n"] != n:
                print(f"round {r}: C arrays hold {c['n']} doubles, scalelab's {n}", file=sys.stderr)
                return 1
            triad_rows.append((r, cores, t["gbps"], c["best"], nt["best"], load))
        by_threads = {e["threads"]: e for e in numpy["results"]}
        for cores in sorted({g["cores"] for g in prof["dgemm"]}):
            if cores not in by_threads:
                continue
            np_g = by_threads[cores]["gflops_best"]
            if numpy["n"] != prof["dgemm"][0]["n"]:
                print(f"round {r}: numpy n={numpy['n']}, scalelab n={prof['dgemm'][0]['n']}", file=sys.stderr)
                return 1
            v = {g["variant"]: g["gflops"] for g in prof["dgemm"] if g["cores"] == cores}
            gemm_rows.append((r, cores, v.get("tuned"), v.get("faer"), np_g, load))

    print("STREAM triad, best of the repetitions, GB/s (C: gcc -O3 -march=native -fopenmp; C-nt: the same with nontemporal stores)")
    print(f"{'round':>5} {'cores':>5} {'scalelab':>9} {'C':>9} {'C-nt':>9} {'ratio':>7} {'vs C-nt':>8}  load (before C, calibrate, numpy)")
    for r, cores, s, c, nt, load in triad_rows:
        print(f"{r:>5} {cores:>5} {s:>9.2f} {c:>9.2f} {nt:>9.2f} {s / c:>7.3f} {s / nt:>8.3f}  {' '.join(load)}")
    print()
    print(f"DGEMM n={prof['dgemm'][0]['n']}, best of the repetitions, GFLOP/s (numpy: {numpy['kernel']['internal_api']} "
          f"{numpy['kernel']['version']} {numpy['kernel']['architecture']})")
    print(f"{'round':>5} {'cores':>5} {'tuned':>9} {'faer':>9} {'numpy':>9} {'best/np':>8} {'tuned/np':>9}  load")
    for r, cores, tu, fa, np_g, load in gemm_rows:
        best = max(x for x in (tu, fa) if x)
        print(f"{r:>5} {cores:>5} {tu:>9.1f} {fa:>9.1f} {np_g:>9.1f} {best / np_g:>8.3f} {tu / np_g:>9.3f}  {' '.join(load)}")
    print()
    print("Median over rounds (target from the issue: within 5%: 0.95 <= ratio <= 1.05):")

    def verdict(m):
        if 0.95 <= m <= 1.05:
            return "within 5%"
        return f"NOT within 5%: scalelab {'faster' if m > 1 else 'slower'} by {abs(m - 1):.0%}"

    for cores in sorted({row[1] for row in triad_rows}):
        ratios = [s / c for _, k, s, c, _, _ in triad_rows if k == cores]
        nt = [s / c for _, k, s, _, c, _ in triad_rows if k == cores]
        m, mnt = statistics.median(ratios), statistics.median(nt)
        print(f"  triad  {cores} core(s): scalelab/C STREAM {m:.3f} ({verdict(m)}); "
              f"scalelab/C-nt {mnt:.3f} ({verdict(mnt)})")
    for cores in sorted({row[1] for row in gemm_rows}):
        ratios = [max(x for x in (tu, fa) if x) / np_g for _, k, tu, fa, np_g, _ in gemm_rows if k == cores]
        m = statistics.median(ratios)
        print(f"  dgemm  {cores} core(s): best scalelab variant/numpy {m:.3f} ({verdict(m)})")
    print("Ratios on 2 cores mix placements (NOTES.md) unless every round ran in the same one; load above the")
    print("core count means other programs shared the cores: read such ratios as noise-limited.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
