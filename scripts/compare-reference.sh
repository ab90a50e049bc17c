#!/usr/bin/env bash
# Compare scalelab's STREAM triad and DGEMM with reference programs, side by side in one go.
#
#   scripts/compare-reference.sh [--rounds N] [--out DIR] [--no-build] [--scalelab PATH]
#
# References (install them with `scripts/install-deps.sh --reference`):
#   STREAM triad  hpcc SingleSTREAM_Triad under `mpirun -np 1` (1 core) and StarSTREAM_Triad under
#                 `mpirun -np 2` (hpcc reports it per process: x 2 gives the 2-core aggregate)
#   DGEMM         numpy float64 matmul (its bundled OpenBLAS) at the manifest's n, 1 and 2 threads;
#                 hpcc's SingleDGEMM (Debian OpenBLAS) is printed for information
#   placement     hpcc's 8-byte MPI ping-pong latency (same run as StarSTREAM) and a core-to-core
#                 cache-line probe right before and after each scalelab stream run
# against `scalelab run experiments/compare-stream.toml` and `experiments/compare-dgemm.toml`.
#
# Each round runs A (reference) and B (scalelab) back to back: hpcc -np 1, scalelab stream,
# hpcc -np 2, numpy, scalelab dgemm. The two vCPUs move between placements every few seconds to
# minutes (NOTES.md), so only measurements taken close together compare; rounds repeat the pattern.
# Prints every measurement, per-round ratios, and a table with targets and PASS/FAIL.
#
# Exit status: 0 when everything ran (whatever the targets say: this measures), 1 when something
# could not run (a missing tool, a failed run, unreadable output), with the reason.
# Everything it made stays in the output folder (default results/compare-reference/<UTC time>/).
# Takes 5-6 minutes with 3 rounds on the 2-core course machine (an hpcc launch is ~30 s, a round
# ~1.5 min), plus the build. See docs/benchmarking.md for the method and its caveats.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/scripts/lib"
SCRIPT_NAME=compare-reference
# shellcheck source=scripts/lib/common.sh
source "$LIB/common.sh"
REF_VENV="${SCALELAB_REF_VENV:-$ROOT/target/ref-venv}"
PY="$REF_VENV/bin/python"
STREAM_MANIFEST="$ROOT/experiments/compare-stream.toml"
DGEMM_MANIFEST="$ROOT/experiments/compare-dgemm.toml"

ROUNDS=3
OUT=""
BUILD=1
SCALELAB=""
NUMPY_REPS=8
HPCC_TIMEOUT=600      # one hpcc launch takes ~30 s here; this only catches a hang
SCALELAB_TIMEOUT=600

LOG=""       # measurements, one JSON object a line (see scripts/lib/compare.py)
START=$SECONDS

usage() {
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# Everything the run needs, checked before anything is measured, each with its fix.
check_prerequisites() {
    local fix="run scripts/install-deps.sh --reference"
    command -v hpcc >/dev/null || die "hpcc not found: $fix"
    command -v mpirun >/dev/null || die "mpirun not found: $fix"
    [[ -x $PY ]] || die "no Python venv at $REF_VENV: $fix"
    "$PY" -c 'import numpy, threadpoolctl' 2>/dev/null || die "numpy/threadpoolctl missing in $REF_VENV: $fix"
    case "$(readlink -f "$(ldd "$(command -v hpcc)" | awk '$1 == "libblas.so.3" { print $3 }')")" in
        *openblas*) ;;
        *) die "hpcc links the slow reference BLAS: $fix (installs an OpenBLAS alternative)" ;;
    esac
    [[ $(nproc) -ge 2 ]] || die "needs 2 cores for the 2-core references, found $(nproc)"
    [[ -f $STREAM_MANIFEST && -f $DGEMM_MANIFEST ]] || die "missing $STREAM_MANIFEST or $DGEMM_MANIFEST"
}

build_scalelab() {
    if [[ -z $SCALELAB ]]; then
        SCALELAB="$ROOT/target/release/scalelab"
        if [[ $BUILD -eq 1 ]]; then
            command -v cargo >/dev/null || die "cargo not found: install Rust, or build elsewhere and pass --no-build"
            say "== cargo build --release"
            (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
        fi
    fi
    [[ -x $SCALELAB ]] || die "$SCALELAB not found: build it with cargo build --release"
    "$SCALELAB" run --help >/dev/null 2>&1 || die "$SCALELAB has no working 'run' command"
}

print_setup() {
    local blas
    blas="$(readlink -f "$(ldd "$(command -v hpcc)" | awk '$1 == "libblas.so.3" { print $3 }')")"
    say "== setup"
    say "  host        $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    say "  scalelab    $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    say "  hpcc        $(dpkg-query -W -f='${Version}' hpcc 2>/dev/null || echo '?'), BLAS $blas"
    say "  mpirun      $(mpirun --version 2>/dev/null | head -1) ${MPIRUN_FLAGS[*]}"
    say "  numpy       $("$PY" -c 'import numpy; print(numpy.__version__)') in $REF_VENV"
    say "  environment OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" \
        "(unset for the hpcc and numpy commands only)"
    say "  sizes       STREAM $STREAM_ELEMENTS doubles per array (hpcc N=$HPCC_N), DGEMM n=$GEMM_N"
    say "  output      $OUT"
}

# run_hpcc NP ROUND: one hpcc launch in its own folder (hpcc reads ./hpccinf.txt and appends to
# ./hpccoutf.txt). OpenBLAS gets one thread per rank so SingleDGEMM is a 1-core number and the 2
# ranks never oversubscribe the 2 cores; OPENBLAS_CORETYPE/L2_SIZE are unset for this command only
# so Debian's OpenBLAS picks its own kernel (printed: OPENBLAS_VERBOSE=2 logs "Core: ...").
run_hpcc() {
    local np=$1 round=$2 dir="$OUT/hpcc/np$1-round$2" t0=$SECONDS core
    mkdir -p "$dir"
    cp "$OUT/hpcc/hpccinf.txt" "$dir/"
    say "-- round $round: hpcc, mpirun -np $np"
    if ! (cd "$dir" && timeout "$HPCC_TIMEOUT" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_VERBOSE=2 \
        mpirun "${MPIRUN_FLAGS[@]}" -np "$np" hpcc >"$dir/log.txt" 2>&1); then
        tail -n 20 "$dir/log.txt" >&2
        die "hpcc -np $np failed (log: $dir/log.txt)"
    fi
    core="$(sed -n 's/^Core: //p' "$dir/log.txt" | sort -u | paste -sd' ')"
    "$PY" "$LIB/compare.py" hpcc-record "$dir/hpccoutf.txt" --np "$np" --round "$round" --log "$LOG" ||
        die "could not read $dir/hpccoutf.txt"
    say "    ($((SECONDS - t0)) s; Debian OpenBLAS kernel: ${core:-unknown})"
}

# run_scalelab KIND MANIFEST ROUND: one `scalelab run` into a fresh run folder.
run_scalelab() {
    local kind=$1 manifest=$2 round=$3 t0=$SECONDS
    local dir="$OUT/scalelab/$kind-round$round"
    mkdir -p "$OUT/scalelab"
    say "-- round $round: scalelab run $(basename "$manifest")"
    if ! timeout "$SCALELAB_TIMEOUT" "$SCALELAB" run "$manifest" --run-dir "$dir" >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        die "scalelab run $(basename "$manifest") failed (log: $dir.log, run: $dir)"
    fi
    [[ -f $dir/summary.csv ]] || die "scalelab run wrote no $dir/summary.csv"
    "$PY" "$LIB/compare.py" scalelab-record "$dir/summary.csv" --round "$round" --log "$LOG" ||
        die "could not read $dir/summary.csv"
    say "    ($((SECONDS - t0)) s)"
}

# numpy with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this one command: they force the
# Haswell kernel (about 40% slower DGEMM with current numpy). Thread counts come from
# threadpoolctl, so the thread variables are unset too.
run_numpy() {
    local round=$1 json="$OUT/numpy/round$1.json" t0=$SECONDS
    mkdir -p "$OUT/numpy"
    say "-- round $round: numpy matmul n=$GEMM_N, 1 and 2 threads, best of $NUMPY_REPS"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS \
        "$PY" "$LIB/numpy_dgemm.py" --n "$GEMM_N" --threads 1 2 --reps "$NUMPY_REPS" >"$json" ||
        die "numpy DGEMM failed"
    "$PY" "$LIB/compare.py" numpy-record "$json" --round "$round" --log "$LOG" || die "could not read $json"
    say "    ($((SECONDS - t0)) s; kernel: $("$PY" -c 'import json,sys; k=json.load(open(sys.argv[1]))["kernel"]; print(k["internal_api"], k["version"], k["architecture"])' "$json"))"
}

# hpcc's STREAM arrays and scalelab's must have the same length (hpcc rounds N^2/3 down, so a
# manifest size that is not of that form differs by a few elements: allowed up to 0.1%).
check_sizes() {
    "$PY" - "$LOG" <<'EOF' || die "STREAM array sizes differ between hpcc and scalelab; give experiments/compare-stream.toml one size"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
h = {r["extra"]["stream_elements"] for r in recs if r["side"] == "reference" and "stream_elements" in r["extra"]}
s = {r["extra"]["elements"] for r in recs if r["side"] == "scalelab" and "elements" in r["extra"]}
if len(h) != 1 or len(s) != 1 or abs(min(h) - min(s)) > 1e-3 * min(s):
    print(f"hpcc STREAM_VectorSize {sorted(h)} vs scalelab stream.triad size {sorted(s)}", file=sys.stderr)
    sys.exit(1)
if h != s:
    print(f"    note: hpcc arrays hold {min(h)} doubles, scalelab's {min(s)} ({(min(h) - min(s)) / min(s):+.3%})")
EOF
}

main() {
    parse_args "$@"
    check_prerequisites
    OUT="${OUT:-$ROOT/results/compare-reference/$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT/hpcc"
    OUT="$(cd "$OUT" && pwd)"
    LOG="$OUT/measurements.jsonl"
    : >"$LOG"

    build_scalelab
    build_probe

    STREAM_ELEMENTS="$("$PY" "$LIB/compare.py" manifest-size "$STREAM_MANIFEST")" || die "cannot read $STREAM_MANIFEST"
    GEMM_N="$("$PY" "$LIB/compare.py" manifest-size "$DGEMM_MANIFEST" --workload gemm)" || die "cannot read $DGEMM_MANIFEST"
    local sizes
    sizes="$("$PY" "$LIB/compare.py" hpcc-input --elements "$STREAM_ELEMENTS" --dir "$OUT/hpcc")" ||
        die "cannot write $OUT/hpcc/hpccinf.txt"
    HPCC_N="${sizes#hpcc_n=}"
    HPCC_N="${HPCC_N%% *}"
    print_setup

    local round
    for ((round = 1; round <= ROUNDS; round++)); do
        say "== round $round of $ROUNDS ($((SECONDS - START)) s elapsed)"
        run_hpcc 1 "$round"                                   # A: 1-core triad, hpcc DGEMM
        probe before "$round"
        run_scalelab stream "$STREAM_MANIFEST" "$round"       # B: triad, 1 and 2 threads
        probe after "$round"
        run_hpcc 2 "$round"                                   # A: 2-core triad, ping-pong
        run_numpy "$round"                                    # A: numpy DGEMM
        run_scalelab dgemm "$DGEMM_MANIFEST" "$round"         # B: tuned, faer
        if [[ $round -eq 1 ]]; then check_sizes; fi           # fail early, not after N rounds
    done

    say ""
    say "== results ($ROUNDS rounds, $((SECONDS - START)) s)"
    "$PY" "$LIB/compare.py" report --log "$LOG" | tee "$OUT/report.txt"
    local rc=${PIPESTATUS[0]}
    [[ $rc -eq 0 ]] || die "some measurements are missing (see above)"
    say ""
    say "Placement (NOTES.md): hpcc ping-pong near ~0.10-0.13 us, far ~0.36-0.39 us; 2-core ratios compare"
    say "like with like only within a round. Files: $OUT"
}

main "$@"
