#include "wse_mesh/wafer_module.h"

#include <string>

namespace wse::wafer {

WaferModule::WaferModule(const sc_core::sc_module_name& name, const WaferConfig& config)
    : sc_core::sc_module(name),
      io("io"),
      config_(config),
      period_(config.clock.period()),
      stats_(this->name()),
      io_writes_(stats_.counter("io_writes", "transactions", "writes that entered through the I/O edge")),
      io_bytes_(stats_.counter("io_bytes", "B", "bytes that entered through the I/O edge")),
      io_errors_(stats_.counter("io_errors", "transactions", "I/O transactions answered with an error")),
      wavelet_hops_(stats_.counter("wavelet_hops", "wavelets", "router-to-router link traversals")),
      links_(stats_.utilization("fabric_links", "busy fraction of all router-to-router link directions")),
      io_util_(stats_.utilization("io_edge", "busy fraction of the system I/O edge")),
      fabric_bandwidth_(stats_.scalar("fabric_bandwidth", "B/s",
                                      "aggregate of all link directions: 4 B x links x clock (derived)")) {
  FabricConfig fc = config_.fabric;
  fc.width = config_.width;
  fc.height = config_.height;
  fc = tiled(fc, config_.tile);
  fabric_ = std::make_unique<Fabric>(fc);
  IoEdgeConfig ec;
  ec.bandwidth = config_.io_bandwidth;
  ec.clock = config_.clock;
  ec.color = static_cast<Color>(fc.colors - 1);
  edge_ = std::make_unique<IoEdge>(*fabric_, ec);
  fabric_->on_delivery([this](PeCoord pe, MessageId m, std::uint64_t c) { on_delivery(pe, m, c); });
  // Link directions: (W - 1) * H east + the same west, (H - 1) * W south + north.
  const double links = 2.0 * ((fc.width - 1.0) * fc.height + (fc.height - 1.0) * fc.width);
  links_.set_lanes(links);
  fabric_bandwidth_.set(links * 4.0 * config_.clock.hz);
  io.register_b_transport(this, &WaferModule::b_transport);
  SC_HAS_PROCESS(WaferModule);
  SC_THREAD(run);
}

std::uint64_t WaferModule::cycle_at_or_after(const sc_core::sc_time& t) const {
  const std::uint64_t p = period_.value();
  return (t.value() + p - 1) / p;
}

const stats::Group& WaferModule::stats() const {
  // Brought up to date when read: the counters live in the fabric's flat arrays.
  const double period_s = period_.to_seconds();
  wavelet_hops_ += fabric_->wavelet_hops() - wavelet_hops_.value();
  links_.reset();
  links_.add_busy(static_cast<double>(fabric_->wavelet_hops()) * period_s);
  io_util_.reset();
  io_util_.add_busy(static_cast<double>(edge_->busy_cycles()) * period_s);
  return stats_;
}

void WaferModule::on_delivery(PeCoord, MessageId msg, std::uint64_t) {
  auto it = pending_.find(msg);
  if (it == pending_.end()) return;
  if (--it->second.remaining == 0) {
    it->second.done->notify(period_);  // the wavelet is in the PE at the end of this cycle
    pending_.erase(it);
  }
}

void WaferModule::b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
  const std::uint64_t window = config_.pe.sram_bytes;
  const std::uint64_t pes = static_cast<std::uint64_t>(config_.width) * config_.height;
  const std::uint64_t address = p.get_address();
  const std::uint64_t length = p.get_data_length();
  if (p.get_command() != tlm::TLM_WRITE_COMMAND) {
    io_errors_.add();
    p.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
    return;
  }
  if (length == 0 || address / window >= pes || address % window + length > window) {
    io_errors_.add();
    p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  wait(delay);
  delay = sc_core::SC_ZERO_TIME;
  const auto pe_index = static_cast<std::uint32_t>(address / window);
  const PeCoord dest{pe_index % config_.width / config_.tile, pe_index / config_.width / config_.tile};
  const std::uint64_t cycle = cycle_at_or_after(sc_core::sc_time_stamp());
  if (fabric_->idle()) fabric_->advance_to(cycle);
  const MessageId msg = edge_->send(dest, length, std::max(cycle, fabric_->now()));
  sc_core::sc_event done;
  pending_[msg] = Pending{fabric_->message(msg).wavelets, &done};
  io_writes_.add();
  io_bytes_ += length;
  wake_.notify(sc_core::SC_ZERO_TIME);
  wait(done);
  p.set_response_status(tlm::TLM_OK_RESPONSE);
}

void WaferModule::run() {
  for (;;) {
    if (fabric_->idle()) {
      wait(wake_);
      continue;
    }
    // Sleep until the next cycle with work, unless new work arrives first.
    const std::uint64_t next = fabric_->next_activity_cycle();
    if (next == UINT64_MAX || fabric_->deadlocked()) {  // report, then wait for new work
      SC_REPORT_ERROR("wse_mesh", "wafer fabric deadlock: wavelets wait for credits that can never return");
      wait(wake_);
      continue;
    }
    const sc_core::sc_time at = period_ * static_cast<double>(next);
    if (at > sc_core::sc_time_stamp()) {
      wait(at - sc_core::sc_time_stamp(), wake_);
      continue;
    }
    fabric_->advance_to(next);
    fabric_->step();
  }
}

}  // namespace wse::wafer
