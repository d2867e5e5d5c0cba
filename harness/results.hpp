// The results file written by `gdnv check --json`: the contract with reports, notebooks and
// baselines. Field names here are stable; add fields, never rename them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/compare.hpp"
#include "harness/inverse_bound.hpp"

namespace gdnv {

// explained: some chunk exceeds the floor-ratio gate, but every such chunk lies inside its tensor's
// componentwise bound (R_det <= 1, harness/inverse_bound.hpp): the error is what the declared arithmetic
// and the chunk's conditioning allow, not a fault. Counts as a pass (exit status 0).
enum class Disposition { passed, failed, not_run, not_supported, error, explained };
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
  // R of every bounded tensor (A_inv included), by tensor name; written as "bound"."tensors" (and as
  // "bounds" where A_inv has none).
  std::map<std::string, BoundSummary> bounds;
  // For an explained result: the worst chunk above the floor gate, inside its bound.
  struct Explained {
    int64_t chunks = 0;  // chunks above the floor-ratio gate, all inside their bounds
    ChunkRow worst;      // the one with the largest floor ratio (r_det, r_prob filled)
    bool has_conditioning = false;
    ChunkConditioning conditioning;  // of that chunk (final_state: the sequence's last chunk)
  };
  std::optional<Explained> explained;
};

nlohmann::json to_json(ChunkRow const& r);
nlohmann::json to_json(TensorMetrics const& m);
nlohmann::json to_json(BoundSummary const& s);  // null when not computed
nlohmann::json to_json(CheckResult const& r, bool with_chunks = true);
// The "reported" object of a result: FLA's relative RMS per tensor (whole tensor and worst chunk) and
// LAPACK's xTRT01 ratio on A_inv, labelled "gated": false (harness/normwise.hpp).
nlohmann::json reported_json(Comparison const& c);

}  // namespace gdnv
