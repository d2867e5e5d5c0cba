// gdnv report RESULTS.json [--bench BENCH.json ...] --out report.html [--top N] [--no-charts]
//
// One self-contained HTML page for a reviewer: the verdict per case and implementation, the worst
// chunks with the command that reproduces each, charts (Vega-Lite, inlined) and every number in
// plain tables. It reads only the results file `gdnv check --json` writes and the files
// `gdnv bench --json` writes; it computes no number of its own.
#include "harness/cli/report.hpp"

#include <fstream>
#include <sstream>

#include "harness/atomic_file.hpp"
#include "harness/cli/commands.hpp"
#include "harness/errors.hpp"
#include "reports/report.hpp"

namespace gdnv::cli {
namespace {

reports::JsonFile read_json(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "", "cannot open");
  std::stringstream s;
  s << in.rdbuf();
  reports::JsonFile f{path, {}};
  try {
    f.json = nlohmann::json::parse(s.str());
  } catch (nlohmann::json::parse_error const& e) {
    throw InputError(path, "", "", std::string("not JSON: ") + e.what());
  }
  return f;
}

struct ReportOptions {
  std::string results;
  std::vector<std::string> benches;
  std::string out;
  int top = 3;
  bool no_charts = false;
};

}  // namespace

void write_report(std::string const& results_path, nlohmann::json const& results,
                  std::vector<std::string> const& bench_paths, std::string const& out, int top, bool charts) {
  std::vector<reports::JsonFile> benches;
  for (auto const& b : bench_paths) benches.push_back(read_json(b));
  reports::ReportOptions ro;
  ro.top = top;
  ro.charts = charts;
  reports::Report rep;
  try {
    rep = reports::render_report({results_path, results}, benches, ro);
  } catch (reports::BadField const& e) {
    throw InputError(e.file(), "", e.field(), e.detail());
  }
  write_text_atomic(out, rep.html);
}

Command add_report_command(CLI::App& root) {
  auto opt = std::make_shared<ReportOptions>();
  CLI::App* app = root.add_subcommand("report", "Write one self-contained HTML report of a results file (and bench files)");
  app->add_option("results", opt->results, "results file (gdnv check --json)")->required();
  app->add_option("--bench", opt->benches, "bench file(s) (gdnv bench --json): per-stage times, per-chunk times");
  app->add_option("--out", opt->out, "the HTML file to write")->required();
  app->add_option("--top", opt->top, "worst chunks listed per case and implementation")->capture_default_str();
  app->add_flag("--no-charts", opt->no_charts, "tables only: no JavaScript in the page");
  return {app, [opt] {
            if (opt->top < 0) throw UsageError("--top must be >= 0");
            reports::JsonFile const r = read_json(opt->results);
            write_report(r.path, r.json, opt->benches, opt->out, opt->top, !opt->no_charts);
            return 0;
          }};
}

}  // namespace gdnv::cli
