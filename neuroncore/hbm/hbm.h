// The HBM memory as a SystemC module: a TLM-2.0 target in front of HbmSystem.
//
// Protocol: nb_transport_fw(BEGIN_REQ) is accepted at once (TLM_UPDATED, END_REQ): the
// channel queues model backpressure internally (a request beyond the queue depth waits,
// in arrival order, until a scheduler entry frees). The response comes by
// nb_transport_bw(BEGIN_RESP) when the last data burst of the request ends; the model
// does not wait for END_RESP. b_transport blocks for the same time. The target is
// timing-only: it does not store data (payload data pointers are not touched).
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include <tlm_utils/multi_passthrough_target_socket.h>
#include <systemc>
#include <tlm>

#include "neuroncore/hbm/hbm_config.h"
#include "neuroncore/hbm/hbm_system.h"
#include "systemc_models/stats/stats.h"

namespace wse::neuron {

class Hbm : public sc_core::sc_module, public stats::Provider {
 public:
  SC_HAS_PROCESS(Hbm);
  // Any number of initiators (the cores of a chip) bind here.
  tlm_utils::multi_passthrough_target_socket<Hbm> socket;

  Hbm(const sc_core::sc_module_name& name, const HbmConfig& cfg);
  const stats::Group& stats() const override;
  const HbmSystem& system() const { return system_; }

 private:
  struct Pending {
    tlm::tlm_generic_payload* trans = nullptr;
    sc_core::sc_event* blocking = nullptr;  // set for b_transport callers
    int initiator = 0;                      // socket index for the response
    std::uint64_t arrival_ps = 0;
  };

  tlm::tlm_sync_enum nb_transport_fw(int initiator, tlm::tlm_generic_payload& trans, tlm::tlm_phase& phase,
                                     sc_core::sc_time& delay);
  void b_transport(int initiator, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
  void submit(int initiator, tlm::tlm_generic_payload& trans, sc_core::sc_event* blocking);
  void on_delayed();
  void on_wake();
  void schedule_wake();
  std::uint64_t now_ps() const;
  void sync_stats() const;

  HbmSystem system_;
  std::uint64_t resolution_ps_;
  sc_core::sc_event wake_;
  std::uint64_t wake_at_ps_ = HbmSystem::kNever;
  // Requests annotated into the future, released at their time.
  struct Delayed {
    std::uint64_t at_ps;
    std::uint64_t order;
    int initiator;
    tlm::tlm_generic_payload* trans;
    bool operator>(const Delayed& o) const { return at_ps != o.at_ps ? at_ps > o.at_ps : order > o.order; }
  };
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<>> delayed_;
  std::uint64_t delayed_order_ = 0;
  sc_core::sc_event delayed_event_;
  std::vector<Pending> pending_;
  std::vector<std::uint32_t> free_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> finished_;  // (slot, done_ps)
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_written_ = 0;

  mutable stats::Group stats_;
  struct ChannelStats {
    stats::Utilization* data_bus;
  };
  mutable std::vector<ChannelStats> channel_stats_;
  stats::Counter* reads_;
  stats::Counter* writes_;
  stats::Counter* activates_;
  stats::Counter* precharges_;
  stats::Counter* refreshes_;
  stats::Counter* bytes_read_stat_;
  stats::Counter* bytes_written_stat_;
  stats::Scalar* read_latency_mean_;
  stats::Scalar* read_latency_max_;
  stats::Scalar* peak_bandwidth_;
  stats::Utilization* data_bus_;
};

}  // namespace wse::neuron
