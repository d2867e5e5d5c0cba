#include "harness/errors.hpp"

namespace gdnv {

namespace {

// "<file>: case '<case>': field '<field>': <detail>", without the empty parts, on one line.
std::string input_error_message(std::string const& file, std::string const& case_name, std::string const& field,
                                 std::string const& detail) {
  std::string m = file;
  if (!case_name.empty()) m += ": case '" + case_name + "'";
  if (!field.empty()) m += ": field '" + field + "'";
  m += ": " + detail;
  for (char& c : m)
    if (c == '\n' || c == '\r') c = ' ';
  return m;
}

}  // namespace

InputError::InputError(std::string file, std::string case_name, std::string field, std::string detail)
    : std::runtime_error(input_error_message(file, case_name, field, detail)),
      file_(std::move(file)),
      case_(std::move(case_name)),
      field_(std::move(field)),
      detail_(std::move(detail)) {}

}  // namespace gdnv
