// Stage 4: u = A_inv (beta v), w = A_inv (beta e^gc k) per chunk (gdn-algorithm.md 2.5).
// The beta-scaled operands are rounded to the input dtype before the product, as FLA does; products
// are mma.sync m16n8k16 with fp32 accumulation; u, w stored in the input dtype.
// A_inv bf16/fp16 (serving): used as is. A_inv fp32 with 16-bit inputs ("unfused-fp32inv"): split
// into hi + lo 16-bit tiles and multiplied twice (A_inv error ~2^-16 instead of 2^-9).
// Args::precise_uv with 16-bit inputs ("precise"): beta v kept as an hi + lo pair of 16-bit tiles
// (the A_inv fragments are reused for both products) and u stored fp32. Of all the roundings of the
// bf16 pipeline, beta v, u, v_new and the score matrix are the ones that set o's error (measured with
// the CPU model: keeping these four in fp32 takes o from 2.0x to 1.01x the bf16 floor on the `normal`
// family; w, h, A_inv and beta e^g k barely matter), so only those are made precise.
// Variants:
//   1 (this) one 256-thread block per (chunk, value head); warp (m, half) computes 16 rows x V/2 cols
//     of u then of w; the k range stops at the warp's diagonal block (A_inv is unit lower, strict upper
//     exactly 0 by contract of solve_tril), i.e. 10 of 16 k-tiles.
// Measured (H100, B=1 T=8192 H=16 HV=32 K=V=128): 131-134 us with bf16 A_inv (1.15x the memory floor),
// 158-162 us with the fp32 split A_inv (1.26x). See cuda/NOTES.md.
#include "common.cuh"

namespace gdn_cuda {
namespace {

template <class E, class AT, class UT, int K, int V>
__global__ void __launch_bounds__(256) wu_kernel(Args a) {
  static_assert(K == V, "K == V");
  constexpr bool SPLIT = !std::is_same_v<AT, E>;  // fp32 A_inv with 16-bit inputs
  constexpr bool PRE = !std::is_same_v<UT, E>;    // precise_uv: beta v as hi + lo, u fp32
  constexpr int LDI = kBT + 8, LDK = K + 8, LDV = V + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  E* Ai = reinterpret_cast<E*>(smem);                        // [64][LDI] (hi when SPLIT)
  E* Ai_lo = Ai + kBT * LDI;                                 // [64][LDI] (only when SPLIT)
  E* Vb = Ai + (SPLIT ? 2 : 1) * kBT * LDI;                  // [64][LDV] (hi when PRE)
  E* Vb_lo = Vb + kBT * LDV;                                 // [64][LDV] (only when PRE)
  E* Kb = Vb + (PRE ? 2 : 1) * kBT * LDV;                    // [64][LDK]
  __shared__ float bs[kBT], es[kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  ChunkTile const tile = chunk_tile(a);  // named members: the store lambda below captures them
  ChunkDesc const c = tile.c;
  int const hv = tile.hv, hk = tile.hk;
  int const tid = threadIdx.x, warp = tid >> 5;
  int64_t const rowAi = static_cast<int64_t>(HV) * kBT;

  load_gate_beta(a, c, hv, nullptr, bs, es);
  AT const* Ag = static_cast<AT const*>(a.A_inv) + (c.row0 * HV + hv) * kBT;
  if constexpr (!SPLIT) {
    load_tile_async<E>(Ai, LDI, Ag, rowAi, kBT, c.rows, kBT, tid, 256);
    cp_async_commit();
  } else {
    for (int idx = tid; idx < kBT * kBT / 4; idx += 256) {
      int const i = idx / (kBT / 4), q = (idx % (kBT / 4)) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (i < c.rows) v = *reinterpret_cast<float4 const*>(Ag + i * rowAi + q);
      float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int x = 0; x < 4; ++x) split_f<E>(e[x], Ai[i * LDI + q + x], Ai_lo[i * LDI + q + x]);
    }
  }
  __syncthreads();  // bs, es
  // beta v and beta e^gc k, rounded to E
  {
    constexpr int per = 16 / sizeof(E);
    E const* vg = static_cast<E const*>(a.v) + (c.row0 * HV + hv) * V;
    E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
    for (int idx = tid; idx < kBT * (V / per); idx += 256) {
      int const i = idx / (V / per), q = (idx % (V / per)) * per;
      alignas(16) E tv[per], tk[per], tl[per];
      if (i < c.rows) {
        *reinterpret_cast<uint4*>(tv) = *reinterpret_cast<uint4 const*>(vg + i * static_cast<int64_t>(HV) * V + q);
        *reinterpret_cast<uint4*>(tk) = *reinterpret_cast<uint4 const*>(kg + i * a.d.H * K + q);
#pragma unroll
        for (int x = 0; x < per; ++x) {
          if constexpr (PRE)
            split_f<E>(to_f(tv[x]) * bs[i], tv[x], tl[x]);
          else
            tv[x] = from_f<E>(to_f(tv[x]) * bs[i]);
          tk[x] = from_f<E>(to_f(tk[x]) * es[i]);
        }
      } else {
#pragma unroll
        for (int x = 0; x < per; ++x) tv[x] = tk[x] = tl[x] = from_f<E>(0.f);
      }
      *reinterpret_cast<uint4*>(Vb + i * LDV + q) = *reinterpret_cast<uint4 const*>(tv);
      if constexpr (PRE) *reinterpret_cast<uint4*>(Vb_lo + i * LDV + q) = *reinterpret_cast<uint4 const*>(tl);
      *reinterpret_cast<uint4*>(Kb + i * LDK + q) = *reinterpret_cast<uint4 const*>(tk);
    }
  }
  if constexpr (!SPLIT) cp_async_wait<0>();
  __syncthreads();

  constexpr int NT = V / 16;  // 8-col tiles per warp (V/2 columns)
  int const mrow = warp & 3, half = warp >> 2;
  int const kend = 16 * (mrow + 1);
#pragma unroll
  for (int which = 0; which < 2; ++which) {  // 0: u, 1: w
    E const* Bt = which == 0 ? Vb : Kb;
    int const ldb = which == 0 ? LDV : LDK;
    float acc[1][NT][4];
    zero_acc(acc);
    if (PRE && which == 0)  // u = A_inv (beta v)_hi + A_inv (beta v)_lo, A fragments loaded once
      warp_mma<E, true, false, 1, NT, true>(acc, Ai, LDI, 16 * mrow, Vb, LDV, half * (V / 2), 0, kend, Vb_lo);
    else
      warp_mma<E, true, false, 1, NT>(acc, Ai, LDI, 16 * mrow, Bt, ldb, half * (V / 2), 0, kend);
    if constexpr (SPLIT) warp_mma<E, true, false, 1, NT>(acc, Ai_lo, LDI, 16 * mrow, Bt, ldb, half * (V / 2), 0, kend);
    int64_t const at = (c.row0 * HV + hv) * V + half * (V / 2), rstride = static_cast<int64_t>(HV) * V;
    if (which == 0)
      store_acc_rows<UT>(acc, static_cast<UT*>(a.u) + at, rstride, 16 * mrow, c.rows);
    else
      store_acc_rows<E>(acc, static_cast<E*>(a.w) + at, rstride, 16 * mrow, c.rows);
  }
  block_time_end(a.block_times);
}

template <class E, class AT, int K>
void launch_wu(Args const& a, Stream s) {
  constexpr bool SPLIT = !std::is_same_v<AT, E>;
  auto launch = [&](auto ut) {
    using UT = decltype(ut);
    constexpr bool PRE = !std::is_same_v<UT, E>;
    std::size_t const bytes = sizeof(E) * ((SPLIT ? 2 : 1) * kBT * (kBT + 8) + (PRE ? 3 : 2) * kBT * (K + 8));
    ensure_smem<wu_kernel<E, AT, UT, K, K>>(bytes);
    wu_kernel<E, AT, UT, K, K><<<static_cast<unsigned>(a.d.num_chunks * a.d.HV), 256, bytes, s>>>(a);
  };
  if constexpr (std::is_same_v<E, float>)
    launch(float{});
  else if (a.precise_uv)
    launch(float{});
  else
    launch(E{});
}

}  // namespace

void wu(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (std::is_same_v<E, float>) {
      if (a.d.K == 128) launch_wu<float, float, 128>(a, s); else launch_wu<float, float, 64>(a, s);
    } else {
      if (a.ainv == ElemType::f32) {
        if (a.d.K == 128) launch_wu<E, float, 128>(a, s); else launch_wu<E, float, 64>(a, s);
      } else {
        if (a.d.K == 128) launch_wu<E, E, 128>(a, s); else launch_wu<E, E, 64>(a, s);
      }
    }
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
