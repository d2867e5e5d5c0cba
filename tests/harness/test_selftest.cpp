// `gdnv selftest`: the checker checked. The correct CPU model passes every generator family (floor
// ratio and every bounded tensor's R_det <= 1); each deliberately wrong variant is flagged on some
// family, tf32 merges (on A_inv) and a bf16 running state (on the final state) by R alone; a fault that
// is not flagged fails the selftest; the command prints its table and its exit status follows the verdict.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/generators.hpp"
#include "harness/selftest.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using namespace gdnv;

namespace {

std::vector<std::string> fault_names() {
  std::vector<std::string> out;
  for (auto const& v : selftest_variants())
    if (!v.correct()) out.push_back(v.name);
  return out;
}

VariantOutcome run_one(std::string const& name, double gate = 8.0) {
  SelftestOptions opt;
  opt.only = {name};
  opt.max_floor_ratio = gate;
  SelftestReport const r = run_selftest(opt);
  BOOST_TEST_REQUIRE(r.outcomes.size() == 1u);
  return r.outcomes.front();
}

struct Run {
  int status = -1;
  std::string out;
};

Run run_cli(std::string const& args) {
  fs::path const o = fs::temp_directory_path() / ("gdnv-selftest-" + std::to_string(::getpid()) + ".txt");
  std::string const cmd = std::string(GDNV_EXE) + " " + args + " >" + o.string() + " 2>&1";
  int const rc = std::system(cmd.c_str());
  std::ifstream in(o);
  std::stringstream s;
  s << in.rdbuf();
  fs::remove(o);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, s.str()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(selftest)

BOOST_AUTO_TEST_CASE(catalogue_names_the_listed_faults_once) {
  std::set<std::string> names;
  int correct = 0;
  for (auto const& v : selftest_variants()) {
    BOOST_TEST(names.insert(v.name).second, "duplicate " << v.name);
    BOOST_TEST(!v.description.empty());
    correct += v.correct();
  }
  BOOST_TEST(correct == 1);
  for (char const* f : {"A-with-diagonal", "strict-output-mask", "gate-one-token-late", "tf32-merges", "bf16-state",
                        "dropped-initial-state", "gqa-modulo", "varlen-state-leak", "beta-twice", "beta-missing",
                        "missing-scale"})
    BOOST_TEST(names.count(f) == 1u, "missing fault " << f);
  BOOST_TEST(fault_names().size() + 1 == selftest_variants().size());
}

BOOST_AUTO_TEST_CASE(correct_model_passes_every_family) {
  VariantOutcome const o = run_one("correct");
  BOOST_TEST(o.run == static_cast<int>(generator_families().size()));
  BOOST_TEST(o.flagged.empty(), "flagged on " << (o.flagged.empty() ? "" : o.flagged.front()));
  BOOST_TEST(o.worst_ratio > 0.5);
  BOOST_TEST(o.worst_ratio <= 8.0);
  // R_det over every family's A_inv: within the bound, and the bf16 output rounding reaches it (0.4)
  BOOST_TEST(o.worst_r_det <= 1.0);
  BOOST_TEST(o.worst_r_det > 0.5);
  BOOST_TEST(o.worst_r_prob <= 1.0);
  BOOST_TEST(o.flagged_by_bound.empty());
  BOOST_TEST(o.margin_ref < 1e-3);
  BOOST_TEST(o.verdict() == "passes");
}

// The gate is real: below the correct model's own error it fails it.
BOOST_AUTO_TEST_CASE(correct_model_fails_a_gate_below_its_error) {
  VariantOutcome const o = run_one("correct", 1.0);
  BOOST_TEST(!o.flagged.empty());
  BOOST_TEST(o.verdict() == "FAILS");
}

BOOST_DATA_TEST_CASE(each_fault_is_flagged, bdata::make(fault_names()), name) {
  VariantOutcome const o = run_one(name);
  BOOST_TEST(!o.flagged.empty(), name << " passed every family (worst " << o.worst_ratio << ", R_det "
                                       << o.worst_r_det << ")");
  BOOST_TEST((o.worst_ratio > 8.0 || o.worst_r_det > 1.0));
  BOOST_TEST(o.verdict().rfind("caught by ", 0) == 0u, o.verdict());
}

// verification-method.md 0.4: tf32 merges stay under the floor ratio but not under A_inv's bound.
BOOST_AUTO_TEST_CASE(tf32_merges_are_caught_by_R_alone) {
  VariantOutcome const o = run_one("tf32-merges");
  BOOST_TEST(o.flagged_by_floor.empty());
  BOOST_TEST(!o.flagged_by_bound.empty());
  BOOST_TEST(o.worst_r_det > 1.0);
  BOOST_TEST(o.worst_ratio <= 8.0);
  BOOST_TEST(o.verdict() == "caught by R");
  BOOST_TEST_MESSAGE("tf32-merges: R_det " << o.worst_r_det << " on " << o.flagged_by_bound.size() << " of " << o.run
                                           << " families (" << o.worst_r_det_where << ")");
}

// A fault that changes A_inv is seen by both gates and the verdict says so.
BOOST_AUTO_TEST_CASE(a_wrong_inverse_is_caught_by_both_gates) {
  VariantOutcome const o = run_one("A-with-diagonal");
  BOOST_TEST(!o.flagged_by_floor.empty());
  BOOST_TEST(!o.flagged_by_bound.empty());
  BOOST_TEST(o.verdict() == "caught by floor ratio and R");
}

// The exit status counts every fault: were tf32-merges or bf16-state missed, the selftest would fail.
BOOST_DATA_TEST_CASE(a_missed_fault_fails_the_verdict, bdata::make(std::vector<std::string>{"tf32-merges", "bf16-state"}),
                     name) {
  SelftestReport r;
  for (auto const& v : selftest_variants())
    if (v.name == name) {
      VariantOutcome o;
      o.variant = v;
      o.run = 8;
      r.outcomes.push_back(o);
    }
  BOOST_TEST_REQUIRE(r.outcomes.size() == 1u);
  BOOST_TEST(r.outcomes.front().verdict() == "MISSED");
  BOOST_TEST(!r.ok());
}

// A running state rounded to bf16 stays near the bf16 floor (the floor ratio cannot see it), but the
// state's bound (declared fp32) can: it is caught by R on the final state or a snapshot.
BOOST_AUTO_TEST_CASE(bf16_state_is_caught_by_R_on_the_state) {
  VariantOutcome const o = run_one("bf16-state");
  BOOST_TEST(o.flagged_by_floor.empty());
  BOOST_TEST(!o.flagged_by_bound.empty());
  BOOST_TEST(o.worst_r_det > 1.0);
  BOOST_TEST(o.worst_ratio <= 8.0);
  BOOST_TEST(o.verdict() == "caught by R");
  BOOST_TEST((o.worst_r_det_where.find("final_state") != std::string::npos ||
              o.worst_r_det_where.find(": h ") != std::string::npos),
             o.worst_r_det_where);
  BOOST_TEST_MESSAGE("bf16-state: R_det " << o.worst_r_det << " on " << o.flagged_by_bound.size() << " of " << o.run
                                          << " families (" << o.worst_r_det_where << ")");
}

BOOST_AUTO_TEST_CASE(cli_prints_the_table_and_exits_0) {
  Run const r = run_cli("selftest");
  BOOST_TEST(r.status == 0, r.out);
  for (auto const& v : selftest_variants()) BOOST_TEST(r.out.find(v.name) != std::string::npos, "no row " << v.name);
  for (char const* s : {"variant", "flagged", "worst", "R_det", "verdict", "caught by R", "caught by floor ratio",
                        "bf16-state is caught by R alone", "correct model: max R_det", "selftest passed"})
    BOOST_TEST(r.out.find(s) != std::string::npos, "missing '" << s << "' in:\n" << r.out);
}

BOOST_AUTO_TEST_CASE(cli_exits_1_when_the_verdict_fails_and_2_on_usage) {
  Run const strict = run_cli("selftest --variant correct,missing-scale --max-floor-ratio 1");
  BOOST_TEST(strict.status == 1, strict.out);
  BOOST_TEST(strict.out.find("FAILS") != std::string::npos);
  BOOST_TEST(strict.out.find("selftest FAILED") != std::string::npos);
  BOOST_TEST(run_cli("selftest --variant nope").status == 2);
  BOOST_TEST(run_cli("selftest --max-floor-ratio 0").status == 2);
}

BOOST_AUTO_TEST_SUITE_END()
