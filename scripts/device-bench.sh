#!/usr/bin/env bash
# One GPU-machine benchmark run (H100/H200 image: CUDA 13, CMake 4, HDF5 1.10, Boost headers only):
# full build, the GPU tests (ctest -L gpu) and the bench CLI tests, then `gdnv bench` on the Qwen3-Next
# shape (T = 8192, 32768), on B=4 T=4096 H=HV=16 (targets.md's second shape), and one --per-chunk run at
# T=8192, plus `gdnv check` of every GPU implementation on the default dataset (SANITIZE=1: racecheck and
# memcheck of a fused-kernel test; BENCH=0: no benchmarks). Results under $OUT, named after the GPU
# (e.g. bench-H100-qwen3-next.json).
# Header-only deps the image lacks (CLI11, nlohmann-json, mpreal/MPFR/GMP headers) travel in .device/include (see device-run.sh);
# pass the commit in, since .git does not travel: GDNV_GIT_COMMIT=$(git rev-parse HEAD) bash scripts/device-bench.sh
set -uo pipefail
OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | grep -oE 'H100|H200|A100|B200|GH200|L40S|L4' | head -1)
GPU=${GPU:-gpu}
B=/tmp/gdnv-build
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON \
  -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
# TARGETS (optional): build only these (e.g. "gdnv test_cuda test_harness")
cmake --build $B -j"$(nproc)" ${TARGETS:+--target $TARGETS} >>"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
echo "build ok ($(grep -c 'warning' "$OUT/build.log") warning lines)"
if [[ -z "${TARGETS:-}" ]]; then
  (cd $B && ctest -L gpu -j4 --output-on-failure >"$OUT/ctest-gpu-$GPU.txt" 2>&1); echo "ctest -L gpu exit $?"
  grep -E "tests passed|tests failed|Failed|\*\*\*Failed" "$OUT/ctest-gpu-$GPU.txt" | head -20
  (cd $B && ctest -R bench_cli --output-on-failure 2>&1 | grep -E "tests passed|tests failed|Failed" | head -5)
else
  # a partial build leaves other test executables missing, which stops ctest: run the GPU suites directly
  $B/tests/test_cuda --report_level=short --log_level=message >"$OUT/ctest-gpu-$GPU.txt" 2>&1; echo "test_cuda exit $?"
  grep -E "has passed|has failed|failed|error" "$OUT/ctest-gpu-$GPU.txt" | head -20
fi
G=$B/gdnv
if [[ "${BENCH:-1}" == 1 ]]; then  # timings first: the run may be cut at its time limit
$G bench --shape qwen3-next --T 8192,32768 --json "$OUT/bench-$GPU-qwen3-next.json" >"$OUT/bench-$GPU.log" 2>&1; echo "bench exit $?"
$G bench --B 4 --T 4096 --H 16 --HV 16 --json "$OUT/bench-$GPU-B4-T4096-H16-HV16.json" >>"$OUT/bench-$GPU.log" 2>&1; echo "bench B4 exit $?"
grep -E "^ +(kkt_solve|intra_fused|forward|chunk_state|chunk_output|chunk_scores|state_output)" "$OUT/bench-$GPU.log" | cut -c1-110
fi
# every GPU implementation on the shipped dataset, with the fused-vs-unfused pairs
ALL=unfused,unfused-splitstate,unfused-fp32inv,fused,fused-intra,precise,fused-v5,fused-intra-v3,precise-v3,fused-forward,fused-forward-from-v,cublas,cublas-fp64
$G check datasets/default.h5 --impl $ALL --attribution --json "$OUT/check-default-$GPU.json" --top 0 \
  >"$OUT/check-default-$GPU.txt" 2>&1; echo "check exit $?"; grep -E "passed,|failed|explained" "$OUT/check-default-$GPU.txt" | tail -30
# the real-layer capture: every bounded tensor of every kernel against its R_det gate
$G check datasets/qwen3-next-layers.h5 --impl $ALL --json "$OUT/check-qwen3-next-layers-$GPU.json" --top 0 --no-chunk-rows \
  >"$OUT/check-qwen3-next-layers-$GPU.txt" 2>&1; echo "check qwen3-next-layers exit $?"
grep -E "passed,|failed|explained" "$OUT/check-qwen3-next-layers-$GPU.txt" | tail -30
# a GPU baseline of the default dataset, compared against itself as a smoke test of the format
$G baseline save "$OUT/check-default-$GPU.json" -o "$OUT/baseline-default-$GPU.json" >/dev/null 2>&1; echo "baseline save exit $?"
$G baseline compare "$OUT/baseline-default-$GPU.json" "$OUT/check-default-$GPU.json" --junit /tmp/junit.xml | tail -2
# issue 5's accuracy setup: o error / bf16 floor, normal family, T = 4096, the Qwen3-Next head counts
$G generate --family normal --T 4096 --H 16 --HV 32 --seed 5 --h0 --out /tmp/normal-T4096.h5 >/dev/null
$G check /tmp/normal-T4096.h5 --impl fused,precise,fused-intra-v3,precise-v3,emulated,emulated-precise,emulated-precise-v3 --json "$OUT/check-normal-T4096-$GPU.json" \
  --top 0 --no-chunk-rows >"$OUT/check-normal-T4096-$GPU.txt" 2>&1; echo "check normal T4096 exit $?"
/usr/bin/python3 - "$OUT/check-normal-T4096-$GPU.json" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["results"]:
    m = r.get("metrics", {})
    if "o" in m:
        print("ACCURACY normal T4096 %-28s o floor ratio %.3f (max chunk %.3f), final_state rel_l2 %.3e"
              % (r["implementation"], m["o"]["floor_ratio"], m["o"]["max_chunk_ratio"], m["final_state"]["relative_l2"]))
PY
if [[ "${SANITIZE:-0}" == 1 ]] && command -v compute-sanitizer >/dev/null; then
  for tool in racecheck memcheck; do
    for t in ${SAN_TESTS:-gpu_fused/ragged_G2 gpu_precise/ragged_G2 gpu_tc/ragged_G2 gpu_state_output/equals_two_kernels_ragged_G1 gpu_scores/fp16_K64_G3_varlen_within_bound gpu_scores/intra_rows_equal_fp16_K64_G3_varlen}; do
      compute-sanitizer --tool $tool $B/tests/test_cuda --run_test=$t 2>&1 | tail -3 | tee -a "$OUT/sanitizer-$GPU.txt"
    done
  done
fi
[[ "${BENCH:-1}" == 1 ]] || exit 0
$G bench --shape qwen3-next --T 8192 --per-chunk --json "$OUT/bench-$GPU-qwen3-next-T8192-per-chunk.json" \
  >>"$OUT/bench-$GPU.log" 2>&1; echo "per-chunk bench exit $?"
