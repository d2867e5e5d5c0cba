// Shared by the GPU test files: the precondition that skips a suite visibly when there is no device.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datasets/generators.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace gdnv::test {

// One generated case: B = 1, HV = H * G value heads, K = V, an initial state; seqlens empty = dense T.
inline Problem family_problem(std::string family, int64_t T, int64_t H, int64_t G, int64_t K,
                              std::vector<int64_t> seqlens, DType dtype, uint64_t seed) {
  GeneratorParams gp;
  gp.family = std::move(family);
  gp.B = 1, gp.T = T, gp.H = H, gp.HV = H * G, gp.K = K, gp.V = K;
  gp.seqlens = std::move(seqlens);
  gp.dtype = dtype;
  gp.seed = seed;
  gp.h0 = true;
  return generate_problem(gp);
}

// cu_seqlens of `seqlens` ({0, l0, l0 + l1, ...}); empty for none (one dense sequence of T per batch
// row). With seqlens, T becomes their total.
inline std::vector<int64_t> cu_seqlens(std::vector<int64_t> const& seqlens, int64_t& T) {
  std::vector<int64_t> cu;
  if (seqlens.empty()) return cu;
  cu.push_back(0);
  for (int64_t l : seqlens) cu.push_back(cu.back() + l);
  T = cu.back();
  return cu;
}

#ifdef GDNV_HAVE_CUDA
// A device buffer's bytes on the host (byte-exact comparisons of kernel outputs).
inline std::vector<unsigned char> device_bytes(gdn_cuda::DeviceBuffer const& b) {
  std::vector<unsigned char> v(b.size());
  b.download(v.data(), v.size());
  return v;
}
// One state-stage case (B = 1, dense or varlen) for the tests that run two state kernels on the same inputs.
struct StateCase {
  int64_t T = 1000, H = 2, HV = 4, K = 128;
  std::vector<int64_t> seqlens;  // empty: one dense sequence of T
  gdn_cuda::ElemType e = gdn_cuda::ElemType::bf16;
  bool split = false, precise = false, h0 = true;
};

// One case's device inputs (random, seeded) and the forward() arguments running the fused intra kernel.
struct StateRun {
  int64_t T;
  gdn_cuda::Plan plan;
  std::unique_ptr<gdn_cuda::Workspace> ws;
  gdn_cuda::Args a;
  StateRun(StateCase const& c, uint64_t seed) : T(c.T) {
    std::vector<int64_t> const cu = cu_seqlens(c.seqlens, T);
    plan = gdn_cuda::make_plan(1, T, c.H, c.HV, c.K, c.K, cu);
    ws = std::make_unique<gdn_cuda::Workspace>(plan, c.e, gdn_cuda::ElemType::f32, gdn_cuda::ElemType::f32, c.e, true);
    gdn_cuda::fill_random_inputs(*ws, seed);
    a = ws->args;
    a.scale = 1.f / std::sqrt(static_cast<float>(c.K));
    a.split_state = c.split;
    a.precise_uv = c.precise;
    a.fusion = gdn_cuda::Fusion::intra;
    if (!c.h0) a.h0 = nullptr;
  }
};

// True when every byte of the buffer still holds `byte` (poisoned, never written).
inline bool untouched(gdn_cuda::DeviceBuffer const& b, unsigned char byte = 0xFF) {
  for (unsigned char x : device_bytes(b))
    if (x != byte) return false;
  return true;
}
#endif

struct has_gpu {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
#ifdef GDNV_HAVE_CUDA
    std::string why;
    if (gdn_cuda::device_count(&why) > 0) return true;
    boost::test_tools::assertion_result r(false);
    r.message() << "no CUDA device (" << why << ")";
    return r;
#else
    boost::test_tools::assertion_result r(false);
    r.message() << "no CUDA device (built without CUDA)";
    return r;
#endif
  }
};

}  // namespace gdnv::test
