// Stage attribution (`gdnv check --attribution`): which stage's error dominates o and the final state.
//
// For one implementation with isolated stages (Implementation::run_isolated: every stage fed the
// reference's exact inputs, rounded to the dtype it reads), per stage s:
//   local   the floor ratio of s's own output tensors in the isolated run: the error s adds;
//   effect  the fp64 reference continued from s's isolated output (reference/chunked.hpp,
//           StageInjection), every other stage exact: the error that reaches o and final_state
//           when only s is inexact (floor ratio and relative error).
// The stage whose injection gives the largest o (final_state) error dominates. The single-stage
// effects are first-order terms of the end-to-end error; their sum (of ratios) bounds the norm of
// their vector sum, and the vector sum ("linear") is the first-order prediction of the end-to-end
// error, so the two against the end-to-end ratio show how additive the stages are. Input roundings
// at a stage boundary (A_inv, w, u, h, v_new stored in bf16) are in both the producer's output and
// the consumer's isolated input, so they count in both rows. The "net" effect of a whole stage
// removes that: o[stage injected] - o[its exact inputs, rounded to the dtype it reads, injected];
// the net effects add up to the end-to-end error far more closely.
//
// Evaluated on the K chunks with the largest end-to-end o floor ratio, and over the whole case
// (max over chunks). Rows of stages whose tensors the isolated run lacks are "not available".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/implementation.hpp"
#include "reference/chunked.hpp"
#include "reference/problem.hpp"

namespace gdnv {

struct AttributionStage {
  std::string name;                  // "cumsum", "kkt", "solve", "wu", "state", "output"; parts: "w", "u", "h", "v_new"
  std::vector<std::string> tensors;  // what is injected
  std::string part_of;               // "" for a whole stage; else the stage this tensor belongs to
  std::vector<std::string> inputs;   // whole stages: the intermediates the isolated run feeds it (rounded)
};
// The stages in pipeline order, then the single-tensor parts of the multi-tensor stages.
std::vector<AttributionStage> const& attribution_stages();

// Error of o or final_state on one block (or a whole-case summary).
struct ErrorMeasure {
  std::optional<double> ratio;      // floor ratio (case: the largest chunk's)
  std::optional<double> rel_error;  // ||got - exact|| / ||exact|| (case: over the whole tensor)
  std::optional<double> floor_ratio_whole;  // case summary only: the whole tensor's floor ratio
};

struct AttributionRow {
  AttributionStage stage;
  bool available = false;
  std::string reason;                // why not available
  std::optional<double> local_ratio;  // max over the stage's tensors
  std::vector<std::pair<std::string, std::optional<double>>> local;  // per tensor
  ErrorMeasure o, final_state;
  // Net of the stage's input roundings: o[this stage injected] - o[its exact inputs, rounded to the dtype it
  // reads, injected] (the second term belongs to the producer's row). Absent where an input is missing.
  bool net_available = false;
  ErrorMeasure o_net, final_state_net;
};

// One block (a chunk of one value head; final_state of its sequence and head), or the whole case.
struct AttributionBlock {
  bool whole_case = false;
  int64_t sequence = 0, head = 0, chunk = 0, rows = 0;
  ErrorMeasure end_to_end_o, end_to_end_final_state;  // the implementation's own run
  std::vector<AttributionRow> rows_by_stage;          // attribution_stages() order
  // Over the whole stages (not the parts): the sum of their ratios, and the ratio of the sum of
  // their error vectors (the first-order prediction of the end-to-end error).
  std::optional<double> sum_o_ratio, sum_final_state_ratio;
  ErrorMeasure linear_o, linear_final_state;
  ErrorMeasure linear_net_o, linear_net_final_state;  // the same for the net effects
  std::string dominant_stage_net;          // largest net o ratio
  std::string dominant_stage;              // largest o ratio among the whole stages ("" if none)
  std::string dominant_stage_final_state;  // largest final_state ratio
};

struct Attribution {
  std::string file, case_name, implementation;
  bool available = false;
  std::string reason;
  std::vector<AttributionBlock> chunks;  // worst first
  AttributionBlock case_summary;
};

// end_to_end: the implementation's run(); isolated: its run_isolated() on the same problem and
// reference. threads as ChunkedOptions::threads.
Attribution attribute_stages(Problem const& p, ChunkedResult const& ref, StageOutputs const& end_to_end,
                             StageOutputs const& isolated, int worst_chunks = 3, int threads = 0);

// Not available, with the reason (captured groups, not run, no isolated stages).
Attribution attribution_not_available(std::string reason);

nlohmann::json to_json(Attribution const& a);
// The terminal table of one (case, implementation).
std::string format_attribution(Attribution const& a);

}  // namespace gdnv
