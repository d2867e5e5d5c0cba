#!/usr/bin/env bash
# One whole GPU-machine run (H100/H200 image: CUDA 13, CMake 4, HDF5 1.10, Boost headers only):
# optional capture of the default dataset, full build, every test (GPU ones included), the
# check of our kernels on the default dataset. Logs and results under $OUT.
# Header-only deps the image lacks (CLI11, nlohmann-json; mpreal and the MPFR/GMP headers, whose
# runtime libraries the image has) travel in .device/include:
#   mkdir -p .device/include && cp -r /usr/include/CLI /usr/include/nlohmann /usr/include/mpreal.h \
#     /usr/include/mpfr.h /usr/include/x86_64-linux-gnu/gmp.h .device/include/
set -uo pipefail
OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
if [[ "${CAPTURE:-0}" == 1 ]]; then
  PYTHONUNBUFFERED=1 python3 datasets/capture/capture_transformers.py datasets/default-inputs.h5 \
    --out "$OUT/default.h5" 2>&1 | tail -12
  cp "$OUT/default.h5" datasets/default.h5
fi
B=/tmp/gdnv-build
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON \
  -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build $B -j"$(nproc)" >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
echo "build ok"
(cd $B && ctest -j8 --output-on-failure >"$OUT/ctest.log" 2>&1); echo "ctest exit $?"
grep -E "tests passed|tests failed|Failed|\*\*\*Failed" "$OUT/ctest.log" | head -20
$B/gdnv check datasets/default.h5 --impl unfused,unfused-fp32inv,cublas --json "$OUT/check-gpu.json" --top 0 \
  >"$OUT/check-gpu.txt" 2>&1; echo "check exit $?"; cat "$OUT/check-gpu.txt" | head -60
