// HBM configurations of the Trainium chips, as in configs/hardware/trn2.yaml and
// trn3.yaml (a test checks that the files and these agree). Used by the benches, which
// run without configuration files.
#pragma once

#include "neuroncore/hbm/hbm_config.h"

namespace wse::neuron {

// Trainium2: 96 GiB at 2.9 TB/s over 4 HBM3 stacks (the stack count is an assumption).
HbmConfig trainium2_hbm();
// Trainium3: 144 GiB at 4.9 TB/s over 4 stacks (stack count an assumption).
HbmConfig trainium3_hbm();

}  // namespace wse::neuron
