// The chunk-64 form of the gated delta rule in double, exposing every intermediate in the
// dataset schema's layouts (gdn-algorithm.md section 2.0):
//   g_cumsum [B,T,HV]   A, A_inv [B,T,HV,64]   w [B,T,HV,K]   u, v_new, o [B,T,HV,V]
//   h [B,NT,HV,K,V] (start-of-chunk states)   final_state [N,HV,K,V]
// Row t of A / A_inv holds row (t - 64c) of its chunk's 64x64 matrix; columns past the chunk's
// valid rows are zero. Tail chunks use masks: invalid rows never touch the state.
#pragma once

#include <string>

#include "problem.hpp"
#include "tensor.hpp"

namespace gdnv {

enum class InverseMethod {
  forward_substitution,  // row by row over the whole chunk
  block_merge,           // 16x16 forward substitution, then merges T10,T21,T32 / T20,T31 / T30
};

// Stage outputs that replace the reference's own (stage attribution, harness/attribution.hpp): the
// fp64 chunk-64 form continued from an implementation's intermediates. Each set tensor (chunked_forward's
// layout and shape) is used wherever the algorithm consumes that intermediate and is returned in its
// place; everything downstream is computed in fp64 from it, everything else as without injection.
//   g_cumsum  the gate cumsum of every later stage (A, the decays of w, the state, the scores)
//   A         inverted instead of the reference's A (its lower triangle, diagonal included)
//   A_inv     forms w and u
//   w, u      the state pass's W and U
//   h         the start-of-chunk state the output reads; the recurrence keeps its own state
//   v_new     the delta the output reads; the recurrence keeps its own delta, as the kernels'
//             state update uses its fp32 delta rather than the stored v_new (gdn-algorithm.md 2.6)
//   final_state, o   returned as they are (nothing downstream of them)
// With no tensor set the result is bit for bit that of chunked_forward without injection.
struct StageInjection {
  Tensor const* g_cumsum = nullptr;
  Tensor const* A = nullptr;
  Tensor const* A_inv = nullptr;
  Tensor const* w = nullptr;
  Tensor const* u = nullptr;
  Tensor const* h = nullptr;
  Tensor const* v_new = nullptr;
  Tensor const* final_state = nullptr;
  Tensor const* o = nullptr;
  // The slot for an intermediate by its schema name ("A_inv", "v_new", ...; std::out_of_range otherwise).
  Tensor const*& slot(std::string const& name);
};

struct ChunkedOptions {
  InverseMethod inverse = InverseMethod::forward_substitution;
  int threads = 0;  // 0: all cores
  StageInjection const* inject = nullptr;  // null: the plain fp64 reference
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
