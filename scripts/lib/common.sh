# shellcheck shell=bash
# Shared by the scripts/compare-*.sh scripts (sourced, not run).
# The sourcing script sets SCRIPT_NAME, OUT, LOG, PY and LIB, and the defaults ROUNDS, BUILD and
# SCALELAB that parse_args may change; it defines usage().
# shellcheck disable=SC2034  # ROUNDS, OUT, BUILD, SCALELAB and PROBE are the caller's variables

# mpirun flags. Root needs --allow-run-as-root. With at most 2 ranks on 2 cores OpenMPI binds each
# rank to its own core by default; we say so explicitly so the ranks never share a core or
# migrate mid-measurement (no --oversubscribe: -np never exceeds the cores, checked by the scripts).
MPIRUN_FLAGS=(--bind-to core)
if [[ $EUID -eq 0 ]]; then MPIRUN_FLAGS=(--allow-run-as-root "${MPIRUN_FLAGS[@]}"); fi

PROBE=""             # compiled core-to-core probe, empty when no C compiler
PROBE_QUIET=0         # 1: probe() records its measurement without printing it

say() { printf '%s\n' "$*"; }
die() {
    printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --rounds)
                ROUNDS="${2:?--rounds needs a number}"
                shift 2
                ;;
            --out)
                OUT="${2:?--out needs a folder}"
                shift 2
                ;;
            --no-build)
                BUILD=0
                shift
                ;;
            --scalelab)
                SCALELAB="${2:?--scalelab needs a path}"
                BUILD=0
                shift 2
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
    done
    [[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 2 ]] || die "--rounds must be 2 or more (A B A B needs two rounds)"
}

# The output folder: $OUT if given, else results/$SCRIPT_NAME/<UTC time>; made, and made absolute.
make_out() {
    OUT="${OUT:-$ROOT/results/$SCRIPT_NAME/$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
}

# The release binary with the cargo features "$1" (e.g. mpi) in $SCALELAB, built unless --no-build
# or --scalelab said otherwise.
release_scalelab() {
    local features="$1"
    if [[ -z $SCALELAB ]]; then
        SCALELAB="${CARGO_TARGET_DIR:-$ROOT/target}/release/scalelab"
        if [[ $BUILD -eq 1 ]]; then
            command -v cargo >/dev/null || die "cargo not found: install Rust, or build elsewhere and pass --no-build"
            say "== cargo build --release --features $features"
            (cd "$ROOT" && cargo build --release --features "$features" --quiet) ||
                die "cargo build --release --features $features failed"
        fi
    fi
    [[ -x $SCALELAB ]] || die "$SCALELAB not found: build it with cargo build --release --features $features"
}

# The probe is a few lines of C; without a compiler the comparison still runs, minus the probe.
build_probe() {
    local cc
    cc="$(command -v cc || command -v gcc || true)"
    if [[ -n $cc ]] && "$cc" -O2 -pthread -o "$OUT/c2c_probe" "$LIB/c2c_probe.c" 2>"$OUT/c2c_probe.build.log"; then
        PROBE="$OUT/c2c_probe"
    else
        say "note: no C compiler for the core-to-core probe (see $OUT/c2c_probe.build.log); placements come from the MPI latencies only"
    fi
}

probe() { # probe WHEN ROUND
    [[ -n $PROBE ]] || return 0
    local line
    line="$("$PROBE" 0 1)" || die "core-to-core probe failed"
    local printed
    printed="$("$PY" "$LIB/compare.py" probe-record --when "$1" --round "$2" --log "$LOG" -- "$line")" ||
        die "probe output unreadable"
    if [[ $PROBE_QUIET -eq 0 ]]; then say "$printed"; fi
}
