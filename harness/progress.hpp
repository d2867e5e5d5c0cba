// A one-line progress counter on stderr, shown only when stderr is a terminal (CI logs stay clean).
#pragma once

#include <cstdint>
#include <string>

namespace gdnv {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  Progress(Progress const&) = delete;
  Progress& operator=(Progress const&) = delete;
  void step(std::string const& what = {});

 private:
  std::string label_;
  int64_t total_ = 0, done_ = 0;
  bool active_ = false;
};

}  // namespace gdnv
