#include "conditioning.hpp"

#include <algorithm>
#include <cmath>

#include "tril_inverse.hpp"

namespace gdnv {

std::vector<ChunkConditioning> chunk_conditioning(Problem const& p, ChunkedResult const& ref) {
  Tensor const k = effective_k(p);
  auto const chunks = p.chunks();
  std::vector<ChunkConditioning> out(chunks.size() * static_cast<size_t>(p.HV));
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t job = 0; job < static_cast<int64_t>(out.size()); ++job) {
    auto const& c = chunks[static_cast<size_t>(job / p.HV)];
    int64_t const hv = job % p.HV, m = c.rows;
    MatrixXdR A(m, m), X(m, m);
    Eigen::VectorXd beta(m), gamma(m), knorm(m);
    for (int64_t i = 0; i < m; ++i) {
      int64_t const t = c.begin + i;
      for (int64_t j = 0; j < m; ++j) {
        A(i, j) = ref.A.at({c.b, t, hv, j});
        X(i, j) = ref.A_inv.at({c.b, t, hv, j});
      }
      beta[i] = p.beta.at({c.b, t, hv});
      gamma[i] = ref.g_cumsum.at({c.b, t, hv});
      double ss = 0;
      for (int64_t d = 0; d < p.K; ++d) ss += std::pow(k.at({c.b, t, p.key_head(hv), d}), 2);
      knorm[i] = std::sqrt(ss);
    }
    MatrixXdR const T = MatrixXdR::Identity(m, m) + A;
    MatrixXdR const absX = X.cwiseAbs(), absT = T.cwiseAbs();
    ChunkConditioning r;
    r.sequence = c.sequence;
    r.head = hv;
    r.chunk = c.chunk;
    r.rows = m;
    auto norm1 = [](MatrixXdR const& M) { return M.cwiseAbs().colwise().sum().maxCoeff(); };
    auto norminf = [](MatrixXdR const& M) { return M.cwiseAbs().rowwise().sum().maxCoeff(); };
    r.kappa_1 = norm1(T) * norm1(X);
    r.kappa_inf = norminf(T) * norminf(X);
    r.skeel = norminf(absX * absT);
    r.max_abs_inv = absX.maxCoeff();
    r.norm_A_inf = norminf(A);
    // (I - |A|)^-1 = (I + (-|A|))^-1: the comparison matrix's inverse, >= |X| entrywise
    r.neumann_max = tril_inverse_forward(-A.cwiseAbs()).maxCoeff();
    for (int64_t i = 0; i < m; ++i) {
      r.max_beta_k2 = std::max(r.max_beta_k2, beta[i] * knorm[i] * knorm[i]);
      for (int64_t j = 0; j < i; ++j)
        r.structural_bound =
            std::max(r.structural_bound, beta[i] * knorm[i] * knorm[j] * std::exp(gamma[i] - gamma[j]));
    }
    out[static_cast<size_t>(job)] = r;
  }
  return out;
}

}  // namespace gdnv
