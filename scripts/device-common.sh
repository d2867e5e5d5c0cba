# Sourced by the focused GPU scripts (scripts/device-*.sh): the common start of a run on the device machine.
#   device_env NAME              sets OUT (what comes back), SHA and GDNV_GIT_COMMIT (the tree's name, also written
#                                into the bench JSON), GPU (H100, H200, ...: in every result file's name), B (the
#                                build folder), R (/tmp/gdnv-NAME, the results), t0; writes the GPU's line to $R/gpu.txt
#   device_build SRC DIR TAG TARGET...
#                                configures SRC into DIR with the image's extra headers (.device/include, see
#                                device-run.sh) and builds the targets (JOBS parallel jobs, default all cores); logs
#                                in $R/cmakeTAG.log and $R/buildTAG.log; non-zero status on failure
#   device_start NAME TARGET...  device_env, then device_build of this tree into $B, exiting 1 with the compiler's
#                                errors on a failed build; T is then the test_cuda binary
#   carried NAME                 a binary built here and carried as .device/bin/NAME.xz, unpacked to /tmp/NAME
#   pack                         $R into $OUT/results.tar.gz (call after each phase: a timeout keeps what is there).
set -u
pack() { tar -C "$R" -czf "$OUT/results.tar.gz" . ; }
device_env() {
  OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"
  export PATH=/usr/local/cuda/bin:$PATH
  SHA=${SHA:-tree}
  export GDNV_GIT_COMMIT=$SHA
  B=/tmp/gdnv-build; R=/tmp/gdnv-$1; mkdir -p "$R"
  t0=$(date +%s)
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$R/gpu.txt"
  # result files are named after the card (H100 and H200 timings are not comparable)
  GPU=$(grep -oE 'H100|H200|GH200|B200|A100' "$R/gpu.txt" | head -1); GPU=${GPU:-gpu}
}
device_build() {
  local src=$1 dir=$2 tag=$3
  shift 3
  cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON \
    -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" > "$R/cmake$tag.log" 2>&1 &&
    cmake --build "$dir" -j"${JOBS:-$(nproc)}" --target "$@" > "$R/build$tag.log" 2>&1
}
device_start() {
  device_env "$1"
  shift
  device_build . $B "" "$@" || { grep -E "error" -A3 "$R/build.log" | head -30; pack; exit 1; }
  echo "build $(( $(date +%s) - t0 )) s"
  T=$B/tests/test_cuda
}
carried() { xz -dc ".device/bin/$1.xz" > "/tmp/$1" && chmod +x "/tmp/$1"; }
# The phases both focused scripts end with (after device_start):
#   device_stages REGEX   gdnv_bench_stages at the three issue-5 shapes into $R/stages-$GPU-$SHA.txt, the rows REGEX
#                         picks printed
#   device_bench          `gdnv bench` JSON at T = 8192, 32768 and B=4 T=4096 HV=16 ($R/bench-$GPU-*-$SHA.json)
#   device_sanitize TEST  racecheck and memcheck of one test case into $R/sanitizer-$GPU-$SHA.txt
#   device_ab SHAPE...    the carried gdnv_bench_stages bs_old / bs_new alternated old, new, old, new per shape
#                         (--only "$ONLY" where ONLY is set) into $R/stages-ab-$GPU-$SHA.txt
device_stages() {
  local S
  S=$(find $B -name gdnv_bench_stages -type f | head -1)
  for shape in "--T 8192" "--T 32768" "--B 4 --T 4096 --HV 16"; do
    echo "== stages $shape" | tee -a "$R/stages-$GPU-$SHA.txt"
    timeout 150 $S $shape --reps 20 >> "$R/stages-$GPU-$SHA.txt" 2>&1
  done
  grep -E "==|$1" "$R/stages-$GPU-$SHA.txt"; pack
}
device_bench() {
  timeout 200 $B/gdnv bench --shape qwen3-next --T 8192,32768 --json "$R/bench-$GPU-qwen3-next-$SHA.json" > "$R/bench.log" 2>&1
  echo "bench exit $?"
  timeout 120 $B/gdnv bench --B 4 --T 4096 --H 16 --HV 16 --json "$R/bench-$GPU-B4-T4096-H16-HV16-$SHA.json" >> "$R/bench.log" 2>&1
  echo "bench B4 exit $?"; pack
}
device_ab() {
  local shape v
  for v in old new; do carried bs_$v; done
  for shape in "$@"; do
    for v in old new old new; do
      echo "== $v $shape" >> "$R/stages-ab-$GPU-$SHA.txt"
      timeout 100 /tmp/bs_$v $shape --reps 20 ${ONLY:+--only "$ONLY"} >> "$R/stages-ab-$GPU-$SHA.txt" 2>&1
    done
  done
}
device_sanitize() {
  for tool in racecheck memcheck; do
    timeout 120 compute-sanitizer --tool $tool $T --run_test="$1" 2>&1 | tail -1 | tee -a "$R/sanitizer-$GPU-$SHA.txt"
  done
  pack
}
