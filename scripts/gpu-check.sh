#!/usr/bin/env bash
# One prepared check of the CUDA workloads on a GPU machine (no Rust toolchain or network needed).
#
#   scripts/gpu-check.sh [DIR]
#
# DIR holds a prebuilt `scalelab` (cargo build --release --features cuda) and the manifests
# gpu-stream.toml, gpu-reduction.toml and gpu-gemm.toml (or a checkout: target/release/scalelab and
# experiments/). It finds the CUDA libraries (driver, NVRTC, cuBLAS) and puts their folders on
# LD_LIBRARY_PATH, prints `scalelab info`, runs the three experiments (every result verified), and
# prints from their summaries, with kernel times from CUDA events (metric kernel_s):
#   - STREAM triad (and copy, scale, add, SAXPY) GB/s as a ratio to a device-to-device copy
#     measured in the same run;
#   - each GEMM variant's TFLOP/s as a ratio to cuBLAS SGEMM, at n = 4096 and 8192;
#   - the tensor-core GEMMs' TFLOP/s; the reduction and transpose steps' GB/s.
#   - GPU training (gpu-train.toml: mpi.train with gpus = 1 at 1, 2, 4 ranks, ddp and
#     accumulate), when the binary has MPI (scripts/gpu-bundle.sh --mpi) and mpirun is on PATH:
#     whether every point stayed within the tolerance of the CPU fp64 reference, and whether the
#     final weights' bits (detail weights_fnv) are the same at every rank count and strategy.
#     Otherwise it says why the training check was not run.
# Reference targets on an H200: triad >= 0.9 x copy, register-blocked SGEMM >= 0.5 x cuBLAS,
# bf16 tensor cores >= 700 TFLOP/s at 8192^3. About 2-3 minutes on one H200 (training about one
# more; it has never run on a GPU yet).
# Results go to $SCALELAB_OUT (default: DIR/gpu-check-<time>). Exit status: 0 when every point ran
# and verified, 1 otherwise (the failing points are printed), 2 when something needed is missing.
set -euo pipefail

DIR="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")}" && pwd)"
say() { printf '[gpu-check] %s\n' "$*"; }
die() {
    printf '[gpu-check] error: %s\n' "$*" >&2
    exit 2
}

BIN=""
for b in "$DIR/scalelab" "$DIR/target/release/scalelab"; do
    [[ -x $b ]] && BIN="$b" && break
done
[[ -n $BIN ]] || die "no scalelab binary in $DIR (build it with: cargo build --release --features cuda)"
MANIFESTS=""
for m in "$DIR" "$DIR/experiments"; do
    [[ -f $m/gpu-stream.toml ]] && MANIFESTS="$m" && break
done
[[ -n $MANIFESTS ]] || die "no gpu-stream.toml in $DIR or $DIR/experiments"
command -v python3 >/dev/null || die "python3 is needed to print the ratios"

# ---------------------------------------------------------------------------------------------
# CUDA libraries: the loader's cache first, then the usual install places (toolkit folders, the
# driver's folders, pip wheels under any Python's site-packages).
SEARCH=(
    "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda /usr/local/cuda-* /opt/cuda /opt/nvidia
    /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib /usr/local/lib64
)
while IFS= read -r site; do SEARCH+=("$site/nvidia"); done < <(
    python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true
)
# The loader cache, read once (grep -q on a pipe would end ldconfig early, and pipefail would
# then count a found library as missing).
LDCACHE="$({ command -v ldconfig >/dev/null && ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null || true)"
# find_lib LABEL NAME...: succeed when one of the sonames loads from the cache or a searched folder.
find_lib() {
    local label="$1" name dir hit
    shift
    for name in "$@"; do
        if grep -q "[[:space:]]$name " <<<"$LDCACHE"; then
            say "found $label: $name (loader cache)"
            return 0
        fi
    done
    for name in "$@"; do
        for dir in "${SEARCH[@]}"; do
            [[ -n $dir && -d $dir ]] || continue
            hit="$(find -L "$dir" -maxdepth 6 -name "$name" \( -type f -o -type l \) 2>/dev/null | head -n 1)"
            if [[ -n $hit ]]; then
                export LD_LIBRARY_PATH="$(dirname "$hit")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
                say "found $label: $hit"
                return 0
            fi
        done
    done
    return 1
}
find_lib "CUDA driver" libcuda.so.1 || die "libcuda.so.1 not found: is the NVIDIA driver installed (nvidia-smi)?"
find_lib "NVRTC" libnvrtc.so.13 libnvrtc.so.12 libnvrtc.so ||
    die "NVRTC (libnvrtc.so.13/.12) not found: install the CUDA toolkit or the nvidia-cuda-nvrtc wheel"
find_lib "cuBLAS" libcublas.so.13 libcublas.so.12 libcublas.so ||
    die "cuBLAS (libcublas.so.13/.12) not found: install the CUDA toolkit or the nvidia-cublas wheel"
find_lib "cuBLASLt" libcublasLt.so.13 libcublasLt.so.12 libcublasLt.so ||
    die "cuBLASLt (libcublasLt.so.13/.12) not found beside cuBLAS"
# NVRTC loads its builtins library by soname from the same folder.
find_lib "NVRTC builtins" 'libnvrtc-builtins.so.13*' 'libnvrtc-builtins.so.12*' ||
    say "warning: libnvrtc-builtins not found; NVRTC may fail to compile"
say "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

# ---------------------------------------------------------------------------------------------
OUT="${SCALELAB_OUT:-$DIR/gpu-check-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
status=0
"$BIN" info || status=1
for exp in gpu-stream gpu-reduction gpu-gemm; do
    say "running $exp"
    start=$SECONDS
    if ! "$BIN" run "$MANIFESTS/$exp.toml" --run-dir "$OUT/$exp" --quiet; then
        status=1
    fi
    say "$exp took $((SECONDS - start)) s"
done

# GPU training: needs MPI in the binary and mpirun; ranks on a one-GPU machine share device 0.
TRAIN_SKIP=""
if [[ ! -f $MANIFESTS/gpu-train.toml ]]; then
    TRAIN_SKIP="no gpu-train.toml in $MANIFESTS"
elif ! command -v mpirun >/dev/null; then
    TRAIN_SKIP="no mpirun on PATH (install OpenMPI 4, e.g. apt-get install openmpi-bin)"
elif ! plan_out="$("$BIN" plan "$MANIFESTS/gpu-train.toml" 2>&1)"; then
    TRAIN_SKIP="the binary refuses gpu-train.toml ($(grep -m1 'error' <<<"$plan_out" || true)); bundle a build with MPI: scripts/gpu-bundle.sh --mpi"
fi
if [[ -z $TRAIN_SKIP ]]; then
    say "running gpu-train"
    start=$SECONDS
    if [[ $(id -u) == 0 ]]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    if ! "$BIN" run "$MANIFESTS/gpu-train.toml" --run-dir "$OUT/gpu-train" --quiet; then
        status=1
    fi
    say "gpu-train took $((SECONDS - start)) s"
else
    say "GPU training not run: $TRAIN_SKIP"
    printf '%s\n' "$TRAIN_SKIP" >"$OUT/gpu-train.skipped"
fi

python3 - "$OUT" <<'PY' || status=1
import csv, sys, os

out = sys.argv[1]
failed = []

def rows(exp):
    path = os.path.join(out, exp, "summary.csv")
    if not os.path.exists(path):
        failed.append(f"{exp}: no summary.csv")
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))

def kernel_rate(r, column):
    """Throughput from the CUDA-event kernel time: the analytic work over metric_kernel_s."""
    try:
        work = float(r[column]) * float(r["median_s"])
        return work / float(r["metric_kernel_s"])
    except (KeyError, ValueError, ZeroDivisionError):
        return None

def ok(r):
    if r["status"] != "ok":
        failed.append(f"{r['study']} {r['variant']} size={r['size']}: {r['status']}: {r['reason']}")
        return False
    return True

def verdict(value, target):
    return "meets target" if value is not None and value >= target else "BELOW TARGET"

print("\n== STREAM on the GPU (GB/s from CUDA-event kernel times; size", end=" ")
stream = [r for r in rows("gpu-stream") if r["workload"] == "cuda.stream" and ok(r)]
gbps = {r["variant"]: kernel_rate(r, "gbps") for r in stream}
print(", ".join(sorted({r["size"] + " " + r["size_unit"] for r in stream})) + ")")
copy = gbps.get("memcpy")
for v in ["memcpy", "copy", "scale", "add", "triad", "saxpy"]:
    if gbps.get(v) is not None:
        ratio = f"{gbps[v] / copy:5.3f} x D2D copy" if copy else ""
        print(f"  {v:<8} {gbps[v]:9.1f} GB/s  {ratio}")
if copy and gbps.get("triad"):
    r = gbps["triad"] / copy
    print(f"  triad / D2D copy = {r:.3f} (target >= 0.9: {verdict(r, 0.9)})")

print("\n== Transpose (GB/s, kernel time)")
for r in rows("gpu-stream"):
    if r["workload"] == "cuda.transpose" and ok(r):
        print(f"  {r['variant']:<8} n={r['size']:<6} {kernel_rate(r, 'gbps'):9.1f} GB/s")

print("\n== Reduction (GB/s, kernel time)")
for r in rows("gpu-reduction"):
    if ok(r):
        print(f"  {r['variant']:<10} {r['size']:>10} values {kernel_rate(r, 'gbps'):9.1f} GB/s")

print("\n== GEMM (TFLOP/s, kernel time; ratio to cuBLAS SGEMM at the same n)")
gemm = [r for r in rows("gpu-gemm") if ok(r)]
for n in sorted({int(r["size"]) for r in gemm}):
    at = {r["variant"]: kernel_rate(r, "gflops") for r in gemm if int(r["size"]) == n}
    base = at.get("cublas")
    print(f"  n = {n}")
    for v in ["naive", "tiled", "regblock", "cublas", "cublas-dgemm", "tensor-tf32", "tensor-bf16"]:
        if at.get(v) is not None:
            ratio = f"{at[v] / base:6.3f} x cuBLAS SGEMM" if base else ""
            print(f"    {v:<13} {at[v] / 1e3:8.2f} TFLOP/s  {ratio}")
    if base and at.get("regblock"):
        r = at["regblock"] / base
        print(f"    regblock / cuBLAS = {r:.3f} (target >= 0.5: {verdict(r, 0.5)})")
    if n == 8192 and at.get("tensor-bf16"):
        t = at["tensor-bf16"] / 1e3
        print(f"    tensor-bf16 = {t:.1f} TFLOP/s (target >= 700 on an H200: {verdict(t, 700)})")

print("\n== Training on GPUs (mpi.train, gpus = 1 per rank, fp64)")
skipped = os.path.join(out, "gpu-train.skipped")
if os.path.exists(skipped):
    with open(skipped) as f:
        print("  VERDICT: GPU training NOT CHECKED: " + f.read().strip())
else:
    import glob, json
    train = rows("gpu-train")
    good = [r for r in train if ok(r)]
    def num(r, k):
        try:
            return float(r[k])
        except (KeyError, ValueError):
            return float("nan")
    base = {r["param_strategy"]: num(r, "metric_samples_per_s") for r in good if r["ranks"] == "1"}
    print(f"  {'strategy':<11}{'ranks':>5} {'samples/s':>11} {'x 1 rank':>8} {'compute_s':>10} "
          f"{'comm_s':>8} {'h2d_s':>8} {'d2h_s':>8} {'w dist':>9} {'loss dist':>9}")
    for r in sorted(good, key=lambda r: (r["param_strategy"], int(r["ranks"]))):
        sps = num(r, "metric_samples_per_s")
        b = base.get(r["param_strategy"])
        x = f"{sps / b:8.2f}" if b else f"{'':>8}"
        print(f"  {r['param_strategy']:<11}{r['ranks']:>5} {sps:11.0f} {x} "
              f"{num(r, 'metric_compute_s'):10.4f} {num(r, 'metric_comm_s'):8.4f} "
              f"{num(r, 'metric_h2d_s'):8.4f} {num(r, 'metric_d2h_s'):8.4f} "
              f"{num(r, 'metric_weight_distance'):9.1e} {num(r, 'metric_loss_distance'):9.1e}")
    within = bool(train) and len(good) == len(train)
    print("  VERDICT tolerance against the CPU fp64 reference: "
          + ("PASS (every point verified)" if within else "FAIL (see the failed points below)"))
    hashes = {}
    for path in glob.glob(os.path.join(out, "gpu-train", "points", "*.json")):
        with open(path) as f:
            rec = json.load(f)
        if rec.get("status") != "ok":
            continue
        key = (rec["point"]["params"]["strategy"], rec["point"]["resources"]["ranks"])
        for rep in rec.get("repetitions", []):
            h = (rep.get("details") or {}).get("weights_fnv")
            if h:
                hashes.setdefault(key, set()).add(h)
    for key in sorted(hashes):
        print(f"  weights_fnv {key[0]:<11} ranks={key[1]}: {', '.join(sorted(hashes[key]))}")
    distinct = set().union(*hashes.values()) if hashes else set()
    if not hashes:
        print("  VERDICT bitwise across rank counts: NOT CHECKED (no verified point)")
    elif len(distinct) == 1:
        print("  VERDICT bitwise across rank counts: PASS (one set of weights at every rank count "
              "and strategy, every repetition)")
    else:
        print(f"  VERDICT bitwise across rank counts: FAIL ({len(distinct)} different weights; "
              "cuBLAS not deterministic for these shapes, or the tree broken)")
        failed.append("gpu-train: the weights differ between rank counts")

if failed:
    print("\nFAILED points (not verified):")
    for f in failed:
        print("  " + f)
    sys.exit(1)
print("\nevery point ran and verified")
PY
say "results in $OUT"
exit $status
