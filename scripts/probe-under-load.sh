#!/usr/bin/env bash
# The peak probe on a quiet and on a loaded machine, side by side.
#
#   scripts/probe-under-load.sh [--runs N] [--scalelab PATH] [--compare PATH]
#
# Runs `scalelab info --remeasure` (with a throw-away cache folder) N times (default 10) without
# and N times with one FMA hog per core (a small C loop, gcc -O2 -march=native), interleaved
# (quiet, busy, quiet, busy, ...) so both see the same background. --compare PATH runs another
# scalelab binary (e.g. an older build, whose `info` always measured) the same way, in the same
# rounds. Prints one line per measurement: binary, condition, 1-minute load average, the peak
# line of `scalelab info`. Measures only: the exit status is 0 whenever everything ran.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS=10
SCALELAB="${CARGO_TARGET_DIR:-$ROOT/target}/debug/scalelab"
COMPARE=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --scalelab) SCALELAB="$2"; shift 2 ;;
        --compare) COMPARE="$2"; shift 2 ;;
        *) echo "unknown argument $1; see the head of $0" >&2; exit 1 ;;
    esac
done
[[ -x "$SCALELAB" ]] || { echo "no scalelab at $SCALELAB: build it (cargo build) or pass --scalelab" >&2; exit 1; }
command -v gcc >/dev/null || { echo "gcc is needed for the FMA hog" >&2; exit 1; }

WORK="$(mktemp -d)"
HOGS=()
cleanup() {
    for pid in "${HOGS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/hog.c" <<'C'
/* One core's worth of FMA work until killed: 8 independent chains. */
int main(void) {
    volatile double sink;
    double a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (;;) {
        for (long i = 0; i < 100000000; i++)
            for (int k = 0; k < 8; k++) a[k] = a[k] * 0.9999999 + 1e-9;
        sink = a[0];
    }
    return (int)sink;
}
C
gcc -O2 -march=native -ffp-contract=fast -o "$WORK/hog" "$WORK/hog.c"
CORES="$(nproc)"

measure() { # binary label condition
    local bin="$1" label="$2" cond="$3" load line
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if [[ "$label" == scalelab ]]; then
        line="$(SCALELAB_MACHINE_CACHE="$WORK/cache" "$bin" info --remeasure | grep '^peak f64 per core')"
    else
        line="$("$bin" info | grep '^peak f64 per core')"
    fi
    printf '%-9s %-5s load %5s  %s\n' "$label" "$cond" "$load" "${line#peak f64 per core}"
}

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs) model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs), $CORES cores; hog: $CORES FMA loops"
for ((r = 1; r <= RUNS; r++)); do
    measure "$SCALELAB" scalelab quiet
    [[ -n "$COMPARE" ]] && measure "$COMPARE" compare quiet
    HOGS=()
    for ((c = 0; c < CORES; c++)); do "$WORK/hog" & HOGS+=("$!"); done
    sleep 0.5
    measure "$SCALELAB" scalelab busy
    [[ -n "$COMPARE" ]] && measure "$COMPARE" compare busy
    for pid in "${HOGS[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    HOGS=()
done
