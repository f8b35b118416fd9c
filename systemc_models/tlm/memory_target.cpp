#include "systemc_models/tlm/memory_target.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace wse::tlm_blocks {

namespace {
// Bytes of address space an access covers: a streaming access repeats its first
// `streaming_width` addresses. A streaming width of 0 (a payload that never set it) is
// taken as "no streaming".
std::uint64_t footprint(const tlm::tlm_generic_payload& p) {
  const std::uint64_t length = p.get_data_length();
  const std::uint64_t streaming = p.get_streaming_width();
  return (streaming > 0 && streaming < length) ? streaming : length;
}

bool is_plain(const tlm::tlm_generic_payload& p) {
  return p.get_byte_enable_ptr() == nullptr && footprint(p) == p.get_data_length();
}
}  // namespace

MemoryTarget::MemoryTarget(const sc_core::sc_module_name& name, const MemoryTargetConfig& config,
                           trace::Writer* trace)
    : sc_module(name),
      target("target", config.access.initiators),
      config_(config),
      stats_(this->name()),
      reads_(stats_.counter("reads", "count", "read accesses served")),
      writes_(stats_.counter("writes", "count", "write accesses served")),
      read_bytes_(stats_.counter("read_bytes", "B", "bytes read")),
      written_bytes_(stats_.counter("written_bytes", "B", "bytes written")),
      address_errors_(stats_.counter("address_errors", "count",
                                     "accesses beyond the capacity (TLM_ADDRESS_ERROR_RESPONSE)")),
      command_errors_(stats_.counter("command_errors", "count",
                                     "accesses neither read nor write (TLM_COMMAND_ERROR_RESPONSE)")),
      other_errors_(stats_.counter("other_errors", "count",
                                   "accesses without a data pointer or with bad byte enables")),
      resident_(stats_.scalar("resident", "B", "backing store allocated (pages written)")) {
  if (config_.capacity.bytes == 0) {
    throw std::invalid_argument(std::string("memory '") + this->name() +
                                "': capacity must be greater than 0 B");
  }
  stats_.scalar("capacity", "B", "addressable bytes").set(static_cast<double>(config_.capacity.bytes));
  access_ = std::make_unique<SharedResource>("access", config_.access, trace);
  for (unsigned i = 0; i < config_.access.initiators; ++i) {
    target[i].register_b_transport(this, &MemoryTarget::b_transport, static_cast<int>(i));
    target[i].register_transport_dbg(this, &MemoryTarget::transport_dbg, static_cast<int>(i));
  }
}

tlm::tlm_response_status MemoryTarget::check(const tlm::tlm_generic_payload& p) const {
  const tlm::tlm_command command = p.get_command();
  if (command != tlm::TLM_READ_COMMAND && command != tlm::TLM_WRITE_COMMAND) {
    return tlm::TLM_COMMAND_ERROR_RESPONSE;
  }
  if (p.get_data_length() > 0 && p.get_data_ptr() == nullptr) return tlm::TLM_GENERIC_ERROR_RESPONSE;
  if (p.get_byte_enable_ptr() != nullptr && p.get_byte_enable_length() == 0) {
    return tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE;
  }
  // Written so that address + span cannot overflow.
  const std::uint64_t span = footprint(p);
  if (span > config_.capacity.bytes || p.get_address() > config_.capacity.bytes - span) {
    return tlm::TLM_ADDRESS_ERROR_RESPONSE;
  }
  return tlm::TLM_OK_RESPONSE;
}

void MemoryTarget::count_error(tlm::tlm_response_status status) {
  switch (status) {
    case tlm::TLM_ADDRESS_ERROR_RESPONSE:
      address_errors_.add();
      break;
    case tlm::TLM_COMMAND_ERROR_RESPONSE:
      command_errors_.add();
      break;
    default:
      other_errors_.add();
      break;
  }
}

void MemoryTarget::b_transport(int port, tlm::tlm_generic_payload& payload, sc_core::sc_time& delay) {
  const tlm::tlm_response_status status = check(payload);
  if (status != tlm::TLM_OK_RESPONSE) {
    count_error(status);
    payload.set_response_status(status);
    return;
  }
  // Synchronize so that the ports' arbitration sees requests in simulated-time order.
  if (delay != sc_core::SC_ZERO_TIME) {
    sc_core::wait(delay);
    delay = sc_core::SC_ZERO_TIME;
  }
  access_->transfer(static_cast<unsigned>(port), payload.get_data_length());
  move_data(payload);
  if (payload.is_read()) {
    reads_.add();
    read_bytes_.add(payload.get_data_length());
  } else {
    writes_.add();
    written_bytes_.add(payload.get_data_length());
  }
  payload.set_dmi_allowed(false);
  payload.set_response_status(tlm::TLM_OK_RESPONSE);
}

unsigned int MemoryTarget::transport_dbg(int /*port*/, tlm::tlm_generic_payload& payload) {
  if (check(payload) != tlm::TLM_OK_RESPONSE) return 0;
  move_data(payload);
  return payload.get_data_length();
}

void MemoryTarget::move_data(tlm::tlm_generic_payload& p) {
  unsigned char* data = p.get_data_ptr();
  const std::uint64_t length = p.get_data_length();
  const std::uint64_t address = p.get_address();
  const bool write = p.is_write();
  if (is_plain(p)) {
    if (write) {
      write_block(address, data, length);
    } else {
      read_block(address, data, length);
    }
    return;
  }
  // Byte enables and/or streaming: byte by byte (rare; correctness over speed).
  const unsigned char* enables = p.get_byte_enable_ptr();
  const std::uint64_t enables_length = p.get_byte_enable_length();
  const std::uint64_t span = footprint(p);
  for (std::uint64_t i = 0; i < length; ++i) {
    if (enables != nullptr && enables[i % enables_length] != TLM_BYTE_ENABLED) continue;
    const std::uint64_t a = address + i % span;
    if (write) {
      write_block(a, data + i, 1);
    } else {
      read_block(a, data + i, 1);
    }
  }
}

void MemoryTarget::read_block(std::uint64_t address, unsigned char* out, std::uint64_t length) const {
  while (length > 0) {
    const std::uint64_t page = address / kPageBytes;
    const std::uint64_t offset = address % kPageBytes;
    const std::uint64_t n = std::min(length, kPageBytes - offset);
    const auto it = pages_.find(page);
    if (it == pages_.end()) {
      std::memset(out, 0, n);  // never written
    } else {
      std::memcpy(out, it->second.get() + offset, n);
    }
    address += n;
    out += n;
    length -= n;
  }
}

void MemoryTarget::write_block(std::uint64_t address, const unsigned char* in, std::uint64_t length) {
  while (length > 0) {
    const std::uint64_t offset = address % kPageBytes;
    const std::uint64_t n = std::min(length, kPageBytes - offset);
    std::memcpy(page_for_write(address / kPageBytes) + offset, in, n);
    address += n;
    in += n;
    length -= n;
  }
}

unsigned char* MemoryTarget::page_for_write(std::uint64_t page_index) {
  Page& page = pages_[page_index];
  if (!page) {
    page = std::make_unique<unsigned char[]>(kPageBytes);  // value-initialized: zeros
    resident_.set(static_cast<double>(resident_bytes()));
  }
  return page.get();
}

}  // namespace wse::tlm_blocks
