// Errors that end a command with exit status 2 (bad input or usage), as one line on stderr.
#pragma once

#include <stdexcept>
#include <string>

namespace gdnv {

// Bad input file: names the file, the case (may be empty for file-level problems) and the field
// (a dataset or attribute path inside the case, e.g. "inputs/q" or "attr scale").
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string case_name, std::string field, std::string detail);
  std::string const& file() const { return file_; }
  std::string const& case_name() const { return case_; }
  std::string const& field() const { return field_; }
  std::string const& detail() const { return detail_; }

 private:
  std::string file_, case_, field_, detail_;
};

// Bad command line (unknown family, bad list, ...).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace gdnv
