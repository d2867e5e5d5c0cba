// gdnv oracle for one case (reference/oracle.hpp): the kernel bounds on A_inv, the chunk selection
// (worst conditioned + seeded sample), the MPFR run, and the results file's JSON. Shared by the CLI
// (harness/cli/oracle.cpp) and the tests.
//
// The gate: every ratio of every chunk run must be below max_ratio (default 1e-3). Why 1e-3: gdnv
// check judges a kernel by e_kernel / B (A_inv) and e_kernel / floor (all tensors) measured against
// the fp64 reference instead of the exact result; the two differ by at most e_ref / B and
// e_ref / floor, i.e. by less than the oracle's ratio. Below 1e-3 every ratio gdnv check prints
// (two decimals, gates at 1 and 8) is the exact result's ratio, and the reference's error is the
// same 1e-3 that verification-method.md §3.9 asks of margin_ref. Measured values are ~1e-9 on A_inv
// and ~1e-10 elsewhere (README), so the gate fails only on a real fault of the reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/chunked.hpp"
#include "reference/oracle.hpp"
#include "reference/problem.hpp"

namespace gdnv {

inline constexpr double kOracleGate = 1e-3;

// The tightest bound any of our kernels is judged by: the entrywise minimum of B_det over the
// arithmetics gdnv declares for them (unfused/fused: A_inv in the input dtype; unfused-fp32inv;
// cublas; cublas-fp64), so a ratio against it is a ratio against every kernel bound.
struct OracleKernelBound {
  Tensor det;                            // [B,T,HV,64], A_inv's layout
  std::vector<std::string> arithmetics;  // DeclaredArithmetic::to_string() of each
  double margin_ref = 0;                 // bounds.hpp's analytic estimate, max over the arithmetics
};
OracleKernelBound oracle_kernel_bound(Problem const& p, ChunkedResult const& ref, int threads = 0);

struct OracleCaseOptions {
  int samples = 4;
  int worst = 2;
  uint64_t seed = 1;
  int bits = 256;
  int threads = 0;
  double max_ratio = kOracleGate;
  std::function<void(int64_t total, std::string const& what)> on_progress;  // OracleOptions::on_progress
};

struct OracleCaseReport {
  std::string name;
  int64_t selected = 0;  // chunks picked (worst + sample)
  OracleKernelBound bound;
  OracleResult result;
  std::vector<double> kappa_inf;  // per row of result.rows
  double seconds = 0;
  double max_ratio = 0;           // over every row and tensor
  bool passed = false;            // max_ratio < gate (and finite)
  // per tensor, max over rows: ratio, comp_u64, norm_u64
  struct Max {
    double ratio = 0, comp_u64 = 0, norm_u64 = 0;
    bool against_bound = false;
  };
  std::vector<std::pair<std::string, Max>> max_per_tensor;  // in the rows' tensor order
};

// ref: the fp64 reference to judge (chunked_forward(p) when null).
OracleCaseReport run_oracle_case(std::string const& name, Problem const& p, OracleCaseOptions const& opt,
                                 ChunkedResult const* ref = nullptr);

nlohmann::json to_json(OracleCaseReport const& r);

}  // namespace gdnv
