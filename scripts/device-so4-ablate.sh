#!/usr/bin/env bash
# Where state_output_fused 4's 32-column step goes: gdnv_bench_stages builds of its step ablations against bs_new
# (the library's kernel), alternated twice per shape, all built here and carried (.device/bin). bs_ablM: the bs_new
# build with state_output_fused.cu recompiled from bench/results/so4-step-ablations-experiment.patch with
# -DGDNV_SO4_ABLATE=M and put into a copy of libgdnv_cuda.a (`ar r`) before linking. Modes (wrong values): 1 W h_c
# over half its k steps, 2 no W h_c, 3 the update K^T Db over half its k steps (measured: cuda/NOTES.md, twenty-first
# session); 4 no snapshot stores (ptxas then injects one warpgroup wait fewer), 5 no v_new / delta stores, 6 no exps,
# 7 no block barrier between the delta and the update. MODES picks them (default 4 5 6 7). Run after another device
# script in the same lease; packs into $OUT/so4-ablate.tar.gz.
#   SHA=<tree> bash scripts/device-so4-ablate.sh
source "$(dirname "$0")/device-common.sh"
device_env so4-ablate
pack() { tar -C "$R" -czf "$OUT/so4-ablate.tar.gz" . ; }  # beside the first script's results.tar.gz
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-}
V="new"
for m in ${MODES:-4 5 6 7}; do V="$V abl$m"; done
for v in $V; do carried bs_$v; done
for shape in "--T 8192" "--T 32768"; do
  for round in 1 2; do
    for v in $V; do
      echo "== $v $shape" >> "$R/so4-ablate-$GPU-$SHA.txt"
      timeout 60 /tmp/bs_$v $shape --reps 20 --only 'state_output_fused 4 c32' >> "$R/so4-ablate-$GPU-$SHA.txt" 2>&1
    done
  done
done
grep -E "^== |^state_output_fused 4 c32 " "$R/so4-ablate-$GPU-$SHA.txt" | cut -c1-100
pack
