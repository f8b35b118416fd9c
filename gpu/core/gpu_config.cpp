#include "gpu/core/gpu_config.h"

#include <string>

#include "systemc_models/config/config.h"

namespace wse::gpu {

namespace {

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

double TensorCoreConfig::flops_per_clock(workloads::DType t) const {
  return t == workloads::DType::fp8 || t == workloads::DType::mxfp4 ? flops_per_clock_fp8
                                                                    : flops_per_clock_bf16;
}

neuron::HbmConfig h100_hbm() {
  neuron::HbmConfig h = neuron::hbm3_reference();
  h.stacks = 5;
  h.capacity_per_stack = Size{16ULL << 30};  // 80 GiB / 5
  return neuron::rescale_to_bandwidth(h, Bandwidth{3.35e12});
}

GpuConfig read_gpu_config(config::Section& s) {
  const GpuConfig d;
  GpuConfig c;
  c.sms = static_cast<std::uint32_t>(s.integer(
      "sms",
      {.doc = "streaming multiprocessors enabled", .def = std::to_string(d.sms), .min = 1, .max = 4096}));
  config::Section t = s.section("tensor", "the tensor cores of one SM", true);
  const std::string def_clock = wse::to_string(d.tensor.clock);
  const std::string def_bf16 = num(d.tensor.flops_per_clock_bf16);
  const std::string def_fp8 = num(d.tensor.flops_per_clock_fp8);
  c.tensor.clock = t.frequency("clock", {.doc = "tensor-core clock at which the dense peak is reached",
                                         .def = def_clock,
                                         .min = 0,
                                         .min_exclusive = true});
  c.tensor.flops_per_clock_bf16 = t.number(
      "flops_per_clock_bf16", {.doc = "dense bf16/fp16 FLOPs per clock of one SM (2 per multiply-add)",
                               .def = def_bf16,
                               .min = 0,
                               .min_exclusive = true});
  c.tensor.flops_per_clock_fp8 = t.number(
      "flops_per_clock_fp8",
      {.doc = "dense fp8 FLOPs per clock of one SM", .def = def_fp8, .min = 0, .min_exclusive = true});
  const std::string def_l2 = wse::to_string(d.l2);
  c.l2 = s.size(
      "l2",
      {.doc = "L2 cache: split-K partial sums that fit in it do not reach HBM", .def = def_l2, .min = 0});
  config::Section h = s.section("hbm", "the GPU's HBM (stacks, capacity, data rate, timing)", true);
  c.hbm = neuron::read_hbm_config(h);
  return c;
}

}  // namespace wse::gpu
