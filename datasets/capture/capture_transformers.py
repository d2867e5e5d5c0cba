#!/usr/bin/env python3
"""Run transformers' pure-torch gated delta rule functions on every case of a gdnv dataset.

    capture_transformers.py INPUT.h5 --out OUTPUT.h5 [--device cuda|cpu]
                            [--impl chunk,recurrent] [--case NAME]

For each case the stored inputs are fed, unchanged, to
transformers.models.qwen3_next.modeling_qwen3_next.torch_chunk_gated_delta_rule and/or
torch_recurrent_gated_delta_rule, called the way Qwen3NextGatedDeltaNet calls them; their o
and final_state are added as /cases/<case>/captured/transformers-torch-{chunk,recurrent}/.
OUTPUT is INPUT plus those groups (an existing group of the same name is replaced); it appears
whole or not at all. See README.md for what the functions do and how the call is made.

Exit status: 0 done, 2 bad input file or bad arguments, 1 anything else (no output written).
"""

import argparse
import hashlib
import inspect
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdnv_h5  # noqa: E402  (numpy + h5py only)

PROG = "capture_transformers"

# --impl key -> (group name, function name in modeling_qwen3_next)
IMPLS = {
    "chunk": ("transformers-torch-chunk", "torch_chunk_gated_delta_rule"),
    "recurrent": ("transformers-torch-recurrent", "torch_recurrent_gated_delta_rule"),
}

# The precision each function declares in its source (transformers 5.17.0; see README.md).
ARITHMETIC = {
    "chunk": ("q,k,v,g,beta cast to fp32; q,k l2norm (if enabled) in fp32; q * K^-0.5; T zero-padded "
              "to a multiple of chunk_size; chunk-local cumsum of g; u and w from "
              "torch.linalg.solve_triangular on the unit lower triangular I+A; chunk-by-chunk state "
              "update with matmuls; all fp32 (TF32 off); o cast to q's dtype; state fp32"),
    "recurrent": ("q,k,v,g,beta cast to fp32; q,k l2norm (if enabled) in fp32; q / sqrt(K); per-token "
                  "fp32 recurrence (decay, delta, rank-1 update, read) with elementwise products and "
                  "sums, no matmul; o cast to q's dtype; state fp32"),
}

# sha256 of inspect.getsource() of the pure-torch functions in transformers 5.17.0, for which the
# ARITHMETIC text above was written. Another text only earns a warning: the capture still runs.
KNOWN_SOURCE_SHA256 = {
    "chunk": "e4116a769851c6a455d1a277f0b5ad777090d73c9da491a84e4e9773e17c45d6",
    "recurrent": "60d1b140670aad5ef8a14d77ddc0461a6d252e139d18ddc8d2899fab7aae0728",
}


def fail(code, msg):
    print(f"{PROG}: {msg}", file=sys.stderr)
    return code


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="gdnv dataset file (HDF5, schema v1)")
    p.add_argument("--out", required=True, help="output file (may equal INPUT)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--impl", default="chunk,recurrent", help="comma list of: chunk, recurrent")
    p.add_argument("--case", help="only this case")
    args = p.parse_args(argv)
    args.impls = [s.strip() for s in args.impl.split(",") if s.strip()]
    bad = [s for s in args.impls if s not in IMPLS]
    if bad or not args.impls:
        p.error(f"--impl: unknown {bad} (known: {', '.join(IMPLS)})")
    return args


def validate_input(args):
    """Reads every selected case once, so a bad file fails before torch is even imported."""
    with gdnv_h5.open_dataset(args.input) as f:
        names = gdnv_h5.case_names(f)
        if args.case is not None:
            if args.case not in names:
                raise gdnv_h5.DatasetError(f"{args.input}: case '{args.case}': no such case")
            names = [args.case]
        for name in names:
            gdnv_h5.read_case(f, name, args.input)
    return names


def setup_torch():
    # cuBLAS needs this set before its first use for deterministic results.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch
    # No TF32 anywhere: the functions declare fp32 math, and reruns must give the same bits.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    deterministic = "yes"
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception as e:  # very old torch; not fatal
        deterministic = f"not enabled ({e})"
    return torch, deterministic


def torch_body(mod, name):
    """The pure-torch function itself, never what its decorator would dispatch to.

    In transformers 5.x the module-level functions are wrapped by
    use_kernel_func_from_hub_with_fallback, which calls flash-linear-attention (or a hub kernel)
    instead when that is installed. functools.wraps leaves the torch function in __wrapped__;
    accept it only if its code lives in modeling_qwen3_next.py itself.
    """
    fn = getattr(mod, name, None)
    if fn is None:
        return None, f"modeling_qwen3_next has no {name}"
    body = inspect.unwrap(fn)
    code = getattr(body, "__code__", None)
    if code is None or not os.path.samefile(code.co_filename, mod.__file__):
        return None, f"cannot reach the pure-torch body of {name} (found {body!r})"
    return body, None


def run_case(torch, mod, fn, impl, case, device):
    """Calls `fn` on one case the way Qwen3NextGatedDeltaNet does. Returns (o, final_state, notes)."""
    tdt = {"bfloat16": torch.bfloat16, "float16": torch.float16,
           "float32": torch.float32, "float64": torch.float64}

    def tensor(field):
        # The stored value is exactly representable in its stored dtype, so this is exact.
        return torch.from_numpy(case.arrays[field]).to(device=device, dtype=tdt[case.dtypes[field]])

    q, k, v, g, beta = (tensor(n) for n in ("q", "k", "v", "g", "beta"))
    init = tensor("initial_state") if "initial_state" in case.arrays else None
    out_dtype = q.dtype
    notes = []

    # GVA: the layer repeats q and k to HV heads with repeat_interleave on the head dim, so value
    # head hv reads key head hv // G, as the schema says.
    G = case.HV // case.H
    if G > 1:
        q = q.repeat_interleave(G, dim=2)
        k = k.repeat_interleave(G, dim=2)
        notes.append(f"q,k repeat_interleave({G}, dim=2)")

    # Scale: the functions hard-code 1 / sqrt(K) and take no scale argument.
    params = inspect.signature(fn).parameters
    l2 = bool(case.qk_l2norm)
    native = case.K ** -0.5  # what the source multiplies by (the recurrent one divides by sqrt(K))
    extra = {}
    if "scale" in params:  # a later version may accept it: then just pass it
        extra["scale"] = case.scale
        notes.append("scale passed as argument")
    elif abs(case.scale - native) > 1e-12 * native:
        # o_t = S_t^T (scale q_t) is linear in q and q never touches the state, so multiplying q
        # by c = scale * sqrt(K) gives the case's scale. With l2norm that must happen after the
        # normalization: run the module's own l2norm (the same call the function makes) first,
        # then pass the normalized, pre-scaled q with use_qk_l2norm_in_kernel=False.
        c = case.scale / native
        q = q.float()  # the function's own first step; then fp32 through the pre-scaling
        if l2:
            if not hasattr(mod, "l2norm"):
                return None, None, ["skipped: scale != K^-0.5 with qk_l2norm and no module l2norm"]
            # Same order as inside the 5.17 functions: cast to fp32, then the module's l2norm.
            q = mod.l2norm(q, dim=-1, eps=1e-6)
            k = mod.l2norm(k.float(), dim=-1, eps=1e-6)
            l2 = False
            notes.append("q,k cast to fp32 and normalized by the module's l2norm before the call")
        q = q * c  # one extra fp32 rounding of q
        notes.append(f"scale {case.scale!r} != 1/sqrt(K): q pre-multiplied in fp32 by {c!r}")

    notes.insert(0, f"use_qk_l2norm_in_kernel={l2}"
                 + (f", chunk_size={case.chunk_size}" if impl == "chunk" else ""))

    def call(qs, ks, vs, gs, bs, init_s):
        kwargs = dict(g=gs, beta=bs, initial_state=init_s, output_final_state=True,
                      use_qk_l2norm_in_kernel=l2, **extra)
        if impl == "chunk":
            kwargs["chunk_size"] = case.chunk_size
        o, st = fn(qs, ks, vs, **kwargs)
        return o.to(out_dtype), st.float()

    with torch.no_grad():
        if case.cu_seqlens is None:  # dense batch: one call, as the layer makes it
            o, st = call(q, k, v, g, beta, init)
        else:  # packed: the functions have no cu_seqlens, so one call per sequence
            os_, sts = [], []
            cu = case.cu_seqlens
            for n in range(case.N):
                s, e = int(cu[n]), int(cu[n + 1])
                init_n = init[n:n + 1] if init is not None else None
                sl = slice(s, e)  # may be empty: both functions accept T = 0 (o empty, state = init)
                o_n, st_n = call(q[:, sl], k[:, sl], v[:, sl], g[:, sl], beta[:, sl], init_n)
                os_.append(o_n)
                sts.append(st_n)
            o, st = torch.cat(os_, dim=1), torch.cat(sts, dim=0)
            notes.append(f"one call per sequence ({case.N})")
        if device == "cuda":
            torch.cuda.synchronize()

    want_o = (case.B, case.T, case.HV, case.V)
    want_s = (case.N, case.HV, case.K, case.V)
    if tuple(o.shape) != want_o or tuple(st.shape) != want_s:
        raise RuntimeError(f"unexpected output shapes o {list(o.shape)} (want {list(want_o)}), "
                           f"final_state {list(st.shape)} (want {list(want_s)})")
    return o, st, notes


def to_numpy(torch, t):
    """(array, dtype name) for writing. bf16 goes out as its raw bits: no rounding anywhere."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view("uint16"), "bfloat16"
    name = {torch.float16: "float16", torch.float32: "float32", torch.float64: "float64"}[t.dtype]
    return t.numpy(), name


def main(argv=None):
    args = parse_args(argv)
    try:
        names = validate_input(args)
    except gdnv_h5.DatasetError as e:
        return fail(2, str(e))
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        return fail(2, f"{args.out}: output directory does not exist")

    torch, deterministic = setup_torch()
    import transformers
    from transformers.models.qwen3_next import modeling_qwen3_next as mod

    if args.device == "cuda" and not torch.cuda.is_available():
        return fail(1, "--device cuda but torch sees no CUDA device (use --device cpu)")
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    version = f"transformers {transformers.__version__}, torch {torch.__version__}"
    fns, hashes = {}, {}
    for impl in args.impls:
        fn, why = torch_body(mod, IMPLS[impl][1])
        if fn is None:
            return fail(1, f"{version}: {why}")
        fns[impl] = fn
        try:  # identifies the exact function text that ran
            hashes[impl] = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
        except (OSError, TypeError):
            hashes[impl] = "unavailable"
        if KNOWN_SOURCE_SHA256[impl] not in (None, hashes[impl]):
            print(f"{PROG}: warning: {IMPLS[impl][1]} is not the transformers 5.17.0 text; the "
                  f"'arithmetic' attribute may not describe it (see README.md)", file=sys.stderr)
    print(f"{PROG}: {version} on {device_name}, deterministic algorithms: {deterministic}",
          file=sys.stderr)

    try:
        with gdnv_h5.CapturedWriter(args.input, args.out) as writer, \
                gdnv_h5.open_dataset(args.input) as f:
            for i, name in enumerate(names, 1):
                case = gdnv_h5.read_case(f, name, args.input)
                for impl in args.impls:
                    fn = fns[impl]
                    t0 = time.perf_counter()
                    o, st, notes = run_case(torch, mod, fn, impl, case, args.device)
                    tag = f"[{i}/{len(names)}] {name} {IMPLS[impl][0]}"
                    if o is None:
                        print(f"{PROG}: {tag}: {'; '.join(notes)}", file=sys.stderr)
                        continue
                    o_np, o_dt = to_numpy(torch, o)
                    st_np, _ = to_numpy(torch, st)
                    attrs = {
                        "implementation": f"transformers.{IMPLS[impl][1]}",
                        "version": version,
                        "device": device_name,
                        "arithmetic": ARITHMETIC[impl],
                        "call": "; ".join(notes),
                        "source_sha256": hashes[impl],
                    }
                    writer.add(name, IMPLS[impl][0], attrs,
                               [("o", o_np, o_dt), ("final_state", st_np, "float32")])
                    bad = int((~torch.isfinite(o)).sum()) + int((~torch.isfinite(st)).sum())
                    print(f"{PROG}: {tag}: B={case.B} T={case.T} H={case.H} HV={case.HV} "
                          f"K={case.K} V={case.V} N={case.N} {o_dt} {time.perf_counter() - t0:.2f}s"
                          + (f" ({bad} non-finite outputs)" if bad else ""), file=sys.stderr)
    except gdnv_h5.DatasetError as e:
        return fail(2, str(e))
    except Exception as e:  # no output was written; say why in one line
        return fail(1, f"failed, no output written: {type(e).__name__}: {gdnv_h5.one_line(e)}")
    print(f"{PROG}: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
