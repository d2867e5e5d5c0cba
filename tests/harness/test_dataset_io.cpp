// Dataset I/O: exact round trips in every dtype, files written by h5py read here (and ours read
// by h5py), deterministic and atomic writes, and one test per error of the schema's "Errors" list
// (the bad files come from make_bad_files.py).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "harness/dataset.hpp"
#include "harness/errors.hpp"
#include "harness/h5.hpp"
#include "reference/rounding.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace gdnv;

namespace {

// --- helpers --------------------------------------------------------------------------------

std::string const kPython = "/usr/bin/python3";

std::string script(std::string const& name) { return std::string(GDNV_SOURCE_DIR) + "/tests/harness/" + name; }


using test::quote;
using test::TempDir;

// Runs a shell command; returns its exit status and standard output.
std::pair<int, std::string> run(std::string const& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  BOOST_REQUIRE_MESSAGE(p, "cannot run " << cmd);
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int const status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string read_bytes(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The bad (and good) files of make_bad_files.py, made on first use, one directory per process.
std::string bad_file(std::string const& name) {
  static TempDir dir;
  std::string const path = dir.file(name);
  if (!fs::exists(path)) {
    auto const [rc, out] = run(kPython + " " + quote(script("make_bad_files.py")) + " " +
                               quote(dir.path.string()) + " " + quote(name));
    BOOST_REQUIRE_MESSAGE(rc == 0 && fs::exists(path), "make_bad_files.py failed for " << name << ": " << out);
    BOOST_TEST(out.empty(), "make_bad_files.py printed: " << out);
  }
  return path;
}

void expect_input_error(std::string const& path, std::string const& case_name, std::string const& field,
                        std::string const& detail_part) {
  try {
    read_dataset(path);
    BOOST_ERROR("read_dataset accepted " << path);
  } catch (InputError const& e) {
    BOOST_TEST_MESSAGE("message: " << e.what());
    BOOST_TEST(e.file() == path);
    BOOST_TEST(e.case_name() == case_name);
    BOOST_TEST(e.field() == field);
    BOOST_TEST(e.detail().find(detail_part) != std::string::npos,
               "detail '" << e.detail() << "' does not contain '" << detail_part << "'");
    BOOST_TEST(std::string(e.what()).find('\n') == std::string::npos);
  }
}

// Same value, bit for bit (so -0 != +0); any NaN equals any NaN.
bool same_value(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

void check_same(Tensor const& got, Tensor const& want, std::string const& what) {
  BOOST_TEST_CONTEXT(what) {
    BOOST_TEST(shape_string(got.shape) == shape_string(want.shape));
    BOOST_TEST(dtype_name(got.dtype) == dtype_name(want.dtype));
    BOOST_REQUIRE_EQUAL(got.data.size(), want.data.size());
    size_t bad = 0;
    for (size_t i = 0; i < got.data.size(); ++i) {
      if (!same_value(got.data[i], want.data[i]) && bad++ < 5)
        BOOST_ERROR("index " << i << ": got " << got.data[i] << ", want " << want.data[i]);
    }
    BOOST_TEST(bad == 0u);
  }
}

// How a read in a child process ended: its exit status (-1: killed by a signal or timed out)
// and what it wrote to stderr.
struct ChildRead {
  int status = -1;
  bool timed_out = false;
  int signal = 0;
  std::string err;
};

// Runs read_dataset(path) in a forked child, so that a crash or hang cannot take the test down.
// The child exits 0 (read), 2 (InputError, or the corrupt-file guard), 3 (another exception).
ChildRead read_in_child(std::string const& path, double timeout_s) {
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  pid_t const pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    // Default actions, so that an unguarded crash kills the child (Boost.Test's handlers would
    // otherwise carry on running tests in it).
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    int rc = 3;
    try {
      read_dataset(path);
      rc = 0;
    } catch (InputError const&) {
      rc = 2;
    } catch (...) {
    }
    ::_exit(rc);
  }
  ::close(fds[1]);
  ChildRead r;
  int status = 0;
  auto const start = std::chrono::steady_clock::now();
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - start > std::chrono::duration<double>(timeout_s)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    ::usleep(2000);
  }
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.err.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  if (!r.timed_out && WIFEXITED(status)) r.status = WEXITSTATUS(status);
  if (!r.timed_out && WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// --- bit patterns shared with h5py_writer.py (keep the two formulas identical) ---------------

struct Layout {
  int bits, epos, esize;
  uint64_t mult;
  std::vector<uint64_t> specials;
};

Layout layout(DType t) {
  // zero, -0, smallest subnormal, most negative subnormal, max, -max, 1.0, smallest normal
  switch (t) {
    case DType::bf16: return {16, 7, 8, 40503, {0x0000, 0x8000, 0x0001, 0x807F, 0x7F7F, 0xFF7F, 0x3F80, 0x0080}};
    case DType::f16: return {16, 10, 5, 40503, {0x0000, 0x8000, 0x0001, 0x83FF, 0x7BFF, 0xFBFF, 0x3C00, 0x0400}};
    case DType::f32:
      return {32, 23, 8, 2654435761u,
              {0x0, 0x80000000, 0x1, 0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0x00800000}};
    default:
      return {64, 52, 11, 11400714819323198485u,
              {0x0, uint64_t{1} << 63, 0x1, 0x800FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF,
               0x3FF0000000000000, 0x0010000000000000}};
  }
}

uint64_t pattern(DType t, uint64_t index) {
  Layout const l = layout(t);
  if (index < l.specials.size()) return l.specials[index];
  uint64_t x = index * l.mult + 12345;  // wraps mod 2^64, as Python's % 2^64
  if (l.bits < 64) x &= (uint64_t{1} << l.bits) - 1;
  uint64_t const emask = (uint64_t{1} << l.esize) - 1;
  if (((x >> l.epos) & emask) == emask) x ^= uint64_t{1} << (l.bits - 2);
  return x;
}

double decode(DType t, uint64_t bits) {
  switch (t) {
    case DType::bf16: return bf16_bits_to_double(static_cast<uint16_t>(bits));
    case DType::f16: return fp16_bits_to_double(static_cast<uint16_t>(bits));
    case DType::f32: return std::bit_cast<float>(static_cast<uint32_t>(bits));
    default: return std::bit_cast<double>(bits);
  }
}

// Tensor number j of a case, filled with patterns 1000 j + i.
Tensor pattern_tensor(DType t, int j, std::vector<int64_t> shape) {
  Tensor x(std::move(shape), t);
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = decode(t, pattern(t, 1000 * static_cast<uint64_t>(j) + i));
  return x;
}

// --- datasets to write ----------------------------------------------------------------------

// A case whose every tensor holds the awkward values of dtype t (subnormals, -0, max, ...),
// with an initial state, varlen or dense, and a captured group holding every stage tensor.
Case pattern_case(std::string name, DType t, bool varlen) {
  Case c;
  c.name = std::move(name);
  Problem& p = c.problem;
  if (varlen) {
    p.cu_seqlens = {0, 30, 30, 100, 150};  // includes an empty sequence
    p.B = 1, p.T = 150;
  } else {
    p.B = 2, p.T = 70;
  }
  p.H = 2, p.HV = 4, p.K = 8, p.V = 6;
  p.scale = 0.35355339059327373;
  p.chunk_size = 64;
  p.qk_l2norm = true;
  int64_t const B = p.B, T = p.T, H = p.H, HV = p.HV, K = p.K, V = p.V, N = p.num_sequences();
  p.q = pattern_tensor(t, 0, {B, T, H, K});
  p.k = pattern_tensor(t, 1, {B, T, H, K});
  p.v = pattern_tensor(t, 2, {B, T, HV, V});
  p.g = pattern_tensor(t, 3, {B, T, HV});
  p.beta = pattern_tensor(t, 4, {B, T, HV});
  p.initial_state = pattern_tensor(t, 5, {N, HV, K, V});
  c.family = "patterns";
  c.source = "test_dataset_io";
  c.seed = -12345678901234;

  CapturedGroup g;
  g.name = "kernel_a";
  g.implementation = "kernel-a";
  g.version = "1.2.3";
  g.device = "NVIDIA H100 80GB HBM3";
  g.extra_attrs = {{"arithmetic", "bf16 in, fp32 accumulate"}, {"torch", "2.9"}};
  g.tensors["o"] = pattern_tensor(t, 6, {B, T, HV, V});
  g.tensors["o"].data[3] = std::nan("");  // captured outputs may hold NaN
  g.tensors["final_state"] = pattern_tensor(t, 7, {N, HV, K, V});
  g.tensors["A_inv"] = pattern_tensor(DType::f32, 8, {B, T, HV, 64});
  g.tensors["w"] = pattern_tensor(t, 9, {B, T, HV, K});
  g.tensors["u"] = pattern_tensor(t, 10, {B, T, HV, V});
  g.tensors["v_new"] = pattern_tensor(t, 11, {B, T, HV, V});
  g.tensors["h"] = pattern_tensor(DType::f32, 12, {B, p.num_chunks_per_row(), HV, K, V});
  g.tensors["g_cumsum"] = pattern_tensor(DType::f32, 13, {B, T, HV});
  c.captured.push_back(std::move(g));
  CapturedGroup minimal;
  minimal.name = "kernel_b";
  minimal.implementation = "kernel-b";
  minimal.tensors["o"] = pattern_tensor(DType::f64, 14, {B, T, HV, V});
  c.captured.push_back(std::move(minimal));
  return c;
}

Dataset pattern_dataset(DType t, bool varlen = false) {
  Dataset ds;
  ds.description = "round trip in " + dtype_name(t);
  ds.created_by = "test_dataset_io";
  ds.cases.push_back(pattern_case("c0", t, varlen));
  return ds;
}

void check_same_case(Case const& got, Case const& want) {
  BOOST_TEST_CONTEXT("case " << want.name) {
    BOOST_TEST(got.name == want.name);
    Problem const &a = got.problem, &b = want.problem;
    BOOST_TEST(a.B == b.B);
    BOOST_TEST(a.T == b.T);
    BOOST_TEST(a.H == b.H);
    BOOST_TEST(a.HV == b.HV);
    BOOST_TEST(a.K == b.K);
    BOOST_TEST(a.V == b.V);
    BOOST_TEST(same_value(a.scale, b.scale));
    BOOST_TEST(a.chunk_size == b.chunk_size);
    BOOST_TEST(a.qk_l2norm == b.qk_l2norm);
    BOOST_TEST(a.cu_seqlens == b.cu_seqlens, boost::test_tools::per_element());
    check_same(a.q, b.q, "q");
    check_same(a.k, b.k, "k");
    check_same(a.v, b.v, "v");
    check_same(a.g, b.g, "g");
    check_same(a.beta, b.beta, "beta");
    BOOST_TEST(a.initial_state.empty() == b.initial_state.empty());
    if (!b.initial_state.empty()) check_same(a.initial_state, b.initial_state, "initial_state");
    BOOST_TEST(got.family == want.family);
    BOOST_TEST(got.source == want.source);
    BOOST_TEST(got.seed.has_value() == want.seed.has_value());
    if (want.seed) BOOST_TEST(*got.seed == *want.seed);
    BOOST_TEST(got.reference.empty());  // never read back
    BOOST_REQUIRE_EQUAL(got.captured.size(), want.captured.size());
    for (size_t i = 0; i < want.captured.size(); ++i) {
      auto const &x = got.captured[i], &y = want.captured[i];
      BOOST_TEST(x.name == y.name);
      BOOST_TEST(x.implementation == y.implementation);
      BOOST_TEST(x.version == y.version);
      BOOST_TEST(x.device == y.device);
      BOOST_TEST((x.extra_attrs == y.extra_attrs));
      BOOST_REQUIRE_EQUAL(x.tensors.size(), y.tensors.size());
      for (auto const& [name, t] : y.tensors) {
        BOOST_REQUIRE_MESSAGE(x.tensors.count(name), "captured tensor " << name << " missing");
        check_same(x.tensors.at(name), t, y.name + "/" + name);
      }
    }
  }
}

void round_trip(DType t, bool varlen) {
  TempDir dir;
  Dataset const ds = pattern_dataset(t, varlen);
  std::string const path = dir.file("rt.h5");
  write_dataset(path, ds);
  Dataset const back = read_dataset(path);
  BOOST_TEST(back.path == path);
  BOOST_TEST(back.description == ds.description);
  BOOST_TEST(back.created_by == ds.created_by);
  BOOST_REQUIRE_EQUAL(back.cases.size(), 1u);
  check_same_case(back.cases[0], ds.cases[0]);
}

// --- h5py dump parsing ----------------------------------------------------------------------

struct Dump {
  std::map<std::string, std::pair<std::string, std::string>> attrs;  // "path@name" -> (type, value)
  struct Array {
    std::string dtype, shape;
    std::vector<double> values;
  };
  std::map<std::string, Array> datasets;
};

Dump h5py_dump(std::string const& path) {
  auto const [rc, out] = run(kPython + " " + quote(script("h5py_writer.py")) + " dump " + quote(path) + " 2>&1");
  BOOST_REQUIRE_MESSAGE(rc == 0, "h5py dump failed: " << out);
  Dump d;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ls(line);
    std::string kind, name;
    ls >> kind >> name;
    if (kind == "attr") {
      std::string type, value;
      ls >> type;
      std::getline(ls, value);
      d.attrs[name] = {type, value.empty() ? value : value.substr(1)};
    } else if (kind == "dataset") {
      Dump::Array a;
      ls >> a.dtype >> a.shape;
      std::string v;
      while (ls >> v) a.values.push_back(std::strtod(v.c_str(), nullptr));
      d.datasets[name] = a;
    }
  }
  return d;
}

std::string numpy_dtype(DType t) {
  switch (t) {
    case DType::bf16: return "float32";  // HDF5 converts the custom type to the smallest float that holds it
    case DType::f16: return "float16";
    case DType::f32: return "float32";
    default: return "float64";
  }
}

void check_dump_tensor(Dump const& d, std::string const& path, Tensor const& want, std::string const& dtype) {
  BOOST_TEST_CONTEXT(path) {
    BOOST_REQUIRE_MESSAGE(d.datasets.count(path), "h5py does not see " << path);
    auto const& a = d.datasets.at(path);
    BOOST_TEST(a.dtype == dtype);
    std::string shape;
    for (size_t i = 0; i < want.shape.size(); ++i) {
      if (i) shape += ',';
      shape += std::to_string(want.shape[i]);
    }
    BOOST_TEST(a.shape == shape);
    BOOST_REQUIRE_EQUAL(a.values.size(), want.data.size());
    size_t bad = 0;
    for (size_t i = 0; i < a.values.size(); ++i)
      if (!same_value(a.values[i], want.data[i]) && bad++ < 5)
        BOOST_ERROR("index " << i << ": h5py read " << a.values[i] << ", want " << want.data[i]);
    BOOST_TEST(bad == 0u);
  }
}

// gdnv writes, h5py reads: dtypes as numpy sees them, exact values, attribute types.
void gdnv_file_read_by_h5py(DType t) {
  TempDir dir;
  Dataset ds = pattern_dataset(t, true);
  auto& c = ds.cases[0];
  c.reference["o"] = pattern_tensor(t, 20, {1, c.problem.T, c.problem.HV, c.problem.V});
  std::string const path = dir.file("ours.h5");
  write_dataset(path, ds);
  Dump const d = h5py_dump(path);
  BOOST_TEST(d.attrs.at("/@format").first == "str");  // a Python str, not bytes
  BOOST_TEST(d.attrs.at("/@format").second == "gdnv-dataset");
  BOOST_TEST(d.attrs.at("/@version").second == "1");
  BOOST_TEST(d.attrs.at("cases/c0@chunk_size").second == "64");
  BOOST_TEST(d.attrs.at("cases/c0@qk_l2norm").second == "1");
  BOOST_TEST(d.attrs.at("cases/c0@family").first == "str");
  BOOST_TEST(d.attrs.at("cases/c0/captured/kernel_a@implementation").second == "kernel-a");
  BOOST_TEST(d.attrs.at("cases/c0/captured/kernel_a@arithmetic").second == "bf16 in, fp32 accumulate");
  std::string const dt = numpy_dtype(t);
  auto const& p = c.problem;
  check_dump_tensor(d, "cases/c0/inputs/q", p.q, dt);
  check_dump_tensor(d, "cases/c0/inputs/k", p.k, dt);
  check_dump_tensor(d, "cases/c0/inputs/v", p.v, dt);
  check_dump_tensor(d, "cases/c0/inputs/g", p.g, dt);
  check_dump_tensor(d, "cases/c0/inputs/beta", p.beta, dt);
  check_dump_tensor(d, "cases/c0/inputs/initial_state", p.initial_state, dt);
  check_dump_tensor(d, "cases/c0/captured/kernel_a/o", c.captured[0].tensors.at("o"), dt);
  check_dump_tensor(d, "cases/c0/captured/kernel_a/h", c.captured[0].tensors.at("h"), "float32");
  check_dump_tensor(d, "cases/c0/reference/o", c.reference.at("o"), "float64");  // always fp64
  BOOST_REQUIRE(d.datasets.count("cases/c0/inputs/cu_seqlens"));
  auto const& cu = d.datasets.at("cases/c0/inputs/cu_seqlens");
  BOOST_TEST(cu.dtype == "int64");
  std::vector<double> const want_cu(p.cu_seqlens.begin(), p.cu_seqlens.end());
  BOOST_TEST(cu.values == want_cu, boost::test_tools::per_element());
}

// h5py writes (bf16 through the low-level API with the custom type), gdnv reads exactly.
void h5py_file_read_by_gdnv(DType t) {
  TempDir dir;
  std::string const path = dir.file("theirs.h5");
  std::string const name = t == DType::f16 ? "fp16" : t == DType::f32 ? "fp32" : t == DType::f64 ? "fp64" : "bf16";
  auto const [rc, out] = run(kPython + " " + quote(script("h5py_writer.py")) + " write " + quote(path) + " " + name +
                             " 2>&1");
  BOOST_REQUIRE_MESSAGE(rc == 0, "h5py_writer.py failed: " << out);
  Dataset const ds = read_dataset(path);
  BOOST_TEST(ds.created_by == "h5py_writer.py");
  BOOST_REQUIRE_EQUAL(ds.cases.size(), 1u);
  Case const& c = ds.cases[0];
  Problem const& p = c.problem;
  BOOST_TEST(c.name == "c0");
  BOOST_TEST(p.scale == 0.5);
  BOOST_TEST(p.chunk_size == 64);
  BOOST_TEST(p.qk_l2norm);  // written as a numpy bool (an HDF5 enum)
  BOOST_TEST(c.family == "h5py");
  BOOST_TEST(c.seed.value_or(0) == 42);
  int64_t const B = 2, T = 5, H = 1, HV = 2, K = 4, V = 3;  // as in h5py_writer.py
  check_same(p.q, pattern_tensor(t, 0, {B, T, H, K}), "q");
  check_same(p.k, pattern_tensor(t, 1, {B, T, H, K}), "k");
  check_same(p.v, pattern_tensor(t, 2, {B, T, HV, V}), "v");
  check_same(p.g, pattern_tensor(t, 3, {B, T, HV}), "g");
  check_same(p.beta, pattern_tensor(t, 4, {B, T, HV}), "beta");
  check_same(p.initial_state, pattern_tensor(t, 5, {B, HV, K, V}), "initial_state");
  BOOST_REQUIRE_EQUAL(c.captured.size(), 1u);
  auto const& g = c.captured[0];
  BOOST_TEST(g.name == "h5py");
  BOOST_TEST(g.implementation == "h5py-writer");
  BOOST_TEST(g.version == "1");
  BOOST_TEST(g.extra_attrs.at("arithmetic") == name + " everywhere");
  check_same(g.tensors.at("o"), pattern_tensor(t, 6, {B, T, HV, V}), "o");
  check_same(g.tensors.at("final_state"), pattern_tensor(t, 7, {B, HV, K, V}), "final_state");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dataset_io)

// --- building blocks ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(input_error_message_is_one_line_with_optional_parts) {
  InputError const full("a.h5", "c0", "inputs/q", "bad\nthing");
  BOOST_TEST(std::string(full.what()) == "a.h5: case 'c0': field 'inputs/q': bad thing");
  BOOST_TEST(full.detail() == "bad\nthing");
  BOOST_TEST(std::string(InputError("a.h5", "", "attr format", "x").what()) == "a.h5: field 'attr format': x");
  BOOST_TEST(std::string(InputError("a.h5", "c1", "", "x").what()) == "a.h5: case 'c1': x");
  BOOST_TEST(std::string(InputError("a.h5", "", "", "no such file").what()) == "a.h5: no such file");
}

BOOST_AUTO_TEST_CASE(float_types_are_classified_by_their_fields) {
  BOOST_TEST((h5::classify_float(h5::make_bf16_type().id()) == DType::bf16));
  BOOST_TEST((h5::classify_float(h5::make_fp16_type().id()) == DType::f16));
  BOOST_TEST((h5::classify_float(H5T_IEEE_F32LE) == DType::f32));
  BOOST_TEST((h5::classify_float(H5T_IEEE_F64LE) == DType::f64));
  BOOST_TEST(!h5::classify_float(H5T_IEEE_F32BE).has_value());
  BOOST_TEST(!h5::classify_float(H5T_STD_I16LE).has_value());
  // bf16's layout with fp16's bias is neither (h5py issue #1822's mistake)
  h5::Type wrong_bias = h5::make_bf16_type();
  BOOST_REQUIRE(H5Tset_ebias(wrong_bias.id(), 15) >= 0);
  BOOST_TEST(!h5::classify_float(wrong_bias.id()).has_value());
  BOOST_TEST(h5::describe_type(H5T_STD_I32LE) == "integer (4 bytes, signed)");
  BOOST_TEST(h5::describe_type(h5::make_bf16_type().id()) ==
             "float (2 bytes: sign bit 15, exponent bits 7..14, mantissa bits 0..6, bias 127)");
}

// --- round trips ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(round_trip_bf16) { round_trip(DType::bf16, false); }
BOOST_AUTO_TEST_CASE(round_trip_fp16) { round_trip(DType::f16, false); }
BOOST_AUTO_TEST_CASE(round_trip_fp32) { round_trip(DType::f32, false); }
BOOST_AUTO_TEST_CASE(round_trip_fp64) { round_trip(DType::f64, false); }
BOOST_AUTO_TEST_CASE(round_trip_varlen_bf16) { round_trip(DType::bf16, true); }

BOOST_AUTO_TEST_CASE(round_trip_large_compressed_tensors) {
  // Big enough for chunked + compressed storage, including a partial last chunk along T.
  TempDir dir;
  Dataset ds;
  Case c;
  c.name = "big";
  c.problem = test::random_problem(7, 2, 200, 2, 4, 64, 32, {}, true, DType::bf16);
  CapturedGroup g;
  g.name = "k";
  g.implementation = "k";
  g.tensors["o"] = test::random_problem(8, 2, 200, 2, 4, 64, 32).v;  // fp64, [2, 200, 4, 32]
  c.captured.push_back(g);
  ds.cases.push_back(c);
  write_dataset(dir.file("big.h5"), ds);
  Dataset const back = read_dataset(dir.file("big.h5"));
  check_same_case(back.cases.at(0), c);
  // shuffle + deflate does compress: smaller than the raw bytes
  auto const raw = (c.problem.q.numel() * 2 + c.problem.v.numel() * 2) * 2 + c.problem.initial_state.numel() * 2 +
                   g.tensors["o"].numel() * 8;
  BOOST_TEST(static_cast<int64_t>(fs::file_size(dir.file("big.h5"))) < raw);
}

BOOST_AUTO_TEST_CASE(rounds_values_to_the_stored_dtype_on_write) {
  // A tensor tagged bf16 holding a value that bf16 cannot represent is stored rounded (RNE).
  TempDir dir;
  Dataset ds = pattern_dataset(DType::bf16);
  ds.cases[0].problem.q.data[10] = 1.0 + 0x1p-9;  // halfway below 1 + 2^-7's neighbour: rounds to 1
  ds.cases[0].problem.q.data[11] = 1.0 + 3 * 0x1p-9;
  write_dataset(dir.file("r.h5"), ds);
  Dataset const back = read_dataset(dir.file("r.h5"));
  BOOST_TEST(back.cases[0].problem.q.data[10] == 1.0);
  BOOST_TEST(back.cases[0].problem.q.data[11] == round_to(DType::bf16, 1.0 + 3 * 0x1p-9));
}

BOOST_AUTO_TEST_CASE(cases_are_read_in_name_order) {
  TempDir dir;
  Dataset ds;
  for (char const* name : {"b", "a", "c10", "c2"}) {
    Case c = pattern_case(name, DType::f32, false);
    c.captured.clear();
    ds.cases.push_back(c);
  }
  write_dataset(dir.file("order.h5"), ds);
  Dataset const back = read_dataset(dir.file("order.h5"));
  std::vector<std::string> names;
  for (auto const& c : back.cases) names.push_back(c.name);
  std::vector<std::string> const want = {"a", "b", "c10", "c2"};
  BOOST_TEST(names == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(read_options_select_a_case_and_skip_captured) {
  TempDir dir;
  Dataset ds = pattern_dataset(DType::f32);
  ds.cases.push_back(pattern_case("c1", DType::f64, false));
  std::string const path = dir.file("two.h5");
  write_dataset(path, ds);

  ReadOptions only;
  only.case_name = "c1";
  Dataset const one = read_dataset(path, only);
  BOOST_REQUIRE_EQUAL(one.cases.size(), 1u);
  BOOST_TEST(one.cases[0].name == "c1");
  BOOST_TEST(dtype_name(one.cases[0].problem.q.dtype) == "fp64");

  ReadOptions no_captured;
  no_captured.load_captured = false;
  Dataset const bare = read_dataset(path, no_captured);
  BOOST_REQUIRE_EQUAL(bare.cases.size(), 2u);
  BOOST_TEST(bare.cases[0].captured.empty());
  BOOST_TEST(bare.cases[1].captured.empty());

  ReadOptions absent;
  absent.case_name = "nope";
  try {
    read_dataset(path, absent);
    BOOST_ERROR("an absent case was accepted");
  } catch (InputError const& e) {
    BOOST_TEST(e.case_name() == "nope");
    BOOST_TEST(e.detail().find("c0, c1") != std::string::npos, e.detail());
  }
}

BOOST_AUTO_TEST_CASE(reference_group_is_written_as_fp64_and_ignored_on_read) {
  TempDir dir;
  Dataset ds = pattern_dataset(DType::bf16);
  auto& c = ds.cases[0];
  c.reference["o"] = pattern_tensor(DType::f64, 30, {2, 70, 4, 6});
  c.reference["A"] = pattern_tensor(DType::bf16, 31, {2, 70, 4, 64});
  write_dataset(dir.file("ref.h5"), ds);
  Dataset const back = read_dataset(dir.file("ref.h5"));
  BOOST_TEST(back.cases[0].reference.empty());
  Dump const d = h5py_dump(dir.file("ref.h5"));
  check_dump_tensor(d, "cases/c0/reference/o", c.reference["o"], "float64");
  check_dump_tensor(d, "cases/c0/reference/A", c.reference["A"], "float64");
}

// --- h5py interoperability ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(h5py_written_bf16_is_read_exactly) { h5py_file_read_by_gdnv(DType::bf16); }
BOOST_AUTO_TEST_CASE(h5py_written_fp16_is_read_exactly) { h5py_file_read_by_gdnv(DType::f16); }
BOOST_AUTO_TEST_CASE(h5py_written_fp32_is_read_exactly) { h5py_file_read_by_gdnv(DType::f32); }
BOOST_AUTO_TEST_CASE(h5py_written_fp64_is_read_exactly) { h5py_file_read_by_gdnv(DType::f64); }

BOOST_AUTO_TEST_CASE(h5py_reads_our_bf16_as_float32_exactly) { gdnv_file_read_by_h5py(DType::bf16); }
BOOST_AUTO_TEST_CASE(h5py_reads_our_fp16_as_float16_exactly) { gdnv_file_read_by_h5py(DType::f16); }
BOOST_AUTO_TEST_CASE(h5py_reads_our_fp32_exactly) { gdnv_file_read_by_h5py(DType::f32); }
BOOST_AUTO_TEST_CASE(h5py_reads_our_fp64_exactly) { gdnv_file_read_by_h5py(DType::f64); }

// --- writing: determinism and atomicity -----------------------------------------------------

BOOST_AUTO_TEST_CASE(same_dataset_gives_identical_bytes) {
  TempDir dir;
  Dataset ds = pattern_dataset(DType::bf16, true);
  ds.cases.push_back(pattern_case("c1", DType::f32, false));
  ds.cases[1].reference["o"] = pattern_tensor(DType::f64, 40, {2, 70, 4, 6});
  write_dataset(dir.file("a.h5"), ds);
  ::usleep(1100 * 1000);  // a time stamp anywhere in the file would now differ
  write_dataset(dir.file("b.h5"), ds);
  std::string const a = read_bytes(dir.file("a.h5")), b = read_bytes(dir.file("b.h5"));
  BOOST_TEST(!a.empty());
  BOOST_TEST(a.size() == b.size());
  BOOST_TEST((a == b), "the two files differ");
}

BOOST_AUTO_TEST_CASE(write_replaces_the_target_and_leaves_no_temporary) {
  TempDir dir;
  std::string const path = dir.file("out.h5");
  { std::ofstream(path) << "old content"; }
  write_dataset(path, pattern_dataset(DType::f32));
  BOOST_TEST(read_dataset(path).cases.size() == 1u);
  std::vector<std::string> entries;
  for (auto const& e : fs::directory_iterator(dir.path)) entries.push_back(e.path().filename().string());
  BOOST_TEST(entries == std::vector<std::string>{"out.h5"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(failed_write_keeps_the_old_file_and_leaves_nothing) {
  TempDir dir;
  std::string const path = dir.file("out.h5");
  { std::ofstream(path) << "old content"; }
  Dataset ds = pattern_dataset(DType::f32);
  ds.cases.push_back(pattern_case("bad/name", DType::f32, false));  // fails after the first case
  BOOST_CHECK_THROW(write_dataset(path, ds), std::runtime_error);
  BOOST_TEST(read_bytes(path) == "old content");
  std::vector<std::string> entries;
  for (auto const& e : fs::directory_iterator(dir.path)) entries.push_back(e.path().filename().string());
  BOOST_TEST(entries == std::vector<std::string>{"out.h5"}, boost::test_tools::per_element());

  // A directory that does not exist: an error, and nothing is created.
  std::string const nowhere = dir.file("missing_dir/out.h5");
  BOOST_CHECK_THROW(write_dataset(nowhere, pattern_dataset(DType::f32)), std::runtime_error);
  BOOST_TEST(!fs::exists(dir.path / "missing_dir"));
}

// --- valid files from make_bad_files.py -----------------------------------------------------

BOOST_AUTO_TEST_CASE(good_file_is_read) {
  std::string const path = bad_file("good.h5");
  Dataset const ds = read_dataset(path);
  BOOST_TEST(ds.description == "make_bad_files.py");
  BOOST_REQUIRE_EQUAL(ds.cases.size(), 1u);
  auto const& c = ds.cases[0];
  auto const& p = c.problem;
  BOOST_TEST(c.name == "c0");
  BOOST_TEST((std::vector<int64_t>{p.B, p.T, p.H, p.HV, p.K, p.V} == std::vector<int64_t>{1, 70, 2, 4, 8, 6}));
  BOOST_TEST(p.scale == std::pow(8.0, -0.5));
  BOOST_TEST(p.qk_l2norm);
  BOOST_TEST(dtype_name(p.q.dtype) == "fp32");
  BOOST_TEST(shape_string(p.initial_state.shape) == "[1, 4, 8, 6]");
  BOOST_TEST(c.family == "make_bad_files");
  BOOST_TEST(c.seed.value_or(0) == 7);
  BOOST_TEST(c.captured.empty());
  BOOST_TEST(test::all_finite(p.v));
}

BOOST_AUTO_TEST_CASE(captured_nan_and_unknown_tensors_are_accepted) {
  Dataset const ds = read_dataset(bad_file("ok_captured_nan.h5"));
  auto const& g = ds.cases.at(0).captured.at(0);
  BOOST_TEST(g.implementation == "fla");
  BOOST_TEST(g.version == "0.0-test");
  BOOST_TEST(g.extra_attrs.at("arithmetic") == "fp32");
  BOOST_TEST(g.tensors.size() == 2u);  // o and final_state; debug_scratch is ignored
  BOOST_TEST(std::isnan(g.tensors.at("o").at({0, 1, 2, 3})));
  BOOST_TEST(std::isinf(g.tensors.at("final_state").data[0]));
}

BOOST_AUTO_TEST_CASE(varlen_with_captured_intermediates_is_read) {
  Dataset const ds = read_dataset(bad_file("ok_varlen.h5"));
  auto const& c = ds.cases.at(0);
  BOOST_TEST(c.problem.cu_seqlens == (std::vector<int64_t>{0, 30, 100, 150}), boost::test_tools::per_element());
  BOOST_TEST(c.problem.num_sequences() == 3);
  auto const& t = c.captured.at(0).tensors;
  BOOST_TEST(shape_string(t.at("h").shape) == "[1, 4, 4, 8, 6]");
  BOOST_TEST(shape_string(t.at("final_state").shape) == "[3, 4, 8, 6]");
  BOOST_TEST(t.size() == 5u);
}

BOOST_AUTO_TEST_CASE(chunk_size_other_than_64_is_accepted) {
  Dataset const ds = read_dataset(bad_file("ok_chunk32.h5"));
  BOOST_TEST(ds.cases.at(0).problem.chunk_size == 32);
}

// --- corrupt files: never a crash or a hang ------------------------------------------------

BOOST_AUTO_TEST_CASE(corrupt_bytes_end_in_an_error_not_a_crash_or_hang) {
  // Random byte damage, mostly in the metadata at the front of the file. HDF5 1.10 itself can
  // segfault or spin on some of these (a corrupt global heap); the reader must still end with
  // status 2 and one line naming the file. Each read runs in a child process.
  TempDir dir;
  std::string const good = dir.file("good.h5");
  write_dataset(good, pattern_dataset(DType::bf16, true));
  std::string const bytes = read_bytes(good);
  std::string const path = dir.file("corrupt.h5");
  h5::CorruptFileGuard::set_hang_limit(2.0);  // inherited by the children
  std::mt19937_64 rng(20261124);
  int read_ok = 0, input_error = 0, guarded = 0;
  for (int it = 0; it < 300; ++it) {
    std::string b = bytes;
    int const flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t const span = it % 2 == 0 ? std::min<size_t>(b.size(), 4096) : b.size();
      b[rng() % span] = static_cast<char>(rng());
    }
    { std::ofstream(path, std::ios::binary) << b; }
    ChildRead const r = read_in_child(path, 30.0);
    BOOST_TEST_CONTEXT("variant " << it << ", stderr: " << r.err) {
      BOOST_TEST(!r.timed_out);
      BOOST_TEST(r.signal == 0);
      BOOST_TEST((r.status == 0 || r.status == 2));
      if (!r.err.empty()) {
        // only the guard writes; its message is one line naming the file
        BOOST_TEST(r.err.find(path + ": corrupt file") != std::string::npos);
        BOOST_TEST(r.err.find('\n') == r.err.size() - 1);
        ++guarded;
      } else if (r.status == 2) {
        ++input_error;
      } else if (r.status == 0) {
        ++read_ok;
      }
    }
  }
  h5::CorruptFileGuard::set_hang_limit(60.0);
  BOOST_TEST_MESSAGE("corrupt variants: " << read_ok << " read, " << input_error << " InputError, " << guarded
                                          << " stopped by the guard");
  BOOST_TEST(input_error > 0);
}

// --- one test per schema error --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(missing_file) {
  TempDir dir;
  expect_input_error(dir.file("absent.h5"), "", "", "no such file");
  expect_input_error(dir.path.string(), "", "", "directory");
}

#define GDNV_BAD_FILE(name, case_name, field, detail) \
  BOOST_AUTO_TEST_CASE(bad_##name) { expect_input_error(bad_file(#name ".h5"), case_name, field, detail); }

GDNV_BAD_FILE(not_hdf5, "", "", "not an HDF5 file")
GDNV_BAD_FILE(truncated, "", "", "truncated")
GDNV_BAD_FILE(wrong_format, "", "attr format", "\"gdnv-results\"")
GDNV_BAD_FILE(missing_format, "", "attr format", "missing required attribute")
GDNV_BAD_FILE(bad_version, "", "attr version", "unsupported version 2")
GDNV_BAD_FILE(missing_cases, "", "cases", "missing")
GDNV_BAD_FILE(no_cases, "", "cases", "no cases")
GDNV_BAD_FILE(missing_inputs, "c0", "inputs", "missing required group")
GDNV_BAD_FILE(missing_q, "c0", "inputs/q", "missing required dataset")
GDNV_BAD_FILE(missing_scale, "c0", "attr scale", "missing required attribute")
GDNV_BAD_FILE(scale_nan, "c0", "attr scale", "finite")
GDNV_BAD_FILE(missing_chunk_size, "c0", "attr chunk_size", "missing required attribute")
GDNV_BAD_FILE(qk_l2norm_bad, "c0", "attr qk_l2norm", "must be 0 or 1, is 2")
GDNV_BAD_FILE(q_int32, "c0", "inputs/q", "unsupported dtype integer (4 bytes, signed)")
GDNV_BAD_FILE(q_big_endian, "c0", "inputs/q", "unsupported dtype big-endian float (4 bytes")
GDNV_BAD_FILE(complex_q, "c0", "inputs/q", "unsupported dtype compound (8 bytes, members r, i)")
GDNV_BAD_FILE(fp8_q, "c0", "inputs/q", "unsupported dtype float (1 byte: sign bit 7, exponent bits 3..6")
GDNV_BAD_FILE(wrong_rank_k, "c0", "inputs/k", "rank 3")
GDNV_BAD_FILE(shape_mismatch_v, "c0", "inputs/v", "shape [1, 69, 4, 6] disagrees")
GDNV_BAD_FILE(h_not_dividing, "c0", "inputs/v", "HV = 3 value heads is not a multiple of H = 2")
GDNV_BAD_FILE(t_zero, "c0", "inputs/q", "dimension T is 0")
GDNV_BAD_FILE(h0_wrong_shape, "c0", "inputs/initial_state", "shape [1, 4, 9, 6] disagrees")
GDNV_BAD_FILE(cu_not_zero, "c0", "inputs/cu_seqlens", "starts at 1")
GDNV_BAD_FILE(cu_decreasing, "c0", "inputs/cu_seqlens", "decreases at index 2 (40 -> 30)")
GDNV_BAD_FILE(cu_not_T, "c0", "inputs/cu_seqlens", "ends at 60, must end at T = 70")
GDNV_BAD_FILE(cu_with_B2, "c0", "inputs/cu_seqlens", "B = 2")
GDNV_BAD_FILE(cu_float, "c0", "inputs/cu_seqlens", "expected int32 or int64")
GDNV_BAD_FILE(cu_2d, "c0", "inputs/cu_seqlens", "rank 2")
GDNV_BAD_FILE(nan_in_v, "c0", "inputs/v", "NaN at flat index 128")
GDNV_BAD_FILE(inf_in_g, "c0", "inputs/g", "-Inf at flat index 14")
GDNV_BAD_FILE(captured_o_wrong_shape, "c0", "captured/fla/o", "expected [B, T, HV, V] = [1, 70, 4, 6]")
GDNV_BAD_FILE(captured_missing_o, "c0", "captured/fla/o", "missing required dataset")
GDNV_BAD_FILE(captured_missing_impl, "c0", "captured/fla/attr implementation", "missing required attribute")
GDNV_BAD_FILE(captured_int_o, "c0", "captured/fla/o", "unsupported dtype integer")
GDNV_BAD_FILE(captured_h_wrong_shape, "c0", "captured/fla/h", "expected [B, NT, HV, K, V] = [1, 4, 4, 8, 6]")

#undef GDNV_BAD_FILE

BOOST_AUTO_TEST_SUITE_END()
