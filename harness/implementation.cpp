#include "implementation.hpp"

#include <algorithm>

#include "harness/emulated_implementation.hpp"
#include "harness/errors.hpp"
#include "harness/gpu_implementations.hpp"

namespace gdnv {

std::string CapturedImplementation::arithmetic() const {
  auto it = group_.extra_attrs.find("arithmetic");
  return it != group_.extra_attrs.end() ? it->second : std::string("not declared");
}

#ifndef GDNV_HAVE_CUDA
namespace {
// A GPU implementation in a build without CUDA: listed, never run.
class NotBuiltImplementation final : public Implementation {
 public:
  explicit NotBuiltImplementation(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::string arithmetic() const override { return "CUDA kernels (not built)"; }
  Availability can_implement(Problem const&) const override {
    return Availability::not_run("built without CUDA (nvcc not found at configure time)");
  }
  StageOutputs run(Problem const&) override { return {}; }

 private:
  std::string name_;
};
}  // namespace
#endif

std::vector<std::string> known_implementation_names() {
  auto names = gpu_implementation_names();
  for (auto const& m : emulated_models()) names.push_back(m.name);  // CPU models of the kernels: run everywhere
  return names;
}

std::unique_ptr<Implementation> make_implementation(std::string const& name) {
  if (auto m = make_emulated_model(name)) return m;
  auto const names = known_implementation_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string list;
    for (auto const& n : names) list += (list.empty() ? "" : ", ") + n;
    throw UsageError("unknown implementation '" + name + "' (known: " + list + ")");
  }
#ifdef GDNV_HAVE_CUDA
  return make_gpu_implementation(name);
#else
  return std::make_unique<NotBuiltImplementation>(name);
#endif
}

}  // namespace gdnv
