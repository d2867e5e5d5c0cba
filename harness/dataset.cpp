// Reading and writing dataset format version 1 (docs/dataset-schema.md). The reader validates
// everything the schema's "Errors" list names before any number reaches the reference, and turns
// every failure (HDF5's included) into one InputError naming file, case and field.
#include "harness/dataset.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>

#include "harness/atomic_file.hpp"
#include "harness/errors.hpp"
#include "harness/h5.hpp"

namespace gdnv {

namespace {

constexpr char kFormat[] = "gdnv-dataset";
constexpr int64_t kVersion = 1;

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// The file and case being read; fail() throws the InputError for one field of it.
struct Where {
  std::string const& file;
  std::string case_name;

  [[noreturn]] void fail(std::string const& field, std::string const& detail) const {
    throw InputError(file, case_name, field, detail);
  }

  // Runs f, turning HDF5 failures and impossible allocations into an InputError for `field`.
  template <class F>
  auto guard(std::string const& field, F&& f) const -> decltype(f()) {
    try {
      return f();
    } catch (h5::Error const& e) {
      fail(field, e.what());
    } catch (std::bad_alloc const&) {
      fail(field, "too large to read into memory");
    } catch (std::length_error const&) {
      fail(field, "too large to read into memory");
    }
  }
};

// --- attributes -----------------------------------------------------------------------------

void require_attr(Where const& w, h5::Object const& obj, std::string const& name, std::string const& field) {
  if (!obj.has_attr(name)) w.fail(field, "missing required attribute");
}

double required_double(Where const& w, h5::Object const& obj, std::string const& name, std::string const& field) {
  require_attr(w, obj, name, field);
  return w.guard(field, [&] { return obj.attr_double(name); });
}

int64_t required_int(Where const& w, h5::Object const& obj, std::string const& name, std::string const& field) {
  require_attr(w, obj, name, field);
  return w.guard(field, [&] { return obj.attr_int(name); });
}

std::string required_string(Where const& w, h5::Object const& obj, std::string const& name,
                            std::string const& field) {
  require_attr(w, obj, name, field);
  return w.guard(field, [&] { return obj.attr_string(name); });
}

std::string optional_string(Where const& w, h5::Object const& obj, std::string const& name,
                            std::string const& field) {
  if (!obj.has_attr(name)) return {};
  return w.guard(field, [&] { return obj.attr_string(name); });
}

// --- datasets -------------------------------------------------------------------------------

// Opens group member `name` as a dataset; nullopt when absent and not required.
std::optional<h5::Dataset> open_member(Where const& w, h5::Group const& grp, std::string const& name,
                                       std::string const& field, bool required) {
  switch (grp.kind(name)) {
    case h5::Kind::missing:
      if (required) w.fail(field, "missing required dataset");
      return std::nullopt;
    case h5::Kind::dataset: break;
    default: w.fail(field, "not a dataset");
  }
  return w.guard(field, [&] { return grp.open_dataset(name); });
}

// Dtype (floating only) and rank of a float dataset, checked before reading any data.
std::vector<int64_t> float_shape(Where const& w, h5::Dataset const& ds, std::string const& field, int rank,
                                 char const* layout) {
  w.guard(field, [&] {
    h5::Type const t = ds.type();
    if (!h5::classify_float(t.id()))
      w.fail(field, "unsupported dtype " + h5::describe_type(t.id()) + "; expected fp64, fp32, fp16 or bf16");
  });
  auto shape = w.guard(field, [&] { return ds.shape(); });
  if (static_cast<int>(shape.size()) != rank)
    w.fail(field, "rank " + std::to_string(shape.size()) + " (shape " + shape_string(shape) + "), expected rank " +
                      std::to_string(rank) + " " + layout);
  return shape;
}

Tensor read_floats(Where const& w, h5::Dataset const& ds, std::string const& field) {
  return w.guard(field, [&] { return ds.read_float(); });
}

// Inputs must be finite: names the first offending element.
void require_finite(Where const& w, Tensor const& t, std::string const& field) {
  for (size_t i = 0; i < t.data.size(); ++i) {
    double const x = t.data[i];
    if (!std::isfinite(x))
      w.fail(field, std::string(std::isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf") + " at flat index " +
                        std::to_string(i) + " (shape " + shape_string(t.shape) + "); inputs must be finite");
  }
}

void require_shape(Where const& w, std::string const& field, std::vector<int64_t> const& shape,
                   std::vector<int64_t> const& expected, char const* layout, char const* why) {
  if (shape != expected)
    w.fail(field, "shape " + shape_string(shape) + " " + why + ": expected " + layout + " = " +
                      shape_string(expected));
}

// --- cases ----------------------------------------------------------------------------------

std::vector<int64_t> read_cu_seqlens(Where const& w, h5::Group const& inputs, int64_t B, int64_t T) {
  std::string const field = "inputs/cu_seqlens";
  auto ds = open_member(w, inputs, "cu_seqlens", field, false);
  if (!ds) return {};
  auto const shape = w.guard(field, [&] { return ds->shape(); });
  if (shape.size() != 1) w.fail(field, "rank " + std::to_string(shape.size()) + ", expected a 1-D array [N + 1]");
  std::vector<int64_t> cu = w.guard(field, [&] { return ds->read_ints(); });  // checks int32/int64
  if (B != 1)
    w.fail(field, "given with B = " + std::to_string(B) + "; variable-length sequences need B = 1");
  if (cu.size() < 2) w.fail(field, "has " + std::to_string(cu.size()) + " entries; needs at least [0, T]");
  if (cu.front() != 0) w.fail(field, "starts at " + std::to_string(cu.front()) + ", must start at 0");
  for (size_t i = 1; i < cu.size(); ++i)
    if (cu[i] < cu[i - 1])
      w.fail(field, "decreases at index " + std::to_string(i) + " (" + std::to_string(cu[i - 1]) + " -> " +
                        std::to_string(cu[i]) + ")");
  if (cu.back() != T)
    w.fail(field, "ends at " + std::to_string(cu.back()) + ", must end at T = " + std::to_string(T));
  return cu;
}

// What a captured tensor's shape must be, given the inputs.
struct Expected {
  std::vector<int64_t> shape;
  char const* layout;
};

Expected captured_shape(std::string const& name, Problem const& p) {
  int64_t const B = p.B, T = p.T, HV = p.HV, K = p.K, V = p.V;
  if (name == "o" || name == "u" || name == "v_new") return {{B, T, HV, V}, "[B, T, HV, V]"};
  if (name == "w") return {{B, T, HV, K}, "[B, T, HV, K]"};
  if (name == "A_inv") return {{B, T, HV, kChunk}, "[B, T, HV, 64]"};
  if (name == "h") return {{B, p.num_chunks_per_row(), HV, K, V}, "[B, NT, HV, K, V]"};
  if (name == "g_cumsum") return {{B, T, HV}, "[B, T, HV]"};
  if (name == "final_state") return {{p.num_sequences(), HV, K, V}, "[N, HV, K, V]"};
  throw std::logic_error("no layout for captured tensor " + name);
}

CapturedGroup read_captured(Where const& w, h5::Group const& captured, std::string const& name, Problem const& p) {
  std::string const base = "captured/" + name;
  if (captured.kind(name) != h5::Kind::group) w.fail(base, "not a group");
  h5::Group const grp = w.guard(base, [&] { return captured.open_group(name); });

  CapturedGroup cg;
  cg.name = name;
  cg.implementation = required_string(w, grp, "implementation", base + "/attr implementation");
  cg.version = optional_string(w, grp, "version", base + "/attr version");
  cg.device = optional_string(w, grp, "device", base + "/attr device");
  for (auto const& a : w.guard(base, [&] { return grp.attr_names(); })) {
    if (a == "implementation" || a == "version" || a == "device") continue;
    std::string const field = base + "/attr " + a;
    if (w.guard(field, [&] { return grp.attr_is_string(a); }))
      cg.extra_attrs[a] = w.guard(field, [&] { return grp.attr_string(a); });
  }

  // Known stage tensors only; anything else in the group is ignored. NaN/Inf are allowed here:
  // a kernel that produced them must fail the comparison, not make the file unreadable.
  for (char const* tname : kStageTensors) {
    std::string const field = base + "/" + tname;
    bool const required = std::string(tname) == "o";
    auto ds = open_member(w, grp, tname, field, required);
    if (!ds) continue;
    Expected const e = captured_shape(tname, p);
    auto const shape = float_shape(w, *ds, field, static_cast<int>(e.shape.size()), e.layout);
    require_shape(w, field, shape, e.shape, e.layout, "differs from the shape the inputs imply");
    cg.tensors[tname] = read_floats(w, *ds, field);
  }
  return cg;
}

Case read_case(std::string const& file, h5::Group const& cases, std::string const& name, ReadOptions const& opt) {
  Where const w{file, name};
  if (cases.kind(name) != h5::Kind::group) w.fail("", "not a group");
  h5::Group const grp = w.guard("", [&] { return cases.open_group(name); });

  Case c;
  c.name = name;
  Problem& p = c.problem;

  // Attributes.
  p.scale = required_double(w, grp, "scale", "attr scale");
  if (!std::isfinite(p.scale)) w.fail("attr scale", "must be finite, is " + num(p.scale));
  p.chunk_size = required_int(w, grp, "chunk_size", "attr chunk_size");
  if (p.chunk_size < 1) w.fail("attr chunk_size", "must be >= 1, is " + std::to_string(p.chunk_size));
  int64_t const l2 = required_int(w, grp, "qk_l2norm", "attr qk_l2norm");
  if (l2 != 0 && l2 != 1) w.fail("attr qk_l2norm", "must be 0 or 1, is " + std::to_string(l2));
  p.qk_l2norm = l2 == 1;
  c.family = optional_string(w, grp, "family", "attr family");
  c.source = optional_string(w, grp, "source", "attr source");
  if (grp.has_attr("seed")) c.seed = w.guard("attr seed", [&] { return grp.attr_int("seed"); });

  // Inputs: types, ranks and shapes first, data afterwards.
  switch (grp.kind("inputs")) {
    case h5::Kind::group: break;
    case h5::Kind::missing: w.fail("inputs", "missing required group");
    default: w.fail("inputs", "not a group");
  }
  h5::Group const in = w.guard("inputs", [&] { return grp.open_group("inputs"); });
  struct Input {
    char const* name;
    int rank;
    char const* layout;
    h5::Dataset ds;
    std::vector<int64_t> shape;
  };
  Input inputs[] = {{"q", 4, "[B, T, H, K]", {}, {}},
                    {"k", 4, "[B, T, H, K]", {}, {}},
                    {"v", 4, "[B, T, HV, V]", {}, {}},
                    {"g", 3, "[B, T, HV]", {}, {}},
                    {"beta", 3, "[B, T, HV]", {}, {}}};
  for (auto& x : inputs) {
    std::string const field = std::string("inputs/") + x.name;
    x.ds = std::move(*open_member(w, in, x.name, field, true));
    x.shape = float_shape(w, x.ds, field, x.rank, x.layout);
  }
  auto const& qs = inputs[0].shape;
  auto const& vs = inputs[2].shape;
  p.B = qs[0], p.T = qs[1], p.H = qs[2], p.K = qs[3];
  p.HV = vs[2], p.V = vs[3];
  char const* const dim_names[] = {"B", "T", "H", "K"};
  for (int i = 0; i < 4; ++i)
    if (qs[i] < 1)
      w.fail("inputs/q", std::string("dimension ") + dim_names[i] + " is " + std::to_string(qs[i]) + " (shape " +
                             shape_string(qs) + "); B, T, H and K must be >= 1");
  char const* const why = "disagrees with the other inputs (B, T, H, K from inputs/q; HV, V from inputs/v)";
  require_shape(w, "inputs/k", inputs[1].shape, {p.B, p.T, p.H, p.K}, "[B, T, H, K]", why);
  require_shape(w, "inputs/v", vs, {p.B, p.T, p.HV, p.V}, "[B, T, HV, V]", why);
  if (p.HV < 1 || p.V < 1)
    w.fail("inputs/v", "shape " + shape_string(vs) + ": HV and V must be >= 1");
  if (p.HV % p.H != 0)
    w.fail("inputs/v", "HV = " + std::to_string(p.HV) + " value heads is not a multiple of H = " +
                           std::to_string(p.H) + " key heads (inputs/q)");
  require_shape(w, "inputs/g", inputs[3].shape, {p.B, p.T, p.HV}, "[B, T, HV]", why);
  require_shape(w, "inputs/beta", inputs[4].shape, {p.B, p.T, p.HV}, "[B, T, HV]", why);

  p.cu_seqlens = read_cu_seqlens(w, in, p.B, p.T);

  auto h0 = open_member(w, in, "initial_state", "inputs/initial_state", false);
  if (h0) {
    auto const shape = float_shape(w, *h0, "inputs/initial_state", 4, "[N, HV, K, V]");
    require_shape(w, "inputs/initial_state", shape, {p.num_sequences(), p.HV, p.K, p.V}, "[N, HV, K, V]",
                  "disagrees with the other inputs (N sequences from cu_seqlens, or B)");
  }

  Tensor* const targets[] = {&p.q, &p.k, &p.v, &p.g, &p.beta};
  for (size_t i = 0; i < std::size(inputs); ++i) {
    std::string const field = std::string("inputs/") + inputs[i].name;
    *targets[i] = read_floats(w, inputs[i].ds, field);
    require_finite(w, *targets[i], field);
  }
  if (h0) {
    p.initial_state = read_floats(w, *h0, "inputs/initial_state");
    require_finite(w, p.initial_state, "inputs/initial_state");
  }

  // Captured outputs (the reference/ group, if any, is ours to write and never read back).
  if (opt.load_captured) {
    switch (grp.kind("captured")) {
      case h5::Kind::missing: break;
      case h5::Kind::group: {
        h5::Group const cap = w.guard("captured", [&] { return grp.open_group("captured"); });
        for (auto const& g : w.guard("captured", [&] { return cap.children(); }))
          c.captured.push_back(read_captured(w, cap, g, p));
        break;
      }
      default: w.fail("captured", "not a group");
    }
  }
  return c;
}

bool is_hdf5(Where const& w, std::string const& path) {
  h5::silence_errors();
#if H5_VERSION_GE(1, 12, 0)
  htri_t const r = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  htri_t const r = H5Fis_hdf5(path.c_str());
#endif
  if (r < 0) w.fail("", "cannot read the file: " + h5::error_stack_message());
  return r > 0;
}

// --- writing --------------------------------------------------------------------------------

void write_case(h5::Group const& cases, Case const& c) {
  if (c.name.empty() || c.name == "." || c.name.find('/') != std::string::npos)
    throw std::runtime_error("invalid case name '" + c.name + "'");
  Problem const& p = c.problem;
  h5::Group const g = cases.create_group(c.name);
  g.set_attr_double("scale", p.scale);
  g.set_attr_int("chunk_size", p.chunk_size);
  g.set_attr_int("qk_l2norm", p.qk_l2norm ? 1 : 0);
  if (!c.family.empty()) g.set_attr_string("family", c.family);
  if (!c.source.empty()) g.set_attr_string("source", c.source);
  if (c.seed) g.set_attr_int("seed", *c.seed);
  {
    h5::Group const in = g.create_group("inputs");
    in.write_tensor("q", p.q);
    in.write_tensor("k", p.k);
    in.write_tensor("v", p.v);
    in.write_tensor("g", p.g);
    in.write_tensor("beta", p.beta);
    if (!p.initial_state.empty()) in.write_tensor("initial_state", p.initial_state);
    if (!p.cu_seqlens.empty()) in.write_ints("cu_seqlens", p.cu_seqlens);
  }
  if (!c.captured.empty()) {
    h5::Group const cap = g.create_group("captured");
    for (auto const& cg : c.captured) {
      h5::Group const out = cap.create_group(cg.name);
      out.set_attr_string("implementation", cg.implementation);
      if (!cg.version.empty()) out.set_attr_string("version", cg.version);
      if (!cg.device.empty()) out.set_attr_string("device", cg.device);
      for (auto const& [key, value] : cg.extra_attrs)
        if (key != "implementation" && key != "version" && key != "device") out.set_attr_string(key, value);
      for (auto const& [name, t] : cg.tensors)
        if (!t.empty()) out.write_tensor(name, t);
    }
  }
  if (!c.reference.empty()) {
    h5::Group const ref = g.create_group("reference");
    for (auto const& [name, t] : c.reference)
      if (!t.empty()) ref.write_tensor(name, t, DType::f64);
  }
}

}  // namespace

Dataset read_dataset(std::string const& path, ReadOptions const& opt) {
  Where const top{path, ""};
  std::error_code ec;
  auto const st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) top.fail("", "no such file");
  if (std::filesystem::is_directory(st)) top.fail("", "is a directory, not a dataset file");
  // HDF5 itself may crash or spin on some corrupt files; this ends those with status 2 too.
  h5::CorruptFileGuard const guard(path);
  if (!is_hdf5(top, path)) top.fail("", "not an HDF5 file");

  h5::File const f = top.guard("", [&] { return h5::File::open_read(path); });
  h5::Group const root = top.guard("", [&] { return f.root(); });

  Dataset ds;
  ds.path = path;
  std::string const format = required_string(top, root, "format", "attr format");
  if (format != kFormat)
    top.fail("attr format", "is \"" + format + "\", expected \"" + kFormat + "\"");
  int64_t const version = required_int(top, root, "version", "attr version");
  if (version != kVersion)
    top.fail("attr version", "unsupported version " + std::to_string(version) + " (this reader supports 1)");
  ds.description = optional_string(top, root, "description", "attr description");
  ds.created_by = optional_string(top, root, "created_by", "attr created_by");

  switch (root.kind("cases")) {
    case h5::Kind::group: break;
    case h5::Kind::missing: top.fail("cases", "missing required group /cases");
    default: top.fail("cases", "not a group");
  }
  h5::Group const cases = top.guard("cases", [&] { return root.open_group("cases"); });
  std::vector<std::string> const names = top.guard("cases", [&] { return cases.children(); });  // name order
  if (names.empty()) top.fail("cases", "no cases");

  if (opt.case_name) {
    if (std::find(names.begin(), names.end(), *opt.case_name) == names.end()) {
      std::string have;
      for (size_t i = 0; i < names.size() && i < 10; ++i) {
        if (i) have += ", ";
        have += names[i];
      }
      if (names.size() > 10) have += ", ...";
      throw InputError(path, *opt.case_name, "", "no such case (the file has: " + have + ")");
    }
    ds.cases.push_back(read_case(path, cases, *opt.case_name, opt));
  } else {
    for (auto const& n : names) ds.cases.push_back(read_case(path, cases, n, opt));
  }
  return ds;
}

void write_dataset(std::string const& path, Dataset const& ds) {
  if (ds.cases.empty()) throw std::runtime_error("cannot write " + path + ": the dataset has no cases");
  std::string const tmp = temp_path_for(path);
  try {
    {
      h5::File f = h5::File::create(tmp);
      {
        h5::Group const root = f.root();
        root.set_attr_string("format", kFormat);
        root.set_attr_int("version", kVersion);
        if (!ds.description.empty()) root.set_attr_string("description", ds.description);
        if (!ds.created_by.empty()) root.set_attr_string("created_by", ds.created_by);
        h5::Group const cases = root.create_group("cases");
        for (auto const& c : ds.cases) write_case(cases, c);
      }  // every object is closed before the file
      f.close();
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  } catch (h5::Error const& e) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + e.what());
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

}  // namespace gdnv
