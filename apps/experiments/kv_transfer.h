// Experiment mode `kv_transfer`: every request of a trace, at its arrival time, sends
// its KV cache (input tokens x KV bytes per token of the model) from one of `senders`
// prefill machines over one shared link (a SharedResource: bandwidth, latency,
// arbitration). Measures per-request transfer time (queueing included) and the link's
// utilization.
#pragma once

#include <memory>

#include "systemc_models/sim/registry.h"

namespace wse::experiments {

std::unique_ptr<sim::Experiment> make_kv_transfer(config::Section& root, const sim::ExperimentInfo& info);

}  // namespace wse::experiments
