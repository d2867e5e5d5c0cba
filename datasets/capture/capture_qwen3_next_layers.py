#!/usr/bin/env python3
"""Builds real Qwen3-Next Gated DeltaNet layers from their config (transformers' own
Qwen3NextGatedDeltaNet with its own parameter initialization; no weights are downloaded), runs
prefills through them and records every gated-delta-rule call with gdnv_capture into a gdnv dataset.

    python3 datasets/capture/capture_qwen3_next_layers.py --out qwen3-next-layers.h5 \
        [--lengths 64,130] [--padded 17,45] [--layers 1] [--seed 0] [--device cuda] [--max-bytes 20000000]

Each --lengths entry is one prefill of B=1 through every layer; --padded is one batch of those
sequence lengths, right-padded to the longest with an attention mask (the layer zeroes the padded
positions, as in serving with padding). The config is transformers' Qwen3NextConfig defaults
(Qwen3-Next-80B-A3B: 16 key heads, 32 value heads, head dims 128, conv kernel 4), in bf16. The
layer runs its causal conv, its gates (g = -exp(A_log) softplus(a + dt_bias), beta = sigmoid(b)) and
calls its chunk function with in-kernel l2norm; whichever function it holds (FLA's when installed,
else transformers' torch fallback) is what gets recorded, with its inputs and outputs.
Exit status: 0 written, 1 failure (nothing written), 2 bad arguments.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse_lengths(text):
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    if any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"lengths must be >= 1, got {text!r}")
    return vals


def first(out):
    return out[0] if isinstance(out, tuple) else out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", type=parse_lengths, default=[64, 130])
    ap.add_argument("--padded", type=parse_lengths, default=[17, 45])
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--max-bytes", type=int, default=20_000_000)
    args = ap.parse_args()
    if args.layers < 1:
        ap.error("--layers must be >= 1")

    import torch
    import transformers
    from transformers.models.qwen3_next import modeling_qwen3_next as mq
    from transformers.models.qwen3_next.configuration_qwen3_next import Qwen3NextConfig

    import gdnv_adapters
    import gdnv_capture

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    cfg = Qwen3NextConfig()
    dtype = torch.bfloat16
    layers = [mq.Qwen3NextGatedDeltaNet(cfg, layer_idx=i).to(device=device, dtype=dtype).eval()
              for i in range(args.layers)]
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {device}; layer: "
          f"{cfg.linear_num_key_heads} key heads, {cfg.linear_num_value_heads} value heads, "
          f"K={cfg.linear_key_head_dim}, V={cfg.linear_value_head_dim}, hidden {cfg.hidden_size}", file=sys.stderr)

    model_name = (f"Qwen3NextGatedDeltaNet x{args.layers} from Qwen3NextConfig() defaults, random init "
                  f"(seed {args.seed}), bf16, transformers {transformers.__version__}")
    with gdnv_capture.Recorder(args.out, model=model_name, max_bytes=args.max_bytes,
                               description="gdnv: real Qwen3-Next GDN layers built from their config") as rec:
        # every layer's calls recorded, with the repeated q/k heads stored once (kv_group from the layers)
        gdnv_adapters.capture_qwen3_next(rec, torch.nn.ModuleList(layers))
        with torch.no_grad():
            for T in args.lengths:
                x = torch.randn(1, T, cfg.hidden_size, device=device, dtype=dtype)
                for layer in layers:
                    x = x + first(layer(x))  # residual, so deeper layers see a realistic mix
                print(f"prefill T={T}: done", file=sys.stderr)
            if args.padded:
                T = max(args.padded)
                x = torch.randn(len(args.padded), T, cfg.hidden_size, device=device, dtype=dtype)
                mask = torch.zeros(len(args.padded), T, dtype=torch.long, device=device)
                for b, n in enumerate(args.padded):
                    mask[b, :n] = 1
                for layer in layers:
                    x = x + first(layer(x, attention_mask=mask))
                print(f"padded batch {args.padded}: done", file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - one line, exit 1, nothing written (the Recorder renames at close)
        print(f"capture_qwen3_next_layers: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
