// The work of one block of kkt_solve_fused variant 5 (one chunk and key head, looping over its value heads), shared
// by the kernel in kkt_solve_fused.cu and the probe kernel of cuda/inverse_probe.cu (which sets GDNV_PHASE to its
// cycle stamps and runs the SKIP / kShort ablations of inverse_tc). Needs 128 threads and
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

// A 4-byte cp.async (kStaged's copies; here until a library kernel needs one).
__device__ __forceinline__ void cp_async4(void* smem, void const* gmem) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem));
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

// SKIP: inverse_tc's bits, plus 8: no A_inv store (the probe's ablations; 0 in the kernel). GATE: gate_tiles_probe's
// mode (the probe's gate ablations; 0, the library's gate, in the kernel). kStaged (a probe candidate; false in the
// kernel): g_cumsum and beta of the block's G value heads copied by cp.async with the k tile into
// [2][G][64] floats after kkt_solve_v5_smem_bytes of the dynamic shared memory (fp32 beta only), and the gate reading
// them there, instead of gate_beta_row's register loads by threads 0..63 (the ablations put ~13 us of 63 there).
template <class E, int K, int SKIP = 0, bool kShort = false, int GATE = 0, bool kStaged = false>
__device__ __forceinline__ void kkt_solve_v5_block(Args const& a, unsigned char* smem) {
  constexpr int LDS = K + 8;
  E* ks = reinterpret_cast<E*>(smem);           // [64][LDS] k tile; dead after the Gram
  float* sc = reinterpret_cast<float*>(smem);   // the inverse's slots, over the k tile
  __shared__ float gs[2][kBT], bs[2][kBT];      // per value head, double-buffered across heads

  int const H = static_cast<int>(a.d.H), HV = static_cast<int>(a.d.HV), G = HV / H;
  int const hk = static_cast<int>(blockIdx.x % H), tid = threadIdx.x;
  ChunkDesc const c = a.chunks[blockIdx.x / H];
  TileCopy<E, kBT, K, 128>(tid).issue(ks, LDS, static_cast<E const*>(a.k) + (c.row0 * H + hk) * K, a.d.H * K, c.rows);
  float* const stg = reinterpret_cast<float*>(smem + kkt_solve_v5_smem_bytes<E, K>());
  if constexpr (kStaged) {
    for (int x = tid; x < 2 * G * kBT; x += 128) {
      int const arr = x / (G * kBT), h = (x / kBT) % G, r = x % kBT;
      float const* src = arr == 0 ? a.g_cumsum : static_cast<float const*>(a.beta);
      if (r < c.rows)
        cp_async4(stg + x, src + (c.row0 + r) * HV + hk * G + h);
      else
        stg[x] = 0.f;
    }
  }
  cp_async_commit();
  float3 nxt = make_float3(0.f, 0.f, 0.f);  // threads < 64: the next head's row values, one head ahead
  if (!kStaged && tid < kBT) {
    float3 const h0 = gate_beta_row(a, c, hk * G);
    gs[0][tid] = h0.x, bs[0][tid] = h0.y;
    if (G > 1) nxt = gate_beta_row(a, c, hk * G + 1);
  }
  cp_async_wait<0>();
  __syncthreads();
  GDNV_PHASE();  // the k tile and the first head's gates landed
  float gram[3][2][4];
  gram_tiles<E, K>(ks, LDS, gram);

  unsigned const keep = gate_keep_mask(c.rows);
  int64_t const rstride = static_cast<int64_t>(HV) * kBT;
  for (int gi = 0; gi < G; ++gi) {
    int const hv = hk * G + gi, buf = gi & 1;
    __syncthreads();  // the slots' previous readers (the Gram's k tile, the last head's store) are done
    GDNV_PHASE();     // a head starts
    if (!kStaged && tid < kBT && gi + 1 < G) {
      gs[buf ^ 1][tid] = nxt.x, bs[buf ^ 1][tid] = nxt.y;  // read from the next head on
      if (gi + 2 < G) nxt = gate_beta_row(a, c, hv + 2);
    }
    if constexpr (kStaged)
      inverse_tc<SKIP & 7, kShort>(gram, stg + gi * kBT, stg + (G + gi) * kBT, keep, sc);
    else if constexpr (GATE != 0)
      inverse_tc_gate_probe<GATE, kShort>(gram, gs[buf], bs[buf], keep, sc);
    else
      inverse_tc<SKIP & 7, kShort>(gram, gs[buf], bs[buf], keep, sc);
    if constexpr (!(SKIP & 8)) store_ainv_head<E>(sc, static_cast<E*>(a.A_inv) + (c.row0 * HV + hv) * kBT, rstride, c.rows);
    GDNV_PHASE();  // thread 0's part of the store issued
  }
}

}  // namespace gdn_cuda
