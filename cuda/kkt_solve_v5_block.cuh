// The work of one block of kkt_solve_fused variant 5 (one chunk and key head, looping over its value heads), shared
// by the kernel in kkt_solve_fused.cu and the probe kernel of cuda/inverse_probe.cu (which sets GDNV_PHASE to its
// cycle stamps and runs the SKIP ablations and merge products (kMul) of inverse_tc). Needs 128 threads and
// kkt_solve_v5_smem_bytes<E, K>() of dynamic shared memory.
#pragma once

#include "inverse_tc.cuh"

namespace gdn_cuda {

// Dynamic shared memory of a block: the k tile ([64][K + 8]), then the inverse's slots over it.
template <class E, int K>
constexpr std::size_t kkt_solve_v5_smem_bytes() {
  constexpr std::size_t ktile = sizeof(E) * kBT * (K + 8);
  return ktile > kInverseTcBytes ? ktile : kInverseTcBytes;
}

// One value head's A_inv from the slots (after inverse_tc) into device memory: `out` at column 0 of the chunk's row 0,
// rows `rstride` elements apart, rows at or past `rows` not written. This thread's four 16-byte pieces are loaded
// first (independent loads), then stored.
template <class E>
__device__ __forceinline__ void store_ainv_head(float const* sc, E* out, int64_t rstride, int rows) {
  int const r = ainv_piece_row(), q = ainv_piece_col8();
  float v[4][8];
#pragma unroll
  for (int x = 0; x < 4; ++x) ainv_piece(sc, x, v[x]);
#pragma unroll
  for (int x = 0; x < 4; ++x)
    if (16 * x + r < rows) store8<E, true>(out + 8 * q + (16 * x + r) * rstride, v[x]);
}

// SKIP: inverse_tc's bits, plus 8: no A_inv store, 16: every block's k tile is chunk 0's of key head 0 (16 KB that stay
// in L2: no k traffic from device memory) (the probe's ablations; 0 in the kernel). GATE: gate_tiles_probe's
// mode (the probe's gate ablations; 0, the library's gate, in the kernel).
template <class E, int K, int SKIP = 0, int kMul = kMulTf32x3, int GATE = 0>
__device__ __forceinline__ void kkt_solve_v5_block(Args const& a, unsigned char* smem) {
  constexpr int LDS = K + 8;
  E* ks = reinterpret_cast<E*>(smem);           // [64][LDS] k tile; dead after the Gram
  float* sc = reinterpret_cast<float*>(smem);   // the inverse's slots, over the k tile
  __shared__ __align__(16) float gb[2][2 * kBT];  // per value head g_cumsum, beta (GateStage), double-buffered

  int const H = static_cast<int>(a.d.H), HV = static_cast<int>(a.d.HV), G = HV / H;
  int const hk = static_cast<int>(blockIdx.x % H), tid = threadIdx.x;
  int64_t const chunk = blockIdx.x / H;
  ChunkDesc const c = a.chunks[chunk];
  int64_t const k_off = SKIP & 16 ? 0 : (c.row0 * H + hk) * K;
  TileCopy<E, kBT, K, 128>(tid).issue(ks, LDS, static_cast<E const*>(a.k) + k_off, a.d.H * K, c.rows);
  GateStage stage;
  stage.issue(a, c, chunk, hk * G, gb[0], tid);  // the first head's gate values with the k tile
  cp_async_commit();
  cp_async_wait<0>();
  stage.publish(a, c, gb[0], tid);
  __syncthreads();
  GDNV_PHASE();  // the k tile and the first head's gates landed
  float gram[3][2][4];
  gram_tiles<E, K>(ks, LDS, gram);

  unsigned const keep = gate_keep_mask(c.rows);
  int64_t const rstride = static_cast<int64_t>(HV) * kBT;
  for (int gi = 0; gi < G; ++gi) {
    int const hv = hk * G + gi, buf = gi & 1;
    if (gi > 0) {  // this head's gate values, copied during the last head
      cp_async_wait<0>();
      stage.publish(a, c, gb[buf], tid);
    }
    __syncthreads();  // the slots' previous readers (the Gram's k tile, the last head's store) are done; gb[buf] landed
    GDNV_PHASE();     // a head starts
    if (gi + 1 < G) {  // the next head's, into the buffer the last head read
      stage.issue(a, c, chunk, hv + 1, gb[buf ^ 1], tid);
      cp_async_commit();
    }
    float const* const gs = gb[buf];
    float const* const bs = gb[buf] + kBT;
    if constexpr (GATE != 0)
      inverse_tc_gate_probe<GATE, kMul>(gram, gs, bs, keep, sc);
    else
      inverse_tc<SKIP & 7, kMul>(gram, gs, bs, keep, sc);
    if constexpr (!(SKIP & 8)) store_ainv_head<E>(sc, static_cast<E*>(a.A_inv) + (c.row0 * HV + hv) * kBT, rstride, c.rows);
    GDNV_PHASE();  // thread 0's part of the store issued
  }
}

}  // namespace gdn_cuda
