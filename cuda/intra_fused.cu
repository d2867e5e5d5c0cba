// Fused stages 2+3+4 ("intra"): per (chunk, value head), A = strictly-lower(beta_i exp(gc_i - gc_j) k_i.k_j),
// A_inv = (I + A)^-1, u = A_inv (beta v), w = A_inv (beta e^gc k), with A and A_inv kept on chip. Reads k,
// v, beta, g_cumsum; writes w, u and, when Args::A_inv is not null, A_inv (the backward pass of a
// training stack keeps it; a prefill-only caller passes null and saves 128 B per token and head).
// Arithmetic: that of the unfused kkt -> solve_tril -> wu chain with A_inv in the input dtype (the same
// shared code for A and its inverse, A_inv rounded once to the input dtype, beta v and beta e^gc k
// rounded to the input dtype before the products, the same mma order), so w, u and A_inv are
// bit-identical to the unfused pipeline's. A_inv fp32 with 16-bit inputs (the hi+lo split of
// "unfused-fp32inv") is not offered here.
// Args::precise_uv (16-bit inputs): as wu.cu's precise form, beta v as hi + lo tiles (the lo tile in the
// fp32 A_inv tile's place, free once the A_inv operand is built: no extra shared memory) multiplied with
// the A_inv fragments loaded once, u stored fp32; A_inv and w unchanged (bit-equal to the plain kernel).
// Variants:
//   1 (this) one 128-thread block per (chunk, value head); k and v tiles by cp.async (v lands while A and its
//     inverse are computed); the fp32 A tile becomes the input-dtype A_inv operand once the inverse is
//     done; k and v are scaled in place; warp m computes rows 16m..16m+15 of u then of w over all V
//     columns, stopping at its diagonal block (10 of 16 k-tiles). Dynamic shared memory 68 KB (bf16,
//     K = V = 128): 3 blocks per SM. H100, B=1 T=8192 H=16 HV=32: 189 us with A_inv stored (FLA's
//     intra: 215; our kkt + solve_tril + wu: 247), 17 us per block.
//     (With the KKT tiles dealt 3/3/2/2 and the merges on 2x4 patches, cuda/kkt_tile.cuh and
//     tril_inverse.cuh: 189 us, as before: the products with A_inv and the stores dominate here.)
//   2 (tried, removed) as 1, but v loaded once the inverse is done, into the fp32 A_inv tile's place
//     (51 KB of shared memory instead of 68): 190 us, no gain -- registers (the 16 x 128 accumulator
//     strip per warp), not shared memory, hold it at 3 blocks per SM.
//   3 one 128-thread block per (chunk, key head), looping over the G value heads of that key head (GQA:
//     the k tile is loaded and K K^T computed once, cuda/inverse_tc.cuh), the inverse with 3xTF32 merges on
//     the tensor cores (kkt_solve_fused.cu variant 5's arithmetic for A_inv), and beta folded into the
//     A_inv operand instead of the inputs: u = round_E(A_inv diag(beta)) v, w = round_E(A_inv
//     diag(beta e^gc)) k with v and k as stored. That drops the scaling pass over the k and v tiles and
//     one rounding of each product (FLA rounds beta v and beta e^gc k to the input dtype, then A_inv).
//     Declared as FLA's operands (harness/inverse_bound.cpp): on A_inv's exact diagonal the fold rounds
//     beta_i, the beta v operand's rounding of that term.
//     Args::precise_uv: round_E(A_inv diag(beta)) as a hi + lo pair (two products), u stored fp32. Each
//     head's v tile is issued when the head starts and lands under its inverse. Shared memory: k and v
//     tiles + the inverse's slots (the E operands of w/u over them once A_inv is in registers, and a
//     per-warp staging tile for 16-byte w/u stores), 64 KB; 3 blocks per SM. H200, T=8192: 135.3 us with
//     A_inv stored, 131.6 without (variant 1: 184.8 / 173.5 in the same run); 4-byte stores: 150 us.
//     Args::scores_in_intra (intra_writes_scores(); fused-forward): also the gated score rows of
//     state_output_fused 2 (chunk_scores' bytes), from the k tile already on chip: the q tile and every value
//     head's gates land over the inverse's slots with k, Q K^T is computed on the Gram's tiles sharing its B
//     fragments (gram_and_qk_tiles), gated per head into a row buffer over the q tile and stored as 128-byte
//     row pieces, all before the first head's inverse. H200, T = 8192, cold: 166.6 us against 133.4 without
//     and 44.3 for chunk_scores on its own; the forward 437.5 against 452.5 (tree 0635797). Tried first: each
//     warp its own 16-row strip (Q K^T tiles 1/2/3/4 per warp, no block barrier per head): 168.7 us warm
//     against 164.0 for this one in the same run (tree c3f0256).
//     w/u passes balanced (tenth session): warps 0 and 1 take row blocks 0 and 3 of u and w, warps 2 and 3 blocks
//     1 and 2, each warp one column half: 10 k steps per warp and head (4 to 16 with warp m on rows 16m..). With
//     the A_inv pieces read conflict-free and stored 16 bytes at once, the gate mask per block and TileCopy loads
//     (inverse_tc.cuh): H200, T = 8192, warm, 110.1 us (125.5 cold at tree 3397c3a; ncu: 36.9M warp instructions
//     against 47.5M); 168 registers, no spills.
//     Args::delta_from_v (template MU; fused-forward-from-v): per value head only round_E(A_inv diag(beta)), u's
//     operand above, to Args::ainv_beta (and A_inv where set; the score rows as above): no v tile, no w or u. The
//     state walk then forms the delta from v itself (state_output_fused.cu, So4Layout FV): intra writes 64 values
//     per row and value head instead of 256 and reads no v.
#include "inverse_tc.cuh"
#include "kkt_tile.cuh"

namespace gdn_cuda {
namespace {

template <class E, int K>
struct IntraLayout {
  static constexpr int LDK = K + 8;                              // k and v tiles
  static constexpr int LDI = is_16bit<E>() ? kBT + 8 : kLdA;      // A_inv operand (in the A tile's place)
  static constexpr std::size_t tile = sizeof(E) * kBT * LDK;
  static constexpr std::size_t ftile = sizeof(float) * kBT * kLdA;
  static_assert(sizeof(E) * kBT * LDI <= ftile, "A_inv operand must fit in the A tile");
  static constexpr std::size_t bytes = 2 * tile + 2 * ftile;
};

template <class E, class UT, int K>
__global__ void __launch_bounds__(128) intra_fused_kernel(Args a) {
  using L = IntraLayout<E, K>;
  constexpr bool PRE = !std::is_same_v<UT, E>;  // precise_uv: beta v as hi + lo, u fp32
  static_assert(!PRE || sizeof(E) * kBT * L::LDK <= L::ftile, "beta v's lo tile must fit in the A_inv tile");
  constexpr int V = K, LDK = L::LDK, LDI = L::LDI;
  extern __shared__ __align__(16) unsigned char smem[];
  E* ks = reinterpret_cast<E*>(smem);                        // [64][LDK] k, then beta e^gc k
  E* vs = reinterpret_cast<E*>(smem + L::tile);              // [64][LDK] v, then beta v
  float* As = reinterpret_cast<float*>(smem + 2 * L::tile);  // [64][kLdA] A
  E* Ai = reinterpret_cast<E*>(As);                          // [64][LDI] A_inv operand, replaces A
  float* Ts = As + kBT * kLdA;                               // [64][kLdA] A_inv fp32
  E* vlo = reinterpret_cast<E*>(Ts);                         // [64][LDK] beta v lo (PRE), replaces Ts
  __shared__ float gs[kBT], bs[kBT], es[kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  ChunkTile const tile = chunk_tile(a);  // named members: the store lambda below captures them
  ChunkDesc const c = tile.c;
  int const hv = tile.hv, hk = tile.hk;
  int const tid = threadIdx.x, warp = tid >> 5;
  E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
  E const* vg = static_cast<E const*>(a.v) + (c.row0 * HV + hv) * V;
  load_tile_async<E>(ks, LDK, kg, a.d.H * K, kBT, c.rows, K, tid, 128);
  cp_async_commit();
  load_tile_async<E>(vs, LDK, vg, static_cast<int64_t>(HV) * V, kBT, c.rows, V, tid, 128);
  cp_async_commit();
  load_gate_beta(a, c, hv, gs, bs, es);
  cp_async_wait<1>();  // k landed; v may still be in flight
  __syncthreads();
  gated_kkt_to_smem<E, K>(ks, LDK, gs, bs, c.rows, As);
  __syncthreads();
  invert_unit_lower_64(As, Ts);  // ends with a barrier: As is free

  int64_t const rstride = static_cast<int64_t>(HV) * kBT;
  if (a.A_inv != nullptr)
    store_ainv_rows<E>(Ts, static_cast<E*>(a.A_inv) + (c.row0 * HV + hv) * kBT, rstride, c.rows, 128);
  // the A_inv operand, rounded once to E (unit lower: entries above the diagonal exactly 0)
  for (int idx = tid; idx < kBT * kBT; idx += 128) {
    int const i = idx >> 6, j = idx & 63;
    Ai[i * LDI + j] = from_f<E>(j <= i ? Ts[i * kLdA + j] : 0.f);
  }
  // beta e^gc k and beta v rounded to E, in place (rows past the end are 0 and stay 0)
  cp_async_wait<0>();
  __syncthreads();
  {
    constexpr int per = 16 / sizeof(E);
    for (int idx = tid; idx < kBT * (K / per); idx += 128) {
      int const i = idx / (K / per), q = (idx % (K / per)) * per;
      alignas(16) E tk[per], tv[per], tl[per];
      *reinterpret_cast<uint4*>(tk) = *reinterpret_cast<uint4 const*>(ks + i * LDK + q);
      *reinterpret_cast<uint4*>(tv) = *reinterpret_cast<uint4 const*>(vs + i * LDK + q);
#pragma unroll
      for (int x = 0; x < per; ++x) {
        tk[x] = from_f<E>(to_f(tk[x]) * es[i]);
        if constexpr (PRE)
          split_f<E>(to_f(tv[x]) * bs[i], tv[x], tl[x]);
        else
          tv[x] = from_f<E>(to_f(tv[x]) * bs[i]);
      }
      *reinterpret_cast<uint4*>(ks + i * LDK + q) = *reinterpret_cast<uint4 const*>(tk);
      *reinterpret_cast<uint4*>(vs + i * LDK + q) = *reinterpret_cast<uint4 const*>(tv);
      if constexpr (PRE) *reinterpret_cast<uint4*>(vlo + i * LDK + q) = *reinterpret_cast<uint4 const*>(tl);
    }
  }
  __syncthreads();

  constexpr int NT = V / 8;
  int const kend = 16 * (warp + 1);
#pragma unroll
  for (int which = 0; which < 2; ++which) {  // 0: u, 1: w
    float acc[1][NT][4];
    zero_acc(acc);
    if (PRE && which == 0)  // u = A_inv (beta v)_hi + A_inv (beta v)_lo, A fragments loaded once
      warp_mma<E, true, false, 1, NT, true>(acc, Ai, LDI, 16 * warp, vs, LDK, 0, 0, kend, vlo);
    else
      warp_mma<E, true, false, 1, NT>(acc, Ai, LDI, 16 * warp, which == 0 ? vs : ks, LDK, 0, 0, kend);
    int64_t const at = (c.row0 * HV + hv) * V, rstride = static_cast<int64_t>(HV) * V;
    if (which == 0)
      store_acc_rows<UT>(acc, static_cast<UT*>(a.u) + at, rstride, 16 * warp, c.rows);
    else
      store_acc_rows<E>(acc, static_cast<E*>(a.w) + at, rstride, 16 * warp, c.rows);
  }
  block_time_end(a.block_times);
}

template <class E, class UT, int K>
struct IntraTcLayout {
  static constexpr bool PRE = !std::is_same_v<UT, E>;
  static constexpr int LDK = K + 8;   // k and v tiles
  static constexpr int LDM = kBT + 8; // the E operands A_inv diag(beta) (hi, lo) and A_inv diag(beta e^gc)
  static constexpr std::size_t tile = sizeof(E) * kBT * LDK;
  static constexpr std::size_t mtile = sizeof(E) * kBT * LDM;
  // the area over which the inverse's slots, then the w/u operands and staging go: 23 slots' worth, as when the
  // inverse used 23 (the operands with PRE need 27,648 bytes, more than its 19 slots)
  static constexpr std::size_t kSlots = sizeof(float) * kSlotF * 23;
  static_assert(kInverseTcBytes <= kSlots, "the inverse's slots must fit");
  static_assert((PRE ? 3 : 2) * mtile <= kSlots, "the w/u operands must fit in the inverse's slots");
  // without PRE, each warp's 16 x V/2 output tile is staged after the operands (16-byte stores)
  static constexpr int LDG = K / 2 + 8;
  static_assert(PRE || 2 * mtile + sizeof(E) * 4 * 16 * LDG <= kSlots, "staging must fit in the slots");
  static constexpr std::size_t bytes = 2 * tile + kSlots;
  // Args::scores_in_intra: the q tile and every value head's gates over the slots before the first inverse;
  // the gated score rows then go through a [64][LDP] buffer over the q tile
  static constexpr int LDP = kBT + 8;
  static_assert(LDP <= LDK, "the score row buffer must fit in the q tile");
  // value heads per key head whose gates fit after the q tile (the kernel puts them at 3 * tile)
  static constexpr int64_t kMaxScoreHeads = (kSlots - tile) / (sizeof(float) * kBT);
};

// MU (Args::delta_from_v): per value head only round(A_inv diag(beta)) to Args::ainv_beta (and A_inv where set): no v
// tile, no w or u -- the state walk forms the delta from v itself.
template <class E, class UT, int K, bool SC, bool MU = false>
__global__ void __launch_bounds__(128, 3) intra_v3_kernel(Args a) {
  using L = IntraTcLayout<E, UT, K>;
  static_assert(!SC || !L::PRE, "the score rows are written by the plain kernel only");
  static_assert(!MU || !L::PRE, "delta_from_v: the plain kernel only");
  static_assert(L::kMaxScoreHeads >= 1, "a value head's gates must fit after the q tile (intra_writes_scores)");
  constexpr bool PRE = L::PRE;
  constexpr int V = K, LDK = L::LDK, LDM = L::LDM, NT = V / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  E* ks = reinterpret_cast<E*>(smem);                        // [64][LDK] k (as stored)
  E* vs = reinterpret_cast<E*>(smem + L::tile);              // [64][LDK] v of the current head (as stored)
  float* sc = reinterpret_cast<float*>(smem + 2 * L::tile);  // the inverse's slots
  E* Mu = reinterpret_cast<E*>(sc);                          // [64][LDM] A_inv diag(beta) (hi), over the slots
  E* Mw = Mu + kBT * LDM;                                    // [64][LDM] A_inv diag(beta e^gc)
  E* Mul = Mw + kBT * LDM;                                   // [64][LDM] lo of A_inv diag(beta) (PRE)
  E* Stg = Mw + kBT * LDM;                                   // [4][16][LDG] output staging (not PRE)
  __shared__ __align__(16) float gb[2][2 * kBT];  // per value head g_cumsum, beta (GateStage), double-buffered
  block_time_begin(a.block_times);

  int const H = static_cast<int>(a.d.H), HV = static_cast<int>(a.d.HV), G = HV / H;
  int const hk = static_cast<int>(blockIdx.x % H), tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int64_t const chunk = blockIdx.x / H;
  ChunkDesc const c = a.chunks[chunk];
  int64_t const vstride = static_cast<int64_t>(HV) * V;
  TileCopy<E, kBT, K, 128> const copy(tid);  // K = V: one thread-to-piece map for the k, q and v tiles
  auto issue_v = [&](int hv) { copy.issue(vs, LDK, static_cast<E const*>(a.v) + (c.row0 * HV + hv) * V, vstride, c.rows); };
  E* Qs = reinterpret_cast<E*>(sc);                          // [64][LDK] q over the slots (SC)
  float* gq = reinterpret_cast<float*>(smem + 3 * L::tile);  // [G][64] every value head's g_cumsum (SC)
  copy.issue(ks, LDK, static_cast<E const*>(a.k) + (c.row0 * H + hk) * K, a.d.H * K, c.rows);
  if constexpr (SC) copy.issue(Qs, LDK, static_cast<E const*>(a.q) + (c.row0 * H + hk) * K, a.d.H * K, c.rows);
  GateStage stage;
  stage.issue(a, c, chunk, hk * G, gb[0], tid);  // the first head's gate values with the k tile
  if constexpr (SC) stage_g_cumsum(a, c, chunk, hk * G, G, gq, tid, 128);  // and every head's g_cumsum
  cp_async_commit();
  if constexpr (!MU) issue_v(hk * G);
  cp_async_commit();
  cp_async_wait<1>();  // k (and q) and the first head's gate values landed; v may be in flight
  stage.publish(a, c, gb[0], tid);
  __syncthreads();
  float gram[3][2][4];
  if constexpr (SC) {
    // the score rows of every value head: Q K^T on the Gram's tiles (3/3/2/2 per warp, sharing its B fragments),
    // gated per head into a block-wide row buffer over the q tile, then 128-byte row pieces
    float P[3][2][4];
    gram_and_qk_tiles<E, K>(ks, Qs, LDK, gram, P);
    __syncthreads();  // every warp's q reads are done
    E* const St = Qs;  // [64][LDP]
    for (int idx = tid; idx < kBT * kBT / 2; idx += 128) {  // the tiles above the diagonal, never gated: 0
      int const rr = idx / (kBT / 2), j = 2 * (idx % (kBT / 2));
      if ((j >> 4) > (rr >> 4)) store2<E>(St + rr * L::LDP + j, 0.f, 0.f);
    }
    unsigned const tiles = gram_tile_set(warp);
    for (int x = 0; x < G; ++x) {
#pragma unroll
      for (int n = 0; n < 3; ++n) {
        int const tl = static_cast<int>((tiles >> (8 * n)) & 0xFFu);
        if (tl != 0xFF) gate_score_tile<E>(P[n], gq + x * kBT, c.rows, tl >> 2, tl & 3, St + 16 * (tl >> 2) * L::LDP, L::LDP);
      }
      __syncthreads();
      store_score_rows<E, kBT, 128>(St, L::LDP, static_cast<E*>(a.scores) + (c.row0 * HV + hk * G + x) * kBT,
                                    static_cast<int64_t>(HV) * kBT, 0, c.rows, tid);
      if (x + 1 < G) __syncthreads();  // the rows are out before the next head's gating (the loop's first
                                       // barrier guards the last head's)
    }
  }
  else
    gram_tiles<E, K>(ks, LDK, gram);

  unsigned const keep = gate_keep_mask(c.rows);
  int const r = ainv_piece_row(), q = ainv_piece_col8(), g = lane >> 2, t = lane & 3;
  int64_t const rstride = static_cast<int64_t>(HV) * kBT;
  for (int gi = 0; gi < G; ++gi) {
    int const hv = hk * G + gi, buf = gi & 1;
    __syncthreads();  // the last head's products (vs, the operands over the slots) are done; gb[buf] landed
    if (!MU && gi > 0) issue_v(hv);
    if (gi + 1 < G) stage.issue(a, c, chunk, hv + 1, gb[buf ^ 1], tid);  // into the buffer the last head read
    cp_async_commit();
    float const* const gs = gb[buf];
    float const* const bs = gb[buf] + kBT;
    inverse_tc(gram, gs, bs, keep, sc);

    // A_inv into registers (and to device memory when asked), then the scaled operands over the slots
    float pv[4][8];
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      ainv_piece(sc, x, pv[x]);
      if (a.A_inv != nullptr && 16 * x + r < c.rows)
        store8<E, true>(static_cast<E*>(a.A_inv) + (c.row0 + 16 * x + r) * rstride + hv * kBT + 8 * q, pv[x]);
    }
    if constexpr (MU) {
      // round(A_inv diag(beta)), the u operand's expression below, to device memory: the walk's delta operand
      float bq[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) bq[e] = bs[8 * q + e];
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        float mu[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) mu[e] = pv[x][e] * bq[e];
        if (16 * x + r < c.rows)
          store8<E, true>(static_cast<E*>(a.ainv_beta) + (c.row0 + 16 * x + r) * rstride + hv * kBT + 8 * q, mu);
      }
      cp_async_wait<0>();  // the next head's gate values
      if (gi + 1 < G) stage.publish(a, c, gb[buf ^ 1], tid);
      continue;  // (the loop's barrier orders the publish before the next head's reads)
    }
    __syncthreads();
    {
      float bq[8], eq[8];  // into registers before the stores below (which the compiler cannot move loads across)
#pragma unroll
      for (int e = 0; e < 8; ++e) bq[e] = bs[8 * q + e], eq[e] = bq[e] * expf(gs[8 * q + e]);  // as gate_beta_row
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        int const i = 16 * x + r;
        float mu[8], mw[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) mu[e] = pv[x][e] * bq[e], mw[e] = pv[x][e] * eq[e];
        if constexpr (PRE) {
          float lo[8];
#pragma unroll
          for (int e = 0; e < 8; ++e) lo[e] = mu[e] - to_f(from_f<E>(mu[e]));
          store8<E>(Mul + i * LDM + 8 * q, lo);
        }
        store8<E>(Mu + i * LDM + 8 * q, mu);
        store8<E>(Mw + i * LDM + 8 * q, mw);
      }
    }
    cp_async_wait<0>();  // this head's v and the next head's gate values
    if (gi + 1 < G) stage.publish(a, c, gb[buf ^ 1], tid);
    __syncthreads();

    // u = Mu v (+ Mul v), w = Mw k, a 16-row block m and half of the columns per pass (32 accumulators: the Gram
    // stays in registers across heads), k range up to the diagonal block (m + 1 steps of 16). Warps 0 and 1 take
    // row blocks 0 and 3, warps 2 and 3 blocks 1 and 2, even warps the left columns: 10 k steps each (with warp m
    // on rows 16m.., warp 3 had 16 and warp 0 4, and every warp waited for warp 3 at the next head's barrier).
    int const mpair = warp >> 1, n0 = (warp & 1) * (V / 2);
#pragma unroll
    for (int pass = 0; pass < 4; ++pass) {  // u, w for the pair's first row block, then for its second
      int const which = pass & 1, m = (pass >> 1) == 0 ? mpair : 3 - mpair, kend = 16 * (m + 1);
      float acc[1][NT / 2][4];
      zero_acc(acc);
      if (which == 0) {
        if constexpr (PRE) warp_mma<E, true, false, 1, NT / 2>(acc, Mul, LDM, 16 * m, vs, LDK, n0, 0, kend);
        warp_mma<E, true, false, 1, NT / 2>(acc, Mu, LDM, 16 * m, vs, LDK, n0, 0, kend);
      } else {
        warp_mma<E, true, false, 1, NT / 2>(acc, Mw, LDM, 16 * m, ks, LDK, n0, 0, kend);
      }
      auto store_rows = [&](auto* outg) {
        using O = std::remove_pointer_t<decltype(outg)>;
        if constexpr (std::is_same_v<O, E> && !PRE) {
          // through this warp's staging tile: 16-byte stores of whole row pieces instead of 4-byte ones
          E* stg = Stg + warp * 16 * L::LDG;
#pragma unroll
          for (int hh = 0; hh < 2; ++hh)
#pragma unroll
            for (int j = 0; j < NT / 2; ++j)
              store2<E>(stg + (g + 8 * hh) * L::LDG + 8 * j + 2 * t, acc[0][j][2 * hh], acc[0][j][2 * hh + 1]);
          __syncwarp();
          constexpr int PPR = V / 2 / 8;  // 16-byte pieces per row
#pragma unroll
          for (int x = 0; x < 16 * PPR / 32; ++x) {
            int const p = lane + 32 * x, rr = p / PPR, cc = (p % PPR) * 8, i = 16 * m + rr;
            if (i < c.rows)
              *reinterpret_cast<uint4*>(outg + ((c.row0 + i) * HV + hv) * V + n0 + cc) =
                  *reinterpret_cast<uint4 const*>(stg + rr * L::LDG + cc);
          }
          __syncwarp();  // the next pass rewrites the tile
        } else {
          store_acc_rows<O>(acc, outg + (c.row0 * HV + hv) * V + n0, static_cast<int64_t>(HV) * V, 16 * m, c.rows);
        }
      };
      if (which == 0)
        store_rows(static_cast<UT*>(a.u));
      else
        store_rows(static_cast<E*>(a.w));
    }
  }
  block_time_end(a.block_times);
}

template <class E, class UT, int K, bool SC, bool MU = false>
void launch_intra_v3(Args const& a, Stream s) {
  constexpr std::size_t bytes = IntraTcLayout<E, UT, K>::bytes;
  ensure_smem<intra_v3_kernel<E, UT, K, SC, MU>>(bytes);
  intra_v3_kernel<E, UT, K, SC, MU><<<static_cast<unsigned>(a.d.num_chunks * a.d.H), 128, bytes, s>>>(a);
}

template <class E, class UT, int K>
void launch_intra(Args const& a, Stream s) {
  constexpr std::size_t bytes = IntraLayout<E, K>::bytes;
  ensure_smem<intra_fused_kernel<E, UT, K>>(bytes);
  intra_fused_kernel<E, UT, K><<<static_cast<unsigned>(a.d.num_chunks * a.d.HV), 128, bytes, s>>>(a);
}

}  // namespace

bool intra_runs_v3(Args const& a) { return a.intra_variant == 3 && a.qkv != ElemType::f32; }

bool intra_writes_scores(Args const& a) {
  if (!a.scores_in_intra || !a.scores || a.precise_uv || !intra_runs_v3(a) || a.d.H <= 0) return false;
  if (a.fuse_state_output && state_output_computes_scores(a)) return false;  // forward(): nobody reads them
  // 16-bit inputs (intra_runs_v3): bf16 and fp16 tiles have the same size
  using E = __nv_bfloat16;
  int64_t const max_heads = a.d.K == 128 ? IntraTcLayout<E, E, 128>::kMaxScoreHeads : IntraTcLayout<E, E, 64>::kMaxScoreHeads;
  return a.d.HV / a.d.H <= max_heads;
}

void intra_fused(Args const& a, Stream s) {
  if (a.ainv != a.qkv) throw std::invalid_argument("intra_fused: A_inv must be stored in the input dtype");
  std::string why;
  if (a.delta_from_v && !delta_from_v_runs(a, &why)) throw std::invalid_argument("intra_fused: Args::delta_from_v: " + why);
  if (a.d.num_chunks == 0) return;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (!std::is_same_v<E, float>) {
      if (intra_runs_v3(a)) {
        if (a.delta_from_v) {  // K = 128, Args::ainv_beta set (delta_from_v_runs)
          intra_writes_scores(a) ? launch_intra_v3<E, E, 128, true, true>(a, s) : launch_intra_v3<E, E, 128, false, true>(a, s);
        } else if (a.precise_uv)
          a.d.K == 128 ? launch_intra_v3<E, float, 128, false>(a, s) : launch_intra_v3<E, float, 64, false>(a, s);
        else if (intra_writes_scores(a))
          a.d.K == 128 ? launch_intra_v3<E, E, 128, true>(a, s) : launch_intra_v3<E, E, 64, true>(a, s);
        else
          a.d.K == 128 ? launch_intra_v3<E, E, 128, false>(a, s) : launch_intra_v3<E, E, 64, false>(a, s);
        return;
      }
    }
    if (uv_type(a) != a.qkv) {
      if constexpr (!std::is_same_v<E, float>)
        a.d.K == 128 ? launch_intra<E, float, 128>(a, s) : launch_intra<E, float, 64>(a, s);
    } else {
      a.d.K == 128 ? launch_intra<E, E, 128>(a, s) : launch_intra<E, E, 64>(a, s);
    }
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
