// Optional pre-stage: x <- x / sqrt(sum x^2 + 1e-6) per head vector (q and k with qk_l2norm), fp32 math,
// result stored in the input dtype (as FLA's chunk path does). One warp per row.
#include "common.cuh"

namespace gdn_cuda {
namespace {

template <class E>
__global__ void l2norm_kernel(E* __restrict__ out, E const* __restrict__ in, int64_t rows, int dim) {
  int64_t const row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  int const lane = threadIdx.x & 31;
  E const* x = in + row * dim;
  float ss = 0.f;
  for (int i = lane; i < dim; i += 32) {
    float const v = to_f(x[i]);
    ss = fmaf(v, v, ss);
  }
#pragma unroll
  for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  float const inv = 1.f / sqrtf(ss + 1e-6f);
  for (int i = lane; i < dim; i += 32) out[row * dim + i] = from_f<E>(to_f(x[i]) * inv);
}

}  // namespace

void l2norm(void* out, void const* in, ElemType t, int64_t rows, int64_t dim, Stream s) {
  if (rows == 0) return;
  dispatch_elem(t, [&](auto e) {
    using E = decltype(e);
    l2norm_kernel<E><<<static_cast<unsigned>(ceil_div(rows, 8)), 256, 0, s>>>(
        static_cast<E*>(out), static_cast<E const*>(in), rows, static_cast<int>(dim));
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
