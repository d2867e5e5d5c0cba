#include "atomic_file.hpp"

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace gdnv {

std::string temp_path_for(std::string const& path) {
  return path + ".tmp-" + std::to_string(static_cast<long>(::getpid()));
}

void write_text_atomic(std::string const& path, std::string const& content) {
  std::string const tmp = temp_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (out) out << content;
    if (!out || !out.flush()) {
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot write " + path);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

}  // namespace gdnv
