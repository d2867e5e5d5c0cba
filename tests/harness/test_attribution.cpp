// Stage attribution (harness/attribution.hpp, `gdnv check --attribution`): the fp64 reference
// continued from one stage's output. An exact stage must propagate no error at all, a stage made
// badly wrong must come out dominant, and the results file must carry the section.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <cmath>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "datasets/generators.hpp"
#include "harness/attribution.hpp"
#include "harness/emulated_implementation.hpp"
#include "harness/implementation.hpp"
#include "reference/chunked.hpp"
#include "reference/emulated.hpp"
#include "test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace gdnv;

namespace {

// 2 sequences (3 full chunks + a tail of 8, and 70 tokens), GQA, initial states, bf16 inputs.
Problem small_case(std::string const& family = "model-like") {
  GeneratorParams gp;
  gp.family = family;
  gp.seqlens = {200, 70};
  gp.H = 2;
  gp.HV = 4;
  gp.K = 64;
  gp.V = 64;
  gp.seed = 5;
  gp.h0 = true;
  return generate_problem(gp);
}

AttributionRow const& row(AttributionBlock const& b, std::string const& stage) {
  for (auto const& r : b.rows_by_stage)
    if (r.stage.name == stage) return r;
  throw std::out_of_range("no row " + stage);
}

// x with every value rounded to `bits` significand bits (RNE): an fp8-like storage of a tensor.
Tensor coarsened(Tensor x, int bits) {
  for (auto& v : x.data) {
    if (v == 0 || !std::isfinite(v)) continue;
    int e = 0;
    double const m = std::frexp(v, &e);  // v = m 2^e, 0.5 <= |m| < 1
    v = std::ldexp(std::nearbyint(std::ldexp(m, bits)), e - bits);
  }
  return x;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attribution)

// Injecting the reference's own intermediates is a no-op, bit for bit; injecting another value
// changes what is downstream of it and nothing upstream.
BOOST_AUTO_TEST_CASE(injection_continues_the_reference_from_the_given_intermediates) {
  Problem const p = small_case();
  ChunkedResult const ref = chunked_forward(p);
  for (char const* t : {"g_cumsum", "A", "A_inv", "w", "u", "h", "v_new", "final_state", "o"}) {
    StageInjection inj;
    Tensor const& own = t == std::string("g_cumsum") ? ref.g_cumsum
                        : t == std::string("A")      ? ref.A
                        : t == std::string("A_inv")  ? ref.A_inv
                        : t == std::string("w")      ? ref.w
                        : t == std::string("u")      ? ref.u
                        : t == std::string("h")      ? ref.h
                        : t == std::string("v_new")  ? ref.v_new
                        : t == std::string("final_state") ? ref.final_state
                                                          : ref.o;
    inj.slot(t) = &own;
    ChunkedOptions co;
    co.inject = &inj;
    ChunkedResult const r = chunked_forward(p, co);
    BOOST_TEST(r.o.data == ref.o.data, t << ": o changed");
    BOOST_TEST(r.final_state.data == ref.final_state.data, t << ": final_state changed");
  }
  // A perturbed A_inv reaches w, u, o and the state; A upstream of it stays as it was.
  Tensor bad = coarsened(ref.A_inv, 3);
  StageInjection inj;
  inj.A_inv = &bad;
  ChunkedOptions co;
  co.inject = &inj;
  ChunkedResult const r = chunked_forward(p, co);
  BOOST_TEST(r.A.data == ref.A.data);
  BOOST_TEST(r.A_inv.data == bad.data);
  BOOST_TEST(test::rel_error(r.w, ref.w) > 1e-3);
  BOOST_TEST(test::rel_error(r.o, ref.o) > 1e-3);
  BOOST_TEST(test::rel_error(r.final_state, ref.final_state) > 1e-3);
  // The output reads an injected h, while the recurrence keeps its own state.
  Tensor h = ref.h;
  for (auto& x : h.data) x *= 1.5;
  StageInjection hi;
  hi.h = &h;
  co.inject = &hi;
  ChunkedResult const rh = chunked_forward(p, co);
  BOOST_TEST(test::rel_error(rh.o, ref.o) > 1e-2);
  BOOST_TEST(rh.final_state.data == ref.final_state.data);
  Tensor wrong_shape({1, 2, 3}, DType::f64);
  StageInjection ws;
  ws.w = &wrong_shape;
  co.inject = &ws;
  BOOST_CHECK_THROW(chunked_forward(p, co), std::invalid_argument);
}

// (1) A stage whose isolated output is the exact one adds nothing and propagates nothing: every
// row is exactly zero, and so are the sums; with the end-to-end run exact too, nothing dominates.
BOOST_AUTO_TEST_CASE(an_exact_stage_propagates_zero_error) {
  Problem const p = small_case();
  ChunkedResult const ref = chunked_forward(p);
  auto impl = make_implementation("emulated");
  StageOutputs const e2e = impl->run(p);
  StageOutputs iso = impl->run_isolated(p, ref);
  // Replace one stage (solve) by the reference's A_inv: that row must be exactly zero.
  iso["A_inv"].data = ref.A_inv.data;
  Attribution const a = attribute_stages(p, ref, e2e, iso, 3);
  BOOST_TEST_REQUIRE(a.available);
  BOOST_TEST_REQUIRE(a.chunks.size() == 3u);
  for (auto const* b : {&a.chunks[0], &a.chunks[1], &a.chunks[2], &a.case_summary}) {
    AttributionRow const& s = row(*b, "solve");
    BOOST_TEST_REQUIRE(s.available);
    BOOST_TEST(*s.local_ratio == 0.0);
    BOOST_TEST(*s.o.ratio == 0.0);
    BOOST_TEST(*s.o.rel_error == 0.0);
    BOOST_TEST(*s.final_state.ratio == 0.0);
    // the other stages still carry their bf16 errors
    BOOST_TEST(*row(*b, "wu").o.ratio > 0.1);
    BOOST_TEST(*row(*b, "output").o.ratio > 0.5);
    BOOST_TEST(*row(*b, "output").final_state.ratio == 0.0);  // nothing downstream of o
  }
  // Everything exact: all rows zero, no dominant stage.
  StageOutputs exact_iso = stage_outputs_of(chunked_forward(p));
  Attribution const z = attribute_stages(p, ref, exact_iso, exact_iso, 2);
  BOOST_TEST_REQUIRE(z.available);
  for (auto const* b : {&z.chunks[0], &z.chunks[1], &z.case_summary}) {
    for (auto const& r : b->rows_by_stage) {
      BOOST_TEST(*r.o.ratio == 0.0, r.stage.name);
      BOOST_TEST(*r.final_state.ratio == 0.0, r.stage.name);
    }
    BOOST_TEST(*b->sum_o_ratio == 0.0);
    BOOST_TEST(b->dominant_stage.empty());
  }
}

// (2) One stage made badly wrong comes out dominant, for o (and for the final state where the
// stage feeds it), in every worst chunk and over the case. The faults are the selftest's, seen
// through the isolated run, plus A_inv stored with 3 significand bits (fp8 e4m3-like).
struct Injected {
  std::string name, dominant, dominant_final_state;
};
std::ostream& operator<<(std::ostream& os, Injected const& x) { return os << x.name; }
std::vector<Injected> const kInjected = {
    {"A_inv fp8", "solve", "solve"},
    {"gate_one_token_late", "cumsum", "cumsum"},
    {"A_with_diagonal", "kkt", "kkt"},
    {"w_without_gate", "wu", "wu"},
    {"no_state_decay", "state", "state"},
    {"strict_output_mask", "output", ""},
};

BOOST_DATA_TEST_CASE(a_badly_wrong_stage_dominates, bdata::make(kInjected), x) {
  Problem const p = small_case();
  ChunkedResult const ref = chunked_forward(p);
  EmulatedFaults f;
  if (x.name == "gate_one_token_late") f.gate_one_token_late = true;
  if (x.name == "A_with_diagonal") f.A_with_diagonal = true;
  if (x.name == "w_without_gate") f.w_without_gate = true;
  if (x.name == "no_state_decay") f.no_state_decay = true;
  if (x.name == "strict_output_mask") f.strict_output_mask = true;
  auto impl = make_emulated_implementation(f, "faulty");
  StageOutputs e2e = impl->run(p);
  StageOutputs iso = impl->run_isolated(p, ref);
  if (x.name == "A_inv fp8") {
    iso["A_inv"] = coarsened(ref.A_inv, 3);
    e2e["A_inv"] = iso["A_inv"];
  }
  Attribution const a = attribute_stages(p, ref, e2e, iso, 3);
  BOOST_TEST_REQUIRE(a.available);
  BOOST_TEST_REQUIRE(!a.chunks.empty());
  for (auto const& b : a.chunks) {
    BOOST_TEST(b.dominant_stage == x.dominant, x.name << " chunk s" << b.sequence << "h" << b.head << "c" << b.chunk);
    // by far: at least 3x every other whole stage
    for (auto const& r : b.rows_by_stage)
      if (r.stage.part_of.empty() && r.stage.name != x.dominant)
        BOOST_TEST(*row(b, x.dominant).o.ratio > 3.0 * *r.o.ratio, x.name << ": " << r.stage.name);
  }
  BOOST_TEST(a.case_summary.dominant_stage == x.dominant);
  if (!x.dominant_final_state.empty()) BOOST_TEST(a.case_summary.dominant_stage_final_state == x.dominant_final_state);
}

// The correct model: the stages' effects are near the bf16 floor, their vector sum cannot exceed
// the sum of their ratios (triangle inequality on the same floor), and A_inv is not what dominates o.
BOOST_AUTO_TEST_CASE(the_correct_model_is_spread_over_its_bf16_roundings) {
  Problem const p = small_case();
  ChunkedResult const ref = chunked_forward(p);
  auto impl = make_implementation("emulated");
  Attribution const a = attribute_stages(p, ref, impl->run(p), impl->run_isolated(p, ref), 3);
  BOOST_TEST_REQUIRE(a.available);
  for (auto const* b : {&a.chunks[0], &a.chunks[1], &a.chunks[2], &a.case_summary}) {
    BOOST_TEST(*b->linear_o.ratio <= *b->sum_o_ratio * (1 + 1e-12));
    BOOST_TEST(*b->linear_o.ratio > 0.5);
    BOOST_TEST(b->dominant_stage != "solve");
    BOOST_TEST(*row(*b, "solve").o.ratio < *row(*b, "output").o.ratio);
    for (auto const& r : b->rows_by_stage) BOOST_TEST(*r.o.ratio < 8.0, r.stage.name);
  }
  // Net of their input roundings (counted once, by the producer) the stages add up to the end-to-end
  // error far better than the gross effects, which count every stored intermediate twice.
  auto const& cs = a.case_summary;
  double const e2e = *cs.end_to_end_o.ratio;
  BOOST_TEST(std::fabs(*cs.linear_net_o.ratio - e2e) < std::fabs(*cs.linear_o.ratio - e2e),
             "net " << *cs.linear_net_o.ratio << " gross " << *cs.linear_o.ratio << " end to end " << e2e);
  BOOST_TEST(std::fabs(*cs.linear_net_o.ratio / e2e - 1) < 0.25);
  for (auto const& r : cs.rows_by_stage) BOOST_TEST(r.net_available == r.stage.part_of.empty(), r.stage.name);
}

// A kernel whose isolated run lacks a stage's tensor (the fused kkt+solve has no A): that row is
// "not available", not zero; the rows that can be measured still are.
BOOST_AUTO_TEST_CASE(missing_isolated_tensors_are_not_available) {
  Problem const p = small_case();
  ChunkedResult const ref = chunked_forward(p);
  auto impl = make_implementation("emulated");
  StageOutputs iso = impl->run_isolated(p, ref);
  iso.erase("A");
  Attribution const a = attribute_stages(p, ref, impl->run(p), iso, 1);
  BOOST_TEST_REQUIRE(a.available);
  AttributionRow const& kkt = row(a.case_summary, "kkt");
  BOOST_TEST(!kkt.available);
  BOOST_TEST(!kkt.o.ratio.has_value());
  BOOST_TEST(kkt.reason.find("A") != std::string::npos);
  BOOST_TEST(row(a.chunks.at(0), "solve").available);
  nlohmann::json const j = to_json(a);
  bool found = false;
  for (auto const& s : j["case_summary"]["stages"])
    if (s["stage"] == "kkt") {
      found = true;
      BOOST_TEST(s["available"] == false);
      BOOST_TEST(!s.contains("o"));
    }
  BOOST_TEST(found);
  BOOST_TEST(format_attribution(a).find("not available") != std::string::npos);
  Attribution const none = attribute_stages(p, ref, impl->run(p), StageOutputs{}, 1);
  BOOST_TEST(!none.available);
}

#ifdef GDNV_EXE
// (3) The CLI: `--attribution` adds the section for every (case, implementation) and a table per
// case; captured groups say "not available"; without the flag the section is absent.
BOOST_AUTO_TEST_CASE(check_writes_the_attribution_section) {
  std::string const data = GDNV_SOURCE_DIR "/datasets/default.h5";
  std::string const json = (test::scratch_dir() / "attribution.json").string();
  auto const r = test::run_gdnv(test::scratch_dir(),
                                "check " + data + " --impl emulated --attribution --top 0 --json " + json);
  BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
  auto const j = nlohmann::json::parse(test::slurp(json));
  BOOST_TEST_REQUIRE(j.contains("attribution"));
  int emulated = 0, captured = 0;
  for (auto const& a : j["attribution"]) {
    for (char const* k : {"file", "case", "implementation", "available"}) BOOST_TEST(a.contains(k), k);
    std::string const impl = a["implementation"];
    if (impl.rfind("captured:", 0) == 0) {
      ++captured;
      BOOST_TEST(a["available"] == false);
      BOOST_TEST(!a["reason"].get<std::string>().empty());
      continue;
    }
    BOOST_TEST_REQUIRE(impl == "emulated");
    ++emulated;
    BOOST_TEST_REQUIRE(a["available"] == true);
    BOOST_TEST(a["dominant_stage"].is_string());
    BOOST_TEST_REQUIRE(a["chunks"].size() == 3u);
    for (auto const* blk : {&a["chunks"][0], &a["chunks"][1], &a["chunks"][2], &a["case_summary"]}) {
      auto const& b = *blk;
      BOOST_TEST(b["dominant_stage"].is_string());
      BOOST_TEST(b["end_to_end"]["o"]["ratio"].is_number());
      BOOST_TEST(b["linear_sum"]["o"]["ratio"].is_number());
      BOOST_TEST(b["sum_of_stages"]["o_ratio"].is_number());
      BOOST_TEST_REQUIRE(b["stages"].size() == attribution_stages().size());
      for (auto const& s : b["stages"]) {
        BOOST_TEST(s["available"] == true);
        BOOST_TEST(s["local_ratio"].is_number());
        for (char const* t : {"o", "final_state"}) {
          BOOST_TEST(s[t]["ratio"].is_number(), s["stage"] << " " << t);
          BOOST_TEST(s[t]["rel_error"].is_number(), s["stage"] << " " << t);
        }
      }
    }
    for (char const* k : {"sequence", "head", "chunk", "rows"}) BOOST_TEST(a["chunks"][0].contains(k), k);
    // the worst chunk is the end-to-end run's worst o chunk
    double worst_o = 0;
    for (auto const& res : j["results"])
      if (res["case"] == a["case"] && res["implementation"] == "emulated")
        worst_o = res["metrics"]["o"]["max_chunk_ratio"];
    BOOST_TEST(a["chunks"][0]["end_to_end"]["o"]["ratio"].get<double>() == worst_o);
  }
  BOOST_TEST(emulated == 4);
  BOOST_TEST(captured == 8);
  BOOST_TEST(r.out.find("attribution: model-like-gqa / emulated") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("dominant, net") != std::string::npos);

  auto const plain = test::run_gdnv(test::scratch_dir(), "check " + data + " --case ragged-varlen --top 0 --json " + json);
  BOOST_TEST_REQUIRE(plain.status == 0);
  BOOST_TEST(!nlohmann::json::parse(test::slurp(json)).contains("attribution"));
  BOOST_TEST(plain.out.find("attribution:") == std::string::npos);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
