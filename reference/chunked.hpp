// The chunk-64 form of the gated delta rule in double, exposing every intermediate in the
// dataset schema's layouts (gdn-algorithm.md section 2.0):
//   g_cumsum [B,T,HV]   A, A_inv [B,T,HV,64]   w [B,T,HV,K]   u, v_new, o [B,T,HV,V]
//   h [B,NT,HV,K,V] (start-of-chunk states)   final_state [N,HV,K,V]
// Row t of A / A_inv holds row (t - 64c) of its chunk's 64x64 matrix; columns past the chunk's
// valid rows are zero. Tail chunks use masks: invalid rows never touch the state.
#pragma once

#include "problem.hpp"
#include "tensor.hpp"

namespace gdnv {

enum class InverseMethod {
  forward_substitution,  // row by row over the whole chunk
  block_merge,           // 16x16 forward substitution, then merges T10,T21,T32 / T20,T31 / T30
};

struct ChunkedOptions {
  InverseMethod inverse = InverseMethod::forward_substitution;
  int threads = 0;  // 0: all cores
};

struct ChunkedResult {
  Tensor g_cumsum, A, A_inv, w, u, v_new, h, o, final_state;
};

ChunkedResult chunked_forward(Problem const& p, ChunkedOptions const& opt = {});

// q and k as the kernels consume them: the stored values, or l2-normalized
// (x / sqrt(sum x^2 + 1e-6)) when p.qk_l2norm is set.
Tensor effective_q(Problem const& p);
Tensor effective_k(Problem const& p);

}  // namespace gdnv
