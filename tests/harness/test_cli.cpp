// The gdnv command line as users meet it: exit statuses (0 passed, 1 a kernel failed, 2 bad input
// or usage), one-line errors naming file, case and field, and no output left behind on errors.
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace fs = std::filesystem;
namespace bdata = boost::unit_test::data;

namespace {

using Run = gdnv::test::CliRun;
using gdnv::test::slurp;

// A private scratch folder per test process, removed at exit.
fs::path scratch() { return gdnv::test::scratch_dir(); }

Run run(std::string const& args) { return gdnv::test::run_gdnv(scratch(), args); }

fs::path bad_file(std::string const& name) {
  fs::path const p = scratch() / name;
  if (!fs::exists(p)) {
    std::string const cmd = "/usr/bin/python3 " GDNV_SOURCE_DIR "/tests/harness/make_bad_files.py " +
                            scratch().string() + " " + name;
    BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "make_bad_files.py " << name);
  }
  return p;
}

std::string const kDefault = GDNV_SOURCE_DIR "/datasets/default.h5";

int count_lines(std::string const& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

bool leftovers(fs::path const& target) {
  for (auto const& e : fs::directory_iterator(target.parent_path()))
    if (e.path().filename().string().rfind(target.filename().string(), 0) == 0) return true;
  return false;
}

std::vector<std::string> const kBadFiles = {
    "missing_q.h5", "wrong_format.h5", "missing_format.h5", "bad_version.h5", "missing_cases.h5", "no_cases.h5",
    "missing_inputs.h5", "q_int32.h5", "q_big_endian.h5", "complex_q.h5", "fp8_q.h5", "h_not_dividing.h5",
    "t_zero.h5", "cu_not_zero.h5", "cu_decreasing.h5", "cu_not_T.h5", "cu_with_B2.h5", "cu_float.h5", "cu_2d.h5",
    "nan_in_v.h5", "inf_in_g.h5", "missing_scale.h5", "scale_nan.h5", "missing_chunk_size.h5", "qk_l2norm_bad.h5",
    "wrong_rank_k.h5", "shape_mismatch_v.h5", "h0_wrong_shape.h5", "captured_o_wrong_shape.h5",
    "captured_missing_o.h5", "captured_missing_impl.h5", "captured_int_o.h5", "captured_h_wrong_shape.h5",
    "truncated.h5", "not_hdf5.h5"};

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

// Every schema error: status 2, one line on stderr naming the file, no results file left.
BOOST_DATA_TEST_CASE(bad_input_exits_2_with_one_line, bdata::make(kBadFiles), name) {
  fs::path const f = bad_file(name);
  fs::path const json = scratch() / ("out-" + name + ".json");
  Run const r = run("check " + f.string() + " --json " + json.string());
  BOOST_TEST(r.status == 2);
  BOOST_TEST(count_lines(r.err) == 1, "stderr: " << r.err);
  BOOST_TEST(r.err.find(f.string()) != std::string::npos, "stderr does not name the file: " << r.err);
  BOOST_TEST(!leftovers(json), "output left behind");
  fs::path const h5 = scratch() / ("ref-" + name);
  Run const rr = run("reference " + f.string() + " --out " + h5.string());
  BOOST_TEST(rr.status == 2);
  BOOST_TEST(!leftovers(h5), "reference output left behind");
}

BOOST_AUTO_TEST_CASE(errors_name_the_case_and_field) {
  Run const r = run("check " + bad_file("nan_in_v.h5").string());
  BOOST_TEST(r.err.find("case '") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("inputs/v") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(missing_file_exits_2) {
  Run const r = run("check " + (scratch() / "does-not-exist.h5").string());
  BOOST_TEST(r.status == 2);
  BOOST_TEST(count_lines(r.err) == 1);
}

BOOST_AUTO_TEST_CASE(default_dataset_passes_and_writes_json) {
  fs::path const json = scratch() / "default.json";
  Run const r = run("check " + kDefault + " --json " + json.string());
  BOOST_TEST(r.status == 0, r.out << r.err);
  auto const j = nlohmann::json::parse(slurp(json));
  BOOST_TEST(j["results"].size() >= 3u);
  for (auto const& res : j["results"]) {
    BOOST_TEST(res["disposition"] == "passed");
    for (char const* key : {"file", "case", "implementation", "worst", "metrics", "chunks"})
      BOOST_TEST(res.contains(key), "missing " << key);
    for (char const* key : {"tensor", "sequence", "head", "chunk", "ratio"})
      BOOST_TEST(res["worst"].contains(key), "worst misses " << key);
    BOOST_TEST(res["metrics"]["o"].contains("rel_rms"));
    BOOST_TEST(res["metrics"]["o"].contains("max_abs"));
  }
  BOOST_TEST(r.out.find("passed") != std::string::npos);
}

// The gate is real: the same captures fail a threshold below their measured ratio (1.0).
BOOST_AUTO_TEST_CASE(a_stricter_gate_fails_with_status_1) {
  fs::path const json = scratch() / "strict.json";
  Run const r = run("check " + kDefault + " --case model-like-gqa --max-floor-ratio 0.5 --json " + json.string());
  BOOST_TEST(r.status == 1);
  auto const j = nlohmann::json::parse(slurp(json));
  for (auto const& res : j["results"]) BOOST_TEST(res["disposition"] == "failed");
}

BOOST_AUTO_TEST_CASE(nan_in_a_captured_output_fails) {
  Run const r = run("check " + bad_file("ok_captured_nan.h5").string());
  BOOST_TEST(r.status == 1, r.out << r.err);
  BOOST_TEST(r.out.find("failed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_case_and_impl_are_usage_errors) {
  BOOST_TEST(run("check " + kDefault + " --case nope").status == 2);
  BOOST_TEST(run("check " + kDefault + " --impl nope").status == 2);
  BOOST_TEST(run("check " + kDefault + " --max-floor-ratio -1").status == 2);
  BOOST_TEST(run("frobnicate").status == 2);
}

// Our kernels report not_run without a GPU (and run where one exists); never a usage error.
BOOST_AUTO_TEST_CASE(gpu_implementations_are_not_run_or_checked) {
  fs::path const json = scratch() / "gpu.json";
  Run const r = run("check " + kDefault + " --case ragged-varlen --impl unfused --json " + json.string());
  BOOST_TEST((r.status == 0 || r.status == 1), r.err);
  auto const j = nlohmann::json::parse(slurp(json));
  bool seen = false;
  for (auto const& res : j["results"])
    if (res["implementation"] == "unfused") {
      seen = true;
      std::string const d = res["disposition"];
      BOOST_TEST((d == "not_run" || d == "passed"), d);
      if (d == "not_run") BOOST_TEST(!res["reason"].get<std::string>().empty());
    }
  BOOST_TEST(seen);
}

BOOST_AUTO_TEST_CASE(reference_writes_every_intermediate_in_float64) {
  fs::path const out = scratch() / "ref.h5";
  Run const r = run("reference " + kDefault + " --case ragged-varlen --out " + out.string());
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  std::string const py =
      "/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1]); g=f['cases/ragged-varlen/reference'];"
      " want={'o':(1,345,4,64),'final_state':(5,4,64,64),'g_cumsum':(1,345,4),'A':(1,345,4,64),"
      "'A_inv':(1,345,4,64),'w':(1,345,4,64),'u':(1,345,4,64),'v_new':(1,345,4,64),'h':(1,9,4,64,64)};"
      " bad=[k for k,s in want.items() if k not in g or g[k].shape!=s or g[k].dtype!='float64'];"
      " sys.exit(1 if bad or 'inputs' not in f['cases/ragged-varlen'] else 0)\" " +
      out.string();
  BOOST_TEST(std::system(py.c_str()) == 0);
  // chunks of 1, 15, 64, 65, 200 tokens: 1 + 1 + 1 + 2 + 4 = 9 start-of-chunk states
  // the written file is itself a valid dataset
  BOOST_TEST(run("check " + out.string()).status == 0);
}

BOOST_AUTO_TEST_SUITE_END()
