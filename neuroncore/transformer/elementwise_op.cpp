#include "neuroncore/transformer/elementwise_op.h"

#include <algorithm>
#include <vector>

#include "neuroncore/transformer/kernel_builders.h"
#include "neuroncore/transformer/operator_keys.h"
#include "neuroncore/transformer/token_sampling.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

EngineBusy ElementwiseMapping::run_elementwise(const Operator& op) {
  const std::uint64_t p = ctx_.cfg().physical_cores();
  const std::uint64_t values = ceil_div(op.elements, p);
  if (values == 0) return {};
  const std::uint64_t passes =
      std::max<std::uint64_t>(1, op.vector_ops / std::max<std::uint64_t>(op.elements, 1));
  // The exp of a softmax or a SiLU runs on the scalar (activation) engine; the rest on the
  // vector engine.
  const bool scalar_pass = op.kind == OpKind::activation || op.kind == OpKind::router;
  const std::uint64_t vector_passes = scalar_pass ? passes - 1 : passes;
  const double in_per_value = static_cast<double>(op.input_bytes) / static_cast<double>(op.elements);
  const double out_per_value = static_cast<double>(op.output_bytes) / static_cast<double>(op.elements);
  const std::uint64_t tile = ctx_.cfg().elementwise_tile;
  const std::uint64_t tiles = ceil_div(values, tile);
  std::vector<Program> programs(ctx_.sim_cores());
  for (std::uint32_t core = 0; core < ctx_.sim_cores(); ++core) {
    Program& prog = programs[core];
    DmaEmitter dma{prog, ctx_.chip().core.dma.queues, 0, ctx_.base(core), ctx_.chip().hbm.capacity().bytes};
    std::vector<Program::Id> done_with(2, 0);  // last reader of each input buffer
    for (std::uint64_t i = 0; i < tiles; ++i) {
      const std::uint64_t v = std::min(tile, values - i * tile);
      std::vector<Program::Id> deps;
      if (i >= 2) deps.push_back(done_with[i % 2]);
      const auto in =
          dma.transfer(false, static_cast<std::uint64_t>(in_per_value * static_cast<double>(v)), deps);
      Program::Id last = 0;
      bool first = true;
      if (scalar_pass) {
        last = prog.elementwise(Engine::kScalar, v, DType::kBf16);
        depend_all(prog, last, in);
        first = false;
      }
      if (vector_passes > 0) {
        const Program::Id vec = prog.elementwise(Engine::kVector, v * vector_passes, DType::kBf16);
        if (first)
          depend_all(prog, vec, in);
        else
          prog.depend(vec, last);
        last = vec;
      }
      done_with[i % 2] = last;
      dma.transfer(true, static_cast<std::uint64_t>(out_per_value * static_cast<double>(v)), {last});
    }
  }
  return ctx_.run_programs(programs);
}

EngineBusy ElementwiseMapping::run_embedding(const Operator& op) {
  // The table rows of the core's tokens gathered into SBUF (row gathers coalesced into
  // pieces spread over the queues), then stored as the layer input.
  const std::uint64_t out = ceil_div(op.output_bytes, ctx_.cfg().physical_cores());
  std::vector<Program> programs(ctx_.sim_cores());
  for (std::uint32_t core = 0; core < ctx_.sim_cores(); ++core) {
    DmaEmitter dma{programs[core], ctx_.chip().core.dma.queues, 0, ctx_.base(core),
                   ctx_.chip().hbm.capacity().bytes};
    const auto loads = dma.transfer(false, out, {});
    dma.transfer(true, out, loads);
  }
  return ctx_.run_programs(programs);
}

EngineBusy ElementwiseMapping::run(const Operator& op) {
  return op.kind == OpKind::embedding ? run_embedding(op) : run_elementwise(op);
}

EngineBusy ElementwiseMapping::run_sampled(const Operator& op) {
  // An operator over the batch's M tokens has per-token values, passes and bytes: the
  // sample operators at M_s tokens are the same operator with every count scaled by M_s / M
  // (the final norm over the logit rows, outside the layers, is not over M: exact).
  const std::uint64_t m = ctx_.graph_tokens();
  const SampleInterval s = token_sample_interval(m, ctx_.cfg().token_grain);
  const bool embedding = op.kind == OpKind::embedding;
  const bool per_token = m > 0 && (op.layer >= 0 || embedding) && op.elements % m == 0 &&
                         op.vector_ops % m == 0 && op.input_bytes % m == 0 && op.output_bytes % m == 0 &&
                         (!embedding || op.weight_bytes % m == 0);
  if (ctx_.cfg().token_grain == 0 || !per_token || s.exact() || m < ctx_.cfg().token_grain) return run(op);
  auto sample = [&](std::uint64_t tokens) {
    Operator x = op;
    x.elements = op.elements / m * tokens;
    x.vector_ops = op.vector_ops / m * tokens;
    x.input_bytes = op.input_bytes / m * tokens;
    x.output_bytes = op.output_bytes / m * tokens;
    // The embedding gathers a table row per token; a norm's weights do not grow with M.
    if (embedding) x.weight_bytes = op.weight_bytes / m * tokens;
    return ctx_.cached(operator_key(x), [&] { return run(x); });
  };
  EngineBusy b = EngineBusy::interpolated(sample(s.lo), sample(s.hi), s.weight(m));
  b.flops = 0;  // no matmuls
  return b;
}

}  // namespace wse::neuron
