#include "stage_bounds.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <omp.h>

#include "tril_inverse.hpp"

namespace gdnv {
namespace {

double const kInf = std::numeric_limits<double>::infinity();
double const kU64 = 0x1p-53;

double gamma_det(double m, double u) {
  double const mu = m * u;
  return mu < 1.0 ? mu / (1.0 - mu) : kInf;
}
double gamma_prob(double m, double u) { return std::sqrt(m) * u; }

// Rows [t0, t0 + n) of one head of a [B,T,heads,D] tensor.
MatrixXdR rows_of(Tensor const& x, int64_t b, int64_t t0, int64_t head, int64_t n, int64_t cols = -1) {
  int64_t const d = x.dim(3);
  if (cols < 0) cols = d;
  MatrixXdR m(n, cols);
  for (int64_t r = 0; r < n; ++r) {
    double const* src = x.ptr() + x.offset({b, t0 + r, head, 0});
    for (int64_t c = 0; c < cols; ++c) m(r, c) = src[c];
  }
  return m;
}

void store_rows(Tensor& x, int64_t b, int64_t t0, int64_t head, MatrixXdR const& m) {
  for (int64_t r = 0; r < m.rows(); ++r) {
    double* dst = x.ptr() + x.offset({b, t0 + r, head, 0});
    for (int64_t c = 0; c < m.cols(); ++c) dst[c] = m(r, c);
  }
}

// Entrywise min(E_ij, nu_j).
MatrixXdR cap_columns(MatrixXdR const& E, Eigen::RowVectorXd const& nu) {
  MatrixXdR out = E;
  for (Eigen::Index i = 0; i < out.rows(); ++i) out.row(i) = out.row(i).cwiseMin(nu);
  return out;
}

MatrixXdR state_of(Tensor const& x, std::initializer_list<int64_t> idx, int64_t K, int64_t V) {
  return Eigen::Map<MatrixXdR const>(x.ptr() + x.offset(idx), K, V);
}

void store_state(Tensor& x, std::initializer_list<int64_t> idx, MatrixXdR const& m) {
  Eigen::Map<MatrixXdR>(x.ptr() + x.offset(idx), m.rows(), m.cols()) = m;
}

// The extra rounding of a value held in precision `held` when it is stored in (or read as) `to`: the
// unit roundoff of `to` where it is coarser than `held`, else 0 (the value is representable).
double coarser(double u_to, double u_held) { return u_to > u_held ? u_to : 0.0; }

}  // namespace

std::vector<std::string> const& bounded_tensors() {
  static std::vector<std::string> const names = {"g_cumsum", "A", "A_inv", "w", "u", "v_new", "h", "o", "final_state"};
  return names;
}

StageBounds stage_bounds(Problem const& p, ChunkedResult const& ref, DeclaredArithmetic const& a, int threads) {
  return stage_bounds(p, ref, inverse_bounds(p, ref, a, threads), threads);
}

StageBounds stage_bounds(Problem const& p, ChunkedResult const& ref, InverseBounds const& inv, int threads) {
  DeclaredArithmetic const& a = inv.arithmetic;
  StageBounds out;
  out.arithmetic = a;
  out.margin_ref = inv.margin_ref;
  out.det["A"] = inv.A_det;
  out.prob["A"] = inv.A_prob;
  out.det["A_inv"] = inv.det;
  out.prob["A_inv"] = inv.prob;
  out.det["g_cumsum"] = Tensor(ref.g_cumsum.shape, DType::f64);
  out.prob["g_cumsum"] = Tensor(ref.g_cumsum.shape, DType::f64);
  for (auto const* name : {"w", "u", "v_new", "h", "o", "final_state"}) {
    Tensor const& shape_of = name == std::string("final_state") ? ref.final_state
                             : name == std::string("h")         ? ref.h
                             : name == std::string("w")         ? ref.w
                             : name == std::string("u")         ? ref.u
                             : name == std::string("v_new")     ? ref.v_new
                                                                : ref.o;
    out.det[name] = Tensor(shape_of.shape, DType::f64);
    out.prob[name] = Tensor(shape_of.shape, DType::f64);
  }

  Tensor const k = effective_k(p);
  Tensor const q = effective_q(p);
  DType const kd = p.k.dtype, vd = p.v.dtype, qd = p.q.dtype;
  int64_t const d = p.K, V = p.V;
  double const u_acc = unit_roundoff(a.accumulate, kd);
  double const lam = smallest_normal(a.accumulate, kd);
  double const u_in_k = unit_roundoff(a.input, kd), u_in_q = unit_roundoff(a.input, qd);
  bool const rounds_k = p.qk_l2norm || u_in_k > unit_roundoff(kd);
  bool const rounds_q = p.qk_l2norm || u_in_q > unit_roundoff(qd);
  bool const g_cast = p.g.dtype == DType::f64 || unit_roundoff(p.g.dtype) < u_acc;
  bool const beta_cast = p.beta.dtype == DType::f64 || unit_roundoff(p.beta.dtype) < u_acc;
  // The state's own precision (at least the accumulation's: it is computed there).
  double const u_state = std::max(unit_roundoff(a.state, kd), u_acc);
  double const u_state_round = coarser(unit_roundoff(a.state, kd), u_acc);
  double const lam_state = smallest_normal(a.state, kd);
  // Roundings of the stages, each 0 where the precision is not coarser than what it rounds.
  double const u_Xop = coarser(unit_roundoff(a.A_inv_operand, kd), unit_roundoff(a.A_inv, kd));
  double const u_opk = coarser(unit_roundoff(a.operands, kd), u_acc);  // beta e^g k and the gated delta
  double const u_opv = coarser(unit_roundoff(a.v_operand, vd), u_acc);  // beta v
  double const u_w = coarser(unit_roundoff(a.w, kd), u_acc), u_u = coarser(unit_roundoff(a.u, vd), u_acc);
  double const u_vn = coarser(unit_roundoff(a.v_new, vd), u_acc);
  double const u_h = coarser(unit_roundoff(a.h, kd), u_state);
  double const u_so = coarser(unit_roundoff(a.state_operand, kd), u_state);
  double const u_sc = coarser(unit_roundoff(a.scores, vd), u_acc);
  double const u_o = coarser(unit_roundoff(a.o, vd), u_acc);
  double const u_oq = coarser(unit_roundoff(qd), std::max(u_o, u_acc));  // then q's dtype, if coarser still
  auto lam_of = [&](Precision pr, DType t) { return smallest_normal(pr, t); };
  double const tw = u_w * lam_of(a.w, kd), tu = u_u * lam_of(a.u, vd), tvn = u_vn * lam_of(a.v_new, vd);
  double const th = u_h * lam_of(a.h, kd), tso = u_so * lam_of(a.state_operand, kd);
  double const tsc = u_sc * lam_of(a.scores, vd), top = u_opk * lam_of(a.operands, kd);
  double const to = u_o * lam_of(a.o, vd) + u_oq * smallest_normal(Precision::input, qd);
  double const u_init =
      p.initial_state.empty() ? 0.0 : coarser(u_state, unit_roundoff(p.initial_state.dtype));

  auto const seqs = p.sequences();
  int64_t const N = static_cast<int64_t>(seqs.size());
  int64_t const jobs = N * p.HV;
  int const nthreads = threads > 0 ? threads : omp_get_max_threads();
  Eigen::setNbThreads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
  for (int64_t job = 0; job < jobs; ++job) {
    int64_t const n = job / p.HV, hv = job % p.HV, hk = p.key_head(hv);
    Sequence const& s = seqs[static_cast<size_t>(n)];
    // The state error entering a chunk, two valid bounds on the same dS: componentwise (ES) and the 2-norm
    // of each column (nu). The carried part goes through the exact transition M, whose 2-norm is at most
    // e^{gamma_last} prod_r max(1, |1 - beta_r ||k_r||^2|) (M = e^{gamma_last} prod (I - beta_r k_r k_r^T)):
    // componentwise |M| can exceed 1 per row (no decay: ~3 per chunk), the norm route cannot grow.
    MatrixXdR ES[2];
    Eigen::RowVectorXd nu[2];
    {
      MatrixXdR const S0 = p.initial_state.empty() ? MatrixXdR::Zero(d, V) : state_of(p.initial_state, {n, hv, 0, 0}, d, V);
      ES[0] = ES[1] = (u_init * S0.cwiseAbs()).array() + u_init * lam_state;
      nu[0] = nu[1] = ES[0].colwise().norm();
    }
    for (int64_t c = 0; c < s.num_chunks(); ++c) {
      int64_t const t0 = s.begin + c * kChunk;
      int64_t const m = std::min<int64_t>(kChunk, s.length - c * kChunk);
      double const dm = static_cast<double>(m), dd = static_cast<double>(d);
      MatrixXdR const X = rows_of(ref.A_inv, s.b, t0, hv, m, m);
      MatrixXdR const Kc = rows_of(k, s.b, t0, hk, m), Qc = rows_of(q, s.b, t0, hk, m);
      MatrixXdR const Vc = rows_of(p.v, s.b, t0, hv, m);
      MatrixXdR const W = rows_of(ref.w, s.b, t0, hv, m), U = rows_of(ref.u, s.b, t0, hv, m);
      MatrixXdR const Dl = rows_of(ref.v_new, s.b, t0, hv, m), O = rows_of(ref.o, s.b, t0, hv, m);
      MatrixXdR const S = state_of(ref.h, {s.b, s.chunk_base + c, hv, 0, 0}, d, V);
      MatrixXdR const S_next = c + 1 < s.num_chunks() ? state_of(ref.h, {s.b, s.chunk_base + c + 1, hv, 0, 0}, d, V)
                                                      : state_of(ref.final_state, {n, hv, 0, 0}, d, V);
      Eigen::VectorXd beta(m), gamma(m), gabs(m);
      double run = 0;
      for (int64_t i = 0; i < m; ++i) {
        beta[i] = p.beta.at({s.b, t0 + i, hv});
        gamma[i] = ref.g_cumsum.at({s.b, t0 + i, hv});
        run += std::fabs(p.g.at({s.b, t0 + i, hv}));
        gabs[i] = run;
      }
      int64_t const l = m - 1;
      double const egl = std::exp(gamma[l]);
      Eigen::VectorXd const eg = gamma.array().exp();
      Eigen::VectorXd const Dv = (gamma[l] - gamma.array()).exp();  // e^{gamma_last - gamma_r}

      // Exact magnitudes (mode independent).
      MatrixXdR const absX = X.cwiseAbs(), absK = Kc.cwiseAbs(), absQ = Qc.cwiseAbs(), absS = S.cwiseAbs();
      MatrixXdR const absW = W.cwiseAbs(), absU = U.cwiseAbs(), absDl = Dl.cwiseAbs(), absO = O.cwiseAbs();
      MatrixXdR const absBk = ((beta.array() * eg.array()).matrix().asDiagonal() * Kc).cwiseAbs();
      MatrixXdR const absBv = (beta.asDiagonal() * Vc).cwiseAbs();
      MatrixXdR const KtDW = Kc.transpose() * (Dv.asDiagonal() * W);  // d x d
      MatrixXdR Mtr = -KtDW;                                           // the chunk's exact state transition
      Mtr.diagonal().array() += egl;
      MatrixXdR const absMtr = Mtr.cwiseAbs(), absKtDW = KtDW.cwiseAbs();
      double norm_M = egl;
      for (int64_t r = 0; r < m; ++r) norm_M *= std::max(1.0, std::fabs(1.0 - beta[r] * Kc.row(r).squaredNorm()));
      Eigen::VectorXd const rownorm_W = W.rowwise().norm(), rownorm_Q = Qc.rowwise().norm();
      MatrixXdR const absWS = absW * absS;            // m x V
      MatrixXdR const QS = Qc * S;                     // m x V
      MatrixXdR const absQS = QS.cwiseAbs();
      MatrixXdR const absQabsS = absQ * absS;
      MatrixXdR const absQabsK = absQ * absK.transpose();  // m x m
      MatrixXdR Pm = Qc * Kc.transpose();                  // scores (Q K^T) . Gamma, lower incl. the diagonal
      MatrixXdR G = Pm;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j) Pm(i, j) = j <= i ? Pm(i, j) * std::exp(gamma[i] - gamma[j]) : 0.0;
      MatrixXdR const absP = Pm.cwiseAbs(), absG = G.cwiseAbs();
      MatrixXdR const absPD = (Pm * Dl).cwiseAbs();
      MatrixXdR const absInter = eg.asDiagonal() * absQS;

      for (int mode = 0; mode < 2; ++mode) {
        auto gam = [&](double nn, double u) { return mode == 0 ? gamma_det(nn, u) : gamma_prob(nn, u); };
        auto cn = [&](double nn) { return gam(nn, u_acc) + gamma_det(nn, kU64); };
        auto rexp = [&](double eta) { return (1.0 + gam(2.0, u_acc)) * std::exp(eta) - 1.0; };
        auto tiny = [&](double nn, MatrixXdR const& MY, MatrixXdR const& MZ) {
          double const my = MY.size() ? MY.maxCoeff() : 0.0, mz = MZ.size() ? MZ.maxCoeff() : 0.0;
          return (nn + 4.0) * lam * (1.0 + nn * my * mz);
        };
        // |Yhat Zhat - Y Z| for an n-term product accumulated in u_acc.
        auto product = [&](MatrixXdR const& EY, MatrixXdR const& absY, MatrixXdR const& EZ, MatrixXdR const& absZ,
                           double nn) {
          double const cc = cn(nn);
          MatrixXdR const MZ = absZ + EZ;
          MatrixXdR E = (1.0 + cc) * (EY * MZ);
          E.noalias() += absY * (EZ + cc * MZ);
          E.array() += tiny(nn, absY + EY, MZ);
          return E;
        };
        auto round_to = [](MatrixXdR E, MatrixXdR const& absY, double u, double tiny_abs) {
          if (u > 0) E = E + u * (absY + E), E.array() += tiny_abs;
          return E;
        };
        Eigen::VectorXd e(m);  // the computed gate cumsum's error at row i (bounds.hpp)
        for (int64_t i = 0; i < m; ++i) e[i] = gam(static_cast<double>(i + 1) * (g_cast ? 2.0 : 1.0), u_acc) * gabs[i];
        double const eps_k = rounds_k ? u_in_k + (p.qk_l2norm ? gam(dd + 3.0, u_acc) : 0.0) : 0.0;
        double const eps_q = rounds_q ? u_in_q + (p.qk_l2norm ? gam(dd + 3.0, u_acc) : 0.0) : 0.0;
        double const bc = beta_cast ? u_acc : 0.0;

        // w, u: A_inv as the products read it times the beta(-gate)-scaled operands.
        MatrixXdR EX(m, m);
        {
          Tensor const& bt = mode == 0 ? inv.det : inv.prob;
          MatrixXdR const B = rows_of(bt, s.b, t0, hv, m, m);
          EX = B + u_Xop * (absX + B);
          if (u_Xop > 0) EX.array() += u_Xop * smallest_normal(a.A_inv_operand, kd);
        }
        MatrixXdR EBk(m, d), EBv(m, V);
        for (int64_t r = 0; r < m; ++r) {
          double const rho = rexp(e[r] + 3.0 * u_acc * std::fabs(gamma[r]));
          double const fk = (1.0 + eps_k) * (1.0 + rho) * (1.0 + u_acc) * (1.0 + u_acc) * (1.0 + bc) * (1.0 + u_opk) - 1.0;
          double const fv = (1.0 + u_acc) * (1.0 + bc) * (1.0 + u_opv) - 1.0;
          EBk.row(r) = fk * absBk.row(r);
          EBv.row(r) = fv * absBv.row(r);
        }
        EBk.array() += 4.0 * lam + top;
        EBv.array() += 4.0 * lam + u_opv * smallest_normal(a.v_operand, vd);
        MatrixXdR const EW = round_to(product(EX, absX, EBk, absBk, dm), absW, u_w, tw);
        MatrixXdR const EU = round_to(product(EX, absX, EBv, absBv, dm), absU, u_u, tu);

        // h and v_new: the state entering the chunk, the W*S product.
        // every entry of column j of dS is at most nu_j
        MatrixXdR const ESc = cap_columns(ES[mode], nu[mode]);
        // Y dS for an operand Y (rows y_r): at most |Y| E_S entrywise and ||y_r||_2 nu_j
        auto carried = [&](MatrixXdR const& absY, Eigen::VectorXd const& rownorm) {
          MatrixXdR const a = absY * ESc;
          return MatrixXdR(a.cwiseMin(rownorm * nu[mode]));
        };
        MatrixXdR const Eh = round_to(ESc, absS, u_h, th);
        MatrixXdR const r_op = u_so > 0 ? MatrixXdR((u_so * (absS + ESc)).array() + tso) : MatrixXdR::Zero(d, V);
        MatrixXdR const ESop = ESc + r_op;
        MatrixXdR const MSop = absS + ESop;
        MatrixXdR const P1 = EW * MSop;                                  // E_w M_Sop
        MatrixXdR const P2 = carried(absW, rownorm_W) + absW * r_op;     // |W dS| + |W| |r_op|
        double const cK = cn(dd + 1.0);
        MatrixXdR const arith = cK * ((absU + EU) + P1 + P2 + absWS);
        double const tK = tiny(dd + 1.0, absW + EW, MSop);
        MatrixXdR etap = EU + P1 + arith;  // Delta's error other than W (dS + r_op)
        etap.array() += tK;
        MatrixXdR const EDelta = etap + P2;
        MatrixXdR const Evn = round_to(EDelta, absDl, u_vn, tvn);

        // The next state: the carried error through the exact transition, plus the chunk's own.
        MatrixXdR const MDelta = absDl + EDelta;
        MatrixXdR xi(m, V), MDp(m, V), Deta(m, V);
        for (int64_t r = 0; r < m; ++r) {
          double const rho = rexp(e[l] + e[r] + 3.0 * u_acc * std::fabs(gamma[l] - gamma[r]));
          double const f = (1.0 + rho) * (1.0 + u_acc) * (1.0 + u_opk) - 1.0;
          xi.row(r) = Dv[r] * f * MDelta.row(r);
          xi.row(r).array() += top + lam;
          MDp.row(r) = Dv[r] * MDelta.row(r) + xi.row(r);
          Deta.row(r) = Dv[r] * etap.row(r);
        }
        MatrixXdR const Y = absK.transpose() * MDp;  // |K|^T M_D'
        double const rho_l = rexp(e[l] + 3.0 * u_acc * std::fabs(gamma[l]));
        double const rho_lp = (1.0 + rho_l) * (1.0 + u_acc) - 1.0;
        double const cm = cn(dm + 1.0);
        MatrixXdR L = absKtDW * r_op;  // the chunk's own errors (all but M dS)
        L.noalias() += absK.transpose() * (Deta + xi);
        L += eps_k * Y + egl * rho_lp * (absS + ESc) + cm * (egl * (1.0 + rho_lp) * (absS + ESc) + (1.0 + eps_k) * Y);
        L.array() += tiny(dm + 1.0, (1.0 + eps_k) * absK.transpose(), MDp) + lam * (1.0 + egl);
        MatrixXdR const MdS = absMtr * ESc;
        if (u_state_round > 0) {  // a declared state coarser than the accumulation: rounded after the update
          L.array() += u_state_round * (S_next.cwiseAbs() + MdS + L).array() + u_state_round * lam_state;
        }
        MatrixXdR ESn = MdS + L;
        Eigen::RowVectorXd const nu_next =
            norm_M * nu[mode].cwiseMin(ESc.colwise().norm()) + Eigen::RowVectorXd(L.colwise().norm());

        // o: the inter-chunk part from the snapshot h, the intra-chunk part from the scores and v_new.
        double const cd = cn(dd);
        MatrixXdR const QEh = carried(absQ, rownorm_Q) + absQ * (Eh - ESc);
        MatrixXdR EQH = QEh + ((1.0 + cd) * eps_q + cd) * (absQabsS + QEh);
        EQH.array() += tiny(dd, (1.0 + eps_q) * absQ, absS + Eh);
        MatrixXdR Einter(m, V);
        for (int64_t r = 0; r < m; ++r) {
          double const rho = rexp(e[r] + 3.0 * u_acc * std::fabs(gamma[r]));
          Einter.row(r) = eg[r] * (EQH.row(r) + ((1.0 + rho) * (1.0 + u_acc) - 1.0) * (absQS.row(r) + EQH.row(r)));
        }
        Einter.array() += lam;
        double const fG = (1.0 + cd) * eps_q * (1.0 + eps_k) + eps_k + cd * (1.0 + eps_k);
        MatrixXdR EP = MatrixXdR::Zero(m, m);
        double const tG = tiny(dd, (1.0 + eps_q) * absQ, (1.0 + eps_k) * absK);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j <= i; ++j) {
            double const EG = fG * absQabsK(i, j) + tG;
            double const rho = rexp(e[i] + e[j] + 3.0 * u_acc * std::fabs(gamma[i] - gamma[j]));
            double const gf = std::exp(gamma[i] - gamma[j]);
            double E = gf * (EG + ((1.0 + rho) * (1.0 + u_acc) - 1.0) * (absG(i, j) + EG)) + lam;
            if (u_sc > 0) E += u_sc * (absP(i, j) + E) + tsc;
            EP(i, j) = E;
          }
        MatrixXdR const EPV = product(EP, absP, Evn, absDl, dm);
        double const f3 = (1.0 + u_acc) * (1.0 + u_acc) * (1.0 + u_acc) - 1.0;
        MatrixXdR Eo = p.scale * (Einter + EPV + f3 * (absInter + Einter + absPD + EPV));
        Eo = round_to(std::move(Eo), absO, u_o, 0.0);
        Eo = round_to(std::move(Eo), absO, u_oq, 0.0);
        Eo.array() += to + 4.0 * lam;

        auto& dst = mode == 0 ? out.det : out.prob;
        for (int64_t i = 0; i < m; ++i) dst["g_cumsum"].at({s.b, t0 + i, hv}) = e[i] + lam;
        store_rows(dst["w"], s.b, t0, hv, EW);
        store_rows(dst["u"], s.b, t0, hv, EU);
        store_rows(dst["v_new"], s.b, t0, hv, Evn);
        store_rows(dst["o"], s.b, t0, hv, Eo);
        store_state(dst["h"], {s.b, s.chunk_base + c, hv, 0, 0}, Eh);
        ES[mode] = std::move(ESn);
        nu[mode] = nu_next;
      }
    }
    for (int mode = 0; mode < 2; ++mode) {
      MatrixXdR const Ef = cap_columns(ES[mode], nu[mode]);
      store_state((mode == 0 ? out.det : out.prob)["final_state"], {n, hv, 0, 0}, Ef);
    }
  }
  return out;
}

std::vector<StageBoundRow> stage_bound_ratios(Problem const& p, ChunkedResult const& ref, StageBounds const& b,
                                              std::string const& tensor, Tensor const& got) {
  std::vector<StageBoundRow> rows;
  auto const det_it = b.det.find(tensor), prob_it = b.prob.find(tensor);
  if (det_it == b.det.end() || prob_it == b.prob.end()) return rows;
  Tensor const& det = det_it->second;
  Tensor const& prob = prob_it->second;
  Tensor const* exact_ptr = tensor == "g_cumsum" ? &ref.g_cumsum
                            : tensor == "A"     ? &ref.A
                            : tensor == "A_inv" ? &ref.A_inv
                            : tensor == "w"     ? &ref.w
                            : tensor == "u"     ? &ref.u
                            : tensor == "v_new" ? &ref.v_new
                            : tensor == "h"     ? &ref.h
                            : tensor == "o"     ? &ref.o
                                                : &ref.final_state;
  Tensor const& exact = *exact_ptr;
  auto visit = [&](StageBoundRow& r, int64_t off, int64_t row, int64_t col) {
    size_t const o = static_cast<size_t>(off);
    double const g = got.data[o];
    double const err = std::isfinite(g) ? std::fabs(g - exact.data[o]) : kInf;
    auto ratio = [&](double B) {
      double const x = err == 0 ? 0.0 : B > 0 ? err / B : kInf;
      return std::isnan(x) ? kInf : x;
    };
    double const rd = ratio(det.data[o]), rp = ratio(prob.data[o]);
    if (r.row < 0 || rd > r.r_det) {
      r.r_det = rd;
      r.row = row;
      r.col = col;
      r.error = err;
      r.bound = det.data[o];
    }
    r.r_prob = std::max(r.r_prob, rp);
  };
  bool const lower_only = tensor == "A" || tensor == "A_inv";
  if (tensor == "final_state") {
    for (int64_t n = 0; n < p.num_sequences(); ++n)
      for (int64_t hv = 0; hv < p.HV; ++hv) {
        StageBoundRow r;
        r.sequence = n, r.head = hv, r.chunk = -1;
        int64_t const base = exact.offset({n, hv, 0, 0});
        for (int64_t i = 0; i < p.K; ++i)
          for (int64_t j = 0; j < p.V; ++j) visit(r, base + i * p.V + j, i, j);
        rows.push_back(r);
      }
    return rows;
  }
  for (auto const& c : p.chunks())
    for (int64_t hv = 0; hv < p.HV; ++hv) {
      StageBoundRow r;
      r.sequence = c.sequence, r.head = hv, r.chunk = c.chunk, r.rows = c.rows;
      if (tensor == "h") {
        int64_t const base = exact.offset({c.b, c.h_index, hv, 0, 0});
        for (int64_t i = 0; i < p.K; ++i)
          for (int64_t j = 0; j < p.V; ++j) visit(r, base + i * p.V + j, i, j);
      } else if (tensor == "g_cumsum") {
        for (int64_t i = 0; i < c.rows; ++i) visit(r, exact.offset({c.b, c.begin + i, hv}), i, 0);
      } else {
        int64_t const width = exact.dim(3);
        for (int64_t i = 0; i < c.rows; ++i) {
          int64_t const base = exact.offset({c.b, c.begin + i, hv, 0});
          int64_t const cols = lower_only ? i : width;
          for (int64_t j = 0; j < cols; ++j) visit(r, base + j, i, j);
        }
      }
      rows.push_back(r);
    }
  return rows;
}

}  // namespace gdnv
