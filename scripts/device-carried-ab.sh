#!/usr/bin/env bash
# A kernel change verified and timed in one short lease, from binaries built here and carried (.device/bin):
# the whole GPU suite of test_cuda.xz, racecheck + memcheck of TEST, the A/B warm stages of bs_old.xz / bs_new.xz
# (alternated per shape, the rows ONLY times), and last -- `gdnv` being built on the device meanwhile -- the
# `gdnv bench` JSON of the carried tree. Each phase packs its results into $OUT, so a timeout keeps what ran.
#   SHA=<tree> TEST=gpu_tc/ragged_G2 ONLY='kkt_solve_fused v5,intra v3' bash scripts/device-carried-ab.sh
# BENCH=0: no gdnv build and bench (~3 of the lease's minutes). AB=0: no A/B stages (scripts/device-carried-tests.sh).
source "$(dirname "$0")/device-common.sh"
device_env carried-ab
if [ "${BENCH:-1}" != 0 ]; then
  JOBS=12 device_build . $B "" gdnv &  # leaves cores to the tests
  bpid=$!
fi
carried test_cuda; T=/tmp/test_cuda
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
timeout 200 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
device_sanitize "${TEST:-gpu_tc/ragged_G2}"
if [ "${AB:-1}" != 0 ]; then
  device_ab "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"
  grep -vE "^(device|shape|stage) " "$R/stages-ab-$GPU-$SHA.txt" | cut -c1-110; pack
fi
[ "${BENCH:-1}" = 0 ] && { echo "all $(( $(date +%s) - t0 )) s"; exit 0; }
wait $bpid || { echo "gdnv build failed"; grep -E "error" -A3 "$R/build.log" | head -20; exit 1; }
echo "build done at $(( $(date +%s) - t0 )) s"
device_bench
grep -E "kkt_solve_fused v5|intra_fused v3|fused-forward" $R/bench.log | cut -c1-150
echo "all $(( $(date +%s) - t0 )) s"; pack
