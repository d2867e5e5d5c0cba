#!/usr/bin/env bash
# Sixteenth session: inverse_tc's merges in two phases (Y20 / Y30 handed over by named barriers inside the second)
# against the three-phase schedule, with little device time: both gdnv_bench_stages binaries are built on the
# development machine (they need only the CUDA runtime and cuBLAS) and carried xz-compressed in .device/ab (bench_new: this tree,
# bench_base: the tree before the change); test_cuda builds here meanwhile (niced; the A/B's timings are CUDA
# events behind queued launches), then the GQA-shared suite, racecheck of a ragged case, the whole GPU suite.
source "$(dirname "$0")/device-common.sh"
OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"; export PATH=/usr/local/cuda/bin:$PATH
SHA=${SHA:-tree}; R=/tmp/gdnv-merge; mkdir -p $R; B=/tmp/gdnv-build; t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$R/gpu.txt"
GPU=$(grep -oE 'H100|H200|GH200|B200|A100' "$R/gpu.txt" | head -1); GPU=${GPU:-gpu}
xz -dkf .device/ab/bench_new.xz .device/ab/bench_base.xz; chmod +x .device/ab/bench_new .device/ab/bench_base
ldd .device/ab/bench_new | grep "not found" && echo "bench_new: libraries missing"
( nice -n 19 cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON \
    -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" > "$R/cmake.log" 2>&1 &&
  nice -n 19 cmake --build $B -j"$(nproc)" --target test_cuda > "$R/build.log" 2>&1; echo "build rc $?" >> "$R/build.log" ) &
bp=$!
ab() {
  for rnd in 1 2; do
    for which in new base; do
      echo "== $which $1 round $rnd" >> $R/ab-$GPU-$SHA.txt
      timeout 60 .device/ab/bench_$which $1 --reps 30 2>&1 | grep -E "kkt_solve_fused v5|intra v3" >> $R/ab-$GPU-$SHA.txt
    done
  done
}
ab "--T 8192"; cat $R/ab-$GPU-$SHA.txt; pack
wait $bp; tail -1 $R/build.log; grep -E "error" -A3 $R/build.log | head -20
T=$B/tests/test_cuda
timeout 90 $T --run_test=gpu_tc --report_level=short > $R/gpu_tc.txt 2>&1; echo "gpu_tc exit $?"; tail -3 $R/gpu_tc.txt; pack
timeout 90 compute-sanitizer --tool racecheck $T --run_test=gpu_tc/ragged_G2 2>&1 | tail -1 | tee $R/sanitizer-$GPU-$SHA.txt; pack
timeout 150 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
ab "--T 32768"; tail -12 $R/ab-$GPU-$SHA.txt
echo "all $(( $(date +%s) - t0 )) s"; pack
