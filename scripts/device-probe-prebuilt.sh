#!/usr/bin/env bash
# gdnv_inverse_probe built here (cmake --build <dir> --target gdnv_inverse_probe, Release, sm_90a) and carried as
# .device/bin/gdnv_inverse_probe.xz: the probe only needs cudart, so the device run skips configure and build
# (~1.5 of its minutes). Prints the probe's ablation and register-cap tables; the whole output comes back in $OUT.
#   SHA=<tree> bash scripts/device-probe-prebuilt.sh [probe args, default --T 8192]
source "$(dirname "$0")/device-common.sh"
device_env probe
carried gdnv_inverse_probe
[ $# -gt 0 ] || set -- --T 8192
timeout 240 /tmp/gdnv_inverse_probe "$@" > "$R/probe-$GPU-$SHA.txt" 2>&1; echo "probe exit $?"
sed -n "/== ablations/,\$p" "$R/probe-$GPU-$SHA.txt" | head -60
cp "$R"/* "$OUT"/; echo "all $(( $(date +%s) - t0 )) s"
