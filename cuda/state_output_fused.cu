// Stages 5 and 6 in one kernel (issue 5, item 4 "the whole forward fused", its second half): the state
// recurrence of chunk_state variant 2 and the output of chunk_output variant 2, so that h and v_new never
// travel through device memory (they are stored only where Args::h / Args::v_new are set, for checks).
// Four variants (Args::state_output_variant), all writing the bytes of chunk_state 2 + chunk_output 2:
//   2 (below, after variant 1) chunk_scores writes the gated score rows first (once per key head;
//     skipped where intra_fused 3 wrote them, Args::scores_in_intra), then 256 threads per block run the
//     recurrence and, per chunk, o from the snapshot and v_new still in shared memory: 309 us with chunk_scores'
//     46 (kernel ~263) against the two kernels' 351 (H200, T = 8192, cold, tree c53d2c3; version 2d).
//   3 (last, K = 128) variant 2's products as warpgroup MMAs with both operands in shared memory: the same
//     bytes, but SLOWER (514 us warm against 309; reasons and numbers at the kernel).
//   4 (default at K = 128; last) variant 3 with its tiles loaded by TMA: 204 us with chunk_scores (H200, T = 8192,
//     warm, session 7), the forward with it 334 against variant 2's 437; blocks of 32 or 64 value columns
//     (Args::state_output_columns; 64 where it saves a wave: B = 4, T = 4096, HV = 16, 208 us against 229).
//   1 warp roles, as described next: 606 us.
// Variant 4 also runs with Args::delta_from_v (So4Layout FV): the delta formed from v and round(A_inv diag(beta))
// instead of u - W h_c (FlashQLA's form, its own arithmetic: `fused-forward-from-v`, not these bytes).
//
// Variant 1. One block of 384 threads per (sequence, value head, V tile of BV = 32 columns), the grid of chunk_state 2
// (state_tile), with two warp roles:
//   warps 0-7  the recurrence, chunk_state 2's code and arithmetic: per chunk they write round_E(S) (the h
//              value) and v_new = u - W round_E(S) into buffer b = step & 1, then update S in registers;
//   warps 8-11 the output of the chunk the state warps handed over: warp m owns rows 16m..16m+15, computes
//              its score tiles (Q K^T, gated, masked and rounded to E as chunk_output 2), then
//              o = scale (diag(e^{gc}) Q h_c + P v_new_c) for the block's 32 columns, and stores h_c and
//              v_new_c where asked. They load their own q and k tiles (two stages).
// The hand-off: FULL[b] (bar.arrive by the state warps once h_c, v_new_c and chunk c's gates are in buffer b;
// bar.sync by the output warps) and EMPTY[b] (the reverse, before the state warps refill buffer b two chunks
// later). The output of chunk c can overlap the state step of chunk c + 1, and the state warps' chain loses
// the h and v_new stores it carries in chunk_state 2.
// Bits: every product sees the operand values of chunk_state 2 + chunk_output 2 in the same k order and the
// gates are the same expressions, so h, v_new, final_state and o are those kernels' bytes
// (tests/cuda/test_gpu_state_output.cpp). 16-bit inputs, K = V = 64 or 128, the FLA rounding of the W*S
// operand (no split) and no precise_uv; other problems run chunk_state + chunk_output (state_output_runs_fused).
// Registers: one block per SM (100 KB + 95 KB of shared memory), 384 threads: at most 168 per thread (167).
//
// Measured (H200, B=1 T=8192 H=16 HV=32, chunk_state 2 + chunk_output 2 = 362-366 us in the same runs):
// SLOWER than the two kernels, so no default pipeline uses it (implementation "fused-forward" checks it).
//   1a  output warps loading their descriptors and gates from global memory each chunk: 698 us.
//   1b  descriptors and gates one chunk ahead in registers, Q K^T in one k loop: 643 us.
//   1c  (this) descriptors and gates handed over in shared memory by the state warps, h / v_new read into
//       registers and the buffer released before any global store: 618-621 us (forward 762, B=4 T=4096 HV=16:
//       624 against 328, T = 32768: 2428 against 1383).
//   1d  tile copies as row-wise bulk copies (cp.async.bulk, one warp per role, mbarrier completion): 1001 us;
//       removed.
// Trace (%globaltimer per step, block 0): the state warps alone (output warps exiting at once) take 1.42 us
// per chunk (184-189 us in all; chunk_state 2, which also stores h and v_new: 230); with output warps that
// only hand over, load one descriptor and store zeros (no tiles, no products) 3.1 us; with the output of
// 1b 5.0 us. The state warps' time goes
// into waiting at EMPTY (bar.sync defers the block to the first shared-memory access after it, so timers
// read right after the barrier show ~0): the output warps are the slower side, 3 us per chunk even with
// nothing to compute. Open: why an output warp's chunk takes microseconds (the state warps' 36 KB of cp.async
// per chunk and SM queue ahead of every other load on the SM; with the output's own q/k tiles, 68 KB per
// chunk and SM would need ~6 TB/s from L2 at the state's pace). Next: Nsight Compute on this kernel, and
// the 4 V-tile blocks of a head sharing the W, K and Q tiles (a 4-CTA cluster, multicast copies).
#include <algorithm>

#include "common.cuh"
#include "state_step.cuh"
#include "tma.cuh"
#include "wgmma.cuh"

namespace gdn_cuda {
namespace {

constexpr int kStateWarps = 8, kOutWarps = 4;
constexpr int kThreads = 32 * (kStateWarps + kOutWarps);
// named barriers (0 is __syncthreads)
constexpr int kBarState = 1;  // the state warps among themselves
constexpr int kBarOut = 2;    // the output warps among themselves
constexpr int kBarFull = 3;   // + b: buffer b holds h_c and v_new_c
constexpr int kBarEmpty = 5;  // + b: the output warps are done with buffer b

template <int K>
struct SoLayout {
  static constexpr int BV = 32, LDK = K + 8, LDU = BV + 8, LDP = kBT + 8;
  static constexpr int TILE = kBT * LDK;             // one 64-row W, K or Q tile
  static constexpr int STATE_STAGE = 2 * TILE + kBT * LDU;  // W, K, U
  // element offsets (all multiples of 8: 16-byte aligned)
  static constexpr int kStateStages = 0;
  static constexpr int kSb = kStateStages + 2 * STATE_STAGE;  // [2][K][LDU] round_E(S) = h_c
  static constexpr int kDb = kSb + 2 * K * LDU;               // [64][LDU] gated delta (state warps)
  static constexpr int kVs = kDb + kBT * LDU;                 // [2][64][LDU] v_new_c
  static constexpr int kOutStages = kVs + 2 * kBT * LDU;      // [2] x (Q, K) tiles
  static constexpr int kPb = kOutStages + 4 * TILE;           // [64][LDP] score tile (rows private per warp)
  static constexpr int kElems = kPb + kBT * LDP;
};

template <class E, int K>
__global__ void __launch_bounds__(kThreads, 1) state_output_fused_kernel(Args a) {
  using L = SoLayout<K>;
  constexpr int V = K, BV = L::BV, LDK = L::LDK, LDU = L::LDU, LDP = L::LDP;
  constexpr int MTILES = K / 16;               // 16-row tiles of the state
  constexpr int WPM = kStateWarps / MTILES;    // state warps per m-tile (1 for K=128, 2 for K=64)
  constexpr int SNT = BV / 8 / WPM;            // 8-col tiles of the state per state warp
  constexpr int VPR = BV * static_cast<int>(sizeof(E)) / 16;  // 16-byte pieces per row of BV
  extern __shared__ __align__(16) unsigned char smem[];
  E* const base = reinterpret_cast<E*>(smem);
  E* const Db = base + L::kDb;
  E* const Pb = base + L::kPb;
  // g_cumsum of chunk c in gs[c & 1] (0 past the chunk's end) and chunk c's descriptor in descs[c & 3], both
  // written by the state warps (step c - 2 for the descriptor, step c for the gates) and read by the output
  // warps after FULL: the output warps issue no global load of their own but their q and k tile copies
  // (every global load on their path waited behind the state warps' tile copies: 3 us per chunk).
  __shared__ float gs[2][kBT];
  __shared__ ChunkDesc descs[4];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  StateTile const tile = state_tile<V / BV>(a);
  int const n = tile.n, hv = tile.hv, hk = tile.hk, vt = tile.vt;
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3;
  int64_t const c_begin = a.seq_chunk_begin[n], c_end = a.seq_chunk_begin[n + 1];
  auto Sb_at = [&](int b) { return base + L::kSb + b * K * LDU; };
  auto Vs_at = [&](int b) { return base + L::kVs + b * kBT * LDU; };
  if (tid < 2 && c_begin + tid < c_end) descs[tid] = a.chunks[c_begin + tid];
  __syncthreads();

  if (warp < kStateWarps) {
    // ---------------------------------------------------------------- the recurrence (chunk_state 2)
    int const sm = warp % MTILES, sc0 = (warp / MTILES) * SNT * 8;  // this warp's state block
    int const dm = warp & 3, dc0 = (warp >> 2) * 16;                // and its W*S block
    float S[1][SNT][4];
    load_state_block(S, a.h0 ? a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV : nullptr, V, sm, sc0);
    auto stage_at = [&](int64_t i) { return base + L::kStateStages + (i & 1) * L::STATE_STAGE; };
    TileCopy<E, kBT, K, kStateWarps * 32> const copy_wk(tid);
    TileCopy<E, kBT, BV, kStateWarps * 32> const copy_u(tid);
    int64_t const w_stride = static_cast<int64_t>(HV) * K, k_stride = a.d.H * K, u_stride = static_cast<int64_t>(HV) * V;
    auto prefetch = [&](ChunkDesc const& c, E* st) {
      E const* wg = static_cast<E const*>(a.w) + (c.row0 * HV + hv) * K;
      E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
      E const* ug = static_cast<E const*>(a.u) + (c.row0 * HV + hv) * V + vt * BV;
      copy_wk.issue(st, LDK, wg, w_stride, c.rows);
      copy_wk.issue(st + L::TILE, LDK, kg, k_stride, c.rows);
      copy_u.issue(st + 2 * L::TILE, LDU, ug, u_stride, c.rows);
      cp_async_commit();
    };
    ChunkDesc cur{}, nxt{}, nn{};  // chunks ci, ci + 1, ci + 2
    float g_next = 0.f;
    if (c_begin < c_end) {
      cur = a.chunks[c_begin];
      prefetch(cur, stage_at(0));
      if (tid < kBT && tid < cur.rows) g_next = a.g_cumsum[(cur.row0 + tid) * HV + hv];
    }
    if (c_begin + 1 < c_end) nxt = a.chunks[c_begin + 1];
    if (c_begin + 2 < c_end) nn = a.chunks[c_begin + 2];

    for (int64_t ci = c_begin; ci < c_end; ++ci) {
      int const step = static_cast<int>(ci - c_begin), b = step & 1;
      ChunkDesc const c = cur;
      E* const st = stage_at(step);
      bool const has_next = ci + 1 < c_end;
      ChunkDesc const c_next = nxt;
      float const g_now = g_next;
      g_next = (has_next && tid < kBT && tid < nxt.rows) ? a.g_cumsum[(nxt.row0 + tid) * HV + hv] : 0.f;
      cur = nxt;
      E* const Sb = Sb_at(b);
      E* const Vs = Vs_at(b);
      float* const gsb = gs[b];
      if (step >= 2) named_barrier(kBarEmpty + b, kThreads);  // chunk ci - 2's output is done with buffer b
      if (tid < kBT) gsb[tid] = g_now;
      // chunk ci + 2's descriptor (loaded one step ago) for the output warps' q/k copy at the end of their
      // chunk ci; its slot was last read for chunk ci - 2, whose output is done
      if (tid == kBT && ci + 2 < c_end) descs[(step + 2) & 3] = nn;
      nxt = nn;
      if (ci + 3 < c_end) nn = a.chunks[ci + 3];

      // 1. snapshot (hi = round_E(S) is the h value)
    snapshot_state<E, false>(S, Sb, static_cast<E*>(nullptr), LDU, sm, sc0);
      cp_async_wait<0>();  // this chunk's tiles (the only group in flight)
      named_barrier(kBarState, kStateWarps * 32);
      // every state warp is past the previous step (its K^T Db read the stage refilled here)
      if (has_next) prefetch(c_next, stage_at(step + 1));

      // 2. Delta = u - W S, in two independent accumulators over the halves of K (chunk_state 2's order)
      E const* Ws = st;
      E const* Ks = st + L::TILE;
      E const* Us = st + 2 * L::TILE;
      float D[1][2][4], D1[1][2][4];
      zero_acc(D);
      zero_acc(D1);
      warp_mma<E, true, false, 1, 2>(D, Ws, LDK, 16 * dm, Sb, LDU, dc0, 0, K / 2);
      warp_mma<E, true, false, 1, 2>(D1, Ws, LDK, 16 * dm, Sb, LDU, dc0, K / 2, K);
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) D[0][j][e] += D1[0][j][e];
      float const gl = gsb[c.rows - 1];
      delta_to_smem<E, E>(D, Us, Vs, Db, LDU, gsb, gl, c.rows, dm, dc0);
      named_barrier(kBarState, kStateWarps * 32);
      named_barrier_arrive(kBarFull + b, kThreads);  // h_c and v_new_c are in buffer b

      // 3. S <- e^{gl} S + K^T Db
      float const eg = expf(gl);
#pragma unroll
      for (int j = 0; j < SNT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) S[0][j][e] *= eg;
      warp_mma<E, false, false, 1, SNT>(S, Ks, LDK, 16 * sm, Db, LDU, sc0, 0, kBT);
    }

    store_state_block(S, a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV, V, sm, sc0);
  } else {
    // ---------------------------------------------------------------- the output (chunk_output 2)
    int const otid = tid - kStateWarps * 32;  // 0..127
    int const m = warp - kStateWarps;         // this warp's 16 rows of the chunk
    TileCopy<E, kBT, K, kOutWarps * 32> const copy_qk(otid);
    int64_t const qk_stride = a.d.H * K;
    auto load_qk = [&](ChunkDesc const& c, int s) {
      E* const Qs = base + L::kOutStages + s * 2 * L::TILE;
      copy_qk.issue(Qs, LDK, static_cast<E const*>(a.q) + (c.row0 * a.d.H + hk) * K, qk_stride, c.rows);
      copy_qk.issue(Qs + L::TILE, LDK, static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K, qk_stride, c.rows);
      cp_async_commit();
    };
    if (c_begin < c_end) load_qk(descs[0], 0);
    if (c_begin + 1 < c_end) load_qk(descs[1], 1);
    float const sc = a.scale;
    constexpr int HPT = K * VPR / (kOutWarps * 32);  // 16-byte pieces of h_c per output thread
    constexpr int VPT = kBT * VPR / (kOutWarps * 32);  // and of v_new_c

    for (int64_t ci = c_begin; ci < c_end; ++ci) {
      int const step = static_cast<int>(ci - c_begin), b = step & 1;
      E const* Qs = base + L::kOutStages + b * 2 * L::TILE;
      E const* Ks = Qs + L::TILE;
      if (ci + 1 < c_end) cp_async_wait<1>(); else cp_async_wait<0>();
      named_barrier(kBarOut, kOutWarps * 32);  // every output thread's pieces of chunk ci are in

      // Q K^T for this warp's rows: the m + 1 tiles of 16 columns on or below the diagonal in one k loop
      // (independent accumulators; per element the k order of chunk_output 2's per-tile products)
      float P[4][2][4];
      qk_lower_tiles<E, K>(P, Qs, Ks, LDK, m);

      named_barrier(kBarFull + b, kThreads);  // h_c, v_new_c, the gates and the descriptors are in
      ChunkDesc const c = descs[step & 3];
      ChunkDesc const c2 = descs[(step + 2) & 3];  // valid when ci + 2 < c_end
      float const* gc = gs[b];
      E const* Sb = Sb_at(b);
      E const* Vs = Vs_at(b);
      // gate, mask and round the scores into this warp's rows of Pb (chunk_output 2's expressions; the
      // tiles above the diagonal block are never read)
      gate_score_strip<E, false>(P, gc, c.rows, m, Pb + 16 * m * LDP, LDP);
      float O[1][BV / 8][4];
      zero_acc(O);
      warp_mma<E, true, false, 1, BV / 8>(O, Qs, LDK, 16 * m, Sb, LDU, 0, 0, K);
      float er[2];
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * m + g + 8 * hh;
        er[hh] = expf(r < c.rows ? gc[r] : 0.f);
#pragma unroll
        for (int j = 0; j < BV / 8; ++j) O[0][j][2 * hh] *= er[hh], O[0][j][2 * hh + 1] *= er[hh];
      }
      __syncwarp();  // this warp's score rows
      warp_mma<E, true, false, 1, BV / 8>(O, Pb, LDP, 16 * m, Vs, LDU, 0, 0, 16 * (m + 1));
      // h_c and v_new_c into registers where they are stored, so that buffer b can be released first
      uint4 hreg[HPT], vreg[VPT];
      if (a.h) {
#pragma unroll
        for (int x = 0; x < HPT; ++x) {
          int const idx = otid + x * kOutWarps * 32, r = idx / VPR, q = (idx % VPR) * (16 / static_cast<int>(sizeof(E)));
          hreg[x] = *reinterpret_cast<uint4 const*>(Sb + r * LDU + q);
        }
      }
      if (a.v_new) {
#pragma unroll
        for (int x = 0; x < VPT; ++x) {
          int const idx = otid + x * kOutWarps * 32, r = idx / VPR, q = (idx % VPR) * (16 / static_cast<int>(sizeof(E)));
          vreg[x] = *reinterpret_cast<uint4 const*>(Vs + r * LDU + q);
        }
      }
      if (ci + 2 < c_end) named_barrier_arrive(kBarEmpty + b, kThreads);  // the state warps may refill buffer b
      named_barrier(kBarOut, kOutWarps * 32);  // every output warp is done with stage b's q and k
      if (ci + 2 < c_end) load_qk(c2, b);

      // stores last: o, then h_c and v_new_c where asked (16-byte pieces)
      E* og = static_cast<E*>(a.o) + (c.row0 * HV + hv) * V + vt * BV;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * m + g + 8 * hh;
        if (r >= c.rows) continue;
#pragma unroll
        for (int j = 0; j < BV / 8; ++j)
          store2<E>(og + static_cast<int64_t>(r) * HV * V + 8 * j + 2 * t, sc * O[0][j][2 * hh], sc * O[0][j][2 * hh + 1]);
      }
      if (a.h) {
        E* hg = static_cast<E*>(a.h) + ((c.h_row * HV + hv) * K) * V + vt * BV;
#pragma unroll
        for (int x = 0; x < HPT; ++x) {
          int const idx = otid + x * kOutWarps * 32, r = idx / VPR, q = (idx % VPR) * (16 / static_cast<int>(sizeof(E)));
          *reinterpret_cast<uint4*>(hg + static_cast<int64_t>(r) * V + q) = hreg[x];
        }
      }
      if (a.v_new) {
        E* vng = static_cast<E*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV;
#pragma unroll
        for (int x = 0; x < VPT; ++x) {
          int const idx = otid + x * kOutWarps * 32, r = idx / VPR, q = (idx % VPR) * (16 / static_cast<int>(sizeof(E)));
          if (r < c.rows) *reinterpret_cast<uint4*>(vng + static_cast<int64_t>(r) * HV * V + q) = vreg[x];
        }
      }
    }
  }
  block_time_end(a.block_times);
}

// ---------------------------------------------------------------------------------------------------------
// Variant 2: no warp roles. 256 threads per (sequence, value head, 32 columns); per chunk every warp runs
// chunk_state 2's step (snapshot, W*S and the gated delta, the update) and then its 16 x 16 piece of o
// (warp w: rows 16(w & 3).., columns 16(w >> 2)..) from the snapshot and v_new still in shared memory and
// the chunk's score rows written by chunk_scores. The next chunk's W, K, U, Q tiles and score rows are
// copied during the step (two stages). Snapshot and v_new are double-buffered so that the next step's
// snapshot does not wait for a slow warp's output.
// Why: Nsight Compute of variant 1 (bench/results/ncu-H200-state_output_fused-565853e.txt and the source
// page) puts 58% of the state warps' stall samples at the EMPTY barrier; an output warp executes 1088
// instructions per chunk (its Q K^T 241, the gates ~400) on one warp per scheduler, against 341 per state
// warp. Variant 2 moves Q K^T and the gates out (chunk_scores, once per key head instead of once per V tile)
// and spreads the rest over all eight warps.
// Versions (H200, B=1 T=8192 H=16 HV=32; chunk_state 2 + chunk_output 2 in the same runs 362-366 us):
//   2a  warp_mma calls as in the two kernels, o after the update: 366 us (chunk_scores 48 + ~318).
//   2b  W*S and Q*h in one k loop sharing the snapshot's B fragments; the update and scores*v_new
//       interleaved: 341 us (kernel ~291); T = 32768: 1265 against 1382; B=4 T=4096 HV=16: 358 against 329
//       (256 blocks at one per SM by 195 registers and 169 KB: two waves).
//   2c  the next chunk's copies in three cp.async groups spread over the step (W+Q after the first barrier,
//       K+U after v_new, the score rows after the update), the score rows waited for only before part 3:
//       310.7 us cold (chunk_scores 44.1), 307.3 warm; T = 32768 1170 (two kernels 1387); B=4 T=4096 HV=16 323.5
//       (328.2): the two waves there no longer lose (tree 1d432bd, bench/results/*-1d432bd*).
//   2d  (this) U moved into the first group and K alone in the second, both waited for only where needed: 306.0
//       warm against 2c's 307.3 in the same run, 1163 / 1170 at T = 32768, 319.9 / 323.5 at B=4 (tree c3f0256).
// Nsight Compute of 2b: 632 instructions per warp and step; stall samples long scoreboard 19.5% (on the
// address arithmetic between the copies: registers still held by queued cp.async), wait 19.5%, short
// scoreboard 17.6%, selected 16.4%, MIO 8.5%, barrier 3.8%.
// Variant 2's products, written out so that independent accumulator chains interleave (mma.sync issues in
// program order; one chain's wait for its previous product leaves the other's issue slots free). Per
// accumulator the mma sequence of warp_mma (same fragments, same k order), hence the same bytes.
// D += W Sb over k < K/2, D1 over k >= K/2, O += Q Sb over all k (rows m0.., columns n0..n0+15).
template <class E, int K>
__device__ __forceinline__ void ws_and_qs(float (&D)[1][2][4], float (&D1)[1][2][4], float (&O)[1][2][4],
                                          E const* Ws, E const* Qs, int lda, int m0, E const* Sb, int ldb, int n0) {
  int const lane = threadIdx.x & 31, li = lane >> 3, lr = lane & 7;
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t bf[4], aw[4], aq[4];
    ldsm_x4(bf, Sb + (k0 + lr + (li & 1) * 8) * ldb + n0 + (li >> 1) * 8, true);
    ldsm_x4(aw, Ws + (m0 + (lane & 15)) * lda + k0 + (lane >> 4) * 8, false);
    ldsm_x4(aq, Qs + (m0 + (lane & 15)) * lda + k0 + (lane >> 4) * 8, false);
    if (k0 < K / 2) {
      mma16816<E>(D[0][0], aw, bf[0], bf[1]);
      mma16816<E>(D[0][1], aw, bf[2], bf[3]);
    } else {
      mma16816<E>(D1[0][0], aw, bf[0], bf[1]);
      mma16816<E>(D1[0][1], aw, bf[2], bf[3]);
    }
    mma16816<E>(O[0][0], aq, bf[0], bf[1]);
    mma16816<E>(O[0][1], aq, bf[2], bf[3]);
  }
}

// S += K^T Db over the chunk's 64 rows (A = the K tile transposed, rows ms.. of S, columns sc0..), and
// O += P Vs over k < 16 (dm + 1) (P the score rows of rows 16 dm.., Vs columns n0..n0+15).
template <class E, int SNT>
__device__ __forceinline__ void update_and_pv(float (&S)[1][SNT][4], E const* Ks, int ldk, int ms, E const* Db, int ldd,
                                              int sc0, float (&O)[1][2][4], E const* Ps, int ldp, int dm, E const* Vs,
                                              int n0) {
  int const lane = threadIdx.x & 31, li = lane >> 3, lr = lane & 7;
#pragma unroll
  for (int k0 = 0; k0 < kBT; k0 += 16) {
    uint32_t ak[4];
    ldsm_x4(ak, Ks + (k0 + lr + (li >> 1) * 8) * ldk + ms + (li & 1) * 8, true);
#pragma unroll
    for (int j = 0; j < SNT; j += 2) {
      uint32_t bd[4];
      ldsm_x4(bd, Db + (k0 + lr + (li & 1) * 8) * ldd + sc0 + 8 * j + (li >> 1) * 8, true);
      mma16816<E>(S[0][j], ak, bd[0], bd[1]);
      mma16816<E>(S[0][j + 1], ak, bd[2], bd[3]);
    }
    if (k0 < 16 * (dm + 1)) {
      uint32_t ap[4], bv[4];
      ldsm_x4(ap, Ps + (16 * dm + (lane & 15)) * ldp + k0 + (lane >> 4) * 8, false);
      ldsm_x4(bv, Vs + (k0 + lr + (li & 1) * 8) * ldd + n0 + (li >> 1) * 8, true);
      mma16816<E>(O[0][0], ap, bv[0], bv[1]);
      mma16816<E>(O[0][1], ap, bv[2], bv[3]);
    }
  }
}

template <int K>
struct So2Layout {
  static constexpr int BV = 32, LDK = K + 8, LDU = BV + 8, LDP = kBT + 8;
  static constexpr int TILE = kBT * LDK;
  static constexpr int STAGE = 3 * TILE + kBT * LDU + kBT * LDP;  // W, K, Q, U, score rows
  static constexpr int kW = 0, kK = TILE, kQ = 2 * TILE, kU = 3 * TILE, kP = 3 * TILE + kBT * LDU;
  static constexpr int kSb = 2 * STAGE;        // [2][K][LDU] round_E(S) = h_c
  static constexpr int kDb = kSb + 2 * K * LDU;  // [64][LDU] gated delta
  static constexpr int kVs = kDb + kBT * LDU;    // [2][64][LDU] v_new_c
  static constexpr int kElems = kVs + 2 * kBT * LDU;
};

template <class E, int K>
__global__ void __launch_bounds__(256, 1) state_output_v2_kernel(Args a) {
  using L = So2Layout<K>;
  constexpr int V = K, BV = L::BV, LDK = L::LDK, LDU = L::LDU, LDP = L::LDP;
  constexpr int NW = 8;
  constexpr int MTILES = K / 16;
  constexpr int WPM = NW / MTILES;
  constexpr int SNT = BV / 8 / WPM;
  constexpr int VPR = BV * static_cast<int>(sizeof(E)) / 16;
  extern __shared__ __align__(16) unsigned char smem[];
  E* const base = reinterpret_cast<E*>(smem);
  E* const Db = base + L::kDb;
  __shared__ float gs[2][kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  StateTile const tile = state_tile<V / BV>(a);
  int const n = tile.n, hv = tile.hv, hk = tile.hk, vt = tile.vt;
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int const g = lane >> 2, t = lane & 3;
  int64_t const c_begin = a.seq_chunk_begin[n], c_end = a.seq_chunk_begin[n + 1];
  int const sm = warp % MTILES, sc0 = (warp / MTILES) * SNT * 8;  // this warp's state block
  int const dm = warp & 3, dc0 = (warp >> 2) * 16;                // its W*S block and its piece of o

  float S[1][SNT][4];
  load_state_block(S, a.h0 ? a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV : nullptr, V, sm, sc0);
  auto stage_at = [&](int64_t i) { return base + (i & 1) * L::STAGE; };
  TileCopy<E, kBT, K, 256> const copy_k(tid);
  TileCopy<E, kBT, BV, 256> const copy_u(tid);
  TileCopy<E, kBT, kBT, 256> const copy_p(tid);
  int64_t const w_stride = static_cast<int64_t>(HV) * K, k_stride = a.d.H * K, u_stride = static_cast<int64_t>(HV) * V;
  // The next chunk's copies in three parts spread over the step, each its own cp.async group, in the order
  // they are needed: W, Q and U (part 2 of the next step), K (part 3), the score rows (part 3). Issued at once,
  // the 15 copies per thread stalled on the address registers of the copies still queued (20% of the stall
  // samples, long scoreboard); waited for all at the step's start, the late ones exposed their latency.
  auto prefetch_wqu = [&](ChunkDesc const& c, E* st) {
    copy_k.issue(st + L::kW, LDK, static_cast<E const*>(a.w) + (c.row0 * HV + hv) * K, w_stride, c.rows);
    copy_k.issue(st + L::kQ, LDK, static_cast<E const*>(a.q) + (c.row0 * a.d.H + hk) * K, k_stride, c.rows);
    copy_u.issue(st + L::kU, LDU, static_cast<E const*>(a.u) + (c.row0 * HV + hv) * V + vt * BV, u_stride, c.rows);
    cp_async_commit();
  };
  auto prefetch_k = [&](ChunkDesc const& c, E* st) {
    copy_k.issue(st + L::kK, LDK, static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K, k_stride, c.rows);
    cp_async_commit();
  };
  auto prefetch_p = [&](ChunkDesc const& c, E* st) {
    copy_p.issue(st + L::kP, LDP, static_cast<E const*>(a.scores) + (c.row0 * HV + hv) * kBT,
                 static_cast<int64_t>(HV) * kBT, c.rows);
    cp_async_commit();
  };
  ChunkDesc cur{}, nxt{};
  float g_next = 0.f;
  if (c_begin < c_end) {
    cur = a.chunks[c_begin];
    prefetch_wqu(cur, stage_at(0));
    prefetch_k(cur, stage_at(0));
    prefetch_p(cur, stage_at(0));
    if (tid < kBT && tid < cur.rows) g_next = a.g_cumsum[(cur.row0 + tid) * HV + hv];
  }
  if (c_begin + 1 < c_end) nxt = a.chunks[c_begin + 1];
  float const sc = a.scale;

  for (int64_t ci = c_begin; ci < c_end; ++ci) {
    int const step = static_cast<int>(ci - c_begin), b = step & 1;
    ChunkDesc const c = cur;
    E* const st = stage_at(step);
    bool const has_next = ci + 1 < c_end;
    ChunkDesc const c_next = nxt;
    float const g_now = g_next;
    g_next = (has_next && tid < kBT && tid < nxt.rows) ? a.g_cumsum[(nxt.row0 + tid) * HV + hv] : 0.f;
    cur = nxt;
    if (ci + 2 < c_end) nxt = a.chunks[ci + 2];
    E* const Sb = base + L::kSb + b * K * LDU;
    E* const Vs = base + L::kVs + b * kBT * LDU;
    float* const gsb = gs[b];
    if (tid < kBT) gsb[tid] = g_now;

    // 1. snapshot (hi = round_E(S) is the h value)
    snapshot_state<E, false>(S, Sb, static_cast<E*>(nullptr), LDU, sm, sc0);
    // in flight: this chunk's groups W+Q+U, K, score rows (issued in that order during the last step); K and
    // the score rows are needed only in part 3, so they may land under part 2
    cp_async_wait<2>();
    __syncthreads();  // every warp is past the previous step: its stage is free for the next chunk
    E* const st_next = stage_at(step + 1);
    if (has_next) prefetch_wqu(c_next, st_next);

    // 2. Delta = u - W S in two accumulators over the halves of K (chunk_state 2's order), and Q h_c for this
    // warp's piece of o, in one k loop that loads each B fragment of the snapshot once for both
    E const* Ks = st + L::kK;
    E const* Us = st + L::kU;
    float D[1][2][4], D1[1][2][4], O[1][2][4];
    zero_acc(D);
    zero_acc(D1);
    zero_acc(O);
    ws_and_qs<E, K>(D, D1, O, st + L::kW, st + L::kQ, LDK, 16 * dm, Sb, LDU, dc0);
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) D[0][j][e] += D1[0][j][e];
    float const gl = gsb[c.rows - 1];
    delta_to_smem<E, E>(D, Us, Vs, Db, LDU, gsb, gl, c.rows, dm, dc0);
    if (has_next) {
      prefetch_k(c_next, st_next);
      cp_async_wait<2>();  // this chunk's K and score rows (the next chunk's W+Q+U and K may stay in flight)
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // v_new_c, the gated delta, the snapshot, K and the score rows complete

    // 3. S <- e^{gl} S + K^T Db, and o += scores v_new_c after the row gates (chunk_output 2's order), the two
    // accumulations interleaved k step by k step
    float const eg = expf(gl);
#pragma unroll
    for (int j = 0; j < SNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[0][j][e] *= eg;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * dm + g + 8 * hh;
      float const er = expf(r < c.rows ? gsb[r] : 0.f);
#pragma unroll
      for (int j = 0; j < 2; ++j) O[0][j][2 * hh] *= er, O[0][j][2 * hh + 1] *= er;
    }
    update_and_pv<E, SNT>(S, Ks, LDK, 16 * sm, Db, LDU, sc0, O, st + L::kP, LDP, dm, Vs, dc0);
    if (has_next) prefetch_p(c_next, st_next);
    E* const og = static_cast<E*>(a.o) + (c.row0 * HV + hv) * V + vt * BV + dc0;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const r = 16 * dm + g + 8 * hh;
      if (r >= c.rows) continue;
#pragma unroll
      for (int j = 0; j < 2; ++j)
        store2<E>(og + static_cast<int64_t>(r) * HV * V + 8 * j + 2 * t, sc * O[0][j][2 * hh], sc * O[0][j][2 * hh + 1]);
    }
    // 5. h_c and v_new_c where asked (16-byte pieces)
    if (a.h) {
      E* hg = static_cast<E*>(a.h) + ((c.h_row * HV + hv) * K) * V + vt * BV;
#pragma unroll
      for (int x = 0; x < K * VPR / 256; ++x) {
        int const idx = tid + 256 * x, r = idx / VPR, q = (idx % VPR) * (16 / static_cast<int>(sizeof(E)));
        *reinterpret_cast<uint4*>(hg + static_cast<int64_t>(r) * V + q) = *reinterpret_cast<uint4 const*>(Sb + r * LDU + q);
      }
    }
    if (a.v_new) {
      E* vng = static_cast<E*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV;
#pragma unroll
      for (int x = 0; x < kBT * VPR / 256; ++x) {
        int const idx = tid + 256 * x, r = idx / VPR, q = (idx % VPR) * (16 / static_cast<int>(sizeof(E)));
        if (r < c.rows) *reinterpret_cast<uint4*>(vng + static_cast<int64_t>(r) * HV * V + q) = *reinterpret_cast<uint4 const*>(Vs + r * LDU + q);
      }
    }
  }

  store_state_block(S, a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV, V, sm, sc0);
  block_time_end(a.block_times);
}

template <class E, int K>
void launch_state_output_v2(Args const& a, Stream s) {
  std::size_t const bytes = sizeof(E) * So2Layout<K>::kElems;
  ensure_smem<state_output_v2_kernel<E, K>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (K / So2Layout<K>::BV));
  state_output_v2_kernel<E, K><<<grid, 256, bytes, s>>>(a);
}

// ---------------------------------------------------------------- variant 3: the products on wgmma
// Variant 2's step spends its time in the shared-memory pipe, not in the tensor cores (Nsight Compute of
// tree 1e287d6, T = 8192: 647 instructions per warp and step, 56 of them HMMA; stalls short scoreboard 16.5%,
// MIO 9.7% and 12% long scoreboard on the address registers of LDGSTS queued behind ldmatrix traffic): each
// of the 8 warps reads its A and B fragments of every product with ldmatrix, ~180 KB per SM and step.
// Variant 3 (K = V = 128, 16-bit inputs) runs the four products as warpgroup MMAs with both operands in
// shared memory, which the tensor cores read once per warpgroup (~60 KB per step), and no ldmatrix at all:
//   warpgroup 0  D = W h_c over K's two halves (two accumulators, summed: chunk_state 2's order), then
//                v_new = u - D and the gated delta into shared memory;
//   warpgroup 1  O = Q h_c (one chain over K: chunk_output 2's order) under warpgroup 0's step;
//   both         S <- e^{gl} S + K^T Db for their 64 rows of the state (warp w holds rows 16w.., as in
//                variant 2), and warpgroup 1 O <- diag(e^{gc}) O + P v_new, then o.
// Measured (H200, T = 8192, warm, gdnv_bench_stages; variant 2 307-309 us in the same runs; every GPU test of
// variant 2 passes for variant 3 with equal bytes, so a wgmma k step rounds as an mma.sync one):
//   3a  all 256 threads issue the copies in variant 2d's three groups: 479-488 us. Nsight Compute: 96.5M
//       instructions (variant 2: 85.2M), the copy issue ~175 instructions per warp and step (a predicate and
//       64-bit address arithmetic per piece), 22% MIO and 20% long-scoreboard stalls on the LDGSTS; warpgroup
//       1 waits for its Q h_c chain at the second barrier; the HGMMA lines themselves hold ~8% of the samples.
//       Removing the two proxy fences (an experiment, not correct in general) changed nothing (481).
//   3b  (this) warpgroup 1 issues every copy, one group per chunk, after its Q h_c products, with a
//       no-predicate path for full chunks: 514 us. The copies, not the products, set the step: 60 KB of
//       16-byte cp.async per SM and step through the MIO pipe. The next version loads the tiles with TMA
//       (a tensor map per operand, 128-byte swizzle, mbarrier completion: a few instructions per step).
// The tiles are copied by cp.async into the no-swizzle core-matrix layouts (cuda/wgmma.cuh): W, Q, K and
// the score rows P row-major in 8-row groups (piece (row r, 16-byte piece j) at 128 (CH (r / 8) + j) +
// 16 (r % 8), CH pieces per row), read K-major as A (W, Q, P) and MN-major as A (K^T: features are the
// contiguous dimension); the snapshot Sb, Db and Vs column-group-major (element (k, n) at SBO (n / 8) +
// 16 k + 2 (n % 8)), read MN-major as B. P v_new runs over all four k steps (the score rows are 0 above the
// diagonal), where variant 2 skips the zero blocks. The per-thread offsets of the copies are fixed: each
// thread copies rows r0 + 16 x (W, Q, K) and r0 + 32 x (P) of one piece column.
template <int CH, int NT>
struct CoreTileCopy {
  static constexpr int kPieces = kBT * CH / NT;
  static constexpr int kRowStep = NT / CH;                   // rows between a thread's pieces
  static constexpr int kDstStep = (kRowStep / 8) * CH * 128;  // bytes between them
  static_assert(NT % (8 * CH) == 0 || (8 * CH) % NT == 0, "whole 8-row groups per step");
  int row, col, dst;  // first row, element column, byte offset in the tile
  __device__ __forceinline__ explicit CoreTileCopy(int i)
      : row(8 * (i / (8 * CH)) + (i & 7)), col(8 * ((i >> 3) % CH)),
        dst(128 * (CH * (i / (8 * CH)) + (i >> 3) % CH) + 16 * (i & 7)) {}
  template <class E>
  __device__ __forceinline__ void issue(unsigned char* smem, E const* gmem, int64_t gstride, int valid) const {
    unsigned char* s = smem + dst;
    E const* gp = gmem + row * gstride + col;
    int64_t const gstep = kRowStep * gstride;
    if (valid >= kBT) {  // a full chunk: no per-row test
#pragma unroll
      for (int x = 0; x < kPieces; ++x) cp_async16(s + x * kDstStep, gp + x * gstep);
    } else {
#pragma unroll
      for (int x = 0; x < kPieces; ++x) {
        if (row + x * kRowStep < valid)
          cp_async16(s + x * kDstStep, gp + x * gstep);
        else
          *reinterpret_cast<uint4*>(s + x * kDstStep) = make_uint4(0, 0, 0, 0);
      }
    }
  }
};

// ---- pieces shared by variants 3 and 4 (K = V = 128, BV = 32 columns per block, 256 threads: two warpgroups
// whose wgmma accumulators hold the state rows 16 warp.. and, in warpgroup 1, the chunk's o rows)

// The block's (sequence, value head, key head, V tile), the thread's warp, warpgroup (through a shuffle, so that
// the compiler knows it is warp-uniform and wgmma may sit in branches on it) and mma lane coordinates, and the
// sequence's chunk range.
struct WgBlock {
  int HV, n, hv, hk, vt, tid, warp, wg, g, t;
  int64_t c_begin, c_end;
};
template <int NVT>
__device__ __forceinline__ WgBlock wg_block(Args const& a) {
  StateTile const tile = state_tile<NVT>(a);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  return {static_cast<int>(a.d.HV), tile.n, tile.hv, tile.hk, tile.vt, tid, warp, __shfl_sync(0xffffffffu, warp >> 2, 0),
          lane >> 2, lane & 3, a.seq_chunk_begin[tile.n], a.seq_chunk_begin[tile.n + 1]};
}

// The snapshot round_E(S) (the h value) in the no-swizzle core-matrix layout that the products read:
// element (feature f, column v) at 2048 (v / 8) + 16 f + 2 (v % 8); NB 8-column groups (BV = 8 NB).
template <class E, int NB = 4>
__device__ __forceinline__ void snapshot_core(unsigned char* Sb, float const (&S)[1][NB][4], int warp, int g, int t) {
#pragma unroll
  for (int j = 0; j < NB; ++j)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
      store2<E>(reinterpret_cast<E*>(Sb + 2048 * j + 16 * (16 * warp + g + 8 * hh) + 4 * t), S[0][j][2 * hh],
                S[0][j][2 * hh + 1]);
}

// Warpgroup 1's o rows of chunk c (scaled by Args::scale), the rows past its end skipped; NA = BV / 2
// accumulator registers.
template <class E, int NA = 16>
__device__ __forceinline__ void store_o_rows(Args const& a, ChunkDesc const& c, int hv, int vt, float const (&O)[NA],
                                             int warp, int g, int t) {
  constexpr int V = 128, BV = 2 * NA;
  int64_t const HV = a.d.HV;
  E* const og = static_cast<E*>(a.o) + (c.row0 * HV + hv) * V + vt * BV;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * (warp - 4) + g + 8 * hh;
    if (r >= c.rows) continue;
#pragma unroll
    for (int j = 0; j < BV / 8; ++j)
      store2<E>(og + static_cast<int64_t>(r) * HV * V + 8 * j + 2 * t, a.scale * O[4 * j + 2 * hh],
                a.scale * O[4 * j + 2 * hh + 1]);
  }
}

// h_c and v_new_c where asked (16-byte pieces out of the snapshot's and v_new's column-group-major layouts).
template <class E, int BV = 32>
__device__ __forceinline__ void store_h_vnew_core(Args const& a, ChunkDesc const& c, int hv, int vt,
                                                  unsigned char const* Sb, unsigned char const* Vs, int tid) {
  constexpr int K = 128, V = 128;
  int64_t const HV = a.d.HV;
  if (a.h) {
    E* hg = static_cast<E*>(a.h) + ((c.h_row * HV + hv) * K) * V + vt * BV;
#pragma unroll
    for (int x = 0; x < K * BV / 8 / 256; ++x) {
      int const idx = tid + 256 * x, f = idx & (K - 1), cg = idx / K;
      *reinterpret_cast<uint4*>(hg + static_cast<int64_t>(f) * V + 8 * cg) = *reinterpret_cast<uint4 const*>(Sb + 2048 * cg + 16 * f);
    }
  }
  if (a.v_new) {
    E* vng = static_cast<E*>(a.v_new) + (c.row0 * HV + hv) * V + vt * BV;
#pragma unroll
    for (int x = 0; x < kBT * BV / 8 / 256; ++x) {
      int const idx = tid + 256 * x, r = idx & (kBT - 1), cg = idx / kBT;
      if (r < c.rows)
        *reinterpret_cast<uint4*>(vng + static_cast<int64_t>(r) * HV * V + 8 * cg) = *reinterpret_cast<uint4 const*>(Vs + 1024 * cg + 16 * r);
    }
  }
}

struct So3Layout {
  static constexpr int K = 128, BV = 32, LDU = BV + 8;
  static constexpr int TILE = kBT * K * 2;  // W, Q or K: 16 KB
  static constexpr int kW = 0, kQ = TILE, kK = 2 * TILE, kP = 3 * TILE, kU = kP + kBT * kBT * 2;
  static constexpr int STAGE = kU + kBT * LDU * 2;  // + U, row-major (read by the delta with ld.shared)
  static constexpr int kSb = 2 * STAGE;             // [2] snapshot h_c, 8 KB each
  static constexpr int kDb = kSb + 2 * K * BV * 2;  // gated delta, 4 KB
  static constexpr int kVs = kDb + kBT * BV * 2;    // [2] v_new_c, 4 KB each
  static constexpr int kBytes = kVs + 2 * kBT * BV * 2;
  static_assert(STAGE % 128 == 0 && kSb % 128 == 0, "16-byte aligned core matrices");
};

template <class E>
__global__ void __launch_bounds__(256, 1) state_output_v3_kernel(Args a) {
  using L = So3Layout;
  constexpr int K = L::K, V = K, BV = L::BV, LDU = L::LDU;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float gs[2][kBT];
  block_time_begin(a.block_times);

  WgBlock const blk = wg_block<V / BV>(a);
  int const HV = blk.HV, n = blk.n, hv = blk.hv, hk = blk.hk, vt = blk.vt;
  int const tid = blk.tid, warp = blk.warp, wg = blk.wg, g = blk.g, t = blk.t;
  int64_t const c_begin = blk.c_begin, c_end = blk.c_end;

  float S[1][4][4];  // rows 16 warp.., the block's 32 columns: the wgmma accumulator layout of warpgroup wg
  load_state_block(S, a.h0 ? a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV : nullptr, V, warp, 0);
  float(&Sf)[16] = reinterpret_cast<float(&)[16]>(S);
  auto stage_at = [&](int64_t i) { return smem + (i & 1) * L::STAGE; };
  // Warpgroup 1 copies every tile (one cp.async group per chunk, issued after its O products): warpgroup 0's
  // D = W h_c, which the step waits for, then starts without queueing behind copies in the MIO pipe.
  int const ct = tid & 127;
  CoreTileCopy<16, 128> const copy_t(ct);
  CoreTileCopy<8, 128> const copy_p(ct);
  TileCopy<E, kBT, BV, 128> const copy_u(ct);
  int64_t const w_stride = static_cast<int64_t>(HV) * K, k_stride = a.d.H * K, u_stride = static_cast<int64_t>(HV) * V;
  auto prefetch = [&](ChunkDesc const& c, unsigned char* st) {
    copy_t.issue(st + L::kW, static_cast<E const*>(a.w) + (c.row0 * HV + hv) * K, w_stride, c.rows);
    copy_t.issue(st + L::kQ, static_cast<E const*>(a.q) + (c.row0 * a.d.H + hk) * K, k_stride, c.rows);
    copy_u.issue(reinterpret_cast<E*>(st + L::kU), LDU, static_cast<E const*>(a.u) + (c.row0 * HV + hv) * V + vt * BV,
                 u_stride, c.rows);
    copy_t.issue(st + L::kK, static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K, k_stride, c.rows);
    copy_p.issue(st + L::kP, static_cast<E const*>(a.scores) + (c.row0 * HV + hv) * kBT, static_cast<int64_t>(HV) * kBT,
                 c.rows);
    cp_async_commit();
  };
  ChunkDesc cur{}, nxt{};
  float g_next = 0.f;
  if (c_begin < c_end) {
    cur = a.chunks[c_begin];
    if (wg == 1) prefetch(cur, stage_at(0));
    if (tid < kBT && tid < cur.rows) g_next = a.g_cumsum[(cur.row0 + tid) * HV + hv];
  }
  if (c_begin + 1 < c_end) nxt = a.chunks[c_begin + 1];

  for (int64_t ci = c_begin; ci < c_end; ++ci) {
    int const step = static_cast<int>(ci - c_begin), b = step & 1;
    ChunkDesc const c = cur;
    unsigned char* const st = stage_at(step);
    bool const has_next = ci + 1 < c_end;
    ChunkDesc const c_next = nxt;
    float const g_now = g_next;
    g_next = (has_next && tid < kBT && tid < nxt.rows) ? a.g_cumsum[(nxt.row0 + tid) * HV + hv] : 0.f;
    cur = nxt;
    if (ci + 2 < c_end) nxt = a.chunks[ci + 2];
    unsigned char* const Sb = smem + L::kSb + b * (K * BV * 2);
    unsigned char* const Vs = smem + L::kVs + b * (kBT * BV * 2);
    unsigned char* const Db = smem + L::kDb;
    float* const gsb = gs[b];
    if (tid < kBT) gsb[tid] = g_now;

    // 1. snapshot round_E(S) (the h value)
    snapshot_core<E>(Sb, S, warp, g, t);
    cp_async_wait<0>();        // warpgroup 1: this chunk's tiles (issued during the last step)
    fence_proxy_async_smem();  // the snapshot, the copies and the zero fills, before wgmma reads them
    __syncthreads();           // and every warp is past the last step: its stage is free for the next chunk

    // 2. warpgroup 0: D = W h_c and the delta; warpgroup 1: O = Q h_c (left running), the next chunk's tiles
    uint64_t const desc_s = wgmma_desc(Sb, 128, 2048);
    float O[16];
    if (wg == 0) {
      float D[16], D1[16];
#pragma unroll
      for (int i = 0; i < 16; ++i) D[i] = 0.f, D1[i] = 0.f;
      uint64_t const desc_w = wgmma_desc(st + L::kW, 128, 2048);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) wgmma_m64n32k16_ss<E, 0, 1>(D, desc_w + 16 * ks, desc_s + 16 * ks);
#pragma unroll
      for (int ks = 4; ks < 8; ++ks) wgmma_m64n32k16_ss<E, 0, 1>(D1, desc_w + 16 * ks, desc_s + 16 * ks);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_fence_operands(D);
      wgmma_fence_operands(D1);
      float const gl = gsb[c.rows - 1];
      E const* Us = reinterpret_cast<E const*>(st + L::kU);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * warp + g + 8 * hh;
        bool const ok = r < c.rows;
        float const decay = expf(ok ? gl - gsb[r] : 0.f);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          int const col = 8 * j + 2 * t, e = 4 * j + 2 * hh;
          float const d0 = to_f(Us[r * LDU + col]) - (D[e] + D1[e]);
          float const d1 = to_f(Us[r * LDU + col + 1]) - (D[e + 1] + D1[e + 1]);
          int const off = 1024 * j + 16 * r + 4 * t;
          store2<E>(reinterpret_cast<E*>(Vs + off), d0, d1);
          store2<E>(reinterpret_cast<E*>(Db + off), ok ? d0 * decay : 0.f, ok ? d1 * decay : 0.f);
        }
      }
      fence_proxy_async_smem();  // v_new and the gated delta, before wgmma reads them
    } else {
#pragma unroll
      for (int i = 0; i < 16; ++i) O[i] = 0.f;
      uint64_t const desc_q = wgmma_desc(st + L::kQ, 128, 2048);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 8; ++ks) wgmma_m64n32k16_ss<E, 0, 1>(O, desc_q + 16 * ks, desc_s + 16 * ks);
      wgmma_commit();
      wgmma_fence_operands(O);
      if (has_next) prefetch(c_next, stage_at(step + 1));
    }
    __syncthreads();

    // 3. S <- e^{gl} S + K^T Db (this warpgroup's 64 features); warpgroup 1: O <- diag(e^{gc}) O + P v_new
    float const gl = gsb[c.rows - 1];
    float const eg = expf(gl);
#pragma unroll
    for (int i = 0; i < 16; ++i) Sf[i] *= eg;
    if (wg == 1) {
      wgmma_wait<0>();
      wgmma_fence_operands(O);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * (warp - 4) + g + 8 * hh;
        float const er = expf(r < c.rows ? gsb[r] : 0.f);
#pragma unroll
        for (int j = 0; j < 4; ++j) O[4 * j + 2 * hh] *= er, O[4 * j + 2 * hh + 1] *= er;
      }
    }
    uint64_t const desc_k = wgmma_desc(st + L::kK + 1024 * wg, 2048, 128);  // K^T: features contiguous
    uint64_t const desc_d = wgmma_desc(Db, 128, 1024);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) wgmma_m64n32k16_ss<E, 1, 1>(Sf, desc_k + 256 * ks, desc_d + 16 * ks);
    if (wg == 1) {
      uint64_t const desc_p = wgmma_desc(st + L::kP, 128, 1024);
      uint64_t const desc_v = wgmma_desc(Vs, 128, 1024);
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) wgmma_m64n32k16_ss<E, 0, 1>(O, desc_p + 16 * ks, desc_v + 16 * ks);
    }
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_fence_operands(Sf);
    if (wg == 1) {
      wgmma_fence_operands(O);
      store_o_rows<E>(a, c, hv, vt, O, warp, g, t);
    }
    store_h_vnew_core<E>(a, c, hv, vt, Sb, Vs, tid);
  }

  store_state_block(S, a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV, V, warp, 0);
  block_time_end(a.block_times);
}

template <class E>
void launch_state_output_v3(Args const& a, Stream s) {
  std::size_t const bytes = So3Layout::kBytes;
  ensure_smem<state_output_v3_kernel<E>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (So3Layout::K / So3Layout::BV));
  state_output_v3_kernel<E><<<grid, 256, bytes, s>>>(a);
}

// ---------------------------------------------------------------- variant 4: variant 3 with TMA tile loads
// Variant 3 without its copies runs in 220 us (chunk_scores included) against 512 with them (no-copy experiment,
// NOTES.md): its step is set by 120 warp-instructions of 16-byte cp.async per SM. Variant 4 (K = V = 128, 16-bit)
// loads each chunk's tiles with eight TMA box copies issued by one thread (W, Q and K as two 64-feature boxes, the
// score rows, U), completing on the stage's mbarrier; W, Q, K and the score rows land in the 128-byte-swizzled layout
// that the wgmma descriptors read (cuda/wgmma.cuh `wgmma_desc_sw128`), U dense (read with ld.shared). Rows past a
// chunk's end are zeroed after the copy lands (TMA fills zeros only past the tensor's end), so the products see
// variant 2's operand values: the same bytes. Otherwise variant 3's step, with warpgroup 1's output product
// P v_new left in flight (its own wgmma group) through the next snapshot and barrier: its o rows are stored in
// the next step while warpgroup 1 waits for warpgroup 0's delta anyway.
// Measured (H200, T = 8192, warm, chunk_scores' 44 us included; gdnv_bench_stages): first version (two stages,
// a base pointer aligned through an integer cast, so generic ld/st) 240.8 us; shared-space pointer, three stages,
// gates and U pairs read under the products 223.4; o deferred as above 203.8 (the forward 333.9).
// Blocks of BV = 32 or 64 columns (Args::state_output_columns): 64 halves the blocks (one wave where 32 needs two,
// B = 4 below) at a longer step (N = 64 products, twice the delta and o work per warpgroup). Measured (H200, session
// 8, tree 53c9d7b, warm, chunk_scores included; stages-H200-53c9d7b.txt): B=4 T=4096 HV=16 (256 blocks of 32 on 132
// SMs) 208.3 us with 64 columns against 228.6 with 32 (forward 339.9 / 359.3); B=1 HV=32, one wave either way: 297.9
// against 214.4 at T = 8192, 1135 against 797 at T = 32768 (2.2 against 1.55 us per step). Hence the choice by waves
// (state_output_block_columns). Tried at 64 columns and reverted (same-run ratios to 32 columns at T = 32768):
// both warpgroups running W h_c, the delta, Q h_c and o on 32 columns each, 1.48 (this version 1.43; B = 4: 0.99
// against 0.91); W h_c and the delta split by columns with Q h_c and o on warpgroup 1, 1.75.
// SC (Args::scores_in_state, twelfth session; 64-column blocks only): the score rows computed here instead of read:
// warpgroup 1 runs Q K^T (64 x 64, both operands the Q and K boxes already loaded; its own wgmma group, issued
// before O = Q h_c) while warpgroup 0 runs W h_c, gates, masks and rounds it in registers with gate_score_tile's
// expressions, and the accumulator layout is the A fragment layout, so P v_new takes P from registers (wgmma with A
// in registers). No P box (52 instead of 60 KB per stage), no chunk_scores launch or score rows written by
// intra_fused 3: at B = 1, T = 8192, HV = 32 the rows are 33.5 MB written and read again, and intra 3 read q (33.5
// MB) only for them. The same bytes: the tests compare it with the two kernels like the other variants.
// FV (Args::delta_from_v): the delta formed from v, delta = Mu round(v - diag(e^g) K h_c) with Mu = round(A_inv
// diag(beta)) from intra_fused 3: the stage holds one Mu box (64 x 64) where W's two boxes were, and v's columns
// where U's were; warpgroup 0 runs K h_c on the K boxes (as W h_c ran on W's), writes round(v - e^g K h_c) into
// a buffer in the Db buffer's layout and, after a warpgroup barrier, multiplies Mu by it.
// One more 64-deep product and a shared-memory round trip on the step's chain, for a walk without w and u: intra
// writes 64 values per row instead of 256 and reads no v.
template <int BV_, bool SC_ = false, bool FV_ = false>
struct So4Layout {
  static constexpr int K = 128, BV = BV_;
  static_assert(BV == 32 || BV == 64, "32- or 64-column blocks");
  static constexpr bool SC = SC_;           // the score rows computed on chip (no P box)
  static constexpr bool FV = FV_;           // the delta from v (one Mu box instead of W's two)
  static constexpr int BOX = kBT * 64 * 2;  // 64 rows x 128 bytes, swizzled
  static constexpr int kBoxes = (SC ? 6 : 7) - (FV ? 1 : 0);  // W (Mu), Q, K (two each) and the score rows P
  static constexpr int kW = 0, kQ = (FV ? 1 : 2) * BOX, kK = kQ + 2 * BOX, kP = kK + 2 * BOX, kU = kBoxes * BOX;
  static_assert(kU == (SC ? kP : kP + BOX), "U follows the P box, or takes its place (SC)");
  // + U, 64 rows x 64 bytes dense (BV = 32) or x 128 bytes swizzled as the boxes (BV = 64: conflict-free pairs)
  static constexpr int STAGE = kU + kBT * BV * 2;
  static constexpr bool kUSwizzled = BV == 64;
  // Three stages at BV = 32: a chunk's copies are issued two steps ahead (with two, the wait for them took ~2% of
  // the samples at a 1.5 us step: ~60 KB per SM and step from L2 for 128 SMs at once). At BV = 64 three 64 KB
  // stages do not fit beside the rest: two, issued one step ahead.
  static constexpr int kStages = BV == 32 ? 3 : 2;
  static constexpr int kSb = kStages * STAGE;  // [2] snapshot h_c, 8 or 16 KB each (no swizzle, as variant 3)
  static constexpr int kDb = kSb + 2 * K * BV * 2;
  static constexpr int kVs = kDb + kBT * BV * 2;
  // FV: X = round(v - e^g K h_c), the B operand of Mu X in the Db layout, in a buffer of its own (written again only
  // in the next step, after its barriers: no write over what the warpgroup's product may still read)
  static constexpr int kXs = kVs + 2 * kBT * BV * 2;
  static constexpr int kBytes = kXs + (FV ? kBT * BV * 2 : 0);
  static constexpr int kAlign = 1024;  // swizzle atoms
  static_assert(STAGE % kAlign == 0 && BOX % kAlign == 0, "1024-byte aligned boxes");
  static_assert(kBytes + kAlign <= 227 * 1024, "fits an SM's shared memory");
  // byte offset of U's pair (row r, columns 8 j + 2 t, +1) in the stage's U tile
  __device__ static constexpr int u_pair(int r, int j, int t) {
    return kUSwizzled ? 128 * r + 16 * (j ^ (r & 7)) + 4 * t : 2 * BV * r + 16 * j + 4 * t;
  }
};

// CS: blocks per cluster (1: no cluster, every block its own copies; else CS consecutive V-tile blocks of a head,
// cluster rank vt % CS, sharing the W, Q, K and score-row boxes)
// FV: the delta from v (So4Layout): tw maps Args::ainv_beta, tu maps v.
template <class E, int BV, bool SC, int CS, bool FV = false>
__global__ void __launch_bounds__(256, 1)
    state_output_v4_kernel(Args a, __grid_constant__ CUtensorMap const tw, __grid_constant__ CUtensorMap const tq,
                           __grid_constant__ CUtensorMap const tk, __grid_constant__ CUtensorMap const tu,
                           __grid_constant__ CUtensorMap const tp) {
  using L = So4Layout<BV, SC, FV>;
  static_assert(!FV || CS == 1, "the delta from v: own copies only");
  constexpr int K = L::K, V = K, NB = BV / 8, NA = BV / 2;  // 8-column groups, accumulator registers
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // Aligned by an offset from smem_raw, not through an integer cast: the compiler then still knows the pointer
  // is shared (ld/st.shared; through a cast it emitted generic loads and stores, ~15% of the stall samples).
  unsigned char* const smem = smem_raw + ((L::kAlign - (smem_addr(smem_raw) & (L::kAlign - 1))) & (L::kAlign - 1));
  __shared__ float gs[2][kBT];
  __shared__ uint64_t full[L::kStages];  // stage s holds its chunk's tiles
  // MC: stage s is free in every block of the cluster (one arrival per block) -- a block's W, Q, K and P boxes land
  // in all of them
  constexpr bool MC = CS > 1;
  static_assert(CS == 1 || CS == 2 || CS == K / BV, "clusters of two or of the head's V-tile blocks");
  __shared__ uint64_t empty[MC ? L::kStages : 1];
  __shared__ uint64_t xbar;  // FV: warpgroup 0's X written (128 arrivals per step)
  // MC with three stages: the producer waits for the cluster's arrivals and refills after the step's products are
  // issued (the handshake at the refill point put the cluster's blocks in lockstep: cuda/NOTES.md, clusters)
  constexpr bool kDeferRefill = MC && L::kStages > 2;
  block_time_begin(a.block_times);

  WgBlock const blk = wg_block<V / BV>(a);
  int const HV = blk.HV, n = blk.n, hv = blk.hv, hk = blk.hk, vt = blk.vt;
  int const tid = blk.tid, warp = blk.warp, wg = blk.wg, g = blk.g, t = blk.t;
  int64_t const c_begin = blk.c_begin, c_end = blk.c_end;
  bool const producer = tid == 128;  // issues the copies (warpgroup 1, whose products are off the step's path)
  int const rank = vt % CS;          // this block's rank in its cluster

  float S[1][NB][4];
  load_state_block(S, a.h0 ? a.h0 + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV : nullptr, V, warp, 0);
  float(&Sf)[NA] = reinterpret_cast<float(&)[NA]>(S);
  auto stage_at = [&](int i) { return smem + (i % L::kStages) * L::STAGE; };
  auto issue = [&](int64_t row0, int i) {  // the chunk starting at row0, the walk's i-th
    unsigned char* const st = stage_at(i);
    uint64_t* const bar = &full[i % L::kStages];
    int const r0 = static_cast<int>(row0);
    mbar_arrive_expect_tx(bar, L::STAGE);  // every box lands whole (zeros past the tensor's end)
    if constexpr (MC) {
      // the boxes the cluster's blocks share: box x (W, W, Q, Q, K, K, P) issued by rank x % CS into every block
      // (each block's own barrier counts the whole stage); U is this block's own
#pragma unroll
      for (int x = 0; x < L::kBoxes; ++x)
        if (x % CS == rank)
          tma_load_3d_multicast(st + x * L::BOX, x < 2 ? &tw : x < 4 ? &tq : x < 6 ? &tk : &tp, bar, 64 * (x & 1),
                                x < 2 || x == 6 ? hv : hk, r0, static_cast<uint16_t>((1u << CS) - 1u));
      tma_load_3d(st + L::kU, &tu, bar, vt * BV, hv, r0);
    } else {
      tma_load_3d(st + L::kW, &tw, bar, 0, hv, r0);
      if constexpr (!FV) tma_load_3d(st + L::kW + L::BOX, &tw, bar, 64, hv, r0);
      tma_load_3d(st + L::kQ, &tq, bar, 0, hk, r0);
      tma_load_3d(st + L::kQ + L::BOX, &tq, bar, 64, hk, r0);
      tma_load_3d(st + L::kU, &tu, bar, vt * BV, hv, r0);
      tma_load_3d(st + L::kK, &tk, bar, 0, hk, r0);
      tma_load_3d(st + L::kK + L::BOX, &tk, bar, 64, hk, r0);
      if constexpr (!SC) tma_load_3d(st + L::kP, &tp, bar, 0, hv, r0);
    }
  };
  // step's copies: the chunk kStages - 1 ahead (row0), the walk's (step + kStages - 1)-th; where that refills a stage
  // of a cluster, only once every block of the cluster has arrived on the stage's empty barrier
  auto issue_ahead = [&](int64_t row0, int step) {
    int const i = step + L::kStages - 1;
    if constexpr (MC)
      if (i >= L::kStages) mbar_wait(&empty[i % L::kStages], static_cast<uint32_t>(i / L::kStages - 1) & 1u);
    issue(row0, i);
  };
  if (producer) {
#pragma unroll
    for (int i = 0; i < L::kStages; ++i) {
      mbar_init(&full[i], 1);
      if constexpr (MC) mbar_init(&empty[i], CS);
    }
    if constexpr (FV) mbar_init(&xbar, 128);
    mbar_init_fence();
  }
  __syncthreads();
  if constexpr (MC) cluster_sync();  // every block's barriers initialized before a copy or an arrival reaches them
  ChunkDesc cur{}, nxt{};
  float g_next = 0.f;
  if (c_begin < c_end) {
    cur = a.chunks[c_begin];
    if (producer) issue(cur.row0, 0);
    if (tid < kBT && tid < cur.rows) g_next = a.g_cumsum[(cur.row0 + tid) * HV + hv];
  }
  if (c_begin + 1 < c_end) {
    nxt = a.chunks[c_begin + 1];
    if (producer && L::kStages > 2) issue(nxt.row0, 1);
  }
  float O[NA];         // warpgroup 1: the chunk's o rows (in flight across the step's end, stored in the next)
  ChunkDesc c_prev{};  // the chunk whose o rows are in flight
  // SC, warpgroup 1: the chunk's score rows round_E(P) as the A fragments of P v_new (k step ks: columns 16 ks..),
  // read by the wgmma that stays in flight with O, so kept unchanged until the next step's wait
  uint32_t Pa[4][4];

  for (int64_t ci = c_begin; ci < c_end; ++ci) {
    int const step = static_cast<int>(ci - c_begin), b = step & 1;
    ChunkDesc const c = cur;
    unsigned char* const st = stage_at(step);
    bool const has_next = ci + 1 < c_end;
    bool const has_ahead = ci + L::kStages - 1 < c_end;  // the chunk whose copies the producer issues in this step
    float const g_now = g_next;
    g_next = (has_next && tid < kBT && tid < nxt.rows) ? a.g_cumsum[(nxt.row0 + tid) * HV + hv] : 0.f;
    cur = nxt;  // chunk ci + 1
    if (ci + 2 < c_end) nxt = a.chunks[ci + 2];
    ChunkDesc const& ahead = L::kStages > 2 ? nxt : cur;
    unsigned char* const Sb = smem + L::kSb + b * (K * BV * 2);
    unsigned char* const Vs = smem + L::kVs + b * (kBT * BV * 2);
    unsigned char* const Db = smem + L::kDb;
    float* const gsb = gs[b];
    if (tid < kBT) gsb[tid] = g_now;

    // 1. this chunk's tiles (the stage's (step / kStages)-th use), rows past its end zeroed; the snapshot
    mbar_wait(&full[step % L::kStages], static_cast<uint32_t>(step / L::kStages) & 1u);
    if (c.rows < kBT) {
      // 16-byte pieces per row: the swizzled boxes (a row stays in its 128 bytes), then U's row (also whole)
      constexpr int kBoxPieces = L::kBoxes * 8, kPieces = kBoxPieces + BV / 8;
      int const nrow = kBT - c.rows;
      for (int i = tid; i < nrow * kPieces; i += 256) {
        int const r = c.rows + i / kPieces, p = i % kPieces;
        unsigned char* const dst = p < kBoxPieces ? st + (p / 8) * L::BOX + 128 * r + 16 * (p % 8)
                                                  : st + L::kU + 2 * BV * r + 16 * (p - kBoxPieces);
        *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
      }
    }
    snapshot_core<E>(Sb, S, warp, g, t);
    fence_proxy_async_smem();  // the snapshot and the zeroed rows, before wgmma reads them
    __syncthreads();           // every warp is past the last step: its stage is free for the chunk issued next

    // this chunk's gates (gsb is complete after the barrier), read before the products' waits
    float const gl = gsb[c.rows - 1];
    float const eg = expf(gl);
    float er[2];  // warpgroup 1: e^{g_r} of its output rows

    // 2. warpgroup 0: D = W h_c (FV: K h_c) and the delta; warpgroup 1: O = Q h_c (left running)
    uint64_t const desc_s = wgmma_desc(Sb, 128, 2048);
    if (wg == 0) {
      float D[NA], D1[NA];
#pragma unroll
      for (int i = 0; i < NA; ++i) D[i] = 0.f, D1[i] = 0.f;
      unsigned char* const wa = st + (FV ? L::kK : L::kW);  // FV: the K boxes, read K-major as W's are
      uint64_t const desc_w0 = wgmma_desc_sw128(wa, 16, 1024);
      uint64_t const desc_w1 = wgmma_desc_sw128(wa + L::BOX, 16, 1024);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) wgmma_m64nk16_ss<E, 0, 1>(D, desc_w0 + 2 * ks, desc_s + 16 * ks);
#pragma unroll
      for (int ks = 4; ks < 8; ++ks) wgmma_m64nk16_ss<E, 0, 1>(D1, desc_w1 + 2 * (ks - 4), desc_s + 16 * ks);
      wgmma_commit();
      // under the products: the decays and the U pairs (FV: v's pairs and e^{g_r})
      unsigned char const* Us = st + L::kU;
      float decay[2], eg0[2];
      float2 u2[2][NB];
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * warp + g + 8 * hh;
        decay[hh] = expf(r < c.rows ? gl - gsb[r] : 0.f);
        if constexpr (FV) eg0[hh] = expf(r < c.rows ? gsb[r] : 0.f);
#pragma unroll
        for (int j = 0; j < NB; ++j)  // one 32-bit load per pair
          u2[hh][j] = load2f(reinterpret_cast<E const*>(Us + L::u_pair(r, j, t)));
      }
      wgmma_wait<0>();
      wgmma_fence_operands(D);
      wgmma_fence_operands(D1);
      if constexpr (FV) {
        // X = round(v - e^{g_r} K h_c) in the update's B operand layout (Mu X has the update's k = 64 chunk rows),
        // then D = Mu X; rows past the chunk's end are 0 (v and K zeroed)
        unsigned char* const Xs = smem + L::kXs;
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          int const r = 16 * warp + g + 8 * hh;
#pragma unroll
          for (int j = 0; j < NB; ++j) {
            int const e = 4 * j + 2 * hh;
            store2<E>(reinterpret_cast<E*>(Xs + 1024 * j + 16 * r + 4 * t), u2[hh][j].x - eg0[hh] * (D[e] + D1[e]),
                      u2[hh][j].y - eg0[hh] * (D[e + 1] + D1[e + 1]));
          }
        }
        fence_proxy_async_smem();  // X, before wgmma reads it
        // every warp of warpgroup 0 wrote its rows: an mbarrier of warpgroup 0's 128 threads (measured, H100, T =
        // 32768: the walk 670 us; bar.sync 1, 128 647 us but compute-sanitizer's racecheck then reports hazards
        // between accesses the step's block barriers order, as it does with bar.arrive; a block barrier that
        // warpgroup 1 meets after issuing O = Q h_c 733 us; cuda/NOTES.md, twenty-fourth session)
        mbar_arrive(&xbar);
        mbar_wait(&xbar, static_cast<uint32_t>(step) & 1u);
#pragma unroll
        for (int i = 0; i < NA; ++i) D[i] = 0.f;
        wgmma_fence_operands(D);  // the zeros stay put
        uint64_t const desc_mu = wgmma_desc_sw128(st + L::kW, 16, 1024);
        uint64_t const desc_x = wgmma_desc(Xs, 128, 1024);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) wgmma_m64nk16_ss<E, 0, 1>(D, desc_mu + 2 * ks, desc_x + 16 * ks);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_fence_operands(D);
      }
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * warp + g + 8 * hh;
        bool const ok = r < c.rows;
#pragma unroll
        for (int j = 0; j < NB; ++j) {
          int const e = 4 * j + 2 * hh;
          float const d0 = FV ? D[e] : u2[hh][j].x - (D[e] + D1[e]);
          float const d1 = FV ? D[e + 1] : u2[hh][j].y - (D[e + 1] + D1[e + 1]);
          int const off = 1024 * j + 16 * r + 4 * t;
          store2<E>(reinterpret_cast<E*>(Vs + off), d0, d1);
          store2<E>(reinterpret_cast<E*>(Db + off), ok ? d0 * decay[hh] : 0.f, ok ? d1 * decay[hh] : 0.f);
        }
      }
      fence_proxy_async_smem();  // v_new and the gated delta, before wgmma reads them
    } else {
      if (step > 0) {  // the last chunk's P v_new (its group B) and its o rows
        wgmma_wait<0>();
        wgmma_fence_operands(O);
        if constexpr (MC) {
          // this block is done with the stage the refill below overwrites (group B read its P, warpgroup 0's
          // K^T Db was waited for before the step's barrier): tell every block of the cluster at once, before
          // the o-row stores
          if (producer && has_ahead)  // (step > 0: the chunk issued here refills a stage)
#pragma unroll
            for (int r = 0; r < CS; ++r) mbar_arrive_remote(&empty[(step - 1) % L::kStages], static_cast<uint32_t>(r));
        }
        store_o_rows<E>(a, c_prev, hv, vt, O, warp, g, t);
      }
      // the chunk kStages - 1 ahead, into the stage the last step read: after this warpgroup's wait, since
      // group B read that stage's P (with kDeferRefill, after this step's products are issued instead)
      if (producer && has_ahead && !kDeferRefill) issue_ahead(ahead.row0, step);
#pragma unroll
      for (int i = 0; i < NA; ++i) O[i] = 0.f;
      uint64_t const desc_q0 = wgmma_desc_sw128(st + L::kQ, 16, 1024);
      uint64_t const desc_q1 = wgmma_desc_sw128(st + L::kQ + L::BOX, 16, 1024);
      float P[32];  // SC: Q K^T of the chunk (64 x 64, this warp's rows 16 (warp - 4)..), in its own group first
      if constexpr (SC) {
#pragma unroll
        for (int i = 0; i < 32; ++i) P[i] = 0.f;
        wgmma_fence_operands(P);  // the zeros stay put (no copy from a register a product is writing)
        uint64_t const desc_k0 = wgmma_desc_sw128(st + L::kK, 16, 1024);
        uint64_t const desc_k1 = wgmma_desc_sw128(st + L::kK + L::BOX, 16, 1024);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < 8; ++ks)
          wgmma_m64n64k16_ss<E, 0, 0>(P, (ks < 4 ? desc_q0 : desc_q1) + 2 * (ks & 3), (ks < 4 ? desc_k0 : desc_k1) + 2 * (ks & 3));
        wgmma_commit();
      }
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 8; ++ks)
        wgmma_m64nk16_ss<E, 0, 1>(O, (ks < 4 ? desc_q0 : desc_q1) + 2 * (ks & 3), desc_s + 16 * ks);
      wgmma_commit();
      wgmma_fence_operands(O);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int const r = 16 * (warp - 4) + g + 8 * hh;
        er[hh] = expf(r < c.rows ? gsb[r] : 0.f);
      }
      if constexpr (SC) {
        // gated, masked and rounded as gate_score_tile (common.cuh) does for chunk_scores: the same bytes
        float gr[2], gj[8][2];
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) gr[hh] = gsb[16 * (warp - 4) + g + 8 * hh];
#pragma unroll
        for (int j = 0; j < 8; ++j) gj[j][0] = gsb[8 * j + 2 * t], gj[j][1] = gsb[8 * j + 2 * t + 1];
        wgmma_wait<1>();  // Q K^T done; O = Q h_c may still run
        wgmma_fence_operands(P);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            int const r = 16 * (warp - 4) + g + 8 * hh;
            float v[2];
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              bool const keep = r < c.rows && 8 * j + 2 * t + e <= r;
              float const val = P[4 * j + 2 * hh + e] * expf(keep ? gr[hh] - gj[j][e] : 0.f);
              v[e] = keep ? val : 0.f;
            }
            // accumulator (row, 8 j + 2 t) -> A fragment of k step j / 2: registers 0/1 (rows g, g + 8) for the
            // step's first 8 columns, 2/3 for its second
            Pa[j >> 1][2 * (j & 1) + hh] = pack2<E>(v[0], v[1]);
          }
      }
    }
    __syncthreads();

    // 3. S <- e^{gl} S + K^T Db (this warpgroup's 64 features: one K box, MN-major); warpgroup 1: O <- diag(e^{gc}) O + P v_new
#pragma unroll
    for (int i = 0; i < NA; ++i) Sf[i] *= eg;
    if (wg == 1) {
      wgmma_wait<0>();
      wgmma_fence_operands(O);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int j = 0; j < NB; ++j) O[4 * j + 2 * hh] *= er[hh], O[4 * j + 2 * hh + 1] *= er[hh];
    }
    uint64_t const desc_k = wgmma_desc_sw128(st + L::kK + L::BOX * wg, L::BOX, 1024);  // a k step: two atoms, 2048 bytes
    uint64_t const desc_d = wgmma_desc(Db, 128, 1024);
    uint64_t const desc_v = wgmma_desc(Vs, 128, 1024);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) wgmma_m64nk16_ss<E, 1, 1>(Sf, desc_k + 128 * ks, desc_d + 16 * ks);
    // the state's group first; the output's group B (P v_new) stays in flight through the next snapshot and
    // barrier, and warpgroup 1 stores its o rows in the next step's second part, where it waits for warpgroup 0
    wgmma_commit();
    if (wg == 1) {
      if constexpr (SC) {
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) wgmma_m64nk16_rs<E, 1>(O, Pa[ks], desc_v + 16 * ks, 1);
      } else {
        uint64_t const desc_p = wgmma_desc_sw128(st + L::kP, 16, 1024);
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) wgmma_m64nk16_ss<E, 0, 1>(O, desc_p + 2 * ks, desc_v + 16 * ks);
      }
    }
    wgmma_commit();  // group B (empty in warpgroup 0: one wait for both, outside the branch)
    if constexpr (kDeferRefill) {
      // the refill, issued here rather than at the step's second part: the wait for the other blocks' arrivals
      // then comes half a step later and no longer holds warpgroup 1's products (three stages: the chunk two
      // ahead still has a whole step to land)
      if (producer && has_ahead) issue_ahead(ahead.row0, step);
    }
    wgmma_wait<1>();
    wgmma_fence_operands(Sf);
    if (wg == 1) wgmma_fence_operands(O);
    c_prev = c;
    store_h_vnew_core<E, BV>(a, c, hv, vt, Sb, Vs, tid);
  }
  if (wg == 1 && c_end > c_begin) {  // the last chunk's o rows
    wgmma_wait<0>();
    wgmma_fence_operands(O);
    store_o_rows<E>(a, c_prev, hv, vt, O, warp, g, t);
  }

  store_state_block(S, a.final_state + (static_cast<int64_t>(n) * HV + hv) * K * V + vt * BV, V, warp, 0);
  if constexpr (MC) cluster_sync();  // no block leaves while another may still arrive on its barriers
  block_time_end(a.block_times);
}

// A launch configuration of `grid` blocks in clusters of `cs` consecutive blocks (not copyable: cfg points at attr).
struct ClusterLaunch {
  cudaLaunchAttribute attr{};
  cudaLaunchConfig_t cfg{};
  ClusterLaunch(unsigned grid, unsigned threads, std::size_t bytes, unsigned cs, Stream s) {
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = cs, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
    cfg.gridDim = dim3(grid), cfg.blockDim = dim3(threads), cfg.dynamicSmemBytes = bytes, cfg.stream = s;
    cfg.attrs = &attr, cfg.numAttrs = 1;
  }
  ClusterLaunch(ClusterLaunch const&) = delete;
  ClusterLaunch& operator=(ClusterLaunch const&) = delete;
};

// How many clusters of CS blocks of variant 4's launch (E, BV, SC) the device holds at once.
template <class E, int BV, bool SC, int CS>
int so4_max_clusters(unsigned grid) {
  using L = So4Layout<BV, SC>;
  std::size_t const bytes = L::kBytes + L::kAlign;
  ensure_smem<state_output_v4_kernel<E, BV, SC, CS>>(bytes);
  ClusterLaunch cl(grid, 256, bytes, CS, nullptr);
  int n = 0;
  GDN_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, state_output_v4_kernel<E, BV, SC, CS>, &cl.cfg));
  return n;
}

// Args::state_output_cluster: 2 clusters of the head's V-tile blocks, 3 clusters of two (the same at 64 columns)
constexpr int kClusterHead = 2, kClusterPairs = 3;

template <class E, int BV, bool SC, bool FV = false>
void launch_state_output_v4(Args const& a, Stream s) {
  using L = So4Layout<BV, SC, FV>;
  uint64_t const rows = static_cast<uint64_t>(a.d.B * a.d.T), HV = static_cast<uint64_t>(a.d.HV);
  // FV: the Mu rows (64 columns, one box) in W's place and v in U's
  CUtensorMap const tw =
      FV ? tma_map_3d(a.ainv_beta, kBT, HV, rows, kBT, kBT, true) : tma_map_3d(a.w, L::K, HV, rows, 64, kBT, true);
  CUtensorMap const tq = tma_map_3d(a.q, L::K, static_cast<uint64_t>(a.d.H), rows, 64, kBT, true);
  CUtensorMap const tk = tma_map_3d(a.k, L::K, static_cast<uint64_t>(a.d.H), rows, 64, kBT, true);
  CUtensorMap const tu = tma_map_3d(FV ? a.v : a.u, L::K, HV, rows, BV, kBT, L::kUSwizzled);
  CUtensorMap const tp = SC ? tw : tma_map_3d(a.scores, kBT, HV, rows, kBT, kBT, true);  // SC: unused
  std::size_t const bytes = L::kBytes + L::kAlign;  // room to align the base to a swizzle atom
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (L::K / BV));
  // chosen (0): every block its own copies -- the clusters were slower at every shape measured (H100, cuda/NOTES.md:
  // at 64 columns in one wave 390 against 314 us at T = 8192; at 32 columns the clusters of four do not fit one wave)
  auto run = [&](auto cs) {
    constexpr int CS = decltype(cs)::value;
    if constexpr (CS == 1) {
      ensure_smem<state_output_v4_kernel<E, BV, SC, 1, FV>>(bytes);
      state_output_v4_kernel<E, BV, SC, 1, FV><<<grid, 256, bytes, s>>>(a, tw, tq, tk, tu, tp);
    } else if constexpr (!FV) {
      ensure_smem<state_output_v4_kernel<E, BV, SC, CS>>(bytes);
      ClusterLaunch cl(grid, 256, bytes, CS, s);
      GDN_CUDA_CHECK(cudaLaunchKernelEx(&cl.cfg, state_output_v4_kernel<E, BV, SC, CS>, a, tw, tq, tk, tu, tp));
    }
  };
  if (FV)  // own copies only (delta_from_v_runs)
    run(std::integral_constant<int, 1>{});
  else if (a.state_output_cluster == kClusterHead)
    run(std::integral_constant<int, L::K / BV>{});
  else if (a.state_output_cluster == kClusterPairs)
    run(std::integral_constant<int, 2>{});
  else
    run(std::integral_constant<int, 1>{});
}

template <class E, int K>
void launch_state_output(Args const& a, Stream s) {
  std::size_t const bytes = sizeof(E) * SoLayout<K>::kElems;
  ensure_smem<state_output_fused_kernel<E, K>>(bytes);
  unsigned const grid = static_cast<unsigned>(a.d.N * a.d.HV * (K / SoLayout<K>::BV));
  state_output_fused_kernel<E, K><<<grid, kThreads, bytes, s>>>(a);
}

}  // namespace

bool state_output_runs_fused(Args const& a) {
  return a.qkv != ElemType::f32 && !a.split_state && !a.precise_uv && a.d.K == a.d.V && (a.d.K == 128 || a.d.K == 64);
}

namespace {
bool known_block_columns(int columns) { return columns == 0 || columns == 32 || columns == 64; }
// 64-column blocks only (state_output_block_columns() gives 64 only to variant 4 running at K = 128): at 32 columns
// the on-chip rows lengthened the step by more than the rows' traffic saves (H100, T = 8192: 222 us against 211
// with chunk_scores' 44 included; cuda/NOTES.md, twelfth session)
bool scores_on_chip(Args const& a, int block_columns) { return a.scores_in_state && block_columns == 64; }
}  // namespace

bool state_output_computes_scores(Args const& a) {
  // an unknown width is refused by state_output_fused; here it is simply not on chip (intra_writes_scores asks too)
  return a.scores_in_state && known_block_columns(a.state_output_columns) && scores_on_chip(a, state_output_block_columns(a));
}

int state_output_block_columns(Args const& a) {
  if (!known_block_columns(a.state_output_columns))
    throw std::invalid_argument("state_output_fused: Args::state_output_columns " + std::to_string(a.state_output_columns) +
                                " is not 0 (chosen), 32 or 64");
  bool const v4 = state_output_runs_fused(a) && a.state_output_variant == 4 && a.d.K == 128;
  if (!v4) return 32;
  if (a.state_output_columns != 0) return a.state_output_columns;
  // Chosen: 64 where it takes fewer waves of one block per SM than 32 (B = 4, T = 4096, HV = 16: two waves of
  // 32-column blocks on 132 SMs, one of 64-column ones); otherwise 32, whose step is shorter.
  int dev = 0, sms = 0;
  GDN_CUDA_CHECK(cudaGetDevice(&dev));
  GDN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  int64_t const heads = a.d.N * a.d.HV, sm = std::max(sms, 1);
  auto waves = [&](int64_t blocks) { return (blocks + sm - 1) / sm; };
  return waves(heads * (128 / 64)) < waves(heads * (128 / 32)) ? 64 : 32;
}

int state_output_max_clusters(Args const& a) {
  int const columns = state_output_block_columns(a);
  if (!state_output_runs_fused(a) || a.state_output_variant != 4 || a.d.K != 128 || a.qkv == ElemType::f32) return 0;
  bool const sc = scores_on_chip(a, columns);
  unsigned const grid = static_cast<unsigned>(std::max<int64_t>(a.d.N, 1) * a.d.HV * (128 / columns));
  int n = 0;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (!std::is_same_v<E, float>) {
      // clusters of two (3), else of the head's V-tile blocks; at 64 columns both are pairs
      bool const pairs = a.state_output_cluster == kClusterPairs;
      if (sc) n = so4_max_clusters<E, 64, true, 2>(grid);
      else if (columns == 64) n = so4_max_clusters<E, 64, false, 2>(grid);
      else n = pairs ? so4_max_clusters<E, 32, false, 2>(grid) : so4_max_clusters<E, 32, false, 4>(grid);
    }
  });
  return n;
}

bool delta_from_v_runs(Args const& a, std::string* why) {
  auto no = [&](char const* r) {
    if (why) *why = r;
    return false;
  };
  if (a.qkv == ElemType::f32) return no("16-bit inputs only");
  if (a.d.K != 128 || a.d.V != 128) return no("K = V = 128 only (state_output_fused 4)");
  if (a.fusion != Fusion::intra || a.intra_variant != 3) return no("needs Fusion::intra with intra variant 3 (which writes Args::ainv_beta)");
  if (!a.fuse_state_output || a.state_output_variant != 4) return no("needs the fused state + output in variant 4");
  if (a.precise_uv || a.split_state) return no("not with precise_uv or split_state");
  if (a.state_output_cluster > 1) return no("own copies only (Args::state_output_cluster 0 or 1)");
  if (!a.ainv_beta) return no("needs Args::ainv_beta");
  return true;
}

void state_output_fused(Args const& a, Stream s) {
  if (a.state_output_variant < 1 || a.state_output_variant > 4)
    throw std::invalid_argument("state_output_fused: Args::state_output_variant " + std::to_string(a.state_output_variant) +
                                " is not 1, 2, 3 or 4");
  int const columns = state_output_block_columns(a);  // refuses a columns value it does not know
  if (a.state_output_cluster < 0 || a.state_output_cluster > kClusterPairs)
    throw std::invalid_argument("state_output_fused: Args::state_output_cluster " + std::to_string(a.state_output_cluster) +
                                " is not 0 (chosen), 1 (no cluster), 2 (clusters of the head's blocks) or 3 (clusters of two)");
  std::string why;
  if (a.delta_from_v && !delta_from_v_runs(a, &why)) throw std::invalid_argument("state_output_fused: Args::delta_from_v: " + why);
  if (!state_output_runs_fused(a)) {
    // the two kernels, h and v_new through device memory (block times not recorded: timed_blocks says 0)
    if (!a.h || !a.v_new)
      throw std::invalid_argument("state_output_fused: this problem runs chunk_state + chunk_output, which need Args::h and Args::v_new");
    Args b = a;
    b.block_times = nullptr;
    chunk_state(b, s);
    chunk_output(b, s);
    return;
  }
  // variants 3 and 4 cover K = 128; at K = 64 they run variant 2 (the same bytes)
  int const variant = a.state_output_variant >= 3 && a.d.K != 128 ? 2 : a.state_output_variant;
  bool const sc = scores_on_chip(a, columns);  // state_output_computes_scores(a), the width already known
  bool const v2 = variant != 1 && !sc;              // reads score rows that chunk_scores or intra_fused wrote
  if (v2 && !a.scores) throw std::invalid_argument("state_output_fused 2-4: Args::scores is null (chunk_scores writes it first)");
  if (a.d.N == 0) return;
  if (v2 && !(a.fusion == Fusion::intra && intra_writes_scores(a))) {  // else intra_fused wrote them
    Args b = a;
    b.block_times = nullptr;  // the block times are the fused kernel's
    chunk_scores(b, s);
  }
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (!std::is_same_v<E, float>) {
      if (a.delta_from_v) {  // variant 4 (delta_from_v_runs)
        if (sc) launch_state_output_v4<E, 64, true, true>(a, s);
        else if (columns == 64) launch_state_output_v4<E, 64, false, true>(a, s);
        else launch_state_output_v4<E, 32, false, true>(a, s);
      } else if (variant == 4 && sc) {  // 64 columns (state_output_computes_scores)
        launch_state_output_v4<E, 64, true>(a, s);
      } else if (variant == 4) {
        if (columns == 64) launch_state_output_v4<E, 64, false>(a, s); else launch_state_output_v4<E, 32, false>(a, s);
      } else if (variant == 3) {
        launch_state_output_v3<E>(a, s);
      } else if (v2) {
        if (a.d.K == 128) launch_state_output_v2<E, 128>(a, s); else launch_state_output_v2<E, 64>(a, s);
      } else {
        if (a.d.K == 128) launch_state_output<E, 128>(a, s); else launch_state_output<E, 64>(a, s);
      }
    }
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
