// (I + A)^-1 of one 64x64 chunk with the merges on the tensor cores, for the GQA-shared kernels
// (kkt_solve_fused.cu variant 5, intra_fused.cu variant 3). One 128-thread block; everything below is
// called by all 128 threads.
//
//   gram_tiles    K K^T of the key head's chunk, once per block: the ten 16x16 tiles on or below the
//                 diagonal (mma.sync bf16/fp16, fp32 accumulate), dealt 3/3/2/2 to the warps, warp a holding
//                 diagonal tile (a, a) (warps 2 and 3 compute a third, unused tile, so that every warp runs the
//                 same straight-line product code) and kept
//                 in registers for every value head of that key head (GQA: the Gram depends on the key head
//                 only; beta and the gate differ per value head).
//   gate_tiles    A = strictly-lower(beta_i e^{gc_i - gc_j} dot_ij) of one value head into shared memory,
//                 the fast exp (ex2.approx of the scaled difference, within the bound's argument-
//                 proportional term, reference/bounds.hpp); straight-line code, the mask a select (a branch
//                 per entry made it the slowest phase: cuda/NOTES.md, "Where a kkt+solve 5 block spends").
//   invert_diag   the four 16x16 diagonal blocks by fp32 forward substitution, one block per warp (the block
//                 that warp gated: a __syncwarp between, no block barrier), a column per half-warp lane, the
//                 row sums split between the half-warps.
//   merge_blocks  the block merges as a 32x32 recursive inverse: T10 = -T11 A10 T00 and T32 = -T33 A32 T22,
//                 then the bottom-left 32x32 block C = -T_B (A_BA T_A), in three barrier-separated phases
//                 (five products on the longest path; seven before the seventeenth session). Every product
//                 is 3xTF32 on mma.sync
//                 m16n8k8 (x = hi + lo, hi = tf32(x), lo = tf32(x - hi), both truncated; hi*hi + hi*lo +
//                 lo*hi, fp32 accumulate): relative error per product < 3 * 2^-20 (1 + 2^-10) < 2^-18, declared
//                 as Precision::tf32x3 (reference/bounds.hpp). fp32 FMA merges (variant 4) cost 64K FMAs and
//                 ~30% of that kernel's instructions; these are 192 mma per chunk and head.
// Shared memory: 19 slots of one 16x16 fp32 block each (row stride kLdB = 20 floats: the eight 16-byte
// rows of an ldmatrix land in distinct banks), 24,320 bytes.
#pragma once

#include "common.cuh"

// A hook after every block barrier of the inverse, for cuda/inverse_probe.cu's phase stamps; empty (no code) in
// the library.
#ifndef GDNV_PHASE
#define GDNV_PHASE()
#endif

namespace gdn_cuda {

constexpr int kLdB = 20;            // fp32 row stride of a 16x16 block slot
constexpr int kSlotF = 16 * kLdB;   // floats per slot
// Slots. "t" = stored transposed (element (r, c) at c * kLdB + r), the form the B operand is read in.
namespace tc_slot {
constexpr int D0 = 0;       // D0..D3: A's diagonal blocks (substitution), then the scratch of the merges
constexpr int Aoff0 = 4;    // A10 A20 A21 A30 A31 A32 (off_slot), then A_inv's blocks below the diagonal (below)
constexpr int T0 = 10;      // T00..T33 row-major (A operands, A_inv)
constexpr int Tt0 = 14;     // T00..T33 transposed (B operands)
constexpr int T10t = 18;
constexpr int kCount = 19;
// A_inv's blocks below the diagonal go into the slot of the same block of A once its last reader is done (A10 and
// A32 are read only by the products that form T10 and T32, on the same warp; A20 and A30 only in merge phase 1; A21
// and A31 until phase 2): 19 slots instead of 23 (a slot each for T10, T32, C21 and C31 before the 25th session).
constexpr int T10 = Aoff0 + 0, C20 = Aoff0 + 1, C21 = Aoff0 + 2, C30 = Aoff0 + 3, C31 = Aoff0 + 4, T32 = Aoff0 + 5;
}  // namespace tc_slot
constexpr std::size_t kInverseTcBytes = sizeof(float) * kSlotF * tc_slot::kCount;

__device__ __forceinline__ constexpr int off_slot(int r, int c) { return tc_slot::Aoff0 + r * (r - 1) / 2 + c; }
static_assert(tc_slot::T10 == off_slot(1, 0) && tc_slot::C20 == off_slot(2, 0) && tc_slot::C21 == off_slot(2, 1) &&
                  tc_slot::C30 == off_slot(3, 0) && tc_slot::C31 == off_slot(3, 1) && tc_slot::T32 == off_slot(3, 2),
              "A_inv's block (a, b) below the diagonal ends in A's slot of that block");
// The slot holding block (a, b) of A_inv (b <= a) once merge_blocks has returned.
__device__ __forceinline__ int ainv_slot(int a, int b) { return a == b ? tc_slot::T0 + a : off_slot(a, b); }

// ---------------------------------------------------------------- 3xTF32 products on 16x16 blocks
// x = hi + lo as tf32 operands by truncation, 2 instructions per register: hi is x itself (the tensor core reads
// only the upper 19 bits of an operand register, i.e. truncates), lo = x - trunc(x) (exact in fp32: the low 13
// bits of x's significand), which the tensor core truncates in turn. |x - hi| < 2^-10 |x| and |lo - tf32(lo)| <
// 2^-10 |lo| < 2^-20 |x|, so hi*hi + hi*lo + lo*hi is within 3 * 2^-20 (1 + 2^-10) < 2^-18 of x*y: the bound of
// Precision::tf32x3 (reference/bounds.hpp). Rounding both parts to nearest (CUTLASS's "round_half_ulp_truncate",
// 4 instructions per register, 3 * 2^-22) cost ~30% more merge instructions (cuda/NOTES.md, tenth session);
// cvt.rna.tf32.f32 has no single SASS instruction on sm_90 (with it, kkt_solve v5 took 90.5 us instead of 65.8).
// That the tensor core ignores hi's low 13 bits is a property of the sm_90 hardware, not of PTX (which expects tf32
// values; CUDA's __nv_tf32 leaves the number of mantissa bits to the target): on a target that read more of them,
// hi + lo would count the low bits twice (error up to 2^-10 |x|), which tests/cuda/test_gpu_tc.cpp's bounds and
// bit-equality checks would fail; there, clear them (hi = x & 0xFFFFE000, one LOP3 per register).
__device__ __forceinline__ uint32_t tf32_lo(uint32_t x) {
  return __float_as_uint(__uint_as_float(x) - __uint_as_float(x & 0xFFFFE000u));
}
__device__ __forceinline__ void mma_tf32(float (&c)[4], uint32_t const (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// acc (16x16 in two m16n8 accumulator tiles) += L * R, L row-major, R given transposed (Rt[n][k]); both
// 16x16 fp32 slots. ldmatrix of 16-byte rows hands each lane one fp32 word: for L, matrices (rows 0-7,
// k 0-3), (rows 8-15, k 0-3), (rows 0-7, k 4-7), (rows 8-15, k 4-7) are exactly the tf32 A fragment; for Rt,
// (n 0-7, k 0-3), (n 0-7, k 4-7), (n 8-15, k 0-3), (n 8-15, k 4-7) the B fragments of both n-tiles.
// kShort (measured by cuda/inverse_probe.cu only, not used by the kernels): the two correction terms in accumulators of
// their own, added at the end, so that the dependent chain of mma per accumulator is 2 instead of 6 (a different
// summation order, the same bound).
template <bool kShort = false>
__device__ __forceinline__ void mma16_tf32x3(float (&acc)[2][4], float const* L, float const* Rt) {
  int const lane = threadIdx.x & 31, q = lane >> 3, r = lane & 7;
  float s1[2][4] = {}, s2[2][4] = {};
#pragma unroll
  for (int k0 = 0; k0 < 16; k0 += 8) {
    uint32_t ah[4], al[4], bh[4], bl[4];  // hi: the fp32 words as loaded
    ldsm_x4(ah, L + (r + (q & 1) * 8) * kLdB + k0 + (q >> 1) * 4, false);
    ldsm_x4(bh, Rt + (r + (q >> 1) * 8) * kLdB + k0 + (q & 1) * 4, false);
#pragma unroll
    for (int x = 0; x < 4; ++x) al[x] = tf32_lo(ah[x]), bl[x] = tf32_lo(bh[x]);
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      mma_tf32(kShort ? s1[nt] : acc[nt], al, bh[2 * nt], bh[2 * nt + 1]);  // small terms first
      mma_tf32(kShort ? s2[nt] : acc[nt], ah, bl[2 * nt], bl[2 * nt + 1]);
      mma_tf32(acc[nt], ah, bh[2 * nt], bh[2 * nt + 1]);
    }
  }
  if constexpr (kShort) {
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[nt][e] += s1[nt][e] + s2[nt][e];
  }
}

// acc += L * R as one tf32 product per k step (L, R as mma16_tf32x3's): each operand rounded to tf32 by adding half
// a tf32 ulp to its bit pattern (+0x1000; the tensor core then truncates), i.e. to nearest with ties away from zero,
// |x - tf32(x)| <= 2^-11 |x|: Precision::tf32, the rounding FLA's merges declare. One integer add per register
// instead of mma16_tf32x3's split (two per register) and one mma instead of three. Not used by the kernels: measured
// in cuda/inverse_probe.cu (issue 5 allows lower-precision merges measured to stay inside the gate), it took ~4.5% off
// kkt_solve 5 on an H100 and moved 6% of A_inv's entries (cuda/NOTES.md, twenty-sixth session).
__device__ __forceinline__ void mma16_tf32(float (&acc)[2][4], float const* L, float const* Rt) {
  int const lane = threadIdx.x & 31, q = lane >> 3, r = lane & 7;
#pragma unroll
  for (int k0 = 0; k0 < 16; k0 += 8) {
    uint32_t a[4], b[4];
    ldsm_x4(a, L + (r + (q & 1) * 8) * kLdB + k0 + (q >> 1) * 4, false);
    ldsm_x4(b, Rt + (r + (q >> 1) * 8) * kLdB + k0 + (q & 1) * 4, false);
#pragma unroll
    for (int x = 0; x < 4; ++x) a[x] += 0x1000u, b[x] += 0x1000u;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) mma_tf32(acc[nt], a, b[2 * nt], b[2 * nt + 1]);
  }
}

// How merge_blocks forms its products: kMulTf32x3 (the kernels), kMulTf32x3Short (mma16_tf32x3<true>) and kMulTf32
// (mma16_tf32), both measured by cuda/inverse_probe.cu only.
enum MergeMul : int { kMulTf32x3 = 0, kMulTf32x3Short = 1, kMulTf32 = 2 };
template <int kMul>
__device__ __forceinline__ void mma16_merge(float (&acc)[2][4], float const* L, float const* Rt) {
  if constexpr (kMul == kMulTf32)
    mma16_tf32(acc, L, Rt);
  else
    mma16_tf32x3<kMul == kMulTf32x3Short>(acc, L, Rt);
}

__device__ __forceinline__ void zero_acc16(float (&acc)[2][4]) {
#pragma unroll
  for (int nt = 0; nt < 2; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
}

// sign * acc into a slot row-major (rm) and/or transposed (tr); either may be null.
__device__ __forceinline__ void store_block16(float const (&acc)[2][4], float sign, float* rm, float* tr) {
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int nt = 0; nt < 2; ++nt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float const v0 = sign * acc[nt][2 * hh], v1 = sign * acc[nt][2 * hh + 1];
      int const row = g + 8 * hh, col = 8 * nt + 2 * t;
      if (rm) *reinterpret_cast<float2*>(rm + row * kLdB + col) = make_float2(v0, v1);
      if (tr) tr[col * kLdB + row] = v0, tr[(col + 1) * kLdB + row] = v1;
    }
}

// ---------------------------------------------------------------- the Gram, once per key head
// This warp's tiles, one byte each (4 * block row + block column; 0xFF none): {0,4,12} {5,9,13} {10,8} {15,14}.
// Warp a holds diagonal tile (a, a), so that it inverts the block it gated after a __syncwarp instead of a block
// barrier (the same tiles and products as the earlier deal {0,15,12} {4,5,13} {8,9} {10,14}, so the same bytes;
// ~1% faster, cuda/NOTES.md seventeenth session); warps 2 and 3 skip the gate of their dummy third tile.
__device__ __forceinline__ unsigned gram_tile_set(int warp) {
  return warp == 0 ? 0x0C0400u : warp == 1 ? 0x0D0905u : warp == 2 ? 0xFF080Au : 0xFF0E0Fu;
}

// G[n] = the raw dot products of this warp's n-th tile (accumulator layout), k tile rows past the chunk's
// end zero. Same fragments and order as kkt_tile.cuh's products.
template <class E, int K>
__device__ __forceinline__ void gram_tiles(E const* ks, int lds, float (&G)[3][2][4]) {
  unsigned const tiles = gram_tile_set(threadIdx.x >> 5);
#pragma unroll
  for (int n = 0; n < 3; ++n) {
    // warps 2 and 3 have two tiles; their third slot computes block (0, 0) again (gate_tiles skips it):
    // straight-line code whose three product chains the compiler can interleave
    int const tile = static_cast<int>((tiles >> (8 * n)) & 0xFFu) & 0x0F;
    float acc[1][2][4];
    zero_acc(acc);
    warp_mma<E, true, true, 1, 2>(acc, ks, lds, 16 * (tile >> 2), ks, lds, 16 * (tile & 3), 0, K);
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) G[n][j][e] = acc[0][j][e];
  }
}

// gram_tiles and, for the same tiles, Q K^T into P (the rows of Qs instead of ks as the A operand): each B
// fragment of ks loaded once for both; per product the fragments and k order of gram_tiles / warp_mma.
template <class E, int K>
__device__ __forceinline__ void gram_and_qk_tiles(E const* ks, E const* qs, int lds, float (&G)[3][2][4],
                                                  float (&P)[3][2][4]) {
  unsigned const tiles = gram_tile_set(threadIdx.x >> 5);
  int const lane = threadIdx.x & 31, li = lane >> 3, lr = lane & 7;
#pragma unroll
  for (int n = 0; n < 3; ++n)
#pragma unroll
    for (int e = 0; e < 8; ++e) G[n][e >> 2][e & 3] = 0.f, P[n][e >> 2][e & 3] = 0.f;
#pragma unroll
  for (int n = 0; n < 3; ++n) {
    int const tile = static_cast<int>((tiles >> (8 * n)) & 0xFFu) & 0x0F;  // no tile: block (0, 0), as gram_tiles
    int const mb = 16 * (tile >> 2), nb = 16 * (tile & 3);
#pragma unroll
    for (int k0 = 0; k0 < K; k0 += 16) {
      uint32_t ak[4], aq[4], bf[4];
      ldsm_x4(ak, ks + (mb + (lane & 15)) * lds + k0 + (lane >> 4) * 8, false);
      ldsm_x4(aq, qs + (mb + (lane & 15)) * lds + k0 + (lane >> 4) * 8, false);
      ldsm_x4(bf, ks + (nb + lr + (li >> 1) * 8) * lds + k0 + (li & 1) * 8, false);
      mma16816<E>(G[n][0], ak, bf[0], bf[1]);
      mma16816<E>(G[n][1], ak, bf[2], bf[3]);
      mma16816<E>(P[n][0], aq, bf[0], bf[1]);
      mma16816<E>(P[n][1], aq, bf[2], bf[3]);
    }
  }
}

// Which of this lane's 24 gate entries are kept (strictly lower and in a row inside the chunk): bit 8n + 4hh + 2jj +
// e for tile n, row half hh, column half jj, column e of the pair. Fixed for a block (its warps' tiles and the
// chunk's length), so computed once before the value-head loop; warps 2 and 3 keep nothing of their dummy tile.
__device__ __forceinline__ unsigned gate_keep_mask(int rows) {
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  unsigned const tiles = gram_tile_set(threadIdx.x >> 5);
  unsigned keep = 0;
#pragma unroll
  for (int n = 0; n < 3; ++n) {
    int const tile = static_cast<int>((tiles >> (8 * n)) & 0xFFu);
    if (tile == 0xFF) continue;
    int const rb = tile >> 2, cb = tile & 3;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          int const i = 16 * rb + g + 8 * hh, j = 16 * cb + 8 * jj + 2 * t + e;
          if (i < rows && j < i) keep |= 1u << (8 * n + 4 * hh + 2 * jj + e);  // i < rows implies j valid
        }
  }
  return keep;
}

// Block row and column of this warp's n-th gate tile (`tiles` = gram_tile_set(warp)); block (0, 0) for the third
// tile that warps 2 and 3 do not have. (gate_tiles still spells it out, so that the probe's changes leave the
// library's code alone.)
__device__ __forceinline__ void gate_tile_rc(unsigned tiles, int n, int& rb, int& cb) {
  int const tile = static_cast<int>((tiles >> (8 * n)) & 0xFFu);
  bool const real = tile != 0xFF;
  rb = real ? tile >> 2 : 0, cb = real ? tile & 3 : 0;
}

// A of one value head from the Gram: diagonal blocks into D0..D3, the others into their off_slot.
// gs, bs: the head's g_cumsum and beta per chunk row; keep: gate_keep_mask(rows). No barrier inside.
__device__ __forceinline__ void gate_tiles(float const (&G)[3][2][4], float const* gs, float const* bs, unsigned keep,
                                           float* sc) {
  int const warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  unsigned const tiles = gram_tile_set(warp);
  // Straight-line code over all three tiles and their 8 entries per lane: every gate value loaded first, then every
  // exp and store, the mask a select by a bit of `keep` at the end (the exp of an entry above the diagonal may
  // overflow; the select drops it). With the mask as a branch around each entry, the compiler emitted 24 serial
  // basic blocks per warp; with the loads among the stores, it could not move a load above an earlier store to the
  // slots, and every pair of entries waited for its own shared-memory load: ~3100 and ~1800 cycles per head at one
  // block per SM (cuda/inverse_probe.cu); with the mask computed per entry (row and column tests), the gate was
  // ~20 instructions per entry. Warps 2 and 3 have no third tile: they load its (block (0, 0)'s) gate values with
  // the others and skip its exps and stores (a warp-uniform branch around a whole tile, not an entry).
  int rb[3], cb[3];
  float gi[3][2], bi[3][2], gj[3][2][2];  // scalar loads: the __shared__ gate arrays are only 4-byte aligned
#pragma unroll
  for (int n = 0; n < 3; ++n) {
    int const tile = static_cast<int>((tiles >> (8 * n)) & 0xFFu);
    bool const real = tile != 0xFF;
    rb[n] = real ? tile >> 2 : 0, cb[n] = real ? tile & 3 : 0;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) gi[n][hh] = gs[16 * rb[n] + g + 8 * hh], bi[n][hh] = bs[16 * rb[n] + g + 8 * hh];
#pragma unroll
    for (int jj = 0; jj < 2; ++jj)
#pragma unroll
      for (int e = 0; e < 2; ++e) gj[n][jj][e] = gs[16 * cb[n] + 8 * jj + 2 * t + e];
  }
#pragma unroll
  for (int n = 0; n < 3; ++n) {
    if (n == 2 && warp >= 2) break;  // no third tile
    float* dst = sc + (rb[n] == cb[n] ? tc_slot::D0 + rb[n] : off_slot(rb[n], cb[n])) * kSlotF;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float const val = bi[n][hh] * __expf(gi[n][hh] - gj[n][jj][e]) * G[n][jj][2 * hh + e];
          v[e] = (keep >> (8 * n + 4 * hh + 2 * jj + e)) & 1u ? val : 0.f;
        }
        *reinterpret_cast<float2*>(dst + (g + 8 * hh) * kLdB + 8 * jj + 2 * t) = make_float2(v[0], v[1]);
      }
  }
}

// ---------------------------------------------------------------- where the gate's time goes (cuda/inverse_probe.cu)
// gate_tiles with one part of its work taken out, for the probe's ablations (not used by the kernels). MODE 1: the
// exp replaced by a multiply-add (no MUFU); 2: the gate values from registers, not the gs / bs slots (no shared
// loads); 3: nothing stored (the values summed, one store per lane that never happens); 4: the raw dot products
// stored (no loads, no exp: the stores and the wait for the Gram's products only); 5: as 4 without the one read of
// gs / bs per lane. Values are wrong on purpose. Until the gate values came by cp.async (GateStage, twentieth
// session), mode 5 and SKIP 1 (no gate at all) also dropped their loads from device memory, nothing reading them;
// the copies stay now (asm volatile), so those rows no longer include that saving.
template <int MODE>
__device__ __forceinline__ void gate_tiles_probe(float const (&G)[3][2][4], float const* gs, float const* bs,
                                                 unsigned keep, float* sc) {
  int const warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  unsigned const tiles = gram_tile_set(warp);
  float sum = 0.f;
  // modes 2 and 4 still read one gate value and beta per lane
  float const g0 = MODE == 2 || MODE == 4 ? gs[lane] : 0.f, b0 = MODE == 2 || MODE == 4 ? bs[lane] : 0.f;
  static_assert(MODE >= 1 && MODE <= 5, "gate_tiles_probe: modes 1..5");
#pragma unroll
  for (int n = 0; n < 3; ++n) {
    if (n == 2 && warp >= 2) break;  // no third tile
    int rb, cb;
    gate_tile_rc(tiles, n, rb, cb);
    float* dst = sc + (rb == cb ? tc_slot::D0 + rb : off_slot(rb, cb)) * kSlotF;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int const i = 16 * rb + g + 8 * hh;
      float const gi = MODE == 2 ? g0 - 0.01f * float(i) : gs[i], bi = MODE == 2 ? b0 + 0.001f * float(lane) : bs[i];
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          int const j = 16 * cb + 8 * jj + 2 * t + e;
          float const gj = MODE == 2 ? -0.01f * float(j) : gs[j];
          float const x = MODE == 1 ? 1.f + (gi - gj) : __expf(gi - gj);
          float const dot = G[n][jj][2 * hh + e];
          float const val = MODE == 4 ? dot + g0 * b0 : MODE == 5 ? dot : bi * x * dot;
          v[e] = (keep >> (8 * n + 4 * hh + 2 * jj + e)) & 1u ? val : 0.f;
          sum += v[e];
        }
        if constexpr (MODE != 3)
          *reinterpret_cast<float2*>(dst + (g + 8 * hh) * kLdB + 8 * jj + 2 * t) = make_float2(v[0], v[1]);
      }
    }
  }
  if (MODE == 3 && sum == 1234.5f) sc[threadIdx.x] = sum;  // keeps the values computed
}

// The diagonal blocks' inverses T_aa = I + N_aa, N = (I + A_aa)^-1 - I by fp32 forward substitution,
// column j of N: N_ij = -A_ij - sum_{m<i} A_im N_mj. Warp a inverts block a; lane (h, j) = (lane / 16,
// lane % 16) owns column j and, for rows 8-15, the half m in [8h, 8h + 8) of the sum (the halves are added
// with one shuffle; rows 0-7 need only the first half, which both halves compute). Each row's sum runs
// over m ascending, so only its last FMA waits for the row before: the chain is ~a shuffle per row
// instead of tril_inverse.cuh's i FMAs and 16 selects per row (a different summation order than that
// file; the bound is order-free). Row-major into T0 + a, transposed into Tt0 + a. No barrier inside.
__device__ __forceinline__ void invert_diag(float* sc) {
  int const a = threadIdx.x >> 5, lane = threadIdx.x & 31, j = lane & 15, h = lane >> 4;
  float const* Ab = sc + (tc_slot::D0 + a) * kSlotF;
  float n[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) n[i] = 0.f;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    int const c0 = i < 8 ? 0 : 8 * h;  // this lane's half of row i
    float4 const p0 = *reinterpret_cast<float4 const*>(Ab + i * kLdB + c0);
    float4 const p1 = *reinterpret_cast<float4 const*>(Ab + i * kLdB + c0 + 4);
    float const ar[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
    float s = (i < 8 || h == 0) ? -Ab[i * kLdB + j] : 0.f;  // -A_ij (0 unless j < i)
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      if (i < 8 && t >= i) break;                // A_im = 0 for m >= i
      float const nm = i < 8 ? n[t] : (h ? n[8 + t] : n[t]);  // N_mj, m = c0 + t (0 where not yet computed)
      s = fmaf(-ar[t], nm, s);
    }
    if (i >= 8) s += __shfl_xor_sync(0xffffffffu, s, 16);
    n[i] = s;
  }
  float* Tr = sc + (tc_slot::T0 + a) * kSlotF;
  float* Tt = sc + (tc_slot::Tt0 + a) * kSlotF;
  float tv[8];  // this half's rows 8h .. 8h + 7 of column j of T
#pragma unroll
  for (int t = 0; t < 8; ++t) {
    int const i = 8 * h + t;
    // I + N, exactly +0 above the diagonal (the A_inv store relies on it) even where a non-finite A made N NaN there
    tv[t] = j > i ? 0.f : (h ? n[8 + t] : n[t]) + (i == j ? 1.f : 0.f);
    Tr[i * kLdB + j] = tv[t];
  }
  *reinterpret_cast<float4*>(Tt + j * kLdB + 8 * h) = make_float4(tv[0], tv[1], tv[2], tv[3]);
  *reinterpret_cast<float4*>(Tt + j * kLdB + 8 * h + 4) = make_float4(tv[4], tv[5], tv[6], tv[7]);
}

// Phase 1 of the merges, warp W's part (W a template argument: slot numbers stay constants, each warp's code as if
// written out), no barrier: w0 X10 = A10 T00 (through D0), T10 = -T11 X10 (row-major and transposed); w1 X32 =
// A32 T22 (through D1), T32 = -T33 X32; w2 / w3 Y21 = A21 T11 / Y31 = A31 T11 into D2 / D3 and Z20 = A20 T00 /
// Z30 = A30 T00 left in acc2.
template <int kMul, int W>
__device__ __forceinline__ void merge_phase1_warp(float* sc, float (&acc)[2][4], float (&acc2)[2][4]) {
  using namespace tc_slot;
  auto S = [sc](int s) { return sc + s * kSlotF; };
  if constexpr (W < 2) {
    constexpr int lo = W == 0 ? 0 : 2;  // the pair (lo + 1, lo): A_{lo+1,lo} T_lo,lo, then -T_{lo+1,lo+1} X
    mma16_merge<kMul>(acc, S(off_slot(lo + 1, lo)), S(Tt0 + lo));
    store_block16(acc, 1.f, nullptr, S(D0 + W));
    __syncwarp();
    mma16_merge<kMul>(acc2, S(T0 + lo + 1), S(D0 + W));
    store_block16(acc2, -1.f, S(W == 0 ? T10 : T32), W == 0 ? S(T10t) : nullptr);
  } else {
    mma16_merge<kMul>(acc, S(off_slot(W, 1)), S(Tt0 + 1));
    store_block16(acc, 1.f, nullptr, S(D0 + W));
    mma16_merge<kMul>(acc2, S(off_slot(W, 0)), S(Tt0 + 0));
  }
}
template <int kMul>
__device__ __forceinline__ void merge_phase1(float* sc, float (&acc)[2][4], float (&acc2)[2][4]) {
  int const warp = threadIdx.x >> 5;
  if (warp == 0)
    merge_phase1_warp<kMul, 0>(sc, acc, acc2);
  else if (warp == 1)
    merge_phase1_warp<kMul, 1>(sc, acc, acc2);
  else if (warp == 2)
    merge_phase1_warp<kMul, 2>(sc, acc, acc2);
  else
    merge_phase1_warp<kMul, 3>(sc, acc, acc2);
}

// The merges. In: T_aa (row-major and transposed), A's off-diagonal blocks. Out: every lower block of A_inv
// row-major at ainv_slot(a, b). Three phases, each ending with a block barrier:
//   1  w0: X10 = A10 T00, T10 = -T11 X10    w1: X32 = A32 T22, T32 = -T33 X32
//      w2: Y21 = A21 T11, Z20 = A20 T00      w3: Y31 = A31 T11, Z30 = A30 T00    (Z kept in registers)
//   2  w2: Y20 = Z20 + A21 T10               w3: Y30 = Z30 + A31 T10
//   3  w0: C20 = -T22 Y20    w1: C30 = -(T32 Y20 + T33 Y30)    w2: C21 = -T22 Y21    w3: C31 = -(T32 Y21 + T33 Y31)
// (T_A = [T00 0; T10 T11], T_B = [T22 0; T32 T33], Y = A_BA T_A, C = -T_B Y is A_inv's bottom-left 32x32.)
// Five products on the longest path. The schedule before the seventeenth session (Y20 and Y30 on warps 0 and 1 in
// phase 2 after their T10 / T32, C30 alone in phase 3) had seven and left warps 2 and 3 idle in phase 3; both make
// the same products into the same accumulators (Z20 continues into Y20 in one warp's registers), so the bytes are
// the same. H100, same runs: kkt_solve 5 56.0 against 58.4-58.8 us at T = 8192, 180-182 against 186-188 at T =
// 32768 (with the gate deal of gram_tile_set). Phase 2 was first a handoff by named barriers inside one phase
// (bar.arrive by warps 2 and 3, bar.sync by 0 and 1): equally fast, but racecheck reported RAW hazards on T10t
// (warp 0's phase-1 store, warp 3's phase-2 read, a block barrier between them) that it did not report with
// bar.sync on both sides or with this block barrier; the plain barrier keeps the tools' verdict unambiguous.
// X10, X32 go through the warp's own D slot (a __syncwarp between); Y20, Y30 through D0, D1 (dead after phase 1).
template <int kMul = kMulTf32x3>
__device__ __forceinline__ void merge_blocks(float* sc) {
  using namespace tc_slot;
  int const warp = threadIdx.x >> 5;
  auto S = [sc](int s) { return sc + s * kSlotF; };
  float acc[2][4], acc2[2][4];
  zero_acc16(acc);
  zero_acc16(acc2);
  merge_phase1<kMul>(sc, acc, acc2);  // Z_r0 = A_r0 T00 stays in acc2 of warps 2 and 3
  __syncthreads();
  GDNV_PHASE();
  zero_acc16(acc);
  if (warp >= 2) {  // Y_r0 = Z_r0 + A_r1 T10 into D0 (r = 2) / D1 (r = 3)
    int const r = warp == 2 ? 2 : 3;
    mma16_merge<kMul>(acc2, S(off_slot(r, 1)), S(T10t));
    store_block16(acc2, 1.f, nullptr, S(D0 + (warp - 2)));
  }
  __syncthreads();
  GDNV_PHASE();
  if (warp == 2) {
    mma16_merge<kMul>(acc, S(T0 + 2), S(D0 + 2));
    store_block16(acc, -1.f, S(C21), nullptr);
  } else if (warp == 3) {
    mma16_merge<kMul>(acc, S(T32), S(D0 + 2));
    mma16_merge<kMul>(acc, S(T0 + 3), S(D0 + 3));
    store_block16(acc, -1.f, S(C31), nullptr);
  } else if (warp == 0) {
    mma16_merge<kMul>(acc, S(T0 + 2), S(D0));
    store_block16(acc, -1.f, S(C20), nullptr);
  } else {
    mma16_merge<kMul>(acc, S(T32), S(D0));
    mma16_merge<kMul>(acc, S(T0 + 3), S(D0 + 1));
    store_block16(acc, -1.f, S(C30), nullptr);
  }
  __syncthreads();
  GDNV_PHASE();
}

// One value head's A_inv into the slots: gate (G, gs, bs, keep = gate_keep_mask(rows)) -> __syncwarp -> diagonal blocks
// -> barrier -> merges (ending with a barrier). The caller's barrier must separate the previous readers of the slots.
// A __syncwarp, not a block barrier, after the gate: warp a gated the block it inverts (gram_tile_set); the other
// tiles are read by the merges, after the next barrier.
// SKIP and kMul serve cuda/inverse_probe.cu's ablations and candidates only (0 / kMulTf32x3 in the kernels): SKIP bit 1
// leaves out the gate, 2 the diagonal blocks, 4 the merges (their barriers and phase hooks stay); kMul: merge_blocks'.
template <int SKIP = 0, int kMul = kMulTf32x3>
__device__ __forceinline__ void inverse_tc(float const (&G)[3][2][4], float const* gs, float const* bs, unsigned keep,
                                           float* sc) {
  if constexpr (!(SKIP & 1)) gate_tiles(G, gs, bs, keep, sc);
  __syncwarp();
  GDNV_PHASE();
  if constexpr (!(SKIP & 2)) invert_diag(sc);
  __syncthreads();
  GDNV_PHASE();
  if constexpr (!(SKIP & 4)) {
    merge_blocks<kMul>(sc);
  } else {
    __syncthreads();
    GDNV_PHASE();
    GDNV_PHASE();
    GDNV_PHASE();
  }
}
// inverse_tc with gate_tiles_probe<MODE> (the probe's gate ablations): the same phases after the gate.
template <int MODE, int kMul = kMulTf32x3>
__device__ __forceinline__ void inverse_tc_gate_probe(float const (&G)[3][2][4], float const* gs, float const* bs,
                                                      unsigned keep, float* sc) {
  gate_tiles_probe<MODE>(G, gs, bs, keep, sc);
  inverse_tc<1, kMul>(G, gs, bs, keep, sc);  // SKIP 1: its own gate left out
}

// This thread's share of A_inv after inverse_tc: 8 consecutive entries (row 16 x + ainv_piece_row(), columns
// 8 ainv_piece_col8() ..) for x = 0..3; entries above the diagonal exactly 0. The eight threads of a 16-byte
// shared-memory phase read the same column piece of eight consecutive rows (the row stride kLdB puts them in
// distinct banks; with the eight pieces of one row instead, four slots at the same bank offsets: 4-way conflicts),
// and a warp stores eight half rows, 64 bytes each, to device memory.
__device__ __forceinline__ int ainv_piece_row() { return (threadIdx.x & 7) | ((threadIdx.x >> 6) << 3); }
__device__ __forceinline__ int ainv_piece_col8() { return (threadIdx.x >> 3) & 7; }
__device__ __forceinline__ void ainv_piece(float const* sc, int x, float (&v)[8]) {
  int const r = ainv_piece_row(), q = ainv_piece_col8(), b = q >> 1, c0 = (q & 1) * 8;
  // no branch around the loads: a block above the diagonal (b > x) reads the diagonal block and is zeroed by one
  // select per entry (the diagonal blocks are exactly 0 above their diagonal: invert_diag), so a caller's four
  // pieces are independent loads
  float const* src = sc + ainv_slot(x, b > x ? x : b) * kSlotF + r * kLdB + c0;
  float4 const p0 = *reinterpret_cast<float4 const*>(src), p1 = *reinterpret_cast<float4 const*>(src + 4);
  float const p[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
  bool const zero = b > x;
#pragma unroll
  for (int e = 0; e < 8; ++e) v[e] = zero ? 0.f : p[e];
}

// Eight floats rounded to a 16-bit E, as one 16-byte store to shared or device memory (kGlobal: `p` is in device
// memory, stored by st.global.v4: as a uint4 assignment, the A_inv store of kkt_solve 5 compiled to four 4-byte
// stores, and ncu counted 4x the ideal sectors for them).
template <class E, bool kGlobal = false>
__device__ __forceinline__ void store8(E* p, float const (&v)[8]) {
  uint4 w;
  w.x = pack2<E>(v[0], v[1]), w.y = pack2<E>(v[2], v[3]), w.z = pack2<E>(v[4], v[5]), w.w = pack2<E>(v[6], v[7]);
  if constexpr (kGlobal)
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(p), "r"(w.x), "r"(w.y), "r"(w.z), "r"(w.w) : "memory");
  else
    *reinterpret_cast<uint4*>(p) = w;
}

}  // namespace gdn_cuda
