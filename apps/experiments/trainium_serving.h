// Experiment mode `trainium_only`: a request trace served by Trainium instances alone.
// Each instance does both phases (colocated): prefill batches and decode steps are the
// operator graphs of workloads/model/operators.h executed on the Trainium model
// (neuroncore/transformer/prefill.h), and the serving policy of workloads/serving
// decides batching and admission. The KV cache stays in the instance's HBM, whose room
// after the weights limits the decode batch.
#pragma once

#include <memory>

#include "systemc_models/sim/registry.h"

namespace wse::experiments {

std::unique_ptr<sim::Experiment> make_trainium_only(config::Section& root, const sim::ExperimentInfo& info);

// Mode `trainium_disaggregated`: a pool of Trainium instances prefills, the KV cache
// crosses the EFA network (layer by layer or after the prefill, as configured), and a
// second pool of Trainium instances decodes.
std::unique_ptr<sim::Experiment> make_trainium_disaggregated(config::Section& root,
                                                             const sim::ExperimentInfo& info);

}  // namespace wse::experiments
