#!/usr/bin/env bash
# Rebuilds the shipped default dataset, datasets/default.h5, in two steps:
#   1. here (any machine):      datasets/make_default.sh inputs   -> datasets/default-inputs.h5
#   2. where torch runs (GPU):  datasets/make_default.sh capture  -> datasets/default.h5
# Step 1 is bit-reproducible (gdnv generate); step 2 adds the outputs of transformers'
# pure-torch Qwen3-Next functions as captured groups (datasets/capture/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GDNV=${GDNV:-build/gdnv}
IN=datasets/default-inputs.h5
case "${1:-}" in
  inputs)
    rm -f "$IN"
    # Qwen3-Next-like GQA layer (HV = 2H, K = V = 128), real gate formula, raw q/k normalized in kernel
    "$GDNV" generate --family model-like --case model-like-gqa --B 1 --T 200 --H 2 --HV 4 --K 128 --V 128 \
      --seed 1 --h0 --out "$IN" --description "gdnv default dataset"
    # (the other cases use K = V = 64 to keep the shipped file small)
    # packed sequences of 1, 15, 64, 65 and 200 tokens, each with its own initial state
    "$GDNV" generate --family ragged --case ragged-varlen --H 2 --HV 4 --K 64 --V 64 --seed 2 --append --out "$IN"
    # adversarial: beta near 2 (eigenvalues of I - beta k k^T near -1) with G = 3
    "$GDNV" generate --family beta-near-2 --case adversarial-beta-near-2 --B 2 --T 130 --H 1 --HV 3 --K 64 --V 64 \
      --seed 3 --h0 --append --out "$IN"
    # adversarial: per-step decay down to -69 (cumulative gates of thousands inside a chunk)
    "$GDNV" generate --family strong-decay --case adversarial-strong-decay --B 1 --T 200 --H 2 --HV 4 --K 64 --V 64 \
      --seed 4 --append --out "$IN"
    ;;
  capture)
    python3 datasets/capture/capture_transformers.py "$IN" --out "${2:-datasets/default.h5}"
    ;;
  *) echo "usage: $0 inputs | capture [OUT]" >&2; exit 2 ;;
esac
