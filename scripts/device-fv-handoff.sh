#!/usr/bin/env bash
# The handoff of X inside state_output_fused 4's delta-from-v step, compared (twenty-fourth session): needs
# bench/results/fv-x-handoff-modes-experiment.patch applied, test_cuda and gdnv_bench_stages built from that tree and
# carried as .device/bin/test_cuda.xz and bs_new.xz (with .device/lib and .device/include). For each mode of
# GDNV_FV_XBAR (0-4, MODES): racecheck of the from-v byte test and warm stages of the from-v rows; the fastest mode
# racecheck leaves clean is then run through the whole test_cuda, racecheck of gpu_tc/ragged_G2, memcheck, and
# `gdnv bench` (built on the device meanwhile).
#   SHA=<tree> MODES="4 0" bash scripts/device-fv-handoff.sh
source "$(dirname "$0")/device-common.sh"
device_env fv-handoff
JOBS=12 device_build . $B "" gdnv &
bpid=$!
carried test_cuda; carried bs_new
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
T=/tmp/test_cuda
best=""; bestt=999999
for m in ${MODES:-0 1 2 3 4}; do
  export GDNV_FV_XBAR=$m
  h=$(timeout 100 compute-sanitizer --tool racecheck $T --run_test=gpu_state_output/delta_from_v_same_bytes_ragged_G1 2>&1 | grep "RACECHECK SUMMARY")
  echo "mode $m: $h" | tee -a $R/xbar-$GPU-$SHA.txt
  for s in "--T 8192" "--T 32768"; do
    echo "== mode $m $s" >> $R/xbar-$GPU-$SHA.txt
    timeout 60 /tmp/bs_new $s --reps 20 --only 'state_output_fused 4 c32 from v,forward fused-forward-from-v' >> $R/xbar-$GPU-$SHA.txt 2>&1
  done
  t=$(grep -A20 "== mode $m --T 32768" $R/xbar-$GPU-$SHA.txt | grep "forward fused-forward-from-v" | head -1 | awk '{print $NF}')
  if echo "$h" | grep -q " 0 hazards" && awk "BEGIN{exit !($t < $bestt)}"; then best=$m; bestt=$t; fi
  pack
done
grep -E "== mode|from v|from-v" $R/xbar-$GPU-$SHA.txt
[ -n "$best" ] || { echo "no mode is racecheck-clean"; exit 1; }
echo "chosen mode: $best ($bestt us)"; export GDNV_FV_XBAR=$best
timeout 200 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
timeout 200 compute-sanitizer --tool racecheck $T --run_test=gpu_tc/ragged_G2 2>&1 | tail -1 | tee -a $R/sanitizer-$GPU-$SHA.txt
timeout 100 compute-sanitizer --tool memcheck $T --run_test=gpu_state_output/delta_from_v_same_bytes_ragged_G1 2>&1 | tail -1 | tee -a $R/sanitizer-$GPU-$SHA.txt; pack
wait $bpid || { echo "gdnv build failed"; exit 1; }
device_bench
grep -E "fused-forward|delta from v|round\(A_inv" $R/bench.log | cut -c1-140
echo "all $(( $(date +%s) - t0 )) s"; pack
