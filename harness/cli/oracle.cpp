// gdnv oracle FILE [--case NAME] [--samples N] [--worst N] [--seed S] [--bits 256] [--max-ratio 1e-3]
//                  [--json OUT] [--threads N]
//
// Proves that the fp64 reference every other command trusts is accurate enough to judge kernels:
// per case, an MPFR recomputation (reference/oracle.hpp) of the worst-conditioned chunks (by
// kappa_inf of I + A) and a seeded sample of the others, from the sequence start so that each
// chunk's incoming state is exact too, and the reference's error on every stage tensor against the
// tightest kernel bound on A_inv (B_det, reference/bounds.hpp) and against the bf16 output floor
// elsewhere. Exit status: 0 every ratio is below --max-ratio (harness/oracle_run.hpp says why 1e-3),
// 1 one is not, 2 bad input or usage.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/atomic_file.hpp"
#include "harness/cli/commands.hpp"
#include "harness/dataset.hpp"
#include "harness/errors.hpp"
#include "harness/oracle_run.hpp"
#include "harness/progress.hpp"

namespace gdnv::cli {
namespace {

struct OracleCliOptions {
  std::string file, case_name, json_out;
  int samples = 4, worst = 2, bits = 256, threads = 0;
  uint64_t seed = 1;
  double max_ratio = kOracleGate;
};

std::string ratio_str(double r) {
  if (!std::isfinite(r)) return "inf";
  if (r == 0) return "0";
  return fmt::format("{:.1e}", r);
}

void print_case(OracleCaseReport const& r, OracleCliOptions const& opt) {
  fmt::print("\ncase {}: {} chunk(s) selected, {} run (with the chunks before them), {:.1f} s; {}\n", r.name,
             r.selected, r.result.chunks_run, r.seconds, r.passed ? "passed" : "FAILED");
  fmt::print("  A_inv against min B_det over {} kernel arithmetics (analytic estimate of the reference's share: "
             "margin_ref {}); other tensors against the bf16 floor 2^-9 |x|\n",
             r.bound.arithmetics.size(), ratio_str(r.bound.margin_ref));
  std::vector<std::string> names;
  for (auto const& [n, m] : r.max_per_tensor) names.push_back(n);
  std::string head = fmt::format("  {:>3} {:>4} {:>5} {:>4} {:<6} {:>9}", "seq", "head", "chunk", "rows", "why", "kappa_inf");
  for (auto const& n : names) head += fmt::format(" {:>11}", n);
  fmt::print("{}\n", head);
  for (size_t i = 0; i < r.result.rows.size(); ++i) {
    auto const& row = r.result.rows[i];
    std::string line = fmt::format("  {:>3} {:>4} {:>5} {:>4} {:<6} {:>9.3g}", row.sequence, row.head, row.chunk,
                                   row.rows, oracle_why_name(row.why), r.kappa_inf[i]);
    for (auto const& n : names) {
      auto const* t = row.find(n);
      line += fmt::format(" {:>11}", t ? ratio_str(t->ratio) : "-");
    }
    fmt::print("{}\n", line);
  }
  auto summary = [&](char const* label, auto get) {
    std::string line = fmt::format("  {:<35}", label);
    for (auto const& [n, m] : r.max_per_tensor) line += fmt::format(" {:>11}", get(m));
    fmt::print("{}\n", line);
  };
  summary("max ratio (B_det or floor)", [](auto const& m) { return ratio_str(m.ratio); });
  summary("max componentwise error (u64)", [](auto const& m) { return fmt::format("{:.3g}", m.comp_u64); });
  summary("max normwise error (u64)", [](auto const& m) { return fmt::format("{:.3g}", m.norm_u64); });
  (void)opt;
}

int run_oracle_cli(OracleCliOptions const& opt) {
  if (opt.samples < 0 || opt.worst < 0) throw UsageError("--samples and --worst must be >= 0");
  if (opt.bits < 64 || opt.bits > 65536) throw UsageError("--bits " + std::to_string(opt.bits) + ": expected 64..65536");
  if (!(opt.max_ratio > 0)) throw UsageError("--max-ratio must be > 0");
  ReadOptions ro;
  ro.load_captured = false;
  if (!opt.case_name.empty()) ro.case_name = opt.case_name;
  Dataset const ds = read_dataset(opt.file, ro);

  fmt::print("gdnv oracle: {}, {}-bit MPFR; per case the {} worst-conditioned chunk(s) (kappa_inf) and {} sampled "
             "(seed {}); gate: every ratio < {:g}\n",
             opt.file, opt.bits, opt.worst, opt.samples, opt.seed, opt.max_ratio);
  nlohmann::json cases = nlohmann::json::array();
  bool all = true;
  double worst_bound = 0, worst_floor = 0;
  for (auto const& c : ds.cases) {
    OracleCaseOptions co;
    co.samples = opt.samples;
    co.worst = opt.worst;
    co.seed = opt.seed;
    co.bits = opt.bits;
    co.threads = opt.threads;
    co.max_ratio = opt.max_ratio;
    // one step per (sequence, value head) run; the count is known once the chunks are selected
    auto progress = std::make_shared<std::unique_ptr<Progress>>();
    co.on_progress = [progress, name = c.name](int64_t total, std::string const& what) {
      if (!*progress) *progress = std::make_unique<Progress>("oracle " + name, total);
      (*progress)->step(what);
    };
    OracleCaseReport const r = run_oracle_case(c.name, c.problem, co);
    progress->reset();
    print_case(r, opt);
    all = all && r.passed;
    for (auto const& [n, m] : r.max_per_tensor) (m.against_bound ? worst_bound : worst_floor) =
        std::max(m.against_bound ? worst_bound : worst_floor, m.ratio);
    cases.push_back(to_json(r));
  }
  fmt::print("\n{}: the fp64 reference's error is at most {} of the kernel bound B_det on A_inv and {} of the bf16 "
             "floor on every tensor, on every chunk run (gate {:g})\n",
             all ? "passed" : "FAILED", ratio_str(worst_bound), ratio_str(worst_floor), opt.max_ratio);
  if (!opt.json_out.empty()) {
    nlohmann::json j;
    j["tool"] = "gdnv";
    j["version"] = GDNV_VERSION;
    j["command"] = "oracle";
    j["file"] = opt.file;
    j["bits"] = opt.bits;
    j["samples"] = opt.samples;
    j["worst"] = opt.worst;
    j["seed"] = opt.seed;
    j["max_ratio_gate"] = opt.max_ratio;
    j["floor"] = "2^-9 max(|x|, 2^-15 max|x| over the chunk's block, 2^-126)";
    j["passed"] = all;
    j["cases"] = cases;
    write_text_atomic(opt.json_out, j.dump(1) + "\n");
  }
  return all ? 0 : 1;
}

}  // namespace

Command add_oracle_command(CLI::App& root) {
  auto opt = std::make_shared<OracleCliOptions>();
  CLI::App* app = root.add_subcommand(
      "oracle", "Prove on sampled and worst-conditioned chunks, in MPFR, that the fp64 reference's error is far below every kernel bound");
  app->add_option("file", opt->file, "dataset file (HDF5, schema v1)")->required();
  app->add_option("--case", opt->case_name, "only this case");
  app->add_option("--samples", opt->samples, "chunks (sequence, value head, chunk) drawn at random per case")
      ->capture_default_str();
  app->add_option("--worst", opt->worst, "worst-conditioned chunks (largest kappa_inf of I + A) per case")
      ->capture_default_str();
  app->add_option("--seed", opt->seed, "seed of the sample")->capture_default_str();
  app->add_option("--bits", opt->bits, "MPFR precision in bits")->capture_default_str();
  app->add_option("--max-ratio", opt->max_ratio, "gate on every ratio (error / bound or floor)")->capture_default_str();
  app->add_option("--json", opt->json_out, "write the results here (atomically)");
  app->add_option("--threads", opt->threads, "threads (0: all cores)");
  return {app, [opt] { return run_oracle_cli(*opt); }};
}

}  // namespace gdnv::cli
