// Host side of cuda/tma.cuh: tensor maps through the driver's cuTensorMapEncodeTiled, fetched once from the
// CUDA runtime (cudaGetDriverEntryPointByVersion), so the library needs no link against libcuda.
#include "tma.cuh"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <stdexcept>
#include <string>

namespace gdn_cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static PFN_cuTensorMapEncodeTiled_v12000 const fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    cudaError_t const e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !p)
      throw std::runtime_error("TMA: the driver does not provide cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

}  // namespace

CUtensorMap tma_map_3d(void const* base, uint64_t d0, uint64_t d1, uint64_t d2, uint32_t box0, uint32_t box2, bool swizzle) {
  CUtensorMap m{};
  cuuint64_t const dims[3] = {d0, d1, d2};
  cuuint64_t const strides[2] = {d0 * 2, d0 * d1 * 2};  // bytes, dimensions 1 and 2
  cuuint32_t const box[3] = {box0, 1, box2};
  cuuint32_t const elem_strides[3] = {1, 1, 1};
  CUresult const r = encode_tiled()(&m, CU_TENSOR_MAP_DATA_TYPE_UINT16, 3, const_cast<void*>(base), dims, strides, box,
                                    elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                    swizzle ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error("TMA: cuTensorMapEncodeTiled refused a " + std::to_string(d0) + " x " + std::to_string(d1) +
                             " x " + std::to_string(d2) + " map (error " + std::to_string(static_cast<int>(r)) + ")");
  return m;
}

}  // namespace gdn_cuda
