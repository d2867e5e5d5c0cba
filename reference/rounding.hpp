// Round-to-nearest-even into the low-precision formats, done directly from double (no double
// rounding through float), and the 16-bit encodings used on disk.
#pragma once

#include <cstdint>

#include "tensor.hpp"

namespace gdnv {

// The value of x rounded to dtype t (f64: unchanged), RNE, with subnormals and overflow to inf.
double round_to(DType t, double x);

// bf16 / fp16 bit patterns <-> double. Decoding is exact; encoding rounds (RNE) first.
double bf16_bits_to_double(uint16_t bits);
uint16_t double_to_bf16_bits(double x);
double fp16_bits_to_double(uint16_t bits);
uint16_t double_to_fp16_bits(double x);

}  // namespace gdnv
