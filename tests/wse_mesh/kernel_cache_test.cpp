// Kernel results simulated once and reused: same cycles with reuse on and off, hits and
// misses counted, and every value that decides the time in the key.
#include "wse_mesh/kernels/kernel_cache.h"

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class KernelCacheTest : public wse::testing::SystemCTest {};

GemvConfig gemv_cfg() {
  GemvConfig g;
  g.rows = 64;
  g.cols = 64;
  g.grid_rows = 4;
  g.grid_cols = 4;
  return g;
}

TEST_F(KernelCacheTest, ReuseGivesTheSameCyclesAsSimulatingEveryTime) {
  KernelCache on;
  KernelCache off(KernelCacheConfig{.reuse = false});
  const FabricConfig fc;
  const PeConfig pe;
  ReduceConfig red;
  red.grid_rows = 2;
  red.grid_cols = 4;
  red.elements = 8;
  BroadcastConfig bc;
  bc.grid_rows = 3;
  bc.grid_cols = 3;
  bc.source = {1, 1};
  for (int layer = 0; layer < 3; ++layer) {
    EXPECT_EQ(on.gemv(fc, pe, gemv_cfg()).total_cycles, off.gemv(fc, pe, gemv_cfg()).total_cycles);
    EXPECT_EQ(on.reduce(fc, pe, red).total_cycles, off.reduce(fc, pe, red).total_cycles);
    EXPECT_EQ(on.broadcast(fc, pe, bc).total_cycles, off.broadcast(fc, pe, bc).total_cycles);
  }
  // The reference: the direct simulation.
  EXPECT_EQ(on.gemv(fc, pe, gemv_cfg()).total_cycles, run_gemv(fc, pe, gemv_cfg()).total_cycles);
  // 3 distinct kernels: simulated once each, then 3 x 3 - 3 + 1 reuses.
  EXPECT_EQ(on.misses(), 3u);
  EXPECT_EQ(on.hits(), 7u);
  EXPECT_EQ(on.entries(), 3u);
  EXPECT_EQ(off.misses(), 9u);
  EXPECT_EQ(off.hits(), 0u);
  EXPECT_EQ(off.entries(), 0u);
  // The counts are statistics of the cache's group.
  const auto& st = on.stats().stats();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0]->name(), "hits");
  EXPECT_EQ(st[1]->name(), "misses");
}

TEST_F(KernelCacheTest, EverythingThatDecidesTheTimeIsInTheKey) {
  KernelCache cache;
  const FabricConfig fc;
  const PeConfig pe;
  const GemvResult base = cache.gemv(fc, pe, gemv_cfg());
  // A different fabric latency: a miss, and a different time.
  FabricConfig slow = fc;
  slow.hop_latency_cycles = 2;
  const GemvResult slower = cache.gemv(slow, pe, gemv_cfg());
  EXPECT_GT(slower.total_cycles, base.total_cycles);
  // Tiled fidelity (k = 2 widens links and ramps): another key.
  EXPECT_NE(KernelCache::key(tiled(fc, 2), pe, gemv_cfg()), KernelCache::key(fc, pe, gemv_cfg()));
  // The tiled GEMV: k is in the key, and the cached result equals the direct run.
  EXPECT_NE(KernelCache::key_tiled(fc, 2, pe, gemv_cfg()), KernelCache::key_tiled(fc, 4, pe, gemv_cfg()));
  EXPECT_EQ(cache.gemv_tiled(fc, 2, pe, gemv_cfg()).total_cycles,
            run_gemv_tiled(fc, 2, pe, gemv_cfg()).total_cycles);
  EXPECT_EQ(cache.gemv_tiled(fc, 2, pe, gemv_cfg()).total_cycles,
            base.total_cycles - 2);  // 2 (k - 1) H early
  // PE SIMD width, dtype, grid, shape and reduction each change the key.
  PeConfig wide = pe;
  wide.simd_fp16_fp32_fmac = 4;
  EXPECT_NE(KernelCache::key(fc, wide, gemv_cfg()), KernelCache::key(fc, pe, gemv_cfg()));
  GemvConfig g = gemv_cfg();
  g.accumulate = Accumulate::kFp16;
  EXPECT_NE(KernelCache::key(fc, pe, g), KernelCache::key(fc, pe, gemv_cfg()));
  g = gemv_cfg();
  g.grid_cols = 2;
  EXPECT_NE(KernelCache::key(fc, pe, g), KernelCache::key(fc, pe, gemv_cfg()));
  g = gemv_cfg();
  g.reduction = Reduction::kTree;
  EXPECT_NE(KernelCache::key(fc, pe, g), KernelCache::key(fc, pe, gemv_cfg()));
  // The K-tree, its group size and its colors each change the key, per-PE and tiled.
  GemvConfig kt = gemv_cfg();
  kt.reduction = Reduction::kKTree;
  EXPECT_NE(KernelCache::key(fc, pe, kt), KernelCache::key(fc, pe, g));
  EXPECT_NE(KernelCache::key(fc, pe, kt), KernelCache::key(fc, pe, gemv_cfg()));
  GemvConfig kt2 = kt;
  kt2.ktree_group = 2;
  EXPECT_NE(KernelCache::key(fc, pe, kt2), KernelCache::key(fc, pe, kt));
  EXPECT_NE(KernelCache::key_tiled(fc, 2, pe, kt2), KernelCache::key_tiled(fc, 2, pe, kt));
  GemvConfig kt3 = kt2;
  kt3.ktree_colors = {5, 6};
  EXPECT_NE(KernelCache::key(fc, pe, kt3), KernelCache::key(fc, pe, kt2));
  EXPECT_EQ(cache.gemv(fc, pe, kt2).total_cycles, run_gemv(fc, pe, kt2).total_cycles);
  ReduceConfig rk;
  rk.reduction = Reduction::kKTree;
  ReduceConfig rk2 = rk;
  rk2.ktree_group = 2;
  EXPECT_NE(KernelCache::key(fc, pe, rk2), KernelCache::key(fc, pe, rk));
  EXPECT_NE(KernelCache::key(fc, pe, rk), KernelCache::key(fc, pe, ReduceConfig{}));
  // The origin does not decide the time on a fresh fabric: the same key, a hit, and the
  // direct simulation at the new origin agrees.
  g = gemv_cfg();
  g.origin = {5, 3};
  EXPECT_EQ(KernelCache::key(fc, pe, g), KernelCache::key(fc, pe, gemv_cfg()));
  const std::uint64_t hits = cache.hits();
  EXPECT_EQ(cache.gemv(fc, pe, g).total_cycles, run_gemv(fc, pe, g).total_cycles);
  EXPECT_EQ(cache.hits(), hits + 1);
  EXPECT_EQ(cache.misses(), 4u);  // per-PE, slower fabric, tiled k = 2, K-tree
}

TEST_F(KernelCacheTest, GemmVectorsAreInTheGemvKeys) {
  const FabricConfig fc;
  const PeConfig pe;
  GemvConfig g = gemv_cfg();
  g.vectors = 8;
  EXPECT_NE(KernelCache::key(fc, pe, g), KernelCache::key(fc, pe, gemv_cfg()));
  EXPECT_NE(KernelCache::key_tiled(fc, 2, pe, g), KernelCache::key_tiled(fc, 2, pe, gemv_cfg()));
  // A GEMM of 8 vectors is its own entry, and takes longer than one vector.
  KernelCache cache;
  const GemvResult one = cache.gemv(fc, pe, gemv_cfg());
  const GemvResult eight = cache.gemv(fc, pe, g);
  EXPECT_GT(eight.total_cycles, one.total_cycles);
  EXPECT_EQ(cache.gemv(fc, pe, g).total_cycles, run_gemv(fc, pe, g).total_cycles);
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.hits(), 1u);
}

// Every field of the config but the origin changes the key; the origin does not.
template <class Config, class Field>
void expect_key_changes(const Config& base, Field change, const char* what) {
  Config c = base;
  change(c);
  EXPECT_NE(KernelCache::key(FabricConfig{}, PeConfig{}, c),
            KernelCache::key(FabricConfig{}, PeConfig{}, base))
      << what;
}

TEST_F(KernelCacheTest, AttentionKeyHoldsEveryFieldButTheOrigin) {
  const AttentionConfig a;
  expect_key_changes(
      a, [](AttentionConfig& c) { c.q_heads = 64; }, "q_heads");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.kv_heads = 4; }, "kv_heads");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.head_dim = 64; }, "head_dim");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.context = 2048; }, "context");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.query_tokens = 4; }, "query_tokens");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.tokens_per_pe = 8; }, "tokens_per_pe");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.max_grid_cols = 128; }, "max_grid_cols");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.kv_bytes = 1; }, "kv_bytes");
  expect_key_changes(
      a, [](AttentionConfig& c) { c.reduction = Reduction::kChain; }, "reduction");
  AttentionConfig moved = a;
  moved.origin = {7, 2};
  EXPECT_EQ(KernelCache::key(FabricConfig{}, PeConfig{}, moved),
            KernelCache::key(FabricConfig{}, PeConfig{}, a));
  // The hardware is in the key as for the other kernels, and the kinds never collide.
  FabricConfig slow;
  slow.hop_latency_cycles = 2;
  EXPECT_NE(KernelCache::key(slow, PeConfig{}, a), KernelCache::key(FabricConfig{}, PeConfig{}, a));
  EXPECT_NE(KernelCache::key(FabricConfig{}, PeConfig{}, a),
            KernelCache::key(FabricConfig{}, PeConfig{}, VectorKernelConfig{}));
}

TEST_F(KernelCacheTest, AttentionStreamKeyHoldsEveryField) {
  const AttentionStreamConfig a;
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.q_heads = 64; }, "q_heads");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.kv_heads = 4; }, "kv_heads");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.head_dim = 64; }, "head_dim");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.context = 2048; }, "context");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.query_tokens = 4; }, "query_tokens");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.tokens_per_pe = 8; }, "tokens_per_pe");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.stream_tokens_per_pe = 4; }, "stream_tokens_per_pe");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.max_grid_cols = 128; }, "max_grid_cols");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.kv_bytes = 1; }, "kv_bytes");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.ring = StreamRing::kSnake; }, "ring");
  expect_key_changes(
      a, [](AttentionStreamConfig& c) { c.sram_bytes = 4096; }, "sram_bytes");
  PeConfig wide;
  wide.sram_write_ports = 2;
  EXPECT_NE(KernelCache::key(FabricConfig{}, wide, a), KernelCache::key(FabricConfig{}, PeConfig{}, a));
  // Never the decode kernel's key for the same shapes.
  AttentionConfig same;
  same.context = a.context;
  same.query_tokens = a.query_tokens;
  same.tokens_per_pe = a.tokens_per_pe;
  EXPECT_NE(KernelCache::key(FabricConfig{}, PeConfig{}, a),
            KernelCache::key(FabricConfig{}, PeConfig{}, same));
  // Simulated once, reused.
  KernelCache cache;
  AttentionStreamConfig small;
  small.q_heads = 4;
  small.kv_heads = 2;
  small.head_dim = 16;
  small.context = 60;
  small.query_tokens = 4;
  small.tokens_per_pe = 4;
  small.max_grid_cols = 8;
  const std::uint64_t t = cache.attention_stream(FabricConfig{}, PeConfig{}, small).total_cycles;
  EXPECT_EQ(cache.attention_stream(FabricConfig{}, PeConfig{}, small).total_cycles, t);
  EXPECT_EQ(t, run_attention_stream(FabricConfig{}, PeConfig{}, small).total_cycles);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.entries(), 1u);
}

TEST_F(KernelCacheTest, VectorKernelKeyHoldsEveryFieldButTheOrigin) {
  const VectorKernelConfig v;
  expect_key_changes(
      v, [](VectorKernelConfig& c) { c.op = VectorOp::kSoftmax; }, "op");
  expect_key_changes(
      v, [](VectorKernelConfig& c) { c.elements = 8192; }, "elements");
  expect_key_changes(
      v, [](VectorKernelConfig& c) { c.vectors = 8; }, "vectors");
  expect_key_changes(
      v, [](VectorKernelConfig& c) { c.pes = 32; }, "pes");
  expect_key_changes(
      v, [](VectorKernelConfig& c) { c.ops_per_element = 3; }, "ops_per_element");
  expect_key_changes(
      v, [](VectorKernelConfig& c) { c.dtype = Accumulate::kFp32; }, "dtype");
  expect_key_changes(
      v, [](VectorKernelConfig& c) { c.reduction = Reduction::kChain; }, "reduction");
  VectorKernelConfig moved = v;
  moved.origin = {3, 9};
  EXPECT_EQ(KernelCache::key(FabricConfig{}, PeConfig{}, moved),
            KernelCache::key(FabricConfig{}, PeConfig{}, v));
  PeConfig wide;
  wide.simd_fp16_add = 8;
  EXPECT_NE(KernelCache::key(FabricConfig{}, wide, v), KernelCache::key(FabricConfig{}, PeConfig{}, v));
}

TEST_F(KernelCacheTest, AttentionAndVectorKernelsAreSimulatedOnceAndReused) {
  KernelCache on;
  KernelCache off(KernelCacheConfig{.reuse = false});
  const FabricConfig fc;
  const PeConfig pe;
  AttentionConfig a;
  a.q_heads = 4;
  a.kv_heads = 2;
  a.head_dim = 16;
  a.context = 64;
  a.tokens_per_pe = 8;
  a.max_grid_cols = 8;
  VectorKernelConfig v;
  v.elements = 256;
  v.pes = 8;
  for (int layer = 0; layer < 3; ++layer) {
    EXPECT_EQ(on.attention(fc, pe, a).total_cycles, off.attention(fc, pe, a).total_cycles);
    EXPECT_EQ(on.vector_kernel(fc, pe, v).total_cycles, off.vector_kernel(fc, pe, v).total_cycles);
  }
  EXPECT_EQ(on.attention(fc, pe, a).total_cycles, run_attention(fc, pe, a).total_cycles);
  EXPECT_EQ(on.vector_kernel(fc, pe, v).total_cycles, run_vector_kernel(fc, pe, v).total_cycles);
  EXPECT_EQ(on.misses(), 2u);
  EXPECT_EQ(on.hits(), 6u);
  EXPECT_EQ(on.entries(), 2u);
  EXPECT_EQ(off.misses(), 6u);
  EXPECT_EQ(off.entries(), 0u);
  // A longer context is another kernel; the same one at another origin is a hit.
  a.context = 128;
  on.attention(fc, pe, a);
  EXPECT_EQ(on.misses(), 3u);
  v.origin = {4, 1};
  EXPECT_EQ(on.vector_kernel(fc, pe, v).total_cycles, run_vector_kernel(fc, pe, v).total_cycles);
  EXPECT_EQ(on.hits(), 7u);
  on.clear();
  EXPECT_EQ(on.entries(), 0u);
}

// Attention kernels simulated ahead on host threads give the results simulated on the
// caller's thread, and count as they would without the prefetch: a miss when first
// asked for, a hit after. A kernel that does not fit is left to attention(), which throws.
TEST_F(KernelCacheTest, PrefetchedAttentionIsTheSameKernelAndCountsAsWithout) {
  KernelCache threaded(KernelCacheConfig{.threads = 2});
  KernelCache serial(KernelCacheConfig{.threads = 1});
  const FabricConfig fc;
  const PeConfig pe;
  AttentionConfig a;
  a.q_heads = 4;
  a.kv_heads = 2;
  a.head_dim = 16;
  a.tokens_per_pe = 8;
  a.max_grid_cols = 8;
  std::vector<AttentionConfig> kernels;
  for (const std::uint64_t context : {32u, 64u, 96u, 64u}) {  // 64 twice: prefetched once
    kernels.push_back(a);
    kernels.back().context = context;
  }
  threaded.prefetch_attention(fc, pe, kernels);
  serial.prefetch_attention(fc, pe, kernels);  // one thread: nothing ahead
  EXPECT_EQ(threaded.misses(), 0u);
  EXPECT_EQ(threaded.entries(), 0u);  // held aside until asked for
  for (const AttentionConfig& k : kernels) {
    const AttentionResult t = threaded.attention(fc, pe, k);
    const AttentionResult s = serial.attention(fc, pe, k);
    const AttentionResult direct = run_attention(fc, pe, k);
    EXPECT_EQ(t.total_cycles, direct.total_cycles);
    EXPECT_EQ(s.total_cycles, direct.total_cycles);
  }
  EXPECT_EQ(threaded.misses(), 3u);
  EXPECT_EQ(threaded.hits(), 1u);
  EXPECT_EQ(serial.misses(), threaded.misses());
  EXPECT_EQ(serial.hits(), threaded.hits());
  // A context whose grid (8 tokens a PE, 8 columns a row) is taller than the fabric fails
  // ahead, and attention() throws on the caller's thread as it would have.
  AttentionConfig too_big = a;
  too_big.context = 1ull << 40;
  threaded.prefetch_attention(fc, pe, {too_big, a});
  EXPECT_ANY_THROW(threaded.attention(fc, pe, too_big));
}

// The tiled attention kernel is keyed by its fidelity: k is in the key, which never equals
// the per-PE kernel's (not even at k = 1, whose cycles are the same), and a tiled result is
// simulated once, prefetched on threads like the per-PE kernel, and equals
// run_attention_tiled.
TEST_F(KernelCacheTest, TiledAttentionIsKeyedByItsFidelity) {
  const FabricConfig fc;
  const PeConfig pe;
  AttentionConfig a;
  a.q_heads = 4;
  a.kv_heads = 2;
  a.head_dim = 16;
  a.tokens_per_pe = 8;
  a.max_grid_cols = 8;
  a.reduction = Reduction::kChain;
  a.context = 95;
  EXPECT_NE(KernelCache::key_tiled(fc, 1, pe, a), KernelCache::key(fc, pe, a));
  EXPECT_NE(KernelCache::key_tiled(fc, 2, pe, a), KernelCache::key_tiled(fc, 4, pe, a));
  AttentionConfig other = a;
  other.context = 127;
  EXPECT_NE(KernelCache::key_tiled(fc, 4, pe, a), KernelCache::key_tiled(fc, 4, pe, other));
  KernelCache threaded(KernelCacheConfig{.threads = 2});
  threaded.prefetch_attention(fc, pe, {a, other}, 4);
  EXPECT_EQ(threaded.misses(), 0u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(threaded.attention_tiled(fc, 4, pe, a).total_cycles,
              run_attention_tiled(fc, 4, pe, a).total_cycles);
    EXPECT_EQ(threaded.attention_tiled(fc, 4, pe, other).total_cycles,
              run_attention_tiled(fc, 4, pe, other).total_cycles);
  }
  EXPECT_EQ(threaded.misses(), 2u);
  EXPECT_EQ(threaded.hits(), 2u);
  // The per-PE kernel of the same shape is another entry.
  EXPECT_EQ(threaded.attention(fc, pe, a).total_cycles, run_attention(fc, pe, a).total_cycles);
  EXPECT_EQ(threaded.misses(), 3u);
  EXPECT_THROW(threaded.attention_tiled(fc, 0, pe, a), std::invalid_argument);
}

TEST_F(KernelCacheTest, SwitchFromConfigAndApi) {
  config::Document doc = config::parse("kernels:\n  reuse_kernel_results: false\n", "test.yaml");
  config::Section root = doc.root();
  config::Section k = root.section("kernels", "wafer kernels");
  const KernelCacheConfig cfg = read_kernel_cache_config(k);
  doc.finish();
  EXPECT_FALSE(cfg.reuse);
  KernelCache cache(cfg);
  EXPECT_FALSE(cache.enabled());
  cache.set_enabled(true);
  cache.gemv(FabricConfig{}, PeConfig{}, gemv_cfg());
  cache.gemv(FabricConfig{}, PeConfig{}, gemv_cfg());
  EXPECT_EQ(cache.hits(), 1u);
  // Default: reuse on.
  config::Document empty = config::parse("kernels: {}\n", "test.yaml");
  config::Section r2 = empty.root();
  config::Section k2 = r2.section("kernels", "wafer kernels");
  EXPECT_TRUE(read_kernel_cache_config(k2).reuse);
  EXPECT_EQ(read_kernel_cache_config(k2).threads, 0u);  // 0: one per hardware thread
}

}  // namespace
}  // namespace wse::wafer
