// What a run costs: the machines of the experiment rented by the hour for the run's
// simulated time (`cost.hourly`, US dollars per hour of one machine of each kind), and
// summary.json `cost`: dollars for the run, per million output tokens and per million
// tokens (prompt + output) of the completed requests, and the fleet's dollars per hour.
//
// The prices (docs/hardware_reference.md, "Prices"): AWS list prices per instance; the
// CS-3 has no public price, so its hourly figure is an assumption (a purchase estimate
// amortised over a stated life; docs/cost.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace wse::config {
class Section;
}

namespace wse::experiments {

// Machines of one kind in the fleet: `count` of them at `usd_per_hour` each.
struct FleetPart {
  std::string kind;  // the key under cost.hourly: trainium_instance, cs3, gpu_instance
  std::uint64_t count = 0;
  double usd_per_hour = 0.0;
};

// The machines of one kind, their hourly price read at cost.hourly.<kind>.
FleetPart read_fleet_part(config::Section& root, std::string_view kind, std::uint64_t count);

struct RunCost {
  std::vector<FleetPart> fleet;
  double fleet_usd_per_hour() const;
  // summary.json `cost` for a run of `simulated_s` that produced `output_tokens` and
  // served `prompt_tokens` (completed requests).
  nlohmann::json summary(double simulated_s, std::uint64_t output_tokens, std::uint64_t prompt_tokens) const;
};

}  // namespace wse::experiments
