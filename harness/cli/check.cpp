// gdnv check FILE [--case NAME] [--impl a,b] [--json OUT] [--max-floor-ratio X]
//
// For every case: the fp64 chunked reference from the stored inputs, then every captured group
// and every --impl implementation compared per chunk. An implementation passes when every
// chunk's floor ratio is <= X (default 8) and every value is finite, and, where it declares its
// arithmetic, every chunk of every bounded tensor (A, A_inv, w, u, v_new, h, o, final_state) has a
// componentwise bound ratio R_det <= 1 (harness/inverse_bound.hpp; this is what catches tf32 merges
// and a bf16 running state). R_det > 1 is a fault (failed). Chunks above the floor gate that are all
// inside their bounds make the result `explained` (by conditioning: the error the declared arithmetic
// allows on that chunk), which counts as a pass.
//
// Why 8: the floor is the error of rounding the exact result once to the output dtype. A correct
// bf16 kernel also rounds its operands (A_inv, w, u, the state operand, the score matrix) to bf16
// on the way, each adding an error of the same order; measured correct pipelines sit near 1-4x
// the floor per chunk (FLA 2.0x on the whole output). A wrong mask, a gate off by a token or a lost
// state lands far above 8; faults that stay near the bf16 floor (tf32 merges, a bf16 running state)
// need the componentwise bounds of the error analysis (`gdnv selftest` lists what is caught).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/atomic_file.hpp"
#include "harness/attribution.hpp"
#include "harness/cli/commands.hpp"
#include "harness/cli/report.hpp"
#include "harness/compare.hpp"
#include "harness/dataset.hpp"
#include "harness/environment.hpp"
#include "harness/errors.hpp"
#include "harness/gpu_implementations.hpp"
#include "harness/implementation.hpp"
#include "harness/inverse_bound.hpp"
#include "harness/progress.hpp"
#include "harness/results.hpp"
#include "reference/chunked.hpp"
#include "reference/conditioning.hpp"

namespace gdnv::cli {
namespace {

struct CheckOptions {
  std::vector<std::string> files;
  std::string case_name;
  std::vector<std::string> impls;
  std::string json_out;
  std::string report_out;
  double max_floor_ratio = 8.0;
  int top = 5;
  int threads = 0;
  bool no_chunk_rows = false;
  // Stage attribution (harness/attribution.hpp): off by default, since it re-runs the fp64 reference
  // once per stage and implementation (about 9x the reference time per implementation with isolated stages).
  bool attribution = false;
  int attribution_chunks = 3;
};

std::string ratio_str(double r) { return std::isfinite(r) ? fmt::format("{:.2f}", r) : "inf"; }

std::string where_str(ChunkRow const& w) {
  if (w.chunk < 0) return fmt::format("{} seq {} head {} (final)", w.tensor, w.sequence, w.head);
  return fmt::format("{} seq {} head {} chunk {}", w.tensor, w.sequence, w.head, w.chunk);
}

// keep (optional) receives the implementation's outputs, for the fused-vs-unfused comparison.
CheckResult judge(std::string const& file, Case const& c, Implementation& impl, ChunkedResult const& ref,
                  std::vector<ChunkConditioning> const& cond, BoundsCache& cache, double max_ratio,
                  StageOutputs* keep = nullptr) {
  CheckResult r;
  r.file = file;
  r.case_name = c.name;
  r.implementation = impl.name();
  r.arithmetic = impl.arithmetic();
  Availability const a = impl.can_implement(c.problem);
  if (a.kind != Availability::Kind::ok) {
    r.disposition = a.kind == Availability::Kind::not_run ? Disposition::not_run : Disposition::not_supported;
    r.reason = a.reason;
    return r;
  }
  StageOutputs out = impl.run(c.problem);
  if (c.problem.chunk_size != kChunk) {
    // Intermediates of another chunk size have other layouts; only o and the state compare.
    for (auto it = out.begin(); it != out.end();)
      it = (it->first == "o" || it->first == "final_state") ? std::next(it) : out.erase(it);
    r.reason = fmt::format("chunk_size {}: only o and final_state compared", c.problem.chunk_size);
  }
  if (keep) *keep = out;
  try {
    r.comparison = compare_outputs(c.problem, ref, out);
  } catch (std::exception const& e) {
    r.disposition = Disposition::error;
    r.reason = e.what();
    return r;
  }
  if (!r.comparison.any_compared()) {
    r.disposition = Disposition::error;
    r.reason = "produced no tensor the reference has";
    return r;
  }
  auto const& w = r.comparison.worst;
  bool const ok = w.finite && w.ratio <= max_ratio;
  r.disposition = ok ? Disposition::passed : Disposition::failed;
  if (!ok) {
    r.reason = w.finite ? fmt::format("{}: floor ratio {} > {}", where_str(w), ratio_str(w.ratio), max_ratio)
                        : fmt::format("{}: non-finite values", where_str(w));
  }
  // R on every bounded tensor: a second gate (R_det <= 1), and what explains a floor-ratio failure
  apply_bounds(r, impl, c.problem, ref, out, max_ratio, &cond, &cache);
  return r;
}

// The same implementation with every stage fed the reference's inputs to that stage, so an
// error is attributed to the stage that made it rather than to the ones it flows through.
class IsolatedStages final : public Implementation {
 public:
  IsolatedStages(Implementation& inner, ChunkedResult const& ref) : inner_(inner), ref_(ref) {}
  std::string name() const override { return inner_.name() + "[isolated]"; }
  std::string arithmetic() const override { return inner_.arithmetic(); }
  Availability can_implement(Problem const& p) const override { return inner_.can_implement(p); }
  StageOutputs run(Problem const& p) override { return inner_.run_isolated(p, ref_); }

 private:
  Implementation& inner_;
  ChunkedResult const& ref_;
};

// Per-chunk conditioning of I + A (reference/conditioning.hpp) on the case's entry: it depends on the
// inputs only, so the report can set every implementation's error against it. Rows unless
// --no-chunk-rows; the summary always.
void add_conditioning(nlohmann::json& case_entry, std::vector<ChunkConditioning> const& cond, bool with_rows) {
  if (cond.empty()) return;
  nlohmann::json rows = nlohmann::json::array();
  std::vector<double> kinf, skeel;
  double neumann = 0, structural = 0, max_inv = 0;
  for (auto const& c : cond) {
    kinf.push_back(c.kappa_inf);
    skeel.push_back(c.skeel);
    neumann = std::max(neumann, c.neumann_max);
    structural = std::max(structural, c.structural_bound);
    max_inv = std::max(max_inv, c.max_abs_inv);
    if (with_rows)
      rows.push_back({{"sequence", c.sequence}, {"head", c.head}, {"chunk", c.chunk}, {"rows", c.rows},
                      {"kappa_1", c.kappa_1}, {"kappa_inf", c.kappa_inf}, {"skeel", c.skeel},
                      {"max_abs_inv", c.max_abs_inv}, {"structural_bound", c.structural_bound},
                      {"norm_A_inf", c.norm_A_inf}, {"neumann_max", c.neumann_max}, {"max_beta_k2", c.max_beta_k2}});
  }
  auto median_max = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return nlohmann::json{{"median", v[v.size() / 2]}, {"max", v.back()}};
  };
  case_entry["conditioning_summary"] = {{"chunks", static_cast<int64_t>(cond.size())}, {"kappa_inf", median_max(kinf)},
                                        {"skeel", median_max(skeel)}, {"neumann_max", neumann},
                                        {"structural_bound", structural}, {"max_abs_inv", max_inv}};
  if (with_rows) case_entry["conditioning"] = rows;
}

// Fused kernels against the pipelines they replace ("pairs" in the JSON; pair_partners: unfused, and for
// fused-forward also fused-intra-v3, whose bytes it claims; for fused-forward-from-v, fused-forward): both sides
// are judged against the reference;
// this says in addition whether they compute the same numbers.
bool is_pair_member(std::string const& name) { return name == "unfused" || name.rfind("fused", 0) == 0; }

void add_pairs(nlohmann::json& pairs, std::string const& file, std::string const& case_name,
               std::map<std::string, StageOutputs> const& kept) {
  for (auto const& [name, out] : kept) {
    if (out.empty()) continue;
    for (std::string const& partner : pair_partners(name)) {
      auto const other = kept.find(partner);
      if (other == kept.end() || other->second.empty()) continue;
      nlohmann::json t = nlohmann::json::object();
      for (auto const& [tensor, st] : compare_pair(out, other->second))
        t[tensor] = {{"elements", st.elements}, {"bit_equal", st.equal}, {"bit_equal_fraction", st.equal_fraction()},
                     {"max_abs_diff", st.max_abs_diff}};
      pairs.push_back({{"file", file}, {"case", case_name}, {"implementation", name}, {"against", partner}, {"tensors", t}});
    }
  }
}

void print_pairs(nlohmann::json const& pairs) {
  if (pairs.empty()) return;
  std::printf("\n%-26s %-24s %-16s %-12s %14s %14s\n", "case", "fused kernel", "against", "tensor", "bit-equal",
              "max |diff|");
  for (auto const& p : pairs)
    for (auto const& [tensor, st] : p["tensors"].items()) {
      if (tensor != "A_inv" && tensor != "o" && tensor != "w" && tensor != "u") continue;
      std::printf("%-26s %-24s %-16s %-12s %13.2f%% %14.3e\n", p["case"].get<std::string>().c_str(),
                  p["implementation"].get<std::string>().c_str(), p["against"].get<std::string>().c_str(),
                  tensor.c_str(), 100.0 * st["bit_equal_fraction"].get<double>(), st["max_abs_diff"].get<double>());
    }
}

void print_table(std::vector<CheckResult> const& results, CheckOptions const& opt) {
  std::printf("%-26s %-40s %-13s %-36s %8s %10s %10s %8s\n", "case", "implementation", "disposition",
              "worst chunk", "ratio", "o ratio", "o rel_rms", "R_det");
  for (auto const& r : results) {
    std::string worst = "-", ratio = "-", o_ratio = "-", o_rms = "-";
    if (r.comparison.any_compared()) {
      worst = where_str(r.comparison.worst);
      ratio = ratio_str(r.comparison.worst.ratio);
      auto it = r.comparison.metrics.find("o");
      if (it != r.comparison.metrics.end()) {
        o_ratio = ratio_str(it->second.floor_ratio);
        o_rms = fmt::format("{:.3e}", it->second.rel_rms);
      }
    }
    // the largest bound ratio over every bounded tensor (harness/inverse_bound.hpp), where computed
    double max_r = -1;
    for (auto const& [name, b] : r.bounds)
      if (b.computed) max_r = std::max(max_r, b.max_r_det);
    std::string const r_det = max_r >= 0 ? fmt::format("{:.3g}", max_r) : "-";
    std::printf("%-26s %-40s %-13s %-36s %8s %10s %10s %8s\n", r.case_name.c_str(), r.implementation.c_str(),
                disposition_name(r.disposition).c_str(), worst.c_str(), ratio.c_str(), o_ratio.c_str(),
                o_rms.c_str(), r_det.c_str());
  }
  // The worst chunks of each checked implementation, so a reviewer sees where to look.
  if (opt.top > 0) {
    for (auto const& r : results) {
      if (!r.comparison.any_compared()) continue;
      std::vector<ChunkRow> rows = r.comparison.rows;
      size_t const k = std::min<size_t>(static_cast<size_t>(opt.top), rows.size());
      std::partial_sort(rows.begin(), rows.begin() + static_cast<long>(k), rows.end(),
                        [](ChunkRow const& a, ChunkRow const& b) { return a.ratio > b.ratio; });
      std::printf("\n%s / %s: worst %zu chunks (ratio = error / bf16-rounding floor)\n", r.case_name.c_str(),
                  r.implementation.c_str(), k);
      for (size_t i = 0; i < k; ++i) {
        auto const& w = rows[i];
        std::printf("  %-44s rows %3lld  ratio %8s  error %.3e  floor %.3e%s\n", where_str(w).c_str(),
                    static_cast<long long>(w.rows), ratio_str(w.ratio).c_str(), w.error_norm, w.floor_norm,
                    w.floor_from_u ? " (u*|exact|)" : "");
      }
    }
  }
  bool first = true;
  std::set<std::string> said;  // a not_run reason is the same for every case: say it once
  for (auto const& r : results) {
    if (r.reason.empty()) continue;
    bool const skipped = r.disposition == Disposition::not_run || r.disposition == Disposition::not_supported;
    if (skipped && !said.insert(r.implementation + r.reason).second) continue;
    std::printf("%s%s / %s: %s\n", first ? "\n" : "", r.case_name.c_str(), r.implementation.c_str(), r.reason.c_str());
    first = false;
  }
}

// FLA's relative RMS and LAPACK's xTRT01 ratio (harness/normwise.hpp): printed for comparability with
// other projects' tests, never part of the verdict.
void print_reported(std::vector<CheckResult> const& results) {
  bool any = false;
  for (auto const& r : results) any = any || r.comparison.any_compared();
  if (!any) return;
  std::printf("\nreported, not gated: FLA rel_rms = RMS(got - exact) / (RMS(exact) + 1e-8), worst chunk over all "
              "tensors;\nLAPACK xTRT01 = ||T Xhat - I||_1 / (n ||T||_1 ||Xhat||_1 u) on A_inv per chunk, u = unit "
              "roundoff of A_inv's dtype (LAPACK EPS: bf16 2^-8, fp32 2^-24); LAPACK's THRESH is 30\n");
  std::printf("%-26s %-40s %16s %-10s %12s %12s\n", "case", "implementation", "max chunk rel_rms", " (tensor)",
              "xTRT01 p50", "xTRT01 max");
  for (auto const& r : results) {
    if (!r.comparison.any_compared()) continue;
    double worst = -1;
    std::string tensor = "-", p50 = "-", mx = "-";
    for (auto const& [name, m] : r.comparison.metrics) {
      if (!(m.max_chunk_rel_rms <= worst)) {
        worst = m.max_chunk_rel_rms;
        tensor = name;
      }
      if (m.has_trt01) {
        p50 = fmt::format("{:.3g}", m.p50_trt01);
        mx = fmt::format("{:.3g}", m.max_trt01);
      }
    }
    std::printf("%-26s %-40s %16.3e  %-10s %12s %12s\n", r.case_name.c_str(), r.implementation.c_str(), worst,
                ("(" + tensor + ")").c_str(), p50.c_str(), mx.c_str());
  }
}

int run_check(CheckOptions const& opt) {
  if (!(opt.max_floor_ratio > 0) || !std::isfinite(opt.max_floor_ratio))
    throw UsageError("--max-floor-ratio must be a positive number");
  // Build the implementations first: an unknown name is a usage error before any work.
  std::vector<std::unique_ptr<Implementation>> impls;
  for (auto const& name : opt.impls) impls.push_back(make_implementation(name));

  // Read (and validate) every file before computing, so bad input fails fast with status 2.
  std::vector<Dataset> datasets;
  for (auto const& f : opt.files) {
    ReadOptions ro;
    if (!opt.case_name.empty()) ro.case_name = opt.case_name;
    datasets.push_back(read_dataset(f, ro));
  }

  std::vector<CheckResult> results;
  nlohmann::json pairs = nlohmann::json::array();
  nlohmann::json cases = nlohmann::json::array();
  std::vector<Attribution> attributions;
  int64_t total_cases = 0;
  for (auto const& ds : datasets) total_cases += static_cast<int64_t>(ds.cases.size());
  Progress progress("check", total_cases);
  for (auto const& ds : datasets) {
    for (auto const& c : ds.cases) {
      auto const& p = c.problem;
      ChunkedOptions co;
      co.threads = opt.threads;
      ChunkedResult const ref = chunked_forward(p, co);
      cases.push_back({{"file", ds.path}, {"case", c.name}, {"family", c.family}, {"source", c.source},
                       {"B", p.B}, {"T", p.T}, {"H", p.H}, {"HV", p.HV}, {"K", p.K}, {"V", p.V},
                       {"sequences", p.num_sequences()}, {"chunks", static_cast<int64_t>(p.chunks().size())},
                       {"scale", p.scale}, {"qk_l2norm", p.qk_l2norm}, {"input_dtype", dtype_name(input_dtype(p))},
                       {"initial_state", !p.initial_state.empty()}});
      std::vector<ChunkConditioning> const cond = chunk_conditioning(p, ref);
      BoundsCache cache;  // this case's bounds, per declared arithmetic
      add_conditioning(cases.back(), cond, !opt.no_chunk_rows);
      for (auto const& g : c.captured) {
        CapturedImplementation impl(g);
        results.push_back(judge(ds.path, c, impl, ref, cond, cache, opt.max_floor_ratio));
      }
      auto add_attribution = [&](Attribution a, std::string const& impl_name) {
        a.file = ds.path;
        a.case_name = c.name;
        a.implementation = impl_name;
        attributions.push_back(std::move(a));
      };
      if (opt.attribution)
        for (auto const& g : c.captured)
          add_attribution(attribution_not_available(
                              g.tensors.size() > 1 ? "captured group: its intermediates are end-to-end values, with no "
                                                     "isolated stage outputs"
                                                   : "captured group: no intermediates and no isolated stage outputs"),
                          "captured:" + g.name);
      std::map<std::string, StageOutputs> kept;  // "unfused" and "fused*" outputs of this case
      for (auto& impl : impls) {
        bool const keep = opt.attribution || is_pair_member(impl->name());
        results.push_back(
            judge(ds.path, c, *impl, ref, cond, cache, opt.max_floor_ratio, keep ? &kept[impl->name()] : nullptr));
        size_t const e2e_index = results.size() - 1;  // results grows below: keep an index, not a reference
        StageOutputs isolated_out;
        bool isolated_ok = false;
        if (impl->has_isolated_stages()) {
          IsolatedStages isolated(*impl, ref);
          results.push_back(judge(ds.path, c, isolated, ref, cond, cache, opt.max_floor_ratio,
                                  opt.attribution ? &isolated_out : nullptr));
          isolated_ok = results.back().comparison.any_compared();
        }
        if (!opt.attribution) continue;
        CheckResult const& e2e_now = results[e2e_index];
        if (e2e_now.disposition == Disposition::not_run || e2e_now.disposition == Disposition::not_supported)
          add_attribution(attribution_not_available(disposition_name(e2e_now.disposition) + ": " + e2e_now.reason),
                          impl->name());
        else if (!impl->has_isolated_stages())
          add_attribution(attribution_not_available("the implementation has no isolated stages"), impl->name());
        else if (p.chunk_size != kChunk || !isolated_ok || !e2e_now.comparison.any_compared())
          add_attribution(attribution_not_available(p.chunk_size != kChunk ? "chunk_size is not 64"
                                                                           : "the end-to-end or isolated run failed"),
                          impl->name());
        else
          add_attribution(attribute_stages(p, ref, kept[impl->name()], isolated_out, opt.attribution_chunks, opt.threads),
                          impl->name());
        if (!is_pair_member(impl->name())) kept.erase(impl->name());  // keep memory to what add_pairs reads
      }
      add_pairs(pairs, ds.path, c.name, kept);
      progress.step(c.name);
    }
  }

  std::printf("gdnv check: %zu case(s), max floor ratio %g\n\n", static_cast<size_t>(total_cases), opt.max_floor_ratio);
  print_table(results, opt);
  int passed = 0, failed = 0, other = 0, explained = 0;
  for (auto const& r : results) {
    if (r.disposition == Disposition::passed) ++passed;
    else if (r.disposition == Disposition::explained) ++explained;
    else if (r.disposition == Disposition::failed || r.disposition == Disposition::error) ++failed;
    else ++other;
  }
  print_pairs(pairs);
  for (auto const& a : attributions) std::fputs(format_attribution(a).c_str(), stdout);
  print_reported(results);
  std::printf("\n%d passed, %d failed, %d not run or not supported, %d explained by conditioning\n", passed, failed,
              other, explained);

  if (!opt.json_out.empty() || !opt.report_out.empty()) {
    nlohmann::json j;
    j["tool"] = "gdnv";
    j["version"] = GDNV_VERSION;
    j["command"] = "check";
    j["max_floor_ratio"] = opt.max_floor_ratio;
    j["files"] = opt.files;
    // Where this ran and on exactly which data: what `gdnv baseline` records and compares.
    j["environment"] = environment_info();
    nlohmann::json hashes = nlohmann::json::array();
    for (auto const& f : opt.files) {
      int64_t bytes = 0;
      std::string const sha = sha256_file(f, &bytes);
      hashes.push_back({{"path", f}, {"sha256", sha}, {"bytes", bytes}});
    }
    j["datasets"] = hashes;
    j["cases"] = cases;
    nlohmann::json arr = nlohmann::json::array();
    for (auto const& r : results) arr.push_back(to_json(r, !opt.no_chunk_rows));
    j["results"] = arr;
    j["pairs"] = pairs;
    if (opt.attribution) {
      nlohmann::json att = nlohmann::json::array();
      for (auto const& a : attributions) att.push_back(to_json(a));
      j["attribution"] = att;
    }
    j["summary"] = {{"passed", passed}, {"failed", failed}, {"other", other}, {"explained", explained}};
    if (!opt.json_out.empty()) write_text_atomic(opt.json_out, j.dump(1) + "\n");
    if (!opt.report_out.empty()) write_report(opt.json_out.empty() ? "(gdnv check)" : opt.json_out, j, {}, opt.report_out);
  }
  return failed > 0 ? 1 : 0;
}

}  // namespace

Command add_check_command(CLI::App& root) {
  auto opt = std::make_shared<CheckOptions>();
  CLI::App* app = root.add_subcommand("check", "Compare captured outputs and implementations with the fp64 reference, per chunk");
  app->add_option("files", opt->files, "dataset file(s) (HDF5, schema v1)")->required();
  app->add_option("--case", opt->case_name, "only this case");
  app->add_option("--impl", opt->impls, "implementations to run on every case (comma separated)")->delimiter(',');
  app->add_option("--json", opt->json_out, "write the results file here");
  app->add_option("--report", opt->report_out, "write the HTML report here (as gdnv report)");
  app->add_option("--max-floor-ratio", opt->max_floor_ratio, "pass threshold on every chunk's floor ratio")
      ->capture_default_str();
  app->add_option("--top", opt->top, "worst chunks to print per implementation")->capture_default_str();
  app->add_option("--threads", opt->threads, "reference threads (0: all cores)");
  app->add_flag("--no-chunk-rows", opt->no_chunk_rows, "leave the per-chunk rows out of the JSON");
  app->add_flag("--attribution", opt->attribution,
                "per implementation with isolated stages: each stage's error on exact inputs and what it adds to o "
                "and final_state (the fp64 reference continued from that stage's output); a table per case and "
                "\"attribution\" in the JSON");
  app->add_option("--attribution-chunks", opt->attribution_chunks,
                  "worst chunks (end-to-end o floor ratio) attributed per case and implementation")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  return {app, [opt] { return run_check(*opt); }};
}

}  // namespace gdnv::cli
