// The GPU implementations selectable with `gdnv check --impl` (compiled only with GDNV_HAVE_CUDA;
// the names are always known so that a build without CUDA answers not_run, not a usage error).
//   unfused             our six-kernel pipeline with FLA's rounding points: A_inv in the input dtype (bf16
//                       as the serving kernels), the state operand of W*S rounded to the input dtype
//   unfused-splitstate  the same with the W*S state operand split hi+lo (fp32-like state in W*S)
//   unfused-fp32inv     split state and A_inv stored in fp32 (w/u use a hi+lo split of A_inv)
//   fused-v5            kkt+solve variant 5: one block per (chunk, key head) sharing K K^T among its value
//                       heads, merges in 3xTF32 on the tensor cores (not bit-equal to fused; its own bound)
//   fused-intra-v3      intra variant 3: kkt+solve as fused-v5, beta folded into the A_inv operand of w/u
//   precise-v3          precise's arithmetic for u, v_new and the scores on top of intra variant 3
//   fused-forward       fused-intra-v3's intra kernel, then state + output in one kernel (state_output_fused.cu
//                       variant 4 computing the score rows on chip; K = 64: variant 2 reading the rows the intra
//                       kernel wrote): the bytes of fused-intra-v3's kernels; three kernels (cumsum, intra, this)
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

// The implementations gdnv check compares a fused kernel with value by value ("pairs"): "unfused" for
// every "fused*" name, and for a kernel that claims another implementation's bytes that one too
// (fused-forward: fused-intra-v3), or that changes one's arithmetic in one place, that one (fused-forward-from-v:
// fused-forward, how far the delta formed from v moves each tensor). Empty for names that are not fused kernels.
std::vector<std::string> pair_partners(std::string const& name);

#ifdef GDNV_HAVE_CUDA
// nullptr for a name not in gpu_implementation_names().
std::unique_ptr<Implementation> make_gpu_implementation(std::string const& name);
#endif

}  // namespace gdnv
