// Experiment modes with CS-3 decode systems:
//  - `disaggregated`: a pool of Trainium instances prefills; each request's KV cache
//    crosses the EFA network (layer by layer while the prefill goes on, or after it) to
//    the CS-3 of a decode system that holds each layer, enters through that wafer's
//    system I/O edge and is carried over the fabric to the layer's region
//    (wafer_kv_path.h); decode steps run on the wafer model (wse_mesh/decode).
//  - `wafer_only`: CS-3 systems do both phases (prefill batches and decode steps on the
//    wafer model); the KV cache stays where it was made.
// Both read the same model, trace and serving sections as the Trainium modes, so that
// the three platforms run the same trace.
#pragma once

#include <memory>

#include "systemc_models/sim/registry.h"

namespace wse::experiments {

std::unique_ptr<sim::Experiment> make_disaggregated(config::Section& root, const sim::ExperimentInfo& info);
std::unique_ptr<sim::Experiment> make_wafer_only(config::Section& root, const sim::ExperimentInfo& info);
// Mode `gpu_prefill_cs3_decode`: as `disaggregated`, with GPU instances prefilling
// (each tensor-parallel group an EFA sender; docs/gpu.md).
std::unique_ptr<sim::Experiment> make_gpu_prefill_cs3_decode(config::Section& root,
                                                             const sim::ExperimentInfo& info);

}  // namespace wse::experiments
