// gdnv reference FILE --out OUT.h5 [--case NAME]
// Writes the input cases (inputs and captured groups as read) plus, per case, a reference/
// group with every fp64 intermediate of the chunked form in the schema's layouts.
#include <cstdio>

#include "harness/cli/commands.hpp"
#include "harness/dataset.hpp"
#include "harness/errors.hpp"
#include "harness/progress.hpp"
#include "reference/chunked.hpp"

namespace gdnv::cli {
namespace {

struct ReferenceOptions {
  std::string file, out, case_name;
  int threads = 0;
};

int run_reference(ReferenceOptions const& opt) {
  ReadOptions ro;
  if (!opt.case_name.empty()) ro.case_name = opt.case_name;
  Dataset ds = read_dataset(opt.file, ro);
  Progress progress("reference", static_cast<int64_t>(ds.cases.size()));
  for (auto& c : ds.cases) {
    ChunkedOptions co;
    co.threads = opt.threads;
    ChunkedResult r = chunked_forward(c.problem, co);
    c.reference = {{"o", std::move(r.o)},         {"final_state", std::move(r.final_state)},
                   {"g_cumsum", std::move(r.g_cumsum)}, {"A", std::move(r.A)},
                   {"A_inv", std::move(r.A_inv)}, {"w", std::move(r.w)},
                   {"u", std::move(r.u)},         {"v_new", std::move(r.v_new)},
                   {"h", std::move(r.h)}};
    progress.step(c.name);
  }
  ds.created_by = std::string("gdnv reference ") + GDNV_VERSION;
  write_dataset(opt.out, ds);
  std::printf("wrote fp64 reference for %zu case(s) to %s\n", ds.cases.size(), opt.out.c_str());
  return 0;
}

}  // namespace

Command add_reference_command(CLI::App& root) {
  auto opt = std::make_shared<ReferenceOptions>();
  CLI::App* app = root.add_subcommand("reference", "Compute the fp64 chunked reference with every intermediate");
  app->add_option("file", opt->file, "dataset file (HDF5, schema v1)")->required();
  app->add_option("--out", opt->out, "output HDF5 file (inputs + reference/ groups)")->required();
  app->add_option("--case", opt->case_name, "only this case");
  app->add_option("--threads", opt->threads, "threads (0: all cores)");
  return {app, [opt] { return run_reference(*opt); }};
}

}  // namespace gdnv::cli
