#!/usr/bin/env bash
# state_output_fused 5, two chunks per step (bench/results/so5-pairs-experiment.patch; measured 1.22x variant 4's
# time, cuda/NOTES.md, twenty-third session): gpu_tc (check_forward_pairs runs in every K = 128 case: bounds, the CPU
# model's o prediction, intra's bytes, first chunks' v_new / o bytes), racecheck and memcheck of gpu_tc/ragged_G2,
# gpu_state_output and gpu_scores (the variant dispatch), then the warm stages of state_output_fused 4 c32 and 5 and
# their forwards, twice per shape. From test_cuda and gdnv_bench_stages built here with the patch applied and carried
# as .device/bin/test_cuda.xz and .device/bin/bs_v5.xz (carry those two and .device/lib); packs into
# $OUT/results.tar.gz.
#   SHA=<tree>-so5 [ROUNDS=2] bash scripts/device-so5.sh
source "$(dirname "$0")/device-common.sh"
device_env so5
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
carried test_cuda
carried bs_v5
T=/tmp/test_cuda
timeout 120 $T --run_test=gpu_tc --report_level=short --log_level=message > "$R/gpu_tc-$GPU-$SHA.txt" 2>&1
echo "gpu_tc exit $?"
grep -E "error|ACCURACY fused-forward-pairs|test cases|assertions" "$R/gpu_tc-$GPU-$SHA.txt" | cut -c1-200 | head -30
pack
device_sanitize gpu_tc/ragged_G2
timeout 100 $T --run_test=gpu_state_output,gpu_scores --report_level=short > "$R/state-output-$GPU-$SHA.txt" 2>&1
echo "gpu_state_output,gpu_scores exit $?"; tail -3 "$R/state-output-$GPU-$SHA.txt"
for shape in "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"; do
  for round in $(seq ${ROUNDS:-2}); do
    echo "== $shape" >> "$R/stages-so5-$GPU-$SHA.txt"
    timeout 60 /tmp/bs_v5 $shape --reps 20 --only 'state_output_fused 4 c32,state_output_fused 5,forward intra3+scores + so4 c32,forward intra3+scores + so5,forward fused-forward' >> "$R/stages-so5-$GPU-$SHA.txt" 2>&1
  done
done
grep -vE "cl$|cl2$|nocl$|^device|^shape|^stage" "$R/stages-so5-$GPU-$SHA.txt" | cut -c1-70
echo "all $(( $(date +%s) - t0 )) s"; pack
