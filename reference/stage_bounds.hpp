// Componentwise error bounds for every stage after the inverse (verification-method.md §3.8, "later
// stages"): w, u, v_new, h, o and final_state, computed in double from the exact stored inputs, the fp64
// reference's intermediates and the precisions an implementation declares (DeclaredArithmetic), plus the
// bounds of A and A_inv from bounds.hpp. R = max |got - exact| / B over a block, as for A_inv.
//
// Every bound is carried as an absolute entrywise matrix E >= |computed - exact|, built from the
// products the stage performs. With |Y|, |Z| the exact operands' magnitudes and E_Y, E_Z the bounds of
// the operands as the kernel reads them, M = |.| + E, one product of inner dimension n accumulated in
// precision u_acc obeys [derived; rigorous, second-order terms kept]
//   E_YZ = (1 + c_n) E_Y M_Z + |Y| (E_Z + c_n M_Z),   c_n = gamma_n(u_acc) + gamma_n(u_64)
// (|Yhat Zhat - YZ| <= |Y| E_Z + E_Y M_Z, plus the accumulation's gamma_n |Yhat||Zhat| <= gamma_n M_Y M_Z,
// and the fp64 reference's own error), a rounding to a stored precision u_s coarser than the value's
//   E' = E + u_s (|y| + E) + u_s lambda_s    (lambda_s: smallest normal, gradual underflow)
// and a scaling by a computed factor f with relative error rho, rounded once in u_acc,
//   E' = |f| (E + ((1 + rho)(1 + u_acc) - 1)(|y| + E)).
// A computed gate factor e^{gamma_i - gamma_j} has rho_ij = (1 + gamma_2(u_acc)) e^{eta_ij} - 1 with
// eta_ij = e_i + e_j + 3 u_acc |gamma_i - gamma_j| (the fp32 cumsum's error e_i, as in bounds.hpp); e^{gamma_i}
// alone has eta = e_i + 3 u_acc |gamma_i|. Keys (and queries) read by the kernel are k (1 + eps_k) with
// bounds.hpp's eps_k (in-kernel l2norm or a coarser declared input), so E_K = eps_k |K|.
// Per chunk (m valid rows, d = K, D = diag(e^{gamma_last - gamma_r}), operand roundings u_op of the
// `operands` precision, every "u_x" below is 0 where the declared precision is not coarser than the
// value it rounds):
//   g_cumsum  e_i = gamma_{i+1}(u_acc) sum_{s<=i} |g_s| (any summation order; 2(i+1) where g is converted)
//   A      E_A of bounds.hpp (+ its storage rounding)
//   A_inv  B of bounds.hpp; as w/u read it: E_X = B + u_{A_inv_operand} (|X| + B)
//   w      Bk = diag(beta e^gamma) K: E_Bk = ((1+eps_k)(1+rho_r)(1+u_acc)^2 (1+u_op) - 1)|Bk|;
//          E_w = round_w(product(X, Bk; n = m))
//   u      Bv = diag(beta) V: E_Bv = ((1+u_acc)(1+u_op) - 1)|Bv|;  E_u = round_u(product(X, Bv; n = m))
//   h      E_h = round_h(E_S)            (E_S: the running state's bound entering the chunk)
//   v_new  S as W*S reads it: E_Sop = E_S + u_{state_operand}(|S| + E_S);
//          E_Delta = E_u + |W| E_Sop + E_w M_Sop + c_{d+1} (M_u + M_w M_Sop)   (d+1 terms, any order)
//          E_vnew = round_vnew(E_Delta)
//   state  [derived] the carried error dS enters the next state only through the exact chunk transition
//          M = e^{gamma_last} I - K^T D W (||M||_2 <= e^{gamma_last}: a product of contractions), so
//          E_S' = |M| E_S + |K^T D W| u_so (|S| + E_S)                          (carried, operand rounding)
//               + |K|^T D eta' + |K|^T xi + E_K^T M_D'                          (the chunk's own errors)
//               + e^{gamma_last} rho'_l (|S| + E_S) + c_{m+1}(e^{gamma_last}(1+rho'_l) M_S + M_K^T M_D')
//          eta' = E_u + E_w M_Sop + c_{d+1}(M_u + M_w M_Sop)  (Delta's error other than W dS and W r_op),
//          xi_r = D_r ((1 + rho_lr)(1 + u_acc)(1 + u_op) - 1) M_Delta  (the gated delta operand),
//          M_D' = D M_Delta + xi, rho'_l = (1 + rho_l)(1 + u_acc) - 1; then round_state. The initial state
//          is exact (or rounded once to the state precision); final_state = E_S after the last chunk.
//          [derived] A second bound on the same dS is carried too: nu_j >= ||dS_{:,j}||_2, with
//          nu'_j = ||M||_2 min(nu_j, ||E_S{:,j}||_2) + ||L_{:,j}||_2 (L: every term of E_S' but |M| E_S) and
//          ||M||_2 <= e^{gamma_last} prod_r max(1, |1 - beta_r ||k_r||^2|); every use of E_S takes
//          min(E_S, nu_j) entrywise, and a product Y dS also min(|Y| E_S, ||y_r||_2 nu_j) (Cauchy-Schwarz).
//          Limit: without decay (g = 0) the componentwise terms still grow ~3x per chunk (|M| and the
//          second-order |K|^T D E_w |dS| have row sums > 1 where the exact transition contracts), so the
//          state bounds of long undecayed sequences are valid but loose.
//   o      E_QH = product(Q, h; n = d) with E_Q = eps_q |Q|;  inter = diag(e^gamma) (Q h): scaling;
//          P = (Q K^T) . Gamma (lower incl. the diagonal): product(Q, K^T; n = d), scaling by the gate
//          factors, round_scores;  PV = product(P, v_new; n = m);
//          E_o = round_o(scale (E_inter + E_PV + ((1+u_acc)^3 - 1)(M_inter + M_PV)))  (then q's dtype if coarser)
// Underflow: every product adds (n + 4) lambda_acc (1 + n max M_Y max M_Z) (flush to zero in the
// accumulation), negligible unless an entry is near fp32's smallest normal.
// B_det uses gamma_m(u) = m u / (1 - m u); B_prob replaces every gamma_m(u) by sqrt(m) u (lambda = 1) and
// propagates the probabilistic bounds of the earlier stages (A_inv's B_prob included).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bounds.hpp"
#include "chunked.hpp"
#include "problem.hpp"
#include "tensor.hpp"

namespace gdnv {

// Bounds in the reference layouts of chunked.hpp, for "g_cumsum", "A", "A_inv", "w", "u", "v_new", "h", "o",
// "final_state" (entries past the valid rows are 0; A and A_inv: strictly lower entries only).
struct StageBounds {
  DeclaredArithmetic arithmetic;
  std::map<std::string, Tensor> det, prob;
  double margin_ref = 0;  // A_inv's: the fp64 reference's own bound / B_det, max
};

// The tensors stage_bounds bounds, in pipeline order.
std::vector<std::string> const& bounded_tensors();

StageBounds stage_bounds(Problem const& p, ChunkedResult const& ref, DeclaredArithmetic const& a, int threads = 0);
// The same from an already computed A_inv bound (bounds.hpp) of the same arithmetic.
StageBounds stage_bounds(Problem const& p, ChunkedResult const& ref, InverseBounds const& inverse, int threads = 0);

// R of one block (a chunk of one value head; for final_state a sequence's state of one value head), in
// the order of compare_outputs' rows for that tensor (chunks x value heads; sequences x value heads).
struct StageBoundRow {
  int64_t sequence = 0, head = 0, chunk = 0, rows = 0;  // chunk -1 for final_state
  double r_det = 0, r_prob = 0;                         // inf where a value is non-finite
  int64_t row = -1, col = -1;   // the entry that sets r_det (row within the chunk / state row; column)
  double error = 0, bound = 0;  // |got - exact| and B_det there
};

// got: the implementation's tensor, same shape as the reference's. A and A_inv: strictly lower entries
// only (their structure is reported elsewhere).
std::vector<StageBoundRow> stage_bound_ratios(Problem const& p, ChunkedResult const& ref, StageBounds const& b,
                                              std::string const& tensor, Tensor const& got);

}  // namespace gdnv
