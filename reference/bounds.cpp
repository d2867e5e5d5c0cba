#include "bounds.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <omp.h>

#include "tril_inverse.hpp"

namespace gdnv {
namespace {

double const kInf = std::numeric_limits<double>::infinity();

// gamma_m(u) = m u / (1 - m u), infinite once m u >= 1.
double gamma_det(double m, double u) {
  double const mu = m * u;
  return mu < 1.0 ? mu / (1.0 - mu) : kInf;
}
// The probabilistic constant with lambda = 1: sqrt(m) u.
double gamma_prob(double m, double u) { return std::sqrt(m) * u; }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string algorithm_name(InverseAlgorithm a) {
  switch (a) {
    case InverseAlgorithm::substitution: return "substitution";
    case InverseAlgorithm::blocked: return "blocked";
    case InverseAlgorithm::neumann: return "neumann";
  }
  return "blocked";
}

std::optional<InverseAlgorithm> parse_algorithm(std::string const& s) {
  std::string const l = lower(s);
  if (l == "substitution" || l == "forward-substitution" || l == "trsm") return InverseAlgorithm::substitution;
  if (l == "blocked" || l == "block-merge" || l == "merges") return InverseAlgorithm::blocked;
  if (l == "neumann" || l == "repeated-squaring") return InverseAlgorithm::neumann;
  return std::nullopt;
}

enum class Key {
  input, accumulate, inverse, merges, A_inv, method, A, A_inv_operand, operands, v_operand, w, u, v_new, h, o, state,
  state_operand, scores, ignored
};

std::optional<Key> parse_key(std::string const& s) {
  std::string const l = lower(s);
  if (l == "input" || l == "in") return Key::input;
  if (l == "accumulate" || l == "acc" || l == "accumulation") return Key::accumulate;
  if (l == "inverse" || l == "solve") return Key::inverse;
  if (l == "merges" || l == "merge") return Key::merges;
  if (l == "a_inv" || l == "ainv") return Key::A_inv;
  if (l == "method" || l == "algorithm") return Key::method;
  if (l == "a") return Key::A;
  if (l == "a_inv_operand" || l == "ainv_operand") return Key::A_inv_operand;
  if (l == "operands" || l == "operand") return Key::operands;
  if (l == "v_operand" || l == "beta_v") return Key::v_operand;
  if (l == "w") return Key::w;
  if (l == "u") return Key::u;
  if (l == "v_new" || l == "vnew" || l == "delta") return Key::v_new;
  if (l == "h") return Key::h;
  if (l == "o" || l == "output") return Key::o;
  if (l == "state" || l == "final_state") return Key::state;
  if (l == "state_operand" || l == "ws" || l == "state_op") return Key::state_operand;
  if (l == "scores" || l == "score" || l == "p" || l == "attention") return Key::scores;
  static std::set<std::string> const inputs = {"g_cumsum", "gate", "beta", "g"};
  if (inputs.count(l)) return Key::ignored;
  return std::nullopt;
}

}  // namespace

double smallest_normal(Precision p, DType stored) {
  switch (p) {
    case Precision::input:
    case Precision::split:
      switch (stored) {
        case DType::f16: return 0x1p-14;
        case DType::f64: return 0x1p-1022;
        default: return 0x1p-126;
      }
    case Precision::fp16: return 0x1p-14;
    case Precision::fp64: return 0x1p-1022;
    default: return 0x1p-126;  // bf16, tf32 and fp32 share fp32's exponent range
  }
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::split: return "split";
    case Precision::input: return "input";
    case Precision::bf16: return "bf16";
    case Precision::fp16: return "fp16";
    case Precision::tf32: return "tf32";
    case Precision::tf32x3: return "tf32x3";
    case Precision::fp32: return "fp32";
    case Precision::fp64: return "fp64";
  }
  return "input";
}

std::optional<Precision> parse_precision(std::string const& name) {
  std::string const l = lower(name);
  if (l == "input") return Precision::input;
  if (l == "split" || l == "hi+lo" || l == "hilo") return Precision::split;
  if (l == "bf16" || l == "bfloat16") return Precision::bf16;
  if (l == "fp16" || l == "float16" || l == "half" || l == "f16") return Precision::fp16;
  if (l == "tf32") return Precision::tf32;
  if (l == "tf32x3" || l == "3xtf32") return Precision::tf32x3;
  if (l == "fp32" || l == "float32" || l == "float" || l == "f32") return Precision::fp32;
  if (l == "fp64" || l == "float64" || l == "double" || l == "f64") return Precision::fp64;
  return std::nullopt;
}

double unit_roundoff(Precision p, DType stored) {
  switch (p) {
    case Precision::input: return unit_roundoff(stored);
    case Precision::bf16: return 0x1p-8;
    case Precision::fp16: return 0x1p-11;
    case Precision::tf32: return 0x1p-11;
    case Precision::tf32x3: return 0x1p-18;
    case Precision::fp32: return 0x1p-24;
    case Precision::fp64: return 0x1p-53;
    case Precision::split: {
      double const u = unit_roundoff(stored);
      return u > 0x1p-24 ? u * u : 0x1p-24;
    }
  }
  return unit_roundoff(stored);
}

std::string DeclaredArithmetic::to_string() const {
  return "input=" + precision_name(input) + " accumulate=" + precision_name(accumulate) +
         " inverse=" + precision_name(inverse) + " merges=" + precision_name(merges) +
         " A_inv=" + precision_name(A_inv) + " method=" + algorithm_name(algorithm) + " A=" + precision_name(A) +
         " A_inv_operand=" + precision_name(A_inv_operand) + " operands=" + precision_name(operands) +
         " v_operand=" + precision_name(v_operand) +
         " w=" + precision_name(w) + " u=" + precision_name(u) + " v_new=" + precision_name(v_new) +
         " h=" + precision_name(h) + " o=" + precision_name(o) + " state=" + precision_name(state) +
         " state_operand=" + precision_name(state_operand) + " scores=" + precision_name(scores);
}

std::optional<DeclaredArithmetic> parse_declared_arithmetic(std::string const& text, std::string* why) {
  auto fail = [&](std::string const& reason) -> std::optional<DeclaredArithmetic> {
    if (why) *why = reason;
    return std::nullopt;
  };
  // Split into items at ',' and ';'; an item is "k=v", "k: v" or two words in either order.
  std::vector<std::vector<std::string>> items;
  std::string cur;
  auto flush_item = [&] {
    std::vector<std::string> words;
    std::string w;
    for (char c : cur + " ") {
      if (std::isspace(static_cast<unsigned char>(c)) || c == '=' || c == ':') {
        if (!w.empty()) words.push_back(w);
        w.clear();
      } else {
        w += c;
      }
    }
    if (!words.empty()) items.push_back(words);
    cur.clear();
  };
  for (char c : text) {
    if (c == ',' || c == ';') flush_item();
    else cur += c;
  }
  flush_item();
  if (items.empty()) return fail("empty arithmetic declaration");

  std::map<Key, std::string> values;
  for (auto const& words : items) {
    // "k=v k=v" in one item: pair the words up in order.
    if (words.size() % 2 != 0) return fail("cannot read '" + [&] {
      std::string s;
      for (auto const& w : words) s += (s.empty() ? "" : " ") + w;
      return s;
    }() + "' as <key> <precision>");
    for (size_t i = 0; i < words.size(); i += 2) {
      std::string a = words[i], b = words[i + 1];
      auto ka = parse_key(a), kb = parse_key(b);
      // the two-word form "<precision> <key>": the key is the second word
      if (!ka || (kb && parse_precision(a))) {
        std::swap(a, b);
        std::swap(ka, kb);
      }
      if (!ka) return fail("unknown key in '" + words[i] + " " + words[i + 1] + "'");
      if (*ka == Key::ignored) continue;
      if (*ka == Key::method ? !parse_algorithm(b).has_value() : !parse_precision(b).has_value())
        return fail("unknown value '" + b + "' for " + a);
      if (values.count(*ka) && values[*ka] != b) return fail("'" + a + "' declared twice");
      values[*ka] = b;
    }
  }
  if (!values.count(Key::A_inv)) return fail("A_inv's stored precision is not declared");
  if (!values.count(Key::accumulate) && !values.count(Key::inverse))
    return fail("neither the accumulate nor the inverse precision is declared");
  DeclaredArithmetic d;
  if (values.count(Key::input)) d.input = *parse_precision(values[Key::input]);
  d.accumulate = *parse_precision(values.count(Key::accumulate) ? values[Key::accumulate] : values[Key::inverse]);
  d.inverse = values.count(Key::inverse) ? *parse_precision(values[Key::inverse]) : d.accumulate;
  d.merges = values.count(Key::merges) ? *parse_precision(values[Key::merges]) : d.inverse;
  d.A_inv = *parse_precision(values[Key::A_inv]);
  if (values.count(Key::method)) d.algorithm = *parse_algorithm(values[Key::method]);
  auto later = [&](Key k, Precision& field) {
    if (values.count(k)) field = *parse_precision(values[k]);
  };
  later(Key::A, d.A);
  later(Key::A_inv_operand, d.A_inv_operand);
  later(Key::operands, d.operands);
  d.v_operand = d.operands;
  later(Key::v_operand, d.v_operand);
  later(Key::w, d.w);
  later(Key::u, d.u);
  later(Key::v_new, d.v_new);
  later(Key::h, d.h);
  later(Key::o, d.o);
  later(Key::state, d.state);
  later(Key::state_operand, d.state_operand);
  later(Key::scores, d.scores);
  return d;
}

InverseBounds inverse_bounds(Problem const& p, ChunkedResult const& ref, DeclaredArithmetic const& a, int threads) {
  InverseBounds out;
  out.arithmetic = a;
  out.det = Tensor({p.B, p.T, p.HV, kChunk}, DType::f64);
  out.prob = Tensor({p.B, p.T, p.HV, kChunk}, DType::f64);
  out.A_det = Tensor({p.B, p.T, p.HV, kChunk}, DType::f64);
  out.A_prob = Tensor({p.B, p.T, p.HV, kChunk}, DType::f64);
  Tensor const k = effective_k(p);
  DType const kd = p.k.dtype;
  int64_t const d = p.K;
  double const u_acc = unit_roundoff(a.accumulate, kd);
  double const u_in = unit_roundoff(a.input, kd);
  double const u_out = unit_roundoff(a.A_inv, kd);
  double const lam_acc = smallest_normal(a.accumulate, kd);
  double const tiny_out = u_out * smallest_normal(a.A_inv, kd);
  // A stored coarser than it is computed (e.g. bf16 A before the solve) adds its rounding to E_A.
  double const u_A = unit_roundoff(a.A, kd) > u_acc ? unit_roundoff(a.A, kd) : 0.0;
  double const tiny_A = u_A * smallest_normal(a.A, kd);
  // The keys the KKT reads are a rounding of the exact ones when the kernel normalizes them itself
  // (fp32 math, then its input precision) or reads them in a coarser precision than stored.
  bool const rounds_k = p.qk_l2norm || u_in > unit_roundoff(kd);
  bool const g_cast = p.g.dtype == DType::f64 || unit_roundoff(p.g.dtype) < u_acc;  // g converted to u_acc
  bool const beta_cast = p.beta.dtype == DType::f64 || unit_roundoff(p.beta.dtype) < u_acc;

  auto const chunks = p.chunks();
  int64_t const jobs = static_cast<int64_t>(chunks.size()) * p.HV;
  std::vector<double> margins(static_cast<size_t>(jobs), 0.0);
  int const nthreads = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 4) num_threads(nthreads)
  for (int64_t job = 0; job < jobs; ++job) {
    auto const& c = chunks[static_cast<size_t>(job / p.HV)];
    int64_t const hv = job % p.HV, m = c.rows, hk = p.key_head(hv);
    MatrixXdR A(m, m), X(m, m), Kc(m, d);
    Eigen::VectorXd beta(m), gamma(m), gabs(m);
    double run = 0;
    for (int64_t i = 0; i < m; ++i) {
      int64_t const t = c.begin + i;
      for (int64_t j = 0; j < m; ++j) {
        A(i, j) = ref.A.at({c.b, t, hv, j});
        X(i, j) = ref.A_inv.at({c.b, t, hv, j});
      }
      for (int64_t l = 0; l < d; ++l) Kc(i, l) = k.at({c.b, t, hk, l});
      beta[i] = p.beta.at({c.b, t, hv});
      gamma[i] = ref.g_cumsum.at({c.b, t, hv});
      run += std::fabs(p.g.at({c.b, t, hv}));
      gabs[i] = run;
    }
    MatrixXdR const absK = Kc.cwiseAbs();
    MatrixXdR const S = absK * absK.transpose();  // sum_l |k_il k_jl|
    MatrixXdR const absX = X.cwiseAbs();
    MatrixXdR absT = A.cwiseAbs();
    absT.diagonal().setOnes();
    MatrixXdR const P = absX * (absT * absX);
    MatrixXdR const amp = a.algorithm == InverseAlgorithm::neumann ? MatrixXdR(tril_inverse_forward(-A.cwiseAbs())) : P;

    double const dm = static_cast<double>(m), dd = static_cast<double>(d);
    // The inverse's precision: its substitution, and the merges where there are any.
    double u_inv = unit_roundoff(a.inverse, kd);
    if (a.algorithm != InverseAlgorithm::substitution && m > 16) u_inv = std::max(u_inv, unit_roundoff(a.merges, kd));
    double const n_inv = a.algorithm == InverseAlgorithm::neumann ? 2.0 * dm : dm;
    double const c_ref = gamma_det(dm, 0x1p-53);

    MatrixXdR Bout[2], EAout[2];
    for (int mode = 0; mode < 2; ++mode) {
      auto gam = [&](double n, double u) { return mode == 0 ? gamma_det(n, u) : gamma_prob(n, u); };
      // the d-term dot product, the multiplies by the gate factor and beta, exp's 2 ulps, beta's conversion
      double const gA = gam(dd + 4.0 + (beta_cast ? 1.0 : 0.0), u_acc);
      double const eps_k = rounds_k ? u_in + (p.qk_l2norm ? gam(dd + 3.0, u_acc) : 0.0) : 0.0;
      double const kappa = (1.0 + eps_k) * (1.0 + eps_k) - 1.0;
      Eigen::VectorXd e(m);  // bound on the computed gate cumsum's error at row i
      for (int64_t i = 0; i < m; ++i) {
        double const n = static_cast<double>(i + 1) * (g_cast ? 2.0 : 1.0);
        e[i] = gam(n, u_acc) * gabs[i];
      }
      MatrixXdR EA = MatrixXdR::Zero(m, m);
      for (int64_t i = 1; i < m; ++i)
        for (int64_t j = 0; j < i; ++j) {
          double const diff = gamma[i] - gamma[j];
          // the difference's rounding, and a fast exp's argument-proportional error (__expf: ~1.2|x| ulp)
          double const eta = e[i] + e[j] + 3.0 * u_acc * std::fabs(diff);
          double const rho = (1.0 + gA) * (1.0 + kappa) * std::exp(eta) - 1.0;
          double const base = beta[i] * std::exp(diff) * S(i, j);
          EA(i, j) = rho * base + 3.0 * lam_acc * (1.0 + beta[i] * S(i, j));
          if (u_A > 0) EA(i, j) += u_A * (std::fabs(A(i, j)) + EA(i, j)) + tiny_A;
        }
      MatrixXdR const prop = absX * EA * absX;
      double const c_inv = gam(n_inv, u_inv);
      MatrixXdR B = u_out * absX;
      B.array() += (1.0 + u_out) * (prop.array() + c_inv * amp.array() +
                                    (dm + dd) * lam_acc * (1.0 + P.array())) +
                   c_ref * P.array() + tiny_out;
      Bout[mode] = std::move(B);
      EAout[mode] = std::move(EA);
    }
    double margin = 0;
    for (int64_t i = 1; i < m; ++i) {
      int64_t const t = c.begin + i;
      double* drow = out.det.ptr() + out.det.offset({c.b, t, hv, 0});
      double* prow = out.prob.ptr() + out.prob.offset({c.b, t, hv, 0});
      double* adrow = out.A_det.ptr() + out.A_det.offset({c.b, t, hv, 0});
      double* aprow = out.A_prob.ptr() + out.A_prob.offset({c.b, t, hv, 0});
      for (int64_t j = 0; j < i; ++j) {
        drow[j] = Bout[0](i, j);
        prow[j] = Bout[1](i, j);
        adrow[j] = EAout[0](i, j);
        aprow[j] = EAout[1](i, j);
        if (drow[j] > 0) margin = std::max(margin, c_ref * P(i, j) / drow[j]);
      }
    }
    margins[static_cast<size_t>(job)] = margin;
  }
  for (double x : margins) out.margin_ref = std::max(out.margin_ref, x);
  return out;
}

std::vector<InverseBoundRow> inverse_bound_ratios(Problem const& p, ChunkedResult const& ref, InverseBounds const& b,
                                                  Tensor const& Xhat) {
  auto const chunks = p.chunks();
  std::vector<InverseBoundRow> rows;
  rows.reserve(chunks.size() * static_cast<size_t>(p.HV));
  for (auto const& c : chunks)
    for (int64_t hv = 0; hv < p.HV; ++hv) {
      InverseBoundRow r;
      r.sequence = c.sequence;
      r.head = hv;
      r.chunk = c.chunk;
      r.rows = c.rows;
      for (int64_t i = 0; i < c.rows; ++i) {
        double const* xrow = Xhat.ptr() + Xhat.offset({c.b, c.begin + i, hv, 0});
        r.diagonal_not_one += xrow[i] != 1.0;
        for (int64_t j = i + 1; j < c.rows; ++j) r.upper_nonzero += xrow[j] != 0.0;
      }
      for (int64_t i = 1; i < c.rows; ++i) {
        int64_t const off = Xhat.offset({c.b, c.begin + i, hv, 0});
        for (int64_t j = 0; j < i; ++j) {
          size_t const o = static_cast<size_t>(off + j);
          double const got = Xhat.data[o], exact = ref.A_inv.data[o];
          double const err = std::isfinite(got) ? std::fabs(got - exact) : kInf;
          auto ratio = [&](double B) { return err == 0 ? 0.0 : B > 0 ? err / B : kInf; };
          double rd = ratio(b.det.data[o]), rp = ratio(b.prob.data[o]);
          if (std::isnan(rd)) rd = kInf;
          if (std::isnan(rp)) rp = kInf;
          if (r.row < 0 || rd > r.r_det) {
            r.r_det = rd;
            r.row = i;
            r.col = j;
            r.error = err;
            r.bound = b.det.data[o];
          }
          r.r_prob = std::max(r.r_prob, rp);
        }
      }
      rows.push_back(r);
    }
  return rows;
}

}  // namespace gdnv
