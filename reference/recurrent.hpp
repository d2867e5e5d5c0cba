// Ground truth: the per-token recurrence in double (gdn-algorithm.md section 1.2).
// For each token: decay the state, compute the delta against the decayed state, rank-1 write,
// then read the output from the updated state.
#pragma once

#include "problem.hpp"
#include "tensor.hpp"

namespace gdnv {

struct RecurrentResult {
  Tensor o;            // [B,T,HV,V]
  Tensor final_state;  // [N,HV,K,V]
};

RecurrentResult recurrent_forward(Problem const& p, int threads = 0);

}  // namespace gdnv
