// The fault schedule of a serving experiment (`faults:`, docs/faults.md): a list of
// faults, each a kind, a target, a start and an end (or a duration):
//   efa_loss_burst      packets dropped with `probability` on a path, a machine's
//                       adapters or everywhere, during [start, end)
//   efa_path_down       a path (or every path) down during [start, end): SRD routes
//                       around it, and holds its packets while no path is up
//   decode_system_down  decode system `system` fails at start (comes back at end, if
//                       given): its requests are re-routed (serving.failover)
// The schedule is an argument of its own to the models, beside their configurations
// (which it never changes): the EFA kinds are the efa::EfaFaults given to the EFA
// network, the decode kind the serving::DecodeOutage list given to the serving system.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efa_link/efa_config.h"
#include "systemc_models/config/config.h"
#include "workloads/serving/serving_config.h"

namespace wse::experiments {

struct FaultSchedule {
  struct Entry {
    std::string kind;
    double start_s = 0;
    double end_s = -1;  // < 0: open (a decode system that does not come back)
  };
  std::vector<Entry> entries;
  efa::EfaFaults efa;                              // for the EFA network (efa::EfaNetwork)
  std::vector<serving::DecodeOutage> decode_down;  // for the serving system (serving::ServingSystem)

  bool empty() const { return entries.empty(); }
  // {"efa_loss_burst": n, "efa_path_down": n, "decode_system_down": n}
  nlohmann::json counts() const;
};

// Reads `faults:` (absent: no faults). `efa` is the experiment's EFA network (null: the
// mode has none, and an EFA fault is an error); its sender and receiver counts bound
// the targets. `decode_systems` bounds decode_system_down (0: the mode has no separate
// decode systems, and that kind is an error). Errors name the entry's key.
FaultSchedule read_faults(config::Section& root, const efa::EfaNetworkConfig* efa, unsigned decode_systems);

}  // namespace wse::experiments
