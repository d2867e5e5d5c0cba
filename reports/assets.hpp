// The chart libraries inlined into the gdnv binary at build time (see reports/CMakeLists.txt).
#pragma once

#include <string_view>

namespace gdnv::reports {

struct ChartAssets {
  std::string_view vega_js, vega_lite_js, vega_embed_js;
  std::string_view notices;  // every npm package's name@version (licence) and licence text
  std::string_view status;   // "ok", or why the bundles are empty (no npm, npm ci failed)
  std::string_view vega_version, vega_lite_version, vega_embed_version;
  bool available() const { return status == "ok" && !vega_js.empty() && !vega_lite_js.empty() && !vega_embed_js.empty(); }
};

ChartAssets const& chart_assets();

}  // namespace gdnv::reports
