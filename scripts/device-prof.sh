#!/usr/bin/env bash
# Nsight Compute on selected kernels of `gdnv bench` (GPU machine; same image notes as device-bench.sh):
# speed of light, warp stall reasons, occupancy, the hottest SASS lines. KREGEX picks the kernels
# (default: the fused ones), LC how many launches of each. Results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
B=/tmp/gdnv-build
if [[ ! -x $B/gdnv ]]; then
  cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON -DGDNV_BUILD_TESTS=OFF \
    -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" -DCMAKE_CUDA_FLAGS="-lineinfo" >"$OUT/prof-build.log" 2>&1 || { tail -30 "$OUT/prof-build.log"; exit 1; }
  cmake --build $B -j"$(nproc)" --target gdnv >>"$OUT/prof-build.log" 2>&1 || { grep -E "error" -A3 "$OUT/prof-build.log" | head -40; exit 1; }
fi
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
$NCU --kernel-name "regex:${KREGEX:-kkt_solve_fused_kernel|intra_fused_kernel}" --launch-count "${LC:-1}" \
  --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
  --section MemoryWorkloadAnalysis --section SourceCounters --import-source yes \
  $B/gdnv bench --shape qwen3-next --T 8192 --reps 20 --warmup 1 --no-cold --json /tmp/prof-bench.json > "$OUT/ncu.txt" 2>&1
grep -vE "^==PROF==|^ *-+ *$|^ *$" "$OUT/ncu.txt" | cut -c1-170 | head -"${LINES_OUT:-400}"
