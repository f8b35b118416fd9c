// Experiment mode `op_trace`: trace-driven execution. An operator-trace file
// (docs/trace_format.md), written by wse-emu or by another tool, is executed operator
// by operator on the Trainium model of `trainium:` / `instance:` / `prefill:`.
#pragma once

#include <memory>

#include "systemc_models/sim/registry.h"

namespace wse::experiments {

std::unique_ptr<sim::Experiment> make_op_trace(config::Section& root, const sim::ExperimentInfo& info);

}  // namespace wse::experiments
