#include "neuroncore/transformer/runtime_op.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "neuroncore/transformer/kernel_builders.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

namespace {

OperatorTime collective_time(std::string name, const CollectiveResult& r, const InstanceConfig& group) {
  OperatorTime t{std::move(name), "runtime", {}};
  t.busy.elapsed_ps = r.time_ps;
  t.busy.collective_ps = static_cast<double>(r.time_ps);
  t.busy.runtime_ps = static_cast<double>(r.time_ps);
  if (r.time_ps > 0)
    t.busy.algorithm_ps[static_cast<std::size_t>(r.algorithm)] = static_cast<double>(r.time_ps);
  t.busy.link_ps = r.link_utilization * static_cast<double>(group.chips() * group.links_per_chip()) *
                   static_cast<double>(r.time_ps);
  return t;
}

}  // namespace

LayerTime RuntimeMapping::before(std::uint64_t start_ps) {
  // The ranks of a graph start together: a barrier, priced as an all-reduce of one 4-byte
  // flag between the chips of the group (the cores of a chip share its semaphores).
  LayerTime lt;
  lt.start_ps = lt.end_ps = start_ps;
  if (ctx_.chips() <= 1) return lt;
  lt.operators.push_back(collective_time("runtime.launch_barrier",
                                         ctx_.group_collective(Collective::kAllReduce, 4), ctx_.group()));
  lt.end_ps += lt.operators.back().busy.elapsed_ps;
  return lt;
}

LayerTime RuntimeMapping::after(const workloads::OperatorGraph& g, std::uint64_t start_ps,
                                std::uint64_t device_ps) {
  LayerTime lt;
  lt.start_ps = lt.end_ps = start_ps;
  // The LM head, the graph's last operator of that name (looked for from the end, where
  // the lowering puts it: this runs on every pass).
  const auto it =
      std::find_if(g.ops.rbegin(), g.ops.rend(), [](const Operator& op) { return op.name == "lm_head"; });
  const Operator* head = it == g.ops.rend() ? nullptr : &*it;
  if (head != nullptr && head->m > 0) {
    // The LM head is column-parallel: each chip holds vocab / chips of every row's logits.
    // They are all-gathered between the chips, then each logit row is sampled on one core
    // (rows dealt over the chip's cores): the row loaded, a max pass (vector), exp with the
    // row sum (scalar, fp32), a scan to the sampled token (vector), the token stored.
    if (ctx_.chips() > 1) {
      lt.operators.push_back(
          collective_time("runtime.logits_all_gather",
                          ctx_.group_collective(Collective::kAllGather, head->output_bytes), ctx_.group()));
    }
    const std::uint64_t rows = head->m, vocab = head->n;
    const std::uint64_t row_bytes = head->output_bytes / rows;
    const std::string key = "runtime.sampling|" + std::to_string(rows) + "," + std::to_string(vocab) + "," +
                            std::to_string(row_bytes);
    EngineBusy b = ctx_.cached(key, [&] {
      const std::uint32_t cores = static_cast<std::uint32_t>(std::min<std::uint64_t>(ctx_.sim_cores(), rows));
      std::vector<Program> programs(cores);
      for (std::uint32_t c = 0; c < cores; ++c) {
        const std::uint64_t mine = rows / cores + (c < rows % cores ? 1 : 0);
        Program& prog = programs[c];
        DmaEmitter dma{prog, ctx_.chip().core.dma.queues, 0, ctx_.base(c), ctx_.chip().hbm.capacity().bytes};
        const auto in = dma.transfer(false, mine * row_bytes, {});
        const std::uint64_t values = mine * vocab;
        Program::Id last = prog.elementwise(Engine::kVector, values, DType::kFp32);
        depend_all(prog, last, in);
        const Program::Id exp = prog.elementwise(Engine::kScalar, values, DType::kFp32, {last});
        last = exp;
        if (ctx_.cfg().sampling_vector_passes > 1) {
          last = prog.elementwise(Engine::kVector, values * (ctx_.cfg().sampling_vector_passes - 1),
                                  DType::kFp32, {exp});
        }
        dma.transfer(true, mine * 4, {last});
      }
      return ctx_.run_programs(programs);
    });
    b.runtime_ps = static_cast<double>(b.elapsed_ps);
    lt.operators.push_back(OperatorTime{"runtime.sampling", "runtime", b});
  }
  for (const OperatorTime& ot : lt.operators) lt.end_ps += ot.busy.elapsed_ps;
  // The host's work per invocation: hidden behind the device's pass with asynchronous
  // execution (the next invocation is prepared while this one runs), else paid in full.
  const auto host_ps = static_cast<std::uint64_t>(std::llround(ctx_.cfg().host_overhead.seconds * 1e12));
  const std::uint64_t device = device_ps + (lt.end_ps - start_ps);
  const std::uint64_t exposed =
      ctx_.cfg().async_execution ? (host_ps > device ? host_ps - device : 0) : host_ps;
  if (exposed > 0) {
    OperatorTime h{"runtime.host", "runtime", {}};
    h.busy.elapsed_ps = exposed;
    h.busy.runtime_ps = static_cast<double>(exposed);
    lt.operators.push_back(h);
    lt.end_ps += exposed;
  }
  return lt;
}

}  // namespace wse::neuron
