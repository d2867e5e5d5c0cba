// Times the fp64 reference (chunked with every intermediate, and the per-token recurrence) on a
// model shape, and writes the timings as JSON. A benchmark, not a test: nothing is asserted.
//   bench_reference [--shape qwen3-next] [--T 4096] [--repeats 3] [--threads 0] [--json OUT]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#include "datasets/generators.hpp"
#include "harness/atomic_file.hpp"
#include "reference/chunked.hpp"
#include "reference/recurrent.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Time the fp64 gdnv reference"};
  int64_t T = 4096, B = 1, H = 16, HV = 32, K = 128, V = 128;
  int repeats = 3, threads = 0;
  std::string json_out;
  app.add_option("--T", T)->capture_default_str();
  app.add_option("--B", B)->capture_default_str();
  app.add_option("--H", H)->capture_default_str();
  app.add_option("--HV", HV)->capture_default_str();
  app.add_option("--repeats", repeats)->capture_default_str();
  app.add_option("--threads", threads, "0: all cores");
  app.add_option("--json", json_out);
  CLI11_PARSE(app, argc, argv);

  gdnv::GeneratorParams gp;
  gp.family = "model-like";
  gp.B = B, gp.T = T, gp.H = H, gp.HV = HV, gp.K = K, gp.V = V;
  gp.seed = 1;
  gp.h0 = true;
  gdnv::Problem const p = gdnv::generate_problem(gp);
  int const nthreads = threads > 0 ? threads : omp_get_max_threads();

  auto time_it = [&](auto&& fn) {
    std::vector<double> s;
    for (int i = 0; i < repeats; ++i) {
      auto const t0 = std::chrono::steady_clock::now();
      fn();
      s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return s;
  };
  gdnv::ChunkedOptions co;
  co.threads = nthreads;
  auto const chunked = time_it([&] { (void)gdnv::chunked_forward(p, co); });
  co.inverse = gdnv::InverseMethod::block_merge;
  auto const chunked_bm = time_it([&] { (void)gdnv::chunked_forward(p, co); });
  auto const recurrent = time_it([&] { (void)gdnv::recurrent_forward(p, nthreads); });

  std::printf("shape B=%lld T=%lld H=%lld HV=%lld K=%lld V=%lld, %d threads, %s\n", (long long)B, (long long)T,
              (long long)H, (long long)HV, (long long)K, (long long)V, nthreads, cpu_model().c_str());
  std::printf("chunked (all intermediates, forward substitution): median %.3f s\n", median(chunked));
  std::printf("chunked (all intermediates, 16x16 block merge):    median %.3f s\n", median(chunked_bm));
  std::printf("recurrent (per token):                             median %.3f s\n", median(recurrent));
  if (!json_out.empty()) {
    nlohmann::json j = {{"benchmark", "reference"},
                        {"shape", {{"B", B}, {"T", T}, {"H", H}, {"HV", HV}, {"K", K}, {"V", V}}},
                        {"family", gp.family},
                        {"threads", nthreads},
                        {"hardware_threads", std::thread::hardware_concurrency()},
                        {"cpu", cpu_model()},
                        {"repeats", repeats},
                        {"seconds",
                         {{"chunked_forward_substitution", chunked},
                          {"chunked_block_merge", chunked_bm},
                          {"recurrent", recurrent}}},
                        {"median_seconds",
                         {{"chunked_forward_substitution", median(chunked)},
                          {"chunked_block_merge", median(chunked_bm)},
                          {"recurrent", median(recurrent)}}},
                        {"target_seconds", {{"chunked", 2.0}}}};
    gdnv::write_text_atomic(json_out, j.dump(1) + "\n");
  }
  return 0;
}
