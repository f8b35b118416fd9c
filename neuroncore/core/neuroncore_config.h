// Resolved configuration of a NeuronCore (tensor, vector, scalar and GpSimd engines,
// SBUF, PSUM, DMA queues) and of a chip of such cores sharing HBM.
// Defaults are Trainium2 (NeuronCore-v3) from hardware.md; see configs/hardware/trn2.yaml.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "neuroncore/hbm/hbm_config.h"
#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
}

namespace wse::neuron {

enum class DType : std::uint8_t { kBf16, kFp8, kFp32 };
std::string_view to_string(DType t);
std::uint32_t bytes_of(DType t);

// 128 x 128 systolic array. The stationary tile (K partitions x M columns) is loaded
// into the array; the moving tile (K partitions x N) streams through it; results
// (M x N, fp32) accumulate in PSUM.
struct TensorEngineConfig {
  std::uint32_t rows = 128;        // contraction (partition) dimension K of one matmul
  std::uint32_t columns = 128;     // stationary free dimension M of one matmul
  std::uint32_t max_moving = 512;  // N of one matmul: one PSUM bank of 512 fp32
  Frequency clock{2.4e9};
  // Moving columns entering the array per cycle: bf16 1 (79 TFLOPS = 128x128x2x2.4G),
  // fp8 2 (158 TFLOPS), fp32 1/4 (20 TFLOPS).
  double moving_per_cycle_bf16 = 1.0;
  double moving_per_cycle_fp8 = 2.0;
  double moving_per_cycle_fp32 = 0.25;
  // Loading a stationary tile: one partition row per cycle (assumption), into a shadow
  // buffer while the previous matmul streams (assumption).
  std::uint32_t stationary_rows_per_cycle = 1;
  bool stationary_preload = true;
  double moving_per_cycle(DType t) const;
};

// Vector, scalar and GpSimd engines: element-wise work at a rate per cycle plus a fixed
// cost per instruction.
struct ElementEngineConfig {
  Frequency clock{1e9};
  double elements_per_cycle_bf16 = 128;
  double elements_per_cycle_fp32 = 128;
  std::uint32_t instruction_overhead_cycles = 64;
  double elements_per_cycle(DType t) const {
    return t == DType::kFp32 ? elements_per_cycle_fp32 : elements_per_cycle_bf16;
  }
};

struct DmaConfig {
  std::uint32_t queues = 16;                    // per core: 128 DMA engines per chip / 8 cores
  Bandwidth bandwidth_per_queue{3.5e12 / 128};  // 3.5 TB/s over 128 engines
  Duration instruction_overhead{600e-9};        // "each descriptor-generated DMA instruction ~600 ns"
  // A DMA instruction is sent to HBM in chunks of this size, with at most this many in
  // flight per queue (assumption).
  Size chunk{2048};
  std::uint32_t chunks_in_flight = 8;
};

struct NeuronCoreConfig {
  TensorEngineConfig tensor;
  ElementEngineConfig vector{Frequency{0.96e9}, 512, 256, 64};
  ElementEngineConfig scalar{Frequency{1.2e9}, 128, 128, 64};
  ElementEngineConfig gpsimd{Frequency{1.2e9}, 64, 64, 64};
  Size sbuf{24ULL << 20};  // 24 MiB (architecture page; NKI guide: 28 MiB)
  std::uint32_t partitions = 128;
  Size psum{2ULL << 20};  // 128 partitions x 16 KiB
  std::uint32_t psum_banks = 8;
  DmaConfig dma;
};

enum class HbmFidelity {
  kBanks,      // the bank-level HbmSystem: every 32 B access scheduled
  kStreaming,  // one bandwidth pipe: peak x (1 - tRFC / tREFI), closed-bank latency
};

struct ChipConfig {
  std::uint32_t cores = 8;
  NeuronCoreConfig core;
  HbmConfig hbm;
  HbmFidelity hbm_fidelity = HbmFidelity::kBanks;
};

// Trainium2 as in configs/hardware/trn2.yaml.
ChipConfig trainium2_chip();

NeuronCoreConfig read_neuroncore_config(config::Section& s);
// Reads `cores`, `hbm_fidelity`, `neuroncore:` and `hbm:` of a `trainium:` section.
ChipConfig read_chip_config(config::Section& s);

}  // namespace wse::neuron
