// Dataset format version 1 (docs/dataset-schema.md): reading with full validation, and writing.
// Every validation failure throws InputError naming file, case and field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reference/problem.hpp"
#include "reference/tensor.hpp"

namespace gdnv {

// Tensors a captured group (or an implementation) may hold, with their schema layouts.
// "o" is required in a captured group; the others are optional.
inline constexpr char const* kStageTensors[] = {"o", "final_state", "A_inv", "w", "u", "v_new", "h",
                                               "g_cumsum"};

struct CapturedGroup {
  std::string name;            // group name under captured/
  std::string implementation;  // attr implementation (required)
  std::string version;         // attr version (optional)
  std::string device;          // attr device (optional)
  std::map<std::string, std::string> extra_attrs;  // any other string attributes, kept as read
  std::map<std::string, Tensor> tensors;           // name -> tensor, dtype as stored
};

struct Case {
  std::string name;
  Problem problem;
  std::string family;             // optional attr
  std::string source;             // optional attr
  std::optional<int64_t> seed;    // optional attr
  std::vector<CapturedGroup> captured;
  // Written as float64 datasets under /cases/<name>/reference/ when not empty (gdnv reference).
  // Ignored by the reader.
  std::map<std::string, Tensor> reference;
};

struct Dataset {
  std::string path;
  std::string description;  // optional root attr
  std::string created_by;   // optional root attr
  std::vector<Case> cases;
};

struct ReadOptions {
  std::optional<std::string> case_name;  // only this case (InputError if absent)
  bool load_captured = true;
};

// Throws InputError on any file the schema rejects (see dataset-schema.md "Errors").
Dataset read_dataset(std::string const& path, ReadOptions const& opt = {});

// Writes the whole dataset to a temporary file next to `path`, then renames it over `path`;
// on failure nothing is left behind. Deterministic: the same Dataset gives the same bytes
// (no object time stamps). Tensors are stored in their own dtype (bf16/fp16 as the schema's
// custom float types), cu_seqlens as int64; shuffle + deflate compression.
void write_dataset(std::string const& path, Dataset const& ds);

}  // namespace gdnv
