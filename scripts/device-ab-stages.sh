#!/usr/bin/env bash
# Warm stage timings of two gdnv_bench_stages built here and carried (.device/bin/bs_old.xz, .device/bin/bs_new.xz),
# alternated old, new, old, new per shape in one run (scripts/device-common.sh device_ab), the rows ROWS (a grep -E
# pattern) printed:
#   SHA=<tree> ROWS='kkt_solve_fused v5|intra v3' bash scripts/device-ab-stages.sh "--T 8192" "--T 32768" ...
# ONLY (optional): gdnv_bench_stages --only, so that just the compared rows are timed.
source "$(dirname "$0")/device-common.sh"
device_env ab
ROWS=${ROWS:-kkt_solve_fused v5|intra v3|forward fused-forward}
device_ab "$@"
grep -E "==|$ROWS" "$R/stages-ab-$GPU-$SHA.txt" | cut -c1-110
cp "$R"/* "$OUT"/
