#include "harness/emulated_implementation.hpp"

namespace gdnv {
namespace {

class EmulatedImplementation final : public Implementation {
 public:
  EmulatedImplementation(EmulatedFaults faults, EmulatedModel model) : faults_(faults), m_(std::move(model)) {}
  std::string name() const override { return m_.name; }
  std::string arithmetic() const override {
    std::string a = emulated_arithmetic_description();
    if (m_.precise_uv)
      a += "; precise variant: beta*v, u, v_new and the score matrix kept in fp32 (not rounded to the input "
           "dtype; u and v_new stored fp32), as the \"precise\" CUDA kernels' hi+lo pairs";
    if (m_.tc_inverse)
      a += "; inverse as the GQA-shared kernels: 16x16 diagonal blocks by fp32 substitution, merges as a 32x32 "
           "recursive inverse with 3xTF32 products (hi*hi + hi*lo + lo*hi of tf32 parts, fp32 accumulation)";
    if (m_.fold_beta)
      a += "; beta folded into the A_inv operand: u = round(A_inv diag(beta)) v, w = round(A_inv "
           "diag(beta e^g)) k (intra variant 3)";
    if (m_.pair_walk)
      a += "; state walk of two chunks per step (planned state_output_fused variant 5): chunk 2 from the pair's "
           "snapshot, v_new_2 = u_2 - (e^G1 W_2 h + round(W_2 K_1^T) Db_1), o_2 with the cross block "
           "round(e^g Q_2 K_1^T) Db_1, one state update per pair";
    if (m_.delta_from_v)
      a += "; the walk forms the delta from v (state_output_fused 4 with Args::delta_from_v, fused-forward-from-v): "
           "delta = round(A_inv diag(beta)) round(v - diag(e^g) K round(h)), no w or u formed";
    if (faults_.any()) a += " (with deliberate faults: a selftest variant)";
    return a;
  }
  // fp32 KKT, fp32 16x16 substitution and merges, A_inv in the input dtype (a fault variant declares
  // the same: the fault is a bug against its declaration).
  std::optional<DeclaredArithmetic> declared_arithmetic() const override {
    DeclaredArithmetic d = emulated_declared_arithmetic();
    if (m_.precise_uv) d.v_operand = d.u = d.v_new = d.scores = Precision::fp32;
    if (m_.tc_inverse) d.merges = Precision::tf32x3;  // fold_beta: as harness/inverse_bound.cpp says
    return d;
  }
  Availability can_implement(Problem const& p) const override {
    std::string why;
    if (!emulation_supports(p, &why)) return Availability::not_supported(why);
    return Availability::ok();
  }
  StageOutputs run(Problem const& p) override {
    EmulatedOptions opt;
    opt.faults = faults_;
    opt.precise_uv = m_.precise_uv;
    opt.tc_inverse = m_.tc_inverse;
    opt.fold_beta = m_.fold_beta;
    opt.pair_walk = m_.pair_walk;
    opt.delta_from_v = m_.delta_from_v;
    StageOutputs out = stage_outputs_of(emulated_forward(p, opt));
    if (m_.delta_from_v) out.erase("w"), out.erase("u");  // as its kernels: never formed
    return out;
  }
  bool has_isolated_stages() const override { return !m_.pair_walk && !m_.delta_from_v; }
  StageOutputs run_isolated(Problem const& p, ChunkedResult const& ref) override {
    EmulatedOptions opt;
    opt.faults = faults_;
    opt.precise_uv = m_.precise_uv;
    opt.tc_inverse = m_.tc_inverse;
    opt.fold_beta = m_.fold_beta;
    opt.stage_inputs = &ref;
    return stage_outputs_of(emulated_forward(p, opt));
  }

 private:
  EmulatedFaults faults_;
  EmulatedModel m_;
};

}  // namespace

StageOutputs stage_outputs_of(ChunkedResult r) {
  StageOutputs out;  // moved, not copied: h alone is B*NT*HV*K*V doubles
  out["g_cumsum"] = std::move(r.g_cumsum);
  out["A"] = std::move(r.A);
  out["A_inv"] = std::move(r.A_inv);
  out["w"] = std::move(r.w);
  out["u"] = std::move(r.u);
  out["v_new"] = std::move(r.v_new);
  out["h"] = std::move(r.h);
  out["o"] = std::move(r.o);
  out["final_state"] = std::move(r.final_state);
  return out;
}

std::string emulated_arithmetic_description() {
  return "CPU model of FLA's bf16 chunked pipeline (gdn-algorithm.md 2.9): inputs as stored, fp32 arithmetic "
         "(float products and fp32-rounded accumulation), in-kernel l2norm fp32 then input dtype, g_cumsum fp32, "
         "A fp32, (I+A)^-1 by fp32 16x16 forward substitution + fp32 merges, A_inv stored in the input dtype, "
         "beta*v and beta*e^g*k rounded to the input dtype, w/u/v_new/h/o stored in the input dtype, running "
         "state fp32 with its W*S operand rounded to the input dtype, gated delta and score matrix rounded to "
         "the input dtype, final_state fp32 (fp32 inputs: fp32 throughout)";
}

DeclaredArithmetic emulated_declared_arithmetic() { return DeclaredArithmetic{}; }

std::unique_ptr<Implementation> make_emulated_implementation(EmulatedFaults const& faults, std::string name,
                                                             bool precise_uv) {
  EmulatedModel m;
  m.name = std::move(name);
  m.precise_uv = precise_uv;
  return std::make_unique<EmulatedImplementation>(faults, std::move(m));
}

std::vector<EmulatedModel> const& emulated_models() {
  static std::vector<EmulatedModel> const models = {
      {kEmulatedName, false, false, false},
      {kEmulatedPreciseName, true, false, false},
      {"emulated-fused-v5", false, true, false},
      {"emulated-fused-intra-v3", false, true, true},
      {"emulated-precise-v3", true, true, true},
      {"emulated-fused-forward-pairs", false, true, true, true},
      {"emulated-fused-forward-from-v", false, true, true, false, true},
  };
  return models;
}

std::unique_ptr<Implementation> make_emulated_model(std::string const& name) {
  for (auto const& m : emulated_models())
    if (m.name == name) return std::make_unique<EmulatedImplementation>(EmulatedFaults{}, m);
  return nullptr;
}

}  // namespace gdnv
