#!/usr/bin/env python3
"""Helpers of scripts/compare-reference.sh (standard library only).

Subcommands (each prints shell-friendly lines or appends JSON lines to a log):

  manifest-size MANIFEST                 element count of the stream.triad study's single size
  hpcc-input --elements E --dir D        write D/hpccinf.txt whose STREAM arrays hold >= E doubles
  hpcc-record OUT --np K --round R --log L      parse hpccoutf.txt, append measurements to L
  scalelab-record CSV --round R --log L         parse a scalelab summary.csv, append to L
  numpy-record JSON --round R --log L           parse numpy_dgemm.py's output, append to L
  probe-record --when W --round R --log L -- LINE   parse a c2c_probe line, append to L
  report --log L [--rounds R]            print every measurement, then the comparison table

A measurement line in the log is one JSON object:
  {"round": 1, "side": "reference"|"scalelab"|"probe", "metric": "...", "value": 12.3,
   "unit": "GB/s", "what": "how it was measured", "extra": {...}}

Units: GB/s is 1e9 bytes/s (STREAM's and hpcc's convention), GFLOP/s is 1e9 flop/s.
"""

import argparse
import csv
import json
import math
import re
import statistics
import sys

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - Debian 12 has 3.11
    tomllib = None


class Fail(Exception):
    """An error the shell script reports as 'could not run'."""


# ------------------------------------------------------------------------------------------------
# Sizes
# ------------------------------------------------------------------------------------------------

_UNITS = {
    "": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}


def elements_of(size, elem_bytes=8):
    """A manifest size (8388608, "10M", "64MiB") as a number of elem_bytes-byte elements.

    Byte units (B, kB, MB, KiB, MiB, ...) are divided by the element width, plain counts and
    decimal suffixes (k, M, G, T) are element counts: the same rules as scalelab's `Size`.
    """
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(size))
    if not m or m.group(2).lower() not in _UNITS:
        raise Fail(f"cannot read size {size!r} (expected e.g. 8388608, \"10M\" or \"64MiB\")")
    num, unit = float(m.group(1)), m.group(2).lower()
    value = int(num * _UNITS[unit])
    if unit.endswith("b"):
        return value // elem_bytes
    return value


def cmd_manifest_size(args):
    if tomllib is None:
        raise Fail("Python 3.11+ is needed to read TOML manifests")
    with open(args.manifest, "rb") as f:
        doc = tomllib.load(f)
    studies = [s for s in doc.get("study", []) if s.get("workload") == args.workload]
    if len(studies) != 1:
        raise Fail(f"{args.manifest}: expected one [[study]] with workload = \"{args.workload}\"")
    sizes = studies[0].get("size")
    sizes = sizes if isinstance(sizes, list) else [sizes]
    if len(sizes) != 1 or sizes[0] is None:
        raise Fail(f"{args.manifest}: the {args.workload} study needs exactly one size "
                   f"(hpcc runs one array size per launch)")
    print(elements_of(sizes[0]))


# ------------------------------------------------------------------------------------------------
# hpcc input
# ------------------------------------------------------------------------------------------------

# hpcc sizes everything from HPL's largest N and smallest process grid (hpcc's io.c):
#   HPLMaxProcMem     = N_max^2 * 8 / min(P*Q)                 bytes per process
#   STREAM_VectorSize = HPLMaxProcMem / 8 / 3 = N^2 / (3 P Q)  doubles per array (3 arrays)
#   DGEMM n           = sqrt(HPLMaxProcMem / 8 / 3) = N / sqrt(3)
#   RandomAccess table: the largest power of two <= HPLMaxProcMem / 16 words
#   FFT: a power of two near HPLMaxProcMem / 64 complex numbers; PTRANS: N / 2.
# So the array size fixes N = ceil(sqrt(3 E)). With one 1 x 1 grid, min(P*Q) = 1 under both
# `mpirun -np 1` and `-np 2`: every process gets the same arrays, and HPL runs on rank 0 only
# (the other rank has no place in the grid and skips it), which keeps HPL cheap.
HPCCINF = """\
HPLinpack benchmark input file (written by scripts/lib/compare.py for compare-reference.sh)
Innovative Computing Laboratory, University of Tennessee
HPL.out      output file name (if any)
8            device out (6=stdout,7=stderr,file)
1            # of problems sizes (N)
{n:<12d} Ns   (STREAM arrays: N^2/3 = {vec} doubles = {mib:.2f} MiB each)
1            # of NBs
{nb:<12d} NBs
0            PMAP process mapping (0=Row-,1=Column-major)
1            # of process grids (P x Q)
1            Ps   (1 x 1 only: STREAM sizes from the smallest grid; HPL on one rank)
1            Qs
16.0         threshold
1            # of panel fact
2            PFACTs (0=left, 1=Crout, 2=Right)
1            # of recursive stopping criterium
4            NBMINs (>= 1)
1            # of panels in recursion
2            NDIVs
1            # of recursive panel fact.
1            RFACTs (0=left, 1=Crout, 2=Right)
1            # of broadcast
1            BCASTs (0=1rg,1=1rM,2=2rg,3=2rM,4=Lng,5=LnM)
1            # of lookahead depth
1            DEPTHs (>=0)
2            SWAP (0=bin-exch,1=long,2=mix)
64           swapping threshold
0            L1 in (0=transposed,1=no-transposed) form
0            U  in (0=transposed,1=no-transposed) form
1            Equilibration (0=no,1=yes)
8            memory alignment in double (> 0)
##### This line (no. 32) is ignored (it serves as a separator). ######
0                               Number of additional problem sizes for PTRANS
{n2}                            values of N
0                               number of additional blocking sizes for PTRANS
{nb}                             values of NB
"""


def hpcc_n_for(elements):
    """Smallest HPL N whose STREAM arrays (floor(N^2 / 3) doubles) hold at least `elements`."""
    n = math.isqrt(3 * elements)
    while n * n // 3 < elements:
        n += 1
    return n


def cmd_hpcc_input(args):
    n = hpcc_n_for(args.elements)
    vec = n * n // 3
    text = HPCCINF.format(n=n, n2=n // 2, nb=args.nb, vec=vec, mib=vec * 8 / 2**20)
    with open(f"{args.dir}/hpccinf.txt", "w") as f:
        f.write(text)
    print(f"hpcc_n={n} hpcc_stream_elements={vec} hpcc_dgemm_n={math.isqrt(vec)}")


# ------------------------------------------------------------------------------------------------
# Measurement log
# ------------------------------------------------------------------------------------------------

def append(log, round_, side, metric, value, unit, what, **extra):
    rec = {"round": round_, "side": side, "metric": metric, "value": value, "unit": unit,
           "what": what, "extra": extra}
    with open(log, "a") as f:
        f.write(json.dumps(rec) + "\n")
    # One line per measurement as it comes, so a long run shows progress and every value.
    print(f"    {side:<9} {metric:<16} {value:10.3f} {unit:<7} {what}")


def load(log):
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


def hpcc_summary(path):
    """The key=value lines between 'Begin of Summary section.' and 'End of Summary section.'."""
    out, inside = {}, False
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line == "Begin of Summary section.":
                inside = True
            elif line == "End of Summary section.":
                inside = False
            elif inside and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
    if not out:
        raise Fail(f"{path}: no summary section (hpcc did not finish; see the log beside it)")
    return out


def num(summary, key, path):
    try:
        v = float(summary[key])
    except (KeyError, ValueError):
        raise Fail(f"{path}: no number for {key}")
    if v < 0:  # hpcc writes -1 for a test that did not run
        raise Fail(f"{path}: {key}={summary[key]} (the test did not run)")
    return v


def cmd_hpcc_record(args):
    s = hpcc_summary(args.out)
    p = args.out
    if s.get("Success") != "1":
        raise Fail(f"{p}: Success={s.get('Success')} (a verification failed; see {p})")
    procs = int(num(s, "CommWorldProcs", p))
    if procs != args.np:
        raise Fail(f"{p}: CommWorldProcs={procs}, expected {args.np}")
    vec = int(num(s, "STREAM_VectorSize", p))
    common = dict(stream_elements=vec, hpl_n=int(num(s, "HPL_N", p)))
    if args.np == 1:
        append(args.log, args.round, "reference", "triad_t1", num(s, "SingleSTREAM_Triad", p),
               "GB/s", "hpcc SingleSTREAM_Triad, mpirun -np 1", **common)
        append(args.log, args.round, "reference", "hpcc_dgemm_t1", num(s, "SingleDGEMM_Gflops", p),
               "GFLOP/s", f"hpcc SingleDGEMM, n={int(num(s, 'DGEMM_N', p))}, 1 OpenBLAS thread",
               dgemm_n=int(num(s, "DGEMM_N", p)))
    else:
        # StarSTREAM runs STREAM on every rank at once and reports the *average per process*
        # (hpcc's stream.c sums the ranks' rates and divides by the number of ranks), so the
        # machine's aggregate bandwidth is that value times the number of processes.
        per_proc = num(s, "StarSTREAM_Triad", p)
        append(args.log, args.round, "reference", f"triad_t{args.np}", per_proc * procs, "GB/s",
               f"hpcc StarSTREAM_Triad x {procs} ranks, mpirun -np {procs}",
               per_process=per_proc, **common)
        append(args.log, args.round, "probe", "pingpong_min_us", num(s, "MinPingPongLatency_usec", p),
               "us", f"hpcc MinPingPongLatency (8 bytes), mpirun -np {procs}",
               avg_us=num(s, "AvgPingPongLatency_usec", p), max_us=num(s, "MaxPingPongLatency_usec", p))


def cmd_scalelab_record(args):
    need = ["workload", "variant", "threads", "size", "median_s", "min_s", "status"]
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise Fail(f"{args.csv}: no rows")
    missing = [c for c in need if c not in rows[0]]
    if missing:
        raise Fail(f"{args.csv}: missing columns {missing}; header is {list(rows[0])}")
    seen = 0
    for row in rows:
        if row["workload"] not in ("stream.triad", "gemm"):
            continue
        if row["status"] != "ok":
            raise Fail(f"{args.csv}: {row['workload']} {row['variant']} threads={row['threads']} "
                       f"status={row['status']}")
        threads = int(row["threads"])
        n = elements_of(int(row["size"]) if row["size"].isdigit() else row["size"])
        tmin, tmed = float(row["min_s"]), float(row["median_s"])
        if row["workload"] == "stream.triad":
            # Triad a[i] = b[i] + s*c[i]: 2 loads + 1 store of 8 bytes = 24 n bytes (STREAM's
            # count; write-allocate traffic is not counted, as in STREAM and hpcc).
            work = 24.0 * n
            append(args.log, args.round, "scalelab", f"triad_t{threads}", work / tmin / 1e9, "GB/s",
                   f"scalelab stream.triad, {threads} thread(s), 24n/min_s",
                   elements=n, median=work / tmed / 1e9, min_s=tmin, median_s=tmed)
        else:
            work = 2.0 * n ** 3
            variant = row["variant"] or "default"
            append(args.log, args.round, "scalelab", f"gemm_{variant}_t{threads}", work / tmin / 1e9,
                   "GFLOP/s", f"scalelab gemm {variant}, n={n}, {threads} thread(s), 2n^3/min_s",
                   n=n, median=work / tmed / 1e9, min_s=tmin, median_s=tmed)
        seen += 1
    if seen == 0:
        raise Fail(f"{args.csv}: no stream.triad or gemm rows")


def cmd_numpy_record(args):
    with open(args.json) as f:
        d = json.load(f)
    k = d["kernel"]
    kernel = f"{k.get('internal_api')} {k.get('version')} {k.get('architecture')}"
    for r in d["results"]:
        if r["seen_threads"] != r["threads"]:
            raise Fail(f"numpy ran {r['seen_threads']} BLAS threads where {r['threads']} were asked")
        append(args.log, args.round, "reference", f"numpy_t{r['threads']}", r["gflops_best"],
               "GFLOP/s", f"numpy matmul n={d['n']}, {r['threads']} thread(s) ({kernel})",
               median=r["gflops_median"], n=d["n"], kernel=k, env=d["env"], numpy=d["numpy"])


def cmd_probe_record(args):
    m = re.search(r"c2c_ns=([0-9.]+) c2c_median_ns=([0-9.]+)", " ".join(args.line))
    if not m:
        raise Fail(f"cannot read the probe output {' '.join(args.line)!r}")
    append(args.log, args.round, "probe", f"c2c_{args.when}_ns", float(m.group(1)), "ns",
           f"core-to-core one-way latency, cpu 0 <-> 1, {args.when}", median=float(m.group(2)))


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------

# (metric label, scalelab metric, reference metric, target ratio)
RATIOS = [
    ("STREAM triad, 1 core", "triad_t1", "triad_t1", 0.95),
    ("STREAM triad, 2 cores", "triad_t2", "triad_t2", 0.95),
    ("DGEMM tuned n=2048, 1 thread vs numpy", "gemm_tuned_t1", "numpy_t1", 0.60),
    ("DGEMM faer n=2048, 1 thread vs numpy", "gemm_faer_t1", "numpy_t1", 0.90),
]
SPEEDUP_TARGET = 1.85

# Placement thresholds. The two vCPUs sit "near" or "far" from each other and move every few
# seconds to minutes. Measured on the course VMs: the core-to-core probe reads about 25 ns near
# and 145-170 ns far; NOTES.md gives hpcc/OpenMPI 8-byte ping-pong 0.10-0.13 us near and
# 0.36-0.39 us far. A reading between the bands, or a probe whose best and median blocks disagree
# (the placement moved while it ran), is "mixed".
C2C_NEAR_NS, C2C_FAR_NS = 60.0, 100.0
PINGPONG_NEAR_US, PINGPONG_FAR_US = 0.2, 0.3


def classify(value, median, near, far):
    lo, hi = min(value, median), max(value, median)
    if hi < near:
        return "near"
    if lo > far:
        return "far"
    return "mixed"


def by_round(recs, side, metric):
    return {r["round"]: r for r in recs if r["side"] == side and r["metric"] == metric}


def fmt(v, unit=""):
    if v is None:
        return "-"
    return f"{v:.2f}{(' ' + unit) if unit else ''}" if abs(v) < 1000 else f"{v:.0f} {unit}".strip()


def placements(recs, rnd):
    """(scalelab placement, reference placement, text) for the 2-core measurements of a round.

    scalelab's stream run is bracketed by core-to-core probes: the same class before and after
    names its placement (else "changed"). hpcc's StarSTREAM is labelled by the ping-pong of the
    same hpcc launch, a few seconds later (the nearest probe there is).
    """
    s_place, r_place, parts = None, None, []
    pp = by_round(recs, "probe", "pingpong_min_us").get(rnd)
    if pp:
        avg = pp["extra"].get("avg_us", pp["value"])
        r_place = classify(pp["value"], avg, PINGPONG_NEAR_US, PINGPONG_FAR_US)
        parts.append(f"hpcc: {r_place} (ping-pong {pp['value']:.2f} us)")
    cs = [by_round(recs, "probe", f"c2c_{w}_ns").get(rnd) for w in ("before", "after")]
    if all(cs):
        classes = [classify(c["value"], c["extra"].get("median", c["value"]), C2C_NEAR_NS, C2C_FAR_NS)
                   for c in cs]
        s_place = classes[0] if classes[0] == classes[1] and classes[0] != "mixed" else "changed"
        parts.insert(0, f"scalelab: {s_place} (c2c {cs[0]['value']:.0f} -> {cs[1]['value']:.0f} ns)")
    return s_place, r_place, "; ".join(parts)


def cmd_report(args):
    recs = load(args.log)
    rounds = sorted({r["round"] for r in recs})
    out = []
    w = out.append

    w("Every measurement (each is the best repetition of one run; GB/s = 1e9 B/s):")
    w(f"  {'round':>5}  {'side':<9}  {'metric':<16}  {'value':>14}  {'median rep':>14}  how")
    for r in sorted(recs, key=lambda r: (r["round"], r["side"] == "probe", r["metric"], r["side"])):
        med = r["extra"].get("median")
        w(f"  {r['round']:>5}  {r['side']:<9}  {r['metric']:<16}  {fmt(r['value'], r['unit']):>14}  "
          f"{fmt(med, r['unit']) if med is not None else '':>14}  {r['what']}")
    w("")

    missing = []
    rows = []
    notes = []
    w("Per-round ratios (scalelab / reference in the same round; 2-core rows show the placements):")
    for label, sm, rm, target in RATIOS:
        s, ref = by_round(recs, "scalelab", sm), by_round(recs, "reference", rm)
        two_core = sm.endswith("_t2")
        ratios = []
        for rnd in rounds:
            if rnd in s and rnd in ref:
                ratio = s[rnd]["value"] / ref[rnd]["value"]
                ratios.append(ratio)
                probe = placements(recs, rnd)[2] if two_core else ""
                w(f"  round {rnd}  {label:<40} {fmt(s[rnd]['value']):>8} / {fmt(ref[rnd]['value']):>8}"
                  f" = {ratio:.3f}  {probe}".rstrip())
        if not s or not ref:
            missing.append(label)
            rows.append((label, None, None, None, None, f">= {target:.2f}", "MISSING"))
            continue
        s_best = max(s.values(), key=lambda v: v["value"])
        r_best = max(ref.values(), key=lambda v: v["value"])
        best_ratio = s_best["value"] / r_best["value"]
        unit = s_best["unit"]
        rows.append((label, f"{s_best['value']:.2f} {unit}", f"{r_best['value']:.2f} {unit}", best_ratio,
                     statistics.median(ratios) if ratios else None, f">= {target:.2f}",
                     "PASS" if best_ratio >= target else "FAIL"))
        if two_core:
            # Like with like: the best of each side among the rounds measured in one placement.
            for place in ("near", "far"):
                sp = [s[r]["value"] for r in s if placements(recs, r)[0] == place]
                rp = [ref[r]["value"] for r in ref if placements(recs, r)[1] == place]
                if sp and rp:
                    rows.append((f"  same placement: both {place}", f"{max(sp):.2f} {unit}",
                                 f"{max(rp):.2f} {unit}", max(sp) / max(rp), None, "(info)", ""))
            sb, rb = placements(recs, s_best["round"])[0], placements(recs, r_best["round"])[1]
            if sb != rb:
                notes.append(f"{label}: the best scalelab value was measured {sb or 'unprobed'}, the best "
                             f"reference {rb or 'unprobed'}; see the same-placement rows and per-round lines.")

    # Speedup of scalelab's tuned DGEMM from 1 to 2 threads (numpy's speedup beside it).
    t1, t2 = by_round(recs, "scalelab", "gemm_tuned_t1"), by_round(recs, "scalelab", "gemm_tuned_t2")
    n1, n2 = by_round(recs, "reference", "numpy_t1"), by_round(recs, "reference", "numpy_t2")
    label = "DGEMM tuned speedup 2 threads / 1"
    if t1 and t2:
        sp = [t2[r]["value"] / t1[r]["value"] for r in rounds if r in t1 and r in t2]
        for r in rounds:
            if r not in t1 or r not in t2:
                continue
            line = f"  round {r}  {label:<40} {t2[r]['value'] / t1[r]['value']:.3f}x"
            if r in n1 and r in n2:
                line += f" (numpy {n2[r]['value'] / n1[r]['value']:.3f}x)"
            w(line)
        best = max(v["value"] for v in t2.values()) / max(v["value"] for v in t1.values())
        ref_sp = (max(v["value"] for v in n2.values()) / max(v["value"] for v in n1.values())
                  if n1 and n2 else None)
        rows.append((label, f"{best:.3f}x", f"{ref_sp:.3f}x numpy" if ref_sp else "-", None,
                     statistics.median(sp), f">= {SPEEDUP_TARGET:.2f}x",
                     "PASS" if best >= SPEEDUP_TARGET else "FAIL"))
    else:
        missing.append(label)
        rows.append((label, None, None, None, None, f">= {SPEEDUP_TARGET:.2f}x", "MISSING"))
    w("")

    # Information only: hpcc's own DGEMM (n = N/sqrt(3), not 2048) and its OpenBLAS.
    hd = by_round(recs, "reference", "hpcc_dgemm_t1")
    if hd:
        n = next(iter(hd.values()))["extra"].get("dgemm_n")
        w(f"hpcc SingleDGEMM (Debian OpenBLAS, n={n}, information only): best "
          f"{max(v['value'] for v in hd.values()):.2f} GFLOP/s over {len(hd)} run(s)")
        w("")

    w("Comparison (ratio = best scalelab / best reference over all rounds; median = median of "
      "the per-round ratios; speedup = best 2-thread / best 1-thread):")
    head = ("metric", "scalelab", "reference", "ratio", "median", "target", "result")
    table = [head] + [(a, b or "-", c or "-", f"{d:.3f}" if d is not None else "-",
                       f"{e:.3f}" if e is not None else "-", f, g) for a, b, c, d, e, f, g in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        w("  " + "  ".join(str(c).ljust(widths[j]) if j == 0 else str(c).rjust(widths[j])
                           for j, c in enumerate(row)).rstrip())
        if i == 0:
            w("  " + "  ".join("-" * x for x in widths))
    for note in notes:
        w(f"  note: {note}")
    print("\n".join(out))
    if missing:
        print(f"\nmissing measurements: {', '.join(missing)}", file=sys.stderr)
        return 3
    return 0


def main():
    ap = argparse.ArgumentParser(description="helpers of compare-reference.sh")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("manifest-size")
    p.add_argument("manifest")
    p.add_argument("--workload", default="stream.triad")
    p.set_defaults(fn=cmd_manifest_size)

    p = sub.add_parser("hpcc-input")
    p.add_argument("--elements", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--nb", type=int, default=256, help="HPL block size (OpenBLAS likes 192-256)")
    p.set_defaults(fn=cmd_hpcc_input)

    for name, fn, pos in (("hpcc-record", cmd_hpcc_record, "out"),
                          ("scalelab-record", cmd_scalelab_record, "csv"),
                          ("numpy-record", cmd_numpy_record, "json")):
        p = sub.add_parser(name)
        p.add_argument(pos)
        p.add_argument("--round", type=int, required=True)
        p.add_argument("--log", required=True)
        if name == "hpcc-record":
            p.add_argument("--np", type=int, required=True)
        p.set_defaults(fn=fn)

    p = sub.add_parser("probe-record")
    p.add_argument("--when", required=True, choices=["before", "after"])
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("line", nargs="+")
    p.set_defaults(fn=cmd_probe_record)

    p = sub.add_parser("report")
    p.add_argument("--log", required=True)
    p.set_defaults(fn=cmd_report)

    args = ap.parse_args()
    try:
        return args.fn(args) or 0
    except Fail as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
