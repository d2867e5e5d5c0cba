// gdnv baseline save | compare: the quantiles a baseline stores, the gates compare applies (R_det > 1,
// p99 drift > 2x, a disappeared entry, passed -> failed), the JUnit file CI systems read (checked for
// structure by tests/harness/check_junit.py) and exit 2 with one line on malformed input.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/environment.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Run = gdnv::test::CliRun;
using gdnv::test::quote;
using gdnv::test::slurp;

fs::path scratch() { return gdnv::test::scratch_dir(); }
Run run(std::string const& args) { return gdnv::test::run_gdnv(scratch(), args); }

std::string const kDefault = GDNV_SOURCE_DIR "/datasets/default.h5";

int count_lines(std::string const& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// One small check run shared by the tests: the emulated kernel (and its [isolated] run) and the two
// captured functions on the model-like case.
fs::path const& results() {
  static fs::path const p = [] {
    fs::path const out = scratch() / "results.json";
    Run const r = run("check " + kDefault + " --case model-like-gqa --impl emulated --top 0 --json " + out.string());
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    return out;
  }();
  return p;
}

fs::path const& baseline() {
  static fs::path const p = [] {
    fs::path const out = scratch() / "baselines" / "model-like.json";
    Run const r = run("baseline save " + results().string() + " -o " + out.string());
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    return out;
  }();
  return p;
}

json load(fs::path const& p) { return json::parse(slurp(p)); }

fs::path doctored(std::string const& name, std::function<void(json&)> const& edit) {
  json j = load(results());
  edit(j);
  fs::path const out = scratch() / name;
  std::ofstream(out) << j.dump(1);
  return out;
}

struct Junit {
  int status = -1;
  int tests = -1, failures = -1, skipped = -1, suites = -1;
  std::string text;
};

// Structural check by tests/harness/check_junit.py, and its counts.
Junit check_junit(fs::path const& xml) {
  fs::path const out = scratch() / "junit-check.txt";
  std::string const cmd = "/usr/bin/python3 " GDNV_SOURCE_DIR "/tests/harness/check_junit.py " + quote(xml.string()) +
                          " > " + quote(out.string());
  int const rc = std::system(cmd.c_str());
  Junit j;
  j.status = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
  j.text = slurp(out);
  std::sscanf(j.text.c_str(), "tests=%d failures=%d skipped=%d suites=%d", &j.tests, &j.failures, &j.skipped, &j.suites);
  return j;
}

bool is_emulated_row(json const& res) { return res["implementation"] == "emulated"; }

}  // namespace

BOOST_AUTO_TEST_SUITE(baseline_cli)

BOOST_AUTO_TEST_CASE(save_writes_quantiles_environment_and_dataset_hash) {
  json const b = load(baseline());
  BOOST_TEST(b["schema"] == "gdnv-baseline");
  BOOST_TEST(b["schema_version"] == 1);
  // environment of the check run: GPU (or why none), git commit, host, date
  json const& env = b["environment"];
  BOOST_TEST((env["gpu"].is_object() || env["gpu_reason"].is_string()));
  for (char const* k : {"git", "host", "date", "compiler"}) BOOST_TEST(env.contains(k), "environment misses " << k);
  BOOST_TEST(env["git"]["commit"].is_string());
  // the dataset by path and SHA-256 (the same bytes the check read)
  BOOST_TEST_REQUIRE(b["datasets"].size() == 1u);
  BOOST_TEST(b["datasets"][0]["sha256"] == gdnv::sha256_file(kDefault));

  // one entry per (implementation, family, shape); the family is the case's generator family
  std::set<std::string> impls;
  for (auto const& e : b["entries"]) {
    impls.insert(e["implementation"].get<std::string>());
    BOOST_TEST(e["family"] == "model-like");
    BOOST_TEST(e["shape_key"] == "B=1,T=200,H=2,HV=4,K=128,V=128");
    BOOST_TEST(e["disposition"] == "passed");
    auto const& q = e["floor_ratio"]["overall"];
    BOOST_TEST(q["p50"].get<double>() <= q["p99"].get<double>());
    BOOST_TEST(q["p99"].get<double>() <= q["max"].get<double>());
    BOOST_TEST(e["floor_ratio"]["tensors"].contains("o"));
  }
  BOOST_TEST(impls.count("emulated") == 1u);
  BOOST_TEST(impls.count("emulated[isolated]") == 1u);
  BOOST_TEST(impls.size() == 4u);  // + the two captured transformers functions

  // the stored quantiles are the results' own: the max is the result's worst chunk ratio, and R_det's
  // max the bound summary's
  json const r = load(results());
  for (auto const& res : r["results"]) {
    if (!is_emulated_row(res)) continue;
    for (auto const& e : b["entries"]) {
      if (e["implementation"] != "emulated") continue;
      BOOST_TEST(e["floor_ratio"]["overall"]["max"].get<double>() == res["worst"]["ratio"].get<double>());
      BOOST_TEST(e["r_det"]["A_inv"]["max"].get<double>() == res["bound"]["max_r_det"].get<double>());
      BOOST_TEST(e["r_det"]["A_inv"]["p99"].get<double>() == res["bound"]["p99_r_det"].get<double>());
      BOOST_TEST(e["reported"]["gated"] == false);
      BOOST_TEST(e["reported"]["trt01"].contains("A_inv"));
    }
  }
}

BOOST_AUTO_TEST_CASE(compare_against_itself_passes_with_valid_junit) {
  fs::path const xml = scratch() / "same.xml";
  Run const r = run("baseline compare " + baseline().string() + " " + results().string() + " --junit " + xml.string());
  BOOST_TEST(r.status == 0, r.out << r.err);
  Junit const j = check_junit(xml);
  BOOST_TEST(j.status == 0, j.text);
  BOOST_TEST(j.failures == 0);
  BOOST_TEST(j.suites == 4);  // one per implementation
  BOOST_TEST(j.tests > 4 * 3);
  BOOST_TEST(r.out.find("reported") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(p99_three_times_higher_fails_and_the_junit_says_so) {
  fs::path const bad = doctored("p99x3.json", [](json& j) {
    for (auto& res : j["results"])
      if (is_emulated_row(res))
        for (auto& row : res["chunks"])
          if (row["tensor"] == "o") row["ratio"] = row["ratio"].get<double>() * 3;
  });
  fs::path const xml = scratch() / "p99x3.xml";
  Run const r = run("baseline compare " + baseline().string() + " " + bad.string() + " --junit " + xml.string());
  BOOST_TEST(r.status == 1, r.out << r.err);
  Junit const j = check_junit(xml);
  BOOST_TEST(j.status == 0, j.text);
  BOOST_TEST(j.failures >= 1);
  BOOST_TEST(j.text.find("FAIL gdnv.emulated model-like B=1,T=200,H=2,HV=4,K=128,V=128 floor_ratio:o: ") !=
             std::string::npos, j.text);
  // only emulated's o was doctored: no other implementation or tensor fails
  BOOST_TEST(j.text.find("FAIL gdnv.emulated[isolated]") == std::string::npos, j.text);
  BOOST_TEST(j.text.find("floor_ratio:A_inv:") == std::string::npos, j.text);
  // a 3x increase is reported as drift 3x
  BOOST_TEST(r.out.find("drift 3x > 2x") != std::string::npos, r.out);
  // and a looser --max-drift lets it through
  BOOST_TEST(run("baseline compare " + baseline().string() + " " + bad.string() + " --max-drift 4").status == 0);
}

BOOST_AUTO_TEST_CASE(r_det_above_one_fails) {
  fs::path const bad = doctored("r15.json", [](json& j) {
    for (auto& res : j["results"])
      if (is_emulated_row(res))
        for (auto& row : res["chunks"])
          if (row["tensor"] == "A_inv" && row["chunk"] == 1) {
            row["r_det"] = 1.5;
            return;
          }
  });
  fs::path const xml = scratch() / "r15.xml";
  Run const r = run("baseline compare " + baseline().string() + " " + bad.string() + " --junit " + xml.string());
  BOOST_TEST(r.status == 1, r.out << r.err);
  Junit const j = check_junit(xml);
  BOOST_TEST(j.status == 0, j.text);
  BOOST_TEST(j.text.find("r_det_gate:A_inv: A_inv R_det max 1.5 > 1") != std::string::npos, j.text);
  // 16 A_inv chunks: the nearest-rank p99 is the max, so the drift of R_det's p99 fails as well; nothing else
  BOOST_TEST(j.failures == 2, j.text);
  BOOST_TEST(j.text.find("r_det:A_inv: R_det of A_inv p99 1.5 vs baseline") != std::string::npos, j.text);
}

BOOST_AUTO_TEST_CASE(improvements_pass_and_are_reported) {
  fs::path const good = doctored("better.json", [](json& j) {
    for (auto& res : j["results"])
      if (is_emulated_row(res))
        for (auto& row : res["chunks"]) row["ratio"] = row["ratio"].get<double>() / 3;
  });
  Run const r = run("baseline compare " + baseline().string() + " " + good.string());
  BOOST_TEST(r.status == 0, r.out << r.err);
  BOOST_TEST(r.out.find("improved / emulated") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(disappeared_and_passed_to_failed_fail_new_entries_do_not) {
  fs::path const gone = doctored("gone.json", [](json& j) {
    json kept = json::array();
    for (auto& res : j["results"])
      if (!is_emulated_row(res)) kept.push_back(res);
    j["results"] = kept;
  });
  fs::path const xml = scratch() / "gone.xml";
  Run const r = run("baseline compare " + baseline().string() + " " + gone.string() + " --junit " + xml.string());
  BOOST_TEST(r.status == 1, r.out);
  Junit const j = check_junit(xml);
  BOOST_TEST(j.status == 0, j.text);
  BOOST_TEST(j.failures == 1, j.text);
  BOOST_TEST(j.text.find("disposition: entry disappeared") != std::string::npos, j.text);

  fs::path const failed = doctored("failed.json", [](json& j) {
    for (auto& res : j["results"])
      if (is_emulated_row(res)) {
        res["disposition"] = "failed";
        res["reason"] = "doctored";
      }
  });
  Run const rf = run("baseline compare " + baseline().string() + " " + failed.string());
  BOOST_TEST(rf.status == 1);
  BOOST_TEST(rf.out.find("passed -> failed: model-like-gqa: doctored") != std::string::npos, rf.out);

  // The baseline without emulated, compared with full results: emulated is new, reported, not failed.
  fs::path const small_base = scratch() / "small-baseline.json";
  BOOST_TEST_REQUIRE(run("baseline save " + gone.string() + " -o " + small_base.string()).status == 0);
  fs::path const xml2 = scratch() / "new.xml";
  Run const rn = run("baseline compare " + small_base.string() + " " + results().string() + " --junit " + xml2.string());
  BOOST_TEST(rn.status == 0, rn.out);
  Junit const jn = check_junit(xml2);
  BOOST_TEST(jn.status == 0, jn.text);
  BOOST_TEST(jn.failures == 0);
  BOOST_TEST(jn.skipped == 1);  // the new entry
}

BOOST_AUTO_TEST_CASE(environment_differences_are_warnings) {
  fs::path const other = doctored("other-gpu.json", [](json& j) {
    j["environment"]["gpu"] = {{"name", "NVIDIA H100 80GB HBM3"}, {"driver_version", 13000}, {"cuda_runtime_version", 13000}};
  });
  Run const r = run("baseline compare " + baseline().string() + " " + other.string());
  BOOST_TEST(r.status == 0, r.out << r.err);
  BOOST_TEST(r.out.find("warning: environment differs") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("NVIDIA H100 80GB HBM3") != std::string::npos, r.out);
}

// Malformed input: exit 2, one line on stderr naming the file and the field, no JUnit file written.
BOOST_AUTO_TEST_CASE(malformed_input_exits_2_naming_file_and_field) {
  fs::path const not_json = scratch() / "not.json";
  std::ofstream(not_json) << "{ this is not json";
  fs::path const no_chunks = doctored("no-chunks.json", [](json& j) { j["results"][0].erase("chunks"); });
  fs::path const bad_ratio = doctored("bad-ratio.json", [](json& j) { j["results"][0]["chunks"][3]["ratio"] = "big"; });
  fs::path const no_case = doctored("no-case.json", [](json& j) { j["cases"] = json::array(); });
  fs::path const bad_base = scratch() / "bad-base.json";
  {
    json b = load(baseline());
    b["entries"][0]["floor_ratio"]["overall"].erase("p99");
    std::ofstream(bad_base) << b.dump();
  }
  struct Bad {
    std::string args, file, field;
  };
  std::string const B = baseline().string(), R = results().string();
  std::vector<Bad> const cases = {
      {"baseline compare " + B + " " + (scratch() / "missing.json").string(), (scratch() / "missing.json").string(), ""},
      {"baseline compare " + B + " " + not_json.string(), not_json.string(), ""},
      {"baseline compare " + R + " " + R, R, "schema"},             // a results file where the baseline goes
      {"baseline compare " + B + " " + B, B, "command"},            // a baseline where the results go
      {"baseline compare " + B + " " + no_chunks.string(), no_chunks.string(), "results[0].chunks"},
      {"baseline compare " + B + " " + bad_ratio.string(), bad_ratio.string(), "results[0].chunks[3].ratio"},
      {"baseline compare " + B + " " + no_case.string(), no_case.string(), "results[0].case"},
      {"baseline compare " + bad_base.string() + " " + R, bad_base.string(), "entries[0].floor_ratio.overall.p99"},
      {"baseline save " + not_json.string() + " -o " + (scratch() / "never.json").string(), not_json.string(), ""},
  };
  for (auto const& c : cases) {
    fs::path const xml = scratch() / "never.xml";
    Run const r = run(c.args + (c.args.rfind("baseline compare", 0) == 0 ? " --junit " + xml.string() : ""));
    BOOST_TEST(r.status == 2, c.args << ": " << r.out << r.err);
    BOOST_TEST(count_lines(r.err) == 1, c.args << ": " << r.err);
    BOOST_TEST(r.err.find(c.file) != std::string::npos, r.err);
    if (!c.field.empty()) BOOST_TEST(r.err.find("field '" + c.field + "'") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(xml));
  }
  BOOST_TEST(!fs::exists(scratch() / "never.json"));
  BOOST_TEST(run("baseline compare " + B + " " + R + " --max-drift 0.5").status == 2);
  BOOST_TEST(run("baseline").status == 2);
}

BOOST_AUTO_TEST_SUITE_END()
