// gdnv report: a results file (`gdnv check --json`), and optionally `gdnv bench` files, turned
// into one self-contained HTML page for a reviewer: verdicts first, the worst chunks with the
// command that reproduces each, Vega-Lite charts (libraries inlined), and every number in plain
// HTML tables. The report only lays out numbers the files carry; it computes none of its own.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gdnv::reports {

// An input file, already parsed.
struct JsonFile {
  std::string path;
  nlohmann::json json;
};

// A field of an input file is missing or has the wrong type; `field` is its JSON path
// (e.g. "results[3].chunks[17].ratio").
class BadField : public std::runtime_error {
 public:
  BadField(std::string file, std::string field, std::string detail);
  std::string const& file() const { return file_; }
  std::string const& field() const { return field_; }
  std::string const& detail() const { return detail_; }

 private:
  std::string file_, field_, detail_;
};

struct ReportOptions {
  int top = 3;         // worst chunks listed per (case, implementation)
  bool charts = true;  // false: tables only, no JavaScript (a small page, e.g. for mail)
};

// One Vega-Lite chart of the page: the spec refers to the page's shared datasets by name.
struct Chart {
  std::string id, title, caption;
  nlohmann::json spec;
};

struct Report {
  std::string html;
  std::vector<Chart> charts;
  nlohmann::json datasets;  // name -> rows, merged into every spec when the page embeds it
};

// Throws BadField on a malformed input.
Report render_report(JsonFile const& results, std::vector<JsonFile> const& benches, ReportOptions const& opt = {});

}  // namespace gdnv::reports
