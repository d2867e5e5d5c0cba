// Stage 6: o = scale * ( diag(e^{gc}) Q h_c + round_E((Q K^T) .* Gamma .* M) v_new_c ), M lower incl.
// the diagonal and both rows valid, the gate selected under the mask before exp (gdn-algorithm.md 2.7).
// The score matrix is rounded to the input dtype before its product, as FLA does; o stored in the
// input dtype (q, k, v share one dtype here).
// Variants:
//   1 one 128-thread block per (chunk, value head, 64-column V tile); q, k, h tile, v_new tile
//     by cp.async; warp w owns 16 rows; Q K^T computes only the tiles on or below the diagonal, and the
//     score product stops at the warp's diagonal tile; the score tile goes through shared memory
//     warp-privately (no block barrier between the two products). H100, T=8192 HV=32: 178 us, 1.55x
//     its floor; q, k read and Q K^T computed once per V tile (twice for V=128).
//   2 (default) one 256-thread block per (chunk, value head) covering all of V: warp (m, half) owns 16
//     rows x V/2 columns of o and computes half of its rows' score tiles; the score tile is shared
//     through shared memory (one block barrier); q, k loaded and Q K^T computed once.
// Measured (H100, B=1 T=8192 H=16 HV=32 K=V=128): v1 174-180 us (1.55x floor), v2 138-142 us (1.21x).
#include "common.cuh"

namespace gdn_cuda {
namespace {

template <class E, int K, int V>
__global__ void __launch_bounds__(128) chunk_output_kernel(Args a) {
  constexpr int BV = 64;
  constexpr int LDK = K + 8, LDV = BV + 8, LDP = kBT + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  E* Qs = reinterpret_cast<E*>(smem);
  E* Ks = Qs + kBT * LDK;
  E* Hs = Ks + kBT * LDK;  // [K][LDV]
  E* Vn = Hs + K * LDV;    // [64][LDV]
  E* Pb = Vn + kBT * LDV;  // [64][LDP]
  __shared__ float gs[kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  constexpr int nvt = V / BV;
  int const vt = blockIdx.x % nvt;
  int const hv = (blockIdx.x / nvt) % HV;
  ChunkDesc const c = a.chunks[blockIdx.x / (nvt * HV)];
  int const hk = hv / static_cast<int>(HV / a.d.H);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3;

  E const* qg = static_cast<E const*>(a.q) + (c.row0 * a.d.H + hk) * K;
  E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
  E const* hgp = static_cast<E const*>(a.h) + (c.h_row * HV + hv) * K * V + vt * BV;
  E const* vg = static_cast<E const*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV;
  load_tile_async<E>(Qs, LDK, qg, a.d.H * K, kBT, c.rows, K, tid, 128);
  load_tile_async<E>(Ks, LDK, kg, a.d.H * K, kBT, c.rows, K, tid, 128);
  load_tile_async<E>(Hs, LDV, hgp, V, K, K, BV, tid, 128);
  load_tile_async<E>(Vn, LDV, vg, static_cast<int64_t>(HV) * V, kBT, c.rows, BV, tid, 128);
  cp_async_commit();
  if (tid < kBT) gs[tid] = tid < c.rows ? a.g_cumsum[(c.row0 + tid) * HV + hv] : 0.f;
  cp_async_wait<0>();
  __syncthreads();

  // scores, lower tiles only
  float P[4][1][2][4];
#pragma unroll
  for (int jp = 0; jp < 4; ++jp) zero_acc(P[jp]);
#pragma unroll
  for (int jp = 0; jp < 4; ++jp)
    if (jp <= warp) warp_mma<E, true, true, 1, 2>(P[jp], Qs, LDK, 16 * warp, Ks, LDK, 16 * jp, 0, K);
  // inter-chunk part
  float O[1][BV / 8][4];
  zero_acc(O);
  warp_mma<E, true, false, 1, BV / 8>(O, Qs, LDK, 16 * warp, Hs, LDV, 0, 0, K);

  // gate + mask the scores, round to E into the warp's rows of Pb; gate the inter part
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * warp + g + 8 * hh;
    bool const rok = r < c.rows;
    float const gr = gs[r];
#pragma unroll
    for (int jp = 0; jp < 4; ++jp)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        int const j = 16 * jp + 8 * jj + 2 * t;
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          bool const keep = rok && (j + e) <= r;
          v[e] = keep ? P[jp][0][jj][2 * hh + e] * expf(keep ? gr - gs[j + e] : 0.f) : 0.f;
        }
        store2<E>(Pb + r * LDP + j, v[0], v[1]);
      }
    float const er = expf(rok ? gr : 0.f);
#pragma unroll
    for (int j = 0; j < BV / 8; ++j) O[0][j][2 * hh] *= er, O[0][j][2 * hh + 1] *= er;
  }
  __syncwarp();
  warp_mma<E, true, false, 1, BV / 8>(O, Pb, LDP, 16 * warp, Vn, LDV, 0, 0, 16 * (warp + 1));

  E* og = static_cast<E*>(a.o) + (c.row0 * HV + hv) * V + vt * BV;
  float const sc = a.scale;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * warp + g + 8 * hh;
    if (r >= c.rows) continue;
#pragma unroll
    for (int j = 0; j < BV / 8; ++j)
      store2<E>(og + static_cast<int64_t>(r) * HV * V + 8 * j + 2 * t, sc * O[0][j][2 * hh], sc * O[0][j][2 * hh + 1]);
  }
  block_time_end(a.block_times);
}

template <class E, int K>
void launch_output(Args const& a, Stream s) {
  constexpr int BV = 64;
  std::size_t const bytes = sizeof(E) * (2 * kBT * (K + 8) + K * (BV + 8) + kBT * (BV + 8) + kBT * (kBT + 8));
  ensure_smem<chunk_output_kernel<E, K, K>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.num_chunks * a.d.HV * (K / BV));
  chunk_output_kernel<E, K, K><<<grid, 128, bytes, s>>>(a);
}

// UT: v_new's dtype (E, or float with Args::precise_uv: v_new and the score tile then enter the
// product as hi + lo 16-bit pairs, P V = Ph Vh + Ph Vl + Pl Vh, the lo x lo term ~2^-16 below).
template <class E, class UT, int K, int V>
__global__ void __launch_bounds__(256) chunk_output_v2_kernel(Args a) {
  static_assert(K == V, "v_new's lo tile reuses the K tile");
  constexpr bool PRE = !std::is_same_v<UT, E>;
  constexpr int LDK = K + 8, LDV = V + 8, LDP = kBT + 8;
  constexpr int ONT = V / 16;  // 8-col tiles of o per warp (V/2 columns)
  extern __shared__ __align__(16) unsigned char smem[];
  E* Qs = reinterpret_cast<E*>(smem);
  E* Ks = Qs + kBT * LDK;
  E* Hs = Ks + kBT * LDK;  // [K][LDV]
  E* Vn = Hs + K * LDV;    // [64][LDV]
  E* Pb = Vn + kBT * LDV;  // [64][LDP] (hi when PRE)
  E* Pl = Pb + kBT * LDP;  // [64][LDP] lo (PRE)
  E* Vl = Ks;              // [64][LDV] v_new lo (PRE), written once the scores are done with Ks
  __shared__ float gs[kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  auto const [c, hv, hk] = chunk_tile(a);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3;
  int const m = warp & 3, nh = warp >> 2;

  E const* qg = static_cast<E const*>(a.q) + (c.row0 * a.d.H + hk) * K;
  E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
  E const* hgp = static_cast<E const*>(a.h) + (c.h_row * HV + hv) * K * V;
  UT const* vg = static_cast<UT const*>(a.v_new) + (c.row0 * HV + hv) * V;
  load_tile_async<E>(Qs, LDK, qg, a.d.H * K, kBT, c.rows, K, tid, 256);
  load_tile_async<E>(Ks, LDK, kg, a.d.H * K, kBT, c.rows, K, tid, 256);
  cp_async_commit();
  load_tile_async<E>(Hs, LDV, hgp, V, K, K, V, tid, 256);
  // PRE: the fp32 v_new goes through registers (split after the scores, into Vn and Vl)
  constexpr int VREGS = PRE ? kBT * V / 4 / 256 : 1;  // float4 pieces per thread
  float4 vr[VREGS];
  if constexpr (PRE) {
#pragma unroll
    for (int x = 0; x < VREGS; ++x) {
      int const idx = tid + 256 * x, r = idx / (V / 4), q = (idx % (V / 4)) * 4;
      vr[x] = r < c.rows ? *reinterpret_cast<float4 const*>(vg + static_cast<int64_t>(r) * HV * V + q)
                         : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  } else {
    load_tile_async<E>(Vn, LDV, reinterpret_cast<E const*>(vg), static_cast<int64_t>(HV) * V, kBT, c.rows, V, tid, 256);
  }
  cp_async_commit();
  if (tid < kBT) gs[tid] = tid < c.rows ? a.g_cumsum[(c.row0 + tid) * HV + hv] : 0.f;
  cp_async_wait<1>();
  __syncthreads();

  // this warp's score tiles: jp = 2*nh, 2*nh+1 (16 columns each), only those on/below the diagonal
  float P[2][1][2][4];
  zero_acc(P[0]);
  zero_acc(P[1]);
#pragma unroll
  for (int x = 0; x < 2; ++x) {
    int const jp = 2 * nh + x;
    if (jp <= m) warp_mma<E, true, true, 1, 2>(P[x], Qs, LDK, 16 * m, Ks, LDK, 16 * jp, 0, K);
  }
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * m + g + 8 * hh;
    bool const rok = r < c.rows;
    float const gr = gs[r];
#pragma unroll
    for (int x = 0; x < 2; ++x)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        int const j = 16 * (2 * nh + x) + 8 * jj + 2 * t;
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          bool const keep = rok && (j + e) <= r;
          v[e] = keep ? P[x][0][jj][2 * hh + e] * expf(keep ? gr - gs[j + e] : 0.f) : 0.f;
        }
        if constexpr (PRE) {  // hi, lo as two 4-byte pairs (j is even)
          alignas(4) E hi[2], lo[2];
          split_f<E>(v[0], hi[0], lo[0]);
          split_f<E>(v[1], hi[1], lo[1]);
          *reinterpret_cast<uint32_t*>(Pb + r * LDP + j) = *reinterpret_cast<uint32_t const*>(hi);
          *reinterpret_cast<uint32_t*>(Pl + r * LDP + j) = *reinterpret_cast<uint32_t const*>(lo);
        } else {
          store2<E>(Pb + r * LDP + j, v[0], v[1]);
        }
      }
  }
  cp_async_wait<0>();
  __syncthreads();
  if constexpr (PRE) {  // every warp is past its scores: Ks is free for v_new's lo part
#pragma unroll
    for (int x = 0; x < VREGS; ++x) {
      int const idx = tid + 256 * x, r = idx / (V / 4), q = (idx % (V / 4)) * 4;
      float const e[4] = {vr[x].x, vr[x].y, vr[x].z, vr[x].w};
      alignas(8) E hi[4], lo[4];  // written as 8-byte pieces (q is a multiple of 4)
#pragma unroll
      for (int y = 0; y < 4; ++y) split_f<E>(e[y], hi[y], lo[y]);
      *reinterpret_cast<uint2*>(Vn + r * LDV + q) = *reinterpret_cast<uint2 const*>(hi);
      *reinterpret_cast<uint2*>(Vl + r * LDV + q) = *reinterpret_cast<uint2 const*>(lo);
    }
    __syncthreads();
  }

  float O[1][ONT][4];
  zero_acc(O);
  warp_mma<E, true, false, 1, ONT>(O, Qs, LDK, 16 * m, Hs, LDV, nh * (V / 2), 0, K);
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * m + g + 8 * hh;
    float const er = expf(r < c.rows ? gs[r] : 0.f);
#pragma unroll
    for (int j = 0; j < ONT; ++j) O[0][j][2 * hh] *= er, O[0][j][2 * hh + 1] *= er;
  }
  if constexpr (PRE) {
    warp_mma<E, true, false, 1, ONT, true>(O, Pb, LDP, 16 * m, Vn, LDV, nh * (V / 2), 0, 16 * (m + 1), Vl);
    warp_mma<E, true, false, 1, ONT>(O, Pl, LDP, 16 * m, Vn, LDV, nh * (V / 2), 0, 16 * (m + 1));
  } else {
    warp_mma<E, true, false, 1, ONT>(O, Pb, LDP, 16 * m, Vn, LDV, nh * (V / 2), 0, 16 * (m + 1));
  }

  E* og = static_cast<E*>(a.o) + (c.row0 * HV + hv) * V + nh * (V / 2);
  float const sc = a.scale;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * m + g + 8 * hh;
    if (r >= c.rows) continue;
#pragma unroll
    for (int j = 0; j < ONT; ++j)
      store2<E>(og + static_cast<int64_t>(r) * HV * V + 8 * j + 2 * t, sc * O[0][j][2 * hh], sc * O[0][j][2 * hh + 1]);
  }
  block_time_end(a.block_times);
}

template <class E, class UT, int K>
void launch_output_v2(Args const& a, Stream s) {
  constexpr bool PRE = !std::is_same_v<UT, E>;
  std::size_t const bytes =
      sizeof(E) * (2 * kBT * (K + 8) + K * (K + 8) + kBT * (K + 8) + (PRE ? 2 : 1) * kBT * (kBT + 8));
  ensure_smem<chunk_output_v2_kernel<E, UT, K, K>>(bytes);
  chunk_output_v2_kernel<E, UT, K, K><<<static_cast<unsigned>(a.d.num_chunks * a.d.HV), 256, bytes, s>>>(a);
}

}  // namespace

void chunk_output(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if (a.precise_uv && !std::is_same_v<E, float>) {
      if (a.output_variant == 1) throw std::invalid_argument("chunk_output: precise_uv needs output variant 2");
      if (a.d.K == 128) launch_output_v2<E, float, 128>(a, s); else launch_output_v2<E, float, 64>(a, s);
    } else if (a.output_variant == 1) {
      if (a.d.K == 128) launch_output<E, 128>(a, s); else launch_output<E, 64>(a, s);
    } else {
      if (a.d.K == 128) launch_output_v2<E, E, 128>(a, s); else launch_output_v2<E, E, 64>(a, s);
    }
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
