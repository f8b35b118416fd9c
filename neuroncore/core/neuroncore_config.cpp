#include "neuroncore/core/neuroncore_config.h"

#include "neuroncore/hbm/hbm_presets.h"

namespace wse::neuron {

std::string_view to_string(DType t) {
  switch (t) {
    case DType::kBf16:
      return "bf16";
    case DType::kFp8:
      return "fp8";
    case DType::kFp32:
      return "fp32";
  }
  return "?";
}

std::uint32_t bytes_of(DType t) {
  switch (t) {
    case DType::kBf16:
      return 2;
    case DType::kFp8:
      return 1;
    case DType::kFp32:
      return 4;
  }
  return 4;
}

double TensorEngineConfig::moving_per_cycle(DType t) const {
  switch (t) {
    case DType::kBf16:
      return moving_per_cycle_bf16;
    case DType::kFp8:
      return moving_per_cycle_fp8;
    case DType::kFp32:
      return moving_per_cycle_fp32;
  }
  return moving_per_cycle_bf16;
}

ChipConfig trainium2_chip() {
  ChipConfig c;
  c.hbm = trainium2_hbm();
  return c;
}

}  // namespace wse::neuron
