// The gated, beta-scaled, strictly lower K K^T of one chunk, from a k tile in shared memory into an fp32
// tile in shared memory, for the fused kernels. Same fragments and the same order of operations as
// kkt.cu (warp_mma over the whole K range, then beta_i * exp(gc_i - gc_j) * dot), so A is bit-identical
// to the unfused stage's and so is every A_inv computed from it.
#pragma once

#include "tril_inverse.cuh"

namespace gdn_cuda {

// Warps 0-3 compute (a block may have more warps; the others return at once). ks: [64][lds] rows past
// `rows` zero; gs, bs: [64] (0 past `rows`). Writes As[i][j] (kLdA stride) for every 16x16 tile on or
// below the diagonal: beta_i exp(gs_i - gs_j) k_i.k_j for j < i < rows, else exactly 0. The ten tiles
// are dealt 3, 3, 2, 2 to the warps (a warp per block row would give warp 3 four tiles and warp 0 one,
// and the other warps would wait for warp 3 at the next barrier). No barrier inside.
template <class E, int K>
__device__ __forceinline__ void gated_kkt_to_smem(E const* ks, int lds, float const* gs, float const* bs, int rows,
                                                  float* As) {
  int const warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (warp >= 4) return;
  // a warp's tiles, one byte each (4 * block row + block column; 0xFF: none): {0, 15, 12}, {4, 5, 13},
  // {8, 9}, {10, 14}. Packed in a register: a table indexed by the warp would live in local memory.
  unsigned const tiles = warp == 0 ? 0x0C0F00u : warp == 1 ? 0x0D0504u : warp == 2 ? 0xFF0908u : 0xFF0E0Au;
  int const g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int n = 0; n < 3; ++n) {
    int const tile = static_cast<int>((tiles >> (8 * n)) & 0xFFu);
    if (tile == 0xFF) break;
    int const rb = tile >> 2, cb = tile & 3;
    float acc[1][2][4];
    zero_acc(acc);
    warp_mma<E, true, true, 1, 2>(acc, ks, lds, 16 * rb, ks, lds, 16 * cb, 0, K);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const i = 16 * rb + g + 8 * hh;
      bool const row_ok = i < rows;
      float const gi = gs[i], bi = bs[i];
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        int const j = 16 * cb + 8 * jj + 2 * t;
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          bool const keep = row_ok && (j + e) < i;  // strictly lower; i < rows implies j valid
          float const arg = keep ? gi - gs[j + e] : 0.f;  // select before exp
          v[e] = keep ? bi * expf(arg) * acc[0][jj][2 * hh + e] : 0.f;
        }
        *reinterpret_cast<float2*>(As + i * kLdA + j) = make_float2(v[0], v[1]);
      }
    }
  }
}

}  // namespace gdn_cuda
