#!/usr/bin/env bash
# A focused GPU run of state_output_fused 4 (first used on its branch), in the order that localizes a failure:
# the TMA self-check (swizzle, zero fill, swizzled descriptors), the state_output byte-equality tests, the stage
# timings of variants 2-4, racecheck of one variant-4 case. Same image notes as device-run.sh (.device/include).
# Results are packed into $OUT/results.tar.gz after each phase.
source "$(dirname "$0")/device-common.sh"
device_start tma gdnv test_cuda gdnv_bench_stages
timeout 60 $B/tests/test_cuda --run_test=gpu_tma --log_level=message > $R/tma.txt 2>&1; echo "gpu_tma exit $?"; grep -E "error|passed|failed" $R/tma.txt | head
timeout 120 $B/tests/test_cuda --run_test=gpu_state_output --log_level=message > $R/so.txt 2>&1; echo "gpu_state_output exit $?"
grep -E "error|differ" $R/so.txt | head -12; pack
S=$(find $B -name gdnv_bench_stages -type f | head -1)
timeout 120 $S --reps 20 > $R/stages.txt 2>&1; grep -E "state_output|forward intra3" $R/stages.txt; pack
timeout 90 compute-sanitizer --tool racecheck $B/tests/test_cuda --run_test=gpu_state_output/equals_two_kernels_ragged_G1 2>&1 | tail -1 | tee $R/racecheck.txt
echo "all $(( $(date +%s) - t0 )) s"; pack
