// One step of the state recurrence as chunk_state variant 2 runs it, in pieces shared by both variants of
// state_output_fused (whose bytes are chunk_state 2's). chunk_state 2 keeps its own copy of these lines (the
// SPLIT and UT parameters here cover it): calling these from it (tree cdf332d, H200, warm, same bytes: 89/89
// GPU tests) left the bf16-operand instances as fast (218-220 us at T = 8192, 846 at T = 32768) but made the
// split-operand ones 12% slower (277 against 247 us; ptxas: 168 -> 132 registers), so it was reverted.
// Layout: one block per (sequence, value head, BV = 32 columns); warp w keeps its block of the state S
// (K x BV, fp32) in registers as mma accumulators: rows 16 sm.., columns sc0 + 8j (j < SNT), and owns the
// 16 x 16 block of W*S at rows 16 dm.., columns dc0... Shared tiles have a row stride ldu (elements).
#pragma once

#include "common.cuh"

namespace gdn_cuda {

// S from the initial state (fp32, row stride V, pointing at column 0 of this block's BV columns), or zeros.
template <int SNT>
__device__ __forceinline__ void load_state_block(float (&S)[1][SNT][4], float const* h0, int V, int sm, int sc0) {
  if (!h0) {
    zero_acc(S);
    return;
  }
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < SNT; ++j)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * sm + g + 8 * hh, col = sc0 + 8 * j + 2 * t;
      float2 const v = *reinterpret_cast<float2 const*>(h0 + r * V + col);
      S[0][j][2 * hh] = v.x, S[0][j][2 * hh + 1] = v.y;
    }
}

// The final state, fp32 (fs as h0 above).
template <int SNT>
__device__ __forceinline__ void store_state_block(float const (&S)[1][SNT][4], float* fs, int V, int sm, int sc0) {
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < SNT; ++j)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * sm + g + 8 * hh, col = sc0 + 8 * j + 2 * t;
      *reinterpret_cast<float2*>(fs + r * V + col) = make_float2(S[0][j][2 * hh], S[0][j][2 * hh + 1]);
    }
}

// The snapshot the step multiplies W by: Sb = round_E(S) (the h value); with SPLIT also Sl = S - Sb.
template <class E, bool SPLIT, int SNT>
__device__ __forceinline__ void snapshot_state(float const (&S)[1][SNT][4], E* Sb, E* Sl, int ldu, int sm, int sc0) {
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < SNT; ++j)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * sm + g + 8 * hh, col = sc0 + 8 * j + 2 * t;
      float const s0 = S[0][j][2 * hh], s1 = S[0][j][2 * hh + 1];
      store2<E>(Sb + r * ldu + col, s0, s1);
      if constexpr (SPLIT) store2<E>(Sl + r * ldu + col, s0 - to_f(from_f<E>(s0)), s1 - to_f(from_f<E>(s1)));
    }
}

// From WS = W Sb (this warp's 16 x 16 block, accumulator layout) and the u tile Us: v_new = u - W S into Vs
// (UT) and the gated delta e^{gl - gc_r} v_new into Db (E), rows past the chunk's end 0 in Db; gs holds the
// chunk's g_cumsum (0 past its end), gl = gs[rows - 1].
template <class E, class UT>
__device__ __forceinline__ void delta_to_smem(float const (&WS)[1][2][4], UT const* Us, UT* Vs, E* Db, int ldu,
                                              float const* gs, float gl, int rows, int dm, int dc0) {
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * dm + g + 8 * hh;
    bool const ok = r < rows;
    float const decay = expf(ok ? gl - gs[r] : 0.f);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      int const col = dc0 + 8 * j + 2 * t;
      float const d0 = to_f(Us[r * ldu + col]) - WS[0][j][2 * hh];
      float const d1 = to_f(Us[r * ldu + col + 1]) - WS[0][j][2 * hh + 1];
      store2<UT>(Vs + r * ldu + col, d0, d1);
      store2<E>(Db + r * ldu + col, ok ? d0 * decay : 0.f, ok ? d1 * decay : 0.f);
    }
  }
}

}  // namespace gdn_cuda
