// gdn_cuda: the host API of gdnv's CUDA kernels for the chunked Gated DeltaNet forward (chunk 64).
// Plain C++ (no harness types, no CUDA headers needed to include it).
//
// Layouts (row-major, "time-major, head-minor", gdn-algorithm.md section 0):
//   q, k [B,T,H,K]  v [B,T,HV,V]  g, beta [B,T,HV]  h0 [N,HV,K,V] fp32
//   g_cumsum [B,T,HV] fp32 (natural log units, chunk-local)
//   A [B,T,HV,64] fp32 (strictly lower)   A_inv [B,T,HV,64] (unit lower; dtype Args::ainv)
//   w [B,T,HV,K]  o [B,T,HV,V] (dtype Args::qkv)  u, v_new [B,T,HV,V] (dtype uv_type(Args))
//   h [B,NT,HV,K,V] (dtype Args::qkv)   final_state [N,HV,K,V] fp32
// Row t of A / A_inv holds row t-64c of its chunk. Varlen (cu_seqlens) requires B == 1.
//
// Every stage is a launcher taking the whole Args (only the pointers the stage reads or writes
// must be valid), so a benchmark can time each stage separately on the same buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct CUstream_st;

namespace gdn_cuda {

using Stream = CUstream_st*;  // == cudaStream_t

enum class ElemType : int { bf16 = 0, f16 = 1, f32 = 2 };
std::size_t elem_size(ElemType t);
char const* elem_name(ElemType t);

// One chunk of one sequence (same for every value head).
struct ChunkDesc {
  int64_t row0;   // first token as a flattened row index b*T + t
  int32_t rows;   // valid tokens, 1..64
  int32_t seq;    // sequence index n
  int64_t h_row;  // chunk row of h: b*NT + (index of the chunk within its batch row)
};

struct Dims {
  int64_t B = 0, T = 0, H = 0, HV = 0, K = 0, V = 0;
  int64_t N = 0;           // sequences
  int64_t NT = 0;          // chunk rows of h per batch row (schema's NT)
  int64_t num_chunks = 0;  // chunks in total (over all sequences)
};

// Host-side chunk tables (computed once per problem on the host, no device sync needed).
struct Plan {
  Dims d;
  std::vector<ChunkDesc> chunks;         // in sequence order
  std::vector<int64_t> seq_chunk_begin;  // N+1 offsets into chunks
};
// cu_seqlens empty: B dense sequences of length T. Throws std::invalid_argument on bad input.
Plan make_plan(int64_t B, int64_t T, int64_t H, int64_t HV, int64_t K, int64_t V,
               std::vector<int64_t> const& cu_seqlens);

// How forward() computes stages 2-4 (kkt, solve_tril, wu): one kernel each, kkt + solve_tril in one
// kernel (A stays on chip), or all three in one kernel (A and A_inv stay on chip; A_inv is still
// stored unless Args::A_inv is null).
enum class Fusion : int { none, kkt_solve, intra };

struct Args {
  Dims d;
  ElemType qkv = ElemType::bf16;   // q, k, v and w, u, v_new, h, o
  ElemType g_t = ElemType::f32;    // g
  ElemType beta_t = ElemType::f32; // beta
  ElemType ainv = ElemType::bf16;  // A_inv as stored by solve_tril and read by wu
  float scale = 1.f;
  int state_variant = 2;    // chunk_state kernel variant (1-4, see chunk_state.cu; 3 and 4 run 2 where they do not apply)
  int output_variant = 2;   // chunk_output kernel variant (1 or 2, see chunk_output.cu)
  // Fused kernel variants (kkt_solve_fused.cu, intra_fused.cu). 4 / 1: the unfused arithmetic bit for
  // bit, one block per (chunk, value head). 5 / 3: one block per (chunk, key head) sharing K K^T among
  // its value heads, merges in 3xTF32 on the tensor cores (and, for intra 3, beta folded into the A_inv
  // operand); 16-bit inputs with A_inv in the input dtype (other problems run 4 / 1).
  int kkt_solve_variant = 4;
  int intra_variant = 1;
  bool split_state = false; // chunk_state: W*S with S split into bf16 hi+lo (true) or S rounded to bf16 (FLA)
  Fusion fusion = Fusion::none;  // which kernels forward() runs for stages 2-4
  // forward() runs stages 5 and 6 as one kernel (state_output_fused.cu) where state_output_runs_fused();
  // h and v_new are then stored only where Args::h / Args::v_new are non-null.
  bool fuse_state_output = false;
  // Its variant: 4 (default) variant 3 with TMA tile loads (K = 128; at K = 64 it runs variant 2; the fastest,
  // cuda/NOTES.md); 2 the score tiles from chunk_scores (Args::scores, written first by state_output_fused()),
  // every warp running the recurrence and then the chunk's output; 1 warp roles (8 state warps hand h and v_new
  // to 4 output warps that compute their own scores); 3 variant 2's work on warpgroup MMAs with both operands in
  // shared memory (K = 128, else variant 2). All write the bytes of chunk_state 2 + chunk_output 2
  // (tests/cuda/test_gpu_state_output.cpp); other numbers are refused (std::invalid_argument).
  int state_output_variant = 4;
  // Variant 4's block width: 32 or 64 value columns per block, or 0 (default) to choose by the grid:
  // state_output_block_columns(). Other values are refused (std::invalid_argument); other variants use 32.
  int state_output_columns = 0;
  // Variant 4's tile copies: 2 puts the V-tile blocks of a head (4 at 32 columns, 2 at 64) in one cluster whose
  // blocks share the W, Q, K and score-row boxes (each block copies its share into every block of the cluster by TMA
  // multicast: a quarter / half of the L2 reads); 3 the same in clusters of two consecutive V-tile blocks (at 64
  // columns the same as 2); 1 gives every block its own copies; 0 (default) chooses: own copies, since no cluster
  // mode beat the chosen width's own copies at any shape measured (cuda/NOTES.md). The same bytes either way; other
  // values are refused (std::invalid_argument). state_output_max_clusters() tells how many fit at once.
  int state_output_cluster = 0;
  // The score rows of state_output_fused 2 computed by intra_fused 3 (which holds the chunk's k tile already)
  // instead of a chunk_scores launch: intra_fused then reads q and writes Args::scores where
  // intra_writes_scores() says so, and state_output_fused 2 skips chunk_scores when Args::fusion is
  // Fusion::intra and intra_writes_scores() holds (the caller ran intra_fused with the same Args first, as
  // forward() does). The same bytes either way.
  bool scores_in_intra = false;
  // state_output_fused 4 computes the score rows itself from the Q and K tiles it loads anyway (warpgroup 1: Q K^T
  // on the tensor cores while warpgroup 0 runs W h_c, gated and rounded in registers as chunk_scores does, then the
  // A operand of P v_new): no chunk_scores launch, no score rows through device memory, and intra_fused does not
  // write them (it skips Args::scores_in_intra when forward() runs this kernel). Where
  // state_output_computes_scores() says so (64-column blocks); elsewhere ignored.
  bool scores_in_state = false;
  // "precise" arithmetic for o (16-bit inputs only; fp32 inputs are fp32 throughout anyway): u and
  // v_new stored fp32, and the two operands whose bf16 rounding dominates o's error (beta*v in w/u,
  // the score matrix in the output) kept as hi + lo 16-bit pairs (~2^-16). Any Fusion; needs the
  // state variant 2, 3 or 4 and output variant 2. See uv_type().
  bool precise_uv = false;
  // The walk forms the delta from v itself (FlashQLA's form, gdn-algorithm.md; CPU model EmulatedOptions::delta_from_v):
  // intra_fused 3 writes only Args::ainv_beta = round(A_inv diag(beta)) (and A_inv where set, and the score rows),
  // no w or u, reading no v; state_output_fused 4 then takes, per chunk, delta = ainv_beta round(v - diag(e^g) K h_c)
  // instead of u - W h_c: per step the same K box and a 64-column box instead of W's two boxes. Needs
  // delta_from_v_runs() (16-bit, K = V = 128, Fusion::intra with intra 3, the fused state + output in variant 4, no
  // precise_uv, no cluster, Args::ainv_beta set); elsewhere refused (std::invalid_argument).
  bool delta_from_v = false;
  // device pointers
  ChunkDesc const* chunks = nullptr;
  int64_t const* seq_chunk_begin = nullptr;
  void const* q = nullptr;
  void const* k = nullptr;
  void const* v = nullptr;
  void const* g = nullptr;
  void const* beta = nullptr;
  float const* h0 = nullptr;  // may be null (zeros)
  float* g_cumsum = nullptr;
  // [num_chunks][HV][2][64] fp32: per chunk and value head, g_cumsum of its 64 rows then beta, 0 past the chunk's
  // end. Written by chunk_cumsum where non-null (it reads beta for it; forward() unsets it for pipelines that do
  // not read it: pipeline_reads_gate_pack); kkt_solve_fused 5 and
  // intra_fused 3 then copy their gate values from it (16 sectors per head instead of one per row and array). The
  // caller keeps it consistent: whoever changes g_cumsum or beta after chunk_cumsum (the harness's isolated stages
  // upload the reference's) sets it to null, and the fused kernels read g_cumsum and beta themselves.
  float* gate_pack = nullptr;
  float* A = nullptr;
  void* A_inv = nullptr;
  void* w = nullptr;
  void* u = nullptr;
  void* v_new = nullptr;
  void* h = nullptr;
  void* scores = nullptr;  // [B*T][HV][64], input dtype: round_E((Q K^T) .* Gamma .* M) rows (chunk_scores)
  void* ainv_beta = nullptr;  // [B*T][HV][64], input dtype: round_E(A_inv diag(beta)) rows (Args::delta_from_v)
  void* o = nullptr;
  float* final_state = nullptr;
  // Opt-in per-block timing (nullptr = off): every stage but chunk_cumsum writes
  // %globaltimer (ns) at each block's entry to [2*block] and at its exit to [2*block+1];
  // timed_blocks() says how many blocks a launch has. Outputs are bit-identical with it on or off.
  unsigned long long* block_times = nullptr;
};

// The dtype u and v_new are stored in: f32 with Args::precise_uv, else the input dtype. Workspace
// allocates both buffers with 4-byte elements so either fits.
ElemType uv_type(Args const& a);

// "" when the kernels support this problem, else the reason.
std::string can_implement(Dims const& d, ElemType qkv, ElemType g_t, ElemType beta_t, ElemType ainv);
// Number of CUDA devices (0 when none or the driver is missing); `why` gets the error text.
int device_count(std::string* why = nullptr);

// ---- stages (asynchronous on `stream`; every launch is error-checked, throws std::runtime_error)
void l2norm(void* out, void const* in, ElemType t, int64_t rows, int64_t dim, Stream stream);  // x/sqrt(sum x^2+1e-6)
void chunk_cumsum(Args const& a, Stream stream);  // g -> g_cumsum
void kkt(Args const& a, Stream stream);           // k, beta, g_cumsum -> A
void solve_tril(Args const& a, Stream stream);    // A -> A_inv
void wu(Args const& a, Stream stream);            // k, v, beta, g_cumsum, A_inv -> w, u
void chunk_state(Args const& a, Stream stream);   // k, w, u, g_cumsum, h0 -> h, v_new, final_state
void chunk_output(Args const& a, Stream stream);  // q, k, v_new, h, g_cumsum -> o
// The gated, masked score rows of chunk_output (chunk_scores.cu) on their own: q, k, g_cumsum -> scores,
// the bytes chunk_output 2 multiplies v_new by; 16-bit inputs, K = 64 or 128 (state_output_fused 2's input).
void chunk_scores(Args const& a, Stream stream);
bool chunk_scores_runs(Args const& a);
void forward(Args const& a, Stream stream);       // all six stages in order (stages 2-4 as Args::fusion says,
                                                  // 5-6 as Args::fuse_state_output)
void state_and_output(Args const& a, Stream stream);  // stages 5-6 as Args::fuse_state_output says (forward's tail)
// Fused stages (kkt_solve_fused.cu, intra_fused.cu): same arithmetic as the unfused ones, bit for bit.
void kkt_solve_fused(Args const& a, Stream stream);  // k, beta, g_cumsum -> A_inv (A stays on chip)
void intra_fused(Args const& a, Stream stream);      // k, v, beta, g_cumsum -> w, u, and A_inv unless null;
                                                     // needs Args::ainv == Args::qkv; + q -> scores where
                                                     // intra_writes_scores()
// Whether intra_fused writes Args::scores too: Args::scores_in_intra, scores set, variant 3 without
// precise_uv, and the value heads' gates fit beside the q tile (HV / H <= 47 at K = 128); not where
// Args::fuse_state_output and state_output_computes_scores() (forward() would not read them).
bool intra_writes_scores(Args const& a);
// Whether these Args can run with Args::delta_from_v (see there); `why` gets the reason otherwise.
bool delta_from_v_runs(Args const& a, std::string* why = nullptr);
// Stages 5 + 6 in one kernel (state_output_fused.cu): k, w, u, g_cumsum, h0, q -> o, final_state, and h /
// v_new where those pointers are set; the bytes of chunk_state 2 + chunk_output 2. Variant 2 (the default,
// Args::state_output_variant) runs chunk_scores into Args::scores first (refused when it is null; skipped
// when intra_fused has written them: Args::scores_in_intra). Problems
// it does not cover (state_output_runs_fused() false: fp32 inputs, split_state, precise_uv) run those two
// kernels, which need Args::h and Args::v_new.
void state_output_fused(Args const& a, Stream stream);
bool state_output_runs_fused(Args const& a);
// Whether state_output_fused computes its score rows on chip: Args::scores_in_state with variant 4 running
// (state_output_runs_fused(), Args::state_output_variant 4, K = 128) in 64-column blocks
// (state_output_block_columns(): asked, or chosen where 32 would take more waves); Args::scores is then not read.
// At 32 columns the on-chip rows were slower than reading them (cuda/NOTES.md), so they are read there.
bool state_output_computes_scores(Args const& a);
// How many clusters of the state_output_fused 4 launch these Args make the current device holds at once
// (cudaOccupancyMaxActiveClusters): clusters of two where Args::state_output_cluster is 3, else of the head's V-tile
// blocks; 0 where variant 4 does not run.
int state_output_max_clusters(Args const& a);
// The value columns per block of the state_output_fused launch these Args make: 64 or 32 for variant 4 (K = 128;
// Args::state_output_columns, or where 0, 64 when that takes fewer waves of one block per SM on the current
// device), 32 for the others. Throws std::invalid_argument for an unknown Args::state_output_columns.
int state_output_block_columns(Args const& a);
// Whether these Args run the GQA-shared variants (grid: one block per chunk and key head).
bool kkt_solve_runs_v5(Args const& a);
bool intra_runs_v3(Args const& a);
// Whether the pipeline these Args pick (Args::fusion) reads Args::gate_pack: kkt_solve_fused 5 or intra_fused 3.
// forward() (and the harness's pipeline) unset the pack where not, so that chunk_cumsum writes it only for them
// (8 more bytes per row and value head, and beta read).
bool pipeline_reads_gate_pack(Args const& a);

enum class Stage : int {
  chunk_cumsum, kkt, solve_tril, wu, chunk_state, chunk_output, kkt_solve_fused, intra_fused, state_output_fused,
  chunk_scores
};
char const* stage_name(Stage s);
void run_stage(Stage s, Args const& a, Stream stream);  // the stage's launcher
// Blocks in the stage's launch grid for these Args (Args::block_times needs 2 entries per block);
// 0 for chunk_cumsum, which does not record block times.
int64_t timed_blocks(Args const& a, Stage s);

// ---- cuBLAS baseline for KKT and the inverse (other stages: ours).
class CublasBaseline {
 public:
  explicit CublasBaseline(Plan const& plan);  // allocates the padded workspaces
  ~CublasBaseline();
  CublasBaseline(CublasBaseline const&) = delete;
  CublasBaseline& operator=(CublasBaseline const&) = delete;
  // A via cublasGemmStridedBatchedEx (bf16/fp16/fp32 in, fp32 compute) + a gate/mask kernel.
  void kkt(Args const& a, Stream stream);
  // A_inv by cublasStrsmBatched (fp64=false) or cublasDtrsmBatched (fp64=true) against I.
  void solve(Args const& a, Stream stream, bool fp64);

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
};

// ---- self-check of the TMA path of state_output_fused 4 (cuda/tma_check.cu): element and accumulator words that
// differ from what cuda/tma.cuh and cuda/wgmma.cuh say (all zero when the swizzle, the zero fill past the tensor's
// end and the swizzled K-major / MN-major descriptors are right).
struct TmaCheck {
  long long tile_mismatches = 0, zero_fill_mismatches = 0, kmajor_product_mismatches = 0, mnmajor_product_mismatches = 0;
};
TmaCheck tma_selfcheck();

// ---- device memory for one problem (RAII), used by the harness and the benchmark.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  void* get() const { return p_; }
  std::size_t size() const { return n_; }
  void upload(void const* host, std::size_t bytes);
  void download(void* host, std::size_t bytes) const;
  void fill_bytes(int byte);  // e.g. 0xFF: NaN in fp32/bf16/fp16

 private:
  void* p_ = nullptr;
  std::size_t n_ = 0;
};

// All inputs, intermediates and outputs of one problem, allocated for `plan`; args() points into them.
struct Workspace {
  Plan plan;
  DeviceBuffer chunks, seq_begin, q, k, v, g, beta, h0, g_cumsum, gate_pack, A, A_inv, w, u, v_new, h, scores, ainv_beta,
      o, final_state;
  Args args;
  Workspace(Plan plan, ElemType qkv, ElemType g_t, ElemType beta_t, ElemType ainv, bool with_h0);
  void poison();  // every output/intermediate buffer filled with NaN bytes
};

void synchronize();

// ---- benchmark support (cuda/bench_support.cu), used by `gdnv bench`, gdnv_bench_stages and the tests.
struct DeviceInfo {
  std::string name;
  int sm_count = 0, cc_major = 0, cc_minor = 0;
  int64_t l2_bytes = 0, global_mem_bytes = 0;
  int driver_version = 0, runtime_version = 0;  // e.g. 13000 = 13.0
  int memory_bus_bits = 0;
};
DeviceInfo device_info();  // device 0
// Random inputs on the device, never zeros: q, k rows L2-normalized N(0,1); v N(0,1); g = logsigmoid(N(0,1));
// beta = sigmoid(N(0,1)); h0 (if allocated) 0.1 N(0,1). Deterministic in `seed`.
void fill_random_inputs(Workspace& ws, uint64_t seed);

// CUDA-event timing of a piece of device work on the default stream.
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(EventTimer const&) = delete;
  EventTimer& operator=(EventTimer const&) = delete;
  // `warmup` untimed runs, then `reps` timed runs (microseconds each, in order). All timed runs are
  // queued behind a short spin kernel, so host launch gaps stay out of the numbers. flush_bytes > 0:
  // before every run (outside the timed region) a write of that many bytes evicts the L2 cache.
  // *queue_drained (optional) is set when the spin ended before the host had queued every run.
  std::vector<double> time_us(std::function<void()> const& fn, int warmup, int reps, std::size_t flush_bytes,
                              bool* queue_drained = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
};
// Device-to-device copy bandwidth (bytes read + written per second), measured with `bytes` per copy.
double measure_copy_bandwidth(std::size_t bytes, int reps);

}  // namespace gdn_cuda
