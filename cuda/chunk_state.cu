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
//     Then (fifth H200 session, from state_output_fused 2d): K, read only in part 3, in a copy group of its
//     own issued after part 2 and waited for just before the update barrier (W and U waited for at the
//     step's start): H200 warm, same run as the unchanged kernel: 230.5 -> 221.5 us bf16 S, 256.1 -> 248.2
//     split; T = 32768 906 -> 855; B=4 T=4096 HV=16 200.0 -> 192.6; forward fused-intra v3 503 -> 493
//     (tree 0635797, bench/results/stages-H200-0635797.txt). Tried then: the snapshot, v_new / gated delta,
//     h0 and final-state lines replaced by state_step.cuh's helpers (shared with state_output_fused):
//     bf16 S unchanged (218-220 us), split S 247 -> 277 us (stages-H200-cdf332d.txt); reverted.
#include "common.cuh"
#include "wgmma.cuh"

namespace gdn_cuda {
namespace {

// The chunk descriptors of a block's sequence, walked in order through an 8-slot shared ring: chunk
// r + 2's descriptor travels by cp.async in the group that carries chunk r's tiles, so it is in shared
// memory by the time chunk r + 2's tiles are issued. A register load of the next descriptor, as variant 2
// does, cost variant 3 25% of its time (324 -> 241 us, H200, T = 8192; Nsight Compute: 18.5% of the stall
// samples on the R2UR that moved it into a uniform register right after the load). Variant 2 with the
// same ring measured 235 us against 228 (its 8 warps hide the load; the g_cumsum load then sat behind its
// first barrier), so variant 2 keeps its register loads.
struct DescRing {
  ChunkDesc* ring;        // __shared__ ChunkDesc[8]
  ChunkDesc const* src;   // the sequence's first chunk
  // Threads 0..2 copy chunk r's 24 bytes, inside the caller's cp.async group.
  __device__ __forceinline__ void issue(int r) const {
    if (threadIdx.x < 3)
      cp_async8(reinterpret_cast<unsigned char*>(ring + (r & 7)) + 8 * threadIdx.x,
                reinterpret_cast<unsigned char const*>(src + r) + 8 * threadIdx.x);
  }
  __device__ __forceinline__ ChunkDesc get(int r) const { return ring[r & 7]; }
};

// One warp writes `rows` staged rows of 16 elements of T (shared, `lds` apart) to device memory (rows
// `gstride` elements apart) as 16-byte pieces; rows at or past `valid` are skipped. Variants 3 and 4 stage
// their h and v_new blocks this way after stmatrix.
template <class T, int ROWS>
__device__ __forceinline__ void store_staged_rows(T* out, int64_t gstride, T const* staged, int lds, int valid) {
  constexpr int PPR = 16 * static_cast<int>(sizeof(T)) / 16;  // pieces per row
  constexpr int PER = 16 / static_cast<int>(sizeof(T));       // elements per piece
  int const lane = threadIdx.x & 31;
#pragma unroll
  for (int x = 0; x < ROWS * PPR / 32; ++x) {
    int const r = (x * 32 + lane) / PPR, q = ((x * 32 + lane) % PPR) * PER;
    if (r < valid)
      *reinterpret_cast<uint4*>(out + static_cast<int64_t>(r) * gstride + q) = *reinterpret_cast<uint4 const*>(staged + r * lds + q);
  }
}

// The step bookkeeping of variants 3 and 4 (one block walks one sequence's chunks): descriptors through
// DescRing, three tile stages (chunk r + 2's tiles load while chunk r computes), and g_cumsum of this
// thread's row (threads < 64) and of the chunk's last row, loaded one chunk ahead. `issue(c, stage)` is the
// kernel's copy of one chunk's tiles into a stage, without the commit.
struct ChunkWalk {
  Args const& a;
  int hv;
  DescRing descs;
  int nch;
  float g_row = 0.f, g_last = 0.f;

  __device__ __forceinline__ void load_g(ChunkDesc const& c) {
    int64_t const HV = a.d.HV;
    g_row = (static_cast<int>(threadIdx.x) < c.rows) ? a.g_cumsum[(c.row0 + threadIdx.x) * HV + hv] : 0.f;
    g_last = a.g_cumsum[(c.row0 + c.rows - 1) * HV + hv];
  }
  // Chunks 0 and 1 in flight (block-uniform; contains a barrier).
  template <class Issue>
  __device__ __forceinline__ void start(Issue&& issue) {
    if (nch == 0) return;
    if (threadIdx.x < 2 && static_cast<int>(threadIdx.x) < nch) descs.ring[threadIdx.x] = descs.src[threadIdx.x];
    __syncthreads();
    for (int r = 0; r < 2 && r < nch; ++r) {
      issue(descs.get(r), r);
      if (r + 2 < nch) descs.issue(r + 2);
      cp_async_commit();
    }
    load_g(descs.get(0));
  }
  // Top of step ci: threads < 64 write e^{gl - g_r} (0 past the chunk's end) to dec; returns e^{gl}.
  __device__ __forceinline__ float gates(ChunkDesc const& c, float* dec) const {
    if (threadIdx.x < kBT) dec[threadIdx.x] = static_cast<int>(threadIdx.x) < c.rows ? expf(g_last - g_row) : 0.f;
    return expf(g_last);
  }
  // Chunk ci's tiles are in (the next chunk's group may still fly); the caller's barrier publishes them.
  __device__ __forceinline__ void wait(int ci) const {
    if (ci + 1 < nch) cp_async_wait<1>(); else cp_async_wait<0>();
  }
  // After step ci's barrier (every warp is done with the stage of chunk ci - 1): chunk ci + 2's tiles and
  // chunk ci + 4's descriptor, then chunk ci + 1's gates (used at the next step's top).
  template <class Issue>
  __device__ __forceinline__ void advance(int ci, Issue&& issue) {
    if (ci + 2 < nch) {
      issue(descs.get(ci + 2), ci + 2);
      if (ci + 4 < nch) descs.issue(ci + 4);
      cp_async_commit();
    }
    if (ci + 1 < nch) load_g(descs.get(ci + 1));
  }
};


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
  StateTile const tile = state_tile<V / BV>(a);
  int const n = tile.n, hv = tile.hv, hk = tile.hk, vt = tile.vt;
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
  StateTile const tile = state_tile<V / BV>(a);
  int const n = tile.n, hv = tile.hv, hk = tile.hk, vt = tile.vt;
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
    copy_u.issue(reinterpret_cast<UT*>(st + 2 * kBT * LDK), LDU, ug, u_stride, c.rows);
    cp_async_commit();
  };
  // K is read only in part 3: its own copy group, issued after part 2 and waited for before the update
  auto prefetch_k = [&](ChunkDesc const& c, E* st) {
    copy_wk.issue(st + kBT * LDK, LDK, static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K, k_stride, c.rows);
    cp_async_commit();
  };
  ChunkDesc cur{}, nxt{};
  float g_next = 0.f;
  if (c_begin < c_end) {
    cur = a.chunks[c_begin];
    prefetch(cur, stage_at(0));
    prefetch_k(cur, stage_at(0));
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
    cp_async_wait<1>();  // this chunk's W and U (its K may still be in flight)
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
    if (has_next) {
      prefetch_k(c_next, stage_at(ci + 1 - c_begin));
      cp_async_wait<2>();  // this chunk's K (the next chunk's W+U and K may stay in flight)
    } else {
      cp_async_wait<0>();
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

// Variant 3: the state kept transposed, S^T (BV x K), in the warps' accumulators and used straight from
// registers as the A operand, so no state tile goes through shared memory:
//   P = S^T W^T (BV x 64),  Delta^T = u^T - P,  S^T <- e^{gl} S^T + round_E(Delta^T diag(gate)) K.
// The accumulator layout of P is the A-operand layout of the next product, so Delta never leaves the
// registers either. 4 warps per (sequence, value head, BV = 32 columns): warp = (vg: 16 state columns,
// kh: half of K). The two K halves of a vg exchange their partial P through shared memory (one 64-thread
// named barrier); the only block barrier per step is the tile ring's. h and v_new are staged
// per warp (stmatrix .trans) and written as 16-byte pieces. Every product sees the same operand values in
// the same k order as variant 2 (P0 + P1 = v2's D + D1, the update's k runs over tokens 0..63 as v2's),
// so the two variants write the same bits (tests/cuda/test_gpu_state.cpp).
// Measured (H200, T = 8192, B=1 HV=32, cold L2; variant 2 228 us in the same runs): first version 324 us
// (predicted ~60-110: 2.5x less shared-memory traffic per step, no state tile in shared memory); Nsight
// Compute: 734 instructions per warp and step at 5.5 cycles each, one warp per scheduler, 18.5% of the
// stalls on the next chunk's descriptor load (see DescRing). With DescRing 241 us; a third tile stage
// and no kh selects 239 us. What is left is the step's dependent chain (P, exchange, update) on one warp
// per scheduler; variant 2 has two. Kept as the reference for variant 4 and for that lesson.
template <class E, class UT, int K, bool SPLIT>
__global__ void __launch_bounds__(128) chunk_state_v3_kernel(Args a) {
  constexpr int BV = 32, V = K, NW = 4;
  constexpr int LDK = K + 8, LDU = BV + 8;
  constexpr int KH = K / 2;     // state rows (of S; columns of S^T) per warp
  constexpr int NKT = KH / 8;   // 8-column tiles of S^T per warp
  constexpr int KS = KH / 16;   // 16-deep k steps of P = S^T W^T over this warp's half of K
  constexpr int NP = SPLIT ? 2 : 1;  // partial products exchanged (hi, and lo with SPLIT)
  constexpr int LDH = 16 + 8;   // per-warp staging rows of 16 columns (48 bytes: stmatrix conflict-free)
  constexpr int LDVF = 16 + 4;  // the same for an fp32 v_new (80 bytes)
  constexpr int STAGE_BYTES = 2 * kBT * LDK * sizeof(E) + kBT * LDU * sizeof(UT);
  constexpr int XCH_FLOATS = NP * 8 * 32 * 4;  // per warp: NP tiles of 16 x 64 fp32, fragment order
  constexpr int STG_BYTES = (KH * LDH * 2 > 32 * LDVF * 4 ? KH * LDH * 2 : 32 * LDVF * 4);
  static_assert(is_16bit<E>(), "16-bit inputs (fp32 inputs run variant 2)");
  extern __shared__ __align__(16) unsigned char smem[];
  float* xch = reinterpret_cast<float*>(smem + 3 * STAGE_BYTES);
  unsigned char* stg_all = reinterpret_cast<unsigned char*>(xch + NW * XCH_FLOATS);
  __shared__ __align__(16) float dec_s[2][kBT];  // e^{gl - g_r} of the step (0 past the chunk's end), by step parity
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  StateTile const tile = state_tile<V / BV>(a);
  int const n = tile.n, hv = tile.hv, hk = tile.hk, vt = tile.vt;
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3, li = lane >> 3, lr = lane & 7;
  int const vg = warp & 1, kh = warp >> 1;
  int const v0 = 16 * vg;       // this warp's state columns within the tile
  int const k0 = KH * kh;       // and its state rows
  int64_t const c_begin = a.seq_chunk_begin[n], c_end = a.seq_chunk_begin[n + 1];
  float* my_x = xch + warp * XCH_FLOATS;
  float const* partner_x = xch + (warp ^ 2) * XCH_FLOATS;
  unsigned char* stg = stg_all + warp * STG_BYTES;

  // S^T fragments: S[j][0,1] = S(k0 + 8j + 2t + {0,1}, v0 + g), S[j][2,3] the same at column v0 + g + 8
  float S[NKT][4];
  if (a.h0) {
    float const* h0 = a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV + v0 + g;
#pragma unroll
    for (int j = 0; j < NKT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[j][e] = h0[(k0 + 8 * j + 2 * t + (e & 1)) * V + 8 * (e >> 1)];
  } else {
#pragma unroll
    for (int j = 0; j < NKT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[j][e] = 0.f;
  }

  auto stage_at = [&](int i) { return reinterpret_cast<E*>(smem + (i % 3) * STAGE_BYTES); };
  TileCopy<E, kBT, K, NW * 32> const copy_wk(tid);
  TileCopy<UT, kBT, BV, NW * 32> const copy_u(tid);
  int64_t const w_stride = static_cast<int64_t>(HV) * K, k_stride = a.d.H * K, u_stride = static_cast<int64_t>(HV) * V;
  auto prefetch = [&](ChunkDesc const& c, int stage) {
    E* st = stage_at(stage);
    E const* wg = static_cast<E const*>(a.w) + (c.row0 * HV + hv) * K;
    E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
    UT const* ug = static_cast<UT const*>(a.u) + (c.row0 * HV + hv) * V + vt * BV;
    copy_wk.issue(st, LDK, wg, w_stride, c.rows);
    copy_wk.issue(st + kBT * LDK, LDK, kg, k_stride, c.rows);
    copy_u.issue(reinterpret_cast<UT*>(st + 2 * kBT * LDK), LDU, ug, u_stride, c.rows);
  };
  __shared__ __align__(16) ChunkDesc desc_ring[8];
  ChunkWalk walk{a, hv, {desc_ring, a.chunks + c_begin}, static_cast<int>(c_end - c_begin)};
  walk.start(prefetch);

  for (int ci = 0; ci < walk.nch; ++ci) {
    ChunkDesc const c = walk.descs.get(ci);
    int const par = ci & 1;
    E* st = stage_at(ci);
    float const eg = walk.gates(c, dec_s[par]);

    // round_E(S^T) (the h value and the W*S operand) as A fragments; lo = round_E(S - hi) with SPLIT
    uint32_t sh[KS][4], sl[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float const x0 = S[2 * ks + (q >> 1)][2 * (q & 1)], x1 = S[2 * ks + (q >> 1)][2 * (q & 1) + 1];
        sh[ks][q] = pack2<E>(x0, x1);
        if constexpr (SPLIT) {
          float2 const hf = unpack2<E>(sh[ks][q]);
          sl[ks][q] = pack2<E>(x0 - hf.x, x1 - hf.y);
        }
      }

    walk.wait(ci);
    __syncthreads();
    walk.advance(ci, prefetch);
    E const* Ws = st;
    E const* Ks = st + kBT * LDK;
    UT const* Us = reinterpret_cast<UT const*>(st + 2 * kBT * LDK);

    // P = S^T W^T over this warp's half of K: B(k = feature, n = token) = W[token][feature]
    float P[8][4], PL[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) P[j][e] = 0.f, PL[j][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        uint32_t bf[4];
        ldsm_x4(bf, Ws + (8 * j + lr + (li >> 1) * 8) * LDK + k0 + 16 * ks + (li & 1) * 8, false);
        mma16816<E>(P[j], sh[ks], bf[0], bf[1]);
        mma16816<E>(P[j + 1], sh[ks], bf[2], bf[3]);
        if constexpr (SPLIT) {
          mma16816<E>(PL[j], sl[ks], bf[0], bf[1]);
          mma16816<E>(PL[j + 1], sl[ks], bf[2], bf[3]);
        }
      }

    // h snapshot: this warp's KH x 16 block of round_E(S), transposed back by stmatrix
    {
      E* sg = reinterpret_cast<E*>(stg);
#pragma unroll
      for (int ks = 0; ks < KS; ++ks)
        stsm_x4_trans(sg + (16 * ks + lr + (li >> 1) * 8) * LDH + (li & 1) * 8, sh[ks]);
      __syncwarp();
      E* hg = static_cast<E*>(a.h) + ((c.h_row * HV + hv) * K + k0) * V + vt * BV + v0;
      store_staged_rows<E, KH>(hg, V, sg, LDH, KH);
    }

    // exchange the partial products with the other K half of this vg
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      reinterpret_cast<float4*>(my_x)[j * 32 + lane] = make_float4(P[j][0], P[j][1], P[j][2], P[j][3]);
      if constexpr (SPLIT)
        reinterpret_cast<float4*>(my_x)[(8 + j) * 32 + lane] = make_float4(PL[j][0], PL[j][1], PL[j][2], PL[j][3]);
    }
    named_barrier(1 + vg, 64);
    // Delta^T = u^T - (P0 + P1) (SPLIT: P0 + (P1 + (L0 + L1))), the sums in variant 2's order
    float D[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float4 const q = reinterpret_cast<float4 const*>(partner_x)[j * 32 + lane];
      float const qv[4] = {q.x, q.y, q.z, q.w};
      float ql[4] = {0.f, 0.f, 0.f, 0.f};
      if constexpr (SPLIT) {
        float4 const r = reinterpret_cast<float4 const*>(partner_x)[(8 + j) * 32 + lane];
        ql[0] = r.x, ql[1] = r.y, ql[2] = r.z, ql[3] = r.w;
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if constexpr (SPLIT) {
          float const p0 = kh == 0 ? P[j][e] : qv[e], p1 = kh == 0 ? qv[e] : P[j][e];
          D[j][e] = p0 + (p1 + (PL[j][e] + ql[e]));  // l0 + l1 in either order: the same sum
        } else {
          D[j][e] = P[j][e] + qv[e];  // p0 + p1 (fp32 addition commutes: no select on kh)
        }
      }
    }
    // u^T in the same fragment layout: ldmatrix .trans of the [token][column] tile (E), or scalars (fp32)
    if constexpr (std::is_same_v<UT, E>) {
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        uint32_t uf[4];
        ldsm_x4(uf, Us + (8 * j + lr + (li >> 1) * 8) * LDU + v0 + (li & 1) * 8, true);
        float2 const a0 = unpack2<E>(uf[0]), a1 = unpack2<E>(uf[1]), a2 = unpack2<E>(uf[2]), a3 = unpack2<E>(uf[3]);
        D[j][0] = a0.x - D[j][0], D[j][1] = a0.y - D[j][1], D[j][2] = a1.x - D[j][2], D[j][3] = a1.y - D[j][3];
        D[j + 1][0] = a2.x - D[j + 1][0], D[j + 1][1] = a2.y - D[j + 1][1];
        D[j + 1][2] = a3.x - D[j + 1][2], D[j + 1][3] = a3.y - D[j + 1][3];
      }
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) D[j][e] = Us[(8 * j + 2 * t + (e & 1)) * LDU + v0 + g + 8 * (e >> 1)] - D[j][e];
    }

    // v_new: this warp stores tokens 32 kh .. 32 kh + 31 of its 16 columns
    {
      UT* vng = static_cast<UT*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV + v0;
      constexpr int LDS = std::is_same_v<UT, float> ? LDVF : LDH;
      UT* sv = reinterpret_cast<UT*>(stg);
      __syncwarp();  // the h staging reads are done
      if constexpr (std::is_same_v<UT, E>) {
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
          if ((j >> 2) != kh) continue;  // (constant indices into D: a runtime one would put D in local memory)
          int const jj = j - 4 * kh;
          uint32_t const r[4] = {pack2<E>(D[j][0], D[j][1]), pack2<E>(D[j][2], D[j][3]),
                                 pack2<E>(D[j + 1][0], D[j + 1][1]), pack2<E>(D[j + 1][2], D[j + 1][3])};
          stsm_x4_trans(sv + (8 * jj + lr + (li >> 1) * 8) * LDS + (li & 1) * 8, r);
        }
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          if ((j >> 2) != kh) continue;
#pragma unroll
          for (int e = 0; e < 4; ++e) sv[(8 * (j - 4 * kh) + 2 * t + (e & 1)) * LDS + g + 8 * (e >> 1)] = D[j][e];
        }
      }
      __syncwarp();
      store_staged_rows<UT, 32>(vng + static_cast<int64_t>(32 * kh) * HV * V, static_cast<int64_t>(HV) * V, sv, LDS,
                                c.rows - 32 * kh);
    }

    // S^T <- e^{gl} S^T + round_E(Delta^T diag(gate)) K over this warp's half of K
    float const* dec = dec_s[par];
    uint32_t df[4][4];
#pragma unroll
    for (int ks = 0; ks < 4; ++ks)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        int const j = 2 * ks + (q >> 1), e = 2 * (q & 1);
        float2 const d2 = *reinterpret_cast<float2 const*>(dec + 8 * j + 2 * t);
        df[ks][q] = pack2<E>(D[j][e] * d2.x, D[j][e + 1] * d2.y);
      }
#pragma unroll
    for (int j = 0; j < NKT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[j][e] *= eg;
#pragma unroll
    for (int ks = 0; ks < 4; ++ks)
#pragma unroll
      for (int j = 0; j < NKT; j += 2) {
        uint32_t bf[4];  // B(k = token, n = feature) = K[token][feature]
        ldsm_x4(bf, Ks + (16 * ks + lr + (li & 1) * 8) * LDK + k0 + 8 * j + (li >> 1) * 8, true);
        mma16816<E>(S[j], df[ks], bf[0], bf[1]);
        mma16816<E>(S[j + 1], df[ks], bf[2], bf[3]);
      }
  }

  float* fs = a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV + v0 + g;
#pragma unroll
  for (int j = 0; j < NKT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) fs[(k0 + 8 * j + 2 * t + (e & 1)) * V + 8 * (e >> 1)] = S[j][e];
  block_time_end(a.block_times);
}

template <class E, class UT, int K, bool SPLIT>
void launch_state_v3(Args const& a, Stream s) {
  constexpr int BV = 32, LDK = K + 8, LDU = BV + 8, KH = K / 2;
  constexpr std::size_t stage = 2 * kBT * LDK * sizeof(E) + kBT * LDU * sizeof(UT);
  constexpr std::size_t xch = 4 * (SPLIT ? 2 : 1) * 8 * 32 * 4 * sizeof(float);
  constexpr std::size_t stg = (KH * 24 * 2 > 32 * 20 * 4 ? KH * 24 * 2 : 32 * 20 * 4);
  std::size_t const bytes = 3 * stage + xch + 4 * stg;
  ensure_smem<chunk_state_v3_kernel<E, UT, K, SPLIT>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (K / BV));
  chunk_state_v3_kernel<E, UT, K, SPLIT><<<grid, 128, bytes, s>>>(a);
}

// Variant 4 (K = V = 128, 16-bit inputs): variant 3's transposed state on the Hopper warpgroup MMA. One
// warpgroup per (sequence, value head, BV = 64 columns) holds S^T (64 x 128, fp32) in its wgmma
// accumulators and feeds it from registers as the A operand; the W and K tiles are the B operands, read
// by the tensor cores straight from shared memory (one read per warpgroup instead of one per warp), so
// no warp exchanges partial products and the only barrier per step is the tile ring's (three stages).
//   P = round_E(S^T) W^T (8 wgmma m64n64k16, W K-major), Delta^T = u^T - P,
//   S^T <- e^{gl} S^T + round_E(Delta^T diag(gate)) K (4 wgmma m64n128k16, K N-major).
// The tiles are copied by cp.async into the no-swizzle core-matrix layouts (cuda/wgmma.cuh): W piece
// (token t, features 8j..) at byte 16 (128 (t / 8) + 8 j + t % 8) (LBO 128, SBO 2048), K piece (token t,
// features 8i..) at 1024 i + 16 t (LBO 128, SBO 1024). Same operand values as variants 2 and 3; the fp32
// sums run in one wgmma chain instead of variant 2's two K halves, so a few 16-bit roundings may differ
// (tests/cuda/test_gpu_state.cpp holds every value within 2 ulp of variant 2).
// Measured (H200, T = 8192, cold L2, variant 2 228 us in the same runs): 435 us, 376 with DescRing and
// three stages: 64 blocks (BV = 64 is wgmma's M) on 132 SMs, each step ~2.9 us of dependent wgmma,
// conversion and store phases on one warpgroup. Slower than variant 2; kept because it runs and proves
// the register-A wgmma path and its layouts (a start for a K-split, two-warpgroup version).
template <class E, class UT, bool SPLIT>
__global__ void __launch_bounds__(128) chunk_state_v4_kernel(Args a) {
  constexpr int K = 128, V = 128, BV = 64;
  constexpr int LDU = BV + 8;
  constexpr int LDH = 16 + 8, LDVF = 16 + 4;
  constexpr int TILE_BYTES = kBT * K * 2;  // W or K tile, 16 KB
  constexpr int STAGE_BYTES = 2 * TILE_BYTES + kBT * LDU * sizeof(UT);
  constexpr int STG_BYTES = K * LDH * 2;   // per warp: the h block (128 x 16), or v_new (64 x 16)
  static_assert(kBT * LDVF * 4 <= STG_BYTES, "staging");
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* stg_all = smem + 3 * STAGE_BYTES;
  __shared__ __align__(16) float dec_s[2][kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  StateTile const tile = state_tile<V / BV>(a);
  int const n = tile.n, hv = tile.hv, hk = tile.hk, vt = tile.vt;
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3, li = lane >> 3, lr = lane & 7;
  int const v0 = 16 * warp;
  int64_t const c_begin = a.seq_chunk_begin[n], c_end = a.seq_chunk_begin[n + 1];
  unsigned char* stg = stg_all + warp * STG_BYTES;

  // S^T accumulator: S[4j + e] = S(8j + 2t + (e & 1), v0 + g + 8 (e >> 1)), j = 0..15
  float S[64];
  if (a.h0) {
    float const* h0 = a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV + v0 + g;
#pragma unroll
    for (int j = 0; j < 16; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[4 * j + e] = h0[(8 * j + 2 * t + (e & 1)) * V + 8 * (e >> 1)];
  } else {
#pragma unroll
    for (int i = 0; i < 64; ++i) S[i] = 0.f;
  }

  auto stage_at = [&](int i) { return smem + (i % 3) * STAGE_BYTES; };
  // This thread's pieces: W rows 8x + (tid & 7), feature group tid >> 3 (x = 0..7); K row
  // (tid & 15) + 16 ((tid >> 5) & 3), feature groups ((tid >> 4) & 1) + 2x.
  int const w_row = tid & 7, w_grp = tid >> 3;
  int const k_row = (tid & 15) + 16 * ((tid >> 5) & 3), k_grp = (tid >> 4) & 1;
  TileCopy<UT, kBT, BV, 128> const copy_u(tid);
  int64_t const w_stride = static_cast<int64_t>(HV) * K, k_stride = a.d.H * K, u_stride = static_cast<int64_t>(HV) * V;
  auto prefetch = [&](ChunkDesc const& c, int stage) {
    unsigned char* st = stage_at(stage);
    E const* wg = static_cast<E const*>(a.w) + (c.row0 * HV + hv) * K + (w_row * w_stride + 8 * w_grp);
    E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K + (k_row * k_stride + 8 * k_grp);
    unsigned char* ws = st + 16 * tid;
    unsigned char* ks = st + TILE_BYTES + 1024 * k_grp + 16 * k_row;
#pragma unroll
    for (int x = 0; x < 8; ++x) {
      if (8 * x + w_row < c.rows) cp_async16(ws + 2048 * x, wg + 8 * x * w_stride);
      else *reinterpret_cast<uint4*>(ws + 2048 * x) = make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int x = 0; x < 8; ++x) {
      if (k_row < c.rows) cp_async16(ks + 2048 * x, kg + 16 * x);
      else *reinterpret_cast<uint4*>(ks + 2048 * x) = make_uint4(0, 0, 0, 0);
    }
    UT const* ug = static_cast<UT const*>(a.u) + (c.row0 * HV + hv) * V + vt * BV;
    copy_u.issue(reinterpret_cast<UT*>(st + 2 * TILE_BYTES), LDU, ug, u_stride, c.rows);
  };
  __shared__ __align__(16) ChunkDesc desc_ring[8];
  ChunkWalk walk{a, hv, {desc_ring, a.chunks + c_begin}, static_cast<int>(c_end - c_begin)};
  walk.start(prefetch);

  for (int ci = 0; ci < walk.nch; ++ci) {
    ChunkDesc const c = walk.descs.get(ci);
    int const par = ci & 1;
    unsigned char* st = stage_at(ci);
    float const eg = walk.gates(c, dec_s[par]);

    // round_E(S^T) as A fragments (k step ks: features 16 ks..), lo = round_E(S - hi) with SPLIT
    uint32_t sh[8][4], sl[8][4];
#pragma unroll
    for (int ks = 0; ks < 8; ++ks)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        int const i = 4 * (2 * ks + (q >> 1)) + 2 * (q & 1);
        sh[ks][q] = pack2<E>(S[i], S[i + 1]);
        if constexpr (SPLIT) {
          float2 const hf = unpack2<E>(sh[ks][q]);
          sl[ks][q] = pack2<E>(S[i] - hf.x, S[i + 1] - hf.y);
        }
      }
    // h snapshot into this warp's staging (written out while the tensor cores run)
    E* sg = reinterpret_cast<E*>(stg);
#pragma unroll
    for (int ks = 0; ks < 8; ++ks) stsm_x4_trans(sg + (16 * ks + lr + (li >> 1) * 8) * LDH + (li & 1) * 8, sh[ks]);

    walk.wait(ci);
    fence_proxy_async_smem();  // the cp.async and zero-fill writes, before wgmma reads them
    __syncthreads();
    walk.advance(ci, prefetch);
    uint64_t const desc_w = wgmma_desc(st, 128, 2048);
    uint64_t const desc_k = wgmma_desc(st + TILE_BYTES, 128, 1024);
    UT const* Us = reinterpret_cast<UT const*>(st + 2 * TILE_BYTES);

    // P = S^T W^T (k over features; 16 B core matrices, 2 per k step: +256 B)
    float P[32];
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 8; ++ks) wgmma_m64n64k16_rs<E, 0>(P, sh[ks], desc_w + 16 * ks, ks > 0);
    if constexpr (SPLIT) {
#pragma unroll
      for (int ks = 0; ks < 8; ++ks) wgmma_m64n64k16_rs<E, 0>(P, sl[ks], desc_w + 16 * ks, 1);
    }
    wgmma_commit();
    {
      E* hg = static_cast<E*>(a.h) + ((c.h_row * HV + hv) * K) * V + vt * BV + v0;
      store_staged_rows<E, K>(hg, V, sg, LDH, K);
    }
    wgmma_wait<0>();

    // Delta^T = u^T - P
    float D[32];
    if constexpr (std::is_same_v<UT, E>) {
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        uint32_t uf[4];
        ldsm_x4(uf, Us + (8 * j + lr + (li >> 1) * 8) * LDU + v0 + (li & 1) * 8, true);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          float2 const u2 = unpack2<E>(uf[q]);
          int const i = 4 * (j + (q >> 1)) + 2 * (q & 1);
          D[i] = u2.x - P[i], D[i + 1] = u2.y - P[i + 1];
        }
      }
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          D[4 * j + e] = Us[(8 * j + 2 * t + (e & 1)) * LDU + v0 + g + 8 * (e >> 1)] - P[4 * j + e];
    }

    // S^T <- e^{gl} S^T + round_E(Delta^T diag(gate)) K (k over tokens)
    float const* dec = dec_s[par];
    uint32_t df[4][4];
#pragma unroll
    for (int ks = 0; ks < 4; ++ks)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        int const j = 2 * ks + (q >> 1), i = 4 * j + 2 * (q & 1);
        float2 const d2 = *reinterpret_cast<float2 const*>(dec + 8 * j + 2 * t);
        df[ks][q] = pack2<E>(D[i] * d2.x, D[i + 1] * d2.y);
      }
#pragma unroll
    for (int i = 0; i < 64; ++i) S[i] *= eg;
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) wgmma_m64n128k16_rs<E, 1>(S, df[ks], desc_k + 16 * ks, 1);
    wgmma_commit();

    // v_new (all 64 tokens of this warp's 16 columns) while the update runs
    {
      UT* vng = static_cast<UT*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV + v0;
      constexpr int LDS = std::is_same_v<UT, float> ? LDVF : LDH;
      UT* sv = reinterpret_cast<UT*>(stg);
      __syncwarp();  // the h staging reads are done
      if constexpr (std::is_same_v<UT, E>) {
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
          uint32_t const r[4] = {pack2<E>(D[4 * j], D[4 * j + 1]), pack2<E>(D[4 * j + 2], D[4 * j + 3]),
                                 pack2<E>(D[4 * j + 4], D[4 * j + 5]), pack2<E>(D[4 * j + 6], D[4 * j + 7])};
          stsm_x4_trans(sv + (8 * j + lr + (li >> 1) * 8) * LDS + (li & 1) * 8, r);
        }
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) sv[(8 * j + 2 * t + (e & 1)) * LDS + g + 8 * (e >> 1)] = D[4 * j + e];
      }
      __syncwarp();
      store_staged_rows<UT, kBT>(vng, static_cast<int64_t>(HV) * V, sv, LDS, c.rows);
    }
    wgmma_wait<0>();
  }

  float* fs = a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV + v0 + g;
#pragma unroll
  for (int j = 0; j < 16; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) fs[(8 * j + 2 * t + (e & 1)) * V + 8 * (e >> 1)] = S[4 * j + e];
  block_time_end(a.block_times);
}

template <class E, class UT, bool SPLIT>
void launch_state_v4(Args const& a, Stream s) {
  constexpr int BV = 64, LDU = BV + 8;
  constexpr std::size_t stage = 2 * kBT * 128 * 2 + kBT * LDU * sizeof(UT);
  std::size_t const bytes = 3 * stage + 4 * 128 * 24 * 2;
  ensure_smem<chunk_state_v4_kernel<E, UT, SPLIT>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (128 / BV));
  chunk_state_v4_kernel<E, UT, SPLIT><<<grid, 128, bytes, s>>>(a);
}

template <class E, int K, bool SPLIT>
void launch_state(Args const& a, Stream s) {
  if constexpr (!std::is_same_v<E, float>) {
    if (a.state_variant == 4 && K == 128) {
      if (a.precise_uv) launch_state_v4<E, float, SPLIT>(a, s); else launch_state_v4<E, E, SPLIT>(a, s);
      return;
    }
    if (a.state_variant == 3) {
      if (a.precise_uv) launch_state_v3<E, float, K, SPLIT>(a, s); else launch_state_v3<E, E, K, SPLIT>(a, s);
      return;
    }
  }
  if (a.precise_uv && !std::is_same_v<E, float>) {
    if (a.state_variant == 1) throw std::invalid_argument("chunk_state: precise_uv needs state variant 2 or 3");
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
