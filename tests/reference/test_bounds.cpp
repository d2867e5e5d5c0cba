// The componentwise bound on A_inv (reference/bounds.hpp, verification-method.md §3.8): the exact
// inverse rounded once to the output dtype sits inside it (and reaches it: the output rounding
// dominates a bf16 A_inv), one entry moved by twice its bound gives R = 2 at exactly that chunk, the
// correct CPU model of the kernels stays inside it on every generator family, and tf32 merges do not.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "reference/bounds.hpp"
#include "reference/chunked.hpp"
#include "reference/emulated.hpp"
#include "reference/rounding.hpp"
#include "test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace gdnv;

namespace {




struct Fixture {
  Problem p = test::small_family_case("fla-test");
  ChunkedResult ref = chunked_forward(p);
  InverseBounds bounds = inverse_bounds(p, ref, DeclaredArithmetic{});
};

}  // namespace

BOOST_AUTO_TEST_SUITE(bounds)

BOOST_AUTO_TEST_CASE(declarations_parse_and_round_trip) {
  DeclaredArithmetic d;
  d.input = Precision::bf16;
  d.merges = Precision::tf32;
  d.A_inv = Precision::fp32;
  d.algorithm = InverseAlgorithm::substitution;
  auto back = parse_declared_arithmetic(d.to_string());
  BOOST_TEST_REQUIRE(back.has_value());
  BOOST_TEST((*back == d));

  // the human form of the example
  std::string why;
  auto h = parse_declared_arithmetic("bf16 in, fp32 accumulate, A_inv bf16, state fp32", &why);
  BOOST_TEST_REQUIRE(h.has_value(), why);
  BOOST_TEST((h->input == Precision::bf16));
  BOOST_TEST((h->accumulate == Precision::fp32));
  BOOST_TEST((h->inverse == Precision::fp32));
  BOOST_TEST((h->merges == Precision::fp32));
  BOOST_TEST((h->A_inv == Precision::bf16));
  auto t = parse_declared_arithmetic("input=bf16; accumulate=fp32; merges=tf32; A_inv=input");
  BOOST_TEST_REQUIRE(t.has_value());
  BOOST_TEST((t->merges == Precision::tf32));
  BOOST_TEST((t->A_inv == Precision::input));

  // free text, or a declaration without A_inv, does not parse
  for (char const* bad : {"", "float64 per-token recurrence, o rounded once to the input dtype, state float32",
                          "bf16 in, fp32 accumulate", "A_inv bf16", "A_inv=fp33 accumulate=fp32",
                          "A_inv=bf16 accumulate=fp32 A_inv=fp32"}) {
    std::string reason;
    BOOST_TEST(!parse_declared_arithmetic(bad, &reason).has_value(), bad);
    BOOST_TEST(!reason.empty());
  }
  BOOST_TEST(unit_roundoff(Precision::tf32, DType::bf16) == 0x1p-11);
  BOOST_TEST(unit_roundoff(Precision::input, DType::f16) == 0x1p-11);
}

// Zero on and above the diagonal; the probabilistic bound never exceeds the deterministic one; the
// fp64 reference's own error is negligible against both.
BOOST_FIXTURE_TEST_CASE(bounds_are_strictly_lower_and_ordered, Fixture) {
  for (auto const& c : p.chunks())
    for (int64_t hv = 0; hv < p.HV; ++hv)
      for (int64_t i = 0; i < c.rows; ++i)
        for (int64_t j = 0; j < kChunk; ++j) {
          double const d = bounds.det.at({c.b, c.begin + i, hv, j}), q = bounds.prob.at({c.b, c.begin + i, hv, j});
          if (j >= i || j >= c.rows) {
            BOOST_TEST_REQUIRE(d == 0.0);
            BOOST_TEST_REQUIRE(q == 0.0);
          } else {
            BOOST_TEST_REQUIRE(d > 0.0);
            BOOST_TEST_REQUIRE(q <= d);
          }
        }
  BOOST_TEST(bounds.margin_ref < 1e-6);
}

// The error of a perfect kernel: X rounded once to bf16. Inside the bound, and close to it.
BOOST_FIXTURE_TEST_CASE(exact_inverse_rounded_once_to_bf16_is_inside, Fixture) {
  Tensor X = ref.A_inv;
  X.dtype = DType::bf16;
  for (double& x : X.data) x = round_to(DType::bf16, x);
  auto const rows = inverse_bound_ratios(p, ref, bounds, X);
  BOOST_TEST(rows.size() == p.chunks().size() * static_cast<size_t>(p.HV));
  BOOST_TEST(test::max_r_det(rows) <= 1.0);
  BOOST_TEST(test::max_r_prob(rows) <= 1.0);
  BOOST_TEST(test::max_r_det(rows) > 0.9);  // u_out |X| dominates: the rounding reaches its bound
  for (auto const& r : rows) {
    BOOST_TEST(r.upper_nonzero == 0);
    BOOST_TEST(r.diagonal_not_one == 0);
  }
  // structure is counted, not folded into R
  auto const& c0 = p.chunks().front();
  X.at({c0.b, c0.begin + 5, 0, 5}) = 0.0;
  X.at({c0.b, c0.begin + 5, 0, 9}) = 1e-3;
  auto const bad = inverse_bound_ratios(p, ref, bounds, X);
  BOOST_TEST(bad.front().diagonal_not_one == 1);
  BOOST_TEST(bad.front().upper_nonzero == 1);
  BOOST_TEST(test::max_r_det(bad) == test::max_r_det(rows));
  // the exact inverse itself: R = 0
  BOOST_TEST(test::max_r_det(inverse_bound_ratios(p, ref, bounds, ref.A_inv)) == 0.0);
}

// One entry moved by twice its deterministic bound: R_det = 2 at that chunk and entry, 0 elsewhere.
BOOST_FIXTURE_TEST_CASE(one_entry_off_by_twice_its_bound_is_found, Fixture) {
  auto const chunks = p.chunks();
  auto const& c = chunks.at(1);
  int64_t const hv = 2, i = 40, j = 3;
  BOOST_TEST_REQUIRE(c.rows > i);
  Tensor X = ref.A_inv;
  int64_t const off = X.offset({c.b, c.begin + i, hv, j});
  X.data[static_cast<size_t>(off)] += 2.0 * bounds.det.data[static_cast<size_t>(off)];
  auto const rows = inverse_bound_ratios(p, ref, bounds, X);
  for (size_t k = 0; k < rows.size(); ++k) {
    auto const& r = rows[k];
    if (r.sequence == c.sequence && r.chunk == c.chunk && r.head == hv) {
      BOOST_TEST(r.r_det == 2.0, boost::test_tools::tolerance(1e-9));
      BOOST_TEST(r.r_prob >= 2.0);
      BOOST_TEST(r.row == i);
      BOOST_TEST(r.col == j);
    } else {
      BOOST_TEST(r.r_det == 0.0);
    }
  }
  // a non-finite entry is an infinite ratio
  X.data[static_cast<size_t>(off)] = std::nan("");
  BOOST_TEST(std::isinf(test::max_r_det(inverse_bound_ratios(p, ref, bounds, X))));
}

// The correct model of the bf16 kernels (fp32 KKT, fp32 16x16 substitution + fp32 merges, A_inv bf16)
// is inside its declared bound on every family; with fp32 inputs (A_inv fp32, so the arithmetic itself
// is judged, the gate cumsum and strong decay included) too.
BOOST_DATA_TEST_CASE(correct_emulation_is_inside_on_every_family, bdata::make(generator_families()), family) {
  for (DType dt : {DType::bf16, DType::f32}) {
    Problem const p = test::small_family_case(family, dt);
    ChunkedResult const ref = chunked_forward(p);
    InverseBounds const b = inverse_bounds(p, ref, DeclaredArithmetic{});
    auto const rows = inverse_bound_ratios(p, ref, b, emulated_forward(p).A_inv);
    BOOST_TEST(test::max_r_det(rows) <= 1.0, family << " " << dtype_name(dt));
    BOOST_TEST_MESSAGE(family << " " << dtype_name(dt) << ": correct emulation max R_det " << test::max_r_det(rows)
                              << ", max R_prob " << test::max_r_prob(rows) << ", margin_ref " << b.margin_ref);
  }
}

// verification-method.md 0.4: tf32 merges exceed the fp32 inverse's bound. With an fp32 A_inv the
// arithmetic shows on every family it mixes; with the bf16 store it still shows where entries are small
// by cancellation.
BOOST_AUTO_TEST_CASE(tf32_merges_exceed_the_bound) {
  EmulatedOptions tf32;
  tf32.faults.tf32_merges = true;
  for (DType dt : {DType::bf16, DType::f32}) {
    double worst = 0;
    int over = 0;
    for (auto const& family : generator_families()) {
      Problem const p = test::small_family_case(family, dt);
      ChunkedResult const ref = chunked_forward(p);
      InverseBounds const b = inverse_bounds(p, ref, DeclaredArithmetic{});
      double const r = test::max_r_det(inverse_bound_ratios(p, ref, b, emulated_forward(p, tf32).A_inv));
      over += r > 1.0;
      worst = std::max(worst, r);
      BOOST_TEST_MESSAGE(family << " " << dtype_name(dt) << ": tf32 merges max R_det " << r);
    }
    BOOST_TEST(worst > 1.0, dtype_name(dt));
    BOOST_TEST(over >= 1);
  }
}

// The GQA-shared kernels' inverse (EmulatedOptions::tc_inverse: 32x32 recursive merges, 3xTF32 products)
// is inside the bound declared with merges=tf32x3 on every family, with a bf16 and an fp32 A_inv; and that
// declaration is tight enough that a single-tf32 merge (FLA's) breaks it where A_inv is stored in fp32.
BOOST_AUTO_TEST_CASE(tf32x3_merges_are_inside_their_bound) {
  EmulatedOptions tc;
  tc.tc_inverse = true;
  DeclaredArithmetic d;
  d.merges = Precision::tf32x3;
  for (DType dt : {DType::bf16, DType::f32})
    for (auto const& family : generator_families()) {
      Problem const p = test::small_family_case(family, dt);
      ChunkedResult const ref = chunked_forward(p);
      InverseBounds const b = inverse_bounds(p, ref, d);
      double const r = test::max_r_det(inverse_bound_ratios(p, ref, b, emulated_forward(p, tc).A_inv));
      BOOST_TEST(r <= 1.0, family << " " << dtype_name(dt) << ": tf32x3 merges max R_det " << r);
      BOOST_TEST_MESSAGE(family << " " << dtype_name(dt) << ": tf32x3 merges max R_det " << r);
    }
}

BOOST_AUTO_TEST_CASE(single_tf32_merges_break_the_tf32x3_bound) {
  EmulatedOptions tf32;
  tf32.faults.tf32_merges = true;
  DeclaredArithmetic d;
  d.merges = Precision::tf32x3;
  double worst = 0;
  for (auto const& family : generator_families()) {
    Problem const p = test::small_family_case(family, DType::f32);
    ChunkedResult const ref = chunked_forward(p);
    InverseBounds const b = inverse_bounds(p, ref, d);
    worst = std::max(worst, test::max_r_det(inverse_bound_ratios(p, ref, b, emulated_forward(p, tf32).A_inv)));
  }
  BOOST_TEST(worst > 1.0, "single tf32 merges max R_det " << worst << " under the tf32x3 declaration");
}

// The 3xTF32 inverse agrees with the fp32-merge inverse to far below a bf16 rounding: stored in bf16, at
// least 99% of the strictly lower entries are bit-equal (FLA's single-tf32 merges: 93.6%, targets.md).
BOOST_AUTO_TEST_CASE(tf32x3_inverse_is_bit_equal_to_fp32_merges_in_bf16_almost_everywhere) {
  EmulatedOptions tc;
  tc.tc_inverse = true;
  EmulatedOptions tf32;
  tf32.faults.tf32_merges = true;
  for (auto const& family : {"fla-test", "normal", "model-like", "ragged"}) {
    Problem const p = test::small_family_case(family);
    Tensor const plain = emulated_forward(p).A_inv, x3 = emulated_forward(p, tc).A_inv,
                 one = emulated_forward(p, tf32).A_inv;
    int64_t n = 0, eq3 = 0, eq1 = 0;
    for (auto const& ch : p.chunks())
      for (int64_t hv = 0; hv < p.HV; ++hv)
        for (int64_t i = 1; i < ch.rows; ++i)
          for (int64_t j = 0; j < i; ++j) {
            double const want = plain.at({ch.b, ch.begin + i, hv, j});
            ++n;
            eq3 += x3.at({ch.b, ch.begin + i, hv, j}) == want;
            eq1 += one.at({ch.b, ch.begin + i, hv, j}) == want;
          }
    double const f3 = static_cast<double>(eq3) / static_cast<double>(n), f1 = static_cast<double>(eq1) / n;
    BOOST_TEST(f3 >= 0.99, family << ": " << f3 << " of the entries bit-equal");
    BOOST_TEST(f3 > f1, family << ": 3xTF32 " << f3 << " vs single tf32 " << f1);
    BOOST_TEST_MESSAGE(family << ": bit-equal to fp32 merges: 3xTF32 " << f3 << ", single tf32 " << f1);
  }
}

// Declaring the tf32 merges the kernel really does makes its error explained again.
BOOST_AUTO_TEST_CASE(declared_tf32_merges_explain_their_error) {
  EmulatedOptions tf32;
  tf32.faults.tf32_merges = true;
  DeclaredArithmetic d;
  d.merges = Precision::tf32;
  for (auto const& family : generator_families()) {
    Problem const p = test::small_family_case(family);
    ChunkedResult const ref = chunked_forward(p);
    InverseBounds const b = inverse_bounds(p, ref, d);
    BOOST_TEST(test::max_r_det(inverse_bound_ratios(p, ref, b, emulated_forward(p, tf32).A_inv)) <= 1.0, family);
  }
}

BOOST_AUTO_TEST_SUITE_END()
