// `--impl emulated`: the CPU model of the serving kernels' arithmetic (reference/emulated.hpp)
// behind the Implementation interface, so it passes through the same comparison as any kernel.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "harness/implementation.hpp"
#include "reference/chunked.hpp"
#include "reference/emulated.hpp"

namespace gdnv {

inline constexpr char kEmulatedName[] = "emulated";
// The model of the "precise" CUDA variant (EmulatedOptions::precise_uv).
inline constexpr char kEmulatedPreciseName[] = "emulated-precise";

// Which CUDA kernels' arithmetic a model follows (EmulatedOptions), with its `--impl` name.
struct EmulatedModel {
  std::string name;
  bool precise_uv = false;  // the "precise" pipeline
  bool tc_inverse = false;  // kkt_solve_fused.cu variant 5 / intra_fused.cu variant 3: 3xTF32 merges
  bool fold_beta = false;   // intra_fused.cu variant 3: beta folded into the A_inv operand
  bool pair_walk = false;   // a state walk of two chunks per step (EmulatedOptions::pair_walk; its kernel is a patch)
  bool delta_from_v = false;  // the walk forms the delta from v (EmulatedOptions::delta_from_v): no w, u reported
};
// The correct models, in `--impl` order: emulated, emulated-precise, emulated-fused-v5,
// emulated-fused-intra-v3, emulated-precise-v3, emulated-fused-forward-pairs, emulated-fused-forward-from-v.
std::vector<EmulatedModel> const& emulated_models();

// Every intermediate of a ChunkedResult as StageOutputs (the tensor names of the schema).
StageOutputs stage_outputs_of(ChunkedResult r);

// The declared arithmetic of the model (what gdnv check writes in the results file).
std::string emulated_arithmetic_description();
// The same up to A_inv, machine-readable: q/k in the input dtype, fp32 KKT and gate cumsum, fp32 16x16
// forward substitution and fp32 merges, A_inv stored in the input dtype.
DeclaredArithmetic emulated_declared_arithmetic();

// The correct model under kEmulatedName; with faults, a wrong variant (for the selftest).
std::unique_ptr<Implementation> make_emulated_implementation(EmulatedFaults const& faults = {},
                                                             std::string name = kEmulatedName,
                                                             bool precise_uv = false);
// One of emulated_models(), by name; nullptr for another name.
std::unique_ptr<Implementation> make_emulated_model(std::string const& name);

}  // namespace gdnv
