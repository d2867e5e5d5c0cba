// The selftest of the verification itself: small in-memory cases of every generator family, the
// correct CPU model of the kernels (reference/emulated.hpp), which must pass everywhere, and a
// catalogue of deliberately wrong variants of it, each of which must be flagged (floor ratio above
// the gate on some chunk, a non-finite value, or a bound ratio R_det above 1 on some chunk of some
// bounded tensor: harness/inverse_bound.hpp) on at least one family. Every fault counts: one that is
// not flagged fails the selftest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference/emulated.hpp"
#include "reference/problem.hpp"

namespace gdnv {

struct SelftestVariant {
  std::string name;         // "correct", "A-with-diagonal", ...
  std::string description;  // one line: what is wrong
  EmulatedFaults faults;    // all off: the correct model
  std::string note;         // why a fault needs R rather than the floor ratio, where it does
  bool correct() const { return !faults.any(); }
};

// The correct model first, then the faults.
std::vector<SelftestVariant> selftest_variants();

struct SelftestCase {
  std::string family;
  Problem problem;
};

struct SelftestOptions {
  int64_t T = 200;  // tokens per case (3 full chunks + a tail); the ragged family picks its lengths
  int64_t H = 2, HV = 4, K = 64, V = 64;
  uint64_t seed = 7;
  double max_floor_ratio = 8.0;
  int threads = 0;
  std::vector<std::string> only;  // variant names to run (empty: all)
};

// One case per generator family, bf16, with an initial state.
std::vector<SelftestCase> selftest_cases(SelftestOptions const& opt);

struct VariantOutcome {
  SelftestVariant variant;
  int run = 0;                             // families run
  std::vector<std::string> flagged;        // families where the gate or finiteness failed (either gate)
  std::vector<std::string> flagged_by_floor;  // ... by the floor ratio (or a non-finite value)
  std::vector<std::string> flagged_by_bound;  // ... by R_det > 1 on some bounded tensor
  double worst_ratio = 0;                  // over every family and tensor (inf: non-finite)
  std::string worst_where;                 // "family: tensor seq s head h chunk c"
  double worst_o_state_ratio = 0;          // over o and final_state only (what a capture shows)
  double worst_r_det = 0;                  // bound ratio over every bounded tensor and family (inf: non-finite)
  double worst_r_prob = 0;
  std::string worst_r_det_where = "-";     // "family: tensor seq s head h chunk c"
  double margin_ref = 0;                   // the fp64 reference's own bound / B_det, max over families
  bool passed() const;                     // correct: nothing flagged; fault: something flagged
  // "passes", "FAILS", "caught by floor ratio", "caught by R", "caught by floor ratio and R", "MISSED"
  std::string verdict() const;
};

struct SelftestReport {
  std::vector<VariantOutcome> outcomes;
  double seconds = 0;
  bool ok() const;  // every variant passed: the correct model everywhere, every fault somewhere
};

SelftestReport run_selftest(SelftestOptions const& opt);

}  // namespace gdnv
