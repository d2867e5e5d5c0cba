// gdnv bench [--shape qwen3-next,...] [--B 1] [--T 8192,32768] [--H N] [--HV N] [--K 128] [--reps 30]
//            [--warmup 5] [--cold|--no-cold] [--per-chunk] [--chunk-reps 5] [--seed 1] --json OUT
//
// Times every stage of our unfused CUDA pipeline, the two pipelines, and the cuBLAS baseline on random
// inputs (q, k L2-normalized N(0,1) bf16, v N(0,1) bf16, g = logsigmoid, beta = sigmoid fp32, h0 =
// 0.1 N(0,1); never zeros). Per entry: CUDA events around each run, `--reps` timed runs after `--warmup`
// runs, queued behind a spin kernel so launch gaps stay out; warm (the same buffers every run, L2 as the
// previous run left it) and, with --cold (default), cold: a write of 2x the device's L2 size before each
// run, outside the timed region. The bytes each stage must move (every input read once, every output
// written once, counted per tensor below) over the device copy bandwidth measured in the same run give
// the memory floor; FLOPs count the useful (triangular) work. FLA's times from targets.md are attached
// where the shape matches theirs.
//
// --per-chunk: additionally runs kkt, solve_tril, wu, chunk_state and chunk_output with Args::block_times
// set, so every block records %globaltimer at entry and exit, and reports the distribution of block
// durations (one block = one (chunk, value head) tile, or one (sequence, head, V-slice) walk for
// chunk_state).
//
// Without CUDA or without a device: the JSON says status "not_run" with the reason, one line on stderr,
// exit 0 (scripts go on). Bad options: exit 2.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/atomic_file.hpp"
#include "harness/cli/commands.hpp"
#include "harness/environment.hpp"
#include "harness/errors.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace gdnv::cli {
namespace {

using json = nlohmann::json;

struct ShapeDef {
  char const* name;
  int64_t H, HV, K;
  char const* model;
};
// gdn-algorithm.md section 6 (per layer, before tensor parallelism).
std::array<ShapeDef, 4> const kShapes = {{
    {"qwen3-next", 16, 32, 128, "Qwen3-Next-80B-A3B (same heads: Qwen3.5-35B-A3B, Qwen3.5-9B)"},
    {"qwen3.5-397b", 16, 64, 128, "Qwen3.5-397B-A17B (same heads: Qwen3.5-122B-A10B)"},
    {"qwen3.5-27b", 16, 48, 128, "Qwen3.5-27B (G = 3)"},
    {"kimi-like", 32, 32, 128, "Kimi-Linear-48B-A3B head counts (G = 1) with a scalar gate (KDA gates per channel)"},
}};

struct BenchOptions {
  std::vector<std::string> shapes;
  int64_t B = 1;
  std::vector<int64_t> T = {8192, 32768};
  int64_t H = 0, HV = 0, K = 0;
  int reps = 30, warmup = 5, chunk_reps = 5;
  bool cold = true, per_chunk = false;
  uint64_t seed = 1;
  std::string json_out;
};

struct Config {
  std::string shape, model;
  int64_t B = 1, T = 0, H = 0, HV = 0, K = 0;
};

std::vector<Config> resolve(BenchOptions const& o) {
  if (o.reps < 20) throw UsageError("--reps must be at least 20 (the median of >= 20 timed runs is reported)");
  if (o.warmup < 1) throw UsageError("--warmup must be at least 1");
  if (o.chunk_reps < 1) throw UsageError("--chunk-reps must be at least 1");
  if (o.B < 1) throw UsageError(fmt::format("--B must be >= 1 (got {})", o.B));
  if (o.T.empty()) throw UsageError("--T needs at least one length");
  for (int64_t t : o.T)
    if (t < 1) throw UsageError(fmt::format("--T lengths must be >= 1 (got {})", t));
  if (o.H < 0 || o.HV < 0) throw UsageError("--H and --HV must be >= 1");
  if (o.K != 0 && o.K != 64 && o.K != 128) throw UsageError(fmt::format("--K must be 64 or 128 (got {})", o.K));
  std::vector<std::string> names = o.shapes;
  bool const overridden = o.H || o.HV || o.K;
  if (names.empty()) names.push_back("qwen3-next");
  std::vector<Config> out;
  for (auto const& n : names) {
    ShapeDef const* s = nullptr;
    for (auto const& d : kShapes)
      if (n == d.name) s = &d;
    if (!s) {
      std::string known;
      for (auto const& d : kShapes) known += std::string(known.empty() ? "" : ", ") + d.name;
      throw UsageError(fmt::format("unknown --shape '{}' (known: {})", n, known));
    }
    Config c;
    c.H = o.H ? o.H : s->H;
    c.HV = o.HV ? o.HV : s->HV;
    c.K = o.K ? o.K : s->K;
    c.model = s->model;
    c.shape = s->name;
    if (overridden && (c.H != s->H || c.HV != s->HV || c.K != s->K)) {
      c.shape = o.shapes.empty() ? "custom" : fmt::format("{}(H={},HV={},K={})", s->name, c.H, c.HV, c.K);
      c.model = o.shapes.empty() ? "explicit --H/--HV/--K" : std::string(s->model) + ", heads overridden";
    }
    if (c.HV % c.H != 0) throw UsageError(fmt::format("HV ({}) must be a multiple of H ({})", c.HV, c.H));
    for (int64_t t : o.T) {
      Config x = c;
      x.B = o.B;
      x.T = t;
      out.push_back(x);
    }
  }
  return out;
}

char const* const kFlaSource =
    "shared/docs/targets.md: FLA Triton kernels (commit bc3b101), one H100 SXM 80GB, CUDA 13.0, bf16 q/k/v, fp32 "
    "g/beta, CUDA-event medians";

#ifdef GDNV_HAVE_CUDA
// FLA's Triton kernels on one H100 SXM (shared/docs/targets.md), microseconds.
struct FlaRow {
  int64_t B, T, H, HV, K;
  std::map<std::string, double> us;
};
std::vector<FlaRow> const kFla = {
    {1, 8192, 16, 32, 128,
     {{"cumsum", 14.6}, {"kkt", 44}, {"solve", 180}, {"kkt+solve", 224}, {"kkt+solve fused", 107}, {"wu", 108},
      {"intra fused", 215}, {"state", 170}, {"output", 151}, {"forward", 711}}},
    {1, 32768, 16, 32, 128,
     {{"cumsum", 34.6}, {"kkt", 178}, {"solve", 671}, {"kkt+solve", 849}, {"kkt+solve fused", 407}, {"wu", 482},
      {"intra fused", 889}, {"state", 641}, {"output", 636}, {"forward", 2172}}},
    {4, 4096, 16, 16, 128, {{"kkt+solve", 234}, {"kkt+solve fused", 110}, {"forward", 689}}},
};
FlaRow const* fla_row(Config const& c) {
  for (auto const& r : kFla)
    if (r.B == c.B && r.T == c.T && r.H == c.H && r.HV == c.HV && r.K == c.K) return &r;
  return nullptr;
}

// Issue 4's goals (H100, Qwen3-Next shape, B=1, T=8192).
double issue_target_us(Config const& c, std::string const& fla_key) {
  if (c.B != 1 || c.T != 8192 || c.H != 16 || c.HV != 32 || c.K != 128) return 0;
  if (fla_key == "kkt+solve") return 150;
  if (fla_key == "forward") return 700;
  return 0;
}

// Issue 5's goals for the fused kernels (same shape as issue 4's; the same ratios asked at the other shapes).
double issue5_target_us(Config const& c, std::string const& fla_key, bool fused) {
  if (!fused || c.B != 1 || c.T != 8192 || c.H != 16 || c.HV != 32 || c.K != 128) return 0;
  if (fla_key == "kkt+solve fused") return 35;
  if (fla_key == "intra fused") return 80;
  if (fla_key == "forward") return 350;
  return 0;
}

double percentile(std::vector<double> const& sorted, double p) {
  if (sorted.empty()) return 0;
  double const x = p * static_cast<double>(sorted.size() - 1);
  size_t const i = static_cast<size_t>(std::floor(x));
  size_t const j = std::min(i + 1, sorted.size() - 1);
  return sorted[i] + (x - static_cast<double>(i)) * (sorted[j] - sorted[i]);
}

json summary(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(std::max<size_t>(1, v.size()));
  return {{"n", v.size()}, {"median", percentile(v, 0.5)}, {"p10", percentile(v, 0.1)}, {"p90", percentile(v, 0.9)},
          {"min", v.empty() ? 0 : v.front()}, {"max", v.empty() ? 0 : v.back()}, {"mean", mean}};
}

// Bytes a stage must move: each tensor it reads once, each it writes once.
struct Traffic {
  std::vector<std::pair<std::string, double>> read, write;
  double total() const {
    double t = 0;
    for (auto const& [n, b] : read) t += b;
    for (auto const& [n, b] : write) t += b;
    return t;
  }
  json to_json() const {
    json r = json::object(), w = json::object();
    for (auto const& [n, b] : read) r[n] = b;
    for (auto const& [n, b] : write) w[n] = b;
    return {{"read", r}, {"write", w}, {"total", total()}};
  }
};

// Sizes of one problem (bytes, bf16 q/k/v, fp32 g/beta).
struct Sizes {
  double qk, v, w, g, beta, gcs, A, A_lower4, ainv16, ainv32, ainv16_lower, ainv32_lower, h, state;
  double chunk_heads;  // (chunk, value head) tiles
  Sizes(Config const& c, int64_t num_chunks, int64_t NT, int64_t N) {
    double const e = 2, tok = static_cast<double>(c.B * c.T), tH = tok * c.H, tHV = tok * c.HV, K = c.K;
    qk = tH * K * e;
    v = tHV * K * e;  // V = K
    w = tHV * K * e;
    g = beta = gcs = tHV * 4;
    A = tHV * 64 * 4;
    // A and A_inv are (unit) lower triangular: the 10 of 16 16x16 blocks on or below the diagonal
    // (on average 40 of each row's 64 entries) carry everything a reader needs.
    A_lower4 = tHV * 40 * 4;
    ainv16 = tHV * 64 * 2;
    ainv32 = tHV * 64 * 4;
    ainv16_lower = tHV * 40 * 2;
    ainv32_lower = tHV * 40 * 4;
    h = static_cast<double>(c.B * NT) * c.HV * K * K * e;
    state = static_cast<double>(N) * c.HV * K * K * 4;
    chunk_heads = static_cast<double>(num_chunks) * c.HV;
  }
};

struct Entry {
  std::string name, kind, fla_key, note;
  Traffic traffic;
  double flops = 0;
  double unfused_bytes = 0;  // pipelines and fused pairs: the sum of their stages' bytes
  std::string vs_unfused;    // fused entries: the entry computing the same outputs unfused (x_unfused)
  std::function<void()> fn;
  std::map<std::string, std::vector<double>> us;  // mode -> runs
  std::map<std::string, bool> drained;
};

namespace gc = gdn_cuda;

struct ChunkTiming {
  std::string name;
  gc::Stage stage;
  gc::Args args;
  std::string compare_entry;  // the timed entry running the same kernel without block times
};

json block_time_stats(std::vector<double> const& dur_us, std::vector<double> const& spans_us, double sum_us_per_run,
                      int64_t blocks, int64_t bad, double granularity_ns) {
  std::vector<double> s = dur_us;
  std::sort(s.begin(), s.end());
  json j;
  j["blocks"] = blocks;
  j["samples"] = s.size();
  j["invalid_entries"] = bad;
  double mean = 0;
  for (double x : s) mean += x;
  mean /= static_cast<double>(std::max<size_t>(1, s.size()));
  j["block_us"] = {{"p50", percentile(s, 0.5)}, {"p90", percentile(s, 0.9)}, {"p99", percentile(s, 0.99)},
                   {"max", s.empty() ? 0 : s.back()}, {"min", s.empty() ? 0 : s.front()}, {"mean", mean}};
  // 20 equal bins from min to max
  constexpr int kBins = 20;
  double const lo = s.empty() ? 0 : s.front(), hi = s.empty() ? 0 : s.back();
  double const width = hi > lo ? (hi - lo) / kBins : 1.0;
  std::vector<int64_t> counts(kBins, 0);
  for (double x : s) counts[std::min<size_t>(kBins - 1, static_cast<size_t>((x - lo) / width))]++;
  std::vector<double> edges;
  for (int i = 0; i <= kBins; ++i) edges.push_back(lo + i * width);
  j["histogram"] = {{"edges_us", edges}, {"counts", counts}};
  std::vector<double> sp = spans_us;
  std::sort(sp.begin(), sp.end());
  double const span = percentile(sp, 0.5);
  j["kernel_span_us_median"] = span;  // last exit - first entry, per run
  // average number of blocks in flight over the kernel's span (over the whole device)
  j["mean_blocks_in_flight"] = span > 0 ? sum_us_per_run / span : 0;
  j["timer_granularity_ns"] = granularity_ns;
  return j;
}

json run_config(Config const& cfg, BenchOptions const& opt, gc::DeviceInfo const& dev, double bw) {
  json cj;
  gc::Plan plan = gc::make_plan(cfg.B, cfg.T, cfg.H, cfg.HV, cfg.K, cfg.K, {});
  gc::Dims const d = plan.d;
  cj["chunks"] = d.num_chunks;
  cj["sequences"] = d.N;
  std::string const why = gc::can_implement(d, gc::ElemType::bf16, gc::ElemType::f32, gc::ElemType::f32,
                                            gc::ElemType::bf16);
  if (!why.empty()) {
    cj["status"] = "not_supported";
    cj["reason"] = why;
    return cj;
  }
  gc::Workspace ws(plan, gc::ElemType::bf16, gc::ElemType::f32, gc::ElemType::f32, gc::ElemType::bf16, true);
  gc::DeviceBuffer ainv32(static_cast<size_t>(std::max<int64_t>(1, d.B * d.T * d.HV * 64)) * 4);
  gc::fill_random_inputs(ws, opt.seed);
  gc::Args a = ws.args;  // "unfused": bf16 A_inv, state operand rounded to bf16 (FLA's rounding)
  a.scale = 1.f / std::sqrt(static_cast<float>(cfg.K));
  a.split_state = false;
  a.state_variant = 2;  // the rows below measure chunk_state 2 as before; variant 3 has its own rows
  gc::Args a32 = a;  // "unfused-fp32inv": fp32 A_inv (split hi+lo in w/u), split state operand
  a32.ainv = gc::ElemType::f32;
  a32.A_inv = ainv32.get();
  a32.split_state = true;
  // Every intermediate holds real values before any stage is timed alone.
  gc::forward(a, nullptr);
  gc::chunk_cumsum(a, nullptr);  // the gate pack too, which the unfused forward leaves unwritten (kkt+solve 5, intra 3)
  gc::solve_tril(a32, nullptr);
  gc::synchronize();
  gc::CublasBaseline cb(plan);

  Sizes const z(cfg, d.num_chunks, d.NT, d.N);
  double const K = static_cast<double>(cfg.K), V = K, CH = z.chunk_heads;
  double const tHV = static_cast<double>(d.B * d.T * d.HV);
  // useful FLOPs per (chunk, head): strictly lower pairs 64*63/2 = 2016, lower incl. diagonal 2080
  double const f_cumsum = tHV, f_kkt = CH * 2016 * 2 * K, f_solve = CH * 64.0 * 64 * 64 / 3,
               f_wu = CH * 2080 * 2 * (K + V), f_state = CH * 4 * 64 * K * V,
               f_out = CH * (2080 * 2 * K + 2 * 64 * K * V + 2080 * 2 * V);

  // chunk_cumsum also writes the fused kernels' gate pack (Args::gate_pack: g_cumsum and beta per chunk and head)
  Traffic const t_cumsum{{{"g", z.g}, {"beta", z.beta}}, {{"g_cumsum", z.gcs}, {"gate pack", CH * 128 * 4}}};
  Traffic const t_kkt{{{"k", z.qk}, {"beta", z.beta}, {"g_cumsum", z.gcs}}, {{"A", z.A}}};
  Traffic const t_solve16{{{"A (lower blocks)", z.A_lower4}}, {{"A_inv bf16", z.ainv16}}};
  Traffic const t_solve32{{{"A (lower blocks)", z.A_lower4}}, {{"A_inv fp32", z.ainv32}}};
  Traffic const t_kktsolve{{{"k", z.qk}, {"beta", z.beta}, {"g_cumsum", z.gcs}}, {{"A_inv bf16", z.ainv16}}};
  Traffic const t_wu16{{{"k", z.qk}, {"v", z.v}, {"beta", z.beta}, {"g_cumsum", z.gcs}, {"A_inv bf16 (lower blocks)", z.ainv16_lower}},
                       {{"w", z.w}, {"u", z.v}}};
  Traffic const t_wu32{{{"k", z.qk}, {"v", z.v}, {"beta", z.beta}, {"g_cumsum", z.gcs}, {"A_inv fp32 (lower blocks)", z.ainv32_lower}},
                       {{"w", z.w}, {"u", z.v}}};
  Traffic const t_state{{{"k", z.qk}, {"w", z.w}, {"u", z.v}, {"g_cumsum", z.gcs}, {"h0", z.state}},
                        {{"h", z.h}, {"v_new", z.v}, {"final_state", z.state}}};
  Traffic const t_out{{{"q", z.qk}, {"k", z.qk}, {"v_new", z.v}, {"h", z.h}, {"g_cumsum", z.gcs}}, {{"o", z.v}}};
  Traffic const t_fwd{{{"q", z.qk}, {"k", z.qk}, {"v", z.v}, {"g", z.g}, {"beta", z.beta}, {"h0", z.state}},
                      {{"o", z.v}, {"final_state", z.state}}};
  double const fwd_unfused16 = t_cumsum.total() + t_kkt.total() + t_solve16.total() + t_wu16.total() + t_state.total() + t_out.total();
  double const fwd_unfused32 = t_cumsum.total() + t_kkt.total() + t_solve32.total() + t_wu32.total() + t_state.total() + t_out.total();

  std::vector<Entry> E;
  auto add = [&](std::string name, std::string kind, std::string fla, Traffic t, double flops, std::function<void()> fn,
                 double unfused = 0, std::string note = "", std::string vs_unfused = "") {
    Entry e;
    e.name = std::move(name), e.kind = std::move(kind), e.fla_key = std::move(fla), e.traffic = std::move(t);
    e.flops = flops, e.fn = std::move(fn), e.unfused_bytes = unfused, e.note = std::move(note);
    e.vs_unfused = std::move(vs_unfused);
    E.push_back(std::move(e));
  };
  add("chunk_cumsum", "stage", "cumsum", t_cumsum, f_cumsum, [&] { gc::chunk_cumsum(a, nullptr); });
  add("kkt (fp32 A)", "stage", "kkt", t_kkt, f_kkt, [&] { gc::kkt(a, nullptr); });
  add("solve_tril (bf16 A_inv)", "stage", "solve", t_solve16, f_solve, [&] { gc::solve_tril(a, nullptr); });
  add("solve_tril (fp32 A_inv)", "stage", "", t_solve32, f_solve, [&] { gc::solve_tril(a32, nullptr); });
  add("kkt + solve_tril (bf16)", "pair", "kkt+solve", t_kktsolve, f_kkt + f_solve,
      [&] { gc::kkt(a, nullptr); gc::solve_tril(a, nullptr); }, t_kkt.total() + t_solve16.total(),
      "floor: the fused pair (read k, beta, g_cumsum; write A_inv bf16), as targets.md");
  add("wu (bf16 A_inv)", "stage", "wu", t_wu16, f_wu, [&] { gc::wu(a, nullptr); });
  add("wu (fp32 A_inv, hi+lo)", "stage", "", t_wu32, f_wu, [&] { gc::wu(a32, nullptr); });
  add("chunk_state (bf16 S operand)", "stage", "state", t_state, f_state, [&] { gc::chunk_state(a, nullptr); });
  add("chunk_state (split S operand)", "stage", "", t_state, f_state, [&] { gc::chunk_state(a32, nullptr); });
  // chunk_state 3 (the state transposed in registers): the same bytes as variant 2 (tests/cuda).
  gc::Args as3 = a, as3s = a32;
  as3.state_variant = as3s.state_variant = 3;
  add("chunk_state v3 (bf16 S operand)", "stage", "state", t_state, f_state, [&] { gc::chunk_state(as3, nullptr); }, 0,
      "", "chunk_state (bf16 S operand)");
  add("chunk_state v3 (split S operand)", "stage", "", t_state, f_state, [&] { gc::chunk_state(as3s, nullptr); }, 0,
      "", "chunk_state (split S operand)");
  // chunk_state 4 (the same, on wgmma): within 2 ulp of variant 2 (tests/cuda).
  gc::Args as4 = a, as4s = a32;
  as4.state_variant = as4s.state_variant = 4;
  add("chunk_state v4 (wgmma, bf16 S operand)", "stage", "state", t_state, f_state, [&] { gc::chunk_state(as4, nullptr); },
      0, "", "chunk_state (bf16 S operand)");
  add("chunk_state v4 (wgmma, split S operand)", "stage", "", t_state, f_state, [&] { gc::chunk_state(as4s, nullptr); }, 0,
      "", "chunk_state (split S operand)");
  add("chunk_output", "stage", "output", t_out, f_out, [&] { gc::chunk_output(a, nullptr); });
  add("forward unfused", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(a, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward (read q, k, v, g, beta, h0; write o, final_state)");
  add("forward unfused-fp32inv", "pipeline", "", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(a32, nullptr); }, fwd_unfused32,
      "floor: a fully fused forward (read q, k, v, g, beta, h0; write o, final_state)");
  // Fused kernels (bit-identical outputs to the unfused stages they replace), ratio to those in this run.
  gc::Args af = a, ai = a, ain = a, ffwd = a, ifwd = a;
  ain.A_inv = nullptr;  // prefill only: A_inv stays on chip
  ffwd.fusion = gc::Fusion::kkt_solve;
  ifwd.fusion = gc::Fusion::intra;
  ifwd.A_inv = nullptr;
  Traffic const t_intra{{{"k", z.qk}, {"v", z.v}, {"beta", z.beta}, {"g_cumsum", z.gcs}},
                        {{"A_inv bf16", z.ainv16}, {"w", z.w}, {"u", z.v}}};
  Traffic const t_intra_noainv{{{"k", z.qk}, {"v", z.v}, {"beta", z.beta}, {"g_cumsum", z.gcs}}, {{"w", z.w}, {"u", z.v}}};
  double const intra_unfused = t_kkt.total() + t_solve16.total() + t_wu16.total();
  add("kkt_solve_fused (bf16 A_inv)", "fused", "kkt+solve fused", t_kktsolve, f_kkt + f_solve,
      [&] { gc::kkt_solve_fused(af, nullptr); }, t_kkt.total() + t_solve16.total(), "", "kkt + solve_tril (bf16)");
  add("intra_fused (A_inv stored)", "fused", "intra fused", t_intra, f_kkt + f_solve + f_wu,
      [&] { gc::intra_fused(ai, nullptr); }, intra_unfused, "", "kkt + solve_tril + wu (bf16)");
  add("intra_fused (A_inv on chip)", "fused", "intra fused", t_intra_noainv, f_kkt + f_solve + f_wu,
      [&] { gc::intra_fused(ain, nullptr); }, intra_unfused, "", "kkt + solve_tril + wu (bf16)");
  add("kkt + solve_tril + wu (bf16)", "pair", "", t_intra, f_kkt + f_solve + f_wu,
      [&] { gc::kkt(a, nullptr); gc::solve_tril(a, nullptr); gc::wu(a, nullptr); }, intra_unfused,
      "floor: the fused intra stage with A_inv stored");
  add("forward fused (kkt+solve)", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(ffwd, nullptr); }, fwd_unfused16, "floor: a fully fused forward", "forward unfused");
  add("forward fused-intra", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(ifwd, nullptr); }, fwd_unfused16, "floor: a fully fused forward; A_inv not stored",
      "forward unfused");
  // The GQA-shared variants (kkt_solve_fused.cu 5, intra_fused.cu 3): one block per (chunk, key head), K K^T
  // once per key head, merges in 3xTF32; not bit-equal to the entries above (their own bounds, tests/cuda).
  gc::Args af5 = af, ai3 = ai, ain3 = ain, ffwd5 = ffwd, ifwd3 = ifwd;
  af5.kkt_solve_variant = ffwd5.kkt_solve_variant = 5;
  ai3.intra_variant = ain3.intra_variant = ifwd3.intra_variant = 3;
  add("kkt_solve_fused v5 (GQA Gram, 3xTF32 merges)", "fused", "kkt+solve fused", t_kktsolve, f_kkt + f_solve,
      [&] { gc::kkt_solve_fused(af5, nullptr); }, t_kkt.total() + t_solve16.total(), "", "kkt + solve_tril (bf16)");
  add("intra_fused v3 (A_inv stored)", "fused", "intra fused", t_intra, f_kkt + f_solve + f_wu,
      [&] { gc::intra_fused(ai3, nullptr); }, intra_unfused, "", "kkt + solve_tril + wu (bf16)");
  add("intra_fused v3 (A_inv on chip)", "fused", "intra fused", t_intra_noainv, f_kkt + f_solve + f_wu,
      [&] { gc::intra_fused(ain3, nullptr); }, intra_unfused, "", "kkt + solve_tril + wu (bf16)");
  add("forward fused v5 (kkt+solve)", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(ffwd5, nullptr); }, fwd_unfused16, "floor: a fully fused forward", "forward unfused");
  add("forward fused-intra v3", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(ifwd3, nullptr); }, fwd_unfused16, "floor: a fully fused forward; A_inv not stored",
      "forward unfused");
  gc::Args ifwd3s4 = ifwd3;
  ifwd3s4.state_variant = 4;
  add("forward fused-intra v3, state v4", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(ifwd3s4, nullptr); }, fwd_unfused16, "floor: a fully fused forward; A_inv not stored",
      "forward unfused");
  // chunk_state 2 + chunk_output 2 in one kernel (state_output_fused.cu; the same bytes): h and v_new on chip
  // (stored only for the "stored" row), and the forward built on it (cumsum, intra v3, then this stage).
  // Variant 2 runs chunk_scores first (its score rows, 2 bytes per entry, go out and come back in); variant
  // 1 (warp roles) computes them on chip.
  Traffic const t_so{{{"q", z.qk}, {"k", z.qk}, {"w", z.w}, {"u", z.v}, {"g_cumsum", z.gcs}, {"h0", z.state}},
                     {{"o", z.v}, {"final_state", z.state}}};
  Traffic const t_so_stored{{{"q", z.qk}, {"k", z.qk}, {"w", z.w}, {"u", z.v}, {"g_cumsum", z.gcs}, {"h0", z.state}},
                            {{"o", z.v}, {"final_state", z.state}, {"h", z.h}, {"v_new", z.v}}};
  Traffic const t_scores{{{"q", z.qk}, {"k", z.qk}, {"g_cumsum", z.gcs}}, {{"scores", z.ainv16}}};
  gc::Args aso = a, aso_st = a, ifwd3so = ifwd3;
  aso.fuse_state_output = aso_st.fuse_state_output = ifwd3so.fuse_state_output = true;
  aso.h = aso.v_new = nullptr;
  aso.state_output_variant = aso_st.state_output_variant = ifwd3so.state_output_variant = 2;  // rows named "2"
  ifwd3so.h = ifwd3so.v_new = nullptr;
  gc::Args ifwd3sc = ifwd3so, ain3sc = ain3;  // the score rows by intra_fused 3 (no chunk_scores launch)
  ifwd3sc.scores_in_intra = ain3sc.scores_in_intra = true;
  gc::Args aso1 = aso, ifwd3so1 = ifwd3so;
  aso1.state_output_variant = ifwd3so1.state_output_variant = 1;
  gc::Args aso3 = aso, ifwd3sc3 = ifwd3sc, aso4 = aso, ifwd3sc4 = ifwd3sc;
  aso3.state_output_variant = ifwd3sc3.state_output_variant = 3;
  aso4.state_output_variant = ifwd3sc4.state_output_variant = 4;
  // variant 4's two block widths (the rows above run the width it chooses: state_output_block_columns())
  gc::Args aso4c[2] = {aso4, aso4}, ifwd3sc4c[2] = {ifwd3sc4, ifwd3sc4};
  for (int i = 0; i < 2; ++i) aso4c[i].state_output_columns = ifwd3sc4c[i].state_output_columns = 32 << i;
  add("chunk_state + chunk_output", "pair", "", t_so, f_state + f_out,
      [&] { gc::chunk_state(a, nullptr); gc::chunk_output(a, nullptr); }, t_state.total() + t_out.total(),
      "floor: the fused pair (h and v_new on chip)");
  // useful FLOPs: the lower tiles of Q K^T per chunk and value head, as chunk_output counts them
  add("chunk_scores", "stage", "", t_scores, CH * 2080 * 2 * K, [&] { gc::chunk_scores(a, nullptr); }, 0,
      "Q K^T once per key head, gated per value head");
  add("state_output_fused 2 (chunk_scores + kernel; h, v_new on chip)", "fused", "", t_so, f_state + f_out,
      [&] { gc::state_output_fused(aso, nullptr); }, t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  add("state_output_fused 2 (h, v_new stored)", "fused", "", t_so_stored, f_state + f_out,
      [&] { gc::state_output_fused(aso_st, nullptr); }, t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  add("state_output_fused 3 (wgmma; chunk_scores + kernel; h, v_new on chip)", "fused", "", t_so, f_state + f_out,
      [&] { gc::state_output_fused(aso3, nullptr); }, t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  add("state_output_fused 4 (wgmma, TMA; chunk_scores + kernel; h, v_new on chip)", "fused", "", t_so, f_state + f_out,
      [&] { gc::state_output_fused(aso4, nullptr); }, t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  for (int i = 0; i < 2; ++i)
    add(fmt::format("state_output_fused 4, {}-column blocks (wgmma, TMA; chunk_scores + kernel; h, v_new on chip)", 32 << i),
        "fused", "", t_so, f_state + f_out, [&, i] { gc::state_output_fused(aso4c[i], nullptr); },
        t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  // variant 4 computing the score rows itself (no chunk_scores; 64-column blocks only), and the forward as
  // `--impl fused-forward` runs it (the rows on chip where the chosen width is 64, else from intra_fused 3)
  gc::Args aso4sc = aso4c[1], ifwd3so4sc = ifwd3sc4c[1], ffwd_impl = ifwd3sc4;  // [1]: 64-column blocks
  aso4sc.scores_in_state = ifwd3so4sc.scores_in_state = ffwd_impl.scores_in_state = true;
  add("state_output_fused 4, 64-column blocks (wgmma, TMA; score rows on chip; h, v_new on chip)", "fused", "", t_so, f_state + f_out,
      [&] { gc::state_output_fused(aso4sc, nullptr); }, t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  // the head's V-tile blocks in one cluster sharing their tile copies (TMA multicast; Args::state_output_cluster 2,
  // slower where measured, so not chosen), and clusters of two at 32 columns (3)
  gc::Args aso4cl[2] = {aso4c[0], aso4c[1]};
  for (int i = 0; i < 2; ++i) {
    aso4cl[i].state_output_cluster = 2;
    add(fmt::format("state_output_fused 4, {}-column blocks in clusters (TMA multicast; chunk_scores + kernel)", 32 << i),
        "fused", "", t_so, f_state + f_out, [&, i] { gc::state_output_fused(aso4cl[i], nullptr); },
        t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  }
  gc::Args aso4pairs = aso4c[0];  // 32-column blocks in clusters of two (Args::state_output_cluster 3)
  aso4pairs.state_output_cluster = 3;
  add("state_output_fused 4, 32-column blocks in clusters of two (TMA multicast; chunk_scores + kernel)", "fused", "", t_so,
      f_state + f_out, [&] { gc::state_output_fused(aso4pairs, nullptr); }, t_state.total() + t_out.total(), "",
      "chunk_state + chunk_output");
  add("state_output_fused 1 (warp roles; h, v_new on chip)", "fused", "", t_so, f_state + f_out,
      [&] { gc::state_output_fused(aso1, nullptr); }, t_state.total() + t_out.total(), "", "chunk_state + chunk_output");
  add("forward fused-intra v3 + state_output_fused 2", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ifwd3so, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  Traffic const t_intra_sc{{{"k", z.qk}, {"v", z.v}, {"beta", z.beta}, {"g_cumsum", z.gcs}, {"q", z.qk}},
                           {{"w", z.w}, {"u", z.v}, {"scores", z.ainv16}}};
  add("intra_fused v3 + score rows (A_inv on chip)", "fused", "intra fused", t_intra_sc, f_kkt + f_solve + f_wu,
      [&] { gc::intra_fused(ain3sc, nullptr); }, intra_unfused, "", "kkt + solve_tril + wu (bf16)");
  add("forward fused-intra v3 + scores in intra + state_output_fused 2", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ifwd3sc, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  add("forward fused-intra v3 + scores in intra + state_output_fused 3", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ifwd3sc3, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  add("forward fused-intra v3 + scores in intra + state_output_fused 4", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ifwd3sc4, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  for (int i = 0; i < 2; ++i)
    add(fmt::format("forward fused-intra v3 + scores in intra + state_output_fused 4, {}-column blocks", 32 << i),
        "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
        [&, i] { gc::forward(ifwd3sc4c[i], nullptr); }, fwd_unfused16,
        "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  add("forward fused-intra v3 + state_output_fused 4, 64-column blocks, score rows on chip", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ifwd3so4sc, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new, score rows not stored", "forward unfused");
  add("forward fused-forward (as --impl fused-forward)", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ffwd_impl, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  // the walk forming the delta from v (Args::delta_from_v; --impl fused-forward-from-v): intra 3 writes round(A_inv
  // diag(beta)) and the score rows (no w, u, no v read), variant 4 reads that box and v instead of w and u
  gc::Args ffwd_from_v = ffwd_impl, afv32 = ifwd3sc4c[0];  // afv32: 32 columns, the score rows by intra
  ffwd_from_v.delta_from_v = afv32.delta_from_v = true;
  Traffic const t_intra_mu{{{"k", z.qk}, {"beta", z.beta}, {"g_cumsum", z.gcs}, {"q", z.qk}},
                           {{"A_inv diag(beta)", z.ainv16}, {"scores", z.ainv16}}};
  add("intra_fused v3, round(A_inv diag(beta)) + score rows (no w, u: for the delta from v)", "fused", "intra fused",
      t_intra_mu, f_kkt + f_solve, [&] { gc::intra_fused(afv32, nullptr); }, intra_unfused, "",
      "kkt + solve_tril + wu (bf16)");
  add("state_output_fused 4, 32-column blocks, delta from v (kernel alone: score rows from intra)", "fused", "", t_so,
      f_state + f_out, [&] { gc::state_output_fused(afv32, nullptr); }, t_state.total() + t_out.total(), "",
      "chunk_state + chunk_output");
  add("forward fused-forward-from-v (as --impl fused-forward-from-v)", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ffwd_from_v, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  add("forward fused-intra v3 + state_output_fused 1", "pipeline", "forward", t_fwd,
      f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out, [&] { gc::forward(ifwd3so1, nullptr); }, fwd_unfused16,
      "floor: a fully fused forward; A_inv, h, v_new not stored", "forward unfused");
  // "precise" (Args::precise_uv): u and v_new fp32 in their own buffers, beta v and the scores split.
  gc::DeviceBuffer u32(static_cast<size_t>(std::max<int64_t>(1, d.B * d.T * d.HV * d.V)) * 4);
  gc::DeviceBuffer vnew32(u32.size());
  gc::Args ap = ffwd;
  ap.precise_uv = true;
  ap.u = u32.get(), ap.v_new = vnew32.get();
  gc::forward(ap, nullptr);
  gc::synchronize();
  Traffic const t_wu_p{{{"k", z.qk}, {"v", z.v}, {"beta", z.beta}, {"g_cumsum", z.gcs}, {"A_inv bf16 (lower blocks)", z.ainv16_lower}},
                       {{"w", z.w}, {"u fp32", 2 * z.v}}};
  Traffic const t_state_p{{{"k", z.qk}, {"w", z.w}, {"u fp32", 2 * z.v}, {"g_cumsum", z.gcs}, {"h0", z.state}},
                          {{"h", z.h}, {"v_new fp32", 2 * z.v}, {"final_state", z.state}}};
  Traffic const t_out_p{{{"q", z.qk}, {"k", z.qk}, {"v_new fp32", 2 * z.v}, {"h", z.h}, {"g_cumsum", z.gcs}}, {{"o", z.v}}};
  double const fwd_precise = t_cumsum.total() + t_kktsolve.total() + t_wu_p.total() + t_state_p.total() + t_out_p.total();
  add("wu (precise: beta v hi+lo, u fp32)", "stage", "", t_wu_p, f_wu, [&] { gc::wu(ap, nullptr); }, 0, "",
      "wu (bf16 A_inv)");
  add("chunk_state (precise: u, v_new fp32)", "stage", "", t_state_p, f_state, [&] { gc::chunk_state(ap, nullptr); }, 0,
      "", "chunk_state (bf16 S operand)");
  add("chunk_output (precise: v_new fp32, scores hi+lo)", "stage", "", t_out_p, f_out,
      [&] { gc::chunk_output(ap, nullptr); }, 0, "", "chunk_output");
  add("forward precise (kkt+solve fused)", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(ap, nullptr); }, fwd_precise, "floor: a fully fused forward; o at ~1.0x the bf16 floor",
      "forward unfused");
  gc::Args api = ap;  // the same arithmetic with kkt + solve + w/u in one kernel, A_inv not stored
  api.fusion = gc::Fusion::intra;
  api.A_inv = nullptr;
  Traffic const t_intra_p{{{"k", z.qk}, {"v", z.v}, {"beta", z.beta}, {"g_cumsum", z.gcs}}, {{"w", z.w}, {"u fp32", 2 * z.v}}};
  add("intra_fused (precise: u fp32, A_inv on chip)", "fused", "", t_intra_p, f_kkt + f_solve + f_wu,
      [&] { gc::intra_fused(api, nullptr); }, 0, "", "intra_fused (A_inv on chip)");
  add("forward precise (fused intra)", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(api, nullptr); }, fwd_precise, "floor: a fully fused forward; o at ~1.0x the bf16 floor; A_inv not stored",
      "forward unfused");
  gc::Args api3 = api;
  api3.intra_variant = 3;
  add("intra_fused v3 (precise: u fp32, A_inv on chip)", "fused", "", t_intra_p, f_kkt + f_solve + f_wu,
      [&] { gc::intra_fused(api3, nullptr); }, 0, "", "intra_fused (A_inv on chip)");
  add("forward precise v3 (fused intra)", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(api3, nullptr); }, fwd_precise,
      "floor: a fully fused forward; o at ~1.0x the bf16 floor; A_inv not stored", "forward unfused");
  gc::Args ap4 = ap, api3s4 = api3;
  ap4.state_variant = api3s4.state_variant = 4;
  add("chunk_state v4 (wgmma, precise: u, v_new fp32)", "stage", "", t_state_p, f_state,
      [&] { gc::chunk_state(ap4, nullptr); }, 0, "", "chunk_state (precise: u, v_new fp32)");
  add("forward precise v3, state v4", "pipeline", "forward", t_fwd, f_cumsum + f_kkt + f_solve + f_wu + f_state + f_out,
      [&] { gc::forward(api3s4, nullptr); }, fwd_precise,
      "floor: a fully fused forward; o at ~1.0x the bf16 floor; A_inv not stored", "forward unfused");
  add("cublas kkt (gemm + mask)", "baseline", "", t_kkt, f_kkt, [&] { cb.kkt(a, nullptr); });
  add("cublas strsm fp32 (fp32 A_inv)", "baseline", "", t_solve32, f_solve, [&] { cb.solve(a32, nullptr, false); });
  add("cublas dtrsm fp64 (fp32 A_inv)", "baseline", "", t_solve32, f_solve, [&] { cb.solve(a32, nullptr, true); });

  std::size_t const flush_bytes = static_cast<std::size_t>(2 * std::max<int64_t>(dev.l2_bytes, 1 << 20));
  std::vector<std::string> modes = {"warm"};
  if (opt.cold) modes.push_back("cold");
  gc::EventTimer timer;
  for (auto& e : E)
    for (auto const& m : modes) {
      bool drained = false;
      e.us[m] = timer.time_us(e.fn, opt.warmup, opt.reps, m == "cold" ? flush_bytes : 0, &drained);
      e.drained[m] = drained;
    }

  FlaRow const* fla = fla_row(cfg);
  auto median_of = [&](std::string const& name, std::string const& mode) {
    for (auto const& x : E)
      if (x.name == name) return summary(x.us.at(mode))["median"].get<double>();
    return 0.0;
  };
  json arr = json::array();
  for (auto const& e : E) {
    json j;
    j["name"] = e.name;
    j["kind"] = e.kind;
    j["bytes"] = e.traffic.to_json();
    double const bytes = e.traffic.total();
    double const floor_us = bytes / bw * 1e6;
    j["floor_us"] = floor_us;
    if (e.unfused_bytes > 0) {
      j["unfused_bytes"] = e.unfused_bytes;
      j["unfused_floor_us"] = e.unfused_bytes / bw * 1e6;
    }
    if (!e.note.empty()) j["note"] = e.note;
    if (!e.vs_unfused.empty()) j["unfused_entry"] = e.vs_unfused;
    j["flops"] = e.flops;
    double fla_us = 0, fused_us = 0;
    if (fla && !e.fla_key.empty()) {
      auto it = fla->us.find(e.fla_key);
      if (it != fla->us.end()) fla_us = it->second, j["fla_us"] = fla_us;
      auto f = fla->us.find(e.fla_key + " fused");
      if (f != fla->us.end()) fused_us = f->second, j["fla_fused_us"] = fused_us;
    }
    bool const fused = !e.vs_unfused.empty();
    double const target = fused ? 0 : issue_target_us(cfg, e.fla_key);
    if (target > 0) j["issue4_target_us"] = target;
    double const target5 = issue5_target_us(cfg, e.fla_key, fused);
    if (target5 > 0) j["issue5_target_us"] = target5;
    for (auto const& m : modes) {
      json t = summary(e.us.at(m));
      double const med = t["median"].get<double>();
      t["GBps"] = bytes / (med * 1e-6) * 1e-9;
      t["TFLOPs"] = e.flops / (med * 1e-6) * 1e-12;
      t["x_floor"] = med / floor_us;
      if (e.unfused_bytes > 0) t["x_unfused_floor"] = med / (e.unfused_bytes / bw * 1e6);
      if (fla_us > 0) t["x_fla"] = med / fla_us;
      if (!e.vs_unfused.empty()) {
        double const u = median_of(e.vs_unfused, m);
        if (u > 0) t["x_unfused"] = med / u;
      }
      if (fused_us > 0) t["x_fla_fused"] = med / fused_us;
      if (target > 0) t["meets_issue4_target"] = med <= target;
      if (target5 > 0) t["meets_issue5_target"] = med <= target5;
      t["queue_drained_before_all_runs_queued"] = e.drained.at(m);
      j[m] = t;
    }
    arr.push_back(j);
  }
  cj["entries"] = arr;
  cj["status"] = "ok";

  if (opt.per_chunk) {
    std::vector<ChunkTiming> timed = {
        {"kkt", gc::Stage::kkt, a, "kkt (fp32 A)"},
        {"solve_tril (bf16 A_inv)", gc::Stage::solve_tril, a, "solve_tril (bf16 A_inv)"},
        {"wu (bf16 A_inv)", gc::Stage::wu, a, "wu (bf16 A_inv)"},
        {"chunk_state (bf16 S operand)", gc::Stage::chunk_state, a, "chunk_state (bf16 S operand)"},
        {"chunk_output", gc::Stage::chunk_output, a, "chunk_output"},
        {"kkt_solve_fused (bf16 A_inv)", gc::Stage::kkt_solve_fused, af, "kkt_solve_fused (bf16 A_inv)"},
        {"intra_fused (A_inv stored)", gc::Stage::intra_fused, ai, "intra_fused (A_inv stored)"},
        {"kkt_solve_fused v5 (GQA Gram, 3xTF32 merges)", gc::Stage::kkt_solve_fused, af5,
         "kkt_solve_fused v5 (GQA Gram, 3xTF32 merges)"},
        {"intra_fused v3 (A_inv stored)", gc::Stage::intra_fused, ai3, "intra_fused v3 (A_inv stored)"},
        {"chunk_state v4 (wgmma, bf16 S operand)", gc::Stage::chunk_state, as4, "chunk_state v4 (wgmma, bf16 S operand)"},
        {"state_output_fused 2 (chunk_scores + kernel; h, v_new on chip)", gc::Stage::state_output_fused, aso,
         "state_output_fused 2 (chunk_scores + kernel; h, v_new on chip)"},
        {"state_output_fused 1 (warp roles; h, v_new on chip)", gc::Stage::state_output_fused, aso1,
         "state_output_fused 1 (warp roles; h, v_new on chip)"},
        {"chunk_scores", gc::Stage::chunk_scores, a, "chunk_scores"},
        {"intra_fused v3 + score rows (A_inv on chip)", gc::Stage::intra_fused, ain3sc,
         "intra_fused v3 + score rows (A_inv on chip)"},
    };
    json pc = json::array();
    int64_t const chunks_per_seq = d.N > 0 ? d.num_chunks / d.N : 0;
    for (auto& ct : timed) {
      int64_t const nb = gc::timed_blocks(ct.args, ct.stage);
      gc::DeviceBuffer buf(static_cast<size_t>(std::max<int64_t>(1, 2 * nb)) * 8);
      std::vector<unsigned long long> host(static_cast<size_t>(2 * nb));
      gc::Args x = ct.args;
      x.block_times = static_cast<unsigned long long*>(buf.get());
      auto launch = [&] { gc::run_stage(ct.stage, x, nullptr); };
      launch();  // warm-up (module load of the instrumented path)
      gc::synchronize();
      json sj;
      sj["stage"] = ct.name;
      sj["grid"] = gc::stage_name(ct.stage);
      if (ct.stage == gc::Stage::chunk_state || ct.stage == gc::Stage::state_output_fused) {
        sj["block_is"] = "one (sequence, value head, 32-column V slice) walking all the sequence's chunks";
        sj["chunks_per_block"] = chunks_per_seq;
      } else if (gc::timed_blocks(ct.args, ct.stage) == d.num_chunks * d.H && d.H != d.HV) {
        sj["block_is"] = "one (chunk, key head) tile: its value heads one after another";
      } else {
        sj["block_is"] = "one (chunk, value head) tile";
      }
      for (auto const& m : modes) {
        std::vector<double> dur, spans, event_us;
        int64_t bad = 0;
        double gran = 0, sum_per_run = 0;
        for (int r = 0; r < opt.chunk_reps; ++r) {
          buf.fill_bytes(0);
          std::vector<double> const t = timer.time_us(launch, 0, 1, m == "cold" ? flush_bytes : 0);
          event_us.push_back(t.at(0));
          buf.download(host.data(), host.size() * 8);
          unsigned long long lo = ~0ull, hi = 0;
          std::vector<unsigned long long> starts;
          double sum = 0;
          for (int64_t b = 0; b < nb; ++b) {
            unsigned long long const s = host[2 * b], e = host[2 * b + 1];
            if (s == 0 || e == 0 || e < s) {
              ++bad;
              continue;
            }
            dur.push_back(static_cast<double>(e - s) * 1e-3);
            sum += static_cast<double>(e - s) * 1e-3;
            lo = std::min(lo, s), hi = std::max(hi, e);
            starts.push_back(s);
          }
          if (hi > lo) spans.push_back(static_cast<double>(hi - lo) * 1e-3);
          sum_per_run += sum / opt.chunk_reps;
          std::sort(starts.begin(), starts.end());
          for (size_t i = 1; i < starts.size(); ++i) {
            double const g = static_cast<double>(starts[i] - starts[i - 1]);
            if (g > 0 && (gran == 0 || g < gran)) gran = g;
          }
        }
        json st = block_time_stats(dur, spans, sum_per_run, nb, bad, gran);
        std::sort(event_us.begin(), event_us.end());
        st["event_us_with_block_times_median"] = percentile(event_us, 0.5);
        for (auto const& e : E)
          if (e.name == ct.compare_entry) {
            std::vector<double> s = e.us.at(m);
            std::sort(s.begin(), s.end());
            st["event_us_without_block_times_median"] = percentile(s, 0.5);
          }
        if (ct.stage == gc::Stage::chunk_state && chunks_per_seq > 0)
          st["per_chunk_step_us_p50"] = st["block_us"]["p50"].get<double>() / static_cast<double>(chunks_per_seq);
        sj[m] = st;
      }
      pc.push_back(sj);
    }
    cj["per_chunk"] = pc;
  }
  return cj;
}

void print_config_table(Config const& c, json const& cj, bool cold) {
  std::printf("\n%s: B=%lld T=%lld H=%lld HV=%lld K=V=%lld (%lld chunks)\n", c.shape.c_str(), (long long)c.B,
              (long long)c.T, (long long)c.H, (long long)c.HV, (long long)c.K, (long long)cj.value("chunks", 0LL));
  if (cj.value("status", "") != "ok") {
    std::printf("  %s: %s\n", cj.value("status", "").c_str(), cj.value("reason", "").c_str());
    return;
  }
  char const* m = cold ? "cold" : "warm";
  std::printf("  %-32s %9s %9s %9s %8s %8s %9s %8s %8s %10s\n", "entry", "warm us", "cold us", "MB", "GB/s", "x floor",
              "TFLOP/s", "FLA us", "x FLA", "x unfused");
  for (auto const& e : cj["entries"]) {
    json const& p = e[m];
    std::string const cold_us = e.contains("cold") ? fmt::format("{:.1f}", e["cold"]["median"].get<double>()) : "-";
    std::string fla = "-", xf = "-";
    if (e.contains("fla_us")) {
      fla = fmt::format("{:.0f}", e["fla_us"].get<double>());
      xf = fmt::format("{:.2f}", p["x_fla"].get<double>());
    }
    std::string const xu = p.contains("x_unfused") ? fmt::format("{:.2f}", p["x_unfused"].get<double>()) : "-";
    std::printf("  %-32s %9.1f %9s %9.1f %8.0f %8.2f %9.2f %8s %8s %10s\n", e["name"].get<std::string>().c_str(),
                e["warm"]["median"].get<double>(), cold_us.c_str(), e["bytes"]["total"].get<double>() * 1e-6,
                p["GBps"].get<double>(), p["x_floor"].get<double>(), p["TFLOPs"].get<double>(), fla.c_str(), xf.c_str(),
                xu.c_str());
  }
  std::printf("  (GB/s, x floor, TFLOP/s, x FLA from the %s runs; pipelines and the kkt+solve pair against the floor of "
              "their fused form)\n", m);
  if (cj.contains("per_chunk")) {
    std::printf("  per-block time (%s, us): %-28s %8s %8s %8s %8s %8s\n", m, "stage", "p50", "p90", "p99", "max",
                "blocks");
    for (auto const& s : cj["per_chunk"]) {
      json const& b = s[m]["block_us"];
      std::printf("  %25s %-28s %8.2f %8.2f %8.2f %8.2f %8lld\n", "", s["stage"].get<std::string>().c_str(),
                  b["p50"].get<double>(), b["p90"].get<double>(), b["p99"].get<double>(), b["max"].get<double>(),
                  (long long)s[m]["blocks"].get<int64_t>());
    }
  }
}
#endif  // GDNV_HAVE_CUDA

int run_bench(BenchOptions const& opt) {
  std::vector<Config> const configs = resolve(opt);
  json j;
  j["tool"] = "gdnv";
  j["version"] = GDNV_VERSION;
  j["command"] = "bench";
  j["git"] = git_info();
  j["options"] = {{"B", opt.B}, {"T", opt.T}, {"reps", opt.reps}, {"warmup", opt.warmup}, {"cold", opt.cold},
                  {"per_chunk", opt.per_chunk}, {"chunk_reps", opt.chunk_reps}, {"seed", opt.seed}};
  j["dtypes"] = {{"q", "bf16"}, {"k", "bf16"}, {"v", "bf16"}, {"g", "fp32"}, {"beta", "fp32"}, {"g_cumsum", "fp32"},
                 {"A", "fp32"}, {"A_inv", "bf16 (unfused) / fp32 (fp32inv, cuBLAS)"}, {"w, u, v_new, h, o", "bf16"},
                 {"h0, final_state", "fp32"}};
  j["inputs"] = "q, k: rows of N(0,1) L2-normalized, bf16; v: N(0,1) bf16; g: logsigmoid(N(0,1)) fp32; "
                "beta: sigmoid(N(0,1)) fp32; h0: 0.1 N(0,1) fp32; scale 1/sqrt(K)";
  j["targets_source"] = kFlaSource;
  json cfgs = json::array();
  for (auto const& c : configs)
    cfgs.push_back({{"shape", c.shape}, {"model", c.model}, {"B", c.B}, {"T", c.T}, {"H", c.H}, {"HV", c.HV},
                    {"K", c.K}, {"V", c.K}});
  auto not_run = [&](std::string const& reason) {
    j["status"] = "not_run";
    j["reason"] = reason;
    j["configs"] = cfgs;
    write_text_atomic(opt.json_out, j.dump(1) + "\n");
    std::fprintf(stderr, "gdnv bench: not run: %s (wrote %s)\n", reason.c_str(), opt.json_out.c_str());
    return 0;
  };
#ifndef GDNV_HAVE_CUDA
  return not_run("built without CUDA (nvcc not found when configuring)");
#else
  std::string why;
  if (gdn_cuda::device_count(&why) <= 0) return not_run("no CUDA device: " + why);
  gc::DeviceInfo const dev = gc::device_info();
  j["device"] = {{"name", dev.name}, {"sm_count", dev.sm_count}, {"compute_capability", fmt::format("{}.{}", dev.cc_major, dev.cc_minor)},
                 {"l2_bytes", dev.l2_bytes}, {"global_memory_bytes", dev.global_mem_bytes},
                 {"memory_bus_bits", dev.memory_bus_bits}, {"driver_version", dev.driver_version},
                 {"cuda_runtime_version", dev.runtime_version}};
  std::size_t const copy_bytes = std::size_t{512} << 20;
  double const bw = gc::measure_copy_bandwidth(copy_bytes, 20);
  j["method"] = {
      {"timer", "CUDA events around each run on the default stream; runs queued behind a spin kernel"},
      {"warm", "the same buffers every run (L2 as the previous run left it)"},
      {"cold", fmt::format("cudaMemsetAsync of {} bytes (2x L2) before each run, outside the timed region",
                           2 * std::max<int64_t>(dev.l2_bytes, 1 << 20))},
      {"bytes", "each tensor a stage reads counted once, each it writes once; A/A_inv reads: the 10 of 16 16x16 "
                "blocks on or below the diagonal"},
      {"flops", "useful work: triangular products count only their lower part"},
      {"floor_us", "bytes / copy bandwidth measured in this run"}};
  std::printf("gdnv bench: %s, %d SMs, L2 %.0f MB, driver %d, runtime %d\n", dev.name.c_str(), dev.sm_count,
              dev.l2_bytes * 1e-6, dev.driver_version, dev.runtime_version);
  std::printf("device copy bandwidth (read + write): %.0f GB/s; median of %d runs after %d warm-up%s\n", bw * 1e-9,
              opt.reps, opt.warmup, opt.cold ? "; warm and cold L2" : "; warm L2 only");
  json out = json::array();
  for (size_t i = 0; i < configs.size(); ++i) {
    json cj = cfgs[i];
    json const r = run_config(configs[i], opt, dev, bw);
    cj.update(r);
    if (FlaRow const* f = fla_row(configs[i])) cj["fla_us"] = f->us;
    print_config_table(configs[i], cj, opt.cold);
    out.push_back(cj);
  }
  double const bw_end = gc::measure_copy_bandwidth(copy_bytes, 20);
  j["copy_bandwidth"] = {{"GBps", bw * 1e-9}, {"GBps_at_end", bw_end * 1e-9}, {"bytes_per_copy", copy_bytes},
                         {"counts", "bytes read + bytes written"}};
  j["status"] = "ok";
  j["configs"] = out;
  write_text_atomic(opt.json_out, j.dump(1) + "\n");
  std::printf("\ncopy bandwidth at the end: %.0f GB/s; wrote %s\n", bw_end * 1e-9, opt.json_out.c_str());
  return 0;
#endif
}

}  // namespace

Command add_bench_command(CLI::App& root) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand("bench", "Time every CUDA stage and pipeline (warm and cold L2) against the memory floor and FLA");
  std::string shapes;
  for (auto const& d : kShapes) shapes += std::string(shapes.empty() ? "" : ", ") + d.name;
  app->add_option("--shape", opt->shapes, "model shapes (comma separated): " + shapes + " (default qwen3-next)")
      ->delimiter(',');
  app->add_option("--B", opt->B, "batch")->capture_default_str();
  app->add_option("--T", opt->T, "sequence lengths (comma separated)")->delimiter(',')->capture_default_str();
  app->add_option("--H", opt->H, "key heads (overrides the shape's)");
  app->add_option("--HV", opt->HV, "value heads (overrides the shape's)");
  app->add_option("--K", opt->K, "head dim K = V, 64 or 128 (overrides the shape's)");
  app->add_option("--reps", opt->reps, "timed runs per entry and mode (>= 20)")->capture_default_str();
  app->add_option("--warmup", opt->warmup, "untimed runs first")->capture_default_str();
  app->add_flag("--cold,!--no-cold", opt->cold, "also time with L2 flushed before each run (default on)");
  app->add_flag("--per-chunk", opt->per_chunk, "record every block's start and end time (%globaltimer)");
  app->add_option("--chunk-reps", opt->chunk_reps, "runs pooled per stage and mode for --per-chunk")->capture_default_str();
  app->add_option("--seed", opt->seed, "input seed")->capture_default_str();
  app->add_option("--json", opt->json_out, "write the results file here")->required();
  return {app, [opt] { return run_bench(*opt); }};
}

}  // namespace gdnv::cli
