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
//     with A_inv in the input dtype only (others run variant 4). Shared memory 24 KB (the inverse's 19 slots
//     alias the k tile), 80 registers (launch bounds for 6 blocks per SM; 96 at 5: 64.4 against 62.9 us warm).
//     H200, B=1 T=8192 H=16 HV=32, cold L2: 63.2 us (variant 4: 82.6; FLA on an H100: 107); T = 32768: 211 us.
//     First version, with cvt.rna.tf32 splits and the substitution on two warps: 90.5 us; 66.0 before the gate
//     and the A_inv store lost their serial chains (cuda/NOTES.md, cuda/inverse_probe.cu). Tenth session (ncu
//     source page, cuda/NOTES.md): A_inv pieces read without bank conflicts and stored by one 16-byte st.global
//     (was four 4-byte stores), the gate's keep mask once per block, 3xTF32 splits by truncation (2 instead of 4
//     instructions per register), TileCopy loads: 56.3 us cold (T = 32768: 183.9), 20.4M warp instructions per
//     launch against 27.4M; 80 registers, no spills.
//   6 (tried, removed) 5's block code in a persistent grid (4 blocks per SM, 46 KB: the next item's k tile
//     prefetched beside the slots while the current item's heads are inverted): H200 T = 8192 59.5 us against
//     5's 55.5 in the same run (NOTES, sixteenth session; results/kkt-solve-v6-persistent-experiment.patch). With 19
//     slots it fits 5 blocks per SM (96 registers): H100 55.0 against 5's 50.9 us (26th session,
//     results/kkt-solve-prefetch-candidate-experiment.patch): the sixth block per SM is worth more than the prefetch.
//   Measured on 5 and not kept (27th session, H100; cuda/NOTES.md): the A_inv store by bulk copies from a staging tile
//     (bytes identical, +14%), swizzled inverse slots without the float2 store conflicts (no change in time). The
//     kernel's traffic alone (its loads and stores, nothing between) takes 29 us cold at T = 8192 and its arithmetic
//     alone (k from L2, no stores) 39 us; Nsight Compute: L1/TEX pipe 84% busy, IPC 1.9.
#include "kkt_solve_v5_block.cuh"
#include "kkt_tile.cuh"

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

bool kkt_solve_runs_v5(Args const& a) { return a.kkt_solve_variant == 5 && a.qkv != ElemType::f32 && a.ainv == a.qkv; }

void kkt_solve_fused(Args const& a, Stream s) {
  if (a.d.num_chunks == 0) return;
  // A_inv in the input dtype (serving) or fp32, as solve_tril (can_implement has checked the pair)
  dispatch_elem(a.qkv, [&](auto e) {
    using E = decltype(e);
    if constexpr (!std::is_same_v<E, float>) {
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
