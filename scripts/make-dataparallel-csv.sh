#!/usr/bin/env bash
# Write the CSV dataset of experiments/ml-dataparallel-csv.toml: ROWS rows of FEATURES numeric
# features and a class column `kind` (three classes that depend on the first features, with
# noise), deterministic (the Park–Miller generator, exact in awk's doubles), so every run reads the same file.
#
#   scripts/make-dataparallel-csv.sh [ROWS] [FEATURES] [PATH]
#
# Defaults: 200 000 rows, 20 features, results/dataparallel.csv (about 25 MB; results/ is not
# committed). The manifest names that path; a point fails at plan time naming the file when it is
# missing. See docs/ml.md ("Reading only a rank's rows").
set -euo pipefail
rows=${1:-200000}
features=${2:-20}
path=${3:-results/dataparallel.csv}
mkdir -p "$(dirname "$path")"
awk -v rows="$rows" -v p="$features" 'BEGIN {
    s = 12345
    for (c = 0; c < p; c++) printf "f%d,", c
    print "kind"
    for (r = 0; r < rows; r++) {
        sum = 0
        for (c = 0; c < p; c++) {
            s = (s * 16807) % 2147483647
            v = s / 2147483647
            if (c < 3) sum += v
            printf "%.6f,", v
        }
        s = (s * 16807) % 2147483647
        sum += 0.3 * (s / 2147483647 - 0.5)
        print (sum < 1.3 ? "low" : (sum < 1.7 ? "mid" : "high"))
    }
}' > "$path.tmp"
mv "$path.tmp" "$path"
echo "wrote $path: $rows rows, $features features and the class column kind"
