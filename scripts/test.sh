#!/usr/bin/env bash
# Set up, then run every test (CPU tests run; GPU tests are reported as skipped without a GPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" --output-junit junit.xml "$@"
