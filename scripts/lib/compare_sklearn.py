"""Helpers of scripts/compare-sklearn.sh: the shared data, the scikit-learn side, reading scalelab's
summary, and the final table.

Subcommands:
  data DIR                      write DIR/forest.csv (make_classification, 20 features, target `y`)
                                and print its shape
  manifest DIR CSV OUT          write the scalelab manifest OUT of the three comparisons
  sklearn DIR --round R --log L time scikit-learn's side and append JSON lines to L
  scalelab-record SUMMARY --round R --log L   append scalelab's medians from a summary.csv to L
  report --log L                print every comparison: median time over rounds, the time ratio
                                (scikit-learn / scalelab: above 1 means scalelab is faster), fits/s
                                and accuracies

Every measurement is one JSON object a line: side, round, case, threads, seconds, fits, accuracy.
"""

import argparse
import csv
import json
import statistics
import sys
import time

FOREST_TRAIN = 20_000  # rows fitted by the forest comparison (as in the task: 20 000 × 20)
FOREST_ROWS = FOREST_TRAIN * 4 // 3  # scalelab's *.fit workloads fit on 3/4 of the rows
FEATURES = 20
TREES = 100
HGB_ITER = 100
NESTED_TREES = 50
NESTED_GRID = {"max_depth": [4, 8, 16], "max_features": ["sqrt", 0.3, 0.6]}
NESTED_GRID_TEXT = "max_depth=4,8,16; max_features=sqrt,0.3,0.6"
OUTER, INNER = 5, 3
REPS = 3


def log(path, **record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def cmd_data(a):
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=FOREST_ROWS, n_features=FEATURES, n_informative=10, n_redundant=0, random_state=0
    )
    path = f"{a.dir}/forest.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{i}" for i in range(FEATURES)] + ["y"])
        for row, label in zip(x, y):
            w.writerow([repr(float(v)) for v in row] + [int(label)])
    print(f"{path}: {x.shape[0]} rows × {x.shape[1]} features")


def cmd_manifest(a):
    text = f"""name = "compare-sklearn"
description = "scalelab's side of scripts/compare-sklearn.sh"
repetitions = {REPS}
warmup = 1
timeout = "10m"

[[study]]
name = "forest"
workload = "forest.fit"
threads = [1, 2]
dataset = "{a.csv}"
target = "y"
trees = {TREES}

[[study]]
name = "hgb"
workload = "gboost.fit"
threads = [1, 2]
dataset = "{a.csv}"
target = "y"
estimator = "hist_gradient_boosting"
trees = {HGB_ITER}

[[study]]
name = "nested"
workload = "cv.nested"
threads = 2
parallelism = "all"
dataset = "breast_cancer"
estimator = "random_forest"
trees = {NESTED_TREES}
grid = "{NESTED_GRID_TEXT}"
outer = {OUTER}
inner = {INNER}
"""
    with open(a.out, "w") as f:
        f.write(text)


def load_xy(path):
    import numpy as np

    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    x = np.array([[float(v) for v in r[:-1]] for r in rows])
    y = np.array([int(r[-1]) for r in rows])
    return x, y


def median_time(fn, reps=REPS):
    fn()  # warm-up, as scalelab's
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def cmd_sklearn(a):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score, train_test_split
    from threadpoolctl import threadpool_limits

    x, y = load_xy(f"{a.dir}/forest.csv")
    # The same rows, the same training size as scalelab's 3/4 (a different random split).
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, stratify=y, random_state=a.round)
    for threads in (1, 2):
        def fit_rf():
            return RandomForestClassifier(n_estimators=TREES, n_jobs=threads, random_state=42).fit(xtr, ytr)

        secs, model = median_time(fit_rf)
        log(a.log, side="sklearn", round=a.round, case="forest", threads=threads, seconds=secs, fits=1,
            accuracy=float(model.score(xte, yte)))
        print(f"    sklearn forest      {threads} thread(s): {secs:.3f} s")

        def fit_hgb():
            with threadpool_limits(limits=threads):
                return HistGradientBoostingClassifier(max_iter=HGB_ITER, early_stopping=False, random_state=42).fit(
                    xtr, ytr
                )

        secs, model = median_time(fit_hgb)
        log(a.log, side="sklearn", round=a.round, case="hgb", threads=threads, seconds=secs, fits=1,
            accuracy=float(model.score(xte, yte)))
        print(f"    sklearn hist GB     {threads} thread(s): {secs:.3f} s")

    # Nested CV as in scikit-learn's "nested versus non-nested" example, plus the non-nested grid
    # search scalelab reports beside it. n_jobs=2 on the grid search (candidates × folds in
    # parallel, forests serial) is scikit-learn's fastest split of 2 cores here.
    xb, yb = load_breast_cancer(return_X_y=True)
    outer = StratifiedKFold(OUTER, shuffle=True, random_state=a.round)
    inner = StratifiedKFold(INNER, shuffle=True, random_state=a.round + 100)
    rf = RandomForestClassifier(n_estimators=NESTED_TREES, n_jobs=1, random_state=42)

    def nested():
        search = GridSearchCV(rf, NESTED_GRID, cv=inner, n_jobs=2)
        scores = cross_val_score(search, xb, yb, cv=outer)
        plain = GridSearchCV(rf, NESTED_GRID, cv=outer, n_jobs=2).fit(xb, yb)
        return scores.mean(), plain.best_score_

    candidates = len(NESTED_GRID["max_depth"]) * len(NESTED_GRID["max_features"])
    fits = OUTER * (candidates * INNER + 1) + candidates * OUTER + 1
    secs, (nested_acc, non_nested) = median_time(nested, reps=1)
    log(a.log, side="sklearn", round=a.round, case="nested", threads=2, seconds=secs, fits=fits,
        accuracy=float(nested_acc), non_nested=float(non_nested))
    print(f"    sklearn nested CV   2 threads: {secs:.3f} s ({fits} fits)")


def cmd_scalelab_record(a):
    with open(a.summary) as f:
        for r in csv.DictReader(f):
            if r["status"] != "ok":
                sys.exit(f"scalelab point {r['point_id']} ({r['study']}) is {r['status']}: {r['reason']}")
            acc = r.get("metric_accuracy") or r.get("metric_nested_accuracy")
            extra = {}
            if r.get("metric_non_nested_accuracy"):
                extra["non_nested"] = float(r["metric_non_nested_accuracy"])
            log(a.log, side="scalelab", round=a.round, case=r["study"], threads=int(r["threads"]),
                seconds=float(r["median_s"]), fits=float(r["metric_fits"]), accuracy=float(acc), **extra)


def cmd_report(a):
    recs = [json.loads(l) for l in open(a.log) if l.strip()]
    keys = sorted({(r["case"], r["threads"]) for r in recs})
    names = {"forest": f"random forest fit, {TREES} trees, {FOREST_TRAIN} × {FEATURES}",
             "hgb": f"hist gradient boosting fit, {HGB_ITER} iterations, {FOREST_TRAIN} × {FEATURES}",
             "nested": f"nested CV {OUTER} × {INNER}, 3 × 3 forest grid ({NESTED_TREES} trees), breast cancer"}
    missing = False
    print(f"{'comparison':<72} {'thr':>3} {'sklearn s':>10} {'scalelab s':>10} {'ratio':>6} {'fits/s sk':>9} "
          f"{'fits/s sl':>9}  accuracy sklearn / scalelab")
    for case, threads in keys:
        side = {s: [r for r in recs if r["case"] == case and r["threads"] == threads and r["side"] == s]
                for s in ("sklearn", "scalelab")}
        if not side["sklearn"] or not side["scalelab"]:
            missing = True
            print(f"{names.get(case, case):<72} {threads:>3}  missing a side")
            continue
        # Ratios within a round (A B measured back to back), then their median.
        rounds = sorted({r["round"] for r in side["sklearn"]} & {r["round"] for r in side["scalelab"]})
        by = {s: {r["round"]: r for r in side[s]} for s in side}
        ratios = [(by["sklearn"][k]["seconds"] / by["sklearn"][k]["fits"])
                  / (by["scalelab"][k]["seconds"] / by["scalelab"][k]["fits"]) for k in rounds]
        t = {s: statistics.median(r["seconds"] for r in side[s]) for s in side}
        f = {s: statistics.median(r["fits"] / r["seconds"] for r in side[s]) for s in side}
        acc = {s: statistics.median(r["accuracy"] for r in side[s]) for s in side}
        line = (f"{names.get(case, case):<72} {threads:>3} {t['sklearn']:>10.3f} {t['scalelab']:>10.3f} "
                f"{statistics.median(ratios):>6.2f} {f['sklearn']:>9.2f} {f['scalelab']:>9.2f}  "
                f"{acc['sklearn']:.4f} / {acc['scalelab']:.4f}")
        if case == "nested":
            nn = {s: statistics.median(r.get("non_nested", float("nan")) for r in side[s]) for s in side}
            line += f" (non-nested {nn['sklearn']:.4f} / {nn['scalelab']:.4f})"
        print(line)
    print("\nratio = scikit-learn's time per fit / scalelab's, median over rounds of the ratio within each "
          "round (> 1: scalelab is faster).")
    return 1 if missing else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("dir")
    m = sub.add_parser("manifest")
    m.add_argument("dir")
    m.add_argument("csv")
    m.add_argument("out")
    s = sub.add_parser("sklearn")
    s.add_argument("dir")
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--log", required=True)
    r = sub.add_parser("scalelab-record")
    r.add_argument("summary")
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--log", required=True)
    rep = sub.add_parser("report")
    rep.add_argument("--log", required=True)
    a = p.parse_args()
    fn = {"data": cmd_data, "manifest": cmd_manifest, "sklearn": cmd_sklearn,
          "scalelab-record": cmd_scalelab_record, "report": cmd_report}[a.cmd]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
