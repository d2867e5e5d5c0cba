// GPU tests of the fused kernels (label gpu; skipped visibly without a device): kkt+solve in one kernel
// ("fused") and kkt+solve+w/u in one kernel ("fused-intra") compute exactly the numbers of the unfused
// pipeline -- every A_inv, w, u, h, v_new, o and final_state value bit-equal -- on the generator families,
// tails, varlen, GQA, K = 64, fp16 and fp32 inputs; and the intra kernel without an A_inv buffer writes
// the same w and u and leaves that buffer alone. (Both are also judged against the fp64 reference by
// test_gpu_stages, like every implementation.)
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "harness/compare.hpp"
#include "harness/implementation.hpp"
#include "cuda/gpu_test_util.hpp"
#include "test_util.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace utf = boost::unit_test;
using namespace gdnv;

namespace {

// Every tensor both produce must be bit-equal; the fused ones must not produce A.
void expect_same_as_unfused(Problem const& p) {
  StageOutputs const un = make_implementation("unfused")->run(p);
  for (char const* name : {"fused", "fused-intra"}) {
    StageOutputs const fu = make_implementation(name)->run(p);
    BOOST_TEST(fu.count("A") == 0u, name << " must not report A (it never stores it)");
    auto const stats = compare_pair(fu, un);
    for (char const* t : {"g_cumsum", "A_inv", "w", "u", "v_new", "h", "o", "final_state"}) {
      auto it = stats.find(t);
      BOOST_TEST_REQUIRE((it != stats.end()), name << ": " << t << " missing");
      BOOST_TEST(it->second.equal == it->second.elements,
                 name << " " << t << ": " << it->second.equal << " of " << it->second.elements
                      << " values bit-equal to unfused, max |diff| " << it->second.max_abs_diff);
      BOOST_TEST(it->second.elements > 0);
    }
    BOOST_TEST(test::all_finite(fu.at("A_inv")));
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gpu_fused, *utf::label("gpu") * utf::precondition(gdnv::test::has_gpu()))

BOOST_AUTO_TEST_CASE(fla_test_T1000_G2) { expect_same_as_unfused(test::family_problem("fla-test", 1000, 1, 2, 128, {}, DType::bf16, 101)); }
BOOST_AUTO_TEST_CASE(model_like_T65_G3) { expect_same_as_unfused(test::family_problem("model-like", 65, 1, 3, 128, {}, DType::bf16, 102)); }
BOOST_AUTO_TEST_CASE(ragged_G2) {
  expect_same_as_unfused(test::family_problem("ragged", 0, 1, 2, 128, {1, 15, 64, 65, 0, 200, 63}, DType::bf16, 103));
}
BOOST_AUTO_TEST_CASE(beta_near_2_T200_G1) { expect_same_as_unfused(test::family_problem("beta-near-2", 200, 2, 1, 128, {}, DType::bf16, 104)); }
BOOST_AUTO_TEST_CASE(strong_decay_T300_G2) { expect_same_as_unfused(test::family_problem("strong-decay", 300, 1, 2, 128, {}, DType::bf16, 105)); }
BOOST_AUTO_TEST_CASE(no_decay_correlated_T128_G1) { expect_same_as_unfused(test::family_problem("correlated-keys", 128, 1, 1, 128, {}, DType::bf16, 106)); }
BOOST_AUTO_TEST_CASE(normal_K64_T1_G2) { expect_same_as_unfused(test::family_problem("normal", 1, 1, 2, 64, {}, DType::bf16, 107)); }
BOOST_AUTO_TEST_CASE(normal_K64_T130_G3) { expect_same_as_unfused(test::family_problem("normal", 130, 1, 3, 64, {}, DType::bf16, 108)); }
BOOST_AUTO_TEST_CASE(normal_fp16_T200_G2) { expect_same_as_unfused(test::family_problem("normal", 200, 1, 2, 128, {}, DType::f16, 109)); }
BOOST_AUTO_TEST_CASE(normal_fp32_T130_G1) { expect_same_as_unfused(test::family_problem("normal", 130, 1, 1, 128, {}, DType::f32, 110)); }

#ifdef GDNV_HAVE_CUDA
// Prefill-only use: Args::A_inv null. w and u as with A_inv stored; the A_inv buffer keeps its poison.
BOOST_AUTO_TEST_CASE(intra_without_ainv_store) {
  namespace gc = gdn_cuda;
  gc::Plan plan = gc::make_plan(1, 333, 2, 4, 128, 128, {});
  gc::Workspace ws(plan, gc::ElemType::bf16, gc::ElemType::f32, gc::ElemType::f32, gc::ElemType::bf16, true);
  gc::fill_random_inputs(ws, 5);
  ws.poison();
  gc::Args a = ws.args;
  gc::chunk_cumsum(a, nullptr);
  gc::intra_fused(a, nullptr);
  gc::synchronize();
  auto bytes = [](gc::DeviceBuffer const& b) { return gdnv::test::device_bytes(b); };
  auto const w1 = bytes(ws.w), u1 = bytes(ws.u);
  ws.A_inv.fill_bytes(0xFF);
  ws.w.fill_bytes(0xFF);
  ws.u.fill_bytes(0xFF);
  gc::Args b = a;
  b.A_inv = nullptr;
  gc::intra_fused(b, nullptr);
  gc::synchronize();
  BOOST_TEST((bytes(ws.w) == w1));
  BOOST_TEST((bytes(ws.u) == u1));
  BOOST_TEST(gdnv::test::untouched(ws.A_inv), "intra_fused wrote A_inv although Args::A_inv was null");
}

BOOST_AUTO_TEST_CASE(intra_rejects_fp32_ainv_with_bf16_inputs) {
  namespace gc = gdn_cuda;
  gc::Plan plan = gc::make_plan(1, 64, 1, 1, 128, 128, {});
  gc::Workspace ws(plan, gc::ElemType::bf16, gc::ElemType::f32, gc::ElemType::f32, gc::ElemType::f32, false);
  BOOST_CHECK_THROW(gc::intra_fused(ws.args, nullptr), std::invalid_argument);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
