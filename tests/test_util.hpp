// Small helpers shared by the test modules: random problems with fixed seeds and error norms.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "datasets/generators.hpp"
#include "reference/problem.hpp"
#include "reference/rounding.hpp"
#include "reference/tensor.hpp"

namespace gdnv::test {

// One small case of a generator family, the shape gdnv selftest uses: T = 200 (3 full chunks and a tail of 8;
// the ragged family picks its own lengths), H = 2, HV = 4, K = V = 64, an initial state.
// The largest bound ratio of a list of per-chunk rows (InverseBoundRow, StageBoundRow: any with r_det /
// r_prob), 0 for none.
template <class Rows>
double max_r_det(Rows const& rows) {
  double m = 0;
  for (auto const& r : rows) m = std::max(m, r.r_det);
  return m;
}
template <class Rows>
double max_r_prob(Rows const& rows) {
  double m = 0;
  for (auto const& r : rows) m = std::max(m, r.r_prob);
  return m;
}

inline Problem small_family_case(std::string const& family, DType dtype = DType::bf16, uint64_t seed = 7) {
  GeneratorParams gp;
  gp.family = family;
  gp.T = family == "ragged" ? 0 : 200;
  gp.H = 2, gp.HV = 4, gp.K = 64, gp.V = 64;
  gp.seed = seed;
  gp.h0 = true;
  gp.dtype = dtype;
  return generate_problem(gp);
}

// A reproducible problem in double (stored dtype fp64 unless `dtype` says otherwise): unit keys,
// normal q/v, beta in (0,1), logsigmoid gates; optional varlen lengths and initial state.
inline Problem random_problem(uint64_t seed, int64_t B, int64_t T, int64_t H, int64_t HV, int64_t K, int64_t V,
                              std::vector<int64_t> seqlens = {}, bool h0 = false, DType dtype = DType::f64) {
  std::mt19937_64 rng(seed);
  // Our own transforms of the raw engine output keep the values identical on every platform.
  auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1p-53; };
  auto normal = [&] {
    double const u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  };
  Problem p;
  if (!seqlens.empty()) {
    B = 1;
    T = 0;
    p.cu_seqlens.push_back(0);
    for (int64_t l : seqlens) p.cu_seqlens.push_back(T += l);
  }
  p.B = B, p.T = T, p.H = H, p.HV = HV, p.K = K, p.V = V;
  p.scale = 1.0 / std::sqrt(static_cast<double>(K));
  auto fill = [&](std::vector<int64_t> shape, auto&& gen) {
    Tensor t(std::move(shape), dtype);
    for (auto& x : t.data) x = round_to(dtype, gen());
    return t;
  };
  p.q = fill({B, T, H, K}, normal);
  p.k = fill({B, T, H, K}, normal);
  // unit keys (and queries): the regime every kernel assumes
  for (Tensor* x : {&p.q, &p.k}) {
    for (int64_t r = 0; r < x->numel() / K; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < K; ++i) ss += x->data[r * K + i] * x->data[r * K + i];
      for (int64_t i = 0; i < K; ++i) x->data[r * K + i] = round_to(dtype, x->data[r * K + i] / std::sqrt(ss));
    }
  }
  p.v = fill({B, T, HV, V}, normal);
  p.g = fill({B, T, HV}, [&] { return -std::log1p(std::exp(-normal())); });  // logsigmoid
  p.beta = fill({B, T, HV}, [&] { return 1.0 / (1.0 + std::exp(-normal())); });
  if (h0) p.initial_state = fill({p.num_sequences(), HV, K, V}, [&] { return 0.1 * normal(); });
  return p;
}

// ||a - b|| / ||b|| over whole tensors (0 when both are zero).
inline double rel_error(Tensor const& a, Tensor const& b) {
  double e = 0, n = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    double const d = a.data[i] - b.data[i];
    e += d * d;
    n += b.data[i] * b.data[i];
  }
  return n > 0 ? std::sqrt(e / n) : std::sqrt(e);
}

inline double max_abs(Tensor const& a) {
  double m = 0;
  for (double x : a.data) m = std::max(m, std::fabs(x));
  return m;
}

inline bool all_finite(Tensor const& a) {
  for (double x : a.data)
    if (!std::isfinite(x)) return false;
  return true;
}

// A shell-quoted argument for std::system.
inline std::string quote(std::string const& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("gdnv-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(TempDir const&) = delete;
  TempDir& operator=(TempDir const&) = delete;
  std::string file(std::string const& name) const { return (path / name).string(); }
};

// The whole file ("" when it cannot be read).
inline std::string slurp(std::filesystem::path const& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// One scratch directory per test process, removed at exit.
inline std::filesystem::path const& scratch_dir() {
  static TempDir const dir;
  return dir.path;
}

#ifdef GDNV_EXE
struct CliRun {
  int status = -1;
  std::string out, err;
};

// `gdnv <args>` with stdout and stderr captured through files in `dir`; run from `cwd` when given.
inline CliRun run_gdnv(std::filesystem::path const& dir, std::string const& args, std::string const& cwd = "") {
  std::string const o = (dir / "stdout.txt").string(), e = (dir / "stderr.txt").string();
  std::string cmd = quote(GDNV_EXE) + " " + args + " >" + quote(o) + " 2>" + quote(e);
  if (!cwd.empty()) cmd = "cd " + quote(cwd) + " && " + cmd;
  int const rc = std::system(cmd.c_str());
  return {(rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1, slurp(o), slurp(e)};
}
#endif

}  // namespace gdnv::test
