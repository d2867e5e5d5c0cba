// Ratios gdnv reports for comparability with other projects' tests, never as a gate
// (verification-method.md §0 item 5, §4): they miss faults the floor ratio and the componentwise
// bound R catch (a tf32 merge passes both).
//
// LAPACK's xTRT01 normwise residual of a triangular inverse (TESTING/LIN/dtrt01.f, TEST 1):
//     ||T Xhat - I||_1 / (n ||T||_1 ||Xhat||_1 u)
// for the unit lower triangular T = I + A of one chunk (n = its valid rows) and the computed inverse
// Xhat. As DTRT01 does for DIAG = 'U', only Xhat's strictly lower triangle is used and its diagonal is
// taken as 1 (a kernel's convention for the unused parts is not judged here). u follows LAPACK's EPS
// convention: EPS = DLAMCH('E') = the unit roundoff 2^-p (p significand bits incl. the implicit one),
// i.e. half of std::numeric_limits::epsilon: bf16 2^-8, fp16 2^-11, fp32 2^-24, fp64 2^-53, taken for
// the dtype A_inv is stored in. LAPACK counts a ratio >= 30 (THRESH) as a failure; a correct inverse
// rounded once to its stored dtype sits at O(1).
//
// FLA's relative RMS (fla/ops/utils/testing.py get_err_ratio):
//     RMS(got - exact) / (RMS(exact) + 1e-8)
// over a whole tensor (TensorMetrics::rel_rms) and, here also, per chunk (ChunkRow::rel_rms).
#pragma once

#include <Eigen/Dense>

namespace gdnv {

inline constexpr double kLapackThresh = 30.0;  // LAPACK TESTING/dtest.in THRESH, for reference only

// T: n x n unit lower triangular (only its lower triangle incl. the diagonal is read); Xhat: n x n, its
// strictly lower triangle is read, the diagonal taken as 1. +inf when Xhat has a non-finite entry
// there; 0 for n = 0.
double trt01_ratio(Eigen::MatrixXd const& T, Eigen::MatrixXd const& Xhat, double u);

// FLA's relative RMS from the sums over `count` values: sum (got - exact)^2 and sum exact^2.
double fla_rel_rms(double err2, double exact2, long long count);

}  // namespace gdnv
