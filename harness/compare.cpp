#include "compare.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "harness/inverse_bound.hpp"
#include "harness/normwise.hpp"
#include "reference/rounding.hpp"

namespace gdnv {
namespace {

// Accumulates the three norms of one block.
struct BlockNorms {
  double err2 = 0, floor2 = 0, exact2 = 0;
  bool finite = true;
  int64_t nonfinite = 0;
  int64_t count = 0;  // finite values added
  void add(double exact, double got, DType floor_dtype) {
    if (!std::isfinite(got)) {
      finite = false;
      ++nonfinite;
      return;
    }
    double const e = got - exact;
    double const f = round_to(floor_dtype, exact) - exact;
    err2 += e * e;
    floor2 += f * f;
    exact2 += exact * exact;
    ++count;
  }
};

ChunkRow make_row(std::string const& tensor, BlockNorms const& b, DType floor_dtype) {
  ChunkRow r;
  r.tensor = tensor;
  r.finite = b.finite;
  r.error_norm = std::sqrt(b.err2);
  r.floor_norm = std::sqrt(b.floor2);
  r.rel_rms = b.finite ? fla_rel_rms(b.err2, b.exact2, b.count) : std::numeric_limits<double>::infinity();
  if (r.floor_norm == 0.0) {
    r.floor_from_u = true;
    r.floor_norm = unit_roundoff(floor_dtype) * std::sqrt(b.exact2);
  }
  if (!b.finite) {
    r.ratio = std::numeric_limits<double>::infinity();
  } else if (r.error_norm == 0.0) {
    r.ratio = 0.0;
  } else if (r.floor_norm == 0.0) {
    r.ratio = std::numeric_limits<double>::infinity();  // nonzero error on an all-zero block
  } else {
    r.ratio = r.error_norm / r.floor_norm;
  }
  return r;
}

}  // namespace

DType input_dtype(Problem const& p) {
  return lower_precision(lower_precision(p.q.dtype, p.k.dtype), p.v.dtype);
}

Tensor const& reference_tensor(ChunkedResult const& ref, std::string const& name) {
  if (name == "o") return ref.o;
  if (name == "final_state") return ref.final_state;
  if (name == "A_inv") return ref.A_inv;
  if (name == "A") return ref.A;
  if (name == "w") return ref.w;
  if (name == "u") return ref.u;
  if (name == "v_new") return ref.v_new;
  if (name == "h") return ref.h;
  if (name == "g_cumsum") return ref.g_cumsum;
  throw std::out_of_range("no reference tensor named " + name);
}

Comparison compare_outputs(Problem const& p, ChunkedResult const& ref, StageOutputs const& got) {
  Comparison cmp;
  DType const in_dtype = input_dtype(p);
  auto const seqs = p.sequences();
  auto const chunks = p.chunks();

  for (auto const& [name, tensor] : got) {
    Tensor const* exact_ptr = nullptr;
    try {
      exact_ptr = &reference_tensor(ref, name);
    } catch (std::out_of_range const&) {
      continue;  // a tensor the reference does not produce: nothing to compare
    }
    Tensor const& exact = *exact_ptr;
    if (exact.shape != tensor.shape) {
      throw std::invalid_argument("tensor " + name + " has shape " + shape_string(tensor.shape) +
                                  ", expected " + shape_string(exact.shape));
    }
    DType const floor_dtype = lower_precision(tensor.dtype, in_dtype);
    TensorMetrics m;
    m.tensor = name;
    m.dtype = tensor.dtype;
    m.floor_dtype = floor_dtype;
    std::vector<double> ratios, trt01;
    BlockNorms whole;
    auto finish_block = [&](BlockNorms const& b, int64_t seq, int64_t head, int64_t chunk, int64_t rows) {
      ChunkRow r = make_row(name, b, floor_dtype);
      r.sequence = seq;
      r.head = head;
      r.chunk = chunk;
      r.rows = rows;
      ratios.push_back(r.ratio);
      cmp.rows.push_back(r);
    };
    auto add_range = [&](BlockNorms& b, int64_t off, int64_t len) {
      for (int64_t i = off; i < off + len; ++i) {
        b.add(exact.data[static_cast<size_t>(i)], tensor.data[static_cast<size_t>(i)], floor_dtype);
        whole.add(exact.data[static_cast<size_t>(i)], tensor.data[static_cast<size_t>(i)], floor_dtype);
      }
    };

    if (name == "final_state") {
      int64_t const kv = p.K * p.V;
      for (int64_t n = 0; n < static_cast<int64_t>(seqs.size()); ++n)
        for (int64_t hv = 0; hv < p.HV; ++hv) {
          BlockNorms b;
          add_range(b, exact.offset({n, hv, 0, 0}), kv);
          finish_block(b, n, hv, -1, 0);
        }
    } else if (name == "h") {
      int64_t const kv = p.K * p.V;
      for (auto const& c : chunks)
        for (int64_t hv = 0; hv < p.HV; ++hv) {
          BlockNorms b;
          add_range(b, exact.offset({c.b, c.h_index, hv, 0, 0}), kv);
          finish_block(b, c.sequence, hv, c.chunk, c.rows);
        }
    } else {
      // Per-token tensors [B,T,HV(,D)]: a chunk is its valid rows of one value head.
      int64_t const d = exact.rank() == 4 ? exact.dim(3) : 1;
      for (auto const& c : chunks)
        for (int64_t hv = 0; hv < p.HV; ++hv) {
          BlockNorms b;
          for (int64_t t = c.begin; t < c.begin + c.rows; ++t) {
            int64_t const off = ((c.b * p.T + t) * p.HV + hv) * d;
            add_range(b, off, d);
          }
          finish_block(b, c.sequence, hv, c.chunk, c.rows);
          if (name == "A_inv" && d >= c.rows) {
            // LAPACK xTRT01 against T = I + A of the reference (reported, not gated)
            Eigen::MatrixXd T = Eigen::MatrixXd::Identity(c.rows, c.rows), X(c.rows, c.rows);
            for (int64_t i = 0; i < c.rows; ++i) {
              int64_t const off = ((c.b * p.T + c.begin + i) * p.HV + hv) * d;
              for (int64_t j = 0; j < c.rows; ++j) {
                if (j < i) T(i, j) = ref.A.data[static_cast<size_t>(off + j)];
                X(i, j) = tensor.data[static_cast<size_t>(off + j)];
              }
            }
            ChunkRow& row = cmp.rows.back();
            row.has_trt01 = true;
            row.trt01 = trt01_ratio(T, X, unit_roundoff(tensor.dtype));
            trt01.push_back(row.trt01);
          }
        }
    }

    m.chunks = static_cast<int64_t>(ratios.size());
    m.nonfinite = whole.nonfinite;
    int64_t const count = tensor.numel();
    double const rms_err = count ? std::sqrt(whole.err2 / static_cast<double>(count)) : 0.0;
    double const rms_ref = count ? std::sqrt(whole.exact2 / static_cast<double>(count)) : 0.0;
    m.rel_rms = whole.nonfinite ? std::numeric_limits<double>::infinity() : rms_err / (rms_ref + 1e-8);
    m.relative_l2 = whole.exact2 > 0 ? std::sqrt(whole.err2 / whole.exact2) : std::sqrt(whole.err2);
    if (whole.nonfinite) m.relative_l2 = std::numeric_limits<double>::infinity();
    m.floor_ratio = make_row(name, whole, floor_dtype).ratio;
    for (int64_t i = 0; i < count; ++i) {
      double const g = tensor.data[static_cast<size_t>(i)];
      double const e = std::isfinite(g) ? std::fabs(g - exact.data[static_cast<size_t>(i)])
                                        : std::numeric_limits<double>::infinity();
      m.max_abs = std::max(m.max_abs, e);
    }
    if (!ratios.empty()) {
      m.max_chunk_ratio = *std::max_element(ratios.begin(), ratios.end());
      std::vector<double> sorted = ratios;
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(sorted.size() / 2), sorted.end());
      m.median_chunk_ratio = sorted[sorted.size() / 2];
    }
    for (auto it = cmp.rows.end() - static_cast<long>(ratios.size()); it != cmp.rows.end(); ++it)
      m.max_chunk_rel_rms = std::max(m.max_chunk_rel_rms, it->rel_rms);
    if (!trt01.empty()) {
      m.has_trt01 = true;
      m.trt01_u = unit_roundoff(tensor.dtype);
      m.max_trt01 = quantile(trt01, 1.0);
      m.p50_trt01 = quantile(trt01, 0.5);
      m.p99_trt01 = quantile(trt01, 0.99);
    }
    cmp.metrics[name] = m;
  }

  for (auto const& r : cmp.rows)
    if (cmp.worst.tensor.empty() || r.ratio > cmp.worst.ratio || (!r.finite && cmp.worst.finite)) cmp.worst = r;
  return cmp;
}

std::map<std::string, PairTensorStats> compare_pair(StageOutputs const& a, StageOutputs const& b) {
  std::map<std::string, PairTensorStats> out;
  for (auto const& [name, ta] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second.shape != ta.shape) continue;
    Tensor const& tb = it->second;
    PairTensorStats st;
    st.elements = static_cast<int64_t>(ta.data.size());
    for (size_t i = 0; i < ta.data.size(); ++i) {
      double const x = ta.data[i], y = tb.data[i];
      if (x == y && std::signbit(x) == std::signbit(y)) ++st.equal;
      double const d = std::fabs(x - y);
      if (std::isnan(st.max_abs_diff)) continue;  // a NaN difference sticks
      if (std::isnan(d) || d > st.max_abs_diff) st.max_abs_diff = d;
    }
    out[name] = st;
  }
  return out;
}

}  // namespace gdnv
