#include "reports/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "reports/assets.hpp"

namespace gdnv::reports {

BadField::BadField(std::string file, std::string field, std::string detail)
    : std::runtime_error(file + ": field '" + field + "': " + detail),
      file_(std::move(file)),
      field_(std::move(field)),
      detail_(std::move(detail)) {}

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Reading: a JSON node that knows its file and path, so every complaint names both.

class Node {
 public:
  Node(std::string const& file, json const& j, std::string path) : file_(&file), j_(&j), path_(std::move(path)) {}

  [[noreturn]] void fail(std::string const& detail) const { throw BadField(*file_, path_.empty() ? "(top level)" : path_, detail); }
  json const& raw() const { return *j_; }
  std::string const& path() const { return path_; }

  std::optional<Node> find(char const* key) const {
    if (!j_->is_object()) fail("expected an object");
    auto it = j_->find(key);
    if (it == j_->end() || it->is_null()) return std::nullopt;
    return Node(*file_, *it, child(key));
  }
  Node operator[](char const* key) const {
    if (!j_->is_object()) fail("expected an object");
    auto it = j_->find(key);
    if (it == j_->end()) Node(*file_, *j_, child(key)).fail("missing");
    return Node(*file_, *it, child(key));
  }
  std::vector<Node> items() const {
    if (!j_->is_array()) fail("expected an array");
    std::vector<Node> out;
    for (size_t i = 0; i < j_->size(); ++i) out.emplace_back(*file_, (*j_)[i], path_ + "[" + std::to_string(i) + "]");
    return out;
  }
  std::vector<std::pair<std::string, Node>> members() const {
    if (!j_->is_object()) fail("expected an object");
    std::vector<std::pair<std::string, Node>> out;
    for (auto it = j_->begin(); it != j_->end(); ++it) out.emplace_back(it.key(), Node(*file_, it.value(), child(it.key())));
    return out;
  }
  std::string str() const {
    if (!j_->is_string()) fail("expected a string");
    return j_->get<std::string>();
  }
  double num() const {
    if (!j_->is_number()) fail("expected a number");
    return j_->get<double>();
  }
  std::optional<double> num_or_null() const {
    if (j_->is_null()) return std::nullopt;
    return num();
  }
  int64_t integer() const {
    if (!j_->is_number_integer()) fail("expected an integer");
    return j_->get<int64_t>();
  }
  bool boolean() const {
    if (!j_->is_boolean()) fail("expected true or false");
    return j_->get<bool>();
  }
  // Optional typed members: absent or null gives nothing, a wrong type is an error.
  std::optional<double> opt_num(char const* key) const {
    auto n = find(key);
    return n ? std::optional<double>(n->num()) : std::nullopt;
  }
  std::string opt_str(char const* key, std::string def = {}) const {
    auto n = find(key);
    return n ? n->str() : def;
  }

 private:
  std::string child(std::string const& key) const { return path_.empty() ? key : path_ + "." + key; }
  std::string const* file_;
  json const* j_;
  std::string path_;
};

struct ChunkIn {
  std::string tensor;
  int64_t seq = 0, head = 0, chunk = 0, rows = 0;
  std::optional<double> ratio, error_norm, floor_norm;
  bool floor_from_u = false, finite = true;
};

struct MetricsIn {
  std::string tensor, dtype, floor_dtype;
  std::optional<double> chunks, nonfinite, rel_rms, max_abs, relative_l2, floor_ratio, max_chunk_ratio,
      median_chunk_ratio;
};

struct ResultIn {
  std::string file, case_name, impl, arithmetic, disposition, reason;
  std::optional<ChunkIn> worst;
  std::vector<MetricsIn> metrics;
  bool has_chunks = false;
  std::vector<ChunkIn> chunks;
};

// Fused kernels against the unfused pipeline (`pairs`): how many values are bit-equal.
struct PairIn {
  std::string case_name, impl, against;
  struct Tensor {
    std::string name;
    std::optional<double> elements, bit_equal, fraction, max_abs_diff;
  };
  std::vector<Tensor> tensors;
};

// Stage attribution (`gdnv check --attribution`): per (case, implementation), each stage's own error and
// what reaches o and final_state when only that stage is inexact, on the worst chunks and the whole case.
struct AttributionIn {
  struct Measure {
    std::optional<double> ratio, rel_error;
  };
  struct Stage {
    std::string name, tensors, part_of, reason;
    bool available = false;
    std::optional<double> local_ratio;
    Measure o, final_state, o_net, final_state_net;  // net: absent for parts
  };
  struct Block {
    std::string label;  // "s0 h1 c2", or "case"
    Measure e2e_o, e2e_fs, linear_o, linear_fs, linear_net_o, linear_net_fs;
    std::optional<double> sum_o, sum_fs;
    std::string dominant, dominant_fs, dominant_net;
    std::vector<Stage> stages;
  };
  std::string case_name, impl, reason;
  bool available = false;
  std::vector<Block> chunks;
  Block summary;
};

struct ResultsIn {
  std::string path, tool, version, command;
  std::vector<PairIn> pairs;
  std::vector<AttributionIn> attribution;
  double max_floor_ratio = 8;
  std::vector<std::string> files;
  std::vector<json> cases;
  std::vector<ResultIn> results;
  std::optional<double> passed, failed, other;
};

ChunkIn read_chunk(Node const& n, bool worst) {
  ChunkIn c;
  c.tensor = n["tensor"].str();
  c.seq = n["sequence"].integer();
  c.head = n["head"].integer();
  c.chunk = n["chunk"].integer();
  c.ratio = n["ratio"].num_or_null();
  if (auto f = n.find("finite")) c.finite = f->boolean();
  if (!worst) {
    if (auto r = n.find("rows")) c.rows = r->integer();
    c.error_norm = n.opt_num("error_norm");
    c.floor_norm = n.opt_num("floor_norm");
    if (auto f = n.find("floor_from_u")) c.floor_from_u = f->boolean();
  }
  return c;
}

AttributionIn::Measure read_measure(Node const& n) {
  return {n.opt_num("ratio"), n.opt_num("rel_error")};
}

AttributionIn::Block read_attribution_block(Node const& n, bool whole_case) {
  AttributionIn::Block b;
  b.label = whole_case ? "case" : fmt::format("s{} h{} c{}", n["sequence"].integer(), n["head"].integer(),
                                               n["chunk"].integer());
  b.e2e_o = read_measure(n["end_to_end"]["o"]);
  b.e2e_fs = read_measure(n["end_to_end"]["final_state"]);
  b.linear_o = read_measure(n["linear_sum"]["o"]);
  b.linear_fs = read_measure(n["linear_sum"]["final_state"]);
  if (auto ln = n.find("linear_sum_net")) {
    b.linear_net_o = read_measure((*ln)["o"]);
    b.linear_net_fs = read_measure((*ln)["final_state"]);
  }
  b.dominant_net = n.opt_str("dominant_stage_net");
  b.sum_o = n["sum_of_stages"].opt_num("o_ratio");
  b.sum_fs = n["sum_of_stages"].opt_num("final_state_ratio");
  b.dominant = n.opt_str("dominant_stage");
  b.dominant_fs = n.opt_str("dominant_stage_final_state");
  for (auto const& s : n["stages"].items()) {
    AttributionIn::Stage x;
    x.name = s["stage"].str();
    for (auto const& t : s["tensors"].items()) x.tensors += (x.tensors.empty() ? "" : ", ") + t.str();
    x.part_of = s.opt_str("part_of");
    x.available = s["available"].boolean();
    x.reason = s.opt_str("reason");
    if (x.available) {
      x.local_ratio = s.opt_num("local_ratio");
      x.o = read_measure(s["o"]);
      x.final_state = read_measure(s["final_state"]);
      if (auto on = s.find("o_net")) x.o_net = read_measure(*on);
      if (auto fn = s.find("final_state_net")) x.final_state_net = read_measure(*fn);
    }
    b.stages.push_back(std::move(x));
  }
  return b;
}

ResultsIn read_results(JsonFile const& f) {
  Node const top(f.path, f.json, "");
  if (!f.json.is_object()) top.fail("expected a JSON object (the file `gdnv check --json` writes)");
  ResultsIn r;
  r.path = f.path;
  r.tool = top.opt_str("tool");
  r.version = top.opt_str("version");
  r.command = top.opt_str("command");
  r.max_floor_ratio = top["max_floor_ratio"].num();
  if (auto files = top.find("files"))
    for (auto const& x : files->items()) r.files.push_back(x.str());
  if (auto cases = top.find("cases"))
    for (auto const& c : cases->items()) {
      c["case"].str();
      r.cases.push_back(c.raw());
    }
  for (auto const& n : top["results"].items()) {
    ResultIn x;
    x.file = n["file"].str();
    x.case_name = n["case"].str();
    x.impl = n["implementation"].str();
    x.disposition = n["disposition"].str();
    x.arithmetic = n.opt_str("arithmetic");
    x.reason = n.opt_str("reason");
    if (auto w = n.find("worst")) x.worst = read_chunk(*w, true);
    if (auto m = n.find("metrics"))
      for (auto const& [name, t] : m->members()) {
        MetricsIn mi;
        mi.tensor = name;
        mi.dtype = t.opt_str("dtype");
        mi.floor_dtype = t.opt_str("floor_dtype");
        mi.chunks = t.opt_num("chunks");
        mi.nonfinite = t.opt_num("nonfinite");
        mi.rel_rms = t.opt_num("rel_rms");
        mi.max_abs = t.opt_num("max_abs");
        mi.relative_l2 = t.opt_num("relative_l2");
        mi.floor_ratio = t.opt_num("floor_ratio");
        mi.max_chunk_ratio = t.opt_num("max_chunk_ratio");
        mi.median_chunk_ratio = t.opt_num("median_chunk_ratio");
        x.metrics.push_back(mi);
      }
    if (auto c = n.find("chunks")) {
      x.has_chunks = true;
      for (auto const& row : c->items()) x.chunks.push_back(read_chunk(row, false));
    }
    r.results.push_back(std::move(x));
  }
  if (auto pairs = top.find("pairs"))
    for (auto const& n : pairs->items()) {
      PairIn p;
      p.case_name = n["case"].str();
      p.impl = n["implementation"].str();
      p.against = n["against"].str();
      for (auto const& [name, t] : n["tensors"].members())
        p.tensors.push_back({name, t.opt_num("elements"), t.opt_num("bit_equal"), t.opt_num("bit_equal_fraction"),
                             t.opt_num("max_abs_diff")});
      r.pairs.push_back(std::move(p));
    }
  if (auto att = top.find("attribution"))
    for (auto const& n : att->items()) {
      AttributionIn a;
      a.case_name = n["case"].str();
      a.impl = n["implementation"].str();
      a.available = n["available"].boolean();
      a.reason = n.opt_str("reason");
      if (a.available) {
        for (auto const& c : n["chunks"].items()) a.chunks.push_back(read_attribution_block(c, false));
        a.summary = read_attribution_block(n["case_summary"], true);
      }
      r.attribution.push_back(std::move(a));
    }
  if (auto s = top.find("summary")) {
    r.passed = s->opt_num("passed");
    r.failed = s->opt_num("failed");
    r.other = s->opt_num("other");
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Formatting

std::string esc(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string g4(std::optional<double> x) {
  if (!x) return "-";
  if (*x == std::floor(*x) && std::fabs(*x) < 1e15) return fmt::format("{:.0f}", *x);
  return fmt::format("{:.4g}", *x);
}
std::string sci(std::optional<double> x) { return x ? fmt::format("{:.3e}", *x) : "-"; }
std::string ratio_str(std::optional<double> x, bool finite = true) {
  if (!finite) return "non-finite";
  if (!x) return "-";
  if (*x != 0 && (std::fabs(*x) < 0.01 || std::fabs(*x) >= 1e5)) return fmt::format("{:.2e}", *x);
  return fmt::format("{:.2f}", *x);
}
// Chart data keeps 5 significant digits: enough for any axis, and the page stays small.
json chart_num(double x) {
  if (!std::isfinite(x)) return nullptr;
  return std::stod(fmt::format("{:.5g}", x));
}

std::string where_str(ChunkIn const& w) {
  if (w.chunk < 0) return fmt::format("{} seq {} head {} (final)", w.tensor, w.seq, w.head);
  return fmt::format("{} seq {} head {} chunk {}", w.tensor, w.seq, w.head, w.chunk);
}

std::string shell_quote(std::string const& s) {
  bool plain = !s.empty();
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_./:=,+-@%").find(c) != std::string_view::npos))
      plain = false;
  if (plain) return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

// The command that reproduces one result: captured groups are always checked, our own
// implementations need --impl (their [isolated] variant comes with them).
std::string repro_command(ResultIn const& r, double max_floor_ratio) {
  std::string cmd = "gdnv check " + shell_quote(r.file) + " --case " + shell_quote(r.case_name);
  if (r.impl.rfind("captured:", 0) != 0) {
    std::string impl = r.impl;
    if (auto p = impl.find('['); p != std::string::npos) impl.resize(p);
    cmd += " --impl " + shell_quote(impl);
  }
  if (max_floor_ratio != 8.0) cmd += fmt::format(" --max-floor-ratio {:g}", max_floor_ratio);
  return cmd;
}

std::string badge(std::string const& disposition) {
  // explained: above the floor gate but inside the componentwise bounds (a pass, told apart)
  std::string cls = disposition == "passed" ? "ok" : disposition == "explained" ? "expl"
                    : (disposition == "failed" || disposition == "error") ? "bad" : "skip";
  return fmt::format("<span class=\"badge {}\">{}</span>", cls, esc(disposition));
}

// A plain HTML table; cells are HTML already (escape text with esc()).
struct Table {
  std::vector<std::string> head;
  std::vector<bool> numeric;  // right-aligned columns
  std::vector<std::vector<std::string>> rows;
  std::string id, cls;
};

void put_table(std::string& o, Table const& t) {
  o += "<table";
  if (!t.id.empty()) o += " id=\"" + t.id + "\"";
  if (!t.cls.empty()) o += " class=\"" + t.cls + "\"";
  o += "><thead><tr>";
  for (size_t i = 0; i < t.head.size(); ++i)
    o += (i < t.numeric.size() && t.numeric[i] ? "<th class=\"n\">" : "<th>") + t.head[i] + "</th>";
  o += "</tr></thead><tbody>\n";
  for (auto const& r : t.rows) {
    o += "<tr>";
    for (size_t i = 0; i < r.size(); ++i) o += (i < t.numeric.size() && t.numeric[i] ? "<td class=\"n\">" : "<td>") + r[i];
    o += "\n";
  }
  o += "</tbody></table>\n";
}

// A dataset as the page stores it: field names once, rows as arrays, and string fields as indices
// into a per-field list of their distinct values (the page's script expands it before embedding).
json compact_rows(json const& rows) {
  std::vector<std::string> fields;
  if (!rows.empty())
    for (auto it = rows.front().begin(); it != rows.front().end(); ++it) fields.push_back(it.key());
  json strings = json::object();
  std::vector<std::map<std::string, size_t>> index(fields.size());
  std::vector<bool> is_string(fields.size(), true);
  for (auto const& r : rows)
    for (size_t f = 0; f < fields.size(); ++f) {
      auto it = r.find(fields[f]);
      if (it == r.end() || !it->is_string()) is_string[f] = false;
    }
  json out_rows = json::array();
  for (auto const& r : rows) {
    json a = json::array();
    for (size_t f = 0; f < fields.size(); ++f) {
      auto it = r.find(fields[f]);
      if (it == r.end()) {
        a.push_back(nullptr);
      } else if (is_string[f]) {
        auto [pos, added] = index[f].emplace(it->get<std::string>(), index[f].size());
        if (added) strings[fields[f]].push_back(it->get<std::string>());
        a.push_back(pos->second);
      } else {
        a.push_back(*it);
      }
    }
    out_rows.push_back(std::move(a));
  }
  return {{"fields", fields}, {"strings", strings}, {"rows", out_rows}};
}

// JSON inside <script>: "</" must not close the element.
std::string script_json(json const& j) {
  std::string s = j.dump();
  std::string o;
  o.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' && i + 1 < s.size() && (s[i + 1] == '/' || s[i + 1] == '!')) {
      o += "\\u003c";
      continue;
    }
    o += s[i];
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Bench files (`gdnv bench --json`): per-stage times against the memory floor, per-chunk times.

struct BenchEntry {
  std::string kind, name, note;
  Node const* node = nullptr;
  std::optional<double> bytes_total, flops, floor_us, fla_us, fla_fused_us, unfused_floor_us, target_us;
  std::optional<double> cold_median, cold_p10, cold_p90, cold_min, cold_max, cold_n, warm_median, warm_p10, warm_p90;
  std::optional<double> x_floor_cold, x_floor_warm, x_fla_cold, x_fla_fused_cold, x_unfused_floor_cold, gbps_cold,
      tflops_cold;
};

struct PerChunkIn {
  std::string stage, grid, block_is;
  struct Side {
    bool present = false;
    std::optional<double> blocks, samples, min, p50, p90, p99, max, mean, span, with_times, without_times,
        in_flight, step_p50;
    std::vector<double> edges, counts;
  } cold, warm;
};

struct BenchConfig {
  std::string label, status;
  std::vector<BenchEntry> entries;
  std::vector<PerChunkIn> per_chunk;
};

struct BenchIn {
  std::string path, device, git, status;
  std::optional<double> copy_gbps;
  std::vector<std::pair<std::string, std::string>> method;
  std::vector<BenchConfig> configs;
};

PerChunkIn::Side read_side(Node const& n) {
  PerChunkIn::Side s;
  s.present = true;
  if (auto b = n.find("block_us")) {
    s.min = b->opt_num("min");
    s.p50 = b->opt_num("p50");
    s.p90 = b->opt_num("p90");
    s.p99 = b->opt_num("p99");
    s.max = b->opt_num("max");
    s.mean = b->opt_num("mean");
  }
  s.blocks = n.opt_num("blocks");
  s.samples = n.opt_num("samples");
  s.span = n.opt_num("kernel_span_us_median");
  s.with_times = n.opt_num("event_us_with_block_times_median");
  s.without_times = n.opt_num("event_us_without_block_times_median");
  s.in_flight = n.opt_num("mean_blocks_in_flight");
  s.step_p50 = n.opt_num("per_chunk_step_us_p50");
  if (auto h = n.find("histogram")) {
    for (auto const& e : (*h)["edges_us"].items()) s.edges.push_back(e.num());
    for (auto const& c : (*h)["counts"].items()) s.counts.push_back(c.num());
    if (s.edges.size() != s.counts.size() + 1) (*h)["edges_us"].fail("expected one more edge than counts");
  }
  return s;
}

BenchIn read_bench(JsonFile const& f) {
  Node const top(f.path, f.json, "");
  if (!f.json.is_object()) top.fail("expected a JSON object (the file `gdnv bench --json` writes)");
  BenchIn b;
  b.path = f.path;
  b.status = top.opt_str("status");
  if (auto d = top.find("device")) b.device = d->opt_str("name");
  if (auto g = top.find("git")) b.git = g->opt_str("commit");
  if (auto c = top.find("copy_bandwidth")) b.copy_gbps = c->opt_num("GBps");
  if (auto m = top.find("method"))
    for (auto const& [k, v] : m->members())
      if (v.raw().is_string()) b.method.emplace_back(k, v.str());
  for (auto const& c : top["configs"].items()) {
    BenchConfig cfg;
    cfg.status = c.opt_str("status");
    std::string label = c.opt_str("shape");
    for (char const* dim : {"B", "T", "H", "HV", "K", "V"})
      if (auto v = c.opt_num(dim)) label += fmt::format("{}{}={}", label.empty() ? "" : " ", dim, g4(v));
    cfg.label = label.empty() ? c.path() : label;
    if (auto entries = c.find("entries"))
      for (auto const& e : entries->items()) {
        BenchEntry x;
        x.kind = e["kind"].str();
        x.name = e["name"].str();
        x.note = e.opt_str("note");
        if (auto by = e.find("bytes")) x.bytes_total = by->opt_num("total");
        x.flops = e.opt_num("flops");
        x.floor_us = e.opt_num("floor_us");
        x.fla_us = e.opt_num("fla_us");
        x.fla_fused_us = e.opt_num("fla_fused_us");
        x.unfused_floor_us = e.opt_num("unfused_floor_us");
        x.target_us = e.opt_num("issue4_target_us");
        if (auto cold = e.find("cold")) {
          x.cold_median = cold->opt_num("median");
          x.cold_p10 = cold->opt_num("p10");
          x.cold_p90 = cold->opt_num("p90");
          x.cold_min = cold->opt_num("min");
          x.cold_max = cold->opt_num("max");
          x.cold_n = cold->opt_num("n");
          x.x_floor_cold = cold->opt_num("x_floor");
          x.x_fla_cold = cold->opt_num("x_fla");
          x.x_fla_fused_cold = cold->opt_num("x_fla_fused");
          x.x_unfused_floor_cold = cold->opt_num("x_unfused_floor");
          x.gbps_cold = cold->opt_num("GBps");
          x.tflops_cold = cold->opt_num("TFLOPs");
        }
        if (auto warm = e.find("warm")) {
          x.warm_median = warm->opt_num("median");
          x.warm_p10 = warm->opt_num("p10");
          x.warm_p90 = warm->opt_num("p90");
          x.x_floor_warm = warm->opt_num("x_floor");
        }
        cfg.entries.push_back(std::move(x));
      }
    if (auto pcs = c.find("per_chunk"))
      for (auto const& p : pcs->items()) {
        PerChunkIn x;
        x.stage = p.opt_str("stage", p.opt_str("grid", p.path()));
        x.grid = p.opt_str("grid");
        x.block_is = p.opt_str("block_is");
        if (auto s = p.find("cold")) x.cold = read_side(*s);
        if (auto s = p.find("warm")) x.warm = read_side(*s);
        cfg.per_chunk.push_back(std::move(x));
      }
    b.configs.push_back(std::move(cfg));
  }
  return b;
}

std::string base_name(std::string const& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// ---------------------------------------------------------------------------------------------
// Charts (Vega-Lite v6). Every spec names its data; the page supplies `datasets`.

constexpr char const* kSchema = "https://vega.github.io/schema/vega-lite/v6.json";

json log_ratio_axis(std::string const& title) {
  return {{"field", "ratio"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}}, {"title", title}};
}

json threshold_rule(double max_ratio) {
  return {{"data", {{"values", json::array({{{"threshold", max_ratio}}})}}},
          {"mark", {{"type", "rule"}, {"color", "#c0392b"}, {"strokeDash", {4, 3}}}},
          {"encoding", {{"x", {{"field", "threshold"}, {"type", "quantitative"}}}}}};
}

Chart ratio_distribution(double max_ratio) {
  json ticks = {
      {"mark", {{"type", "tick"}, {"opacity", 0.6}, {"thickness", 1.5}}},
      {"transform", json::array({{{"filter", "isValid(datum.ratio) && datum.ratio > 0"}}})},
      {"encoding",
       {{"x", log_ratio_axis("floor ratio per chunk (error / bf16-rounding floor), log")},
        {"y", {{"field", "impl"}, {"type", "nominal"}, {"title", nullptr}}},
        {"color", {{"field", "tensor"}, {"type", "nominal"}, {"title", "tensor"}}},
        {"tooltip",
         json::array({{{"field", "case"}}, {{"field", "impl"}}, {{"field", "tensor"}}, {{"field", "seq"}},
                      {{"field", "head"}, {"title", "value head"}}, {{"field", "chunk"}},
                      {{"field", "ratio"}, {"format", ".3f"}}})}}}};
  json spec = {{"$schema", kSchema},
               {"data", {{"name", "chunks"}}},
               {"width", 720},
               {"height", {{"step", 26}}},
               {"layer", json::array({ticks, threshold_rule(max_ratio)})}};
  return {"chart-distribution", "Floor ratio of every chunk, per implementation",
          fmt::format("One tick per (tensor, sequence, value head, chunk), all cases together; the dashed line "
                      "is the pass threshold ({:g}). A tick right of it fails the implementation.",
                      max_ratio),
          spec};
}

Chart worst_per_case(double max_ratio) {
  json points = {
      {"mark", {{"type", "point"}, {"filled", true}, {"size", 80}}},
      {"transform", json::array({{{"filter", "isValid(datum.ratio) && datum.ratio > 0"}}})},
      {"encoding",
       {{"x", log_ratio_axis("worst chunk floor ratio, log")},
        {"y", {{"field", "case"}, {"type", "nominal"}, {"title", nullptr}}},
        {"color", {{"field", "impl"}, {"type", "nominal"}, {"title", "implementation"}, {"legend", {{"labelLimit", 360}}}}},
        {"shape", {{"field", "impl"}, {"type", "nominal"}, {"title", "implementation"}}},
        {"tooltip", json::array({{{"field", "case"}}, {{"field", "impl"}}, {{"field", "where"}, {"title", "worst chunk"}},
                                 {{"field", "ratio"}, {"format", ".3f"}}, {{"field", "disposition"}}})}}}};
  json spec = {{"$schema", kSchema},
               {"data", {{"name", "results"}}},
               {"width", 720},
               {"height", {{"step", 34}}},
               {"layer", json::array({points, threshold_rule(max_ratio)})}};
  return {"chart-worst", "Worst chunk per case: implementations side by side",
          "Each point is the worst (tensor, sequence, value head, chunk) of one implementation on one case: "
          "unfused, fused and baseline kernels against the captured references.",
          spec};
}

// The cell of a value head x chunk heat map: one square per (sequence, chunk) across (from the `at` and
// `order` fields the caller's transform computes) and value head down, coloured by `field` on a log scale.
json heat_cell(int64_t heads, std::string const& field, std::string const& scheme, std::string const& title,
               json tooltip) {
  return {{"width", {{"step", 11}}},
          // a fixed height: Vega-Lite 6 fails on step heights with independent facet scales
          {"height", std::clamp<int64_t>(11 * heads, 22, 400)},
          {"mark", "rect"},
          {"encoding",
           {{"x", {{"field", "at"}, {"type", "ordinal"}, {"sort", {{"field", "order"}, {"op", "min"}}},
                   {"title", nullptr}, {"axis", {{"labels", false}, {"ticks", false}}}}},
            {"y", {{"field", "head"}, {"type", "ordinal"}, {"title", nullptr}}},
            {"color", {{"field", field}, {"type", "quantitative"}, {"scale", {{"type", "log"}, {"scheme", scheme}}},
                       {"title", title}}},
            {"tooltip", std::move(tooltip)}}}};
}

Chart heat_map(std::vector<std::string> const& tensors, int64_t heads) {
  std::string def = std::find(tensors.begin(), tensors.end(), "o") != tensors.end() ? "o" : tensors.front();
  json options = json::array();
  for (auto const& t : tensors) options.push_back(t);
  json spec = {
      {"$schema", kSchema},
      {"data", {{"name", "chunks"}}},
      {"params", json::array({{{"name", "tensor_shown"},
                               {"value", def},
                               {"bind", {{"input", "select"}, {"options", options}, {"name", "tensor "}}}}})},
      {"transform",
       json::array({{{"filter", "datum.tensor == tensor_shown && isValid(datum.ratio) && datum.ratio > 0"}},
                    {{"calculate", "'s' + datum.seq + (datum.chunk < 0 ? ' final' : ' c' + datum.chunk)"}, {"as", "at"}},
                    {{"calculate", "datum.seq * 100000 + datum.chunk"}, {"as", "order"}}})},
      {"facet",
       {{"row", {{"field", "impl"}, {"type", "nominal"}, {"title", nullptr}, {"header", {{"labelAngle", 0}, {"labelAlign", "left"}}}}},
        {"column", {{"field", "case"}, {"type", "nominal"}, {"title", nullptr}}}}},
      {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
      {"spec", heat_cell(heads, "ratio", "viridis", "floor ratio",
                         json::array({{{"field", "case"}}, {{"field", "impl"}}, {{"field", "tensor"}}, {{"field", "seq"}},
                                      {{"field", "head"}, {"title", "value head"}}, {{"field", "chunk"}},
                                      {{"field", "ratio"}, {"format", ".3f"}}}))}};
  return {"chart-heatmap", "Value head x chunk heat map of the floor ratio",
          "Rows: implementations; columns: cases; inside each cell, one square per (sequence, chunk) across "
          "and value head down. Pick the tensor with the selector (default o). Chunks of a sequence run left to right.",
          spec};
}

// Every other kernel against the unfused pipeline, chunk by chunk: the chunk rows pivoted to one
// column per implementation (a layout step; no number is derived), one point per chunk.
Chart against_unfused(std::vector<std::string> const& others, double lo, double hi) {
  json fold = json::array();
  for (auto const& o : others) fold.push_back(o);
  json points = {
      {"transform",
       json::array({{{"filter", "isValid(datum.ratio) && datum.ratio > 0"}},
                    {{"pivot", "impl"}, {"value", "ratio"}, {"groupby", {"case", "tensor", "seq", "head", "chunk"}}},
                    {{"fold", fold}, {"as", {"kernel", "ratio"}}},
                    {{"filter", "isValid(datum.unfused) && isValid(datum.ratio)"}}})},
      {"mark", {{"type", "point"}, {"filled", true}, {"size", 18}, {"opacity", 0.6}}},
      {"encoding",
       {{"x", {{"field", "unfused"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}},
               {"title", "unfused: floor ratio of the chunk, log"}}},
        {"y", {{"field", "ratio"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}},
               {"title", "the other kernel: floor ratio of the same chunk, log"}}},
        {"color", {{"field", "kernel"}, {"type", "nominal"}, {"title", "kernel"}}},
        {"tooltip", json::array({{{"field", "case"}}, {{"field", "tensor"}}, {{"field", "seq"}},
                                 {{"field", "head"}, {"title", "value head"}}, {{"field", "chunk"}},
                                 {{"field", "kernel"}}, {{"field", "ratio"}, {"format", ".3f"}},
                                 {{"field", "unfused"}, {"format", ".3f"}}})}}}};
  json diagonal = {{"data", {{"values", json::array({{{"v", lo}}, {{"v", hi}}})}}},
                   {"mark", {{"type", "line"}, {"color", "#888888"}, {"strokeDash", {3, 3}}}},
                   {"encoding", {{"x", {{"field", "v"}, {"type", "quantitative"}}},
                                 {"y", {{"field", "v"}, {"type", "quantitative"}}}}}};
  json spec = {{"$schema", kSchema}, {"data", {{"name", "chunks"}}}, {"width", 420}, {"height", 420},
               {"layer", json::array({diagonal, points})}};
  return {"chart-against-unfused", "Chunk by chunk against the unfused pipeline",
          "One point per (case, tensor, sequence, value head, chunk) both compute: on the dashed diagonal the "
          "two have the same error; above it the other kernel is less accurate on that chunk.",
          spec};
}

// kappa_inf of every chunk's I + A as a value head x chunk heat map per case, laid out like heat_map so
// the two read side by side (conditioning depends on the inputs only: one row of cells per case).
Chart conditioning_heat_map(int64_t heads) {
  json spec = {
      {"$schema", kSchema},
      {"data", {{"name", "conditioning_rows"}}},
      {"transform",
       json::array({{{"filter", "isValid(datum.kappa_inf) && datum.kappa_inf > 0"}},
                    {{"calculate", "'s' + datum.seq + ' c' + datum.chunk"}, {"as", "at"}},
                    {{"calculate", "datum.seq * 100000 + datum.chunk"}, {"as", "order"}}})},
      {"facet", {{"column", {{"field", "case"}, {"type", "nominal"}, {"title", nullptr}}}}},
      {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
      {"spec", heat_cell(heads, "kappa_inf", "inferno", "kappa_inf",
                         json::array({{{"field", "case"}}, {{"field", "seq"}}, {{"field", "head"}, {"title", "value head"}},
                                      {{"field", "chunk"}}, {{"field", "kappa_inf"}, {"format", ".3g"}},
                                      {{"field", "skeel"}, {"format", ".3g"}}}))}};
  return {"chart-conditioning-heatmap", "Value head x chunk heat map of the conditioning",
          "kappa_inf of I + A per (sequence, chunk) across and value head down, one panel per case, laid out as "
          "the floor-ratio heat map above.",
          spec};
}

// The floor ratio of every chunk against the conditioning of its I + A (kappa_inf from the results
// file's cases[].conditioning, joined by case, sequence, value head and chunk), log-log.
Chart error_vs_conditioning() {
  json spec = {
      {"$schema", kSchema},
      {"data", {{"name", "conditioning"}}},
      {"transform", json::array({{{"filter", "isValid(datum.ratio) && datum.ratio > 0 && datum.kappa_inf > 0"}}})},
      {"facet", {{"column", {{"field", "tensor"}, {"type", "nominal"}, {"title", nullptr}}}}},
      {"spec",
       {{"width", 300},
        {"height", 260},
        {"mark", {{"type", "point"}, {"filled", true}, {"size", 22}, {"opacity", 0.6}}},
        {"encoding",
         {{"x", {{"field", "kappa_inf"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}},
                 {"title", "kappa_inf of I + A (chunk), log"}}},
          {"y", log_ratio_axis("floor ratio of the chunk, log")},
          {"color", {{"field", "impl"}, {"type", "nominal"}, {"title", "implementation"}}},
          {"tooltip", json::array({{{"field", "case"}}, {{"field", "impl"}}, {{"field", "tensor"}}, {{"field", "seq"}},
                                   {{"field", "head"}, {"title", "value head"}}, {{"field", "chunk"}},
                                   {{"field", "kappa_inf"}, {"format", ".3g"}}, {{"field", "skeel"}, {"format", ".3g"}},
                                   {{"field", "ratio"}, {"format", ".3f"}}})}}}}}};
  return {"chart-conditioning", "Error against conditioning",
          "One point per (case, implementation, sequence, value head, chunk) for A_inv and o: the chunk's floor "
          "ratio against kappa_inf of its I + A. A kernel whose error grows with kappa much faster than the others' "
          "loses accuracy on ill-conditioned chunks.",
          spec};
}

Chart stage_attribution() {
  json spec = {
      {"$schema", kSchema},
      {"data", {{"name", "isolation"}}},
      {"transform", json::array({{{"filter", "isValid(datum.ratio) && datum.ratio > 0"}}})},
      {"facet", {{"column", {{"field", "case"}, {"type", "nominal"}, {"title", nullptr}}},
                 {"row", {{"field", "kernel"}, {"type", "nominal"}, {"title", nullptr}}}}},
      {"spec",
       {{"width", {{"step", 8}}},  // per mode: xOffset splits each tensor's band
        {"height", 140},
        // points, not bars: a log axis has no zero to grow bars from
        {"mark", {{"type", "point"}, {"filled", true}, {"size", 50}}},
        {"encoding",
         {{"x", {{"field", "tensor"}, {"type", "nominal"}, {"title", nullptr}}},
          {"xOffset", {{"field", "mode"}, {"type", "nominal"}}},
          {"y", {{"field", "ratio"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}},
                 {"title", "worst ratio"}}},
          {"color", {{"field", "mode"}, {"type", "nominal"}, {"title", "stage inputs"}}},
          {"shape", {{"field", "mode"}, {"type", "nominal"}, {"title", "stage inputs"}}},
          {"tooltip", json::array({{{"field", "case"}}, {{"field", "impl"}}, {{"field", "tensor"}},
                                   {{"field", "ratio"}, {"format", ".3f"}}})}}}}}};
  return {"chart-attribution", "Stage attribution: end to end against every stage fed the reference's inputs",
          "For each tensor the worst chunk's floor ratio (the results file's max_chunk_ratio, log axis) when the "
          "implementation runs end to end, and when each stage gets the fp64 reference's inputs ([isolated]). "
          "A stage whose isolated error is as large as its end-to-end error made that error itself.",
          spec};
}

Chart times_chart() {
  json spec = {
      {"$schema", kSchema},
      {"data", {{"name", "bench_times"}}},
      {"facet", {{"row", {{"field", "config"}, {"type", "nominal"}, {"title", nullptr},
                          {"header", {{"labelAngle", 0}, {"labelAlign", "left"}, {"labelOrient", "top"}}}}}}},
      {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
      {"spec",
       {{"width", 560},
        {"height", {{"step", 6}}},  // per measure: yOffset splits each entry's band
        {"mark", "bar"},
        {"encoding",
         {{"x", {{"field", "us"}, {"type", "quantitative"}, {"title", "microseconds"}}},
          {"y", {{"field", "entry"}, {"type", "nominal"}, {"title", nullptr}, {"sort", nullptr},
                 {"axis", {{"labelLimit", 280}}}}},
          {"yOffset", {{"field", "measure"}, {"type", "nominal"}, {"sort", nullptr}}},
          {"color", {{"field", "measure"}, {"type", "nominal"}, {"title", nullptr}, {"sort", nullptr},
                     {"scale", {{"domain", {"measured, cold L2 (median)", "memory floor", "FLA (targets.md)",
                                            "FLA fused (targets.md)"}},
                                {"range", {"#4c78a8", "#9d9d9d", "#f58518", "#54a24b"}}}}}},
          {"tooltip", json::array({{{"field", "entry"}}, {{"field", "measure"}}, {{"field", "us"}, {"format", ".1f"}}})}}}}}};
  return {"chart-bench-times", "Time per stage, pipeline and baseline",
          "For each entry: the measured median with a cold L2, the memory floor (bytes moved / measured copy "
          "bandwidth), and the FLA Triton times from targets.md where the bench file gives them.",
          spec};
}

Chart floor_chart() {
  json spec = {
      {"$schema", kSchema},
      {"data", {{"name", "bench_ratios"}}},
      {"facet", {{"row", {{"field", "config"}, {"type", "nominal"}, {"title", nullptr},
                          {"header", {{"labelAngle", 0}, {"labelAlign", "left"}, {"labelOrient", "top"}}}}}}},
      {"resolve", {{"scale", {{"y", "independent"}}}}},
      {"spec",
       {{"width", 560},
        {"height", {{"step", 8}}},  // per L2 state
        {"mark", "bar"},
        {"encoding",
         {{"x", {{"field", "x_floor"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}},
                 {"title", "time / memory floor, log (bars start at 1: bandwidth bound)"}}},
          {"x2", {{"datum", 1}}},
          {"y", {{"field", "entry"}, {"type", "nominal"}, {"title", nullptr}, {"sort", nullptr},
                 {"axis", {{"labelLimit", 280}}}}},
          {"yOffset", {{"field", "l2"}, {"type", "nominal"}}},
          {"color", {{"field", "l2"}, {"type", "nominal"}, {"title", "L2"}}},
          {"tooltip", json::array({{{"field", "entry"}}, {{"field", "l2"}}, {{"field", "x_floor"}, {"format", ".2f"}}})}}}}}};
  return {"chart-bench-floor", "Ratio to the memory floor",
          "How many times the memory floor each entry takes (x_floor from the bench file), cold and warm L2.", spec};
}

Chart per_chunk_chart() {
  json spec = {
      {"$schema", kSchema},
      {"data", {{"name", "bench_hist"}}},
      {"facet", {{"row", {{"field", "panel"}, {"type", "nominal"}, {"title", nullptr},
                          {"header", {{"labelAngle", 0}, {"labelAlign", "left"}, {"labelOrient", "top"}}}}}}},
      {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
      {"spec",
       {{"width", 560},
        {"height", 90},
        {"mark", {{"type", "rect"}, {"opacity", 0.55}}},
        {"encoding",
         {{"x", {{"field", "lo"}, {"type", "quantitative"}, {"title", "time of one block (us)"}, {"scale", {{"zero", false}}}}},
          {"x2", {{"field", "hi"}}},
          {"y", {{"field", "count"}, {"type", "quantitative"}, {"title", "blocks"}}},
          {"color", {{"field", "l2"}, {"type", "nominal"}, {"title", "L2"}}},
          {"tooltip", json::array({{{"field", "panel"}}, {{"field", "l2"}}, {{"field", "lo"}, {"format", ".2f"}},
                                   {{"field", "hi"}, {"format", ".2f"}}, {{"field", "count"}}})}}}}}};
  return {"chart-bench-per-chunk", "Per-block time distribution",
          "Histograms of the per-block times the bench file recorded (globaltimer at block start and end); "
          "what a block covers is in the table below.",
          spec};
}

// ---------------------------------------------------------------------------------------------
// The page

constexpr char const* kStyle = R"css(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1280px;padding:0 16px;color:#1d1d1f}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafafa}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f3f4f6;padding:1px 4px;border-radius:3px;white-space:nowrap}
.badge{padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600}
.ok{background:#d4f4dd;color:#11632b}.bad{background:#fbd5d5;color:#9b1c1c}.skip{background:#e5e7eb;color:#444}.expl{background:#fdf1c8;color:#7a5b00}
.verdict{font-size:16px;padding:8px 12px;border-radius:6px;margin:10px 0}
.verdict.ok{border:1px solid #11632b}.verdict.bad{border:1px solid #9b1c1c}
.note{color:#555}.chart{margin:8px 0 4px;min-height:40px}
figure{margin:14px 0 22px}figcaption{color:#444;max-width:900px}
table.nowrap td{white-space:nowrap}table.chunks td{text-align:right}table.chunks td:first-child{text-align:left}td.cmd code{white-space:normal}
details{margin:6px 0}summary{cursor:pointer}
pre.notices{font-size:11px;max-height:420px;overflow:auto;background:#f8f8f8;padding:8px;white-space:pre-wrap}
)css";

// Counts console errors/warnings and uncaught errors into the DOM, so a headless browser test (and
// a reader) can see them; runs before the chart libraries load.
constexpr char const* kConsoleHook = R"js(
(function(){
  var seen=[];
  function note(kind,args){
    var m=Array.prototype.map.call(args,function(a){return a&&a.message?a.message:String(a);}).join(' ');
    seen.push(kind+': '+m);
    document.documentElement.setAttribute('data-console-errors',String(seen.length));
    var p=document.getElementById('gdnv-console'); if(p){p.textContent=seen.join('\n');p.hidden=false;}
  }
  var e=console.error,w=console.warn;
  console.error=function(){note('error',arguments);e.apply(console,arguments);};
  console.warn=function(){note('warning',arguments);w.apply(console,arguments);};
  window.addEventListener('error',function(ev){note('uncaught',[ev.message]);});
  window.addEventListener('unhandledrejection',function(ev){note('unhandled rejection',[ev.reason]);});
  document.addEventListener('securitypolicyviolation',function(ev){note('blocked by the page policy',[ev.blockedURI]);});
  document.documentElement.setAttribute('data-console-errors','0');
})();
)js";

// Embeds every chart; when all are drawn, <body data-rendered> holds their count.
constexpr char const* kEmbed = R"js(
(function(){
  var body=document.body, stored=JSON.parse(document.getElementById('gdnv-datasets').textContent);
  function expand(d){  // fields + rows (+ string lists) -> one object per row
    return d.rows.map(function(r){
      var o={};
      d.fields.forEach(function(f,j){var s=d.strings[f];o[f]=(s&&r[j]!==null)?s[r[j]]:r[j];});
      return o;
    });
  }
  var divs=Array.prototype.slice.call(document.querySelectorAll('div[data-spec]'));
  var jobs=divs.map(function(div){
    var spec=JSON.parse(document.getElementById(div.getAttribute('data-spec')).textContent);
    spec.datasets={};
    Object.keys(stored).forEach(function(k){spec.datasets[k]=expand(stored[k]);});
    div.textContent='';
    return vegaEmbed(div,spec,{mode:'vega-lite',renderer:'svg',actions:false,logLevel:vega.Warn})
      .then(function(){div.setAttribute('data-rendered','1');});
  });
  Promise.all(jobs).then(function(){
                           body.setAttribute('data-height',String(document.documentElement.scrollHeight));
                           body.setAttribute('data-rendered',String(jobs.length));},
                         function(err){body.setAttribute('data-rendered','failed');console.error('vegaEmbed: '+err);});
})();
)js";

}  // namespace

Report render_report(JsonFile const& results_file, std::vector<JsonFile> const& bench_files, ReportOptions const& opt) {
  ResultsIn const R = read_results(results_file);
  std::vector<BenchIn> benches;
  for (auto const& b : bench_files) benches.push_back(read_bench(b));
  ChartAssets const& assets = chart_assets();

  Report rep;
  rep.datasets = json::object();
  std::string notes_charts;  // charts not drawn, and why

  // --- datasets for the charts ---
  json chunks = json::array(), results = json::array(), isolation = json::array();
  std::set<std::string> tensor_set;
  int64_t max_head = 0;
  bool any_chunks = false;
  for (auto const& r : R.results) {
    if (r.has_chunks && !r.chunks.empty()) any_chunks = true;
    for (auto const& c : r.chunks) {
      if (!c.ratio) continue;
      tensor_set.insert(c.tensor);
      max_head = std::max(max_head, c.head);
      chunks.push_back({{"case", r.case_name}, {"impl", r.impl}, {"tensor", c.tensor}, {"seq", c.seq},
                        {"head", c.head}, {"chunk", c.chunk}, {"ratio", chart_num(*c.ratio)}});
    }
    if (r.worst && r.worst->ratio)
      results.push_back({{"case", r.case_name}, {"impl", r.impl}, {"disposition", r.disposition},
                         {"where", where_str(*r.worst)}, {"ratio", chart_num(*r.worst->ratio)}});
  }
  // End to end against [isolated], for implementations that have both.
  for (auto const& r : R.results) {
    auto p = r.impl.find("[isolated]");
    if (p == std::string::npos || r.metrics.empty()) continue;
    std::string const base = r.impl.substr(0, p);
    for (auto const& e : R.results) {
      if (e.impl != base || e.case_name != r.case_name) continue;
      for (auto const* side : {&e, &r})
        for (auto const& m : side->metrics)
          if (m.max_chunk_ratio)
            isolation.push_back({{"case", r.case_name}, {"kernel", base}, {"impl", side->impl}, {"tensor", m.tensor},
                                 {"mode", side == &r ? "isolated" : "end to end"},
                                 {"ratio", chart_num(*m.max_chunk_ratio)}});
    }
  }
  json bench_times = json::array(), bench_ratios = json::array(), bench_hist = json::array();
  for (auto const& b : benches)
    for (auto const& cfg : b.configs) {
      std::string const config = (benches.size() > 1 ? base_name(b.path) + ": " : std::string()) + cfg.label;
      for (auto const& e : cfg.entries) {
        std::string const entry = e.kind + ": " + e.name;
        auto add = [&](char const* measure, std::optional<double> us) {
          if (us) bench_times.push_back({{"config", config}, {"entry", entry}, {"measure", measure}, {"us", chart_num(*us)}});
        };
        add("measured, cold L2 (median)", e.cold_median);
        add("memory floor", e.floor_us);
        add("FLA (targets.md)", e.fla_us);
        add("FLA fused (targets.md)", e.fla_fused_us);
        if (e.x_floor_cold)
          bench_ratios.push_back({{"config", config}, {"entry", entry}, {"l2", "cold"}, {"x_floor", chart_num(*e.x_floor_cold)}});
        if (e.x_floor_warm)
          bench_ratios.push_back({{"config", config}, {"entry", entry}, {"l2", "warm"}, {"x_floor", chart_num(*e.x_floor_warm)}});
      }
      for (auto const& pc : cfg.per_chunk)
        for (auto const* side : {&pc.cold, &pc.warm})
          for (size_t i = 0; i < side->counts.size(); ++i)
            bench_hist.push_back({{"panel", config + " | " + pc.stage}, {"l2", side == &pc.cold ? "cold" : "warm"},
                                  {"lo", chart_num(side->edges[i])}, {"hi", chart_num(side->edges[i + 1])},
                                  {"count", chart_num(side->counts[i])}});
    }

  // --- which charts ---
  std::vector<Chart> acc_charts, perf_charts;
  if (!chunks.empty()) {
    rep.datasets["chunks"] = chunks;
    acc_charts.push_back(ratio_distribution(R.max_floor_ratio));
  } else {
    notes_charts += any_chunks ? "<li>No chunk has a finite floor ratio: no per-chunk charts.</li>"
                               : "<li>This results file has no per-chunk rows (written with <code>--no-chunk-rows</code>, or "
                                 "nothing was compared): no per-chunk charts.</li>";
  }
  if (!results.empty()) {
    rep.datasets["results"] = results;
    acc_charts.push_back(worst_per_case(R.max_floor_ratio));
  }
  if (!chunks.empty())
    acc_charts.push_back(heat_map(std::vector<std::string>(tensor_set.begin(), tensor_set.end()), max_head + 1));
  {
    // Kernels to set against "unfused": ours and baselines with chunk rows (captured groups and the
    // [isolated] runs answer other questions; their names also are not plain field names).
    std::vector<std::string> others;
    bool has_unfused = false;
    double lo = INFINITY, hi = 0;
    for (auto const& r : R.results) {
      if (r.chunks.empty()) continue;
      if (r.impl == "unfused") has_unfused = true;
      else if (r.impl.rfind("captured:", 0) != 0 && r.impl.find_first_of("[].\\\"'") == std::string::npos &&
               std::find(others.begin(), others.end(), r.impl) == others.end())
        others.push_back(r.impl);
      for (auto const& c : r.chunks)
        if (c.ratio && *c.ratio > 0) lo = std::min(lo, *c.ratio), hi = std::max(hi, *c.ratio);
    }
    if (has_unfused && !others.empty() && lo < hi) acc_charts.push_back(against_unfused(others, lo, hi));
  }
  if (!isolation.empty()) {
    rep.datasets["isolation"] = isolation;
    acc_charts.push_back(stage_attribution());
  } else {
    notes_charts += "<li>Stage attribution: no implementation in this file has both an end-to-end and an "
                    "<code>[isolated]</code> result with metrics.</li>";
  }
  {
    // chunk rows of A_inv and o joined with their case's conditioning rows (a layout step)
    std::map<std::tuple<std::string, int64_t, int64_t, int64_t>, std::pair<double, double>> cond;
    json cond_rows = json::array();
    int64_t cond_heads = 1;
    for (auto const& c : R.cases) {
      if (!c.contains("conditioning") || !c["conditioning"].is_array()) continue;
      for (auto const& row : c["conditioning"]) {
        if (!row.is_object() || !row.contains("kappa_inf") || !row["kappa_inf"].is_number()) continue;
        int64_t const seq = row.value("sequence", int64_t{0}), head = row.value("head", int64_t{0}),
                      chunk = row.value("chunk", int64_t{0});
        double const kinf = row["kappa_inf"].get<double>(), skeel = row.value("skeel", 0.0);
        cond[{c.value("case", ""), seq, head, chunk}] = {kinf, skeel};
        cond_rows.push_back({{"case", c.value("case", "")}, {"seq", seq}, {"head", head}, {"chunk", chunk},
                             {"kappa_inf", chart_num(kinf)}, {"skeel", chart_num(skeel)}});
        cond_heads = std::max(cond_heads, head + 1);
      }
    }
    if (!cond_rows.empty()) {
      rep.datasets["conditioning_rows"] = cond_rows;
      acc_charts.push_back(conditioning_heat_map(cond_heads));
    }
    json joined = json::array();
    for (auto const& r : R.results)
      for (auto const& c : r.chunks) {
        if (!c.ratio || (c.tensor != "A_inv" && c.tensor != "o")) continue;
        auto it = cond.find({r.case_name, c.seq, c.head, c.chunk});
        if (it == cond.end()) continue;
        joined.push_back({{"case", r.case_name}, {"impl", r.impl}, {"tensor", c.tensor}, {"seq", c.seq},
                          {"head", c.head}, {"chunk", c.chunk}, {"ratio", chart_num(*c.ratio)},
                          {"kappa_inf", chart_num(it->second.first)}, {"skeel", chart_num(it->second.second)}});
      }
    if (!joined.empty()) {
      rep.datasets["conditioning"] = joined;
      acc_charts.push_back(error_vs_conditioning());
    } else {
      notes_charts += "<li>Error against conditioning: this results file carries no per-chunk conditioning "
                      "(<code>cases[].conditioning</code>, written by <code>gdnv check</code> without "
                      "<code>--no-chunk-rows</code>) for chunks of A_inv or o.</li>";
    }
  }
  if (!bench_times.empty()) {
    rep.datasets["bench_times"] = bench_times;
    perf_charts.push_back(times_chart());
  }
  if (!bench_ratios.empty()) {
    rep.datasets["bench_ratios"] = bench_ratios;
    perf_charts.push_back(floor_chart());
  }
  if (!bench_hist.empty()) {
    rep.datasets["bench_hist"] = bench_hist;
    perf_charts.push_back(per_chunk_chart());
  }
  bool const draw = opt.charts && assets.available();

  // --- verdict ---
  int passed = 0, failed = 0, other = 0;
  for (auto const& r : R.results) {
    if (r.disposition == "passed" || r.disposition == "explained") ++passed;
    else if (r.disposition == "failed" || r.disposition == "error") ++failed;
    else ++other;
  }

  std::string o;
  o.reserve(1 << 21);
  o += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  // Nothing may leave the file: no fetch, no image, no font from elsewhere.
  o += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline' "
       "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:\">\n";
  o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  o += "<meta name=\"generator\" content=\"gdnv report\">\n";
  o += fmt::format("<title>gdnv report: {}</title>\n<style>{}</style>\n", esc(base_name(R.path)), kStyle);
  if (draw) o += fmt::format("<script>{}</script>\n", kConsoleHook);
  o += "</head>\n";
  o += fmt::format("<body data-charts=\"{}\" data-rendered=\"0\">\n", draw ? acc_charts.size() + perf_charts.size() : 0);
  o += fmt::format("<h1>gdnv report: {}</h1>\n", esc(R.path));
  bool const ok = failed == 0 && passed > 0;
  o += fmt::format(
      "<div class=\"verdict {}\" id=\"verdict\"><b>{}</b>: {} passed, {} failed, {} not run or not supported "
      "(pass: every chunk's floor ratio &le; {:g} and finite)</div>\n",
      ok ? "ok" : "bad", failed > 0 ? "FAILED" : passed > 0 ? "PASSED" : "NOTHING CHECKED", passed, failed, other,
      R.max_floor_ratio);
  o += "<p class=\"note\">";
  if (!R.tool.empty()) o += fmt::format("Written by {} {} <code>{}</code>", esc(R.tool), esc(R.version), esc(R.command));
  if (!R.files.empty()) {
    o += " on ";
    for (size_t i = 0; i < R.files.size(); ++i) o += (i ? ", " : "") + fmt::format("<code>{}</code>", esc(R.files[i]));
  }
  o += ". The floor ratio of a block is ||got &minus; exact|| / ||round(exact) &minus; exact||: 1 is a perfect "
       "kernel, rounding its exact result once. Sections: <a href=\"#verdicts\">verdicts</a>, "
       "<a href=\"#worst\">worst chunks</a>, <a href=\"#cases\">cases</a>, " +
       std::string(R.attribution.empty() ? "" : "<a href=\"#attribution-h\">stage attribution</a>, ") + "<a href=\"#charts\">accuracy charts</a>, "
       "<a href=\"#tensors\">per-tensor metrics</a>";
  if (!benches.empty()) o += ", <a href=\"#bench\">performance</a>";
  o += ", <a href=\"#chunks\">every chunk</a>, <a href=\"#licences\">licences</a>.</p>\n";
  o += "<pre id=\"gdnv-console\" hidden></pre>\n";

  // Verdict table
  {
    Table t;
    t.id = "verdicts";
    t.head = {"case", "implementation", "disposition", "worst chunk", "worst ratio", "o ratio (tensor)", "o rel_rms",
              "o max_abs", "reason"};
    t.numeric = {false, false, false, false, true, true, true, true, false};
    for (auto const& r : R.results) {
      MetricsIn const* om = nullptr;
      for (auto const& m : r.metrics)
        if (m.tensor == "o") om = &m;
      t.rows.push_back({esc(r.case_name), esc(r.impl), badge(r.disposition), r.worst ? esc(where_str(*r.worst)) : "-",
                        r.worst ? ratio_str(r.worst->ratio, r.worst->finite) : "-",
                        om ? ratio_str(om->floor_ratio) : "-", om ? sci(om->rel_rms) : "-", om ? sci(om->max_abs) : "-",
                        esc(r.reason)});
    }
    o += "<h2 id=\"verdicts-h\">Verdict per case and implementation</h2>\n";
    put_table(o, t);
  }

  // Worst chunks with the command that reproduces them: one group of rows per (case, implementation).
  {
    std::string rows_html;
    for (auto const& r : R.results) {
      if (r.chunks.empty()) continue;
      std::vector<ChunkIn const*> rows;
      for (auto const& c : r.chunks) rows.push_back(&c);
      auto badness = [](ChunkIn const* c) { return !c->finite ? INFINITY : c->ratio ? *c->ratio : -1.0; };
      std::stable_sort(rows.begin(), rows.end(), [&](auto* a, auto* b) { return badness(a) > badness(b); });
      size_t const k = std::min(rows.size(), static_cast<size_t>(std::max(opt.top, 0)));
      for (size_t i = 0; i < k; ++i) {
        auto const& c = *rows[i];
        rows_html += "<tr>";
        if (i == 0)
          rows_html += fmt::format("<td rowspan=\"{0}\">{1}<td rowspan=\"{0}\">{2}", k, esc(r.case_name), esc(r.impl));
        rows_html += fmt::format(
            "<td class=\"n\">{}<td>{}<td class=\"n\">{}<td class=\"n\">{}<td class=\"n\">{}{}<td class=\"n\">{}", i + 1,
            esc(where_str(c)), ratio_str(c.ratio, c.finite), sci(c.error_norm), sci(c.floor_norm),
            c.floor_from_u ? " (u&middot;|exact|)" : "", c.rows);
        if (i == 0)
          rows_html += fmt::format("<td rowspan=\"{}\" class=\"cmd\"><code>{}</code>", k,
                                   esc(repro_command(r, R.max_floor_ratio)));
        rows_html += "\n";
      }
    }
    o += fmt::format("<h2 id=\"worst-h\">Worst chunks ({} per case and implementation)</h2>\n", opt.top);
    if (rows_html.empty()) o += "<p>No per-chunk rows in this file.</p>\n";
    else {
      o += "<p class=\"note\">The command re-runs the check of that case and implementation and prints its worst "
           "chunks again (add <code>--top N</code> for more).</p>\n"
           "<table id=\"worst\" class=\"nowrap\"><thead><tr><th>case<th>implementation<th class=\"n\">#<th>chunk"
           "<th class=\"n\">floor ratio<th class=\"n\">error<th class=\"n\">floor<th class=\"n\">rows<th>reproduce</tr></thead><tbody>\n";
      o += rows_html;
      o += "</tbody></table>\n";
    }
  }

  // Cases
  if (!R.cases.empty()) {
    Table t;
    t.id = "cases";
    std::vector<std::string> keys = {"case", "family", "source", "B", "T", "H", "HV", "K", "V", "sequences", "chunks",
                                     "scale", "qk_l2norm", "input_dtype", "initial_state", "file"};
    t.head = keys;
    for (auto const& c : R.cases) {
      std::vector<std::string> row;
      for (auto const& k : keys) {
        auto it = c.find(k);
        if (it == c.end() || it->is_null()) row.push_back("-");
        else if (it->is_string()) row.push_back(esc(it->get<std::string>()));
        else if (it->is_number_float()) row.push_back(g4(it->get<double>()));
        else row.push_back(esc(it->dump()));
      }
      t.rows.push_back(row);
    }
    o += "<h2 id=\"cases-h\">Cases</h2>\n";
    put_table(o, t);
  }

  // Stage attribution, per case: a table per implementation (rows: stages; columns: the worst chunks, the case)
  if (!R.attribution.empty()) {
    o += "<h2 id=\"attribution-h\">Stage attribution</h2>\n<p class=\"note\">Each stage's output from the "
         "<code>[isolated]</code> run (the stage fed the reference's exact inputs) injected into the fp64 reference, "
         "every other stage exact. <i>local</i>: the stage's own floor ratio (largest chunk); <i>o</i> and "
         "<i>final state</i>: the floor ratio of the error that reaches them when only this stage is inexact, on the "
         "worst chunks of the end-to-end o and over the case (largest chunk; rel: relative error of the whole "
         "tensor). Roundings at a stage boundary count in both stages; <i>net</i> removes them from the consumer (its "
         "effect less that of its exact inputs rounded to the dtype it reads). <i>linear sum</i>: the error vectors "
         "of the whole stages added (first-order prediction of the end-to-end error); <i>sum of ratios</i> bounds "
         "it.</p>\n";
    std::vector<std::string> case_order;
    for (auto const& a : R.attribution)
      if (std::find(case_order.begin(), case_order.end(), a.case_name) == case_order.end()) case_order.push_back(a.case_name);
    int table_no = 0;
    for (auto const& cn : case_order) {
      o += fmt::format("<h3>{}</h3>\n", esc(cn));
      std::string unavailable;
      for (auto const& a : R.attribution) {
        if (a.case_name != cn) continue;
        if (!a.available) {
          unavailable += fmt::format("<li>{}: not available ({})</li>", esc(a.impl), esc(a.reason));
          continue;
        }
        Table t;
        t.id = fmt::format("attribution-{}", table_no++);
        t.cls = "nowrap attribution";
        t.head = {"stage", "injected", "local"};
        for (auto const& b : a.chunks) t.head.push_back("o " + esc(b.label));
        for (char const* h : {"o case", "o net case", "o rel", "final state case", "final state net case", "final state rel"})
          t.head.push_back(h);
        t.numeric.assign(t.head.size(), true);
        t.numeric[0] = t.numeric[1] = false;
        for (size_t i = 0; i < a.summary.stages.size(); ++i) {
          auto const& st = a.summary.stages[i];
          std::string name = st.part_of.empty() ? esc(st.name) : "&nbsp;&nbsp;" + esc(st.part_of) + ": " + esc(st.name);
          if (st.part_of.empty() && st.name == a.summary.dominant) name = "<b>" + name + "</b>";
          std::vector<std::string> row = {name, esc(st.tensors)};
          if (!st.available) {
            row.push_back("not available");
            for (size_t c = 0; c < a.chunks.size() + 6; ++c) row.push_back("-");
            row.back() = esc(st.reason);
          } else {
            row.push_back(ratio_str(st.local_ratio));
            for (auto const& b : a.chunks)
              row.push_back(i < b.stages.size() && b.stages[i].available ? ratio_str(b.stages[i].o.ratio) : "-");
            row.push_back(ratio_str(st.o.ratio));
            row.push_back(ratio_str(st.o_net.ratio));
            row.push_back(sci(st.o.rel_error));
            row.push_back(ratio_str(st.final_state.ratio));
            row.push_back(ratio_str(st.final_state_net.ratio));
            row.push_back(sci(st.final_state.rel_error));
          }
          t.rows.push_back(std::move(row));
        }
        // tail: o case, o net case, o rel, final state case, final state net case, final state rel
        auto summary_row = [&](std::string const& name, auto per_chunk, std::vector<std::string> tail) {
          std::vector<std::string> row = {"<i>" + name + "</i>", "", ""};
          for (auto const& b : a.chunks) row.push_back(per_chunk(b));
          row.insert(row.end(), tail.begin(), tail.end());
          t.rows.push_back(std::move(row));
        };
        auto const& cs = a.summary;
        auto dash = [](std::string const& x) { return esc(x.empty() ? "-" : x); };
        summary_row("linear sum", [](auto const& b) { return ratio_str(b.linear_o.ratio); },
                    {ratio_str(cs.linear_o.ratio), ratio_str(cs.linear_net_o.ratio), sci(cs.linear_o.rel_error),
                     ratio_str(cs.linear_fs.ratio), ratio_str(cs.linear_net_fs.ratio), sci(cs.linear_fs.rel_error)});
        summary_row("linear sum, net", [](auto const& b) { return ratio_str(b.linear_net_o.ratio); },
                    {"", "", "", "", "", ""});
        summary_row("sum of ratios", [](auto const& b) { return ratio_str(b.sum_o); },
                    {ratio_str(cs.sum_o), "", "", ratio_str(cs.sum_fs), "", ""});
        summary_row("end to end", [](auto const& b) { return ratio_str(b.e2e_o.ratio); },
                    {ratio_str(cs.e2e_o.ratio), "", sci(cs.e2e_o.rel_error), ratio_str(cs.e2e_fs.ratio), "",
                     sci(cs.e2e_fs.rel_error)});
        summary_row("dominant", [&](auto const& b) { return dash(b.dominant); },
                    {dash(cs.dominant), dash(cs.dominant_net), "", dash(cs.dominant_fs), "", ""});
        summary_row("dominant, net", [&](auto const& b) { return dash(b.dominant_net); }, {"", "", "", "", "", ""});
        o += fmt::format("<p><b>{}</b>: o is dominated by <b>{}</b> (net of input roundings: <b>{}</b>), the final "
                         "state by <b>{}</b>.</p>\n",
                         esc(a.impl), esc(cs.dominant.empty() ? "no stage" : cs.dominant),
                         esc(cs.dominant_net.empty() ? "no stage" : cs.dominant_net),
                         esc(cs.dominant_fs.empty() ? "no stage" : cs.dominant_fs));
        put_table(o, t);
      }
      if (!unavailable.empty()) o += "<ul class=\"note\">" + unavailable + "</ul>\n";
    }
  }

  // Charts
  auto put_charts = [&](std::vector<Chart> const& charts) {
    for (auto const& c : charts) {
      o += fmt::format("<figure><h3>{}</h3>", esc(c.title));
      if (draw) o += fmt::format("<div class=\"chart\" id=\"{}\" data-spec=\"{}-spec\">Chart needs JavaScript; the numbers are in the tables.</div>", c.id, c.id);
      o += fmt::format("<figcaption>{}</figcaption></figure>\n", esc(c.caption));
    }
  };
  o += "<h2 id=\"charts\">Accuracy charts</h2>\n";
  if (!draw)
    o += opt.charts ? fmt::format("<p class=\"note\" id=\"no-charts\">Charts not drawn: this gdnv was built without "
                                  "the chart libraries ({}). Every number is in the tables.</p>\n",
                                  esc(assets.status.empty() ? std::string_view("unknown") : assets.status))
                    : std::string("<p class=\"note\" id=\"no-charts\">Charts left out (--no-charts). Every number is in "
                                  "the tables.</p>\n");
  put_charts(acc_charts);
  if (!notes_charts.empty()) o += "<ul class=\"note\">" + notes_charts + "</ul>\n";

  // Fused against unfused: the same numbers?
  if (!R.pairs.empty()) {
    Table t;
    t.id = "pairs";
    t.cls = "nowrap";
    t.head = {"case", "implementation", "against", "tensor", "elements", "bit-equal", "bit-equal %", "max |difference|"};
    t.numeric = {false, false, false, false, true, true, true, true};
    for (auto const& p : R.pairs)
      for (auto const& x : p.tensors)
        t.rows.push_back({esc(p.case_name), esc(p.impl), esc(p.against), esc(x.name), g4(x.elements), g4(x.bit_equal),
                          x.fraction ? fmt::format("{:.2f}", 100 * *x.fraction) : "-", sci(x.max_abs_diff)});
    o += "<h2 id=\"pairs-h\">Fused against unfused</h2>\n<p class=\"note\">Both sides are judged against the "
         "reference above; this says whether they compute the same numbers (values compared bit for bit).</p>\n";
    put_table(o, t);
  }

  // Per-tensor metrics
  {
    Table t;
    t.id = "tensors";
    t.head = {"case", "implementation", "tensor", "dtype", "floor dtype", "chunks", "non-finite", "floor ratio",
              "max chunk ratio", "median chunk ratio", "rel_rms", "relative_l2", "max_abs"};
    t.numeric = {false, false, false, false, false, true, true, true, true, true, true, true, true};
    for (auto const& r : R.results)
      for (auto const& m : r.metrics)
        t.rows.push_back({esc(r.case_name), esc(r.impl), esc(m.tensor), esc(m.dtype), esc(m.floor_dtype), g4(m.chunks),
                          g4(m.nonfinite), ratio_str(m.floor_ratio), ratio_str(m.max_chunk_ratio),
                          ratio_str(m.median_chunk_ratio), sci(m.rel_rms), sci(m.relative_l2), sci(m.max_abs)});
    o += "<h2 id=\"tensors-h\">Per-tensor metrics</h2>\n";
    if (t.rows.empty()) o += "<p>No tensor was compared.</p>\n";
    else {
      o += fmt::format("<details><summary>{} rows: floor ratio of the whole tensor, of its worst and median chunk, and "
                       "FLA's relative RMS and max abs error, for comparability</summary>\n", t.rows.size());
      t.cls = "nowrap";
      put_table(o, t);
      o += "</details>\n";
    }
  }

  // Performance
  if (!benches.empty()) {
    o += "<h2 id=\"bench\">Performance</h2>\n";
    put_charts(perf_charts);
    for (auto const& b : benches) {
      o += fmt::format("<h3>{}</h3>\n<p class=\"note\">", esc(b.path));
      if (!b.device.empty()) o += fmt::format("Device: {}. ", esc(b.device));
      if (b.copy_gbps) o += fmt::format("Measured copy bandwidth: {} GB/s. ", g4(b.copy_gbps));
      if (!b.git.empty()) o += fmt::format("Commit: <code>{}</code>. ", esc(b.git));
      if (!b.status.empty()) o += fmt::format("Status: {}.", esc(b.status));
      o += "</p>\n";
      if (!b.method.empty()) {
        o += "<details><summary>Method</summary><ul>";
        for (auto const& [k, v] : b.method) o += fmt::format("<li><b>{}</b>: {}</li>", esc(k), esc(v));
        o += "</ul></details>\n";
      }
      for (auto const& cfg : b.configs) {
        o += fmt::format("<h3>{}{}</h3>\n", esc(cfg.label), cfg.status.empty() || cfg.status == "ok" ? "" : " (" + esc(cfg.status) + ")");
        Table t;
        t.cls = "bench";
        t.head = {"kind", "entry", "bytes", "flops", "floor us", "FLA us", "FLA fused us", "cold median us",
                  "cold p10", "cold p90", "cold min", "cold max", "n", "warm median us", "x floor (cold)",
                  "x floor (warm)", "x FLA (cold)", "x FLA fused (cold)", "x unfused floor (cold)", "GB/s (cold)",
                  "TFLOP/s (cold)", "target us"};
        t.numeric.assign(t.head.size(), true);
        t.numeric[0] = t.numeric[1] = false;
        for (auto const& e : cfg.entries)
          t.rows.push_back({esc(e.kind), esc(e.name) + (e.note.empty() ? "" : "<br><small>" + esc(e.note) + "</small>"),
                            g4(e.bytes_total), g4(e.flops), g4(e.floor_us), g4(e.fla_us), g4(e.fla_fused_us),
                            g4(e.cold_median), g4(e.cold_p10), g4(e.cold_p90), g4(e.cold_min), g4(e.cold_max),
                            g4(e.cold_n), g4(e.warm_median), g4(e.x_floor_cold), g4(e.x_floor_warm), g4(e.x_fla_cold),
                            g4(e.x_fla_fused_cold), g4(e.x_unfused_floor_cold), g4(e.gbps_cold), g4(e.tflops_cold),
                            g4(e.target_us)});
        if (!t.rows.empty()) put_table(o, t);
        if (!cfg.per_chunk.empty()) {
          Table p;
          p.cls = "per-chunk";
          p.head = {"stage", "L2", "a block is", "blocks", "samples", "min us", "p50", "p90", "p99", "max", "mean",
                    "per-chunk step p50", "kernel span median", "event with timers", "event without", "blocks in flight"};
          p.numeric.assign(p.head.size(), true);
          p.numeric[0] = p.numeric[1] = p.numeric[2] = false;
          std::string hist;
          for (auto const& pc : cfg.per_chunk)
            for (auto const* s : {&pc.cold, &pc.warm}) {
              if (!s->present) continue;
              char const* l2 = s == &pc.cold ? "cold" : "warm";
              p.rows.push_back({esc(pc.stage), l2, esc(pc.block_is), g4(s->blocks), g4(s->samples), g4(s->min),
                                g4(s->p50), g4(s->p90), g4(s->p99), g4(s->max), g4(s->mean), g4(s->step_p50),
                                g4(s->span), g4(s->with_times), g4(s->without_times), g4(s->in_flight)});
              if (!s->counts.empty()) {
                Table h;
                h.head = {"from us", "to us", "blocks"};
                h.numeric = {true, true, true};
                for (size_t i = 0; i < s->counts.size(); ++i)
                  h.rows.push_back({g4(s->edges[i]), g4(s->edges[i + 1]), g4(s->counts[i])});
                hist += fmt::format("<details><summary>{} ({}): histogram</summary>", esc(pc.stage), l2);
                put_table(hist, h);
                hist += "</details>\n";
              }
            }
          o += "<p class=\"note\">Per-block times (globaltimer):</p>\n";
          put_table(o, p);
          o += hist;
        }
      }
    }
  }

  // Every chunk
  o += "<h2 id=\"chunks\">Every chunk</h2>\n<p class=\"note\">One row per (tensor, sequence, value head, chunk); "
       "chunk &minus;1 is the final state of the sequence.</p>\n";
  for (auto const& r : R.results) {
    if (r.chunks.empty()) continue;
    o += fmt::format("<details><summary>{} / {} ({} rows, {})</summary>\n", esc(r.case_name), esc(r.impl),
                     r.chunks.size(), esc(r.disposition));
    // Written by hand: the widest tables of the page, numbers right-aligned by the table's CSS.
    o += "<table class=\"chunks\"><thead><tr><th>tensor<th>seq<th>head<th>chunk<th>rows<th>ratio<th>error<th>floor"
         "<th>floor from u<th>finite</tr></thead><tbody>\n";
    for (auto const& c : r.chunks)
      o += fmt::format("<tr><td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}\n", esc(c.tensor), c.seq, c.head,
                       c.chunk, c.rows, ratio_str(c.ratio, c.finite), sci(c.error_norm), sci(c.floor_norm),
                       c.floor_from_u ? "yes" : "", c.finite ? "" : "no");
    o += "</tbody></table></details>\n";
  }

  // Conditioning of every chunk's I + A, per case (the numbers of the error-against-conditioning chart)
  bool any_cond = false;
  for (auto const& c : R.cases) any_cond = any_cond || (c.contains("conditioning") && c["conditioning"].is_array());
  if (any_cond) {
    o += "<h2 id=\"conditioning\">Conditioning of every chunk</h2>\n<p class=\"note\">Per (sequence, value head, "
         "chunk) of I + A, computed from the stored inputs in double (gdnv check): kappa in the 1- and inf-norms, "
         "Skeel's condition number, max |(I + A)<sup>-1</sup>| against its structural bound, ||A||<sub>inf</sub>, "
         "the Neumann amplification max (I - |A|)<sup>-1</sup> and max beta ||k||<sup>2</sup>.</p>\n";
    for (auto const& c : R.cases) {
      if (!c.contains("conditioning") || !c["conditioning"].is_array()) continue;
      auto num = [](json const& row, char const* k) {
        auto it = row.find(k);
        return it != row.end() && it->is_number() ? g4(it->get<double>()) : std::string("-");
      };
      o += fmt::format("<details><summary>{} ({} rows)</summary>\n", esc(c.value("case", "?")), c["conditioning"].size());
      o += "<table class=\"chunks\"><thead><tr><th>seq<th>head<th>chunk<th>rows<th>kappa_1<th>kappa_inf<th>Skeel"
           "<th>max |X|<th>structural bound<th>||A||_inf<th>Neumann max<th>max beta k^2</tr></thead><tbody>\n";
      for (auto const& row : c["conditioning"])
        o += fmt::format("<tr><td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}<td>{}\n",
                         num(row, "sequence"), num(row, "head"), num(row, "chunk"), num(row, "rows"), num(row, "kappa_1"),
                         num(row, "kappa_inf"), num(row, "skeel"), num(row, "max_abs_inv"),
                         num(row, "structural_bound"), num(row, "norm_A_inf"), num(row, "neumann_max"),
                         num(row, "max_beta_k2"));
      o += "</tbody></table></details>\n";
    }
  }

  // Licences
  o += "<h2 id=\"licences\">Licences</h2>\n";
  if (draw) {
    o += fmt::format(
        "<p class=\"note\">The charts are drawn by Vega {}, Vega-Lite {} and vega-embed {} (BSD-3-Clause, "
        "University of Washington Interactive Data Lab), inlined in this file with the packages they bundle. "
        "Their notices:</p>\n<details><summary>Licence texts of every npm package installed with them</summary>"
        "<pre class=\"notices\">{}</pre></details>\n",
        assets.vega_version, assets.vega_lite_version, assets.vega_embed_version, esc(assets.notices));
  } else {
    o += "<p class=\"note\">No third-party code is included in this file.</p>\n";
  }

  // Data, specs, libraries, embedding
  if (draw) {
    json compact = json::object();
    for (auto it = rep.datasets.begin(); it != rep.datasets.end(); ++it) compact[it.key()] = compact_rows(it.value());
    o += fmt::format("<script type=\"application/json\" id=\"gdnv-datasets\">{}</script>\n", script_json(compact));
    for (auto const* list : {&acc_charts, &perf_charts})
      for (auto const& c : *list)
        o += fmt::format("<script type=\"application/json\" id=\"{}-spec\">{}</script>\n", c.id, script_json(c.spec));
    for (auto js : {assets.vega_js, assets.vega_lite_js, assets.vega_embed_js}) {
      o += "<script>";
      o.append(js.data(), js.size());
      o += "</script>\n";
    }
    o += fmt::format("<script>{}</script>\n", kEmbed);
  }
  o += "</body></html>\n";

  rep.html = std::move(o);
  for (auto* list : {&acc_charts, &perf_charts})
    for (auto& c : *list) rep.charts.push_back(std::move(c));
  return rep;
}

}  // namespace gdnv::reports
