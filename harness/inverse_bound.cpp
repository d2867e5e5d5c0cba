#include "harness/inverse_bound.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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
  // input dtype in, fp32 KKT, fp32 16x16 substitution + fp32 merges, A_inv input dtype; FLA's later rounding
  // points (w, u, v_new, h, o, the beta-scaled operands, the W*S state operand, the score matrix in the input
  // dtype, running state fp32): cuda/chunk_state.cu, wu.cu, chunk_output.cu, reference/emulated.hpp
  DeclaredArithmetic d;
  if (n == "emulated" || n == "unfused" || n == "fused" || n == "fused-intra") return d;
  if (n == "precise") {
    // Args::precise_uv (wu.cu, chunk_state.cu, chunk_output.cu): beta v as hi + lo tiles for u, u stored
    // fp32, v_new stored fp32 and read by the score product as hi + lo (declared as split: the looser of
    // the two), the score matrix hi + lo; everything else as "fused".
    d.v_operand = Precision::split;
    d.u = Precision::fp32;
    d.v_new = Precision::split;
    d.scores = Precision::split;
    return d;
  }
  if (n == "emulated-precise") {  // its CPU model keeps those four in fp32 (reference/emulated.hpp)
    d.v_operand = d.u = d.v_new = d.scores = Precision::fp32;
    return d;
  }
  // The GQA-shared kernels (kkt_solve_fused.cu variant 5, intra_fused.cu variant 3) and their CPU models:
  // merges in 3xTF32 (cuda/inverse_tc.cuh). Intra 3 folds beta into the A_inv operand, round(A_inv
  // diag(beta)): off the diagonal that is A_inv's own rounding, on it (A_inv_ii = 1, where A_inv's bound is
  // 0) a rounding of beta_i, i.e. of the beta v operand's term: FLA's declaration (beta v in the input
  // dtype) covers it, fp32 would not (tests/reference/test_stage_bounds.cpp).
  // fused-forward: fused-intra-v3's bytes (state_output_fused.cu runs chunk_state 2 + chunk_output 2's products).
  // emulated-fused-forward-pairs: fused-intra-v3's arithmetic with a two-chunk state walk, inside the same
  // declaration (tests/reference/test_stage_bounds.cpp, gqa_kernel_models_are_inside_on_every_family), and so is
  // fused-forward-from-v (the walk forms the delta from v: one rounding, of v - e^g K h, where u - W h has three).
  if (n == "fused-v5" || n == "emulated-fused-v5" || n == "fused-intra-v3" || n == "emulated-fused-intra-v3" ||
      n == "fused-forward" || n == "emulated-fused-forward-pairs" || n == "fused-forward-from-v" ||
      n == "emulated-fused-forward-from-v") {
    d.merges = Precision::tf32x3;
    return d;
  }
  if (n == "precise-v3") {  // precise's u, v_new and scores; u's operand A_inv diag(beta) as hi + lo
    d.merges = Precision::tf32x3;
    d.v_operand = Precision::split;  // beta_i on the diagonal, as a hi + lo pair
    d.u = Precision::fp32;
    d.v_new = Precision::split;
    d.scores = Precision::split;
    return d;
  }
  if (n == "emulated-precise-v3") {
    d.merges = Precision::tf32x3;
    d.v_operand = d.u = d.v_new = d.scores = Precision::fp32;
    return d;
  }
  if (n == "unfused-splitstate") {
    d.state_operand = Precision::split;  // Args::split_state: S = hi + lo for W*S (~2^-16)
    return d;
  }
  if (n == "unfused-fp32inv") {
    d.A_inv = Precision::fp32;
    d.A_inv_operand = Precision::split;  // wu.cu: an fp32 A_inv is split into hi + lo input-dtype tiles
    d.state_operand = Precision::split;  // gpu_implementations.cpp: split_state() for every non-FLA variant
    return d;
  }
  if (n == "cublas" || n == "cublas-fp64") {
    d.algorithm = InverseAlgorithm::substitution;  // cublas<T>trsmBatched against I
    d.inverse = d.merges = n == "cublas" ? Precision::fp32 : Precision::fp64;
    d.A_inv = Precision::fp32;
    d.A_inv_operand = Precision::split;
    d.state_operand = Precision::split;
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

namespace {
// What both summaries do with their per-chunk rows (InverseBoundRow or StageBoundRow, in the comparison's
// row order for s.tensor: chunks x value heads, or sequences x value heads for states): the max, p50 and
// p99 of R_det and R_prob into s, R onto the comparison's rows of that tensor and into its metrics.
template <class Row>
void publish_bound(BoundSummary& s, std::vector<Row> const& rows, Comparison& cmp) {
  std::vector<double> det, prob;
  det.reserve(rows.size());
  prob.reserve(rows.size());
  for (auto const& r : rows) {
    det.push_back(r.r_det);
    prob.push_back(r.r_prob);
  }
  s.max_r_det = det.empty() ? 0.0 : *std::max_element(det.begin(), det.end());
  s.max_r_prob = prob.empty() ? 0.0 : *std::max_element(prob.begin(), prob.end());
  s.p50_r_det = quantile(det, 0.5);
  s.p99_r_det = quantile(det, 0.99);
  s.p50_r_prob = quantile(prob, 0.5);
  s.p99_r_prob = quantile(prob, 0.99);
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
}
}  // namespace

BoundSummary summarize_inverse_bound(Problem const& p, ChunkedResult const& ref, InverseBounds const& bounds,
                                     Tensor const& A_inv, Comparison& cmp) {
  BoundSummary s;
  s.computed = true;
  s.arithmetic = bounds.arithmetic.to_string();
  s.margin_ref = bounds.margin_ref;
  auto const rows = inverse_bound_ratios(p, ref, bounds, A_inv);
  for (auto const& r : rows) {
    if (!(r.r_det <= s.gate)) ++s.chunks_over;
    s.upper_nonzero += r.upper_nonzero;
    s.diagonal_not_one += r.diagonal_not_one;
    if (s.chunks == 0 || r.r_det > s.worst.r_det || (std::isinf(r.r_det) && !std::isinf(s.worst.r_det))) s.worst = r;
    ++s.chunks;
  }
  publish_bound(s, rows, cmp);
  return s;
}

std::string bound_failure_reason(BoundSummary const& s) {
  auto const& w = s.worst;
  std::string const where = w.chunk < 0 ? fmt::format("{} seq {} head {} (final)", s.tensor, w.sequence, w.head)
                                        : fmt::format("{} seq {} head {} chunk {}", s.tensor, w.sequence, w.head, w.chunk);
  return fmt::format("{}: bound ratio R_det {} > {} (entry ({},{}): error {:.3e}, bound {:.3e}; {} of {} {} over)",
                     where, num_str(w.r_det), s.gate, w.row, w.col, w.error, w.bound, s.chunks_over, s.chunks,
                     w.chunk < 0 ? "states" : "chunks");
}

BoundSummary summarize_stage_bound(Problem const& p, ChunkedResult const& ref, StageBounds const& bounds,
                                   std::string const& tensor, Tensor const& got, Comparison& cmp) {
  BoundSummary s;
  s.computed = true;
  s.tensor = tensor;
  s.arithmetic = bounds.arithmetic.to_string();
  s.margin_ref = bounds.margin_ref;
  auto const rows = stage_bound_ratios(p, ref, bounds, tensor, got);
  for (auto const& r : rows) {
    if (!(r.r_det <= s.gate)) ++s.chunks_over;
    if (s.chunks == 0 || r.r_det > s.worst.r_det || (std::isinf(r.r_det) && !std::isinf(s.worst.r_det))) {
      s.worst.sequence = r.sequence;
      s.worst.head = r.head;
      s.worst.chunk = r.chunk;
      s.worst.rows = r.rows;
      s.worst.r_det = r.r_det;
      s.worst.r_prob = r.r_prob;
      s.worst.row = r.row;
      s.worst.col = r.col;
      s.worst.error = r.error;
      s.worst.bound = r.bound;
    }
    ++s.chunks;
  }
  publish_bound(s, rows, cmp);
  return s;
}

namespace {

std::string where_of(ChunkRow const& w) {
  if (w.chunk < 0) return fmt::format("{} seq {} head {} (final)", w.tensor, w.sequence, w.head);
  return fmt::format("{} seq {} head {} chunk {}", w.tensor, w.sequence, w.head, w.chunk);
}

}  // namespace

void apply_bounds(CheckResult& r, Implementation const& impl, Problem const& p, ChunkedResult const& ref,
                  StageOutputs const& out, double max_floor_ratio, std::vector<ChunkConditioning> const* cond,
                  BoundsCache* cache) {
  if (r.disposition != Disposition::passed && r.disposition != Disposition::failed) return;
  std::vector<std::string> tensors;  // in pipeline order
  for (auto const& name : bounded_tensors())
    if (out.count(name) && r.comparison.metrics.count(name)) tensors.push_back(name);
  bool const has_inv = out.count("A_inv") && r.comparison.metrics.count("A_inv");
  if (!has_inv) r.bound.reason = "no A_inv among the outputs";
  if (tensors.empty()) return;
  std::string why;
  auto const declared = declared_arithmetic_for(impl, &why);
  if (!declared) {
    if (has_inv) r.bound.reason = why;
    return;
  }
  std::string const key = declared->to_string();
  std::shared_ptr<std::pair<InverseBounds, StageBounds> const> computed;
  if (cache && cache->by_arithmetic.count(key)) computed = cache->by_arithmetic.at(key);
  if (!computed) {
    InverseBounds inv = inverse_bounds(p, ref, *declared);
    StageBounds st = stage_bounds(p, ref, inv);
    computed = std::make_shared<std::pair<InverseBounds, StageBounds> const>(std::move(inv), std::move(st));
    if (cache) cache->by_arithmetic[key] = computed;
  }
  InverseBounds const& inverse = computed->first;
  StageBounds const& stages = computed->second;
  std::string fault;
  for (auto const& name : tensors) {
    BoundSummary const s = name == "A_inv"
                               ? summarize_inverse_bound(p, ref, inverse, out.at(name), r.comparison)
                               : summarize_stage_bound(p, ref, stages, name, out.at(name), r.comparison);
    if (name == "A_inv") r.bound = s;
    r.bounds[name] = s;
    if (!s.passed()) fault += (fault.empty() ? "" : "; ") + bound_failure_reason(s);
  }
  if (!fault.empty()) {
    r.reason = r.disposition == Disposition::failed && !r.reason.empty() ? r.reason + "; " + fault : fault;
    r.disposition = Disposition::failed;
    return;
  }
  if (r.disposition != Disposition::failed) return;
  // Failed by the floor ratio only: explained when every chunk above the gate is finite and inside its bound.
  CheckResult::Explained ex;
  for (auto const& row : r.comparison.rows) {
    if (row.finite && row.ratio <= max_floor_ratio) continue;
    if (!row.finite || !row.has_bound || !(row.r_det <= kBoundGate)) return;  // not explained: stays failed
    if (ex.chunks == 0 || row.ratio > ex.worst.ratio) ex.worst = row;
    ++ex.chunks;
  }
  if (ex.chunks == 0) return;
  if (cond && !cond->empty()) {
    // chunk_conditioning's rows: chunks x value heads; final_state: the sequence's last chunk
    auto const chunks = p.chunks();
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
      auto const& c = chunks[ci];
      if (c.sequence != ex.worst.sequence) continue;
      bool const last = ci + 1 == chunks.size() || chunks[ci + 1].sequence != c.sequence;
      if (c.chunk == ex.worst.chunk || (ex.worst.chunk < 0 && last)) {
        size_t const at = ci * static_cast<size_t>(p.HV) + static_cast<size_t>(ex.worst.head);
        if (at < cond->size()) {
          ex.has_conditioning = true;
          ex.conditioning = (*cond)[at];
        }
        if (c.chunk == ex.worst.chunk) break;
      }
    }
  }
  auto const& w = ex.worst;
  std::string kappa = ex.has_conditioning
                          ? fmt::format("; kappa_inf {}, Skeel cond {}", num_str(ex.conditioning.kappa_inf),
                                        num_str(ex.conditioning.skeel))
                          : "";
  r.reason = fmt::format("explained by conditioning: {}: floor ratio {} > {} but inside its bound (R_det {}{}); "
                         "{} chunk(s) above the floor gate, all inside their bounds",
                         where_of(w), num_str(w.ratio), max_floor_ratio, num_str(w.r_det), kappa, ex.chunks);
  r.disposition = Disposition::explained;
  r.explained = ex;
}

}  // namespace gdnv
