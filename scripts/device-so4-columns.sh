#!/usr/bin/env bash
# A focused GPU run of state_output_fused 4's two block widths (Args::state_output_columns 32 / 64) and its score
# rows on chip (Args::scores_in_state), in the order that localizes a failure: the TMA self-check, the state_output
# byte-equality tests (both widths, rows read or on chip, against the two kernels), the score-row tests, the
# block-time grid test, the whole GPU suite, the stage timings at the three issue-5 shapes, `gdnv
# bench` on them, racecheck + memcheck of a ragged case (both widths); before the timings, `gdnv check` of
# fused-forward on the shipped datasets (32-column shapes) and a generated 64-column one. Same image notes as device-run.sh
# (.device/include). Results packed into $OUT/results.tar.gz after each phase. SHA names the tree (.git stays here;
# it also goes into the bench JSON as GDNV_GIT_COMMIT). QUICK=1: the three focused suites and the stage timings only.
source "$(dirname "$0")/device-common.sh"
device_start so4c gdnv test_cuda gdnv_bench_stages
for s in gpu_tma gpu_state_output gpu_scores gpu_block_times; do
  timeout 150 $T --run_test=$s --log_level=message --report_level=short > $R/$s.txt 2>&1; rc=$?; echo "$s exit $rc"
  grep -E "error|differ|has passed|has failed" $R/$s.txt | head -8
  # a hung kernel (a barrier protocol's deadlock) would hang every later phase too: stop here
  [[ $rc == 124 ]] && { echo "$s timed out: stopping"; tail -5 $R/$s.txt; pack; exit 1; }
done
pack
if [[ "${QUICK:-0}" != 1 ]]; then
timeout 150 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
# `--impl fused-forward` against the fp64 reference (and unfused, for the pair table) on the shipped datasets,
# whose shapes choose 32-column blocks, and on a generated one that chooses 64
G=$B/gdnv
$G generate --family model-like --B 4 --T 1024 --H 16 --HV 16 --seed 3 --h0 --out $R/model-like-B4-T1024-HV16.h5 > /dev/null
for ds in datasets/default.h5 datasets/qwen3-next-layers.h5 $R/model-like-B4-T1024-HV16.h5; do
  name=$(basename $ds .h5)
  timeout 150 $G check $ds --impl unfused,fused-intra-v3,fused-forward --top 0 --no-chunk-rows \
    > $R/check-$name-fused-forward-$GPU-$SHA.txt 2>&1; echo "check $name exit $?"
  grep -E "passed,|failed" $R/check-$name-fused-forward-$GPU-$SHA.txt | tail -1
done
rm -f $R/model-like-B4-T1024-HV16.h5; pack
fi
device_stages "state_output_fused 4|so4|intra v3|fused-forward"
[[ "${QUICK:-0}" == 1 ]] && { echo "all $(( $(date +%s) - t0 )) s"; exit 0; }
device_bench
grep -E "state_output_fused 4|intra_fused v3 .*on chip|chunk_scores|fused-forward" $R/bench.log | cut -c1-150
device_sanitize gpu_state_output/equals_two_kernels_ragged_G1
echo "all $(( $(date +%s) - t0 )) s"; pack
