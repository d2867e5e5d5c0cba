// Where a number was measured: the GPU (name, driver, CUDA runtime), the git commit, the host, the
// compiler and the date, as `gdnv check` and `gdnv bench` record them and `gdnv baseline` compares them.
// Also the SHA-256 of an input file, so a baseline names the exact dataset it was taken on.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace gdnv {

// {"commit", "source"[, "uncommitted_changes"]}: GDNV_GIT_COMMIT when set (a tree exported from git may
// sit inside another checkout), else `git rev-parse HEAD` in the working directory, else "unknown".
nlohmann::json git_info();

// {"gpu": {"name", "compute_capability", "driver_version", "cuda_runtime_version"} or null,
//  "gpu_reason" (why null), "git": git_info(), "host", "compiler", "gdnv_version", "date" (UTC, ISO 8601)}.
// Driver and runtime versions are CUDA's integers (13000 = 13.0).
nlohmann::json environment_info();

// The current time, UTC, "2025-01-31T12:34:56Z".
std::string utc_now_iso8601();

// Lower-case hex SHA-256 of the file's bytes; throws std::runtime_error when it cannot be read.
std::string sha256_file(std::string const& path, int64_t* bytes = nullptr);
// Of a byte string (tests check the implementation against the standard's examples).
std::string sha256_hex(std::string const& data);

}  // namespace gdnv
