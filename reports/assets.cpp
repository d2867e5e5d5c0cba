// The bundles are embedded with the assembler's .incbin: the build step writes them (possibly
// empty) into GDNV_REPORT_ASSET_DIR before this file compiles (OBJECT_DEPENDS).
#include "reports/assets.hpp"

#define GDNV_EMBED(sym, file)                                    \
  ".pushsection .rodata\n"                                       \
  ".balign 16\n" #sym ":\n"                                      \
  ".incbin \"" GDNV_REPORT_ASSET_DIR "/" file "\"\n" #sym "_end:\n" \
  ".byte 0\n"                                                    \
  ".popsection\n"

asm(GDNV_EMBED(gdnv_asset_vega, "vega.min.js") GDNV_EMBED(gdnv_asset_vega_lite, "vega-lite.min.js")
        GDNV_EMBED(gdnv_asset_vega_embed, "vega-embed.min.js") GDNV_EMBED(gdnv_asset_notices, "notices.txt")
            GDNV_EMBED(gdnv_asset_status, "status.txt"));

extern "C" {
extern char const gdnv_asset_vega[], gdnv_asset_vega_end[];
extern char const gdnv_asset_vega_lite[], gdnv_asset_vega_lite_end[];
extern char const gdnv_asset_vega_embed[], gdnv_asset_vega_embed_end[];
extern char const gdnv_asset_notices[], gdnv_asset_notices_end[];
extern char const gdnv_asset_status[], gdnv_asset_status_end[];
}

namespace gdnv::reports {
namespace {
std::string_view view(char const* b, char const* e) { return {b, static_cast<size_t>(e - b)}; }
}  // namespace

ChartAssets const& chart_assets() {
  static ChartAssets const a = {
      view(gdnv_asset_vega, gdnv_asset_vega_end),
      view(gdnv_asset_vega_lite, gdnv_asset_vega_lite_end),
      view(gdnv_asset_vega_embed, gdnv_asset_vega_embed_end),
      view(gdnv_asset_notices, gdnv_asset_notices_end),
      view(gdnv_asset_status, gdnv_asset_status_end),
      GDNV_VEGA_VERSION,
      GDNV_VEGA_LITE_VERSION,
      GDNV_VEGA_EMBED_VERSION,
  };
  return a;
}

}  // namespace gdnv::reports
