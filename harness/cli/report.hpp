// Writing a report file, shared by `gdnv report` and `gdnv check --report`.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gdnv::cli {

// Renders the report of `results` (parsed from, or about to be written to, `results_path`) and the
// bench files, and writes it atomically to `out`. Bad input throws InputError (exit status 2).
void write_report(std::string const& results_path, nlohmann::json const& results,
                  std::vector<std::string> const& bench_paths, std::string const& out, int top = 3,
                  bool charts = true);

}  // namespace gdnv::cli
