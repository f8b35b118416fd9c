// The EFA network as SystemC modules: one EfaAttachment per machine (its EFA adapters,
// seen by the host through a TLM-2.0 target socket) and the EfaNetwork that owns them
// and the SRD engine (adapters, paths and transport in one calendar queue).
//
// Protocol at the socket (TLM-2.0 generic payload):
//   command       TLM_WRITE_COMMAND = RDMA write, TLM_READ_COMMAND = RDMA read
//   data_length   message bytes (or EfaWorkRequestExt::bytes, for 4 GiB and more)
//   data_ptr      local buffer (may be null: timing only)
//   extension     EfaWorkRequestExt (required): target machine, adapters, remote buffer;
//                 on return it carries the Completion (times, retransmissions, error)
// b_transport returns when the operation completes (the delay argument is added to the
// post time and reset to zero). nb_transport_fw takes BEGIN_REQ, answers END_REQ at
// once, and sends BEGIN_RESP on the backward path when the operation completes. A failed
// operation ends with TLM_GENERIC_ERROR_RESPONSE and Completion::error set.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include "efa_link/efa_config.h"
#include "efa_link/srd_engine.h"
#include "systemc_models/stats/stats.h"

namespace wse::efa {

class EfaWorkRequestExt : public tlm::tlm_extension<EfaWorkRequestExt> {
 public:
  std::uint32_t target = 0;  // machine index (senders first, then receivers)
  std::uint32_t initiator_adapter = kAllAdapters;
  std::uint32_t target_adapter = kAllAdapters;
  std::byte* remote = nullptr;  // target buffer (optional)
  // Message bytes when nonzero; the payload's data_length (32 bits) otherwise. Needed
  // for messages of 4 GiB and more (the KV cache of a very long context).
  std::uint64_t bytes = 0;
  std::uint64_t tag = 0;
  Completion completion;  // filled when the operation completes

  tlm::tlm_extension_base* clone() const override { return new EfaWorkRequestExt(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const EfaWorkRequestExt&>(other);
  }
};

class EfaNetwork;

// One machine's EFA adapters as the host sees them.
class EfaAttachment : public sc_core::sc_module {
 public:
  // Optional: a machine whose host never posts (a pure RDMA target) leaves it unbound.
  tlm_utils::simple_target_socket_optional<EfaAttachment> work_requests;

  EfaAttachment(sc_core::sc_module_name name, EfaNetwork& network, std::uint32_t machine);
  std::uint32_t machine() const { return machine_; }

 private:
  friend class EfaNetwork;
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  tlm::tlm_sync_enum nb_transport_fw(tlm::tlm_generic_payload& gp, tlm::tlm_phase& phase,
                                     sc_core::sc_time& delay);

  EfaNetwork& network_;
  std::uint32_t machine_;
};

class EfaNetwork : public sc_core::sc_module, public stats::Provider {
 public:
  // `faults`: the fault schedule the network runs under (EfaFaults; none by default).
  EfaNetwork(sc_core::sc_module_name name, const EfaNetworkConfig& config, const EfaFaults& faults = {});
  ~EfaNetwork() override;

  // Senders first (sender(i) == attachment(i)), then receivers.
  EfaAttachment& attachment(std::uint32_t machine) { return *attachments_.at(machine); }
  EfaAttachment& sender(std::uint32_t i) { return *attachments_.at(i); }
  EfaAttachment& receiver(std::uint32_t i) { return *attachments_.at(engine_.config().senders + i); }

  const SrdEngine& engine() const { return engine_; }
  const stats::Group& stats() const override { return engine_.stats(); }
  // Timeline of RDMA operations; null turns it off.
  void set_trace(trace::Writer* writer) { engine_.set_trace(writer); }

 private:
  friend class EfaAttachment;
  struct Pending {
    tlm::tlm_generic_payload* gp = nullptr;
    EfaAttachment* attachment = nullptr;
    sc_core::sc_event* done = nullptr;  // b_transport waits on it
  };
  std::uint64_t post(EfaAttachment& from, tlm::tlm_generic_payload& gp, const sc_core::sc_time& delay);
  void complete(const Completion& c);
  void advance();  // SC_METHOD: runs the engine up to now, sleeps until its next event
  void wake_at(std::uint64_t t_ps);

  SrdEngine engine_;  // keeps its own copy of the configuration
  std::vector<std::unique_ptr<EfaAttachment>> attachments_;
  std::unordered_map<std::uint64_t, Pending> pending_;
  sc_core::sc_event wake_;
};

}  // namespace wse::efa
