// (I + A)^-1 of one 64x64 chunk held in shared memory, by 128 threads: the arithmetic shared by
// solve_tril.cu (A read from device memory) and the fused kernels (A computed on chip), so that the
// fused A_inv is bit-identical to the unfused one whenever A is.
//   (a) the four 16x16 diagonal blocks by forward substitution in fp32: one thread per column of a
//       block keeps that column of N (T_aa = I + N) in registers; row i = -A[i,:] - sum_m A[i,m] N[m,:].
//   (b) block merges T_ab = -T_aa * sum_{c=b}^{a-1} A_ac T_cb in the order T10,T21,T32 -> T20,T31 -> T30,
//       full fp32 FMAs (no tf32). A thread computes 4 rows of one column: P rows read as float4
//       broadcasts, Q column values reused across the 4 rows (0.5 shared loads per FMA).
#pragma once

#include "common.cuh"

namespace gdn_cuda {

constexpr int kLdA = 68;  // fp32 row stride of As / Ts: the two half-warps of the substitution hit different banks

// Scratch of the merges: one 16x16 block per block merged at a level (3 at most), padded.
struct MergeScratch {
  float x[3][16][17];
};

// In: As[64][kLdA] with the strictly lower part of A in every diagonal 16x16 block (upper part of those
// blocks and rows past the chunk's end exactly 0) and the six blocks below the diagonal blocks.
// Out: Ts[64][kLdA] holding (I + A)^-1 in the diagonal and lower blocks (the blocks above the diagonal
// blocks are not written). Every thread of the 128 must call it; it ends with a block barrier.
__device__ __forceinline__ void invert_unit_lower_64(float const* As, float* Ts, MergeScratch& xs) {
  int const tid = threadIdx.x;
  // (a) diagonal blocks: thread (b, j) for tid < 64 owns column j of block b; rows of A read as float4
  if (tid < 64) {
    int const b = tid >> 4, j = tid & 15;
    float const* Ab = As + (16 * b) * kLdA + 16 * b;
    float col[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      float arow[16];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float4 const v = *reinterpret_cast<float4 const*>(Ab + i * kLdA + 4 * q);
        arow[4 * q] = v.x, arow[4 * q + 1] = v.y, arow[4 * q + 2] = v.z, arow[4 * q + 3] = v.w;
      }
      float s = 0.f;
#pragma unroll
      for (int q = 0; q < 16; ++q)
        if (q == j) s = -arow[q];  // -A[i][j] (0 unless j < i)
#pragma unroll
      for (int m = 0; m < i; ++m) s = fmaf(-arow[m], col[m], s);
      col[i] = s;
    }
#pragma unroll
    for (int i = 0; i < 16; ++i) Ts[(16 * b + i) * kLdA + 16 * b + j] = col[i] + (i == j ? 1.f : 0.f);  // I + N
  }
  __syncthreads();

  // (b) merges. Level L computes blocks (a, b) with a - b = L.
#pragma unroll
  for (int L = 1; L <= 3; ++L) {
    int const nb = 4 - L;
    // X_ab = sum_{c=b}^{a-1} A_ac T_cb
    for (int item = tid; item < nb * 64; item += 128) {
      int const blk = item >> 6, rg = (item >> 4) & 3, cc = item & 15;
      int const bb = blk, aa = blk + L;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      for (int cb = bb; cb < aa; ++cb) {
#pragma unroll
        for (int m0 = 0; m0 < 16; m0 += 4) {
          float q[4];
#pragma unroll
          for (int x = 0; x < 4; ++x) q[x] = Ts[(16 * cb + m0 + x) * kLdA + 16 * bb + cc];
#pragma unroll
          for (int rr = 0; rr < 4; ++rr) {
            float4 const p = *reinterpret_cast<float4 const*>(As + (16 * aa + 4 * rg + rr) * kLdA + 16 * cb + m0);
            acc[rr] = fmaf(p.x, q[0], acc[rr]);
            acc[rr] = fmaf(p.y, q[1], acc[rr]);
            acc[rr] = fmaf(p.z, q[2], acc[rr]);
            acc[rr] = fmaf(p.w, q[3], acc[rr]);
          }
        }
      }
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) xs.x[blk][4 * rg + rr][cc] = acc[rr];
    }
    __syncthreads();
    // T_ab = -T_aa X_ab
    for (int item = tid; item < nb * 64; item += 128) {
      int const blk = item >> 6, rg = (item >> 4) & 3, cc = item & 15;
      int const bb = blk, aa = blk + L;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int m0 = 0; m0 < 16; m0 += 4) {
        float q[4];
#pragma unroll
        for (int x = 0; x < 4; ++x) q[x] = xs.x[blk][m0 + x][cc];
#pragma unroll
        for (int rr = 0; rr < 4; ++rr) {
          float4 const p = *reinterpret_cast<float4 const*>(Ts + (16 * aa + 4 * rg + rr) * kLdA + 16 * aa + m0);
          acc[rr] = fmaf(p.x, q[0], acc[rr]);
          acc[rr] = fmaf(p.y, q[1], acc[rr]);
          acc[rr] = fmaf(p.z, q[2], acc[rr]);
          acc[rr] = fmaf(p.w, q[3], acc[rr]);
        }
      }
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) Ts[(16 * aa + 4 * rg + rr) * kLdA + 16 * bb + cc] = -acc[rr];
    }
    __syncthreads();
  }
}

// Store all 64 columns of the chunk's valid rows of A_inv (strict upper part exactly 0), rounded once
// to OutT, with 16-byte stores. `out` points at the chunk's first row; rows are `rstride` apart.
template <class OutT>
__device__ __forceinline__ void store_ainv_rows(float const* Ts, OutT* out, int64_t rstride, int rows, int nthreads) {
  constexpr int per = 16 / sizeof(OutT);  // elements per 16-byte store
  for (int idx = threadIdx.x; idx < kBT * (kBT / per); idx += nthreads) {
    int const i = idx / (kBT / per), q = (idx % (kBT / per)) * per;
    if (i >= rows) continue;
    alignas(16) OutT tmp[per];
#pragma unroll
    for (int x = 0; x < per; ++x) tmp[x] = from_f<OutT>(q + x <= i ? Ts[i * kLdA + q + x] : 0.f);
    *reinterpret_cast<uint4*>(out + i * rstride + q) = *reinterpret_cast<uint4 const*>(tmp);
  }
}

}  // namespace gdn_cuda
