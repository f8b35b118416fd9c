// What a run consumes: a power model per machine class (`energy.<class>`: a static power
// per machine drawn for the whole run, and a dynamic energy per unit of work the machine
// models count: matrix FLOPs, HBM or SRAM bytes, bytes on the fabric and the links), the
// EFA network's energy per KV byte carried (`energy.efa`), and the data centre's PUE
// (`energy.pue`). summary.json `energy`: joules per machine class and in total (IT and
// facility), mean power, and tokens per joule (output tokens, and all tokens).
//
// The figures (docs/hardware_reference.md, "Power and energy"): accelerator TDPs and idle
// power, HBM access energy, Horowitz's 45 nm operation energies scaled to 5 nm, long-reach
// SerDes energy; each derivation and assumption is in docs/energy.md and beside its
// default in energy.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/experiments/cost.h"
#include "workloads/model/transformer.h"

namespace wse::config {
class Section;
}

namespace wse::experiments {

// The work the machines of one class did during a run, as their models count it.
struct Activity {
  double flops = 0.0;         // matrix FLOPs (tensor engines, tensor cores, PE FMACs)
  double memory_bytes = 0.0;  // HBM bytes (Trainium, GPU) or PE SRAM bytes (CS-3), read and written
  double link_bytes = 0.0;    // NeuronLink, NVLink, or the CS-3 pipeline's links between wafers
  double fabric_bytes = 0.0;  // CS-3: bytes x PE-to-PE hops on the wafer fabric (wavelet hops x 4 B)
  Activity& operator+=(const Activity& o) {
    flops += o.flops;
    memory_bytes += o.memory_bytes;
    link_bytes += o.link_bytes;
    fabric_bytes += o.fabric_bytes;
    return *this;
  }
};

// One dynamic term of a power model: `pj_per_unit` picojoules per unit of `Activity::*units`.
struct EnergyTerm {
  std::string name;  // the summary's key: compute, hbm, sram, fabric, neuronlink, nvlink, pipeline_link
  double pj_per_unit = 0.0;
  double Activity::*units = nullptr;
};

// The power model of one machine class: static watts per machine, dynamic terms.
struct PowerModel {
  std::string kind;  // trainium_instance, cs3, gpu_instance (as cost.hourly)
  std::uint64_t count = 0;
  double static_w = 0.0;
  std::vector<EnergyTerm> terms;
  // Joules of the class over `seconds` having done `a`: count x static_w x seconds + the terms.
  double joules(double seconds, const Activity& a) const;
};

// The power model of machines of `kind`, read at energy.<kind>; the FLOP term is the
// 16-bit or the 8-bit one by `matmul` (the model's linear weights' type).
PowerModel read_power_model(config::Section& root, std::string_view kind, std::uint64_t count,
                            workloads::DType matmul);

struct RunEnergy {
  std::vector<PowerModel> machines;
  double efa_pj_per_byte = 0.0;
  double pue = 1.0;
  bool empty() const { return machines.empty(); }
  // summary.json `energy` for a run of `seconds` whose machine classes did `activity`
  // (by kind), whose EFA network delivered `efa_bytes`, that produced `output_tokens`
  // and served `prompt_tokens` (completed requests).
  nlohmann::json summary(double seconds, const std::map<std::string, Activity>& activity, double efa_bytes,
                         std::uint64_t output_tokens, std::uint64_t prompt_tokens) const;
};

// The power models of the fleet that `cost` rents (same kinds and counts), energy.efa and
// energy.pue.
RunEnergy read_run_energy(config::Section& root, const RunCost& cost,
                          const workloads::TransformerModel& model);

// The fleet of a single-pass mode (trainium_prefill, trainium_decode, op_trace,
// kv_transfer) with its prices and power models, and its summary: the machines are held
// for the pass's simulated time, as a serving run holds its fleet for the run.
struct PassFleet {
  RunCost cost;
  RunEnergy energy;
  // summary.json `cost` and `energy` of a pass of `seconds` whose machines did `activity`
  // (by kind), whose EFA network (or the link standing for it) carried `efa_bytes`, that
  // produced `output_tokens` from `prompt_tokens` prompt tokens.
  void summarize(nlohmann::json& s, double seconds, const std::map<std::string, Activity>& activity,
                 double efa_bytes, std::uint64_t output_tokens, std::uint64_t prompt_tokens) const;
};

// `count` machines of `kind` (trainium_instance, gpu_instance, cs3): their price and power
// models, energy.efa and energy.pue.
PassFleet read_pass_fleet(config::Section& root,
                          const std::vector<std::pair<std::string, std::uint64_t>>& fleet,
                          const workloads::TransformerModel& model);

}  // namespace wse::experiments
