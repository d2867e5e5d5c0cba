# Sourced by the focused GPU scripts (scripts/device-*.sh): the common start of a run on the device machine.
#   device_start NAME TARGET...  sets OUT (what comes back), SHA and GDNV_GIT_COMMIT (the tree's name, also written
#                                into the bench JSON), B (the build folder), R (/tmp/gdnv-NAME, the results), t0;
#                                writes the GPU's line to $R/gpu.txt; configures with the image's extra headers
#                                (.device/include, see device-run.sh) and builds the targets, exiting 1 with the
#                                compiler's errors on a failed build; T is then the test_cuda binary.
#   pack                         $R into $OUT/results.tar.gz (call after each phase: a timeout keeps what is there).
set -u
pack() { tar -C "$R" -czf "$OUT/results.tar.gz" . ; }
device_start() {
  local name=$1
  shift
  OUT=${OUT:-/tmp/gdnv-out}; mkdir -p "$OUT"
  export PATH=/usr/local/cuda/bin:$PATH
  SHA=${SHA:-tree}
  export GDNV_GIT_COMMIT=$SHA
  B=/tmp/gdnv-build; R=/tmp/gdnv-$name; mkdir -p "$R"
  t0=$(date +%s)
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$R/gpu.txt"
  cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DGDNV_BOOST_TEST_HEADER_ONLY=ON \
    -DCMAKE_CXX_FLAGS="-isystem $PWD/.device/include" > "$R/cmake.log" 2>&1 &&
    cmake --build $B -j"$(nproc)" --target "$@" > "$R/build.log" 2>&1 ||
    { grep -E "error" -A3 "$R/build.log" | head -30; pack; exit 1; }
  echo "build $(( $(date +%s) - t0 )) s"
  T=$B/tests/test_cuda
}
