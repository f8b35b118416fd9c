// Byte address <-> HBM coordinates, by the mixed-radix field order of HbmConfig.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "neuroncore/hbm/hbm_config.h"

namespace wse::neuron {

struct HbmCoordinates {
  std::uint32_t stack = 0;
  std::uint32_t channel = 0;         // within the stack
  std::uint32_t pseudo_channel = 0;  // within the channel
  std::uint32_t sid = 0;
  std::uint32_t bank_group = 0;  // within the SID
  std::uint32_t bank = 0;        // within the bank group
  std::uint32_t row = 0;
  std::uint32_t column = 0;  // in units of one access
  bool operator==(const HbmCoordinates&) const = default;
};

class HbmAddressMap {
 public:
  explicit HbmAddressMap(const HbmConfig& cfg);
  // Addresses wrap at the capacity.
  HbmCoordinates decode(std::uint64_t address) const;
  std::uint64_t encode(const HbmCoordinates& c) const;
  // Channel index over all stacks (stack * channels_per_stack + channel).
  std::uint32_t global_channel(const HbmCoordinates& c) const {
    return c.stack * channels_per_stack_ + c.channel;
  }

 private:
  struct Radix {
    HbmField field;
    std::uint64_t count;
    int shift;  // log2(count) when count is a power of two, else -1
  };
  std::vector<Radix> lsb_first_;
  std::uint64_t access_bytes_;
  std::uint64_t capacity_;
  std::uint32_t channels_per_stack_;
};

}  // namespace wse::neuron
