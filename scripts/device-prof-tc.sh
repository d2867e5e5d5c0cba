#!/usr/bin/env bash
# Profile of the GQA-shared kernels against the ones they replace (GPU machine; image notes as in
# device-bench.sh): SASS opcode histograms (cuobjdump), Nsight Compute warp stalls, occupancy and the
# hottest source lines per kernel (KERNELS: regexes, one ncu run each), and `gdnv bench --per-chunk`.
# Results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
B=${B:-/tmp/gdnv-build}
[[ -x $B/gdnv && "${NO_BUILD:-0}" == 1 ]] || cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON -DGDNV_BUILD_TESTS=OFF \
  -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" >"$OUT/prof-build.log" 2>&1 || { tail -30 "$OUT/prof-build.log"; exit 1; }
[[ -x $B/gdnv && "${NO_BUILD:-0}" == 1 ]] || cmake --build $B -j"$(nproc)" --target gdnv >>"$OUT/prof-build.log" 2>&1 || { grep -E "error" -A3 "$OUT/prof-build.log" | head -40; exit 1; }
KERNELS=${KERNELS:-"kkt_solve_v5_kernelI13__nv_bfloat16Li128 kkt_solve_fused_kernelI13__nv_bfloat16S2_Li128 intra_v3_kernelI13__nv_bfloat16S2_Li128"}
cuobjdump -sass $B/gdnv > /tmp/all.sass 2>/dev/null
for k in $KERNELS; do
  awk -v k="$k" '/Function : /{f = index($0, k) > 0} f' /tmp/all.sass > /tmp/k.sass
  echo "== SASS $k: $(grep -cE '^ +/\*[0-9a-f]+\*/' /tmp/k.sass) instructions (static)"
  grep -oE '^ +/\*[0-9a-f]+\*/ +(@!?U?P[0-9T] +)?[A-Z0-9_]+(\.[A-Z0-9_]+)*' /tmp/k.sass | awk '{print $NF}' | sed 's/\..*//' \
    | sort | uniq -c | sort -rn | head -24 | tr '\n' ' '; echo
done | tee "$OUT/sass-hist.txt"
STALLS=$(for r in barrier long_scoreboard short_scoreboard mio_throttle wait math_pipe_throttle not_selected selected \
  dispatch_stall lg_throttle no_instruction membar branch_resolving imc_miss; do
  printf 'smsp__average_warps_issue_stalled_%s_per_issue_active.ratio,' $r; done | sed 's/,$//')
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for k in $KERNELS; do
  $NCU --clock-control none --kernel-name "regex:^${k%%I*}" --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section SourceCounters \
    --section InstructionStats --metrics "$STALLS" $B/gdnv bench --shape qwen3-next --T 8192 --reps 20 --warmup 1 --no-cold \
    --json /tmp/p.json > "$OUT/ncu-${k%%I*}.txt" 2>&1
  echo "== ncu $k"; grep -E "Duration|Executed Ipc|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy|Theoretical Occ|Block Limit|Registers Per|Stall|Executed Instructions  |stalled" \
    "$OUT/ncu-${k%%I*}.txt" | grep -v "^ *$" | cut -c1-150 | head -40
done
if [[ "${PER_CHUNK:-1}" == 1 ]]; then
  $B/gdnv bench --shape qwen3-next --T 8192 --per-chunk --json "$OUT/bench-per-chunk.json" > "$OUT/bench-per-chunk.log" 2>&1
  echo "per-chunk exit $?"; grep -E "kkt_solve|intra_fused" "$OUT/bench-per-chunk.log" | cut -c1-110 | head -12
fi
