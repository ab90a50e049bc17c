#!/usr/bin/env python3
"""Helpers of scripts/compare-hpl.sh: hpcc's input, the manifests, reading both sides, the verdict.

  hpcc-input --dir D --n N --nb NB --q Q    write D/hpccinf.txt: HPL at N, NB on a 1 x Q grid
  manifest --out F --n N --nb NB --ranks R  write a scalelab manifest: hpl.lu (R = 1, 1 thread)
                                            or mpi.hpl.lu (R ranks x 1 thread), 3 repetitions
  hpcc-record FILE --round K --side S --log L     append hpcc's HPL_Tflops (as GFLOP/s) to L
  scalelab-record RUN --round K --side S --log L  append the best verified repetition to L
  timed --out F -- CMD...                   run CMD, write its wall and children's CPU seconds to F
  verdict --log L                           print the side-by-side table and the ratios

Beside each figure goes the share of the cores the measured program got: for hpcc the CPU seconds
of the whole launch over its wall time (`timed`), for scalelab the point's own `point_cores`
(docs/benchmarking.md, "The machine's state beside every point"). On a machine that others load,
GFLOP/s per core obtained is the figure that still compares; it is printed as a second ratio.

The measurement log is JSON lines (compare.py's format), one per measurement, with the load
average read just before it.
"""

import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (scripts/lib/compare.py)
from compare import Fail, append  # noqa: E402

# Targets of the comparison (docs/benchmarking.md, "HPL").
TARGETS = {"1p": 0.8, "2p": 0.7}


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cmd_hpcc_input(args):
    vec = args.n * args.n // 3
    text = compare.HPCCINF.format(n=args.n, n2=args.n // 2, nb=args.nb, vec=vec,
                                  mib=vec * 8 / 2**20)
    # One explicit PTRANS size, as compare_mpi.py does (hpcc 1.5 otherwise may read a garbage size).
    text, k = re.subn(r"(?m)^0(\s+Number of additional problem sizes for PTRANS)$", r"1\1", text)
    if k != 1:
        raise Fail("compare.py's HPCCINF template changed: no PTRANS size line to adjust")
    # HPL's grid: 1 x Q (Q = the rank count), the grid mpi.hpl.lu picks for 2 ranks.
    text, k = re.subn(r"(?m)^1(\s+Qs)$", rf"{args.q}\1", text)
    if k != 1:
        raise Fail("compare.py's HPCCINF template changed: no Qs line")
    with open(os.path.join(args.dir, "hpccinf.txt"), "w") as f:
        f.write(text)


def cmd_manifest(args):
    if args.ranks == 1:
        study = f'workload = "hpl.lu"\nthreads = 1\n'
    else:
        study = f'workload = "mpi.hpl.lu"\nranks = {args.ranks}\nthreads = 1\n'
    text = (f'name = "compare-hpl-{args.ranks}p"\nrepetitions = 3\nwarmup = 1\ntimeout = "20m"\n\n'
            f'[[study]]\n{study}size = {args.n}\nnb = {args.nb}\n')
    with open(args.out, "w") as f:
        f.write(text)


def cmd_timed(args):
    import resource
    import subprocess
    import time
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        raise Fail("timed: no command")
    t0 = time.time()
    rc = subprocess.call(cmd)
    wall = time.time() - t0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(args.out, "w") as f:
        json.dump({"wall_s": wall, "cpu_s": r.ru_utime + r.ru_stime, "rc": rc}, f)
    return rc


def cmd_hpcc_record(args):
    s = compare.hpcc_summary(args.file)
    cores = None
    timing = os.path.join(os.path.dirname(args.file), "timing.json")
    if os.path.exists(timing):
        with open(timing) as f:
            t = json.load(f)
        if t["wall_s"] > 0:
            cores = t["cpu_s"] / t["wall_s"]
    tflops = compare.num(s, "HPL_Tflops", args.file)
    n = int(float(s.get("HPL_N", "0")))
    nb = int(float(s.get("HPL_NB", "0")))
    append(args.log, args.round, args.side, "hpl_gflops", tflops * 1e3, "GFLOP/s",
           f"hpcc HPL n={n} nb={nb}; load average {args.load}; cores obtained {fmt_cores(cores)}",
           load1=args.load, n=n, nb=nb, cores=cores)


def cmd_scalelab_record(args):
    best, n, nb, cores = None, None, None, None
    points = os.path.join(args.run, "points")
    for name in sorted(os.listdir(points)):
        with open(os.path.join(points, name)) as f:
            rec = json.load(f)
        if rec["status"] != "ok":
            raise Fail(f"{points}/{name}: status {rec['status']}: {rec.get('reason', '')}")
        n = rec["size"]
        nb = rec["point"]["params"].get("nb")
        cores = (rec.get("load") or {}).get("point_cores")
        for rep in rec["repetitions"]:
            if not rep["verified"]:
                raise Fail(f"{points}/{name}: an unverified repetition")
            g = rec["work"]["flops"] / rep["seconds"] / 1e9
            best = g if best is None else max(best, g)
    if best is None:
        raise Fail(f"{points}: no records")
    append(args.log, args.round, args.side, "hpl_gflops", best, "GFLOP/s",
           f"scalelab best of 3 verified repetitions, n={n} nb={nb}; load average {args.load}; "
           f"cores obtained {fmt_cores(cores)}",
           load1=args.load, n=n, nb=nb, cores=cores)


def fmt_cores(c):
    return "?" if c is None else f"{c:.2f}"


def per_core(r):
    c = r["extra"].get("cores")
    return r["value"] / c if c else None


def cmd_verdict(args):
    rows = [json.loads(line) for line in open(args.log) if line.strip()]
    out = []
    ok = True
    for case, label in (("1p", "1 process"), ("2p", "2 ranks (1 x 2 grid)")):
        ref = {r["round"]: r for r in rows if r["side"] == f"hpcc-{case}"}
        ours = {r["round"]: r for r in rows if r["side"] == f"scalelab-{case}"}
        rounds = sorted(set(ref) & set(ours))
        if not rounds:
            out.append(f"{label}: no complete round")
            ok = False
            continue
        out.append(f"{label} (target: scalelab >= {TARGETS[case]} x hpcc):")
        ratios = []
        for k in rounds:
            a, b = ref[k], ours[k]
            ratio = b["value"] / a["value"]
            ratios.append(ratio)
            pa, pb = per_core(a), per_core(b)
            norm = f"{pb / pa:.2f}" if pa and pb else "?"
            out.append(f"  round {k}: hpcc {a['value']:.2f} GFLOP/s (load {a['extra']['load1']}, "
                       f"{fmt_cores(a['extra'].get('cores'))} cores obtained), "
                       f"scalelab {b['value']:.2f} GFLOP/s (load {b['extra']['load1']}, "
                       f"{fmt_cores(b['extra'].get('cores'))} cores obtained): "
                       f"ratio {ratio:.2f}, per core obtained {norm}")
        best_ratio = max(ours[k]["value"] for k in rounds) / max(ref[k]["value"] for k in rounds)
        med = statistics.median(ratios)
        verdict = "met" if med >= TARGETS[case] else "MISSED"
        out.append(f"  median of round ratios {med:.2f}, best vs best {best_ratio:.2f}: "
                   f"target {verdict}")
    print("\n".join(out))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("hpcc-input")
    a.add_argument("--dir", required=True)
    a.add_argument("--n", type=int, required=True)
    a.add_argument("--nb", type=int, required=True)
    a.add_argument("--q", type=int, required=True)
    a = sub.add_parser("manifest")
    a.add_argument("--out", required=True)
    a.add_argument("--n", type=int, required=True)
    a.add_argument("--nb", type=int, required=True)
    a.add_argument("--ranks", type=int, required=True)
    for name in ("hpcc-record", "scalelab-record"):
        a = sub.add_parser(name)
        a.add_argument("file" if name == "hpcc-record" else "run")
        a.add_argument("--round", type=int, required=True)
        a.add_argument("--side", required=True)
        a.add_argument("--log", required=True)
        a.add_argument("--load", type=float, default=None)
    a = sub.add_parser("timed")
    a.add_argument("--out", required=True)
    a.add_argument("command", nargs=argparse.REMAINDER)
    a = sub.add_parser("verdict")
    a.add_argument("--log", required=True)
    args = p.parse_args()
    try:
        if args.cmd in ("hpcc-record", "scalelab-record") and args.load is None:
            args.load = loadavg()
        rc = {"hpcc-input": cmd_hpcc_input, "manifest": cmd_manifest,
              "hpcc-record": cmd_hpcc_record, "scalelab-record": cmd_scalelab_record,
              "timed": cmd_timed, "verdict": cmd_verdict}[args.cmd](args)
        sys.exit(rc or 0)
    except Fail as e:
        print(f"compare-hpl: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
