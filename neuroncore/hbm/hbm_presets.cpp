#include "neuroncore/hbm/hbm_presets.h"

namespace wse::neuron {

HbmConfig trainium2_hbm() {
  HbmConfig c = hbm3_reference();
  c.stacks = 4;
  c.capacity_per_stack = Size{96ULL * (1ULL << 30) / 4};
  c = rescale_to_bandwidth(c, Bandwidth{2.9e12});
  return c;
}

HbmConfig trainium3_hbm() {
  HbmConfig c = hbm3_reference();
  c.stacks = 4;
  c.capacity_per_stack = Size{144ULL * (1ULL << 30) / 4};
  c = rescale_to_bandwidth(c, Bandwidth{4.9e12});
  return c;
}

}  // namespace wse::neuron
