// (I + A)^-1 of one 64x64 chunk held in shared memory, by 128 threads: the arithmetic shared by
// solve_tril.cu (A read from device memory) and the fused kernels (A computed on chip), so that the
// fused A_inv is bit-identical to the unfused one whenever A is.
//   (a) the four 16x16 diagonal blocks by forward substitution in fp32: one thread per column of a
//       block keeps that column of N (T_aa = I + N) in registers; row i = -A[i,:] - sum_m A[i,m] N[m,:].
//   (b) block merges T_ab = -T_aa * sum_{c=b}^{a-1} A_ac T_cb in the order T10,T21,T32 -> T20,T31 -> T30,
//       full fp32 FMAs (no tf32), 2 x 4 register patches per thread with float4 operands.
#pragma once

#include "common.cuh"

namespace gdn_cuda {

constexpr int kLdA = 68;  // fp32 row stride of As / Ts: the two half-warps of the substitution hit different banks

// acc[r][c] += sum_x p[r][x] * q[x][c] for a 2 x 4 patch, x ascending (the order every entry keeps).
__device__ __forceinline__ void patch_fma_2x4(float (&acc)[2][4], float4 const (&p)[2], float4 const (&q)[4]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float const pk[4] = {p[r].x, p[r].y, p[r].z, p[r].w};
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      acc[r][0] = fmaf(pk[x], q[x].x, acc[r][0]);
      acc[r][1] = fmaf(pk[x], q[x].y, acc[r][1]);
      acc[r][2] = fmaf(pk[x], q[x].z, acc[r][2]);
      acc[r][3] = fmaf(pk[x], q[x].w, acc[r][3]);
    }
  }
}

// In: As[64][kLdA] with the strictly lower part of A in every diagonal 16x16 block (upper part of those
// blocks and rows past the chunk's end exactly 0) and the six blocks below the diagonal blocks. The six
// blocks above the diagonal blocks are scratch: X_ab of the merges lives in block (b, a) (no extra
// shared memory, which keeps the fused kernel at six blocks per SM).
// Out: Ts[64][kLdA] holding (I + A)^-1 in the diagonal and lower blocks (the blocks above the diagonal
// blocks are not written). Exactly 128 threads must call it; it ends with a block barrier.
__device__ __forceinline__ void invert_unit_lower_64(float* As, float* Ts) {
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

  // (b) merges. Level L computes blocks (a, b) with a - b = L; a thread owns a 2 x 4 patch (rows 2rg,
  // 2rg+1, columns 4cg..4cg+3) of one block: per 4 k-values, 4 float4 loads of T (or X) rows and 2 of
  // A rows feed 32 FMAs (eight independent chains). Each entry sums over k in ascending order.
  int const cg = tid & 3, rg = (tid >> 2) & 7, blk = tid >> 5;  // one warp per block merged
#pragma unroll
  for (int L = 1; L <= 3; ++L) {
    bool const active = blk < 4 - L;
    int const bb = blk, aa = blk + L;
    // X_ab = sum_{c=b}^{a-1} A_ac T_cb
    if (active) {
      float acc[2][4] = {};
      for (int cb = bb; cb < aa; ++cb) {
#pragma unroll
        for (int m0 = 0; m0 < 16; m0 += 4) {
          float4 q[4], p[2];
#pragma unroll
          for (int x = 0; x < 4; ++x) q[x] = *reinterpret_cast<float4 const*>(Ts + (16 * cb + m0 + x) * kLdA + 16 * bb + 4 * cg);
#pragma unroll
          for (int r = 0; r < 2; ++r) p[r] = *reinterpret_cast<float4 const*>(As + (16 * aa + 2 * rg + r) * kLdA + 16 * cb + m0);
          patch_fma_2x4(acc, p, q);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r)
        *reinterpret_cast<float4*>(As + (16 * bb + 2 * rg + r) * kLdA + 16 * aa + 4 * cg) =
            make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
    }
    __syncthreads();
    // T_ab = -T_aa X_ab
    if (active) {
      float acc[2][4] = {};
#pragma unroll
      for (int m0 = 0; m0 < 16; m0 += 4) {
        float4 q[4], p[2];
#pragma unroll
        for (int x = 0; x < 4; ++x) q[x] = *reinterpret_cast<float4 const*>(As + (16 * bb + m0 + x) * kLdA + 16 * aa + 4 * cg);
#pragma unroll
        for (int r = 0; r < 2; ++r) p[r] = *reinterpret_cast<float4 const*>(Ts + (16 * aa + 2 * rg + r) * kLdA + 16 * aa + m0);
        patch_fma_2x4(acc, p, q);
      }
#pragma unroll
      for (int r = 0; r < 2; ++r)
        *reinterpret_cast<float4*>(Ts + (16 * aa + 2 * rg + r) * kLdA + 16 * bb + 4 * cg) =
            make_float4(-acc[r][0], -acc[r][1], -acc[r][2], -acc[r][3]);
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
