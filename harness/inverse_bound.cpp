#include "harness/inverse_bound.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "harness/results.hpp"

namespace gdnv {
namespace {

std::string const kIsolatedSuffix = "[isolated]";

std::string base_name(std::string name) {
  if (name.size() > kIsolatedSuffix.size() &&
      name.compare(name.size() - kIsolatedSuffix.size(), kIsolatedSuffix.size(), kIsolatedSuffix) == 0)
    name.resize(name.size() - kIsolatedSuffix.size());
  return name;
}

std::string num_str(double x) {
  if (!std::isfinite(x)) return "inf";
  return x < 1e5 ? fmt::format("{:.3g}", x) : fmt::format("{:.2e}", x);
}

}  // namespace

std::optional<DeclaredArithmetic> known_declared_arithmetic(std::string const& name) {
  std::string const n = base_name(name);
  DeclaredArithmetic d;  // input dtype in, fp32 KKT, fp32 16x16 substitution + fp32 merges, A_inv input dtype
  if (n == "emulated" || n == "emulated-precise" || n == "unfused" || n == "unfused-splitstate" || n == "fused" ||
      n == "fused-intra" || n == "precise")
    return d;
  if (n == "unfused-fp32inv") {
    d.A_inv = Precision::fp32;
    return d;
  }
  if (n == "cublas" || n == "cublas-fp64") {
    d.algorithm = InverseAlgorithm::substitution;  // cublas<T>trsmBatched against I
    d.inverse = d.merges = n == "cublas" ? Precision::fp32 : Precision::fp64;
    d.A_inv = Precision::fp32;
    return d;
  }
  return std::nullopt;
}

std::optional<DeclaredArithmetic> declared_arithmetic_for(Implementation const& impl, std::string* why) {
  if (auto d = impl.declared_arithmetic()) return d;
  std::string const name = impl.name();
  if (auto d = known_declared_arithmetic(name)) return d;
  if (name.rfind("captured:", 0) == 0) {
    std::string const text = impl.arithmetic();
    std::string reason;
    if (auto d = parse_declared_arithmetic(text, &reason)) return d;
    if (why) *why = "the arithmetic attribute does not declare A_inv's arithmetic in machine-readable form (" +
                    reason + ")";
    return std::nullopt;
  }
  if (why) *why = "no declared arithmetic for '" + name + "'";
  return std::nullopt;
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end(), [](double a, double b) { return a < b || (!std::isnan(a) && std::isnan(b)); });
  double const pos = std::ceil(q * static_cast<double>(values.size()));
  size_t const i = static_cast<size_t>(std::clamp(pos, 1.0, static_cast<double>(values.size()))) - 1;
  return values[i];
}

BoundSummary summarize_inverse_bound(Problem const& p, ChunkedResult const& ref, InverseBounds const& bounds,
                                     Tensor const& A_inv, Comparison& cmp) {
  BoundSummary s;
  s.computed = true;
  s.arithmetic = bounds.arithmetic.to_string();
  s.margin_ref = bounds.margin_ref;
  auto const rows = inverse_bound_ratios(p, ref, bounds, A_inv);
  std::vector<double> det, prob;
  det.reserve(rows.size());
  prob.reserve(rows.size());
  for (auto const& r : rows) {
    det.push_back(r.r_det);
    prob.push_back(r.r_prob);
    if (!(r.r_det <= s.gate)) ++s.chunks_over;
    s.upper_nonzero += r.upper_nonzero;
    s.diagonal_not_one += r.diagonal_not_one;
    if (s.chunks == 0 || r.r_det > s.worst.r_det || (std::isinf(r.r_det) && !std::isinf(s.worst.r_det))) s.worst = r;
    ++s.chunks;
  }
  s.max_r_det = det.empty() ? 0.0 : *std::max_element(det.begin(), det.end());
  s.max_r_prob = prob.empty() ? 0.0 : *std::max_element(prob.begin(), prob.end());
  s.p50_r_det = quantile(det, 0.5);
  s.p99_r_det = quantile(det, 0.99);
  s.p50_r_prob = quantile(prob, 0.5);
  s.p99_r_prob = quantile(prob, 0.99);

  // The per-chunk A_inv rows of the comparison are in the same order (chunks x value heads).
  size_t k = 0;
  for (auto& row : cmp.rows) {
    if (row.tensor != s.tensor) continue;
    if (k < rows.size() && rows[k].sequence == row.sequence && rows[k].head == row.head && rows[k].chunk == row.chunk) {
      row.has_bound = true;
      row.r_det = rows[k].r_det;
      row.r_prob = rows[k].r_prob;
    }
    ++k;
  }
  auto it = cmp.metrics.find(s.tensor);
  if (it != cmp.metrics.end()) {
    TensorMetrics& m = it->second;
    m.has_bound = true;
    m.max_r_det = s.max_r_det;
    m.p50_r_det = s.p50_r_det;
    m.p99_r_det = s.p99_r_det;
    m.max_r_prob = s.max_r_prob;
    m.p50_r_prob = s.p50_r_prob;
    m.p99_r_prob = s.p99_r_prob;
  }
  return s;
}

std::string bound_failure_reason(BoundSummary const& s) {
  auto const& w = s.worst;
  return fmt::format("{} seq {} head {} chunk {}: bound ratio R_det {} > {} (entry ({},{}): error {:.3e}, bound {:.3e}; "
                     "{} of {} chunks over)",
                     s.tensor, w.sequence, w.head, w.chunk, num_str(w.r_det), s.gate, w.row, w.col, w.error, w.bound,
                     s.chunks_over, s.chunks);
}

void apply_inverse_bound(CheckResult& r, Implementation const& impl, Problem const& p, ChunkedResult const& ref,
                         StageOutputs const& out) {
  if (r.disposition != Disposition::passed && r.disposition != Disposition::failed) return;
  BoundSummary s;
  auto const a_inv = out.find("A_inv");
  if (a_inv == out.end() || !r.comparison.metrics.count("A_inv")) {
    s.reason = "no A_inv among the outputs";
    r.bound = s;
    return;
  }
  std::string why;
  auto const declared = declared_arithmetic_for(impl, &why);
  if (!declared) {
    s.reason = why;
    r.bound = s;
    return;
  }
  InverseBounds const bounds = inverse_bounds(p, ref, *declared);
  s = summarize_inverse_bound(p, ref, bounds, a_inv->second, r.comparison);
  r.bound = s;
  if (!s.passed()) {
    std::string const why_bound = bound_failure_reason(s);
    r.reason = r.disposition == Disposition::failed && !r.reason.empty() ? r.reason + "; " + why_bound : why_bound;
    r.disposition = Disposition::failed;
  }
}

}  // namespace gdnv
