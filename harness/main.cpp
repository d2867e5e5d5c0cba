// gdnv: proves, chunk by chunk, how accurate (and later how fast) GDN prefill kernels are.
// Exit status: 0 all checked implementations passed, 1 one failed, 2 bad input or usage.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "harness/cli/commands.hpp"
#include "harness/errors.hpp"

int main(int argc, char** argv) {
  CLI::App app{"gdnv: per-chunk verification of Gated DeltaNet prefill kernels against an fp64 reference"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gdnv ") + GDNV_VERSION);
  std::vector<gdnv::cli::Command> commands = {
      gdnv::cli::add_generate_command(app),
      gdnv::cli::add_reference_command(app),
      gdnv::cli::add_check_command(app),
      gdnv::cli::add_bench_command(app),
      gdnv::cli::add_selftest_command(app),
      gdnv::cli::add_report_command(app),
      gdnv::cli::add_replay_command(app),
      gdnv::cli::add_baseline_command(app),
      gdnv::cli::add_oracle_command(app),
  };
  try {
    app.parse(argc, argv);
  } catch (CLI::ParseError const& e) {
    int const rc = app.exit(e);  // prints help (rc 0) or the parse error
    return rc == 0 ? 0 : 2;
  }
  try {
    for (auto const& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (gdnv::InputError const& e) {
    std::fprintf(stderr, "gdnv: error: %s\n", e.what());
    return 2;
  } catch (gdnv::UsageError const& e) {
    std::fprintf(stderr, "gdnv: error: %s\n", e.what());
    return 2;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "gdnv: error: %s\n", e.what());
    return 2;
  }
  return 2;
}
