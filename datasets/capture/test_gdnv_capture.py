#!/usr/bin/env python3
"""Tests for gdnv_capture (numpy + h5py only; no torch needed) and its round trip through gdnv.

    /usr/bin/python3 datasets/capture/test_gdnv_capture.py [PATH/TO/gdnv]

The gdnv binary comes from the argument or $GDNV_EXE; without it the round-trip tests fail
(they are the point). A numpy gated delta rule (per-token recurrence in float64, o rounded once
to the input dtype) is wrapped by the recorder; what it writes must pass `gdnv check`, and a
deliberately wrong variant must fail it, naming its captured group.
Prints one line per failure and 'N passed, M failed'; exit status 1 on any failure.
"""

import inspect
import os
import subprocess
import sys
import tempfile
import traceback
import warnings

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gdnv_capture  # noqa: E402
import gdnv_h5  # noqa: E402

GDNV = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GDNV_EXE", "")
TESTS = []
ARITH = "float64 per-token recurrence, o rounded once to the input dtype, state float32"


def test(fn):
    TESTS.append(fn)
    return fn


# ---- a numpy gated delta rule with FLA's signature ----------------------------------------------

def recurrence(q, k, v, g, beta, scale, h0, cu, l2):
    """float64 per-token recurrence on time-major arrays; returns o [B,T,HV,V], state [N,HV,K,V]."""
    q, k, v, g, beta = (gdnv_capture.widen(x).astype(np.float64) for x in (q, k, v, g, beta))
    B, T, H, K = q.shape
    HV, V = v.shape[2], v.shape[3]
    G = HV // H
    if l2:
        q = q / np.sqrt((q * q).sum(-1, keepdims=True) + 1e-6)
        k = k / np.sqrt((k * k).sum(-1, keepdims=True) + 1e-6)
    q = np.repeat(q, G, axis=2) * scale
    k = np.repeat(k, G, axis=2)
    seqs = [(b, 0, T) for b in range(B)] if cu is None else [(0, int(cu[n]), int(cu[n + 1])) for n in range(len(cu) - 1)]
    o = np.zeros((B, T, HV, V))
    states = []
    for n, (b, s, e) in enumerate(seqs):
        S = np.zeros((HV, K, V)) if h0 is None else gdnv_capture.widen(h0)[n].astype(np.float64).copy()
        for t in range(s, e):
            S *= np.exp(g[b, t])[:, None, None]
            kt = k[b, t]                                        # [HV, K]
            delta = beta[b, t][:, None] * (v[b, t] - np.einsum("hk,hkv->hv", kt, S))
            S += kt[:, :, None] * delta[:, None, :]
            o[b, t] = np.einsum("hk,hkv->hv", q[b, t], S)
        states.append(S)
    return o, np.stack(states)


def out_like(o, like):
    """o rounded once to the dtype of `like` (bf16 bits, float16 or float32)."""
    like = np.asarray(like)
    if gdnv_capture._is_bf16_bits(like):
        return gdnv_capture.bf16(o.astype(np.float32))  # float64 -> float32 -> bf16: a double rounding,
    return o.astype(like.dtype)                         # far below the 8x gate


def fla_gdr(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
            use_qk_l2norm_in_kernel=False):
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    o, st = recurrence(q, k, v, g, beta, scale, initial_state, cu_seqlens, use_qk_l2norm_in_kernel)
    return out_like(o, q), (st.astype(np.float32) if output_final_state else None)


def fla_gdr_wrong(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                  use_qk_l2norm_in_kernel=False):
    o, st = fla_gdr(q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens, use_qk_l2norm_in_kernel)
    return out_like(gdnv_capture.widen(o).astype(np.float64) * 1.05, q), st


def head_first_gdr(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False, head_first=True):
    tr4, tr3 = (lambda x: np.ascontiguousarray(np.swapaxes(x, 1, 2))), (lambda x: np.ascontiguousarray(np.swapaxes(x, 1, 2)))
    if head_first:
        q, k, v = tr4(q), tr4(k), tr4(v)
        g, beta = tr3(g), tr3(beta)
    o, st = fla_gdr(q, k, v, g, beta, scale, initial_state, output_final_state)
    return (tr4(o) if head_first else o), st


def torch_style_gdr(query, key, value, g, beta, chunk_size=64, initial_state=None, output_final_state=False,
                    use_qk_l2norm_in_kernel=False, **kwargs):
    """transformers' convention: scale fixed to K^-0.5, **kwargs swallows cu_seqlens/scale."""
    o, st = recurrence(query, key, value, g, beta, query.shape[-1] ** -0.5, initial_state, None,
                       use_qk_l2norm_in_kernel)
    return out_like(o, query), (st.astype(np.float32) if output_final_state else None)


def make_inputs(rng, B=1, T=100, H=2, HV=4, K=16, V=16, dtype="float32", cu=None, h0=True):
    def conv(x):
        if dtype == "bfloat16":
            return gdnv_capture.bf16(x.astype(np.float32))
        return x.astype(dtype)
    q = conv(rng.standard_normal((B, T, H, K)))
    k = conv(rng.standard_normal((B, T, H, K)))
    v = conv(rng.standard_normal((B, T, HV, V)))
    g = (-np.log1p(np.exp(-rng.standard_normal((B, T, HV)) - 2))).astype(np.float32)
    beta = (1 / (1 + np.exp(-rng.standard_normal((B, T, HV))))).astype(np.float32)
    N = B if cu is None else len(cu) - 1
    init = (0.1 * rng.standard_normal((N, HV, K, V))).astype(np.float32) if h0 else None
    return dict(q=q, k=k, v=v, g=g, beta=beta, initial_state=init,
                cu_seqlens=None if cu is None else np.asarray(cu, dtype=np.int64))


def gdnv(*args):
    if not GDNV or not os.path.exists(GDNV):
        raise AssertionError(f"gdnv binary not given (argument or $GDNV_EXE): {GDNV!r}")
    r = subprocess.run([GDNV, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def quiet(fn, *a, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = fn(*a, **kw)
    return res, [str(x.message) for x in w]


def case_names(path):
    with h5py.File(path, "r") as f:
        return sorted(f["cases"].keys())


# ---- round trips through gdnv check -------------------------------------------------------------

@test
def round_trip_fp32_varlen_gqa_passes_check():
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cap.h5")
        with gdnv_capture.Recorder(path, model="numpy-test") as rec:
            fn = rec.wrap(fla_gdr, name="numpy-recurrence", arithmetic=ARITH, layer=0)
            x = make_inputs(rng, T=150, cu=[0, 1, 64, 65, 150])
            o, st = fn(x["q"], x["k"], x["v"], x["g"], x["beta"], initial_state=x["initial_state"],
                       output_final_state=True, cu_seqlens=x["cu_seqlens"], use_qk_l2norm_in_kernel=True)
            assert o.shape == (1, 150, 4, 16) and st.shape == (4, 4, 16, 16)
            x = make_inputs(rng, B=2, T=70, h0=False)
            fn(x["q"], x["k"], x["v"], x["g"], x["beta"], 0.3, None, True)  # positional scale
            assert not os.path.exists(path), "file must appear only at close"
        assert case_names(path) == ["L0-c0000-numpy-recurrence", "L0-c0001-numpy-recurrence"], case_names(path)
        with h5py.File(path, "r") as f:
            c0 = f["cases/L0-c0000-numpy-recurrence"]
            assert c0.attrs["qk_l2norm"] == 1 and c0.attrs["layer_index"] == 0 and c0.attrs["model"] == "numpy-test"
            assert list(c0["inputs/cu_seqlens"][()]) == [0, 1, 64, 65, 150]
            grp = c0["captured/numpy-recurrence"]
            assert grp.attrs["arithmetic"] == ARITH
            assert "numpy" in grp.attrs["version"], grp.attrs["version"]
            assert grp.attrs["implementation"].endswith("fla_gdr")
            assert grp["final_state"].shape == (4, 4, 16, 16)
            c1 = f["cases/L0-c0001-numpy-recurrence"]
            assert abs(c1.attrs["scale"] - 0.3) < 1e-15 and "initial_state" not in c1["inputs"]
            assert "torch" not in f.attrs["created_by"]
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err
        assert "captured:numpy-recurrence" in out and "2 passed, 0 failed" in out, out
        assert not [n for n in os.listdir(d) if ".tmp-" in n], os.listdir(d)
    assert "torch" not in sys.modules, "gdnv_capture imported torch"


@test
def round_trip_bf16_is_stored_as_the_custom_float_and_passes():
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bf16.h5")
        with gdnv_capture.Recorder(path, model="numpy-test") as rec:
            fn = rec.wrap(fla_gdr, name="numpy-bf16", arithmetic=ARITH, layer=5)
            x = make_inputs(rng, T=130, dtype="bfloat16")
            o, _ = fn(x["q"], x["k"], x["v"], x["g"], x["beta"], initial_state=x["initial_state"],
                      output_final_state=True, use_qk_l2norm_in_kernel=True)
        with h5py.File(path, "r") as f:
            case = f["cases/L5-c0000-numpy-bf16"]
            for ds in (case["inputs/q"], case["inputs/v"], case["captured/numpy-bf16/o"]):
                assert gdnv_h5.float_type_name(ds.id.get_type()) == "bfloat16", ds.name
            stored = gdnv_h5.read_case(f, "L5-c0000-numpy-bf16", path).arrays["q"]
            assert np.array_equal(stored, gdnv_capture.widen(x["q"])), "bf16 inputs not stored exactly"
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err
        rc, out, err = gdnv("replay", path, "--chunk", "0:3:2")  # one case: --case may be left out
        assert rc == 0 and "case L5-c0000-numpy-bf16: sequence 0, value head 3, chunk 2" in out, out + err


@test
def a_wrong_implementation_fails_check_naming_its_group():
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "wrong.h5")
        with gdnv_capture.Recorder(path, model="numpy-test") as rec:
            good = rec.wrap(fla_gdr, name="numpy-good", arithmetic=ARITH, layer=1)
            bad = rec.wrap(fla_gdr_wrong, name="numpy-scaled-1.05", arithmetic="o scaled by 1.05 (deliberately wrong)",
                           layer=1)
            x = make_inputs(rng, T=80, dtype="bfloat16")
            args = (x["q"], x["k"], x["v"], x["g"], x["beta"])
            good(*args, initial_state=x["initial_state"], output_final_state=True)
            bad(*args, initial_state=x["initial_state"], output_final_state=True)
        rc, out, err = gdnv("check", path)
        assert rc == 1, f"rc {rc}\n{out}{err}"
        failed = [ln for ln in out.splitlines() if " failed " in ln and "captured:" in ln]
        assert failed and all("captured:numpy-scaled-1.05" in ln and "L1-c0000-numpy-scaled-1.05" in ln
                              for ln in failed), out
        assert any("captured:numpy-good" in ln and " passed " in ln for ln in out.splitlines()), out
        # gdnv replay on the failing case: the chunk's story, the wrong group's o above the gate
        rc, out, err = gdnv("replay", path, "--case", "L1-c0000-numpy-scaled-1.05", "--chunk", "0:0:1")
        assert rc == 1 and "ABOVE GATE" in out and "captured:numpy-scaled-1.05" in out, f"rc {rc}\n{out}{err}"
        rc, out, err = gdnv("replay", path, "--case", "L1-c0000-numpy-good", "--chunk", "0:3:0")
        assert rc == 0 and "kappa_1" in out, f"rc {rc}\n{out}{err}"


@test
def head_first_layout_is_transposed():
    rng = np.random.default_rng(4)
    x = make_inputs(rng, T=70)
    hf = {n: np.ascontiguousarray(np.swapaxes(x[n], 1, 2)) for n in ("q", "k", "v", "g", "beta")}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "hf.h5")
        with gdnv_capture.Recorder(path) as rec:
            fn = rec.wrap(head_first_gdr, name="hf", arithmetic=ARITH, layer=0)  # head_first from the call
            fn(hf["q"], hf["k"], hf["v"], hf["g"], hf["beta"], initial_state=x["initial_state"],
               output_final_state=True, head_first=True)
            fn2 = rec.wrap(lambda *a, **kw: head_first_gdr(*a, head_first=True, **kw), name="hf-explicit",
                           arithmetic=ARITH, layer=0, layout="head_first")
            fn2(hf["q"], hf["k"], hf["v"], hf["g"], hf["beta"], initial_state=x["initial_state"],
                output_final_state=True)
        with h5py.File(path, "r") as f:
            for name in f["cases"]:
                assert f[f"cases/{name}/inputs/q"].shape == (1, 70, 2, 16), name
                assert np.array_equal(f[f"cases/{name}/inputs/q"][()], x["q"])
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err


@test
def transformers_convention_collapses_repeated_heads_and_ignores_cu_seqlens():
    rng = np.random.default_rng(5)
    x = make_inputs(rng, T=90, H=2, HV=4)
    qr, kr = np.repeat(x["q"], 2, axis=2), np.repeat(x["k"], 2, axis=2)  # what the layer does
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tf.h5")
        with gdnv_capture.Recorder(path) as rec:
            fn = rec.wrap(torch_style_gdr, name="torch-style", arithmetic=ARITH, layer=2, kv_group=2)
            assert fn.__gdnv_capture_spec__.convention == "transformers"
            _, msgs = quiet(fn, qr, kr, x["v"], x["g"], x["beta"], 64, x["initial_state"], True, True,
                            cu_seqlens=np.array([0, 40, 90]), scale=0.5)
            assert any("ignores it" in m for m in msgs) and any("K^-0.5" in m for m in msgs), msgs
        with h5py.File(path, "r") as f:
            c = f["cases/L2-c0000-torch-style"]
            assert c["inputs/q"].shape == (1, 90, 2, 16) and "cu_seqlens" not in c["inputs"]
            assert abs(c.attrs["scale"] - 0.25) < 1e-15 and c.attrs["qk_l2norm"] == 1
            assert "repeat_interleave(2)" in c["captured/torch-style"].attrs["call"]
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err


# ---- sampling, truncation, caps -----------------------------------------------------------------

@test
def sampling_by_layer_and_call():
    rng = np.random.default_rng(6)
    x = make_inputs(rng, T=20, H=1, HV=1, K=8, V=8, h0=False)
    args = (x["q"], x["k"], x["v"], x["g"], x["beta"])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.h5")
        with gdnv_capture.Recorder(path, layers={1, 3}, calls=lambda c: c % 2 == 0) as rec:
            fn = rec.wrap(fla_gdr, name="f", arithmetic=ARITH)
            for call in range(3):
                for layer in range(4):
                    with gdnv_capture.layer_scope(layer):
                        o, st = fn(*args)
                        assert o.shape == (1, 20, 1, 8) and st is None  # caller's results untouched
            fn(*args)  # no layer: not in the selection
        assert case_names(path) == ["L1-c0000-f", "L1-c0002-f", "L3-c0000-f", "L3-c0002-f"], case_names(path)
        with h5py.File(path, "r") as f:
            assert f["cases/L3-c0002-f"].attrs["call_index"] == 2
            assert f["cases/L3-c0002-f"].attrs["global_call_index"] == 11
            assert "final_state" not in f["cases/L1-c0000-f/captured/f"]


@test
def request_final_state_records_it_but_returns_what_the_caller_asked():
    rng = np.random.default_rng(7)
    x = make_inputs(rng, T=30, H=1, HV=2, K=8, V=8)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rfs.h5")
        with gdnv_capture.Recorder(path) as rec:
            fn = rec.wrap(fla_gdr, name="f", arithmetic=ARITH, layer=0, request_final_state=True)
            o, st = fn(x["q"], x["k"], x["v"], x["g"], x["beta"], initial_state=x["initial_state"])
            assert st is None
        with h5py.File(path, "r") as f:
            assert f["cases/L0-c0000-f/captured/f/final_state"].shape == (1, 2, 8, 8)
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err


@test
def max_tokens_keeps_the_first_tokens_and_drops_the_final_state():
    rng = np.random.default_rng(8)
    x = make_inputs(rng, T=150, cu=[0, 50, 120, 150])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mt.h5")
        with gdnv_capture.Recorder(path, max_tokens=100) as rec:
            fn = rec.wrap(fla_gdr, name="f", arithmetic=ARITH, layer=0)
            o, st = fn(x["q"], x["k"], x["v"], x["g"], x["beta"], initial_state=x["initial_state"],
                       output_final_state=True, cu_seqlens=x["cu_seqlens"])
            assert o.shape[1] == 150 and st.shape[0] == 3  # the caller gets everything
        with h5py.File(path, "r") as f:
            c = f["cases/L0-c0000-f"]
            assert c["inputs/q"].shape[1] == 100
            assert list(c["inputs/cu_seqlens"][()]) == [0, 50, 100]
            assert c["inputs/initial_state"].shape[0] == 2
            assert "final_state" not in c["captured/f"] and "truncated" in c["captured/f"].attrs["call"]
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err


@test
def size_cap_stops_recording_with_one_warning():
    rng = np.random.default_rng(9)
    x = make_inputs(rng, T=64, H=2, HV=2, K=32, V=32)
    args = (x["q"], x["k"], x["v"], x["g"], x["beta"])
    with tempfile.TemporaryDirectory() as d:
        one = os.path.join(d, "one.h5")
        with gdnv_capture.Recorder(one) as rec:
            rec.wrap(fla_gdr, name="f", arithmetic=ARITH, layer=0)(*args, initial_state=x["initial_state"],
                                                                  output_final_state=True)
        per_case = os.path.getsize(one)
        cap = int(2.5 * (per_case + gdnv_capture.CASE_OVERHEAD_BYTES))
        path = os.path.join(d, "cap.h5")
        rec = gdnv_capture.Recorder(path, max_bytes=cap)
        fn = rec.wrap(fla_gdr, name="f", arithmetic=ARITH, layer=0)
        _, msgs = quiet(lambda: [fn(*args, initial_state=x["initial_state"], output_final_state=True)
                                 for _ in range(6)])
        rec.close()
        caps = [m for m in msgs if "size cap" in m]
        assert len(caps) == 1, msgs
        n = len(case_names(path))
        assert 1 <= n < 6 and rec.full, n
        assert os.path.getsize(path) <= cap, (os.path.getsize(path), cap)
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err


@test
def max_cases_and_nothing_recorded_means_no_file():
    rng = np.random.default_rng(10)
    x = make_inputs(rng, T=10, H=1, HV=1, K=4, V=4, h0=False)
    args = (x["q"], x["k"], x["v"], x["g"], x["beta"])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "none.h5")
        rec = gdnv_capture.Recorder(path, layers=[7])
        rec.wrap(fla_gdr, arithmetic=ARITH, layer=0)(*args)
        written, msgs = quiet(rec.close)
        assert written is None and not os.path.exists(path) and any("not written" in m for m in msgs), msgs
        assert os.listdir(d) == [], os.listdir(d)
        path = os.path.join(d, "two.h5")
        rec = gdnv_capture.Recorder(path, max_cases=2)
        fn = rec.wrap(fla_gdr, name="f", arithmetic=ARITH, layer=0)
        quiet(lambda: [fn(*args) for _ in range(4)])
        rec.close()
        assert len(case_names(path)) == 2


@test
def unrecordable_calls_warn_and_never_break_the_model():
    rng = np.random.default_rng(11)
    x = make_inputs(rng, T=12, H=1, HV=1, K=4, V=4, h0=False)
    v_nan = x["v"].copy()
    v_nan[0, 3, 0, 1] = np.nan
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "nan.h5")
        rec = gdnv_capture.Recorder(path)
        fn = rec.wrap(fla_gdr, name="f", arithmetic=ARITH, layer=0)
        (o, _), msgs = quiet(fn, x["q"], x["k"], v_nan, x["g"], x["beta"])
        assert o.shape == (1, 12, 1, 4) and any("NaN" in m for m in msgs), msgs
        _, msgs = quiet(fn, x["q"], x["k"], x["v"].astype(np.int32), x["g"], x["beta"])
        assert any("integer" in m for m in msgs), msgs
        fn(x["q"], x["k"], x["v"], x["g"], x["beta"])
        rec.close()
        assert case_names(path) == ["L0-c0002-f"] and len(rec.skipped) == 2, (case_names(path), rec.skipped)
        rc, out, err = gdnv("check", path)
        assert rc == 0, out + err


@test
def exception_in_the_block_still_writes_the_recorded_cases():
    rng = np.random.default_rng(12)
    x = make_inputs(rng, T=12, H=1, HV=1, K=4, V=4, h0=False)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "exc.h5")
        try:
            with gdnv_capture.Recorder(path) as rec:
                rec.wrap(fla_gdr, name="f", arithmetic=ARITH, layer=0)(x["q"], x["k"], x["v"], x["g"], x["beta"])
                raise RuntimeError("model crashed")
        except RuntimeError:
            pass
        assert case_names(path) == ["L0-c0000-f"]
        assert [n for n in os.listdir(d)] == ["exc.h5"], os.listdir(d)


@test
def decorator_and_patch_restore():
    import types
    mod = types.ModuleType("fake_kernels")
    mod.chunk_gated_delta_rule = fla_gdr
    user = types.ModuleType("fake_model")
    user.chunk_gated_delta_rule = fla_gdr  # imported by name, as model files do
    sys.modules["fake_kernels"], sys.modules["fake_model"] = mod, user
    rng = np.random.default_rng(13)
    x = make_inputs(rng, T=12, H=1, HV=1, K=4, V=4, h0=False)
    try:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "p.h5")
            with gdnv_capture.Recorder(path) as rec:
                rec.patch("fake_kernels", "chunk_gated_delta_rule", name="patched", arithmetic=ARITH, layer=4)
                assert user.chunk_gated_delta_rule is not fla_gdr
                user.chunk_gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"])

                @rec.capture(name="decorated", arithmetic=ARITH, layer=4)
                def kernel(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
                    return fla_gdr(q, k, v, g, beta, scale, initial_state, output_final_state)
                assert list(inspect.signature(kernel).parameters)[:2] == ["q", "k"]
                kernel(x["q"], x["k"], x["v"], x["g"], x["beta"])
            assert mod.chunk_gated_delta_rule is fla_gdr and user.chunk_gated_delta_rule is fla_gdr
            assert case_names(path) == ["L4-c0000-decorated", "L4-c0000-patched"], case_names(path)
    finally:
        del sys.modules["fake_kernels"], sys.modules["fake_model"]


@test
def adapters_raise_a_clear_import_error_when_the_package_is_missing():
    import importlib.util
    import gdnv_adapters
    with tempfile.TemporaryDirectory() as d:
        rec = gdnv_capture.Recorder(os.path.join(d, "a.h5"))
        for key, top in (("fla", "fla"), ("sglang", "sglang"), ("vllm", "vllm"), ("transformers-chunk", "transformers")):
            if importlib.util.find_spec(top) is not None:
                continue  # installed: exercised by test_gdnv_capture_torch.py
            try:
                gdnv_adapters.ADAPTERS[key](rec)
            except ImportError as e:
                assert "gdnv_adapters" in str(e) and "not importable" in str(e), str(e)
            else:
                raise AssertionError(f"{key}: no ImportError")
        quiet(rec.close)


def main():
    passed = failed = 0
    for fn in TESTS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", gdnv_capture.CaptureWarning)
                fn()
            passed += 1
        except Exception:
            failed += 1
            print(f"FAILED {fn.__name__}:\n{traceback.format_exc()}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
