#!/usr/bin/env bash
# Where state_output_fused 5's two-chunk step goes (bench/results/so5-pairs-experiment.patch): the whole test_cuda of
# the patched tree, then gdnv_bench_stages' rows of variant 4 c32 and variant 5 with the kernel's timing ablations
# (GDNV_SO5_ABLATE=1: no M = W_2 K_1^T and C = Q_2 K_1^T products, as if intra delivered them; 2: also no M Db_1 and
# round(C) Db_1; wrong values), alternated twice per shape. Carry .device/bin/test_cuda.xz, .device/bin/bs_v5.xz
# (both built here from the patched tree) and .device/lib; packs into $OUT/results.tar.gz.
#   SHA=<tree>-so5 bash scripts/device-so5-ablate.sh
source "$(dirname "$0")/device-common.sh"
device_env so5-ablate
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
carried test_cuda
carried bs_v5
timeout 200 /tmp/test_cuda --report_level=short > "$R/test_cuda-$GPU-$SHA.txt" 2>&1
echo "test_cuda exit $?"; tail -3 "$R/test_cuda-$GPU-$SHA.txt"; pack
for shape in "--T 8192" "--T 32768"; do
  for round in 1 2; do
    for m in 0 1 2; do
      echo "== ablate $m $shape" >> "$R/so5-ablate-$GPU-$SHA.txt"
      GDNV_SO5_ABLATE=$m timeout 60 /tmp/bs_v5 $shape --reps 20 --only 'state_output_fused 4 c32,state_output_fused 5' \
        >> "$R/so5-ablate-$GPU-$SHA.txt" 2>&1
    done
  done
done
grep -vE "^(device|shape|stage) " "$R/so5-ablate-$GPU-$SHA.txt" | cut -c1-90
echo "all $(( $(date +%s) - t0 )) s"; pack
