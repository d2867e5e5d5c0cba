#include "tril_inverse.hpp"

#include <algorithm>

namespace gdnv {

MatrixXdR tril_inverse_forward(MatrixXdR const& A) {
  Eigen::Index const n = A.rows();
  MatrixXdR X = MatrixXdR::Identity(n, n);
  // Row i of X from (I + A) X = I: X[i, :i] = -(A[i, :i] + A[i, :i] * X[:i, :i] strictly below 1s),
  // i.e. -A[i, :i] * X[:i, :i] with X's unit diagonal included.
  for (Eigen::Index i = 1; i < n; ++i) {
    X.row(i).head(i).noalias() =
        -(A.row(i).head(i) * X.topLeftCorner(i, i).triangularView<Eigen::UnitLower>());
  }
  return X;
}

MatrixXdR tril_inverse_block_merge(MatrixXdR const& A, int block) {
  Eigen::Index const n = A.rows();
  Eigen::Index const nb = (n + block - 1) / block;
  auto start = [&](Eigen::Index a) { return a * block; };
  auto size = [&](Eigen::Index a) { return std::min<Eigen::Index>(block, n - a * block); };

  MatrixXdR X = MatrixXdR::Zero(n, n);
  for (Eigen::Index a = 0; a < nb; ++a) {
    MatrixXdR const Aaa = A.block(start(a), start(a), size(a), size(a));
    X.block(start(a), start(a), size(a), size(a)) = tril_inverse_forward(Aaa);
  }
  // Merge by distance from the diagonal: T10, T21, T32, then T20, T31, then T30.
  for (Eigen::Index d = 1; d < nb; ++d) {
    for (Eigen::Index a = d; a < nb; ++a) {
      Eigen::Index const b = a - d;
      MatrixXdR acc = MatrixXdR::Zero(size(a), size(b));
      for (Eigen::Index c = b; c < a; ++c) {
        acc.noalias() += A.block(start(a), start(c), size(a), size(c)) *
                         X.block(start(c), start(b), size(c), size(b));
      }
      X.block(start(a), start(b), size(a), size(b)).noalias() =
          -(X.block(start(a), start(a), size(a), size(a)) * acc);
    }
  }
  return X;
}

}  // namespace gdnv
