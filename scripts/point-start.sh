#!/usr/bin/env bash
# What starting a point costs the real process: wall time and max RSS of `scalelab point` in runs
# whose plans have 10 and 100 000 points, reading the point from plan.json (`scalelab point <run>
# <id>`, how every local point started before specs) and from a one-point spec (`--spec`, how
# `scalelab run` starts them now). The point is a debug.sleep of 1 ms, one repetition. Rounds are
# interleaved (A B C A B C ...) so that both ways see the same machine; medians are printed.
#
#   scripts/point-start.sh [SCALELAB] [BASELINE_SCALELAB]
#
# SCALELAB defaults to target/release/scalelab; BASELINE_SCALELAB (optional) is another build, e.g.
# one of an older revision, measured by id beside it. Needs python3 and /usr/bin/time.
set -euo pipefail

new=$(realpath "${1:-target/release/scalelab}")
base=${2:+$(realpath "$2")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

for n in 10 100000; do
    python3 - "$n" >"m$n.toml" <<'EOF'
import sys
n = int(sys.argv[1])
seconds = ", ".join(f"{0.001 + i * 1e-9:.9f}" for i in range(n // 10))
print(f'name = "start{n}"\nrepetitions = 1\nwarmup = 0\n\n[[study]]\nworkload = "debug.sleep"\n'
      f'oversubscribe = true\nthreads = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nseconds = [{seconds}]')
EOF
    # The run writes plan.json before it measures; stop it there (its points are not needed).
    timeout -s INT 60 "$new" run "m$n.toml" --run-dir "r$n" -q >/dev/null 2>&1 || true
    [ -f "r$n/plan.json" ] || { echo "no plan.json in r$n: did \`scalelab run\` fail?" >&2; exit 1; }
    # The spec of the plan's last point, as the executor writes it (the point alone, as JSON).
    python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['points'][-1]; json.dump(p, open(sys.argv[2], 'w')); print(p['id'])" \
        "r$n/plan.json" "spec$n.json" >"id$n"
done

python3 - "$new" "$base" <<'EOF'
import collections, statistics, subprocess, sys, time
new, base = sys.argv[1], sys.argv[2]
res = collections.defaultdict(list)
def one(label, argv):
    # /usr/bin/time reports the max RSS of the exec'd program alone (not of a forked python).
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{out.stderr}")
    res[label].append((wall, int(out.stderr.strip().splitlines()[-1])))
for _ in range(7):
    for n in (10, 100000):
        pid = open(f"id{n}").read().strip()
        if base:
            one(f"baseline, by id/{n}", [base, "point", f"r{n}", pid])
        one(f"by id (plan.json)/{n}", [new, "point", f"r{n}", pid])
        one(f"--spec/{n}", [new, "point", f"r{n}", "--spec", f"spec{n}.json"])
for k, v in res.items():
    wall = statistics.median(x[0] for x in v) * 1e3
    rss = statistics.median(x[1] for x in v) / 1024
    print(f"{k:28s} wall {wall:7.1f} ms   max RSS {rss:6.1f} MiB   (median of {len(v)})")
EOF
