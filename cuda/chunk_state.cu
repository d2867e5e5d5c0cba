// Stage 5: inter-chunk state recurrence (gdn-algorithm.md 2.6). Per (sequence, value head, V-tile of
// BV columns) one block walks the sequence's chunks in order with the K x BV state in fp32 mma
// accumulators:
//   h[c] = round_E(S); Delta = u_c - W_c S; v_new_c = round_E(Delta);
//   S <- e^{gl} S + K_c^T round_E(Delta * e^{gl - gc_r})  (rows past the chunk's end selected to 0).
// W*S operand: Args::split_state = false rounds S to the input dtype as FLA does; true splits
// S = hi + lo (two bf16 tiles, two products) so the product sees S to ~2^-16. fp32 inputs: S in fp32.
// The "unfused" implementation uses split_state = false (FLA's rounding): splitting costs 13% here
// (300 vs 263 us) and moved the o / final-state errors by < 5% even with g = 0 (tests/cuda no-decay:
// final-state rel. error 3.82e-3 -> 3.64e-3), because w, u, v_new, h and the score matrix are rounded
// to bf16 anyway; "unfused-splitstate" keeps it selectable.
// Args::precise_uv ("precise", variant 2 only): u read and v_new written in fp32 (Delta = u - W S is
// formed in fp32 anyway, so only the storage changes; the gated delta operand stays rounded to E).
// Variants:
//   1 (this) BV = 32 (128 blocks at HV=32, V=128), 4 warps; w, k, u tiles of the next chunk prefetched
//     with cp.async into a second buffer while the current chunk computes; g_cumsum prefetched to a
//     register one chunk ahead; 3 block barriers per chunk. H100, T=8192 HV=32: 404 us (split), 430 us
//     (bf16 S) = 3.2 us per chunk step, 3.2x its memory floor: latency-bound (4 warps per SM, h and
//     v_new stored as 4-byte pieces straight from the accumulators, chunk descriptors loaded on the
//     critical path).
//   2 (default) 8 warps per block (same BV = 32, 128 blocks): the state's K rows split over 8 warps
//     (shorter mma chains, twice the warps to hide latency); the h snapshot and v_new staged in shared
//     memory and written with coalesced 16-byte stores; next chunk's descriptor held in registers;
//     W*S in independent accumulators (hi/lo x two K halves: mma chains of K/32). H100, T=8192 HV=32:
//     300 us split / 264 us bf16 S (2.4x / 2.1x floor); ncu: L1/shared 62% busy (~250 KB of ldmatrix and
//     shared stores per chunk step per SM), 2 warps per scheduler, 5.2 cycles per issued instruction:
//     shared-memory traffic and latency bound. Loading the A fragments once for hi and lo (warp_mma2,
//     tried) measured 311 us: slower, reverted.
//     Then: 2 barriers per step instead of 3 (Sb, Db, Vs and gs are rewritten only after the next step's
//     first barrier, by which every warp has finished reading them), and the next chunk's cp.async
//     prefetch issued after that first barrier instead of at the top of the step: no measurable change
//     (300.6 / 262.7 us), kept (compute-sanitizer racecheck clean).
//     Tried (issue 5 session): the prefetch and h store moved behind the issue of the W*S products and
//     the v_new store behind the state update's, predicted -10..25% from overlapping that memory work
//     with the tensor-core latency: 255.6 us bf16 S (no change), 310.5 split (3% slower); reverted.
//     Tried (precise session), each against the unchanged kernel built from the same tree in one run:
//     a three-buffer ring (chunk c + 2 loading while c computes, the "variant 3"), predicted up to -30%
//     if a step waits on its loads: 250 vs 248 us, no gain (the step is the mma/barrier chain, not the
//     loads); g_cumsum fetched by 4-byte cp.async in the tile group instead of a register one chunk
//     ahead: 295 vs 244 us (the strided scalar copies then gate every tile wait). Both reverted.
//     Then, from the ncu source page (20% of the instructions were load_tile_async's index arithmetic):
//     the three per-step tile copies by TileCopy (common.cuh), offsets computed once per thread and no
//     per-row test on full chunks: 243 -> 228 us bf16 S, 286 -> 248 split, 250 -> 235 precise (same run,
//     the unchanged kernel built alongside); forward fused-intra 550 us, precise 605.
#include "common.cuh"

namespace gdn_cuda {
namespace {

template <class E, int K, int V, int BV, bool SPLIT>
__global__ void __launch_bounds__(128) chunk_state_v1_kernel(Args a) {
  constexpr int LDK = K + 8, LDU = BV + 8;
  constexpr int MT = K / 64;  // 16-row tiles of the state per warp (4 warps cover K rows)
  constexpr int NT = BV / 8;
  constexpr int STAGE = 2 * kBT * LDK + kBT * LDU;  // elements per prefetch stage: W, K, U
  extern __shared__ __align__(16) unsigned char smem[];
  E* stage0 = reinterpret_cast<E*>(smem);
  E* Sb = stage0 + 2 * STAGE;              // [K][LDU]
  E* Sl = Sb + K * LDU;                    // [K][LDU] (SPLIT only)
  E* Db = Sl + (SPLIT ? K * LDU : 0);      // [64][LDU]
  __shared__ float gs[kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  int const nvt = V / BV;
  int const vt = blockIdx.x % nvt;
  int const hv = (blockIdx.x / nvt) % HV;
  int const n = blockIdx.x / (nvt * HV);
  int const hk = hv / static_cast<int>(HV / a.d.H);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3;
  int64_t const c_begin = a.seq_chunk_begin[n], c_end = a.seq_chunk_begin[n + 1];

  float S[MT][NT][4];
  // state rows owned by this thread: 16*(MT*warp + i) + g + 8*hh, cols 8j + 2t + e
  if (a.h0) {
    float const* h0 = a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV;
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          int const r = 16 * (MT * warp + i) + g + 8 * hh, col = 8 * j + 2 * t;
          float2 const v = *reinterpret_cast<float2 const*>(h0 + r * V + col);
          S[i][j][2 * hh] = v.x, S[i][j][2 * hh + 1] = v.y;
        }
  } else {
    zero_acc(S);
  }

  auto prefetch = [&](int64_t ci, E* st) {
    ChunkDesc const c = a.chunks[ci];
    E const* wg = static_cast<E const*>(a.w) + (c.row0 * HV + hv) * K;
    E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
    E const* ug = static_cast<E const*>(a.u) + (c.row0 * HV + hv) * V + vt * BV;
    load_tile_async<E>(st, LDK, wg, static_cast<int64_t>(HV) * K, kBT, c.rows, K, tid, 128);
    load_tile_async<E>(st + kBT * LDK, LDK, kg, a.d.H * K, kBT, c.rows, K, tid, 128);
    load_tile_async<E>(st + 2 * kBT * LDK, LDU, ug, static_cast<int64_t>(HV) * V, kBT, c.rows, BV, tid, 128);
    cp_async_commit();
  };
  auto load_g = [&](int64_t ci) {
    if (ci >= c_end || tid >= kBT) return 0.f;
    ChunkDesc const c = a.chunks[ci];
    return tid < c.rows ? a.g_cumsum[(c.row0 + tid) * HV + hv] : 0.f;
  };

  if (c_begin < c_end) prefetch(c_begin, stage0);
  float g_next = load_g(c_begin);

  for (int64_t ci = c_begin; ci < c_end; ++ci) {
    ChunkDesc const c = a.chunks[ci];
    E* st = stage0 + ((ci - c_begin) & 1) * STAGE;
    if (ci + 1 < c_end) {
      prefetch(ci + 1, stage0 + ((ci + 1 - c_begin) & 1) * STAGE);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    if (tid < kBT) gs[tid] = g_next;
    g_next = load_g(ci + 1);

    // 1. snapshot: h (global, E) and the W*S operand (shared)
    E* hg = static_cast<E*>(a.h) + ((c.h_row * HV + hv) * K) * V + vt * BV;
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          int const r = 16 * (MT * warp + i) + g + 8 * hh, col = 8 * j + 2 * t;
          float const s0 = S[i][j][2 * hh], s1 = S[i][j][2 * hh + 1];
          store2<E>(hg + static_cast<int64_t>(r) * V + col, s0, s1);
          if constexpr (SPLIT) {
            E h0_, l0_, h1_, l1_;
            split_f<E>(s0, h0_, l0_);
            split_f<E>(s1, h1_, l1_);
            Sb[r * LDU + col] = h0_, Sb[r * LDU + col + 1] = h1_;
            Sl[r * LDU + col] = l0_, Sl[r * LDU + col + 1] = l1_;
          } else {
            store2<E>(Sb + r * LDU + col, s0, s1);
          }
        }
    __syncthreads();

    // 2. Delta = u - W S (rows 16*warp.., all BV columns)
    E const* Ws = st;
    E const* Ks = st + kBT * LDK;
    E const* Us = st + 2 * kBT * LDK;
    float D[1][NT][4];
    zero_acc(D);
    warp_mma<E, true, false, 1, NT>(D, Ws, LDK, 16 * warp, Sb, LDU, 0, 0, K);
    if constexpr (SPLIT) warp_mma<E, true, false, 1, NT>(D, Ws, LDK, 16 * warp, Sl, LDU, 0, 0, K);
    float const gl = gs[c.rows - 1];
    E* vng = static_cast<E*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * warp + g + 8 * hh;
      bool const ok = r < c.rows;
      float const decay = expf(ok ? gl - gs[r] : 0.f);
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        int const col = 8 * j + 2 * t;
        float const d0 = to_f(Us[r * LDU + col]) - D[0][j][2 * hh];
        float const d1 = to_f(Us[r * LDU + col + 1]) - D[0][j][2 * hh + 1];
        if (ok) store2<E>(vng + static_cast<int64_t>(r) * HV * V + col, d0, d1);
        store2<E>(Db + r * LDU + col, ok ? d0 * decay : 0.f, ok ? d1 * decay : 0.f);
      }
    }
    __syncthreads();

    // 3. S <- e^{gl} S + K^T Db
    float const eg = expf(gl);
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) S[i][j][e] *= eg;
    warp_mma<E, false, false, MT, NT>(S, Ks, LDK, 16 * MT * warp, Db, LDU, 0, 0, kBT);
    __syncthreads();
  }

  float* fs = a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV;
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * (MT * warp + i) + g + 8 * hh, col = 8 * j + 2 * t;
        *reinterpret_cast<float2*>(fs + r * V + col) = make_float2(S[i][j][2 * hh], S[i][j][2 * hh + 1]);
      }
  block_time_end(a.block_times);
}

template <class E, int K, bool SPLIT>
void launch_state_v1(Args const& a, Stream s) {
  constexpr int BV = 32;
  constexpr int LDK = K + 8, LDU = BV + 8;
  std::size_t const bytes =
      sizeof(E) * (2 * (2 * kBT * LDK + kBT * LDU) + (SPLIT ? 2 : 1) * K * LDU + kBT * LDU);
  ensure_smem<chunk_state_v1_kernel<E, K, K, BV, SPLIT>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (K / BV));
  chunk_state_v1_kernel<E, K, K, BV, SPLIT><<<grid, 128, bytes, s>>>(a);
}

// UT: the dtype of u and v_new (E, or float with Args::precise_uv).
template <class E, class UT, int K, int V, int BV, bool SPLIT>
__global__ void __launch_bounds__(256) chunk_state_v2_kernel(Args a) {
  constexpr int NW = 8;
  constexpr int LDK = K + 8, LDU = BV + 8;
  constexpr int MTILES = K / 16;               // 16-row tiles of the state
  constexpr int WPM = NW / MTILES;             // warps per m-tile (1 for K=128, 2 for K=64)
  constexpr int SNT = BV / 8 / WPM;            // 8-col tiles of the state per warp
  // one prefetch stage: W, K tiles (E) and the U tile (UT), in bytes (multiples of 16)
  constexpr int STAGE_BYTES = 2 * kBT * LDK * sizeof(E) + kBT * LDU * sizeof(UT);
  extern __shared__ __align__(16) unsigned char smem[];
  E* Sb = reinterpret_cast<E*>(smem + 2 * STAGE_BYTES);  // [K][LDU] hi (= the h snapshot)
  E* Sl = Sb + K * LDU;                 // [K][LDU] lo (SPLIT)
  E* Db = Sl + (SPLIT ? K * LDU : 0);   // [64][LDU] gated delta
  UT* Vs = reinterpret_cast<UT*>(Db + kBT * LDU);  // [64][LDU] v_new staging
  __shared__ float gs[kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  constexpr int nvt = V / BV;
  int const vt = blockIdx.x % nvt;
  int const hv = (blockIdx.x / nvt) % HV;
  int const n = blockIdx.x / (nvt * HV);
  int const hk = hv / static_cast<int>(HV / a.d.H);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3;
  int64_t const c_begin = a.seq_chunk_begin[n], c_end = a.seq_chunk_begin[n + 1];
  // this warp's state block: rows 16*sm.., cols sc0 + 8j
  int const sm = warp % MTILES, sc0 = (warp / MTILES) * SNT * 8;
  // this warp's W*S block: rows 16*(warp&3).., cols 16*(warp>>2) + 8j (j < 2)
  int const dm = warp & 3, dc0 = (warp >> 2) * 16;

  float S[1][SNT][4];
  if (a.h0) {
    float const* h0 = a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV;
#pragma unroll
    for (int j = 0; j < SNT; ++j)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * sm + g + 8 * hh, col = sc0 + 8 * j + 2 * t;
        float2 const v = *reinterpret_cast<float2 const*>(h0 + r * V + col);
        S[0][j][2 * hh] = v.x, S[0][j][2 * hh + 1] = v.y;
      }
  } else {
    zero_acc(S);
  }

  auto stage_at = [&](int64_t i) { return reinterpret_cast<E*>(smem + (i & 1) * STAGE_BYTES); };
  // The three tile copies of every step, their per-thread offsets computed once (the generic
  // load_tile_async's index arithmetic was ~20% of this kernel's instructions).
  TileCopy<E, kBT, K, NW * 32> const copy_wk(tid);
  TileCopy<UT, kBT, BV, NW * 32> const copy_u(tid);
  int64_t const w_stride = static_cast<int64_t>(HV) * K, k_stride = a.d.H * K, u_stride = static_cast<int64_t>(HV) * V;
  auto prefetch = [&](ChunkDesc const& c, E* st) {
    E const* wg = static_cast<E const*>(a.w) + (c.row0 * HV + hv) * K;
    E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
    UT const* ug = static_cast<UT const*>(a.u) + (c.row0 * HV + hv) * V + vt * BV;
    copy_wk.issue(st, LDK, wg, w_stride, c.rows);
    copy_wk.issue(st + kBT * LDK, LDK, kg, k_stride, c.rows);
    copy_u.issue(reinterpret_cast<UT*>(st + 2 * kBT * LDK), LDU, ug, u_stride, c.rows);
    cp_async_commit();
  };
  ChunkDesc cur{}, nxt{};
  float g_next = 0.f;
  if (c_begin < c_end) {
    cur = a.chunks[c_begin];
    prefetch(cur, stage_at(0));
    if (tid < kBT && tid < cur.rows) g_next = a.g_cumsum[(cur.row0 + tid) * HV + hv];
  }
  if (c_begin + 1 < c_end) nxt = a.chunks[c_begin + 1];
  constexpr int VPR = BV * static_cast<int>(sizeof(E)) / 16;   // 16-byte pieces per row of BV (h)
  constexpr int UPR = BV * static_cast<int>(sizeof(UT)) / 16;  // the same for v_new

  for (int64_t ci = c_begin; ci < c_end; ++ci) {
    ChunkDesc const c = cur;
    E* st = stage_at(ci - c_begin);
    bool const has_next = ci + 1 < c_end;
    ChunkDesc const c_next = nxt;
    if (tid < kBT) gs[tid] = g_next;
    g_next = (has_next && tid < kBT && tid < nxt.rows) ? a.g_cumsum[(nxt.row0 + tid) * HV + hv] : 0.f;
    cur = nxt;
    if (ci + 2 < c_end) nxt = a.chunks[ci + 2];

    // 1. snapshot into shared memory (hi = round_E(S) is the h value)
#pragma unroll
    for (int j = 0; j < SNT; ++j)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * sm + g + 8 * hh, col = sc0 + 8 * j + 2 * t;
        float const s0 = S[0][j][2 * hh], s1 = S[0][j][2 * hh + 1];
        store2<E>(Sb + r * LDU + col, s0, s1);
        if constexpr (SPLIT) store2<E>(Sl + r * LDU + col, s0 - to_f(from_f<E>(s0)), s1 - to_f(from_f<E>(s1)));
      }
    cp_async_wait<0>();  // this chunk's tiles (the only group in flight)
    __syncthreads();
    // Every warp has finished the previous step (its K^T Db read the buffer refilled here), so the next
    // chunk's prefetch can be issued now, off the critical path; no barrier at the end of the step.
    if (has_next) prefetch(c_next, stage_at(ci + 1 - c_begin));

    // h store, coalesced 16-byte pieces
    {
      E* hg = static_cast<E*>(a.h) + ((c.h_row * HV + hv) * K) * V + vt * BV;
      for (int idx = tid; idx < K * VPR; idx += NW * 32) {
        int const r = idx / VPR, q = (idx % VPR) * (16 / static_cast<int>(sizeof(E)));
        *reinterpret_cast<uint4*>(hg + static_cast<int64_t>(r) * V + q) = *reinterpret_cast<uint4 const*>(Sb + r * LDU + q);
      }
    }

    // 2. Delta = u - W S
    E const* Ws = st;
    E const* Ks = st + kBT * LDK;
    UT const* Us = reinterpret_cast<UT const*>(st + 2 * kBT * LDK);
    // four (two) independent accumulator sets: hi/lo x two halves of K, so each mma chain is K/32 long
    float D[1][2][4], D1[1][2][4];
    zero_acc(D);
    zero_acc(D1);
    warp_mma<E, true, false, 1, 2>(D, Ws, LDK, 16 * dm, Sb, LDU, dc0, 0, K / 2);
    warp_mma<E, true, false, 1, 2>(D1, Ws, LDK, 16 * dm, Sb, LDU, dc0, K / 2, K);
    if constexpr (SPLIT) {
      float L0[1][2][4], L1[1][2][4];
      zero_acc(L0);
      zero_acc(L1);
      warp_mma<E, true, false, 1, 2>(L0, Ws, LDK, 16 * dm, Sl, LDU, dc0, 0, K / 2);
      warp_mma<E, true, false, 1, 2>(L1, Ws, LDK, 16 * dm, Sl, LDU, dc0, K / 2, K);
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) D1[0][j][e] += L0[0][j][e] + L1[0][j][e];
    }
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) D[0][j][e] += D1[0][j][e];
    float const gl = gs[c.rows - 1];
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * dm + g + 8 * hh;
      bool const ok = r < c.rows;
      float const decay = expf(ok ? gl - gs[r] : 0.f);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        int const col = dc0 + 8 * j + 2 * t;
        float const d0 = to_f(Us[r * LDU + col]) - D[0][j][2 * hh];
        float const d1 = to_f(Us[r * LDU + col + 1]) - D[0][j][2 * hh + 1];
        store2<UT>(Vs + r * LDU + col, d0, d1);
        store2<E>(Db + r * LDU + col, ok ? d0 * decay : 0.f, ok ? d1 * decay : 0.f);
      }
    }
    __syncthreads();

    // v_new store (valid rows), coalesced
    {
      UT* vng = static_cast<UT*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV;
      for (int idx = tid; idx < c.rows * UPR; idx += NW * 32) {
        int const r = idx / UPR, q = (idx % UPR) * (16 / static_cast<int>(sizeof(UT)));
        *reinterpret_cast<uint4*>(vng + static_cast<int64_t>(r) * HV * V + q) =
            *reinterpret_cast<uint4 const*>(Vs + r * LDU + q);
      }
    }
    // 3. S <- e^{gl} S + K^T Db
    float const eg = expf(gl);
#pragma unroll
    for (int j = 0; j < SNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[0][j][e] *= eg;
    warp_mma<E, false, false, 1, SNT>(S, Ks, LDK, 16 * sm, Db, LDU, sc0, 0, kBT);
  }

  float* fs = a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV;
#pragma unroll
  for (int j = 0; j < SNT; ++j)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * sm + g + 8 * hh, col = sc0 + 8 * j + 2 * t;
      *reinterpret_cast<float2*>(fs + r * V + col) = make_float2(S[0][j][2 * hh], S[0][j][2 * hh + 1]);
    }
  block_time_end(a.block_times);
}

template <class E, class UT, int K, bool SPLIT>
void launch_state_v2(Args const& a, Stream s) {
  constexpr int BV = 32;
  constexpr int LDK = K + 8, LDU = BV + 8;
  std::size_t const bytes = 2 * (2 * kBT * LDK * sizeof(E) + kBT * LDU * sizeof(UT)) +
                            sizeof(E) * ((SPLIT ? 2 : 1) * K * LDU + kBT * LDU) + sizeof(UT) * kBT * LDU;
  ensure_smem<chunk_state_v2_kernel<E, UT, K, K, BV, SPLIT>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (K / BV));
  chunk_state_v2_kernel<E, UT, K, K, BV, SPLIT><<<grid, 256, bytes, s>>>(a);
}

template <class E, int K, bool SPLIT>
void launch_state(Args const& a, Stream s) {
  if (a.precise_uv && !std::is_same_v<E, float>) {
    if (a.state_variant == 1) throw std::invalid_argument("chunk_state: precise_uv needs state variant 2");
    launch_state_v2<E, float, K, SPLIT>(a, s);
  } else if (a.state_variant == 1) {
    launch_state_v1<E, K, SPLIT>(a, s);
  } else {
    launch_state_v2<E, E, K, SPLIT>(a, s);
  }
}

}  // namespace

void chunk_state(Args const& a, Stream s) {
  if (a.d.N == 0) return;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (std::is_same_v<E, float>) {
      if (a.d.K == 128) launch_state<float, 128, false>(a, s); else launch_state<float, 64, false>(a, s);
    } else {
      if (a.split_state) {
        if (a.d.K == 128) launch_state<E, 128, true>(a, s); else launch_state<E, 64, true>(a, s);
      } else {
        if (a.d.K == 128) launch_state<E, 128, false>(a, s); else launch_state<E, 64, false>(a, s);
      }
    }
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
