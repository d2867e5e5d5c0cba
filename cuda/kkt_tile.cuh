// The gated, beta-scaled, strictly lower K K^T of one chunk, from a k tile in shared memory into an fp32
// tile in shared memory, for the fused kernels. Same fragments and the same order of operations as
// kkt.cu (warp_mma over the whole K range, then beta_i * exp(gc_i - gc_j) * dot), so A is bit-identical
// to the unfused stage's and so is every A_inv computed from it.
#pragma once

#include "tril_inverse.cuh"

namespace gdn_cuda {

// 128 threads (4 warps). ks: [64][lds] rows past `rows` zero; gs, bs: [64] (0 past `rows`).
// Writes As[i][j] (kLdA stride) for every row i and every column j of the 16x16 blocks at or left of
// row i's diagonal block: beta_i exp(gs_i - gs_j) k_i.k_j for j < i < rows, else exactly 0. Warp w
// computes block row w (the tiles above the diagonal are skipped: 10 of 16). No barrier inside.
template <class E, int K>
__device__ __forceinline__ void gated_kkt_to_smem(E const* ks, int lds, float const* gs, float const* bs, int rows,
                                                  float* As) {
  int const warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float acc[4][1][2][4];
#pragma unroll
  for (int jp = 0; jp < 4; ++jp) zero_acc(acc[jp]);
#pragma unroll
  for (int jp = 0; jp < 4; ++jp)
    if (jp <= warp) warp_mma<E, true, true, 1, 2>(acc[jp], ks, lds, 16 * warp, ks, lds, 16 * jp, 0, K);

  int const g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const i = 16 * warp + g + 8 * hh;
    bool const row_ok = i < rows;
    float const gi = gs[i], bi = bs[i];
#pragma unroll
    for (int jp = 0; jp < 4; ++jp) {
      if (jp > warp) continue;
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        int const j = 16 * jp + 8 * jj + 2 * t;
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          bool const keep = row_ok && (j + e) < i;  // strictly lower; i < rows implies j valid
          float const arg = keep ? gi - gs[j + e] : 0.f;  // select before exp
          v[e] = keep ? bi * expf(arg) * acc[jp][0][jj][2 * hh + e] : 0.f;
        }
        *reinterpret_cast<float2*>(As + i * kLdA + j) = make_float2(v[0], v[1]);
      }
    }
  }
}

}  // namespace gdn_cuda
