#!/usr/bin/env bash
# Compare `scalelab calibrate`'s STREAM triad and DGEMM with C STREAM and numpy, interleaved.
#
#   scripts/compare-calibrate.sh [--rounds N] [--out DIR] [--no-build] [--scalelab PATH]
#   scripts/compare-calibrate.sh --triad [--before PATH] [--rounds N] [--out DIR] [--scalelab PATH]
#
# --triad: the `stream.triad` workload against calibrate's own triad instead (no gcc, no numpy).
#   Each round runs, at calibrate's array length and core counts: `scalelab calibrate --triad-only`
#   (best and median of 20 passes), then `scalelab run` of stream.triad with 20 repetitions, then,
#   with --before PATH, the same run by another scalelab binary (e.g. the previous build): the
#   before/after of a workload change, side by side. Ratios: workload median / calibrate best
#   (what "% measured" compared before it took medians on both sides), median / median (what it
#   compares now) and best / best, per round and their median.
#
# References:
#   STREAM triad  scripts/lib/stream_triad.c (stream.c's triad and timing), built with
#                 gcc -O3 -march=native -fopenmp, at the same array length as calibrate's triad,
#                 at each of calibrate's core counts; also built with -DNT: the same with AVX
#                 non-temporal stores, as calibrate's triad writes (C-nt)
#   DGEMM         numpy float64 matmul (its bundled OpenBLAS) at calibrate's n, at each core
#                 count, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for that command only;
#                 the OpenBLAS kernel is printed (threadpoolctl)
#
# Each round runs A B A: C STREAM, `scalelab calibrate`, numpy; rounds repeat the pattern, so
# every ratio compares measurements taken within a minute of each other (NOTES.md: the two vCPUs
# change placement every few seconds to minutes). Prints the CPU model, load averages before each
# step, per-round ratios and their median with the 5% target.
# Needs gcc with OpenMP and the reference venv (scripts/install-deps.sh --reference).
# Exit status: 0 when everything ran (whatever the targets say), 1 when something could not run.
# Output stays in the folder (default results/compare-calibrate/<UTC time>/). About 10-20 s a
# round on the 2-core course machine, plus the build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/scripts/lib"
SCRIPT_NAME=compare-calibrate
# shellcheck source=scripts/lib/common.sh
source "$LIB/common.sh"
REF_VENV="${SCALELAB_REF_VENV:-$ROOT/target/ref-venv}"
PY="$REF_VENV/bin/python"

ROUNDS=3
OUT=""
BUILD=1
SCALELAB=""
STREAM_REPS=20
NUMPY_REPS=5
TRIAD=0
BEFORE=""
START=$SECONDS

usage() {
    sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

check_prerequisites() {
    local fix="run scripts/install-deps.sh --reference"
    command -v gcc >/dev/null || die "gcc not found: install gcc (apt-get install gcc)"
    [[ -x $PY ]] || die "no Python venv at $REF_VENV: $fix"
    "$PY" -c 'import numpy, threadpoolctl' 2>/dev/null || die "numpy/threadpoolctl missing in $REF_VENV: $fix"
}

build() {
    if [[ -z $SCALELAB ]]; then
        SCALELAB="$ROOT/target/release/scalelab"
        if [[ $BUILD -eq 1 ]]; then
            say "== cargo build --release"
            (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
        fi
    fi
    [[ -x $SCALELAB ]] || die "$SCALELAB not found: build it with cargo build --release"
    "$SCALELAB" calibrate --help >/dev/null 2>&1 || die "$SCALELAB has no 'calibrate' command"
    gcc -O3 -march=native -fopenmp "$LIB/stream_triad.c" -o "$OUT/stream_triad" 2>"$OUT/stream_triad.build.log" ||
        die "gcc -fopenmp could not build $LIB/stream_triad.c (see $OUT/stream_triad.build.log)"
    gcc -O3 -march=native -fopenmp -DNT "$LIB/stream_triad.c" -o "$OUT/stream_triad_nt" 2>>"$OUT/stream_triad.build.log" ||
        die "gcc could not build the -DNT variant (see $OUT/stream_triad.build.log)"
}

# The array length calibrate uses (calibrate::Settings::full): each array max(4 x L3, 64 MiB)
# bytes, in doubles (STREAM's rule: each array at least 4 x the last-level cache). Checked against
# each profile by compare_calibrate.py.
triad_elements() {
    local l3
    l3="$(lscpu -B 2>/dev/null | sed -n 's/^L3 cache: *\([0-9]*\).*/\1/p' | head -1)"
    [[ -n $l3 ]] || l3=$((32 << 20))
    # lscpu sums the L3 of all instances; calibrate reads CPU 0's, as /sys reports it.
    local one
    one="$(cat /sys/devices/system/cpu/cpu0/cache/index3/size 2>/dev/null || true)"
    case "$one" in
        *K) l3=$((${one%K} << 10)) ;;
        *M) l3=$((${one%M} << 20)) ;;
    esac
    local per_array=$((4 * l3))
    local floor=$((64 << 20))
    ((per_array > floor)) || per_array=$floor
    echo $((per_array / 8))
}

core_counts() {
    local n k=1 out=()
    n="$(nproc)"
    while ((k < n)); do out+=("$k"); k=$((k * 2)); done
    out+=("$n")
    echo "${out[@]}"
}

load() { cut -d' ' -f1 /proc/loadavg; }

# The --triad mode: calibrate's triad and the stream.triad workload, interleaved per round.
triad_mode() {
    local n counts round
    n="$(triad_elements)"
    counts="$(core_counts)"
    if [[ -z $SCALELAB ]]; then
        SCALELAB="$ROOT/target/release/scalelab"
        if [[ $BUILD -eq 1 ]]; then
            say "== cargo build --release"
            (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
        fi
    fi
    [[ -x $SCALELAB ]] || die "$SCALELAB not found: build it with cargo build --release"
    "$SCALELAB" calibrate --help 2>/dev/null | grep -q -- --triad-only || die "$SCALELAB has no 'calibrate --triad-only'"
    [[ -z $BEFORE || -x $BEFORE ]] || die "--before $BEFORE: not an executable"
    mkdir -p "$OUT"/{calibrate,after,before,load}
    local threads
    threads="$(echo "$counts" | tr ' ' ',')"
    cat >"$OUT/triad.toml" <<TOML
name = "triad-vs-calibrate"
repetitions = 20
warmup = 1
[[study]]
name = "triad"
workload = "stream.triad"
threads = [$threads]
size = ["$n"]
TOML
    say "== setup (--triad)"
    say "  host      $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    say "  after     $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    say "  before    ${BEFORE:-<none>}"
    say "  triad     $n doubles per array, cores $counts, 20 passes (calibrate) and 20 repetitions (workload)"
    say "  load      $(cut -d' ' -f1-3 /proc/loadavg)"
    say "  output    $OUT"
    for ((round = 1; round <= ROUNDS; round++)); do
        say "== round $round of $ROUNDS ($((SECONDS - START)) s elapsed)"
        local loads=("$(load)")
        "$SCALELAB" calibrate --triad-only --out "$OUT/calibrate/round$round.json" >"$OUT/calibrate/round$round.log" 2>&1 ||
            { tail -n 20 "$OUT/calibrate/round$round.log" >&2; die "scalelab calibrate --triad-only failed"; }
        loads+=("$(load)")
        local which bin
        for which in after before; do
            bin="$SCALELAB"
            if [[ $which == before ]]; then
                [[ -n $BEFORE ]] || continue
                bin="$BEFORE"
            fi
            "$bin" run "$OUT/triad.toml" --quiet --run-dir "$OUT/$which/round$round" >"$OUT/$which/round$round.log" 2>&1 ||
                { tail -n 20 "$OUT/$which/round$round.log" >&2; die "$bin run failed (log: $OUT/$which/round$round.log)"; }
            loads+=("$(load)")
        done
        echo "${loads[*]}" >"$OUT/load/round$round.txt"
        say "  load averages ${loads[*]}"
    done
    say ""
    say "== results ($ROUNDS rounds, $((SECONDS - START)) s; $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average now $(cut -d' ' -f1-3 /proc/loadavg))"
    python3 "$LIB/compare_calibrate.py" triad --out "$OUT" | tee "$OUT/report.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || die "some measurements are missing (see above)"
}

main() {
    local args=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --triad) TRIAD=1; shift ;;
            --before) BEFORE="${2:?--before needs a path}"; shift 2 ;;
            *) args+=("$1"); shift ;;
        esac
    done
    parse_args "${args[@]}"
    if [[ $TRIAD -eq 1 ]]; then
        OUT="${OUT:-$ROOT/results/compare-calibrate/triad-$(date -u +%Y%m%dT%H%M%SZ)}"
        mkdir -p "$OUT"
        OUT="$(cd "$OUT" && pwd)"
        triad_mode
        return
    fi
    check_prerequisites
    OUT="${OUT:-$ROOT/results/compare-calibrate/$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT"/{calibrate,stream,numpy,load}
    OUT="$(cd "$OUT" && pwd)"
    build
    local n gemm_n=1536 counts
    n="$(triad_elements)"
    counts="$(core_counts)"
    say "== setup"
    say "  host      $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    say "  scalelab  $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    say "  C STREAM  $(gcc --version | head -1), -O3 -march=native -fopenmp, $n doubles per array, best of $STREAM_REPS"
    say "  numpy     $("$PY" -c 'import numpy; print(numpy.__version__)'), n=$gemm_n, best of $NUMPY_REPS;" \
        "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>} (unset for numpy only)"
    say "  cores     $counts; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
    say "  output    $OUT"
    local round t
    for ((round = 1; round <= ROUNDS; round++)); do
        say "== round $round of $ROUNDS ($((SECONDS - START)) s elapsed)"
        local loads=()
        loads+=("$(load)")
        for t in $counts; do
            OMP_NUM_THREADS=$t OMP_PROC_BIND=spread "$OUT/stream_triad" "$n" "$STREAM_REPS" >"$OUT/stream/round$round-t$t.txt" ||
                die "stream_triad failed"
            OMP_NUM_THREADS=$t OMP_PROC_BIND=spread "$OUT/stream_triad_nt" "$n" "$STREAM_REPS" >"$OUT/stream/round$round-t$t-nt.txt" ||
                die "stream_triad -DNT failed"
            say "  C STREAM   $(cat "$OUT/stream/round$round-t$t.txt")  (nt: $(sed 's/.*best_gbps=\([^ ]*\).*/\1/' "$OUT/stream/round$round-t$t-nt.txt"))"
        done
        loads+=("$(load)")
        local t0=$SECONDS
        "$SCALELAB" calibrate --out "$OUT/calibrate/round$round.json" >"$OUT/calibrate/round$round.log" 2>&1 ||
            { tail -n 20 "$OUT/calibrate/round$round.log" >&2; die "scalelab calibrate failed (log: $OUT/calibrate/round$round.log)"; }
        say "  calibrate  $((SECONDS - t0)) s: $(tail -n 1 "$OUT/calibrate/round$round.log")"
        loads+=("$(load)")
        # shellcheck disable=SC2086  # counts is a list of numbers
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS \
            "$PY" "$LIB/numpy_dgemm.py" --n "$gemm_n" --threads $counts --reps "$NUMPY_REPS" >"$OUT/numpy/round$round.json" ||
            die "numpy DGEMM failed"
        say "  numpy      $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); k=d["kernel"]; print(k["internal_api"], k["version"], k["architecture"], " ".join("%d thr %.1f GFLOP/s" % (r["threads"], r["gflops_best"]) for r in d["results"]))' "$OUT/numpy/round$round.json")"
        echo "${loads[*]}" >"$OUT/load/round$round.txt"
    done
    say ""
    say "== results ($ROUNDS rounds, $((SECONDS - START)) s; $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average now $(cut -d' ' -f1-3 /proc/loadavg))"
    "$PY" "$LIB/compare_calibrate.py" report --out "$OUT" | tee "$OUT/report.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || die "some measurements are missing (see above)"
}

main "$@"
