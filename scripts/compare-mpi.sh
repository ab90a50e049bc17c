#!/usr/bin/env bash
# Compare scalelab's MPI ping-pong with hpcc's PingPong, side by side in one go.
#
#   scripts/compare-mpi.sh [--rounds N] [--out DIR] [--no-build] [--scalelab PATH]
#
# Reference: hpcc under `mpirun -np 2` (MinPingPongLatency, 8-byte messages, and
# MaxPingPongBandwidth, 2,000,000-byte messages) with a tiny hpccinf.txt so a launch takes seconds.
# scalelab: `scalelab run experiments/mpi-pingpong.toml` (2 ranks, 1 B to 4 MiB); its 8-byte
# latency is the best repetition's `metric_latency_us`, its bandwidth the best over messages of
# 1 MiB and more of 2 * size * iterations / min_s (message bytes / one-way time, hpcc's convention).
#
# Each round runs A (hpcc) then B (scalelab), bracketed by a core-to-core probe; rounds repeat
# (A B A B). The two vCPUs move between a "near" and a "far" placement every few seconds to minutes
# (NOTES.md: 8-byte ping-pong 0.10-0.13 us near, 0.36-0.39 us far), so every measurement is
# labelled with its placement, read from its own 8-byte latency (and the probe for scalelab).
#
# Targets: scalelab latency <= 1.2 x hpcc's; scalelab bandwidth >= 0.9 x hpcc's (best of rounds).
# Exit status: 0 when everything ran (whatever the targets say: this measures), 1 when something
# could not run (a missing tool, a failed run, unreadable output), with the reason.
# Everything stays in the output folder (default results/compare-mpi/<UTC time>/).
# About 30-40 s a round on the 2-core course machine, plus the build. See docs/mpi.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/scripts/lib"
SCRIPT_NAME=compare-mpi
# shellcheck source=scripts/lib/common.sh
source "$LIB/common.sh"
PROBE_QUIET=1
PY="$(command -v python3 || true)"
MANIFEST="$ROOT/experiments/mpi-pingpong.toml"

ROUNDS=3
OUT=""
BUILD=1
SCALELAB=""
HPCC_TIMEOUT=300
SCALELAB_TIMEOUT=600

LOG=""
START=$SECONDS

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

check_prerequisites() {
    local fix="run scripts/install-deps.sh --reference (hpcc) and --mpi (OpenMPI)"
    command -v hpcc >/dev/null || die "hpcc not found: $fix"
    command -v mpirun >/dev/null || die "mpirun not found: $fix"
    [[ -n $PY ]] || die "python3 not found"
    [[ $(nproc) -ge 2 ]] || die "needs 2 cores for a 2-rank ping-pong, found $(nproc)"
    [[ -f $MANIFEST ]] || die "missing $MANIFEST"
}

build_scalelab() {
    if [[ -z $SCALELAB ]]; then
        SCALELAB="$ROOT/target/release/scalelab"
        if [[ $BUILD -eq 1 ]]; then
            command -v cargo >/dev/null || die "cargo not found: install Rust, or build elsewhere and pass --no-build"
            say "== cargo build --release --features mpi"
            (cd "$ROOT" && cargo build --release --features mpi --quiet) || die "cargo build --release --features mpi failed"
        fi
    fi
    [[ -x $SCALELAB ]] || die "$SCALELAB not found: build it with cargo build --release --features mpi"
    "$SCALELAB" plan "$MANIFEST" >"$OUT/plan.txt" 2>&1 ||
        die "$SCALELAB cannot plan $(basename "$MANIFEST") (see $OUT/plan.txt; was it built with --features mpi?)"
}

run_hpcc() { # run_hpcc ROUND
    local round=$1 dir="$OUT/hpcc/round$1" t0=$SECONDS
    mkdir -p "$dir"
    cp "$OUT/hpcc/hpccinf.txt" "$dir/"
    say "-- round $round: A  hpcc PingPong, mpirun -np 2"
    if ! (cd "$dir" && timeout "$HPCC_TIMEOUT" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        mpirun "${MPIRUN_FLAGS[@]}" -np 2 hpcc >"$dir/log.txt" 2>&1); then
        tail -n 20 "$dir/log.txt" >&2
        die "hpcc failed (log: $dir/log.txt)"
    fi
    "$PY" "$LIB/compare_mpi.py" hpcc-record "$dir/hpccoutf.txt" --round "$round" --log "$LOG" ||
        die "could not read $dir/hpccoutf.txt"
    say "    ($((SECONDS - t0)) s)"
}

run_scalelab() { # run_scalelab ROUND
    local round=$1 dir="$OUT/scalelab/round$1" t0=$SECONDS
    mkdir -p "$OUT/scalelab"
    say "-- round $round: B  scalelab run $(basename "$MANIFEST")"
    if ! timeout "$SCALELAB_TIMEOUT" "$SCALELAB" run "$MANIFEST" --run-dir "$dir" >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        die "scalelab run failed (log: $dir.log, run: $dir)"
    fi
    [[ -f $dir/summary.csv ]] || die "scalelab run wrote no $dir/summary.csv"
    "$PY" "$LIB/compare_mpi.py" scalelab-record "$dir/summary.csv" --round "$round" --log "$LOG" ||
        die "could not read $dir/summary.csv"
    say "    ($((SECONDS - t0)) s)"
}

main() {
    parse_args "$@"
    check_prerequisites
    OUT="${OUT:-$ROOT/results/compare-mpi/$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT/hpcc"
    OUT="$(cd "$OUT" && pwd)"
    LOG="$OUT/measurements.jsonl"
    : >"$LOG"

    build_scalelab
    build_probe
    "$PY" "$LIB/compare_mpi.py" hpcc-input --dir "$OUT/hpcc" >/dev/null || die "cannot write $OUT/hpcc/hpccinf.txt"

    say "== setup"
    say "  host      $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    say "  scalelab  $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    say "  hpcc      $(dpkg-query -W -f='${Version}' hpcc 2>/dev/null || echo '?')"
    say "  mpirun    $(mpirun --version 2>/dev/null | head -1) ${MPIRUN_FLAGS[*]}"
    say "  output    $OUT"

    local round
    for ((round = 1; round <= ROUNDS; round++)); do
        say "== round $round of $ROUNDS ($((SECONDS - START)) s elapsed)"
        run_hpcc "$round"
        probe before "$round"
        run_scalelab "$round"
        probe after "$round"
    done

    say ""
    say "== results ($ROUNDS rounds, $((SECONDS - START)) s)"
    "$PY" "$LIB/compare_mpi.py" report --log "$LOG" | tee "$OUT/report.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || die "some measurements are missing (see above)"
    say ""
    say "Files: $OUT (hpcc/roundN/hpccoutf.txt, scalelab/roundN/, measurements.jsonl, report.txt)"
}

main "$@"
