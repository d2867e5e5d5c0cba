// The bound ratio R on A_inv as gdnv check applies it (harness/inverse_bound.hpp): which arithmetic
// an implementation declares, R in the results file (per chunk, per tensor, per result; null with a
// reason where nothing is declared), and the second gate: an A_inv whose floor ratio passes but whose
// R_det exceeds 1 fails the check with status 1, naming the chunk.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "datasets/generators.hpp"
#include "harness/dataset.hpp"
#include "harness/emulated_implementation.hpp"
#include "harness/implementation.hpp"
#include "harness/inverse_bound.hpp"
#include "reference/bounds.hpp"
#include "reference/chunked.hpp"
#include "reference/rounding.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace gdnv;

namespace {

fs::path scratch() { return gdnv::test::scratch_dir(); }

using Run = gdnv::test::CliRun;
using gdnv::test::slurp;

Run run(std::string const& args) { return gdnv::test::run_gdnv(scratch(), args); }

nlohmann::json const* find_result(nlohmann::json const& j, std::string const& impl) {
  for (auto const& r : j["results"])
    if (r["implementation"] == impl) return &r;
  return nullptr;
}

// A captured group holding o and A_inv, both the exact results rounded once to bf16, except that one
// A_inv entry (the largest of chunk 0, head 0) is moved by `rel` relative; `arithmetic` as its attribute.
CapturedGroup inverse_group(std::string const& name, std::string const& arithmetic,
                            ChunkedResult const& ref, double rel) {
  CapturedGroup g;
  g.name = name;
  g.implementation = "test-" + name;
  if (!arithmetic.empty()) g.extra_attrs["arithmetic"] = arithmetic;
  Tensor o = ref.o, X = ref.A_inv;
  o.dtype = X.dtype = DType::bf16;
  for (double& x : o.data) x = round_to(DType::bf16, x);
  for (double& x : X.data) x = round_to(DType::bf16, x);
  int64_t best = -1;
  for (int64_t i = 1; i < 64; ++i)
    for (int64_t j = 0; j < i; ++j) {
      int64_t const off = X.offset({0, i, 0, j});
      if (best < 0 || std::fabs(ref.A_inv.data[static_cast<size_t>(off)]) >
                          std::fabs(ref.A_inv.data[static_cast<size_t>(best)]))
        best = off;
    }
  double& x = X.data[static_cast<size_t>(best)];
  x = round_to(DType::bf16, ref.A_inv.data[static_cast<size_t>(best)] * (1.0 + rel));
  g.tensors["o"] = o;
  g.tensors["A_inv"] = X;
  return g;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(inverse_bound)

// fused-forward writes fused-intra-v3's bytes (state_output_fused.cu), so it must declare the same arithmetic.
BOOST_AUTO_TEST_CASE(fused_forward_declares_fused_intra_v3s_arithmetic) {
  auto const ff = known_declared_arithmetic("fused-forward"), v3 = known_declared_arithmetic("fused-intra-v3");
  BOOST_TEST_REQUIRE(ff.has_value());
  BOOST_TEST_REQUIRE(v3.has_value());
  BOOST_TEST((*ff == *v3));
  BOOST_TEST((ff->merges == Precision::tf32x3));
  BOOST_TEST((*known_declared_arithmetic("fused-forward[isolated]") == *ff));
}

// fused-forward-from-v forms the delta from v (one rounding where u - W h has three) and stays inside fused-intra-v3's
// declaration (tests/reference/test_stage_bounds.cpp, on every family), so it declares that; so does its CPU model.
BOOST_AUTO_TEST_CASE(fused_forward_from_v_declares_fused_intra_v3s_arithmetic) {
  auto const v3 = known_declared_arithmetic("fused-intra-v3");
  BOOST_TEST_REQUIRE(v3.has_value());
  for (char const* n : {"fused-forward-from-v", "emulated-fused-forward-from-v"}) {
    auto const d = known_declared_arithmetic(n);
    BOOST_TEST_REQUIRE(d.has_value(), n);
    BOOST_TEST((*d == *v3), n);
  }
  BOOST_TEST((*make_implementation("emulated-fused-forward-from-v")->declared_arithmetic() == *v3));
}

BOOST_AUTO_TEST_CASE(declared_arithmetic_by_implementation) {
  DeclaredArithmetic const plain;  // A_inv in the input dtype, fp32 everything up to it, FLA's later roundings
  for (char const* n : {"emulated", "emulated[isolated]", "unfused", "fused", "fused-intra", "unfused[isolated]"}) {
    auto d = known_declared_arithmetic(n);
    BOOST_TEST_REQUIRE(d.has_value(), n);
    BOOST_TEST((*d == plain), n);
  }
  // the split state operand (cuda/chunk_state.cu, Args::split_state), otherwise the plain arithmetic
  auto split = known_declared_arithmetic("unfused-splitstate");
  BOOST_TEST_REQUIRE(split.has_value());
  BOOST_TEST((split->state_operand == Precision::split));
  DeclaredArithmetic as_plain = *split;
  as_plain.state_operand = plain.state_operand;
  BOOST_TEST((as_plain == plain));
  for (char const* n : {"unfused-fp32inv", "cublas", "cublas-fp64"}) {
    auto d = known_declared_arithmetic(n);
    BOOST_TEST_REQUIRE(d.has_value(), n);
    BOOST_TEST((d->A_inv == Precision::fp32), n);
    BOOST_TEST((d->A_inv_operand == Precision::split), n);  // wu.cu splits an fp32 A_inv into hi + lo
    BOOST_TEST((d->state_operand == Precision::split), n);
    BOOST_TEST((d->state == Precision::fp32), n);
    BOOST_TEST((d->w == Precision::input && d->h == Precision::input && d->o == Precision::input), n);
  }
  BOOST_TEST((known_declared_arithmetic("cublas-fp64")->inverse == Precision::fp64));
  BOOST_TEST(!known_declared_arithmetic("something-else").has_value());

  // the emulated implementation declares its own
  auto emu = make_emulated_implementation();
  BOOST_TEST_REQUIRE(emu->declared_arithmetic().has_value());
  BOOST_TEST((*emu->declared_arithmetic() == emulated_declared_arithmetic()));

  // captured groups: the attribute if it parses, else no bound and a reason
  CapturedGroup g;
  g.name = "k";
  g.extra_attrs["arithmetic"] = "bf16 in, fp32 accumulate, A_inv bf16, state fp32";
  std::string why;
  auto d = declared_arithmetic_for(CapturedImplementation(g), &why);
  BOOST_TEST_REQUIRE(d.has_value(), why);
  BOOST_TEST((d->A_inv == Precision::bf16));
  g.extra_attrs["arithmetic"] = "all fp32 (TF32 off); o cast to q's dtype";
  BOOST_TEST(!declared_arithmetic_for(CapturedImplementation(g), &why).has_value());
  BOOST_TEST(why.find("arithmetic attribute") != std::string::npos, why);
  g.extra_attrs.clear();
  BOOST_TEST(!declared_arithmetic_for(CapturedImplementation(g), &why).has_value());
}

BOOST_AUTO_TEST_CASE(quantiles_are_nearest_rank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  BOOST_TEST(quantile(v, 0.5) == 50.0);
  BOOST_TEST(quantile(v, 0.99) == 99.0);
  BOOST_TEST(quantile(v, 1.0) == 100.0);
  BOOST_TEST(quantile({}, 0.5) == 0.0);
  BOOST_TEST(quantile({3.0}, 0.99) == 3.0);
}

// gdnv check --impl emulated: R per chunk, per tensor and per result in the JSON; a column on the terminal;
// captured groups without A_inv carry "bound": null and the reason.
BOOST_AUTO_TEST_CASE(check_json_carries_the_bound_ratio) {
  fs::path const json = scratch() / "emulated.json";
  Run const r = run("check " GDNV_SOURCE_DIR "/datasets/default.h5 --case ragged-varlen --impl emulated --json " +
                    json.string());
  BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
  BOOST_TEST(r.out.find("R_det") != std::string::npos);
  auto const j = nlohmann::json::parse(slurp(json));
  for (char const* impl : {"emulated", "emulated[isolated]"}) {
    auto const* res = find_result(j, impl);
    BOOST_TEST_REQUIRE(res != nullptr, impl);
    auto const& b = (*res)["bound"];
    BOOST_TEST_REQUIRE(b.is_object(), impl);
    BOOST_TEST(b["tensor"] == "A_inv");
    BOOST_TEST(b["passed"] == true);
    BOOST_TEST(b["chunks_over"] == 0);
    BOOST_TEST(b["max_r_det"].get<double>() <= 1.0);
    BOOST_TEST(b["max_r_det"].get<double>() > 0.1);
    BOOST_TEST(b["margin_ref"].get<double>() < 1e-3);
    BOOST_TEST(b["upper_nonzero"] == 0);
    BOOST_TEST(b["diagonal_not_one"] == 0);
    BOOST_TEST(b["arithmetic"].get<std::string>().find("A_inv=input") != std::string::npos);
    BOOST_TEST(b["arithmetic"].get<std::string>().find("state=fp32 state_operand=input") != std::string::npos);
    for (char const* k : {"p50_r_det", "p99_r_det", "max_r_prob", "p50_r_prob", "p99_r_prob", "worst"})
      BOOST_TEST(b.contains(k), "bound misses " << k);
    auto const& m = (*res)["metrics"]["A_inv"];
    for (char const* k : {"max_r_det", "p50_r_det", "p99_r_det", "max_r_prob", "p50_r_prob", "p99_r_prob"})
      BOOST_TEST(m.contains(k), "A_inv metrics miss " << k);
    // every tensor the emulation produces has a bound: a summary per tensor inside "bound", R on its rows
    std::set<std::string> const bounded = {"g_cumsum", "A", "A_inv", "w", "u", "v_new", "h", "o", "final_state"};
    BOOST_TEST_REQUIRE(b.contains("tensors"));
    for (auto const& t : bounded) {
      BOOST_TEST_REQUIRE(b["tensors"].contains(t), "bound.tensors misses " << t);
      auto const& bt = b["tensors"][t];
      BOOST_TEST(bt["tensor"] == t);
      BOOST_TEST(bt["passed"] == true, t);
      BOOST_TEST(bt["max_r_det"].get<double>() <= 1.0, t);
      BOOST_TEST(bt["max_r_prob"].get<double>() >= bt["max_r_det"].get<double>(), t);  // B_prob <= B_det
      BOOST_TEST((*res)["metrics"][t].contains("max_r_det"), t);
    }
    BOOST_TEST(b["tensors"]["A_inv"]["max_r_det"] == b["max_r_det"]);
    std::map<std::string, int> with_r;
    for (auto const& row : (*res)["chunks"]) {
      std::string const t = row["tensor"];
      BOOST_TEST(row.contains("r_det") == (bounded.count(t) == 1), t);
      if (row.contains("r_det")) {
        ++with_r[t];
        BOOST_TEST(row["r_det"].get<double>() <= 1.0);
        BOOST_TEST(row.contains("r_prob"));
      }
    }
    for (auto const& t : bounded) BOOST_TEST(with_r[t] == (*res)["metrics"][t]["chunks"].get<int>(), t);
  }
  auto const* cap = find_result(j, "captured:transformers-torch-chunk");
  BOOST_TEST_REQUIRE(cap != nullptr);
  BOOST_TEST((*cap)["bound"].is_null());
  BOOST_TEST((*cap)["bound_reason"] == "no A_inv among the outputs");
}

// An A_inv off by ~8 bf16 roundings in one entry: the floor ratio (a norm over the chunk) stays near 1,
// R_det finds the entry, and gdnv check exits 1 naming the chunk. The same values under an arithmetic
// attribute that does not parse are not bounded (passed, with the reason).
BOOST_AUTO_TEST_CASE(check_fails_an_inverse_outside_its_bound_that_passes_the_floor_ratio) {
  GeneratorParams gp;
  gp.family = "fla-test";
  gp.T = 128;
  gp.H = 1, gp.HV = 2, gp.K = 32, gp.V = 32;
  gp.seed = 3;
  Case c;
  c.name = "one-bad-entry";
  c.problem = generate_problem(gp);
  ChunkedResult const ref = chunked_forward(c.problem);
  std::string const decl = "input=bf16 accumulate=fp32 merges=fp32 A_inv=bf16";
  c.captured.push_back(inverse_group("bad", decl, ref, 0.03));
  c.captured.push_back(inverse_group("good", decl, ref, 0.0));
  c.captured.push_back(inverse_group("undeclared", "fp32 everything", ref, 0.03));
  Dataset ds;
  ds.description = "test_inverse_bound";
  ds.cases.push_back(c);
  fs::path const file = scratch() / "bad-inverse.h5";
  write_dataset(file.string(), ds);

  fs::path const json = scratch() / "bad-inverse.json";
  Run const r = run("check " + file.string() + " --json " + json.string());
  BOOST_TEST(r.status == 1, r.out << r.err);
  auto const j = nlohmann::json::parse(slurp(json));

  auto const* bad = find_result(j, "captured:bad");
  BOOST_TEST_REQUIRE(bad != nullptr);
  BOOST_TEST((*bad)["disposition"] == "failed");
  BOOST_TEST((*bad)["worst"]["ratio"].get<double>() <= 8.0);  // the floor ratio alone would pass
  std::string const reason = (*bad)["reason"];
  BOOST_TEST(reason.find("A_inv seq 0 head 0 chunk 0: bound ratio R_det") != std::string::npos, reason);
  BOOST_TEST(reason.find("floor ratio") == std::string::npos, reason);
  BOOST_TEST((*bad)["bound"]["max_r_det"].get<double>() > 1.0);
  BOOST_TEST((*bad)["bound"]["chunks_over"] == 1);
  BOOST_TEST((*bad)["bound"]["passed"] == false);
  BOOST_TEST(r.out.find(reason) != std::string::npos);

  auto const* good = find_result(j, "captured:good");
  BOOST_TEST_REQUIRE(good != nullptr);
  BOOST_TEST((*good)["disposition"] == "passed");
  BOOST_TEST((*good)["bound"]["max_r_det"].get<double>() <= 1.0);

  auto const* undeclared = find_result(j, "captured:undeclared");
  BOOST_TEST_REQUIRE(undeclared != nullptr);
  BOOST_TEST((*undeclared)["disposition"] == "passed");
  BOOST_TEST((*undeclared)["bound"].is_null());
  BOOST_TEST((*undeclared)["bound_reason"].get<std::string>().find("arithmetic attribute") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
