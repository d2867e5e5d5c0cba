// A CPU model of the arithmetic of a bf16 chunked GDN pipeline as FLA runs it (gdn-algorithm.md
// sections 2.1-2.9): the same stages, the same stored dtypes, the same rounding points, so the
// whole verification path can be exercised without a GPU and a measured GPU error can be set
// against its prediction.
//
// Arithmetic model. Every stage computes in IEEE single precision (C++ float; Eigen float GEMMs,
// which accumulate in float with FMA): a product of two bf16/fp16 values is exact in float, as on
// the tensor cores, and the sums are rounded to fp32 as they go (a real fp32 accumulation, not a
// double sum rounded once). Values are rounded (RNE) to the input dtype exactly where the kernels
// store or feed a 16-bit operand to a dot:
//   q, k after in-kernel l2norm (fp32 math)             -> q/k dtype
//   g_cumsum (fp32 sequential cumsum, natural log)      fp32
//   A = beta_r (k_r.k_c e^{gamma_r - gamma_c}), r > c   fp32
//   (I + A)^-1: fp32 forward substitution on 16x16 diagonal blocks, fp32 merges
//     (T10, T21, T32, then T20, T31, then T30)          -> k dtype (A_inv)
//   beta v, beta e^gamma k (dot operands)               -> v / k dtype
//   u = A_inv (beta v), w = A_inv (beta e^gamma k)     -> v / k dtype
//   running state S                                     fp32 (final_state fp32)
//   W*S state operand and the snapshot h                -> k dtype
//   v_new = u - W S                                     -> v dtype
//   gated delta operand of K^T (e^{gamma_last - gamma} v_new)  -> k dtype
//   (Q K^T) . Gamma, lower incl. diagonal (score matrix)        -> v dtype
//   o = scale (e^gamma Q h + P v_new)                   -> v dtype, then q dtype
// fp32 inputs keep fp32 everywhere (every rounding above is then the identity). Exponentials use
// natural exp of fp32 gate differences (sglang's form; FLA's exp2 of log2-scaled gates differs by
// ~1e-7 relative).
//
// EmulatedFaults switches on deliberately wrong variants of the same pipeline; all off is the
// correct model. `gdnv selftest` checks that the verification flags each of them.
#pragma once

#include <string>
#include <vector>

#include "chunked.hpp"
#include "problem.hpp"

namespace gdnv {

struct EmulatedFaults {
  bool A_with_diagonal = false;       // KKT mask keeps r >= c: A has beta_r ||k_r||^2 on its diagonal
  bool strict_output_mask = false;    // score mask r > c: each token misses its own write in o
  bool gate_one_token_late = false;   // gamma_r = sum_{s<r} g_s (exclusive cumsum)
  bool tf32_merges = false;           // merge operands of the block inverse rounded to tf32
  bool state_in_input_dtype = false;  // running state rounded to the input dtype after every chunk
  bool drop_initial_state = false;    // start every sequence from zeros
  bool gqa_modulo = false;            // value head hv reads key head hv % H instead of hv / G
  bool state_leaks_across_sequences = false;  // sequence n starts from sequence n-1's final state
  int beta_power = 1;                 // 0: beta never applied, 2: applied twice
  bool missing_scale = false;         // o without the scale factor
  bool exp_before_mask = false;       // gate factors multiplied by a 0/1 mask after exp (FLA #792)
  bool stale_state_read = false;      // h / inter-chunk output read the end-of-chunk state
  bool no_state_decay = false;        // S not decayed by e^{gamma_last} between chunks
  bool w_without_gate = false;        // w = A_inv (beta k): the e^gamma factor forgotten
  // EmulatedOptions::pair_walk without the terms of chunk 1's delta in chunk 2 (round(W_2 K_1^T) Db_1 in v_new,
  // the cross score block in o): the bug a two-chunk walk is most likely to have
  bool pair_without_chunk1_terms = false;

  bool any() const;
};

struct EmulatedOptions {
  EmulatedFaults faults;
  int threads = 0;  // 0: all cores
  // Isolated stages: when set, every stage is fed the exact result of the stages before it (these
  // intermediates, in chunked_forward's layouts), rounded to the dtype the stage consumes: the gate
  // cumsum (fp32) for every later stage, A (fp32) for the inverse, A_inv (k dtype) for w/u, w and u
  // for the state pass (which still runs its own fp32 state), h and v_new for the output. Each
  // tensor then holds only the error of the stage that produced it.
  ChunkedResult const* stage_inputs = nullptr;
  // The arithmetic of the "precise" CUDA variant (Args::precise_uv): beta v, u, v_new and the score
  // matrix are not rounded to the input dtype (u and v_new stored fp32). The kernels carry beta v, v_new
  // and the scores as hi + lo 16-bit pairs (~2^-16 relative), which this model treats as fp32: the
  // difference is far below the bf16 output floor.
  bool precise_uv = false;
  // The arithmetic of the GQA-shared CUDA kernels (kkt_solve_fused.cu variant 5, intra_fused.cu variant 3):
  // (I + A)^-1 of the zero-padded 64x64 chunk with the 16x16 diagonal blocks by the fp32 substitution and
  // the merges as a 32x32 recursive inverse (T10 = -T11 (A10 T00), T32 = -T33 (A32 T22), Y = A_BA T_A,
  // C = -T_B Y) whose every product is 3xTF32: hi*hi + hi*lo + lo*hi of tf32 parts, fp32 accumulation.
  bool tc_inverse = false;
  // intra variant 3: beta folded into the A_inv operand instead of the inputs: u = round(A_inv diag(beta)) v,
  // w = round(A_inv diag(beta e^gamma)) k, the fp32 A_inv scaled column by column in fp32 and rounded once
  // to the input dtype (with precise_uv the u operand stays fp32, as the kernel's hi + lo pair).
  bool fold_beta = false;
  // The arithmetic of a state walk that takes two chunks per step (state_output_fused variant 5's, which took
  // 1.22x variant 4's time and stays a patch: bench/results/so5-pairs-experiment.patch, cuda/NOTES.md, twenty-third
  // session): in a sequence's chunk pairs (1, 2) -- an odd last chunk alone --
  // chunk 1 runs as above from the pair's snapshot round(h); chunk 2 takes the same snapshot:
  //   v_new_2 = u_2 - (e^{G_1} W_2 round(h) + round(W_2 K_1^T) Db_1),  Db_1 = round(delta_1 e^{G_1 - gamma}),
  //   o_2 = scale (e^{gamma_i + G_1} Q_2 round(h) + round(e^{gamma_i} Q_2 K_1^T) Db_1 + P_22 v_new_2),
  // and the state advances once per pair: e^{G_1 + G_2} h + K_1^T round(delta_1 e^{G_1 - gamma + G_2}) + K_2^T Db_2.
  // Chunk 2's stored h is round(e^{G_1} h + K_1^T Db_1), which the walk never forms. The state-pass faults are not
  // modelled with it, and it has no isolated stages (std::invalid_argument).
  bool pair_walk = false;
  // The arithmetic of a walk that forms the delta from v itself (FlashQLA's form; intra_fused 3 then writes only
  // Mu = round(A_inv diag(beta)), no w or u: Args::delta_from_v, `fused-forward-from-v`): with fold_beta's Mu,
  //   delta = Mu round(v - diag(e^gamma) (K round(h))),  K round(h) an fp32 product of the stored k and the snapshot,
  // the same value as u - W h in exact arithmetic (W h = Mu diag(e^gamma) K h) with one rounding (of the
  // parenthesis) where FLA has three (u, w and their difference's operands). w and u are still stored by the model
  // (fold_beta's, for reference) although the kernels never form them. Needs fold_beta (std::invalid_argument);
  // no isolated stages, not with pair_walk; w_without_gate drops the e^gamma factor here too.
  bool delta_from_v = false;
};

// True when the model covers these inputs: q, k, v stored as bf16, fp16 or fp32 (fp64 inputs
// have no kernel counterpart). `why` gets the reason otherwise.
bool emulation_supports(Problem const& p, std::string* why = nullptr);

// Every intermediate in the layouts of chunked_forward (ChunkedResult), each tensor tagged with
// the dtype the modelled kernel stores it in (g_cumsum, A, final_state fp32; A_inv, w, h k's dtype;
// u, v_new v's dtype; o q's dtype); values are the stored values widened to double.
// Throws std::invalid_argument when !emulation_supports(p).
ChunkedResult emulated_forward(Problem const& p, EmulatedOptions const& opt = {});

// fp32 -> the nearest tf32 value (10 explicit mantissa bits, RNE), as a float.
float round_to_tf32(float x);
// fp32 -> tf32 by truncation (the low 13 bits of the significand cleared: how the tensor cores read an fp32
// register as a tf32 operand), as a float.
float truncate_to_tf32(float x);

}  // namespace gdnv
