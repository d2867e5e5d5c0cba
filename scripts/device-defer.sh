#!/usr/bin/env bash
# Sixteenth session: state_output_fused 4's clusters with the refill deferred (three stages: the producer arrives
# on the cluster's empty barriers right after its group-B wait and waits for them only after the step's products
# are issued), on the tree without kkt_solve_fused 6. Order: the state_output cases (every copy mode against the
# two kernels' bytes), the whole GPU suite, the stage timings (so4 c32 / c64 in each copy mode, the forward), `gdnv
# bench`, racecheck + memcheck of a ragged cluster case. Same conventions as device-so4-columns.sh.
source "$(dirname "$0")/device-common.sh"
device_start defer gdnv test_cuda gdnv_bench_stages
timeout 150 $T --run_test=gpu_state_output --log_level=message --report_level=short > "$R/gpu_state_output.txt" 2>&1; rc=$?
echo "gpu_state_output exit $rc"; grep -E "error|differ|has passed|has failed" "$R/gpu_state_output.txt" | head -8
[[ $rc == 124 ]] && { echo "timed out: stopping"; pack; exit 1; }
pack
timeout 150 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
device_stages "kkt_solve_fused v5|state_output_fused 4 c32|state_output_fused 4 c64 |clusters held|forward fused-forward"
device_bench
grep -E "kkt_solve_fused v5|intra_fused v3|clusters|fused-forward" $R/bench.log | cut -c1-150
device_sanitize gpu_state_output/equals_two_kernels_ragged_G1
echo "all $(( $(date +%s) - t0 )) s"; pack
