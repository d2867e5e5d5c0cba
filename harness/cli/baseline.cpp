// gdnv baseline save RESULTS.json... [-o baselines/NAME.json]
// gdnv baseline compare BASELINE.json RESULTS.json... [--junit OUT.xml] [--max-drift 2]
//
// save: per (implementation, family, shape) the p50/p99/max over chunks of the floor ratio (overall and
// per tensor) and of R_det/R_prob, with the environment the results were measured in and the datasets'
// SHA-256 (harness/baseline.hpp). compare: exit 1 on R_det > 1, on a p99 drift above --max-drift, on an
// entry or tensor that disappeared or went from passed to failed; prints a table and (--junit) writes a
// JUnit XML file for CI systems. Bad input: exit 2, one line naming file and field, no output written.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "harness/atomic_file.hpp"
#include "harness/baseline.hpp"
#include "harness/cli/commands.hpp"
#include "harness/environment.hpp"
#include "harness/errors.hpp"

namespace gdnv::cli {
namespace {

namespace bl = gdnv::baseline;

struct BaselineOptions {
  std::vector<std::string> save_results;
  std::string out;
  std::string base;
  std::vector<std::string> compare_results;
  std::string junit;
  double max_drift = 2.0;
};

// "baselines/<gpu name or cpu>.json"
std::string default_out(nlohmann::json const& env) {
  std::string name = "cpu";
  if (env.is_object() && env.contains("gpu") && env["gpu"].is_object()) name = env["gpu"].value("name", std::string("gpu"));
  std::string slug;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) slug += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!slug.empty() && slug.back() != '-') slug += '-';
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return "baselines/" + (slug.empty() ? std::string("baseline") : slug) + ".json";
}

int run_save(BaselineOptions const& opt) {
  bl::ResultsSet const rs = bl::read_results(opt.save_results);
  if (rs.entries.empty())
    throw InputError(opt.save_results.front(), "", "results",
                     "no result with compared chunks (every implementation not_run, not_supported or error)");
  for (auto const& w : rs.warnings) std::printf("warning: %s\n", w.c_str());
  nlohmann::json env = rs.environment;
  if (env.is_null()) {
    // Results written before check recorded its environment: this machine's, marked as such.
    env = environment_info();
    env["source"] = "gdnv baseline save (the results file records no environment)";
  }
  std::string const out = opt.out.empty() ? default_out(env) : opt.out;
  std::filesystem::path const parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
  }
  write_text_atomic(out, bl::baseline_json(rs, env).dump(1) + "\n");
  int passed = 0;
  for (auto const& [k, e] : rs.entries) passed += e.disposition == "passed";
  std::printf("gdnv baseline save: %zu entries (%d passed, %zu failed), %zu result(s) without comparison left out; "
              "wrote %s\n",
              rs.entries.size(), passed, rs.entries.size() - static_cast<size_t>(passed), rs.skipped.size(), out.c_str());
  for (auto const& [k, e] : rs.entries) {
    std::string rdet = "-";
    for (auto const& [t, q] : e.r_det) rdet = fmt::format("{} {:.3g}", t, q.max);
    std::printf("  %-40s %-16s %-30s floor ratio p50 %.2f p99 %.2f max %.2f  R_det max %s\n", e.implementation.c_str(),
                e.family.c_str(), e.shape_key().c_str(), e.floor_ratio.p50, e.floor_ratio.p99, e.floor_ratio.max,
                rdet.c_str());
  }
  return 0;
}

std::string v3(double x) {
  if (!std::isfinite(x)) return std::isnan(x) ? "nan" : "inf";
  return fmt::format("{:.3g}", x);
}

int run_compare(BaselineOptions const& opt) {
  if (!(opt.max_drift > 1.0) || !std::isfinite(opt.max_drift)) throw UsageError("--max-drift must be a number > 1");
  bl::Baseline const base = bl::read_baseline(opt.base);
  bl::ResultsSet const now = bl::read_results(opt.compare_results);
  bl::Report const rep = bl::compare(base, now, opt.max_drift);

  std::printf("gdnv baseline compare: %s against %s (max p99 drift %gx, R_det gate 1)\n", opt.base.c_str(),
              fmt::format("{}", fmt::join(opt.compare_results, ", ")).c_str(), opt.max_drift);
  for (auto const& n : rep.notes) std::printf("%s\n", n.c_str());
  for (auto const& w : rep.warnings) std::printf("warning: %s\n", w.c_str());
  std::printf("\n%-40s %-16s %-30s %-22s %10s %10s %8s  %-8s\n", "implementation", "family", "shape", "metric",
              "baseline", "now", "drift", "verdict");
  for (auto const& c : rep.checks) {
    std::string b = "-", n = "-", d = "-";
    if (c.has_values) {
      b = v3(c.baseline);
      n = v3(c.current);
      d = v3(c.drift) + "x";
    }
    std::printf("%-40s %-16s %-30s %-22s %10s %10s %8s  %-8s\n", c.implementation.c_str(), c.family.c_str(),
                c.shape.c_str(), c.metric.c_str(), b.c_str(), n.c_str(), d.c_str(), c.status.c_str());
  }
  std::printf("(baseline/now: p99 over chunks; for r_det_gate the gate and the max; rel_rms and xtrt01 rows are "
              "reported, not gated)\n");
  bool first = true;
  for (auto const& c : rep.checks) {
    if (!c.failed && c.status != "new" && c.status != "improved") continue;
    std::printf("%s%s / %s %s %s: %s\n", first ? "\n" : "", c.status.c_str(), c.implementation.c_str(),
                c.family.c_str(), c.shape.c_str(), (c.metric + ": " + c.message).c_str());
    first = false;
  }
  int junit_tests = 0;
  for (auto const& c : rep.checks) junit_tests += c.junit;
  std::printf("\n%d check(s), %d failed\n", junit_tests, rep.failures());
  if (!opt.junit.empty()) write_text_atomic(opt.junit, bl::junit_xml(rep, "gdnv baseline compare " + opt.base));
  return rep.failures() > 0 ? 1 : 0;
}

}  // namespace

Command add_baseline_command(CLI::App& root) {
  auto opt = std::make_shared<BaselineOptions>();
  CLI::App* app = root.add_subcommand("baseline", "Save per-(implementation, family, shape) quantiles of check results, "
                                                  "or compare results against a saved baseline");
  app->require_subcommand(1);
  CLI::App* save = app->add_subcommand("save", "Write a baseline from gdnv check --json results file(s)");
  save->add_option("results", opt->save_results, "results file(s) written by gdnv check --json")->required();
  save->add_option("-o,--out", opt->out, "baseline file to write (default baselines/<gpu or cpu>.json)");
  CLI::App* cmp = app->add_subcommand("compare", "Compare results against a baseline: exit 1 on R_det > 1, p99 drift, "
                                                 "a disappeared entry or passed -> failed");
  cmp->add_option("baseline", opt->base, "baseline file (gdnv baseline save)")->required();
  cmp->add_option("results", opt->compare_results, "results file(s) written by gdnv check --json")->required();
  cmp->add_option("--junit", opt->junit, "write a JUnit XML file here");
  cmp->add_option("--max-drift", opt->max_drift, "fail when a p99 exceeds this multiple of the baseline's")
      ->capture_default_str();
  return {app, [opt, save, cmp] {
            if (save->parsed()) return run_save(*opt);
            if (cmp->parsed()) return run_compare(*opt);
            throw UsageError("gdnv baseline: expected save or compare");
          }};
}

}  // namespace gdnv::cli
