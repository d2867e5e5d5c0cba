// Per-chunk comparison of an implementation's tensors with the fp64 reference.
//
// The floor ratio of one block (one chunk of one value head, or one state):
//     r = ||got - exact|| / ||round(exact) - exact||
// where round() rounds to the lower precision of the tensor's output dtype and the q/k/v input
// dtype: the error a perfect kernel that rounds once at the end would have. When that floor is
// zero (exactly representable results) u * ||exact|| of that dtype is used instead.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/implementation.hpp"
#include "reference/chunked.hpp"
#include "reference/problem.hpp"

namespace gdnv {

struct ChunkRow {
  std::string tensor;
  int64_t sequence = 0;
  int64_t head = 0;   // value head
  int64_t chunk = 0;  // within the sequence; -1 for final_state
  int64_t rows = 0;   // valid tokens in the chunk (0 for states)
  double error_norm = 0, floor_norm = 0, ratio = 0;
  bool floor_from_u = false;  // the rounding floor was zero; u * ||exact|| used
  bool finite = true;         // every compared value of the block was finite
  // The componentwise bound ratio (harness/inverse_bound.hpp), where computed (A_inv rows).
  bool has_bound = false;
  double r_det = 0, r_prob = 0;
  // Reported, not gated (harness/normwise.hpp): FLA's relative RMS of the block, and on A_inv rows
  // LAPACK's xTRT01 normwise residual ratio of the chunk's inverse against T = I + A of the reference.
  double rel_rms = 0;
  bool has_trt01 = false;
  double trt01 = 0;
};

struct TensorMetrics {
  std::string tensor;
  DType dtype = DType::f64;        // as produced
  DType floor_dtype = DType::f64;  // the dtype whose rounding sets the floor
  int64_t chunks = 0;
  int64_t nonfinite = 0;           // NaN/Inf values produced
  double rel_rms = 0;              // FLA's metric: RMS(got - exact) / (RMS(exact) + 1e-8)
  double max_abs = 0;
  double relative_l2 = 0;          // ||got - exact|| / ||exact|| over the whole tensor
  double floor_ratio = 0;          // whole-tensor r (what targets.md quotes)
  double max_chunk_ratio = 0;
  double median_chunk_ratio = 0;
  // Quantiles of the per-chunk bound ratio R (harness/inverse_bound.hpp), where computed.
  bool has_bound = false;
  double max_r_det = 0, p50_r_det = 0, p99_r_det = 0;
  double max_r_prob = 0, p50_r_prob = 0, p99_r_prob = 0;
  // Reported, not gated (harness/normwise.hpp): the largest per-chunk relative RMS, and (A_inv) the
  // xTRT01 ratio's quantiles over chunks with the unit roundoff u used (LAPACK's EPS: 2^-8 for bf16).
  double max_chunk_rel_rms = 0;
  bool has_trt01 = false;
  double trt01_u = 0;
  double max_trt01 = 0, p50_trt01 = 0, p99_trt01 = 0;
};

struct Comparison {
  std::vector<ChunkRow> rows;                   // every chunk of every compared tensor
  std::map<std::string, TensorMetrics> metrics;  // per tensor
  ChunkRow worst;                               // the row with the largest ratio (or a non-finite one)
  bool any_compared() const { return !metrics.empty(); }
};

// The fp64 tensor matching `name` in the reference result (throws std::out_of_range if none).
Tensor const& reference_tensor(ChunkedResult const& ref, std::string const& name);

// Compares every tensor that `got` holds and the reference has. The input dtype is the lower
// precision of the stored q, k and v.
Comparison compare_outputs(Problem const& p, ChunkedResult const& ref, StageOutputs const& got);

DType input_dtype(Problem const& p);

// Two implementations against each other (a fused kernel against the unfused pipeline it replaces),
// per tensor both produced with the same shape: how many values are bit-equal (as produced, i.e.
// after widening to double, which is exact) and the largest absolute difference. Each side is also
// judged against the reference on its own; this says whether they compute the same numbers.
struct PairTensorStats {
  int64_t elements = 0;
  int64_t equal = 0;  // bitwise equal values (NaN never equal)
  double max_abs_diff = 0;
  double equal_fraction() const { return elements ? static_cast<double>(equal) / static_cast<double>(elements) : 1.0; }
};
std::map<std::string, PairTensorStats> compare_pair(StageOutputs const& a, StageOutputs const& b);

}  // namespace gdnv
