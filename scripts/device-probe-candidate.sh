#!/usr/bin/env bash
# The probe's candidates (cuda/inverse_probe.cu, candidates(): the merges in single tf32) against kkt_solve_fused 5:
# A_inv bytes and kernel times at the three issue-5 shapes; with FULL=1 then the whole probe (its ablations at the
# library's occupancy) at T = 8192. The probe is built here (cmake --build <dir> --target gdnv_inverse_probe, Release,
# sm_90a) and carried as .device/bin/gdnv_inverse_probe.xz (~1-2 minutes on the device):
#   SHA=<tree> bash scripts/device-probe-candidate.sh      (carry [".device/bin/gdnv_inverse_probe.xz"])
source "$(dirname "$0")/device-common.sh"
device_env probe-candidate
carried gdnv_inverse_probe; P=/tmp/gdnv_inverse_probe
for s in "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"; do
  f="$R/probe-candidate-$GPU-$SHA-$(echo $s | tr -d ' -').txt"
  GDNV_PROBE_CANDIDATE_ONLY=1 timeout 60 $P $s > "$f" 2>&1; echo "probe $s exit $?"; sed -n '/== candidates/,$p' "$f"; pack
done
if [ "${FULL:-0}" = 1 ]; then
  f="$R/probe-$GPU-$SHA-T8192.txt"; timeout 100 $P --T 8192 > "$f" 2>&1; echo "full probe exit $?"
  sed -n '/== ablations/,/short chains/p;/register caps/,$p' "$f"
fi
cp "$R"/* "$OUT"/ 2>/dev/null; pack
echo "all $(( $(date +%s) - t0 )) s"
