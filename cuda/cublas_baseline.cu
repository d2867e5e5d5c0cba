// cuBLAS baseline for the two chunk-local stages (a library-built comparison point):
//   KKT: k gathered into zero-padded [chunk, H, 64, K] tiles (tails padded with zeros), Gram = K K^T per
//        (chunk, key head) by cublasGemmStridedBatchedEx (bf16/fp16/fp32 in, CUBLAS_COMPUTE_32F, fp32 out;
//        default math mode: no tf32), then a masking kernel: A = strictly-lower(beta_i e^{gc_i-gc_j} Gram)
//        with the gate selected under the mask. The Gram is computed once per key head (GQA shared).
//   inverse: (I + A) X = I by cublasStrsmBatched (fp32) or cublasDtrsmBatched (fp64), lower, unit diagonal,
//        one 64x64 system per (chunk, value head); X written to A_inv (dtype Args::ainv, strict upper 0).
// Same layouts as our kernels. Other stages: ours.
#include <cublas_v2.h>

#include <vector>

#include "common.cuh"

namespace gdn_cuda {
namespace {

void cublas_check(cublasStatus_t s, char const* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS error ") + std::to_string(static_cast<int>(s)) + " in " + what);
}

template <class E>
__global__ void gather_k_kernel(Args a, E* __restrict__ kpad) {
  int const H = static_cast<int>(a.d.H), K = static_cast<int>(a.d.K);
  int const hk = blockIdx.x % H;
  ChunkDesc const c = a.chunks[blockIdx.x / H];
  E const* kg = static_cast<E const*>(a.k) + (c.row0 * H + hk) * K;
  E* out = kpad + static_cast<int64_t>(blockIdx.x) * kBT * K;
  for (int idx = threadIdx.x; idx < kBT * K; idx += blockDim.x) {
    int const i = idx / K, d = idx % K;
    out[idx] = i < c.rows ? kg[static_cast<int64_t>(i) * H * K + d] : from_f<E>(0.f);
  }
}

__global__ void mask_gram_kernel(Args a, float const* __restrict__ gram) {
  int const HV = static_cast<int>(a.d.HV), H = static_cast<int>(a.d.H);
  int const hv = blockIdx.x % HV;
  int64_t const ci = blockIdx.x / HV;
  ChunkDesc const c = a.chunks[ci];
  int const hk = hv / (HV / H);
  float const* G = gram + (ci * H + hk) * kBT * kBT;
  for (int idx = threadIdx.x; idx < kBT * kBT; idx += blockDim.x) {
    int const i = idx / kBT, j = idx % kBT;
    if (i >= c.rows) continue;
    int64_t const ri = (c.row0 + i) * HV + hv;
    float v = 0.f;
    if (j < i) {
      float const gi = a.g_cumsum[ri], gj = a.g_cumsum[(c.row0 + j) * HV + hv];
      v = load_scalar(a.beta, a.beta_t, ri) * expf(gi - gj) * G[i + kBT * j];
    }
    a.A[ri * kBT + j] = v;
  }
}

// M (column-major, strict lower of A) and X = I for every (chunk, value head)
template <class R>
__global__ void prep_solve_kernel(Args a, R* __restrict__ M, R* __restrict__ X) {
  int const HV = static_cast<int>(a.d.HV);
  [[maybe_unused]] auto const [c, hv, hk] = chunk_tile(a);
  R* m = M + static_cast<int64_t>(blockIdx.x) * kBT * kBT;
  R* x = X + static_cast<int64_t>(blockIdx.x) * kBT * kBT;
  for (int idx = threadIdx.x; idx < kBT * kBT; idx += blockDim.x) {
    int const i = idx % kBT, j = idx / kBT;  // column-major
    R v = 0;
    if (j < i && i < c.rows) v = a.A[((c.row0 + i) * HV + hv) * kBT + j];
    m[idx] = v;
    x[idx] = i == j ? R(1) : R(0);
  }
}

template <class R, class OutT>
__global__ void store_inverse_kernel(Args a, R const* __restrict__ X) {
  int const HV = static_cast<int>(a.d.HV);
  [[maybe_unused]] auto const [c, hv, hk] = chunk_tile(a);
  R const* x = X + static_cast<int64_t>(blockIdx.x) * kBT * kBT;
  OutT* out = static_cast<OutT*>(a.A_inv);
  for (int idx = threadIdx.x; idx < kBT * kBT; idx += blockDim.x) {
    int const i = idx / kBT, j = idx % kBT;
    if (i >= c.rows) continue;
    float const v = j <= i ? static_cast<float>(x[i + kBT * j]) : 0.f;
    out[((c.row0 + i) * HV + hv) * kBT + j] = from_f<OutT>(v);
  }
}

}  // namespace

struct CublasBaseline::Impl {
  Plan plan;
  cublasHandle_t handle = nullptr;
  DeviceBuffer kpad, gram, M, X, ptrM, ptrX;
  int64_t batches = 0;
  bool built64 = false, built32 = false;

  void build_ptrs(bool fp64) {
    std::size_t const es = fp64 ? 8 : 4;
    if ((fp64 && built64) || (!fp64 && built32)) return;
    M = DeviceBuffer(static_cast<std::size_t>(std::max<int64_t>(1, batches)) * kBT * kBT * es);
    X = DeviceBuffer(static_cast<std::size_t>(std::max<int64_t>(1, batches)) * kBT * kBT * es);
    std::vector<void*> pm(static_cast<size_t>(batches)), px(static_cast<size_t>(batches));
    for (int64_t b = 0; b < batches; ++b) {
      pm[static_cast<size_t>(b)] = static_cast<char*>(M.get()) + b * kBT * kBT * es;
      px[static_cast<size_t>(b)] = static_cast<char*>(X.get()) + b * kBT * kBT * es;
    }
    ptrM = DeviceBuffer(std::max<size_t>(1, pm.size()) * sizeof(void*));
    ptrX = DeviceBuffer(std::max<size_t>(1, px.size()) * sizeof(void*));
    ptrM.upload(pm.data(), pm.size() * sizeof(void*));
    ptrX.upload(px.data(), px.size() * sizeof(void*));
    built64 = fp64;
    built32 = !fp64;
  }
};

CublasBaseline::CublasBaseline(Plan const& plan) : p_(std::make_unique<Impl>()) {
  p_->plan = plan;
  cublas_check(cublasCreate(&p_->handle), "cublasCreate");
  p_->batches = plan.d.num_chunks * plan.d.HV;
}

CublasBaseline::~CublasBaseline() {
  if (p_ && p_->handle) cublasDestroy(p_->handle);
}

void CublasBaseline::kkt(Args const& a, Stream s) {
  Dims const& d = a.d;
  if (d.num_chunks == 0) return;
  int64_t const nb = d.num_chunks * d.H;
  std::size_t const es = elem_size(a.qkv);
  if (p_->kpad.size() < static_cast<std::size_t>(nb * kBT * d.K) * es)
    p_->kpad = DeviceBuffer(static_cast<std::size_t>(nb * kBT * d.K) * es);
  if (p_->gram.size() < static_cast<std::size_t>(nb * kBT * kBT) * 4)
    p_->gram = DeviceBuffer(static_cast<std::size_t>(nb * kBT * kBT) * 4);
  cudaDataType_t dt = CUDA_R_16BF;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    gather_k_kernel<E><<<static_cast<unsigned>(nb), 256, 0, s>>>(a, static_cast<E*>(p_->kpad.get()));
    dt = std::is_same_v<E, float> ? CUDA_R_32F : std::is_same_v<E, __half> ? CUDA_R_16F : CUDA_R_16BF;
  });
  GDN_LAUNCH_CHECK();
  cublas_check(cublasSetStream(p_->handle, s), "cublasSetStream");
  float const one = 1.f, zero = 0.f;
  int const K = static_cast<int>(d.K);
  cublas_check(cublasGemmStridedBatchedEx(p_->handle, CUBLAS_OP_T, CUBLAS_OP_N, kBT, kBT, K, &one, p_->kpad.get(), dt,
                                          K, static_cast<long long>(kBT) * K, p_->kpad.get(), dt, K,
                                          static_cast<long long>(kBT) * K, &zero, p_->gram.get(), CUDA_R_32F, kBT,
                                          kBT * kBT, static_cast<int>(nb), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
  mask_gram_kernel<<<static_cast<unsigned>(d.num_chunks * d.HV), 256, 0, s>>>(a,
                                                                             static_cast<float const*>(p_->gram.get()));
  GDN_LAUNCH_CHECK();
}

void CublasBaseline::solve(Args const& a, Stream s, bool fp64) {
  if (a.d.num_chunks == 0) return;
  p_->build_ptrs(fp64);
  unsigned const grid = static_cast<unsigned>(p_->batches);
  cublas_check(cublasSetStream(p_->handle, s), "cublasSetStream");
  int const nb = static_cast<int>(p_->batches);
  auto store = [&](auto r) {
    using R = decltype(r);
    dispatch_elem(a.ainv, [&](auto e) {
      using OutT = decltype(e);
      store_inverse_kernel<R, OutT><<<grid, 256, 0, s>>>(a, static_cast<R const*>(p_->X.get()));
    });
    GDN_LAUNCH_CHECK();
  };
  if (fp64) {
    prep_solve_kernel<double><<<grid, 256, 0, s>>>(a, static_cast<double*>(p_->M.get()),
                                                   static_cast<double*>(p_->X.get()));
    GDN_LAUNCH_CHECK();
    double const one = 1.0;
    cublas_check(cublasDtrsmBatched(p_->handle, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                    CUBLAS_DIAG_UNIT, kBT, kBT, &one,
                                    static_cast<double const* const*>(p_->ptrM.get()), kBT,
                                    static_cast<double* const*>(p_->ptrX.get()), kBT, nb),
                 "cublasDtrsmBatched");
    store(double{});
  } else {
    prep_solve_kernel<float><<<grid, 256, 0, s>>>(a, static_cast<float*>(p_->M.get()), static_cast<float*>(p_->X.get()));
    GDN_LAUNCH_CHECK();
    float const one = 1.f;
    cublas_check(cublasStrsmBatched(p_->handle, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                    CUBLAS_DIAG_UNIT, kBT, kBT, &one, static_cast<float const* const*>(p_->ptrM.get()),
                                    kBT, static_cast<float* const*>(p_->ptrX.get()), kBT, nb),
                 "cublasStrsmBatched");
    store(float{});
  }
}

}  // namespace gdn_cuda
