// Self-checks of what state_output_fused 4 assumes about TMA and 128-byte-swizzled wgmma operands, each on one
// block with known data (tests/cuda/test_gpu_tma.cpp):
//   tile   a box loaded by TMA lies in shared memory as the swizzle formula of cuda/tma.cuh says, and rows past
//          the tensor's end are zero;
//   K-major  D = W Sb with W from two swizzled boxes (descriptor + 32 bytes per k step) equals, bit for bit, the
//            same product with W in variant 3's no-swizzle core-matrix layout;
//   MN-major S = K^T Db with K from a swizzled box (SBO between 8-token atoms, + 2048 bytes per k step) equals
//            the same product with K in variant 3's layout.
// A failure names the piece to look at before the whole kernel.
#include <cuda_bf16.h>

#include <cstdint>
#include <random>
#include <vector>

#include "common.cuh"
#include "tma.cuh"
#include "wgmma.cuh"

namespace gdn_cuda {
namespace {

using u16 = uint16_t;
constexpr int kF = 128;  // features per row

__device__ __forceinline__ unsigned char* align1024(unsigned char* p) {
  return reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(p) + 1023) & ~static_cast<uintptr_t>(1023));
}
// byte offset of element (row r, element e < 64) of a 128-byte-swizzled box
__device__ __forceinline__ int sw128(int r, int e) { return 128 * r + ((((2 * e) >> 4) ^ (r & 7)) << 4) + ((2 * e) & 15); }

// One box {64 elements, head, 64 rows} at (64 half, head, row0) of x = [rows][heads][128]; counts wrong elements.
__global__ void tile_check_kernel(__grid_constant__ CUtensorMap const map, u16 const* x, int rows, int heads, int row0,
                                  int half, int head, unsigned long long* wrong) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const s = align1024(smem_raw);
  __shared__ uint64_t bar;
  if (threadIdx.x == 0) {
    mbar_init(&bar, 1);
    mbar_init_fence();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    mbar_arrive_expect_tx(&bar, 64 * 128);
    tma_load_3d(s, &map, &bar, 64 * half, head, row0);
  }
  mbar_wait(&bar, 0);
  unsigned long long n = 0;
  for (int i = threadIdx.x; i < 64 * 64; i += blockDim.x) {
    int const r = i / 64, e = i % 64, row = row0 + r;
    u16 const want = row < rows ? x[(static_cast<int64_t>(row) * heads + head) * kF + 64 * half + e] : u16{0};
    n += *reinterpret_cast<u16 const*>(s + sw128(r, e)) != want;
  }
  atomicAdd(wrong, n);
}

// One warpgroup: the two products both ways; counts accumulator words that differ (per product).
__global__ void product_check_kernel(__grid_constant__ CUtensorMap const mw, __grid_constant__ CUtensorMap const mk,
                                     __nv_bfloat16 const* w, __nv_bfloat16 const* sb, __nv_bfloat16 const* k,
                                     __nv_bfloat16 const* db, unsigned long long* wrong) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const base = align1024(smem_raw);
  unsigned char* const w_sw = base;              // 2 boxes
  unsigned char* const k_sw = base + 16384;      // 2 boxes (only the first is used: features 0-63)
  unsigned char* const w_core = base + 32768;    // variant 3's layouts
  unsigned char* const k_core = base + 49152;
  unsigned char* const sb_core = base + 65536;   // 8 KB
  unsigned char* const db_core = base + 73728;   // 4 KB
  __shared__ uint64_t bar;
  int const tid = threadIdx.x;
  if (tid == 0) {
    mbar_init(&bar, 1);
    mbar_init_fence();
  }
  __syncthreads();
  if (tid == 0) {
    mbar_arrive_expect_tx(&bar, 4 * 8192);
    tma_load_3d(w_sw, &mw, &bar, 0, 0, 0);
    tma_load_3d(w_sw + 8192, &mw, &bar, 64, 0, 0);
    tma_load_3d(k_sw, &mk, &bar, 0, 0, 0);
    tma_load_3d(k_sw + 8192, &mk, &bar, 64, 0, 0);
  }
  for (int i = tid; i < 64 * kF; i += 128) {  // W and K: (row r, feature f) at 2048 (r / 8) + 128 (f / 8) + 16 (r % 8) + 2 (f % 8)
    int const r = i / kF, f = i % kF, off = 2048 * (r / 8) + 128 * (f / 8) + 16 * (r % 8) + 2 * (f % 8);
    *reinterpret_cast<__nv_bfloat16*>(w_core + off) = w[i];
    *reinterpret_cast<__nv_bfloat16*>(k_core + off) = k[i];
  }
  for (int i = tid; i < kF * 32; i += 128) {  // Sb: (feature f, column n) at 2048 (n / 8) + 16 f + 2 (n % 8)
    int const f = i / 32, n = i % 32;
    *reinterpret_cast<__nv_bfloat16*>(sb_core + 2048 * (n / 8) + 16 * f + 2 * (n % 8)) = sb[i];
  }
  for (int i = tid; i < 64 * 32; i += 128) {  // Db: (token t, column n) at 1024 (n / 8) + 16 t + 2 (n % 8)
    int const t = i / 32, n = i % 32;
    *reinterpret_cast<__nv_bfloat16*>(db_core + 1024 * (n / 8) + 16 * t + 2 * (n % 8)) = db[i];
  }
  fence_proxy_async_smem();
  mbar_wait(&bar, 0);
  __syncthreads();

  float a[16], b[16], c[16], d[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) a[i] = b[i] = c[i] = d[i] = 0.f;
  uint64_t const ds = wgmma_desc(sb_core, 128, 2048), dd = wgmma_desc(db_core, 128, 1024);
  uint64_t const dw0 = wgmma_desc_sw128(w_sw, 16, 1024), dw1 = wgmma_desc_sw128(w_sw + 8192, 16, 1024);
  uint64_t const dwc = wgmma_desc(w_core, 128, 2048);
  uint64_t const dk = wgmma_desc_sw128(k_sw, 8192, 1024), dkc = wgmma_desc(k_core, 2048, 128);
  wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < 8; ++ks) {
    wgmma_m64n32k16_ss<__nv_bfloat16, 0, 1>(a, (ks < 4 ? dw0 : dw1) + 2 * (ks & 3), ds + 16 * ks);
    wgmma_m64n32k16_ss<__nv_bfloat16, 0, 1>(b, dwc + 16 * ks, ds + 16 * ks);
  }
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
    wgmma_m64n32k16_ss<__nv_bfloat16, 1, 1>(c, dk + 128 * ks, dd + 16 * ks);
    wgmma_m64n32k16_ss<__nv_bfloat16, 1, 1>(d, dkc + 256 * ks, dd + 16 * ks);
  }
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(a);
  wgmma_fence_operands(b);
  wgmma_fence_operands(c);
  wgmma_fence_operands(d);
  unsigned long long nk = 0, nm = 0;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    nk += __float_as_uint(a[i]) != __float_as_uint(b[i]);
    nm += __float_as_uint(c[i]) != __float_as_uint(d[i]);
  }
  atomicAdd(wrong, nk);
  atomicAdd(wrong + 1, nm);
}

}  // namespace

TmaCheck tma_selfcheck() {
  TmaCheck out{};
  std::mt19937 rng(7);
  // the tile check: [rows = 128][heads = 2][128], every 16-bit pattern distinct
  int const rows = 128, heads = 2;
  std::vector<u16> x(static_cast<size_t>(rows) * heads * kF);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<u16>(i + 1);  // 1..32768: distinct and nonzero
  DeviceBuffer xd(x.size() * 2), wrong(4 * sizeof(unsigned long long));
  xd.upload(x.data(), x.size() * 2);
  CUtensorMap const mx = tma_map_3d(xd.get(), kF, heads, rows, 64, 64, true);
  ensure_smem<tile_check_kernel>(8192 + 1024);
  std::vector<unsigned long long> cnt(4, 0);
  struct Box { int row0, half, head; };
  for (Box b : {Box{0, 0, 1}, Box{64, 1, 0}, Box{96, 0, 1}}) {  // the last one runs 32 rows past the end
    wrong.upload(cnt.data(), 2 * sizeof(unsigned long long));
    tile_check_kernel<<<1, 128, 8192 + 1024>>>(mx, static_cast<u16 const*>(xd.get()), rows, heads, b.row0, b.half, b.head,
                                                static_cast<unsigned long long*>(wrong.get()));
    GDN_LAUNCH_CHECK();
    unsigned long long n = 0;
    wrong.download(&n, sizeof n);
    (b.row0 + 64 > rows ? out.zero_fill_mismatches : out.tile_mismatches) += static_cast<long long>(n);
  }
  // the products: W, K [64][128], Sb [128][32], Db [64][32], values of a few bits each (exact products)
  std::uniform_int_distribution<int> small(-8, 8);
  auto fill = [&](size_t n) {
    std::vector<__nv_bfloat16> v(n);
    for (auto& e : v) e = __float2bfloat16(static_cast<float>(small(rng)) / 8.f);
    return v;
  };
  auto const w = fill(64 * kF), k = fill(64 * kF), sb = fill(kF * 32), db = fill(64 * 32);
  DeviceBuffer wd(w.size() * 2), kd(k.size() * 2), sbd(sb.size() * 2), dbd(db.size() * 2);
  wd.upload(w.data(), w.size() * 2), kd.upload(k.data(), k.size() * 2);
  sbd.upload(sb.data(), sb.size() * 2), dbd.upload(db.data(), db.size() * 2);
  CUtensorMap const mw = tma_map_3d(wd.get(), kF, 1, 64, 64, 64, true);
  CUtensorMap const mk = tma_map_3d(kd.get(), kF, 1, 64, 64, 64, true);
  wrong.upload(cnt.data(), 2 * sizeof(unsigned long long));
  std::size_t const bytes = 77824 + 1024;
  ensure_smem<product_check_kernel>(bytes);
  product_check_kernel<<<1, 128, bytes>>>(mw, mk, static_cast<__nv_bfloat16 const*>(wd.get()),
                                          static_cast<__nv_bfloat16 const*>(sbd.get()), static_cast<__nv_bfloat16 const*>(kd.get()),
                                          static_cast<__nv_bfloat16 const*>(dbd.get()), static_cast<unsigned long long*>(wrong.get()));
  GDN_LAUNCH_CHECK();
  unsigned long long n[2] = {0, 0};
  wrong.download(n, sizeof n);
  out.kmajor_product_mismatches = static_cast<long long>(n[0]);
  out.mnmajor_product_mismatches = static_cast<long long>(n[1]);
  return out;
}

}  // namespace gdn_cuda
