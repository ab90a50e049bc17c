#!/usr/bin/env bash
# Install what scalelab needs beyond the Rust toolchain, on Debian 12 (bookworm).
#
#   scripts/install-deps.sh               what the test suite needs (as --mpi --slurm --browser)
#   scripts/install-deps.sh --reference   the reference programs of scripts/compare-reference.sh:
#                                         Debian hpcc + OpenMPI + OpenBLAS, and numpy + threadpoolctl
#                                         in a virtual environment under target/ref-venv/
#   scripts/install-deps.sh --mpi         OpenMPI headers and libclang, for the `mpi` cargo feature
#   scripts/install-deps.sh --slurm       Debian's SLURM packages for a one-node cluster
#   scripts/install-deps.sh --nvrtc       NVRTC from PyPI (compiles CUDA to PTX without a GPU)
#   scripts/install-deps.sh --browser     Chromium, which tests/html.rs opens report.html in
#
# Flags combine. Idempotent: what is installed already is skipped, and `apt-get update` runs only
# when a Debian package is missing. Needs root (uses sudo when run as another user and sudo exists).
# Prints one line per thing it checked: "ok" (already there), "installed" or "changed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The reference venv lives under target/, which git ignores; `cargo clean` removes it too (run this
# script again then). Keeping numpy out of the system Python changes as little as possible.
REF_VENV="${SCALELAB_REF_VENV:-$ROOT/target/ref-venv}"
# NVRTC wheel folder (only with --nvrtc); put "$NVRTC_DIR/nvidia/cuda_nvrtc/lib" on LD_LIBRARY_PATH.
NVRTC_DIR="${SCALELAB_NVRTC_DIR:-$ROOT/target/nvrtc}"
MULTIARCH="x86_64-linux-gnu"

SUDO=()
APT_UPDATED=0

log() { printf '[install-deps] %s\n' "$*"; }
die() {
    printf '[install-deps] error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# Root is needed for apt-get and update-alternatives. Fall back to sudo rather than failing, so a
# developer in a normal account can run the script too.
need_root() {
    if [[ $EUID -eq 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "run as root (or install sudo): apt-get and update-alternatives need root"
    fi
}

check_debian() {
    if [[ ! -r /etc/os-release ]] || ! grep -q '^ID=debian' /etc/os-release; then
        log "warning: this script is written for Debian 12; package names may differ here"
    elif ! grep -q '^VERSION_ID="12"' /etc/os-release; then
        log "warning: written for Debian 12 (bookworm); found $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release)"
    fi
}

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# apt_install PKG...: install the packages that are missing, with one `apt-get update` per script
# run at most (and none when everything is there). No recommends: they pull in compilers and docs
# that nothing here uses.
apt_install() {
    local missing=() p
    for p in "$@"; do
        if pkg_installed "$p"; then
            log "ok         $p $(dpkg-query -W -f='${Version}' "$p")"
        else
            missing+=("$p")
        fi
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    need_root
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update (missing: ${missing[*]})"
        "${SUDO[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    for p in "${missing[@]}"; do
        log "installed  $p $(dpkg-query -W -f='${Version}' "$p")"
    done
}

# Debian's hpcc links libblas.so.3, which is whatever the `libblas.so.3-<arch>` alternative points to:
# the netlib reference BLAS (about 2-3 GFLOP/s here) unless an OpenBLAS package is installed, which
# registers itself with a higher priority (100 against 10). libopenblas0-pthread is Debian's default
# OpenBLAS flavour (the one the `libopenblas0` metapackage picks); its thread count follows
# OPENBLAS_NUM_THREADS, which compare-reference.sh sets to 1 so that hpcc's DGEMM is a 1-core number.
# If someone pinned the alternative by hand (manual mode) to another BLAS, point it back at OpenBLAS.
ensure_openblas_alternative() {
    local name="libblas.so.3-$MULTIARCH"
    local want="/usr/lib/$MULTIARCH/openblas-pthread/libblas.so.3"
    [[ -e $want ]] || die "$want is missing although libopenblas0-pthread is installed"
    local current
    current="$(update-alternatives --query "$name" 2>/dev/null | sed -n 's/^Value: //p')"
    if [[ "$current" == "$want" ]]; then
        log "ok         BLAS alternative $name -> $current"
    else
        need_root
        "${SUDO[@]}" update-alternatives --set "$name" "$want" >/dev/null
        log "changed    BLAS alternative $name: ${current:-none} -> $want"
    fi
}

# Show which BLAS the hpcc binary really loads, so a wrong alternative is visible at once.
report_hpcc_blas() {
    local lib
    lib="$(ldd /usr/bin/hpcc | awk '$1 == "libblas.so.3" { print $3 }')"
    [[ -n $lib ]] || die "ldd /usr/bin/hpcc shows no libblas.so.3"
    log "hpcc loads libblas.so.3 = $lib -> $(readlink -f "$lib")"
    case "$(readlink -f "$lib")" in
        *openblas*) ;;
        *) die "hpcc would use the reference BLAS; check update-alternatives --display libblas.so.3-$MULTIARCH" ;;
    esac
}

# A venv needs Debian's python3-venv for Debian's python3; a pyenv or other Python brings its own.
# Sets VENV_PYTHON.
VENV_PYTHON=""
find_venv_python() {
    VENV_PYTHON="$(command -v python3 || true)"
    if [[ -z $VENV_PYTHON ]]; then
        apt_install python3 python3-venv
        VENV_PYTHON=/usr/bin/python3
    fi
    if ! "$VENV_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
}

install_reference_python() {
    if [[ ! -x "$REF_VENV/bin/python" ]]; then
        find_venv_python
        log "creating venv $REF_VENV with $VENV_PYTHON ($("$VENV_PYTHON" --version 2>&1))"
        "$VENV_PYTHON" -m venv "$REF_VENV"
    else
        log "ok         venv $REF_VENV"
    fi
    # Both imports at once: one python start-up when everything is there already.
    if "$REF_VENV/bin/python" -c 'import numpy, threadpoolctl' >/dev/null 2>&1; then
        log "ok         numpy $("$REF_VENV/bin/python" -c 'import numpy; print(numpy.__version__)')," \
            "threadpoolctl $("$REF_VENV/bin/python" -c 'import threadpoolctl; print(threadpoolctl.__version__)')"
    else
        log "pip install numpy threadpoolctl into $REF_VENV"
        "$REF_VENV/bin/python" -m pip install --quiet --disable-pip-version-check numpy threadpoolctl
        log "installed  numpy $("$REF_VENV/bin/python" -c 'import numpy; print(numpy.__version__)')," \
            "threadpoolctl $("$REF_VENV/bin/python" -c 'import threadpoolctl; print(threadpoolctl.__version__)')"
    fi
}

# ---------------------------------------------------------------------------------------------
# Sections. Each is one flag; the default run installs what `cargo test` needs beyond Rust.
# ---------------------------------------------------------------------------------------------

# Test suite: the tests build with every feature (scripts/test.sh), so they need what the `mpi`
# feature needs. When a test starts needing a system package, add it here so CI (`.ci/run`) gets it.
install_test_deps() {
    install_mpi
    install_slurm
    install_browser
}

# A real browser for tests/html.rs: it loads every run's report.html headless (`chromium --headless
# --dump-dom`) and checks that the page loads, every figure is there and the tables match
# summary.csv. Debian's `chromium` package; no recommends (fonts and drivers a headless load of
# an SVG-only page does not need).
install_browser() {
    check_debian
    apt_install chromium
}

# Reference programs for scripts/compare-reference.sh (see docs/benchmarking.md).
install_reference() {
    check_debian
    # hpcc: STREAM, DGEMM, PingPong (and HPL, PTRANS, FFT, RandomAccess, which we keep cheap).
    # openmpi-bin: mpirun (hpcc depends on it through mpi-default-bin; listed to be explicit).
    # libopenblas0-pthread: makes hpcc's DGEMM/HPL use OpenBLAS through the BLAS alternative.
    apt_install hpcc openmpi-bin libopenblas0-pthread
    ensure_openblas_alternative
    report_hpcc_blas
    # numpy's wheel bundles its own, newer OpenBLAS (independent of the Debian one above).
    install_reference_python
}

# MPI workloads (cargo feature `mpi`, rsmpi 0.8 over OpenMPI 4.1): bindgen needs libclang.
# On a cluster, load the modules instead, e.g. `module load openmpi llvm` (or clang), so that
# `mpicc -show` and libclang are found when cargo builds with `--features mpi`.
install_mpi() {
    check_debian
    apt_install libopenmpi-dev openmpi-bin libclang-dev
    log "on a cluster, load modules instead of installing: e.g. \`module load openmpi llvm\` (OpenMPI's mpicc and libclang for bindgen), then build with \`cargo build --release --features mpi\`"
}

# One-node SLURM with accounting: slurmctld + slurmd (slurm-wlm), slurmdbd and MariaDB for sacct,
# munge for authentication. libpmix2 is loaded at run time by Slurm's mpi/pmix plugin, which
# `srun --mpi=pmix` needs to start OpenMPI ranks (no package dependency pulls it in otherwise).
# Only the packages: scripts/local-slurm.sh configures and starts the daemons.
install_slurm() {
    check_debian
    apt_install slurm-wlm slurmdbd munge mariadb-server libpmix2
}

# NVRTC without a GPU: the PyPI wheel ships libnvrtc.so.12. Installed into a folder under target/
# rather than the system Python. Owned by the CUDA work; adjust there.
install_nvrtc() {
    local lib="$NVRTC_DIR/nvidia/cuda_nvrtc/lib"
    if compgen -G "$lib/libnvrtc.so*" >/dev/null; then
        log "ok         NVRTC in $lib"
    else
        command -v python3 >/dev/null || apt_install python3
        # `pip install --target` needs pip (Debian's python3 comes without it) and is allowed
        # beside an externally managed system Python.
        python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
        log "pip install nvidia-cuda-nvrtc-cu12 into $NVRTC_DIR"
        python3 -m pip install --quiet --disable-pip-version-check --target "$NVRTC_DIR" nvidia-cuda-nvrtc-cu12
        log "installed  NVRTC in $lib"
    fi
    log "use: export LD_LIBRARY_PATH=$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
}

main() {
    local want_test=1 want_ref=0 want_mpi=0 want_slurm=0 want_nvrtc=0 want_browser=0 arg
    for arg in "$@"; do
        case "$arg" in
            --reference) want_ref=1 want_test=0 ;;
            --mpi) want_mpi=1 want_test=0 ;;
            --slurm) want_slurm=1 want_test=0 ;;
            --nvrtc) want_nvrtc=1 want_test=0 ;;
            --browser) want_browser=1 want_test=0 ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown argument '$arg' (see --help)" ;;
        esac
    done
    if [[ $want_test -eq 1 ]]; then install_test_deps; fi
    if [[ $want_ref -eq 1 ]]; then install_reference; fi
    if [[ $want_mpi -eq 1 ]]; then install_mpi; fi
    if [[ $want_slurm -eq 1 ]]; then install_slurm; fi
    if [[ $want_nvrtc -eq 1 ]]; then install_nvrtc; fi
    if [[ $want_browser -eq 1 ]]; then install_browser; fi
    log "done"
}

main "$@"
