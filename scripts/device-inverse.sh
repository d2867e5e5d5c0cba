#!/usr/bin/env bash
# A GPU run for changes to the GQA-shared inverse (cuda/inverse_tc.cuh: kkt_solve_fused 5, intra_fused 3) and the
# gated score tiles: the whole GPU suite first, `gdnv check` of the kernels that use them on the default dataset
# and the Qwen3-Next layers (with `unfused`: the check's pair table gives the bit-equal fraction of their A_inv
# against the fp32-merge pipeline's), the phase probe (cuda/inverse_probe.cu), the stage timings at the three issue-5
# shapes, `gdnv bench` on them, racecheck + memcheck of a GQA-shared case. Same image notes as device-run.sh
# (.device/include). Results packed into $OUT/results.tar.gz after each phase. SHA names the tree (also
# GDNV_GIT_COMMIT in the bench JSON). QUICK=1: test suite, probe and stage timings only.
source "$(dirname "$0")/device-common.sh"
device_start inverse gdnv test_cuda gdnv_bench_stages gdnv_inverse_probe
timeout 150 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt
grep -E "error" $R/test_cuda-$GPU-$SHA.txt | head -10; pack
G=$B/gdnv
if [[ "${QUICK:-0}" != 1 ]]; then
for ds in default qwen3-next-layers; do
  timeout 150 $G check datasets/$ds.h5 --impl unfused,fused-v5,fused-intra-v3,precise-v3,fused-forward --json $R/check-$ds-$GPU-$SHA.json \
    --top 0 --no-chunk-rows > $R/check-$ds-$GPU-$SHA.txt 2>&1; echo "check $ds exit $?"
  grep -E "passed,|failed" $R/check-$ds-$GPU-$SHA.txt | tail -2
done
pack
fi
P=$(find $B -name gdnv_inverse_probe -type f | head -1)
timeout 120 $P --T 8192 > $R/probe-$GPU-$SHA.txt 2>&1; echo "probe exit $?"; head -24 $R/probe-$GPU-$SHA.txt; tail -9 $R/probe-$GPU-$SHA.txt; pack
device_stages "kkt_solve_fused v5|intra v3|forward intra3\+scores \+ so4 |chunk_scores"
[[ "${QUICK:-0}" == 1 ]] && { echo "all $(( $(date +%s) - t0 )) s"; exit 0; }
device_bench
device_sanitize gpu_tc/ragged_G2
echo "all $(( $(date +%s) - t0 )) s"; pack
