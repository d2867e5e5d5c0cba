#include "harness/environment.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include <unistd.h>

#ifdef GDNV_HAVE_CUDA
#include <fmt/format.h>

#include "cuda/gdn_cuda.hpp"
#endif

namespace gdnv {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// (stdout, ok) of a shell command.
std::pair<std::string, bool> capture(char const* cmd) {
  FILE* f = ::popen(cmd, "r");
  if (!f) return {"", false};
  std::string s;
  char buf[256];
  while (std::fgets(buf, sizeof buf, f)) s += buf;
  int const rc = ::pclose(f);
  return {trim(s), rc == 0};
}

// SHA-256 (FIPS 180-4), streaming.
class Sha256 {
 public:
  void update(unsigned char const* p, size_t n) {
    length_ += n;
    while (n > 0) {
      size_t const take = std::min(n, size_t{64} - fill_);
      for (size_t i = 0; i < take; ++i) block_[fill_ + i] = p[i];
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ == 64) {
        compress();
        fill_ = 0;
      }
    }
  }
  std::string hex() {
    uint64_t const bits = length_ * 8;
    unsigned char const one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    static char const digits[] = "0123456789abcdef";
    std::string out;
    for (uint32_t w : h_)
      for (int s = 28; s >= 0; s -= 4) out += digits[(w >> s) & 0xf];
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress() {
    static constexpr std::array<uint32_t, 64> k = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t{block_[4 * i]} << 24) | (uint32_t{block_[4 * i + 1]} << 16) |
             (uint32_t{block_[4 * i + 2]} << 8) | uint32_t{block_[4 * i + 3]};
    for (int i = 16; i < 64; ++i) {
      uint32_t const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t const t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
  }

  std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> block_{};
  size_t fill_ = 0;
  uint64_t length_ = 0;
};

nlohmann::json gpu_info(std::string* why) {
#ifdef GDNV_HAVE_CUDA
  if (gdn_cuda::device_count(why) <= 0) {
    *why = "no CUDA device: " + *why;
    return nullptr;
  }
  gdn_cuda::DeviceInfo const d = gdn_cuda::device_info();
  return {{"name", d.name}, {"compute_capability", fmt::format("{}.{}", d.cc_major, d.cc_minor)},
          {"driver_version", d.driver_version}, {"cuda_runtime_version", d.runtime_version}};
#else
  *why = "built without CUDA";
  return nullptr;
#endif
}

}  // namespace

nlohmann::json git_info() {
  if (char const* e = std::getenv("GDNV_GIT_COMMIT"); e && *e) return {{"commit", e}, {"source", "env GDNV_GIT_COMMIT"}};
  auto const [head, ok] = capture("git rev-parse HEAD 2>/dev/null");
  if (ok && head.size() == 40) {
    auto const [st, ok2] = capture("git status --porcelain --untracked-files=no 2>/dev/null");
    nlohmann::json j = {{"commit", head}, {"source", "git rev-parse HEAD"}};
    if (ok2) j["uncommitted_changes"] = !st.empty();
    return j;
  }
  return {{"commit", "unknown"}, {"source", "none"}};
}

std::string utc_now_iso8601() {
  std::time_t const now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json environment_info() {
  std::string why;
  nlohmann::json gpu = gpu_info(&why);
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  nlohmann::json j = {{"gpu", gpu}};
  if (gpu.is_null()) j["gpu_reason"] = why;
  j["git"] = git_info();
  j["host"] = host[0] ? std::string(host) : std::string("unknown");
#if defined(__clang__)
  j["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  j["compiler"] = std::string("gcc ") + __VERSION__;
#else
  j["compiler"] = "unknown";
#endif
  j["gdnv_version"] = GDNV_VERSION;
  j["date"] = utc_now_iso8601();
  return j;
}

std::string sha256_hex(std::string const& data) {
  Sha256 s;
  s.update(reinterpret_cast<unsigned char const*>(data.data()), data.size());
  return s.hex();
}

std::string sha256_file(std::string const& path, int64_t* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  Sha256 s;
  std::vector<char> buf(1 << 16);
  int64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize const n = in.gcount();
    if (n > 0) s.update(reinterpret_cast<unsigned char const*>(buf.data()), static_cast<size_t>(n));
    total += n;
  }
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  if (bytes) *bytes = total;
  return s.hex();
}

}  // namespace gdnv
