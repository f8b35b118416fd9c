#include "systemc_models/sim/registry.h"

#include <stdexcept>

#include <systemc>

namespace wse::sim {

double Experiment::simulated_seconds() const { return sc_core::sc_time_stamp().to_seconds(); }

void Registry::add_mode(const std::string& name, std::string description, ExperimentFactory f) {
  if (!modes_.emplace(name, std::make_pair(std::move(description), std::move(f))).second) {
    throw std::logic_error("experiment mode '" + name + "' registered twice");
  }
}

void Registry::add_bench(const std::string& name, Bench b) {
  if (!benches_.emplace(name, std::move(b)).second) {
    throw std::logic_error("benchmark '" + name + "' registered twice");
  }
}

const ExperimentFactory* Registry::mode(const std::string& name) const {
  auto it = modes_.find(name);
  return it == modes_.end() ? nullptr : &it->second.second;
}

const Bench* Registry::bench(const std::string& name) const {
  auto it = benches_.find(name);
  return it == benches_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, std::string>> Registry::modes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : modes_) out.emplace_back(k, v.first);
  return out;
}

std::vector<std::pair<std::string, std::string>> Registry::benches() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : benches_) out.emplace_back(k, v.description);
  return out;
}

}  // namespace wse::sim
