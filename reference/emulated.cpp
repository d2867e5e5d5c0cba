#include "emulated.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include <Eigen/Dense>
#include <omp.h>

#include "rounding.hpp"

namespace gdnv {
namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecF = Eigen::VectorXf;

float round_bf16(float x) {
  uint32_t b = std::bit_cast<uint32_t>(x);
  if ((b & 0x7f800000u) == 0x7f800000u) return x;  // inf, NaN
  b += 0x7fffu + ((b >> 16) & 1u);                 // RNE; a carry into the exponent is correct
  return std::bit_cast<float>(b & 0xffff0000u);
}

// x rounded to the 16-bit format t (bf16, fp16); fp32 (and anything else): unchanged.
float round_in(DType t, float x) {
  switch (t) {
    case DType::bf16: return round_bf16(x);
    case DType::f16: return static_cast<float>(round_to(DType::f16, static_cast<double>(x)));
    default: return x;
  }
}

void round_all(DType t, MatF& m) {
  if (t != DType::bf16 && t != DType::f16) return;
  float* d = m.data();
  for (Eigen::Index i = 0; i < m.size(); ++i) d[i] = round_in(t, d[i]);
}

MatF rounded(DType t, MatF m) {
  round_all(t, m);
  return m;
}

MatF tf32(MatF m) {
  float* d = m.data();
  for (Eigen::Index i = 0; i < m.size(); ++i) d[i] = round_to_tf32(d[i]);
  return m;
}

// Rows [t0, t0 + n) of one head of a [B,T,heads,D] tensor, as floats (exact for stored values).
MatF load_rows(Tensor const& x, int64_t b, int64_t t0, int64_t head, int64_t n) {
  int64_t const d = x.dim(3);
  MatF m(n, d);
  for (int64_t r = 0; r < n; ++r) {
    double const* src = x.ptr() + x.offset({b, t0 + r, head, 0});
    for (int64_t c = 0; c < d; ++c) m(r, c) = static_cast<float>(src[c]);
  }
  return m;
}

void store_rows(Tensor& x, int64_t b, int64_t t0, int64_t head, MatF const& m) {
  int64_t const d = x.dim(3);
  for (int64_t r = 0; r < m.rows(); ++r) {
    double* dst = x.ptr() + x.offset({b, t0 + r, head, 0});
    for (int64_t c = 0; c < d; ++c) dst[c] = static_cast<double>(m(r, c));
  }
}

// FLA's in-kernel l2norm: fp32 sum of squares, x / sqrt(ss + 1e-6) in fp32, stored in x's dtype.
Tensor l2norm_fp32(Tensor const& x) {
  Tensor out = x;
  int64_t const d = x.shape.back();
  for (int64_t row = 0; row < x.numel() / d; ++row) {
    double* v = out.ptr() + row * d;
    float ss = 0.0f;
    for (int64_t i = 0; i < d; ++i) {
      float const f = static_cast<float>(v[i]);
      ss += f * f;
    }
    float const den = std::sqrt(ss + 1e-6f);
    for (int64_t i = 0; i < d; ++i) v[i] = round_in(x.dtype, static_cast<float>(v[i]) / den);
  }
  return out;
}

// (I + A)^-1 in fp32 for the lower triangle of A (its diagonal too, which is zero unless a fault
// put something there): forward substitution on the 16x16 diagonal blocks, then the merges
// X_ab = -X_aa (sum_{c=b}^{a-1} A_ac X_cb) by distance from the diagonal, as solve_tril does.
MatF inverse_fp32(MatF const& A, bool tf32_merges) {
  Eigen::Index const n = A.rows();
  constexpr Eigen::Index kBlock = 16;
  Eigen::Index const nb = (n + kBlock - 1) / kBlock;
  auto start = [](Eigen::Index a) { return a * kBlock; };
  auto size = [&](Eigen::Index a) { return std::min<Eigen::Index>(kBlock, n - a * kBlock); };
  MatF X = MatF::Zero(n, n);
  for (Eigen::Index a = 0; a < nb; ++a) {
    Eigen::Index const s = start(a), sz = size(a);
    for (Eigen::Index i = 0; i < sz; ++i) {
      float const d = 1.0f + A(s + i, s + i);  // exactly 1 for the correct strictly-lower A
      X(s + i, s + i) = 1.0f / d;
      for (Eigen::Index j = 0; j < i; ++j) {
        float acc = 0.0f;
        for (Eigen::Index k = j; k < i; ++k) acc += A(s + i, s + k) * X(s + k, s + j);
        X(s + i, s + j) = -acc / d;
      }
    }
  }
  for (Eigen::Index dist = 1; dist < nb; ++dist) {
    for (Eigen::Index a = dist; a < nb; ++a) {
      Eigen::Index const b = a - dist;
      MatF acc = MatF::Zero(size(a), size(b));
      for (Eigen::Index c = b; c < a; ++c) {
        MatF const Aac = A.block(start(a), start(c), size(a), size(c));
        MatF const Xcb = X.block(start(c), start(b), size(c), size(b));
        if (tf32_merges) acc.noalias() += tf32(Aac) * tf32(Xcb);
        else acc.noalias() += Aac * Xcb;
      }
      MatF const Xaa = X.block(start(a), start(a), size(a), size(a));
      if (tf32_merges) X.block(start(a), start(b), size(a), size(b)) = -(tf32(Xaa) * tf32(acc));
      else X.block(start(a), start(b), size(a), size(b)) = -(Xaa * acc);
    }
  }
  return X;
}

MatF tf32_truncated(MatF m) {
  float* d = m.data();
  for (Eigen::Index i = 0; i < m.size(); ++i) d[i] = truncate_to_tf32(d[i]);
  return m;
}

// fp32 L * R as cuda/inverse_tc.cuh's 3xTF32 form: hi = tf32(x), lo = tf32(x - hi), both truncated (x - hi is
// exact), lo*hi + hi*lo + hi*hi accumulated in fp32.
MatF mul_tf32x3(MatF const& L, MatF const& R) {
  MatF const Lh = tf32_truncated(L), Rh = tf32_truncated(R);
  MatF const Ll = tf32_truncated(MatF(L - Lh)), Rl = tf32_truncated(MatF(R - Rh));
  MatF out = Ll * Rh;
  out.noalias() += Lh * Rl;
  out.noalias() += Lh * Rh;
  return out;
}

// EmulatedOptions::tc_inverse: the zero-padded 64x64 inverse of cuda/inverse_tc.cuh.
MatF inverse_tc(MatF const& A) {
  Eigen::Index const n = A.rows();
  MatF P = MatF::Zero(kChunk, kChunk);
  P.topLeftCorner(n, n) = A;
  auto blk = [](MatF const& M, int r, int c) { return MatF(M.block(16 * r, 16 * c, 16, 16)); };
  MatF X = MatF::Zero(kChunk, kChunk);
  MatF T[4];
  for (int a = 0; a < 4; ++a) {
    T[a] = inverse_fp32(blk(P, a, a), false);
    X.block(16 * a, 16 * a, 16, 16) = T[a];
  }
  MatF const T10 = -mul_tf32x3(T[1], mul_tf32x3(blk(P, 1, 0), T[0]));
  MatF const T32 = -mul_tf32x3(T[3], mul_tf32x3(blk(P, 3, 2), T[2]));
  MatF const Y21 = mul_tf32x3(blk(P, 2, 1), T[1]), Y31 = mul_tf32x3(blk(P, 3, 1), T[1]);
  MatF const Y20 = MatF(mul_tf32x3(blk(P, 2, 0), T[0]) + mul_tf32x3(blk(P, 2, 1), T10));
  MatF const Y30 = MatF(mul_tf32x3(blk(P, 3, 0), T[0]) + mul_tf32x3(blk(P, 3, 1), T10));
  X.block(16, 0, 16, 16) = T10;
  X.block(48, 32, 16, 16) = T32;
  X.block(32, 0, 16, 16) = -mul_tf32x3(T[2], Y20);
  X.block(32, 16, 16, 16) = -mul_tf32x3(T[2], Y21);
  X.block(48, 0, 16, 16) = -MatF(mul_tf32x3(T32, Y20) + mul_tf32x3(T[3], Y30));
  X.block(48, 16, 16, 16) = -MatF(mul_tf32x3(T32, Y21) + mul_tf32x3(T[3], Y31));
  return X.topLeftCorner(n, n);
}

bool supported_dtype(DType t) { return t == DType::bf16 || t == DType::f16 || t == DType::f32; }

}  // namespace

float truncate_to_tf32(float x) {
  uint32_t const b = std::bit_cast<uint32_t>(x);
  if ((b & 0x7f800000u) == 0x7f800000u) return x;
  return std::bit_cast<float>(b & ~0x1fffu);
}

float round_to_tf32(float x) {
  uint32_t b = std::bit_cast<uint32_t>(x);
  if ((b & 0x7f800000u) == 0x7f800000u) return x;
  b += 0xfffu + ((b >> 13) & 1u);
  return std::bit_cast<float>(b & ~0x1fffu);
}

bool EmulatedFaults::any() const {
  return A_with_diagonal || strict_output_mask || gate_one_token_late || tf32_merges || state_in_input_dtype ||
         drop_initial_state || gqa_modulo || state_leaks_across_sequences || beta_power != 1 || missing_scale ||
         exp_before_mask || stale_state_read || no_state_decay || w_without_gate || pair_without_chunk1_terms;
}

bool emulation_supports(Problem const& p, std::string* why) {
  if (!supported_dtype(p.q.dtype) || !supported_dtype(p.k.dtype) || !supported_dtype(p.v.dtype)) {
    if (why) *why = "q, k, v must be stored as bf16, fp16 or fp32 (got " + dtype_name(p.q.dtype) + "/" +
                    dtype_name(p.k.dtype) + "/" + dtype_name(p.v.dtype) + ")";
    return false;
  }
  if (p.chunk_size != kChunk) {
    if (why) *why = "chunk_size must be 64";
    return false;
  }
  return true;
}

ChunkedResult emulated_forward(Problem const& p, EmulatedOptions const& opt) {
  std::string why;
  if (!emulation_supports(p, &why)) throw std::invalid_argument("emulated: " + why);
  if (opt.pair_walk && opt.stage_inputs) throw std::invalid_argument("emulated: the pair walk has no isolated stages");
  if (opt.delta_from_v && (!opt.fold_beta || opt.precise_uv || opt.stage_inputs || opt.pair_walk))
    throw std::invalid_argument("emulated: delta_from_v needs fold_beta, without precise_uv, isolated stages or the pair walk");
  EmulatedFaults const& f = opt.faults;
  DType const qd = p.q.dtype, kd = p.k.dtype, vd = p.v.dtype;
  Tensor const q = p.qk_l2norm ? l2norm_fp32(p.q) : p.q;
  Tensor const k = p.qk_l2norm ? l2norm_fp32(p.k) : p.k;
  auto const seqs = p.sequences();
  int64_t const N = static_cast<int64_t>(seqs.size());
  int64_t const B = p.B, T = p.T, H = p.H, HV = p.HV, K = p.K, V = p.V;
  int64_t const NT = p.num_chunks_per_row();
  float const scale = f.missing_scale ? 1.0f : static_cast<float>(p.scale);
  ChunkedResult const* const fed = opt.stage_inputs;
  // In isolated mode: rows of a fed intermediate, rounded to the dtype its consumer reads.
  auto fed_rows = [&](Tensor const& x, DType t, int64_t b, int64_t t0, int64_t head, int64_t n) {
    MatF m(n, x.dim(3));
    for (int64_t r = 0; r < n; ++r) {
      double const* src = x.ptr() + x.offset({b, t0 + r, head, 0});
      for (int64_t c = 0; c < m.cols(); ++c) m(r, c) = round_in(t, static_cast<float>(src[c]));
    }
    return m;
  };

  ChunkedResult r;
  r.g_cumsum = Tensor({B, T, HV}, DType::f32);
  r.A = Tensor({B, T, HV, kChunk}, DType::f32);
  r.A_inv = Tensor({B, T, HV, kChunk}, kd);
  r.w = Tensor({B, T, HV, K}, kd);
  bool const pre = opt.precise_uv && vd != DType::f32;
  DType const uvd = pre ? DType::f32 : vd;  // u, v_new as stored
  r.u = Tensor({B, T, HV, V}, uvd);
  r.v_new = Tensor({B, T, HV, V}, uvd);
  r.o = Tensor({B, T, HV, V}, qd);
  r.h = Tensor({B, NT, HV, K, V}, kd);
  r.final_state = Tensor({N, HV, K, V}, DType::f32);

  auto initial = [&](int64_t n, int64_t hv) {
    MatF S = MatF::Zero(K, V);
    if (p.initial_state.empty() || f.drop_initial_state) return S;
    double const* src = p.initial_state.ptr() + p.initial_state.offset({n, hv, 0, 0});
    for (int64_t i = 0; i < K * V; ++i) S.data()[i] = static_cast<float>(src[i]);  // loaded as fp32
    return S;
  };

  // One sequence of one value head, from state S (updated in place to the final state).
  auto run_sequence = [&](int64_t n, int64_t hv, MatF& S) {
    Sequence const& s = seqs[static_cast<size_t>(n)];
    int64_t const hk = f.gqa_modulo ? hv % H : p.key_head(hv);
    // EmulatedOptions::pair_walk: what the first chunk of an open pair leaves to the second (S is not advanced
    // until the pair closes)
    struct OpenPair {
      bool open = false;
      MatF Sb, delta, K, gated;  // the pair's snapshot, chunk 1's delta, its keys, round(delta e^{G_1 - gamma})
      VecF gamma;
      float G = 0.0f;
    } pair;
    for (int64_t c = 0; c < s.num_chunks(); ++c) {
      int64_t const t0 = s.begin + c * kChunk;
      int64_t const m = std::min<int64_t>(kChunk, s.length - c * kChunk);
      MatF const Q = load_rows(q, s.b, t0, hk, m);
      MatF const Kc = load_rows(k, s.b, t0, hk, m);
      MatF const Vc = load_rows(p.v, s.b, t0, hv, m);
      VecF beta(m), gamma(m), eg(m);
      float acc = 0.0f;
      for (int64_t i = 0; i < m; ++i) {
        float const b = static_cast<float>(p.beta.at({s.b, t0 + i, hv}));
        beta[i] = f.beta_power == 0 ? 1.0f : f.beta_power == 2 ? b * b : b;
        float const before = acc;
        acc += static_cast<float>(p.g.at({s.b, t0 + i, hv}));
        gamma[i] = f.gate_one_token_late ? before : acc;
        r.g_cumsum.at({s.b, t0 + i, hv}) = gamma[i];
        if (fed) gamma[i] = static_cast<float>(fed->g_cumsum.at({s.b, t0 + i, hv}));
        eg[i] = std::exp(gamma[i]);
      }

      // KKT: fp32 Gram matrix, times the gate factor, times beta_r; the mask selects.
      MatF const gram = Kc * Kc.transpose();
      MatF A = MatF::Zero(m, m);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j) {
          bool const keep = f.A_with_diagonal ? j <= i : j < i;
          if (f.exp_before_mask) {
            A(i, j) = gram(i, j) * std::exp(gamma[i] - gamma[j]) * beta[i] * (keep ? 1.0f : 0.0f);
          } else if (keep) {
            A(i, j) = gram(i, j) * std::exp(gamma[i] - gamma[j]) * beta[i];
          }
        }
      MatF A_in = A;
      if (fed) {
        MatF const whole = fed_rows(fed->A, DType::f32, s.b, t0, hv, m);
        A_in = whole.leftCols(m);
      }
      MatF const Ainv_f = opt.tc_inverse ? inverse_tc(A_in) : inverse_fp32(A_in, f.tf32_merges);
      MatF const Ainv = rounded(kd, Ainv_f);
      MatF const Ainv_in = fed ? MatF(fed_rows(fed->A_inv, kd, s.b, t0, hv, m).leftCols(m)) : Ainv;

      // w, u: the beta-scaled operands rounded to the input dtype, fp32 products, stored rounded.
      MatF U, W;
      MatF Mu;  // fold_beta: round(A_inv diag(beta)), u's operand (and, with delta_from_v, the walk's delta's)
      if (!opt.fold_beta) {
        MatF vb(m, V), kb(m, K);
        for (int64_t i = 0; i < m; ++i) {
          vb.row(i) = Vc.row(i) * beta[i];
          kb.row(i) = Kc.row(i) * (f.w_without_gate ? beta[i] : beta[i] * eg[i]);
        }
        if (!pre) round_all(vd, vb);
        round_all(kd, kb);
        U = rounded(uvd, Ainv_in * vb);
        W = rounded(kd, Ainv_in * kb);
      } else {
        // the fused kernel never reads a stored A_inv: isolated, it starts from the exact one in fp32
        MatF const X = fed ? MatF(fed_rows(fed->A_inv, DType::f32, s.b, t0, hv, m).leftCols(m)) : Ainv_f;
        Mu = X;
        MatF Mw = X;
        for (int64_t j = 0; j < m; ++j) {
          Mu.col(j) *= beta[j];
          Mw.col(j) *= f.w_without_gate ? beta[j] : beta[j] * eg[j];
        }
        if (!pre) round_all(vd, Mu);
        round_all(kd, Mw);
        U = rounded(uvd, Mu * Vc);
        W = rounded(kd, Mw * Kc);
      }
      MatF const U_in = fed ? fed_rows(fed->u, uvd, s.b, t0, hv, m) : U;
      MatF const W_in = fed ? fed_rows(fed->w, kd, s.b, t0, hv, m) : W;

      // State: the snapshot and the W*S operand are the input-dtype rounding of the fp32 state.
      // pair_walk: a chunk that closes a pair takes its W*S from the pair's snapshot (see EmulatedOptions).
      bool const closes = opt.pair_walk && pair.open;
      bool const opens = opt.pair_walk && !closes && c + 1 < s.num_chunks();
      MatF const Sb = closes ? pair.Sb : rounded(kd, S);
      MatF Delta;
      if (opt.delta_from_v) {  // Mu round(v - diag(e^gamma) K round(h)) (no pair walk: refused above)
        MatF X = Kc * Sb;
        for (int64_t i = 0; i < m; ++i) X.row(i) = Vc.row(i) - X.row(i) * (f.w_without_gate ? 1.0f : eg[i]);
        round_all(vd, X);
        Delta = Mu * X;
      } else {
        MatF sub = W_in * Sb;
        if (closes) {  // u_2 - (e^{G_1} W_2 h + round(W_2 K_1^T) Db_1)
          sub *= std::exp(pair.G);
          if (!f.pair_without_chunk1_terms) sub.noalias() += rounded(kd, MatF(W_in * pair.K.transpose())) * pair.gated;
        }
        Delta = U_in - sub;
      }
      MatF const v_new = rounded(uvd, Delta);
      float const gl = gamma[m - 1];
      MatF gated(m, V);
      for (int64_t i = 0; i < m; ++i) gated.row(i) = Delta.row(i) * std::exp(gl - gamma[i]);
      round_all(kd, gated);
      MatF S_next;
      MatF Hs;
      if (opens) {  // the state waits for the pair's second chunk
        S_next = S;
        Hs = Sb;
      } else if (closes) {
        // one update over both chunks: e^{G_1 + G_2} S + K_1^T round(delta_1 e^{G_1 - gamma + G_2}) + K_2^T Db_2
        MatF g1(pair.delta.rows(), V);
        for (int64_t i = 0; i < g1.rows(); ++i) g1.row(i) = pair.delta.row(i) * std::exp(pair.G - pair.gamma[i] + gl);
        round_all(kd, g1);
        S_next = S * std::exp(pair.G + gl);
        S_next.noalias() += pair.K.transpose() * g1;
        S_next.noalias() += Kc.transpose() * gated;
        // the state this chunk starts from, as stored h (the walk itself never forms it)
        MatF h2 = S * std::exp(pair.G);
        h2.noalias() += pair.K.transpose() * pair.gated;
        Hs = rounded(kd, h2);
      } else {
        S_next = f.no_state_decay ? S : MatF(S * std::exp(gl));
        S_next.noalias() += Kc.transpose() * gated;
        if (f.state_in_input_dtype) round_all(kd, S_next);
        Hs = f.stale_state_read ? rounded(kd, S_next) : Sb;
      }

      // Output: inter-chunk part from the snapshot, intra-chunk scores rounded before the product.
      MatF Hs_in = Hs;
      MatF v_new_in = v_new;
      if (fed) {
        double const* src = fed->h.ptr() + fed->h.offset({s.b, s.chunk_base + c, hv, 0, 0});
        for (int64_t i = 0; i < K * V; ++i) Hs_in.data()[i] = round_in(kd, static_cast<float>(src[i]));
        v_new_in = fed_rows(fed->v_new, uvd, s.b, t0, hv, m);
      }
      MatF O_inter = Q * (closes ? Sb : Hs_in);
      for (int64_t i = 0; i < m; ++i) O_inter.row(i) *= closes ? std::exp(gamma[i] + pair.G) : eg[i];
      if (closes && !f.pair_without_chunk1_terms) {  // + the cross block: round(e^{gamma_i} q_i . k_j) of chunk 1's keys, times Db_1
        MatF C = Q * pair.K.transpose();
        for (int64_t i = 0; i < m; ++i) C.row(i) *= std::exp(gamma[i]);
        if (!pre) round_all(vd, C);
        O_inter.noalias() += C * pair.gated;
      }
      MatF P = Q * Kc.transpose();
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j) {
          bool const keep = f.strict_output_mask ? j < i : j <= i;
          if (f.exp_before_mask) P(i, j) = P(i, j) * std::exp(gamma[i] - gamma[j]) * (keep ? 1.0f : 0.0f);
          else P(i, j) = keep ? P(i, j) * std::exp(gamma[i] - gamma[j]) : 0.0f;
        }
      if (!pre) round_all(vd, P);
      MatF O = O_inter * scale + (P * v_new_in) * scale;
      round_all(vd, O);
      round_all(qd, O);

      // Store this chunk's intermediates.
      double* hdst = r.h.ptr() + r.h.offset({s.b, s.chunk_base + c, hv, 0, 0});
      for (int64_t i = 0; i < K * V; ++i) hdst[i] = static_cast<double>(Hs.data()[i]);
      for (int64_t i = 0; i < m; ++i) {
        double* arow = r.A.ptr() + r.A.offset({s.b, t0 + i, hv, 0});
        double* xrow = r.A_inv.ptr() + r.A_inv.offset({s.b, t0 + i, hv, 0});
        for (int64_t j = 0; j < m; ++j) {
          arow[j] = static_cast<double>(A(i, j));
          xrow[j] = static_cast<double>(Ainv(i, j));
        }
      }
      store_rows(r.w, s.b, t0, hv, W);
      store_rows(r.u, s.b, t0, hv, U);
      store_rows(r.v_new, s.b, t0, hv, v_new);
      store_rows(r.o, s.b, t0, hv, O);
      if (opens) {
        pair.open = true;
        pair.Sb = Sb, pair.delta = Delta, pair.K = Kc, pair.gated = gated, pair.gamma = gamma, pair.G = gl;
      } else {
        pair.open = false;
      }
      S = std::move(S_next);
    }
    double* fdst = r.final_state.ptr() + r.final_state.offset({n, hv, 0, 0});
    for (int64_t i = 0; i < K * V; ++i) fdst[i] = static_cast<double>(S.data()[i]);
  };

  Eigen::setNbThreads(1);
  int const nthreads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  if (!f.state_leaks_across_sequences) {
    int64_t const jobs = N * HV;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int64_t job = 0; job < jobs; ++job) {
      int64_t const n = job / HV, hv = job % HV;
      MatF S = initial(n, hv);
      run_sequence(n, hv, S);
    }
  } else {
    // The fault: one state per value head carried through all sequences in order.
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int64_t hv = 0; hv < HV; ++hv) {
      MatF S = initial(0, hv);
      for (int64_t n = 0; n < N; ++n) run_sequence(n, hv, S);
    }
  }
  return r;
}

}  // namespace gdnv
