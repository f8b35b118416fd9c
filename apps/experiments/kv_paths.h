// The ways a KV cache can travel from a prefill machine to a decode machine, as
// serving::KvPath implementations:
//   SharedLinkKvPath  one shared link (bandwidth, latency, arbitration) for everyone;
//   EfaKvPath         the EFA network: each prefill machine an EFA sender, each decode
//                     machine a receiver; every transfer is an RDMA write through the
//                     sender attachment's TLM-2.0 socket.
#pragma once

#include <memory>
#include <vector>

#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

#include "efa_link/efa_network.h"
#include "systemc_models/tlm/shared_resource.h"
#include "workloads/serving/backends.h"

namespace wse::experiments {

// The prefill replicas of an instance (prefill.dp_degree) share its EFA sender: serving
// prefill machine i sends from instance i / groups of the path underneath.
class GroupedKvPath : public serving::KvPath {
 public:
  GroupedKvPath(serving::KvPath& inner, unsigned groups) : inner_(inner), groups_(groups) {}
  void transfer(unsigned prefill_machine, unsigned decode_system, std::uint64_t bytes) override {
    inner_.transfer(prefill_machine / groups_, decode_system, bytes);
  }
  void transfer_layers(unsigned prefill_machine, unsigned decode_system, std::uint32_t first_layer,
                       std::uint32_t last_layer, std::uint64_t bytes, std::uint64_t request) override {
    inner_.transfer_layers(prefill_machine / groups_, decode_system, first_layer, last_layer, bytes, request);
  }

 private:
  serving::KvPath& inner_;
  unsigned groups_;
};

class SharedLinkKvPath : public sc_core::sc_module, public serving::KvPath {
 public:
  SharedLinkKvPath(const sc_core::sc_module_name& name, const tlm_blocks::SharedResourceConfig& link,
                   trace::Writer* trace);
  void transfer(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) override;

 private:
  tlm_blocks::SharedResource link_;
};

class EfaKvPath : public sc_core::sc_module, public serving::KvPath {
 public:
  // Senders of `config` are the prefill machines, receivers the decode machines;
  // `faults` is the EFA part of the run's fault schedule (docs/faults.md). A machine that
  // spans several instances (a GPU group over `sender_span` or `receiver_span` instances)
  // is that many consecutive EFA senders or receivers, one per instance's attachment:
  // prefill machine p is senders p x sender_span .. + sender_span - 1, decode machine d
  // receivers d x receiver_span ...
  EfaKvPath(const sc_core::sc_module_name& name, const efa::EfaNetworkConfig& config,
            const efa::EfaFaults& faults, trace::Writer* trace, unsigned sender_span = 1,
            unsigned receiver_span = 1);
  // One RDMA write; between spanning machines, n = max(sender_span, receiver_span) writes
  // in parallel, write i of bytes x (i + 1) / n - bytes x i / n from sender
  // p x sender_span + i mod sender_span to receiver d x receiver_span + i mod
  // receiver_span (each instance sends or receives the KV of the heads its GPUs hold),
  // ending when the last one does. Throws std::runtime_error if the network gives up on
  // a write (retry budget).
  void transfer(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) override;
  const efa::EfaNetwork& network() const { return network_; }

 private:
  // One RDMA write from EFA sender `sender` to EFA receiver `receiver`.
  void write(unsigned sender, unsigned receiver, std::uint64_t bytes);

  efa::EfaNetwork network_;
  std::vector<std::unique_ptr<tlm_utils::simple_initiator_socket<EfaKvPath>>> hosts_;
  unsigned sender_span_ = 1, receiver_span_ = 1;
};

}  // namespace wse::experiments
