#!/usr/bin/env bash
# state_output_fused 4 with two 16-column walks per 32-column block (Args::state_output_walks 2): the whole GPU suite
# from the carried test_cuda (gpu_state_output compares the walks' bytes with the two kernels'), racecheck and
# memcheck of a ragged case, then the carried gdnv_bench_stages (bs_new) twice per issue-5 shape: the rows of one
# walk and of two come from the same binary and run.
#   SHA=<tree> bash scripts/device-walks.sh
source "$(dirname "$0")/device-common.sh"
device_env walks
carried test_cuda; T=/tmp/test_cuda
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
timeout 200 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt
grep -E "error|failure" $R/test_cuda-$GPU-$SHA.txt | head -8
pack
device_sanitize "${TEST:-gpu_state_output/equals_two_kernels_ragged_G1}"
carried bs_new
ROWS='state_output_fused 4 c32|forward fused-forward'
for shape in "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"; do
  for rep in 1 2; do
    echo "== $rep $shape" >> "$R/stages-walks-$GPU-$SHA.txt"
    timeout 100 /tmp/bs_new $shape --reps 20 2>&1 | grep -E "$ROWS" >> "$R/stages-walks-$GPU-$SHA.txt"
  done
done
grep -E "==|$ROWS" "$R/stages-walks-$GPU-$SHA.txt" | cut -c1-110
cp "$R"/* "$OUT"/
echo "all $(( $(date +%s) - t0 )) s"
