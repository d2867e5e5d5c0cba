#!/usr/bin/env bash
# Warm stage timings of two gdnv_bench_stages built here and carried (.device/bin/bs_old.xz, .device/bin/bs_new.xz),
# alternated old, new, old, new per shape in one run, the rows ROWS (a grep -E pattern) kept:
#   SHA=<tree> ROWS='kkt_solve_fused v5|intra v3' bash scripts/device-ab-stages.sh "--T 8192" "--T 32768" ...
# ONLY (optional): gdnv_bench_stages --only, so that just the compared rows are timed.
source "$(dirname "$0")/device-common.sh"
device_env ab
ROWS=${ROWS:-kkt_solve_fused v5|intra v3|forward fused-forward}
for v in old new; do carried bs_$v; done
for shape in "$@"; do
  for v in old new old new; do
    echo "== $v $shape" >> "$R/stages-ab-$GPU-$SHA.txt"
    timeout 100 /tmp/bs_$v $shape --reps 20 ${ONLY:+--only "$ONLY"} 2>&1 | grep -E "$ROWS|copy" >> "$R/stages-ab-$GPU-$SHA.txt"
  done
done
grep -E "==|$ROWS" "$R/stages-ab-$GPU-$SHA.txt" | cut -c1-110
cp "$R"/* "$OUT"/
