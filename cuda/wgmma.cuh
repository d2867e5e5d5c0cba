// Hopper warpgroup MMA (wgmma.mma_async, sm_90a): A in registers and B in shared memory, for kernels whose
// A operand is a running accumulator (chunk_state 4: the state S^T), and both from shared memory
// (state_output_fused 3). Per warp w of the warpgroup, the A fragment (rows 16w..16w+15 of the 64) and the
// accumulator rows have the mma.sync m16n8k16 layouts: d[4j + 0,1] at (row g, cols 8j + 2t, +1), d[4j + 2,3]
// at row g + 8.
// B in shared memory uses the canonical no-swizzle layouts of 8 x 16-byte "core matrices" (PTX ISA,
// wgmma shared memory matrix layout): K-major ((8,m),(T,2k)):((1T,SBO),(1,LBO)) and MN-major
// ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO)), i.e. in both LBO is the byte step between core matrices along K
// and SBO along M or N. A from shared memory uses the same two layouts.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace gdn_cuda {

// Shared-memory matrix descriptor: start address, LBO, SBO (bytes, multiples of 16), no swizzle.
__device__ __forceinline__ uint64_t wgmma_desc(void const* smem, uint32_t lbo, uint32_t sbo) {
  uint64_t const a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  return ((a & 0x3FFFF) >> 4) | (static_cast<uint64_t>((lbo >> 4) & 0x3FFF) << 16) |
         (static_cast<uint64_t>((sbo >> 4) & 0x3FFF) << 32);
}
// Orders this thread's register writes (A fragments, accumulators) before the next wgmma reads them.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// Makes this thread's generic-proxy shared-memory writes (cp.async, st.shared) visible to the async
// proxy that wgmma reads B through; a barrier after it publishes them to the warpgroup.
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// The wgmma wrappers below differ only in N (the accumulator registers), the element type's name and where the
// operand numbers continue after the accumulators, so one macro writes each asm statement. GDN_WG_REGS_n: the
// accumulator list "%0,...,%(n-1)"; GDN_WG_DOPS_n: its "+f"(d[i]) operands.
#define GDN_WG_REGS_16 "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15"
#define GDN_WG_REGS_32 GDN_WG_REGS_16 ",%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define GDN_WG_REGS_64                                                                                         \
  GDN_WG_REGS_32 ",%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54," \
                 "%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define GDN_WG_DOPS_16                                                                                               \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),    \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
#define GDN_WG_DOPS_32                                                                                                 \
  GDN_WG_DOPS_16, "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]),        \
      "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define GDN_WG_DOPS_64                                                                                                 \
  GDN_WG_DOPS_32, "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]),        \
      "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]),        \
      "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]),        \
      "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// A from registers (a[4]), B from shared memory (desc_b), accumulate or overwrite (accumulate != 0). P, A0..A3, B,
// TB: the operand numbers (as strings) of the predicate, the A fragment, the B descriptor and TRANS_B, which follow
// the N / 2 accumulators.
#define GDN_WGMMA_RS(SHAPE, T, REGS, DOPS, P, A0, A1, A2, A3, B, TB)                                              \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" P ", 0;\n"                                                   \
               "wgmma.mma_async.sync.aligned." SHAPE ".f32." T "." T " "                                       \
               "{" REGS "}, "                                                                                  \
               "{%" A0 ",%" A1 ",%" A2 ",%" A3 "}, %" B ", p, 1, 1, %" TB ";\n}\n"                             \
               : DOPS                                                                                          \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate), "n"(TRANS_B))
// Both operands from shared memory (desc_a, desc_b); always accumulating. P, A, B, TA, TB as above.
#define GDN_WGMMA_SS(SHAPE, T, REGS, DOPS, P, A, B, TA, TB)                                                       \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" P ", 0;\n"                                                   \
               "wgmma.mma_async.sync.aligned." SHAPE ".f32." T "." T " "                                       \
               "{" REGS "}, %" A ", %" B ", p, 1, 1, %" TA ", %" TB ";\n}\n"                                   \
               : DOPS                                                                                          \
               : "l"(desc_a), "l"(desc_b), "n"(TRANS_A), "n"(TRANS_B), "r"(1))

template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n32k16_rs_bf16(float (&d)[16], uint32_t const (&a)[4], uint64_t desc_b, int accumulate) {
  GDN_WGMMA_RS("m64n32k16", "bf16", GDN_WG_REGS_16, GDN_WG_DOPS_16, "21", "16", "17", "18", "19", "20", "22");
}
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n32k16_rs_f16(float (&d)[16], uint32_t const (&a)[4], uint64_t desc_b, int accumulate) {
  GDN_WGMMA_RS("m64n32k16", "f16", GDN_WG_REGS_16, GDN_WG_DOPS_16, "21", "16", "17", "18", "19", "20", "22");
}
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16_rs_bf16(float (&d)[32], uint32_t const (&a)[4], uint64_t desc_b, int accumulate) {
  GDN_WGMMA_RS("m64n64k16", "bf16", GDN_WG_REGS_32, GDN_WG_DOPS_32, "37", "32", "33", "34", "35", "36", "38");
}
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16_rs_f16(float (&d)[32], uint32_t const (&a)[4], uint64_t desc_b, int accumulate) {
  GDN_WGMMA_RS("m64n64k16", "f16", GDN_WG_REGS_32, GDN_WG_DOPS_32, "37", "32", "33", "34", "35", "36", "38");
}
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n128k16_rs_bf16(float (&d)[64], uint32_t const (&a)[4], uint64_t desc_b, int accumulate) {
  GDN_WGMMA_RS("m64n128k16", "bf16", GDN_WG_REGS_64, GDN_WG_DOPS_64, "69", "64", "65", "66", "67", "68", "70");
}
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n128k16_rs_f16(float (&d)[64], uint32_t const (&a)[4], uint64_t desc_b, int accumulate) {
  GDN_WGMMA_RS("m64n128k16", "f16", GDN_WG_REGS_64, GDN_WG_DOPS_64, "69", "64", "65", "66", "67", "68", "70");
}

// Dispatch on the 16-bit element type (E = __nv_bfloat16 or __half).
template <class E, int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], uint32_t const (&a)[4], uint64_t desc_b, int acc) {
  if constexpr (std::is_same_v<E, __nv_bfloat16>) wgmma_m64n64k16_rs_bf16<TRANS_B>(d, a, desc_b, acc);
  else wgmma_m64n64k16_rs_f16<TRANS_B>(d, a, desc_b, acc);
}
// N = 32 or 64 by the accumulator's size (state_output_fused 4's P v_new with P in registers).
template <class E, int TRANS_B, int NACC>
__device__ __forceinline__ void wgmma_m64nk16_rs(float (&d)[NACC], uint32_t const (&a)[4], uint64_t desc_b, int acc) {
  static_assert(NACC == 16 || NACC == 32, "N = 32 or 64");
  if constexpr (NACC == 32) {
    wgmma_m64n64k16_rs<E, TRANS_B>(d, a, desc_b, acc);
  } else if constexpr (std::is_same_v<E, __nv_bfloat16>) {
    wgmma_m64n32k16_rs_bf16<TRANS_B>(d, a, desc_b, acc);
  } else {
    wgmma_m64n32k16_rs_f16<TRANS_B>(d, a, desc_b, acc);
  }
}
template <class E, int TRANS_B>
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[64], uint32_t const (&a)[4], uint64_t desc_b, int acc) {
  if constexpr (std::is_same_v<E, __nv_bfloat16>) wgmma_m64n128k16_rs_bf16<TRANS_B>(d, a, desc_b, acc);
  else wgmma_m64n128k16_rs_f16<TRANS_B>(d, a, desc_b, acc);
}

// Both operands from shared memory (descriptors), M = 64, N = 32, fp32 accumulator d[16] in the layout
// above (d[4j + e]: j the 8-column block). TRANS_A / TRANS_B: 0 for K-major, 1 for MN-major (16-bit only).
template <class E, int TRANS_A, int TRANS_B>
__device__ __forceinline__ void wgmma_m64n32k16_ss(float (&d)[16], uint64_t desc_a, uint64_t desc_b) {
  if constexpr (std::is_same_v<E, __nv_bfloat16>)
    GDN_WGMMA_SS("m64n32k16", "bf16", GDN_WG_REGS_16, GDN_WG_DOPS_16, "20", "16", "17", "18", "19");
  else
    GDN_WGMMA_SS("m64n32k16", "f16", GDN_WG_REGS_16, GDN_WG_DOPS_16, "20", "16", "17", "18", "19");
}

// As wgmma_m64n32k16_ss with N = 64 (d[32]): state_output_fused 4's 64-column blocks.
template <class E, int TRANS_A, int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
  if constexpr (std::is_same_v<E, __nv_bfloat16>)
    GDN_WGMMA_SS("m64n64k16", "bf16", GDN_WG_REGS_32, GDN_WG_DOPS_32, "36", "32", "33", "34", "35");
  else
    GDN_WGMMA_SS("m64n64k16", "f16", GDN_WG_REGS_32, GDN_WG_DOPS_32, "36", "32", "33", "34", "35");
}

// N = 32 or 64 by the accumulator's size (kernels templated on their block's columns).
template <class E, int TRANS_A, int TRANS_B, int NACC>
__device__ __forceinline__ void wgmma_m64nk16_ss(float (&d)[NACC], uint64_t desc_a, uint64_t desc_b) {
  static_assert(NACC == 16 || NACC == 32, "N = 32 or 64");
  if constexpr (NACC == 16) wgmma_m64n32k16_ss<E, TRANS_A, TRANS_B>(d, desc_a, desc_b);
  else wgmma_m64n64k16_ss<E, TRANS_A, TRANS_B>(d, desc_a, desc_b);
}

#undef GDN_WGMMA_SS
#undef GDN_WGMMA_RS
#undef GDN_WG_DOPS_64
#undef GDN_WG_DOPS_32
#undef GDN_WG_DOPS_16
#undef GDN_WG_REGS_64
#undef GDN_WG_REGS_32
#undef GDN_WG_REGS_16

// A descriptor of a 128-byte-swizzled operand (the layout TMA writes with CU_TENSOR_MAP_SWIZZLE_128B, cuda/tma.cuh;
// atoms of 8 rows x 128 bytes, 1024-byte aligned). K-major: rows are M (or N) and the 128 bytes K; SBO = 1024 steps
// to the next 8 rows, LBO is unused (16). MN-major: rows are K and the 128 bytes 64 elements of M (or N); SBO = 1024
// steps to the next 8 k rows, LBO to the next 64 elements of M. A k step inside an atom adds 32 bytes (K-major).
__device__ __forceinline__ uint64_t wgmma_desc_sw128(void const* smem, uint32_t lbo, uint32_t sbo) {
  return wgmma_desc(smem, lbo, sbo) | (uint64_t{1} << 62);
}

// Pins accumulator registers between an asynchronous wgmma and its wait (no compiler copies across).
template <int N>
__device__ __forceinline__ void wgmma_fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

}  // namespace gdn_cuda
