// The GPU implementations selectable with `gdnv check --impl` (compiled only with GDNV_HAVE_CUDA;
// the names are always known so that a build without CUDA answers not_run, not a usage error).
//   unfused             our six-kernel pipeline with FLA's rounding points: A_inv in the input dtype (bf16
//                       as the serving kernels), the state operand of W*S rounded to the input dtype
//   unfused-splitstate  the same with the W*S state operand split hi+lo (fp32-like state in W*S)
//   unfused-fp32inv     split state and A_inv stored in fp32 (w/u use a hi+lo split of A_inv)
//   cublas              KKT by cublasGemmStridedBatchedEx + mask, inverse by cublasStrsmBatched (fp32),
//                       A_inv fp32, split state; other stages ours
//   cublas-fp64         the same with cublasDtrsmBatched (fp64 solve), A_inv fp32
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "harness/implementation.hpp"

namespace gdnv {

std::vector<std::string> gpu_implementation_names();

#ifdef GDNV_HAVE_CUDA
// nullptr for a name not in gpu_implementation_names().
std::unique_ptr<Implementation> make_gpu_implementation(std::string const& name);
#endif

}  // namespace gdnv
