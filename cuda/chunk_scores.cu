// The score rows of stage 6 on their own: scores = round_E((Q K^T) .* Gamma .* M) per chunk and value head,
// Gamma_ij = e^{gc_i - gc_j}, M lower including the diagonal and both rows valid, the gate selected under
// the mask before the exp (gdn-algorithm.md 2.7). Stored as [B*T][HV][64] rows in the input dtype, zeros
// above the diagonal, so that a row can be read as one 128-byte piece.
// Why a stage of its own: state_output_fused 2 (state_output_fused.cu) multiplies v_new by these rows inside
// the recurrence's kernel; computing them there would repeat Q K^T and the gate for each of a head's V tiles
// on the recurrence's warps. Here Q K^T is computed once per chunk and KEY head and gated per value head
// (GQA sharing, as kkt_solve_fused 5 shares K K^T).
// Bits: per element the k order of chunk_output 2's per-tile warp_mma and the same gate expression, so
// these are the bytes chunk_output 2 rounds into its score tile (tests/cuda/test_gpu_scores.cpp: within a
// componentwise bound of the fp64 value; test_gpu_state_output.cpp: o byte-equal through them).
// One 128-thread block per (chunk, key head); warp m owns rows 16m..16m+15 and computes its m + 1 tiles on or
// below the diagonal in one k loop; every value head's gates are loaded with the tiles; each warp's gated rows
// go through its own strip of shared memory to 16-byte stores (gate_score_strip / store_score_rows in
// common.cuh, shared with intra_fused 3's score rows and state_output_fused 1).
// Measured (H200, T = 8192, H = 16, HV = 32, K = 128; 102 MB moved): first version (tile by tile, gates
// loaded per head, one row buffer) 47-49 us; this one 47.6 us warm / 50.0 cold (2.0 TB/s, 2.0x its floor).
// Tried: persistent blocks (two per SM by shared memory, the next item's q, k tiles and gates copied into a
// second stage during the current one) 66 us: eight warps per SM do not cover the product and gate phases.
// Version 3 (this): per-warp strips instead of a block-wide row buffer double-buffered by head (no block
// barrier per head): 44.1 us cold, 43.4-43.8 warm (tree 1d432bd / c3f0256). fused-forward no longer runs this
// stage: intra_fused 3 computes the same rows while it holds the chunk's k tile (Args::scores_in_intra).
#include "common.cuh"

namespace gdn_cuda {
namespace {

template <class E, int K>
__global__ void __launch_bounds__(128) chunk_scores_kernel(Args a) {
  constexpr int LDK = K + 8, LDP = kBT + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  E* const Qs = reinterpret_cast<E*>(smem);
  E* const Ks = Qs + kBT * LDK;
  E* const Pb = Ks + kBT * LDK;                              // [64][LDP] gated rows, a 16-row strip per warp
  float* const gs = reinterpret_cast<float*>(Pb + kBT * LDP);  // [G][64] the value heads' gates
  block_time_begin(a.block_times);

  int const H = static_cast<int>(a.d.H), HV = static_cast<int>(a.d.HV), G = HV / H;
  int const hk = static_cast<int>(blockIdx.x % H);
  ChunkDesc const c = a.chunks[blockIdx.x / H];
  int const tid = threadIdx.x, m = tid >> 5;
  load_tile_async<E>(Qs, LDK, static_cast<E const*>(a.q) + (c.row0 * H + hk) * K, a.d.H * K, kBT, c.rows, K, tid, 128);
  load_tile_async<E>(Ks, LDK, static_cast<E const*>(a.k) + (c.row0 * H + hk) * K, a.d.H * K, kBT, c.rows, K, tid, 128);
  cp_async_commit();
  // every head's gates now, so that no global load waits between the heads
  for (int i = tid; i < G * kBT; i += 128) {
    int const x = i / kBT, r = i % kBT;
    gs[i] = r < c.rows ? a.g_cumsum[(c.row0 + r) * HV + hk * G + x] : 0.f;
  }
  cp_async_wait<0>();
  __syncthreads();

  // Q K^T for this warp's rows: its m + 1 tiles on or below the diagonal in one k loop (independent
  // accumulators; per element the k order of chunk_output 2's per-tile warp_mma)
  float P[4][2][4];
  qk_lower_tiles<E, K>(P, Qs, Ks, LDK, m);

  // per value head: this warp's gated rows into its strip of Pb, then out as 128-byte row pieces (the strip
  // is the warp's own, so __syncwarp orders the writes, the reads and the next head's writes)
  E* const strip = Pb + 16 * m * LDP;
  __syncwarp();
  for (int x = 0; x < G; ++x) {
    gate_score_strip<E>(P, gs + x * kBT, c.rows, m, strip, LDP);
    __syncwarp();
    store_score_rows<E, 16, 32>(strip, LDP, static_cast<E*>(a.scores) + (c.row0 * HV + hk * G + x) * kBT,
                                static_cast<int64_t>(HV) * kBT, 16 * m, c.rows, tid & 31);
    __syncwarp();
  }
  block_time_end(a.block_times);
}

template <class E, int K>
void launch_scores(Args const& a, Stream s) {
  std::size_t const bytes = sizeof(E) * (2 * kBT * (K + 8) + kBT * (kBT + 8)) + 4 * (a.d.HV / a.d.H) * kBT;
  ensure_smem<chunk_scores_kernel<E, K>>(bytes);
  chunk_scores_kernel<E, K><<<static_cast<unsigned>(a.d.num_chunks * a.d.H), 128, bytes, s>>>(a);
}

}  // namespace

bool chunk_scores_runs(Args const& a) { return a.qkv != ElemType::f32 && (a.d.K == 128 || a.d.K == 64); }

void chunk_scores(Args const& a, Stream s) {
  if (!chunk_scores_runs(a)) throw std::invalid_argument("chunk_scores: needs 16-bit inputs and K = 64 or 128");
  if (!a.scores) throw std::invalid_argument("chunk_scores: Args::scores is null");
  if (a.d.num_chunks == 0) return;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (!std::is_same_v<E, float>) {
      if (a.d.K == 128) launch_scores<E, 128>(a, s); else launch_scores<E, 64>(a, s);
    }
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
