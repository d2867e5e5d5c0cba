#include "rounding.hpp"

#include <bit>
#include <cmath>
#include <limits>

namespace gdnv {
namespace {

// RNE to a binary format with p significand bits (hidden bit included), smallest normal
// exponent emin (2^emin is the smallest normal) and largest finite value maxval.
double round_binary(double x, int p, int emin, double maxval) {
  if (!std::isfinite(x) || x == 0.0) return x;
  int e = 0;
  std::frexp(x, &e);  // x = m * 2^e, 0.5 <= |m| < 1: the leading bit is 2^(e-1)
  int const quantum_exp = std::max(e - p, emin - p + 1);
  double const q = std::ldexp(1.0, quantum_exp);
  double const r = std::nearbyint(x / q) * q;  // exact scaling by a power of two; RNE by default
  if (std::fabs(r) > maxval) return std::copysign(std::numeric_limits<double>::infinity(), x);
  return r;
}

}  // namespace

double round_to(DType t, double x) {
  switch (t) {
    case DType::f64: return x;
    case DType::f32: return round_binary(x, 24, -126, static_cast<double>(std::numeric_limits<float>::max()));
    case DType::bf16: return round_binary(x, 8, -126, 0x1.fep127);
    case DType::f16: return round_binary(x, 11, -14, 65504.0);
    default: return x;
  }
}

double bf16_bits_to_double(uint16_t bits) {
  return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(bits) << 16));
}

uint16_t double_to_bf16_bits(double x) {
  if (std::isnan(x)) return 0x7fc0;
  float const f = static_cast<float>(round_to(DType::bf16, x));  // exact: bf16 values are floats
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(f) >> 16);
}

double fp16_bits_to_double(uint16_t bits) {
  int const sign = (bits >> 15) & 1;
  int const exp = (bits >> 10) & 0x1f;
  int const man = bits & 0x3ff;
  double v;
  if (exp == 0) {
    v = std::ldexp(static_cast<double>(man), -24);
  } else if (exp == 31) {
    v = man ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(static_cast<double>(man | 0x400), exp - 25);
  }
  return sign ? -v : v;
}

uint16_t double_to_fp16_bits(double x) {
  if (std::isnan(x)) return 0x7e00;
  double const r = round_to(DType::f16, x);
  uint16_t const sign = std::signbit(r) ? 0x8000 : 0;
  double const a = std::fabs(r);
  if (std::isinf(a)) return sign | 0x7c00;
  if (a == 0.0) return sign;
  if (a < 0x1p-14) return sign | static_cast<uint16_t>(std::ldexp(a, 24));  // subnormal
  int e = 0;
  double const m = std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  uint16_t const exp_bits = static_cast<uint16_t>(e - 1 + 15);
  uint16_t const man = static_cast<uint16_t>(std::ldexp(m, 11)) & 0x3ff;
  return sign | static_cast<uint16_t>(exp_bits << 10) | man;
}

}  // namespace gdnv
