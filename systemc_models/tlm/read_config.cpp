// Configuration readers of the TLM building blocks (the YAML layer; the models see only
// the resolved structs).
#include <optional>
#include <string>
#include <string_view>

#include "systemc_models/config/config.h"
#include "systemc_models/tlm/memory_target.h"
#include "systemc_models/tlm/shared_resource.h"

namespace wse::tlm_blocks {

namespace {

// Upper bound on initiators/ports: arbitration scans them, so a typo such as 1000000
// is stopped here rather than turning into a slow model.
constexpr double kMaxInitiators = 65536;

// Rate, latency and arbitration, shared by every resource-like block.
void read_timing(config::Section& s, SharedResourceConfig& c) {
  const bool has_width = s.has("width");
  const bool has_bandwidth = s.has("bandwidth");
  if (has_width && has_bandwidth) {
    s.fail("bandwidth", "give either 'bandwidth', or 'width' (bytes per cycle) and 'clock', not both");
  }
  if (!has_width && !has_bandwidth) {
    s.fail("bandwidth",
           "missing the transfer rate: give 'bandwidth' (e.g. '64 GB/s'), or 'width' (bytes per "
           "cycle, e.g. '32 B') and 'clock' (e.g. '1.4 GHz')");
  }
  std::optional<Frequency> clock;
  if (has_width) {
    c.width = s.size("width", {.doc = "bytes moved per clock cycle; a transfer takes whole cycles",
                               .min = 0,
                               .min_exclusive = true});
    clock = s.frequency("clock", {.doc = "clock of the width", .min = 0, .min_exclusive = true});
  } else {
    c.bandwidth =
        s.bandwidth("bandwidth", {.doc = "serialization rate of transfers", .min = 0, .min_exclusive = true});
    if (s.has("clock")) {
      clock = s.frequency(
          "clock", {.doc = "clock (only used to give latency in cycles)", .min = 0, .min_exclusive = true});
    }
  }
  if (clock) c.clock = *clock;
  c.latency = s.duration("latency",
                         {.doc = "from the end of a transfer's serialization to its completion "
                                 "(pipelined: does not occupy the resource)",
                          .def = "0 ns",
                          .min = 0},
                         clock);
  c.arbitration = s.enumeration<Arbitration>(
      "arbitration",
      {.doc = "order of waiting requests: fifo (oldest first, ties to the lower index) or "
              "round_robin (rotating priority over initiators)",
       .def = "fifo"},
      {{"fifo", Arbitration::Fifo}, {"round_robin", Arbitration::RoundRobin}});
}

unsigned read_count(config::Section& s, std::string_view key, std::string_view doc, unsigned default_count) {
  const std::string def = std::to_string(default_count);
  return static_cast<unsigned>(s.integer(key, {.doc = doc, .def = def, .min = 1, .max = kMaxInitiators}));
}

}  // namespace

SharedResourceConfig read_shared_resource_config(config::Section& section, unsigned default_initiators) {
  SharedResourceConfig c;
  read_timing(section, c);
  c.initiators =
      read_count(section, "initiators", "number of initiators sharing the resource", default_initiators);
  return c;
}

MemoryTargetConfig read_memory_target_config(config::Section& section, unsigned default_ports) {
  MemoryTargetConfig c;
  c.capacity = section.size("capacity", {.doc = "addressable bytes", .min = 0, .min_exclusive = true});
  read_timing(section, c.access);
  c.access.initiators =
      read_count(section, "ports", "target ports sharing the memory's bandwidth", default_ports);
  return c;
}

}  // namespace wse::tlm_blocks
