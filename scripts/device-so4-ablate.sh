#!/usr/bin/env bash
# Where state_output_fused 4's 32-column step goes: gdnv_bench_stages builds of its step ablations against bs_new
# (the library's kernel), alternated twice per shape, all built here and carried (.device/bin). bs_ablM: the bs_new
# build with state_output_fused.cu recompiled from bench/results/so4-step-ablations-experiment.patch with
# -DGDNV_SO4_ABLATE=M (1: W h_c over half its k steps; 2: no W h_c; 3: the update K^T Db over half its k steps --
# wrong values, the same barriers and copies) and put into a copy of libgdnv_cuda.a (`ar r`) before linking. Run
# after another device script in the same lease; packs into $OUT/so4-ablate.tar.gz. Measured: cuda/NOTES.md,
# twenty-first session.
#   SHA=<tree> bash scripts/device-so4-ablate.sh
source "$(dirname "$0")/device-common.sh"
device_env so4-ablate
pack() { tar -C "$R" -czf "$OUT/so4-ablate.tar.gz" . ; }  # beside the first script's results.tar.gz
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
for v in new abl1 abl2 abl3; do carried bs_$v; done
for shape in "--T 8192" "--T 32768"; do
  for round in 1 2; do
    for v in new abl1 abl2 abl3; do
      echo "== $v $shape" >> "$R/so4-ablate-$GPU-$SHA.txt"
      timeout 60 /tmp/bs_$v $shape --reps 20 --only 'state_output_fused 4 c32' >> "$R/so4-ablate-$GPU-$SHA.txt" 2>&1
    done
  done
done
grep -E "^== |^state_output_fused 4 c32 " "$R/so4-ablate-$GPU-$SHA.txt" | cut -c1-100
pack
