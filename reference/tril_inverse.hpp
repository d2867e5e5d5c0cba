// Inverse of a unit lower triangular block T = I + A (A strictly lower, n <= 64), two ways:
// plain forward substitution, and the 16x16-blocks-plus-merges order the kernels use.
#pragma once

#include <Eigen/Dense>

namespace gdnv {

using MatrixXdR = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Only the strictly lower part of A is read. Returns (I + A)^-1 (unit lower, exact zeros above).
MatrixXdR tril_inverse_forward(MatrixXdR const& A);
// Same, by 16x16 diagonal blocks (forward substitution) and the merges
// T_ab = -T_aa * sum_{c=b}^{a-1} A_ac T_cb in the order T10,T21,T32, then T20,T31, then T30.
MatrixXdR tril_inverse_block_merge(MatrixXdR const& A, int block = 16);

}  // namespace gdnv
