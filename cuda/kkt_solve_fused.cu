// Fused stages 2+3: A_inv = (I + A)^-1 per (chunk, value head) straight from k, beta and g_cumsum, with
// A = strictly-lower(beta_i exp(gc_i - gc_j) k_i.k_j) kept on chip (the kernel that sglang's "fuse kkt +
// solve_tril" change introduced). A never touches device memory: the stage reads k, beta, g_cumsum and
// writes A_inv only (bf16 / fp16 / fp32, Args::ainv, the layout of solve_tril: all 64 columns of every
// valid row, strict upper part exactly 0).
// Arithmetic: identical to the unfused kkt -> solve_tril pair (the same mma fragments and order for A,
// the same fp32 substitution and fp32 merges, cuda/kkt_tile.cuh + cuda/tril_inverse.cuh), so the fused
// A_inv is bit-identical to the unfused one -- unlike FLA's fused kernel, which switches the merges to
// tf32 (gdn-algorithm.md 3.4).
// Variants:
//   1 one 128-thread block per (chunk, value head), value head fastest in the 1-D grid so the G
//     heads sharing a key head read the same k tile from L2; k tile by cp.async into padded shared
//     memory, which the inverse's output tile reuses once the products are done; A as an fp32 shared
//     tile. Dynamic shared memory: 38 KB (bf16, K = 128). H100 (B=1 T=8192 H=16 HV=32 K=128): 98 us
//     (FLA's fused kernel: 107; our kkt + solve_tril: 130); 14 us per block, ~4.5 blocks per SM in
//     flight: latency-bound (the serial substitution and six barrier-separated merge phases).
//   2 (tried, removed) as 1 with 256 threads, warps 4-7 joining the merges (2 rows per thread) and the
//     store: predicted ~75 us from more warps hiding shared-memory latency; measured 126 us (11 us per
//     block, but 2.7 blocks per SM instead of 4.5). ncu of 1: L1/shared 74% busy (3500 wavefronts per
//     block), 9.2 cycles per issued instruction, 30% of stalls at barriers, 5 warps per scheduler.
//   3 as 1 with the merges on 2 x 4 register patches (cuda/tril_inverse.cuh): 6 float4 loads per 32
//     FMAs instead of 8 loads per 16. solve_tril 72 -> 64 us, this kernel unchanged (96.7 us). ncu
//     stall samples of 1: load phase 17%, KKT products + gate 25%, barrier after them 12% (warp 3 had
//     4 tiles, warp 0 one), substitution 17%, merges + store 40%.
//   4 as 3, the ten KKT tiles dealt 3/3/2/2 to the warps, and the merges' X blocks kept in the
//     unused blocks above A's diagonal (35 KB of shared memory: 6 blocks per SM instead of 5). The
//     default (Args::kkt_solve_variant = 4): bit-identical to the unfused pair.
//   5 one 128-thread block per (chunk, key head), looping over the G value heads of that key head: the k
//     tile is loaded and K K^T computed once (GQA sharing; kept in registers), then per value head the
//     gate (fast exp), the diagonal blocks by fp32 substitution (the row sums split across half-warps),
//     the merges as a 32x32 recursive inverse in 3xTF32 on the tensor cores (cuda/inverse_tc.cuh), and
//     the A_inv store as 16-byte pieces from the fp32 blocks. Not bit-identical to 4 (the exp and the merges differ in the last fp32 bits);
//     `gdnv check` reports the bit-equal fraction and tests/cuda/test_gpu_tc.cpp bounds it. 16-bit inputs
//     with A_inv in the input dtype only (others run variant 4). Shared memory 29 KB (the inverse's slots
//     alias the k tile), 80 registers (launch bounds for 6 blocks per SM; 96 at 5: 64.4 against 62.9 us warm).
//     H200, B=1 T=8192 H=16 HV=32, cold L2: 63.2 us (variant 4: 82.6; FLA on an H100: 107); T = 32768: 211 us.
//     First version, with cvt.rna.tf32 splits and the substitution on two warps: 90.5 us; 66.0 before the gate
//     and the A_inv store lost their serial chains (cuda/NOTES.md, cuda/inverse_probe.cu). Tenth session (ncu
//     source page, cuda/NOTES.md): A_inv pieces read without bank conflicts and stored by one 16-byte st.global
//     (was four 4-byte stores), the gate's keep mask once per block, 3xTF32 splits by truncation (2 instead of 4
//     instructions per register), TileCopy loads: 56.3 us cold (T = 32768: 183.9), 20.4M warp instructions per
//     launch against 27.4M; 80 registers, no spills.
//   6 variant 5's work in a persistent grid (kkt_solve_grid(): as many blocks as the device holds at once, or
//     Args::kkt_solve_blocks), each block walking the (chunk, key head) items blockIdx.x, + gridDim.x, ...: the
//     next item's k tile is loaded (cp.async, into its own buffer beside the inverse's slots) while the current
//     item's value heads are inverted, and the gates run one head ahead across items. Why: in variant 5 a block
//     spends ~37% of its time loading its k tile and gates (cuda/inverse_probe.cu on an H100: 11.6k of 31.1k
//     cycles per block at four blocks per SM), which only other blocks' work can hide. The price: 46 KB of shared
//     memory (the k tile no longer under the slots), so four blocks per SM instead of six. The same arithmetic
//     and functions as 5, so the same bytes (tests/cuda/test_gpu_tc.cpp). Written in the fifteenth session without
//     a GPU: NOT yet measured.
#include "kkt_solve_v5_block.cuh"
#include "kkt_tile.cuh"

#include <algorithm>

namespace gdn_cuda {
namespace {

template <class E, int K>
constexpr std::size_t kkt_solve_smem_bytes() {
  constexpr std::size_t ktile = sizeof(E) * kBT * (K + 8), ts = sizeof(float) * kBT * kLdA;
  return (ktile > ts ? ktile : ts) + sizeof(float) * kBT * kLdA;
}

template <class E, class OutT, int K>
__global__ void __launch_bounds__(128) kkt_solve_fused_kernel(Args a) {
  constexpr int LDS = K + 8;
  constexpr std::size_t ktile = sizeof(E) * kBT * LDS, ts = sizeof(float) * kBT * kLdA;
  extern __shared__ __align__(16) unsigned char smem[];
  E* ks = reinterpret_cast<E*>(smem);           // [64][LDS] k tile; dead after the products
  float* Ts = reinterpret_cast<float*>(smem);   // [64][kLdA] A_inv, aliases ks
  float* As = reinterpret_cast<float*>(smem + (ktile > ts ? ktile : ts));  // [64][kLdA]
  __shared__ float gs[kBT], bs[kBT];
  block_time_begin(a.block_times);

  int const HV = static_cast<int>(a.d.HV);
  auto const [c, hv, hk] = chunk_tile(a);
  int const tid = threadIdx.x;
  E const* kg = static_cast<E const*>(a.k) + (c.row0 * a.d.H + hk) * K;
  load_tile_async<E>(ks, LDS, kg, a.d.H * K, kBT, c.rows, K, tid, 128);
  cp_async_commit();
  load_gate_beta(a, c, hv, gs, bs);
  cp_async_wait<0>();
  __syncthreads();
  gated_kkt_to_smem<E, K>(ks, LDS, gs, bs, c.rows, As);
  __syncthreads();  // As complete, ks free for Ts
  invert_unit_lower_64(As, Ts);
  store_ainv_rows<OutT>(Ts, static_cast<OutT*>(a.A_inv) + (c.row0 * HV + hv) * kBT, static_cast<int64_t>(HV) * kBT,
                        c.rows, 128);
  block_time_end(a.block_times);
}

template <class E, int K>
__global__ void __launch_bounds__(128, 6) kkt_solve_v5_kernel(Args a) {
  extern __shared__ __align__(16) unsigned char smem[];
  block_time_begin(a.block_times);
  kkt_solve_v5_block<E, K>(a, smem);
  block_time_end(a.block_times);
}

// Variant 6's dynamic shared memory: the k tile ([64][K + 8]) and, beside it, the inverse's slots.
template <class E, int K>
constexpr std::size_t kkt_solve_v6_smem_bytes() {
  return sizeof(E) * kBT * (K + 8) + kInverseTcBytes;
}

template <class E, int K>
__global__ void __launch_bounds__(128, 4) kkt_solve_v6_kernel(Args a) {
  constexpr int LDS = K + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  E* ks = reinterpret_cast<E*>(smem);                                  // [64][LDS] the k tile of the next Gram
  float* sc = reinterpret_cast<float*>(smem + sizeof(E) * kBT * LDS);  // the inverse's slots
  __shared__ float gs[2][kBT], bs[2][kBT];  // per value head, double-buffered across the block's heads
  block_time_begin(a.block_times);

  int const H = static_cast<int>(a.d.H), HV = static_cast<int>(a.d.HV), G = HV / H, tid = threadIdx.x;
  int64_t const items = a.d.num_chunks * H, step = gridDim.x, first = blockIdx.x;  // first < items (launcher)
  // The block's value heads in order: head s is value head s % G of item first + (s / G) * step.
  int64_t const nheads = (items - first + step - 1) / step * G;
  auto head_gates = [&](int64_t s) {
    int64_t const item = first + s / G * step;
    return gate_beta_row(a, a.chunks[item / H], static_cast<int>(item % H) * G + static_cast<int>(s % G));
  };
  TileCopy<E, kBT, K, 128> const copy(tid);
  auto load_k = [&](int64_t item, ChunkDesc const& c) {
    copy.issue(ks, LDS, static_cast<E const*>(a.k) + (c.row0 * H + item % H) * K, a.d.H * K, c.rows);
    cp_async_commit();
  };
  ChunkDesc next = a.chunks[first / H];
  load_k(first, next);
  float3 nxt = make_float3(0.f, 0.f, 0.f);  // threads < 64: the gates of the head after the current one
  if (tid < kBT) {
    float3 const h0 = head_gates(0);
    gs[0][tid] = h0.x, bs[0][tid] = h0.y;
    if (nheads > 1) nxt = head_gates(1);
  }
  int64_t const rstride = static_cast<int64_t>(HV) * kBT;
  int64_t s = 0;
  for (int64_t item = first; item < items; item += step) {
    ChunkDesc const c = next;
    int const hk = static_cast<int>(item % H);
    cp_async_wait<0>();
    __syncthreads();  // the item's k tile (and the zeros past its chunk) and its first head's gates are visible
    float gram[3][2][4];
    gram_tiles<E, K>(ks, LDS, gram);
    unsigned const keep = gate_keep_mask(c.rows);
    for (int gi = 0; gi < G; ++gi, ++s) {
      int const hv = hk * G + gi, buf = static_cast<int>(s & 1);
      __syncthreads();  // the slots' last readers (the previous head's store) are done; at gi = 0 the Gram's k reads
      if (gi == 0 && item + step < items) {  // the next item's k tile, landing while this item's heads run
        next = a.chunks[(item + step) / H];
        load_k(item + step, next);
      }
      if (tid < kBT && s + 1 < nheads) {
        gs[buf ^ 1][tid] = nxt.x, bs[buf ^ 1][tid] = nxt.y;  // read from the next head on
        if (s + 2 < nheads) nxt = head_gates(s + 2);
      }
      inverse_tc(gram, gs[buf], bs[buf], keep, sc);
      store_ainv_head<E>(sc, static_cast<E*>(a.A_inv) + (c.row0 * HV + hv) * kBT, rstride, c.rows);
    }
  }
  block_time_end(a.block_times);
}

// Blocks of variant 6 the device holds at once (occupancy by registers and shared memory; one device assumed).
template <class E, int K>
int64_t kkt_solve_v6_resident() {
  static int64_t const n = [] {
    constexpr std::size_t bytes = kkt_solve_v6_smem_bytes<E, K>();
    ensure_smem<kkt_solve_v6_kernel<E, K>>(bytes);
    int dev = 0, sms = 0, per_sm = 0;
    GDN_CUDA_CHECK(cudaGetDevice(&dev));
    GDN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    GDN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kkt_solve_v6_kernel<E, K>, 128, bytes));
    return static_cast<int64_t>(std::max(per_sm, 1)) * std::max(sms, 1);
  }();
  return n;
}

template <class E, int K>
void launch_kkt_solve_v6(Args const& a, Stream s) {
  constexpr std::size_t bytes = kkt_solve_v6_smem_bytes<E, K>();
  ensure_smem<kkt_solve_v6_kernel<E, K>>(bytes);
  kkt_solve_v6_kernel<E, K><<<static_cast<unsigned>(kkt_solve_grid(a)), 128, bytes, s>>>(a);
}

template <class E, int K>
void launch_kkt_solve_v5(Args const& a, Stream s) {
  constexpr std::size_t bytes = kkt_solve_v5_smem_bytes<E, K>();
  unsigned const grid = static_cast<unsigned>(a.d.num_chunks * a.d.H);
  ensure_smem<kkt_solve_v5_kernel<E, K>>(bytes);
  kkt_solve_v5_kernel<E, K><<<grid, 128, bytes, s>>>(a);
}

template <class E, class OutT, int K>
void launch_kkt_solve(Args const& a, Stream s) {
  constexpr std::size_t bytes = kkt_solve_smem_bytes<E, K>();
  unsigned const grid = static_cast<unsigned>(a.d.num_chunks * a.d.HV);
  ensure_smem<kkt_solve_fused_kernel<E, OutT, K>>(bytes);
  kkt_solve_fused_kernel<E, OutT, K><<<grid, 128, bytes, s>>>(a);
}

}  // namespace

bool kkt_solve_runs_v5(Args const& a) {
  return (a.kkt_solve_variant == 5 || a.kkt_solve_variant == 6) && a.qkv != ElemType::f32 && a.ainv == a.qkv;
}

int64_t kkt_solve_grid(Args const& a) {
  if (a.kkt_solve_blocks < 0)
    throw std::invalid_argument("kkt_solve_fused: Args::kkt_solve_blocks " + std::to_string(a.kkt_solve_blocks) +
                                " is negative (0: as many blocks as the device holds at once)");
  bool const shared = kkt_solve_runs_v5(a);
  int64_t const items = a.d.num_chunks * (shared ? a.d.H : a.d.HV);
  if (!shared || a.kkt_solve_variant != 6 || items == 0) return items;
  int64_t resident = 0;
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (!std::is_same_v<E, float>) resident = a.d.K == 128 ? kkt_solve_v6_resident<E, 128>() : kkt_solve_v6_resident<E, 64>();
  });
  return std::min(items, a.kkt_solve_blocks > 0 ? static_cast<int64_t>(a.kkt_solve_blocks) : resident);
}

void kkt_solve_fused(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  (void)kkt_solve_grid(a);  // refuses a negative Args::kkt_solve_blocks whatever the variant
  // A_inv in the input dtype (serving) or fp32, as solve_tril (can_implement has checked the pair)
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (!std::is_same_v<E, float>) {
      if (kkt_solve_runs_v5(a) && a.kkt_solve_variant == 6) {
        a.d.K == 128 ? launch_kkt_solve_v6<E, 128>(a, s) : launch_kkt_solve_v6<E, 64>(a, s);
        return;
      }
      if (kkt_solve_runs_v5(a)) {
        a.d.K == 128 ? launch_kkt_solve_v5<E, 128>(a, s) : launch_kkt_solve_v5<E, 64>(a, s);
        return;
      }
    }
    if (a.ainv == ElemType::f32)
      a.d.K == 128 ? launch_kkt_solve<E, float, 128>(a, s) : launch_kkt_solve<E, float, 64>(a, s);
    else
      a.d.K == 128 ? launch_kkt_solve<E, E, 128>(a, s) : launch_kkt_solve<E, E, 64>(a, s);
  });
  GDN_LAUNCH_CHECK();
}

}  // namespace gdn_cuda
