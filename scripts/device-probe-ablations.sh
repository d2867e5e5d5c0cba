#!/usr/bin/env bash
# The probe's candidates, the traffic alone (warm and cold) and its ablation table at the library's occupancy (6
# blocks per SM, 80 registers; with the rows whose k tile comes from L2), T = 8192 only, no stamps: ~30 s on the
# device. The probe is built here (cmake --build <dir> --target gdnv_inverse_probe, Release, sm_90a) and carried as
# .device/bin/gdnv_inverse_probe.xz:
#   SHA=<tree> [NCU=1] bash scripts/device-probe-ablations.sh      (carry [".device/bin/gdnv_inverse_probe.xz"])
source "$(dirname "$0")/device-common.sh"
device_env probe-ablations
carried gdnv_inverse_probe
f="$R/probe-ablations-$GPU-$SHA-T8192.txt"
GDNV_PROBE_ABLATIONS_ONLY=1 timeout 90 /tmp/gdnv_inverse_probe --T 8192 > "$f" 2>&1; echo "probe exit $?"
sed -n '/== candidates/,/round 1/p;/== the traffic alone/,/  cold:/p;/== ablations/,$p' "$f"; cp "$R"/* "$OUT"/ 2>/dev/null; pack
# NCU=1: then Nsight Compute of one launch of the library's kkt_solve_v5_kernel inside the probe (its candidates
# part: no build on the device), the details page, and the source page summed per barrier region (per chunk and
# value head: T = 8192 is 128 chunks x 32 heads)
if [ "${NCU:-0}" = 1 ]; then
  NCUB=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  k=kkt_solve_v5_kernel
  GDNV_PROBE_CANDIDATE_ONLY=1 timeout 240 $NCUB --clock-control none --kernel-name "regex:^$k" --launch-skip 2 \
    --launch-count 1 --set full --import-source no -o $R/$k /tmp/gdnv_inverse_probe --T 8192 --reps 5 > $R/ncu-run-$k.log 2>&1
  echo "ncu exit $?"
  $NCUB --import $R/$k.ncu-rep --page details > $R/ncu-$GPU-$SHA-$k.txt 2>&1
  $NCUB --import $R/$k.ncu-rep --page source --csv --print-source sass > $R/src-$k.csv 2>&1
  python3 scripts/ncu_regions.py $R/src-$k.csv --per 4096 > $R/ncu-$GPU-$SHA-$k-regions.txt 2>&1
  grep -E "Duration|Executed Ipc A|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|L1/TEX Cache Th|DRAM Th|wavefronts|Executed Instructions  " \
    $R/ncu-$GPU-$SHA-$k.txt | cut -c1-150 | head -30
  cat $R/ncu-$GPU-$SHA-$k-regions.txt | cut -c1-160 | head -30
  rm -f $R/$k.ncu-rep $R/src-$k.csv; cp "$R"/* "$OUT"/ 2>/dev/null; pack
fi
echo "all $(( $(date +%s) - t0 )) s"
