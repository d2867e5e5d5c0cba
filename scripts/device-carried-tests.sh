#!/usr/bin/env bash
# The whole GPU suite from a test_cuda built here and carried (.device/bin/test_cuda.xz, with the shared libraries
# the device image lacks in .device/lib), racecheck + memcheck of TEST, while `gdnv` builds there in the background
# (it links HDF5 and friends, so it is built on the device); then `gdnv bench` on the idle machine. Saves the
# test binary's build (~80 s of device time) from a run that must fit a short lease.
#   SHA=<tree> TEST=gpu_tc/ragged_G2 bash scripts/device-carried-tests.sh
source "$(dirname "$0")/device-common.sh"
device_env carried
JOBS=12 device_build . $B "" gdnv &  # leaves cores to the tests
bpid=$!
carried test_cuda; T=/tmp/test_cuda
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
timeout 200 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
device_sanitize "${TEST:-gpu_tc/ragged_G2}"
wait $bpid || { echo "gdnv build failed"; grep -E "error" -A3 "$R/build.log" | head -20; pack; exit 1; }
echo "build done at $(( $(date +%s) - t0 )) s"
device_bench
grep -E "kkt_solve_fused v5|intra_fused v3|fused-forward" $R/bench.log | cut -c1-150
echo "all $(( $(date +%s) - t0 )) s"; pack
