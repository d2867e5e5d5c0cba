#!/bin/sh
# The pages the browser and schema tests look at (a CTest fixture):
#   make_reports.sh GDNV SOURCE_DIR OUT_DIR
# default.html: the main job's results (scripts/main.sh: our GPU implementations not run here, the
# emulated one with its [isolated] stages);
# h100.html: the committed H100 check results with the bench files (every chart kind).
set -eu
gdnv=$1 src=$2 out=$3
mkdir -p "$out"
cd "$src"
"$gdnv" check datasets/default.h5 --impl unfused,cublas,emulated --json "$out/default.json" >/dev/null
"$gdnv" report "$out/default.json" --out "$out/default.html"
"$gdnv" report bench/results/check-default-H100.json --bench bench/results/bench-H100-qwen3-next.json \
  --bench bench/results/bench-H100-qwen3-next-T8192-per-chunk.json --out "$out/h100.html"
ls -l "$out"/*.html
