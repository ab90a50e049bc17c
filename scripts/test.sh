#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian 12 machine with Rust:
#   1. install what the tests need (scripts/install-deps.sh: OpenMPI, libclang, SLURM, Chromium for
#      tests/html.rs, NVRTC) and
#      start a two-node SLURM with accounting for tests/slurm.rs and tests/slurm_nodes.rs
#      (scripts/local-slurm.sh up --nodes 2),
#   2. build every test binary once, with all features, and run them with cargo-nextest,
#   3. run the doc tests (the examples in the API documentation),
#   4. build the API documentation of our crates with rustdoc's warnings as errors,
#   5. check formatting, and clippy on the default build (no features) and on every feature.
# All steps share one CARGO_TARGET_DIR so nothing is built twice.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
# The default set includes Chromium (--browser): tests/html.rs opens report.html in it headless
# and fails, naming this fix, when no browser is on PATH.
bash scripts/install-deps.sh
# NVRTC from PyPI: tests/cuda.rs compiles every CUDA kernel to PTX (no GPU needed) and fails,
# naming this fix, when libnvrtc is not on LD_LIBRARY_PATH.
bash scripts/install-deps.sh --nvrtc
export LD_LIBRARY_PATH="${SCALELAB_NVRTC_DIR:-$PWD/target/nvrtc}/nvidia/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

step "two-node SLURM"
# Two nodes of one CPU each on this machine (tests/slurm.rs, tests/slurm_nodes.rs). A cluster that
# already runs with another node count is restarted.
if ! bash scripts/local-slurm.sh up --nodes 2; then
  bash scripts/local-slurm.sh down
  bash scripts/local-slurm.sh up --nodes 2
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

step "tests (all features)"
cargo nextest run --workspace --all-features --no-fail-fast

step "doc tests"
cargo test --workspace --all-features --doc

step "documentation"
# Broken or ambiguous intra-doc links, links to private items and stray HTML fail here. Our
# crates only (--no-deps): the dependencies' docs are not ours to fix and would take minutes.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps

step "format and lints"
cargo fmt --all -- --check
# The default build (no features) is what `cargo install` gives: it must compile and lint clean
# too, since code behind `#[cfg(feature = ...)]` can leave imports or helpers unused without it.
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "all tests passed"
