// gdnv replay FILE [--case NAME] --chunk SEQ:HEAD:CHUNK [--impl a,b] [--max-floor-ratio 8]
//
// One chunk's full story, for the engineer who found a bad chunk in `gdnv check`'s table:
//   1. where it is (tokens, batch row, key head) and what the inputs look like there: norms of
//      q, k (stored and as used), v, the ranges of beta and g, beta ||k||^2, the decay over the
//      chunk and from the sequence start, the state entering the chunk;
//   2. the conditioning of I + A on that chunk and value head (reference/conditioning.hpp);
//   3. for every captured group and every --impl implementation (and its [isolated] run),
//      every stage tensor's floor ratio on that chunk, next to the tensor's worst and median
//      chunk in the whole case.
// Exit status: 0 every ratio shown is within the gate, 1 one is above it (or not finite),
// 2 bad input or usage.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "harness/cli/commands.hpp"
#include "harness/compare.hpp"
#include "harness/dataset.hpp"
#include "harness/errors.hpp"
#include "harness/implementation.hpp"
#include "reference/chunked.hpp"
#include "reference/conditioning.hpp"

namespace gdnv::cli {
namespace {

struct ReplayOptions {
  std::string file, case_name, chunk;
  std::vector<std::string> impls;
  double max_floor_ratio = 8.0;
  int threads = 0;
};

struct Where {
  int64_t sequence = 0, head = 0, chunk = 0;
};

Where parse_chunk(std::string const& s) {
  Where w;
  long long a = 0, b = 0, c = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%lld:%lld:%lld%c", &a, &b, &c, &tail) != 3 || a < 0 || b < 0 || c < 0)
    throw UsageError("--chunk '" + s + "': expected SEQ:HEAD:CHUNK, three non-negative integers "
                     "(sequence, value head, chunk within the sequence), e.g. 0:1:3");
  w.sequence = a, w.head = b, w.chunk = c;
  return w;
}

// min / max of a few values, printed as one row.
struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double x) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
};

std::string num(double x) {
  if (!std::isfinite(x)) return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
  return fmt::format("{:.4g}", x);
}

std::string ratio_str(double r) {
  if (!std::isfinite(r)) return "inf";
  return r > 0 && r < 0.01 ? fmt::format("{:.1e}", r) : fmt::format("{:.2f}", r);
}

double row_norm(Tensor const& t, int64_t b, int64_t tok, int64_t head) {
  int64_t const d = t.dim(3);
  double const* x = t.ptr() + t.offset({b, tok, head, 0});
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += x[i] * x[i];
  return std::sqrt(s);
}

void print_inputs(Problem const& p, ChunkRef const& c, Sequence const& s, int64_t hv, ChunkedResult const& ref) {
  int64_t const kh = p.key_head(hv);
  Tensor const q_used = effective_q(p), k_used = effective_k(p);
  Range qs, qu, ks, ku, vn, beta, g, bk2;
  for (int64_t t = c.begin; t < c.begin + c.rows; ++t) {
    qs.add(row_norm(p.q, c.b, t, kh));
    qu.add(row_norm(q_used, c.b, t, kh));
    ks.add(row_norm(p.k, c.b, t, kh));
    double const kn = row_norm(k_used, c.b, t, kh);
    ku.add(kn);
    vn.add(row_norm(p.v, c.b, t, hv));
    double const bt = p.beta.at({c.b, t, hv});
    beta.add(bt);
    g.add(p.g.at({c.b, t, hv}));
    bk2.add(bt * kn * kn);
  }
  // Decay: over the chunk (its g_cumsum at the last row) and from the sequence start to the chunk.
  double const chunk_decay = ref.g_cumsum.at({c.b, c.begin + c.rows - 1, hv});
  double before = 0;
  for (int64_t t = s.begin; t < c.begin; ++t) before += p.g.at({c.b, t, hv});
  double h_norm = 0, h0_norm = 0, o_norm = 0;
  {
    int64_t const kv = p.K * p.V;
    double const* h = ref.h.ptr() + ref.h.offset({c.b, c.h_index, hv, 0, 0});
    for (int64_t i = 0; i < kv; ++i) h_norm += h[i] * h[i];
    if (!p.initial_state.empty()) {
      double const* h0 = p.initial_state.ptr() + p.initial_state.offset({c.sequence, hv, 0, 0});
      for (int64_t i = 0; i < kv; ++i) h0_norm += h0[i] * h0[i];
    }
    for (int64_t t = c.begin; t < c.begin + c.rows; ++t) o_norm += std::pow(row_norm(ref.o, c.b, t, hv), 2);
  }
  std::string const l2 = p.qk_l2norm ? "l2-normalized in kernel" : "used as stored";
  fmt::print("\ninputs on this chunk (value head {}, key head {}; q and k {})\n", hv, kh, l2);
  fmt::print("  {:<30} {:>12} {:>12}\n", "", "min", "max");
  auto row = [](char const* what, Range const& r) { fmt::print("  {:<30} {:>12} {:>12}\n", what, num(r.lo), num(r.hi)); };
  row("||q_t|| stored", qs);
  row("||q_t|| as used (before scale)", qu);
  row("||k_t|| stored", ks);
  row("||k_t|| as used", ku);
  row("||v_t||", vn);
  row("beta", beta);
  row("g (log decay per token)", g);
  row("beta ||k_t||^2 (as used)", bk2);
  fmt::print("  decay over the chunk: sum g = {}, exp = {}\n", num(chunk_decay), num(std::exp(chunk_decay)));
  fmt::print("  decay from the sequence start to this chunk: sum g = {}, exp = {}\n", num(before), num(std::exp(before)));
  fmt::print("  ||state entering the chunk||_F = {}   ||initial state||_F = {}{}\n", num(std::sqrt(h_norm)),
             num(std::sqrt(h0_norm)), p.initial_state.empty() ? " (none: zeros)" : "");
  fmt::print("  ||exact o on the chunk||_F = {}   scale = {}\n", num(std::sqrt(o_norm)), num(p.scale));
}

void print_conditioning(ChunkConditioning const& k) {
  fmt::print("\nconditioning of T = I + A (this chunk and value head)\n");
  fmt::print("  kappa_1 {}   kappa_inf {}   Skeel cond {}\n", num(k.kappa_1), num(k.kappa_inf), num(k.skeel));
  fmt::print("  max |T^-1| {}   structural bound {}   ||A||_inf {}   max of (I-|A|)^-1 {}\n", num(k.max_abs_inv),
             num(k.structural_bound), num(k.norm_A_inf), num(k.neumann_max));
  fmt::print("  max beta ||k||^2 {}{}\n", num(k.max_beta_k2), k.max_beta_k2 > 2 ? "  (> 2: the recurrence does not contract)" : "");
}

// Runs one implementation (or its isolated stages) and prints its rows for the chunk. Returns
// true when one of them is above the gate or not finite.
bool print_impl(std::string const& label, Implementation& impl, bool isolated, Problem const& p,
                ChunkedResult const& ref, ChunkRef const& c, bool last_chunk, int64_t hv, double gate) {
  Availability const a = impl.can_implement(p);
  if (a.kind != Availability::Kind::ok) {
    fmt::print("  {:<40} {}: {}\n", label,
               a.kind == Availability::Kind::not_run ? "not_run" : "not_supported", a.reason);
    return false;
  }
  StageOutputs out = isolated ? impl.run_isolated(p, ref) : impl.run(p);
  if (p.chunk_size != kChunk)
    for (auto it = out.begin(); it != out.end();)
      it = (it->first == "o" || it->first == "final_state") ? std::next(it) : out.erase(it);
  Comparison cmp;
  try {
    cmp = compare_outputs(p, ref, out);
  } catch (std::exception const& e) {
    fmt::print("  {:<40} error: {}\n", label, e.what());
    return true;
  }
  if (!cmp.any_compared()) {
    fmt::print("  {:<40} error: produced no tensor the reference has\n", label);
    return true;
  }
  bool bad = false;
  bool first = true;
  // In the schema's stage order, not alphabetical.
  for (char const* name : kStageTensors) {
    auto const m = cmp.metrics.find(name);
    if (m == cmp.metrics.end()) continue;
    bool const state = std::string(name) == "final_state";
    if (state && !last_chunk) continue;  // the final state follows the sequence's last chunk only
    for (auto const& r : cmp.rows) {
      if (r.tensor != name || r.sequence != c.sequence || r.head != hv || r.chunk != (state ? -1 : c.chunk)) continue;
      bool const over = !r.finite || r.ratio > gate;
      bad = bad || over;
      fmt::print("  {:<40} {:<12} {:>8} {:>11} {:>11} {:>9} {:>9}  {}{}{}\n", first ? label : "",
                 state ? "final_state" : name, ratio_str(r.ratio), fmt::format("{:.3e}", r.error_norm),
                 fmt::format("{:.3e}", r.floor_norm), ratio_str(m->second.max_chunk_ratio),
                 ratio_str(m->second.median_chunk_ratio), dtype_name(m->second.dtype),
                 r.floor_from_u ? " (floor u*|exact|)" : "", over ? "  ABOVE GATE" : "");
      first = false;
    }
  }
  return bad;
}

int run_replay(ReplayOptions const& opt) {
  if (!(opt.max_floor_ratio > 0) || !std::isfinite(opt.max_floor_ratio))
    throw UsageError("--max-floor-ratio must be a positive number");
  Where const w = parse_chunk(opt.chunk);
  std::vector<std::unique_ptr<Implementation>> impls;
  for (auto const& name : opt.impls) impls.push_back(make_implementation(name));

  ReadOptions ro;
  if (!opt.case_name.empty()) ro.case_name = opt.case_name;
  Dataset const ds = read_dataset(opt.file, ro);
  if (ds.cases.size() != 1) {
    std::string names;
    for (auto const& c : ds.cases) names += (names.empty() ? "" : ", ") + c.name;
    throw UsageError(fmt::format("{}: --case is required, the file has {} cases ({})", opt.file, ds.cases.size(), names));
  }
  Case const& cs = ds.cases.front();
  Problem const& p = cs.problem;

  auto const seqs = p.sequences();
  if (w.sequence >= static_cast<int64_t>(seqs.size()))
    throw InputError(opt.file, cs.name, "--chunk sequence",
                     fmt::format("sequence {} does not exist (the case has {} sequence(s))", w.sequence, seqs.size()));
  if (w.head >= p.HV)
    throw InputError(opt.file, cs.name, "--chunk head",
                     fmt::format("value head {} does not exist (HV = {})", w.head, p.HV));
  Sequence const& s = seqs[static_cast<size_t>(w.sequence)];
  if (w.chunk >= s.num_chunks())
    throw InputError(opt.file, cs.name, "--chunk chunk",
                     fmt::format("sequence {} has {} token(s), {} chunk(s) of 64; there is no chunk {}", w.sequence,
                                 s.length, s.num_chunks(), w.chunk));
  ChunkRef c;
  for (auto const& x : p.chunks())
    if (x.sequence == w.sequence && x.chunk == w.chunk) c = x;
  bool const last_chunk = w.chunk + 1 == s.num_chunks();

  ChunkedOptions co;
  co.threads = opt.threads;
  ChunkedResult const ref = chunked_forward(p, co);

  fmt::print("gdnv replay: {}, case {}: sequence {}, value head {}, chunk {}\n", opt.file, cs.name, w.sequence,
             w.head, w.chunk);
  fmt::print("  tokens {}..{} of batch row {} ({} rows); the sequence has {} tokens in {} chunk(s){}\n", c.begin,
             c.begin + c.rows - 1, c.b, c.rows, s.length, s.num_chunks(), last_chunk ? "; this is its last" : "");
  fmt::print("  B={} T={} H={} HV={} K={} V={}; dtypes q {} k {} v {} g {} beta {}{}\n", p.B, p.T, p.H, p.HV, p.K,
             p.V, dtype_name(p.q.dtype), dtype_name(p.k.dtype), dtype_name(p.v.dtype), dtype_name(p.g.dtype),
             dtype_name(p.beta.dtype), cs.source.empty() ? "" : "; source: " + cs.source);

  print_inputs(p, c, s, w.head, ref);
  if (p.chunk_size == kChunk) {
    for (auto const& k : chunk_conditioning(p, ref))
      if (k.sequence == w.sequence && k.head == w.head && k.chunk == w.chunk) print_conditioning(k);
  }

  fmt::print("\nfloor ratio on this chunk (gate {}); 'case max' and 'median' are over every chunk of the case\n",
             opt.max_floor_ratio);
  fmt::print("  {:<40} {:<12} {:>8} {:>11} {:>11} {:>9} {:>9}  {}\n", "implementation", "tensor", "ratio", "error",
             "floor", "case max", "median", "dtype");
  bool bad = false;
  int shown = 0;
  for (auto const& g : cs.captured) {
    CapturedImplementation impl(g);
    bad = print_impl(impl.name(), impl, false, p, ref, c, last_chunk, w.head, opt.max_floor_ratio) || bad;
    ++shown;
  }
  for (auto& impl : impls) {
    bad = print_impl(impl->name(), *impl, false, p, ref, c, last_chunk, w.head, opt.max_floor_ratio) || bad;
    if (impl->has_isolated_stages())
      bad = print_impl(impl->name() + "[isolated]", *impl, true, p, ref, c, last_chunk, w.head, opt.max_floor_ratio) ||
            bad;
    ++shown;
  }
  if (shown == 0) fmt::print("  (no captured group in this case and no --impl given)\n");
  fmt::print("\n{}\n", bad ? "some tensor is above the gate on this chunk" : "every tensor shown is within the gate");
  return bad ? 1 : 0;
}

}  // namespace

Command add_replay_command(CLI::App& root) {
  auto opt = std::make_shared<ReplayOptions>();
  CLI::App* app = root.add_subcommand(
      "replay", "One chunk's full story: inputs, conditioning, every stage's floor ratio per implementation");
  app->add_option("file", opt->file, "dataset file (HDF5, schema v1)")->required();
  app->add_option("--case", opt->case_name, "the case (may be left out when the file has one)");
  app->add_option("--chunk", opt->chunk, "SEQ:HEAD:CHUNK: sequence, value head, chunk within the sequence")
      ->required();
  app->add_option("--impl", opt->impls, "implementations to run as well (comma separated)")->delimiter(',');
  app->add_option("--max-floor-ratio", opt->max_floor_ratio, "the gate a ratio is judged against")
      ->capture_default_str();
  app->add_option("--threads", opt->threads, "reference threads (0: all cores)");
  return {app, [opt] { return run_replay(*opt); }};
}

}  // namespace gdnv::cli
