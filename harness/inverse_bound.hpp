// The componentwise bound ratio R for A_inv (reference/bounds.hpp, verification-method.md §3.8) as
// gdnv check and gdnv selftest apply it: which arithmetic an implementation declares, R per chunk
// filled into the comparison's A_inv rows and metrics, a summary per result, and the hard gate
// R_det <= 1 (a violation is a fault in the arithmetic, not noise: the bound is first-order rigorous
// for the declared precisions).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "harness/compare.hpp"
#include "harness/implementation.hpp"
#include "reference/bounds.hpp"

namespace gdnv {

struct CheckResult;

inline constexpr double kBoundGate = 1.0;  // R_det must not exceed it

// The arithmetic gdnv knows for an implementation name ("[isolated]" stripped): emulated, unfused,
// unfused-splitstate, fused, fused-intra (A_inv in the input dtype, fp32 16x16 substitution + fp32
// merges), unfused-fp32inv (same, A_inv fp32), cublas (fp32 triangular solve, A_inv fp32),
// cublas-fp64 (fp64 triangular solve of the fp32 A, A_inv fp32). nullopt for any other name.
std::optional<DeclaredArithmetic> known_declared_arithmetic(std::string const& name);

// The implementation's own declaration, else the table above, else (captured groups) the
// `arithmetic` attribute if it parses. nullopt with the reason in `why` otherwise.
std::optional<DeclaredArithmetic> declared_arithmetic_for(Implementation const& impl, std::string* why = nullptr);

// R over one result's A_inv.
struct BoundSummary {
  bool computed = false;
  std::string reason;            // why not computed
  std::string tensor = "A_inv";
  std::string arithmetic;        // DeclaredArithmetic::to_string()
  double gate = kBoundGate;
  int64_t chunks = 0;
  int64_t chunks_over = 0;       // chunks with R_det > gate (or non-finite)
  double max_r_det = 0, p50_r_det = 0, p99_r_det = 0;
  double max_r_prob = 0, p50_r_prob = 0, p99_r_prob = 0;
  double margin_ref = 0;         // the fp64 reference's own bound / B_det, max (must be << 1)
  InverseBoundRow worst;         // the chunk with the largest R_det
  // Summed over chunks, reported only (a kernel may keep another convention for the unused triangle):
  // strictly-upper entries not exactly 0, diagonal entries not exactly 1.
  int64_t upper_nonzero = 0, diagonal_not_one = 0;
  bool passed() const { return !computed || chunks_over == 0; }
};

// p-quantile (nearest rank) of the values; 0 when empty.
double quantile(std::vector<double> values, double q);

// R for an A_inv against precomputed bounds: fills `cmp`'s A_inv rows (r_det, r_prob) and A_inv
// metrics, returns the summary.
BoundSummary summarize_inverse_bound(Problem const& p, ChunkedResult const& ref, InverseBounds const& bounds,
                                     Tensor const& A_inv, Comparison& cmp);

// "A_inv seq s head h chunk c: bound ratio R_det x > 1 (entry (i,j): error e, bound b)"
std::string bound_failure_reason(BoundSummary const& s);

// What gdnv check does for one result: where `out` has A_inv and the implementation declares its
// arithmetic, computes R, records it in r (comparison rows/metrics and r.bound), and fails r (a new
// reason, after any floor-ratio reason) when max R_det > kBoundGate. Results in error are left alone.
void apply_inverse_bound(CheckResult& r, Implementation const& impl, Problem const& p, ChunkedResult const& ref,
                         StageOutputs const& out);

}  // namespace gdnv
