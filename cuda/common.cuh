// Shared device helpers of the gdn_cuda kernels: error checks, element types, warp-level MMA on
// shared-memory tiles (mma.sync m16n8k16 for bf16/fp16, an fp32 SIMT path with the same fragment
// layout for fp32 inputs), cp.async tile loads.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "gdn_cuda.hpp"

namespace gdn_cuda {

[[noreturn]] void throw_cuda(cudaError_t e, char const* what, char const* file, int line);

#define GDN_CUDA_CHECK(x)                                                  \
  do {                                                                     \
    cudaError_t gdn_e_ = (x);                                              \
    if (gdn_e_ != cudaSuccess) ::gdn_cuda::throw_cuda(gdn_e_, #x, __FILE__, __LINE__); \
  } while (0)
// After every launch: configuration errors now, execution errors at the next sync.
#define GDN_LAUNCH_CHECK() GDN_CUDA_CHECK(cudaGetLastError())

constexpr int kBT = 64;  // chunk size

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------- per-block timing (Args::block_times)
// Opt-in: with a non-null buffer, thread 0 writes %globaltimer (ns) at the block's entry to
// buf[2*block] and, after a block barrier at its exit, to buf[2*block+1]. Null (the default) costs one
// uniform, predictable branch at entry and one at exit. Kernels using it must reach the exit with every
// thread (no early return).
__device__ __forceinline__ unsigned long long global_timer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ void block_time_begin(unsigned long long* bt) {
  if (bt != nullptr && threadIdx.x == 0) bt[2 * static_cast<int64_t>(blockIdx.x)] = global_timer_ns();
}
__device__ __forceinline__ void block_time_end(unsigned long long* bt) {
  if (bt != nullptr) {
    __syncthreads();
    if (threadIdx.x == 0) bt[2 * static_cast<int64_t>(blockIdx.x) + 1] = global_timer_ns();
  }
}

// ---------------------------------------------------------------- element conversions
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
template <class E> __device__ __forceinline__ E from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }

// Scalars whose dtype is only known at run time (g, beta): a switch is cheap next to the tiles.
__device__ __forceinline__ float load_scalar(void const* p, ElemType t, int64_t i) {
  switch (t) {
    case ElemType::bf16: return __bfloat162float(static_cast<__nv_bfloat16 const*>(p)[i]);
    case ElemType::f16: return __half2float(static_cast<__half const*>(p)[i]);
    default: return static_cast<float const*>(p)[i];
  }
}

template <class E> constexpr bool is_16bit() { return sizeof(E) == 2; }

// Split x into hi + lo, both representable in E (16-bit): x - hi - lo ~ 2^-16 |x| (bf16).
template <class E>
__device__ __forceinline__ void split_f(float x, E& hi, E& lo) {
  hi = from_f<E>(x);
  lo = from_f<E>(x - to_f(hi));
}

// ---------------------------------------------------------------- cp.async
__device__ __forceinline__ void cp_async16(void* smem, void const* gmem) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async8(void* smem, void const* gmem) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async4(void* smem, void const* gmem) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Copy `rows` x `cols` elements (cols*sizeof(E) a multiple of 16) from global (row stride gstride
// elements) into shared memory (row stride lds elements); rows >= valid are zero-filled.
template <class E>
__device__ __forceinline__ void load_tile_async(E* smem, int lds, E const* gmem, int64_t gstride, int rows, int valid,
                                                int cols, int tid, int nthreads) {
  constexpr int per = 16 / sizeof(E);
  int const vec_per_row = cols / per;
  for (int i = tid; i < rows * vec_per_row; i += nthreads) {
    int const r = i / vec_per_row, c = (i % vec_per_row) * per;
    if (r < valid)
      cp_async16(smem + r * lds + c, gmem + r * gstride + c);
    else
      *reinterpret_cast<uint4*>(smem + r * lds + c) = make_uint4(0, 0, 0, 0);
  }
}

// load_tile_async's copy with its index arithmetic done once per thread, for a tile copied over and over
// (chunk_state loads three tiles per chunk step): this thread's pieces are rows r0, r0 + RSTEP, ... at
// column c0. ROWS x COLS elements of E by NTHREADS threads; rows >= valid are zero-filled.
template <class E, int ROWS, int COLS, int NTHREADS>
struct TileCopy {
  static constexpr int kPer = 16 / static_cast<int>(sizeof(E));  // elements per 16-byte piece
  static constexpr int kVpr = COLS / kPer;                        // pieces per row
  static_assert(COLS % kPer == 0 && NTHREADS % kVpr == 0 && (ROWS * kVpr) % NTHREADS == 0, "tile shape");
  static constexpr int kRstep = NTHREADS / kVpr;                  // rows between a thread's pieces
  static constexpr int kPieces = ROWS * kVpr / NTHREADS;          // pieces per thread
  int r0, c0;
  __device__ __forceinline__ explicit TileCopy(int tid) : r0(tid / kVpr), c0((tid % kVpr) * kPer) {}
  __device__ __forceinline__ void issue(E* smem, int lds, E const* gmem, int64_t gstride, int valid) const {
    E* s = smem + r0 * lds + c0;
    E const* g = gmem + r0 * gstride + c0;
    int64_t const gstep = kRstep * gstride;
    if (valid >= ROWS) {  // a full chunk: no per-row test
#pragma unroll
      for (int x = 0; x < kPieces; ++x) cp_async16(s + x * kRstep * lds, g + x * gstep);
    } else {
#pragma unroll
      for (int x = 0; x < kPieces; ++x) {
        if (r0 + x * kRstep < valid)
          cp_async16(s + x * kRstep * lds, g + x * gstep);
        else
          *reinterpret_cast<uint4*>(s + x * kRstep * lds) = make_uint4(0, 0, 0, 0);
      }
    }
  }
};

// ---------------------------------------------------------------- warp MMA on shared tiles
// acc[MT][NT][4] += A(m0 + 16*MT rows, kb..ke) * B(kb..ke, n0 + 8*NT cols), per warp, fp32 accumulate.
// Accumulator fragment (mma m16n8 C layout): acc[i][j][0,1] at row m0+16i+lane/4, cols n0+8j+2(lane%4)+{0,1};
// acc[i][j][2,3] at row +8.
// A_ROW: A(m,k) = A[m*lda + k], else A[k*lda + m].  B_NK: B(k,n) = B[n*ldb + k], else B[k*ldb + n].
// k range multiple of 16; NT even.
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], void const* p, bool trans) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  if (trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}

template <class E>
__device__ __forceinline__ void mma16816(float (&c)[4], uint32_t const (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<E, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// With B2 != nullptr (same layout and ldb as B) the product A * B2 is accumulated too, reusing the
// A fragments (the hi + lo split of an operand).
template <class E, bool A_ROW, bool B_NK, int MT, int NT, bool TWO_B = false>
__device__ __forceinline__ void warp_mma(float (&acc)[MT][NT][4], E const* A, int lda, int m0, E const* B, int ldb,
                                         int n0, int kb, int ke, E const* B2 = nullptr) {
  int const lane = threadIdx.x & 31;
  if constexpr (is_16bit<E>()) {
    static_assert(NT % 2 == 0, "NT must be even");
    int const li = lane >> 3, lr = lane & 7;
    for (int k0 = kb; k0 < ke; k0 += 16) {
      uint32_t af[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        int const mb = m0 + 16 * i;
        if constexpr (A_ROW) {
          ldsm_x4(af[i], A + (mb + (lane & 15)) * lda + k0 + (lane >> 4) * 8, false);
        } else {
          ldsm_x4(af[i], A + (k0 + lr + (li >> 1) * 8) * lda + mb + (li & 1) * 8, true);
        }
      }
#pragma unroll
      for (int j = 0; j < NT; j += 2) {
        int const nb = n0 + 8 * j;
        uint32_t bf[4];
        if constexpr (B_NK) {
          // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
          ldsm_x4(bf, B + (nb + lr + (li >> 1) * 8) * ldb + k0 + (li & 1) * 8, false);
        } else {
          ldsm_x4(bf, B + (k0 + lr + (li & 1) * 8) * ldb + nb + (li >> 1) * 8, true);
        }
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          mma16816<E>(acc[i][j], af[i], bf[0], bf[1]);
          mma16816<E>(acc[i][j + 1], af[i], bf[2], bf[3]);
        }
        if constexpr (TWO_B) {
          if constexpr (B_NK) {
            ldsm_x4(bf, B2 + (nb + lr + (li >> 1) * 8) * ldb + k0 + (li & 1) * 8, false);
          } else {
            ldsm_x4(bf, B2 + (k0 + lr + (li & 1) * 8) * ldb + nb + (li >> 1) * 8, true);
          }
#pragma unroll
          for (int i = 0; i < MT; ++i) {
            mma16816<E>(acc[i][j], af[i], bf[0], bf[1]);
            mma16816<E>(acc[i][j + 1], af[i], bf[2], bf[3]);
          }
        }
      }
    }
  } else {
    // fp32 inputs: plain fp32 FMAs with the same fragment ownership (no tf32).
    int const g = lane >> 2, t = lane & 3;
    for (int k = kb; k < ke; ++k) {
      float av[MT][2];
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          int const m = m0 + 16 * i + g + 8 * h;
          av[i][h] = A_ROW ? A[m * lda + k] : A[k * lda + m];
        }
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        float bv[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          int const n = n0 + 8 * j + 2 * t + e;
          bv[e] = B_NK ? B[n * ldb + k] : B[k * ldb + n];
          if constexpr (TWO_B) bv[e] += B_NK ? B2[n * ldb + k] : B2[k * ldb + n];
        }
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          acc[i][j][0] = fmaf(av[i][0], bv[0], acc[i][j][0]);
          acc[i][j][1] = fmaf(av[i][0], bv[1], acc[i][j][1]);
          acc[i][j][2] = fmaf(av[i][1], bv[0], acc[i][j][2]);
          acc[i][j][3] = fmaf(av[i][1], bv[1], acc[i][j][3]);
        }
      }
    }
  }
}

// Q K^T for one warp's 16-row strip m of a 64-row chunk (Qs, Ks: [64][ld] shared tiles, k = 0..K): the m + 1
// tiles of 16 columns on or below the diagonal into P[jp] (zeroed here; P[jp > m] stay 0), in one k loop so
// that the tiles' accumulator chains interleave; per element the k order of warp_mma<E, true, true, 1, 2>
// over (Qs rows 16m.., Ks rows 16jp..), as chunk_output computes its scores.
template <class E, int K>
__device__ __forceinline__ void qk_lower_tiles(float (&P)[4][2][4], E const* Qs, E const* Ks, int ld, int m) {
  int const lane = threadIdx.x & 31, li = lane >> 3, lr = lane & 7;
#pragma unroll
  for (int jp = 0; jp < 4; ++jp)
#pragma unroll
    for (int e = 0; e < 8; ++e) P[jp][e >> 2][e & 3] = 0.f;
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t af[4];
    ldsm_x4(af, Qs + (16 * m + (lane & 15)) * ld + k0 + (lane >> 4) * 8, false);
#pragma unroll
    for (int jp = 0; jp < 4; ++jp) {
      if (jp > m) continue;
      uint32_t bf[4];
      ldsm_x4(bf, Ks + (16 * jp + lr + (li >> 1) * 8) * ld + k0 + (li & 1) * 8, false);
      mma16816<E>(P[jp][0], af, bf[0], bf[1]);
      mma16816<E>(P[jp][1], af, bf[2], bf[3]);
    }
  }
}

template <int MT, int NT>
__device__ __forceinline__ void zero_acc(float (&acc)[MT][NT][4]) {
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
}

// Load two consecutive elements (4-byte aligned for 16-bit E) as floats, exactly.
template <class E>
__device__ __forceinline__ float2 load2f(E const* p) {
  if constexpr (std::is_same_v<E, float>) {
    return *reinterpret_cast<float2 const*>(p);
  } else if constexpr (std::is_same_v<E, __nv_bfloat16>) {
    return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 const*>(p));
  } else {
    return __half22float2(*reinterpret_cast<__half2 const*>(p));
  }
}

// Store two consecutive elements.
template <class E>
__device__ __forceinline__ void store2(E* p, float a, float b) {
  if constexpr (std::is_same_v<E, float>) {
    *reinterpret_cast<float2*>(p) = make_float2(a, b);
  } else if constexpr (std::is_same_v<E, __nv_bfloat16>) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
  } else {
    *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
  }
}

// Gate, mask and round one 16 x 16 tile (ta, tb) of the score rows (chunk_output 2's expressions, so the same
// bytes): entry (r, j) = round_E(P_rj e^{gx_r - gx_j}) for j <= r < rows, else 0, the gate selected under the
// mask before the exp (gdn-algorithm.md 2.7). P: the tile's accumulators (mma C layout, from qk_lower_tiles or
// gram_and_qk_tiles); gx: the value head's chunk-local g_cumsum in shared memory (0 past the chunk's end);
// row 16 ta + i of the chunk is written at rowbase + i * ld, its column j at + j.
template <class E>
__device__ __forceinline__ void gate_score_tile(float const (&P)[2][4], float const* gx, int rows, int ta, int tb,
                                                E* rowbase, int ld) {
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  // straight-line: the gate values loaded before any store (a load cannot move above a store that may alias it),
  // every exp unconditional, the mask a final select
  float gr[2], gj[2][2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) gr[hh] = gx[16 * ta + g + 8 * hh];
#pragma unroll
  for (int jj = 0; jj < 2; ++jj)
#pragma unroll
    for (int e = 0; e < 2; ++e) gj[jj][e] = gx[16 * tb + 8 * jj + 2 * t + e];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const r = 16 * ta + g + 8 * hh;
    bool const rok = r < rows;
#pragma unroll
    for (int jj = 0; jj < 2; ++jj) {
      int const j = 16 * tb + 8 * jj + 2 * t;
      float v[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        bool const keep = tb <= ta && rok && (j + e) <= r;
        float const val = P[jj][2 * hh + e] * expf(keep ? gr[hh] - gj[jj][e] : 0.f);
        v[e] = keep ? val : 0.f;
      }
      store2<E>(rowbase + (g + 8 * hh) * ld + j, v[0], v[1]);
    }
  }
}

// One warp's strip of score rows 16m..16m+15 (P from qk_lower_tiles), row i at strip + i * ld.
// kAllTiles: also write the zero tiles above the diagonal block (false: tiles jp > m are left as they are).
template <class E, bool kAllTiles = true>
__device__ __forceinline__ void gate_score_strip(float const (&P)[4][2][4], float const* gx, int rows, int m, E* strip,
                                                 int ld) {
#pragma unroll
  for (int jp = 0; jp < 4; ++jp)
    if (kAllTiles || jp <= m) gate_score_tile<E>(P[jp], gx, rows, m, jp, strip, ld);
}

// kRows gated score rows from shared memory (row i at buf + i * ld: chunk row row0 + i) to device memory as
// 128-byte row pieces by kThreads threads (this one: `me`): `out` points at the chunk's row 0 of one value
// head, rows `rstride` elements apart; chunk rows at or past `rows` are skipped. The caller orders the
// writes of buf before (a warp's strip: __syncwarp; a block-wide buffer: __syncthreads).
template <class E, int kRows, int kThreads>
__device__ __forceinline__ void store_score_rows(E const* buf, int ld, E* out, int64_t rstride, int row0, int rows,
                                                 int me) {
  constexpr int PPR = kBT * static_cast<int>(sizeof(E)) / 16;  // 16-byte pieces per row
  constexpr int EPP = 16 / static_cast<int>(sizeof(E));
  static_assert(kRows * PPR % kThreads == 0, "pieces per thread");
#pragma unroll
  for (int y = 0; y < kRows * PPR / kThreads; ++y) {
    int const idx = me + kThreads * y, rr = idx / PPR, q = (idx % PPR) * EPP, r = row0 + rr;
    if (r < rows)
      *reinterpret_cast<uint4*>(out + static_cast<int64_t>(r) * rstride + q) = *reinterpret_cast<uint4 const*>(buf + rr * ld + q);
  }
}

// Two floats rounded to a 16-bit E and packed as one mma operand register (first element in the low
// half, as the A/B fragments and ldmatrix place the lower column index), and back.
template <class E>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  static_assert(is_16bit<E>(), "16-bit element types only");
  uint32_t r;
  if constexpr (std::is_same_v<E, __nv_bfloat16>) {
    __nv_bfloat162 const v = __floats2bfloat162_rn(lo, hi);
    r = *reinterpret_cast<uint32_t const*>(&v);
  } else {
    __half2 const v = __floats2half2_rn(lo, hi);
    r = *reinterpret_cast<uint32_t const*>(&v);
  }
  return r;
}
template <class E>
__device__ __forceinline__ float2 unpack2(uint32_t r) {
  if constexpr (std::is_same_v<E, __nv_bfloat16>) {
    return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 const*>(&r));
  } else {
    return __half22float2(*reinterpret_cast<__half2 const*>(&r));
  }
}

// stmatrix .x4 .trans: matrix i (register r[i], the mma fragment layout: lane l holds row l/4, columns
// 2(l%4), +1) is stored transposed, its column j as the 8 consecutive 16-bit elements at the address
// given by lane 8i + j (16-byte aligned).
__device__ __forceinline__ void stsm_x4_trans(void* p, uint32_t const (&r)[4]) {
  unsigned const s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1,%2,%3,%4};\n"
               ::"r"(s), "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3]) : "memory");
}

// Barrier `id` (1..15; 0 is __syncthreads) among `threads` threads (a multiple of 32), which also orders
// their shared-memory accesses.
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Arrive at barrier `id` without waiting (a producer's signal): the threads that bar.sync on it with the
// same count see this thread's earlier shared-memory writes once it completes.
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---------------------------------------------------------------- the block's (chunk, value head)
// The 1-D grids of the per-chunk stages put the value head fastest, so the G value heads of one key head
// (which read the same k tile) run side by side and share it through L2.
struct ChunkTile {
  ChunkDesc c;  // the chunk
  int hv, hk;   // value head, and the key head it reads (GQA: hv / G)
};
__device__ __forceinline__ ChunkTile chunk_tile(Args const& a) {
  int const HV = static_cast<int>(a.d.HV);
  int const hv = static_cast<int>(blockIdx.x % HV);
  return {a.chunks[blockIdx.x / HV], hv, hv / static_cast<int>(HV / a.d.H)};
}

// The block's (sequence n, value head hv, its key head hk, V tile vt) in the 1-D grid of every chunk_state
// variant and of state_output_fused: the V tiles of a head fastest (they read the same w and k tiles), then
// the value heads, then the sequences.
struct StateTile {
  int n, hv, hk, vt;
};
template <int NVT>
__device__ __forceinline__ StateTile state_tile(Args const& a) {
  int const HV = static_cast<int>(a.d.HV);
  int const b = static_cast<int>(blockIdx.x);
  int const hv = (b / NVT) % HV;
  return {b / (NVT * HV), hv, hv / static_cast<int>(HV / a.d.H), b % NVT};
}

// ---------------------------------------------------------------- per-row gate and beta of a chunk
// (g_cumsum, beta, beta e^g_cumsum) of the chunk's row r = threadIdx.x for value head hv; 0 past the
// chunk's end. A caller that ignores .z pays no exp (inlined, the dead expf goes).
__device__ __forceinline__ float3 gate_beta_row(Args const& a, ChunkDesc const& c, int hv) {
  int const r = threadIdx.x;
  if (r >= c.rows) return make_float3(0.f, 0.f, 0.f);
  int64_t const i = (c.row0 + r) * a.d.HV + hv;
  float const g = a.g_cumsum[i], b = load_scalar(a.beta, a.beta_t, i);
  return make_float3(g, b, b * expf(g));
}

// Where chunk `chunk`'s gate values for value head hv start in Args::gate_pack (chunk_cumsum writes them, GateStage and
// stage_g_cumsum read them): 64 g_cumsum floats, then 64 beta floats, a 512-byte run per chunk and value head.
__host__ __device__ __forceinline__ int64_t gate_pack_offset(int64_t chunk, int64_t HV, int64_t hv) {
  return (chunk * HV + hv) * (2 * kBT);
}

// One value head's gate values of a chunk into shared memory, dst[0..63] = g_cumsum and dst[64..127] = beta of
// the chunk's rows (0 past its end; dst 16-byte aligned): issue() starts the copy at a point where dst is free, the
// caller commits it into a cp.async group, and before the barrier that publishes the group calls publish() after
// waiting for it. Nothing travels through registers (gate_beta_row's way: measured on the H100, intra 3 115 -> 109
// us and kkt+solve 5 56.1 -> 55.3 at T = 8192, cuda/NOTES.md twentieth session):
//   - from Args::gate_pack where chunk_cumsum wrote it: 512 contiguous bytes, 32 16-byte copies (H100, warm, the
//     rows' way in the same binary and run: kkt+solve 5 55.0 -> 50.6 us at T = 8192, 181 -> 169 at T = 32768;
//     cuda/NOTES.md twenty-first session);
//   - else g_cumsum and fp32 beta by 4-byte cp.async, one sector per row and array; a 2-byte beta is loaded into a
//     register and stored by publish().
struct GateStage {
  float held = 0.f;
  __device__ __forceinline__ void issue(Args const& a, ChunkDesc const& c, int64_t chunk, int hv, float* dst, int tid) {
    if (a.gate_pack != nullptr) {
      if (tid < 2 * kBT / 4) cp_async16(dst + 4 * tid, a.gate_pack + gate_pack_offset(chunk, a.d.HV, hv) + 4 * tid);
      return;
    }
    if (tid >= 2 * kBT) return;
    int const r = tid & (kBT - 1);
    int64_t const i = (c.row0 + r) * a.d.HV + hv;
    if (r >= c.rows)
      dst[tid] = 0.f;
    else if (tid < kBT)
      cp_async4(dst + tid, a.g_cumsum + i);
    else if (a.beta_t == ElemType::f32)
      cp_async4(dst + tid, static_cast<float const*>(a.beta) + i);
    else
      held = load_scalar(a.beta, a.beta_t, i);
  }
  __device__ __forceinline__ void publish(Args const& a, ChunkDesc const& c, float* dst, int tid) const {
    if (a.gate_pack == nullptr && a.beta_t != ElemType::f32 && tid >= kBT && tid < 2 * kBT && (tid & (kBT - 1)) < c.rows)
      dst[tid] = held;
  }
};

// The g_cumsum of n value heads hv0.. of a chunk, dst[x * 64 + r] for head hv0 + x (0 past the chunk's end), by
// cp.async into the caller's next group, spread over `threads` threads: from Args::gate_pack where chunk_cumsum wrote
// it (16-byte pieces of each head's run), else 4 bytes per row (one sector per row and head). dst 16-byte aligned.
// (intra_fused 3's score rows loaded them with plain loads that every thread waited for before the k tile's barrier:
// 141.9 -> 133.0 us at T = 8192, H100, warm; 134.4 by the rows' way.)
__device__ __forceinline__ void stage_g_cumsum(Args const& a, ChunkDesc const& c, int64_t chunk, int hv0, int n,
                                               float* dst, int tid, int threads) {
  if (a.gate_pack != nullptr) {
    for (int i = tid; i < n * (kBT / 4); i += threads) {
      int const x = i / (kBT / 4), p = i % (kBT / 4);
      cp_async16(dst + x * kBT + 4 * p, a.gate_pack + gate_pack_offset(chunk, a.d.HV, hv0 + x) + 4 * p);
    }
    return;
  }
  for (int i = tid; i < n * kBT; i += threads) {
    int const x = i / kBT, r = i % kBT;
    if (r < c.rows)
      cp_async4(dst + i, a.g_cumsum + (c.row0 + r) * a.d.HV + hv0 + x);
    else
      dst[i] = 0.f;
  }
}

// gs[r] = g_cumsum (if gs), bs[r] = beta and es[r] = beta e^g_cumsum (if es) of the chunk's row r for
// value head hv, 0 past the chunk's end; threads 0..63 load them, the caller's barrier publishes them.
__device__ __forceinline__ void load_gate_beta(Args const& a, ChunkDesc const& c, int hv, float* gs, float* bs,
                                               float* es = nullptr) {
  int const r = threadIdx.x;
  if (r >= kBT) return;
  float3 const v = gate_beta_row(a, c, hv);
  if (gs) gs[r] = v.x;
  bs[r] = v.y;
  if (es) es[r] = v.z;
}

// A warp's 16-row accumulator strip (rows m0 + 16i.., the mma C layout of warp_mma with MT = 1) into
// device memory as O: `out` points at column 0 of the chunk's row 0, rows `rstride` elements apart; rows
// at or past `rows` are skipped. 4-byte stores (two columns per lane).
template <class O, int NT>
__device__ __forceinline__ void store_acc_rows(float const (&acc)[1][NT][4], O* out, int64_t rstride, int m0,
                                               int rows) {
  int const lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    int const i = m0 + g + 8 * hh;
    if (i >= rows) continue;
    O* orow = out + i * rstride;
#pragma unroll
    for (int j = 0; j < NT; ++j) store2<O>(orow + 8 * j + 2 * t, acc[0][j][2 * hh], acc[0][j][2 * hh + 1]);
  }
}

// Raise a kernel's dynamic shared-memory limit once (per process; one device assumed).
template <auto Kern>
void ensure_smem(std::size_t bytes) {
  static std::size_t done = 0;
  if (bytes > done) {
    GDN_CUDA_CHECK(cudaFuncSetAttribute(Kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    done = bytes;
  }
}

// Dispatch an ElemType to a C++ type.
template <class F>
void dispatch_elem(ElemType t, F&& f) {
  switch (t) {
    case ElemType::bf16: f(__nv_bfloat16{}); break;
    case ElemType::f16: f(__half{}); break;
    case ElemType::f32: f(float{}); break;
  }
}

}  // namespace gdn_cuda
