#!/usr/bin/env bash
# chunk_cumsum 3 (coalesced rows through a shared tile): the whole GPU suite from the carried test_cuda (its
# gpu_cumsum suite checks the bytes against the pair scan), then the stage timers of HEAD (bs_old) and the tree
# (bs_new), alternated, at the three issue-5 shapes.
#   SHA=<tree> bash scripts/device-cumsum.sh
source "$(dirname "$0")/device-common.sh"
device_env cumsum
carried test_cuda; T=/tmp/test_cuda
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
timeout 200 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt
timeout 60 $T --run_test=gpu_cumsum --log_level=test_suite 2>&1 | grep -E "Leaving test case|error|failure" | head -8
pack
ROWS='chunk_cumsum|forward fused-forward' bash scripts/device-ab-stages.sh "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"
echo "all $(( $(date +%s) - t0 )) s"
