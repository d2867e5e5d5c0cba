// gdnv generate --family F --out FILE [--B --T --H --HV --K --V --seqlens a,b,c --dtype bf16|fp16|fp32
//               --seed N --h0 --case NAME --append --gate-normalizer X --rank R --scale S
//               --l2norm-in-kernel 0|1 --description TEXT]
//
// Writes one synthetic case (datasets/generators.hpp) to an HDF5 dataset file. The output is
// bit-reproducible: no time stamps, deterministic random streams, deterministic writer.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "datasets/generators.hpp"
#include "harness/cli/commands.hpp"
#include "harness/dataset.hpp"
#include "harness/errors.hpp"

namespace gdnv::cli {
namespace {

struct GenerateOptions {
  std::string family, out, case_name, dtype = "bf16", seqlens, description;
  int64_t B = 1, T = 256, H = 2, HV = 4, K = 128, V = 128;
  uint64_t seed = 0;
  bool h0 = false, append = false;
  double gate_normalizer = 0, scale = 0;
  int rank = 0, l2norm_in_kernel = 0;
  // Which of the options with a value were given (the others keep the family's defaults).
  CLI::Option *opt_T = nullptr, *opt_gate = nullptr, *opt_rank = nullptr, *opt_scale = nullptr,
              *opt_l2 = nullptr, *opt_desc = nullptr, *opt_seqlens = nullptr;
};

// "1,15,64,65,200" -> {1, 15, 64, 65, 200}; digits only, no empty items.
std::vector<int64_t> parse_seqlens(std::string const& s) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (true) {
    size_t const comma = s.find(',', pos);
    std::string const item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 12)
      throw UsageError("--seqlens: malformed list '" + s + "' (expected non-negative integers like 1,15,64)");
    out.push_back(std::stoll(item));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

int run_generate(GenerateOptions const& o) {
  std::vector<std::string> const families = generator_families();
  bool known = false;
  for (auto const& f : families) known = known || f == o.family;
  if (!known) {
    std::string list;
    for (auto const& f : families) list += (list.empty() ? "" : ", ") + f;
    throw UsageError("--family: unknown family '" + o.family + "' (known: " + list + ")");
  }
  if (o.case_name.find('/') != std::string::npos || o.case_name == "." || o.case_name == "..")
    throw UsageError("--case: '" + o.case_name + "' is not a valid case name (no '/')");

  GeneratorParams p;
  p.family = o.family;
  p.B = o.B, p.T = o.T, p.H = o.H, p.HV = o.HV, p.K = o.K, p.V = o.V;
  if (o.opt_seqlens->count() > 0) {
    p.seqlens = parse_seqlens(o.seqlens);
    if (o.B > 1) throw UsageError("--seqlens needs --B 1 (sequences are packed along T)");
  }
  try {
    p.dtype = parse_dtype(o.dtype);
  } catch (std::invalid_argument const&) {
    throw UsageError("--dtype: unknown dtype '" + o.dtype + "' (bf16, fp16, fp32, fp64)");
  }
  if (!is_float(p.dtype)) throw UsageError("--dtype: q, k, v need a floating dtype, got '" + o.dtype + "'");
  if (o.seed > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw UsageError("--seed must be at most 2^63 - 1 (it is stored as an int64 attribute)");
  p.seed = o.seed;
  p.h0 = o.h0;
  if (o.opt_gate->count() > 0) p.gate_normalizer = o.gate_normalizer;
  if (o.opt_rank->count() > 0) p.rank = o.rank;
  if (o.opt_scale->count() > 0) p.scale = o.scale;
  if (o.opt_l2->count() > 0) {
    if (o.l2norm_in_kernel != 0 && o.l2norm_in_kernel != 1) throw UsageError("--l2norm-in-kernel must be 0 or 1");
    p.l2norm_in_kernel = o.l2norm_in_kernel == 1;
  }

  Case c;
  try {
    c.problem = generate_problem(p);
  } catch (std::invalid_argument const& e) {
    throw UsageError(e.what());
  }
  Problem const& pr = c.problem;
  if (pr.varlen() && o.opt_T->count() > 0 && o.T != pr.T)
    throw UsageError(fmt::format("--T {} does not match the sum of the sequence lengths ({})", o.T, pr.T));

  c.name = o.case_name.empty() ? o.family : o.case_name;
  c.family = o.family;
  c.source = "gdnv generate";
  c.seed = static_cast<int64_t>(o.seed);

  Dataset ds;
  if (o.append && std::filesystem::exists(o.out)) {
    ReadOptions ro;
    ro.load_captured = true;
    ds = read_dataset(o.out, ro);
  }
  ds.path = o.out;
  if (o.opt_desc->count() > 0) ds.description = o.description;
  ds.created_by = std::string("gdnv generate ") + GDNV_VERSION;
  bool replaced = false;
  for (auto& existing : ds.cases)
    if (existing.name == c.name) {
      existing = c;  // same name: replaced (the file lists cases by name anyway)
      replaced = true;
    }
  if (!replaced) ds.cases.push_back(c);
  write_dataset(o.out, ds);

  std::string shape = fmt::format("B={} T={} H={} HV={} K={} V={}", pr.B, pr.T, pr.H, pr.HV, pr.K, pr.V);
  if (pr.varlen()) shape += fmt::format(", {} sequences", pr.num_sequences());
  if (!pr.initial_state.empty()) shape += ", h0";
  std::printf("wrote case '%s' (family %s, %s, %s, seed %llu%s) to %s\n", c.name.c_str(), o.family.c_str(),
              shape.c_str(), dtype_name(p.dtype).c_str(), static_cast<unsigned long long>(o.seed),
              replaced ? ", replaced" : "", o.out.c_str());
  return 0;
}

}  // namespace

Command add_generate_command(CLI::App& root) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* app = root.add_subcommand("generate", "Write a synthetic input case (HDF5, schema v1)");
  std::string footer = "Families:";
  for (auto const& f : generator_families()) footer += "\n  " + f + ": " + generator_family_description(f);
  app->footer(footer);
  app->add_option("--family", o->family, "generator family (see below)")->required();
  app->add_option("--out", o->out, "output HDF5 file")->required();
  app->add_option("--B", o->B, "batch rows (1 with --seqlens)")->capture_default_str();
  o->opt_T = app->add_option("--T", o->T, "tokens per row (the sum of --seqlens when varlen)")->capture_default_str();
  app->add_option("--H", o->H, "q/k heads")->capture_default_str();
  app->add_option("--HV", o->HV, "v heads (a multiple of H)")->capture_default_str();
  app->add_option("--K", o->K, "key head dim")->capture_default_str();
  app->add_option("--V", o->V, "value head dim")->capture_default_str();
  o->opt_seqlens = app->add_option("--seqlens", o->seqlens, "varlen sequence lengths, e.g. 1,15,64,65,200");
  app->add_option("--dtype", o->dtype, "dtype of q, k, v: bf16|fp16|fp32 (g, beta, h0 are fp32)")->capture_default_str();
  app->add_option("--seed", o->seed, "random seed")->capture_default_str();
  app->add_flag("--h0", o->h0, "add an initial state (fp32, 0.1 * randn)");
  app->add_option("--case", o->case_name, "case name (default: the family name)");
  app->add_flag("--append", o->append, "add to (or replace in) an existing file instead of overwriting it");
  o->opt_gate = app->add_option("--gate-normalizer", o->gate_normalizer, "divide g by this (> 0)");
  o->opt_rank = app->add_option("--rank", o->rank, "correlated-keys: key subspace rank (default 2 + seed % 7)");
  o->opt_scale = app->add_option("--scale", o->scale, "attention scale (default K^-0.5)");
  o->opt_l2 = app->add_option("--l2norm-in-kernel", o->l2norm_in_kernel,
                              "1: store raw q, k with qk_l2norm = 1; 0: store them normalized "
                              "(default 1 for model-like, 0 otherwise)");
  o->opt_desc = app->add_option("--description", o->description, "file description attribute");
  return {app, [o] { return run_generate(*o); }};
}

}  // namespace gdnv::cli
