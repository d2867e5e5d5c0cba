// GPU tests of the fused state + output kernels (cuda/state_output_fused.cu, variants 4, 3, 2 and 1; label gpu,
// skipped visibly without a device). All run chunk_state 2's and chunk_output 2's products on the same
// operand values in the same k order (variants 2-4 read the score rows chunk_scores wrote; 3 and 4 run them on
// warpgroup MMAs, 4 with TMA tile loads, K = 128 only, variant 2 at K = 64), so forward() with
// Args::fuse_state_output must write the bytes of forward() without it: o and the final state, and h and
// v_new when their buffers are given. Every case runs every variant (4 with 64- and 32-column blocks, reading the
// score rows or computing them on chip: Args::scores_in_state, the bytes chunk_scores would have written; each
// with its own tile copies or in clusters of the head's blocks or of two sharing them: Args::state_output_cluster).
// Cases: bf16 and fp16, K = 128 and 64,
// GQA, varlen with empty, one-token, 63/64/65-token sequences (one, two and three chunks: the double
// buffers at their ends), with and without an initial state, and with h / v_new not stored.
// Problems the kernel does not cover (fp32, split state operand, precise_uv) run the two kernels: the same
// bytes again. Accuracy against the fp64 reference: test_gpu_stages runs "fused-forward" on every family.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/gpu_test_util.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace utf = boost::unit_test;
using namespace gdnv;

BOOST_AUTO_TEST_SUITE(gpu_state_output, *utf::label("gpu") * utf::precondition(test::has_gpu{}))

#ifdef GDNV_HAVE_CUDA
namespace {
namespace gc = gdn_cuda;

size_t bytes_differing(std::vector<unsigned char> const& x, std::vector<unsigned char> const& y) {
  size_t d = x.size() > y.size() ? x.size() - y.size() : y.size() - x.size();
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) d += x[i] != y[i];
  return d;
}

// The largest distance in units in the last place between same-position values of `width` bytes (2 or 4;
// sign-magnitude order), for the failure message: how far apart differing outputs are.
uint64_t max_ulps(std::vector<unsigned char> const& x, std::vector<unsigned char> const& y, int width) {
  auto ordered = [width](unsigned char const* p) {
    uint64_t v = 0;
    std::memcpy(&v, p, static_cast<size_t>(width));
    uint64_t const sign = uint64_t{1} << (8 * width - 1);
    return (v & sign) ? sign - (v & (sign - 1)) : sign + v;  // monotone in the value
  };
  uint64_t m = 0;
  for (size_t i = 0; i + static_cast<size_t>(width) <= std::min(x.size(), y.size()); i += static_cast<size_t>(width)) {
    uint64_t const a = ordered(&x[i]), b = ordered(&y[i]);
    m = std::max(m, a > b ? a - b : b - a);
  }
  return m;
}

// forward() with chunk_state + chunk_output, then with the fused kernel (h, v_new stored, or not when
// `store_intermediates` is false): every output the fused run writes must match byte for byte, and what it
// does not store must stay untouched.
void expect_variant_equals_two_kernels(test::StateCase const& c, bool store_intermediates, int variant, int columns = 0,
                                       bool scores_in_state = false, int cluster = 0) {
  BOOST_TEST_CONTEXT("state_output_fused " << variant << ", Args::state_output_columns " << columns
                                           << ", Args::scores_in_state " << scores_in_state
                                           << ", Args::state_output_cluster " << cluster) {
    test::StateRun run(c, 41);
    gc::Workspace& ws = *run.ws;
    gc::Args a = run.a;
    a.state_variant = 2;
    BOOST_TEST_MESSAGE("fused kernel runs: " << gc::state_output_runs_fused(a));
    int const e16 = c.e == gc::ElemType::f32 ? 4 : 2;
    struct Out { gc::DeviceBuffer* buf; char const* name; bool intermediate; int width; };
    Out const outs[] = {{&ws.o, "o", false, e16}, {&ws.final_state, "final_state", false, 4},
                        {&ws.h, "h", true, e16}, {&ws.v_new, "v_new", true, e16}};
    ws.poison();
    gc::forward(a, nullptr);
    gc::synchronize();
    std::vector<std::vector<unsigned char>> ref;
    for (auto const& o : outs) ref.push_back(test::device_bytes(*o.buf));

    ws.poison();
    gc::Args f = a;
    f.fuse_state_output = true;
    f.state_output_variant = variant;
    f.state_output_columns = columns;
    f.scores_in_state = scores_in_state;
    f.state_output_cluster = cluster;
    if (!store_intermediates) f.h = nullptr, f.v_new = nullptr;
    gc::forward(f, nullptr);
    gc::synchronize();
    // the score rows on chip in 64-column blocks (read at 32): no chunk_scores launch, nothing written to Args::scores
    if (scores_in_state && c.K == 128 && gc::state_output_runs_fused(f))
      BOOST_TEST(gc::state_output_computes_scores(f) == (columns == 64));
    if (gc::state_output_computes_scores(f)) BOOST_TEST(test::untouched(ws.scores), "score rows written");
    for (size_t i = 0; i < std::size(outs); ++i) {
      if (outs[i].intermediate && !store_intermediates) {
        BOOST_TEST(test::untouched(*outs[i].buf), outs[i].name << " written although its pointer was null");
        continue;
      }
      std::vector<unsigned char> const got = test::device_bytes(*outs[i].buf);
      size_t const d = bytes_differing(got, ref[i]);
      BOOST_TEST(d == 0u, outs[i].name << ": " << d << " of " << ref[i].size()
                                       << " bytes differ from chunk_state + chunk_output, at most "
                                       << max_ulps(got, ref[i], outs[i].width) << " ulp apart");
    }
    BOOST_TEST(!test::untouched(ws.o));  // the run wrote o (the comparison alone would pass two untouched buffers)
  }
}

// fp16 at K = 128 with four value heads on one key head, T = 333 (variant 3's other instance; the delta from v's fp16
// kernels)
test::StateCase fp16_K128_G4_case() {
  test::StateCase c;
  c.T = 333, c.H = 1, c.HV = 4, c.e = gc::ElemType::f16;
  return c;
}

// One, two and three chunks per sequence, empty and one-token sequences, G = 1.
test::StateCase ragged_G1_case() {
  test::StateCase c;
  c.H = 2, c.HV = 2;
  c.seqlens = {1, 0, 63, 64, 65, 128, 129, 200, 3};
  return c;
}

void expect_fused_equals_two_kernels(test::StateCase const& c, bool store_intermediates = true) {
  // both widths, the score rows read (chunk_scores') or computed on chip, each block copying its tiles, the head's
  // blocks in one cluster sharing them (TMA multicast), or clusters of two (the same as the head's at 64 columns)
  for (bool sc : {false, true})
    for (int columns : {64, 32})
      for (int cluster : {1, 2, 3})
        if (cluster != 3 || columns == 32) expect_variant_equals_two_kernels(c, store_intermediates, 4, columns, sc, cluster);
  for (int variant : {3, 2, 1}) expect_variant_equals_two_kernels(c, store_intermediates, variant);
}
}  // namespace

BOOST_AUTO_TEST_CASE(equals_two_kernels_bf16_K128_G2) { expect_fused_equals_two_kernels({}); }

BOOST_AUTO_TEST_CASE(equals_two_kernels_bf16_K128_not_stored) { expect_fused_equals_two_kernels({}, false); }

BOOST_AUTO_TEST_CASE(equals_two_kernels_fp16_K64_G3_no_h0) {
  test::StateCase c;
  c.T = 777, c.H = 1, c.HV = 3, c.K = 64, c.e = gc::ElemType::f16, c.h0 = false;
  expect_fused_equals_two_kernels(c);
}

// fp16 at K = 128: variant 3's other instance (K = 64 runs variant 2).
BOOST_AUTO_TEST_CASE(equals_two_kernels_fp16_K128_G4) { expect_fused_equals_two_kernels(fp16_K128_G4_case()); }

BOOST_AUTO_TEST_CASE(equals_two_kernels_ragged_G1) { expect_fused_equals_two_kernels(ragged_G1_case()); }

BOOST_AUTO_TEST_CASE(equals_two_kernels_ragged_K64_not_stored) {
  test::StateCase c;
  c.H = 1, c.HV = 2, c.K = 64;
  c.seqlens = {65, 1, 130, 0, 64};
  expect_fused_equals_two_kernels(c, false);
}

// Not covered by the fused kernel: the two kernels run (the same bytes, trivially), and without h / v_new
// buffers the call is refused instead of writing through null pointers.
BOOST_AUTO_TEST_CASE(falls_back_for_split_state_and_precise) {
  test::StateCase c;
  c.T = 300;
  c.split = true;
  expect_fused_equals_two_kernels(c);
  c.split = false, c.precise = true;
  expect_fused_equals_two_kernels(c);
  test::StateRun run(c, 3);
  gc::Args f = run.a;
  f.fuse_state_output = true;
  f.h = nullptr;
  BOOST_TEST(!gc::state_output_runs_fused(f));
  BOOST_CHECK_THROW(gc::forward(f, nullptr), std::invalid_argument);
}

// Variants 2, 3 and 4 read the score rows from Args::scores: without that buffer the call is refused (nothing runs),
// unless variant 4 computes them itself (Args::scores_in_state).
BOOST_AUTO_TEST_CASE(variant_2_refuses_null_scores) {
  test::StateCase c;
  c.T = 200;
  test::StateRun run(c, 9);
  gc::Args f = run.a;
  f.fuse_state_output = true;
  f.scores = nullptr;
  f.state_output_variant = 2;
  BOOST_TEST(gc::state_output_runs_fused(f));
  gc::forward(run.a, nullptr);  // w and u for the run below
  gc::synchronize();
  run.ws->o.fill_bytes(0xFF);
  BOOST_CHECK_THROW(gc::state_output_fused(f, nullptr), std::invalid_argument);
  f.state_output_variant = 3;  // reads them too
  BOOST_CHECK_THROW(gc::state_output_fused(f, nullptr), std::invalid_argument);
  f.state_output_variant = 4;
  BOOST_CHECK_THROW(gc::state_output_fused(f, nullptr), std::invalid_argument);
  gc::synchronize();
  BOOST_TEST(test::untouched(run.ws->o));
  f.state_output_variant = 1;  // variant 1 computes its scores on chip
  gc::state_output_fused(f, nullptr);
  gc::synchronize();
  BOOST_TEST(!test::untouched(run.ws->o));
  run.ws->o.fill_bytes(0xFF);
  f.state_output_variant = 4, f.scores_in_state = true, f.state_output_columns = 64;  // so does variant 4 when asked
  BOOST_TEST(gc::state_output_computes_scores(f));
  gc::state_output_fused(f, nullptr);
  gc::synchronize();
  BOOST_TEST(!test::untouched(run.ws->o));
}

// A variant number that names no kernel is refused before anything runs, on the fused path and on the two
// kernels' (it once ran variant 2 silently).
BOOST_AUTO_TEST_CASE(refuses_unknown_variant) {
  test::StateCase c;
  c.T = 100;
  test::StateRun run(c, 4);
  gc::forward(run.a, nullptr);  // w, u and the score buffer's producer inputs
  gc::synchronize();
  gc::Args f = run.a;
  f.fuse_state_output = true;
  run.ws->o.fill_bytes(0xFF);
  for (int v : {0, 5, -1}) {
    f.state_output_variant = v;
    BOOST_CHECK_THROW(gc::state_output_fused(f, nullptr), std::invalid_argument);
    gc::Args fb = f;  // also where the problem runs the two kernels instead
    fb.split_state = true;
    BOOST_TEST(!gc::state_output_runs_fused(fb));
    BOOST_CHECK_THROW(gc::state_output_fused(fb, nullptr), std::invalid_argument);
  }
  f.state_output_variant = 4;
  for (int cl : {4, -1}) {  // no such copy mode
    f.state_output_cluster = cl;
    BOOST_CHECK_THROW(gc::state_output_fused(f, nullptr), std::invalid_argument);
  }
  f.state_output_cluster = 0;
  gc::synchronize();
  BOOST_TEST(test::untouched(run.ws->o));
  f.state_output_variant = 4;  // the default runs and writes o (so the untouched check above can fail)
  gc::state_output_fused(f, nullptr);
  gc::synchronize();
  BOOST_TEST(!test::untouched(run.ws->o));
}

// Args::delta_from_v (the walk forms the delta from v; intra 3 writes round(A_inv diag(beta)) only): its accuracy
// against the fp64 reference is test_gpu_tc's (fused-forward-from-v); here the bytes. Every width and score-row
// mode computes each output column with the same products in the same k order, so 32-column blocks (score rows from
// intra 3), 64-column blocks reading them and 64-column blocks computing them on chip write the same o, v_new, h and
// final state; w and u are never written; h and v_new stay untouched where their pointers are null.
void expect_delta_from_v_same_bytes(test::StateCase const& c) {
  test::StateRun run(c, 43);
  gc::Workspace& ws = *run.ws;
  gc::Args f = run.a;
  f.intra_variant = 3, f.fuse_state_output = true, f.state_output_variant = 4, f.scores_in_intra = true;
  f.delta_from_v = true;
  std::string why;
  BOOST_TEST_REQUIRE(gc::delta_from_v_runs(f, &why), why);
  int const e16 = 2;
  struct Out { gc::DeviceBuffer* buf; char const* name; int width; };
  Out const outs[] = {{&ws.o, "o", e16}, {&ws.final_state, "final_state", 4}, {&ws.h, "h", e16}, {&ws.v_new, "v_new", e16}};
  std::vector<std::vector<unsigned char>> first;
  struct Mode { int columns; bool sc; };
  for (Mode const m : {Mode{32, false}, Mode{64, false}, Mode{64, true}, Mode{32, true}}) {
    BOOST_TEST_CONTEXT("delta_from_v, " << m.columns << " columns, Args::scores_in_state " << m.sc) {
      ws.poison();
      gc::Args x = f;
      x.state_output_columns = m.columns, x.scores_in_state = m.sc;
      gc::forward(x, nullptr);
      gc::synchronize();
      BOOST_TEST(test::untouched(ws.w), "w written");
      BOOST_TEST(test::untouched(ws.u), "u written");
      BOOST_TEST(!test::untouched(ws.o));
      BOOST_TEST(!test::untouched(ws.ainv_beta));
      for (size_t i = 0; i < std::size(outs); ++i) {
        std::vector<unsigned char> got = test::device_bytes(*outs[i].buf);
        if (first.size() < std::size(outs)) {
          first.push_back(std::move(got));
          continue;
        }
        size_t const d = bytes_differing(got, first[i]);
        BOOST_TEST(d == 0u, outs[i].name << ": " << d << " of " << got.size() << " bytes differ from 32 columns', at most "
                                         << max_ulps(got, first[i], outs[i].width) << " ulp apart");
      }
    }
  }
  ws.poison();  // h and v_new not stored: the same o and final state, their buffers untouched
  gc::Args x = f;
  x.h = nullptr, x.v_new = nullptr;
  gc::forward(x, nullptr);
  gc::synchronize();
  BOOST_TEST(test::untouched(ws.h));
  BOOST_TEST(test::untouched(ws.v_new));
  BOOST_TEST(bytes_differing(test::device_bytes(ws.o), first[0]) == 0u);
  BOOST_TEST(bytes_differing(test::device_bytes(ws.final_state), first[1]) == 0u);
}

BOOST_AUTO_TEST_CASE(delta_from_v_same_bytes_bf16_G2) { expect_delta_from_v_same_bytes({}); }

BOOST_AUTO_TEST_CASE(delta_from_v_same_bytes_fp16_G4_no_h0) {
  test::StateCase c = fp16_K128_G4_case();
  c.h0 = false;
  expect_delta_from_v_same_bytes(c);
}

BOOST_AUTO_TEST_CASE(delta_from_v_same_bytes_ragged_G1) { expect_delta_from_v_same_bytes(ragged_G1_case()); }

// Where the delta from v does not run (K = 64, clusters, another variant or fusion, no Args::ainv_beta) the call is
// refused before anything runs.
BOOST_AUTO_TEST_CASE(delta_from_v_refusals) {
  auto refused = [](test::StateCase const& c, auto&& change) {
    test::StateRun run(c, 7);
    gc::Args f = run.a;
    f.intra_variant = 3, f.fuse_state_output = true, f.state_output_variant = 4, f.scores_in_intra = true;
    f.delta_from_v = true;
    change(f);
    run.ws->poison();
    BOOST_CHECK_THROW(gc::forward(f, nullptr), std::invalid_argument);
    gc::synchronize();
    BOOST_TEST(test::untouched(run.ws->o));
  };
  test::StateCase k64;
  k64.T = 200, k64.K = 64;
  refused(k64, [](gc::Args&) {});
  test::StateCase c;
  c.T = 200;
  refused(c, [](gc::Args& f) { f.state_output_cluster = 2; });
  refused(c, [](gc::Args& f) { f.state_output_variant = 2; });
  refused(c, [](gc::Args& f) { f.intra_variant = 1; });
  refused(c, [](gc::Args& f) { f.ainv_beta = nullptr; });
  refused(c, [](gc::Args& f) { f.precise_uv = true; });
}

BOOST_AUTO_TEST_CASE(grid_is_chunk_state_2s) {
  test::StateCase c;
  c.H = 2, c.HV = 6;
  c.seqlens = {10, 0, 300};
  test::StateRun run(c, 5);
  gc::Args a = run.a;
  BOOST_TEST(gc::state_output_runs_fused(a));
  // 18 heads: 72 blocks of 32 columns fit one wave on any device with 72 SMs, so the chosen width is 32 there
  BOOST_TEST(gc::state_output_block_columns(a) == 32);
  BOOST_TEST(gc::timed_blocks(a, gc::Stage::state_output_fused) == 3 * 6 * (128 / 32));
  a.state_output_columns = 64;  // variant 4's wide blocks: half the grid
  BOOST_TEST(gc::state_output_block_columns(a) == 64);
  BOOST_TEST(gc::timed_blocks(a, gc::Stage::state_output_fused) == 3 * 6 * (128 / 64));
  a.state_output_variant = 1;  // other variants: the grid of chunk_state 2 whatever the width asked
  BOOST_TEST(gc::timed_blocks(a, gc::Stage::state_output_fused) == 3 * 6 * (128 / 32));
  a.state_output_variant = 4, a.state_output_columns = 48;  // no such kernel: refused
  BOOST_CHECK_THROW(gc::state_output_block_columns(a), std::invalid_argument);
  BOOST_CHECK_THROW(gc::state_output_fused(a, nullptr), std::invalid_argument);
  a.state_output_columns = 0;
  a.split_state = true;  // two kernels: no block times
  BOOST_TEST(gc::timed_blocks(a, gc::Stage::state_output_fused) == 0);
}

// The chosen width: 64 exactly where 32-column blocks need more waves of one block per SM than 64-column ones.
BOOST_AUTO_TEST_CASE(chosen_block_columns_follow_waves) {
  int const sms = gc::device_info().sm_count;  // the current device's (cuda/bench_support.cu)
  BOOST_REQUIRE(sms >= 4);
  gc::Args a;
  a.d.H = 1, a.d.K = a.d.V = 128, a.d.T = 64, a.d.B = 1;
  for (int64_t heads : {int64_t{1}, int64_t{sms / 4}, int64_t{sms / 4 + 1}, int64_t{sms / 2}, int64_t{sms / 2 + 1},
                        int64_t{sms}, int64_t{3 * sms / 4 + 1}}) {
    a.d.N = 1, a.d.HV = heads;
    int64_t const w32 = (4 * heads + sms - 1) / sms, w64 = (2 * heads + sms - 1) / sms;
    BOOST_TEST_CONTEXT("heads " << heads << " on " << sms << " SMs") {
      BOOST_TEST(gc::state_output_block_columns(a) == (w64 < w32 ? 64 : 32));
    }
  }
  a.d.HV = sms;  // four 32-column blocks per head: four waves, two of 64-column ones
  BOOST_TEST(gc::state_output_block_columns(a) == 64);
  a.d.K = a.d.V = 64;  // variant 4 covers K = 128 only
  BOOST_TEST(gc::state_output_block_columns(a) == 32);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
