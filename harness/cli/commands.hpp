// The subcommands of `gdnv`, one file each. add_*_command registers the subcommand's options on
// the root app and returns the action to run when that subcommand was given. Actions return the
// exit status (0 all passed, 1 a checked implementation failed) and throw InputError or
// UsageError for status 2.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace gdnv::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_generate_command(CLI::App& root);
Command add_reference_command(CLI::App& root);
Command add_check_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_selftest_command(CLI::App& root);
Command add_report_command(CLI::App& root);
Command add_replay_command(CLI::App& root);
Command add_baseline_command(CLI::App& root);
Command add_oracle_command(CLI::App& root);

}  // namespace gdnv::cli
