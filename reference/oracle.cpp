#include "oracle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <tuple>

#include <omp.h>

#include "oracle_mp.hpp"

namespace gdnv {
namespace {

using mp::Mat;
using mp::mpreal;

double const kInf = std::numeric_limits<double>::infinity();
double const kU64 = 0x1p-53;

// The block of one tensor that belongs to one chunk of one value head, as a reader of the
// reference's (or the exact result's) storage: entry (i, j) of the block is at base + i*stride + j.
struct Block {
  int64_t rows = 0, cols = 0, stride = 0, base = 0;
};

Block token_block(Tensor const& t, ChunkRef const& c, int64_t hv) {
  // [B,T,HV,D]: consecutive tokens are HV*D apart
  int64_t const heads = t.dim(2), d = t.dim(3);
  return {c.rows, d, heads * d, t.offset({c.b, c.begin, hv, 0})};
}
Block gate_block(Tensor const& t, ChunkRef const& c, int64_t hv) {
  // [B,T,HV]: one column
  return {c.rows, 1, t.dim(2), t.offset({c.b, c.begin, hv})};
}
Block chunk_matrix_block(Tensor const& t, ChunkRef const& c, int64_t hv) {
  // A, A_inv [B,T,HV,64]: the m x m valid square of the chunk's rows
  int64_t const heads = t.dim(2), d = t.dim(3);
  return {c.rows, c.rows, heads * d, t.offset({c.b, c.begin, hv, 0})};
}
Block state_block(Tensor const& t, int64_t i0, int64_t i1, int64_t hv) {
  // h [B,NT,HV,K,V] (i0 = b, i1 = chunk row) or final_state [N,HV,K,V] (i0 = n, i1 unused)
  if (t.rank() == 5) return {t.dim(3), t.dim(4), t.dim(4), t.offset({i0, i1, hv, 0, 0})};
  return {t.dim(2), t.dim(3), t.dim(3), t.offset({i0, hv, 0, 0})};
}

// The reference's error on one block against the exact values x (in MPFR), and the metrics of
// oracle.hpp. bound: the kernel bound on the block (A_inv only), else nullptr.
OracleTensorError compare_block(std::string name, Mat const& x, Tensor const& ref, Block const& blk,
                                Tensor const* bound, bool unit_lower) {
  OracleTensorError r;
  r.tensor = std::move(name);
  r.against_bound = bound != nullptr;
  mpreal tmp(0, x.prec);
  double maxabs = 0;
  for (auto const& v : x.a) maxabs = std::max(maxabs, std::fabs(mpfr_get_d(v.mpfr_srcptr(), MPFR_RNDN)));
  double const block_floor = std::max(kOracleBlockRel * maxabs, kOracleAbsMin);
  double e2 = 0, x2 = 0;
  for (int64_t i = 0; i < blk.rows; ++i)
    for (int64_t j = 0; j < blk.cols; ++j) {
      size_t const o = static_cast<size_t>(blk.base + i * blk.stride + j);
      double const got = ref.data[o];
      mpreal const& exact = x(i, j);
      double e = kInf;
      if (std::isfinite(got)) {
        mpfr_sub_d(tmp.mpfr_ptr(), exact.mpfr_srcptr(), got, MPFR_RNDN);  // in MPFR: no rounding of x to double first
        e = std::fabs(mpfr_get_d(tmp.mpfr_srcptr(), MPFR_RNDN));
      }
      double const xd = std::fabs(mpfr_get_d(exact.mpfr_srcptr(), MPFR_RNDN));
      double const s = std::max(xd, block_floor);
      double const fl = kOracleFloorRel * s;
      double const fr = e == 0 ? 0.0 : e / fl;
      r.floor_ratio = std::max(r.floor_ratio, fr);
      r.comp_u64 = std::max(r.comp_u64, e == 0 ? 0.0 : e / (kU64 * s));
      e2 += e * e;
      x2 += xd * xd;
      double ratio = fr, scale = fl;
      if (bound) {
        if (unit_lower && j >= i) {
          // the diagonal is exactly 1 and the upper triangle exactly 0 in the exact inverse and must
          // be so in the reference: any error there is a structural fault
          ratio = e == 0 ? 0.0 : kInf;
          scale = 0;
        } else {
          scale = bound->data[o];
          ratio = e == 0 ? 0.0 : scale > 0 ? e / scale : kInf;
        }
      }
      if (std::isnan(ratio)) ratio = kInf;
      if (r.row < 0 || ratio > r.ratio) {
        r.ratio = ratio;
        r.row = i;
        r.col = j;
        r.error = e;
        r.scale = scale;
      }
    }
  if (!bound) r.ratio = r.floor_ratio;
  r.norm_u64 = e2 == 0 ? 0.0 : x2 > 0 ? std::sqrt(e2 / x2) / kU64 : kInf;
  return r;
}

// Stores the exact values (rounded to double) into a result tensor's block.
void store_block(Tensor& t, Block const& blk, Mat const& x) {
  for (int64_t i = 0; i < blk.rows; ++i)
    for (int64_t j = 0; j < blk.cols; ++j)
      t.data[static_cast<size_t>(blk.base + i * blk.stride + j)] = mpfr_get_d(x(i, j).mpfr_srcptr(), MPFR_RNDN);
}

// Rows [t0, t0 + m) of one head of a [B,T,heads,D] input, exactly.
Mat input_rows(Tensor const& x, int64_t b, int64_t t0, int64_t head, int64_t m, mpfr_prec_t prec) {
  int64_t const d = x.dim(3);
  Mat out(m, d, prec);
  for (int64_t i = 0; i < m; ++i) {
    double const* row = x.ptr() + x.offset({b, t0 + i, head, 0});
    for (int64_t j = 0; j < d; ++j) mpfr_set_d(out(i, j).mpfr_ptr(), row[j], MPFR_RNDN);
  }
  return out;
}

// The in-kernel l2norm in MPFR: x / sqrt(sum x^2 + eps), eps the reference's constant 1e-6 (as a
// double: the definition the fp64 reference implements; the kernels' fp32 eps differs by 1e-14
// relative, a definition, not an arithmetic error).
void l2_normalize_rows(Mat& x) {
  mpreal ss(0, x.prec), inv(0, x.prec);
  for (int64_t i = 0; i < x.rows; ++i) {
    mpfr_set_d(ss.mpfr_ptr(), 1e-6, MPFR_RNDN);
    for (int64_t j = 0; j < x.cols; ++j) mp::fma_into(ss, x(i, j), x(i, j));
    mpfr_rec_sqrt(inv.mpfr_ptr(), ss.mpfr_srcptr(), MPFR_RNDN);
    for (int64_t j = 0; j < x.cols; ++j) mpfr_mul(x(i, j).mpfr_ptr(), x(i, j).mpfr_srcptr(), inv.mpfr_srcptr(), MPFR_RNDN);
  }
}

struct Job {
  int64_t sequence = 0, head = 0, last_chunk = 0;
  std::map<int64_t, OracleWhy> picked;  // chunk -> why
};

// Runs chunks 0..job.last_chunk of one (sequence, value head) in MPFR and compares each.
std::vector<OracleChunkRow> run_job(Problem const& p, ChunkedResult const& ref, Tensor const& a_inv_bound,
                                    std::vector<ChunkRef> const& seq_chunks, Sequence const& s, Job const& job,
                                    mpfr_prec_t prec, ChunkedResult& exact) {
  int64_t const n = job.sequence, hv = job.head, hk = p.key_head(hv), K = p.K, V = p.V;
  std::vector<OracleChunkRow> rows;
  Mat S(K, V, prec);  // the exact state entering the current chunk
  if (!p.initial_state.empty()) {
    double const* h0 = p.initial_state.ptr() + p.initial_state.offset({n, hv, 0, 0});
    for (int64_t i = 0; i < K * V; ++i) mpfr_set_d(S.a[static_cast<size_t>(i)].mpfr_ptr(), h0[i], MPFR_RNDN);
  }
  mpreal scale(0, prec), t1(0, prec);
  mpfr_set_d(scale.mpfr_ptr(), p.scale, MPFR_RNDN);
  for (int64_t c = 0; c <= job.last_chunk; ++c) {
    ChunkRef const& cr = seq_chunks[static_cast<size_t>(c)];
    int64_t const t0 = cr.begin, m = cr.rows;
    Mat Q = input_rows(p.q, cr.b, t0, hk, m, prec);
    Mat Kc = input_rows(p.k, cr.b, t0, hk, m, prec);
    Mat const Vc = input_rows(p.v, cr.b, t0, hv, m, prec);
    if (p.qk_l2norm) {
      l2_normalize_rows(Q);
      l2_normalize_rows(Kc);
    }
    Mat beta(m, 1, prec), gamma(m, 1, prec), eg(m, 1, prec), ieg(m, 1, prec);
    for (int64_t i = 0; i < m; ++i) {
      mpfr_set_d(beta.a[i].mpfr_ptr(), p.beta.at({cr.b, t0 + i, hv}), MPFR_RNDN);
      // chunk-local cumsum, reset at every chunk start
      if (i > 0) mpfr_set(gamma.a[i].mpfr_ptr(), gamma.a[i - 1].mpfr_srcptr(), MPFR_RNDN);
      mpfr_add_d(gamma.a[i].mpfr_ptr(), gamma.a[i].mpfr_srcptr(), p.g.at({cr.b, t0 + i, hv}), MPFR_RNDN);
      // e^{gamma_i - gamma_j} = e^{gamma_i} e^{-gamma_j}: safe in MPFR, whose exponent range is ~2^30
      // bits (the fp64 reference must form the difference first), and 2m exps instead of m^2/2
      mpfr_exp(eg.a[i].mpfr_ptr(), gamma.a[i].mpfr_srcptr(), MPFR_RNDN);
      mpfr_neg(t1.mpfr_ptr(), gamma.a[i].mpfr_srcptr(), MPFR_RNDN);
      mpfr_exp(ieg.a[i].mpfr_ptr(), t1.mpfr_srcptr(), MPFR_RNDN);
    }

    // A[i,j] = beta_i e^{gamma_i - gamma_j} k_i.k_j (i > j); the scores P[i,j] = q_i.k_j e^{gamma_i - gamma_j} (j <= i)
    Mat A(m, m, prec), P(m, m, prec);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        mpreal& pij = P(i, j);
        for (int64_t l = 0; l < K; ++l) mp::fma_into(pij, Q(i, l), Kc(j, l));
        mpfr_mul(t1.mpfr_ptr(), eg.a[i].mpfr_srcptr(), ieg.a[j].mpfr_srcptr(), MPFR_RNDN);
        mpfr_mul(pij.mpfr_ptr(), pij.mpfr_srcptr(), t1.mpfr_srcptr(), MPFR_RNDN);
        if (j == i) continue;
        mpreal& aij = A(i, j);
        for (int64_t l = 0; l < K; ++l) mp::fma_into(aij, Kc(i, l), Kc(j, l));
        mpfr_mul(aij.mpfr_ptr(), aij.mpfr_srcptr(), t1.mpfr_srcptr(), MPFR_RNDN);
        mpfr_mul(aij.mpfr_ptr(), aij.mpfr_srcptr(), beta.a[i].mpfr_srcptr(), MPFR_RNDN);
      }
    Mat const X = mp::tril_inverse(A);

    // U = X diag(beta) V, W = X diag(beta e^gamma) K (X lower triangular)
    Mat Xb(m, m, prec), Xbe(m, m, prec);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t q = 0; q <= r; ++q) {
        mpfr_mul(Xb(r, q).mpfr_ptr(), X(r, q).mpfr_srcptr(), beta.a[q].mpfr_srcptr(), MPFR_RNDN);
        mpfr_mul(Xbe(r, q).mpfr_ptr(), Xb(r, q).mpfr_srcptr(), eg.a[q].mpfr_srcptr(), MPFR_RNDN);
      }
    Mat const U = mp::matmul(Xb, Vc, true);
    Mat const W = mp::matmul(Xbe, Kc, true);
    Mat Delta = mp::matmul(W, S);  // W S, then U - W S in place
    for (size_t i = 0; i < Delta.a.size(); ++i)
      mpfr_sub(Delta.a[i].mpfr_ptr(), U.a[i].mpfr_srcptr(), Delta.a[i].mpfr_srcptr(), MPFR_RNDN);

    // O = scale (diag(e^gamma) Q S + P Delta)
    Mat O = mp::matmul(Q, S);
    Mat const PD = mp::matmul(P, Delta, true);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < V; ++j) {
        mpreal& o = O(i, j);
        mpfr_mul(o.mpfr_ptr(), o.mpfr_srcptr(), eg.a[i].mpfr_srcptr(), MPFR_RNDN);
        mpfr_add(o.mpfr_ptr(), o.mpfr_srcptr(), PD(i, j).mpfr_srcptr(), MPFR_RNDN);
        mpfr_mul(o.mpfr_ptr(), o.mpfr_srcptr(), scale.mpfr_srcptr(), MPFR_RNDN);
      }

    // Compare this chunk (h: the state entering it).
    OracleChunkRow row;
    row.sequence = n;
    row.head = hv;
    row.chunk = c;
    row.rows = m;
    auto it = job.picked.find(c);
    row.why = it == job.picked.end() ? OracleWhy::prefix : it->second;
    Block const gb = gate_block(ref.g_cumsum, cr, hv), ab = chunk_matrix_block(ref.A, cr, hv);
    Block const wb = token_block(ref.w, cr, hv), vb = token_block(ref.u, cr, hv);
    Block const hb = state_block(ref.h, cr.b, cr.h_index, hv);
    Tensor const* bound = a_inv_bound.empty() ? nullptr : &a_inv_bound;
    row.tensors.push_back(compare_block("g_cumsum", gamma, ref.g_cumsum, gb, nullptr, false));
    row.tensors.push_back(compare_block("A", A, ref.A, ab, nullptr, false));
    row.tensors.push_back(compare_block("A_inv", X, ref.A_inv, ab, bound, true));
    row.tensors.push_back(compare_block("w", W, ref.w, wb, nullptr, false));
    row.tensors.push_back(compare_block("u", U, ref.u, vb, nullptr, false));
    row.tensors.push_back(compare_block("v_new", Delta, ref.v_new, vb, nullptr, false));
    row.tensors.push_back(compare_block("h", S, ref.h, hb, nullptr, false));
    row.tensors.push_back(compare_block("o", O, ref.o, vb, nullptr, false));
    store_block(exact.g_cumsum, gb, gamma);
    store_block(exact.A, ab, A);
    store_block(exact.A_inv, ab, X);
    store_block(exact.w, wb, W);
    store_block(exact.u, vb, U);
    store_block(exact.v_new, vb, Delta);
    store_block(exact.h, hb, S);
    store_block(exact.o, vb, O);

    // Next state: S <- e^{gamma_last} S + K^T diag(e^{gamma_last - gamma}) Delta.
    mpreal const& egl = eg.a[static_cast<size_t>(m - 1)];
    for (int64_t j = 0; j < m; ++j) {
      mpfr_mul(t1.mpfr_ptr(), egl.mpfr_srcptr(), ieg.a[j].mpfr_srcptr(), MPFR_RNDN);
      for (int64_t l = 0; l < V; ++l)
        mpfr_mul(Delta(j, l).mpfr_ptr(), Delta(j, l).mpfr_srcptr(), t1.mpfr_srcptr(), MPFR_RNDN);
    }
    Mat const upd = mp::matmul_tn(Kc, Delta);
    for (size_t i = 0; i < S.a.size(); ++i) {
      mpfr_mul(S.a[i].mpfr_ptr(), S.a[i].mpfr_srcptr(), egl.mpfr_srcptr(), MPFR_RNDN);
      mpfr_add(S.a[i].mpfr_ptr(), S.a[i].mpfr_srcptr(), upd.a[i].mpfr_srcptr(), MPFR_RNDN);
    }
    if (c == s.num_chunks() - 1) {
      Block const fb = state_block(ref.final_state, n, 0, hv);
      row.tensors.push_back(compare_block("final_state", S, ref.final_state, fb, nullptr, false));
      store_block(exact.final_state, fb, S);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

std::string oracle_why_name(OracleWhy w) {
  switch (w) {
    case OracleWhy::worst: return "worst";
    case OracleWhy::sample: return "sample";
    case OracleWhy::prefix: return "prefix";
  }
  return "prefix";
}

double OracleChunkRow::max_ratio() const {
  double m = 0;
  for (auto const& t : tensors) m = std::isnan(t.ratio) ? kInf : std::max(m, t.ratio);
  return m;
}

OracleTensorError const* OracleChunkRow::find(std::string const& name) const {
  for (auto const& t : tensors)
    if (t.tensor == name) return &t;
  return nullptr;
}

std::vector<OracleSelection> select_oracle_chunks(Problem const& p, std::vector<ChunkConditioning> const& cond,
                                                  int samples, int worst, uint64_t seed) {
  std::vector<size_t> order(cond.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // worst conditioned first; a non-finite kappa counts as the worst
  auto key = [&](size_t i) { return std::isnan(cond[i].kappa_inf) ? kInf : cond[i].kappa_inf; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
  std::vector<OracleSelection> out;
  size_t const nw = std::min(order.size(), static_cast<size_t>(std::max(worst, 0)));
  for (size_t i = 0; i < nw; ++i) {
    auto const& c = cond[order[i]];
    out.push_back({c.sequence, c.head, c.chunk, OracleWhy::worst});
  }
  // the rest in their natural order, then a partial Fisher-Yates shuffle; rng() % n is the same
  // on every platform (the distributions of <random> are not)
  std::vector<size_t> rest(order.begin() + static_cast<std::ptrdiff_t>(nw), order.end());
  std::sort(rest.begin(), rest.end());
  std::mt19937_64 rng(seed);
  size_t const ns = std::min(rest.size(), static_cast<size_t>(std::max(samples, 0)));
  for (size_t i = 0; i < ns; ++i) {
    size_t const j = i + static_cast<size_t>(rng() % (rest.size() - i));
    std::swap(rest[i], rest[j]);
    auto const& c = cond[rest[i]];
    out.push_back({c.sequence, c.head, c.chunk, OracleWhy::sample});
  }
  (void)p;
  return out;
}

OracleResult run_oracle(Problem const& p, ChunkedResult const& ref, Tensor const& a_inv_bound,
                        std::vector<OracleSelection> const& selection, OracleOptions const& opt) {
  if (opt.bits < 64) throw std::invalid_argument("oracle precision must be at least 64 bits");
  auto const seqs = p.sequences();
  auto const all_chunks = p.chunks();
  // chunks of each sequence, in order
  std::vector<std::vector<ChunkRef>> seq_chunks(seqs.size());
  for (auto const& c : all_chunks) seq_chunks[static_cast<size_t>(c.sequence)].push_back(c);

  std::map<std::pair<int64_t, int64_t>, Job> jobs_by_key;
  for (auto const& s : selection) {
    if (s.sequence < 0 || s.sequence >= static_cast<int64_t>(seqs.size()) || s.head < 0 || s.head >= p.HV ||
        s.chunk < 0 || s.chunk >= seqs[static_cast<size_t>(s.sequence)].num_chunks())
      throw std::invalid_argument("oracle selection outside the problem: sequence " + std::to_string(s.sequence) +
                                  " head " + std::to_string(s.head) + " chunk " + std::to_string(s.chunk));
    Job& j = jobs_by_key[{s.sequence, s.head}];
    j.sequence = s.sequence;
    j.head = s.head;
    j.last_chunk = std::max(j.last_chunk, s.chunk);
    auto it = j.picked.find(s.chunk);
    if (it == j.picked.end() || s.why == OracleWhy::worst) j.picked[s.chunk] = s.why;
  }
  std::vector<Job> jobs;
  for (auto& [k, j] : jobs_by_key) jobs.push_back(std::move(j));

  OracleResult res;
  auto zeros_like = [](Tensor const& t) { return Tensor(t.shape, DType::f64); };
  res.exact.g_cumsum = zeros_like(ref.g_cumsum);
  res.exact.A = zeros_like(ref.A);
  res.exact.A_inv = zeros_like(ref.A_inv);
  res.exact.w = zeros_like(ref.w);
  res.exact.u = zeros_like(ref.u);
  res.exact.v_new = zeros_like(ref.v_new);
  res.exact.h = zeros_like(ref.h);
  res.exact.o = zeros_like(ref.o);
  res.exact.final_state = zeros_like(ref.final_state);

  std::vector<std::vector<OracleChunkRow>> per_job(jobs.size());
  // MPFR keeps its state (caches, default precision) per thread only when built thread-safe.
  int const nthreads = !mpfr_buildopt_tls_p() ? 1 : opt.threads > 0 ? opt.threads : omp_get_max_threads();
  mpfr_prec_t const prec = opt.bits;
  int64_t const njobs = static_cast<int64_t>(jobs.size());
#pragma omp parallel num_threads(nthreads)
  {
    mpreal::set_default_prec(prec);  // for any mpreal temporary; every entry sets its own precision
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < njobs; ++i) {
      Job const& j = jobs[static_cast<size_t>(i)];
      per_job[static_cast<size_t>(i)] = run_job(p, ref, a_inv_bound, seq_chunks[static_cast<size_t>(j.sequence)],
                                                seqs[static_cast<size_t>(j.sequence)], j, prec, res.exact);
      if (opt.on_progress) {
#pragma omp critical(gdnv_oracle_progress)
        opt.on_progress(njobs, "seq " + std::to_string(j.sequence) + " head " + std::to_string(j.head));
      }
    }
    mpfr_free_cache();
  }
  for (auto& v : per_job)
    for (auto& r : v) {
      ++res.chunks_run;
      res.rows.push_back(std::move(r));
    }
  std::sort(res.rows.begin(), res.rows.end(), [](OracleChunkRow const& a, OracleChunkRow const& b) {
    return std::tie(a.sequence, a.head, a.chunk) < std::tie(b.sequence, b.head, b.chunk);
  });
  return res;
}

}  // namespace gdnv
