// Experiment mode `trainium_prefill`: one prompt of the model prefilled on a Trainium
// instance under a tensor x pipeline x data parallel split of its chips
// (prefill.tp_degree x lnc, pp_degree, dp_degree, microbatches; pipeline_op.h): the time
// to the first token, each stage's time per microbatch, and the prompts per second of the
// replicas. configs/sweeps/trainium_parallelism.yaml sweeps the splits per prompt length.
#pragma once

#include <memory>

#include "systemc_models/sim/registry.h"

namespace wse::experiments {

std::unique_ptr<sim::Experiment> make_trainium_prefill(config::Section& root,
                                                       const sim::ExperimentInfo& info);

// Experiment mode `trainium_decode`: one decode step (batch.sequences sequences of
// batch.context_tokens cached tokens) on the instance's decode split (trainium_decode:
// tp x pp x dp, microbatches; TrainiumPipeline::decode_step): the inter-token latency, where
// its time went, and its floor.
std::unique_ptr<sim::Experiment> make_trainium_decode(config::Section& root, const sim::ExperimentInfo& info);

}  // namespace wse::experiments
