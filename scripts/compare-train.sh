#!/usr/bin/env bash
# Data-parallel MLP training (`mpi.train`, ddp): 2 ranks against 1 rank, and the bucketed
# allreduce overlapped with backward against the blocking one, side by side.
#
#   scripts/compare-train.sh [--rounds N] [--out DIR] [--no-build] [--scalelab PATH]
#                            [--batch N] [--hidden W,W] [--bucket SIZE] [--steps N]
#
# Each round runs, one after another so that a change in machine load hits all three:
#   A  ddp, 1 rank                      (allreduce = tree, overlap = off)
#   B  ddp, 2 ranks, blocking           (one allreduce after backward)
#   C  ddp, 2 ranks, overlapped         (buckets of --bucket started during backward)
# each a `scalelab run` of a one-point manifest (1 thread per rank, synthetic data of 64 features
# and 8 classes, MLP 64-<hidden>-8, default hidden 512,512, global batch 2048 in grains of 32:
# a batch where compute dominates). Every point checks its weights bitwise against the serial
# reference, so all three train the same model. Printed per round: samples/s of each side, the
# speedup B / A (target >= 1.6 on 2 quiet cores), the communication share comm_s /
# (compute_s + comm_s + wait_s) of B and of C (data moving while no computation ran: waiting for
# the slower rank, wait_s, is split off and shown beside it as the wait share; target: C's
# communication share below B's), C's hidden communication, the 1-minute load average before and
# after; at the end the medians over rounds.
# Exit status: 0 when everything ran (whatever the figures), 1 when something could not run.
# Everything stays in the output folder (default results/compare-train/<UTC time>/).
# About 1 minute a round on the 2-core course machine, plus the build. See docs/training.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$ROOT/scripts/lib"
SCRIPT_NAME=compare-train
# shellcheck source=scripts/lib/common.sh
source "$LIB/common.sh"

ROUNDS=3
OUT=""
BUILD=1
SCALELAB=""
BATCH=2048
HIDDEN="512,512"
BUCKET="256KiB"
STEPS=10
RUN_TIMEOUT=900

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# Our own options first; the rest are common.sh's.
ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --batch)
            BATCH="${2:?--batch needs a sample count}"
            shift 2
            ;;
        --hidden)
            HIDDEN="${2:?--hidden needs widths like 512,512}"
            shift 2
            ;;
        --bucket)
            BUCKET="${2:?--bucket needs a size like 256KiB}"
            shift 2
            ;;
        --steps)
            STEPS="${2:?--steps needs a number}"
            shift 2
            ;;
        *)
            ARGS+=("$1")
            shift
            ;;
    esac
done
parse_args "${ARGS[@]+"${ARGS[@]}"}"
[[ $BATCH =~ ^[0-9]+$ && $BATCH -ge 64 && $((BATCH % 64)) -eq 0 ]] ||
    die "--batch must be a multiple of 64 (2 ranks x grains of 32)"
[[ $HIDDEN =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--hidden must be comma-separated widths like 512,512"
[[ $STEPS =~ ^[0-9]+$ && $STEPS -ge 1 ]] || die "--steps must be a positive number"
command -v python3 >/dev/null || die "python3 not found: it reads the summary.csv files"
command -v mpirun >/dev/null || die "mpirun not found: run scripts/install-deps.sh --mpi (OpenMPI)"
[[ $(nproc) -ge 2 ]] || die "needs 2 cores for 2 ranks, found $(nproc)"

make_out

release_scalelab mpi

manifest() { # manifest RANKS OVERLAP FILE
    cat >"$3" <<EOF2
name = "train-$1-$2"
repetitions = 3
warmup = 1
timeout = "10m"

[[study]]
name = "ddp"
workload = "mpi.train"
ranks = $1
threads = 1
strategy = "ddp"
allreduce = "tree"
overlap = "$2"
bucket = "$BUCKET"
dataset = "synthetic"
size = $((BATCH * 4))
features = 64
classes = 8
hidden = "$HIDDEN"
batch = $BATCH
grain = 32
steps = $STEPS
EOF2
}

# One column of the single data row of a summary.csv, by header name (quoted fields such as
# param_hidden = "512,512" hold commas, so a CSV reader, not awk -F,).
column() { # column CSV NAME
    python3 -c 'import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
print(rows[0].get(sys.argv[2], "") if rows else "")' "$1" "$2"
}

S="" COMPUTE="" COMM="" WAIT="" HIDDEN_S="" # run_side's results (medians over the repetitions)
run_side() { # run_side RANKS OVERLAP ROUND -> sets S, COMPUTE, COMM, WAIT, HIDDEN_S
    local name="ranks$1-overlap-$2"
    local dir="$OUT/round$3/$name"
    mkdir -p "$OUT/round$3"
    manifest "$1" "$2" "$OUT/round$3/$name.toml"
    if ! timeout "$RUN_TIMEOUT" "$SCALELAB" run "$OUT/round$3/$name.toml" --run-dir "$dir" -q \
        >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        die "scalelab run failed (log: $dir.log, run: $dir)"
    fi
    local csv="$dir/summary.csv"
    [[ -f $csv ]] || die "scalelab run wrote no $csv"
    local status
    status="$(column "$csv" status)"
    [[ $status == ok ]] || die "the $name point did not verify ($status: $(column "$csv" reason)); see $dir"
    S="$(column "$csv" metric_samples_per_s)"
    COMPUTE="$(column "$csv" metric_compute_s)"
    COMM="$(column "$csv" metric_comm_s)"
    WAIT="$(column "$csv" metric_wait_s)"
    HIDDEN_S="$(column "$csv" metric_comm_hidden_s)"
    [[ -n $S && -n $COMPUTE && -n $COMM && -n $WAIT && -n $HIDDEN_S ]] ||
        die "$csv lacks the mpi.train metrics"
    S="$(printf '%.0f' "$S")" COMM="$(printf '%.3f' "$COMM")" HIDDEN_S="$(printf '%.3f' "$HIDDEN_S")"
}

share() { # share PART COMPUTE COMM WAIT: PART / (COMPUTE + COMM + WAIT)
    awk -v p="$1" -v c="$2" -v m="$3" -v w="$4" 'BEGIN { printf "%.3f", p / (c + m + w) }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

say "== setup"
say "  host      $(hostname), $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
say "  scalelab  $SCALELAB (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
say "  model     MLP 64-$HIDDEN-8, global batch $BATCH (grains of 32), $STEPS steps, bucket $BUCKET"
say "  output    $OUT"

SPEEDUPS=() SHARE_B=() SHARE_C=() WAIT_B=() WAIT_C=()
for ((round = 1; round <= ROUNDS; round++)); do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    run_side 1 off "$round"
    s1=$S
    run_side 2 off "$round"
    s2=$S b_share="$(share "$COMM" "$COMPUTE" "$COMM" "$WAIT")"
    b_wait="$(share "$WAIT" "$COMPUTE" "$COMM" "$WAIT")"
    run_side 2 on "$round"
    s3=$S c_share="$(share "$COMM" "$COMPUTE" "$COMM" "$WAIT")" c_hidden=$HIDDEN_S c_comm=$COMM
    c_wait="$(share "$WAIT" "$COMPUTE" "$COMM" "$WAIT")"
    speedup="$(awk -v a="$s1" -v b="$s2" 'BEGIN { printf "%.3f", b / a }')"
    SPEEDUPS+=("$speedup") SHARE_B+=("$b_share") SHARE_C+=("$c_share")
    WAIT_B+=("$b_wait") WAIT_C+=("$c_wait")
    say "round $round: samples/s 1 rank ${s1}, 2 ranks blocking ${s2}, 2 ranks overlapped ${s3}: speedup ${speedup}; comm share blocking ${b_share}, overlapped ${c_share} (exposed ${c_comm} s, hidden ${c_hidden} s); wait share blocking ${b_wait}, overlapped ${c_wait} (load average ${load} at start, $(cut -d' ' -f1 /proc/loadavg) at end)"
done
m_speed="$(printf '%s\n' "${SPEEDUPS[@]}" | median)"
m_b="$(printf '%s\n' "${SHARE_B[@]}" | median)"
m_c="$(printf '%s\n' "${SHARE_C[@]}" | median)"
w_b="$(printf '%s\n' "${WAIT_B[@]}" | median)"
w_c="$(printf '%s\n' "${WAIT_C[@]}" | median)"
say "== median over $ROUNDS rounds: speedup 2 ranks / 1 rank $m_speed (target >= 1.6 on 2 quiet cores); comm share blocking $m_b, overlapped $m_c (target: overlapped lower); wait share blocking $w_b, overlapped $w_c; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
{
    printf 'round,speedup,share_blocking,share_overlapped,wait_blocking,wait_overlapped\n'
    for ((i = 0; i < ROUNDS; i++)); do
        printf '%s,%s,%s,%s,%s,%s\n' "$((i + 1))" "${SPEEDUPS[$i]}" "${SHARE_B[$i]}" \
            "${SHARE_C[$i]}" "${WAIT_B[$i]}" "${WAIT_C[$i]}"
    done
} >"$OUT/rounds.csv"
