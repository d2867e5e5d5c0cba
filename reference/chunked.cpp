#include "chunked.hpp"

#include <cmath>
#include <stdexcept>

#include <Eigen/Dense>
#include <omp.h>

#include "tril_inverse.hpp"

namespace gdnv {
namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXd;
// n rows of one head of a [B,T,heads,D] tensor: consecutive tokens are heads*D apart.
using RowsView = Eigen::Map<RowMat const, 0, Eigen::OuterStride<>>;
using RowsOut = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

RowsView rows_of(Tensor const& x, int64_t b, int64_t t0, int64_t head, int64_t n) {
  int64_t const heads = x.dim(2), d = x.dim(3);
  return RowsView(x.ptr() + x.offset({b, t0, head, 0}), n, d, Eigen::OuterStride<>(heads * d));
}

RowsOut rows_of(Tensor& x, int64_t b, int64_t t0, int64_t head, int64_t n) {
  int64_t const heads = x.dim(2), d = x.dim(3);
  return RowsOut(x.ptr() + x.offset({b, t0, head, 0}), n, d, Eigen::OuterStride<>(heads * d));
}

Tensor l2_normalized(Tensor const& x) {
  Tensor out = x;
  out.dtype = DType::f64;
  int64_t const d = x.shape.back();
  for (int64_t row = 0; row < x.numel() / d; ++row) {
    double* v = out.ptr() + row * d;
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += v[i] * v[i];
    double const inv = 1.0 / std::sqrt(ss + 1e-6);
    for (int64_t i = 0; i < d; ++i) v[i] *= inv;
  }
  return out;
}

// Injected tensors must have the reference's shapes: a mismatch is a caller's bug, not a result.
void check_shape(Tensor const* t, Tensor const& like, char const* name) {
  if (t && t->shape != like.shape)
    throw std::invalid_argument(std::string("injected ") + name + " has shape " + shape_string(t->shape) +
                                ", expected " + shape_string(like.shape));
}

}  // namespace

Tensor const*& StageInjection::slot(std::string const& name) {
  if (name == "g_cumsum") return g_cumsum;
  if (name == "A") return A;
  if (name == "A_inv") return A_inv;
  if (name == "w") return w;
  if (name == "u") return u;
  if (name == "h") return h;
  if (name == "v_new") return v_new;
  if (name == "final_state") return final_state;
  if (name == "o") return o;
  throw std::out_of_range("no injectable intermediate named " + name);
}

Tensor effective_q(Problem const& p) { return p.qk_l2norm ? l2_normalized(p.q) : p.q; }
Tensor effective_k(Problem const& p) { return p.qk_l2norm ? l2_normalized(p.k) : p.k; }

ChunkedResult chunked_forward(Problem const& p, ChunkedOptions const& opt) {
  Tensor const q = effective_q(p);
  Tensor const k = effective_k(p);
  auto const seqs = p.sequences();
  int64_t const N = static_cast<int64_t>(seqs.size());
  int64_t const B = p.B, T = p.T, HV = p.HV, K = p.K, V = p.V;
  int64_t const NT = p.num_chunks_per_row();

  ChunkedResult r;
  r.g_cumsum = Tensor({B, T, HV}, DType::f64);
  r.A = Tensor({B, T, HV, kChunk}, DType::f64);
  r.A_inv = Tensor({B, T, HV, kChunk}, DType::f64);
  r.w = Tensor({B, T, HV, K}, DType::f64);
  r.u = Tensor({B, T, HV, V}, DType::f64);
  r.v_new = Tensor({B, T, HV, V}, DType::f64);
  r.o = Tensor({B, T, HV, V}, DType::f64);
  r.h = Tensor({B, NT, HV, K, V}, DType::f64);
  r.final_state = Tensor({N, HV, K, V}, DType::f64);
  StageInjection const no_injection;
  StageInjection const& inj = opt.inject ? *opt.inject : no_injection;
  check_shape(inj.g_cumsum, r.g_cumsum, "g_cumsum");
  check_shape(inj.A, r.A, "A");
  check_shape(inj.A_inv, r.A_inv, "A_inv");
  check_shape(inj.w, r.w, "w");
  check_shape(inj.u, r.u, "u");
  check_shape(inj.v_new, r.v_new, "v_new");
  check_shape(inj.o, r.o, "o");
  check_shape(inj.h, r.h, "h");
  check_shape(inj.final_state, r.final_state, "final_state");

  Eigen::setNbThreads(1);  // parallelism is over (sequence, value head), not inside products
  int64_t const jobs = N * HV;
  int const nthreads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
  for (int64_t job = 0; job < jobs; ++job) {
    int64_t const n = job / HV, hv = job % HV, hk = p.key_head(hv);
    Sequence const& s = seqs[static_cast<size_t>(n)];
    RowMat S = RowMat::Zero(K, V);  // state before the current chunk
    if (!p.initial_state.empty()) {
      S = Eigen::Map<RowMat const>(p.initial_state.ptr() + p.initial_state.offset({n, hv, 0, 0}), K, V);
    }
    for (int64_t c = 0; c < s.num_chunks(); ++c) {
      int64_t const t0 = s.begin + c * kChunk;
      int64_t const m = std::min<int64_t>(kChunk, s.length - c * kChunk);  // valid rows
      auto const Q = rows_of(q, s.b, t0, hk, m);
      auto const Kc = rows_of(k, s.b, t0, hk, m);
      auto const Vc = rows_of(p.v, s.b, t0, hv, m);
      Vec beta(m), gamma(m);
      double acc = 0.0;
      for (int64_t i = 0; i < m; ++i) {
        beta[i] = p.beta.at({s.b, t0 + i, hv});
        acc += p.g.at({s.b, t0 + i, hv});  // chunk-local cumsum: reset at every chunk start
        gamma[i] = inj.g_cumsum ? inj.g_cumsum->at({s.b, t0 + i, hv}) : acc;
        r.g_cumsum.at({s.b, t0 + i, hv}) = acc;
      }

      // A[i,j] = beta_i e^{gamma_i - gamma_j} k_i.k_j for i > j. The decay is formed from the
      // difference (never e^{gamma_i} e^{-gamma_j}, which overflows for strong decay).
      RowMat const gram = Kc * Kc.transpose();
      RowMat A = RowMat::Zero(m, m);
      for (int64_t i = 1; i < m; ++i)
        for (int64_t j = 0; j < i; ++j) A(i, j) = beta[i] * std::exp(gamma[i] - gamma[j]) * gram(i, j);
      bool diagonal = false;  // an injected A may carry a diagonal (a faulty kernel's): invert I + A as given
      if (inj.A) {
        A = rows_of(*inj.A, s.b, t0, hv, m).leftCols(m).triangularView<Eigen::Lower>();
        diagonal = A.diagonal().any();
      }
      RowMat Tinv;
      if (diagonal)
        Tinv = (RowMat::Identity(m, m) + A).triangularView<Eigen::Lower>().solve(RowMat::Identity(m, m));
      else
        Tinv = opt.inverse == InverseMethod::block_merge ? tril_inverse_block_merge(A) : tril_inverse_forward(A);
      if (inj.A_inv) Tinv = rows_of(*inj.A_inv, s.b, t0, hv, m).leftCols(m);

      Vec const eg = gamma.array().exp();
      RowMat U = Tinv * (beta.asDiagonal() * Vc);
      RowMat W = Tinv * ((beta.array() * eg.array()).matrix().asDiagonal() * Kc);
      if (inj.u) U = rows_of(*inj.u, s.b, t0, hv, m);
      if (inj.w) W = rows_of(*inj.w, s.b, t0, hv, m);
      RowMat const Delta = U - W * S;  // row r is the recurrence's delta_r
      // What the output reads: the injected snapshot and delta, or the recurrence's own.
      RowMat const Delta_o = inj.v_new ? RowMat(rows_of(*inj.v_new, s.b, t0, hv, m)) : Delta;
      RowMat const S_o = inj.h ? RowMat(Eigen::Map<RowMat const>(
                                     inj.h->ptr() + inj.h->offset({s.b, s.chunk_base + c, hv, 0, 0}), K, V))
                               : S;

      // Intra-chunk scores: (Q K^T) with the decay e^{gamma_r - gamma_j}, lower incl. diagonal.
      RowMat P = Q * Kc.transpose();
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j) P(i, j) = j <= i ? P(i, j) * std::exp(gamma[i] - gamma[j]) : 0.0;
      RowMat O = p.scale * (eg.asDiagonal() * (Q * S_o) + P * Delta_o);
      if (inj.o) O = rows_of(*inj.o, s.b, t0, hv, m);

      // Store this chunk's intermediates (h holds the start-of-chunk state).
      Eigen::Map<RowMat>(r.h.ptr() + r.h.offset({s.b, s.chunk_base + c, hv, 0, 0}), K, V) = S_o;
      for (int64_t i = 0; i < m; ++i) {
        double* arow = r.A.ptr() + r.A.offset({s.b, t0 + i, hv, 0});
        double* xrow = r.A_inv.ptr() + r.A_inv.offset({s.b, t0 + i, hv, 0});
        for (int64_t j = 0; j < m; ++j) {
          arow[j] = A(i, j);
          xrow[j] = Tinv(i, j);
        }
      }
      rows_of(r.w, s.b, t0, hv, m) = W;
      rows_of(r.u, s.b, t0, hv, m) = U;
      rows_of(r.v_new, s.b, t0, hv, m) = Delta_o;
      rows_of(r.o, s.b, t0, hv, m) = O;

      // Next state: S <- e^{gamma_last} S + K^T diag(e^{gamma_last - gamma}) Delta.
      double const gl = gamma[m - 1];
      Vec const tail_decay = (gl - gamma.array()).exp();
      S *= std::exp(gl);
      S.noalias() += Kc.transpose() * (tail_decay.asDiagonal() * Delta);
    }
    if (inj.final_state)
      S = Eigen::Map<RowMat const>(inj.final_state->ptr() + inj.final_state->offset({n, hv, 0, 0}), K, V);
    Eigen::Map<RowMat>(r.final_state.ptr() + r.final_state.offset({n, hv, 0, 0}), K, V) = S;
  }
  return r;
}

}  // namespace gdnv
