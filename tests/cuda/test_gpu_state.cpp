// GPU tests of chunk_state variants 3 and 4 (the state transposed in registers: mma.sync, and wgmma;
// cuda/chunk_state.cu; label gpu, skipped visibly without a device). Variant 4 is held to variant 2 within
// 2 ulp per stored value (see expect_v4_close_to_v2). Variant 3 feeds every product the same operand values in the same
// k order as variant 2, so the two must write the same bytes: h, v_new, the final state and hence o, for
// bf16 and fp16, K = 128 and 64, the hi + lo state split, precise_uv (fp32 u / v_new), varlen with empty
// and one-token sequences, with and without an initial state. Its accuracy against the fp64 reference
// is checked by test_gpu_stages (every implementation runs variant 3 by default).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cuda/gpu_test_util.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace utf = boost::unit_test;
using namespace gdnv;

BOOST_AUTO_TEST_SUITE(gpu_state, *utf::label("gpu") * utf::precondition(test::has_gpu{}))

#ifdef GDNV_HAVE_CUDA
namespace {
namespace gc = gdn_cuda;

// forward() with state variant 2 and then 3 on the same inputs; every output the state stage writes (and
// o, which reads them) must match byte for byte.
void expect_v3_equals_v2(test::StateCase const& c) {
  test::StateRun run(c, 29);
  gc::Workspace& ws = *run.ws;
  gc::Args a = run.a;
  gc::DeviceBuffer* outs[] = {&ws.v_new, &ws.h, &ws.final_state, &ws.o};
  char const* names[] = {"v_new", "h", "final_state", "o"};
  std::vector<std::vector<unsigned char>> v2;
  ws.poison();
  a.state_variant = 2;
  gc::forward(a, nullptr);
  gc::synchronize();
  for (auto* b : outs) v2.push_back(test::device_bytes(*b));
  ws.poison();
  a.state_variant = 3;
  gc::forward(a, nullptr);
  gc::synchronize();
  for (size_t i = 0; i < v2.size(); ++i) {
    std::vector<unsigned char> const v3 = test::device_bytes(*outs[i]);
    size_t diff = 0;
    for (size_t j = 0; j < v3.size(); ++j) diff += v3[j] != v2[i][j];
    BOOST_TEST(diff == 0u, names[i] << ": " << diff << " of " << v3.size() << " bytes differ from variant 2");
  }
  // and the run wrote something: the final state is not the poison pattern
  BOOST_TEST(!test::untouched(ws.final_state));
}
}  // namespace

// Variant 4 (wgmma) against variant 2: the same operand values, but one fp32 accumulation chain over K
// where variant 2 adds two halves, so a few roundings to the 16-bit outputs may flip. Every stored value
// must stay within 2 units in the last place of the larger of the two, >= 99% of them bit-equal, and the
// fp32 final state within 1e-5 relative (L2).
float f16_to_float(uint16_t h) {
  int const e = (h >> 10) & 31, m = h & 1023;
  float const v = e == 0 ? std::ldexp(static_cast<float>(m), -24)
                  : e == 31 ? (m ? NAN : INFINITY)
                            : std::ldexp(static_cast<float>(m | 1024), e - 25);
  return (h & 0x8000) ? -v : v;
}
std::vector<float> to_floats(std::vector<unsigned char> const& b, gc::ElemType e) {
  std::vector<float> v;
  if (e == gc::ElemType::f32) {
    v.resize(b.size() / 4);
    std::memcpy(v.data(), b.data(), v.size() * 4);
  } else {
    v.resize(b.size() / 2);
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, b.data() + 2 * i, 2);
      if (e == gc::ElemType::bf16) {
        uint32_t const u = static_cast<uint32_t>(h) << 16;
        std::memcpy(&v[i], &u, 4);
      } else {
        v[i] = f16_to_float(h);
      }
    }
  }
  return v;
}

void expect_v4_close_to_v2(test::StateCase const& c) {
  test::StateRun run(c, 31);
  gc::Workspace& ws = *run.ws;
  gc::Args a = run.a;
  int64_t const T = run.T;
  gc::Plan const& plan = run.plan;
  gc::ElemType const uv = c.precise ? gc::ElemType::f32 : c.e;
  struct Out { gc::DeviceBuffer* buf; char const* name; gc::ElemType type; size_t count; };
  size_t const tok = static_cast<size_t>(T * c.HV * c.K);
  Out const outs[] = {{&ws.v_new, "v_new", uv, tok},
                      {&ws.h, "h", c.e, static_cast<size_t>(plan.d.NT * c.HV * c.K * c.K)},
                      {&ws.o, "o", c.e, tok}};
  std::vector<std::vector<float>> v2;
  std::vector<float> fs2;
  ws.poison();
  a.state_variant = 2;
  gc::forward(a, nullptr);
  gc::synchronize();
  for (auto const& o : outs) v2.push_back(to_floats(test::device_bytes(*o.buf), o.type));
  fs2 = to_floats(test::device_bytes(ws.final_state), gc::ElemType::f32);
  ws.poison();
  a.state_variant = 4;
  gc::forward(a, nullptr);
  gc::synchronize();
  for (size_t k = 0; k < std::size(outs); ++k) {
    std::vector<float> const v4 = to_floats(test::device_bytes(*outs[k].buf), outs[k].type);
    // 16-bit outputs: 2 ulp of the value. fp32 v_new (precise_uv) is u - P unrounded, so a different fp32
    // summation order of P shows up in full where u and P cancel: 2^-16 of the tensor's largest value
    // there (far below the 16-bit operands' own rounding, far above a wrong element).
    bool const is32 = outs[k].type == gc::ElemType::f32;
    double const ulp = outs[k].type == gc::ElemType::bf16 ? 0x1p-7 : 0x1p-10;
    size_t equal = 0, far = 0, n = std::min(outs[k].count, v4.size());
    double maxabs = 0;
    for (size_t i = 0; i < n; ++i) maxabs = std::max(maxabs, std::fabs(double(v2[k][i])));
    for (size_t i = 0; i < n; ++i) {
      float const x = v4[i], y = v2[k][i];
      if (std::memcmp(&x, &y, 4) == 0) { ++equal; continue; }
      double const tol = is32 ? 0x1p-16 * maxabs : 2 * ulp * std::max(std::fabs(x), std::fabs(y));
      if (!(std::fabs(double(x) - double(y)) <= tol)) ++far;
    }
    BOOST_TEST(far == 0u, outs[k].name << ": " << far << " values farther from variant 2 than allowed");
    if (is32) continue;  // fp32 sums in another order are rarely bit-equal
    BOOST_TEST(equal >= 0.99 * n, outs[k].name << ": only " << equal << " of " << n << " bit-equal to variant 2");
  }
  std::vector<float> const fs4 = to_floats(test::device_bytes(ws.final_state), gc::ElemType::f32);
  double num = 0, den = 0;
  for (size_t i = 0; i < fs4.size(); ++i) num += double(fs4[i] - fs2[i]) * (fs4[i] - fs2[i]), den += double(fs2[i]) * fs2[i];
  BOOST_TEST(std::sqrt(num) <= 1e-5 * std::sqrt(den), "final_state: relative L2 difference " << std::sqrt(num / den));
  BOOST_TEST(den > 0);
}

BOOST_AUTO_TEST_CASE(v4_close_to_v2_bf16) { expect_v4_close_to_v2({}); }

BOOST_AUTO_TEST_CASE(v4_close_to_v2_split_state_G1_no_h0) {
  test::StateCase c;
  c.split = true, c.h0 = false, c.T = 777, c.H = 3, c.HV = 3;
  expect_v4_close_to_v2(c);
}

BOOST_AUTO_TEST_CASE(v4_close_to_v2_precise_uv) {
  test::StateCase c;
  c.precise = true, c.split = true;
  expect_v4_close_to_v2(c);
}

BOOST_AUTO_TEST_CASE(v4_close_to_v2_ragged_fp16) {
  test::StateCase c;
  c.H = 1, c.HV = 3, c.e = gc::ElemType::f16;
  c.seqlens = {1, 0, 65, 64, 200, 3};
  expect_v4_close_to_v2(c);
}

// K = 64 has no variant 4 (its update is an m64n128 product): it runs variant 2, the same bytes.
BOOST_AUTO_TEST_CASE(v4_falls_back_to_v2_for_K64) {
  namespace gc = gdn_cuda;
  gc::Plan plan = gc::make_plan(1, 300, 1, 2, 64, 64, {});
  gc::Workspace ws(plan, gc::ElemType::bf16, gc::ElemType::f32, gc::ElemType::f32, gc::ElemType::bf16, true);
  gc::fill_random_inputs(ws, 5);
  gc::Args a = ws.args;
  a.scale = 0.125f;
  std::vector<unsigned char> h2, h4;
  a.state_variant = 2;
  gc::forward(a, nullptr);
  gc::synchronize();
  h2 = test::device_bytes(ws.h);
  ws.poison();
  a.state_variant = 4;
  gc::forward(a, nullptr);
  gc::synchronize();
  h4 = test::device_bytes(ws.h);
  BOOST_TEST((h2 == h4));
  BOOST_TEST(gc::timed_blocks(a, gc::Stage::chunk_state) == 2 * 64 / 32);
}

BOOST_AUTO_TEST_CASE(v4_grid_is_64_columns_per_block) {
  namespace gc = gdn_cuda;
  gc::Plan plan = gc::make_plan(2, 100, 2, 4, 128, 128, {});
  gc::Workspace ws(plan, gc::ElemType::bf16, gc::ElemType::f32, gc::ElemType::f32, gc::ElemType::bf16, false);
  gc::Args a = ws.args;
  a.state_variant = 4;
  BOOST_TEST(gc::timed_blocks(a, gc::Stage::chunk_state) == plan.d.N * 4 * 2);
  a.state_variant = 2;
  BOOST_TEST(gc::timed_blocks(a, gc::Stage::chunk_state) == plan.d.N * 4 * 4);
}

BOOST_AUTO_TEST_CASE(v3_equals_v2_bf16_K128) { expect_v3_equals_v2({}); }

BOOST_AUTO_TEST_CASE(v3_equals_v2_bf16_K128_split_state) {
  test::StateCase c;
  c.split = true;
  expect_v3_equals_v2(c);
}

BOOST_AUTO_TEST_CASE(v3_equals_v2_precise_uv) {
  test::StateCase c;
  c.precise = true;
  c.split = true;
  expect_v3_equals_v2(c);
}

BOOST_AUTO_TEST_CASE(v3_equals_v2_ragged_K64_fp16) {
  test::StateCase c;
  c.K = 64, c.H = 1, c.HV = 3, c.e = gc::ElemType::f16;
  c.seqlens = {1, 0, 65, 64, 200, 3};
  expect_v3_equals_v2(c);
}

BOOST_AUTO_TEST_CASE(v3_equals_v2_no_initial_state_G1) {
  test::StateCase c;
  c.T = 130, c.H = 3, c.HV = 3, c.h0 = false;
  expect_v3_equals_v2(c);
}

BOOST_AUTO_TEST_CASE(v3_equals_v2_precise_ragged_K64) {
  test::StateCase c;
  c.K = 64, c.H = 2, c.HV = 4, c.precise = true;
  c.seqlens = {63, 1, 129};
  expect_v3_equals_v2(c);
}

// fp32 inputs have no variant 3 (its operands come from registers as 16-bit pairs): variant 3 runs
// variant 2 there, with the same bytes.
BOOST_AUTO_TEST_CASE(v3_falls_back_to_v2_for_fp32) {
  test::StateCase c;
  c.T = 200, c.e = gc::ElemType::f32;
  expect_v3_equals_v2(c);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
