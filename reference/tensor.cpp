#include "tensor.hpp"

#include <stdexcept>

namespace gdnv {

std::string dtype_name(DType t) {
  switch (t) {
    case DType::f64: return "fp64";
    case DType::f32: return "fp32";
    case DType::f16: return "fp16";
    case DType::bf16: return "bf16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
  }
  return "?";
}

DType parse_dtype(std::string const& name) {
  if (name == "fp64" || name == "float64" || name == "double") return DType::f64;
  if (name == "fp32" || name == "float32" || name == "float") return DType::f32;
  if (name == "fp16" || name == "float16" || name == "half") return DType::f16;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "int32") return DType::i32;
  if (name == "int64") return DType::i64;
  throw std::invalid_argument("unknown dtype '" + name + "' (bf16, fp16, fp32, fp64)");
}

bool is_float(DType t) { return t == DType::f64 || t == DType::f32 || t == DType::f16 || t == DType::bf16; }

double unit_roundoff(DType t) {
  switch (t) {
    case DType::bf16: return 0x1p-8;
    case DType::f16: return 0x1p-11;
    case DType::f32: return 0x1p-24;
    case DType::f64: return 0x1p-53;
    default: throw std::invalid_argument("unit_roundoff of an integer dtype");
  }
}

DType lower_precision(DType a, DType b) { return unit_roundoff(a) >= unit_roundoff(b) ? a : b; }

Tensor::Tensor(std::vector<int64_t> shape_, DType dtype_, double fill) : shape(std::move(shape_)), dtype(dtype_) {
  data.assign(static_cast<size_t>(numel()), fill);
}

int64_t Tensor::numel() const {
  if (shape.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Tensor::offset(std::initializer_list<int64_t> idx) const {
  int64_t off = 0;
  size_t i = 0;
  for (int64_t x : idx) off = off * shape[i++] + x;
  return off;
}

std::string shape_string(std::vector<int64_t> const& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace gdnv
