#include "harness/normwise.hpp"

#include <cmath>
#include <limits>

namespace gdnv {

double trt01_ratio(Eigen::MatrixXd const& T, Eigen::MatrixXd const& Xhat, double u) {
  Eigen::Index const n = T.rows();
  if (n == 0) return 0.0;
  Eigen::MatrixXd X = Eigen::MatrixXd::Identity(n, n);
  for (Eigen::Index i = 1; i < n; ++i)
    for (Eigen::Index j = 0; j < i; ++j) {
      double const x = Xhat(i, j);
      if (!std::isfinite(x)) return std::numeric_limits<double>::infinity();
      X(i, j) = x;
    }
  Eigen::MatrixXd const Tl = T.triangularView<Eigen::Lower>();
  Eigen::MatrixXd const resid = Tl * X - Eigen::MatrixXd::Identity(n, n);
  auto norm1 = [](Eigen::MatrixXd const& M) { return M.cwiseAbs().colwise().sum().maxCoeff(); };
  double const denom = static_cast<double>(n) * norm1(Tl) * norm1(X) * u;
  double const num = norm1(resid);
  if (num == 0.0) return 0.0;
  return denom > 0 ? num / denom : std::numeric_limits<double>::infinity();
}

double fla_rel_rms(double err2, double exact2, long long count) {
  if (count <= 0) return 0.0;
  double const n = static_cast<double>(count);
  return std::sqrt(err2 / n) / (std::sqrt(exact2 / n) + 1e-8);
}

}  // namespace gdnv
