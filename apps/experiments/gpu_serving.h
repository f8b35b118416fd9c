// Experiment mode `gpu_only`: a request trace served by GPU instances alone (e.g.
// p5.48xlarge, eight H100 SXM on an NVSwitch). Each instance holds gpus / (tp_degree x
// pp_degree) copies of the model, or a copy spans tp x pp / gpus instances (its
// collectives and stage transfers over EFA between them); each copy does both phases
// (colocated; with pipeline stages as pp engines sharing them), its prefill batches and
// decode steps the operator graphs of workloads/model/operators.h run on the GPU model
// (gpu/transformer/pass.h). The KV cache stays in the copy's HBM, whose room after the
// weights limits the decode batch.
#pragma once

#include <memory>

#include "systemc_models/sim/registry.h"

namespace wse::experiments {

std::unique_ptr<sim::Experiment> make_gpu_only(config::Section& root, const sim::ExperimentInfo& info);

// Mode `trainium_prefill_gpu_decode`: a pool of Trainium instances prefills, the KV cache
// crosses the EFA network (layer by layer or after the prefill, as configured) to a pool
// of GPU instances (each tensor-parallel group an EFA receiver), which decode.
std::unique_ptr<sim::Experiment> make_trainium_prefill_gpu_decode(config::Section& root,
                                                                  const sim::ExperimentInfo& info);

}  // namespace wse::experiments
