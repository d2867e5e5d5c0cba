#!/usr/bin/env bash
# The probe's candidates, the traffic alone (warm and cold) and its ablation table at the library's occupancy (6
# blocks per SM, 80 registers; with the rows whose k tile comes from L2), T = 8192 only, no stamps: ~30 s on the
# device. The probe is built here (cmake --build <dir> --target gdnv_inverse_probe, Release, sm_90a) and carried as
# .device/bin/gdnv_inverse_probe.xz:
#   SHA=<tree> bash scripts/device-probe-ablations.sh      (carry [".device/bin/gdnv_inverse_probe.xz"])
source "$(dirname "$0")/device-common.sh"
device_env probe-ablations
carried gdnv_inverse_probe
f="$R/probe-ablations-$GPU-$SHA-T8192.txt"
GDNV_PROBE_ABLATIONS_ONLY=1 timeout 90 /tmp/gdnv_inverse_probe --T 8192 > "$f" 2>&1; echo "probe exit $?"
sed -n '/== candidates/,/round 1/p;/== the traffic alone/,/  cold:/p;/== ablations/,$p' "$f"; cp "$R"/* "$OUT"/ 2>/dev/null; pack
echo "all $(( $(date +%s) - t0 )) s"
