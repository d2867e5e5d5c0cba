// GPU implementations behind the harness interface (see gpu_implementations.hpp).
#include "harness/gpu_implementations.hpp"

namespace gdnv {
std::vector<std::string> gpu_implementation_names() {
  return {"unfused", "unfused-splitstate", "unfused-fp32inv", "fused", "fused-intra", "precise",
          "fused-v5", "fused-intra-v3", "precise-v3", "fused-forward", "fused-forward-from-v", "cublas", "cublas-fp64"};
}

std::vector<std::string> pair_partners(std::string const& name) {
  if (name.rfind("fused", 0) != 0) return {};
  if (name == "fused-forward") return {"unfused", "fused-intra-v3"};
  if (name == "fused-forward-from-v") return {"unfused", "fused-forward"};
  return {"unfused"};
}
}  // namespace gdnv

#ifdef GDNV_HAVE_CUDA

#include <cstring>
#include <stdexcept>

#include "cuda/gdn_cuda.hpp"
#include "reference/rounding.hpp"

namespace gdnv {
namespace {

namespace gc = gdn_cuda;

enum class Variant {
  unfused, unfused_splitstate, unfused_fp32inv, fused, fused_intra, precise, fused_v5, fused_intra_v3, precise_v3,
  fused_forward, fused_forward_from_v, cublas, cublas_fp64
};

bool to_elem(DType t, gc::ElemType& e) {
  switch (t) {
    case DType::bf16: e = gc::ElemType::bf16; return true;
    case DType::f16: e = gc::ElemType::f16; return true;
    case DType::f32: e = gc::ElemType::f32; return true;
    default: return false;
  }
}
DType to_dtype(gc::ElemType e) {
  switch (e) {
    case gc::ElemType::bf16: return DType::bf16;
    case gc::ElemType::f16: return DType::f16;
    default: return DType::f32;
  }
}

// Host bytes of `t` in dtype e, each value rounded to nearest even (exact for stored inputs).
std::vector<unsigned char> pack(Tensor const& t, gc::ElemType e) {
  std::vector<unsigned char> out(static_cast<size_t>(t.numel()) * gc::elem_size(e));
  for (size_t i = 0; i < t.data.size(); ++i) {
    double const x = t.data[i];
    if (e == gc::ElemType::f32) {
      float const f = static_cast<float>(round_to(DType::f32, x));
      std::memcpy(out.data() + 4 * i, &f, 4);
    } else {
      uint16_t const b = e == gc::ElemType::bf16 ? double_to_bf16_bits(x) : double_to_fp16_bits(x);
      std::memcpy(out.data() + 2 * i, &b, 2);
    }
  }
  return out;
}

void upload(gc::DeviceBuffer& buf, Tensor const& t, gc::ElemType e) {
  auto const bytes = pack(t, e);
  buf.upload(bytes.data(), bytes.size());
}

Tensor download(gc::DeviceBuffer const& buf, std::vector<int64_t> shape, gc::ElemType e) {
  Tensor t(std::move(shape), to_dtype(e));
  size_t const n = static_cast<size_t>(t.numel());
  std::vector<unsigned char> raw(n * gc::elem_size(e));
  buf.download(raw.data(), raw.size());
  for (size_t i = 0; i < n; ++i) {
    if (e == gc::ElemType::f32) {
      float f;
      std::memcpy(&f, raw.data() + 4 * i, 4);
      t.data[i] = f;
    } else {
      uint16_t b;
      std::memcpy(&b, raw.data() + 2 * i, 2);
      t.data[i] = e == gc::ElemType::bf16 ? bf16_bits_to_double(b) : fp16_bits_to_double(b);
    }
  }
  return t;
}

class GpuImplementation final : public Implementation {
 public:
  GpuImplementation(std::string name, Variant v) : name_(std::move(name)), v_(v) {}
  std::string name() const override { return name_; }
  std::string arithmetic() const override {
    std::string const common =
        std::string("q/k/v in their stored dtype (bf16/fp16: mma.sync m16n8k16, fp32 accumulate; fp32: fp32 FMA), "
                    "g/beta fp32 math, gate exp in fp32, beta*v and beta*e^g*k rounded to the input dtype, "
                    "w/u/v_new/h/o stored in the input dtype, score matrix rounded to the input dtype, running "
                    "state fp32, ") +
        (split_state() ? "state operand of W*S split into hi+lo input-dtype parts (~2^-16)"
                       : "state operand of W*S rounded to the input dtype (as FLA)") +
        ", final_state fp32";
    switch (v_) {
      case Variant::unfused:
      case Variant::unfused_splitstate:
        return "unfused CUDA pipeline: A fp32, (I+A)^-1 by fp32 16x16 forward substitution + fp32 merges, A_inv "
               "stored in the input dtype; " + common;
      case Variant::unfused_fp32inv:
        return "unfused CUDA pipeline: A fp32, (I+A)^-1 fp32 (forward substitution + fp32 merges), A_inv stored "
               "fp32 and split hi+lo for w/u; " + common;
      case Variant::fused:
        return "fused kkt+solve CUDA kernel (A fp32 on chip, never stored), (I+A)^-1 by fp32 16x16 forward "
               "substitution + fp32 merges (the unfused arithmetic, bit for bit), A_inv stored in the input dtype; "
               "w/u, state, output: the unfused kernels; " + common;
      case Variant::fused_intra:
        return "fused intra CUDA kernel (kkt + solve + w/u in one kernel; A fp32 and A_inv on chip, A_inv also "
               "stored in the input dtype; the unfused arithmetic, bit for bit); state, output: the unfused "
               "kernels; " + common;
      case Variant::precise:
        return "fused intra CUDA kernel (kkt + solve + w/u in one kernel, A_inv stored in the input dtype as "
               "\"fused-intra\"), then the precise state and output kernels: beta*v split into hi+lo input-dtype parts (~2^-16) for u, u and v_new stored fp32, "
               "v_new and the score matrix split hi+lo for the score product (P V = Ph Vh + Ph Vl + Pl Vh), "
               "beta*e^g*k, w, h, the gated delta and o as in the other variants: q/k/v in their stored dtype "
               "(mma.sync m16n8k16, fp32 accumulate), running state fp32, state operand of W*S rounded to the "
               "input dtype, final_state fp32";
      case Variant::fused_v5:
        return "fused kkt+solve CUDA kernel, variant 5 (one block per chunk and key head: K K^T computed once for "
               "the value heads sharing the key head; A fp32 on chip with the gate exp as ex2.approx; (I+A)^-1 by "
               "fp32 16x16 forward substitution + merges as a 32x32 recursive inverse in 3xTF32 on the tensor "
               "cores), A_inv stored in the input dtype; w/u, state, output: the unfused kernels; " + common;
      case Variant::fused_intra_v3:
        return "fused intra CUDA kernel, variant 3 (kkt + solve as fused-v5, then u = round(A_inv diag(beta)) v "
               "and w = round(A_inv diag(beta e^g)) k with v, k as stored: beta folded into the A_inv operand, "
               "one rounding fewer than FLA's beta v and beta e^g k); A_inv also stored in the input dtype; "
               "state, output: the unfused kernels; " + common;
      case Variant::precise_v3:
        return "fused intra CUDA kernel, variant 3 with precise_uv (as fused-intra-v3, with A_inv diag(beta) as a "
               "hi+lo input-dtype pair for u, u stored fp32), then the precise state and output kernels: v_new "
               "stored fp32, v_new and the score matrix split hi+lo for the score product; w, h, the gated delta "
               "and o as in the other variants, running state fp32, state operand of W*S rounded to the input "
               "dtype, final_state fp32";
      case Variant::fused_forward:
        return "fused intra CUDA kernel, variant 3 (as fused-intra-v3), then chunk_state + chunk_output in one "
               "kernel (state_output_fused variant 4 at K = 128: TMA tile loads, warpgroup MMAs, the gated score "
               "rows Q K^T computed on chip; at K = 64 variant 2, reading the score rows that the intra kernel "
               "wrote from the k tile it holds): h, v_new and the score rows stay on chip, the same products in the "
               "same order, so the bytes of fused-intra-v3; " + common;
      case Variant::fused_forward_from_v:
        return "fused intra CUDA kernel, variant 3 writing only round(A_inv diag(beta)) (and A_inv, and the score rows "
               "at 32 columns; no w, u), then state_output_fused variant 4 forming the delta from v: delta = "
               "round(A_inv diag(beta)) round(v - diag(e^g) K round(h)) (FlashQLA's form; the arithmetic of "
               "emulated-fused-forward-from-v): one rounding where u - W h has three; w and u not formed, so not "
               "reported; " + common;
      case Variant::cublas:
        return "cuBLAS: KKT by cublasGemmStridedBatchedEx (fp32 compute) + our mask kernel, inverse by "
               "cublasStrsmBatched (fp32) against I, A_inv fp32; cumsum, w/u, state, output: our kernels; " + common;
      case Variant::cublas_fp64:
        return "cuBLAS: KKT by cublasGemmStridedBatchedEx (fp32 compute) + our mask kernel, inverse by "
               "cublasDtrsmBatched (fp64) against I, A_inv fp32; cumsum, w/u, state, output: our kernels; " + common;
    }
    return "";
  }

  Availability can_implement(Problem const& p) const override {
    std::string why;
    if (gc::device_count(&why) <= 0) return Availability::not_run("no CUDA device: " + why);
    if (p.chunk_size != kChunk) return Availability::not_supported("chunk_size must be 64");
    gc::ElemType q = gc::ElemType::bf16, k = q, v = q, g = q, b = q;
    if (!to_elem(p.q.dtype, q) || !to_elem(p.k.dtype, k) || !to_elem(p.v.dtype, v))
      return Availability::not_supported("q/k/v must be bf16, fp16 or fp32");
    if (q != k || k != v) return Availability::not_supported("q, k and v must share one dtype");
    if (!to_elem(p.g.dtype, g) || !to_elem(p.beta.dtype, b))
      return Availability::not_supported("g and beta must be bf16, fp16 or fp32");
    if (p.H < 1 || p.HV % p.H != 0) return Availability::not_supported("HV must be a multiple of H");
    if (p.varlen() && p.B != 1) return Availability::not_supported("varlen needs B == 1");
    gc::Dims d;
    d.B = p.B, d.T = p.T, d.H = p.H, d.HV = p.HV, d.K = p.K, d.V = p.V;
    d.num_chunks = static_cast<int64_t>(p.chunks().size());
    std::string const r = gc::can_implement(d, q, g, b, ainv_type(q));
    if (!r.empty()) return Availability::not_supported(r);
    if (v_ == Variant::fused_forward_from_v && (q == gc::ElemType::f32 || p.K != 128 || p.V != 128))
      return Availability::not_supported("the delta from v runs in state_output_fused 4: 16-bit inputs, K = V = 128");
    return Availability::ok();
  }

  StageOutputs run(Problem const& p) override { return execute(p, nullptr); }
  bool has_isolated_stages() const override { return v_ != Variant::fused_forward_from_v; }
  StageOutputs run_isolated(Problem const& p, ChunkedResult const& ref) override { return execute(p, &ref); }

 private:
  gc::ElemType ainv_type(gc::ElemType e) const {
    if (e == gc::ElemType::f32) return e;
    return v_ == Variant::unfused_fp32inv || v_ == Variant::cublas || v_ == Variant::cublas_fp64 ? gc::ElemType::f32 : e;
  }
  // FLA's rounding of the state operand for "unfused" and the fused variants; the others split it.
  bool split_state() const {
    return v_ == Variant::unfused_splitstate || v_ == Variant::unfused_fp32inv || v_ == Variant::cublas ||
           v_ == Variant::cublas_fp64;
  }
  gc::Fusion fusion() const {
    switch (v_) {
      case Variant::fused:
      case Variant::fused_v5: return gc::Fusion::kkt_solve;
      case Variant::fused_intra:
      case Variant::precise:
      case Variant::fused_intra_v3:
      case Variant::precise_v3:
      case Variant::fused_forward:
      case Variant::fused_forward_from_v: return gc::Fusion::intra;
      default: return gc::Fusion::none;
    }
  }

  StageOutputs execute(Problem const& p, ChunkedResult const* ref) {
    gc::ElemType qkv = gc::ElemType::bf16, gt = gc::ElemType::f32, bt = gc::ElemType::f32;
    to_elem(p.q.dtype, qkv);
    to_elem(p.g.dtype, gt);
    to_elem(p.beta.dtype, bt);
    gc::ElemType const ai = ainv_type(qkv);
    gc::Plan plan = gc::make_plan(p.B, p.T, p.H, p.HV, p.K, p.V, p.cu_seqlens);
    gc::Dims const d = plan.d;
    bool const with_h0 = !p.initial_state.empty();
    gc::Workspace ws(plan, qkv, gt, bt, ai, with_h0);
    ws.poison();
    upload(ws.q, p.q, qkv);
    upload(ws.k, p.k, qkv);
    upload(ws.v, p.v, qkv);
    upload(ws.g, p.g, gt);
    upload(ws.beta, p.beta, bt);
    if (with_h0) upload(ws.h0, p.initial_state, gc::ElemType::f32);
    gc::Args a = ws.args;
    a.scale = static_cast<float>(p.scale);
    a.split_state = split_state();
    a.precise_uv = v_ == Variant::precise || v_ == Variant::precise_v3;
    a.kkt_solve_variant = v_ == Variant::fused_v5 ? 5 : 4;
    bool const from_v = v_ == Variant::fused_forward_from_v, ffwd = v_ == Variant::fused_forward || from_v;
    a.intra_variant = v_ == Variant::fused_intra_v3 || v_ == Variant::precise_v3 || ffwd ? 3 : 1;
    a.fuse_state_output = ffwd;
    a.scores_in_intra = ffwd;  // where state_output_fused does not compute them:
    a.scores_in_state = ffwd;  // state_output_computes_scores() (K = 128)
    a.delta_from_v = from_v;
    gc::ElemType const uvt = gc::uv_type(a);  // u, v_new
    if (p.qk_l2norm) {
      gc::l2norm(ws.q.get(), ws.q.get(), qkv, d.B * d.T * d.H, d.K, nullptr);
      gc::l2norm(ws.k.get(), ws.k.get(), qkv, d.B * d.T * d.H, d.K, nullptr);
    }
    std::unique_ptr<gc::CublasBaseline> cb;
    if (v_ == Variant::cublas || v_ == Variant::cublas_fp64) cb = std::make_unique<gc::CublasBaseline>(plan);
    auto run_kkt = [&] { cb ? cb->kkt(a, nullptr) : gc::kkt(a, nullptr); };
    auto run_solve = [&] { cb ? cb->solve(a, nullptr, v_ == Variant::cublas_fp64) : gc::solve_tril(a, nullptr); };
    a.fusion = fusion();
    if (!gc::pipeline_reads_gate_pack(a)) a.gate_pack = nullptr;  // as gc::forward
    bool const has_A = a.fusion == gc::Fusion::none;  // the fused kernels never store A

    std::vector<int64_t> const tok{d.B, d.T, d.HV};
    std::vector<int64_t> const tok64{d.B, d.T, d.HV, 64}, tokK{d.B, d.T, d.HV, d.K}, tokV{d.B, d.T, d.HV, d.V};
    std::vector<int64_t> const hshape{d.B, d.NT, d.HV, d.K, d.V}, fshape{d.N, d.HV, d.K, d.V};
    StageOutputs out;
    auto sync = [] { gc::synchronize(); };
    if (!ref) {
      gc::chunk_cumsum(a, nullptr);
      if (has_A) {
        run_kkt();
        run_solve();
        gc::wu(a, nullptr);
      } else if (a.fusion == gc::Fusion::kkt_solve) {
        gc::kkt_solve_fused(a, nullptr);
        gc::wu(a, nullptr);
      } else {
        gc::intra_fused(a, nullptr);
      }
      gc::state_and_output(a, nullptr);  // fused: h and v_new stored too (the Workspace's buffers)
      sync();
    } else {
      // each stage fed the reference's inputs to it, rounded to the dtype the stage consumes
      gc::chunk_cumsum(a, nullptr);
      sync();
      out["g_cumsum"] = download(ws.g_cumsum, tok, gc::ElemType::f32);
      upload(ws.g_cumsum, ref->g_cumsum, gc::ElemType::f32);
      a.gate_pack = nullptr;  // chunk_cumsum packed its own g_cumsum: the next stages read the reference's
      if (has_A) {
        run_kkt();
        sync();
        out["A"] = download(ws.A, tok64, gc::ElemType::f32);
        upload(ws.A, ref->A, gc::ElemType::f32);
        run_solve();
      } else if (a.fusion == gc::Fusion::kkt_solve) {
        gc::kkt_solve_fused(a, nullptr);  // one stage from g_cumsum to A_inv
      } else {
        gc::intra_fused(a, nullptr);  // one stage from g_cumsum to A_inv, w, u
      }
      sync();
      out["A_inv"] = download(ws.A_inv, tok64, ai);
      if (a.fusion != gc::Fusion::intra) {
        upload(ws.A_inv, ref->A_inv, ai);
        gc::wu(a, nullptr);
        sync();
      }
      out["w"] = download(ws.w, tokK, qkv);
      out["u"] = download(ws.u, tokV, uvt);
      upload(ws.w, ref->w, qkv);
      upload(ws.u, ref->u, uvt);
      // fused state + output: one stage from w, u to h, v_new, final_state and o, so o is computed from the
      // kernel's own h and v_new and carries the state stage's error too (as the fused kkt+solve's A_inv
      // carries kkt's)
      if (a.fuse_state_output) gc::state_output_fused(a, nullptr); else gc::chunk_state(a, nullptr);
      sync();
      out["h"] = download(ws.h, hshape, qkv);
      out["v_new"] = download(ws.v_new, tokV, uvt);
      out["final_state"] = download(ws.final_state, fshape, gc::ElemType::f32);
      if (!a.fuse_state_output) {
        upload(ws.h, ref->h, qkv);
        upload(ws.v_new, ref->v_new, uvt);
        gc::chunk_output(a, nullptr);
        sync();
      }
      out["o"] = download(ws.o, tokV, qkv);
      return out;
    }
    out["g_cumsum"] = download(ws.g_cumsum, tok, gc::ElemType::f32);
    if (has_A) out["A"] = download(ws.A, tok64, gc::ElemType::f32);
    out["A_inv"] = download(ws.A_inv, tok64, ai);
    if (!a.delta_from_v) {  // never formed by that walk
      out["w"] = download(ws.w, tokK, qkv);
      out["u"] = download(ws.u, tokV, uvt);
    }
    out["v_new"] = download(ws.v_new, tokV, uvt);
    out["h"] = download(ws.h, hshape, qkv);
    out["o"] = download(ws.o, tokV, qkv);
    out["final_state"] = download(ws.final_state, fshape, gc::ElemType::f32);
    return out;
  }

  std::string name_;
  Variant v_;
};

}  // namespace

std::unique_ptr<Implementation> make_gpu_implementation(std::string const& name) {
  if (name == "unfused") return std::make_unique<GpuImplementation>(name, Variant::unfused);
  if (name == "unfused-splitstate") return std::make_unique<GpuImplementation>(name, Variant::unfused_splitstate);
  if (name == "unfused-fp32inv") return std::make_unique<GpuImplementation>(name, Variant::unfused_fp32inv);
  if (name == "fused") return std::make_unique<GpuImplementation>(name, Variant::fused);
  if (name == "fused-intra") return std::make_unique<GpuImplementation>(name, Variant::fused_intra);
  if (name == "precise") return std::make_unique<GpuImplementation>(name, Variant::precise);
  if (name == "fused-v5") return std::make_unique<GpuImplementation>(name, Variant::fused_v5);
  if (name == "fused-intra-v3") return std::make_unique<GpuImplementation>(name, Variant::fused_intra_v3);
  if (name == "precise-v3") return std::make_unique<GpuImplementation>(name, Variant::precise_v3);
  if (name == "fused-forward") return std::make_unique<GpuImplementation>(name, Variant::fused_forward);
  if (name == "fused-forward-from-v") return std::make_unique<GpuImplementation>(name, Variant::fused_forward_from_v);
  if (name == "cublas") return std::make_unique<GpuImplementation>(name, Variant::cublas);
  if (name == "cublas-fp64") return std::make_unique<GpuImplementation>(name, Variant::cublas_fp64);
  return nullptr;
}

}  // namespace gdnv

#endif  // GDNV_HAVE_CUDA
