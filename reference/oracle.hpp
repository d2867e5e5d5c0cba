// An MPFR oracle for the fp64 chunked reference (verification-method.md §0 item 8, §3.9, §5):
// the chunk-64 forward recomputed in multiple precision (mpreal, 256 bits by default) from exactly
// the stored inputs, as chunked_forward reads them (the in-kernel l2norm, GQA, varlen, the initial
// state, the chunk-local gate cumsum), on selected (sequence, value head, chunk) triples, and the
// fp64 reference's own error measured against it.
//
// The incoming state of a chunk must be exact too, so the oracle runs every chunk of the selected
// (sequence, value head) from the sequence start up to the last selected chunk, in the chunk form.
// Per chunk the chunk form costs about as much as 64 steps of the per-token recurrence (both are
// ~3 m K V multiply-adds for the state), and it yields every intermediate of the earlier chunks
// for free: those "prefix" chunks are compared as well. Only the selected value heads are run, so
// the cost is (selected heads) x (chunks up to the selection), independent of HV.
//
// What is compared, per chunk and tensor (the reference's error e = |ref - exact|, in MPFR):
//   A_inv  e / B, B the componentwise kernel bound B_det of reference/bounds (the caller passes the
//          entrywise minimum over the kernels' declared arithmetics: every kernel bound at once);
//          its diagonal must be exactly 1 and its upper triangle exactly 0.
//   every tensor (A_inv too):
//     floor ratio  e / floor, floor = 2^-9 s: half a bf16 ulp of the exact value (2^-9 |x| is the
//                  smallest half ulp relative to |x|), with s = max(|x|, 2^-15 max|x|, 2^-126) over the
//                  chunk's block: an entry far below the block's scale can't be rounded to better than
//                  fp32's resolution of the block (2^-24 max|x|), nor below bf16's range (2^-135);
//     comp_u64     max e / (u64 s): the componentwise error in units of u64 = 2^-53;
//     norm_u64     ||e||_F / (u64 ||x||_F): the normwise error in units of u64.
// The tensors: g_cumsum, A, A_inv, w, u, v_new, h (the state entering the chunk), o, and final_state
// at the last chunk of a sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chunked.hpp"
#include "conditioning.hpp"
#include "problem.hpp"
#include "tensor.hpp"

namespace gdnv {

inline constexpr double kOracleFloorRel = 0x1p-9;     // half a bf16 ulp, relative (lower end)
inline constexpr double kOracleBlockRel = 0x1p-15;    // 2^-9 * 2^-15 = fp32's unit roundoff of the block
inline constexpr double kOracleAbsMin = 0x1p-126;     // fp32/bf16 smallest normal

// Why a chunk was run: picked as one of the worst conditioned, picked by the seeded sample, or
// computed on the way to a picked chunk of the same sequence and value head.
enum class OracleWhy { worst, sample, prefix };
std::string oracle_why_name(OracleWhy w);

struct OracleSelection {
  int64_t sequence = 0, head = 0, chunk = 0;
  OracleWhy why = OracleWhy::sample;
};

// The chunks to check: the `worst` largest kappa_inf (ties: first in order), then `samples` drawn
// without replacement from the rest with a fixed generator (mt19937_64 seeded by `seed`; the same
// seed gives the same chunks on every platform). `cond` in the order of Problem::chunks() x value heads.
std::vector<OracleSelection> select_oracle_chunks(Problem const& p, std::vector<ChunkConditioning> const& cond,
                                                  int samples, int worst, uint64_t seed);

struct OracleTensorError {
  std::string tensor;
  bool against_bound = false;  // ratio is against the kernel bound B (A_inv), else against the floor
  double ratio = 0;            // max over the block of e / B or e / floor (inf where not finite)
  double floor_ratio = 0;      // max e / floor (equals ratio unless against_bound)
  double comp_u64 = 0;         // max e / (u64 s)
  double norm_u64 = 0;         // ||e||_F / (u64 ||x||_F) (0 when both are 0)
  int64_t row = -1, col = -1;  // where `ratio` is attained, within the chunk's block
  double error = 0, scale = 0; // e and B (or floor) there
};

struct OracleChunkRow {
  int64_t sequence = 0, head = 0, chunk = 0, rows = 0;
  OracleWhy why = OracleWhy::prefix;
  std::vector<OracleTensorError> tensors;  // in the order g_cumsum, A, A_inv, w, u, v_new, h, o[, final_state]
  double max_ratio() const;
  OracleTensorError const* find(std::string const& name) const;
};

struct OracleOptions {
  int bits = 256;   // MPFR precision
  int threads = 0;  // 0: all cores; parallel over the selected (sequence, value head) pairs
  // Called once per finished (sequence, value head) pair, from one thread at a time, with the
  // number of pairs to run and the pair just finished.
  std::function<void(int64_t total, std::string const& what)> on_progress;
};

struct OracleResult {
  std::vector<OracleChunkRow> rows;  // sorted by (sequence, head, chunk)
  // The oracle's values rounded to double, in the reference's layouts; entries of chunks that were
  // not run are 0. For tests and for looking at a chunk; the errors above are computed in MPFR.
  ChunkedResult exact;
  int64_t chunks_run = 0;
};

// ref: the fp64 reference to judge (normally chunked_forward(p)); a_inv_bound: kernel bounds on
// A_inv in its layout [B,T,HV,64] (empty: A_inv judged against the floor like the other tensors).
// Throws std::invalid_argument for a selection outside the problem or bits < 64.
OracleResult run_oracle(Problem const& p, ChunkedResult const& ref, Tensor const& a_inv_bound,
                        std::vector<OracleSelection> const& selection, OracleOptions const& opt = {});

}  // namespace gdnv
