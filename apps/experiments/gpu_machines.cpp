#include "apps/experiments/gpu_machines.h"

#include "apps/experiments/floor_summary.h"

#include <utility>

#include "systemc_models/units/units.h"

namespace wse::experiments {

GpuSide read_gpu_side(config::Section& root, const workloads::TransformerModel& model) {
  GpuSide g;
  config::Section gpu_s = root.section("gpu", "one GPU (streaming multiprocessors, tensor cores, HBM)");
  g.gpu = gpu::read_gpu_config(gpu_s);
  config::Section node_s = root.section("gpu_instance", "the GPU instance (GPUs on an NVSwitch)");
  g.node = gpu::read_node_config(node_s);
  config::Section pass_s =
      root.section("gpu_pass", "how a model copy is sharded and run on the instance's GPUs", true);
  g.pass = gpu::read_pass_config(pass_s);
  const unsigned gpus = g.node.gpus, tp = g.pass.tp_degree;
  if (tp > gpus || gpus % tp != 0) {
    pass_s.fail("tp_degree",
                "must divide the instance's " + std::to_string(gpus) +
                    " GPUs (gpu_instance.gpus), each group of tp_degree GPUs holding one copy of the "
                    "model; got " +
                    std::to_string(tp));
  }
  const std::uint64_t per_gpu = g.gpu.hbm.capacity().bytes;
  const std::uint64_t hbm = per_gpu * tp;
  if (model.weight_bytes() >= hbm) {
    const std::uint64_t need = model.weight_bytes() / per_gpu + 1;
    std::string fix = need <= gpus ? "raise gpu_pass.tp_degree to at least " + std::to_string(need) +
                                         " (a divisor of the instance's " + std::to_string(gpus) + " GPUs)"
                                   : "the model needs " + std::to_string(need) +
                                         " GPUs' HBM, more than one instance has: use a GPU with more HBM";
    pass_s.fail("tp_degree", "the model's weights (" + pretty_binary(Size{model.weight_bytes()}) +
                                 ") do not fit the HBM of tp_degree " + std::to_string(tp) + " GPU(s) (" +
                                 pretty_binary(Size{per_gpu}) + " each): " + fix);
  }
  g.groups = gpus / tp;
  g.kv_capacity_bytes = hbm - model.weight_bytes();
  return g;
}

nlohmann::json GpuMachines::summary() const {
  return nlohmann::json{{"floor", pass_floors(machines_)}, {"tp_groups", machines_.size()}};
}
}  // namespace wse::experiments
