// gdnv replay as users meet it: one chunk's inputs, conditioning and per-implementation floor ratios,
// exit 0 / 1 against the gate, and one-line errors (file, case, field) with status 2 on bad input.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include "test_util.hpp"

namespace {

struct Result {
  int status = -1;
  std::string out, err;
};

std::string read_all(std::filesystem::path const& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result replay(std::string const& args) {
  gdnv::test::TempDir const dir;
  std::string const o = dir.file("out.txt"), e = dir.file("err.txt");
  std::string const cmd = std::string(GDNV_EXE) + " replay " + args + " >" + o + " 2>" + e;
  int const rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_all(o), read_all(e)};
}

std::string const kDefault = GDNV_SOURCE_DIR "/datasets/default.h5";

int lines(std::string const& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

bool has(std::string const& s, std::string const& what) { return s.find(what) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(replay_cli)

// The chunk README.md names as emulated's worst: A_inv of model-like-gqa seq 0 head 0 chunk 3 (4.25x there),
// which the isolated run puts at ~1x (the error comes from the rounded l2-normalized keys).
BOOST_AUTO_TEST_CASE(tells_one_chunks_story) {
  Result const r = replay(kDefault + " --case model-like-gqa --chunk 0:0:3 --impl emulated");
  BOOST_TEST(r.status == 0, r.out << r.err);
  BOOST_TEST(r.err.empty(), r.err);
  for (char const* what : {"sequence 0, value head 0, chunk 3", "||k_t|| as used", "beta ||k_t||^2",
                           "decay over the chunk", "kappa_1", "Skeel", "structural bound",
                           "captured:transformers-torch-chunk", "captured:transformers-torch-recurrent",
                           "emulated[isolated]", "v_new", "every tensor shown is within the gate"})
    BOOST_TEST(has(r.out, what), "missing '" << what << "' in:\n" << r.out);
  // A_inv on this chunk: emulated well above the floor (its worst chunk in README.md), the isolated
  // run, fed the exact A, lower (the error comes from the rounded l2-normalized keys before A).
  std::istringstream in(r.out);
  std::string line;
  double emulated = -1, isolated = -1;
  bool in_isolated = false, in_emulated = false;
  while (std::getline(in, line)) {
    if (line.rfind("  emulated[isolated]", 0) == 0) {
      in_isolated = true;
      in_emulated = false;
    } else if (line.rfind("  emulated ", 0) == 0) {
      in_emulated = true;
      in_isolated = false;
    } else if (line.rfind("  captured:", 0) == 0 || line.empty()) {
      in_emulated = in_isolated = false;
    }
    std::istringstream words(line);
    std::string w;
    while (words >> w)
      if (w == "A_inv" && (words >> w)) {
        if (in_isolated) isolated = std::stod(w);
        else if (in_emulated) emulated = std::stod(w);
      }
  }
  BOOST_TEST(emulated > 2.0, r.out);
  BOOST_TEST(emulated <= 8.0, r.out);
  BOOST_TEST(isolated >= 0.0, r.out);
  BOOST_TEST(isolated < emulated, r.out);
}

BOOST_AUTO_TEST_CASE(last_chunk_shows_the_final_state) {
  Result const r = replay(kDefault + " --case ragged-varlen --chunk 4:1:3");
  BOOST_TEST(r.status == 0, r.out << r.err);
  BOOST_TEST(has(r.out, "this is its last"), r.out);
  BOOST_TEST(has(r.out, "final_state"), r.out);
}

BOOST_AUTO_TEST_CASE(above_the_gate_exits_1) {
  Result const r = replay(kDefault + " --case model-like-gqa --chunk 0:1:0 --max-floor-ratio 0.5");
  BOOST_TEST(r.status == 1, r.out << r.err);
  BOOST_TEST(has(r.out, "ABOVE GATE"), r.out);
}

BOOST_AUTO_TEST_CASE(bad_input_is_one_line_naming_file_case_and_field) {
  struct Bad {
    std::string args, must_name;
  };
  std::string const missing = "/nonexistent/gdnv-replay.h5";
  for (auto const& b : std::vector<Bad>{
           {kDefault + " --case model-like-gqa --chunk 0:0:99", "field '--chunk chunk'"},
           {kDefault + " --case model-like-gqa --chunk 0:64:0", "field '--chunk head'"},
           {kDefault + " --case ragged-varlen --chunk 9:0:0", "field '--chunk sequence'"},
           {kDefault + " --case no-such-case --chunk 0:0:0", "case 'no-such-case'"},
           {kDefault + " --chunk 0:0:0", "--case is required"},
           {kDefault + " --case model-like-gqa --chunk 0:0", "SEQ:HEAD:CHUNK"},
           {kDefault + " --case model-like-gqa --chunk a:b:c", "SEQ:HEAD:CHUNK"},
           {kDefault + " --case model-like-gqa --chunk 0:0:0 --impl nope", "unknown implementation"},
           {missing + " --case x --chunk 0:0:0", missing},
       }) {
    Result const r = replay(b.args);
    BOOST_TEST(r.status == 2, b.args << "\n" << r.out << r.err);
    BOOST_TEST(lines(r.err) == 1, b.args << ": " << r.err);
    BOOST_TEST(has(r.err, b.must_name), b.args << ": " << r.err);
    if (has(b.must_name, "--chunk ")) {
      BOOST_TEST(has(r.err, kDefault), r.err);
      BOOST_TEST(has(r.err, "case '"), r.err);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
