#!/usr/bin/env bash
# The fifteenth session's two opt-in changes on one GPU run (written without a device), in the order that localizes a
# failure: kkt_solve_fused 6 (variant 5's work in a persistent grid, the next item's k tile prefetched) against
# variant 5's bytes and its block-time grid; state_output_fused 4's clusters with the plain remote arrive
# (Args::state_output_cluster 2) and the new clusters of two at 32 columns (3) against the two kernels' bytes; the
# whole GPU suite; the stage timings at the three issue-5 shapes (rows "kkt_solve_fused v5 / v6", "... c32 nocl / cl /
# cl2"); `gdnv bench`; racecheck + memcheck of the v6 test and of a ragged state_output case. Same conventions as
# device-so4-columns.sh (.device/include, SHA, $OUT/results.tar.gz after each phase).
source "$(dirname "$0")/device-common.sh"
device_start persistent gdnv test_cuda gdnv_bench_stages
for s in gpu_tc/kkt_solve_v6_equals_v5 gpu_block_times gpu_state_output; do
  timeout 150 $T --run_test=$s --log_level=message --report_level=short > "$R/${s//\//-}.txt" 2>&1; rc=$?
  echo "$s exit $rc"
  grep -E "error|differ|has passed|has failed" "$R/${s//\//-}.txt" | head -8
  # a hung kernel (a barrier protocol's deadlock) would hang every later phase too: stop here
  [[ $rc == 124 ]] && { echo "$s timed out: stopping"; tail -5 "$R/${s//\//-}.txt"; pack; exit 1; }
done
pack
timeout 150 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
device_stages "kkt_solve_fused|state_output_fused 4 c32|state_output_fused 4 c64 |clusters held|forward fused-forward"
device_bench
grep -E "kkt_solve_fused v[56]|clusters|fused-forward" $R/bench.log | cut -c1-150
device_sanitize gpu_tc/kkt_solve_v6_equals_v5
device_sanitize gpu_state_output/equals_two_kernels_ragged_G1
echo "all $(( $(date +%s) - t0 )) s"; pack
