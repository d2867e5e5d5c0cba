#include "harness/errors.hpp"

namespace gdnv {

namespace {

// "<file>: case '<case>': field '<field>': <detail>", without the empty parts, on one line.
std::string input_error_message(std::string const& file, std::string const& case_name, std::string const& field,
                                 std::string const& detail) {
  std::string m = file;
  // append piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "lit" + string temporaries
  if (!case_name.empty()) m.append(": case '").append(case_name).append("'");
  if (!field.empty()) m.append(": field '").append(field).append("'");
  m.append(": ").append(detail);
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
