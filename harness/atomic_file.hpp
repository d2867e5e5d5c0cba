// Output files appear whole or not at all: write next to the target, then rename over it.
#pragma once

#include <string>

namespace gdnv {

// The temporary name used for `path` by this process (same directory, so rename is atomic).
std::string temp_path_for(std::string const& path);
// Writes `content` to a temporary file and renames it to `path`; throws std::runtime_error
// (after removing the temporary) on failure.
void write_text_atomic(std::string const& path, std::string const& content);

}  // namespace gdnv
