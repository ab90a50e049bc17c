#!/usr/bin/env bash
# Compare scalelab's HPL (hpl.lu, mpi.hpl.lu) with hpcc's HPL linked to OpenBLAS, side by side.
#
#   scripts/compare-hpl.sh [--n N] [--nb NB] [--rounds R] [--out DIR] [--scalelab PATH]
#
# Same problem on both sides: order N (default 4000), block size NB (default 128).
# Each round, interleaved (A B A B):
#   A  hpcc, mpirun -np 1, HPL on a 1 x 1 grid          B  scalelab hpl.lu, 1 thread
#   A  hpcc, mpirun -np 2, HPL on a 1 x 2 grid          B  scalelab mpi.hpl.lu, 2 ranks x 1 thread
# hpcc reports one HPL run per launch (HPL_Tflops); scalelab the best of 3 verified repetitions
# (after one warm-up). Both count HPL's flops (2/3 n^3 + 3/2 n^2). The load average, and the cores
# each side actually obtained (hpcc: CPU seconds / wall seconds of the launch; scalelab: the
# point's point_cores), are recorded beside every measurement: on a shared machine only the ratios
# of one round mean anything, and the ratio per core obtained is printed beside the raw one.
#
# hpcc: Debian's package, linked to libblas.so.3, which must resolve to OpenBLAS (install with
# scripts/install-deps.sh --reference); the script prints the BLAS library and the OpenBLAS
# package version, and runs hpcc with OPENBLAS_NUM_THREADS=1 and without OPENBLAS_CORETYPE.
# scalelab: built with `cargo build --release --features mpi` unless --scalelab names a binary
# (it must have the `mpi` feature, and be a release build: a debug build keeps Rust's debug
# precondition checks in the DGEMM micro-kernel, which cost it about 2.7x here; the script warns).
#
# Targets: hpl.lu >= 0.8 x hpcc's HPL GFLOP/s (1 process); mpi.hpl.lu >= 0.7 x (2 ranks);
# judged on the median of the rounds' ratios. A crashed hpcc launch skips its pair of that round.
# Exit status 0 when every target case has a complete round (whatever the targets say), 1 when
# something could not run, with the reason. Everything stays in the output
# folder (default results/compare-hpl/<UTC time>/): measurements.jsonl, logs, hpcc outputs, runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/scripts/lib"
SCRIPT_NAME=compare-hpl
# shellcheck source=scripts/lib/common.sh
source "$LIB/common.sh"
PY="$(command -v python3 || true)"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

N=4000
NB=128
ROUNDS=2
OUT=""
SCALELAB=""
TIMEOUT=1800

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --n) N="${2:?--n needs a number}"; shift 2 ;;
        --nb) NB="${2:?--nb needs a number}"; shift 2 ;;
        --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
        --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
        --scalelab) SCALELAB="${2:?--scalelab needs a path}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $N =~ ^[0-9]+$ && $NB =~ ^[0-9]+$ && $NB -ge 1 && $NB -le $N ]] || die "--n and --nb must be whole numbers with 1 <= nb <= n"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "--rounds must be 1 or more"

command -v hpcc >/dev/null || die "hpcc not found: run scripts/install-deps.sh --reference"
command -v mpirun >/dev/null || die "mpirun not found: run scripts/install-deps.sh --mpi"
[[ -n $PY ]] || die "python3 not found"
[[ $(nproc) -ge 2 ]] || die "needs 2 cores for the 2-rank comparison, found $(nproc)"
BLAS="$(ldd "$(command -v hpcc)" | awk '/libblas.so.3/ {print $3}')"
case "$(readlink -f "$BLAS")" in
    *openblas*) ;;
    *) die "hpcc's libblas.so.3 is $(readlink -f "$BLAS"), not OpenBLAS: run scripts/install-deps.sh --reference" ;;
esac

OUT="${OUT:-$ROOT/results/compare-hpl/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/measurements.jsonl"
: >"$LOG"

if [[ -z $SCALELAB ]]; then
    SCALELAB="$ROOT/target/release/scalelab"
    say "== cargo build --release --features mpi"
    (cd "$ROOT" && cargo build --release --features mpi --quiet) || die "cargo build --release --features mpi failed"
fi
[[ -x $SCALELAB ]] || die "$SCALELAB is not an executable"
case "$SCALELAB" in
    */debug/*) say "warning: $SCALELAB looks like a debug build: its DGEMM micro-kernel runs with Rust's debug precondition checks (about 2.7x slower here); measure with a release build" ;;
esac

for ranks in 1 2; do
    "$PY" "$LIB/compare_hpl.py" manifest --out "$OUT/hpl-${ranks}p.toml" --n "$N" --nb "$NB" --ranks "$ranks"
    "$SCALELAB" plan "$OUT/hpl-${ranks}p.toml" >"$OUT/plan-${ranks}p.txt" 2>&1 ||
        die "$SCALELAB cannot plan $OUT/hpl-${ranks}p.toml (see $OUT/plan-${ranks}p.txt; built with --features mpi?)"
    mkdir -p "$OUT/hpcc-${ranks}p"
    "$PY" "$LIB/compare_hpl.py" hpcc-input --dir "$OUT/hpcc-${ranks}p" --n "$N" --nb "$NB" --q "$ranks"
done

say "== setup"
say "  host      $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
say "  scalelab  $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
say "  hpcc      $(dpkg-query -W -f='${Version}' hpcc 2>/dev/null || echo '?'), BLAS $(readlink -f "$BLAS")"
say "  OpenBLAS  libopenblas0-pthread $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo '?')"
say "  mpirun    $(mpirun --version 2>/dev/null | head -1) ${MPIRUN_FLAGS[*]}"
say "  problem   n = $N, nb = $NB"
say "  load      $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
say "  output    $OUT"

run_hpcc() { # run_hpcc ROUND RANKS
    local round=$1 ranks=$2 dir="$OUT/hpcc-$2p/round$1"
    mkdir -p "$dir"
    cp "$OUT/hpcc-${ranks}p/hpccinf.txt" "$dir/"
    say "-- round $round: A  hpcc, mpirun -np $ranks"
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if ! (cd "$dir" && timeout "$TIMEOUT" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        "$PY" "$LIB/compare_hpl.py" timed --out "$dir/timing.json" -- \
        mpirun "${MPIRUN_FLAGS[@]}" -np "$ranks" hpcc >"$dir/log.txt" 2>&1); then
        # hpcc 1.5 crashes now and then on this VM (a segfault after its other tests); a crashed
        # launch costs its round's pair, not the comparison.
        tail -n 5 "$dir/log.txt" >&2
        say "    hpcc failed (log: $dir/log.txt); this pair of round $round is skipped"
        return 1
    fi
    "$PY" "$LIB/compare_hpl.py" hpcc-record "$dir/hpccoutf.txt" --round "$round" --side "hpcc-${ranks}p" --log "$LOG" --load "$load" ||
        die "could not read $dir/hpccoutf.txt"
}

run_scalelab() { # run_scalelab ROUND RANKS
    local round=$1 ranks=$2 dir="$OUT/scalelab-$2p/round$1"
    mkdir -p "$OUT/scalelab-${ranks}p"
    say "-- round $round: B  scalelab $([[ $ranks -eq 1 ]] && echo hpl.lu || echo "mpi.hpl.lu, $ranks ranks")"
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if ! timeout "$TIMEOUT" "$SCALELAB" run "$OUT/hpl-${ranks}p.toml" --run-dir "$dir" >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        die "scalelab run failed (log: $dir.log, run: $dir)"
    fi
    "$PY" "$LIB/compare_hpl.py" scalelab-record "$dir" --round "$round" --side "scalelab-${ranks}p" --log "$LOG" --load "$load" ||
        die "could not read the records of $dir"
}

for ((round = 1; round <= ROUNDS; round++)); do
    say "== round $round of $ROUNDS"
    if run_hpcc "$round" 1; then run_scalelab "$round" 1; fi
    if run_hpcc "$round" 2; then run_scalelab "$round" 2; fi
done

say "== verdict (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
"$PY" "$LIB/compare_hpl.py" verdict --log "$LOG" | tee "$OUT/verdict.txt"
