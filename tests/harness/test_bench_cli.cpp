// `gdnv bench` as scripts meet it: without a GPU (or without CUDA) it exits 0 and writes a JSON whose
// status is "not_run" with the reason; with one, status "ok" and every entry timed. Bad options exit 2
// before any work and leave no file.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace fs = std::filesystem;

namespace {

using Run = gdnv::test::CliRun;

fs::path scratch() { return gdnv::test::scratch_dir(); }

Run run(std::string const& args) { return gdnv::test::run_gdnv(scratch(), args); }

}  // namespace

BOOST_AUTO_TEST_SUITE(bench_cli)

BOOST_AUTO_TEST_CASE(small_run_exits_0_with_status) {
  fs::path const json = scratch() / "bench-small.json";
  Run const r = run("bench --T 64 --reps 20 --warmup 1 --json " + json.string());
  BOOST_TEST(r.status == 0, "stderr: " << r.err);
  BOOST_TEST_REQUIRE(fs::exists(json));
  std::ifstream in(json);
  nlohmann::json const j = nlohmann::json::parse(in);
  BOOST_TEST(j["command"] == "bench");
  BOOST_TEST(j.contains("git"));
  BOOST_TEST(j["git"]["commit"].get<std::string>().size() > 0);
  std::string const status = j["status"];
  BOOST_TEST((status == "not_run" || status == "ok"), status);
  BOOST_TEST_REQUIRE(j["configs"].size() == 1u);
  BOOST_TEST(j["configs"][0]["shape"] == "qwen3-next");
  BOOST_TEST(j["configs"][0]["T"] == 64);
  BOOST_TEST(j["configs"][0]["HV"] == 32);
  if (status == "not_run") {
    BOOST_TEST(!j["reason"].get<std::string>().empty());
    BOOST_TEST(r.err.find("not run") != std::string::npos, r.err);
  } else {
    BOOST_TEST(j["device"]["sm_count"].get<int>() > 0);
    BOOST_TEST(j["copy_bandwidth"]["GBps"].get<double>() > 0);
    for (auto const& e : j["configs"][0]["entries"]) {
      BOOST_TEST(e["warm"]["n"].get<int>() == 20);
      BOOST_TEST(e["warm"]["median"].get<double>() > 0);
      BOOST_TEST(e["cold"]["median"].get<double>() > 0);
      BOOST_TEST(e["bytes"]["total"].get<double>() > 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(shapes_and_overrides_resolve) {
  fs::path const json = scratch() / "bench-shapes.json";
  Run const r = run("bench --shape qwen3.5-397b,qwen3.5-27b,kimi-like --T 64,65 --no-cold --reps 20 --warmup 1 --json " +
                    json.string());
  BOOST_TEST_REQUIRE(r.status == 0, "stderr: " << r.err);
  std::ifstream in(json);
  nlohmann::json const j = nlohmann::json::parse(in);
  BOOST_TEST_REQUIRE(j["configs"].size() == 6u);
  BOOST_TEST(j["configs"][0]["HV"] == 64);
  BOOST_TEST(j["configs"][1]["T"] == 65);
  BOOST_TEST(j["configs"][2]["HV"] == 48);
  BOOST_TEST(j["configs"][4]["H"] == 32);
  fs::path const json2 = scratch() / "bench-custom.json";
  Run const r2 = run("bench --B 2 --T 64 --H 4 --HV 8 --K 64 --reps 20 --warmup 1 --json " + json2.string());
  BOOST_TEST_REQUIRE(r2.status == 0, "stderr: " << r2.err);
  std::ifstream in2(json2);
  nlohmann::json const j2 = nlohmann::json::parse(in2);
  BOOST_TEST(j2["configs"][0]["shape"] == "custom");
  BOOST_TEST(j2["configs"][0]["B"] == 2);
  BOOST_TEST(j2["configs"][0]["K"] == 64);
}

BOOST_AUTO_TEST_CASE(bad_options_exit_2_without_output) {
  for (std::string const args : {"--T 0", "--T 64,-3", "--shape nope", "--shape qwen3-next,nope", "--reps 5",
                                 "--K 96", "--H 5 --HV 32", "--B 0", "--T abc"}) {
    fs::path const json = scratch() / "bench-bad.json";
    Run const r = run("bench " + args + " --json " + json.string());
    BOOST_TEST(r.status == 2, args << ": status " << r.status);
    BOOST_TEST(!r.err.empty(), args);
    BOOST_TEST(!fs::exists(json), args << ": output left behind");
  }
  Run const r = run("bench --T 64");  // --json is required
  BOOST_TEST(r.status == 2);
}

BOOST_AUTO_TEST_SUITE_END()
