#!/usr/bin/env bash
# The main job: set up, then check every captured implementation in the shipped default dataset
# against the fp64 reference, chunk by chunk. Results: build/results/default.json and the reviewer's page
# build/results/default.html.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
mkdir -p "$BUILD_DIR/results"
exec "$BUILD_DIR/gdnv" check datasets/default.h5 --impl unfused,fused,precise,fused-v5,fused-intra-v3,precise-v3,fused-forward,fused-forward-from-v,cublas,emulated --json "$BUILD_DIR/results/default.json" \
  --report "$BUILD_DIR/results/default.html" "$@"
