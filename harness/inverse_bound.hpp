// The componentwise bound ratio R (reference/bounds.hpp for A and A_inv, reference/stage_bounds.hpp for
// w, u, v_new, h, o, final_state; verification-method.md §3.8) as gdnv check and gdnv selftest apply
// it: which arithmetic an implementation declares, R per chunk filled into the comparison's rows and
// metrics of every bounded tensor, a summary per tensor and result, the hard gate R_det <= 1 on every
// bounded tensor (a violation is a fault in the arithmetic, not noise: the bounds are rigorous for the
// declared precisions), and the disposition `explained`: a result whose only failures are chunks above
// the floor-ratio gate that lie inside their bounds is explained by conditioning, not a fault.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "harness/compare.hpp"
#include "harness/implementation.hpp"
#include "reference/bounds.hpp"
#include "reference/conditioning.hpp"
#include "reference/stage_bounds.hpp"

namespace gdnv {

struct CheckResult;

inline constexpr double kBoundGate = 1.0;  // R_det must not exceed it

// The arithmetic gdnv knows for an implementation name ("[isolated]" stripped): emulated, unfused,
// fused, fused-intra (A_inv in the input dtype, fp32 16x16 substitution + fp32 merges; FLA's later
// rounding points: beta-scaled operands, w, u, v_new, h, the W*S state operand, the gated delta, the
// score matrix and o in the input dtype, state fp32), unfused-splitstate (the same with the W*S state
// operand split hi+lo), unfused-fp32inv (A_inv fp32, read by w/u as hi+lo parts, split state operand),
// cublas (fp32 triangular solve, A_inv fp32 read as hi+lo, split state operand), cublas-fp64 (fp64
// triangular solve of the fp32 A, otherwise as cublas). nullopt for any other name.
std::optional<DeclaredArithmetic> known_declared_arithmetic(std::string const& name);

// The implementation's own declaration, else the table above, else (captured groups) the
// `arithmetic` attribute if it parses. nullopt with the reason in `why` otherwise.
std::optional<DeclaredArithmetic> declared_arithmetic_for(Implementation const& impl, std::string* why = nullptr);

// R over one result's tensor (A_inv, or any other bounded tensor).
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
  InverseBoundRow worst;         // the chunk with the largest R_det (row/col: the entry within the block)
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

// R for any tensor of bounded_tensors() against precomputed stage bounds: fills `cmp`'s rows (r_det,
// r_prob) and metrics of that tensor, returns the summary. A_inv: as summarize_inverse_bound.
BoundSummary summarize_stage_bound(Problem const& p, ChunkedResult const& ref, StageBounds const& bounds,
                                   std::string const& tensor, Tensor const& got, Comparison& cmp);

// "A_inv seq s head h chunk c: bound ratio R_det x > 1 (entry (i,j): error e, bound b)"
std::string bound_failure_reason(BoundSummary const& s);

// What gdnv check does for one result (r judged by the floor ratio already: passed, or failed with the
// floor-ratio reason): where the implementation declares its arithmetic, computes R for every tensor of
// `out` that has a bound, records it in r (comparison rows/metrics, r.bounds, and r.bound for A_inv),
// then decides:
//  - some bounded tensor has R_det > kBoundGate on some chunk: failed (a fault; the bound reasons follow
//    any floor-ratio reason);
//  - else, failed by the floor ratio only, and every chunk above `max_floor_ratio` is finite and belongs
//    to a bounded tensor (whose R_det <= 1 there): explained (the reason names the worst such chunk,
//    its floor ratio, R_det and the chunk's conditioning from `cond`, in the order of chunk_conditioning);
//  - else unchanged. Results in error (or not run) are left alone.
// Bounds depend on the case and the declared arithmetic only: a cache (one per case) lets the
// implementations of a case that declare the same arithmetic (a kernel and its [isolated] run) share them.
struct BoundsCache {
  std::map<std::string, std::shared_ptr<std::pair<InverseBounds, StageBounds> const>> by_arithmetic;
};

void apply_bounds(CheckResult& r, Implementation const& impl, Problem const& p, ChunkedResult const& ref,
                  StageOutputs const& out, double max_floor_ratio, std::vector<ChunkConditioning> const* cond,
                  BoundsCache* cache = nullptr);

}  // namespace gdnv
