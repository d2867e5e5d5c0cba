// A light N-d array of doubles, row-major, tagged with the element type it had on disk.
// Every stored value (bf16, fp16, fp32) widens to double exactly, so the reference always
// runs on the exact stored inputs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace gdnv {

enum class DType { f64, f32, f16, bf16, i32, i64 };

// "bf16", "fp16", "fp32", "fp64", "int32", "int64"
std::string dtype_name(DType t);
// Accepts the names above (and "float32", "bfloat16", ... aliases); throws std::invalid_argument.
DType parse_dtype(const std::string& name);

// Unit roundoff u = 2^-p of a floating dtype (bf16 2^-8, fp16 2^-11, fp32 2^-24, fp64 2^-53).
double unit_roundoff(DType t);
// Of two floating dtypes, the one with the larger unit roundoff (the lower precision).
DType lower_precision(DType a, DType b);
bool is_float(DType t);

struct Tensor {
  std::vector<int64_t> shape;
  DType dtype = DType::f64;
  std::vector<double> data;

  Tensor() = default;
  Tensor(std::vector<int64_t> shape_, DType dtype_, double fill = 0.0);

  bool empty() const { return shape.empty(); }
  int rank() const { return static_cast<int>(shape.size()); }
  int64_t numel() const;
  int64_t dim(int i) const { return shape.at(static_cast<size_t>(i)); }
  double* ptr() { return data.data(); }
  double const* ptr() const { return data.data(); }
  // Row-major offset of a full index; no bounds checks (hot path).
  int64_t offset(std::initializer_list<int64_t> idx) const;
  double& at(std::initializer_list<int64_t> idx) { return data[static_cast<size_t>(offset(idx))]; }
  double at(std::initializer_list<int64_t> idx) const { return data[static_cast<size_t>(offset(idx))]; }
};

// "[1, 64, 2, 128]"
std::string shape_string(std::vector<int64_t> const& shape);

}  // namespace gdnv
