#!/bin/bash
# One device run (from the repository root: bash cuda/device/run.sh): build, GPU tests, per-stage bench. Logs under $OUT.
set -o pipefail
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee $OUT/gpu.txt
cmake -S cuda/device -B /tmp/b -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a > $OUT/cmake.log 2>&1 || { tail -30 $OUT/cmake.log; exit 1; }
cmake --build /tmp/b -j16 > $OUT/build.log 2>&1 || { grep -E "error" -A3 $OUT/build.log | head -60; exit 1; }
echo "build ok"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  timeout ${TEST_TIMEOUT:-240} /tmp/b/test_cuda --log_level=message --report_level=short ${TEST_ARGS} > $OUT/test.log 2>&1
  echo "test exit $?"
  grep -E "error|fatal|failed|passed|skipped|ACCURACY" $OUT/test.log | grep -v "^.*info" | head -${TEST_LINES:-40}
fi
if [ "${SANITIZE:-0}" = 1 ]; then
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  timeout 150 $CS --tool racecheck --print-limit 5 /tmp/b/test_cuda --run_test=gpu_stages/ragged_G3_H2 > $OUT/racecheck.log 2>&1
  echo "racecheck exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard|passed|failed" $OUT/racecheck.log | head -8
  timeout 120 $CS --tool memcheck --print-limit 5 /tmp/b/test_cuda --run_test=gpu_stages/ragged_G2 > $OUT/memcheck.log 2>&1
  echo "memcheck exit $?"; grep -E "ERROR SUMMARY|passed|failed" $OUT/memcheck.log | head -5
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  /tmp/b/cuda/gdnv_bench_stages --T 8192 ${BENCH_ARGS} 2>&1 | tee $OUT/bench.log
  if [ "${MORE_SHAPES:-0}" = 1 ]; then
    /tmp/b/cuda/gdnv_bench_stages --T 32768 2>&1 | tee $OUT/bench_T32768.log | grep -E "shape|kkt \+|forward|state v2|output v2|wu \(bf16"
    /tmp/b/cuda/gdnv_bench_stages --B 4 --T 4096 --H 16 --HV 16 2>&1 | tee $OUT/bench_B4.log | grep -E "shape|kkt \+|forward"
  fi
fi
