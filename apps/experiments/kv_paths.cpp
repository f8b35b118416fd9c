#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn: the writes of a spanning machine, in parallel
#include "apps/experiments/kv_paths.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace wse::experiments {

SharedLinkKvPath::SharedLinkKvPath(const sc_core::sc_module_name& name,
                                   const tlm_blocks::SharedResourceConfig& link, trace::Writer* trace)
    : sc_module(name), link_("link", link, trace) {}

void SharedLinkKvPath::transfer(unsigned prefill_instance, unsigned /*decode_system*/, std::uint64_t bytes) {
  link_.transfer(prefill_instance, bytes);
}

EfaKvPath::EfaKvPath(const sc_core::sc_module_name& name, const efa::EfaNetworkConfig& config,
                     const efa::EfaFaults& faults, trace::Writer* trace, unsigned sender_span,
                     unsigned receiver_span)
    : sc_module(name),
      network_("efa", config, faults),
      sender_span_(std::max(sender_span, 1u)),
      receiver_span_(std::max(receiver_span, 1u)) {
  network_.set_trace(trace);
  for (std::uint32_t i = 0; i < config.senders; ++i) {
    const std::string n = "host" + std::to_string(i);
    hosts_.push_back(std::make_unique<tlm_utils::simple_initiator_socket<EfaKvPath>>(n.c_str()));
    hosts_.back()->bind(network_.sender(i).work_requests);
  }
}

void EfaKvPath::transfer(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) {
  const unsigned n = std::max(sender_span_, receiver_span_);
  if (n == 1) {
    write(prefill_instance, decode_system, bytes);
    return;
  }
  sc_core::sc_event_and_list all;
  std::vector<sc_core::sc_process_handle> handles;
  for (unsigned i = 0; i < n; ++i) {
    const std::uint64_t part = bytes * (i + 1) / n - bytes * i / n;
    if (part == 0) continue;
    const unsigned sender = prefill_instance * sender_span_ + i % sender_span_;
    const unsigned receiver = decode_system * receiver_span_ + i % receiver_span_;
    handles.push_back(sc_core::sc_spawn([this, sender, receiver, part] { write(sender, receiver, part); },
                                        sc_core::sc_gen_unique_name("kv_part")));
    all &= handles.back().terminated_event();
  }
  if (!handles.empty()) sc_core::wait(all);
}

void EfaKvPath::write(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) {
  efa::EfaWorkRequestExt ext;
  ext.target = network_.engine().config().senders + decode_system;
  ext.bytes = bytes;
  tlm::tlm_generic_payload gp;
  gp.set_command(tlm::TLM_WRITE_COMMAND);
  gp.set_address(0);
  gp.set_data_ptr(nullptr);  // timing only
  gp.set_data_length(0);
  gp.set_streaming_width(0);
  gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  gp.set_extension(&ext);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  (*hosts_.at(prefill_instance))->b_transport(gp, delay);
  gp.clear_extension(&ext);
  if (gp.is_response_error() || !ext.completion.ok) {
    throw std::runtime_error("EFA transfer of " + std::to_string(bytes) + " B from prefill machine " +
                             std::to_string(prefill_instance) + " to decode machine " +
                             std::to_string(decode_system) + " failed: " + ext.completion.error);
  }
}

}  // namespace wse::experiments
