// gdnv report as a reviewer meets it: one self-contained page with the verdicts, the worst chunks and
// the command reproducing each, every number in tables; bad input ends with status 2, one line
// naming file and field, and no page (or a half page) left behind.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace fs = std::filesystem;
namespace bdata = boost::unit_test::data;
using gdnv::test::quote;
using gdnv::test::TempDir;
using nlohmann::json;

namespace {

using Run = gdnv::test::CliRun;
using gdnv::test::slurp;

// Runs gdnv from the source tree (results files name datasets relative to it).
Run run_gdnv(TempDir const& tmp, std::string const& args) { return gdnv::test::run_gdnv(tmp.path, args, GDNV_SOURCE_DIR); }

int count_lines(std::string const& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

bool contains(std::string const& hay, std::string const& needle) { return hay.find(needle) != std::string::npos; }

// Anything in the directory whose name starts with the target's (the target, or a temporary).
bool leftovers(fs::path const& target) {
  for (auto const& e : fs::directory_iterator(target.parent_path()))
    if (e.path().filename().string().rfind(target.filename().string(), 0) == 0) return true;
  return false;
}

std::string html_escape(std::string const& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else if (c == '\'') o += "&#39;";
    else o += c;
  }
  return o;
}

std::string const kH100Check = "bench/results/check-default-H100.json";
std::string const kBench = "bench/results/bench-H100-qwen3-next.json";
std::string const kBenchPerChunk = "bench/results/bench-H100-qwen3-next-T8192-per-chunk.json";
constexpr size_t kMaxBytes = 2u << 20;  // the limit for the default dataset

// The main job's results (scripts/main.sh): the default dataset with our GPU implementations (not_run
// on a CPU) and the CPU model of the bf16 kernels with its [isolated] stages.
fs::path default_results(TempDir const& tmp) {
  fs::path const j = tmp.file("default.json");
  Run const r = run_gdnv(tmp, "check datasets/default.h5 --impl unfused,cublas,emulated --json " + quote(j.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
  return j;
}

// Every result of the file has its verdict row, and each compared one its reproducing command.
void expect_verdicts(std::string const& html, json const& results) {
  BOOST_TEST_REQUIRE(results["results"].size() > 0u);
  for (auto const& r : results["results"]) {
    std::string const c = r["case"], impl = r["implementation"], disp = r["disposition"];
    std::string const row = fmt::format("<td>{}<td>{}<td><span class=\"badge", html_escape(c), html_escape(impl));
    BOOST_TEST(contains(html, row), "no verdict row for " << c << " / " << impl);
    BOOST_TEST(contains(html, row + (disp == "passed" ? " ok\">" : disp == "explained" ? " expl\">" : disp == "failed" ? " bad\">" : " skip\">") + disp));
    if (r.contains("chunks")) {
      std::string cmd = "gdnv check " + r["file"].get<std::string>() + " --case " + c;
      if (impl.rfind("captured:", 0) != 0) cmd += " --impl " + impl.substr(0, impl.find('['));
      BOOST_TEST(contains(html, "<code>" + html_escape(cmd) + "</code>"), "no command " << cmd);
    }
  }
}

void expect_self_contained(std::string const& html) {
  BOOST_TEST(html.rfind("<!DOCTYPE html>", 0) == 0);
  BOOST_TEST(contains(html, "Content-Security-Policy\" content=\"default-src 'none'"));
  for (char const* ref : {"src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import", "url(http"})
    BOOST_TEST(!contains(html, ref), "the page refers outside itself: " << ref);
  BOOST_TEST(html.size() < kMaxBytes, "page is " << html.size() << " bytes");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report_cli)

BOOST_AUTO_TEST_CASE(default_results_have_verdicts_commands_and_fit_2mb) {
  TempDir tmp;
  fs::path const results = default_results(tmp);
  fs::path const page = tmp.file("report.html");
  Run const r = run_gdnv(tmp, "report " + quote(results.string()) + " --out " + quote(page.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(r.err.empty(), r.err);
  std::string const html = slurp(page);
  BOOST_TEST_MESSAGE("default report: " << html.size() << " bytes");
  expect_self_contained(html);
  expect_verdicts(html, json::parse(slurp(results)));
  BOOST_TEST(contains(html, "id=\"verdict\""));
  BOOST_TEST(contains(html, "Worst chunks"));
  BOOST_TEST(!leftovers(tmp.file("report.html.tmp")));
  // emulated and emulated[isolated] both have metrics: the stage attribution chart is drawn
  if (slurp(fs::path(GDNV_REPORT_ASSET_DIR) / "status.txt") == "ok")
    BOOST_TEST(contains(html, "id=\"chart-attribution-spec\""));
}

// gdnv check writes each case's per-chunk conditioning (one row per sequence x value head x chunk, and a
// summary; only the summary with --no-chunk-rows), and the report sets every A_inv / o chunk's floor ratio
// against it.
BOOST_AUTO_TEST_CASE(conditioning_rows_and_the_error_against_conditioning_chart) {
  TempDir tmp;
  fs::path const results = default_results(tmp);
  json const j = json::parse(slurp(results));
  for (auto const& c : j["cases"]) {
    BOOST_TEST_REQUIRE(c.contains("conditioning"), c["case"] << ": no conditioning rows");
    int64_t const expect = c["chunks"].get<int64_t>() * c["HV"].get<int64_t>();
    BOOST_TEST(static_cast<int64_t>(c["conditioning"].size()) == expect, c["case"]);
    for (auto const& row : c["conditioning"]) {
      BOOST_TEST(row["kappa_inf"].get<double>() >= 1.0);  // kappa of a unit triangular matrix
      BOOST_TEST(row["skeel"].get<double>() >= 1.0);
    }
    BOOST_TEST(c["conditioning_summary"]["kappa_inf"]["max"].get<double>() >=
               c["conditioning_summary"]["kappa_inf"]["median"].get<double>());
  }
  fs::path const page = tmp.file("report.html");
  Run const r = run_gdnv(tmp, "report " + quote(results.string()) + " --out " + quote(page.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  std::string const html = slurp(page);
  if (slurp(fs::path(GDNV_REPORT_ASSET_DIR) / "status.txt") == "ok") {
    BOOST_TEST(contains(html, "id=\"chart-conditioning-spec\""));
    BOOST_TEST(contains(html, "id=\"chart-conditioning-heatmap-spec\""));
    BOOST_TEST(!contains(html, "carries no per-chunk conditioning"));
  }
  BOOST_TEST(contains(html, "<h2 id=\"conditioning\">"));  // the chart's numbers, also as tables
  // without chunk rows: the summary only, and the page says why there is no such chart
  fs::path const bare = tmp.file("bare.json"), bare_page = tmp.file("bare.html");
  Run const b = run_gdnv(tmp, "check datasets/default.h5 --case ragged-varlen --impl emulated --no-chunk-rows --json " +
                                  quote(bare.string()) + " --report " + quote(bare_page.string()));
  BOOST_TEST_REQUIRE(b.status == 0, b.out << b.err);
  json const jb = json::parse(slurp(bare));
  BOOST_TEST(!jb["cases"][0].contains("conditioning"));
  BOOST_TEST(jb["cases"][0]["conditioning_summary"]["chunks"].get<int64_t>() == 9 * 4);
  BOOST_TEST(contains(slurp(bare_page), "carries no per-chunk conditioning"));
}

BOOST_AUTO_TEST_CASE(check_report_option_writes_the_same_page) {
  TempDir tmp;
  fs::path const j = tmp.file("r.json"), a = tmp.file("from-check.html"), b = tmp.file("from-report.html");
  Run const c = run_gdnv(tmp, "check datasets/default.h5 --json " + quote(j.string()) + " --report " + quote(a.string()));
  BOOST_TEST_REQUIRE(c.status == 0, c.err);
  Run const r = run_gdnv(tmp, "report " + quote(j.string()) + " --out " + quote(b.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(slurp(a) == slurp(b), "gdnv check --report and gdnv report differ");
  // without --json the page is still written
  fs::path const only = tmp.file("only.html");
  Run const o = run_gdnv(tmp, "check datasets/default.h5 --case ragged-varlen --report " + quote(only.string()));
  BOOST_TEST_REQUIRE(o.status == 0, o.err);
  BOOST_TEST(contains(slurp(only), "ragged-varlen"));
}

// The H100 results (our CUDA implementations compared) with bench files: every verdict, every
// worst ratio as the table prints it, the performance tables and per-block times.
BOOST_AUTO_TEST_CASE(gpu_results_and_bench_files) {
  TempDir tmp;
  fs::path const page = tmp.file("h100.html");
  Run const r = run_gdnv(tmp, "report " + kH100Check + " --bench " + kBench + " --bench " + kBenchPerChunk + " --out " +
                              quote(page.string()) + " --top 5");
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  std::string const html = slurp(page);
  BOOST_TEST_MESSAGE("H100 report with two bench files: " << html.size() << " bytes");
  expect_self_contained(html);
  json const results = json::parse(slurp(fs::path(GDNV_SOURCE_DIR) / kH100Check));
  expect_verdicts(html, results);
  for (auto const& res : results["results"])
    BOOST_TEST(contains(html, fmt::format("{:.2f}", res["worst"]["ratio"].get<double>())));
  BOOST_TEST(contains(html, "Worst chunks (5 per case and implementation)"));
  BOOST_TEST(contains(html, "<h2 id=\"bench\">Performance</h2>"));
  for (auto const* f : {&kBench, &kBenchPerChunk}) {
    json const b = json::parse(slurp(fs::path(GDNV_SOURCE_DIR) / *f));
    for (auto const& cfg : b["configs"])
      for (auto const& e : cfg["entries"]) BOOST_TEST(contains(html, html_escape(e["name"].get<std::string>())));
  }
  BOOST_TEST(contains(html, "Per-block times"));
  BOOST_TEST(contains(html, "histogram"));
}

BOOST_AUTO_TEST_CASE(charts_or_a_reason) {
  TempDir tmp;
  fs::path const page = tmp.file("p.html");
  BOOST_TEST_REQUIRE(run_gdnv(tmp, "report " + kH100Check + " --bench " + kBench + " --out " + quote(page.string())).status == 0);
  std::string const html = slurp(page);
  std::string const status = slurp(fs::path(GDNV_REPORT_ASSET_DIR) / "status.txt");
  if (status == "ok") {
    // one chart element per declared chart, at least the results' four and the bench file's two
    size_t divs = 0;
    for (size_t at = 0; (at = html.find("data-spec=\"", at)) != std::string::npos; ++at) ++divs;
    BOOST_TEST(divs >= 6u);
    BOOST_TEST(contains(html, fmt::format("<body data-charts=\"{}\"", divs)), divs << " chart elements");
    BOOST_TEST(contains(html, "Vega-Lite"));
    BOOST_TEST(contains(html, "BSD-3-Clause"));
    BOOST_TEST(contains(html, "id=\"gdnv-datasets\""));
  } else {
    BOOST_TEST(contains(html, "<body data-charts=\"0\""));
    BOOST_TEST(contains(html, "Charts not drawn"));
    BOOST_TEST_MESSAGE("built without chart libraries: " << status);
  }
}

// A failing gate: gdnv check exits 1 and the page says FAILED, with a failed badge per result.
BOOST_AUTO_TEST_CASE(a_failed_check_reads_failed) {
  TempDir tmp;
  fs::path const page = tmp.file("failed.html");
  Run const r = run_gdnv(tmp, "check datasets/default.h5 --case model-like-gqa --max-floor-ratio 0.5 --report " +
                                  quote(page.string()));
  BOOST_TEST_REQUIRE(r.status == 1, r.err);
  std::string const html = slurp(page);
  BOOST_TEST(contains(html, "<div class=\"verdict bad\" id=\"verdict\"><b>FAILED</b>"));
  BOOST_TEST(contains(html, "<span class=\"badge bad\">failed</span>"));
  BOOST_TEST(contains(html, "--max-floor-ratio 0.5"), "the reproducing command keeps the gate");
}

// A non-finite chunk (ratio null, finite false) is listed first among the worst chunks.
BOOST_AUTO_TEST_CASE(non_finite_chunks_come_first) {
  TempDir tmp;
  json j = json::parse(slurp(fs::path(GDNV_SOURCE_DIR) / kH100Check));
  auto& row = j["results"][2]["chunks"][7];
  row["ratio"] = nullptr;
  row["finite"] = false;
  std::ofstream(tmp.file("nan.json")) << j.dump();
  fs::path const page = tmp.file("nan.html");
  Run const r = run_gdnv(tmp, "report " + quote(tmp.file("nan.json")) + " --no-charts --out " + quote(page.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  std::string const html = slurp(page);
  std::string const first = fmt::format("<td rowspan=\"3\">{}<td rowspan=\"3\">{}<td class=\"n\">1<td>",
                                        j["results"][2]["case"].get<std::string>(),
                                        j["results"][2]["implementation"].get<std::string>());
  auto const at = html.find(first);
  BOOST_TEST_REQUIRE(at != std::string::npos);
  BOOST_TEST(html.substr(at, 300).find("non-finite") != std::string::npos, html.substr(at, 300));
}

// --no-charts: the tables alone, no script at all (a page small enough to mail).
BOOST_AUTO_TEST_CASE(no_charts_page_is_tables_only) {
  TempDir tmp;
  fs::path const page = tmp.file("tables.html");
  Run const r = run_gdnv(tmp, "report " + kH100Check + " --no-charts --out " + quote(page.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  std::string const html = slurp(page);
  BOOST_TEST_MESSAGE("--no-charts page: " << html.size() << " bytes");
  expect_self_contained(html);
  BOOST_TEST(!contains(html, "<script"));
  BOOST_TEST(contains(html, "<body data-charts=\"0\""));
  BOOST_TEST(contains(html, "Charts left out (--no-charts)"));
  expect_verdicts(html, json::parse(slurp(fs::path(GDNV_SOURCE_DIR) / kH100Check)));
  // 4 kernels (each also [isolated]) and 2 captured functions on 4 cases, with the attribution tables:
  // about 0.62 MB (the charts page carries the chart library and the chart data besides)
  BOOST_TEST(html.size() < 1000000u);
}

// Fused against unfused (`pairs` in the results file): one row per tensor with the bit-equal count.
BOOST_AUTO_TEST_CASE(fused_vs_unfused_pairs_table) {
  TempDir tmp;
  json j = json::parse(slurp(fs::path(GDNV_SOURCE_DIR) / kH100Check));
  j["pairs"] = json::array({{{"file", "datasets/default.h5"}, {"case", "model-like-gqa"}, {"implementation", "fused"},
                             {"against", "unfused"},
                             {"tensors", {{"A_inv", {{"elements", 4096}, {"bit_equal", 4000}, {"bit_equal_fraction", 4000.0 / 4096},
                                                     {"max_abs_diff", 0.0078125}}}}}}});
  std::ofstream(tmp.file("pairs.json")) << j.dump();
  fs::path const page = tmp.file("pairs.html");
  Run const r = run_gdnv(tmp, "report " + quote(tmp.file("pairs.json")) + " --no-charts --out " + quote(page.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  std::string const html = slurp(page);
  BOOST_TEST(contains(html, "Fused against unfused"));
  BOOST_TEST(contains(html, "<td>model-like-gqa<td>fused<td>unfused<td>A_inv<td class=\"n\">4096<td class=\"n\">4000"
                            "<td class=\"n\">97.66<td class=\"n\">7.812e-03"));
}

// Stage attribution (`gdnv check --attribution`): a table per case with a row per stage, the dominant
// stage named, "not available" for the captured groups; no section without the flag.
BOOST_AUTO_TEST_CASE(stage_attribution_table_per_case) {
  TempDir tmp;
  fs::path const j = tmp.file("att.json"), page = tmp.file("att.html");
  Run const c = run_gdnv(tmp, "check datasets/default.h5 --case model-like-gqa --impl emulated --attribution --top 0 --json " +
                                  quote(j.string()));
  BOOST_TEST_REQUIRE(c.status == 0, c.out << c.err);
  Run const r = run_gdnv(tmp, "report " + quote(j.string()) + " --no-charts --out " + quote(page.string()));
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  std::string const html = slurp(page);
  BOOST_TEST(contains(html, "<h2 id=\"attribution-h\">Stage attribution</h2>"));
  BOOST_TEST(contains(html, "<h3>model-like-gqa</h3>"));
  BOOST_TEST(contains(html, "<table id=\"attribution-0\""));
  json const att = json::parse(slurp(j))["attribution"];
  std::string dominant;
  for (auto const& a : att)
    if (a["implementation"] == "emulated") dominant = a["dominant_stage"];
  BOOST_TEST_REQUIRE(!dominant.empty());
  BOOST_TEST(contains(html, "<p><b>emulated</b>: o is dominated by <b>" + dominant + "</b>"), html.substr(0, 200));
  for (char const* stage : {"<td>cumsum<td>g_cumsum", "<td>solve<td>A_inv", "<td>wu<td>w, u", "state: v_new"})
    BOOST_TEST(contains(html, stage), stage);
  BOOST_TEST(contains(html, "captured:transformers-torch-chunk: not available"));
  // the same results without the section (a check run without --attribution): no heading
  json without = json::parse(slurp(j));
  without.erase("attribution");
  std::ofstream(tmp.file("plain.json")) << without.dump();
  Run const plain = run_gdnv(tmp, "report " + quote(tmp.file("plain.json")) + " --no-charts --out " + quote(page.string()));
  BOOST_TEST_REQUIRE(plain.status == 0);
  BOOST_TEST(!contains(slurp(page), "attribution-h"));
}

BOOST_AUTO_TEST_SUITE_END()

// --- bad input: status 2, one line naming file and field, nothing written ---------------------

namespace {

struct BadCase {
  std::string name;
  std::string expect_field;  // in the error line ("" for file-level errors)
  std::function<std::string(TempDir const&)> make;  // returns the extra CLI arguments
};

std::ostream& operator<<(std::ostream& os, BadCase const& c) { return os << c.name; }

std::string write_json(TempDir const& tmp, std::string const& name, json const& j) {
  std::ofstream(tmp.file(name)) << j.dump();
  return tmp.file(name);
}

json h100() { return json::parse(slurp(fs::path(GDNV_SOURCE_DIR) / kH100Check)); }
json bench() { return json::parse(slurp(fs::path(GDNV_SOURCE_DIR) / kBench)); }

std::vector<BadCase> const kBadCases = {
    {"missing_file", "", [](TempDir const& t) { return quote(t.file("nope.json")); }},
    {"not_json", "",
     [](TempDir const& t) {
       std::ofstream(t.file("x.json")) << "{\"results\": [";
       return quote(t.file("x.json"));
     }},
    {"not_an_object", "(top level)", [](TempDir const& t) { return quote(write_json(t, "a.json", json::array())); }},
    {"missing_results", "results",
     [](TempDir const& t) {
       json j = h100();
       j.erase("results");
       return quote(write_json(t, "r.json", j));
     }},
    {"missing_max_floor_ratio", "max_floor_ratio",
     [](TempDir const& t) {
       json j = h100();
       j.erase("max_floor_ratio");
       return quote(write_json(t, "r.json", j));
     }},
    {"missing_case", "results[1].case",
     [](TempDir const& t) {
       json j = h100();
       j["results"][1].erase("case");
       return quote(write_json(t, "r.json", j));
     }},
    {"ratio_is_text", "results[2].chunks[3].ratio",
     [](TempDir const& t) {
       json j = h100();
       j["results"][2]["chunks"][3]["ratio"] = "2.5";
       return quote(write_json(t, "r.json", j));
     }},
    {"metrics_not_an_object", "results[0].metrics",
     [](TempDir const& t) {
       json j = h100();
       j["results"][0]["metrics"] = json::array({1, 2});
       return quote(write_json(t, "r.json", j));
     }},
    {"pair_without_tensors", "pairs[0].tensors",
     [](TempDir const& t) {
       json j = h100();
       j["pairs"] = json::array({{{"case", "c"}, {"implementation", "fused"}, {"against", "unfused"}}});
       return quote(write_json(t, "r.json", j));
     }},
    {"attribution_without_stages", "attribution[0].case_summary.stages",
     [](TempDir const& t) {
       json j = h100();
       json blk = {{"end_to_end", {{"o", json::object()}, {"final_state", json::object()}}},
                   {"linear_sum", {{"o", json::object()}, {"final_state", json::object()}}},
                   {"sum_of_stages", json::object()}};
       j["attribution"] = json::array({{{"case", "c"}, {"implementation", "emulated"}, {"available", true},
                                        {"chunks", json::array()}, {"case_summary", blk}}});
       return quote(write_json(t, "r.json", j));
     }},
    {"bench_missing_configs", "configs",
     [](TempDir const& t) {
       json b = bench();
       b.erase("configs");
       return kH100Check + " --bench " + quote(write_json(t, "b.json", b));
     }},
    {"bench_entry_without_name", "configs[0].entries[2].name",
     [](TempDir const& t) {
       json b = bench();
       b["configs"][0]["entries"][2].erase("name");
       return kH100Check + " --bench " + quote(write_json(t, "b.json", b));
     }},
    {"bench_median_is_text", "configs[0].entries[0].cold.median",
     [](TempDir const& t) {
       json b = bench();
       b["configs"][0]["entries"][0]["cold"]["median"] = "fast";
       return kH100Check + " --bench " + quote(write_json(t, "b.json", b));
     }},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(report_errors)

BOOST_DATA_TEST_CASE(bad_input_exits_2_with_one_line_and_no_page, bdata::make(kBadCases), bad) {
  TempDir tmp;
  std::string const args = bad.make(tmp);
  fs::path const page = tmp.file("page.html");
  Run const r = run_gdnv(tmp, "report " + args + " --out " + quote(page.string()));
  BOOST_TEST(r.status == 2, r.out << r.err);
  BOOST_TEST(count_lines(r.err) == 1, "stderr: " << r.err);
  BOOST_TEST((contains(r.err, tmp.path.string()) || contains(r.err, kH100Check)), "no file named: " << r.err);
  if (!bad.expect_field.empty())
    BOOST_TEST(contains(r.err, "field '" + bad.expect_field + "'"), "field not named: " << r.err);
  BOOST_TEST(!leftovers(page), "a page was written");
}

BOOST_AUTO_TEST_CASE(an_existing_page_survives_bad_input) {
  TempDir tmp;
  fs::path const page = tmp.file("page.html");
  std::ofstream(page) << "previous";
  std::ofstream(tmp.file("bad.json")) << "[";
  Run const r = run_gdnv(tmp, "report " + quote(tmp.file("bad.json")) + " --out " + quote(page.string()));
  BOOST_TEST(r.status == 2);
  BOOST_TEST(slurp(page) == "previous");
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
  TempDir tmp;
  BOOST_TEST(run_gdnv(tmp, "report " + kH100Check).status == 2);  // no --out
  BOOST_TEST(run_gdnv(tmp, "report --out " + quote(tmp.file("x.html"))).status == 2);  // no results file
  BOOST_TEST(run_gdnv(tmp, "report " + kH100Check + " --top -1 --out " + quote(tmp.file("x.html"))).status == 2);
  BOOST_TEST(!fs::exists(tmp.file("x.html")));
}

BOOST_AUTO_TEST_SUITE_END()
