#include "recurrent.hpp"

#include <cmath>
#include <vector>

#include <Eigen/Dense>
#include <omp.h>

#include "chunked.hpp"

namespace gdnv {

RecurrentResult recurrent_forward(Problem const& p, int threads) {
  using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vec = Eigen::VectorXd;
  Tensor const q = effective_q(p);
  Tensor const k = effective_k(p);
  auto const seqs = p.sequences();
  int64_t const N = static_cast<int64_t>(seqs.size());
  int64_t const H = p.H, HV = p.HV, K = p.K, V = p.V;

  RecurrentResult r;
  r.o = Tensor({p.B, p.T, HV, V}, DType::f64);
  r.final_state = Tensor({N, HV, K, V}, DType::f64);

  int64_t const jobs = N * HV;
  int const nthreads = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
  for (int64_t job = 0; job < jobs; ++job) {
    int64_t const n = job / HV, hv = job % HV, hk = p.key_head(hv);
    Sequence const& s = seqs[static_cast<size_t>(n)];
    RowMat S = RowMat::Zero(K, V);
    if (!p.initial_state.empty()) {
      S = Eigen::Map<RowMat const>(p.initial_state.ptr() + p.initial_state.offset({n, hv, 0, 0}), K, V);
    }
    for (int64_t t = s.begin; t < s.begin + s.length; ++t) {
      Eigen::Map<Vec const> kt(k.ptr() + k.offset({s.b, t, hk, 0}), K);
      Eigen::Map<Vec const> qt(q.ptr() + q.offset({s.b, t, hk, 0}), K);
      Eigen::Map<Vec const> vt(p.v.ptr() + p.v.offset({s.b, t, hv, 0}), V);
      double const gt = p.g.at({s.b, t, hv});
      double const bt = p.beta.at({s.b, t, hv});
      S *= std::exp(gt);                                         // 1. decay first
      Vec const delta = bt * (vt - S.transpose() * kt);          // 2. delta against the decayed state
      S.noalias() += kt * delta.transpose();                     // 3. rank-1 write
      Eigen::Map<Vec> ot(r.o.ptr() + r.o.offset({s.b, t, hv, 0}), V);
      ot.noalias() = p.scale * (S.transpose() * qt);             // 4. read after write
    }
    Eigen::Map<RowMat>(r.final_state.ptr() + r.final_state.offset({n, hv, 0, 0}), K, V) = S;
  }
  (void)H;
  return r;
}

}  // namespace gdnv
