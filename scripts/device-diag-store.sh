#!/usr/bin/env bash
# Sixteenth session: invert_diag's row-major stores without the 2-way bank conflict (cuda/inverse_tc.cuh: the upper
# half-warp stores row 8 + (t ^ 4) in its t-th store), A/B in one run against the tree before it (base: this tree
# with .device/base/inverse_tc.cuh, the only file of the kernels that differs: put the base version there first,
# e.g. `git show 829429a:cuda/inverse_tc.cuh > .device/base/inverse_tc.cuh`), alternating the two
# gdnv_bench_stages binaries at T = 8192 and 32768 (rows kkt_solve_fused v5, intra v3); then the whole GPU suite on
# this tree first, the inverse probe (blocks per SM 7 against 6: the wave tail), racecheck + memcheck of a ragged GQA case.
source "$(dirname "$0")/device-common.sh"
device_start diag gdnv test_cuda gdnv_bench_stages gdnv_inverse_probe
BT=/tmp/gdnv-basetree; mkdir -p $BT
tar -cf - . | tar -C $BT -xf -   # with .device (the configure finds mpfr.h there)
cp .device/base/inverse_tc.cuh $BT/cuda/inverse_tc.cuh
# the base binary builds while the GPU suite runs (no timing overlaps a build)
device_build $BT /tmp/gdnv-build-base -base gdnv_bench_stages &
base_pid=$!
[[ -n "${SKIP_SUITE:-}" ]] || timeout 150 $T --report_level=short > $R/test_cuda-$GPU-$SHA.txt 2>&1; echo "test_cuda exit $?"; tail -3 $R/test_cuda-$GPU-$SHA.txt; pack
wait $base_pid || { grep -E "error" -A3 "$R/build-base.log" | head -20; pack; exit 1; }
echo "base build done at $(( $(date +%s) - t0 )) s"
SN=$(find $B -name gdnv_bench_stages -type f | head -1); SB=$(find /tmp/gdnv-build-base -name gdnv_bench_stages -type f | head -1)
ab() {
  local shape=$1
  for rnd in 1 2; do
    for which in new base; do
      S=$SN; [[ $which == base ]] && S=$SB
      echo "== $which $shape round $rnd" >> $R/ab-$GPU-$SHA.txt
      timeout 100 $S $shape --reps 30 2>&1 | grep -E "kkt_solve_fused v5|intra v3" >> $R/ab-$GPU-$SHA.txt
    done
  done
  cat $R/ab-$GPU-$SHA.txt; pack
}
ab "--T 8192"
P=$(find $B -name gdnv_inverse_probe -type f | head -1)
timeout 120 $P --T 8192 > $R/probe-$GPU-$SHA.txt 2>&1; echo "probe exit $?"; sed -n '/register caps/,$p' $R/probe-$GPU-$SHA.txt; pack
ab "--T 32768"
device_sanitize gpu_tc/ragged_G2
echo "all $(( $(date +%s) - t0 )) s"; pack
