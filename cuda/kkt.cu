// Stage 2: scaled KKT. A[i,j] = beta_i exp(gc_i - gc_j) k_i.k_j for j < i < rows, else exactly 0; fp32 out.
// The gate is selected under the mask before it is used (upper / out-of-range pairs never form exp of a
// positive argument into a product). GQA by index: value head hv reads key head hv / G.
// Variants:
//   1 (this) one 128-thread block per (chunk, value head), 1-D grid with the value head fastest so the
//     G heads sharing a key head hit the same k tile in L2; k tile via cp.async into padded shared
//     memory; bf16/fp16 mma.sync m16n8k16 with ldmatrix (fp32 inputs: fp32 FMA); each warp owns 16 rows
//     and skips the 16x16 tiles above the diagonal (10 of 16 tiles computed).
// Measured (H100 SXM, B=1 T=8192 H=16 HV=32 K=128 bf16, gdnv_bench_stages): 57-60 us, 1.65x the memory
// floor (read k, g, beta; write fp32 A = 64 MB dominates). See cuda/NOTES.md.
#include "common.cuh"

namespace gdn_cuda {
namespace {

template <class E, int K>
__global__ void __launch_bounds__(128) kkt_kernel(Args a) {
  constexpr int LDS = K + 8;
  __shared__ __align__(16) E ks[kBT * LDS];
  __shared__ float gs[kBT], bs[kBT];
  block_time_begin(a.block_times);
  int const HV = static_cast<int>(a.d.HV);
  auto const [c, hv, hk] = chunk_tile(a);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
  load_tile_async<E>(ks, LDS, kg, a.d.H * K, kBT, c.rows, K, tid, 128);
  cp_async_commit();
  load_gate_beta(a, c, hv, gs, bs);
  cp_async_wait<0>();
  __syncthreads();

  float acc[4][1][2][4];
#pragma unroll
  for (int jp = 0; jp < 4; ++jp) zero_acc(acc[jp]);
#pragma unroll
  for (int jp = 0; jp < 4; ++jp)
    if (jp <= warp) warp_mma<E, true, true, 1, 2>(acc[jp], ks, LDS, 16 * warp, ks, LDS, 16 * jp, 0, K);

  int const g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const i = 16 * warp + g + 8 * hh;
    if (i >= c.rows) continue;
    float const gi = gs[i], bi = bs[i];
    float* out = a.A + ((c.row0 + i) * HV + hv) * kBT;
#pragma unroll
    for (int jp = 0; jp < 4; ++jp)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        int const j = 16 * jp + 8 * jj + 2 * t;
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          bool const keep = (j + e) < i;  // strictly lower; i < rows implies j valid
          float const arg = keep ? gi - gs[j + e] : 0.f;  // select before exp
          v[e] = keep ? bi * expf(arg) * acc[jp][0][jj][2 * hh + e] : 0.f;
        }
        *reinterpret_cast<float2*>(out + j) = make_float2(v[0], v[1]);
      }
  }
  block_time_end(a.block_times);
}

}  // namespace

void kkt(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  unsigned const grid = static_cast<unsigned>(a.d.num_chunks * a.d.HV);
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if (a.d.K == 128)
      kkt_kernel<E, 128><<<grid, 128, 0, s>>>(a);
    else
      kkt_kernel<E, 64><<<grid, 128, 0, s>>>(a);
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
