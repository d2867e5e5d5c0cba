#!/usr/bin/env bash
# Nsight Compute of the GQA-shared inverse kernels (kkt_solve_fused 5, intra_fused 3) at B=1 T=8192 HV=32: speed of
# light, pipe utilization, shared-memory wavefronts, warp stalls, and the per-instruction source page (SASS with
# executed instructions and stall samples) as CSV, summed per block-barrier region by scripts/ncu_regions.py. Same
# image notes as device-run.sh (.device/include). Results packed into $OUT/results.tar.gz. KERNELS: ncu kernel-name
# regexes (default both kernels).
source "$(dirname "$0")/device-common.sh"
device_start ncu gdnv
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
cuobjdump -sass $B/gdnv > $R/all.sass 2>/dev/null
KERNELS=${KERNELS:-"kkt_solve_v5_kernel intra_v3_kernel"}
for k in $KERNELS; do
  timeout 240 $NCU --clock-control none --kernel-name "regex:^$k" --launch-skip 2 --launch-count 1 --set full \
    --import-source no -o $R/$k $B/gdnv bench --shape qwen3-next --T 8192 --reps 20 --warmup 1 --no-cold \
    --json /tmp/p.json > $R/ncu-run-$k.log 2>&1; echo "ncu $k exit $?"
  $NCU --import $R/$k.ncu-rep --page details > $R/ncu-$k.txt 2>&1
  $NCU --import $R/$k.ncu-rep --page source --csv --print-source sass > $R/src-$k.csv 2>&1
  # per barrier region, per (chunk, value head): B=1 T=8192 HV=32 is 128 chunks x 32 heads
  command -v python3 > /dev/null && python3 scripts/ncu_regions.py $R/src-$k.csv --per 4096 > $R/regions-$k.txt 2>&1
  grep -E "Duration|Executed Ipc A|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|Shared Memory|Bank|Pipe|L1/TEX Hit|Executed Instructions  " $R/ncu-$k.txt | cut -c1-150 | head -30
  rm -f $R/$k.ncu-rep; pack
done
echo "all $(( $(date +%s) - t0 )) s"; pack
