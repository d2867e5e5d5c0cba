#include "attribution.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "harness/compare.hpp"
#include "reference/rounding.hpp"

namespace gdnv {
namespace {

using BlockKey = std::tuple<std::string, int64_t, int64_t, int64_t>;  // tensor, sequence, head, chunk

std::map<BlockKey, ChunkRow> index_rows(Comparison const& c) {
  std::map<BlockKey, ChunkRow> m;
  for (auto const& r : c.rows) m[{r.tensor, r.sequence, r.head, r.chunk}] = r;
  return m;
}

std::optional<double> ratio_at(std::map<BlockKey, ChunkRow> const& m, std::string const& tensor, int64_t seq,
                               int64_t head, int64_t chunk) {
  auto it = m.find({tensor, seq, head, chunk});
  if (it == m.end()) return std::nullopt;
  return it->second.ratio;
}

// ||got - exact|| / ||exact|| over one block: a chunk's valid rows of one value head of o, or the
// final state of one (sequence, value head).
double block_rel_error(Problem const& p, Tensor const& exact, Tensor const& got, bool state, int64_t seq,
                       int64_t head, ChunkRef const* chunk) {
  double e2 = 0, x2 = 0;
  bool finite = true;
  auto add = [&](int64_t off, int64_t len) {
    for (int64_t i = off; i < off + len; ++i) {
      double const x = exact.data[static_cast<size_t>(i)], g = got.data[static_cast<size_t>(i)];
      if (!std::isfinite(g)) finite = false;
      e2 += (g - x) * (g - x);
      x2 += x * x;
    }
  };
  if (state) {
    add(exact.offset({seq, head, 0, 0}), p.K * p.V);
  } else {
    for (int64_t t = chunk->begin; t < chunk->begin + chunk->rows; ++t) add(exact.offset({chunk->b, t, head, 0}), p.V);
  }
  if (!finite) return INFINITY;
  return x2 > 0 ? std::sqrt(e2 / x2) : std::sqrt(e2);
}

// The effect of one injection on o and final_state, as tensors tagged with the implementation's output
// dtypes (so their floor ratios use the same floor as its end-to-end comparison).
struct Effect {
  StageOutputs out;  // "o", "final_state"
  Comparison cmp;
  std::map<BlockKey, ChunkRow> rows;
};

Effect measure(Problem const& p, ChunkedResult const& ref, Tensor const& o, Tensor const& final_state, DType o_dtype,
               DType fs_dtype) {
  Effect e;
  e.out["o"] = o;
  e.out["o"].dtype = o_dtype;
  e.out["final_state"] = final_state;
  e.out["final_state"].dtype = fs_dtype;
  e.cmp = compare_outputs(p, ref, e.out);
  e.rows = index_rows(e.cmp);
  return e;
}

bool larger(std::optional<double> a, std::optional<double> b) {
  if (!a) return false;
  if (!b) return true;
  if (std::isnan(*a)) return !std::isnan(*b);
  return *a > *b;
}

// Sums, the linear (vector-sum) prediction and the dominant stages of one block, from its rows.
void finish_block(AttributionBlock& b) {
  double so = 0, sf = 0;
  bool any = false;
  AttributionRow const *dom_o = nullptr, *dom_f = nullptr, *dom_n = nullptr;
  for (auto const& r : b.rows_by_stage) {
    if (!r.available || !r.stage.part_of.empty()) continue;
    any = true;
    if (r.o.ratio) so += *r.o.ratio;
    if (r.final_state.ratio) sf += *r.final_state.ratio;
    if (larger(r.o.ratio, dom_o ? dom_o->o.ratio : std::nullopt)) dom_o = &r;
    if (larger(r.final_state.ratio, dom_f ? dom_f->final_state.ratio : std::nullopt)) dom_f = &r;
    if (r.net_available && larger(r.o_net.ratio, dom_n ? dom_n->o_net.ratio : std::nullopt)) dom_n = &r;
  }
  if (dom_n && dom_n->o_net.ratio && *dom_n->o_net.ratio > 0) b.dominant_stage_net = dom_n->stage.name;
  if (any) {
    b.sum_o_ratio = so;
    b.sum_final_state_ratio = sf;
  }
  // A stage that adds no error at all does not dominate anything.
  if (dom_o && dom_o->o.ratio && *dom_o->o.ratio > 0) b.dominant_stage = dom_o->stage.name;
  if (dom_f && dom_f->final_state.ratio && *dom_f->final_state.ratio > 0)
    b.dominant_stage_final_state = dom_f->stage.name;
}

std::string fmt_ratio(std::optional<double> x) {
  if (!x) return "n/a";
  return std::isfinite(*x) ? fmt::format("{:.2f}", *x) : "inf";
}
std::string fmt_sci(std::optional<double> x) {
  if (!x) return "n/a";
  return std::isfinite(*x) ? fmt::format("{:.2e}", *x) : "inf";
}

nlohmann::json num(std::optional<double> x) {
  return x && std::isfinite(*x) ? nlohmann::json(*x) : nlohmann::json(nullptr);
}

nlohmann::json to_json(ErrorMeasure const& m, bool whole_case) {
  nlohmann::json j = {{"ratio", num(m.ratio)}, {"rel_error", num(m.rel_error)}};
  if (whole_case) j["floor_ratio_whole_tensor"] = num(m.floor_ratio_whole);
  return j;
}

nlohmann::json to_json(AttributionBlock const& b) {
  nlohmann::json j = nlohmann::json::object();
  if (!b.whole_case) {
    j["sequence"] = b.sequence;
    j["head"] = b.head;
    j["chunk"] = b.chunk;
    j["rows"] = b.rows;
  }
  j["end_to_end"] = {{"o", to_json(b.end_to_end_o, b.whole_case)},
                     {"final_state", to_json(b.end_to_end_final_state, b.whole_case)}};
  nlohmann::json rows = nlohmann::json::array();
  for (auto const& r : b.rows_by_stage) {
    nlohmann::json x = {{"stage", r.stage.name},
                        {"tensors", r.stage.tensors},
                        {"part_of", r.stage.part_of.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.stage.part_of)},
                        {"available", r.available}};
    if (!r.available) {
      x["reason"] = r.reason;
    } else {
      nlohmann::json local = nlohmann::json::object();
      for (auto const& [t, v] : r.local) local[t] = num(v);
      x["local_ratio"] = num(r.local_ratio);
      x["local"] = local;
      x["o"] = to_json(r.o, b.whole_case);
      x["final_state"] = to_json(r.final_state, b.whole_case);
      if (r.stage.part_of.empty()) x["inputs"] = r.stage.inputs;
      if (r.net_available) {
        x["o_net"] = to_json(r.o_net, b.whole_case);
        x["final_state_net"] = to_json(r.final_state_net, b.whole_case);
      }
    }
    rows.push_back(x);
  }
  j["stages"] = rows;
  j["sum_of_stages"] = {{"o_ratio", num(b.sum_o_ratio)}, {"final_state_ratio", num(b.sum_final_state_ratio)}};
  j["linear_sum"] = {{"o", to_json(b.linear_o, b.whole_case)},
                     {"final_state", to_json(b.linear_final_state, b.whole_case)}};
  j["linear_sum_net"] = {{"o", to_json(b.linear_net_o, b.whole_case)},
                         {"final_state", to_json(b.linear_net_final_state, b.whole_case)}};
  j["dominant_stage_net"] = b.dominant_stage_net.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.dominant_stage_net);
  j["dominant_stage"] = b.dominant_stage.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.dominant_stage);
  j["dominant_stage_final_state"] =
      b.dominant_stage_final_state.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.dominant_stage_final_state);
  return j;
}

}  // namespace

std::vector<AttributionStage> const& attribution_stages() {
  static std::vector<AttributionStage> const stages = {
      {"cumsum", {"g_cumsum"}, "", {}},
      {"kkt", {"A"}, "", {"g_cumsum"}},
      {"solve", {"A_inv"}, "", {"A"}},
      {"wu", {"w", "u"}, "", {"g_cumsum", "A_inv"}},
      {"state", {"h", "v_new", "final_state"}, "", {"g_cumsum", "w", "u"}},
      {"output", {"o"}, "", {"g_cumsum", "h", "v_new"}},
      // The parts the previous analysis named: which of w and u, which of h and v_new.
      // (No net effect for a part: its stage's input roundings flow through the other parts too.)
      {"w", {"w"}, "wu", {}},
      {"u", {"u"}, "wu", {}},
      {"h", {"h"}, "state", {}},
      {"v_new", {"v_new"}, "state", {}},
  };
  return stages;
}

Attribution attribution_not_available(std::string reason) {
  Attribution a;
  a.available = false;
  a.reason = std::move(reason);
  return a;
}

Attribution attribute_stages(Problem const& p, ChunkedResult const& ref, StageOutputs const& end_to_end,
                             StageOutputs const& isolated, int worst_chunks, int threads) {
  Attribution a;
  auto const e2e_o = end_to_end.find("o");
  if (e2e_o == end_to_end.end()) return attribution_not_available("the end-to-end run produced no o");
  if (isolated.empty()) return attribution_not_available("no isolated stage outputs");
  a.available = true;
  DType const o_dtype = e2e_o->second.dtype;
  auto const e2e_fs = end_to_end.find("final_state");
  auto const iso_fs = isolated.find("final_state");
  DType const fs_dtype = e2e_fs != end_to_end.end() ? e2e_fs->second.dtype
                         : iso_fs != isolated.end() ? iso_fs->second.dtype
                                                    : DType::f32;

  Comparison const e2e_cmp = compare_outputs(p, ref, end_to_end);
  auto const e2e_rows = index_rows(e2e_cmp);
  Comparison const iso_cmp = compare_outputs(p, ref, isolated);
  auto const iso_rows = index_rows(iso_cmp);

  // One injected run per stage; its o and final_state, measured.
  auto const& stages = attribution_stages();
  std::vector<std::optional<Effect>> effects(stages.size());
  std::vector<std::string> missing(stages.size());
  Tensor lin_o = ref.o, lin_fs = ref.final_state;  // ref + the sum of the whole stages' error vectors
  for (size_t s = 0; s < stages.size(); ++s) {
    StageInjection inj;
    for (auto const& t : stages[s].tensors) {
      auto it = isolated.find(t);
      if (it == isolated.end()) missing[s] += (missing[s].empty() ? "" : ", ") + t;
      else inj.slot(t) = &it->second;
    }
    if (!missing[s].empty()) continue;
    bool const downstream = inj.g_cumsum || inj.A || inj.A_inv || inj.w || inj.u || inj.h || inj.v_new;
    if (downstream) {
      ChunkedOptions co;
      co.threads = threads;
      co.inject = &inj;
      ChunkedResult const r = chunked_forward(p, co);
      effects[s] = measure(p, ref, r.o, r.final_state, o_dtype, fs_dtype);
    } else {  // o or final_state only: nothing downstream to recompute
      effects[s] = measure(p, ref, inj.o ? *inj.o : ref.o, inj.final_state ? *inj.final_state : ref.final_state,
                           o_dtype, fs_dtype);
    }
    if (stages[s].part_of.empty()) {
      Tensor const& eo = effects[s]->out.at("o");
      Tensor const& ef = effects[s]->out.at("final_state");
      for (size_t i = 0; i < lin_o.data.size(); ++i) lin_o.data[i] += eo.data[i] - ref.o.data[i];
      for (size_t i = 0; i < lin_fs.data.size(); ++i) lin_fs.data[i] += ef.data[i] - ref.final_state.data[i];
    }
  }
  Effect const linear = measure(p, ref, lin_o, lin_fs, o_dtype, fs_dtype);

  // Net effects: subtract what the stage's rounded inputs alone do downstream (one run per input set).
  std::map<std::string, Tensor> rounded_inputs;  // the exact intermediate rounded to the dtype its consumer reads
  std::map<std::vector<std::string>, std::optional<ChunkedResult>> input_runs;
  std::vector<std::optional<Effect>> net(stages.size());
  Tensor lin_net_o = ref.o, lin_net_fs = ref.final_state;
  for (size_t s = 0; s < stages.size(); ++s) {
    if (!effects[s] || !stages[s].part_of.empty()) continue;
    Tensor const& eo = effects[s]->out.at("o");
    Tensor const& ef = effects[s]->out.at("final_state");
    Tensor no = eo, nf = ef;  // no inputs (cumsum): the effect itself
    if (!stages[s].inputs.empty()) {
      auto& run = input_runs[stages[s].inputs];
      if (!run) {
        StageInjection inj;
        bool all = true;
        for (auto const& t : stages[s].inputs) {
          auto it = isolated.find(t);
          if (it == isolated.end()) {
            all = false;
            break;
          }
          if (!rounded_inputs.count(t)) {
            Tensor x = reference_tensor(ref, t);
            for (auto& v : x.data) v = round_to(it->second.dtype, v);
            rounded_inputs.emplace(t, std::move(x));
          }
          inj.slot(t) = &rounded_inputs.at(t);
        }
        if (!all) continue;  // an input the isolated run does not expose: its dtype is unknown
        ChunkedOptions co;
        co.threads = threads;
        co.inject = &inj;
        run = chunked_forward(p, co);
      }
      for (size_t i = 0; i < no.data.size(); ++i) no.data[i] = ref.o.data[i] + eo.data[i] - run->o.data[i];
      for (size_t i = 0; i < nf.data.size(); ++i)
        nf.data[i] = ref.final_state.data[i] + ef.data[i] - run->final_state.data[i];
    }
    net[s] = measure(p, ref, no, nf, o_dtype, fs_dtype);
    for (size_t i = 0; i < lin_net_o.data.size(); ++i) lin_net_o.data[i] += no.data[i] - ref.o.data[i];
    for (size_t i = 0; i < lin_net_fs.data.size(); ++i) lin_net_fs.data[i] += nf.data[i] - ref.final_state.data[i];
  }
  Effect const linear_net = measure(p, ref, lin_net_o, lin_net_fs, o_dtype, fs_dtype);

  // The worst chunks of the end-to-end o.
  std::vector<ChunkRow> o_rows;
  for (auto const& r : e2e_cmp.rows)
    if (r.tensor == "o") o_rows.push_back(r);
  std::stable_sort(o_rows.begin(), o_rows.end(), [](ChunkRow const& x, ChunkRow const& y) {
    if (x.finite != y.finite) return !x.finite;
    return x.ratio > y.ratio;
  });
  o_rows.resize(std::min<size_t>(o_rows.size(), static_cast<size_t>(std::max(worst_chunks, 0))));
  auto const all_chunks = p.chunks();

  for (auto const& w : o_rows) {
    AttributionBlock b;
    b.sequence = w.sequence;
    b.head = w.head;
    b.chunk = w.chunk;
    b.rows = w.rows;
    ChunkRef const* cref = nullptr;
    for (auto const& c : all_chunks)
      if (c.sequence == w.sequence && c.chunk == w.chunk) cref = &c;
    auto rel_o = [&](Tensor const& got) { return block_rel_error(p, ref.o, got, false, w.sequence, w.head, cref); };
    auto rel_fs = [&](Tensor const& got) {
      return block_rel_error(p, ref.final_state, got, true, w.sequence, w.head, nullptr);
    };
    b.end_to_end_o = {w.ratio, rel_o(e2e_o->second), std::nullopt};
    if (e2e_fs != end_to_end.end())
      b.end_to_end_final_state = {ratio_at(e2e_rows, "final_state", w.sequence, w.head, -1), rel_fs(e2e_fs->second),
                                  std::nullopt};
    for (size_t s = 0; s < stages.size(); ++s) {
      AttributionRow r;
      r.stage = stages[s];
      if (!effects[s]) {
        r.reason = "the isolated run has no " + missing[s];
        b.rows_by_stage.push_back(r);
        continue;
      }
      r.available = true;
      for (auto const& t : stages[s].tensors) {
        auto const v = ratio_at(iso_rows, t, w.sequence, w.head, t == "final_state" ? -1 : w.chunk);
        r.local.emplace_back(t, v);
        if (larger(v, r.local_ratio)) r.local_ratio = v;
      }
      Effect const& e = *effects[s];
      r.o = {ratio_at(e.rows, "o", w.sequence, w.head, w.chunk), rel_o(e.out.at("o")), std::nullopt};
      r.final_state = {ratio_at(e.rows, "final_state", w.sequence, w.head, -1), rel_fs(e.out.at("final_state")),
                       std::nullopt};
      if (net[s]) {
        r.net_available = true;
        r.o_net = {ratio_at(net[s]->rows, "o", w.sequence, w.head, w.chunk), rel_o(net[s]->out.at("o")), std::nullopt};
        r.final_state_net = {ratio_at(net[s]->rows, "final_state", w.sequence, w.head, -1),
                             rel_fs(net[s]->out.at("final_state")), std::nullopt};
      }
      b.rows_by_stage.push_back(r);
    }
    b.linear_o = {ratio_at(linear.rows, "o", w.sequence, w.head, w.chunk), rel_o(linear.out.at("o")), std::nullopt};
    b.linear_final_state = {ratio_at(linear.rows, "final_state", w.sequence, w.head, -1),
                            rel_fs(linear.out.at("final_state")), std::nullopt};
    b.linear_net_o = {ratio_at(linear_net.rows, "o", w.sequence, w.head, w.chunk), rel_o(linear_net.out.at("o")),
                      std::nullopt};
    b.linear_net_final_state = {ratio_at(linear_net.rows, "final_state", w.sequence, w.head, -1),
                                rel_fs(linear_net.out.at("final_state")), std::nullopt};
    finish_block(b);
    a.chunks.push_back(std::move(b));
  }

  // The whole case: the largest chunk's ratio, the whole tensor's relative error and floor ratio.
  auto whole = [](Comparison const& c, char const* tensor) -> ErrorMeasure {
    auto it = c.metrics.find(tensor);
    if (it == c.metrics.end()) return {};
    return {it->second.max_chunk_ratio, it->second.relative_l2, it->second.floor_ratio};
  };
  AttributionBlock& cs = a.case_summary;
  cs.whole_case = true;
  cs.end_to_end_o = whole(e2e_cmp, "o");
  cs.end_to_end_final_state = whole(e2e_cmp, "final_state");
  for (size_t s = 0; s < stages.size(); ++s) {
    AttributionRow r;
    r.stage = stages[s];
    if (!effects[s]) {
      r.reason = "the isolated run has no " + missing[s];
      cs.rows_by_stage.push_back(r);
      continue;
    }
    r.available = true;
    for (auto const& t : stages[s].tensors) {
      auto it = iso_cmp.metrics.find(t);
      std::optional<double> const v = it == iso_cmp.metrics.end() ? std::nullopt
                                                                  : std::optional<double>(it->second.max_chunk_ratio);
      r.local.emplace_back(t, v);
      if (larger(v, r.local_ratio)) r.local_ratio = v;
    }
    r.o = whole(effects[s]->cmp, "o");
    r.final_state = whole(effects[s]->cmp, "final_state");
    if (net[s]) {
      r.net_available = true;
      r.o_net = whole(net[s]->cmp, "o");
      r.final_state_net = whole(net[s]->cmp, "final_state");
    }
    cs.rows_by_stage.push_back(r);
  }
  cs.linear_o = whole(linear.cmp, "o");
  cs.linear_final_state = whole(linear.cmp, "final_state");
  cs.linear_net_o = whole(linear_net.cmp, "o");
  cs.linear_net_final_state = whole(linear_net.cmp, "final_state");
  finish_block(cs);
  return a;
}

nlohmann::json to_json(Attribution const& a) {
  nlohmann::json j = {{"file", a.file}, {"case", a.case_name}, {"implementation", a.implementation},
                      {"available", a.available}};
  if (!a.available) {
    j["reason"] = a.reason;
    return j;
  }
  j["method"] =
      "each stage's output from the isolated run (exact inputs) injected into the fp64 reference, every other "
      "stage exact; local: the stage's own floor ratio; o, final_state: the error that reaches them";
  nlohmann::json chunks = nlohmann::json::array();
  for (auto const& b : a.chunks) chunks.push_back(to_json(b));
  j["chunks"] = chunks;
  j["case_summary"] = to_json(a.case_summary);
  j["dominant_stage"] = j["case_summary"]["dominant_stage"];
  j["dominant_stage_final_state"] = j["case_summary"]["dominant_stage_final_state"];
  return j;
}

std::string format_attribution(Attribution const& a) {
  std::string s = fmt::format("\nattribution: {} / {}", a.case_name, a.implementation);
  if (!a.available) return s + ": not available (" + a.reason + ")\n";
  s += " (floor ratios; local: the stage's own error on exact inputs; o, fs: what reaches o and final_state when "
       "only this stage is inexact; net: less what its rounded inputs alone do)\n";
  std::vector<std::string> head = {"local max"};
  for (auto const& b : a.chunks) head.push_back(fmt::format("o s{}h{}c{}", b.sequence, b.head, b.chunk));
  for (char const* h : {"o max", "o net max", "o rel_l2", "fs max", "fs net max", "fs rel_l2"}) head.push_back(h);
  s += fmt::format("  {:<18} {:<20}", "stage", "injected");
  for (auto const& h : head) s += fmt::format(" {:>11}", h);
  s += "\n";
  auto const& cs = a.case_summary;
  auto line = [&](std::string const& name, std::string const& tensors, std::string const& local,
                  std::vector<std::string> const& per_chunk, std::vector<std::string> const& tail) {
    s += fmt::format("  {:<18} {:<20} {:>11}", name, tensors, local);
    for (auto const& x : per_chunk) s += fmt::format(" {:>11}", x);
    for (auto const& x : tail) s += fmt::format(" {:>11}", x);
    s += "\n";
  };
  auto per_chunk = [&](auto get) {
    std::vector<std::string> v;
    for (auto const& b : a.chunks) v.push_back(get(b));
    return v;
  };
  for (size_t i = 0; i < cs.rows_by_stage.size(); ++i) {
    auto const& r = cs.rows_by_stage[i];
    std::string tensors;
    for (auto const& t : r.stage.tensors) tensors += (tensors.empty() ? "" : ",") + t;
    std::string const name = r.stage.part_of.empty() ? r.stage.name : "  " + r.stage.part_of + ": " + r.stage.name;
    if (!r.available) {
      s += fmt::format("  {:<18} {:<20} not available ({})\n", name, tensors, r.reason);
      continue;
    }
    line(name, tensors, fmt_ratio(r.local_ratio),
         per_chunk([&](AttributionBlock const& b) { return fmt_ratio(b.rows_by_stage[i].o.ratio); }),
         {fmt_ratio(r.o.ratio), r.net_available ? fmt_ratio(r.o_net.ratio) : "n/a", fmt_sci(r.o.rel_error),
          fmt_ratio(r.final_state.ratio), r.net_available ? fmt_ratio(r.final_state_net.ratio) : "n/a",
          fmt_sci(r.final_state.rel_error)});
  }
  line("linear sum", "whole stages", "", per_chunk([](AttributionBlock const& b) { return fmt_ratio(b.linear_o.ratio); }),
       {fmt_ratio(cs.linear_o.ratio), fmt_ratio(cs.linear_net_o.ratio), fmt_sci(cs.linear_o.rel_error),
        fmt_ratio(cs.linear_final_state.ratio), fmt_ratio(cs.linear_net_final_state.ratio),
        fmt_sci(cs.linear_final_state.rel_error)});
  line("linear sum, net", "whole stages", "",
       per_chunk([](AttributionBlock const& b) { return fmt_ratio(b.linear_net_o.ratio); }), {});
  line("sum of ratios", "whole stages", "", per_chunk([](AttributionBlock const& b) { return fmt_ratio(b.sum_o_ratio); }),
       {fmt_ratio(cs.sum_o_ratio), "", "", fmt_ratio(cs.sum_final_state_ratio)});
  line("end to end", "", "", per_chunk([](AttributionBlock const& b) { return fmt_ratio(b.end_to_end_o.ratio); }),
       {fmt_ratio(cs.end_to_end_o.ratio), "", fmt_sci(cs.end_to_end_o.rel_error), fmt_ratio(cs.end_to_end_final_state.ratio),
        "", fmt_sci(cs.end_to_end_final_state.rel_error)});
  auto name_or_dash = [](std::string const& x) { return x.empty() ? std::string("-") : x; };
  line("dominant", "", "", per_chunk([&](AttributionBlock const& b) { return name_or_dash(b.dominant_stage); }),
       {name_or_dash(cs.dominant_stage), name_or_dash(cs.dominant_stage_net), "",
        name_or_dash(cs.dominant_stage_final_state)});
  line("dominant, net", "", "", per_chunk([&](AttributionBlock const& b) { return name_or_dash(b.dominant_stage_net); }),
       {});
  return s;
}

}  // namespace gdnv
