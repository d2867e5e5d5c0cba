// Synthetic input families for the chunked gated delta rule (docs/gdn-algorithm.md §4.2, §5, §7).
// Every value is computed in double and rounded once to its stored dtype, so the stored value is
// exactly what the kernels and the reference consume. The random streams use only the integer
// output of our own generator and our own uniform/normal transforms (no std:: distributions,
// whose results are implementation-defined): the same parameters give the same bits everywhere
// the C math library (log, exp, log1p, expm1) gives the same results.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reference/problem.hpp"
#include "reference/tensor.hpp"

namespace gdnv {

struct GeneratorParams {
  std::string family;
  int64_t B = 1, T = 256, H = 2, HV = 4, K = 128, V = 128;
  // Non-empty: varlen (B must be 1; T becomes the sum; cu_seqlens built from the lengths).
  std::vector<int64_t> seqlens;
  DType dtype = DType::bf16;  // q, k, v (g, beta and initial_state are fp32)
  uint64_t seed = 0;
  bool h0 = false;                        // initial_state [N,HV,K,V] fp32, 0.1 * randn
  std::optional<double> gate_normalizer;  // g is divided by it (> 0)
  std::optional<int> rank;                // correlated-keys only: key subspace rank
  std::optional<double> scale;            // default K^-0.5
  // true: q, k stored raw with qk_l2norm = 1; false: normalized before rounding, qk_l2norm = 0.
  // Default per family (model-like: true, the others: false).
  std::optional<bool> l2norm_in_kernel;
};

// Throws std::invalid_argument (unknown family, inconsistent dims or options).
Problem generate_problem(GeneratorParams const& params);

// Family names, in help order.
std::vector<std::string> generator_families();
// One line per family (for --help); throws std::invalid_argument for an unknown family.
std::string generator_family_description(std::string const& family);

// Default key subspace rank of correlated-keys for a seed: 2 + seed % 7 (2..8).
int default_correlated_rank(uint64_t seed);

// ---- building blocks, exposed for the tests ------------------------------------------------

// A random stream: xoshiro256** seeded through splitmix64 from (seed, stream name), so each
// tensor has its own independent stream and changing one recipe does not shift the others.
class RandomStream {
 public:
  RandomStream(uint64_t seed, std::string const& stream);
  uint64_t next_u64();
  double uniform();                       // [0, 1), 53 random bits
  double uniform(double lo, double hi);   // [lo, hi)
  double normal();                        // N(0, 1), Marsaglia polar method

 private:
  uint64_t s_[4];
  bool have_spare_ = false;
  double spare_ = 0.0;
};

// Causal depthwise convolution over time of x [T, C] (row-major) with per-channel weights
// w [C, width]: y[t][c] = sum_j w[c][j] * x[t - (width-1) + j][c], where inputs before the
// start of t's sequence count as zero. `cu` holds the sequence boundaries in rows
// (0 = cu[0] <= ... <= cu.back() = T); empty means one sequence [0, T).
std::vector<double> causal_depthwise_conv(std::vector<double> const& x, int64_t T, int64_t C,
                                          std::vector<double> const& w, int64_t width,
                                          std::vector<int64_t> const& cu);

// The Qwen3-Next / Qwen3.5 gate: -exp(A_log) * softplus(a + dt_bias), in double.
double qwen_gate(double a, double A_log, double dt_bias);
// softplus^-1(dt) = dt + log(-expm1(-dt)), the production dt_bias initialization.
double inverse_softplus(double y);

}  // namespace gdnv
