#!/bin/sh
# Executes one notebook with Debian's jupyter nbconvert and the /usr/bin/python3 kernel; fails if a
# cell raises, or if the stored notebook carries outputs (they are kept out of git).
#   run_notebook.sh NOTEBOOK OUT_DIR RESULTS[:RESULTS...] [BENCH[:BENCH...]]
# The executed copy goes to OUT_DIR (a CI artifact). Prints "skipped: ..." without nbconvert.
set -u
nb=$1 out=$2 results=$3 bench=${4:-}
nbconvert=/usr/bin/jupyter-nbconvert
if [ ! -x "$nbconvert" ] || ! /usr/bin/python3 -c 'import ipykernel, matplotlib' 2>/dev/null; then
  echo "skipped: needs Debian's jupyter-nbconvert, python3-ipykernel and python3-matplotlib"
  exit 0
fi
/usr/bin/python3 - "$nb" <<'PY' || exit 1
import json, sys
cells = json.load(open(sys.argv[1]))["cells"]
dirty = [i for i, c in enumerate(cells) if c.get("outputs") or c.get("execution_count")]
if dirty:
    sys.exit(f"{sys.argv[1]}: cells {dirty} are stored with outputs (jupyter nbconvert --clear-output --inplace)")
PY
mkdir -p "$out"
name=$(basename "$nb" .ipynb)
cd "$(dirname "$nb")" || exit 1
export GDNV_RESULTS="$results" GDNV_BENCH="$bench" GDNV_SOURCE_DIR="$(cd .. && pwd)" PYDEVD_DISABLE_FILE_VALIDATION=1
exec "$nbconvert" --to notebook --execute --ExecutePreprocessor.kernel_name=python3 \
  --ExecutePreprocessor.timeout=120 --output-dir "$out" --output "$name.executed.ipynb" "$(basename "$nb")"
