// The MPFR building blocks of the oracle (reference/oracle.hpp): a dense row-major matrix of
// mpreal at one fixed precision, products and the unit lower triangular inverse. Kept in its own
// header so only the oracle and its tests pull in mpreal.h.
//
// Every entry carries its own precision (set at construction), so results never depend on MPFR's
// default precision, which is per thread. Inner loops call mpfr_fma on the entries directly:
// mpreal's operator expressions allocate a temporary per operation and are about 2x slower.
#pragma once

#include <cstdint>
#include <vector>

#include <mpreal.h>

#include "tril_inverse.hpp"

namespace gdnv::mp {

using mpfr::mpreal;

struct Mat {
  int64_t rows = 0, cols = 0;
  mpfr_prec_t prec = 256;
  std::vector<mpreal> a;

  Mat() = default;
  Mat(int64_t r, int64_t c, mpfr_prec_t p) : rows(r), cols(c), prec(p), a(static_cast<size_t>(r * c), mpreal(0, p)) {}
  mpreal& operator()(int64_t i, int64_t j) { return a[static_cast<size_t>(i * cols + j)]; }
  mpreal const& operator()(int64_t i, int64_t j) const { return a[static_cast<size_t>(i * cols + j)]; }
};

// Exact: every double is representable at >= 53 bits.
inline Mat from_double(MatrixXdR const& x, mpfr_prec_t prec) {
  Mat m(x.rows(), x.cols(), prec);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) mpfr_set_d(m(i, j).mpfr_ptr(), x(i, j), MPFR_RNDN);
  return m;
}

// Rounded to the nearest double (values below double's range become subnormal or 0).
inline MatrixXdR to_double(Mat const& m) {
  MatrixXdR x(m.rows, m.cols);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) x(i, j) = mpfr_get_d(m(i, j).mpfr_srcptr(), MPFR_RNDN);
  return x;
}

// acc += x * y with one rounding.
inline void fma_into(mpreal& acc, mpreal const& x, mpreal const& y) {
  mpfr_fma(acc.mpfr_ptr(), x.mpfr_srcptr(), y.mpfr_srcptr(), acc.mpfr_srcptr(), MPFR_RNDN);
}

// A * B. With `lower` set, A is taken as lower triangular (its entries above the diagonal are
// not read), which halves the work of the chunk products X * (...).
inline Mat matmul(Mat const& A, Mat const& B, bool lower = false) {
  Mat C(A.rows, B.cols, std::max(A.prec, B.prec));
  for (int64_t i = 0; i < A.rows; ++i) {
    int64_t const kend = lower ? std::min(i + 1, A.cols) : A.cols;
    for (int64_t k = 0; k < kend; ++k) {
      mpreal const& aik = A(i, k);
      if (mpfr_zero_p(aik.mpfr_srcptr())) continue;
      for (int64_t j = 0; j < B.cols; ++j) fma_into(C(i, j), aik, B(k, j));
    }
  }
  return C;
}

// A^T * B.
inline Mat matmul_tn(Mat const& A, Mat const& B) {
  Mat C(A.cols, B.cols, std::max(A.prec, B.prec));
  for (int64_t k = 0; k < A.rows; ++k)
    for (int64_t i = 0; i < A.cols; ++i) {
      mpreal const& aki = A(k, i);
      if (mpfr_zero_p(aki.mpfr_srcptr())) continue;
      for (int64_t j = 0; j < B.cols; ++j) fma_into(C(i, j), aki, B(k, j));
    }
  return C;
}

// (I + A)^-1 for the strictly lower part of the square A, by forward substitution row by row:
// X(i,j) = -sum_{k=j}^{i-1} A(i,k) X(k,j) for i > j, X(i,i) = 1, exact zeros above.
inline Mat tril_inverse(Mat const& A) {
  int64_t const n = A.rows;
  Mat X(n, n, A.prec);
  for (int64_t i = 0; i < n; ++i) {
    mpfr_set_ui(X(i, i).mpfr_ptr(), 1, MPFR_RNDN);
    for (int64_t k = 0; k < i; ++k) {
      mpreal const& aik = A(i, k);
      if (mpfr_zero_p(aik.mpfr_srcptr())) continue;
      for (int64_t j = 0; j <= k; ++j) fma_into(X(i, j), aik, X(k, j));  // accumulates +A X, negated below
    }
    for (int64_t j = 0; j < i; ++j) mpfr_neg(X(i, j).mpfr_ptr(), X(i, j).mpfr_srcptr(), MPFR_RNDN);
  }
  return X;
}

}  // namespace gdnv::mp
