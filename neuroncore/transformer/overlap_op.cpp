#include "neuroncore/transformer/overlap_op.h"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "neuroncore/transformer/collective_op.h"
#include "neuroncore/transformer/elementwise_op.h"
#include "neuroncore/transformer/gemm_op.h"
#include "neuroncore/transformer/kernel_builders.h"
#include "neuroncore/transformer/operator_keys.h"
#include "neuroncore/transformer/token_sampling.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

std::uint64_t overlap_makespan(const std::vector<OverlapChunk>& chunks) {
  constexpr std::size_t kStages = 6;
  // The resource of each stage: 0 the chip, 1 the NeuronLink.
  constexpr std::array<std::size_t, kStages> resource{0, 0, 1, 0, 1, 0};
  const auto duration = [](const OverlapChunk& c, std::size_t stage) {
    switch (stage) {
      case 0:
        return c.gemm_ps;
      case 1:
        return c.rs_chip_ps;
      case 2:
        return c.rs_link_ps;
      case 3:
        return c.shard_ps;
      case 4:
        return c.ag_link_ps;
      default:
        return c.ag_chip_ps;
    }
  };
  std::vector<std::size_t> next(chunks.size(), 0);     // each chunk's next stage
  std::vector<std::uint64_t> ready(chunks.size(), 0);  // the end of its previous stage
  std::array<std::uint64_t, 2> free{0, 0};
  std::uint64_t end = 0;
  for (std::size_t left = chunks.size() * kStages; left > 0; --left) {
    // The stage that can start first (ties: the lower chunk); every other stage waiting
    // for the same resource starts no earlier, so committing it first is exact.
    std::size_t best = chunks.size();
    std::uint64_t best_start = 0;
    for (std::size_t k = 0; k < chunks.size(); ++k) {
      if (next[k] == kStages) continue;
      const std::uint64_t start = std::max(ready[k], free[resource[next[k]]]);
      if (best == chunks.size() || start < best_start) {
        best = k;
        best_start = start;
      }
    }
    const std::size_t stage = next[best]++;
    const std::uint64_t stop = best_start + duration(chunks[best], stage);
    free[resource[stage]] = stop;
    ready[best] = stop;
    end = std::max(end, stop);
  }
  return end;
}

std::ptrdiff_t OverlapMapping::segment(const std::vector<Operator>& ops, std::size_t from) const {
  const Operator& op = ops[from];
  if (!ctx_.cfg().overlap || ctx_.chips() <= 1 || ctx_.sim_cores() <= 1 || op.kind != OpKind::gemm ||
      !row_parallel(op) || op.count != 1 || op.m == 0) {
    return -1;
  }
  const std::uint64_t chunk = std::min(ctx_.cfg().overlap_chunk_tokens, ctx_.cfg().gemm_token_block);
  if (ceil_div(op.m, chunk) < 2) return -1;
  // The residual adds and norms right after it, over the same tokens (per-token counts):
  // they run on each chunk's shard between its reduce-scatter and its all-gather.
  const std::uint64_t m = op.m;
  std::size_t j = from + 1;
  while (j < ops.size() && (ops[j].kind == OpKind::residual_add || ops[j].kind == OpKind::norm) &&
         ops[j].layer == op.layer && ops[j].elements > 0 && ops[j].elements % m == 0 &&
         ops[j].vector_ops % m == 0 && ops[j].input_bytes % m == 0 && ops[j].output_bytes % m == 0) {
    ++j;
  }
  return static_cast<std::ptrdiff_t>(j - from - 1);
}

std::vector<OverlapChunk> OverlapMapping::pipeline(const std::vector<Operator>& ops, std::size_t from) {
  std::vector<OverlapChunk> pipeline;
  const std::ptrdiff_t shard = segment(ops, from);
  if (shard >= 0) run(ops, from, static_cast<std::size_t>(shard), &pipeline);
  return pipeline;
}

EngineBusy OverlapMapping::run(const std::vector<Operator>& ops, std::size_t from, std::size_t shard,
                               std::vector<OverlapChunk>* chunks_out) {
  const Operator& op = ops[from];
  const std::uint64_t k = ceil_div(op.k, ctx_.cfg().physical_cores());
  const std::uint64_t n = op.n;
  const DType t = chip_dtype(op.weight_dtype);
  const std::uint64_t row_bytes = op.n * workloads::bytes_per_value(op.activation_dtype);
  const std::uint64_t m = op.m;
  const std::uint64_t block = ctx_.cfg().gemm_token_block;
  const std::uint64_t chunks = ceil_div(m, std::min(ctx_.cfg().overlap_chunk_tokens, block));
  // Chunks of equal size (the first m mod chunks one row longer).
  const std::uint64_t q = m / chunks, longer = m % chunks;
  // The key of this segment's shape: everything but the token count.
  std::string key;
  {
    KeyWriter w{key};
    w << std::string_view("overlap|") << k << ',' << n << ',' << static_cast<std::uint64_t>(t) << ','
      << static_cast<std::uint64_t>(op.activation_dtype) << '|';
    for (std::size_t i = 1; i <= shard; ++i) {
      const Operator& e = ops[from + i];
      w << std::string_view(workloads::to_string(e.kind)) << ',' << e.elements / m << ',' << e.vector_ops / m
        << ',' << e.input_bytes / m << ',' << e.output_bytes / m << ',' << e.weight_bytes << ';';
    }
  }
  GemmMapping gemm(ctx_);
  CollectiveMapping collective(ctx_);
  ElementwiseMapping elementwise(ctx_);
  constexpr std::size_t kParts = 6;
  using Parts = std::array<EngineBusy, kParts>;  // the stages of OverlapChunk, in order
  auto parts_at = [&](std::uint64_t tokens) {
    Parts p;
    const std::uint64_t bytes = tokens * row_bytes;
    const std::string at = key + std::to_string(tokens) + '|';
    // The kernel a GEMM of this many rows runs as (GemmMapping::run), without its all-reduce.
    p[0] = ctx_.cached(at + "gemm", [&] {
      return gemm.streams_weights(k, tokens, t) ? gemm.streamed(n, k, tokens, t, 1)
                                                : gemm.piece(GemmShape{tokens, k, n, t});
    });
    p[1] = ctx_.cached(at + "rs_chip", [&] { return collective.in_chip_reduce_scatter(bytes); });
    p[2] = collective.link_collective(Collective::kReduceScatter, bytes);
    p[3] = ctx_.cached(at + "shard", [&] {
      EngineBusy b;
      for (std::size_t i = 1; i <= shard; ++i) {
        Operator x = ops[from + i];
        x.elements = x.elements / m * tokens;
        x.vector_ops = x.vector_ops / m * tokens;
        x.input_bytes = x.input_bytes / m * tokens;
        x.output_bytes = x.output_bytes / m * tokens;
        b += elementwise.run(x);
      }
      return b;
    });
    p[4] = collective.link_collective(Collective::kAllGather, bytes);
    p[5] = ctx_.cached(at + "ag_chip", [&] { return collective.in_chip_all_gather(bytes); });
    return p;
  };
  // A chunk's parts, interpolated between the sample points around its size (token_grain).
  auto parts_of = [&](std::uint64_t tokens) {
    const SampleInterval s = token_sample_interval(tokens, ctx_.cfg().token_grain);
    if (ctx_.cfg().token_grain == 0 || s.exact() || tokens < ctx_.cfg().token_grain) return parts_at(tokens);
    const SampleInterval clipped{s.lo, std::min(s.hi, block)};
    const Parts lo = parts_at(clipped.lo), hi = parts_at(clipped.hi);
    Parts p;
    for (std::size_t i = 0; i < kParts; ++i)
      p[i] = EngineBusy::interpolated(lo[i], hi[i], clipped.weight(tokens));
    return p;
  };
  auto stages = [](const Parts& p) {
    return OverlapChunk{p[0].elapsed_ps, p[1].elapsed_ps, p[2].elapsed_ps,
                        p[3].elapsed_ps, p[4].elapsed_ps, p[5].elapsed_ps};
  };
  EngineBusy total;
  std::vector<OverlapChunk> pipeline;
  auto add_chunks = [&](std::uint64_t tokens, std::uint64_t count) {
    if (count == 0) return;
    const Parts p = parts_of(tokens);
    for (const EngineBusy& b : p) {
      total += b.scaled(count);  // instructions and chip runs once: what was simulated
    }
    pipeline.insert(pipeline.end(), count, stages(p));
  };
  add_chunks(q + 1, longer);
  add_chunks(q, chunks - longer);
  // Busy times are the parts' sums; the time is the pipeline's.
  total.elapsed_ps = overlap_makespan(pipeline);
  total.flops = 2 * m * k * n * ctx_.sim_cores() * ctx_.chips();
  if (chunks_out != nullptr) *chunks_out = std::move(pipeline);
  return total;
}

}  // namespace wse::neuron
