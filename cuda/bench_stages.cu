// gdnv_bench_stages: times every stage of our unfused pipeline and the cuBLAS baseline on random
// normalized inputs (bf16 q/k/v, fp32 g/beta), CUDA events, median of --reps runs after warm-up
// (warm L2: the same buffers every run; `gdnv bench` adds cold-L2 runs and JSON), plus the device copy
// bandwidth for the memory-floor ratio.
//   gdnv_bench_stages [--B 1] [--T 8192] [--H 16] [--HV 32] [--K 128] [--reps 30] [--only SUB1,SUB2]
// --only: time just the rows whose name contains one of the comma-separated substrings (device minutes are scarce).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common.cuh"

using namespace gdn_cuda;

namespace {

EventTimer* g_timer = nullptr;
double time_us(std::function<void()> const& f, int reps) {
  std::vector<double> us = g_timer->time_us(f, 5, reps, 0);
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t B = 1, T = 8192, H = 16, HV = 32, K = 128;
  int reps = 30;
  std::vector<std::string> only;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string const k = argv[i];
    long long const v = std::atoll(argv[i + 1]);
    if (k == "--only") {
      std::string const list = argv[i + 1];
      for (std::size_t p = 0; p <= list.size();) {
        std::size_t const q = std::min(list.find(',', p), list.size());
        if (q > p) only.push_back(list.substr(p, q - p));
        p = q + 1;
      }
    } else if (k == "--B") B = v; else if (k == "--T") T = v; else if (k == "--H") H = v; else if (k == "--HV") HV = v;
    else if (k == "--K") K = v; else if (k == "--reps") reps = static_cast<int>(v);
    else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
  }
  try {
    cudaDeviceProp prop{};
    GDN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    double const bw = measure_copy_bandwidth(size_t(512) << 20, 20);
    std::printf("device %s, %d SMs, driver %d, runtime %d; copy bandwidth %.0f GB/s\n", prop.name,
                prop.multiProcessorCount, drv, rt, bw * 1e-9);
    std::printf("shape B=%lld T=%lld H=%lld HV=%lld K=V=%lld, bf16 q/k/v, fp32 g/beta, median of %d (warm L2)\n",
                (long long)B, (long long)T, (long long)H, (long long)HV, (long long)K, reps);

    Plan plan = make_plan(B, T, H, HV, K, K, {});
    Workspace ws(plan, ElemType::bf16, ElemType::f32, ElemType::f32, ElemType::bf16, true);
    Workspace ws32(plan, ElemType::bf16, ElemType::f32, ElemType::f32, ElemType::f32, false);  // fp32 A_inv
    Args a = ws.args;
    a.split_state = true;  // rows say which state arithmetic they use; `an` below is FLA's (bf16 S)
    int64_t const BT = B * T;
    fill_random_inputs(ws, 1);
    EventTimer timer;
    g_timer = &timer;
    a.scale = 1.f / std::sqrt(float(K));
    forward(a, nullptr);
    chunk_cumsum(a, nullptr);  // the gate pack too, which the unfused forward leaves unwritten (kkt+solve 5, intra 3)
    synchronize();
    Args a32 = a;
    a32.ainv = ElemType::f32;
    a32.A_inv = ws32.A_inv.get();
    solve_tril(a32, nullptr);
    synchronize();
    CublasBaseline cb(plan);

    double const e = 2;  // bf16
    double const tok_hv = double(BT) * HV, tok_h = double(BT) * H;
    double const NTt = double(plan.d.num_chunks);
    struct Row { std::string name; double us, bytes; };
    std::vector<Row> rows;
    auto wanted = [&](std::string const& n) {
      auto const has = [&](std::string const& s) { return n.find(s) != std::string::npos; };
      return only.empty() || std::any_of(only.begin(), only.end(), has);
    };
    auto add = [&](std::string n, double bytes, std::function<void()> f) {
      if (wanted(n)) rows.push_back({n, time_us(f, reps), bytes});
    };
    // the "(no gate pack)" rows: Args::gate_pack unset, so chunk_cumsum reads g only and the fused kernels the rows
    auto const no_pack = [](Args x) {
      x.gate_pack = nullptr;
      return x;
    };
    add("chunk_cumsum", tok_hv * 20, [&] { chunk_cumsum(a, nullptr); });  // + beta read, the pack written
    add("chunk_cumsum (no gate pack)", tok_hv * 8, [&, x = no_pack(a)] { chunk_cumsum(x, nullptr); });
    add("kkt (fp32 A)", tok_h * K * e + tok_hv * 8 + tok_hv * 64 * 4, [&] { kkt(a, nullptr); });
    add("solve_tril (bf16 A_inv)", tok_hv * (160 + 128), [&] { solve_tril(a, nullptr); });
    add("solve_tril (fp32 A_inv)", tok_hv * (160 + 256), [&] { solve_tril(a32, nullptr); });
    add("kkt + solve (bf16)", tok_h * K * e + tok_hv * 8 + tok_hv * 64 * 4 + tok_hv * (256 + 128),
        [&] { kkt(a, nullptr); solve_tril(a, nullptr); });
    Args ak4 = a, ak5 = a;  // the fused kkt+solve, variants 4 (bit-equal to the pair) and 5 (GQA Gram, 3xTF32 merges)
    ak4.kkt_solve_variant = 4, ak5.kkt_solve_variant = 5;
    double const kkt_solve_bytes = tok_h * K * e + tok_hv * 8 + tok_hv * 128;  // read k, beta, g_cumsum; write A_inv
    add("kkt_solve_fused v4", kkt_solve_bytes, [&] { kkt_solve_fused(ak4, nullptr); });
    add("kkt_solve_fused v5", kkt_solve_bytes, [&] { kkt_solve_fused(ak5, nullptr); });
    add("kkt_solve_fused v5 (no gate pack)", kkt_solve_bytes, [&, x = no_pack(ak5)] { kkt_solve_fused(x, nullptr); });
    add("wu (bf16 A_inv)", tok_h * K * e + tok_hv * (2 * K * e + 8 + 128 + 2 * K * e), [&] { wu(a, nullptr); });
    add("wu (fp32 A_inv split)", tok_h * K * e + tok_hv * (2 * K * e + 8 + 256 + 2 * K * e), [&] { wu(a32, nullptr); });
    double const hbytes = double(B) * plan.d.NT * HV * K * K * e;
    double const sbytes = tok_h * K * e + tok_hv * (2 * K * e + 4 + K * e) + hbytes + 2.0 * plan.d.N * HV * K * K * 4;
    add("chunk_state v2 (split S)", sbytes, [&] { chunk_state(a, nullptr); });
    Args an = a;
    an.split_state = false;
    add("chunk_state v2 (bf16 S, FLA)", sbytes, [&] { chunk_state(an, nullptr); });
    Args a1 = a;
    a1.state_variant = 1;
    add("chunk_state v1 (split S)", sbytes, [&] { chunk_state(a1, nullptr); });
    Args o1 = a;
    o1.output_variant = 1;
    add("chunk_output v1", 2 * tok_h * K * e + tok_hv * (K * e + 4 + K * e) + hbytes, [&] { chunk_output(o1, nullptr); });
    add("chunk_output v2", 2 * tok_h * K * e + tok_hv * (K * e + 4 + K * e) + hbytes, [&] { chunk_output(a, nullptr); });
    Args so = an;
    so.fuse_state_output = true;
    so.h = so.v_new = nullptr;
    so.state_output_variant = 2;
    add("chunk_scores", 0, [&] { chunk_scores(an, nullptr); });
    add("state_output_fused 2", 0, [&] { state_output_fused(so, nullptr); });
    Args so1 = so, so3 = so, so4 = so;
    so1.state_output_variant = 1;
    so3.state_output_variant = 3;
    so4.state_output_variant = 4;
    add("state_output_fused 3", 0, [&] { state_output_fused(so3, nullptr); });
    add("state_output_fused 4", 0, [&] { state_output_fused(so4, nullptr); });
    Args so4c32 = so4, so4c64 = so4;  // its two block widths (the row above: the chosen one)
    so4c32.state_output_columns = 32, so4c64.state_output_columns = 64;
    add("state_output_fused 4 c32", 0, [&] { state_output_fused(so4c32, nullptr); });
    add("state_output_fused 4 c64", 0, [&] { state_output_fused(so4c64, nullptr); });
    Args so4sc = so4c64;  // the score rows computed on chip (no chunk_scores launch; 64-column blocks only)
    so4sc.scores_in_state = true;
    add("state_output_fused 4 c64 sc", 0, [&] { state_output_fused(so4sc, nullptr); });
    // a row per copy mode asked for (Args::state_output_cluster 1: every block its own tile copies, 2: the head's
    // blocks in a cluster sharing them by TMA multicast, 3 at 32 columns: clusters of two); the rows without a suffix
    // copy as chosen (0)
    auto add_copy_modes = [&](std::string const& name, Args const& base, bool whole_forward) {
      int const last = state_output_block_columns(base) == 32 ? 3 : 2;
      for (int m = 1; m <= last; ++m) {
        Args x = base;
        x.state_output_cluster = m;
        add(name + (m == 3 ? " cl2" : m == 2 ? " cl" : " nocl"), 0,
            [&] { whole_forward ? forward(x, nullptr) : state_output_fused(x, nullptr); });
      }
    };
    Args so4pairs = so4c32;
    so4pairs.state_output_cluster = 3;
    std::printf("state_output_fused 4 clusters held at once: %d of %lld (32 columns), %d of %lld (32 columns, pairs), "
                "%d of %lld (64 columns)\n",
                state_output_max_clusters(so4c32), static_cast<long long>(so4c32.d.N * so4c32.d.HV),
                state_output_max_clusters(so4pairs), static_cast<long long>(2 * so4c32.d.N * so4c32.d.HV),
                state_output_max_clusters(so4c64), static_cast<long long>(so4c64.d.N * so4c64.d.HV));
    add_copy_modes("state_output_fused 4 c32", so4c32, false);
    add_copy_modes("state_output_fused 4 c64", so4c64, false);
    add_copy_modes("state_output_fused 4 c64 sc", so4sc, false);
    add("state_output_fused 1", 0, [&] { state_output_fused(so1, nullptr); });
    add("chunk_state+output", 0, [&] { chunk_state(an, nullptr); chunk_output(an, nullptr); });
    // the score rows inside intra_fused 3 (Args::scores_in_intra) against chunk_scores on its own
    Args i3 = an;
    i3.fusion = Fusion::intra;
    i3.intra_variant = 3;
    i3.A_inv = nullptr;
    Args i3s = i3;
    i3s.scores_in_intra = true;
    add("intra v3 (A_inv on chip)", 0, [&] { intra_fused(i3, nullptr); });
    add("intra v3 + score rows", 0, [&] { intra_fused(i3s, nullptr); });
    add("intra v3 (A_inv on chip, no gate pack)", 0, [&, x = no_pack(i3)] { intra_fused(x, nullptr); });
    add("intra v3 + score rows (no gate pack)", 0, [&, x = no_pack(i3s)] { intra_fused(x, nullptr); });
    Args f3 = i3, f3s = i3s;
    f3.fuse_state_output = f3s.fuse_state_output = true;
    f3.h = f3.v_new = f3s.h = f3s.v_new = nullptr;
    f3.state_output_variant = f3s.state_output_variant = 2;  // the rows named so2
    add("forward intra3 + so2", 0, [&] { forward(f3, nullptr); });
    add("forward intra3+scores + so2", 0, [&] { forward(f3s, nullptr); });
    Args f3s3 = f3s, f3s4 = f3s;
    f3s3.state_output_variant = 3;
    f3s4.state_output_variant = 4;
    add("forward intra3+scores + so3", 0, [&] { forward(f3s3, nullptr); });
    add("forward intra3+scores + so4", 0, [&] { forward(f3s4, nullptr); });
    Args f3s4c32 = f3s4, f3s4c64 = f3s4;
    f3s4c32.state_output_columns = 32, f3s4c64.state_output_columns = 64;
    add("forward intra3+scores + so4 c32", 0, [&] { forward(f3s4c32, nullptr); });
    add("forward intra3+scores + so4 c64", 0, [&] { forward(f3s4c64, nullptr); });
    Args f3s4sc = f3s4c64, ffwd = f3s4;  // intra 3 without score rows, so4 computing them on chip; fused-forward
    f3s4sc.scores_in_state = ffwd.scores_in_state = true;
    add("forward intra3 + so4 c64 sc", 0, [&] { forward(f3s4sc, nullptr); });
    add("forward fused-forward", 0, [&] { forward(ffwd, nullptr); });
    // the walk forming the delta from v (Args::delta_from_v): intra 3 writing round(A_inv diag(beta)) (+ score rows at
    // 32 columns), so4 reading it and v; the forward as `--impl fused-forward-from-v` runs it
    Args fv = ffwd, fvc32 = f3s4c32;
    fv.delta_from_v = fvc32.delta_from_v = true;
    add("intra v3 Mu + score rows (from v)", 0, [&] { intra_fused(fvc32, nullptr); });
    add("state_output_fused 4 c32 from v", 0, [&] { state_output_fused(fvc32, nullptr); });
    add("forward fused-forward-from-v", 0, [&] { forward(fv, nullptr); });
    add("forward intra3 Mu+scores + so4 c32 from v", 0, [&] { forward(fvc32, nullptr); });
    add("forward fused-forward (no gate pack)", 0, [&, x = no_pack(ffwd)] { forward(x, nullptr); });
    add_copy_modes("forward intra3+scores + so4 c32", f3s4c32, true);
    add_copy_modes("forward intra3 + so4 c64 sc", f3s4sc, true);
    add_copy_modes("forward fused-forward", ffwd, true);
    add("forward intra3 (state, output)", 0, [&] { forward(i3, nullptr); });
    add("forward (unfused, bf16 A_inv, split S)", 0, [&] { forward(a, nullptr); });
    add("forward (unfused, bf16 A_inv, bf16 S)", 0, [&] { forward(an, nullptr); });
    add("cublas kkt (gemm + mask)", tok_h * K * e + tok_hv * 8 + tok_hv * 64 * 4, [&] { cb.kkt(a, nullptr); });
    add("cublas strsm fp32", tok_hv * (256 + 128), [&] { cb.solve(a, nullptr, false); });
    add("cublas dtrsm fp64", tok_hv * (256 + 128), [&] { cb.solve(a, nullptr, true); });
    synchronize();
    (void)NTt;
    std::printf("%-32s %10s %10s %10s %8s\n", "stage", "us", "MB", "GB/s", "x floor");
    for (auto const& r : rows) {
      double const floor_us = r.bytes / bw * 1e6;
      if (r.bytes > 0)
        std::printf("%-32s %10.1f %10.1f %10.0f %8.2f\n", r.name.c_str(), r.us, r.bytes * 1e-6, r.bytes / (r.us * 1e-6) * 1e-9,
                    r.us / floor_us);
      else
        std::printf("%-32s %10.1f\n", r.name.c_str(), r.us);
    }
  } catch (std::exception const& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return 0;
}
