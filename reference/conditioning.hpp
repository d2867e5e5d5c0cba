// Per-chunk conditioning of T = I + A (verification-method.md sections 0.6 and 3.7), computed in
// double from the reference's A and X = T^-1 of each (sequence, value head, chunk).
#pragma once

#include <cstdint>
#include <vector>

#include "chunked.hpp"
#include "problem.hpp"

namespace gdnv {

struct ChunkConditioning {
  int64_t sequence = 0, head = 0, chunk = 0, rows = 0;
  double kappa_1 = 1;       // ||T||_1 ||X||_1
  double kappa_inf = 1;     // ||T||_inf ||X||_inf
  double skeel = 1;         // Skeel's cond(T) = || |X| |T| ||_inf (invariant under row scaling)
  double max_abs_inv = 1;   // max |X_ij|
  // max over i >= j of the structural bound on |X_ij|: beta_i ||k_i|| ||k_j|| e^{gamma_i - gamma_j}
  // below the diagonal, 1 on it (holds while beta_i ||k_i||^2 <= 2)
  double structural_bound = 1;
  double norm_A_inf = 0;    // ||A||_inf
  double neumann_max = 1;   // max entry of (I - |A|)^-1: what repeated squaring amplifies
  double max_beta_k2 = 0;   // max beta_i ||k_i||^2 (the recurrence contracts while <= 2)
};

// One row per chunk and value head, in the order of Problem::chunks() x value heads.
std::vector<ChunkConditioning> chunk_conditioning(Problem const& p, ChunkedResult const& ref);

}  // namespace gdnv
