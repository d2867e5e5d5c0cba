// gdnv selftest [--max-floor-ratio 8] [--variant NAME,...] [--T 200 --K 64 --V 64 --seed 7] [--threads N]
//
// Checks the checker: one small bf16 case of every generator family, in memory; the correct CPU
// model of the serving kernels must pass on every family, and every deliberately wrong variant
// must be flagged (a chunk above the floor-ratio gate, a non-finite value, or a bound ratio R_det
// above 1 on some bounded tensor) on at least one.
// Prints one row per variant; exit 0 when all of that holds, 1 otherwise.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "harness/cli/commands.hpp"
#include "harness/errors.hpp"
#include "harness/selftest.hpp"

namespace gdnv::cli {
namespace {

std::string ratio_str(double r) {
  if (!std::isfinite(r)) return "inf";
  return r < 1e5 ? fmt::format("{:.2f}", r) : fmt::format("{:.1e}", r);
}

// R is a ratio to a bound: 3 significant digits (a correct model sits far below 1).
std::string r_str(double r) {
  if (!std::isfinite(r)) return "inf";
  return r < 1e5 ? fmt::format("{:.3g}", r) : fmt::format("{:.1e}", r);
}

int run_selftest_command(SelftestOptions const& opt) {
  if (!(opt.max_floor_ratio > 0) || !std::isfinite(opt.max_floor_ratio))
    throw UsageError("--max-floor-ratio must be a positive number");
  if (opt.T < 1 || opt.K < 1 || opt.V < 1) throw UsageError("--T, --K and --V must be positive");
  auto const all = selftest_variants();
  for (auto const& name : opt.only) {
    bool known = false;
    std::string list;
    for (auto const& v : all) {
      known = known || v.name == name;
      list += (list.empty() ? "" : ", ") + v.name;
    }
    if (!known) throw UsageError("--variant: unknown variant '" + name + "' (known: " + list + ")");
  }

  SelftestReport const report = run_selftest(opt);
  int64_t const families = report.outcomes.empty() ? 0 : report.outcomes.front().run;
  std::printf("gdnv selftest: %lld families (bf16, T=%lld, H=%lld, HV=%lld, K=%lld, V=%lld, initial state), "
              "max floor ratio %g\n\n",
              static_cast<long long>(families), static_cast<long long>(opt.T), static_cast<long long>(opt.H),
              static_cast<long long>(opt.HV), static_cast<long long>(opt.K), static_cast<long long>(opt.V),
              opt.max_floor_ratio);
  std::printf("%-22s %-9s %9s %9s %9s  %-46s %s\n", "variant", "flagged", "worst", "o/state", "R_det", "worst chunk",
              "verdict");
  for (auto const& o : report.outcomes) {
    std::printf("%-22s %4zu / %-2d %9s %9s %9s  %-46s %s\n", o.variant.name.c_str(), o.flagged.size(), o.run,
                ratio_str(o.worst_ratio).c_str(), ratio_str(o.worst_o_state_ratio).c_str(),
                r_str(o.worst_r_det).c_str(), o.worst_where.c_str(), o.verdict().c_str());
  }
  std::printf("\n");
  for (auto const& o : report.outcomes) {
    if (o.variant.correct() && !o.flagged.empty()) {
      std::string fams;
      for (auto const& f : o.flagged) fams += (fams.empty() ? "" : ", ") + f;
      std::printf("the correct model fails on: %s\n", fams.c_str());
    }
    if (!o.variant.correct() && o.flagged.empty())
      std::printf("%s (%s) is not flagged on any family\n", o.variant.name.c_str(), o.variant.description.c_str());
  }
  std::printf("flagged = families where some chunk of some tensor exceeds the floor-ratio gate or is non-finite, or "
              "some chunk of a bounded tensor has R_det > 1; o/state = worst floor ratio over o and final_state only; R_det = "
              "worst bound ratio over g_cumsum, A, A_inv, w, u, v_new, h, o, final_state (verification-method.md 3.8; the "
              "correct model's arithmetic declared)\n");
  for (auto const& o : report.outcomes)
    if (!o.variant.correct() && o.flagged_by_floor.empty() && !o.flagged_by_bound.empty())
      std::printf("%s is caught by R alone: R_det %s at %s\n", o.variant.name.c_str(), r_str(o.worst_r_det).c_str(),
                  o.worst_r_det_where.c_str());
  for (auto const& o : report.outcomes)
    if (o.variant.correct())
      std::printf("correct model: max R_det %s, max R_prob %s (%s); the fp64 reference's own bound is at most %.1e of "
                  "B_det\n",
                  r_str(o.worst_r_det).c_str(), r_str(o.worst_r_prob).c_str(), o.worst_r_det_where.c_str(),
                  o.margin_ref);
  std::printf("%s in %.1f s\n", report.ok() ? "selftest passed" : "selftest FAILED", report.seconds);
  return report.ok() ? 0 : 1;
}

}  // namespace

Command add_selftest_command(CLI::App& root) {
  auto opt = std::make_shared<SelftestOptions>();
  CLI::App* app = root.add_subcommand(
      "selftest", "Check the checker: the CPU model of the kernels must pass on every family, each deliberate fault must be flagged");
  app->add_option("--max-floor-ratio", opt->max_floor_ratio, "gate on every chunk's floor ratio")->capture_default_str();
  app->add_option("--variant", opt->only, "only these variants (comma separated; 'correct' is the correct model)")
      ->delimiter(',');
  app->add_option("--T", opt->T, "tokens per case (the ragged family picks its own lengths)")->capture_default_str();
  app->add_option("--K", opt->K, "key head dim")->capture_default_str();
  app->add_option("--V", opt->V, "value head dim")->capture_default_str();
  app->add_option("--seed", opt->seed, "generator seed")->capture_default_str();
  app->add_option("--threads", opt->threads, "threads (0: all cores)");
  return {app, [opt] { return run_selftest_command(*opt); }};
}

}  // namespace gdnv::cli
