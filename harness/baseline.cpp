#include "harness/baseline.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "harness/environment.hpp"
#include "harness/errors.hpp"
#include "harness/inverse_bound.hpp"

namespace gdnv::baseline {
namespace {

using json = nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();
char const* const kShapeDims[] = {"B", "T", "H", "HV", "K", "V"};

json num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

json load_json(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "", "cannot open");
  std::stringstream s;
  s << in.rdbuf();
  try {
    return json::parse(s.str());
  } catch (json::parse_error const& e) {
    std::string what = e.what();
    throw InputError(path, "", "", "not JSON: " + what);
  }
}

// Typed access that names the file and field on failure.
struct Reader {
  std::string file;
  [[noreturn]] void fail(std::string const& field, std::string const& detail) const {
    throw InputError(file, "", field, detail);
  }
  json const& member(json const& obj, std::string const& key, std::string const& field) const {
    if (!obj.is_object()) fail(field, "expected an object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(field + (field.empty() ? "" : ".") + key, "missing");
    return *it;
  }
  std::string str(json const& obj, std::string const& key, std::string const& field) const {
    json const& v = member(obj, key, field);
    if (!v.is_string()) fail(field + (field.empty() ? "" : ".") + key, "expected a string");
    return v.get<std::string>();
  }
  int64_t integer(json const& obj, std::string const& key, std::string const& field) const {
    json const& v = member(obj, key, field);
    if (!v.is_number_integer()) fail(field + (field.empty() ? "" : ".") + key, "expected an integer");
    return v.get<int64_t>();
  }
  // A number; null stands for a non-finite value (+inf).
  double number(json const& v, std::string const& field) const {
    if (v.is_null()) return kInf;
    if (!v.is_number()) fail(field, "expected a number or null");
    return v.get<double>();
  }
  json const& array(json const& obj, std::string const& key, std::string const& field) const {
    json const& v = member(obj, key, field);
    if (!v.is_array()) fail(field + (field.empty() ? "" : ".") + key, "expected an array");
    return v;
  }
  Quantiles quantiles(json const& v, std::string const& field) const {
    if (!v.is_object()) fail(field, "expected an object with p50, p99, max");
    Quantiles q;
    q.p50 = number(member(v, "p50", field), field + ".p50");
    q.p99 = number(member(v, "p99", field), field + ".p99");
    q.max = number(member(v, "max", field), field + ".max");
    if (auto it = v.find("n"); it != v.end()) {
      if (!it->is_number_integer()) fail(field + ".n", "expected an integer");
      q.n = it->get<int64_t>();
    }
    return q;
  }
  std::map<std::string, Quantiles> by_tensor(json const& obj, std::string const& key, std::string const& field) const {
    std::map<std::string, Quantiles> out;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return out;
    std::string const f = field + "." + key;
    if (!it->is_object()) fail(f, "expected an object keyed by tensor name");
    for (auto const& [name, q] : it->items()) out[name] = quantiles(q, f + "." + name);
    return out;
  }
};

json quantiles_json(Quantiles const& q) { return {{"n", q.n}, {"p50", num(q.p50)}, {"p99", num(q.p99)}, {"max", num(q.max)}}; }

json by_tensor_json(std::map<std::string, Quantiles> const& m) {
  json j = json::object();
  for (auto const& [k, q] : m) j[k] = quantiles_json(q);
  return j;
}

std::string value_str(double x) {
  if (std::isnan(x)) return "nan";
  if (!std::isfinite(x)) return "inf";
  return fmt::format("{:.3g}", x);
}

// Per-entry collections before the quantiles are taken.
struct Pool {
  std::vector<double> all;
  std::map<std::string, std::vector<double>> floor, r_det, r_prob, rel_rms, trt01;
};

}  // namespace

Quantiles quantiles_of(std::vector<double> values) {
  Quantiles q;
  q.n = static_cast<int64_t>(values.size());
  for (double& v : values)
    if (std::isnan(v)) v = kInf;
  q.p50 = quantile(values, 0.5);
  q.p99 = quantile(values, 0.99);
  q.max = values.empty() ? 0.0 : *std::max_element(values.begin(), values.end());
  return q;
}

std::string Entry::shape_key() const {
  std::string s;
  for (char const* d : kShapeDims) {
    auto it = shape.find(d);
    s += fmt::format("{}{}={}", s.empty() ? "" : ",", d, it == shape.end() ? -1 : it->second);
  }
  return s;
}

std::string Entry::key() const { return implementation + " | " + family + " | " + shape_key(); }

double drift_ratio(double baseline, double current) {
  if (std::isnan(current) || std::isnan(baseline)) return kInf;
  if (!std::isfinite(baseline)) return std::isfinite(current) ? 0.0 : 1.0;
  if (baseline > 0) return current / baseline;
  return current == 0 ? 1.0 : kInf;
}

ResultsSet read_results(std::vector<std::string> const& paths) {
  ResultsSet rs;
  rs.paths = paths;
  std::map<std::string, Pool> pools;
  std::string first_env_file;
  for (auto const& path : paths) {
    Reader rd{path};
    json const j = load_json(path);
    if (!j.is_object()) rd.fail("", "expected a JSON object (a gdnv check results file)");
    std::string const command = rd.str(j, "command", "");
    if (command != "check")
      rd.fail("command", "expected \"check\" (a gdnv check --json results file), got \"" + command + "\"");
    if (auto it = j.find("environment"); it != j.end() && it->is_object()) {
      if (rs.environment.is_null()) {
        rs.environment = *it;
        first_env_file = path;
      } else if (rs.environment.value("gpu", json()) != it->value("gpu", json())) {
        rs.warnings.push_back(fmt::format("{} and {} were checked on different GPUs or drivers", first_env_file, path));
      }
    }
    if (auto it = j.find("datasets"); it != j.end()) {
      if (!it->is_array()) rd.fail("datasets", "expected an array");
      for (auto const& d : *it) rs.datasets.push_back(d);
    } else {
      for (auto const& f : rd.array(j, "files", ""))
        rs.datasets.push_back({{"path", f}, {"sha256", nullptr}, {"bytes", nullptr}});
    }

    // (file, case) -> family and shape
    struct CaseInfo {
      std::string family;
      std::map<std::string, int64_t> shape;
    };
    std::map<std::pair<std::string, std::string>, CaseInfo> cases;
    json const& jc = rd.array(j, "cases", "");
    for (size_t i = 0; i < jc.size(); ++i) {
      std::string const f = fmt::format("cases[{}]", i);
      CaseInfo ci;
      std::string const name = rd.str(jc[i], "case", f);
      if (auto it = jc[i].find("family"); it != jc[i].end()) {
        if (!it->is_string()) rd.fail(f + ".family", "expected a string");
        ci.family = it->get<std::string>();
      }
      if (ci.family.empty()) ci.family = name;  // no generator family recorded: the case is its own family
      for (char const* d : kShapeDims) ci.shape[d] = rd.integer(jc[i], d, f);
      cases[{rd.str(jc[i], "file", f), name}] = ci;
    }

    json const& jr = rd.array(j, "results", "");
    for (size_t i = 0; i < jr.size(); ++i) {
      std::string const f = fmt::format("results[{}]", i);
      json const& r = jr[i];
      std::string const file = rd.str(r, "file", f), case_name = rd.str(r, "case", f);
      std::string const impl = rd.str(r, "implementation", f), disp = rd.str(r, "disposition", f);
      auto ci = cases.find({file, case_name});
      if (ci == cases.end()) rd.fail(f + ".case", "'" + case_name + "' of '" + file + "' has no entry in 'cases'");
      Entry probe;
      probe.implementation = impl;
      probe.family = ci->second.family;
      probe.shape = ci->second.shape;
      std::string const key = probe.key();
      if (disp != "passed" && disp != "failed") {
        if (disp != "not_run" && disp != "not_supported" && disp != "error")
          rd.fail(f + ".disposition", "unknown disposition '" + disp + "'");
        std::string reason;
        if (auto it = r.find("reason"); it != r.end() && it->is_string()) reason = it->get<std::string>();
        rs.skipped.push_back({key, impl, case_name, disp, reason});
        continue;
      }
      auto chunks_it = r.find("chunks");
      if (chunks_it == r.end())
        rd.fail(f + ".chunks", "missing: a baseline needs the per-chunk rows (run gdnv check without --no-chunk-rows)");
      if (!chunks_it->is_array()) rd.fail(f + ".chunks", "expected an array");
      auto [it, inserted] = rs.entries.try_emplace(key, probe);
      Entry& e = it->second;
      if (inserted) e.disposition = "passed";
      if (std::find(e.cases.begin(), e.cases.end(), case_name) == e.cases.end()) e.cases.push_back(case_name);
      if (disp == "failed" && e.disposition != "failed") {
        e.disposition = "failed";
        if (auto rr = r.find("reason"); rr != r.end() && rr->is_string()) e.reason = case_name + ": " + rr->get<std::string>();
      }
      Pool& pool = pools[key];
      for (size_t c = 0; c < chunks_it->size(); ++c) {
        json const& row = (*chunks_it)[c];
        std::string const rf = fmt::format("{}.chunks[{}]", f, c);
        std::string const tensor = rd.str(row, "tensor", rf);
        double const ratio = rd.number(rd.member(row, "ratio", rf), rf + ".ratio");
        pool.all.push_back(ratio);
        pool.floor[tensor].push_back(ratio);
        ++e.chunks;
        // Bound ratios and reported metrics on whichever tensors carry them.
        auto optional = [&](char const* name, std::map<std::string, std::vector<double>>& into) {
          if (auto v = row.find(name); v != row.end()) into[tensor].push_back(rd.number(*v, rf + "." + name));
        };
        optional("r_det", pool.r_det);
        optional("r_prob", pool.r_prob);
        optional("rel_rms", pool.rel_rms);
        optional("trt01", pool.trt01);
      }
      // A result-level bound summary without per-chunk R rows (some writers keep only the summary):
      // its max still counts for the R_det > 1 gate, by tensor name.
      if (auto b = r.find("bound"); b != r.end() && b->is_object()) {
        auto take = [&](json const& s, std::string const& tensor, std::string const& field) {
          if (!s.is_object() || !s.contains("max_r_det") || pool.r_det.count(tensor)) return;
          pool.r_det[tensor].push_back(rd.number(s["max_r_det"], field + ".max_r_det"));
        };
        if (b->contains("max_r_det")) {
          take(*b, b->value("tensor", std::string("A_inv")), f + ".bound");
        } else {
          for (auto const& [tensor, s] : b->items()) take(s, tensor, f + ".bound." + tensor);
        }
      }
    }
  }
  for (auto& [key, e] : rs.entries) {
    Pool& p = pools[key];
    e.floor_ratio = quantiles_of(p.all);
    for (auto& [t, v] : p.floor) e.floor_by_tensor[t] = quantiles_of(v);
    for (auto& [t, v] : p.r_det) e.r_det[t] = quantiles_of(v);
    for (auto& [t, v] : p.r_prob) e.r_prob[t] = quantiles_of(v);
    for (auto& [t, v] : p.rel_rms) e.rel_rms[t] = quantiles_of(v);
    for (auto& [t, v] : p.trt01) e.trt01[t] = quantiles_of(v);
  }
  return rs;
}

json baseline_json(ResultsSet const& r, json const& environment) {
  json j;
  j["tool"] = "gdnv";
  j["version"] = GDNV_VERSION;
  j["command"] = "baseline save";
  j["schema"] = kSchema;
  j["schema_version"] = kSchemaVersion;
  j["created"] = utc_now_iso8601();
  j["results_files"] = r.paths;
  j["environment"] = environment;
  j["datasets"] = r.datasets;
  j["method"] = {
      {"key", "(implementation, family, shape): family is the case's generator family attribute, else the case "
              "name; shape is B,T,H,HV,K,V"},
      {"quantiles", "nearest rank over every chunk row of the pooled results (p50, p99, max); null = non-finite"},
      {"floor_ratio", "||got - exact|| / ||round(exact) - exact|| per chunk: overall (every tensor) and per tensor"},
      {"r_det, r_prob", "componentwise bound ratios per chunk, per tensor that has them (A_inv)"},
      {"gates", "gdnv baseline compare fails on R_det > 1, on a p99 more than --max-drift (2) times the baseline's, "
                "on a disappeared entry or tensor, and on passed -> failed"},
      {"reported", "FLA rel_rms and LAPACK xTRT01 per chunk: reported, never gated"}};
  json entries = json::array();
  for (auto const& [key, e] : r.entries) {
    json shape = json::object();
    for (auto const& [d, v] : e.shape) shape[d] = v;
    json en = {{"implementation", e.implementation},
               {"family", e.family},
               {"shape", shape},
               {"shape_key", e.shape_key()},
               {"cases", e.cases},
               {"disposition", e.disposition},
               {"chunks", e.chunks},
               {"floor_ratio", {{"overall", quantiles_json(e.floor_ratio)}, {"tensors", by_tensor_json(e.floor_by_tensor)}}}};
    if (!e.reason.empty()) en["reason"] = e.reason;
    if (!e.r_det.empty()) en["r_det"] = by_tensor_json(e.r_det);
    if (!e.r_prob.empty()) en["r_prob"] = by_tensor_json(e.r_prob);
    en["reported"] = {{"gated", false}, {"rel_rms", by_tensor_json(e.rel_rms)}, {"trt01", by_tensor_json(e.trt01)}};
    entries.push_back(en);
  }
  j["entries"] = entries;
  return j;
}

Baseline read_baseline(std::string const& path) {
  Reader rd{path};
  json const j = load_json(path);
  if (!j.is_object()) rd.fail("", "expected a JSON object (a gdnv baseline file)");
  std::string const schema = rd.str(j, "schema", "");
  if (schema != kSchema) rd.fail("schema", fmt::format("expected \"{}\", got \"{}\"", kSchema, schema));
  int64_t const version = rd.integer(j, "schema_version", "");
  if (version != kSchemaVersion) rd.fail("schema_version", fmt::format("unsupported version {} (this gdnv reads {})", version, kSchemaVersion));
  Baseline b;
  b.path = path;
  b.environment = j.value("environment", json());
  b.datasets = j.value("datasets", json::array());
  json const& je = rd.array(j, "entries", "");
  for (size_t i = 0; i < je.size(); ++i) {
    std::string const f = fmt::format("entries[{}]", i);
    json const& x = je[i];
    Entry e;
    e.implementation = rd.str(x, "implementation", f);
    e.family = rd.str(x, "family", f);
    json const& shape = rd.member(x, "shape", f);
    for (char const* d : kShapeDims) e.shape[d] = rd.integer(shape, d, f + ".shape");
    e.disposition = rd.str(x, "disposition", f);
    if (e.disposition != "passed" && e.disposition != "failed")
      rd.fail(f + ".disposition", "expected \"passed\" or \"failed\", got \"" + e.disposition + "\"");
    if (auto c = x.find("cases"); c != x.end() && c->is_array())
      for (auto const& n : *c)
        if (n.is_string()) e.cases.push_back(n.get<std::string>());
    json const& fr = rd.member(x, "floor_ratio", f);
    e.floor_ratio = rd.quantiles(rd.member(fr, "overall", f + ".floor_ratio"), f + ".floor_ratio.overall");
    e.floor_by_tensor = rd.by_tensor(fr, "tensors", f + ".floor_ratio");
    e.r_det = rd.by_tensor(x, "r_det", f);
    e.r_prob = rd.by_tensor(x, "r_prob", f);
    if (auto rep = x.find("reported"); rep != x.end() && rep->is_object()) {
      e.rel_rms = rd.by_tensor(*rep, "rel_rms", f + ".reported");
      e.trt01 = rd.by_tensor(*rep, "trt01", f + ".reported");
    }
    std::string const key = e.key();
    if (b.entries.count(key)) rd.fail(f, "duplicate entry " + key);
    b.entries[key] = e;
  }
  return b;
}

int Report::failures() const {
  int n = 0;
  for (auto const& c : checks) n += c.failed;
  return n;
}

namespace {

void environment_warnings(json const& base, json const& now, Report& rep) {
  auto gpu_str = [](json const& env) -> std::string {
    if (!env.is_object()) return "(not recorded)";
    json const g = env.value("gpu", json());
    if (!g.is_object()) return "none (" + env.value("gpu_reason", std::string("no GPU")) + ")";
    return fmt::format("{}, driver {}, CUDA runtime {}", g.value("name", std::string("?")),
                       g.contains("driver_version") ? g["driver_version"].dump() : "?",
                       g.contains("cuda_runtime_version") ? g["cuda_runtime_version"].dump() : "?");
  };
  std::string const gb = gpu_str(base), gn = gpu_str(now);
  if (gb != gn) rep.warnings.push_back("environment differs: baseline GPU " + gb + "; results GPU " + gn);
  auto commit = [](json const& env) {
    if (!env.is_object() || !env.contains("git") || !env["git"].is_object()) return std::string("unknown");
    return env["git"].value("commit", std::string("unknown"));
  };
  rep.notes.push_back("baseline commit " + commit(base) + ", results commit " + commit(now));
}

void dataset_warnings(json const& base, json const& now, Report& rep) {
  auto hashes = [](json const& ds) {
    std::set<std::string> s;
    if (ds.is_array())
      for (auto const& d : ds)
        if (d.is_object() && d.contains("sha256") && d["sha256"].is_string()) s.insert(d["sha256"].get<std::string>());
    return s;
  };
  auto const hb = hashes(base), hn = hashes(now);
  if (!hb.empty() && !hn.empty() && hb != hn)
    rep.warnings.push_back("the datasets differ from the baseline's (sha256): the entries may not be comparable");
}

struct Ctx {
  Report& rep;
  double max_drift;
  Entry const& e;
  Check make(std::string const& metric) const {
    Check c;
    c.implementation = e.implementation;
    c.family = e.family;
    c.shape = e.shape_key();
    c.metric = metric;
    return c;
  }
  void fail(std::string const& metric, std::string const& msg) const {
    Check c = make(metric);
    c.status = "FAIL";
    c.failed = true;
    c.message = msg;
    rep.checks.push_back(c);
  }
  // Upward p99 drift beyond max_drift fails; a p99 below baseline / max_drift is an improvement.
  void drift(std::string const& metric, std::string const& what, Quantiles const& b, Quantiles const& n,
             bool gated = true) const {
    Check c = make(metric);
    c.has_values = true;
    c.baseline = b.p99;
    c.current = n.p99;
    c.drift = drift_ratio(b.p99, n.p99);
    if (!gated) {
      c.status = "reported";
      c.junit = false;
      c.message = fmt::format("{} p99 {} (baseline {}), reported, not gated", what, value_str(n.p99), value_str(b.p99));
    } else if (!(c.drift <= max_drift)) {
      c.status = "FAIL";
      c.failed = true;
      c.message = fmt::format("{} p99 {} vs baseline {}: drift {}x > {}x", what, value_str(n.p99), value_str(b.p99),
                              value_str(c.drift), max_drift);
    } else {
      c.status = c.drift < 1.0 / max_drift ? "improved" : "ok";
      c.message = fmt::format("{} p99 {} vs baseline {}: drift {}x", what, value_str(n.p99), value_str(b.p99),
                              value_str(c.drift));
    }
    rep.checks.push_back(c);
  }
  // The hard gate: R_det <= 1 on every chunk.
  void r_gate(std::string const& tensor, Quantiles const& n) const {
    Check c = make("r_det_gate:" + tensor);
    c.has_values = true;
    c.current = n.max;
    c.baseline = kBoundGate;
    c.drift = n.max / kBoundGate;
    if (!(n.max <= kBoundGate)) {
      c.status = "FAIL";
      c.failed = true;
      c.message = fmt::format("{} R_det max {} > {}", tensor, value_str(n.max), kBoundGate);
    } else {
      c.status = "ok";
      c.message = fmt::format("{} R_det max {} <= {}", tensor, value_str(n.max), kBoundGate);
    }
    rep.checks.push_back(c);
  }
};

}  // namespace

Report compare(Baseline const& base, ResultsSet const& now, double max_drift) {
  Report rep;
  environment_warnings(base.environment, now.environment, rep);
  dataset_warnings(base.datasets, now.datasets, rep);
  for (auto const& w : now.warnings) rep.warnings.push_back(w);

  for (auto const& [key, b] : base.entries) {
    Ctx const x{rep, max_drift, b};
    auto it = now.entries.find(key);
    if (it == now.entries.end()) {
      std::string why = "entry disappeared: no compared result for it";
      for (auto const& s : now.skipped)
        if (s.key == key) {
          why = fmt::format("entry disappeared: {} is {}{}{}", s.case_name, s.disposition, s.reason.empty() ? "" : ": ",
                            s.reason);
          break;
        }
      x.fail("disposition", why);
      continue;
    }
    Entry const& n = it->second;
    {
      Check c = x.make("disposition");
      if (b.disposition == "passed" && n.disposition == "failed") {
        c.status = "FAIL";
        c.failed = true;
        c.message = "passed -> failed" + (n.reason.empty() ? std::string() : ": " + n.reason);
      } else {
        c.status = b.disposition == n.disposition ? "ok" : "improved";
        c.message = b.disposition + " -> " + n.disposition;
      }
      rep.checks.push_back(c);
    }
    x.drift("floor_ratio", "floor ratio (all tensors)", b.floor_ratio, n.floor_ratio);
    for (auto const& [t, q] : b.floor_by_tensor) {
      auto nt = n.floor_by_tensor.find(t);
      if (nt == n.floor_by_tensor.end()) x.fail("floor_ratio:" + t, "tensor " + t + " disappeared from the results");
      else x.drift("floor_ratio:" + t, "floor ratio of " + t, q, nt->second);
    }
    for (auto const& [t, q] : n.floor_by_tensor)
      if (!b.floor_by_tensor.count(t)) {
        Check c = x.make("floor_ratio:" + t);
        c.status = "new";
        c.message = "tensor " + t + " is new (not in the baseline)";
        rep.checks.push_back(c);
      }
    for (auto const& [t, q] : n.r_det) x.r_gate(t, q);
    for (auto const& [t, q] : b.r_det) {
      auto nt = n.r_det.find(t);
      if (nt == n.r_det.end()) x.fail("r_det:" + t, "R_det of " + t + " disappeared from the results");
      else x.drift("r_det:" + t, "R_det of " + t, q, nt->second);
    }
    for (auto const& [t, q] : b.r_prob) {
      auto nt = n.r_prob.find(t);
      if (nt == n.r_prob.end()) x.fail("r_prob:" + t, "R_prob of " + t + " disappeared from the results");
      else x.drift("r_prob:" + t, "R_prob of " + t, q, nt->second);
    }
    for (auto const& [t, q] : b.rel_rms)
      if (auto nt = n.rel_rms.find(t); nt != n.rel_rms.end() && (t == "o" || t == "A_inv"))
        x.drift("rel_rms:" + t, "FLA rel_rms of " + t, q, nt->second, false);
    for (auto const& [t, q] : b.trt01)
      if (auto nt = n.trt01.find(t); nt != n.trt01.end()) x.drift("xtrt01:" + t, "LAPACK xTRT01 of " + t, q, nt->second, false);
  }
  for (auto const& [key, n] : now.entries) {
    if (base.entries.count(key)) continue;
    Ctx const x{rep, max_drift, n};
    Check c = x.make("disposition");
    c.status = "new";
    c.message = "new entry (not in the baseline): " + n.disposition;
    rep.checks.push_back(c);
    for (auto const& [t, q] : n.r_det) x.r_gate(t, q);
  }
  return rep;
}

namespace {

std::string xml_escape(std::string const& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      case '\n': case '\r': case '\t': o += ' '; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) o += ' ';  // not allowed in XML 1.0
        else o += ch;
    }
  }
  return o;
}

}  // namespace

std::string junit_xml(Report const& r, std::string const& name) {
  std::vector<std::string> impls;
  for (auto const& c : r.checks)
    if (c.junit && std::find(impls.begin(), impls.end(), c.implementation) == impls.end()) impls.push_back(c.implementation);
  int tests = 0, failures = 0, skipped = 0;
  std::string body;
  for (auto const& impl : impls) {
    int t = 0, f = 0, s = 0;
    std::string cases;
    for (auto const& c : r.checks) {
      if (!c.junit || c.implementation != impl) continue;
      ++t;
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\">", xml_escape("gdnv." + impl),
                           xml_escape(c.family + " " + c.shape + " " + c.metric));
      if (c.failed) {
        ++f;
        cases += fmt::format("\n      <failure message=\"{}\" type=\"baseline\">{}</failure>\n    ", xml_escape(c.message),
                             xml_escape(c.message));
      } else if (c.status == "new") {
        ++s;
        cases += fmt::format("\n      <skipped message=\"{}\"/>\n    ", xml_escape(c.message));
      }
      cases += "</testcase>\n";
    }
    body += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\">\n",
                        xml_escape(impl), t, f, s);
    body += cases;
    body += "  </testsuite>\n";
    tests += t;
    failures += f;
    skipped += s;
  }
  return fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\">\n{}"
                     "</testsuites>\n",
                     xml_escape(name), tests, failures, skipped, body);
}

}  // namespace gdnv::baseline
