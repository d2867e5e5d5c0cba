// The chunked form against the per-token recurrence (the ground truth), and properties of the
// recurrence itself that a wrong implementation would break.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <cmath>

#include "datasets/generators.hpp"
#include "reference/chunked.hpp"
#include "reference/recurrent.hpp"
#include "test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace gdnv;

namespace {

void expect_agreement(Problem const& p, std::string const& what, double tol = 1e-12) {
  RecurrentResult const rec = recurrent_forward(p);
  for (auto inv : {InverseMethod::forward_substitution, InverseMethod::block_merge}) {
    ChunkedOptions opt;
    opt.inverse = inv;
    ChunkedResult const ch = chunked_forward(p, opt);
    double const eo = test::rel_error(ch.o, rec.o);
    double const es = test::rel_error(ch.final_state, rec.final_state);
    BOOST_TEST(eo <= tol, what << ": o rel error " << eo);
    BOOST_TEST(es <= tol, what << ": final_state rel error " << es);
    BOOST_TEST(test::all_finite(ch.o));
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(recurrent_vs_chunked)

BOOST_DATA_TEST_CASE(every_generator_family, bdata::make(generator_families()), family) {
  GeneratorParams gp;
  gp.family = family;
  gp.T = 200;
  gp.H = 2;
  gp.HV = 4;
  gp.K = 32;
  gp.V = 48;
  gp.seed = 11;
  gp.h0 = true;
  if (family == "ragged") gp.T = 0;  // the family picks its own lengths
  expect_agreement(generate_problem(gp), family);
}

BOOST_DATA_TEST_CASE(tails_and_group_sizes, bdata::make({1, 63, 64, 65, 130}) * bdata::make({1, 2, 3}), T, G) {
  Problem const p = test::random_problem(1000 + T * 7 + G, 2, T, 2, 2 * G, 16, 24, {}, true);
  expect_agreement(p, "T=" + std::to_string(T) + " G=" + std::to_string(G));
}

BOOST_AUTO_TEST_CASE(varlen_with_initial_state) {
  Problem const p = test::random_problem(5, 1, 0, 1, 3, 16, 16, {1, 15, 64, 65, 200, 0, 3}, true);
  expect_agreement(p, "varlen");
}

BOOST_AUTO_TEST_CASE(in_kernel_l2norm_of_raw_inputs) {
  Problem p = test::random_problem(6, 1, 100, 2, 4, 32, 32);
  for (auto& x : p.q.data) x *= 3.0;  // raw, unnormalized
  for (auto& x : p.k.data) x *= 0.5;
  p.qk_l2norm = true;
  expect_agreement(p, "l2norm");
}

BOOST_AUTO_TEST_CASE(strong_decay_stays_finite) {
  Problem p = test::random_problem(8, 1, 150, 1, 2, 16, 16, {}, true);
  for (auto& g : p.g.data) g = -70.0;  // cumulative -4480 within a chunk
  ChunkedResult const ch = chunked_forward(p);
  RecurrentResult const rec = recurrent_forward(p);
  BOOST_TEST(test::all_finite(ch.o));
  BOOST_TEST(test::all_finite(ch.A_inv));
  BOOST_TEST(test::rel_error(ch.o, rec.o) <= 1e-12);
}

// One token, K = V = 1: S1 = e^g S0 + k beta (v - e^g S0 k), o = scale S1 q. Pins the order of
// the steps: decay before the delta, read after the write.
BOOST_AUTO_TEST_CASE(one_token_closed_form) {
  Problem p = test::random_problem(9, 1, 1, 1, 1, 1, 1, {}, true);
  p.q.data = {0.75};
  p.k.data = {0.5};
  p.v.data = {2.0};
  p.g.data = {-0.25};
  p.beta.data = {0.6};
  p.initial_state.data = {1.5};
  p.scale = 0.3;
  double const a = std::exp(-0.25), s0 = 1.5;
  double const s1 = a * s0 + 0.5 * 0.6 * (2.0 - a * s0 * 0.5);
  RecurrentResult const rec = recurrent_forward(p);
  ChunkedResult const ch = chunked_forward(p);
  BOOST_TEST(std::fabs(rec.o.data[0] - 0.3 * s1 * 0.75) < 1e-15);
  BOOST_TEST(std::fabs(ch.o.data[0] - 0.3 * s1 * 0.75) < 1e-15);
  BOOST_TEST(std::fabs(rec.final_state.data[0] - s1) < 1e-15);
  BOOST_TEST(std::fabs(ch.final_state.data[0] - s1) < 1e-15);
}

BOOST_AUTO_TEST_CASE(varlen_equals_separate_sequences) {
  std::vector<int64_t> const lens = {70, 1, 129};
  Problem const packed = test::random_problem(12, 1, 0, 2, 4, 16, 8, lens, true);
  ChunkedResult const all = chunked_forward(packed);
  int64_t begin = 0;
  for (size_t n = 0; n < lens.size(); ++n) {
    // Slice sequence n out as its own dense problem.
    Problem s = packed;
    s.cu_seqlens.clear();
    s.T = lens[n];
    auto slice = [&](Tensor const& x) {
      int64_t const row = x.numel() / x.dim(1);
      Tensor t = x;
      t.shape[1] = lens[n];
      t.data.assign(x.data.begin() + begin * row, x.data.begin() + (begin + lens[n]) * row);
      return t;
    };
    s.q = slice(packed.q), s.k = slice(packed.k), s.v = slice(packed.v);
    s.g = slice(packed.g), s.beta = slice(packed.beta);
    int64_t const state = packed.HV * packed.K * packed.V;
    s.initial_state = Tensor({1, packed.HV, packed.K, packed.V}, DType::f64);
    std::copy_n(packed.initial_state.data.begin() + static_cast<long>(n) * state, state, s.initial_state.data.begin());
    ChunkedResult const one = chunked_forward(s);
    int64_t const row = packed.HV * packed.V;
    double worst = 0;
    for (int64_t i = 0; i < lens[n] * row; ++i)
      worst = std::max(worst, std::fabs(one.o.data[i] - all.o.data[begin * row + i]));
    for (int64_t i = 0; i < state; ++i)
      worst = std::max(worst, std::fabs(one.final_state.data[i] - all.final_state.data[n * state + i]));
    BOOST_TEST(worst == 0.0, "sequence " << n << " differs by " << worst);
    begin += lens[n];
  }
}

BOOST_AUTO_TEST_CASE(gqa_equals_repeated_key_heads) {
  Problem const p = test::random_problem(13, 1, 90, 2, 6, 16, 8);  // G = 3
  Problem r = p;
  r.H = p.HV;
  r.q = Tensor({1, p.T, p.HV, p.K}, DType::f64);
  r.k = Tensor({1, p.T, p.HV, p.K}, DType::f64);
  for (int64_t t = 0; t < p.T; ++t)
    for (int64_t hv = 0; hv < p.HV; ++hv)
      for (int64_t d = 0; d < p.K; ++d) {
        r.q.at({0, t, hv, d}) = p.q.at({0, t, hv / 3, d});
        r.k.at({0, t, hv, d}) = p.k.at({0, t, hv / 3, d});
      }
  BOOST_TEST(test::rel_error(chunked_forward(p).o, chunked_forward(r).o) == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
