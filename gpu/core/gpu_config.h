// Resolved configuration of one GPU (an H100 SXM, H200 or B200 as in
// configs/hardware/{h100_sxm,h200,b200}.yaml): streaming multiprocessors whose tensor
// cores give a number of dense FLOPs per clock each, and HBM described with the HBM
// model of neuroncore/hbm (stacks, capacity, data rate, timing).
//
// The GPU is modelled at the grain of a kernel's thread-block tiles (gpu/core/gemm.h):
// what decides a GEMM's efficiency is how its output tiles fill the SMs (tile and wave
// quantisation), not the instruction stream inside a tile.
#pragma once

#include <cstdint>

#include "neuroncore/hbm/hbm_config.h"
#include "systemc_models/units/units.h"
#include "workloads/model/transformer.h"

namespace wse::config {
class Section;
}

namespace wse::gpu {

struct TensorCoreConfig {
  // H100 SXM: "tensor peak implies 1.83 GHz (989.4e12 / (132 SM x 4,096 FLOP/clk))".
  Frequency clock{1.83e9};
  double flops_per_clock_bf16 = 4096;  // dense, per SM (fp16 the same)
  double flops_per_clock_fp8 = 8192;   // dense, per SM ("dense FP8 1,979 TFLOPS" = 2 x bf16)
  // Dense FLOPs per clock of one SM for operands of type t: fp8 (and narrower) at the
  // fp8 rate, everything else at the bf16 rate (fp32 GEMMs are not lowered here).
  double flops_per_clock(workloads::DType t) const;
};

// The H100 SXM's HBM: the HBM3 reference device (neuron::hbm3_reference) as "5 active
// stacks" of "80 GB" in all, rescaled to "3.35 TB/s" (configs/hardware/h100_sxm.yaml).
neuron::HbmConfig h100_hbm();

struct GpuConfig {
  std::uint32_t sms = 132;  // H100 SXM: "132 (of 144 on full GH100)"
  TensorCoreConfig tensor;
  Size l2{50ULL * 1000 * 1000};  // H100: "L2 50 MB"
  neuron::HbmConfig hbm = h100_hbm();
  // Peak dense FLOP/s of the whole GPU for operands of type t.
  double peak_flops(workloads::DType t) const {
    return static_cast<double>(sms) * tensor.flops_per_clock(t) * tensor.clock.hz;
  }
};

// Reads a `gpu:` section. Defaults are those of the structs above (H100 SXM), so each
// default lives in one place; the `hbm:` subsection is read by neuron::read_hbm_config.
GpuConfig read_gpu_config(config::Section& s);

}  // namespace wse::gpu
