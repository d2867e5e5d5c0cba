// Stage 1: chunk-local cumulative sum of the log-decay g (natural-log units, fp32 out).
//   g_cumsum[t, hv] = sum_{s = chunk start}^{t} g[s, hv], chunk boundaries per sequence.
// Variants:
//   1 one block per chunk, one thread per value head, a sequential fp32 sum over the chunk's 64 rows.
//     H100, T=8192 HV=32: 18 us for 2 MB (25x its floor): 128 blocks of one warp, a 64-step dependent
//     chain of loads and adds per thread.
//   2 one warp per (chunk, value head), 8 per block: lane l holds rows 2l, 2l+1; pair sums, then a 5-step warp
//     inclusive scan (shuffles) of the pair totals (summation order of a parallel scan, as Triton's tl.cumsum;
//     differs from the sequential sum only by fp32 reassociation). H100, cold: 10.4 us at T=8192, 24.4 at
//     T=32768 (HV=32; ~340 GB/s): every lane's load and store touched its own 32-byte sector (rows HV * 4
//     bytes apart), 64 sectors per warp and instruction.
//   3 (this) variant 2's arithmetic (the same bytes), the memory access changed: one 256-thread block per
//     (chunk, 32 value heads), the chunk's rows read and written whole (a warp per row: 32 consecutive
//     values) through a transposed shared tile, one warp scanning four value heads out of it.
#include "common.cuh"

namespace gdn_cuda {
namespace {

constexpr int kCumsumCols = 32;             // value heads per block
constexpr int kCumsumLd = kBT + 2;          // transposed tile: column hv at hv * kCumsumLd (even: float2 pairs)

__global__ void __launch_bounds__(256) chunk_cumsum_kernel(ChunkDesc const* __restrict__ chunks,
                                                           void const* __restrict__ g, ElemType gt,
                                                           float* __restrict__ out, int HV) {
  __shared__ __align__(8) float tile[kCumsumCols * kCumsumLd];
  ChunkDesc const c = chunks[blockIdx.x];
  int const hv0 = blockIdx.y * kCumsumCols, cols = min(kCumsumCols, HV - hv0);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  // rows past the chunk's end (and columns past HV) read as 0, as variant 2's lanes did
#pragma unroll
  for (int k = 0; k < kBT * kCumsumCols / 256; ++k) {
    int const r = warp + 8 * k;
    tile[lane * kCumsumLd + r] = r < c.rows && lane < cols ? load_scalar(g, gt, (c.row0 + r) * HV + hv0 + lane) : 0.f;
  }
  __syncthreads();
#pragma unroll
  for (int x = 0; x < kCumsumCols / 8; ++x) {
    float* const col = tile + (warp + 8 * x) * kCumsumLd;
    float2 const ab = *reinterpret_cast<float2 const*>(col + 2 * lane);  // rows 2l, 2l + 1
    float s = ab.x + ab.y;  // pair total
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      float const y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    float before = __shfl_up_sync(0xffffffffu, s, 1);  // exclusive prefix of this pair
    if (lane == 0) before = 0.f;
    *reinterpret_cast<float2*>(col + 2 * lane) = make_float2(before + ab.x, s);
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < kBT * kCumsumCols / 256; ++k) {
    int const r = warp + 8 * k;
    if (r < c.rows && lane < cols) out[(c.row0 + r) * HV + hv0 + lane] = tile[lane * kCumsumLd + r];
  }
}

}  // namespace

void chunk_cumsum(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  dim3 const grid(static_cast<unsigned>(a.d.num_chunks), static_cast<unsigned>(ceil_div(a.d.HV, kCumsumCols)));
  chunk_cumsum_kernel<<<grid, 256, 0, s>>>(a.chunks, a.g, a.g_t, a.g_cumsum, static_cast<int>(a.d.HV));
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
