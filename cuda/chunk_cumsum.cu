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
//     Where Args::gate_pack is set it also reads beta's rows the same way and writes each value head's 64
//     g_cumsum and 64 beta values (as floats, 0 past the chunk's end) as one 512-byte run: the gate values of
//     kkt_solve_fused 5 and intra_fused 3, which a block then copies in 16 sectors instead of 128. That costs
//     this kernel 5.0 -> 6.5 us at T = 8192 and 6.1 -> 9.9 at T = 32768 (H100, warm) and saves the fused kernels
//     more (cuda/NOTES.md, twenty-first session).
#include "common.cuh"

namespace gdn_cuda {
namespace {

constexpr int kCumsumCols = 32;             // value heads per block
constexpr int kCumsumLd = kBT + 2;          // transposed tile: column hv at hv * kCumsumLd (even: float2 pairs)

__global__ void __launch_bounds__(256) chunk_cumsum_kernel(ChunkDesc const* __restrict__ chunks,
                                                           void const* __restrict__ g, ElemType gt,
                                                           void const* __restrict__ beta, ElemType bt,
                                                           float* __restrict__ out, float* __restrict__ pack, int HV) {
  __shared__ __align__(8) float tile[kCumsumCols * kCumsumLd];
  __shared__ __align__(8) float btile[kCumsumCols * kCumsumLd];  // beta, transposed alike (pack only)
  ChunkDesc const c = chunks[blockIdx.x];
  int const hv0 = blockIdx.y * kCumsumCols, cols = min(kCumsumCols, HV - hv0);
  int const tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  // rows past the chunk's end (and columns past HV) read as 0, as variant 2's lanes did
#pragma unroll
  for (int k = 0; k < kBT * kCumsumCols / 256; ++k) {
    int const r = warp + 8 * k;
    bool const in = r < c.rows && lane < cols;
    int64_t const i = (c.row0 + r) * HV + hv0 + lane;
    tile[lane * kCumsumLd + r] = in ? load_scalar(g, gt, i) : 0.f;
    if (pack != nullptr) btile[lane * kCumsumLd + r] = in ? load_scalar(beta, bt, i) : 0.f;
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
  if (pack == nullptr) return;
  // a warp per value head: lanes 0..15 its 64 g_cumsum rows, 16..31 its 64 beta rows, 16 bytes each
  int const half = lane >> 4, r4 = 4 * (lane & 15);
  for (int x = warp; x < cols; x += 8) {
    float const* src = (half ? btile : tile) + x * kCumsumLd + r4;
    float4 v = make_float4(src[0], src[1], src[2], src[3]);
    if (!half) {  // the scan carried its total past the chunk's end
      v.x = r4 < c.rows ? v.x : 0.f, v.y = r4 + 1 < c.rows ? v.y : 0.f;
      v.z = r4 + 2 < c.rows ? v.z : 0.f, v.w = r4 + 3 < c.rows ? v.w : 0.f;
    }
    *reinterpret_cast<float4*>(pack + gate_pack_offset(blockIdx.x, HV, hv0 + x) + half * kBT + r4) = v;
  }
}

}  // namespace

void chunk_cumsum(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  dim3 const grid(static_cast<unsigned>(a.d.num_chunks), static_cast<unsigned>(ceil_div(a.d.HV, kCumsumCols)));
  chunk_cumsum_kernel<<<grid, 256, 0, s>>>(a.chunks, a.g, a.g_t, a.beta, a.beta_t, a.g_cumsum, a.gate_pack,
                                           static_cast<int>(a.d.HV));
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
