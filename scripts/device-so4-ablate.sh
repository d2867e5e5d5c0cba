#!/usr/bin/env bash
# Where state_output_fused 4's 32-column step goes: gdnv_bench_stages builds of its step ablations against bs_new
# (the library's kernel), alternated twice per shape, all built here and carried (.device/bin). bs_ablM: the bs_new
# build with state_output_fused.cu recompiled from bench/results/so4-step-ablations-experiment.patch with
# -DGDNV_SO4_ABLATE=M and put into a copy of libgdnv_cuda.a (`ar r`) before linking. Modes (wrong values): 1 W h_c
# over half its k steps, 2 no W h_c, 3 the update K^T Db over half its k steps (measured: cuda/NOTES.md, twenty-first
# session); 4 no snapshot stores (ptxas then injects one warpgroup wait fewer), 5 no v_new / delta stores, 6 no exps,
# 7 no block barrier between the delta and the update; 8 a two-chunk step's arithmetic (every product, the delta and
# its stores, the exps and the o stores twice, the update over 8 k steps; copies unchanged), 9 its warpgroup-0 and
# update part only; 10 mode 8 with the second 64 rows' delta behind one more product of the first's (M Db_1 after a
# warpgroup barrier) and one more output product: a two-chunk step that leaves w and u as they are. MODES picks them
# (default 4 5 6 7). PAIR=1 also times the modes >= 8 at half the length against bs_new at the full one (a walk of
# two chunks per step takes half the steps). Run after another device
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
if [ "${PAIR:-0}" = 1 ]; then
  P=("new --T 32768" "new --T 8192")
  for m in ${MODES:-}; do [ "$m" -ge 8 ] && P+=("abl$m --T 16384" "abl$m --T 4096"); done
  for round in 1 2; do
    for x in "${P[@]}"; do
      set -- $x
      echo "== $x" >> "$R/so4-pair-$GPU-$SHA.txt"
      timeout 60 /tmp/bs_$1 $2 $3 --reps 20 --only 'state_output_fused 4 c32' >> "$R/so4-pair-$GPU-$SHA.txt" 2>&1
    done
  done
  grep -E "^== |^state_output_fused 4 c32 " "$R/so4-pair-$GPU-$SHA.txt" | cut -c1-100
fi
pack
