"""Record calls of a chunked gated-delta-rule function as gdnv cases (schema v1).

Wrap the function a model or a serving stack calls, run the model, and every sampled call
becomes one case: its exact inputs and what the function returned (o, and the final state when
it returned one), ready for `gdnv check` and `gdnv replay`.

    import gdnv_capture
    with gdnv_capture.Recorder("capture.h5", model="Qwen3-Next-80B-A3B", max_bytes=2**30) as rec:
        fn = rec.wrap(chunk_gated_delta_rule, name="fla-chunk", layer=3,
                      arithmetic="bf16 in, fp32 accumulate, o bf16, state fp32")
        o, state = fn(q, k, v, g, beta, initial_state=h0, output_final_state=True)
    # capture.h5 appears here, whole (temporary file renamed at close)

numpy + h5py only: torch is never imported by this module. Torch tensors are recognised by
their type and converted through torch only when one is passed in, so the module and its tests
run on machines without torch. numpy arrays work everywhere (float16/32/64, and bfloat16 either
as ml_dtypes' type or as the bit patterns made by `bf16()`).

The callable's conventions:
  * "fla" (FLA, sglang, vLLM): chunk_gated_delta_rule(q, k, v, g, beta, scale=None,
    initial_state=None, output_final_state=False, cu_seqlens=None, [head_first=False,]
    use_qk_l2norm_in_kernel=False); scale None means K^-0.5; cu_seqlens packs sequences.
  * "transformers" (Qwen3-Next's torch_{chunk,recurrent}_gated_delta_rule): (query, key, value,
    g, beta, [chunk_size,] initial_state, output_final_state, use_qk_l2norm_in_kernel, **kwargs);
    the scale is K^-0.5 whatever is passed and cu_seqlens is swallowed by **kwargs (ignored).
  * "auto" (default): "fla" when the signature names a `scale` parameter, "transformers" when
    it names `query` or `chunk_size`, else "fla".
Arguments are bound through the callable's own signature, so positional calls of either
convention are read correctly. Layout: time-major [B,T,H,K] (both conventions' default), or
head-first [B,H,T,K] when the call passes head_first=True or wrap(layout="head_first") says so
(shapes alone cannot tell the two apart when H == HV, so there is no guessing).
Value head hv reads q/k head hv // (HV/H) (repeat_interleave grouping, the schema's).
"""

import contextlib
import contextvars
import functools
import inspect
import os
import sys
import tempfile
import threading
import warnings

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdnv_h5  # noqa: E402

__all__ = ["Recorder", "CaptureWarning", "bf16", "widen", "layer_scope"]

# Bytes of HDF5 metadata budgeted per case when checking the size cap (groups, attributes and
# up to 8 dataset headers; measured at about 9 KiB).
CASE_OVERHEAD_BYTES = 16 * 1024

_BF16_META = {"gdnv_dtype": "bfloat16"}
_current_layer = contextvars.ContextVar("gdnv_capture_layer", default=None)


class CaptureWarning(UserWarning):
    """A call that was not recorded, a size cap reached, an argument the callable ignores."""


def _warn(msg):
    warnings.warn(f"gdnv_capture: {msg}", CaptureWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# Arrays: numpy and (lazily) torch, converted to what gdnv_h5.write_array stores without rounding.

def bf16(x):
    """float32 values -> bfloat16 (round to nearest even), as uint16 bits tagged as bfloat16.

    The recorder stores such an array as the schema's bfloat16 type. Arithmetic on it is
    meaningless; widen() gives float32 back.
    """
    bits = gdnv_h5.f32_to_bf16_bits(np.asarray(x, dtype=np.float32))
    return bits.view(np.dtype(np.uint16, metadata=_BF16_META))


def _is_bf16_bits(a):
    md = a.dtype.metadata
    return a.dtype == np.uint16 and md is not None and md.get("gdnv_dtype") == "bfloat16"


def widen(a):
    """Any supported numpy array -> float32 (float64 stays float64), exactly."""
    a = np.asarray(a)
    if _is_bf16_bits(a):
        return gdnv_h5.bf16_bits_to_f32(a.view(np.uint16))
    if a.dtype.name == "bfloat16":  # ml_dtypes
        return gdnv_h5.bf16_bits_to_f32(a.view(np.uint16))
    if a.dtype == np.float64:
        return a
    return a.astype(np.float32)


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


class _Array:
    """A snapshot: numpy data in storage form, the schema dtype name, and the device it came from."""

    def __init__(self, data, dtype, device):
        self.data, self.dtype, self.device = data, dtype, device

    @property
    def shape(self):
        return tuple(self.data.shape)

    def values(self):
        """float32/float64 values (for checks), never used for storage."""
        if self.dtype == "bfloat16":
            return gdnv_h5.bf16_bits_to_f32(self.data)
        return self.data

    def map(self, fn):
        return _Array(np.ascontiguousarray(fn(self.data)), self.dtype, self.device)


def _snapshot(x, field):
    """Copies x (torch tensor or numpy array) into an _Array. Raises TypeError for other types."""
    if _is_torch(x):
        import torch  # already imported by whoever made the tensor
        t = x.detach()
        device = str(t.device)
        if t.device.type == "cuda":
            device = f"{device} {torch.cuda.get_device_name(t.device)}"
        t = t.contiguous().cpu()
        names = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32",
                 torch.float64: "float64", torch.int32: "int32", torch.int64: "int64"}
        if t.dtype not in names:
            raise TypeError(f"{field}: unsupported torch dtype {t.dtype}")
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().view(np.uint16).copy()
        else:
            data = t.numpy().copy()
        return _Array(data, names[t.dtype], device)
    a = np.asarray(x)
    if _is_bf16_bits(a) or a.dtype.name == "bfloat16":
        return _Array(np.array(a.view(np.uint16), dtype=np.uint16), "bfloat16", "cpu (numpy)")
    names = {np.dtype(np.float16): "float16", np.dtype(np.float32): "float32",
             np.dtype(np.float64): "float64", np.dtype(np.int32): "int32", np.dtype(np.int64): "int64"}
    if a.dtype not in names:
        raise TypeError(f"{field}: unsupported array dtype {a.dtype}")
    return _Array(np.array(a, copy=True), names[a.dtype], "cpu (numpy)")


# ---------------------------------------------------------------------------------------------
# Binding a call

_ALIASES = {"query": "q", "key": "k", "value": "v"}
_FLA_ORDER = ("q", "k", "v", "g", "beta", "scale", "initial_state", "output_final_state", "cu_seqlens")


def _signature(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _convention(sig, requested):
    if requested in ("fla", "transformers"):
        return requested
    if requested != "auto":
        raise ValueError(f"convention must be 'auto', 'fla' or 'transformers', not {requested!r}")
    params = sig.parameters if sig is not None else {}
    if "scale" in params:
        return "fla"
    if "query" in params or "chunk_size" in params:
        return "transformers"
    return "fla"


def _bind(sig, args, kwargs):
    """name -> value for the call, names normalised to q/k/v/..., **kwargs flattened in."""
    out = {}
    if sig is not None:
        try:
            ba = sig.bind(*args, **kwargs)
            ba.apply_defaults()
            for name, val in ba.arguments.items():
                p = sig.parameters[name]
                if p.kind == p.VAR_KEYWORD:
                    out.update({_ALIASES.get(k, k): v for k, v in val.items()})
                elif p.kind != p.VAR_POSITIONAL:
                    out[_ALIASES.get(name, name)] = val
            return out
        except TypeError:
            pass
    out.update(zip(_FLA_ORDER, args))
    out.update({_ALIASES.get(k, k): v for k, v in kwargs.items()})
    return out


def _package_version(fn):
    mod = getattr(inspect.unwrap(fn), "__module__", None) or ""
    top = mod.split(".")[0]
    parts = []
    m = sys.modules.get(top)
    ver = getattr(m, "__version__", None) if m is not None else None
    if ver is None and top:
        try:
            from importlib import metadata
            ver = metadata.version({"fla": "flash-linear-attention"}.get(top, top))
        except Exception:
            ver = None
    if top and top not in ("__main__", "torch"):
        parts.append(f"{top} {ver or 'unknown version'}")
    t = sys.modules.get("torch")
    if t is not None:
        parts.append(f"torch {getattr(t, '__version__', '?')}")
    parts.append(f"numpy {np.__version__}")
    return ", ".join(parts)


def _matches(selector, value):
    if selector is None:
        return True
    if value is None:
        return False
    if callable(selector):
        return bool(selector(value))
    return value in selector


@contextlib.contextmanager
def layer_scope(index):
    """Calls made inside this block count as layer `index` (for wrappers without a fixed layer)."""
    token = _current_layer.set(index)
    try:
        yield
    finally:
        _current_layer.reset(token)


class _Spec:
    def __init__(self, fn, name, arithmetic, layer, convention, layout, kv_group, implementation,
                 version, request_final_state):
        self.fn = fn
        self.sig = _signature(fn)
        self.convention = _convention(self.sig, convention)
        if layout not in ("auto", "time_major", "head_first"):
            raise ValueError(f"layout must be 'auto', 'time_major' or 'head_first', not {layout!r}")
        self.layout = layout
        base = inspect.unwrap(fn)
        qual = f"{getattr(base, '__module__', '?')}.{getattr(base, '__qualname__', repr(base))}"
        self.implementation = implementation or qual
        self.name = (name or getattr(base, "__name__", "callable")).replace("/", "_")
        if not isinstance(arithmetic, str) or not arithmetic:
            raise ValueError("arithmetic: a non-empty string declaring the callable's precision is required")
        self.arithmetic = arithmetic
        self.layer = layer
        self.kv_group = kv_group
        self.version = version
        self.request_final_state = request_final_state
        self.said = set()  # warnings given once per wrapper

    def warn_once(self, key, msg):
        if key not in self.said:
            self.said.add(key)
            _warn(msg)


# ---------------------------------------------------------------------------------------------
# The recorder

class Recorder:
    """Records sampled calls of wrapped callables into one gdnv dataset file.

    path          output file; written to a temporary file next to it and renamed at close()
    model         model name (case attr `model`, part of `source`)
    layers        None (all) or a container of layer indices, or a predicate on the index
    calls         None (all) or a container of call indices (per wrapper and layer, from 0), or a predicate
    max_tokens    keep at most this many tokens of T per call (the first ones: o is causal, so it
                  stays exact; the final state then belongs to later tokens and is not stored)
    max_bytes     size cap of the file: the first call that would pass it stops the recording
                  (one CaptureWarning); later calls run unrecorded
    max_cases     stop after this many cases
    description   root attribute
    """

    def __init__(self, path, *, model="", layers=None, calls=None, max_tokens=None, max_bytes=None,
                 max_cases=None, description=None):
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        self.path = os.fspath(path)
        if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
            raise FileNotFoundError(f"{self.path}: output directory does not exist")
        self.model = model
        self.layers, self.calls = layers, calls
        self.max_tokens, self.max_bytes, self.max_cases = max_tokens, max_bytes, max_cases
        self.description = description or f"calls captured by gdnv_capture from {model or 'a model'}"
        self.cases = []           # recorded case names, in order
        self.skipped = []         # (case name, reason) of sampled calls that were not recorded
        self.full = False         # the size cap (or max_cases) was reached
        self.closed = False
        self.written = None       # the path, once close() wrote the file
        self._counters = {}
        self._global_calls = 0
        self._lock = threading.RLock()
        self._tmp = None
        self._f = None
        self._patches = []        # (owner, attribute, original value)
        self._devices = set()

    # -- wrapping ------------------------------------------------------------------------------

    def wrap(self, fn, *, arithmetic, name=None, layer=None, convention="auto", layout="auto",
             kv_group=None, implementation=None, version=None, request_final_state=False):
        """Returns fn wrapped: calls go through unchanged, sampled ones are recorded.

        arithmetic   required: the precision the callable declares (group attr `arithmetic`)
        name         captured group name (default: the function's name)
        layer        fixed layer index; else the enclosing layer_scope(), else unknown
        convention   'auto' | 'fla' | 'transformers' (see the module doc)
        layout       'auto' (head_first argument, else time-major) | 'time_major' | 'head_first'
        kv_group     G = HV / H when the caller repeated q and k to HV heads (transformers'
                     layer does): stored with H = HV / G when q and k are exact repeats
        request_final_state  ask the callable for the final state on recorded calls even when
                     the caller did not (it is dropped from what the caller gets back)
        """
        spec = _Spec(fn, name, arithmetic, layer, convention, layout, kv_group, implementation, version,
                     request_final_state)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return self._call(spec, args, kwargs)

        wrapper.__gdnv_capture_spec__ = spec
        return wrapper

    def capture(self, **wrap_kwargs):
        """Decorator form of wrap(): @rec.capture(arithmetic="...", name="...")."""
        return lambda fn: self.wrap(fn, **wrap_kwargs)

    def patch(self, owner, attribute, **wrap_kwargs):
        """Replaces owner.attribute (a module, class or object) by its wrapped version until
        close(). When owner is a module, every loaded module holding the same function object
        under the same name is patched too (model files import it by name). Returns the wrapper."""
        with self._lock:
            if isinstance(owner, str):
                import importlib
                owner = importlib.import_module(owner)
            original = getattr(owner, attribute)
            wrapped = self.wrap(original, **wrap_kwargs)
            owners = [owner]
            if inspect.ismodule(owner):
                for mod in list(sys.modules.values()):
                    if mod is not owner and inspect.ismodule(mod) and getattr(mod, attribute, None) is original:
                        owners.append(mod)
            for o in owners:
                self._patches.append((o, attribute, o.__dict__.get(attribute, _MISSING)
                                      if hasattr(o, "__dict__") else getattr(o, attribute)))
                setattr(o, attribute, wrapped)
            return wrapped

    def unpatch(self):
        """Restores everything patch() replaced (close() does this too)."""
        with self._lock:
            while self._patches:
                o, attribute, original = self._patches.pop()
                if original is _MISSING:
                    try:
                        delattr(o, attribute)
                    except AttributeError:
                        pass
                else:
                    setattr(o, attribute, original)

    # -- the call ------------------------------------------------------------------------------

    def _call(self, spec, args, kwargs):
        layer = spec.layer if spec.layer is not None else _current_layer.get()
        with self._lock:
            key = (spec.name, layer)
            call_index = self._counters.get(key, 0)
            self._counters[key] = call_index + 1
            global_index = self._global_calls
            self._global_calls += 1
            sampled = (not self.closed and not self.full and _matches(self.layers, layer)
                       and _matches(self.calls, call_index))
        if not sampled:
            return spec.fn(*args, **kwargs)

        case_name = f"L{layer if layer is not None else 'x'}-c{call_index:04d}-{spec.name}"
        try:
            bound = _bind(spec.sig, args, kwargs)
            inputs = self._snapshot_inputs(spec, bound)
        except Exception as e:  # never break the model because of the capture
            self._skip(case_name, f"inputs not recordable: {gdnv_h5.one_line(e)}")
            return spec.fn(*args, **kwargs)

        asked = bool(bound.get("output_final_state", False))
        if spec.request_final_state and not asked and spec.sig is not None \
                and "output_final_state" in spec.sig.parameters:
            try:
                positional = "output_final_state" in spec.sig.bind_partial(*args, **kwargs).arguments \
                    and "output_final_state" not in kwargs
            except TypeError:  # a call the function itself will refuse
                positional = True
            if positional:
                spec.warn_once("positional-ofs", f"{spec.name}: request_final_state: output_final_state "
                               "passed positionally, left as the caller gave it")
            else:
                kwargs = dict(kwargs, output_final_state=True)
        result = spec.fn(*args, **kwargs)
        got_state = kwargs.get("output_final_state", asked)
        try:
            o, state = _split_result(result)
            outputs = {"o": _snapshot(o, "o")}
            if got_state and state is not None:
                outputs["final_state"] = _snapshot(state, "final_state")
        except Exception as e:
            self._skip(case_name, f"outputs not recordable: {gdnv_h5.one_line(e)}")
            return result
        if got_state and not asked and isinstance(result, tuple) and len(result) >= 2:
            result = (result[0], None) + tuple(result[2:])
        try:
            self._record(spec, case_name, layer, call_index, global_index, inputs, outputs)
        except Exception as e:
            self._skip(case_name, gdnv_h5.one_line(e))
        return result

    def _skip(self, case_name, reason):
        with self._lock:
            self.skipped.append((case_name, reason))
        _warn(f"{case_name} not recorded: {reason}")

    def _snapshot_inputs(self, spec, bound):
        missing = [n for n in ("q", "k", "v", "g", "beta") if bound.get(n) is None]
        if missing:
            raise ValueError(f"missing argument(s) {', '.join(missing)}")
        arrs = {n: _snapshot(bound[n], n) for n in ("q", "k", "v", "g", "beta")}
        notes = [f"convention {spec.convention}"]
        init = bound.get("initial_state")
        if init is not None:
            arrs["initial_state"] = _snapshot(init, "initial_state")
        cu = bound.get("cu_seqlens")
        if cu is not None:
            if spec.convention == "transformers":
                spec.warn_once("cu", f"{spec.name}: cu_seqlens passed to a transformers-convention "
                               "callable, which ignores it; recorded as one dense sequence per batch row")
                notes.append("cu_seqlens ignored by the callable")
            else:
                arrs["cu_seqlens"] = _snapshot(cu, "cu_seqlens")
        K = arrs["q"].shape[-1] if len(arrs["q"].shape) == 4 else 0
        scale = bound.get("scale")
        if spec.convention == "transformers":
            if scale is not None and K and abs(float(scale) - K ** -0.5) > 1e-12 * K ** -0.5:
                spec.warn_once("scale", f"{spec.name}: scale={scale} passed to a transformers-convention "
                               "callable, which uses K^-0.5; recorded as K^-0.5")
            scale = None
        if scale is not None and _is_torch(scale):
            scale = float(scale)
        head_first = bool(bound.get("head_first", False)) if spec.layout == "auto" else spec.layout == "head_first"
        return {"arrays": arrs, "scale": None if scale is None else float(scale), "head_first": head_first,
                "qk_l2norm": bool(bound.get("use_qk_l2norm_in_kernel", False)), "notes": notes}

    # -- building and writing a case -----------------------------------------------------------

    def _record(self, spec, case_name, layer, call_index, global_index, inputs, outputs):
        a = dict(inputs["arrays"])
        notes = list(inputs["notes"])
        for n in ("q", "k", "v"):
            if len(a[n].shape) != 4:
                raise ValueError(f"{n} has rank {len(a[n].shape)}, expected 4")
        for n in ("g", "beta"):
            if len(a[n].shape) != 3:
                raise ValueError(f"{n} has rank {len(a[n].shape)}, expected 3")
        if len(outputs["o"].shape) != 4:
            raise ValueError(f"o has rank {len(outputs['o'].shape)}, expected 4")
        if inputs["head_first"]:
            if "cu_seqlens" in a:
                raise ValueError("head_first with cu_seqlens")
            for n in ("q", "k", "v"):
                a[n] = a[n].map(lambda x: x.transpose(0, 2, 1, 3))
            for n in ("g", "beta"):
                a[n] = a[n].map(lambda x: x.transpose(0, 2, 1))
            outputs = dict(outputs, o=outputs["o"].map(lambda x: x.transpose(0, 2, 1, 3)))
            notes.append("head-first inputs and o transposed to [B,T,H,D]")
        for n, arr in a.items():
            if n != "cu_seqlens" and arr.dtype.startswith("int"):
                raise ValueError(f"{n}: integer dtype {arr.dtype}")
        B, T, H, K = a["q"].shape
        HV, V = a["v"].shape[2], a["v"].shape[3]
        if a["k"].shape != (B, T, H, K):
            raise ValueError(f"k shape {list(a['k'].shape)} differs from q {list(a['q'].shape)}")
        if a["v"].shape[:2] != (B, T):
            raise ValueError(f"v shape {list(a['v'].shape)} does not match q {list(a['q'].shape)}")
        for n in ("g", "beta"):
            if a[n].shape != (B, T, HV):
                raise ValueError(f"{n} shape {list(a[n].shape)}, expected {[B, T, HV]}")
        if T == 0:
            raise ValueError("T = 0 (nothing to record)")
        if HV % H:
            raise ValueError(f"H={H} does not divide HV={HV}")
        if outputs["o"].shape != (B, T, HV, V):
            raise ValueError(f"o shape {list(outputs['o'].shape)}, expected {[B, T, HV, V]}")

        # q, k repeated to HV heads by the caller: store the H = HV / G distinct heads.
        G = spec.kv_group
        if G and G > 1 and H == HV and HV % G == 0:
            qv, kv = a["q"].data, a["k"].data
            if all(np.array_equal(x, np.repeat(x[:, :, ::G], G, axis=2)) for x in (qv, kv)):
                a["q"] = a["q"].map(lambda x: x[:, :, ::G])
                a["k"] = a["k"].map(lambda x: x[:, :, ::G])
                H = HV // G
                notes.append(f"q,k were repeat_interleave({G}) copies: stored with H = {H}")
            else:
                spec.warn_once("kvg", f"{spec.name}: q/k are not exact repeats with kv_group={G}; stored with H = HV")

        cu = None
        if "cu_seqlens" in a:
            cu = a.pop("cu_seqlens").data.astype(np.int64).reshape(-1)
            if B != 1 or cu.size < 2 or cu[0] != 0 or np.any(np.diff(cu) < 0) or cu[-1] != T:
                raise ValueError(f"cu_seqlens {cu.tolist()[:8]}... invalid for B={B}, T={T}")
        N = B if cu is None else cu.size - 1
        if "initial_state" in a and a["initial_state"].shape != (N, HV, K, V):
            raise ValueError(f"initial_state shape {list(a['initial_state'].shape)}, expected {[N, HV, K, V]}")
        if "final_state" in outputs and outputs["final_state"].shape != (N, HV, K, V):
            raise ValueError(f"final_state shape {list(outputs['final_state'].shape)}, expected {[N, HV, K, V]}")

        # max_tokens: the first tokens only; o stays exact (causal), the final state does not.
        T0 = T
        if self.max_tokens is not None and T > self.max_tokens:
            T = self.max_tokens
            cut = lambda x: x[:, :T]  # noqa: E731
            for n in ("q", "k", "v", "g", "beta"):
                a[n] = a[n].map(cut)
            outputs = {"o": outputs["o"].map(cut)}
            if cu is not None:
                m = int(np.searchsorted(cu, T, side="left"))  # first boundary >= T
                cu = np.concatenate([cu[:m], [T]]).astype(np.int64)
                if "initial_state" in a:
                    a["initial_state"] = a["initial_state"].map(lambda x: x[:cu.size - 1])
            notes.append(f"truncated to the first {T} of {T0} tokens (max_tokens); final_state not stored")

        for n, arr in a.items():
            if not np.all(np.isfinite(arr.values())):
                raise ValueError(f"input {n} contains NaN or Inf")

        scale = inputs["scale"] if inputs["scale"] is not None else K ** -0.5
        arrays = [(n, a[n].data, a[n].dtype) for n in ("q", "k", "v", "g", "beta", "initial_state") if n in a]
        if cu is not None:
            arrays.append(("cu_seqlens", cu, "int64"))
        out_arrays = [(n, outputs[n].data, outputs[n].dtype) for n in ("o", "final_state") if n in outputs]
        nbytes = sum(x.nbytes for _, x, _ in arrays + out_arrays) + CASE_OVERHEAD_BYTES

        device = a["q"].device
        source = (f"{self.model or 'model'} layer {layer if layer is not None else '?'} call {call_index}: "
                  f"{spec.implementation}")
        case_attrs = {"scale": float(scale), "chunk_size": 64, "qk_l2norm": int(inputs["qk_l2norm"]),
                      "family": "captured", "source": source, "model": self.model,
                      "layer_index": int(layer) if layer is not None else -1,
                      "call_index": int(call_index), "global_call_index": int(global_index)}
        group_attrs = {"implementation": spec.implementation,
                       "version": spec.version or _package_version(spec.fn),
                       "device": device, "arithmetic": spec.arithmetic, "call": "; ".join(notes)}

        with self._lock:
            if self.full or self.closed:
                return
            if self.max_cases is not None and len(self.cases) >= self.max_cases:
                self.full = True
                _warn(f"max_cases={self.max_cases} reached: recording stopped")
                return
            f = self._file()
            f.flush()
            size = os.path.getsize(self._tmp)
            if self.max_bytes is not None and size + nbytes > self.max_bytes:
                self.full = True
                _warn(f"size cap {self.max_bytes} bytes reached after {len(self.cases)} case(s) "
                      f"({size} bytes; {case_name} needs about {nbytes}): recording stopped")
                return
            name = case_name
            n = 1
            while name in f["cases"]:
                name = f"{case_name}.{n}"
                n += 1
            try:
                grp = gdnv_h5.write_case_inputs(f, name, case_attrs, {n_: x for n_, x, _ in arrays},
                                                {n_: d for n_, _, d in arrays})
                cap = gdnv_h5.create_group(grp, "captured")
                g = gdnv_h5.create_group(cap, spec.name)
                for k_, v_ in group_attrs.items():
                    g.attrs[k_] = v_
                for n_, x, d in out_arrays:
                    gdnv_h5.write_array(g, n_, x, d)
            except BaseException:
                if name in f["cases"]:
                    del f["cases"][name]
                raise
            self.cases.append(name)
            self._devices.add(device)

    def _file(self):
        if self._f is None:
            out_dir = os.path.dirname(os.path.abspath(self.path))
            fd, self._tmp = tempfile.mkstemp(dir=out_dir, prefix=os.path.basename(self.path) + ".tmp-")
            os.close(fd)
            self._f = h5py.File(self._tmp, "w")
            self._f.attrs["format"] = gdnv_h5.FORMAT
            self._f.attrs["version"] = np.int64(gdnv_h5.VERSION)
            self._f.attrs["description"] = self.description
            gdnv_h5.create_group(self._f, "cases")
        return self._f

    # -- closing -------------------------------------------------------------------------------

    def close(self):
        """Restores patches, then renames the temporary file onto `path` (when anything was
        recorded; otherwise no file is written and a CaptureWarning says so). Returns the path
        written, or None. Idempotent."""
        with self._lock:
            if self.closed:
                return self.written
            self.closed = True
            self.unpatch()
            if self._f is None:
                _warn(f"no call was recorded; {self.path} not written")
                return None
            try:
                tools = [f"python {sys.version.split()[0]}", f"numpy {np.__version__}", f"h5py {h5py.__version__}"]
                if "torch" in sys.modules:
                    tools.append(f"torch {getattr(sys.modules['torch'], '__version__', '?')}")
                self._f.attrs["created_by"] = "gdnv_capture.py (" + ", ".join(tools) + ")"
                if not self.cases:
                    self._f.close()
                    self._f = None
                    os.unlink(self._tmp)
                    self._tmp = None
                    _warn(f"no call was recorded; {self.path} not written")
                    return None
                self._f.close()
                self._f = None
                with open(self._tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(self._tmp, self.path)
                self._tmp = None
                self.written = self.path
                return self.path
            finally:
                self._discard()

    def abort(self):
        """Restores patches and drops everything recorded; no file is written."""
        with self._lock:
            self.closed = True
            self.unpatch()
            self._discard()

    def _discard(self):
        if self._f is not None:
            try:
                self._f.close()
            except Exception:
                pass
            self._f = None
        if self._tmp is not None and os.path.exists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # Cases already recorded are complete, so they are written even when the block raised
        # (the call that raised was not recorded): a crashing model is when they are wanted most.
        self.close()
        return False


_MISSING = object()


def _split_result(result):
    """(o, final_state or None) from what a gated delta rule function returns."""
    if isinstance(result, (tuple, list)):
        if not result:
            raise ValueError("the callable returned an empty tuple")
        return result[0], (result[1] if len(result) > 1 else None)
    return result, None
