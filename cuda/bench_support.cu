// Benchmark support shared by `gdnv bench`, gdnv_bench_stages and the GPU tests: device facts, random
// device-side inputs (never zeros), CUDA-event timing queued behind a spin kernel, L2 flushing.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.cuh"

namespace gdn_cuda {
namespace {

// A standard normal from a counter-based hash (Box-Muller), identical on every run and device.
__device__ float hash_normal(uint64_t i, uint64_t seed) {
  auto mix = [](uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
  };
  uint64_t const a = mix(i * 2 + seed * 0x9e3779b97f4a7c15ULL), b = mix(i * 2 + 1 + seed * 0x9e3779b97f4a7c15ULL);
  float const u1 = ((a >> 40) + 1) * (1.f / 16777217.f), u2 = (b >> 40) * (1.f / 16777216.f);
  return sqrtf(-2.f * logf(u1)) * cosf(6.2831853f * u2);
}

enum Mode : int { kNormal = 0, kLogSigmoid = 1, kSigmoid = 2, kTenth = 3 };

template <class E>
__global__ void fill_kernel(E* p, int64_t n, uint64_t seed, int mode) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float x = hash_normal(static_cast<uint64_t>(i), seed);
    if (mode == kLogSigmoid) x = -log1pf(expf(-x));
    if (mode == kSigmoid) x = 1.f / (1.f + expf(-x));
    if (mode == kTenth) x *= 0.1f;
    p[i] = from_f<E>(x);
  }
}

void fill(void* p, ElemType t, int64_t n, uint64_t seed, int mode) {
  if (n <= 0) return;
  dispatch_elem(t, [&](auto e) {
    using E = decltype(e);
    fill_kernel<E><<<1024, 256>>>(static_cast<E*>(p), n, seed, mode);
  });
  GDN_LAUNCH_CHECK();
}

__global__ void spin_kernel(unsigned long long ns) {
  if (threadIdx.x == 0) {
    unsigned long long const t0 = global_timer_ns();
    while (global_timer_ns() - t0 < ns) __nanosleep(1000);
  }
}

}  // namespace

DeviceInfo device_info() {
  DeviceInfo d;
  int dev = 0;
  GDN_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  GDN_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  d.name = p.name;
  d.sm_count = p.multiProcessorCount;
  d.cc_major = p.major, d.cc_minor = p.minor;
  d.l2_bytes = p.l2CacheSize;
  d.global_mem_bytes = static_cast<int64_t>(p.totalGlobalMem);
  d.memory_bus_bits = p.memoryBusWidth;
  GDN_CUDA_CHECK(cudaDriverGetVersion(&d.driver_version));
  GDN_CUDA_CHECK(cudaRuntimeGetVersion(&d.runtime_version));
  return d;
}

void fill_random_inputs(Workspace& ws, uint64_t seed) {
  Args const& a = ws.args;
  Dims const& d = a.d;
  int64_t const BT = d.B * d.T;
  uint64_t const s = seed * 16;
  fill(ws.q.get(), a.qkv, BT * d.H * d.K, s + 1, kNormal);
  fill(ws.k.get(), a.qkv, BT * d.H * d.K, s + 2, kNormal);
  if (BT * d.H > 0) {
    l2norm(ws.q.get(), ws.q.get(), a.qkv, BT * d.H, d.K, nullptr);
    l2norm(ws.k.get(), ws.k.get(), a.qkv, BT * d.H, d.K, nullptr);
  }
  fill(ws.v.get(), a.qkv, BT * d.HV * d.V, s + 3, kNormal);
  fill(ws.g.get(), a.g_t, BT * d.HV, s + 4, kLogSigmoid);
  fill(ws.beta.get(), a.beta_t, BT * d.HV, s + 5, kSigmoid);
  if (a.h0) fill(ws.h0.get(), ElemType::f32, d.N * d.HV * d.K * d.V, s + 6, kTenth);
  synchronize();
}

struct EventTimer::Impl {
  std::vector<cudaEvent_t> ev;  // 2 per timed run
  cudaEvent_t spun = nullptr;
  DeviceBuffer flush;
  ~Impl() {
    for (cudaEvent_t e : ev) cudaEventDestroy(e);
    if (spun) cudaEventDestroy(spun);
  }
};

EventTimer::EventTimer() : p_(std::make_unique<Impl>()) { GDN_CUDA_CHECK(cudaEventCreate(&p_->spun)); }
EventTimer::~EventTimer() = default;

std::vector<double> EventTimer::time_us(std::function<void()> const& fn, int warmup, int reps, std::size_t flush_bytes,
                                        bool* queue_drained) {
  if (reps < 1) return {};
  while (p_->ev.size() < 2 * static_cast<std::size_t>(reps)) {
    cudaEvent_t e;
    GDN_CUDA_CHECK(cudaEventCreate(&e));
    p_->ev.push_back(e);
  }
  if (flush_bytes > p_->flush.size()) p_->flush = DeviceBuffer(flush_bytes);
  auto flush = [&](int i) {
    if (flush_bytes) GDN_CUDA_CHECK(cudaMemsetAsync(p_->flush.get(), (i * 37 + 1) & 0xFF, flush_bytes, nullptr));
  };
  for (int i = 0; i < warmup; ++i) {
    flush(i);
    fn();
  }
  synchronize();
  // Long enough for the host to queue every run (a few microseconds of launches each).
  unsigned long long const spin_ns = 2'000'000ull + 200'000ull * static_cast<unsigned long long>(reps);
  spin_kernel<<<1, 32>>>(spin_ns);
  GDN_LAUNCH_CHECK();
  GDN_CUDA_CHECK(cudaEventRecord(p_->spun, nullptr));
  for (int i = 0; i < reps; ++i) {
    flush(i);
    GDN_CUDA_CHECK(cudaEventRecord(p_->ev[2 * i], nullptr));
    fn();
    GDN_CUDA_CHECK(cudaEventRecord(p_->ev[2 * i + 1], nullptr));
  }
  cudaError_t const q = cudaEventQuery(p_->spun);
  if (q != cudaSuccess && q != cudaErrorNotReady) GDN_CUDA_CHECK(q);
  if (queue_drained) *queue_drained = q == cudaSuccess;
  synchronize();
  std::vector<double> us(static_cast<std::size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    GDN_CUDA_CHECK(cudaEventElapsedTime(&ms, p_->ev[2 * i], p_->ev[2 * i + 1]));
    us[static_cast<std::size_t>(i)] = 1e3 * ms;
  }
  return us;
}

}  // namespace gdn_cuda
