// Hopper tensor memory accelerator (TMA) loads with mbarrier completion (sm_90a), for kernels whose tiles are
// operands of wgmma: one thread issues a whole tile copy (cp.async.bulk.tensor), the copy engine writes it in the
// 128-byte-swizzled layout that wgmma descriptors read (cuda/wgmma.cuh `wgmma_desc_sw128`), and the consumers
// wait on the stage's mbarrier (transaction bytes) instead of every thread issuing 16-byte cp.async pieces.
// Host side: tensor maps are encoded per launch (tma_map_3d) through the driver entry point that the CUDA
// runtime hands out, so nothing links libcuda directly.
// 128-byte swizzle (CU_TENSOR_MAP_SWIZZLE_128B): within each 1024-byte atom of 8 rows x 128 bytes, the 16-byte
// piece p of row r lies at piece p ^ (r % 8); atoms must start at 1024-byte aligned shared addresses.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace gdn_cuda {

__device__ __forceinline__ uint32_t smem_addr(void const* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
// Makes initialized mbarriers visible to the async proxy (the copy engine's complete_tx); a block barrier after
// it publishes them to the other threads.
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\nfence.proxy.async.shared::cta;\n" ::: "memory");
}
// One arrival that also announces `bytes` of transactions (the tile copies issued next) for this phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
// One plain arrival (release at CTA scope).
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Waits until the phase with the given parity (0, 1, 0, ... for the barrier's successive uses) has completed: a
// try_wait loop, SEM the instruction's semantics qualifiers ("" for the default acquire at CTA scope).
#define GDNV_MBAR_WAIT_LOOP(SEM)                                                \
  "{\n.reg .pred done;\n"                                                       \
  "WAIT_%=:\n"                                                                  \
  "mbarrier.try_wait.parity" SEM ".shared::cta.b64 done, [%0], %1;\n"           \
  "@!done bra WAIT_%=;\n}\n"
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(GDNV_MBAR_WAIT_LOOP("") ::"r"(smem_addr(bar)), "r"(parity) : "memory");
}

// A 3-D box of a tensor map into shared memory, completing on `bar` (coordinates innermost first, in elements).
__device__ __forceinline__ void tma_load_3d(void* smem, CUtensorMap const* map, uint64_t* bar, int c0, int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
          smem_addr(smem)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))
      : "memory");
}

// ---- clusters (the V-tile blocks of a head sharing their tile copies)
// This block's rank in its cluster.
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
// Every thread of every block of the cluster arrives and waits (release / acquire at cluster scope): after it, the
// other blocks' mbarriers are initialized (start) or no block touches this block's shared memory any more (end).
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
// One arrival on the mbarrier at the same shared-memory offset in block `cta` of the cluster, with the default
// semantics (release at CTA scope), as CUTLASS's cluster barriers arrive. The stage this barrier guards was read by
// this block's wgmma, which the arriving thread's block waited for (wgmma.wait_group) before: its reads are complete,
// so no cluster-scope release is needed. The first version arrived with `.release.cluster`; the arriving thread had
// just issued its o-row stores to device memory, and a release at cluster scope waits for those to be performed --
// the likely cause of the ~0.9 us per step that clusters of two cost (cuda/NOTES.md, fourteenth session).
__device__ __forceinline__ void mbar_arrive_remote(uint64_t* bar, uint32_t cta) {
  asm volatile(
      "{\n.reg .b32 remote;\n"
      "mapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(smem_addr(bar)),
      "r"(cta)
      : "memory");
}
// tma_load_3d into the same shared-memory offset of every block in `mask` (bit r: cluster rank r), each copy
// completing on the mbarrier at `bar`'s offset in its own block.
__device__ __forceinline__ void tma_load_3d_multicast(void* smem, CUtensorMap const* map, uint64_t* bar, int c0, int c1,
                                                      int c2, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(smem_addr(smem)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar)), "h"(mask)
      : "memory");
}

// Host: a tensor map over a row-major [d2][d1][d0] array of 16-bit elements (d0 contiguous), boxes of
// box0 x 1 x box2 elements, 128-byte swizzle when `swizzle` (box0 * 2 must then be 128), zeros past the ends.
// Throws std::runtime_error when the driver refuses the map.
CUtensorMap tma_map_3d(void const* base, uint64_t d0, uint64_t d1, uint64_t d2, uint32_t box0, uint32_t box2, bool swizzle);

}  // namespace gdn_cuda
