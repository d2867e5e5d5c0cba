#!/usr/bin/env bash
# The probe's persistent prefetch candidate (cuda/inverse_probe.cu, probe_prefetch_kernel) against kkt_solve_fused 5:
# A_inv bytes and kernel times at the three issue-5 shapes, racecheck at G = 3 (1024 items on at most 660 blocks, so
# a block runs several items and its third head's gate values wait behind the next k tile's group), then the whole
# probe (its ablations at the library's occupancy) at T = 8192. The probe is built here (cmake --build <dir> --target
# gdnv_inverse_probe, Release, sm_90a) and carried as .device/bin/gdnv_inverse_probe.xz (~1-2 minutes on the device):
#   SHA=<tree> bash scripts/device-probe-prefetch.sh      (carry [".device/bin/gdnv_inverse_probe.xz"])
source "$(dirname "$0")/device-common.sh"
device_env probe-prefetch
carried gdnv_inverse_probe; P=/tmp/gdnv_inverse_probe
for s in "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"; do
  f="$R/probe-prefetch-$GPU-$SHA-$(echo $s | tr -d ' -').txt"
  GDNV_PROBE_CANDIDATE_ONLY=1 timeout 60 $P $s > "$f" 2>&1; echo "probe $s exit $?"; sed -n '/== prefetch/,$p' "$f"; pack
done
GDNV_PROBE_CANDIDATE_ONLY=1 timeout 200 compute-sanitizer --tool racecheck $P --T 4096 --HV 48 --reps 1 2>&1 |
  grep -E "SUMMARY|differ" | tee -a "$R/sanitizer-$GPU-$SHA.txt"; pack
f="$R/probe-$GPU-$SHA-T8192.txt"; timeout 100 $P --T 8192 > "$f" 2>&1; echo "full probe exit $?"
sed -n '/== ablations/,/short chains/p;/register caps/,$p' "$f"; cp "$R"/* "$OUT"/ 2>/dev/null; pack
echo "all $(( $(date +%s) - t0 )) s"
