#!/usr/bin/env bash
# Installs the Debian packages gdnv needs (when run as root and something is missing), then
# configures and builds into ./build. Sourced by scripts/main.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(cmake g++ make pkg-config libeigen3-dev libhdf5-dev libboost-test-dev libcli11-dev
          libfmt-dev nlohmann-json3-dev python3 python3-h5py python3-numpy)
# gdnv oracle: MPFR (mpreal's C++ wrapper) re-checks the fp64 reference on sampled chunks.
PACKAGES+=(libmpfrc++-dev libmpfr-dev libgmp-dev)
# gdnv report and its tests, notebooks: npm fetches the chart libraries at build time (a Node.js that
# already ships npm, e.g. NodeSource's, is kept); chromium and jsonschema check the page; nbconvert runs notebooks.
PACKAGES+=(chromium python3-jsonschema jupyter-nbconvert python3-nbclient python3-ipykernel python3-matplotlib)
command -v npm >/dev/null || PACKAGES+=(npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "gdnv setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 2
  fi
  echo "gdnv setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nvcc is optional: found on PATH or in /usr/local/cuda, the CUDA kernels are built too.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
BUILD_DIR=${GDNV_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${GDNV_CMAKE_ARGS:-} >"$BUILD_DIR.configure.log" 2>&1 \
  || { cat "$BUILD_DIR.configure.log" >&2; exit 2; }
cmake --build "$BUILD_DIR" -j"$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+%\] (Building|Linking|Built target)|^Consolidate compiler' || true
test "${PIPESTATUS[0]}" -eq 0 || { echo "gdnv setup: build failed" >&2; exit 2; }
