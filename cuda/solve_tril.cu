// Stage 3: A_inv = (I + A)^-1 per chunk, A strictly lower fp32 [B,T,HV,64].
//   (a) the four 16x16 diagonal blocks by forward substitution in fp32: one thread per column of a
//       block keeps that column of N (T_aa = I + N) in registers; row i = -A[i,:] - sum_m A[i,m] N[m,:].
//   (b) block merges T_ab = -T_aa * sum_{c=b}^{a-1} A_ac T_cb in the order T10,T21,T32 -> T20,T31 -> T30,
//       full fp32 FMAs (no tf32).
//   Output bf16 / fp16 / fp32 (run-time choice, Args::ainv); all 64 columns of every valid row are
//   written, the strict upper part exactly 0.
// Variants:
//   1 one 128-thread block per (chunk, value head); only the 10 lower 16x16 blocks of A are read
//     (float4 loads), masked to j < i < rows; rows past the chunk's end load as 0 (identity, not stored);
//     merges one output per thread with two scalar shared loads per FMA. H100, T=8192 HV=32: 84 us,
//     3.3x its memory floor: bound by shared-memory load instructions (~4600 per block).
//   2 (this) as 1, but the merges compute 4 rows of one column per thread (P rows as float4 broadcasts,
//     Q column values reused over the 4 rows: 0.5 loads per FMA instead of 2) and the substitution reads
//     the A rows as float4. H100: 74 us; ncu: L1/shared 77% busy -- the scalar shared stores of the
//     load phase (4-way bank conflicts) and the scalar reads of the store phase dominate.
//   3 (tried, reverted) as 2 with float4 shared stores in the load phase (only the groups up to the
//     diagonal block), no Ts zero-fill, float4 shared reads in the store phase: 88 us, slower than 2
//     (prediction was faster; cause not found within the device budget).
// Measured (H100, same shape): v2 73-75 us bf16 out (2.9x floor), 82-84 us fp32 out. See cuda/NOTES.md.
#include "common.cuh"

namespace gdn_cuda {
namespace {

constexpr int LDA = 68;  // 64 + 4: the two half-warps of the substitution read different banks

template <class OutT>
__global__ void __launch_bounds__(128) solve_tril_kernel(Args a) {
  __shared__ __align__(16) float As[kBT * LDA];
  __shared__ __align__(16) float Ts[kBT * LDA];
  __shared__ float Xs[3][16][17];
  block_time_begin(a.block_times);
  int const HV = static_cast<int>(a.d.HV);
  int const hv = blockIdx.x % HV;
  ChunkDesc const c = a.chunks[blockIdx.x / HV];
  int const tid = threadIdx.x;
  float const* Ag = a.A + (c.row0 * HV + hv) * kBT;
  int64_t const rstride = static_cast<int64_t>(HV) * kBT;

  // load the lower blocks (16-float groups of row i: col < 16*(i/16 + 1)), masked to j < i < rows
  for (int idx = tid; idx < kBT * 16; idx += 128) {
    int const i = idx >> 4, q = (idx & 15) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (i < c.rows && q < i) v = *reinterpret_cast<float4 const*>(Ag + i * rstride + q);
    float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      As[i * LDA + q + x] = (q + x < i) ? e[x] : 0.f;
      Ts[i * LDA + q + x] = 0.f;
    }
  }
  __syncthreads();

  // (a) diagonal blocks: thread (b, j) for tid < 64 owns column j of block b; rows of A read as float4
  if (tid < 64) {
    int const b = tid >> 4, j = tid & 15;
    float const* Ab = As + (16 * b) * LDA + 16 * b;
    float col[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      float arow[16];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float4 const v = *reinterpret_cast<float4 const*>(Ab + i * LDA + 4 * q);
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
    for (int i = 0; i < 16; ++i) Ts[(16 * b + i) * LDA + 16 * b + j] = col[i] + (i == j ? 1.f : 0.f);  // I + N
  }
  __syncthreads();

  // (b) merges. Level L computes blocks (a, b) with a - b = L. A thread computes 4 rows of one column:
  // P rows read as float4 (broadcast), Q column values reused across the 4 rows.
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
          for (int x = 0; x < 4; ++x) q[x] = Ts[(16 * cb + m0 + x) * LDA + 16 * bb + cc];
#pragma unroll
          for (int rr = 0; rr < 4; ++rr) {
            float4 const p = *reinterpret_cast<float4 const*>(As + (16 * aa + 4 * rg + rr) * LDA + 16 * cb + m0);
            acc[rr] = fmaf(p.x, q[0], acc[rr]);
            acc[rr] = fmaf(p.y, q[1], acc[rr]);
            acc[rr] = fmaf(p.z, q[2], acc[rr]);
            acc[rr] = fmaf(p.w, q[3], acc[rr]);
          }
        }
      }
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) Xs[blk][4 * rg + rr][cc] = acc[rr];
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
        for (int x = 0; x < 4; ++x) q[x] = Xs[blk][m0 + x][cc];
#pragma unroll
        for (int rr = 0; rr < 4; ++rr) {
          float4 const p = *reinterpret_cast<float4 const*>(Ts + (16 * aa + 4 * rg + rr) * LDA + 16 * aa + m0);
          acc[rr] = fmaf(p.x, q[0], acc[rr]);
          acc[rr] = fmaf(p.y, q[1], acc[rr]);
          acc[rr] = fmaf(p.z, q[2], acc[rr]);
          acc[rr] = fmaf(p.w, q[3], acc[rr]);
        }
      }
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) Ts[(16 * aa + 4 * rg + rr) * LDA + 16 * bb + cc] = -acc[rr];
    }
    __syncthreads();
  }

  // store all 64 columns of the valid rows
  OutT* out = static_cast<OutT*>(a.A_inv) + (c.row0 * HV + hv) * kBT;
  constexpr int per = 16 / sizeof(OutT);  // elements per 16-byte store
  for (int idx = tid; idx < kBT * (kBT / per); idx += 128) {
    int const i = idx / (kBT / per), q = (idx % (kBT / per)) * per;
    if (i >= c.rows) continue;
    alignas(16) OutT tmp[per];
#pragma unroll
    for (int x = 0; x < per; ++x) tmp[x] = from_f<OutT>(q + x <= i ? Ts[i * LDA + q + x] : 0.f);
    *reinterpret_cast<uint4*>(out + i * rstride + q) = *reinterpret_cast<uint4 const*>(tmp);
  }
  block_time_end(a.block_times);
}

}  // namespace

void solve_tril(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  unsigned const grid = static_cast<unsigned>(a.d.num_chunks * a.d.HV);
  dispatch_elem(a.ainv, [&](auto e) {
    using OutT = decltype(e);
    solve_tril_kernel<OutT><<<grid, 128, 0, s>>>(a);
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
