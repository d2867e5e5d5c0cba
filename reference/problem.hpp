// One call of the chunked gated delta rule forward: dimensions, options, sequence boundaries and
// the stored inputs (already widened to double). Layouts follow the dataset schema:
//   q, k [B,T,H,K]   v [B,T,HV,V]   g, beta [B,T,HV]   initial_state [N,HV,K,V]
// Value head hv reads key head hv / (HV / H).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor.hpp"

namespace gdnv {

inline constexpr int kChunk = 64;

// A sequence: batch row b, tokens [begin, begin + length) of that row.
// Its chunks are stored in h at chunk rows [chunk_base, chunk_base + num_chunks) of batch row b.
struct Sequence {
  int64_t b = 0;
  int64_t begin = 0;
  int64_t length = 0;
  int64_t chunk_base = 0;
  int64_t num_chunks() const { return (length + kChunk - 1) / kChunk; }
};

// One chunk of one sequence (independent of the value head).
struct ChunkRef {
  int64_t sequence = 0;  // index n
  int64_t chunk = 0;     // index within the sequence
  int64_t b = 0;         // batch row
  int64_t begin = 0;     // first token (within the batch row)
  int64_t rows = 0;      // valid rows, 1..64
  int64_t h_index = 0;   // chunk row in h: [B, NT, HV, K, V]
};

struct Problem {
  int64_t B = 0, T = 0, H = 0, HV = 0, K = 0, V = 0;
  double scale = 1.0;
  int64_t chunk_size = kChunk;
  bool qk_l2norm = false;

  Tensor q, k, v, g, beta;
  Tensor initial_state;           // empty: zeros
  std::vector<int64_t> cu_seqlens;  // empty: B dense sequences of length T

  int64_t group_size() const { return HV / H; }  // G
  int64_t key_head(int64_t hv) const { return hv / group_size(); }
  bool varlen() const { return !cu_seqlens.empty(); }
  int64_t num_sequences() const;  // N
  // NT as the schema defines it: chunks per batch row (dense) or summed over sequences (varlen).
  int64_t num_chunks_per_row() const;
  std::vector<Sequence> sequences() const;
  std::vector<ChunkRef> chunks() const;  // all chunks, in sequence order
};

}  // namespace gdnv
