#!/bin/bash
# Profile selected kernels with Nsight Compute (speed of light, warp stalls, occupancy).
export PATH=/usr/local/cuda/bin:$PATH
cmake -S cuda/device -B /tmp/b -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a > $OUT/cmake.log 2>&1 || exit 1
cmake --build /tmp/b -j16 --target gdnv_bench_stages > $OUT/build.log 2>&1 || { grep error $OUT/build.log; exit 1; }
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
$NCU --kernel-name "regex:${KREGEX:-solve_tril_kernel|chunk_state_v2}" --launch-count ${LC:-2} \
  --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
  /tmp/b/cuda/gdnv_bench_stages --reps 1 > $OUT/ncu.txt 2>&1
grep -vE "^==PROF==|^ *-+ *$|^ *$|Section: Launch" $OUT/ncu.txt | cut -c1-160 | head -${LINES_OUT:-220}
