#include "progress.hpp"

#include <cstdio>
#include <unistd.h>

namespace gdnv {

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), active_(isatty(STDERR_FILENO) == 1) {
  if (active_) std::fprintf(stderr, "\r%s: 0/%lld", label_.c_str(), static_cast<long long>(total_));
}

void Progress::step(std::string const& what) {
  ++done_;
  if (!active_) return;
  std::fprintf(stderr, "\r\033[K%s: %lld/%lld %s", label_.c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), what.c_str());
  std::fflush(stderr);
}

Progress::~Progress() {
  if (active_) std::fprintf(stderr, "\r\033[K");
}

}  // namespace gdnv
