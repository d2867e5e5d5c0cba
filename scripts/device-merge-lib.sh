#!/usr/bin/env bash
# Seventeenth session: the merges with five products on the longest path and the own-diagonal gate deal
# (cuda/inverse_tc.cuh) as the library's, in kkt_solve_fused 5 and intra_fused 3. Order: the tensor-core inverse
# cases (gpu_tc: every GQA ratio and ragged chunk against the fp32-merge kernel and the CPU model), the whole GPU
# suite, racecheck + memcheck of the ragged G = 2 case (the warp-local gate -> diagonal handoff), then warm stage
# timings of two
# gdnv_bench_stages built here and carried (.device/bin/bs_old.xz: tree 4e710b3, three merge phases; bs_new.xz:
# this tree) alternated old, new, old, new in one run (scripts/device-ab-stages.sh; T = 8192, with BENCH=1 also B = 4
# T = 4096 HV = 16), then with BENCH=1 `gdnv bench` of this tree.
source "$(dirname "$0")/device-common.sh"
device_start mergelib gdnv test_cuda
timeout 120 $T --run_test=gpu_tc --log_level=message --report_level=short > "$R/gpu_tc.txt" 2>&1; rc=$?
echo "gpu_tc exit $rc"; grep -E "error|differ|has passed|has failed" "$R/gpu_tc.txt" | head -8
[[ $rc == 124 ]] && { echo "timed out: stopping"; pack; exit 1; }
pack
timeout 150 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
device_sanitize gpu_tc/ragged_G2
OUT=$R bash scripts/device-ab-stages.sh "--T 8192"; pack
[[ ${BENCH:-0} == 1 ]] && { OUT=$R bash scripts/device-ab-stages.sh "--B 4 --T 4096 --HV 16"; pack; }
[[ ${BENCH:-0} == 1 ]] && device_bench
grep -E "kkt_solve_fused v5|intra_fused v3|fused-forward" $R/bench.log | cut -c1-150
echo "all $(( $(date +%s) - t0 )) s"; pack
