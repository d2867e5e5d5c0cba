#!/usr/bin/env python3
"""gdnv_capture with real torch tensors and the real entry points, where they are installed.

    python3 datasets/capture/test_gdnv_capture_torch.py [PATH/TO/gdnv]

Without torch the whole file is skipped: it prints 'skipped: ...' and exits 77 (CTest's
SKIP_RETURN_CODE). With torch, each test whose package (transformers, fla, sglang, vllm) or
device (CUDA for the Triton kernels) is missing prints 'skipped: ...' and counts as skipped.
Every recorded file must pass `gdnv check`.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

GDNV = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GDNV_EXE", "")
SKIP = 77


class Skip(Exception):
    pass


def need(*packages):
    for p in packages:
        if importlib.util.find_spec(p) is None:
            raise Skip(f"{p} not importable")


def check(path):
    r = subprocess.run([GDNV, "check", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def inputs(torch, device, dtype, B=1, T=100, H=2, HV=4, K=32, V=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    q, k, v = rnd(B, T, H, K), rnd(B, T, H, K), rnd(B, T, HV, V)
    g = torch.nn.functional.logsigmoid(rnd(B, T, HV) + 2)
    beta = torch.sigmoid(rnd(B, T, HV))
    h0 = 0.1 * rnd(B, HV, K, V)
    cast = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
    return (cast(q), cast(k), cast(v), g.to(device), cast(beta), h0.to(device))


def torch_recurrence(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                     use_qk_l2norm_in_kernel=False):
    """float64 recurrence in torch, o in q's dtype (an FLA-signature fake with torch tensors)."""
    import torch
    dt = q.dtype
    q, k, v, g, beta = (x.double() for x in (q, k, v, g, beta))
    B, T, H, K = q.shape
    HV, V = v.shape[2], v.shape[3]
    if use_qk_l2norm_in_kernel:
        q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-6)
        k = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-6)
    q = q.repeat_interleave(HV // H, dim=2) * (K ** -0.5 if scale is None else scale)
    k = k.repeat_interleave(HV // H, dim=2)
    o = torch.zeros(B, T, HV, V, dtype=torch.float64, device=q.device)
    states = []
    for b in range(B):
        S = initial_state[b].double().clone() if initial_state is not None else torch.zeros(HV, K, V, dtype=torch.float64)
        for t in range(T):
            S = S * torch.exp(g[b, t])[:, None, None]
            delta = beta[b, t][:, None] * (v[b, t] - torch.einsum("hk,hkv->hv", k[b, t], S))
            S = S + k[b, t][:, :, None] * delta[:, None, :]
            o[b, t] = torch.einsum("hk,hkv->hv", q[b, t], S)
        states.append(S)
    return o.to(dt), (torch.stack(states).float() if output_final_state else None)


def t_torch_tensors_bf16(torch, d):
    import gdnv_capture
    path = os.path.join(d, "torch.h5")
    with gdnv_capture.Recorder(path, model="torch-test") as rec:
        fn = rec.wrap(torch_recurrence, name="torch-recurrence", layer=0, arithmetic="float64 recurrence, o bf16")
        q, k, v, g, beta, h0 = inputs(torch, "cpu", torch.bfloat16)
        fn(q, k, v, g, beta, initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    check(path)


def t_transformers_functions(torch, d):
    need("transformers")
    import gdnv_adapters
    import gdnv_capture
    path = os.path.join(d, "tf.h5")
    with gdnv_capture.Recorder(path, model="transformers-functions") as rec:
        chunk = gdnv_adapters.transformers_chunk(rec, layer=0)
        rec_fn = gdnv_adapters.transformers_recurrent(rec, layer=0)
        q, k, v, g, beta, h0 = inputs(torch, "cpu", torch.bfloat16, H=4, HV=4)
        for fn in (chunk, rec_fn):
            fn(q, k, v, g=g, beta=beta, initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    out = check(path)
    assert "captured:transformers-torch-chunk" in out and "captured:transformers-torch-recurrent" in out, out


def t_transformers_layer(torch, d):
    need("transformers")
    import gdnv_adapters
    import gdnv_capture
    from transformers.models.qwen3_next import configuration_qwen3_next as cq
    from transformers.models.qwen3_next import modeling_qwen3_next as mq
    cfg = cq.Qwen3NextConfig(hidden_size=64, linear_num_key_heads=2, linear_num_value_heads=4,
                             linear_key_head_dim=32, linear_value_head_dim=32, linear_conv_kernel_dim=4,
                             num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1)
    torch.manual_seed(0)
    layer = mq.Qwen3NextGatedDeltaNet(cfg, layer_idx=3).to(torch.bfloat16)
    path = os.path.join(d, "layer.h5")
    original_forward = mq.Qwen3NextGatedDeltaNet.forward
    with gdnv_capture.Recorder(path, model="tiny Qwen3-Next layer") as rec:
        wrapped = gdnv_adapters.capture_qwen3_next(rec, layer)
        assert wrapped == [layer]
        with torch.no_grad():
            layer(torch.randn(1, 80, 64, dtype=torch.bfloat16))
    assert mq.Qwen3NextGatedDeltaNet.forward is original_forward, "forward not restored"
    assert "chunk_gated_delta_rule" not in layer.__dict__ or not hasattr(
        layer.chunk_gated_delta_rule, "__gdnv_capture_spec__"), "layer attribute not restored"
    import h5py
    with h5py.File(path, "r") as f:
        names = list(f["cases"])
        assert names and all(n.startswith("L3-") for n in names), names
        q = f[f"cases/{names[0]}/inputs/q"]
        assert q.shape[2] == 2, f"repeated heads not collapsed: {q.shape}"
    check(path)


def t_fla(torch, d, module_key):
    import gdnv_adapters
    import gdnv_capture
    top = {"fla": "fla", "sglang": "sglang", "vllm": "vllm"}[module_key]
    need(top)
    if not torch.cuda.is_available():
        raise Skip("no CUDA device for the Triton kernels")
    path = os.path.join(d, f"{module_key}.h5")
    with gdnv_capture.Recorder(path, model=f"{module_key} kernel") as rec:
        fn = gdnv_adapters.ADAPTERS[module_key](rec, layer=0)
        q, k, v, g, beta, h0 = inputs(torch, "cuda", torch.bfloat16, T=200, H=4, HV=4, K=128, V=128)
        fn(q, k, v, g, beta, initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    check(path)


def main():
    if importlib.util.find_spec("torch") is None:
        print("skipped: torch not importable (the torch, transformers, FLA, sglang and vLLM capture tests "
              "run where torch is installed)")
        return SKIP
    import torch
    tests = [("torch tensors (bf16)", lambda d: t_torch_tensors_bf16(torch, d)),
             ("transformers functions", lambda d: t_transformers_functions(torch, d)),
             ("transformers Qwen3NextGatedDeltaNet layer", lambda d: t_transformers_layer(torch, d)),
             ("fla chunk_gated_delta_rule", lambda d: t_fla(torch, d, "fla")),
             ("sglang chunk_gated_delta_rule", lambda d: t_fla(torch, d, "sglang")),
             ("vllm chunk_gated_delta_rule", lambda d: t_fla(torch, d, "vllm"))]
    passed = failed = skipped = 0
    for name, fn in tests:
        with tempfile.TemporaryDirectory() as d:
            try:
                fn(d)
                passed += 1
            except Skip as e:
                skipped += 1
                print(f"skipped: {name}: {e}")
            except Exception:
                failed += 1
                print(f"FAILED {name}:\n{traceback.format_exc()}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
