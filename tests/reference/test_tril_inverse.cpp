// The two (I + A)^-1 algorithms: exactness properties and agreement, over random sizes.
#include <boost/test/unit_test.hpp>

#include <random>

#include "reference/tril_inverse.hpp"

using gdnv::MatrixXdR;

namespace {

// Strictly lower A as the kernels see it: beta_i k_i.k_j with unit keys (|A_ij| <= 1).
MatrixXdR random_kkt(int n, uint64_t seed, double beta_max = 1.0, int dim = 16) {
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1p-53; };
  MatrixXdR Kc(n, dim);
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) Kc(i, d) = uniform() - 0.3;
    Kc.row(i).normalize();
  }
  MatrixXdR A = MatrixXdR::Zero(n, n);
  for (int i = 1; i < n; ++i)
    for (int j = 0; j < i; ++j) A(i, j) = beta_max * uniform() * Kc.row(i).dot(Kc.row(j));
  return A;
}

double rel(MatrixXdR const& a, MatrixXdR const& b) { return (a - b).norm() / b.norm(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(tril_inverse)

BOOST_AUTO_TEST_CASE(forward_substitution_is_an_inverse) {
  for (int n : {1, 2, 3, 15, 16, 17, 31, 48, 63, 64}) {
    MatrixXdR const A = random_kkt(n, 100 + n);
    MatrixXdR const T = MatrixXdR::Identity(n, n) + A;
    MatrixXdR const X = gdnv::tril_inverse_forward(A);
    double const resid = (T * X - MatrixXdR::Identity(n, n)).norm() / (T.norm() * X.norm());
    BOOST_TEST(resid < 1e-15, "n=" << n << " residual " << resid);
  }
}

BOOST_AUTO_TEST_CASE(exact_structure) {
  for (int n : {5, 16, 40, 64}) {
    MatrixXdR const X = gdnv::tril_inverse_block_merge(random_kkt(n, 7 + n));
    MatrixXdR const Y = gdnv::tril_inverse_forward(random_kkt(n, 7 + n));
    for (int i = 0; i < n; ++i) {
      BOOST_TEST(X(i, i) == 1.0);
      BOOST_TEST(Y(i, i) == 1.0);
      for (int j = i + 1; j < n; ++j) {
        BOOST_TEST(X(i, j) == 0.0);
        BOOST_TEST(Y(i, j) == 0.0);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(block_merge_agrees_with_forward_substitution) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    int const n = 1 + static_cast<int>((seed * 37) % 64);
    for (double beta_max : {1.0, 2.0}) {
      MatrixXdR const A = random_kkt(n, seed, beta_max);
      double const e = rel(gdnv::tril_inverse_block_merge(A), gdnv::tril_inverse_forward(A));
      BOOST_TEST(e <= 1e-13, "n=" << n << " beta_max=" << beta_max << " rel diff " << e);
    }
  }
}

BOOST_AUTO_TEST_CASE(only_the_strict_lower_part_is_read) {
  MatrixXdR A = random_kkt(64, 3);
  MatrixXdR const X0 = gdnv::tril_inverse_block_merge(A);
  A.triangularView<Eigen::Upper>().setConstant(1e30);  // garbage on and above the diagonal
  BOOST_TEST(rel(gdnv::tril_inverse_block_merge(A), X0) == 0.0);
  BOOST_TEST(rel(gdnv::tril_inverse_forward(A), X0) <= 1e-13);
}

// Identical unit keys, constant beta, no decay: (I+A)^-1[i,j] = -beta (1-beta)^(i-j-1) for i > j.
BOOST_AUTO_TEST_CASE(closed_form_identical_keys) {
  for (double beta : {0.25, 0.5, 1.0, 1.5, 1.9}) {
    int const n = 64;
    MatrixXdR A = MatrixXdR::Zero(n, n);
    for (int i = 1; i < n; ++i)
      for (int j = 0; j < i; ++j) A(i, j) = beta;
    for (auto const& X : {gdnv::tril_inverse_forward(A), gdnv::tril_inverse_block_merge(A)}) {
      double worst = 0;
      for (int i = 1; i < n; ++i)
        for (int j = 0; j < i; ++j) {
          double const exact = -beta * std::pow(1.0 - beta, i - j - 1);
          worst = std::max(worst, std::fabs(X(i, j) - exact));
        }
      BOOST_TEST(worst < 1e-13, "beta=" << beta << " max abs error " << worst);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
