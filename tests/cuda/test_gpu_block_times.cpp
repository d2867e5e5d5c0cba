// GPU tests of the opt-in per-block timing (Args::block_times, used by `gdnv bench --per-chunk`): every
// block of kkt, solve_tril, wu, chunk_state, chunk_output and the fused stages writes a nonzero start and an
// end >= start, exactly timed_blocks() pairs are written (nothing past them), and turning it on changes no
// output bit.
#include <boost/test/unit_test.hpp>

#include "cuda/gpu_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace utf = boost::unit_test;

namespace {

#ifdef GDNV_HAVE_CUDA
namespace gc = gdn_cuda;

struct TimingCase {
  int64_t B = 1, T = 1000, H = 2, HV = 4, K = 128;
  std::vector<int64_t> seqlens;
  gc::ElemType qkv = gc::ElemType::bf16, ainv = gc::ElemType::bf16;
  bool split_state = false;
  int state_variant = 2, output_variant = 2;
  int kkt_solve_variant = 4, intra_variant = 1;
};

// In pipeline order; the fused stages last, so they overwrite A_inv, w, u with the same bytes.
constexpr gc::Stage kStages[] = {gc::Stage::chunk_cumsum, gc::Stage::kkt,         gc::Stage::solve_tril,
                                 gc::Stage::wu,           gc::Stage::chunk_state, gc::Stage::chunk_output,
                                 gc::Stage::kkt_solve_fused, gc::Stage::intra_fused, gc::Stage::chunk_scores,
                                 gc::Stage::state_output_fused};

std::vector<unsigned char> bytes_of(gc::DeviceBuffer const& b) { return gdnv::test::device_bytes(b); }

void run_timing_case(TimingCase const& tc) {
  int64_t T = tc.T;
  std::vector<int64_t> const cu = gdnv::test::cu_seqlens(tc.seqlens, T);
  gc::Plan plan = gc::make_plan(tc.B, T, tc.H, tc.HV, tc.K, tc.K, cu);
  gc::Workspace ws(plan, tc.qkv, gc::ElemType::f32, gc::ElemType::f32, tc.ainv, true);
  gc::fill_random_inputs(ws, 7);
  gc::Args a = ws.args;
  a.scale = 1.f / std::sqrt(static_cast<float>(tc.K));
  a.split_state = tc.split_state;
  a.state_variant = tc.state_variant;
  a.output_variant = tc.output_variant;
  a.kkt_solve_variant = tc.kkt_solve_variant;
  a.intra_variant = tc.intra_variant;

  auto outputs = [&] {
    std::vector<std::vector<unsigned char>> o;
    for (gc::DeviceBuffer* b : {&ws.g_cumsum, &ws.A, &ws.A_inv, &ws.w, &ws.u, &ws.v_new, &ws.h, &ws.scores, &ws.o,
                                &ws.final_state})
      o.push_back(bytes_of(*b));
    return o;
  };
  ws.poison();
  // intra_fused keeps A_inv in the input dtype only
  std::vector<gc::Stage> stages(std::begin(kStages), std::end(kStages));
  if (tc.ainv != tc.qkv) stages.erase(std::find(stages.begin(), stages.end(), gc::Stage::intra_fused));
  // chunk_scores: 16-bit inputs only (state_output_fused falls back to the two kernels there)
  if (!gc::chunk_scores_runs(a)) stages.erase(std::find(stages.begin(), stages.end(), gc::Stage::chunk_scores));
  for (gc::Stage s : stages) gc::run_stage(s, a, nullptr);
  gc::synchronize();
  auto const plain = outputs();

  // Each stage gets its own zeroed buffer with 8 spare pairs past its grid.
  ws.poison();
  std::vector<gc::DeviceBuffer> bufs;
  for (gc::Stage s : stages) {
    int64_t const n = gc::timed_blocks(a, s);
    bufs.emplace_back(static_cast<size_t>(2 * n + 16) * 8);
    bufs.back().fill_bytes(0);
    gc::Args x = a;
    x.block_times = static_cast<unsigned long long*>(bufs.back().get());
    gc::run_stage(s, x, nullptr);
  }
  gc::synchronize();
  auto const timed = outputs();
  char const* names[] = {"g_cumsum", "A", "A_inv", "w", "u", "v_new", "h", "scores", "o", "final_state"};
  for (size_t i = 0; i < plain.size(); ++i)
    BOOST_TEST((plain[i] == timed[i]), names[i] << " changed when block times were recorded");

  for (size_t si = 0; si < stages.size(); ++si) {
    gc::Stage const s = stages[si];
    int64_t const n = gc::timed_blocks(a, s);
    std::vector<unsigned long long> t(static_cast<size_t>(2 * n + 16));
    bufs[si].download(t.data(), t.size() * 8);
    int64_t bad = 0;
    unsigned long long lo = ~0ull, hi = 0;
    for (int64_t b = 0; b < n; ++b) {
      unsigned long long const st = t[2 * b], en = t[2 * b + 1];
      if (st == 0 || en == 0 || en < st) ++bad;
      lo = std::min(lo, st), hi = std::max(hi, en);
    }
    bool spare_clean = true;
    for (size_t i = static_cast<size_t>(2 * n); i < t.size(); ++i) spare_clean = spare_clean && t[i] == 0;
    BOOST_TEST(bad == 0, gc::stage_name(s) << ": " << bad << " of " << n << " blocks without a valid start/end");
    BOOST_TEST(spare_clean, gc::stage_name(s) << ": entries written past timed_blocks() = " << n);
    // chunk_cumsum records none; state_output_fused none where it runs chunk_state + chunk_output
    if (s == gc::Stage::chunk_cumsum || (s == gc::Stage::state_output_fused && !gc::state_output_runs_fused(a))) {
      BOOST_TEST(n == 0);
    } else {
      BOOST_TEST(n > 0);
      BOOST_TEST(hi >= lo);
      BOOST_TEST_MESSAGE(gc::stage_name(s) << ": " << n << " blocks, span " << (hi - lo) * 1e-3 << " us");
    }
    if (s == gc::Stage::chunk_state) BOOST_TEST(hi > lo, "chunk_state: zero span over all blocks");
  }
}
#endif

}  // namespace

BOOST_AUTO_TEST_SUITE(gpu_block_times, *utf::label("gpu") * utf::precondition(gdnv::test::has_gpu()))

#ifdef GDNV_HAVE_CUDA
BOOST_AUTO_TEST_CASE(bf16_T1000_G2) { run_timing_case(TimingCase{}); }

BOOST_AUTO_TEST_CASE(bf16_varlen_K64_fp32inv_split_v1) {
  TimingCase c;
  c.H = 1, c.HV = 3, c.K = 64;
  c.seqlens = {1, 63, 64, 65, 0, 300};
  c.ainv = gdn_cuda::ElemType::f32;
  c.split_state = true;
  c.state_variant = 1, c.output_variant = 1;
  run_timing_case(c);
}

// The GQA-shared variants: one block per (chunk, key head).
BOOST_AUTO_TEST_CASE(bf16_varlen_G3_gqa_variants) {
  TimingCase c;
  c.H = 2, c.HV = 6;
  c.seqlens = {1, 63, 64, 65, 0, 300};
  c.kkt_solve_variant = 5, c.intra_variant = 3;
  run_timing_case(c);
}

// chunk_state 3 (state transposed in registers), K = 64 and 128.
BOOST_AUTO_TEST_CASE(bf16_varlen_state_v3) {
  TimingCase c;
  c.H = 2, c.HV = 4;
  c.seqlens = {1, 63, 64, 65, 0, 300};
  c.state_variant = 3;
  run_timing_case(c);
  c.K = 64;
  run_timing_case(c);
}

BOOST_AUTO_TEST_CASE(fp32_B2_T130) {
  TimingCase c;
  c.B = 2, c.T = 130, c.H = 1, c.HV = 2;
  c.qkv = c.ainv = gdn_cuda::ElemType::f32;
  run_timing_case(c);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
