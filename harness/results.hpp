// The results file written by `gdnv check --json`: the contract with reports, notebooks and
// baselines. Field names here are stable; add fields, never rename them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/compare.hpp"
#include "harness/inverse_bound.hpp"

namespace gdnv {

enum class Disposition { passed, failed, not_run, not_supported, error };
std::string disposition_name(Disposition d);

struct CheckResult {
  std::string file;
  std::string case_name;
  std::string implementation;
  std::string arithmetic;
  Disposition disposition = Disposition::not_run;
  std::string reason;  // why not_run / not_supported / error / failed
  Comparison comparison;
  // The bound ratio R on A_inv; written as "bound" (null with "bound_reason" when not computed)
  // for every result that was compared.
  BoundSummary bound;
};

nlohmann::json to_json(ChunkRow const& r);
nlohmann::json to_json(TensorMetrics const& m);
nlohmann::json to_json(BoundSummary const& s);  // null when not computed
nlohmann::json to_json(CheckResult const& r, bool with_chunks = true);
// The "reported" object of a result: FLA's relative RMS per tensor (whole tensor and worst chunk) and
// LAPACK's xTRT01 ratio on A_inv, labelled "gated": false (harness/normwise.hpp).
nlohmann::json reported_json(Comparison const& c);

}  // namespace gdnv
