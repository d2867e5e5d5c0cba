// The per-chunk floor ratio: scale-free, exact at its defining points, and blind to nothing.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>
#include <limits>

#include "harness/compare.hpp"
#include "harness/gpu_implementations.hpp"
#include "reference/chunked.hpp"
#include "reference/rounding.hpp"
#include "test_util.hpp"

using namespace gdnv;

namespace {

Tensor rounded(Tensor t, DType d) {
  for (auto& x : t.data) x = round_to(d, x);
  t.dtype = d;
  return t;
}

// got = exact + f * (round(exact) - exact): the floor ratio of every block is exactly |f|.
Tensor scaled_rounding_error(Tensor const& exact, DType d, double f) {
  Tensor t = exact;
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = exact.data[i] + f * (round_to(d, exact.data[i]) - exact.data[i]);
  t.dtype = d;
  return t;
}

struct Fixture {
  Problem p = test::random_problem(31, 1, 0, 2, 4, 16, 16, {1, 64, 100}, true, DType::bf16);
  ChunkedResult ref = chunked_forward(p);
};

}  // namespace

BOOST_AUTO_TEST_SUITE(compare)

BOOST_FIXTURE_TEST_CASE(exact_values_give_zero, Fixture) {
  Comparison const c = compare_outputs(p, ref, {{"o", ref.o}, {"h", ref.h}, {"final_state", ref.final_state}});
  BOOST_TEST(c.worst.ratio == 0.0);
  BOOST_TEST(c.metrics.at("o").rel_rms == 0.0);
}

BOOST_FIXTURE_TEST_CASE(rounding_once_is_ratio_one, Fixture) {
  Comparison const c = compare_outputs(p, ref, {{"o", rounded(ref.o, DType::bf16)}});
  for (auto const& r : c.rows) BOOST_TEST(std::fabs(r.ratio - 1.0) < 1e-12, r.tensor << " chunk " << r.chunk);
  BOOST_TEST(std::fabs(c.metrics.at("o").floor_ratio - 1.0) < 1e-12);
}

BOOST_FIXTURE_TEST_CASE(ratio_scales_with_the_error, Fixture) {
  for (double f : {0.5, 2.0, 9.0}) {
    Comparison const c = compare_outputs(p, ref, {{"o", scaled_rounding_error(ref.o, DType::bf16, f)}});
    BOOST_TEST(std::fabs(c.worst.ratio - f) < 1e-9 * f);
    BOOST_TEST(std::fabs(c.metrics.at("o").median_chunk_ratio - f) < 1e-9 * f);
  }
}

BOOST_FIXTURE_TEST_CASE(fp32_output_with_bf16_inputs_uses_the_bf16_floor, Fixture) {
  Comparison const c = compare_outputs(p, ref, {{"final_state", rounded(ref.final_state, DType::f32)}});
  BOOST_TEST((c.metrics.at("final_state").floor_dtype == DType::bf16));
  BOOST_TEST(c.worst.ratio < 1e-3);  // fp32 rounding is far below the bf16 floor
}

BOOST_FIXTURE_TEST_CASE(blocks_follow_chunks_and_states, Fixture) {
  Comparison const c = compare_outputs(p, ref, {{"o", ref.o}, {"h", ref.h}, {"final_state", ref.final_state}});
  // sequences of 1, 64, 100 tokens: 1 + 1 + 2 chunks, 4 value heads
  BOOST_TEST(c.metrics.at("o").chunks == 16);
  BOOST_TEST(c.metrics.at("h").chunks == 16);
  BOOST_TEST(c.metrics.at("final_state").chunks == 12);
  int tails = 0;
  for (auto const& r : c.rows)
    if (r.tensor == "o" && r.sequence == 2 && r.chunk == 1) tails += r.rows == 36;
  BOOST_TEST(tails == 4);
}

BOOST_FIXTURE_TEST_CASE(one_bad_chunk_is_found_where_it_is, Fixture) {
  Tensor o = rounded(ref.o, DType::bf16);
  // corrupt token 70 (sequence 2, chunk 0) of value head 3
  int64_t const t = 70, hv = 3;
  for (int64_t d = 0; d < p.V; ++d) o.at({0, t, hv, d}) *= 1.5;
  Comparison const c = compare_outputs(p, ref, {{"o", o}});
  BOOST_TEST(c.worst.sequence == 2);
  BOOST_TEST(c.worst.chunk == 0);
  BOOST_TEST(c.worst.head == 3);
  BOOST_TEST(c.worst.ratio > 8.0);
}

BOOST_FIXTURE_TEST_CASE(nan_is_never_a_pass, Fixture) {
  Tensor o = rounded(ref.o, DType::bf16);
  o.data[5] = std::numeric_limits<double>::quiet_NaN();
  Comparison const c = compare_outputs(p, ref, {{"o", o}});
  BOOST_TEST(!c.worst.finite);
  BOOST_TEST(std::isinf(c.worst.ratio));
  BOOST_TEST(c.metrics.at("o").nonfinite == 1);
}

BOOST_AUTO_TEST_CASE(representable_results_fall_back_to_u_times_norm) {
  Problem p = test::random_problem(32, 1, 10, 1, 1, 4, 4, {}, false, DType::bf16);
  for (auto& g : p.g.data) g = 0.0;  // g_cumsum is exactly 0 everywhere
  ChunkedResult const ref = chunked_forward(p);
  Tensor g = ref.g_cumsum;
  g.dtype = DType::f32;
  Comparison c = compare_outputs(p, ref, {{"g_cumsum", g}});
  BOOST_TEST(c.rows.at(0).floor_from_u);
  BOOST_TEST(c.worst.ratio == 0.0);
  g.data[3] = 1e-30;  // any error on an exactly-zero block fails
  c = compare_outputs(p, ref, {{"g_cumsum", g}});
  BOOST_TEST(std::isinf(c.worst.ratio));
}

BOOST_FIXTURE_TEST_CASE(shape_mismatch_is_an_error, Fixture) {
  Tensor o = ref.o;
  o.shape[1] += 1;
  BOOST_CHECK_THROW(compare_outputs(p, ref, {{"o", o}}), std::invalid_argument);
}

// Which implementations gdnv check compares a fused kernel with: unfused for every fused kernel, and the one
// whose bytes it claims (fused-forward: fused-intra-v3); nothing for the others. Every partner is a GPU
// implementation name.
BOOST_AUTO_TEST_CASE(pair_partners_of_the_fused_kernels) {
  BOOST_TEST((pair_partners("fused") == std::vector<std::string>{"unfused"}));
  BOOST_TEST((pair_partners("fused-intra-v3") == std::vector<std::string>{"unfused"}));
  BOOST_TEST((pair_partners("fused-forward") == std::vector<std::string>{"unfused", "fused-intra-v3"}));
  BOOST_TEST((pair_partners("fused-forward-from-v") == std::vector<std::string>{"unfused", "fused-forward"}));
  for (char const* n : {"unfused", "precise", "cublas", "emulated", "captured:x"}) BOOST_TEST(pair_partners(n).empty(), n);
  auto const names = gpu_implementation_names();
  for (auto const& n : names)
    for (auto const& partner : pair_partners(n))
      BOOST_TEST((std::find(names.begin(), names.end(), partner) != names.end()), n << " -> " << partner);
}

// Fused-vs-unfused pairs: bit-equal counts and the largest difference, NaN never equal and sticky.
BOOST_FIXTURE_TEST_CASE(pair_counts_bit_equal_values, Fixture) {
  Tensor a = rounded(ref.o, DType::bf16), b = a;
  auto s = compare_pair({{"o", a}, {"A", ref.A}}, {{"o", b}});
  BOOST_TEST(s.size() == 1u);  // only tensors both sides have
  BOOST_TEST(s.at("o").equal == s.at("o").elements);
  BOOST_TEST(s.at("o").max_abs_diff == 0.0);
  b.data[5] += 0.25;
  b.data[9] = std::numeric_limits<double>::quiet_NaN();
  b.data[11] += 1.0;
  s = compare_pair({{"o", a}}, {{"o", b}});
  BOOST_TEST(s.at("o").equal == s.at("o").elements - 3);
  BOOST_TEST(std::isnan(s.at("o").max_abs_diff));
  b.data[9] = a.data[9];
  s = compare_pair({{"o", a}}, {{"o", b}});
  BOOST_TEST(s.at("o").max_abs_diff == 1.0, "largest difference: " << s.at("o").max_abs_diff);
  BOOST_TEST(s.at("o").equal_fraction() < 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
