// GPU tests of the chunk_state variants (label gpu; skipped visibly without a device): variant 3 (three
// prefetch buffers, chunks loaded two steps ahead, g_cumsum by cp.async) performs exactly variant 2's
// arithmetic, so h, v_new and the final state must be the same bytes, on dense and ragged varlen
// sequences (empty and 1-token ones included: the prefetch ring then runs past a sequence's end), K = 64,
// fp16, fp32, the split state operand and precise_uv. (Both are judged against the fp64 reference through
// the implementations in test_gpu_stages; this file pins the equivalence.)
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <vector>

#include "cuda/gpu_test_util.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace utf = boost::unit_test;

namespace {

#ifdef GDNV_HAVE_CUDA
namespace gc = gdn_cuda;

struct StateCase {
  int64_t T = 1000, H = 2, HV = 4, K = 128;
  std::vector<int64_t> seqlens;
  gc::ElemType qkv = gc::ElemType::bf16;
  bool split_state = false, precise_uv = false;
};

std::vector<unsigned char> bytes_of(gc::DeviceBuffer const& b) {
  std::vector<unsigned char> v(b.size());
  b.download(v.data(), v.size());
  return v;
}

void expect_variants_equal(StateCase const& sc) {
  std::vector<int64_t> cu;
  int64_t T = sc.T;
  if (!sc.seqlens.empty()) {
    cu.push_back(0);
    for (int64_t l : sc.seqlens) cu.push_back(cu.back() + l);
    T = cu.back();
  }
  gc::Plan plan = gc::make_plan(1, T, sc.H, sc.HV, sc.K, sc.K, cu);
  gc::ElemType const ainv = sc.qkv == gc::ElemType::f32 ? gc::ElemType::f32 : sc.qkv;
  gc::Workspace ws(plan, sc.qkv, gc::ElemType::f32, gc::ElemType::f32, ainv, true);
  gc::fill_random_inputs(ws, 11);
  gc::Args a = ws.args;
  a.scale = 1.f / std::sqrt(static_cast<float>(sc.K));
  a.split_state = sc.split_state;
  a.precise_uv = sc.precise_uv;
  a.fusion = gc::Fusion::kkt_solve;
  ws.poison();
  a.state_variant = 2;
  gc::forward(a, nullptr);
  gc::synchronize();
  auto const h2 = bytes_of(ws.h), v2 = bytes_of(ws.v_new), f2 = bytes_of(ws.final_state), o2 = bytes_of(ws.o);
  ws.h.fill_bytes(0xFF);
  ws.v_new.fill_bytes(0xFF);
  ws.final_state.fill_bytes(0xFF);
  ws.o.fill_bytes(0xFF);
  a.state_variant = 3;
  gc::chunk_state(a, nullptr);
  gc::chunk_output(a, nullptr);
  gc::synchronize();
  BOOST_TEST((bytes_of(ws.h) == h2), "h differs between state variants 2 and 3");
  BOOST_TEST((bytes_of(ws.v_new) == v2), "v_new differs between state variants 2 and 3");
  BOOST_TEST((bytes_of(ws.final_state) == f2), "final_state differs between state variants 2 and 3");
  BOOST_TEST((bytes_of(ws.o) == o2), "o differs between state variants 2 and 3");
  // and the state was really computed: some final state entry is finite and non-zero
  std::vector<float> fs(ws.final_state.size() / 4);
  ws.final_state.download(fs.data(), ws.final_state.size());
  bool nonzero = false;
  for (float x : fs) nonzero = nonzero || (std::isfinite(x) && x != 0.f);
  BOOST_TEST(nonzero);
}
#endif

}  // namespace

BOOST_AUTO_TEST_SUITE(gpu_state_variants, *utf::label("gpu") * utf::precondition(gdnv::test::has_gpu()))

#ifdef GDNV_HAVE_CUDA
BOOST_AUTO_TEST_CASE(bf16_T1000_G2) { expect_variants_equal(StateCase{}); }
BOOST_AUTO_TEST_CASE(bf16_varlen_with_empty_and_short_sequences) {
  StateCase c;
  c.H = 1, c.HV = 3;
  c.seqlens = {1, 0, 64, 65, 2, 300, 127, 0, 3};
  expect_variants_equal(c);
}
BOOST_AUTO_TEST_CASE(bf16_K64_split_state) {
  StateCase c;
  c.K = 64, c.T = 333, c.split_state = true;
  expect_variants_equal(c);
}
BOOST_AUTO_TEST_CASE(fp16_T200) {
  StateCase c;
  c.T = 200, c.qkv = gc::ElemType::f16;
  expect_variants_equal(c);
}
BOOST_AUTO_TEST_CASE(fp32_T130) {
  StateCase c;
  c.T = 130, c.H = 1, c.HV = 2, c.qkv = gc::ElemType::f32;
  expect_variants_equal(c);
}
BOOST_AUTO_TEST_CASE(bf16_precise_uv_varlen) {
  StateCase c;
  c.H = 1, c.HV = 2, c.precise_uv = true;
  c.seqlens = {65, 1, 200, 64};
  expect_variants_equal(c);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
