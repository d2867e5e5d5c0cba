#include "results.hpp"

#include <cmath>

namespace gdnv {
namespace {

// JSON has no inf/nan: non-finite numbers are written as null (with a flag where it matters).
nlohmann::json num(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

}  // namespace

std::string disposition_name(Disposition d) {
  switch (d) {
    case Disposition::passed: return "passed";
    case Disposition::failed: return "failed";
    case Disposition::not_run: return "not_run";
    case Disposition::not_supported: return "not_supported";
    case Disposition::error: return "error";
    case Disposition::explained: return "explained";
  }
  return "error";
}

nlohmann::json to_json(ChunkRow const& r) {
  nlohmann::json j = {{"tensor", r.tensor},         {"sequence", r.sequence},   {"head", r.head},
                      {"chunk", r.chunk},           {"rows", r.rows},           {"ratio", num(r.ratio)},
                      {"error_norm", num(r.error_norm)}, {"floor_norm", num(r.floor_norm)},
                      {"floor_from_u", r.floor_from_u},  {"finite", r.finite},
                      {"rel_rms", num(r.rel_rms)}};
  if (r.has_bound) {
    j["r_det"] = num(r.r_det);
    j["r_prob"] = num(r.r_prob);
  }
  if (r.has_trt01) j["trt01"] = num(r.trt01);
  return j;
}

nlohmann::json to_json(BoundSummary const& s) {
  if (!s.computed) return nullptr;
  auto const& w = s.worst;
  return {{"tensor", s.tensor},
          {"arithmetic", s.arithmetic},
          {"gate", s.gate},
          {"passed", s.passed()},
          {"chunks", s.chunks},
          {"chunks_over", s.chunks_over},
          {"max_r_det", num(s.max_r_det)},
          {"p50_r_det", num(s.p50_r_det)},
          {"p99_r_det", num(s.p99_r_det)},
          {"max_r_prob", num(s.max_r_prob)},
          {"p50_r_prob", num(s.p50_r_prob)},
          {"p99_r_prob", num(s.p99_r_prob)},
          {"margin_ref", num(s.margin_ref)},
          {"upper_nonzero", s.upper_nonzero},
          {"diagonal_not_one", s.diagonal_not_one},
          {"worst", {{"sequence", w.sequence}, {"head", w.head}, {"chunk", w.chunk}, {"row", w.row}, {"col", w.col},
                     {"r_det", num(w.r_det)}, {"r_prob", num(w.r_prob)}, {"error", num(w.error)},
                     {"bound", num(w.bound)}}}};
}

nlohmann::json to_json(TensorMetrics const& m) {
  nlohmann::json j = {{"dtype", dtype_name(m.dtype)},
          {"floor_dtype", dtype_name(m.floor_dtype)},
          {"chunks", m.chunks},
          {"nonfinite", m.nonfinite},
          {"rel_rms", num(m.rel_rms)},
          {"max_abs", num(m.max_abs)},
          {"relative_l2", num(m.relative_l2)},
          {"floor_ratio", num(m.floor_ratio)},
          {"max_chunk_ratio", num(m.max_chunk_ratio)},
          {"median_chunk_ratio", num(m.median_chunk_ratio)}};
  if (m.has_bound) {
    j["max_r_det"] = num(m.max_r_det);
    j["p50_r_det"] = num(m.p50_r_det);
    j["p99_r_det"] = num(m.p99_r_det);
    j["max_r_prob"] = num(m.max_r_prob);
    j["p50_r_prob"] = num(m.p50_r_prob);
    j["p99_r_prob"] = num(m.p99_r_prob);
  }
  j["max_chunk_rel_rms"] = num(m.max_chunk_rel_rms);
  if (m.has_trt01) {
    j["trt01_u"] = m.trt01_u;
    j["max_trt01"] = num(m.max_trt01);
    j["p50_trt01"] = num(m.p50_trt01);
    j["p99_trt01"] = num(m.p99_trt01);
  }
  return j;
}

nlohmann::json reported_json(Comparison const& c) {
  nlohmann::json rms = nlohmann::json::object();
  for (auto const& [name, m] : c.metrics)
    rms[name] = {{"whole_tensor", num(m.rel_rms)}, {"max_chunk", num(m.max_chunk_rel_rms)}};
  nlohmann::json j = {{"gated", false},
                      {"note", "reported, not gated: for comparability with FLA's and LAPACK's tests"},
                      {"rel_rms", rms},
                      {"rel_rms_definition", "FLA get_err_ratio: RMS(got - exact) / (RMS(exact) + 1e-8)"}};
  for (auto const& [name, m] : c.metrics) {
    if (!m.has_trt01) continue;
    j["trt01"] = {{"tensor", name},
                  {"definition", "LAPACK xTRT01: ||T Xhat - I||_1 / (n ||T||_1 ||Xhat||_1 u), T = I + A of the "
                                 "reference, Xhat's strictly lower part with unit diagonal, n = the chunk's rows"},
                  {"u", m.trt01_u},
                  {"u_dtype", dtype_name(m.dtype)},
                  {"u_convention", "LAPACK EPS = DLAMCH('E') = unit roundoff 2^-p of the stored dtype (half of "
                                   "numeric_limits::epsilon)"},
                  {"lapack_thresh", 30.0},
                  {"max", num(m.max_trt01)},
                  {"p50", num(m.p50_trt01)},
                  {"p99", num(m.p99_trt01)}};
  }
  return j;
}

nlohmann::json to_json(CheckResult const& r, bool with_chunks) {
  nlohmann::json j = {{"file", r.file},
                      {"case", r.case_name},
                      {"implementation", r.implementation},
                      {"arithmetic", r.arithmetic},
                      {"disposition", disposition_name(r.disposition)}};
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (r.comparison.any_compared()) {
    auto const& w = r.comparison.worst;
    j["worst"] = {{"tensor", w.tensor}, {"sequence", w.sequence}, {"head", w.head},
                  {"chunk", w.chunk},   {"ratio", num(w.ratio)},  {"finite", w.finite}};
    nlohmann::json metrics = nlohmann::json::object();
    for (auto const& [name, m] : r.comparison.metrics) metrics[name] = to_json(m);
    j["metrics"] = metrics;
    j["bound"] = to_json(r.bound);
    j["reported"] = reported_json(r.comparison);
    if (!r.bound.computed) j["bound_reason"] = r.bound.reason;
    // Every bounded tensor: inside "bound" next to A_inv's own fields, or on its own where A_inv has none.
    if (!r.bounds.empty()) {
      nlohmann::json t = nlohmann::json::object();
      for (auto const& [name, s] : r.bounds) t[name] = to_json(s);
      if (j["bound"].is_object()) j["bound"]["tensors"] = t;
      else j["bounds"] = t;
    }
    if (r.explained) {
      auto const& e = *r.explained;
      nlohmann::json w = {{"tensor", e.worst.tensor}, {"sequence", e.worst.sequence}, {"head", e.worst.head},
                          {"chunk", e.worst.chunk},   {"ratio", num(e.worst.ratio)},  {"r_det", num(e.worst.r_det)},
                          {"r_prob", num(e.worst.r_prob)}};
      if (e.has_conditioning) {
        auto const& c = e.conditioning;
        w["conditioning"] = {{"kappa_1", num(c.kappa_1)}, {"kappa_inf", num(c.kappa_inf)}, {"skeel", num(c.skeel)},
                             {"neumann_max", num(c.neumann_max)}, {"max_abs_inv", num(c.max_abs_inv)}};
      }
      j["explained"] = {{"chunks", e.chunks}, {"worst", w}};
    }
    if (with_chunks) {
      nlohmann::json rows = nlohmann::json::array();
      for (auto const& row : r.comparison.rows) rows.push_back(to_json(row));
      j["chunks"] = rows;
    }
  }
  return j;
}

}  // namespace gdnv
