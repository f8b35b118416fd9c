#include "wse_mesh/decode/wafer_decoder.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "systemc_models/units/integer.h"
#include "wse_mesh/decode/schedule.h"
#include "wse_mesh/decode/simulated_kernels.h"
#include "wse_mesh/kernels/attention.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

namespace {

// "auto" or "PxQ" (P rows by Q columns of PEs).
GridShape parse_grid(config::Section& s, std::string_view key, const std::string& text,
                     std::string_view whole = "auto") {
  if (text == whole) return {};
  const auto x = text.find('x');
  const auto number = [&](std::string_view part) -> std::uint32_t {
    if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string_view::npos) {
      s.fail(key, "expected `" + std::string(whole) +
                      "` or a grid \"PxQ\" (P rows by Q columns of PEs, e.g. \"32x64\"), found \"" + text +
                      "\"");
    }
    const auto v = static_cast<std::uint32_t>(std::stoul(std::string(part)));
    if (v == 0) s.fail(key, "a grid needs at least one PE row and column, found \"" + text + "\"");
    return v;
  };
  if (x == std::string::npos) number("");
  const std::string_view sv(text);
  return {number(sv.substr(0, x)), number(sv.substr(x + 1))};
}

}  // namespace

PlacementOptions DecodeConfig::placement() const {
  PlacementOptions p;
  p.wafers = wafers;
  p.grids = grids;
  p.weight_sram_share = weight_sram_share;
  p.reserved_sram_bytes = reserved_sram_bytes;
  p.gemm_vectors = gemm_vectors;
  p.vocab_slices = vocab_slices;
  p.mapping = mapping;
  p.region = region;
  p.region_columns = region_columns;
  return p;
}

DecodeConfig read_decode_config(config::Section& s) {
  DecodeConfig c;
  c.wafers = static_cast<std::uint32_t>(s.integer(
      "wafers", {.doc = "systems one copy of the model spans: its layers are split into this many "
                        "contiguous groups (balanced by weight bytes), pipelined, activations passed "
                        "between systems over the link",
                 .def = "1",
                 .min = 1,
                 .max = 256}));
  c.mapping = s.enumeration<Mapping>(
      "mapping",
      {.doc = "how a layer's weights lie on its region: spread (every matrix tiled in 2-D over the whole "
              "region, "
              "q/k/v and gate/up fused, the layers in column strips of near-square regions: the best public "
              "mapping) or packed (each matrix on the fewest PEs that hold it: an ablation)",
       .def = "spread"},
      {{"spread", Mapping::kSpread}, {"packed", Mapping::kPacked}});
  c.region =
      parse_grid(s, "region",
                 s.string("region", {.doc = "the rectangle of each wafer the model is placed on and run, "
                                            "\"PxQ\" (P rows by Q columns of PEs at the north-west corner), "
                                            "or `all`",
                                     .def = "all"}),
                 "all");
  c.region_columns = static_cast<std::uint32_t>(
      s.integer("region_columns", {.doc = "spread: column strips per wafer, each holding consecutive layers "
                                          "as bands (0: the count that makes "
                                          "a layer's region closest to square)",
                                   .def = "0",
                                   .min = 0,
                                   .max = 4096}));
  c.accumulate = s.enumeration<Accumulate>(
      "accumulate",
      {.doc =
           "GEMV partial sums in SRAM: fp16 (@fmach, as the SDK's FP16 GEMV benchmark and WaferLLM) or fp32 "
           "(@fmachs); sets the SRAM port traffic per multiply-accumulate",
       .def = "fp16"},
      {{"fp16", Accumulate::kFp16}, {"fp32", Accumulate::kFp32}});
  const std::string red = s.string(
      "reduction",
      {.doc = "GEMV partial-sum reduction along the grid rows: auto (each kernel simulated with chain, "
              "tree and K-tree, the fastest taken, as tuned software would), chain, tree or ktree",
       .def = "auto"});
  c.reduction_auto = red == "auto";
  if (!c.reduction_auto && !parse_reduction(red, c.reduction)) {
    s.fail("reduction", "expected auto, chain, tree or ktree, found \"" + red + "\"");
  }
  const std::string algo = s.string(
      "gemm_algorithm",
      {.doc =
           "GEMMs of more than one token (prefill chunks, decode microbatches): auto (the faster of the GEMV "
           "passes and the weight-stationary Cannon GEMM per kernel, as tuned software would), gemv (the "
           "passes only: the ablation) or cannon (Cannon wherever its buffers fit)",
       .def = "auto"});
  if (!parse_gemm_algorithm(algo, c.gemm_algorithm)) {
    s.fail("gemm_algorithm", "expected auto, gemv or cannon, found \"" + algo + "\"");
  }
  const std::string pfa = s.string(
      "prefill_attention",
      {.doc =
           "attention of a prefill chunk (more than one query token): auto (the faster of the two kernels "
           "per "
           "chunk, as tuned software would), stream (K and V blocks shifted around rings of the head's PEs "
           "past stationary queries, online softmax per PE: the Cannon of attention) or combine (the decode "
           "kernel in sub-chunks, partial results combined across the head's PEs: the ablation)",
       .def = "auto"});
  if (!parse_prefill_attention(pfa, c.prefill_attention)) {
    s.fail("prefill_attention", "expected auto, stream or combine, found \"" + pfa + "\"");
  }
  c.link_bandwidth =
      s.bandwidth("link_bandwidth", {.doc = "activation link from one system to the next (each direction)",
                                     .def = "1.2 Tb/s",
                                     .min = 0,
                                     .min_exclusive = true});
  c.link_latency = s.duration(
      "link_latency",
      {.doc = "one-way latency of that link (first byte out to first byte in)", .def = "10 us", .min = 0});
  c.microbatch = static_cast<std::uint32_t>(s.integer(
      "microbatch", {.doc = "sequences per microbatch: a batch is split into microbatches that flow "
                            "through the layer regions as a pipeline",
                     .def = "1",
                     .min = 1,
                     .max = 1 << 20}));
  c.prefill_chunk_tokens = static_cast<std::uint32_t>(s.integer(
      "prefill_chunk_tokens",
      {.doc = "a prompt is cut into pieces of this many tokens, each its own microbatch, so that its tokens "
              "flow through the layer regions as a pipeline (piece k attends to the pieces before it)",
       .def = "1",
       .min = 1,
       .max = 1 << 20}));
  c.weight_sram_share =
      s.number("weight_sram_share",
               {.doc = "auto grids: the smallest P x Q grid whose fullest PE holds its weight tile, "
                       "x segment and accumulators within this share of its SRAM",
                .def = "0.9",
                .min = 0,
                .max = 1,
                .min_exclusive = true});
  c.reserved_sram_bytes =
      s.size("reserved_sram", {.doc = "SRAM per PE kept for program, stack and activations "
                                      "in flight: never weights or KV cache",
                               .def = "2 KiB",
                               .min = 0})
          .bytes;
  c.gemm_vectors = static_cast<std::uint32_t>(
      s.integer("gemm_vectors",
                {.doc = "tokens whose x segments and accumulators each weight PE holds at once (counted "
                        "in the weight grids' SRAM); a microbatch of more tokens runs its GEMMs in passes "
                        "of this many, one after another",
                 .def = "1",
                 .min = 1,
                 .max = 4096}));
  c.vocab_slices = static_cast<std::uint32_t>(s.integer(
      "vocab_slices", {.doc = "the embedding table and the LM head are cut by vocabulary rows into this many "
                              "grids (each its own reduction chains), which compute at once",
                       .def = "8",
                       .min = 1,
                       .max = 4096}));
  config::Section grids = s.section("grids", "GEMV grid per weight kind: `auto` or \"PxQ\"", true);
  for (std::string_view kind : kGridKinds) {
    const std::string text =
        grids.string(kind, {.doc = "P x Q grid of each weight of this kind (P splits the output features, Q "
                                   "the input features), or `auto`",
                            .def = "auto"});
    const GridShape g = parse_grid(grids, kind, text);
    if (!g.is_auto()) c.grids[std::string(kind)] = g;
  }
  config::Section att = s.section("attention", "KV cache mapping of the attention kernel", true);
  c.tokens_per_pe = static_cast<std::uint32_t>(
      att.integer("tokens_per_pe", {.doc = "cached tokens of one KV head per PE (at least; raised for a pass "
                                           "whose KV would need more PEs than the region has)",
                                    .def = "16",
                                    .min = 1,
                                    .max = 65536}));
  c.attention_max_grid_cols = static_cast<std::uint32_t>(
      att.integer("max_grid_cols", {.doc = "PE columns per KV-head row; longer contexts wrap onto more rows",
                                    .def = "256",
                                    .min = 1,
                                    .max = 65535}));
  c.attention_combine = att.enumeration<Reduction>(
      "combine",
      {.doc = "combine of the partial results along a head's PEs: chain (pipelined) or tree", .def = "chain"},
      {{"chain", Reduction::kChain}, {"tree", Reduction::kTree}});
  c.attention_block_grain = static_cast<std::uint32_t>(att.integer(
      "block_grain",
      {.doc = "simulation choice: a decode over more than this many token blocks per head is "
              "simulated at the neighbouring multiples of it (doubled with each doubling of the "
              "blocks past 32 of it; never across a row wrap) and interpolated linearly in between, "
              "or taken from the ends of a plateau of equal times "
              "(0: every block count simulated; error bound in docs/wse_mesh.md)",
       .def = "16",
       .min = 0,
       .max = 65536}));
  c.attention_tiled = att.enumeration<bool>(
      "fidelity",
      {.doc = "fidelity of the decode attention kernel: tiled (nodes of wafer.fabric.tile x tile PEs when "
              "the tile is above 1; within the bound of docs/wse_mesh.md, \"Attention on tiled fidelity\") "
              "or per_pe (a router per PE at every tile)",
       .def = "tiled"},
      {{"tiled", true}, {"per_pe", false}});
  c.kv_layout = att.enumeration<KvLayout>(
      "kv_layout",
      {.doc =
           "how a batch's KV heads share the region's PEs: balanced (the fewest tokens per PE with which "
           "the batch fits, kept while it fits; a change shifts the cache along each head's PEs, timed) or "
           "doubling (ablation: tokens_per_pe doubled until the batch fits, re-chosen every pass, moves "
           "untimed)",
       .def = "balanced"},
      {{"balanced", KvLayout::kBalanced}, {"doubling", KvLayout::kDoubling}});
  c.kv_layout_steps = static_cast<std::uint32_t>(att.integer(
      "layout_steps",
      {.doc = "balanced layout: 0 = exactly the fewest tokens per PE that fit; n > 0 = headroom, the next "
              "of n values per doubling (4: 16, 20, 24, 28, 32, 40, ...), so that a growing batch moves its "
              "cache less often",
       .def = "0",
       .min = 0,
       .max = 1024}));
  return c;
}

namespace {

// The power of two at or above the batch's longest context (new tokens included): the
// bucket for which a layout is chosen.
std::uint64_t context_bucket(const std::vector<workloads::Sequence>& batch) {
  std::uint64_t context = 1;
  for (const auto& s : batch) context = std::max(context, s.offset + s.new_tokens);
  std::uint64_t bucket = 1;
  while (bucket < context) bucket *= 2;
  return bucket;
}

// The least tokens-per-PE value a balanced layout takes at or above t: with `steps` values
// per doubling, m x 2^e for m in [steps, 2 steps) (steps 4: ..., 16, 20, 24, 28, 32, 40,
// ...); t itself below `steps` or when steps is 0.
std::uint64_t layout_step(std::uint64_t t, std::uint32_t steps) {
  if (steps == 0 || t <= steps) return t;
  std::uint64_t scale = 1;
  while (std::uint64_t{steps} * scale * 2 <= t) scale *= 2;
  return ceil_div(t, scale) *
         scale;  // m = ceil(t / scale) <= 2 steps; 2 steps x scale is the next octave's first
}

}  // namespace

struct WaferDecoder::Impl {
  Impl(const WaferConfig& w, const DecodeConfig& c, const workloads::TransformerModel& m)
      : wafer(w),
        cfg(c),
        model(m),
        cache(w.kernels),
        passes(group.counter("passes", "passes", "forward passes run (decode steps and prefill batches)")),
        microbatches(
            group.counter("microbatches", "microbatches", "microbatches pipelined through the layers")),
        tokens(group.counter("tokens", "tokens", "tokens computed (new tokens of all sequences)")),
        reused(group.counter("kernels_reused", "kernels", "kernel results reused without simulating")),
        simulated(
            group.counter("kernels_simulated", "kernels", "kernels simulated (first use, or reuse off)")),
        simulated_s(group.scalar("simulated_s", "s", "simulated time of all passes")),
        floor_s(group.scalar("floor_s", "s", "physical floor of all passes (WaferFloor::step_s, summed)")),
        relayouts(group.counter("kv_relayouts", "passes",
                                "passes that first moved the KV cache into a new layout (balanced layout: "
                                "tokens per PE changed)")),
        memo_hits(group.counter("microbatches_reused", "microbatches",
                                "microbatches whose work was known from an earlier pass (one token per "
                                "sequence, same context blocks)")) {}

  WaferConfig wafer;
  DecodeConfig cfg;
  workloads::TransformerModel model;
  std::vector<LayerPlan> plans;
  std::vector<LayerRegion> regions;
  std::uint64_t kv_tokens = 0;
  KernelCache cache;
  std::unique_ptr<KernelTimer> timer;
  stats::Group group{"wafer_decoder"};
  stats::Counter& passes;
  stats::Counter& microbatches;
  stats::Counter& tokens;
  stats::Counter& reused;
  stats::Counter& simulated;
  stats::Scalar& simulated_s;
  stats::Scalar& floor_s;
  std::map<std::string, stats::Scalar*> reduction_kernels;  // GEMV kernels per chosen reduction
  std::map<std::string, stats::Scalar*> algorithm_kernels;  // GEMM kernels (m > 1) per algorithm taken
  std::map<std::string, stats::Scalar*>
      prefill_attention_kernels;                   // prefill attention kernels per kernel taken
  std::map<std::string, stats::Scalar*> kernel_s;  // critical-path time per kernel kind, all passes
  std::uint64_t reused_seen = 0, simulated_seen = 0;
  // Decode microbatches already costed, by what decides their work: the tokens per PE of
  // every layer's attention and, per sequence, the number of tokens_per_pe blocks its
  // context fills (the attention kernel's time depends on the block count only, and
  // every other kernel on the token count only). A decode step of the serving loop
  // differs from the last one by one token per sequence, so most microbatches are found
  // here without lowering or looking up any kernel. Off when kernel reuse is off.
  struct KeyHash {
    std::size_t operator()(const std::vector<std::uint64_t>& k) const {
      std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over the words
      for (std::uint64_t w : k) h = (h ^ w) * 1099511628211ULL;
      return static_cast<std::size_t>(h);
    }
  };
  std::unordered_map<std::vector<std::uint64_t>, MicrobatchWork, KeyHash> decode_memo;
  // relayout_cycles of one sequence by (cached tokens, from, to, column cap).
  mutable std::unordered_map<std::vector<std::uint64_t>, std::uint64_t, KeyHash> relayout_memo;
  static constexpr std::size_t kRelayoutMemoEntries = std::size_t{1} << 18;
  MoveMemo moves;
  stats::Counter& relayouts;
  stats::Counter& memo_hits;

  void place() {
    PlacementOptions opt = cfg.placement();
    opt.grid_quantum = wafer.tile;
    plans = place_model(wafer, opt, model);
    kv_tokens = std::numeric_limits<std::uint64_t>::max();
    for (const LayerPlan& p : plans) {
      regions.push_back(p.region);
      if (p.kv_bytes_per_token > 0)
        kv_tokens = std::min(kv_tokens, p.region.kv_capacity_bytes / p.kv_bytes_per_token);
    }
    if (kv_tokens == std::numeric_limits<std::uint64_t>::max()) kv_tokens = 0;
  }

  // The KV layout each class of layers had on the last pass (balanced layout): its tokens
  // per PE and the power-of-two bucket of the longest context it was chosen for.
  struct Layout {
    std::uint64_t tpp = 0;
    std::uint64_t bucket = 0;
  };
  std::map<std::pair<std::uint32_t, std::uint64_t>, Layout> layouts;  // by (window, region PEs)
  double relayout_s = 0.0;  // this pass: the slowest layer class's move into its new layout

  // Checks that the batch's KV cache fits every layer's region and sets the attention's
  // tokens per PE (each sequence's KV head takes ceil(tokens / tokens_per_pe) PEs of the
  // region; docs/wse_mesh.md, "KV layout"):
  //  - balanced: at least the fewest tokens per PE with which the batch's heads fit the
  //    region; under spread the fastest of that and tokens_per_pe / 4, / 2, x 1 above it.
  //    A class of layers keeps its layout while it fits and the longest context stays in
  //    its power-of-two bucket; a change is a move of the cache, timed (relayout_cycles).
  //  - doubling: tokens_per_pe (spread: the fastest of / 4, / 2, x 1), doubled until the
  //    batch fits, afresh every pass, moves untimed.
  void prepare(const std::vector<workloads::Sequence>& batch) {
    const std::uint64_t heads = model.attention == workloads::AttentionKind::mla ? 1 : model.kv_heads;
    const bool balanced = cfg.kv_layout == KvLayout::kBalanced;
    // Only decode steps keep (and move) the layout: a prefill pass writes its prompt's KV
    // where the decode layout puts it, and its own attention runs at the layout chosen
    // for it alone, leaving the kept one as it was.
    const bool decode_pass = std::all_of(batch.begin(), batch.end(), [](const workloads::Sequence& s) {
      return s.new_tokens == 1 && s.offset > 0;
    });
    relayout_s = 0.0;
    // The layouts this pass takes, kept only once the batch is known to fit (a refused
    // batch moves nothing).
    std::vector<std::pair<std::pair<std::uint32_t, std::uint64_t>, Layout>> taken;
    double moving_s = 0.0;
    // Layers with the same window keep the same tokens of every sequence, and layers
    // whose regions have as many PEs then need the same tokens per PE: worked out once
    // per such class of layers (every layer of a dense model is one class).
    struct Class {
      std::uint32_t window;
      std::uint64_t pes;
      std::uint64_t tokens;  // cached tokens of the batch
      std::uint32_t tpp;
    };
    std::vector<Class> classes;
    std::vector<std::uint64_t> cached;
    cached.reserve(batch.size());
    const std::uint64_t bucket = context_bucket(batch);
    for (std::size_t l = 0; l < plans.size(); ++l) {
      LayerPlan& p = plans[l];
      const std::uint64_t pes = std::uint64_t{p.region.width} * p.region.height;
      auto c = std::find_if(classes.begin(), classes.end(),
                            [&](const Class& k) { return k.window == p.window_tokens && k.pes == pes; });
      if (c == classes.end()) {
        cached.clear();
        std::uint64_t total = 0, longest = 1;
        for (const auto& s : batch) {
          cached.push_back(model.kv_tokens(static_cast<std::uint32_t>(l), s.offset + s.new_tokens));
          total += cached.back();
          longest = std::max(longest, cached.back());
        }
        const auto need = [&](std::uint64_t t) {
          std::uint64_t n = 0;
          for (std::uint64_t k : cached) n += heads * ceil_div(std::max<std::uint64_t>(k, 1), t);
          return n;
        };
        std::uint64_t tpp = cfg.tokens_per_pe;
        const auto key = std::make_pair(p.window_tokens, pes);
        const auto kept = balanced && decode_pass ? layouts.find(key) : layouts.end();
        // The kept layout still fits (at least the fewest tokens per PE the search below
        // would find: need falls as t grows) and its bucket is this pass's: it stays, and
        // the search is skipped.
        if (kept != layouts.end() && kept->second.bucket == bucket &&
            (kept->second.tpp >= longest || need(kept->second.tpp) <= pes)) {
          tpp = kept->second.tpp;
        } else if (balanced) {
          // The fewest tokens per PE with which the batch fits (need falls as t grows; at
          // the longest context every head takes one PE, the least it can).
          std::uint64_t lo = 1, hi = longest;
          while (lo < hi) {
            const std::uint64_t mid = lo + (hi - lo) / 2;
            if (need(mid) <= pes)
              hi = mid;
            else
              lo = mid + 1;
          }
          // Headroom (layout_steps > 0): the next value of the layout's steps, so that a
          // growing batch moves the cache less often; never more than a PE's share of the
          // region's KV bytes.
          const std::uint64_t share = p.kv_bytes_per_token > 0
                                          ? p.region.kv_capacity_bytes / pes / (p.kv_bytes_per_token / heads)
                                          : lo;
          const std::uint64_t fit = std::max(lo, std::min(layout_step(lo, cfg.kv_layout_steps), share));
          tpp = std::max(fit, p.spread ? std::max<std::uint64_t>(1, cfg.tokens_per_pe / 4) : tpp);
          // Not kept (it no longer fits, or the bucket changed): a new layout.
          if (p.spread)
            tpp = fastest_tokens_per_pe(l, batch, tpp, std::max<std::uint64_t>(tpp, cfg.tokens_per_pe));
          if (kept != layouts.end() && kept->second.tpp != tpp) {
            moving_s =
                std::max(moving_s, static_cast<double>(relayout_cycles(p, batch, l, kept->second.tpp, tpp)) /
                                       wafer.clock.hz);
          }
          if (decode_pass) taken.emplace_back(key, Layout{tpp, bucket});
        } else {
          if (p.spread) {
            // Spread: the KV is dealt over more of the region when that is faster: the
            // fastest of tokens_per_pe / 4, / 2 and tokens_per_pe (each at least what fits).
            tpp = std::max<std::uint64_t>(1, cfg.tokens_per_pe / 4);
            while (need(tpp) > pes && tpp < (1ULL << 30)) tpp *= 2;
            tpp = fastest_tokens_per_pe(l, batch, tpp, std::max<std::uint64_t>(tpp, cfg.tokens_per_pe));
          }
          while (need(tpp) > pes && tpp < (1ULL << 30)) tpp *= 2;
        }
        classes.push_back({p.window_tokens, pes, total, static_cast<std::uint32_t>(tpp)});
        c = classes.end() - 1;
      }
      const std::uint64_t bytes = c->tokens * p.kv_bytes_per_token;
      if (bytes > p.region.kv_capacity_bytes) {
        throw CapacityError("decode: the KV cache of the batch in layer " + std::to_string(l) + " (" +
                                bytes_text(bytes) + ") exceeds what its region holds (" +
                                bytes_text(p.region.kv_capacity_bytes) + "); short by " +
                                bytes_text(bytes - p.region.kv_capacity_bytes) +
                                ". Admit less context (kv_capacity_bytes) or set more decode.wafers.",
                            bytes - p.region.kv_capacity_bytes);
      }
      p.attention_tokens_per_pe = c->tpp;
    }
    for (const auto& [key, layout] : taken) layouts[key] = layout;
    relayout_s = moving_s;
  }

  // Cycles to move layer l's cached KV of the batch from a layout of `from` tokens per PE
  // into one of `to` (balanced layout; docs/wse_mesh.md, "KV layout"). The sequences'
  // heads own disjoint PEs and move at once; the slowest sets the time. A head's tokens
  // stay in order along its chain of PEs (block b at row b / Q, column b mod Q), so the
  // boundary after chain position k is crossed by |min(N, k from) - min(N, k to)| tokens,
  // each 2 ceil(D / per-wavelet) wavelets of K and V, one wavelet a cycle on each link
  // across the cut: Q + 1 links where both layouts span two rows or more (the row-major
  // prefix's staircase: Q column links and one row link), else the one row link. A PE
  // stores the tokens it receives (those of its new block it did not hold) as the append
  // does (K strided at SIMD 1, V contiguous), and the farthest token travels its
  // Manhattan distance:
  //   cycles = max(ceil(busiest boundary x wavelets per token / links across it),
  //                most received x store cycles per token)
  //            + farthest hops x hop latency   (0 when nothing moves).
  std::uint64_t relayout_cycles(const LayerPlan& p, const std::vector<workloads::Sequence>& batch,
                                std::size_t l, std::uint64_t from, std::uint64_t to) const {
    const std::uint64_t D = model.attention == workloads::AttentionKind::mla
                                ? std::uint64_t{model.kv_lora_rank} + model.qk_rope_head_dim
                                : model.head_dim;
    const auto kv_bytes = static_cast<std::uint32_t>(workloads::bytes_per_value(model.kv_dtype));
    const std::uint64_t wavelets = kv_token_wavelets(D, kv_bytes);
    const std::uint64_t store = kv_token_store_cycles(wafer.pe, D, kv_bytes);  // one token's K and V stored
    const std::uint64_t cols_cap =
        std::min<std::uint64_t>(cfg.attention_max_grid_cols, std::max<std::uint32_t>(1, p.region.width));
    const std::uint64_t small = std::min(from, to), large = std::max(from, to);
    // One sequence's cycles, a function of its cached tokens n alone here (from, to, the
    // column cap and the token's wavelets and store cycles are the call's): kept across
    // layers and passes, as its loops walk every block of a long context.
    const auto one = [&](std::uint64_t n) -> std::uint64_t {
      // The crossing count rises while k x large < N and falls after: its peak is at
      // k = floor(N / large) or the next k.
      std::uint64_t cross = 0;
      for (const std::uint64_t k : {n / large, n / large + 1}) {
        cross = std::max(cross, std::min(n, k * large) - std::min(n, k * small));
      }
      const std::uint64_t q_from = std::min(ceil_div(n, from), cols_cap),
                          q_to = std::min(ceil_div(n, to), cols_cap);
      const auto row_col = [](std::uint64_t block, std::uint64_t q) {
        return std::make_pair(block / q, block % q);
      };
      const auto dist = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : b - a; };
      std::uint64_t received = 0;
      for (std::uint64_t j = 0; j * to < n; ++j) {
        const std::uint64_t a = j * to, b = std::min(n, a + to);
        const bool same_pe = row_col(j, q_from) == row_col(j, q_to);
        const std::uint64_t lo = std::max(a, j * from), hi = std::min(b, (j + 1) * from);
        received = std::max(received, (b - a) - (same_pe && hi > lo ? hi - lo : 0));
      }
      if (cross == 0 && received == 0) return 0;
      // The farthest token: displacements change only at block starts, so the first and
      // last token of every block of the finer layout cover them all.
      std::uint64_t hops = 0;
      for (std::uint64_t i = 0; i < n; i += small) {
        for (const std::uint64_t t : {i, std::min(n - 1, i + small - 1)}) {
          const auto [r0, c0] = row_col(t / from, q_from);
          const auto [r1, c1] = row_col(t / to, q_to);
          hops = std::max(hops, dist(r0, r1) + dist(c0, c1));
        }
      }
      const bool rows = ceil_div(n, from) > q_from && ceil_div(n, to) > q_to;
      const std::uint64_t links = rows ? std::min(q_from, q_to) + 1 : 1;
      return std::max(ceil_div(cross * wavelets, links), received * store) +
             hops * wafer.fabric.hop_latency_cycles;
    };
    std::uint64_t worst = 0;
    for (const auto& s : batch) {
      const std::uint64_t n =
          model.kv_tokens(static_cast<std::uint32_t>(l), s.offset);  // cached before this pass
      if (n == 0) continue;
      std::vector<std::uint64_t> key{n, from, to, cols_cap};
      if (relayout_memo.size() >= kRelayoutMemoEntries) relayout_memo.clear();  // bounded host memory
      auto it = relayout_memo.find(key);
      if (it == relayout_memo.end()) it = relayout_memo.emplace(std::move(key), one(n)).first;
      worst = std::max(worst, it->second);
    }
    return worst;
  }

  // The tokens per PE, from `lo` doubling up to `hi`, at which layer l's attention of the
  // batch's longest sequence (a decode of its context) is fastest; remembered per layer
  // window, region size and power-of-two bucket of that context.
  std::map<std::vector<std::uint64_t>, std::uint64_t> tpp_choice;
  std::uint64_t fastest_tokens_per_pe(std::size_t l, const std::vector<workloads::Sequence>& batch,
                                      std::uint64_t lo, std::uint64_t hi) {
    if (lo >= hi) return lo;
    const std::uint64_t bucket = context_bucket(batch);
    LayerPlan& p = plans[l];
    const std::vector<std::uint64_t> key = {p.window_tokens, std::uint64_t{p.region.width} * p.region.height,
                                            bucket, lo, hi};
    if (const auto it = tpp_choice.find(key); it != tpp_choice.end()) return it->second;
    const workloads::OperatorGraph g = workloads::lower(model, {workloads::Sequence{1, bucket, false}});
    const workloads::Operator* att = nullptr;
    for (const auto& op : g.ops) {
      if (op.kind == workloads::OpKind::attention && op.layer == static_cast<std::int32_t>(l)) att = &op;
    }
    std::uint64_t best = lo;
    if (att != nullptr) {
      const std::uint32_t kept = p.attention_tokens_per_pe;
      std::uint64_t best_cycles = UINT64_MAX;
      // A candidate whose floor (KernelTimer::attention_floor: a full block's local work,
      // which grows with t) cannot beat the best time found is not simulated, and neither
      // is any larger one: ties keep the smaller t, so the choice is the one simulating
      // every candidate would make (MLA's latent heads are not bounded this way).
      const bool bounded = model.attention != workloads::AttentionKind::mla;
      for (std::uint64_t t = lo; t <= hi; t *= 2) {
        p.attention_tokens_per_pe = static_cast<std::uint32_t>(t);
        if (bounded && best_cycles != UINT64_MAX) {
          const std::uint64_t floor = timer->attention_floor(*att, p);
          if (floor > 0 && floor >= best_cycles) break;
        }
        std::uint64_t cycles = UINT64_MAX;
        try {
          cycles = timer->time(*att, p).cycles;
        } catch (const CapacityError&) {
          continue;
        }
        if (cycles < best_cycles) {
          best_cycles = cycles;
          best = t;
        }
      }
      p.attention_tokens_per_pe = kept;
    }
    tpp_choice.emplace(key, best);
    return best;
  }

  std::uint64_t choices_seen = KernelTimer::kChoicesUnknown;
  // The previous pass's pipeline, when every microbatch of it was memoised work.
  bool last_pipeline_valid = false;
  std::vector<const MicrobatchWork*> last_pipeline_work;
  WaferRunResult last_pipeline;
  // Sets the statistics of the kernels' choices from the timer's tallies.
  void update_choice_stats() {
    // Each tally's count of distinct kernels per choice, as a scalar "<prefix><choice>"
    // made the first time that choice is seen.
    const auto tally = [&](std::map<std::string, stats::Scalar*>& scalars,
                           const std::map<std::string, std::uint64_t>& n, const std::string& prefix,
                           const std::string& description) {
      for (const auto& [name, count] : n) {
        auto it = scalars.find(name);
        if (it == scalars.end()) {
          it = scalars.emplace(name, &group.scalar(prefix + name, "kernels", description + name)).first;
        }
        it->second->set(static_cast<double>(count));
      }
    };
    tally(reduction_kernels, timer->reductions_chosen(), "gemv_reduction_",
          "distinct GEMV kernels whose fastest reduction was ");
    // A GEMM kernel counts under the algorithm its latest timing took (an ablation that
    // switches decode.gemm_algorithm moves kernels from one count to the other).
    for (auto& [name, scalar] : algorithm_kernels) scalar->set(0.0);
    tally(algorithm_kernels, timer->gemm_algorithms_chosen(), "gemm_algorithm_",
          "distinct GEMM kernels of more than one token timed as ");
    // A prefill attention kernel counts under the kernel its latest timing took.
    for (auto& [name, scalar] : prefill_attention_kernels) scalar->set(0.0);
    tally(prefill_attention_kernels, timer->prefill_attention_chosen(), "prefill_attention_",
          "distinct prefill attention kernels (chunks of more than one token) timed as ");
  }

  // Prefill sequences cut into pieces of prefill_chunk_tokens, in order (piece k of a
  // prompt at offset + k x chunk; only a prompt's last piece produces logits).
  std::vector<workloads::Sequence> pieces(const std::vector<workloads::Sequence>& batch) const {
    std::vector<workloads::Sequence> out;
    const std::uint64_t c = cfg.prefill_chunk_tokens;
    for (const auto& s : batch) {
      if (s.new_tokens <= c) {
        out.push_back(s);
        continue;
      }
      for (std::uint64_t done = 0; done < s.new_tokens; done += c) {
        const std::uint64_t n = std::min(c, s.new_tokens - done);
        // (A verification pass's pieces each produce logits: logits_all.)
        out.push_back(
            {n, s.offset + done, s.logits && (s.logits_all || done + n == s.new_tokens), s.logits_all});
      }
    }
    return out;
  }

  WaferRunResult run(const std::vector<workloads::Sequence>& request_batch) {
    if (request_batch.empty()) throw std::invalid_argument("decode: an empty batch");
    prepare(request_batch);
    const std::vector<workloads::Sequence> batch = pieces(request_batch);
    // The part of a memo key every microbatch of this pass shares: the tokens per PE of
    // the layers. When every layer has the same (the usual case), the blocks of a
    // context are the same in every layer (a sliding layer's min(context, window) fills
    // ceil(min(...) / t) = min(ceil(context / t), ceil(window / t)) blocks, a function of
    // the former): one block count per sequence suffices.
    const bool uniform = std::all_of(plans.begin(), plans.end(), [&](const LayerPlan& p) {
      return p.attention_tokens_per_pe == plans.front().attention_tokens_per_pe;
    });
    std::vector<std::uint64_t> key_prefix;
    if (uniform) {
      key_prefix.push_back(plans.front().attention_tokens_per_pe);
    } else {
      key_prefix.push_back(0);
      for (const LayerPlan& p : plans) key_prefix.push_back(p.attention_tokens_per_pe);
    }
    std::vector<MicrobatchWork> fresh;  // work not kept in the memo
    fresh.reserve(ceil_div(batch.size(), cfg.microbatch));
    std::vector<const MicrobatchWork*> work;
    std::uint64_t kv_read = 0, kv_written = 0;
    std::vector<std::uint64_t> key;  // reused: a memo hit allocates nothing
    for (std::size_t i = 0; i < batch.size(); i += cfg.microbatch) {
      const std::size_t end = std::min(batch.size(), i + cfg.microbatch);
      const auto first = batch.begin() + static_cast<std::ptrdiff_t>(i);
      const auto last = batch.begin() + static_cast<std::ptrdiff_t>(end);
      const auto seqs_of = [&] { return std::vector<workloads::Sequence>(first, last); };
      bool one_token = cache.enabled();
      for (auto s = first; s != last; ++s) one_token = one_token && s->new_tokens == 1 && s->offset > 0;
      if (one_token) {
        key.assign(key_prefix.begin(), key_prefix.end());
        for (auto it = first; it != last; ++it) {
          const workloads::Sequence& s = *it;
          key.push_back(s.logits ? 1 : 0);
          for (const LayerPlan& p : plans) {
            const std::uint64_t t = std::max<std::uint64_t>(1, p.attention_tokens_per_pe);
            key.push_back(ceil_div(s.offset + s.new_tokens, t));
            if (uniform) break;
          }
          // The KV bytes of this sequence itself (a reused microbatch's are those of the
          // first context in its blocks): it reads its whole cache, the new token
          // included, and writes the new token's K and V (operators.h).
          kv_read += model.kv_bytes(s.offset + 1);
          kv_written += model.kv_bytes(1);
        }
        auto it = decode_memo.find(key);
        if (it == decode_memo.end()) {
          it = decode_memo
                   .emplace(key, microbatch_work(plans, workloads::lower(model, seqs_of()), *timer,
                                                 wafer.clock.hz, wafer.pe.sram_bytes))
                   .first;
        } else {
          memo_hits.add();
        }
        work.push_back(&it->second);
      } else {
        fresh.push_back(microbatch_work(plans, workloads::lower(model, seqs_of()), *timer, wafer.clock.hz,
                                        wafer.pe.sram_bytes));
        work.push_back(&fresh.back());
        kv_read += fresh.back().kv_bytes_read;
        kv_written += fresh.back().kv_bytes_written;
      }
    }
    ScheduleOptions o;
    o.clock_hz = wafer.clock.hz;
    o.link_bandwidth_bytes_per_s = cfg.link_bandwidth.bytes_per_s;
    o.link_latency_s = cfg.link_latency.seconds;
    o.wafers = cfg.wafers;
    // The rectangle of each wafer in use (decode.region, or the whole wafer).
    const std::uint64_t used_w = cfg.region.is_auto() ? wafer.width : cfg.region.cols;
    const std::uint64_t used_h = cfg.region.is_auto() ? wafer.height : cfg.region.rows;
    o.pes_per_wafer = used_w * used_h;
    o.link_directions_per_wafer = 2 * ((used_w - 1) * used_h + used_w * (used_h - 1));
    o.macs_per_cycle_per_pe = wafer.pe.simd_fp16_fmac;
    o.sram_read_bytes_per_cycle = std::uint64_t{wafer.pe.sram_read_ports} * wafer.pe.sram_port_bits / 8;
    o.sram_write_bytes_per_cycle = std::uint64_t{wafer.pe.sram_write_ports} * wafer.pe.sram_port_bits / 8;
    o.hop_latency_cycles = wafer.fabric.hop_latency_cycles;
    o.sram_port_bytes_per_cycle =
        std::uint64_t{wafer.pe.sram_read_ports + wafer.pe.sram_write_ports} * wafer.pe.sram_port_bits / 8;
    o.hidden = model.hidden;
    o.activation_bytes = workloads::bytes_per_value(model.activation_dtype);
    // A pass whose microbatches are the same memoised work as the previous pass's (the
    // usual decode step while no context crosses a block boundary) composes to the same
    // pipeline: its result is the previous one's.
    WaferRunResult r;
    if (fresh.empty() && last_pipeline_valid && work == last_pipeline_work) {
      r = last_pipeline;
    } else {
      r = run_pipeline(plans, work, *timer, o, moves);
      last_pipeline_valid = fresh.empty();
      if (last_pipeline_valid) {
        last_pipeline_work = work;
        last_pipeline = r;
      }
    }
    if (relayout_s > 0.0) {
      // The cache moves into this pass's layout before its first microbatch (every layer
      // region at once): the pass starts that much later.
      r.seconds += relayout_s;
      r.kernel_seconds["kv_relayout"] += relayout_s;
      for (double& t : r.layer_done_s) t += relayout_s;
      r.floor_ratio = r.floor.step_s > 0.0 ? r.seconds / r.floor.step_s : 0.0;
      relayouts.add();
    }
    r.kv_bytes_read = kv_read;
    r.kv_bytes_written = kv_written;

    passes.add();
    microbatches.add(work.size());
    for (const auto& s : request_batch) tokens.add(s.new_tokens);
    reused.add(timer->reused() - reused_seen);
    simulated.add(timer->simulated() - simulated_seen);
    reused_seen = timer->reused();
    simulated_seen = timer->simulated();
    simulated_s.set(simulated_s.value() + r.seconds);
    floor_s.set(floor_s.value() + r.floor.step_s);
    // The kernels' choices (reductions, GEMM algorithms, prefill attention kernels), read
    // again only when the timer says they may have changed.
    const std::uint64_t choices = timer->choices_version();
    const bool read_choices = choices == KernelTimer::kChoicesUnknown || choices != choices_seen;
    choices_seen = choices;
    if (read_choices) update_choice_stats();
    for (const auto& [kind, s] : r.kernel_seconds) {
      auto it = kernel_s.find(kind);
      if (it == kernel_s.end()) {
        std::string name = "critical_" + kind + "_s";
        std::replace(name.begin(), name.end(), '.', '_');
        it = kernel_s
                 .emplace(kind,
                          &group.scalar(name, "s", "time of " + kind + " on the critical path, all passes"))
                 .first;
      }
      it->second->set(it->second->value() + s);
    }
    return r;
  }
};

WaferDecoder::WaferDecoder(const WaferConfig& wafer, const DecodeConfig& cfg,
                           const workloads::TransformerModel& model)
    : WaferDecoder(wafer, cfg, model, nullptr) {}

WaferDecoder::WaferDecoder(const WaferConfig& wafer, const DecodeConfig& cfg,
                           const workloads::TransformerModel& model, std::unique_ptr<KernelTimer> timer)
    : impl_(std::make_unique<Impl>(wafer, cfg, model)) {
  if (cfg.microbatch == 0) throw std::invalid_argument("decode.microbatch must be at least 1");
  impl_->place();
  if (timer) {
    impl_->timer = std::move(timer);
  } else {
    SimulatedKernelOptions o;
    o.placement = cfg.placement();
    o.attention_max_grid_cols = cfg.attention_max_grid_cols;
    o.attention_combine = cfg.attention_combine;
    o.attention_block_grain = cfg.attention_block_grain;
    o.attention_tiled = cfg.attention_tiled;
    o.accumulate = cfg.accumulate;
    o.reduction_auto = cfg.reduction_auto;
    o.reduction = cfg.reduction;
    o.gemm_algorithm = cfg.gemm_algorithm;
    o.prefill_attention = cfg.prefill_attention;
    impl_->timer = std::make_unique<SimulatedKernels>(impl_->wafer, o, impl_->cache);
  }
}

WaferDecoder::~WaferDecoder() = default;

std::uint64_t WaferDecoder::kv_capacity_tokens() const { return impl_->kv_tokens; }
std::uint64_t WaferDecoder::kv_capacity_bytes() const {
  // In the units of model.kv_bytes(context), summed over requests: the full-attention
  // layers bind (a sliding layer keeps at most its window of each sequence), so the
  // limit is the tokens every layer holds times those layers' bytes per token.
  std::uint64_t full = 0;
  for (const LayerPlan& p : impl_->plans) full += p.window_tokens == 0 ? 1 : 0;
  if (full == 0) full = impl_->plans.size();
  return impl_->kv_tokens * impl_->model.kv_bytes_per_token_per_layer() * full;
}
const std::vector<LayerRegion>& WaferDecoder::regions() const { return impl_->regions; }
const std::vector<LayerPlan>& WaferDecoder::plans() const { return impl_->plans; }

WaferRunResult WaferDecoder::decode_step(const std::vector<std::uint64_t>& contexts) {
  std::vector<workloads::Sequence> batch;
  for (std::uint64_t c : contexts) {
    if (c == 0) throw std::invalid_argument("decode_step: a sequence with an empty context");
    batch.push_back({1, c, true});
  }
  return impl_->run(batch);
}

WaferRunResult WaferDecoder::prefill(const std::vector<std::uint64_t>& chunk_tokens,
                                     const std::vector<std::uint64_t>& offsets) {
  if (!offsets.empty() && offsets.size() != chunk_tokens.size()) {
    throw std::invalid_argument("prefill: offsets and chunk_tokens differ in length");
  }
  std::vector<workloads::Sequence> batch;
  for (std::size_t i = 0; i < chunk_tokens.size(); ++i) {
    batch.push_back({chunk_tokens[i], offsets.empty() ? 0 : offsets[i], true});
  }
  return impl_->run(batch);
}

WaferRunResult WaferDecoder::forward(const std::vector<workloads::Sequence>& batch) {
  return impl_->run(batch);
}

void WaferDecoder::reset_kv_layout() { impl_->layouts.clear(); }

void WaferDecoder::set_gemm_algorithm(GemmAlgorithm a) {
  impl_->cfg.gemm_algorithm = a;
  impl_->timer->set_gemm_algorithm(a);
  impl_->decode_memo.clear();  // reused microbatches were timed with the other algorithm
  impl_->last_pipeline_valid = false;
}

void WaferDecoder::set_prefill_attention(PrefillAttention a) {
  impl_->cfg.prefill_attention = a;
  impl_->timer->set_prefill_attention(a);
  impl_->decode_memo.clear();  // reused microbatches were timed with the other kernel
  impl_->last_pipeline_valid = false;
}

void WaferDecoder::set_prefill_chunk_tokens(std::uint32_t tokens) {
  if (tokens == 0) throw std::invalid_argument("decode.prefill_chunk_tokens must be at least 1");
  impl_->cfg.prefill_chunk_tokens = tokens;
}

const stats::Group& WaferDecoder::stats() const { return impl_->group; }

}  // namespace wse::wafer
