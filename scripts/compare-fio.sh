#!/usr/bin/env bash
# Compare scalelab's io.seq with fio on the same directory and sizes, interleaved.
#
#   scripts/compare-fio.sh [--dir DIR] [--block SIZE] [--transfers T1,T2,...] [--rounds N]
#                          [--out DIR] [--no-build] [--scalelab PATH]
#
# Defaults: --dir /tmp --block 512MiB --transfers 4KiB,1MiB --rounds 4.
# For each round, transfer size and mode (sequential write, then sequential read), fio and
# scalelab each make one pass over a fresh file of BLOCK bytes in TRANSFER-sized calls; the order
# alternates between rounds (fio first in odd rounds, scalelab first in even ones), so drift and
# the neighbours' load fall on both alike. The 1-minute load average is read before every pass.
#
# fio (apt's `fio`; the version is printed and recorded): one job, `--ioengine=psync` (pwrite and
# pread, the calls io.seq makes), `--rw=write|read --bs=TRANSFER --size=BLOCK --numjobs=1
# --fallocate=none --unlink=1`; writes with `--end_fsync=1` (fio's runtime includes that fsync,
# as io.seq's timed write includes its fsync before close), reads with fio's default
# `--invalidate=1` (the file's pages dropped from the page cache before the job, with
# POSIX_FADV_DONTNEED, as io.seq's `read_from = "other"` does on one rank); fio lays out the file
# to read untimed, as io.seq's prepare writes it untimed. Bandwidth: fio's `bw_bytes`.
# scalelab: `scalelab run` of a one-point manifest (io.seq, 1 rank, layout file-per-process,
# fsync yes, read_from other, warmup 0, repetitions 1); bandwidth = BLOCK / the repetition's
# seconds, and io.seq compares every byte it reads (fio does not verify).
#
# Target: scalelab >= 0.9 x fio for sequential write and read: the geometric mean over rounds of
# the paired per-round ratios (the alternating order cancels a first- or second-pass advantage).
# Exit status: 0 when everything ran (whatever the ratios: this measures), 1 when something
# could not run (fio or python3 missing, a failed pass), with the reason.
# Everything stays in the output folder (default results/compare-fio/<UTC time>/): passes.csv
# (one row per pass), summary.md, the fio JSON and the scalelab runs. See docs/io.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME=compare-fio
PY="$(command -v python3 || true)"

DIR=/tmp
BLOCK=512MiB
TRANSFERS=4KiB,1MiB
ROUNDS=4
OUT=""
BUILD=1
SCALELAB=""

say() { printf '%s\n' "$*"; }
die() {
    printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}
usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) DIR="${2:?--dir needs a directory}"; shift 2 ;;
        --block) BLOCK="${2:?--block needs a size}"; shift 2 ;;
        --transfers) TRANSFERS="${2:?--transfers needs sizes}"; shift 2 ;;
        --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
        --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --scalelab) SCALELAB="${2:?--scalelab needs a path}"; BUILD=0; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 2 ]] || die "--rounds must be 2 or more (interleaving needs two rounds)"
command -v fio >/dev/null || die "fio not found: apt-get install fio"
[[ -n $PY ]] || die "python3 not found"
[[ -d $DIR && -w $DIR ]] || die "--dir $DIR is not a writable directory"
[[ ${DIR:0:1} == / ]] || die "--dir must be an absolute path (io.seq's rule), got $DIR"

# Sizes as fio and scalelab write them: "4KiB" -> fio "4KiB" works for both (fio takes KiB/MiB).
bytes_of() { # bytes_of SIZE
    "$PY" -c '
import re, sys
m = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB)", sys.argv[1])
if not m: sys.exit("sizes are written like 4KiB, 1MiB, 512MiB (got %r)" % sys.argv[1])
print(int(m[1]) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]])' "$1"
}
BLOCK_BYTES="$(bytes_of "$BLOCK")" || die "bad --block"
IFS=, read -r -a TLIST <<<"$TRANSFERS"
for t in "${TLIST[@]}"; do
    tb="$(bytes_of "$t")" || die "bad transfer size $t"
    ((BLOCK_BYTES % tb == 0)) || die "--block $BLOCK is not a multiple of transfer $t"
done

[[ -n $OUT ]] || OUT="$ROOT/results/compare-fio/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [[ -z $SCALELAB ]]; then
    SCALELAB="$ROOT/target/release/scalelab"
    if [[ $BUILD -eq 1 ]]; then
        say "== cargo build --release"
        (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    fi
fi
[[ -x $SCALELAB ]] || die "$SCALELAB not found: build it with cargo build --release"

FIO_VERSION="$(fio --version)"
PASSES="$OUT/passes.csv"
echo "round,tool,mode,transfer,bytes,seconds,gbps,iops,load1_before" >"$PASSES"
{
    say "# compare-fio $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    say "host: $(hostname), cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), cores: $(nproc)"
    say "dir: $DIR ($(df -hT "$DIR" | awk 'NR==2 {print $1", "$2", "$5" free of "$3}'))"
    say "fio: $FIO_VERSION; scalelab: $SCALELAB ($("$SCALELAB" --version 2>/dev/null || echo unknown))"
    say "block: $BLOCK, transfers: $TRANSFERS, rounds: $ROUNDS"
} | tee "$OUT/setup.txt"

load1() { cut -d' ' -f1 /proc/loadavg; }

run_fio() { # run_fio ROUND MODE TRANSFER
    local round=$1 mode=$2 t=$3 load json extra=()
    json="$OUT/fio/r$round-$mode-$t.json"
    mkdir -p "$OUT/fio"
    if [[ $mode == write ]]; then extra=(--end_fsync=1); else extra=(--invalidate=1); fi
    load="$(load1)"
    fio --name="compare-$mode" --directory="$DIR" --filename="scalelab-compare-fio-$mode.dat" \
        --rw="$mode" --bs="$t" --size="$BLOCK" --ioengine=psync --numjobs=1 \
        --fallocate=none --unlink=1 "${extra[@]}" --output-format=json >"$json" 2>"$json.err" ||
        die "fio failed ($json.err)"
    "$PY" - "$json" "$round" "$mode" "$t" "$load" >>"$PASSES" <<'EOF' || die "cannot read $json"
import json, sys
path, rnd, mode, t, load = sys.argv[1:]
text = open(path).read()
job = json.loads(text[text.index("{"):])["jobs"][0][mode]
secs = job["runtime"] / 1000.0
print(f"{rnd},fio,{mode},{t},{job['io_bytes']},{secs},{job['bw_bytes'] / 1e9},{job['iops']},{load}")
EOF
}

run_scalelab() { # run_scalelab ROUND MODE TRANSFER
    local round=$1 mode=$2 t=$3 load dir
    dir="$OUT/scalelab/r$round-$mode-$t"
    mkdir -p "$OUT/scalelab"
    cat >"$dir.toml" <<EOF
name = "compare-fio"
repetitions = 1
warmup = 0
timeout = "10m"

[[study]]
name = "$mode"
workload = "io.seq"
threads = 1
mode = "$mode"
dir = "$DIR"
block = "$BLOCK"
transfer = "$t"
layout = "file-per-process"
fsync = "yes"
read_from = "other"
EOF
    load="$(load1)"
    "$SCALELAB" run "$dir.toml" --run-dir "$dir" -q >"$dir.log" 2>&1 || die "scalelab failed ($dir.log)"
    "$PY" - "$dir" "$round" "$mode" "$t" "$load" >>"$PASSES" <<'EOF' || die "cannot read the record in $dir"
import glob, json, sys
run, rnd, mode, t, load = sys.argv[1:]
[path] = glob.glob(run + "/points/*.json")
rec = json.load(open(path))
if rec["status"] != "ok":
    sys.exit(f"{path}: {rec['status']}: {rec['reason']}")
rep = rec["repetitions"][0]
b = rec["work"]["bytes"]
print(f"{rnd},scalelab,{mode},{t},{int(b)},{rep['seconds']},{b / rep['seconds'] / 1e9},{rep['metrics']['iops']},{load}")
EOF
}

for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${TLIST[@]}"; do
        for mode in write read; do
            if ((r % 2 == 1)); then
                run_fio "$r" "$mode" "$t"
                run_scalelab "$r" "$mode" "$t"
            else
                run_scalelab "$r" "$mode" "$t"
                run_fio "$r" "$mode" "$t"
            fi
            say "round $r/$ROUNDS $mode $t: $(tail -n 2 "$PASSES" | awk -F, '{printf "%s %.3f GB/s (load %s)  ", $2, $7, $9}')"
        done
    done
done

"$PY" - "$PASSES" "$OUT/setup.txt" >"$OUT/summary.md" <<'EOF'
import csv, math, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(open(sys.argv[2]).read())
print("| mode | transfer | scalelab GB/s (median) | fio GB/s (median) | ratio of medians | geometric mean of per-round ratios | per-round ratios | scalelab IOPS | fio IOPS | load1 (min-max) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
keys = []
for r in rows:
    k = (r["mode"], r["transfer"])
    if k not in keys:
        keys.append(k)
verdicts = []
for mode, t in keys:
    sel = [r for r in rows if r["mode"] == mode and r["transfer"] == t]
    by = lambda tool: {r["round"]: r for r in sel if r["tool"] == tool}
    s, f = by("scalelab"), by("fio")
    sg = statistics.median(float(r["gbps"]) for r in s.values())
    fg = statistics.median(float(r["gbps"]) for r in f.values())
    si = statistics.median(float(r["iops"]) for r in s.values())
    fi = statistics.median(float(r["iops"]) for r in f.values())
    per = [float(s[k]["gbps"]) / float(f[k]["gbps"]) for k in sorted(s, key=int) if k in f]
    loads = [float(r["load1_before"]) for r in sel]
    ratio = sg / fg
    geo = math.exp(sum(math.log(x) for x in per) / len(per))
    verdicts.append((mode, t, ratio, geo))
    print(f"| {mode} | {t} | {sg:.3f} | {fg:.3f} | {ratio:.2f} | **{geo:.2f}** | {', '.join(f'{x:.2f}' for x in per)} | {si:.0f} | {fi:.0f} | {min(loads):.2f}-{max(loads):.2f} |")
print()
print("Per-round ratios pair the two passes of one round; the order alternates (fio first in odd rounds),")
print("so their geometric mean cancels an advantage of going first or second. The verdict uses it.")
print()
for mode, t, ratio, geo in verdicts:
    print(f"- {mode} {t}: scalelab / fio = {geo:.2f} (geometric mean of rounds; ratio of medians {ratio:.2f}): {'meets' if geo >= 0.9 else 'BELOW'} the 0.9 target")
EOF
say ""
cat "$OUT/summary.md"
say "passes: $PASSES"
