// The one interface every implementation passes through: a captured group, our CUDA pipelines,
// the cuBLAS baseline, CPU models. The comparison code sees only StageOutputs.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness/dataset.hpp"
#include "reference/bounds.hpp"
#include "reference/chunked.hpp"
#include "reference/problem.hpp"
#include "reference/tensor.hpp"

namespace gdnv {

// Tensor name (see kStageTensors) -> tensor in the schema's layout, dtype as produced.
using StageOutputs = std::map<std::string, Tensor>;

struct Availability {
  enum class Kind { ok, not_supported, not_run };
  Kind kind = Kind::ok;
  std::string reason;
  static Availability ok() { return {}; }
  static Availability not_supported(std::string why) { return {Kind::not_supported, std::move(why)}; }
  static Availability not_run(std::string why) { return {Kind::not_run, std::move(why)}; }
};

class Implementation {
 public:
  virtual ~Implementation() = default;
  virtual std::string name() const = 0;
  // Declared arithmetic, e.g. "bf16 in, fp32 accumulate, A_inv bf16, state fp32".
  virtual std::string arithmetic() const = 0;
  // The same up to A_inv in machine-readable form (for the bound ratio R, harness/inverse_bound.hpp).
  // nullopt: not declared here (gdnv then looks the name up, or parses a captured group's attribute).
  virtual std::optional<DeclaredArithmetic> declared_arithmetic() const { return std::nullopt; }
  virtual Availability can_implement(Problem const& p) const = 0;
  virtual StageOutputs run(Problem const& p) = 0;

  // Optional: every stage run in isolation, fed the reference's inputs to that stage (rounded to
  // the dtype the stage consumes), so an error is attributed to the stage that made it.
  // gdnv check reports these as a second result, "<name>[isolated]".
  virtual bool has_isolated_stages() const { return false; }
  virtual StageOutputs run_isolated(Problem const& p, ChunkedResult const& ref) {
    (void)p;
    (void)ref;
    return {};
  }
};

// A captured group: run() returns the tensors stored in the file for exactly these inputs.
class CapturedImplementation final : public Implementation {
 public:
  explicit CapturedImplementation(CapturedGroup group) : group_(std::move(group)) {}
  std::string name() const override { return "captured:" + group_.name; }
  std::string arithmetic() const override;
  Availability can_implement(Problem const&) const override { return Availability::ok(); }
  StageOutputs run(Problem const&) override { return group_.tensors; }
  CapturedGroup const& group() const { return group_; }

 private:
  CapturedGroup group_;
};

// Implementations selectable with `gdnv check --impl`, by name. Empty when built without CUDA
// kernels; names of kernels that exist in the project but are not built here are still listed
// by known_implementation_names() so that they report not_run instead of a usage error.
std::vector<std::string> known_implementation_names();
// Throws UsageError for an unknown name.
std::unique_ptr<Implementation> make_implementation(std::string const& name);

}  // namespace gdnv
