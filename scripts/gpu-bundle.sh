#!/usr/bin/env bash
# Prepare the folder scripts/gpu-check.sh runs from on a GPU machine without a Rust toolchain:
#
#   scripts/gpu-bundle.sh [--mpi] [DIR]      (default DIR: .device/gpu, which git ignores)
#
# With --mpi the binary also has MPI (`--features cuda,mpi`), so that gpu-check.sh runs the GPU
# training check (gpu-train.toml); the GPU machine then needs OpenMPI 4 (libmpi.so.40, mpirun).
#
# Builds scalelab with the `cuda` feature (release), strips it (about 8 MB instead of 57) and
# copies it with the GPU manifests and gpu-check.sh into DIR. Then, on the GPU machine:
#   bash DIR/gpu-check.sh DIR
# The binary needs glibc 2.35 or newer there (Debian 12, Ubuntu 22.04).
set -euo pipefail
cd "$(dirname "$0")/.."
FEATURES=cuda
if [[ ${1:-} == --mpi ]]; then
    FEATURES=cuda,mpi
    shift
fi
DIR="${1:-.device/gpu}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --features "$FEATURES"
mkdir -p "$DIR"
cp "$CARGO_TARGET_DIR/release/scalelab" "$DIR/scalelab"
strip "$DIR/scalelab" 2>/dev/null || true
cp experiments/gpu-*.toml scripts/gpu-check.sh "$DIR/"
echo "[gpu-bundle] $DIR: $(du -sh "$DIR" | cut -f1); run there: bash $DIR/gpu-check.sh $DIR"
