#!/usr/bin/env bash
# A kernel change against its base in one run on the device machine (timings compare only within a run): the tree
# as carried ("new": the GPU suite, racecheck + memcheck of the cases named in SANITIZE, the stage timings at the
# three issue-5 shapes, `gdnv bench`), then the base -- the same tree with .device/ab.patch reversed, made here by
#   git diff BASE -- cuda > .device/ab.patch
# -- rebuilt incrementally and timed by the same stage runs. KKT7=1 also times the new tree with kkt_solve 5 at seven
# blocks per SM (launch bounds 6 -> 7). Result files: stages-$GPU-$SHA.txt (new), -$SHA-kkt7, -$SHA-base. Same image
# notes as device-run.sh (.device/include).
source "$(dirname "$0")/device-common.sh"
[[ -f .device/ab.patch ]] || { echo "no .device/ab.patch"; exit 2; }
device_start ab gdnv test_cuda gdnv_bench_stages
timeout 200 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; rc=$?; echo "test_cuda exit $rc"
tail -3 $R/test_cuda-$GPU-$SHA.txt; grep -E "error" $R/test_cuda-$GPU-$SHA.txt | head -8; pack
[[ $rc == 124 ]] && { echo "test_cuda timed out: stopping"; exit 1; }
for t in ${SANITIZE:-gpu_tc/ragged_G2}; do echo "sanitize $t" >> $R/sanitizer-$GPU-$SHA.txt; device_sanitize $t; done
ROWS="kkt_solve_fused v5|intra v3|forward intra3\+scores \+ so4 c32|fused-forward"
device_stages "$ROWS"
device_bench
grep -E "kkt_solve_fused v5|intra_fused v3|fused-forward" $R/bench.log | cut -c1-130
rebuild() { cmake --build $B -j"$(nproc)" --target gdnv_bench_stages > "$R/build-$1.log" 2>&1 ||
              { grep -E "error" -A3 "$R/build-$1.log" | head -20; pack; exit 1; }; }
new=$SHA
if [[ "${KKT7:-0}" == 1 ]]; then
  sed -i 's/__launch_bounds__(128, 6) kkt_solve_v5_kernel/__launch_bounds__(128, 7) kkt_solve_v5_kernel/' cuda/kkt_solve_fused.cu
  rebuild kkt7; SHA=$new-kkt7 device_stages "kkt_solve_fused v5"
  sed -i 's/__launch_bounds__(128, 7) kkt_solve_v5_kernel/__launch_bounds__(128, 6) kkt_solve_v5_kernel/' cuda/kkt_solve_fused.cu
fi
patch -p1 -R < .device/ab.patch > $R/patch.log 2>&1 || { cat $R/patch.log; pack; exit 1; }
rebuild base; SHA=$new-base device_stages "$ROWS"
echo "all $(( $(date +%s) - t0 )) s"; pack
