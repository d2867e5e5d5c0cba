// Componentwise error bounds for the chunk inverse A_inv = (I + A)^-1 (verification-method.md
// §3.8), computed in double from the exact stored inputs and the arithmetic an implementation
// declares, and the bound ratio R = max over the strictly-lower entries of |Xhat - X| / B.
//
// For one chunk of one value head, with X = T^-1 (T = I + A) the reference's fp64 inverse and
// m the chunk's valid rows:
//   B = u_out |X| + (1 + u_out) (|X| E_A |X| + c_inv P) + gamma_m(u_64) P + tiny
//     P   = |X| |T| |X|                      (substitution / blocked inverse; Neumann: (I - |A|)^-1)
//     c_inv = gamma_m(u_inv), u_inv the coarser of the declared inverse and merge precisions
//             (Neumann: gamma_{2m})
//     E_A = the KKT stage's own first-order bound on the computed A (entrywise):
//       beta_i e^{gamma_i - gamma_j} S_ij [ (1 + gamma_{d+4}(u_acc)) (1 + kappa_k) e^{eta_ij} - 1 ]
//       S_ij  = sum_l |k_il k_jl|; d+4: the dot product, its two multiplies, exp's 2 ulps (d+5 where a
//               stored beta finer than u_acc is converted)
//       kappa_k = (1 + eps_k)^2 - 1, eps_k = u_in + gamma_{d+3}(u_acc) where the kernel rounds the keys
//               it reads (in-kernel l2norm, or a declared input precision coarser than the stored k), else 0
//       eta_ij = e_i + e_j + 3 u_acc |gamma_i - gamma_j|: the fp32 gate cumsum's error
//               e_i = gamma_{i+1}(u_acc) sum_{s<=i} |g_s| (any summation order), the difference's
//               rounding and a fast exp's argument-proportional error
//     u_out = the declared A_inv storage precision ("input": k's stored dtype)
//     tiny  = absolute underflow terms (flush-to-zero in the accumulate precision, gradual underflow
//             in the output), negligible unless an entry is near the smallest normal
// The deterministic bound B_det uses gamma_m = m u / (1 - m u); the probabilistic B_prob replaces
// every gamma_m(u) by sqrt(m) u (lambda = 1, Higham & Mary 2019). The (1 + u_out) factor makes the
// output rounding of an already perturbed value rigorous, and the gamma_m(u_64) P term covers the
// fp64 reference's own error (margin_ref reports how small it is against B_det).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chunked.hpp"
#include "problem.hpp"
#include "tensor.hpp"

namespace gdnv {

// A precision an implementation computes or stores in. `input`: the dtype of the tensor's input
// (k for A_inv, w, h and the state operand; v for u, v_new, the score matrix and o). `split`: an fp32
// value carried as two input-dtype parts hi + lo (hi = round(x), lo = round(x - hi)), so
// |x - hi - lo| <= u_in^2 |x| (bf16: 2^-16); with fp32 inputs it is plain fp32. `tf32x3`: a product of
// fp32 values on tf32 tensor cores as hi*hi + hi*lo + lo*hi (hi = tf32(x), lo = tf32(x - hi), both truncated as
// the tensor cores read a register), fp32 accumulation: each product within 3 * 2^-20 (1 + 2^-10) < 2^-18 of
// exact, so u = 2^-18 (the accumulation's own rounding, 2^-23 even if it truncates, is below that).
enum class Precision { input, bf16, fp16, tf32, fp32, fp64, split, tf32x3 };
std::string precision_name(Precision p);
// "bf16", "bfloat16", "fp16", "half", "float16", "tf32", "tf32x3" ("3xtf32"), "fp32", "float", "float32",
// "fp64", "double", "float64", "input", "split" ("hi+lo"); nullopt otherwise.
std::optional<Precision> parse_precision(std::string const& name);
// Unit roundoff of p (tf32: 2^-11, tf32x3: 2^-18); `input` resolves to `stored`; `split` to u(stored)^2 for 16-bit
// `stored`, else to fp32's.
double unit_roundoff(Precision p, DType stored);
// Smallest positive normal number of p (`input` resolved against `stored`): the flush-to-zero threshold.
double smallest_normal(Precision p, DType stored);

enum class InverseAlgorithm { substitution, blocked, neumann };

// The arithmetic an implementation declares, machine-readable: the stages up to A_inv (this file's
// bound) and the stored precisions of the later stages (reference/stage_bounds.hpp). The defaults of
// the later stages are FLA's rounding points (gdn-algorithm.md 2.9).
struct DeclaredArithmetic {
  Precision input = Precision::input;       // q, k as the kernel reads them
  Precision accumulate = Precision::fp32;   // every product's accumulation and every fp32 op: KKT, gate cumsum, exp,
                                            // the w/u, state and output products
  Precision inverse = Precision::fp32;      // the inverse's forward substitution (16x16 blocks)
  Precision merges = Precision::fp32;       // the block inverse's merge GEMMs
  Precision A_inv = Precision::input;       // A_inv as stored
  InverseAlgorithm algorithm = InverseAlgorithm::blocked;
  // Later stages. A stored precision that is not coarser than the value it stores adds nothing.
  Precision A = Precision::fp32;                  // A as stored / handed to the inverse
  Precision A_inv_operand = Precision::input;     // A_inv as the w/u products read it (split: hi+lo parts)
  Precision operands = Precision::input;          // beta e^g k and the gated delta of K^T Delta' as their
                                                  // products read them (and beta v unless v_operand is declared)
  Precision v_operand = Precision::input;         // beta v as the u product reads it (parsing: = operands
                                                  // unless declared; "precise" keeps it split)
  Precision w = Precision::input, u = Precision::input, v_new = Precision::input;  // stored
  Precision h = Precision::input;                 // the start-of-chunk state snapshot as stored (o reads it)
  Precision o = Precision::input;                 // o as stored (then also q's dtype, if coarser)
  Precision state = Precision::fp32;              // the running state and final_state
  Precision state_operand = Precision::input;     // the state as the W*S product reads it (FLA: input dtype)
  Precision scores = Precision::input;            // the intra-chunk score matrix (QK^T . Gamma) before P*v_new

  // "input=input accumulate=fp32 inverse=fp32 merges=fp32 A_inv=input method=blocked A=fp32 ...": parses back.
  std::string to_string() const;
  bool operator==(DeclaredArithmetic const&) const = default;
};

// Parses a declaration: items separated by ',' ';' or spaces, each "key=value" or "key: value", or
// the two-word form "<precision> <key>" / "<key> <precision>" ("bf16 in, fp32 accumulate, A_inv bf16,
// state fp32"). Keys: input/in, accumulate/acc, inverse, merges/merge, A_inv, method, A,
// A_inv_operand, operands, v_operand, w, u, v_new, h, o/output, state/final_state, state_operand/ws,
// scores/score/P.
// Keys of inputs (g_cumsum, gate, beta, g) are accepted and ignored. A_inv and accumulate (or inverse)
// must be declared; inverse defaults to accumulate, merges to inverse, every later-stage key to the
// default above. nullopt (with the reason in `why`) when the text does not parse.
std::optional<DeclaredArithmetic> parse_declared_arithmetic(std::string const& text, std::string* why = nullptr);

// Bound matrices of every chunk and value head in A_inv's layout [B,T,HV,64] (row t holds row t - 64c
// of its chunk's bound; entries on and above the diagonal and past the valid rows are 0).
//
// A itself gets its bound too: E_A above (plus u_A (|A| + E_A) where the declared A storage is coarser
// than the accumulation), in A's layout, in A_det / A_prob.
struct InverseBounds {
  DeclaredArithmetic arithmetic;
  Tensor det, prob;
  Tensor A_det, A_prob;
  double margin_ref = 0;  // max over strictly-lower entries of (the fp64 reference's own bound) / B_det
};

InverseBounds inverse_bounds(Problem const& p, ChunkedResult const& ref, DeclaredArithmetic const& a,
                             int threads = 0);

// R of one chunk of one value head, in the order of Problem::chunks() x value heads (as the per-chunk
// rows of compare_outputs for A_inv).
struct InverseBoundRow {
  int64_t sequence = 0, head = 0, chunk = 0, rows = 0;
  double r_det = 0, r_prob = 0;  // inf where an entry is non-finite
  int64_t row = -1, col = -1;    // the entry (within the chunk) that sets r_det; -1 for a 1-row chunk
  double error = 0, bound = 0;   // |Xhat - X| and B_det at that entry
  // Structure (verification-method.md 0.3), reported, not part of R: entries of the chunk's valid
  // square strictly above the diagonal that are not exactly 0, diagonal entries that are not exactly 1.
  int64_t upper_nonzero = 0, diagonal_not_one = 0;
};

// Xhat: an implementation's A_inv, same shape as ref.A_inv.
std::vector<InverseBoundRow> inverse_bound_ratios(Problem const& p, ChunkedResult const& ref,
                                                  InverseBounds const& b, Tensor const& Xhat);

}  // namespace gdnv
