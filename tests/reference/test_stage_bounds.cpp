// The componentwise bounds of the later stages (reference/stage_bounds.hpp): the correct CPU model of
// the kernels stays inside every one on every generator family, seed and input dtype; one entry moved
// by twice its deterministic bound is found (R_det = 2 at that block and entry); the probabilistic bound
// never exceeds the deterministic one; a bf16 running state breaks the state's bound (declared fp32) and
// is inside it once declared; the later-stage keys of a declaration parse.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/generators.hpp"
#include "reference/bounds.hpp"
#include "reference/chunked.hpp"
#include "reference/emulated.hpp"
#include "reference/rounding.hpp"
#include "reference/stage_bounds.hpp"
#include "test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace gdnv;

namespace {

Tensor const& tensor_of(ChunkedResult const& r, std::string const& name) {
  if (name == "g_cumsum") return r.g_cumsum;
  if (name == "A") return r.A;
  if (name == "A_inv") return r.A_inv;
  if (name == "w") return r.w;
  if (name == "u") return r.u;
  if (name == "v_new") return r.v_new;
  if (name == "h") return r.h;
  if (name == "o") return r.o;
  return r.final_state;
}


// A faulty model of fused-intra-v3's arithmetic (tf32x3 merges declared) leaves v_new's and o's bounds on the
// fla-test and model-like families.
void expect_v_new_and_o_out_of_bounds(EmulatedOptions const& eo, char const* what) {
  DeclaredArithmetic d;
  d.merges = Precision::tf32x3;
  for (auto const& family : {"fla-test", "model-like"}) {
    Problem const p = test::small_family_case(family, DType::bf16, 11);
    ChunkedResult const ref = chunked_forward(p);
    StageBounds const b = stage_bounds(p, ref, d);
    ChunkedResult const got = emulated_forward(p, eo);
    for (auto const& name : {"v_new", "o"}) {
      double const r = test::max_r_det(stage_bound_ratios(p, ref, b, name, tensor_of(got, name)));
      BOOST_TEST(r > 1.0, what << ", " << family << " " << name << ": R_det " << r);
      BOOST_TEST_MESSAGE(what << ", " << family << " " << name << ": R_det " << r);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(later_stage_bounds)

BOOST_AUTO_TEST_CASE(later_stage_keys_parse_and_round_trip) {
  // the old forms still parse, the later stages keep FLA's defaults
  auto old = parse_declared_arithmetic("bf16 in, fp32 accumulate, A_inv bf16, state fp32");
  BOOST_TEST_REQUIRE(old.has_value());
  BOOST_TEST((old->state == Precision::fp32));
  BOOST_TEST((old->state_operand == Precision::input));
  BOOST_TEST((old->w == Precision::input && old->scores == Precision::input));
  std::string why;
  auto d = parse_declared_arithmetic(
      "input=bf16 accumulate=fp32 A_inv=fp32 A_inv_operand=split w=bf16 u=fp32 v_new=bf16 h=fp32 o=bf16 "
      "state=bf16 state_operand=split scores=fp32 operands=bf16 A=bf16",
      &why);
  BOOST_TEST_REQUIRE(d.has_value(), why);
  BOOST_TEST((d->A_inv_operand == Precision::split));
  BOOST_TEST((d->u == Precision::fp32 && d->h == Precision::fp32 && d->scores == Precision::fp32));
  BOOST_TEST((d->state == Precision::bf16 && d->state_operand == Precision::split));
  BOOST_TEST((d->A == Precision::bf16 && d->operands == Precision::bf16));
  auto back = parse_declared_arithmetic(d->to_string());
  BOOST_TEST_REQUIRE(back.has_value());
  BOOST_TEST((*back == *d));
  // the two-word form for a later key, and conflicting values
  auto t = parse_declared_arithmetic("bf16 in, fp32 accumulate, A_inv bf16, split state_operand, o bf16");
  BOOST_TEST_REQUIRE(t.has_value());
  BOOST_TEST((t->state_operand == Precision::split));
  BOOST_TEST(!parse_declared_arithmetic("A_inv=bf16 accumulate=fp32 state=fp32 final_state=bf16").has_value());
  BOOST_TEST(!parse_declared_arithmetic("A_inv=bf16 accumulate=fp32 w=fp99").has_value());
  BOOST_TEST(unit_roundoff(Precision::split, DType::bf16) == 0x1p-16);
  BOOST_TEST(unit_roundoff(Precision::split, DType::f32) == 0x1p-24);
}

// Every bound: non-negative, 0 past the valid rows and on/above A's diagonal, B_prob <= B_det, and the
// exact result rounded once to the stored dtype (bf16 h snapshot) sits inside.
BOOST_AUTO_TEST_CASE(bounds_are_ordered_and_cover_a_single_rounding) {
  Problem const p = test::small_family_case("ragged");
  ChunkedResult const ref = chunked_forward(p);
  StageBounds const b = stage_bounds(p, ref, DeclaredArithmetic{});
  for (auto const& name : bounded_tensors()) {
    Tensor const& det = b.det.at(name);
    Tensor const& prob = b.prob.at(name);
    BOOST_TEST_REQUIRE((det.shape == tensor_of(ref, name).shape), name);
    for (size_t i = 0; i < det.data.size(); ++i) {
      BOOST_TEST_REQUIRE(det.data[i] >= 0.0, name);
      BOOST_TEST_REQUIRE(prob.data[i] <= det.data[i], name << " entry " << i);
    }
  }
  // the exact reference itself: R = 0 everywhere
  for (auto const& name : bounded_tensors())
    BOOST_TEST(test::max_r_det(stage_bound_ratios(p, ref, b, name, tensor_of(ref, name))) == 0.0, name);
  // the h snapshot of a sequence's first chunk is the (exact) initial state rounded once to bf16
  Tensor h = ref.h;
  for (auto const& c : p.chunks()) {
    if (c.chunk != 0) continue;
    for (int64_t hv = 0; hv < p.HV; ++hv) {
      int64_t const off = h.offset({c.b, c.h_index, hv, 0, 0});
      for (int64_t i = 0; i < p.K * p.V; ++i) {
        double const x = ref.h.data[static_cast<size_t>(off + i)];
        h.data[static_cast<size_t>(off + i)] = round_to(DType::bf16, x);
      }
    }
  }
  double const r = test::max_r_det(stage_bound_ratios(p, ref, b, "h", h));
  BOOST_TEST(r <= 1.0);
  BOOST_TEST(r > 0.5);  // the rounding reaches its bound: the bound is tight there
}

// One entry of each tensor moved by twice its deterministic bound: R_det = 2 there and 0 elsewhere.
BOOST_DATA_TEST_CASE(one_entry_off_by_twice_its_bound_is_found, bdata::make(bounded_tensors()), name) {
  Problem const p = test::small_family_case("normal");
  ChunkedResult const ref = chunked_forward(p);
  StageBounds const b = stage_bounds(p, ref, DeclaredArithmetic{});
  Tensor got = tensor_of(ref, name);
  Tensor const& det = b.det.at(name);
  // the entry with the largest bound that is not on or above A's diagonal
  size_t at = 0;
  for (size_t i = 0; i < det.data.size(); ++i)
    if (det.data[i] > det.data[at]) at = i;
  BOOST_TEST_REQUIRE(det.data[at] > 0.0);
  got.data[at] += 2.0 * det.data[at];
  auto const rows = stage_bound_ratios(p, ref, b, name, got);
  int over = 0;
  for (auto const& r : rows) {
    if (r.r_det == 0.0) continue;
    ++over;
    BOOST_TEST(r.r_det == 2.0, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(r.r_prob >= 2.0);
    BOOST_TEST(r.bound == det.data[at]);
  }
  BOOST_TEST(over == 1);
  // slightly inside: 0.99 of the bound is not flagged
  got.data[at] = tensor_of(ref, name).data[at] + 0.99 * det.data[at];
  BOOST_TEST(test::max_r_det(stage_bound_ratios(p, ref, b, name, got)) < 1.0);
  got.data[at] = std::nan("");
  BOOST_TEST(std::isinf(test::max_r_det(stage_bound_ratios(p, ref, b, name, got))));
}

// The correct model of the bf16/fp16 serving kernels (and of an all-fp32 pipeline with fp32 inputs) is
// inside its declared bounds for every tensor, on every family, for several seeds.
BOOST_DATA_TEST_CASE(correct_emulation_is_inside_on_every_family, bdata::make(generator_families()), family) {
  for (DType dt : {DType::bf16, DType::f16, DType::f32})
    for (uint64_t seed : {7u, 19u}) {
      Problem const p = test::small_family_case(family, dt, seed);
      ChunkedResult const ref = chunked_forward(p);
      StageBounds const b = stage_bounds(p, ref, DeclaredArithmetic{});
      ChunkedResult const got = emulated_forward(p);
      std::string line;
      for (auto const& name : bounded_tensors()) {
        double const r = test::max_r_det(stage_bound_ratios(p, ref, b, name, tensor_of(got, name)));
        BOOST_TEST(r <= 1.0, family << " " << dtype_name(dt) << " seed " << seed << " " << name << ": R_det " << r);
        line += " " + name + " " + std::to_string(r);
      }
      BOOST_TEST_MESSAGE(family << " " << dtype_name(dt) << " seed " << seed << ":" << line);
    }
}

// The CPU models of the GQA-shared kernels (fused-v5: 3xTF32 merges; fused-intra-v3: and beta folded into
// the A_inv operand of w/u; precise-v3: and precise's u, v_new, scores) are inside the bounds of what they
// declare (harness/inverse_bound.cpp), for every tensor, on every family, in bf16 and fp16. Folding beta
// rounds beta_i on A_inv's exact diagonal: declared with beta v in fp32 (no operand rounding), u's bound
// breaks (the next test), so the kernels declare FLA's beta v operand. The state walk of two chunks per step
// (EmulatedOptions::pair_walk, the planned state_output_fused 5) on fused-intra-v3's arithmetic declares the same:
// its own roundings -- round(W_2 K_1^T), the cross score block round(e^gamma Q_2 K_1^T), Db_1 rounded a second time
// times e^{G_2} -- stand where the second chunk's snapshot rounding stood. So does the walk that forms the delta
// from v (EmulatedOptions::delta_from_v, fused-forward-from-v): its one rounding, of v - e^gamma K round(h) before
// the product with round(A_inv diag(beta)), stands where u's and w's roundings stood (w and u are not formed: the
// bounds of the tensors it has).
BOOST_DATA_TEST_CASE(gqa_kernel_models_are_inside_on_every_family, bdata::make(generator_families()), family) {
  struct Model {
    char const* name;
    bool fold, precise, pairs, from_v;
  };
  for (Model const m : {Model{"fused-v5", false, false, false, false}, Model{"fused-intra-v3", true, false, false, false},
                        Model{"precise-v3", true, true, false, false}, Model{"fused-forward-pairs", true, false, true, false},
                        Model{"fused-forward-from-v", true, false, false, true}}) {
    EmulatedOptions eo;
    eo.tc_inverse = true;
    eo.fold_beta = m.fold;
    eo.precise_uv = m.precise;
    eo.pair_walk = m.pairs;
    eo.delta_from_v = m.from_v;
    DeclaredArithmetic d;
    d.merges = Precision::tf32x3;
    if (m.precise) d.v_operand = d.u = d.v_new = d.scores = Precision::fp32;  // the model keeps these fp32
    for (DType dt : {DType::bf16, DType::f16}) {
      Problem const p = test::small_family_case(family, dt, 11);
      ChunkedResult const ref = chunked_forward(p);
      StageBounds const b = stage_bounds(p, ref, d);
      ChunkedResult const got = emulated_forward(p, eo);
      std::string line;
      for (auto const& name : bounded_tensors()) {
        double const r = test::max_r_det(stage_bound_ratios(p, ref, b, name, tensor_of(got, name)));
        BOOST_TEST(r <= 1.0, m.name << " " << family << " " << dtype_name(dt) << " " << name << ": R_det " << r);
        line += " " + name + " " + std::to_string(r);
      }
      BOOST_TEST_MESSAGE(m.name << " " << family << " " << dtype_name(dt) << ":" << line);
    }
  }
}

// The delta formed from v without its gate factor (v - K round(h) instead of v - e^gamma K round(h): the bug such a
// walk is likeliest to have) breaks v_new's and o's bounds.
BOOST_AUTO_TEST_CASE(delta_from_v_without_its_gate_breaks_the_bounds) {
  EmulatedOptions eo;
  eo.tc_inverse = eo.fold_beta = eo.delta_from_v = true;
  eo.faults.w_without_gate = true;
  expect_v_new_and_o_out_of_bounds(eo, "delta from v without e^gamma");
}

BOOST_AUTO_TEST_CASE(delta_from_v_is_refused_without_fold_beta_or_with_isolated_stages) {
  Problem const p = test::small_family_case("fla-test", DType::bf16, 11);
  EmulatedOptions eo;
  eo.tc_inverse = eo.delta_from_v = true;
  BOOST_CHECK_THROW(emulated_forward(p, eo), std::invalid_argument);  // no fold_beta
  eo.fold_beta = true;
  ChunkedResult const ref = chunked_forward(p);
  eo.stage_inputs = &ref;
  BOOST_CHECK_THROW(emulated_forward(p, eo), std::invalid_argument);
  eo.stage_inputs = nullptr;
  eo.pair_walk = true;
  BOOST_CHECK_THROW(emulated_forward(p, eo), std::invalid_argument);
}

// The from-v form is what runs: its v_new differs from fused-intra-v3's (u - W round(h), three roundings) in most
// entries, its A_inv is the same.
BOOST_AUTO_TEST_CASE(delta_from_v_changes_v_new_not_A_inv) {
  Problem const p = test::small_family_case("fla-test", DType::bf16, 11);
  EmulatedOptions v3;
  v3.tc_inverse = v3.fold_beta = true;
  EmulatedOptions fv = v3;
  fv.delta_from_v = true;
  ChunkedResult const a = emulated_forward(p, v3), b = emulated_forward(p, fv);
  BOOST_TEST((a.A_inv.data == b.A_inv.data));
  size_t differ = 0;
  for (size_t i = 0; i < a.v_new.data.size(); ++i) differ += a.v_new.data[i] != b.v_new.data[i];
  BOOST_TEST(differ > a.v_new.data.size() / 10, differ << " of " << a.v_new.data.size() << " v_new values differ");
}

// The same bounds catch the two-chunk walk's likeliest bug: chunk 2 without the terms of chunk 1's delta.
BOOST_AUTO_TEST_CASE(pair_walk_without_chunk1_terms_breaks_the_bounds) {
  EmulatedOptions eo;
  eo.tc_inverse = eo.fold_beta = eo.pair_walk = true;
  eo.faults.pair_without_chunk1_terms = true;
  expect_v_new_and_o_out_of_bounds(eo, "pairs without chunk 1's terms");
}

// The pair walk is what runs: against the one-chunk walk of the same model, a sequence's first chunk (a pair's
// first, from the same snapshot) has the same v_new and o bytes; its second chunk's v_new and the final state differ.
BOOST_AUTO_TEST_CASE(pair_walk_changes_the_second_chunk_on_not_the_first) {
  Problem const p = test::small_family_case("fla-test", DType::bf16, 11);  // T = 200: chunks of 64, 64, 64, 8
  EmulatedOptions one;
  one.tc_inverse = one.fold_beta = true;
  EmulatedOptions two = one;
  two.pair_walk = true;
  ChunkedResult const a = emulated_forward(p, one), b = emulated_forward(p, two);
  auto rows_equal = [&](Tensor const& x, Tensor const& y, int64_t t0, int64_t t1) {
    for (int64_t bb = 0; bb < p.B; ++bb)
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t hv = 0; hv < p.HV; ++hv)
          for (int64_t c = 0; c < x.dim(3); ++c)
            if (x.at({bb, t, hv, c}) != y.at({bb, t, hv, c})) return false;
    return true;
  };
  BOOST_TEST(rows_equal(a.v_new, b.v_new, 0, 64));
  BOOST_TEST(rows_equal(a.o, b.o, 0, 64));
  BOOST_TEST(!rows_equal(a.v_new, b.v_new, 64, 128));
  BOOST_TEST(!rows_equal(a.o, b.o, 64, 128));
  BOOST_TEST((a.final_state.data != b.final_state.data));
}

BOOST_AUTO_TEST_CASE(folded_beta_breaks_an_fp32_beta_v_declaration) {
  EmulatedOptions eo;
  eo.tc_inverse = eo.fold_beta = true;
  DeclaredArithmetic d;
  d.merges = Precision::tf32x3;
  d.v_operand = Precision::fp32;
  double worst = 0;
  for (auto const& family : {"strong-decay", "ragged", "fla-test"}) {
    Problem const p = test::small_family_case(family, DType::bf16, 11);
    ChunkedResult const ref = chunked_forward(p);
    worst = std::max(worst, test::max_r_det(stage_bound_ratios(p, ref, stage_bounds(p, ref, d), "u", emulated_forward(p, eo).u)));
  }
  BOOST_TEST(worst > 1.0, "u's R_det " << worst);
}

// The isolated stages (each fed the reference's inputs to it, rounded) are inside the same bounds.
BOOST_AUTO_TEST_CASE(isolated_stages_are_inside_too) {
  for (auto const& family : {"fla-test", "ragged", "no-decay"}) {
    Problem const p = test::small_family_case(family);
    ChunkedResult const ref = chunked_forward(p);
    StageBounds const b = stage_bounds(p, ref, DeclaredArithmetic{});
    EmulatedOptions eo;
    eo.stage_inputs = &ref;
    ChunkedResult const got = emulated_forward(p, eo);
    for (auto const& name : bounded_tensors())
      BOOST_TEST(test::max_r_det(stage_bound_ratios(p, ref, b, name, tensor_of(got, name))) <= 1.0, family << " " << name);
  }
}

// A running state rounded to bf16: the floor ratio cannot see it, the state's bound (declared fp32) does
// on a sequence shorter than a chunk; declared as a bf16 state, the same error is inside its bound.
BOOST_AUTO_TEST_CASE(bf16_state_breaks_the_state_bound_unless_declared) {
  Problem const p = test::small_family_case("ragged");
  ChunkedResult const ref = chunked_forward(p);
  EmulatedOptions eo;
  eo.faults.state_in_input_dtype = true;
  ChunkedResult const got = emulated_forward(p, eo);
  StageBounds const fp32_state = stage_bounds(p, ref, DeclaredArithmetic{});
  auto const rows = stage_bound_ratios(p, ref, fp32_state, "final_state", got.final_state);
  BOOST_TEST(test::max_r_det(rows) > 1.0);
  // the length-1 sequence (seq 0) shows it
  double seq0 = 0;
  for (auto const& r : rows)
    if (r.sequence == 0) seq0 = std::max(seq0, r.r_det);
  BOOST_TEST(seq0 > 1.0);
  DeclaredArithmetic bf16_state;
  bf16_state.state = Precision::bf16;
  StageBounds const declared = stage_bounds(p, ref, bf16_state);
  for (auto const& name : bounded_tensors())
    BOOST_TEST(test::max_r_det(stage_bound_ratios(p, ref, declared, name, tensor_of(got, name))) <= 1.0, name);
}

// State errors beyond what the arithmetic allows: an h snapshot off by a relative 2^-6 (4 bf16 roundings of
// the exact initial state at chunk 0) is flagged, and so is a final state scaled by 1 + 2^-4 with decay.
BOOST_AUTO_TEST_CASE(state_errors_beyond_the_arithmetic_are_flagged) {
  Problem const p = test::small_family_case("normal");
  ChunkedResult const ref = chunked_forward(p);
  StageBounds const b = stage_bounds(p, ref, DeclaredArithmetic{});
  Tensor h = ref.h;
  for (double& x : h.data) x *= 1.0 + 0x1p-6;
  BOOST_TEST(test::max_r_det(stage_bound_ratios(p, ref, b, "h", h)) > 1.0);
  Tensor s = ref.final_state;
  for (double& x : s.data) x *= 1.0 + 0x1p-4;
  BOOST_TEST(test::max_r_det(stage_bound_ratios(p, ref, b, "final_state", s)) > 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
