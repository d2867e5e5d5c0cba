// GPU tests of chunk_scores (cuda/chunk_scores.cu; label gpu, skipped visibly without a device): the gated,
// masked score rows against an fp64 evaluation on the exact stored inputs (the q, k tiles and the
// g_cumsum the kernel read), entry by entry, with a componentwise bound:
//   |s - P| <= u_E (|P| + e32) + e32 + a_E,   e32 = ((K + 4) 2^-23 + 2^-24 |gc_i - gc_j|) S,
//   P = sum_k q_ik k_jk e^{gc_i - gc_j},  S = sum_k |q_ik k_jk| e^{gc_i - gc_j}
// (the fp32 dot product with truncating tensor-core additions, expf's 2 ulp, the fp32 difference in its
// argument, one product; then one rounding to E: u_E = 2^-8 for bf16, 2^-11 for fp16, a_E its half
// smallest subnormal). Entries above the diagonal must be exactly 0. Cases: bf16 / fp16, K = 128 / 64,
// GQA G = 1..3 (the key head each value head reads), varlen with 0/1/63/64/65/129-token sequences.
// That these are the bytes chunk_output 2 multiplies v_new by is test_gpu_state_output's business (o of
// state_output_fused 2 against chunk_state 2 + chunk_output 2, byte for byte). intra_rows_equal_*: the rows
// intra_fused 3 writes with Args::scores_in_intra are these bytes, and forward() through them gives the same o, as
// does forward() with state_output_fused 4 computing the rows on chip (Args::scores_in_state, 64-column blocks; no
// rows written).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda/gpu_test_util.hpp"
#include "reference/rounding.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace utf = boost::unit_test;
using namespace gdnv;

BOOST_AUTO_TEST_SUITE(gpu_scores, *utf::label("gpu") * utf::precondition(test::has_gpu{}))

#ifdef GDNV_HAVE_CUDA
namespace {
namespace gc = gdn_cuda;

std::vector<double> values_16(gc::DeviceBuffer const& b, gc::ElemType e, size_t n) {
  std::vector<uint16_t> raw(n);
  b.download(raw.data(), n * 2);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = e == gc::ElemType::bf16 ? bf16_bits_to_double(raw[i]) : fp16_bits_to_double(raw[i]);
  return v;
}

void expect_scores_within_bound(test::StateCase const& c) {
  test::StateRun run(c, 23);
  gc::Workspace& ws = *run.ws;
  gc::Args const a = run.a;
  gc::Dims const& d = run.plan.d;
  BOOST_REQUIRE(gc::chunk_scores_runs(a));
  ws.poison();
  gc::chunk_cumsum(a, nullptr);
  gc::chunk_scores(a, nullptr);
  gc::synchronize();

  int64_t const T = run.T, H = d.H, HV = d.HV, K = d.K, G = HV / H;
  std::vector<double> const q = values_16(ws.q, c.e, static_cast<size_t>(T * H * K));
  std::vector<double> const k = values_16(ws.k, c.e, static_cast<size_t>(T * H * K));
  std::vector<double> const s = values_16(ws.scores, c.e, static_cast<size_t>(T * HV * 64));
  std::vector<float> gcs(static_cast<size_t>(T * HV));
  ws.g_cumsum.download(gcs.data(), gcs.size() * 4);
  double const uE = c.e == gc::ElemType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
  double const aE = c.e == gc::ElemType::bf16 ? 0.0 : std::ldexp(1.0, -25);  // bf16 shares fp32's range

  double worst = 0;
  // informative: entries whose exact value exceeds their bound, so that a kernel writing zeros (or nothing)
  // fails there (fp16's small gates underflow many others to 0 legitimately)
  int64_t checked = 0, informative = 0, upper_nonzero = 0, rows_seen = 0;
  for (gc::ChunkDesc const& ch : run.plan.chunks)
    for (int64_t hv = 0; hv < HV; ++hv) {
      int64_t const hk = hv / G;
      for (int i = 0; i < ch.rows; ++i) {
        int64_t const ti = ch.row0 + i;
        ++rows_seen;
        for (int j = 0; j < 64; ++j) {
          double const got = s[static_cast<size_t>((ti * HV + hv) * 64 + j)];
          if (j > i) {  // above the diagonal (and past the chunk's end): exactly zero
            upper_nonzero += got != 0.0;
            continue;
          }
          int64_t const tj = ch.row0 + j;
          double const gi = gcs[static_cast<size_t>(ti * HV + hv)], gj = gcs[static_cast<size_t>(tj * HV + hv)];
          double const gate = std::exp(gi - gj);
          double dot = 0, sabs = 0;
          for (int64_t x = 0; x < K; ++x) {
            double const p = q[static_cast<size_t>((ti * H + hk) * K + x)] * k[static_cast<size_t>((tj * H + hk) * K + x)];
            dot += p, sabs += std::abs(p);
          }
          double const exact = dot * gate, S = sabs * gate;
          double const e32 = ((K + 4) * std::ldexp(1.0, -23) + std::ldexp(1.0, -24) * std::abs(gi - gj)) * S;
          double const tol = uE * (std::abs(exact) + e32) + e32 + aE;
          double const err = std::abs(got - exact);
          worst = std::max(worst, tol > 0 ? err / tol : (err > 0 ? 1e30 : 0.0));
          ++checked;
          informative += std::abs(exact) > tol;
        }
      }
    }
  BOOST_TEST_MESSAGE("scores: " << checked << " lower entries (" << informative
                                 << " above their bound), worst |s - P| / bound = " << worst);
  BOOST_TEST(checked > 0);
  BOOST_TEST(informative > checked / 4, "too few entries exceed their bound to catch zeros: " << informative << " of " << checked);
  BOOST_TEST(upper_nonzero == 0, upper_nonzero << " entries above the diagonal are not 0");
  BOOST_TEST(worst <= 1.0, "an entry exceeds its bound: ratio " << worst);
  BOOST_TEST(rows_seen == T * HV);
}

size_t bytes_differing(std::vector<unsigned char> const& x, std::vector<unsigned char> const& y) {
  if (x.size() != y.size()) return std::max(x.size(), y.size());
  size_t n = 0;
  for (size_t i = 0; i < x.size(); ++i) n += x[i] != y[i];
  return n;
}

// intra_fused 3 with Args::scores_in_intra: the score rows are chunk_scores' bytes, w and u stay the plain
// kernel's bytes, and forward() through it (no chunk_scores launch) gives fused-forward's o and final state.
void expect_intra_scores_equal(test::StateCase const& c) {
  test::StateRun run(c, 29);
  gc::Workspace& ws = *run.ws;
  gc::Args a = run.a;
  a.intra_variant = 3;
  a.fuse_state_output = true;
  a.h = a.v_new = nullptr;
  BOOST_REQUIRE(gc::intra_runs_v3(a));
  BOOST_REQUIRE(!gc::intra_writes_scores(a));  // not asked
  gc::Args b = a;
  b.scores_in_intra = true;
  BOOST_REQUIRE(gc::intra_writes_scores(b));

  ws.poison();
  gc::chunk_cumsum(a, nullptr);
  gc::chunk_scores(a, nullptr);
  gc::intra_fused(a, nullptr);
  gc::synchronize();
  std::vector<unsigned char> const s0 = test::device_bytes(ws.scores), w0 = test::device_bytes(ws.w),
                                   u0 = test::device_bytes(ws.u);
  BOOST_REQUIRE(!test::untouched(ws.scores));
  ws.scores.fill_bytes(0xFF), ws.w.fill_bytes(0xFF), ws.u.fill_bytes(0xFF);
  gc::intra_fused(b, nullptr);
  gc::synchronize();
  BOOST_TEST(bytes_differing(test::device_bytes(ws.scores), s0) == 0u, "score rows differ from chunk_scores'");
  BOOST_TEST(bytes_differing(test::device_bytes(ws.w), w0) == 0u, "w differs from the plain kernel's");
  BOOST_TEST(bytes_differing(test::device_bytes(ws.u), u0) == 0u, "u differs from the plain kernel's");

  ws.poison();
  gc::forward(a, nullptr);  // chunk_scores inside state_output_fused
  gc::synchronize();
  std::vector<unsigned char> const o0 = test::device_bytes(ws.o), f0 = test::device_bytes(ws.final_state);
  ws.poison();
  gc::forward(b, nullptr);  // the rows from intra_fused
  gc::synchronize();
  BOOST_TEST(!test::untouched(ws.scores));
  BOOST_TEST(bytes_differing(test::device_bytes(ws.o), o0) == 0u, "o differs");
  BOOST_TEST(bytes_differing(test::device_bytes(ws.final_state), f0) == 0u, "final state differs");

  // the score rows computed by state_output_fused 4 itself (Args::scores_in_state, K = 128): intra_fused skips
  // them and nothing writes Args::scores; elsewhere (K = 64: variant 2) the rows from intra_fused as above
  gc::Args sc = b;
  sc.scores_in_state = true;
  sc.state_output_columns = 64;  // computed on chip in 64-column blocks only
  bool const on_chip = gc::state_output_computes_scores(sc);
  BOOST_TEST(on_chip == (c.K == 128));
  BOOST_TEST(gc::intra_writes_scores(sc) == !on_chip);
  ws.poison();
  gc::forward(sc, nullptr);
  gc::synchronize();
  BOOST_TEST(test::untouched(ws.scores) == on_chip, "score rows written: " << !test::untouched(ws.scores));
  BOOST_TEST(bytes_differing(test::device_bytes(ws.o), o0) == 0u, "o differs (score rows on chip)");
  BOOST_TEST(bytes_differing(test::device_bytes(ws.final_state), f0) == 0u, "final state differs (score rows on chip)");
}


// The cases: dense bf16 with two value heads per key head; fp16, K = 64, three per key head, sequences of
// 1, 0, 63, 64, 65, 129 tokens; bf16 without GQA on ragged sequences.
test::StateCase dense_bf16_K128_G2() {
  test::StateCase c;
  c.T = 300;
  return c;
}

test::StateCase varlen_fp16_K64_G3() {
  test::StateCase c;
  c.H = 1, c.HV = 3, c.K = 64, c.e = gc::ElemType::f16;
  c.seqlens = {1, 0, 63, 64, 65, 129};
  return c;
}

test::StateCase varlen_bf16_K128_G1() {
  test::StateCase c;
  c.H = 2, c.HV = 2;
  c.seqlens = {130, 1, 64};
  return c;
}
}  // namespace

BOOST_AUTO_TEST_CASE(bf16_K128_G2_within_bound) { expect_scores_within_bound(dense_bf16_K128_G2()); }
BOOST_AUTO_TEST_CASE(fp16_K64_G3_varlen_within_bound) { expect_scores_within_bound(varlen_fp16_K64_G3()); }
BOOST_AUTO_TEST_CASE(bf16_K128_G1_varlen_within_bound) { expect_scores_within_bound(varlen_bf16_K128_G1()); }
BOOST_AUTO_TEST_CASE(intra_rows_equal_bf16_K128_G2) { expect_intra_scores_equal(dense_bf16_K128_G2()); }
BOOST_AUTO_TEST_CASE(intra_rows_equal_fp16_K64_G3_varlen) { expect_intra_scores_equal(varlen_fp16_K64_G3()); }
BOOST_AUTO_TEST_CASE(intra_rows_equal_bf16_K128_G1_varlen) { expect_intra_scores_equal(varlen_bf16_K128_G1()); }

// When intra_fused writes the rows: asked, a buffer, variant 3 without precise_uv, and at most 47 value heads
// per key head at K = 128 (their gates beside the q tile over the inverse's slots; 79 at K = 64).
BOOST_AUTO_TEST_CASE(intra_writes_scores_only_where_it_fits) {
  test::StateCase c;
  c.T = 64;
  test::StateRun run(c, 1);
  gc::Args a = run.a;
  a.intra_variant = 3;
  a.scores_in_intra = true;
  BOOST_TEST(gc::intra_writes_scores(a));
  gc::Args x = a;
  x.intra_variant = 1;
  BOOST_TEST(!gc::intra_writes_scores(x));
  x = a, x.precise_uv = true;
  BOOST_TEST(!gc::intra_writes_scores(x));
  x = a, x.scores = nullptr;
  BOOST_TEST(!gc::intra_writes_scores(x));
  x = a, x.d.H = 1, x.d.HV = 47;
  BOOST_TEST(gc::intra_writes_scores(x));
  x.d.HV = 48;
  BOOST_TEST(!gc::intra_writes_scores(x));
  x.d.K = 64, x.d.HV = 79;
  BOOST_TEST(gc::intra_writes_scores(x));
  x.d.HV = 80;
  BOOST_TEST(!gc::intra_writes_scores(x));
  // not when forward()'s state_output_fused computes them itself
  x = a, x.scores_in_state = true, x.state_output_columns = 32;
  BOOST_TEST(!gc::state_output_computes_scores(x));  // 32-column blocks read the rows
  x.state_output_columns = 64;
  BOOST_TEST(gc::state_output_computes_scores(x));
  BOOST_TEST(gc::intra_writes_scores(x));  // state_output_fused not fused into forward(): someone may read them
  x.fuse_state_output = true;
  BOOST_TEST(!gc::intra_writes_scores(x));
  x.state_output_variant = 2;  // reads the rows
  BOOST_TEST(!gc::state_output_computes_scores(x));
  BOOST_TEST(gc::intra_writes_scores(x));
}

// fp32 inputs and a missing buffer are refused, not run.
BOOST_AUTO_TEST_CASE(refuses_fp32_and_null_scores) {
  test::StateCase c;
  c.T = 100;
  test::StateRun run(c, 1);
  gc::Args a = run.a;
  a.scores = nullptr;
  BOOST_CHECK_THROW(gc::chunk_scores(a, nullptr), std::invalid_argument);
  a = run.a;
  a.qkv = gc::ElemType::f32;
  BOOST_TEST(!gc::chunk_scores_runs(a));
  BOOST_CHECK_THROW(gc::chunk_scores(a, nullptr), std::invalid_argument);
  BOOST_TEST(gc::timed_blocks(run.a, gc::Stage::chunk_scores) == run.plan.d.num_chunks * run.plan.d.H);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
