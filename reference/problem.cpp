#include "problem.hpp"

namespace gdnv {

int64_t Problem::num_sequences() const {
  return varlen() ? static_cast<int64_t>(cu_seqlens.size()) - 1 : B;
}

int64_t Problem::num_chunks_per_row() const {
  if (!varlen()) return (T + kChunk - 1) / kChunk;
  int64_t nt = 0;
  for (auto const& s : sequences()) nt += s.num_chunks();
  return nt;
}

std::vector<Sequence> Problem::sequences() const {
  std::vector<Sequence> out;
  if (!varlen()) {
    for (int64_t b = 0; b < B; ++b) out.push_back({b, 0, T, 0});
    return out;
  }
  int64_t base = 0;
  for (size_t n = 0; n + 1 < cu_seqlens.size(); ++n) {
    Sequence s{0, cu_seqlens[n], cu_seqlens[n + 1] - cu_seqlens[n], base};
    base += s.num_chunks();
    out.push_back(s);
  }
  return out;
}

std::vector<ChunkRef> Problem::chunks() const {
  std::vector<ChunkRef> out;
  auto const seqs = sequences();
  for (size_t n = 0; n < seqs.size(); ++n) {
    auto const& s = seqs[n];
    for (int64_t c = 0; c < s.num_chunks(); ++c) {
      int64_t const begin = s.begin + c * kChunk;
      int64_t const rows = std::min<int64_t>(kChunk, s.length - c * kChunk);
      out.push_back({static_cast<int64_t>(n), c, s.b, begin, rows, s.chunk_base + c});
    }
  }
  return out;
}

}  // namespace gdnv
