// gdnv_inverse_probe: where a block of kkt_solve_fused variant 5 (the GQA-shared kkt+solve, cuda/inverse_tc.cuh)
// spends its time. Not a library kernel: the block code of kkt_solve_v5_kernel (cuda/kkt_solve_v5_block.cuh) with
//   - clock64() stamps by thread 0 after every block barrier (the GDNV_PHASE hooks of inverse_tc.cuh, empty in the
//     library) for the first blocks of the grid, so the per-phase latency of one block can be read;
//   - ablations (SKIP bits: no gate, no diagonal substitution, no merges, no store; the barriers stay), so the
//     throughput cost of each phase at full occupancy can be read as a difference of kernel times;
//   - padding of the dynamic shared memory to hold it at 1..5 blocks per SM;
//   - candidates, whose A_inv bytes are compared with the library kernel's and whose times are alternated with it
//     (candidates(): the merges in single tf32; GDNV_PROBE_CANDIDATE_ONLY=1 stops after them,
//     scripts/device-probe-candidate.sh). Earlier candidates, measured and removed, are patches in bench/results/
//     (the persistent grid with the next k tile prefetched: kkt-solve-prefetch-candidate-experiment.patch; the A_inv
//     store by bulk copies: kkt-solve-bulk-store-candidate-experiment.patch).
//   - the traffic alone (traffic_alone(): the kernel's k loads and A_inv stores with nothing between them, and a
//     cudaMemcpy of the same bytes, warm and cold), what any kernel with this grid and these accesses can reach.
// Outputs are garbage for the ablations; nothing here is checked against the reference (the library kernel is, in
// tests/cuda). Usage: gdnv_inverse_probe [--B 1] [--T 8192] [--H 16] [--HV 32] [--reps 20]
// (GDNV_PROBE_ABLATIONS_ONLY=1: the candidates and the traffic alone, then only the ablations at 6 blocks per SM.)
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime.h>

namespace probe {
__device__ long long* g_stamps = nullptr;  // [kProbeBlocks][kSlots], null: no stamps
__shared__ int s_n;                         // this block's next slot
constexpr int kSlots = 48, kProbeBlocks = 1024;
__device__ __forceinline__ void stamp() {
  if (g_stamps != nullptr && threadIdx.x == 0 && blockIdx.x < kProbeBlocks) {
    int const n = s_n++;
    if (n < kSlots) g_stamps[blockIdx.x * kSlots + n] = clock64();
  }
}
}  // namespace probe
#define GDNV_PHASE() ::probe::stamp()

#include "common.cuh"
#include "kkt_solve_v5_block.cuh"

using namespace gdn_cuda;

namespace {

// kkt_solve_v5_kernel (bf16, K = 128; its block's code, cuda/kkt_solve_v5_block.cuh) with stamps and ablations.
// SKIP: 1 gate, 2 diagonal blocks, 4 merges, 8 store; 16: the merges with short accumulation chains
// (mma16_tf32x3<true>; a candidate not used by the library); 32 m (m = 1..5): the gate ablation gate_tiles_probe<m>;
// 256: the merges with one tf32 product per k step (mma16_tf32; a candidate of candidates()); 512: every block
// reads the same k tile (L2-resident: the arithmetic without k's device-memory traffic).
// MINB: the launch bounds' blocks per SM (1: no register cap below 255; the library kernel is compiled with 6).
template <int SKIP, int MINB = 1>
__global__ void __launch_bounds__(128, MINB) probe_v5_kernel(Args a) {
  constexpr int kMul = SKIP & 16 ? kMulTf32x3Short : SKIP & 256 ? kMulTf32 : kMulTf32x3;
  extern __shared__ __align__(16) unsigned char smem[];
  if (threadIdx.x == 0) probe::s_n = 0;
  GDNV_PHASE();  // entry
  kkt_solve_v5_block<__nv_bfloat16, 128, (SKIP & 15) | (SKIP & 512 ? 16 : 0), kMul, (SKIP >> 5) & 7>(a, smem);
  __syncthreads();
  GDNV_PHASE();  // exit
}

// kkt_solve_fused 5's device-memory traffic alone, with its grid and addressing (the copy floor's question at this
// size and access pattern: how close can any kernel that reads these k tiles and writes these A_inv rows get to
// bytes / copy bandwidth?). Each block copies its k tile into shared memory as the kernel does (TileCopy, cp.async),
// then writes its G value heads' A_inv rows, each thread the four 16-byte pieces store_ainv_head writes (the k
// tile's first 64 columns, so that the stores wait for the load). MODE 0: load and stores; 1: only the stores
// (values from the indices); 2: only the load (a store that never happens keeps it).
template <int MODE>
__global__ void __launch_bounds__(128) probe_stream_kernel(Args a) {
  constexpr int K = 128, LDS = K + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* ks = reinterpret_cast<__nv_bfloat16*>(smem);
  int const H = static_cast<int>(a.d.H), HV = static_cast<int>(a.d.HV), G = HV / H;
  int const hk = static_cast<int>(blockIdx.x % H), tid = threadIdx.x;
  int64_t const chunk = blockIdx.x / H;
  ChunkDesc const c = a.chunks[chunk];
  if constexpr (MODE != 1) {
    TileCopy<__nv_bfloat16, kBT, K, 128>(tid).issue(ks, LDS, static_cast<__nv_bfloat16 const*>(a.k) + (c.row0 * H + hk) * K,
                                                   a.d.H * K, c.rows);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
  }
  int const r = ainv_piece_row(), q = ainv_piece_col8();
  int64_t const rstride = static_cast<int64_t>(HV) * kBT;
  for (int gi = 0; gi < G; ++gi) {
    __nv_bfloat16* const out = static_cast<__nv_bfloat16*>(a.A_inv) + (c.row0 * HV + hk * G + gi) * kBT;
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      int const row = 16 * x + r;
      uint4 const w = MODE == 1 ? make_uint4(static_cast<unsigned>(gi), static_cast<unsigned>(x), static_cast<unsigned>(row),
                                             static_cast<unsigned>(q))
                                : *reinterpret_cast<uint4 const*>(ks + row * LDS + 8 * q);
      bool const store = MODE == 2 ? w.x == 0x7F817F81u && w.y == 0x7F817F81u : row < c.rows;
      if (store)
        asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(out + 8 * q + row * rstride), "r"(w.x), "r"(w.y),
                     "r"(w.z), "r"(w.w)
                     : "memory");
    }
  }
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median time (us) of `reps` launches of `kern` (one block per chunk and key head, 128 threads; EventTimer: queued
// behind a spin kernel; the L2 flushed before each run when flush_bytes > 0), its dynamic shared memory (`need`
// bytes) padded so that exactly blocks_per_sm fit (228 KB per SM less `other` bytes per block: static shared memory
// and the 1 KB reserved); blocks_per_sm 0: no padding, as many as fit.
double padded_launch_us(void (*kern)(Args), Args const& a, std::size_t need, std::size_t other, int blocks_per_sm,
                        int reps, std::size_t flush_bytes, char const* what) {
  std::size_t const bytes =
      blocks_per_sm > 0 ? std::max(need, static_cast<std::size_t>(233472 / blocks_per_sm) - other) : need;
  GDN_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  GDN_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
  int occ = 0;
  GDN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, 128, bytes));
  if (blocks_per_sm > 0 && occ != blocks_per_sm)
    std::printf("  (%sasked %d blocks per SM, occupancy says %d)\n", what, blocks_per_sm, occ);
  unsigned const grid = static_cast<unsigned>(a.d.num_chunks * a.d.H);
  EventTimer timer;
  return median(timer.time_us([&] { kern<<<grid, 128, bytes>>>(a); GDN_LAUNCH_CHECK(); }, 3, reps, flush_bytes));
}

// probe_v5_kernel<SKIP, MINB> at blocks_per_sm, warm L2, with thread 0's stamps into dstamps when `stamps`.
template <int SKIP, int MINB = 1>
double run_us(Args const& a, int blocks_per_sm, int reps, bool stamps, long long* dstamps) {
  long long* null_ptr = nullptr;
  GDN_CUDA_CHECK(cudaMemcpyToSymbol(probe::g_stamps, stamps ? &dstamps : &null_ptr, sizeof(long long*)));
  return padded_launch_us(probe_v5_kernel<SKIP, MINB>, a, kkt_solve_v5_smem_bytes<__nv_bfloat16, 128>(),
                          3200 /* static 2 KB + reserved 1 KB */, blocks_per_sm, reps, 0, "");
}

// probe_stream_kernel<MODE> at blocks_per_sm (0: as many as fit, 12 by its 17 KB tile).
template <int MODE>
double stream_us(Args const& a, int blocks_per_sm, int reps, std::size_t flush_bytes) {
  return padded_launch_us(probe_stream_kernel<MODE>, a, sizeof(__nv_bfloat16) * kBT * (128 + 8),
                          2048 /* reserved 1 KB, 1 KB slack */, blocks_per_sm, reps, flush_bytes, "stream: ");
}

// The traffic alone against the library kernel, warm and cold (L2 flushed before every run, as `gdnv bench --cold`):
// the library's kkt_solve_fused 5, probe_stream_kernel's three modes at the library's 6 blocks per SM and at 12, and
// a cudaMemcpy of the same bytes (k's and A_inv's sizes averaged: read n, write n). With the copy bandwidth of a
// 512 MB copy (the bench's floor) for the floor of these bytes.
void traffic_alone(Args const& a, int reps, std::size_t l2_bytes) {
  std::size_t const k_bytes = static_cast<std::size_t>(a.d.B * a.d.T * a.d.H * 128) * 2;
  std::size_t const ainv_bytes = static_cast<std::size_t>(a.d.B * a.d.T * a.d.HV * 64) * 2;
  std::size_t const n = (k_bytes + ainv_bytes) / 2;
  DeviceBuffer src(n), dst(n);
  GDN_CUDA_CHECK(cudaMemset(src.get(), 0, n));
  double const bw = measure_copy_bandwidth(std::size_t{512} << 20, 20);
  Args al = a;
  al.kkt_solve_variant = 5;
  EventTimer timer;
  std::printf("\n== the traffic alone (k read %.1f MB, A_inv written %.1f MB; copy bandwidth %.0f GB/s: floor %.1f us)\n",
              k_bytes * 1e-6, ainv_bytes * 1e-6, bw * 1e-9, double(k_bytes + ainv_bytes) / bw * 1e6);
  for (int cold = 0; cold < 2; ++cold) {
    std::size_t const flush = cold ? 2 * l2_bytes : 0;
    double const lib = median(timer.time_us([&] { kkt_solve_fused(al, nullptr); }, 3, reps, flush));
    double const cpy = median(timer.time_us(
        [&] { GDN_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), n, cudaMemcpyDeviceToDevice, nullptr)); }, 3, reps, flush));
    std::printf("  %s: library v5 %6.1f | load + stores at 6 blocks/SM %6.1f, at 12 %6.1f | only stores %6.1f / %6.1f"
                " | only load %6.1f / %6.1f | cudaMemcpy of the same bytes %6.1f us\n",
                cold ? "cold" : "warm", lib, stream_us<0>(a, 6, reps, flush), stream_us<0>(a, 0, reps, flush),
                stream_us<1>(a, 6, reps, flush), stream_us<1>(a, 0, reps, flush), stream_us<2>(a, 6, reps, flush),
                stream_us<2>(a, 0, reps, flush), cpy);
  }
}

// A candidate's A_inv (probe_v5_kernel<SKIP, 6> at 6 blocks per SM) against the library's `lib` (each NaN-poisoned
// first): entries that differ, the largest difference, registers.
template <int SKIP>
void compare_candidate(Args const& a, std::vector<uint16_t> const& lib, char const* name) {
  std::size_t const n = lib.size();
  std::vector<uint16_t> cand(n);
  GDN_CUDA_CHECK(cudaMemset(a.A_inv, 0xFF, n * 2));
  run_us<SKIP, 6>(a, 6, 1, false, nullptr);
  synchronize();
  GDN_CUDA_CHECK(cudaMemcpy(cand.data(), a.A_inv, n * 2, cudaMemcpyDeviceToHost));
  auto to_float = [](uint16_t b) {
    uint32_t const w = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &w, 4);
    return f;
  };
  std::size_t diff = 0, nonfinite = 0;
  double max_abs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (lib[i] == cand[i]) continue;
    ++diff;
    double const d = std::fabs(double(to_float(lib[i])) - double(to_float(cand[i])));
    if (std::isfinite(d)) max_abs = std::max(max_abs, d); else ++nonfinite;
  }
  cudaFuncAttributes fa{};
  GDN_CUDA_CHECK(cudaFuncGetAttributes(&fa, probe_v5_kernel<SKIP, 6>));
  std::printf("  %s (%d registers, %d B spilled): A_inv %zu of %zu entries differ from the library's (%.2f%% bit-equal%s), "
              "largest difference %.3g, %zu not finite\n", name, fa.numRegs, static_cast<int>(fa.localSizeBytes), diff, n,
              100.0 * double(n - diff) / double(n), diff == 0 ? ": identical" : "", max_abs, nonfinite);
}

// The candidates, at the library's occupancy and launch bounds (6 blocks per SM, MINB 6): the merges with one tf32
// product per k step (SKIP 256: mma16_tf32, operands rounded to nearest, Precision::tf32, what FLA's merges do)
// instead of 3xTF32, measured and not adopted (cuda/NOTES.md, twenty-sixth session). A_inv against the library's, then
// kernel times alternated with the library and with the probe's own copy of the library's block (SKIP 0), two rounds.
void candidates(Args const& a, int reps) {
  std::size_t const n = static_cast<std::size_t>(a.d.B * a.d.T * a.d.HV * 64);
  Args al = a;
  al.kkt_solve_variant = 5;
  std::vector<uint16_t> lib(n);
  GDN_CUDA_CHECK(cudaMemset(al.A_inv, 0xFF, n * 2));
  kkt_solve_fused(al, nullptr);
  synchronize();
  GDN_CUDA_CHECK(cudaMemcpy(lib.data(), al.A_inv, n * 2, cudaMemcpyDeviceToHost));
  std::printf("\n== candidates\n");
  compare_candidate<256>(al, lib, "single-tf32 merges");
  EventTimer timer;
  for (int round = 0; round < 2; ++round) {
    double const l = median(timer.time_us([&] { kkt_solve_fused(al, nullptr); }, 3, reps, 0));
    std::printf("  round %d: library v5 %7.1f us | probe, 3xTF32 (library's block) %7.1f us | probe, single tf32 %7.1f us"
                "\n", round, l, run_us<0, 6>(al, 6, reps, false, nullptr), run_us<256, 6>(al, 6, reps, false, nullptr));
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t B = 1, T = 8192, H = 16, HV = 32;
  int reps = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string const k = argv[i];
    long long const v = std::atoll(argv[i + 1]);
    if (k == "--B") B = v; else if (k == "--T") T = v; else if (k == "--H") H = v; else if (k == "--HV") HV = v; else if (k == "--reps") reps = int(v);
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  try {
    Plan plan = make_plan(B, T, H, HV, 128, 128, {});
    Workspace ws(plan, ElemType::bf16, ElemType::f32, ElemType::f32, ElemType::bf16, false);
    fill_random_inputs(ws, 1);
    Args a = ws.args;
    chunk_cumsum(a, nullptr);
    synchronize();
    cudaDeviceProp prop{};
    GDN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    int clock_khz = 0;
    GDN_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
    std::printf("device %s, %d SMs, max clock %.0f MHz; B=%lld T=%lld H=%lld HV=%lld K=128 bf16, %lld blocks\n", prop.name,
                prop.multiProcessorCount, clock_khz * 1e-3, (long long)B, (long long)T, (long long)H, (long long)HV,
                (long long)(plan.d.num_chunks * H));
    candidates(a, reps);
    if (std::getenv("GDNV_PROBE_CANDIDATE_ONLY") != nullptr) return 0;
    traffic_alone(a, reps, static_cast<std::size_t>(prop.l2CacheSize));
    int const G = static_cast<int>(HV / H);
    DeviceBuffer stamps(sizeof(long long) * probe::kProbeBlocks * probe::kSlots);
    long long* ds = static_cast<long long*>(stamps.get());

    bool const ablations_only = std::getenv("GDNV_PROBE_ABLATIONS_ONLY") != nullptr;  // only the table at 6 blocks per SM
    if (!ablations_only) std::printf("\n== kernel time by blocks per SM (no stamps) and per-block phases (stamps, median over %d blocks, cycles)\n",
                probe::kProbeBlocks);
    std::vector<std::string> labels = {"load k, gates"};
    for (int h = 0; h < G; ++h)
      for (char const* l : {"gram / last store -> head start", "gate", "diagonal", "merge 1", "merge 2", "merge 3", "store"})
        labels.push_back("h" + std::to_string(h) + " " + l);
    labels.push_back("-> exit");
    for (int bps : {5, 4, 3, 2, 1}) {
      if (ablations_only) break;
      double const us = run_us<0>(a, bps, reps, false, ds);
      double const us_st = run_us<0>(a, bps, 3, true, ds);
      std::vector<long long> h(static_cast<std::size_t>(probe::kProbeBlocks) * probe::kSlots);
      stamps.download(h.data(), h.size() * sizeof(long long));
      int const n = static_cast<int>(labels.size()) + 1;
      std::printf("%d blocks/SM: %.1f us (with stamps %.1f)\n", bps, us, us_st);
      std::vector<double> tot;
      for (int b = 0; b < probe::kProbeBlocks; ++b) tot.push_back(double(h[b * probe::kSlots + n - 1] - h[b * probe::kSlots]));
      for (int i = 0; i + 1 < n; ++i) {
        std::vector<double> d;
        for (int b = 0; b < probe::kProbeBlocks; ++b) d.push_back(double(h[b * probe::kSlots + i + 1] - h[b * probe::kSlots + i]));
        std::printf("    %-36s %8.0f\n", labels[static_cast<std::size_t>(i)].c_str(), median(d));
      }
      std::printf("    %-36s %8.0f\n", "block total", median(tot));
    }
    // at the library's occupancy and launch bounds (6 blocks per SM, 80 registers), two rounds
    std::printf("\n== ablations at 6 blocks per SM, MINB 6 (kernel us; phases skipped, barriers kept)\n");
    for (int round = 0; round < 2; ++round) {
      std::printf("  all phases          %8.1f\n", run_us<0, 6>(a, 6, reps, false, ds));
      std::printf("  no gate             %8.1f\n", run_us<1, 6>(a, 6, reps, false, ds));
      std::printf("  no diagonal         %8.1f\n", run_us<2, 6>(a, 6, reps, false, ds));
      std::printf("  no merges           %8.1f\n", run_us<4, 6>(a, 6, reps, false, ds));
      std::printf("  no store            %8.1f\n", run_us<8, 6>(a, 6, reps, false, ds));
      std::printf("  no diagonal, merges %8.1f\n", run_us<6, 6>(a, 6, reps, false, ds));
      std::printf("  only load + Gram + store %8.1f\n", run_us<7, 6>(a, 6, reps, false, ds));
      std::printf("  only load + Gram    %8.1f\n", run_us<15, 6>(a, 6, reps, false, ds));
      std::printf("  k from L2 (one tile for all blocks) %8.1f\n", run_us<512, 6>(a, 6, reps, false, ds));
      std::printf("  k from L2, no store (the arithmetic alone) %8.1f\n", run_us<512 + 8, 6>(a, 6, reps, false, ds));
      std::printf("  k from L2, only Gram %8.1f\n", run_us<512 + 15, 6>(a, 6, reps, false, ds));
    }
    if (ablations_only) return 0;
    std::printf("  merges with short chains (candidate) %8.1f at 5 blocks/SM, %8.1f at 1\n", run_us<16>(a, 5, reps, false, ds),
                run_us<16>(a, 1, reps, false, ds));
    std::printf("\n== register caps (launch bounds 128 threads x MINB blocks per SM; no stamps)\n");
    std::printf("  MINB 5, 5 blocks/SM %8.1f\n", run_us<0, 5>(a, 5, reps, false, ds));
    std::printf("  MINB 6 (the library's: 80 registers), 6 blocks/SM %8.1f\n", run_us<0, 6>(a, 6, reps, false, ds));
    std::printf("  MINB 6, 5 blocks/SM %8.1f\n", run_us<0, 6>(a, 5, reps, false, ds));
    // seven fit the shared memory (7 x 30.4 KB); the cap is 72 registers: against the wave tail (2048 blocks on
    // 6 x 132 slots = 2.59 waves, on 7 x 132 = 2.22)
    std::printf("  MINB 7, 7 blocks/SM %8.1f\n", run_us<0, 7>(a, 7, reps, false, ds));
    std::printf("  MINB 6, 6 blocks/SM (again) %8.1f\n", run_us<0, 6>(a, 6, reps, false, ds));
    // where the gate's time goes: each of its parts taken out in turn (values wrong on purpose), two rounds
    // alternated at the library's 6 blocks per SM and launch bounds
    std::printf("\n== gate ablations at 6 blocks per SM, MINB 6 (kernel us, two rounds)\n");
    for (int round = 0; round < 2; ++round)
      std::printf("  library %6.1f | exp -> fma %6.1f | no gs/bs loads %6.1f | no stores %6.1f | only stores %6.1f"
                  " | only stores, no gate values %6.1f | no gate %6.1f\n",
                  run_us<0, 6>(a, 6, reps, false, ds), run_us<32, 6>(a, 6, reps, false, ds),
                  run_us<64, 6>(a, 6, reps, false, ds), run_us<96, 6>(a, 6, reps, false, ds),
                  run_us<128, 6>(a, 6, reps, false, ds), run_us<160, 6>(a, 6, reps, false, ds),
                  run_us<1, 6>(a, 6, reps, false, ds));
    Args al = a;
    al.kkt_solve_variant = 5;
    EventTimer timer;
    std::vector<double> lib = timer.time_us([&] { kkt_solve_fused(al, nullptr); }, 3, reps, 0);
    std::printf("  library kkt_solve_fused v5 %8.1f\n", median(lib));
  } catch (std::exception const& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return 0;
}
