#include "wse_mesh/kernels/kernel_cache.h"

#include "systemc_models/config/fields.h"
#include "systemc_models/sim/key_writer.h"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

namespace wse::wafer {

namespace {

void put_hardware(sim::KeyWriter& o, const FabricConfig& f, const PeConfig& pe) {
  o << "|fabric:" << f.colors << ',' << f.hop_latency_cycles << ',' << f.ramp_latency_cycles << ','
    << f.input_buffer_wavelets << ',' << f.credit_latency_cycles << ',' << static_cast<int>(f.allocator)
    << ',' << f.link_wavelets_per_cycle << ',' << f.ramp_wavelets_per_cycle << "|pe:" << pe.sram_bytes << ','
    << pe.sram_banks << ',' << pe.sram_read_ports << ',' << pe.sram_write_ports << ',' << pe.sram_port_bits
    << ',' << pe.simd_fp16_fmac << ',' << pe.simd_fp16_fp32_fmac << ',' << pe.simd_fp32_add << ','
    << pe.simd_fp16_add << ',' << pe.simd_fp32_fmac << ',' << pe.exp_fmacs_per_element << ','
    << pe.rsqrt_fmacs_per_element << ',' << pe.reciprocal_fmacs_per_element;
}

}  // namespace

void describe(config::Fields<KernelCacheConfig>& f) {
  f.field("reuse_kernel_results", &KernelCacheConfig::reuse,
          {.doc = "simulate each distinct wafer kernel (kind, shapes, grid, dtype, fabric and PE "
                  "values, fidelity) once and reuse its time; false simulates every call"});
  f.field("threads", &KernelCacheConfig::threads,
          {.doc = "host threads that simulate the attention kernels a decode step's sampler needs together "
                  "(0: one per hardware thread); only the host's time changes",
           .unit = "threads",
           .min = 0,
           .max = 256});
}

KernelCacheConfig read_kernel_cache_config(config::Section& s) { return config::read<KernelCacheConfig>(s); }

KernelCache::KernelCache(const KernelCacheConfig& cfg)
    : enabled_(cfg.reuse),
      hits_(group_.counter("hits", "kernels", "kernel results reused without simulating")),
      misses_(group_.counter("misses", "kernels", "kernels simulated (not found, or reuse off)")),
      threads_(cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency())) {}

void KernelCache::clear() {
  gemv_.clear();
  gemm_cannon_.clear();
  collective_.clear();
  attention_.clear();
  attention_stream_.clear();
  prefetched_.clear();
  vector_kernel_.clear();
}

template <class R, class Run>
R KernelCache::lookup(std::unordered_map<std::string, R>& map, const std::string& k, Run run) {
  if (enabled_) {
    if (auto it = map.find(k); it != map.end()) {
      hits_.add();
      return it->second;
    }
  }
  misses_.add();
  R r = run();
  if (enabled_) map.emplace(k, r);
  return r;
}

std::string KernelCache::key(const FabricConfig& f, const PeConfig& pe, const GemvConfig& g) {
  std::string s;
  sim::KeyWriter o{s};
  o << "gemv|" << g.rows << 'x' << g.cols << "|grid:" << g.grid_rows << 'x' << g.grid_cols
    << "|vectors:" << g.vectors << ",sim:" << g.simulated_vectors << "|acc:" << static_cast<int>(g.accumulate)
    << "|red:" << static_cast<int>(g.reduction) << "|colors:" << int{g.x_color} << ','
    << int{g.psum_colors[0]} << ',' << int{g.psum_colors[1]} << ',' << int{g.tree_color} << ','
    << int{g.ktree_colors[0]} << ',' << int{g.ktree_colors[1]} << "|ktree_group:" << g.ktree_group
    << "|fold:" << g.fold_rows;
  put_hardware(o, f, pe);
  return s;
}

std::string KernelCache::key(const FabricConfig& f, const PeConfig& pe, const ReduceConfig& r) {
  std::string s;
  sim::KeyWriter o{s};
  o << "reduce|" << r.elements << "|grid:" << r.grid_rows << 'x' << r.grid_cols
    << "|dtype:" << static_cast<int>(r.dtype) << "|red:" << static_cast<int>(r.reduction)
    << "|colors:" << int{r.row_color} << ',' << int{r.col_color} << ',' << int{r.broadcast_color}
    << "|ktree_group:" << r.ktree_group;
  put_hardware(o, f, pe);
  return s;
}

std::string KernelCache::key(const FabricConfig& f, const PeConfig& pe, const BroadcastConfig& b) {
  std::string s;
  sim::KeyWriter o{s};
  o << "broadcast|" << b.elements << "|grid:" << b.grid_rows << 'x' << b.grid_cols
    << "|dtype:" << static_cast<int>(b.dtype) << "|source:" << b.source.x << ',' << b.source.y
    << "|color:" << int{b.color};
  put_hardware(o, f, pe);
  return s;
}

std::string KernelCache::shape_key(const AttentionConfig& a) {
  std::string s;
  sim::KeyWriter o{s};
  o << "attention|heads:" << a.q_heads << ',' << a.kv_heads << ',' << a.head_dim << "|context:" << a.context
    << "|query:" << a.query_tokens << "|tokens_per_pe:" << a.tokens_per_pe << "|max_cols:" << a.max_grid_cols
    << "|kv_bytes:" << a.kv_bytes << "|red:" << static_cast<int>(a.reduction) << "|fold:" << a.fold_rows;
  return s;
}

std::string KernelCache::key(const FabricConfig& f, const PeConfig& pe, const AttentionConfig& a) {
  std::string s = shape_key(a);
  sim::KeyWriter o{s};
  put_hardware(o, f, pe);
  return s;
}

std::string KernelCache::key(const FabricConfig& f, const PeConfig& pe, const AttentionStreamConfig& a) {
  std::string s;
  sim::KeyWriter o{s};
  o << "attention_stream|heads:" << a.q_heads << ',' << a.kv_heads << ',' << a.head_dim
    << "|context:" << a.context << "|query:" << a.query_tokens << "|tokens_per_pe:" << a.tokens_per_pe << ','
    << a.stream_tokens_per_pe << "|max_cols:" << a.max_grid_cols << "|kv_bytes:" << a.kv_bytes
    << "|ring:" << static_cast<int>(a.ring) << "|sram:" << a.sram_bytes;
  put_hardware(o, f, pe);
  return s;
}

std::string KernelCache::key(const FabricConfig& f, const PeConfig& pe, const VectorKernelConfig& v) {
  std::string s;
  sim::KeyWriter o{s};
  o << "vector|op:" << static_cast<int>(v.op) << '|' << v.elements << 'x' << v.vectors << "|pes:" << v.pes
    << "|ops:" << v.ops_per_element << "|dtype:" << static_cast<int>(v.dtype)
    << "|red:" << static_cast<int>(v.reduction);
  put_hardware(o, f, pe);
  return s;
}

GemvResult KernelCache::gemv(const FabricConfig& f, const PeConfig& pe, const GemvConfig& g) {
  return lookup(gemv_, key(f, pe, g), [&] { return run_gemv(f, pe, g); });
}

std::string KernelCache::key_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                   const GemvConfig& g) {
  // The node mapping differs from run_gemv's even at k = 1 in name only; keep them apart.
  return "tiled" + std::to_string(k) + "|" + key(tiled(per_pe, k), pe, g);
}

GemvResult KernelCache::gemv_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                   const GemvConfig& g) {
  return lookup(gemv_, key_tiled(per_pe, k, pe, g), [&] { return run_gemv_tiled(per_pe, k, pe, g); });
}

std::string KernelCache::key(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                             const GemmCannonConfig& g) {
  std::string s;
  sim::KeyWriter o{s};
  o << "cannon|k:" << k << '|' << g.rows << 'x' << g.cols << "|tokens:" << g.tokens << "|grid:" << g.grid_rows
    << 'x' << g.grid_cols << "|acc:" << static_cast<int>(g.accumulate) << "|block:" << g.block_tokens
    << "|buffer:" << g.buffer_bytes << "|groups:" << g.groups;
  put_hardware(o, per_pe, pe);
  return s;
}

GemmCannonResult KernelCache::gemm_cannon(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                          const GemmCannonConfig& g) {
  return lookup(gemm_cannon_, key(per_pe, k, pe, g), [&] {
    return k > 1 ? run_gemm_cannon_tiled(per_pe, k, pe, g) : run_gemm_cannon(per_pe, pe, g);
  });
}

CollectiveResult KernelCache::reduce(const FabricConfig& f, const PeConfig& pe, const ReduceConfig& r) {
  return lookup(collective_, key(f, pe, r), [&] { return run_reduce(f, pe, r); });
}

CollectiveResult KernelCache::broadcast(const FabricConfig& f, const PeConfig& pe, const BroadcastConfig& b) {
  return lookup(collective_, key(f, pe, b), [&] { return run_broadcast(f, pe, b); });
}

AttentionResult KernelCache::attention_kernel(const std::string& key, const FabricConfig& f, std::uint32_t k,
                                              const PeConfig& pe, const AttentionConfig& a) {
  return lookup(attention_, key, [&] {
    if (auto it = prefetched_.find(key); it != prefetched_.end()) {
      AttentionResult r = it->second;
      prefetched_.erase(it);
      return r;
    }
    return k == 0 ? run_attention(f, pe, a) : run_attention_tiled(f, k, pe, a);
  });
}

AttentionResult KernelCache::attention(const FabricConfig& f, const PeConfig& pe, const AttentionConfig& a) {
  return attention_kernel(key(f, pe, a), f, 0, pe, a);
}

std::string KernelCache::key_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                   const AttentionConfig& a) {
  // The node mapping differs from run_attention's (it equals it at k = 1): keep them apart.
  return "tiled" + std::to_string(k) + "|" + key(per_pe, pe, a);
}

AttentionResult KernelCache::attention_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                             const AttentionConfig& a) {
  if (k == 0) throw std::invalid_argument("attention tiled: k must be at least 1");
  return attention_kernel(key_tiled(per_pe, k, pe, a), per_pe, k, pe, a);
}

AttentionStreamResult KernelCache::attention_stream(const FabricConfig& f, const PeConfig& pe,
                                                    const AttentionStreamConfig& a) {
  return lookup(attention_stream_, key(f, pe, a), [&] { return run_attention_stream(f, pe, a); });
}

void KernelCache::prefetch_attention(const FabricConfig& f, const PeConfig& pe,
                                     const std::vector<AttentionConfig>& kernels, std::uint32_t tile) {
  if (!enabled_ || threads_ < 2) return;
  std::vector<std::string> keys;
  std::vector<const AttentionConfig*> todo;
  for (const AttentionConfig& a : kernels) {
    std::string k = tile == 0 ? key(f, pe, a) : key_tiled(f, tile, pe, a);
    if (attention_.contains(k) || prefetched_.contains(k) ||
        std::find(keys.begin(), keys.end(), k) != keys.end()) {
      continue;
    }
    keys.push_back(std::move(k));
    todo.push_back(&a);
  }
  if (todo.size() < 2) return;  // one kernel: attention() simulates it on this thread
  std::vector<AttentionResult> results(todo.size());
  std::vector<char> ok(todo.size(), 0);
  const std::size_t n_threads = std::min<std::size_t>(threads_, todo.size());
  std::vector<std::thread> pool;
  pool.reserve(n_threads);
  for (std::size_t t = 0; t < n_threads; ++t) {
    pool.emplace_back([&, t] {
      for (std::size_t i = t; i < todo.size(); i += n_threads) {
        try {
          results[i] =
              tile == 0 ? run_attention(f, pe, *todo[i]) : run_attention_tiled(f, tile, pe, *todo[i]);
          ok[i] = 1;
        } catch (...) {
          // left to attention(), which simulates it again and throws on the caller's thread
        }
      }
    });
  }
  for (std::thread& th : pool) th.join();
  for (std::size_t i = 0; i < todo.size(); ++i) {
    if (ok[i]) prefetched_.emplace(std::move(keys[i]), results[i]);
  }
}

VectorKernelResult KernelCache::vector_kernel(const FabricConfig& f, const PeConfig& pe,
                                              const VectorKernelConfig& v) {
  return lookup(vector_kernel_, key(f, pe, v), [&] { return run_vector_kernel(f, pe, v); });
}

}  // namespace wse::wafer
