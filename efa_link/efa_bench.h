// The `efa` microbenchmark (wse-emu bench efa --out DIR): sweeps of the SRD engine on the
// shipped hardware configurations, written as CSV files.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "efa_link/efa_config.h"
#include "systemc_models/sim/registry.h"

namespace wse::efa {

// "trn2_48xlarge" or "c5n": the configuration in configs/hardware/efa_<name>.yaml as
// built into the program.
EfaNetworkConfig shipped_config(std::string_view name);

std::vector<std::string> run_efa_bench(const sim::BenchArgs& args);

}  // namespace wse::efa
