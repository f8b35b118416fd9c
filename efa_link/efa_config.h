// Resolved configuration of the EFA RDMA link: the adapters of each machine, the
// network paths between the sender and receiver machines, and the SRD transport.
//
// Plain structs with typed quantities; `read_efa_config` (efa_config_reader.cpp) fills
// them from the `efa:` section of a YAML file, and `validate` checks them in one place.
// The member initializers are the defaults of the YAML keys too (a c5n-class adapter);
// the shipped files configs/hardware/efa_*.yaml trace each value to its source.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
template <class T>
class Fields;
}  // namespace wse::config

namespace wse::efa {

// One machine's EFA attachment: `adapters` identical adapters (EFA devices).
struct EfaAdapterConfig {
  std::uint32_t adapters = 1;
  Bandwidth line_rate{100e9 / 8};  // per adapter, each direction
  Size mtu{8192};                  // payload bytes per SRD packet
  Size header{64};                 // per-packet bytes on the wire besides payload
  Bandwidth host_dma{16e9};        // per adapter, each direction (host memory <-> NIC)
  Duration nic_latency{1.5e-6};    // processing in the NIC, paid once on each side
};

// One congested path: `load` is the fraction of its capacity used by traffic outside
// the model (cross traffic), so the modelled flows get capacity * (1 - load).
struct PathCongestion {
  std::uint32_t path = 0;
  double load = 0.0;
};

// A window of time during which a path (or, with all_paths, every path) drops every
// packet that enters it: a link that is down.
struct LinkFault {
  bool all_paths = true;
  std::uint32_t path = 0;
  Duration from{0.0};
  Duration until{0.0};
};

// A window of time during which a path (or, with all_paths, every path) is down and SRD
// knows it (the NIC's path health tracking): path selection sends nothing over it, and
// when every path is down the adapters hold their packets until one returns. A packet
// that still reaches a path while it is down (chosen before the window opened) is lost.
// An entry of an experiment's fault schedule (`faults:`, kind efa_path_down; EfaFaults).
struct PathOutage {
  bool all_paths = true;
  std::uint32_t path = 0;
  Duration from{0.0};
  Duration until{0.0};
};

// A window of time during which packets are dropped with `probability` (instead of
// srd.loss_probability, if larger) on one path, on the adapters of one machine (one
// adapter, or all of them), or everywhere. An entry of an experiment's fault schedule
// (`faults:`, kind efa_loss_burst; EfaFaults).
struct LossBurst {
  static constexpr std::uint32_t kAny = 0xffffffffU;
  double probability = 0.0;
  std::uint32_t path = kAny;     // kAny: every path
  std::uint32_t machine = kAny;  // kAny: every machine (senders first, then receivers)
  std::uint32_t adapter = kAny;  // of `machine`; kAny: all its adapters
  Duration from{0.0};
  Duration until{0.0};
};

// The switched network between the sender machines and the receiver machines. Each
// path is one route through the spine, shared by every flow that is sprayed over it;
// its capacity and queue are shared in each direction.
struct EfaFabricConfig {
  std::uint32_t paths = 64;
  Bandwidth path_capacity{400e9 / 8};  // each direction
  Duration path_latency{12e-6};        // one way, propagation + switching, fastest path
  Duration path_latency_spread{2e-6};  // path i adds spread * i / (paths - 1)
  std::vector<PathCongestion> congestion;
  std::vector<LinkFault> faults;
};

enum class PathSelection { RoundRobin, Adaptive };
enum class Grain { Packet, Burst };

// The Scalable Reliable Datagram transport in the NIC.
struct SrdConfig {
  PathSelection path_selection = PathSelection::Adaptive;
  Duration retransmit_timeout{100e-6};  // from the packet leaving the NIC
  // Wait longer than retransmit_timeout when the measured round trip is longer (smoothed
  // round trip + 4 x its mean deviation, as TCP's RTO), so that queueing alone does not
  // trigger retransmissions.
  bool adaptive_timeout = true;
  std::uint32_t retry_budget = 8;  // retransmissions of one packet before failure
  double loss_probability = 0.0;   // per packet per path crossing
  std::uint64_t seed = 1;
  Size max_outstanding{4 * 1024 * 1024};  // unacknowledged bytes per adapter
  // Delay-based congestion control: packets that queued in the network longer than this
  // shrink the adapter's window (see SrdEngine::adjust_window).
  Duration congestion_delay{50e-6};
  Grain grain = Grain::Packet;
  // Burst grain: a message is moved in bursts of whole packets, at most burst bytes and
  // at least bursts_per_message bursts per message (so short messages keep detail).
  Size burst{1024 * 1024};
  std::uint32_t bursts_per_message = 64;
};

struct EfaNetworkConfig {
  std::uint32_t senders = 1;
  std::uint32_t receivers = 1;
  EfaAdapterConfig sender;
  EfaAdapterConfig receiver;
  EfaFabricConfig fabric;
  SrdConfig srd;
};

// The EFA part of an experiment's fault schedule (`faults:`, docs/faults.md). It is given
// to the network beside its configuration (SrdEngine, EfaNetwork), never written into it:
// the configuration is the machines, the schedule what happens to them during one run.
struct EfaFaults {
  std::vector<PathOutage> path_down;   // kind efa_path_down
  std::vector<LossBurst> loss_bursts;  // kind efa_loss_burst
  bool empty() const { return path_down.empty() && loss_bursts.empty(); }
};

// Throws std::invalid_argument naming the field and what is allowed.
void validate(const EfaNetworkConfig& c);
// Throws std::invalid_argument naming the fault kind and what is allowed: a target that
// is not in the network `c`, a window that ends before it starts, a probability not in
// [0, 1).
void validate(const EfaFaults& f, const EfaNetworkConfig& c);

// The keys of the `efa.sender` / `efa.receiver` and `efa.srd` sections, declared once
// (config/fields.h; efa_config_reader.cpp): the defaults are the member initializers.
void describe(config::Fields<EfaAdapterConfig>& f);
void describe(config::Fields<SrdConfig>& f);

// Fills the config from the `efa` section (see configs/hardware/efa_*.yaml). `senders`
// and `receivers` default to base's: a serving experiment derives them from its machine
// pools (apps/experiments/serving_experiment.cpp), so its file need not type them again.
EfaNetworkConfig read_efa_config(config::Section& efa, const EfaNetworkConfig& base = {});

}  // namespace wse::efa
