#!/usr/bin/env bash
# Data-parallel histogram gradient boosting: 2 ranks against 1 rank on the same data, side by side.
#
#   scripts/compare-dataparallel.sh [--rounds N] [--out DIR] [--no-build] [--scalelab PATH]
#                                   [--size ROWS] [--trees N] [--workload hgb|forest]
#
# --workload forest compares the hist random forest (`mpi.ml.forest`, max_depth 8, default 20
# trees) instead of the booster. Both time the fit and the sharded scoring of the held-out rows
# together (their `fit_s` metric is the fit alone).
# Each round runs A (`mpi.ml.hgb`, ranks = 1) then B (the same point with ranks = 2), each a
# `scalelab run` of a one-point manifest (1 thread per rank, synthetic data, default 200 000 rows
# × 20 features, 50 boosting iterations, early stopping off); rounds repeat (A B A B) so a change
# in machine load hits both. Both points verify their model against the single-process one bit
# for bit, so the comparison is of the same model. Printed per round: each side's median fit
# time, the ratio T(1 rank) / T(2 ranks), the 1-minute load average and the 2-rank time spent
# inside collectives (waiting for the partner included); at the end the median ratio over rounds.
# Target: >= 1.6 on 2 cores (a quiet machine; under load the figure says what the load allowed,
# quote it with the load average).
# Exit status: 0 when everything ran (whatever the ratio), 1 when something could not run.
# Everything stays in the output folder (default results/compare-dataparallel/<UTC time>/).
# About 1-2 minutes a round on the 2-core course machine, plus the build. See docs/ml.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/scripts/lib"
SCRIPT_NAME=compare-dataparallel
# shellcheck source=scripts/lib/common.sh
source "$LIB/common.sh"

ROUNDS=3
OUT=""
BUILD=1
SCALELAB=""
SIZE=200000
TREES=""
WORKLOAD=hgb
RUN_TIMEOUT=900

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# Our own two options first; the rest are common.sh's.
ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --size)
            SIZE="${2:?--size needs a row count}"
            shift 2
            ;;
        --trees)
            TREES="${2:?--trees needs a number}"
            shift 2
            ;;
        --workload)
            WORKLOAD="${2:?--workload needs hgb or forest}"
            shift 2
            ;;
        *)
            ARGS+=("$1")
            shift
            ;;
    esac
done
parse_args "${ARGS[@]+"${ARGS[@]}"}"
[[ $SIZE =~ ^[0-9]+$ && $SIZE -ge 100 ]] || die "--size must be a row count of at least 100"
case "$WORKLOAD" in
    hgb) TREES="${TREES:-50}" HYPER="early_stopping=false" ;;
    forest) TREES="${TREES:-20}" HYPER="max_depth=8" ;;
    *) die "--workload must be hgb or forest" ;;
esac
[[ $TREES =~ ^[0-9]+$ && $TREES -ge 1 ]] || die "--trees must be a positive number"
command -v mpirun >/dev/null || die "mpirun not found: run scripts/install-deps.sh --mpi (OpenMPI)"
[[ $(nproc) -ge 2 ]] || die "needs 2 cores for 2 ranks, found $(nproc)"

make_out

release_scalelab mpi

manifest() { # manifest RANKS FILE
    cat >"$2" <<EOF
name = "dataparallel-$1"
repetitions = 3
warmup = 1
timeout = "10m"

[[study]]
name = "$WORKLOAD"
workload = "mpi.ml.$WORKLOAD"
ranks = $1
threads = 1
dataset = "synthetic"
size = $SIZE
features = 20
trees = $TREES
hyper = "$HYPER"
EOF
}

# One column of the single data row of a summary.csv, by header name.
column() { # column CSV NAME
    awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
        NR == 2 { if (c) print $c }' "$1"
}

T="" C="" # run_side's results: median fit seconds and seconds inside the collectives (metric allreduce_s)
run_side() { # run_side RANKS ROUND -> sets T and C
    local dir="$OUT/round$2/ranks$1"
    mkdir -p "$OUT/round$2"
    manifest "$1" "$OUT/round$2/ranks$1.toml"
    if ! timeout "$RUN_TIMEOUT" "$SCALELAB" run "$OUT/round$2/ranks$1.toml" --run-dir "$dir" -q \
        >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        die "scalelab run failed (log: $dir.log, run: $dir)"
    fi
    local csv="$dir/summary.csv"
    [[ -f $csv ]] || die "scalelab run wrote no $csv"
    local status
    status="$(column "$csv" status)"
    [[ $status == ok ]] || die "the $1-rank point did not verify ($status: $(column "$csv" reason)); see $dir"
    T="$(column "$csv" median_s)"
    C="$(column "$csv" metric_allreduce_s)"
}

say "== setup"
say "  host      $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
say "  scalelab  $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
say "  workload  mpi.ml.$WORKLOAD ($TREES trees, $HYPER)"
say "  data      synthetic, $SIZE rows x 20 features (3/4 trained on)"
say "  output    $OUT"

RATIOS=()
for ((round = 1; round <= ROUNDS; round++)); do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    run_side 1 "$round"
    t1=$T
    run_side 2 "$round"
    t2=$T c2=$C
    ratio="$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", a / b }')"
    RATIOS+=("$ratio")
    say "round $round: 1 rank ${t1} s, 2 ranks ${t2} s (in collectives ${c2} s): ratio ${ratio} (load average ${load} at start, $(cut -d' ' -f1 /proc/loadavg) at end)"
done
median="$(printf '%s\n' "${RATIOS[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
say "== median ratio T(1 rank) / T(2 ranks) over $ROUNDS rounds: $median (target >= 1.6 on 2 quiet cores; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s\n' "${RATIOS[@]}" >"$OUT/ratios.txt"
