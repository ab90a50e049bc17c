#!/usr/bin/env bash
# Compare scalelab's trees, ensembles and nested cross-validation with scikit-learn, side by side.
#
#   scripts/compare-sklearn.sh [--rounds N] [--out DIR] [--no-build] [--scalelab PATH]
#
# scikit-learn comes from PyPI into a virtualenv under target/ (target/sklearn-venv, or
# $SCALELAB_SKLEARN_VENV), made on the first run; its version is printed in the setup. The data
# (CSV files both sides read; 3/4 of the rows fitted, 1/4 scored):
#   binary     make_classification, 20 000 × 20 training rows, 2 classes
#   five       make_classification, 20 000 × 40 training rows, 5 classes
#   intervals  8 000 × 2 training rows: a feature whose label alternates over 300 fine intervals, and noise
# The comparisons (scalelab's splitter named; scikit-learn's trees are always exact):
#   random forest, exact and hist, 100 trees, 1 and 2 threads (n_jobs)
#   hist gradient boosting, 100 iterations, no early stopping, 1 and 2 threads (threadpoolctl)
#   decision tree (exact; hist too on intervals) and gradient boosting (exact, 30 stages, depth 3),
#   1 thread, for accuracy
#   nested CV, 5 outer × 3 inner folds, 3 × 3 forest grid (50 trees), breast cancer, 2 threads
#   accuracy of the exact decision tree, forest and boosting on intervals by stratified 5-fold CV
#   over every row, averaged over 5 seeds (folds and model) on both sides, 2 threads over folds:
#   one split's 2 000 held-out rows, or one seed, move the difference by about a point
# Each round runs A (scikit-learn) and B (`scalelab run` of the generated manifest) back to back;
# the two vCPUs move between placements (NOTES.md), so ratios are taken within a round, and the
# load average is recorded before each side. scikit-learn runs with OMP_WAIT_POLICY=passive: on a
# shared, loaded machine spinning OpenMP threads otherwise make its 2-thread boosting up to 10×
# slower than its 1-thread one. Prints both accuracies and the time ratio per fit (scikit-learn /
# scalelab: above 1 means scalelab is faster), then each target of docs/ml.md met or missed.
#
# Exit status: 0 when everything ran, 1 when something could not run (with the reason).
# Everything it made stays in the output folder (default results/compare-sklearn/<UTC time>/).
# Takes about 20 minutes with 2 rounds on the shared 2-core course machine (scikit-learn's gradient
# boosting on the 5-class data alone takes 90 s a round), plus the build and install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/scripts/lib"
SCRIPT_NAME=compare-sklearn
# shellcheck source=scripts/lib/common.sh
source "$LIB/common.sh"
VENV="${SCALELAB_SKLEARN_VENV:-$ROOT/target/sklearn-venv}"
PY="$VENV/bin/python"

ROUNDS=2
OUT=""
BUILD=1
SCALELAB=""
SCALELAB_TIMEOUT=900

LOG=""
START=$SECONDS

usage() {
    sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# The virtualenv with scikit-learn, made once; pip's own messages go to the output folder.
install_sklearn() {
    if [[ -x $PY ]] && "$PY" -c 'import sklearn, threadpoolctl' 2>/dev/null; then
        return 0
    fi
    command -v python3 >/dev/null || die "python3 not found: install Python 3 (with its venv module)"
    say "== installing scikit-learn into $VENV (from PyPI)"
    python3 -m venv "$VENV" >"$OUT/pip.log" 2>&1 ||
        die "python3 -m venv failed (log: $OUT/pip.log); on Debian install python3-venv"
    "$VENV/bin/pip" install --quiet scikit-learn threadpoolctl >>"$OUT/pip.log" 2>&1 ||
        die "pip install scikit-learn failed (log: $OUT/pip.log)"
}

build_scalelab() {
    if [[ -z $SCALELAB ]]; then
        SCALELAB="${CARGO_TARGET_DIR:-$ROOT/target}/release/scalelab"
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
    say "== setup"
    say "  host        $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    say "  scalelab    $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    say "  sklearn     $("$PY" -c 'import sklearn, numpy; print(sklearn.__version__, "numpy", numpy.__version__)') in $VENV"
    say "  output      $OUT"
}

run_sklearn() {
    local round=$1 t0=$SECONDS
    say "-- round $round: scikit-learn"
    "$PY" "$LIB/compare_sklearn.py" load --side sklearn --round "$round" --log "$LOG"
    OMP_WAIT_POLICY=passive env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS \
        "$PY" "$LIB/compare_sklearn.py" sklearn "$OUT/data" --round "$round" --log "$LOG" ||
        die "the scikit-learn side failed"
    say "    ($((SECONDS - t0)) s)"
}

run_scalelab() {
    local round=$1 t0=$SECONDS dir="$OUT/scalelab/round$1"
    mkdir -p "$OUT/scalelab"
    say "-- round $round: scalelab run $(basename "$MANIFEST")"
    "$PY" "$LIB/compare_sklearn.py" load --side scalelab --round "$round" --log "$LOG"
    if ! timeout "$SCALELAB_TIMEOUT" "$SCALELAB" run "$MANIFEST" --run-dir "$dir" >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        die "scalelab run failed (log: $dir.log, run: $dir)"
    fi
    "$PY" "$LIB/compare_sklearn.py" scalelab-record "$dir/summary.csv" --round "$round" --log "$LOG" ||
        die "could not read $dir/summary.csv"
    say "    ($((SECONDS - t0)) s)"
}

main() {
    parse_args "$@"
    [[ $(nproc) -ge 2 ]] || die "needs 2 cores for the 2-thread comparisons, found $(nproc)"
    OUT="${OUT:-$ROOT/results/compare-sklearn/$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT/data"
    OUT="$(cd "$OUT" && pwd)"
    LOG="$OUT/measurements.jsonl"
    : >"$LOG"

    install_sklearn
    build_scalelab
    say "== data"
    "$PY" "$LIB/compare_sklearn.py" data "$OUT/data" | sed 's/^/  /' || die "could not write the data"
    MANIFEST="$OUT/compare-sklearn.toml"
    "$PY" "$LIB/compare_sklearn.py" manifest "$OUT/data" "$MANIFEST" ||
        die "could not write $MANIFEST"
    print_setup

    local round
    for ((round = 1; round <= ROUNDS; round++)); do
        say "== round $round of $ROUNDS ($((SECONDS - START)) s elapsed)"
        run_sklearn "$round"  # A
        run_scalelab "$round" # B
    done

    say ""
    say "== results ($ROUNDS rounds, $((SECONDS - START)) s)"
    "$PY" "$LIB/compare_sklearn.py" report --log "$LOG" | tee "$OUT/report.txt"
    local rc=${PIPESTATUS[0]}
    [[ $rc -eq 0 ]] || die "some measurements are missing (see above)"
    say "Files: $OUT"
}

main "$@"
