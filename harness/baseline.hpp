// Golden baselines are statistics, not GPU outputs (verification-method.md §0 item 4, §6.2): per
// (implementation, input family, shape) the nearest-rank quantiles p50, p99 and max over chunks of the
// floor ratio (overall and per tensor) and of the bound ratios R_det and R_prob (per tensor, where the
// results carry them), with the environment and the dataset hashes they were measured on.
//
// `gdnv baseline save` builds them from `gdnv check --json` results files; `gdnv baseline compare` checks
// new results against a saved baseline and fails on
//   - any R_det > 1 (the hard gate of gdnv check, repeated here),
//   - a p99 (floor ratio overall or per tensor, R_det, R_prob) more than --max-drift (2) times the
//     baseline's (only upward drift fails; improvements are reported),
//   - an entry or tensor of the baseline that disappeared, or an entry that went from passed to failed.
// New entries are reported, not failed. FLA's rel_rms and LAPACK's xTRT01 ratio are carried as
// "reported" and never gate.
//
// The results files are read by tensor name: any tensor's chunk rows with r_det / r_prob count, so
// bound ratios on more tensors than A_inv are picked up without a change here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gdnv::baseline {

inline constexpr int kSchemaVersion = 1;
inline constexpr char const* kSchema = "gdnv-baseline";

// Nearest-rank quantiles over chunks; +inf stands for a non-finite value (null in JSON).
struct Quantiles {
  int64_t n = 0;
  double p50 = 0, p99 = 0, max = 0;
};
Quantiles quantiles_of(std::vector<double> values);

// One (implementation, family, shape): every result of those, pooled over cases and files.
struct Entry {
  std::string implementation, family;
  std::map<std::string, int64_t> shape;  // B, T, H, HV, K, V
  std::vector<std::string> cases;
  std::string disposition;  // "passed", or "failed" when any pooled result failed
  std::string reason;       // the first failure reason
  int64_t chunks = 0;
  Quantiles floor_ratio;                             // over every chunk row of every tensor
  std::map<std::string, Quantiles> floor_by_tensor;  // per tensor
  std::map<std::string, Quantiles> r_det, r_prob;    // per tensor that has them
  std::map<std::string, Quantiles> rel_rms, trt01;   // reported only
  std::string shape_key() const;                     // "B=1,T=345,H=2,HV=4,K=64,V=64"
  std::string key() const;                           // implementation | family | shape_key
};

// A result that produced no comparison (not_run, not_supported, error), kept to explain a disappearance.
struct Skipped {
  std::string key, implementation, case_name, disposition, reason;
};

// One or more `gdnv check --json` files, validated and grouped.
struct ResultsSet {
  std::vector<std::string> paths;
  nlohmann::json environment;  // of the first file that has one; null if none has
  nlohmann::json datasets = nlohmann::json::array();  // {path, sha256, bytes} as check recorded them
  std::map<std::string, Entry> entries;                // by Entry::key()
  std::vector<Skipped> skipped;
  std::vector<std::string> warnings;  // e.g. the files were checked in different environments
};

// Throws InputError (file, field) on a missing file, text that is not JSON or a wrong schema.
ResultsSet read_results(std::vector<std::string> const& paths);

// The baseline file's JSON (schema gdnv-baseline, version 1).
nlohmann::json baseline_json(ResultsSet const& r, nlohmann::json const& environment);

struct Baseline {
  std::string path;
  nlohmann::json environment, datasets;
  std::map<std::string, Entry> entries;
};
// Throws InputError (file, field) on a missing file, text that is not JSON or a wrong schema.
Baseline read_baseline(std::string const& path);

// One line of the comparison: a testcase in the JUnit file unless `junit` is false.
struct Check {
  std::string implementation, family, shape, metric;
  std::string status;  // "ok", "improved", "FAIL", "new", "reported"
  double baseline = 0, current = 0, drift = 0;  // p99 values (or max for the R_det gate), current/baseline
  bool has_values = false;
  std::string message;  // one line
  bool failed = false;
  bool junit = true;
};

struct Report {
  std::vector<Check> checks;
  std::vector<std::string> warnings;  // environment and dataset differences
  std::vector<std::string> notes;     // commits compared, ...
  int failures() const;
};

Report compare(Baseline const& base, ResultsSet const& now, double max_drift);

// JUnit XML: one <testsuite> per implementation, one <testcase> per (family, shape, metric), a
// <failure message="..."> on a failed check and <skipped> on a new entry.
std::string junit_xml(Report const& r, std::string const& name);

// drift = current / baseline; 1 when both are 0, +inf when only the baseline is 0 (or non-finite ...).
double drift_ratio(double baseline, double current);

}  // namespace gdnv::baseline
