// Stage 3: A_inv = (I + A)^-1 per chunk, A strictly lower fp32 [B,T,HV,64].
//   16x16 forward substitution + fp32 block merges, in cuda/tril_inverse.cuh (shared with the fused kernels).
//   Output bf16 / fp16 / fp32 (run-time choice, Args::ainv); all 64 columns of every valid row are
//   written, the strict upper part exactly 0.
// Variants:
//   1 one 128-thread block per (chunk, value head); only the 10 lower 16x16 blocks of A are read
//     (float4 loads), masked to j < i < rows; rows past the chunk's end load as 0 (identity, not stored);
//     merges one output per thread with two scalar shared loads per FMA. H100, T=8192 HV=32: 84 us,
//     3.3x its memory floor: bound by shared-memory load instructions (~4600 per block).
//   2 (this) as 1, but the merges compute 4 rows of one column per thread (P rows as float4 broadcasts,
//     Q column values reused over the 4 rows: 0.5 loads per FMA instead of 2) and the substitution reads
//     the A rows as float4. H100: 74 us; ncu: L1/shared 77% busy -- the scalar shared stores of the
//     load phase (4-way bank conflicts) and the scalar reads of the store phase dominate.
//   3 (tried, reverted) as 2 with float4 shared stores in the load phase (only the groups up to the
//     diagonal block), no Ts zero-fill, float4 shared reads in the store phase: 88 us, slower than 2
//     (prediction was faster; cause not found within the device budget).
// Measured (H100, same shape): v2 73-75 us bf16 out (2.9x floor), 82-84 us fp32 out. See cuda/NOTES.md.
#include "tril_inverse.cuh"

namespace gdn_cuda {
namespace {

template <class OutT>
__global__ void __launch_bounds__(128) solve_tril_kernel(Args a) {
  __shared__ __align__(16) float As[kBT * kLdA];
  __shared__ __align__(16) float Ts[kBT * kLdA];
  block_time_begin(a.block_times);
  int const HV = static_cast<int>(a.d.HV);
  [[maybe_unused]] auto const [c, hv, hk] = chunk_tile(a);
  int const tid = threadIdx.x;
  float const* Ag = a.A + (c.row0 * HV + hv) * kBT;
  int64_t const rstride = static_cast<int64_t>(HV) * kBT;

  // load the lower blocks (16-float groups of row i: col < 16*(i/16 + 1)), masked to j < i < rows
  for (int idx = tid; idx < kBT * 16; idx += 128) {
    int const i = idx >> 4, q = (idx & 15) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (i < c.rows && q < i) v = *reinterpret_cast<float4 const*>(Ag + i * rstride + q);
    float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      As[i * kLdA + q + x] = (q + x < i) ? e[x] : 0.f;
      Ts[i * kLdA + q + x] = 0.f;
    }
  }
  __syncthreads();
  invert_unit_lower_64(As, Ts);
  store_ainv_rows<OutT>(Ts, static_cast<OutT*>(a.A_inv) + (c.row0 * HV + hv) * kBT, rstride, c.rows, 128);
  block_time_end(a.block_times);
}

}  // namespace

void solve_tril(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  unsigned const grid = static_cast<unsigned>(a.d.num_chunks * a.d.HV);
  dispatch_elem(a.ainv, [&](auto e) {
    using OutT = decltype(e);
    solve_tril_kernel<OutT><<<grid, 128, 0, s>>>(a);
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
