// The "floor" object of a machine class's summary (trainium.floor, gpu.floor): the
// prefill passes' and decode steps' floors summed over the machines, given per pass, with
// the ratio of simulated time to floor. A machine gives prefill_floor() and
// decode_floor(), each with `floor` (compute_s, hbm_s, collective_s, step_s, summable
// with +=), `passes` and `simulated_s`.
#pragma once

#include <iterator>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace wse::experiments {

template <class Machines>  // a range of pointers (raw or owning) to machines
nlohmann::json pass_floors(const Machines& machines) {
  using Floors = std::decay_t<decltype((*std::begin(machines))->prefill_floor())>;
  Floors prefill, decode;
  for (const auto& m : machines) {
    for (auto [sum, part] :
         {std::pair{&prefill, &m->prefill_floor()}, std::pair{&decode, &m->decode_floor()}}) {
      sum->floor += part->floor;
      sum->passes += part->passes;
      sum->simulated_s += part->simulated_s;
    }
  }
  const auto floor_json = [](const Floors& f) {
    const double n = f.passes > 0 ? static_cast<double>(f.passes) : 1.0;
    nlohmann::json j{{"passes", f.passes},
                     {"simulated_s", f.simulated_s / n},
                     {"compute_s", f.floor.compute_s / n},
                     {"hbm_s", f.floor.hbm_s / n},
                     {"collective_s", f.floor.collective_s / n},
                     {"step_s", f.floor.step_s / n},
                     {"ratio", f.floor.step_s > 0.0 ? f.simulated_s / f.floor.step_s : 0.0}};
    // A floor with a term between nodes (gpu.floor: EFA) reports it when a pass used it.
    if constexpr (requires { f.floor.efa_s; }) {
      if (f.floor.efa_s > 0.0) j["efa_s"] = f.floor.efa_s / n;
    }
    return j;
  };
  nlohmann::json floor = nlohmann::json::object();
  if (prefill.passes > 0) floor["prefill_pass"] = floor_json(prefill);
  if (decode.passes > 0) floor["decode_step"] = floor_json(decode);
  return floor;
}

}  // namespace wse::experiments
