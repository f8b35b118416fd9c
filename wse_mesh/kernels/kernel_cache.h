// Kernel results simulated once and reused.
//
// A decode step runs the same kernels (the same GEMV shape on the same grid, the same
// reduction) many times: every layer, every step. On a fresh fabric sized to the grid, a
// kernel's timing depends only on its own description and the hardware's, so the cache
// keys a result by everything that decides the time:
//   kernel kind, shapes (rows, cols or elements; GEMM vectors; attention heads, head
//   size, context and query tokens; vector-kernel op, elements, vectors and line), grid
//   (P x Q), dtype, the mapping's choices (reduction, colors, broadcast source, tokens per
//   PE, grid width), every FabricConfig value (latencies,
//   buffers, credit loop, allocator, colors, link and ramp widths: the fidelity, since a
//   tiled fabric is a FabricConfig with k-wide links) and every PeConfig value.
// The grid's origin is left out: on an otherwise empty fabric sized origin + grid the
// region north-west of the grid carries no traffic, so the time is translation invariant.
// Kernels run on a shared Fabric (with other traffic) are never cached.
//
// Reuse can be turned off (config `reuse_kernel_results: false`, or set_enabled(false))
// to check that it changes nothing; the hit and miss counts are statistics.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "systemc_models/config/config.h"
#include "systemc_models/stats/stats.h"
#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/attention_stream.h"
#include "wse_mesh/kernels/attention_tiled.h"
#include "wse_mesh/kernels/collectives.h"
#include "wse_mesh/kernels/gemm_cannon.h"
#include "wse_mesh/kernels/gemv.h"
#include "wse_mesh/kernels/gemv_tiled.h"
#include "wse_mesh/kernels/pe.h"
#include "wse_mesh/kernels/vector_kernels.h"

namespace wse::wafer {

struct KernelCacheConfig {
  bool reuse = true;  // false: every kernel is simulated every time
  // Host threads that simulate attention kernels the sampler needs together (prefetch);
  // 0: one per hardware thread. Results are the same for every value.
  std::uint32_t threads = 0;
};

// Its keys (`reuse_kernel_results`, `threads`), declared once (config/fields.h).
void describe(config::Fields<KernelCacheConfig>& f);

// Reads the declared keys from the given section (e.g. `wafer.kernels`).
KernelCacheConfig read_kernel_cache_config(config::Section& s);

class KernelCache : public stats::Provider {
 public:
  explicit KernelCache(const KernelCacheConfig& cfg = {});

  bool enabled() const { return enabled_; }
  void set_enabled(bool on) { enabled_ = on; }
  std::uint64_t hits() const { return hits_.value(); }
  std::uint64_t misses() const { return misses_.value(); }
  std::size_t entries() const {
    return gemv_.size() + gemm_cannon_.size() + collective_.size() + attention_.size() +
           attention_stream_.size() + vector_kernel_.size();
  }
  void clear();

  // The kernels of gemv.h, collectives.h, attention.h and vector_kernels.h on a fresh
  // fabric sized to the grid, simulated on a miss (or always, when disabled) and looked up
  // on a hit. A GEMM of m vectors (GemvConfig::vectors) is its own kernel.
  GemvResult gemv(const FabricConfig& fabric, const PeConfig& pe, const GemvConfig& g);
  // run_gemv_tiled: nodes of k x k PEs over the per-PE fabric `per_pe`.
  GemvResult gemv_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe, const GemvConfig& g);
  // gemm_cannon.h: run_gemm_cannon (per-PE) for k = 1, run_gemm_cannon_tiled for k > 1.
  GemmCannonResult gemm_cannon(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                               const GemmCannonConfig& g);
  CollectiveResult reduce(const FabricConfig& fabric, const PeConfig& pe, const ReduceConfig& r);
  CollectiveResult broadcast(const FabricConfig& fabric, const PeConfig& pe, const BroadcastConfig& b);
  AttentionResult attention(const FabricConfig& fabric, const PeConfig& pe, const AttentionConfig& a);
  // run_attention_tiled: nodes of k x k PEs over the per-PE fabric `per_pe` (its own
  // key: the fidelity, k, is part of it).
  AttentionResult attention_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                  const AttentionConfig& a);
  // Simulates, side by side on host threads, those of `kernels` that are not cached yet,
  // so that the attention() (k = 0) or attention_tiled() (k >= 1) calls that follow find
  // them. Only the host's time changes:
  // each kernel is simulated alone on its own fabric, a result is counted as a miss
  // when attention() first asks for it (as without the prefetch), and a kernel that
  // fails (e.g. does not fit its PEs) is left to attention() to simulate and throw.
  // attention_stream.h: run_attention_stream (per-PE recurrences).
  AttentionStreamResult attention_stream(const FabricConfig& fabric, const PeConfig& pe,
                                         const AttentionStreamConfig& a);
  void prefetch_attention(const FabricConfig& fabric, const PeConfig& pe,
                          const std::vector<AttentionConfig>& kernels, std::uint32_t k = 0);
  VectorKernelResult vector_kernel(const FabricConfig& fabric, const PeConfig& pe,
                                   const VectorKernelConfig& v);

  // The key strings (exposed so that tests can check what distinguishes two kernels).
  static std::string key(const FabricConfig& fabric, const PeConfig& pe, const GemvConfig& g);
  static std::string key(const FabricConfig& fabric, const PeConfig& pe, const ReduceConfig& r);
  static std::string key_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                               const GemvConfig& g);
  static std::string key(const FabricConfig& fabric, const PeConfig& pe, const BroadcastConfig& b);
  static std::string key(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                         const GemmCannonConfig& g);
  static std::string key(const FabricConfig& fabric, const PeConfig& pe, const AttentionConfig& a);
  // The part of key(fabric, pe, a) that the attention kernel's own fields write (every
  // field but the origin, which does not change the time): the key of `a` among kernels
  // on one fabric and PE.
  static std::string shape_key(const AttentionConfig& a);
  static std::string key_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                               const AttentionConfig& a);
  static std::string key(const FabricConfig& fabric, const PeConfig& pe, const AttentionStreamConfig& a);
  static std::string key(const FabricConfig& fabric, const PeConfig& pe, const VectorKernelConfig& v);

  const stats::Group& stats() const override { return group_; }

 private:
  template <class R, class Run>
  R lookup(std::unordered_map<std::string, R>& map, const std::string& k, Run run);
  // An attention kernel (k = 0: per-PE; k >= 1: tiled) from the prefetched results, or run.
  AttentionResult attention_kernel(const std::string& key, const FabricConfig& f, std::uint32_t k,
                                   const PeConfig& pe, const AttentionConfig& a);

  bool enabled_;
  stats::Group group_{"kernel_cache"};
  stats::Counter& hits_;
  stats::Counter& misses_;
  std::unordered_map<std::string, GemvResult> gemv_;
  std::unordered_map<std::string, GemmCannonResult> gemm_cannon_;
  std::unordered_map<std::string, CollectiveResult> collective_;
  std::unordered_map<std::string, AttentionResult> attention_;
  std::unordered_map<std::string, AttentionStreamResult> attention_stream_;
  std::unordered_map<std::string, AttentionResult> prefetched_;  // simulated ahead, not yet asked for
  std::uint32_t threads_ = 1;
  std::unordered_map<std::string, VectorKernelResult> vector_kernel_;
};

}  // namespace wse::wafer
