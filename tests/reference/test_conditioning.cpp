// Per-chunk conditioning figures: definitions checked on closed forms, and the structural
// facts of verification-method.md 3.7 checked on every generator family.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <cmath>

#include "datasets/generators.hpp"
#include "reference/chunked.hpp"
#include "reference/conditioning.hpp"
#include "test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace gdnv;

BOOST_AUTO_TEST_SUITE(conditioning)

// Identical unit keys, constant beta, no decay: X[i,j] = -beta (1-beta)^(i-j-1), so
// max|X| = beta for beta in (0,1] and every figure has a closed form.
BOOST_AUTO_TEST_CASE(identical_keys_closed_form) {
  Problem p = test::random_problem(41, 1, 64, 1, 1, 4, 4);
  double const beta = 0.5;
  for (int64_t t = 0; t < 64; ++t) {
    for (int64_t d = 0; d < 4; ++d) p.k.at({0, t, 0, d}) = d == 0 ? 1.0 : 0.0;
    p.beta.data[t] = beta;
    p.g.data[t] = 0.0;
  }
  auto const c = chunk_conditioning(p, chunked_forward(p)).at(0);
  BOOST_TEST(c.rows == 64);
  BOOST_TEST(std::fabs(c.max_abs_inv - 1.0) < 1e-15);  // the unit diagonal dominates beta = 0.5
  BOOST_TEST(std::fabs(c.norm_A_inf - 63 * beta) < 1e-12);
  BOOST_TEST(std::fabs(c.max_beta_k2 - beta) < 1e-15);
  BOOST_TEST(c.structural_bound == 1.0);  // max(1 on the diagonal, beta below it)
  // ||T||_inf = 1 + 63 beta; row 63 of X sums 1 + beta (1 - (1-beta)^63) / beta = 2 - 0.5^63
  BOOST_TEST(std::fabs(c.kappa_inf - (1 + 63 * beta) * (2.0 - std::pow(0.5, 63))) < 1e-10);
  // (I - |A|)^-1 grows like (1 + beta)^(i-j-1) beta: the Neumann amplification
  BOOST_TEST(std::fabs(c.neumann_max - beta * std::pow(1 + beta, 62)) / c.neumann_max < 1e-12);
}

BOOST_AUTO_TEST_CASE(skeel_never_exceeds_kappa_inf) {
  Problem const p = test::random_problem(42, 1, 200, 2, 4, 16, 8);
  for (auto const& c : chunk_conditioning(p, chunked_forward(p))) {
    BOOST_TEST(c.skeel <= c.kappa_inf * (1 + 1e-12));
    BOOST_TEST(c.skeel >= 1.0 - 1e-12);
    BOOST_TEST(c.kappa_1 >= 1.0 - 1e-12);
  }
}

// |X_ij| <= beta_i ||k_i|| ||k_j|| e^{gamma_i - gamma_j} while beta ||k||^2 <= 2 (3.7 b), and
// (I - |A|)^-1 dominates |X| (the comparison matrix, 3.2).
BOOST_DATA_TEST_CASE(structural_bound_holds_on_every_family, bdata::make(generator_families()), family) {
  GeneratorParams gp;
  gp.family = family;
  gp.T = 256;
  gp.H = 1;
  gp.HV = 2;
  gp.K = 32;
  gp.V = 8;
  gp.seed = 43;
  if (family == "ragged") gp.T = 0;
  Problem const p = generate_problem(gp);
  for (auto const& c : chunk_conditioning(p, chunked_forward(p))) {
    if (c.max_beta_k2 > 2.0) continue;  // outside the contraction regime the bound is not claimed
    BOOST_TEST(c.max_abs_inv <= c.structural_bound * (1 + 1e-9), family << " chunk " << c.chunk);
    BOOST_TEST(c.max_abs_inv <= c.neumann_max * (1 + 1e-9));
  }
}

BOOST_AUTO_TEST_SUITE_END()
