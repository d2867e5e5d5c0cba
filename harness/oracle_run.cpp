#include "harness/oracle_run.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "harness/inverse_bound.hpp"
#include "reference/bounds.hpp"
#include "reference/conditioning.hpp"

namespace gdnv {

OracleKernelBound oracle_kernel_bound(Problem const& p, ChunkedResult const& ref, int threads) {
  OracleKernelBound out;
  std::vector<DeclaredArithmetic> seen;
  for (char const* name : {"unfused", "unfused-fp32inv", "cublas", "cublas-fp64"}) {
    auto const a = known_declared_arithmetic(name);
    if (!a || std::find(seen.begin(), seen.end(), *a) != seen.end()) continue;
    seen.push_back(*a);
    InverseBounds const b = inverse_bounds(p, ref, *a, threads);
    out.arithmetics.push_back(a->to_string());
    out.margin_ref = std::max(out.margin_ref, b.margin_ref);
    if (out.det.empty()) {
      out.det = b.det;
      continue;
    }
    for (size_t i = 0; i < out.det.data.size(); ++i) out.det.data[i] = std::min(out.det.data[i], b.det.data[i]);
  }
  return out;
}

OracleCaseReport run_oracle_case(std::string const& name, Problem const& p, OracleCaseOptions const& opt,
                                 ChunkedResult const* ref_in) {
  auto const t0 = std::chrono::steady_clock::now();
  OracleCaseReport rep;
  rep.name = name;
  ChunkedResult own;
  if (!ref_in) {
    ChunkedOptions co;
    co.threads = opt.threads;
    own = chunked_forward(p, co);
  }
  ChunkedResult const& ref = ref_in ? *ref_in : own;
  rep.bound = oracle_kernel_bound(p, ref, opt.threads);
  auto const cond = chunk_conditioning(p, ref);
  auto const sel = select_oracle_chunks(p, cond, opt.samples, opt.worst, opt.seed);
  rep.selected = static_cast<int64_t>(sel.size());
  OracleOptions oo;
  oo.bits = opt.bits;
  oo.threads = opt.threads;
  oo.on_progress = opt.on_progress;
  rep.result = run_oracle(p, ref, rep.bound.det, sel, oo);

  // kappa of each row: conditioning rows are in the order chunks() x value heads
  std::map<std::pair<int64_t, int64_t>, size_t> chunk_index;  // (sequence, chunk) -> index in chunks()
  auto const chunks = p.chunks();
  for (size_t i = 0; i < chunks.size(); ++i) chunk_index[{chunks[i].sequence, chunks[i].chunk}] = i;
  for (auto const& r : rep.result.rows)
    rep.kappa_inf.push_back(cond[chunk_index.at({r.sequence, r.chunk}) * static_cast<size_t>(p.HV) +
                                 static_cast<size_t>(r.head)].kappa_inf);

  for (auto const& r : rep.result.rows) {
    rep.max_ratio = std::max(rep.max_ratio, r.max_ratio());
    for (auto const& t : r.tensors) {
      auto it = std::find_if(rep.max_per_tensor.begin(), rep.max_per_tensor.end(),
                             [&](auto const& e) { return e.first == t.tensor; });
      if (it == rep.max_per_tensor.end()) {
        rep.max_per_tensor.push_back({t.tensor, {}});
        it = std::prev(rep.max_per_tensor.end());
      }
      auto& m = it->second;
      m.ratio = std::max(m.ratio, std::isnan(t.ratio) ? std::numeric_limits<double>::infinity() : t.ratio);
      m.comp_u64 = std::max(m.comp_u64, t.comp_u64);
      m.norm_u64 = std::max(m.norm_u64, t.norm_u64);
      m.against_bound = m.against_bound || t.against_bound;
    }
  }
  rep.passed = rep.max_ratio < opt.max_ratio;  // false for inf / nan
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

namespace {
// nlohmann writes inf and nan as null; say it explicitly.
nlohmann::json num(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json("inf"); }
}  // namespace

nlohmann::json to_json(OracleCaseReport const& r) {
  nlohmann::json j;
  j["case"] = r.name;
  j["passed"] = r.passed;
  j["max_ratio"] = num(r.max_ratio);
  j["seconds"] = r.seconds;
  j["chunks_selected"] = r.selected;
  j["chunks_run"] = r.result.chunks_run;
  j["kernel_bound"] = {{"tensor", "A_inv"},
                       {"bound", "entrywise min of B_det over the arithmetics"},
                       {"arithmetics", r.bound.arithmetics},
                       {"margin_ref_estimate", num(r.bound.margin_ref)}};
  nlohmann::json mx = nlohmann::json::object();
  for (auto const& [name, m] : r.max_per_tensor)
    mx[name] = {{"against", m.against_bound ? "B_det" : "floor"},
                {"ratio", num(m.ratio)},
                {"comp_u64", num(m.comp_u64)},
                {"norm_u64", num(m.norm_u64)}};
  j["max_per_tensor"] = mx;
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < r.result.rows.size(); ++i) {
    auto const& row = r.result.rows[i];
    nlohmann::json t = nlohmann::json::object();
    for (auto const& e : row.tensors)
      t[e.tensor] = {{"against", e.against_bound ? "B_det" : "floor"},
                     {"ratio", num(e.ratio)},
                     {"floor_ratio", num(e.floor_ratio)},
                     {"comp_u64", num(e.comp_u64)},
                     {"norm_u64", num(e.norm_u64)},
                     {"entry", {e.row, e.col}},
                     {"error", num(e.error)},
                     {"scale", num(e.scale)}};
    rows.push_back({{"sequence", row.sequence},
                    {"head", row.head},
                    {"chunk", row.chunk},
                    {"rows", row.rows},
                    {"why", oracle_why_name(row.why)},
                    {"kappa_inf", num(r.kappa_inf[i])},
                    {"max_ratio", num(row.max_ratio())},
                    {"tensors", t}});
  }
  j["chunks"] = rows;
  return j;
}

}  // namespace gdnv
