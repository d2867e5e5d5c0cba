// Same seed, same bits on every build: no fused multiply-add contraction in this file (GCC
// contracts a*b+c into an FMA by default when the target has FMA, e.g. -march=x86-64-v3, and
// the results then depend on the build flags).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "datasets/generators.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "reference/rounding.hpp"

namespace gdnv {
namespace {

struct FamilyInfo {
  char const* name;
  char const* description;
};

// Help order: FLA's own regime first, then the plain and the realistic ones, then the stresses.
constexpr FamilyInfo kFamilies[] = {
    {"fla-test", "FLA test_chunk inputs: q,k,v ~ U[0,1) (all-positive, highly correlated keys), "
                 "q,k L2-normalized, beta = sigmoid(U), g = logsigmoid(U) / normalizer (default 1)"},
    {"normal", "q,k ~ N(0,1) L2-normalized, v ~ N(0,1), beta = sigmoid(N), g = logsigmoid(N)"},
    {"model-like", "Qwen3-Next layer statistics: q,k,v = SiLU(causal depthwise conv width 4 of N(0,1)), "
                   "raw q,k normalized in kernel, g = -exp(A_log) * softplus(a + dt_bias)"},
    {"correlated-keys", "unit keys in a random rank-r subspace (--rank, default 2 + seed % 7) plus 1% noise; "
                        "otherwise like normal"},
    {"beta-near-2", "like normal but beta = 2 - U(0, 0.1) (allow_neg_eigval regime, beta*||k||^2 near 2)"},
    {"no-decay", "like normal but g = 0 exactly (no decay: largest state contributions)"},
    {"strong-decay", "like fla-test but g = logsigmoid(U) / 0.01 (per-step g down to about -69)"},
    {"ragged", "varlen, lengths 1,15,64,65,200 unless --seqlens, initial state on; otherwise like normal"},
};

FamilyInfo const* find_family(std::string const& name) {
  for (auto const& f : kFamilies)
    if (name == f.name) return &f;
  return nullptr;
}

std::string family_list() {
  std::string s;
  for (auto const& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string const& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Numerically stable forms (no overflow for any finite x).
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double const e = std::exp(x);
  return e / (1.0 + e);
}
double logsigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }
double softplus(double x) { return x >= 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double silu(double x) { return x * sigmoid(x); }

// x / sqrt(sum x^2 + 1e-6) over each consecutive group of `dim` values (FLA's l2norm).
void l2_normalize_rows(std::vector<double>& x, int64_t dim) {
  for (size_t r = 0; r < x.size(); r += static_cast<size_t>(dim)) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += x[r + i] * x[r + i];
    double const inv = 1.0 / std::sqrt(ss + 1e-6);
    for (int64_t i = 0; i < dim; ++i) x[r + i] *= inv;
  }
}

Tensor to_tensor(std::vector<int64_t> shape, DType dtype, std::vector<double> const& values) {
  Tensor t(std::move(shape), dtype);
  for (size_t i = 0; i < values.size(); ++i) t.data[i] = round_to(dtype, values[i]);
  return t;
}

std::vector<double> draw(RandomStream& rs, int64_t n, bool normal) {
  std::vector<double> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal ? rs.normal() : rs.uniform();
  return x;
}

void check_finite(Tensor const& t, char const* name, std::string const& family) {
  for (double x : t.data)
    if (!std::isfinite(x))
      throw std::invalid_argument("generator '" + family + "': " + name +
                                  " has a non-finite value after rounding to " + dtype_name(t.dtype) +
                                  " (a tiny gate normalizer?)");
}

void require(bool ok, std::string const& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

// model-like: SiLU(causal conv) of N(0,1) activations, per batch row and, in varlen, per sequence.
std::vector<double> conv_silu_activations(uint64_t seed, std::string const& name, int64_t B, int64_t T,
                                          int64_t C, std::vector<int64_t> const& cu) {
  constexpr int64_t kWidth = 4;  // Qwen3-Next linear_conv_kernel_dim
  RandomStream xs(seed, name);
  std::vector<double> x = draw(xs, B * T * C, true);
  RandomStream ws(seed, "conv_weight." + name);
  std::vector<double> w(static_cast<size_t>(C * kWidth));
  for (auto& v : w) v = ws.uniform(-0.5, 0.5);
  std::vector<double> out;
  out.reserve(x.size());
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> row(x.begin() + b * T * C, x.begin() + (b + 1) * T * C);
    std::vector<double> y = causal_depthwise_conv(row, T, C, w, kWidth, cu);
    for (double v : y) out.push_back(silu(v));
  }
  return out;
}

}  // namespace

// ---- RandomStream ------------------------------------------------------------------------------

RandomStream::RandomStream(uint64_t seed, std::string const& stream) {
  uint64_t sm = seed;
  sm = splitmix64(sm) ^ fnv1a(stream);
  for (auto& s : s_) s = splitmix64(sm);  // never all zero in practice (splitmix64 is a bijection)
}

uint64_t RandomStream::next_u64() {  // xoshiro256**
  uint64_t const result = rotl(s_[1] * 5, 7) * 9;
  uint64_t const t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double RandomStream::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1p-53; }

double RandomStream::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double RandomStream::normal() {
  // Polar method: only sqrt (exact in IEEE) and log, no trigonometry.
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  double const m = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * m;
  have_spare_ = true;
  return u * m;
}

// ---- building blocks ---------------------------------------------------------------------------

std::vector<double> causal_depthwise_conv(std::vector<double> const& x, int64_t T, int64_t C,
                                          std::vector<double> const& w, int64_t width,
                                          std::vector<int64_t> const& cu) {
  require(static_cast<int64_t>(x.size()) == T * C, "causal_depthwise_conv: x is not [T, C]");
  require(static_cast<int64_t>(w.size()) == C * width, "causal_depthwise_conv: w is not [C, width]");
  std::vector<int64_t> bounds = cu.empty() ? std::vector<int64_t>{0, T} : cu;
  require(bounds.front() == 0 && bounds.back() == T, "causal_depthwise_conv: boundaries must span [0, T]");
  std::vector<double> y(x.size(), 0.0);
  for (size_t n = 0; n + 1 < bounds.size(); ++n) {
    int64_t const begin = bounds[n], end = bounds[n + 1];
    require(begin <= end, "causal_depthwise_conv: boundaries must be non-decreasing");
    for (int64_t t = begin; t < end; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < width; ++j) {
          int64_t const src = t - (width - 1) + j;
          if (src >= begin) acc += w[c * width + j] * x[src * C + c];  // zero padding per sequence
        }
        y[t * C + c] = acc;
      }
  }
  return y;
}

double qwen_gate(double a, double A_log, double dt_bias) { return -std::exp(A_log) * softplus(a + dt_bias); }

double inverse_softplus(double y) { return y + std::log(-std::expm1(-y)); }

int default_correlated_rank(uint64_t seed) { return 2 + static_cast<int>(seed % 7); }

std::vector<std::string> generator_families() {
  std::vector<std::string> v;
  for (auto const& f : kFamilies) v.emplace_back(f.name);
  return v;
}

std::string generator_family_description(std::string const& family) {
  FamilyInfo const* f = find_family(family);
  if (!f) throw std::invalid_argument("unknown generator family '" + family + "' (known: " + family_list() + ")");
  return f->description;
}

// ---- generate_problem --------------------------------------------------------------------------

Problem generate_problem(GeneratorParams const& prm) {
  std::string const& fam = prm.family;
  if (!find_family(fam))
    throw std::invalid_argument("unknown generator family '" + fam + "' (known: " + family_list() + ")");

  std::vector<int64_t> seqlens = prm.seqlens;
  if (fam == "ragged" && seqlens.empty()) seqlens = {1, 15, 64, 65, 200};
  bool const h0 = prm.h0 || fam == "ragged";

  Problem p;
  p.B = prm.B, p.T = prm.T, p.H = prm.H, p.HV = prm.HV, p.K = prm.K, p.V = prm.V;
  if (!seqlens.empty()) {
    require(prm.B == 1, "varlen (seqlens given) needs B = 1, got B = " + std::to_string(prm.B));
    int64_t total = 0;
    p.cu_seqlens.push_back(0);
    for (int64_t l : seqlens) {
      require(l >= 0, "sequence lengths must be >= 0, got " + std::to_string(l));
      p.cu_seqlens.push_back(total += l);
    }
    p.T = total;  // T is the packed length
  }
  require(p.B >= 1 && p.T >= 1, "B and T (or the sum of seqlens) must be >= 1");
  require(p.H >= 1 && p.HV >= 1 && p.K >= 1 && p.V >= 1, "H, HV, K, V must be >= 1");
  require(p.HV % p.H == 0, "H must divide HV (got H = " + std::to_string(p.H) + ", HV = " + std::to_string(p.HV) + ")");
  require(is_float(prm.dtype), "dtype of q, k, v must be a floating type, got " + dtype_name(prm.dtype));
  require(!prm.rank || fam == "correlated-keys", "rank applies only to the correlated-keys family");
  require(!prm.gate_normalizer || fam != "no-decay", "gate normalizer does not apply to no-decay (g = 0)");
  require(!prm.gate_normalizer || (std::isfinite(*prm.gate_normalizer) && *prm.gate_normalizer > 0),
          "gate normalizer must be finite and > 0");
  require(!prm.scale || (std::isfinite(*prm.scale) && *prm.scale > 0), "scale must be finite and > 0");

  p.scale = prm.scale ? *prm.scale : 1.0 / std::sqrt(static_cast<double>(p.K));
  p.chunk_size = kChunk;
  bool const in_kernel = prm.l2norm_in_kernel.value_or(fam == "model-like");
  p.qk_l2norm = in_kernel;

  int64_t const B = p.B, T = p.T, H = p.H, HV = p.HV, K = p.K, V = p.V;
  int64_t const BT = B * T;
  uint64_t const seed = prm.seed;

  std::vector<double> q, k, v, g, beta;
  if (fam == "fla-test" || fam == "strong-decay") {
    // FLA test_chunk: torch.rand everywhere.
    RandomStream qs(seed, "q"), ks(seed, "k"), vs(seed, "v"), gs(seed, "g"), bs(seed, "beta");
    q = draw(qs, BT * H * K, false);
    k = draw(ks, BT * H * K, false);
    v = draw(vs, BT * HV * V, false);
    double const norm = prm.gate_normalizer.value_or(fam == "strong-decay" ? 0.01 : 1.0);
    g.resize(static_cast<size_t>(BT * HV));
    for (auto& x : g) x = logsigmoid(gs.uniform()) / norm;
    beta.resize(static_cast<size_t>(BT * HV));
    for (auto& x : beta) x = sigmoid(bs.uniform());
  } else if (fam == "model-like") {
    q = conv_silu_activations(seed, "q", B, T, H * K, p.cu_seqlens);
    k = conv_silu_activations(seed, "k", B, T, H * K, p.cu_seqlens);
    v = conv_silu_activations(seed, "v", B, T, HV * V, p.cu_seqlens);
    // Per value head: A_log = log U(1,16), dt = exp(U(log 1e-3, log 1e-1)), dt_bias = softplus^-1(dt).
    RandomStream as(seed, "A_log"), ds(seed, "dt"), gs(seed, "g"), bs(seed, "beta");
    std::vector<double> A_log(static_cast<size_t>(HV)), dt_bias(static_cast<size_t>(HV));
    for (auto& x : A_log) x = std::log(as.uniform(1.0, 16.0));
    for (auto& x : dt_bias) x = inverse_softplus(std::exp(ds.uniform(std::log(1e-3), std::log(1e-1))));
    double const norm = prm.gate_normalizer.value_or(1.0);
    g.resize(static_cast<size_t>(BT * HV));
    for (int64_t i = 0; i < BT * HV; ++i) g[i] = qwen_gate(gs.normal(), A_log[i % HV], dt_bias[i % HV]) / norm;
    beta.resize(static_cast<size_t>(BT * HV));
    for (auto& x : beta) x = sigmoid(bs.normal());
  } else {
    // normal and its variants
    RandomStream qs(seed, "q"), vs(seed, "v"), gs(seed, "g"), bs(seed, "beta");
    q = draw(qs, BT * H * K, true);
    v = draw(vs, BT * HV * V, true);
    if (fam == "correlated-keys") {
      int const r = prm.rank ? *prm.rank : default_correlated_rank(seed);
      require(r >= 1 && r <= K, "rank must be in [1, K] (got " + std::to_string(r) + ", K = " + std::to_string(K) + ")");
      // One subspace basis U [K, r] per key head, shared by all tokens and batch rows.
      // The noise is 0.01 times the RMS entry of U c_t: an absolute 0.01 would turn the keys of
      // tokens with a small |c_t| (frequent for r = 1, 2) into pure-noise directions after the
      // normalization and raise the effective rank.
      RandomStream us(seed, "keys.U"), cs(seed, "keys.c"), ns(seed, "keys.noise");
      std::vector<double> U = draw(us, H * K * r, true);
      k.resize(static_cast<size_t>(BT * H * K));
      std::vector<double> c(static_cast<size_t>(r)), s(static_cast<size_t>(K));
      for (int64_t t = 0; t < BT; ++t)
        for (int64_t h = 0; h < H; ++h) {
          for (auto& x : c) x = cs.normal();
          double ss = 0;
          for (int64_t i = 0; i < K; ++i) {
            double acc = 0;
            for (int j = 0; j < r; ++j) acc += U[(h * K + i) * r + j] * c[j];
            s[i] = acc;
            ss += acc * acc;
          }
          double const noise = 0.01 * std::sqrt(ss / static_cast<double>(K));
          for (int64_t i = 0; i < K; ++i) k[(t * H + h) * K + i] = s[i] + noise * ns.normal();
        }
    } else {
      RandomStream ks(seed, "k");
      k = draw(ks, BT * H * K, true);
    }
    g.resize(static_cast<size_t>(BT * HV));
    if (fam == "no-decay") {
      for (auto& x : g) x = 0.0;
    } else {
      double const norm = prm.gate_normalizer.value_or(1.0);
      for (auto& x : g) x = logsigmoid(gs.normal()) / norm;
    }
    beta.resize(static_cast<size_t>(BT * HV));
    if (fam == "beta-near-2") {
      for (auto& x : beta) {
        // 2 - U(0, 0.1] lies in [1.9, 2); keep it below 2 after rounding to fp32 too.
        x = 2.0 - 0.1 * (1.0 - bs.uniform());
        if (round_to(DType::f32, x) >= 2.0) x = 2.0 - 0x1p-23;  // largest fp32 below 2
      }
    } else {
      for (auto& x : beta) x = sigmoid(bs.normal());
    }
  }

  if (!in_kernel) {
    l2_normalize_rows(q, K);
    l2_normalize_rows(k, K);
  }
  p.q = to_tensor({B, T, H, K}, prm.dtype, q);
  p.k = to_tensor({B, T, H, K}, prm.dtype, k);
  p.v = to_tensor({B, T, HV, V}, prm.dtype, v);
  p.g = to_tensor({B, T, HV}, DType::f32, g);
  p.beta = to_tensor({B, T, HV}, DType::f32, beta);
  if (h0) {
    int64_t const N = p.num_sequences();
    RandomStream ss(seed, "initial_state");
    std::vector<double> s = draw(ss, N * HV * K * V, true);
    for (auto& x : s) x *= 0.1;
    p.initial_state = to_tensor({N, HV, K, V}, DType::f32, s);
  }

  check_finite(p.q, "q", fam);
  check_finite(p.k, "k", fam);
  check_finite(p.v, "v", fam);
  check_finite(p.g, "g", fam);
  check_finite(p.beta, "beta", fam);
  if (h0) check_finite(p.initial_state, "initial_state", fam);
  return p;
}

}  // namespace gdnv
