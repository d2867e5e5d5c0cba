// The ratios gdnv reports for comparability, never as a gate (harness/normwise.hpp): LAPACK's xTRT01
// normwise residual of A_inv per chunk and FLA's relative RMS per chunk; and the SHA-256 a baseline
// records of its dataset.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "harness/compare.hpp"
#include "harness/environment.hpp"
#include "harness/normwise.hpp"
#include "reference/chunked.hpp"
#include "reference/rounding.hpp"
#include "test_util.hpp"

using namespace gdnv;

namespace {

// Chunk c (full 64 rows) of value head hv: T = I + A and X = A_inv of the reference.
struct ChunkMats {
  Eigen::MatrixXd T, X;
};
ChunkMats chunk(Problem const& p, ChunkedResult const& ref, int64_t t0, int64_t hv, int64_t n = 64) {
  ChunkMats m{Eigen::MatrixXd::Identity(n, n), Eigen::MatrixXd::Zero(n, n)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (j < i) m.T(i, j) = ref.A.at({0, t0 + i, hv, j});
      m.X(i, j) = ref.A_inv.at({0, t0 + i, hv, j});
    }
  (void)p;
  return m;
}

// bf16 inputs, 3 full chunks per head, unit keys in 16 dimensions, beta in (0, 1) and a weak decay
// (g = -0.02 per token): A is dense (|A_ij| ~ 0.1 across the whole chunk), |X_ij| <= 1 (§3.7b).
Problem weak_decay_problem() {
  Problem p = test::random_problem(7, 1, 192, 2, 2, 16, 16, {}, false, DType::bf16);
  for (auto& g : p.g.data) g = round_to(DType::bf16, -0.02);
  return p;
}

struct Fixture {
  Problem p = weak_decay_problem();
  ChunkedResult ref = chunked_forward(p);
};

constexpr double kBf16U = 0x1p-8;  // LAPACK's EPS for bf16: the unit roundoff 2^-8

}  // namespace

BOOST_AUTO_TEST_SUITE(normwise)

BOOST_FIXTURE_TEST_CASE(exact_inverse_rounded_to_bf16_is_order_one, Fixture) {
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t hv = 0; hv < 2; ++hv) {
      ChunkMats m = chunk(p, ref, 64 * c, hv);
      // the fp64 inverse itself, against fp64's u: O(1) as well
      double const r64 = trt01_ratio(m.T, m.X, 0x1p-53);
      BOOST_TEST(r64 < 1.0, "chunk " << c << " head " << hv << " fp64 ratio " << r64);
      for (Eigen::Index i = 0; i < m.X.size(); ++i) m.X.data()[i] = round_to(DType::bf16, m.X.data()[i]);
      double const r = trt01_ratio(m.T, m.X, kBf16U);
      // one rounding of every entry: O(1), far below LAPACK's threshold of 30, and not zero
      BOOST_TEST(r < 1.0, "chunk " << c << " head " << hv << " ratio " << r);
      BOOST_TEST(r > 1e-3, "chunk " << c << " head " << hv << " ratio " << r);
      BOOST_TEST_MESSAGE("chunk " << c << " head " << hv << ": xTRT01 of the bf16-rounded inverse " << r);
    }
}

// Wrong inverses of one chunk: a merge skipped (a 16x16 block below the diagonal left at zero), the
// inverse of I - A instead of I + A (signs lost), rows shifted by one (a wrong row offset).
std::vector<Eigen::MatrixXd> wrong_inverses(Eigen::MatrixXd const& X) {
  Eigen::MatrixXd dropped = X, sign = X, off_by_one = Eigen::MatrixXd::Zero(X.rows(), X.cols());
  dropped.block(16, 0, 16, 16).setZero();
  for (Eigen::Index i = 0; i < X.rows(); ++i)
    for (Eigen::Index j = 0; j < i; ++j) sign(i, j) = std::fabs(X(i, j));
  for (Eigen::Index i = 1; i < X.rows(); ++i) off_by_one.row(i) = X.row(i - 1);
  return {dropped, sign, off_by_one};
}

// Stored in fp32 (cuBLAS, unfused-fp32inv), the exact inverse rounded once is O(1) and a wrong one is
// far above LAPACK's threshold.
BOOST_FIXTURE_TEST_CASE(a_wrong_inverse_gives_a_large_ratio, Fixture) {
  ChunkMats m = chunk(p, ref, 64, 1);
  Eigen::MatrixXd x32 = m.X;
  for (Eigen::Index i = 0; i < x32.size(); ++i) x32.data()[i] = round_to(DType::f32, x32.data()[i]);
  double const ok = trt01_ratio(m.T, x32, 0x1p-24);
  BOOST_TEST(ok < 1.0, "fp32-rounded inverse " << ok);
  for (auto const& bad : wrong_inverses(m.X)) {
    double const r = trt01_ratio(m.T, bad, 0x1p-24);
    BOOST_TEST_MESSAGE("xTRT01 (fp32 u) of a wrong inverse " << r);
    BOOST_TEST(r > 1000 * kLapackThresh, "ratio " << r);
  }
  Eigen::MatrixXd nan = m.X;
  nan(10, 3) = std::numeric_limits<double>::quiet_NaN();
  BOOST_TEST(std::isinf(trt01_ratio(m.T, nan, 0x1p-24)));
}

// Why the ratio is reported and never gated: ||T X - I||_1 <= ||T||_1 ||X||_1 + 1 and both norms are >= 1
// (unit diagonals), so the ratio is at most 2 / (n u) for ANY X. With a bf16 A_inv (u = 2^-8) of a full
// 64-row chunk that is 8, below LAPACK's threshold of 30: xTRT01 cannot flag a wrong bf16 inverse at all.
BOOST_FIXTURE_TEST_CASE(with_bf16_u_no_inverse_of_a_full_chunk_exceeds_2_over_nu, Fixture) {
  ChunkMats m = chunk(p, ref, 64, 1);
  double const cap = 2.0 / (64 * kBf16U);
  BOOST_TEST(cap == 8.0);
  Eigen::MatrixXd x16 = m.X;
  for (Eigen::Index i = 0; i < x16.size(); ++i) x16.data()[i] = round_to(DType::bf16, x16.data()[i]);
  double const rounded = trt01_ratio(m.T, x16, kBf16U);
  double worst = 0;
  for (auto const& bad : wrong_inverses(m.X)) {
    double const r = trt01_ratio(m.T, bad, kBf16U);
    worst = std::max(worst, r);
    BOOST_TEST(r <= cap, "ratio " << r);
    BOOST_TEST(r > 100 * rounded, "ratio " << r << " vs " << rounded);  // it does move, just never past the cap
  }
  Eigen::MatrixXd garbage = Eigen::MatrixXd::Constant(64, 64, 1.0);
  BOOST_TEST(trt01_ratio(m.T, garbage, kBf16U) <= cap);
  BOOST_TEST(worst < kLapackThresh);
}

BOOST_AUTO_TEST_CASE(only_the_strict_lower_triangle_counts_as_dtrt01_with_unit_diagonal) {
  Eigen::MatrixXd T = Eigen::MatrixXd::Identity(3, 3);
  T(1, 0) = 0.5;
  T(2, 1) = -0.25;
  Eigen::MatrixXd X = T.triangularView<Eigen::UnitLower>().solve(Eigen::MatrixXd::Identity(3, 3));
  BOOST_TEST(trt01_ratio(T, X, 0x1p-24) < 1.0);
  Eigen::MatrixXd Y = X;
  Y(0, 0) = 0.0;    // diagonal taken as 1
  Y(0, 2) = 123.0;  // upper triangle ignored
  BOOST_TEST(trt01_ratio(T, Y, 0x1p-24) == trt01_ratio(T, X, 0x1p-24));
  BOOST_TEST(trt01_ratio(Eigen::MatrixXd(0, 0), Eigen::MatrixXd(0, 0), 0x1p-24) == 0.0);
}

// Through gdnv check's comparison: A_inv rows carry the ratio, the metrics its quantiles and u.
BOOST_FIXTURE_TEST_CASE(compare_reports_trt01_and_per_chunk_rel_rms, Fixture) {
  Tensor x16 = ref.A_inv;
  for (auto& v : x16.data) v = round_to(DType::bf16, v);
  x16.dtype = DType::bf16;
  Tensor o = ref.o;
  for (auto& v : o.data) v *= 1.001;  // relative error 1e-3 in every chunk
  o.dtype = DType::f32;
  Comparison const c = compare_outputs(p, ref, {{"A_inv", x16}, {"o", o}});
  int rows = 0;
  for (auto const& r : c.rows) {
    if (r.tensor == "A_inv") {
      ++rows;
      BOOST_TEST(r.has_trt01);
      BOOST_TEST(r.trt01 < 1.0);
    } else {
      BOOST_TEST(!r.has_trt01);
      BOOST_TEST(std::fabs(r.rel_rms - 1e-3) < 1e-6, "chunk " << r.chunk << " rel_rms " << r.rel_rms);
    }
  }
  BOOST_TEST(rows == 6);
  auto const& m = c.metrics.at("A_inv");
  BOOST_TEST(m.has_trt01);
  BOOST_TEST(m.trt01_u == kBf16U);
  BOOST_TEST(m.p50_trt01 <= m.max_trt01);
  BOOST_TEST(std::fabs(c.metrics.at("o").max_chunk_rel_rms - 1e-3) < 1e-6);
  BOOST_TEST(!c.metrics.at("o").has_trt01);
}

BOOST_AUTO_TEST_CASE(sha256_matches_the_standard_examples) {
  BOOST_TEST(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  BOOST_TEST(sha256_hex(std::string(1000000, 'a')) ==
             "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

BOOST_AUTO_TEST_SUITE_END()
