"""Adapters: gdnv_capture wrappers for the gated delta rule entry points we know.

Each function imports its package only when called. If the package is not installed it raises
ImportError with a message naming the package and the module path it tried.

    import gdnv_capture, gdnv_adapters
    with gdnv_capture.Recorder("qwen3next.h5", model="Qwen/Qwen3-Next-80B-A3B-Instruct") as rec:
        gdnv_adapters.capture_qwen3_next(rec, model)      # transformers model object
        model.generate(...)                                # or any forward pass

  capture_qwen3_next(rec, model=None)  transformers' Qwen3NextGatedDeltaNet: each layer's
                     chunk/recurrent function (torch_* fallbacks or FLA, whichever the layer holds)
                     is wrapped with the layer's index; module-level references are patched for
                     layers built later
  transformers_chunk(rec) / transformers_recurrent(rec)
                     the pure-torch functions of modeling_qwen3_next, wrapped (not patched)
  patch_fla(rec) / patch_sglang(rec) / patch_vllm(rec)
                     chunk_gated_delta_rule of flash-linear-attention, sglang or vLLM, patched in
                     its module and in every loaded module that imported it by name
  fla_chunk(rec) / sglang_chunk(rec) / vllm_chunk(rec)
                     the same functions, wrapped only

Every adapter takes the Recorder's wrap() keywords (arithmetic=, name=, layer=, ...) to override
its defaults.
"""

import importlib
import inspect

import gdnv_capture

# Where the functions live (looked up in the projects' sources).
TRANSFORMERS_QWEN3_NEXT = "transformers.models.qwen3_next.modeling_qwen3_next"
FLA_MODULE = "fla.ops.gated_delta_rule"
SGLANG_MODULE = "sglang.srt.layers.attention.fla.chunk"
VLLM_MODULE = "vllm.model_executor.layers.fla.ops"

# The precision each entry point declares (what its source says it does).
ARITHMETIC_FLA = ("FLA-style Triton chunk kernels: q,k,v in their dtype (bf16), optional in-kernel "
                  "l2norm, chunk-local cumsum of g in fp32, tl.dot with fp32 accumulation; A_inv, w, u, "
                  "h, v_new, the state operand and the score matrix stored or consumed in the input "
                  "dtype between stages; o in the input dtype, final state fp32")
ARITHMETIC_TORCH_CHUNK = ("transformers torch_chunk_gated_delta_rule: q,k,v,g,beta cast to fp32; "
                          "l2norm in fp32 (5.x; older releases normalize in the input dtype); q * K^-0.5; "
                          "chunk-local cumsum, solve_triangular on I+A, chunked state update with fp32 "
                          "matmuls (TF32 as configured); o cast to q's dtype; state fp32")
ARITHMETIC_TORCH_RECURRENT = ("transformers torch_recurrent_gated_delta_rule: q,k,v,g,beta cast to fp32; "
                              "l2norm in fp32; q / sqrt(K); per-token fp32 recurrence with elementwise "
                              "products and sums; o cast to q's dtype; state fp32")


def _import(module, package, why=""):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"gdnv_adapters: {package} is not importable (import {module} failed: {e}){why}") from e


def _attr(mod, module, name, package):
    fn = getattr(mod, name, None)
    if fn is None:
        raise ImportError(f"gdnv_adapters: {module} has no {name} (this {package} version is not supported)")
    return fn


def _defaults(kwargs, **defaults):
    out = dict(defaults)
    out.update(kwargs)
    return out


# ---- transformers (Qwen3-Next) -----------------------------------------------------------------

def transformers_chunk(rec, **kw):
    mod = _import(TRANSFORMERS_QWEN3_NEXT, "transformers (with Qwen3-Next)")
    fn = _attr(mod, TRANSFORMERS_QWEN3_NEXT, "torch_chunk_gated_delta_rule", "transformers")
    return rec.wrap(fn, **_defaults(kw, name="transformers-torch-chunk", arithmetic=ARITHMETIC_TORCH_CHUNK,
                                    convention="transformers"))


def transformers_recurrent(rec, **kw):
    mod = _import(TRANSFORMERS_QWEN3_NEXT, "transformers (with Qwen3-Next)")
    fn = _attr(mod, TRANSFORMERS_QWEN3_NEXT, "torch_recurrent_gated_delta_rule", "transformers")
    return rec.wrap(fn, **_defaults(kw, name="transformers-torch-recurrent",
                                    arithmetic=ARITHMETIC_TORCH_RECURRENT, convention="transformers"))


def _describe(fn, kind):
    """(group name, arithmetic, convention) for whatever function a Qwen3-Next layer holds."""
    module = getattr(inspect.unwrap(fn), "__module__", "") or ""
    if module.startswith("transformers"):
        if kind == "chunk":
            return "transformers-torch-chunk", ARITHMETIC_TORCH_CHUNK, "transformers"
        return "transformers-torch-recurrent", ARITHMETIC_TORCH_RECURRENT, "transformers"
    top = module.split(".")[0] or "unknown"
    return f"{top}-{kind}", ARITHMETIC_FLA if top == "fla" else f"{module} (arithmetic not declared)", "auto"


def capture_qwen3_next(rec, model=None, **kw):
    """Records every Qwen3NextGatedDeltaNet call until rec.close().

    * Qwen3NextGatedDeltaNet.forward is wrapped so that calls inside it carry the layer's
      layer_idx (gdnv_capture.layer_scope).
    * For a given `model` (any torch module), every Qwen3NextGatedDeltaNet in it gets its
      chunk_gated_delta_rule / recurrent_gated_delta_rule attributes wrapped.
    * The module-level functions of modeling_qwen3_next are patched, so layers built after
      this call are recorded too.
    The layer repeats q and k to HV heads before the call; kv_group (from the config) lets the
    recorder store the H distinct heads. The layer asks for the final state only when it has a
    cache; request_final_state=True records it anyway (the layer still gets None).
    Returns the list of wrapped layer objects.
    """
    mod = _import(TRANSFORMERS_QWEN3_NEXT, "transformers (with Qwen3-Next)")
    cls = _attr(mod, TRANSFORMERS_QWEN3_NEXT, "Qwen3NextGatedDeltaNet", "transformers")

    original_forward = cls.forward

    def forward(self, *args, **kwargs):
        with gdnv_capture.layer_scope(getattr(self, "layer_idx", None)):
            return original_forward(self, *args, **kwargs)

    forward.__wrapped__ = original_forward
    rec._patches.append((cls, "forward", cls.__dict__.get("forward", gdnv_capture._MISSING)))
    cls.forward = forward

    def group_of(obj):
        hv = getattr(obj, "num_v_heads", None)
        hk = getattr(obj, "num_k_heads", None)
        return hv // hk if hv and hk and hv % hk == 0 else None

    for name, kind in (("torch_chunk_gated_delta_rule", "chunk"), ("torch_recurrent_gated_delta_rule", "recurrent"),
                       ("chunk_gated_delta_rule", "chunk"), ("fused_recurrent_gated_delta_rule", "recurrent")):
        fn = getattr(mod, name, None)
        if fn is None:
            continue
        gname, arith, conv = _describe(fn, kind)
        kv = None
        cfg = getattr(model, "config", None)
        tc = getattr(cfg, "text_config", cfg)
        nv, nk = getattr(tc, "linear_num_value_heads", None), getattr(tc, "linear_num_key_heads", None)
        if nv and nk and nv % nk == 0:
            kv = nv // nk
        elif model is not None:  # no config on the module (a bare layer or a list of layers): ask the layers
            kv = next((group_of(m) for m in model.modules() if isinstance(m, cls) and group_of(m)), None)
        rec.patch(mod, name, **_defaults(kw, name=gname, arithmetic=arith, convention=conv, kv_group=kv,
                                          request_final_state=True))

    layers = []
    if model is not None:
        for m in model.modules():
            if not isinstance(m, cls):
                continue
            for attr, kind in (("chunk_gated_delta_rule", "chunk"), ("recurrent_gated_delta_rule", "recurrent")):
                fn = getattr(m, attr, None)
                if fn is None:
                    continue
                if getattr(fn, "__gdnv_capture_spec__", None) is not None:
                    fn = fn.__wrapped__  # already wrapped through the module-level patch
                gname, arith, conv = _describe(fn, kind)
                wrapped = rec.wrap(fn, **_defaults(kw, name=gname, arithmetic=arith, convention=conv,
                                                   kv_group=group_of(m), layer=getattr(m, "layer_idx", None),
                                                   request_final_state=True))
                rec._patches.append((m, attr, m.__dict__.get(attr, gdnv_capture._MISSING)))
                setattr(m, attr, wrapped)
            layers.append(m)
    return layers


# ---- FLA, sglang, vLLM ----------------------------------------------------------------------------

def _chunk(rec, module, package, name, patch, kw):
    mod = _import(module, package)
    _attr(mod, module, "chunk_gated_delta_rule", package)
    opts = _defaults(kw, name=name, arithmetic=ARITHMETIC_FLA, convention="fla")
    if patch:
        return rec.patch(mod, "chunk_gated_delta_rule", **opts)
    return rec.wrap(mod.chunk_gated_delta_rule, **opts)


def fla_chunk(rec, **kw):
    return _chunk(rec, FLA_MODULE, "flash-linear-attention (fla)", "fla-chunk", False, kw)


def patch_fla(rec, **kw):
    return _chunk(rec, FLA_MODULE, "flash-linear-attention (fla)", "fla-chunk", True, kw)


def sglang_chunk(rec, **kw):
    return _chunk(rec, SGLANG_MODULE, "sglang", "sglang-chunk", False, kw)


def patch_sglang(rec, **kw):
    return _chunk(rec, SGLANG_MODULE, "sglang", "sglang-chunk", True, kw)


def vllm_chunk(rec, **kw):
    return _chunk(rec, VLLM_MODULE, "vllm", "vllm-chunk", False, kw)


def patch_vllm(rec, **kw):
    return _chunk(rec, VLLM_MODULE, "vllm", "vllm-chunk", True, kw)


ADAPTERS = {
    "transformers-chunk": transformers_chunk,
    "transformers-recurrent": transformers_recurrent,
    "fla": fla_chunk,
    "sglang": sglang_chunk,
    "vllm": vllm_chunk,
}
