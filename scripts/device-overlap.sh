#!/usr/bin/env bash
# A GPU run of forward()'s overlapped path (Args::overlap_intra_state: intra_fused 3 and state_output_fused 4 at
# the same time, ready flags per chunk and key head), in the order that localizes a failure: the state_output
# suite (overlapped against serial bytes), the score-row and block-time suites, the whole GPU suite, `gdnv check`
# of fused-forward / fused-intra-v3 on the default dataset and the Qwen3-Next layers (fused-forward runs the
# overlapped path end to end), the stage timings at the three issue-5 shapes, `gdnv bench` on them, racecheck +
# memcheck of an overlapped case. Same image notes as device-run.sh (.device/include). Results packed into
# $OUT/results.tar.gz after each phase. SHA names the tree (also GDNV_GIT_COMMIT in the bench JSON). QUICK=1:
# the focused suites and the stage timings only.
set -u
OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
SHA=${SHA:-tree}
export GDNV_GIT_COMMIT=$SHA
B=/tmp/gdnv-build; R=/tmp/gdnv-overlap; mkdir -p $R
pack() { tar -C $R -czf "$OUT/results.tar.gz" . ; }
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee $R/gpu.txt
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" \
  > $R/cmake.log 2>&1 && cmake --build $B -j"$(nproc)" --target gdnv test_cuda gdnv_bench_stages > $R/build.log 2>&1 \
  || { grep -E "error" -A3 $R/build.log | head -30; pack; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
T=$B/tests/test_cuda
for s in gpu_state_output gpu_scores gpu_block_times; do
  timeout 150 $T --run_test=$s --log_level=message --report_level=short > $R/$s.txt 2>&1; echo "$s exit $?"
  grep -E "error|differ|has passed|has failed" $R/$s.txt | head -8
done
pack
G=$B/gdnv
if [[ "${QUICK:-0}" != 1 ]]; then
timeout 150 $T --report_level=short > $R/test_cuda-H200-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-H200-$SHA.txt; pack
for ds in default qwen3-next-layers; do
  timeout 150 $G check datasets/$ds.h5 --impl fused-forward,fused-intra-v3 --json $R/check-$ds-overlap-H200-$SHA.json --top 0 \
    --no-chunk-rows > $R/check-$ds-overlap-H200-$SHA.txt 2>&1; echo "check $ds exit $?"
  grep -E "passed,|failed|explained" $R/check-$ds-overlap-H200-$SHA.txt | tail -4
done
pack
fi
S=$(find $B -name gdnv_bench_stages -type f | head -1)
for shape in "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"; do
  echo "== stages $shape" | tee -a $R/stages-H200-$SHA.txt
  timeout 150 $S $shape --reps 20 >> $R/stages-H200-$SHA.txt 2>&1
done
grep -E "==|forward intra3\+scores|intra v3" $R/stages-H200-$SHA.txt; pack
[[ "${QUICK:-0}" == 1 ]] && { echo "all $(( $(date +%s) - t0 )) s"; exit 0; }
timeout 200 $G bench --shape qwen3-next --T 8192,32768 --json $R/bench-H200-qwen3-next-$SHA.json > $R/bench.log 2>&1; echo "bench exit $?"
timeout 120 $G bench --B 4 --T 4096 --H 16 --HV 16 --json $R/bench-H200-B4-T4096-H16-HV16-$SHA.json >> $R/bench.log 2>&1; echo "bench B4 exit $?"
grep -E "overlapped|state_output_fused 4, 32-column blocks \(wgmma|^forward fused-intra v3 \+ scores in intra \+ state_output_fused 4 " $R/bench.log | cut -c1-150; pack
for tool in racecheck memcheck; do
  timeout 120 compute-sanitizer --tool $tool $T --run_test=gpu_state_output/overlap_equals_serial_ragged_G1 2>&1 | tail -1 | tee -a $R/sanitizer-H200-$SHA.txt
done
echo "all $(( $(date +%s) - t0 )) s"; pack
