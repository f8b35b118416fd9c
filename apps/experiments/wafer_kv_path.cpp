#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn: one EFA write per wafer, in parallel
#include "apps/experiments/wafer_kv_path.h"

#include <algorithm>
#include <set>
#include <string>

namespace wse::experiments {

WaferIngress wafer_ingress(const wafer::WaferConfig& w, const std::vector<wafer::LayerRegion>& regions) {
  std::set<std::uint32_t> rows;
  std::uint32_t x_max = 0;
  for (const auto& r : regions) {
    for (std::uint32_t y = r.y0; y < r.y0 + r.height; ++y) rows.insert(y);
    x_max = std::max(x_max, r.x0 + r.width - 1);
  }
  const double clock = w.clock.hz;
  WaferIngress in;
  constexpr double kWaveletBytes = 4.0;  // 32-bit wavelets (SDK)
  in.bytes_per_s =
      std::min(w.io_bandwidth.bytes_per_s, static_cast<double>(rows.size()) * kWaveletBytes * clock);
  // The edge PE is x = 0: x_max hops to the farthest column, the two ramps (into the
  // edge PE's router, out to the destination PE) and the cycle a wavelet takes to cross.
  const double cycles =
      static_cast<double>(x_max) * w.fabric.hop_latency_cycles + 2.0 * w.fabric.ramp_latency_cycles + 1.0;
  in.carry_s = cycles / clock;
  return in;
}

WaferKvPath::WaferKvPath(const sc_core::sc_module_name& name, const efa::EfaNetworkConfig& efa,
                         const efa::EfaFaults& faults, const wafer::WaferConfig& wafer,
                         std::vector<wafer::LayerRegion> regions, unsigned wafers, unsigned systems,
                         trace::Writer* trace, unsigned sender_span)
    : sc_module(name),
      efa_("efa_path", efa, faults, trace, sender_span),
      wafer_(wafer),
      regions_(std::move(regions)),
      wafers_(wafers),
      trace_(trace),
      stats_(std::string(basename())),
      bytes_(stats_.counter("bytes", "B", "KV bytes landed in wafer SRAM")) {
  edges_.resize(static_cast<std::size_t>(systems) * wafers);
  for (std::size_t i = 0; i < edges_.size(); ++i) {
    const std::string cs3 = "cs3_" + std::to_string(i);
    edges_[i].util = &stats_.child(cs3).utilization("io_edge", "system I/O edge busy taking KV caches in");
    if (trace_) edges_[i].track = trace_->track(cs3, "io_edge");
  }
}

void WaferKvPath::transfer(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) {
  const auto layers = static_cast<std::uint32_t>(regions_.size());
  transfer_layers(prefill_instance, decode_system, 0, layers - 1, bytes, 0);
}

void WaferKvPath::transfer_layers(unsigned prefill_instance, unsigned decode_system,
                                  std::uint32_t first_layer, std::uint32_t last_layer, std::uint64_t bytes,
                                  std::uint64_t request) {
  // Each layer's share of `bytes` (an exact integer split), summed per wafer.
  const std::uint64_t n = last_layer - first_layer + 1;
  struct Part {
    unsigned wafer;
    std::uint32_t first, last;
    std::uint64_t bytes;
  };
  std::vector<Part> parts;
  for (std::uint32_t l = first_layer; l <= last_layer; ++l) {
    const std::uint64_t share = bytes * (l - first_layer + 1) / n - bytes * (l - first_layer) / n;
    const unsigned w = regions_.at(l).wafer;
    if (parts.empty() || parts.back().wafer != w) parts.push_back({w, l, l, 0});
    parts.back().last = l;
    parts.back().bytes += share;
  }
  if (parts.size() == 1) {
    to_wafer(prefill_instance, decode_system, parts[0].wafer, parts[0].first, parts[0].last, parts[0].bytes,
             request);
    return;
  }
  sc_core::sc_event_and_list all;
  std::vector<sc_core::sc_process_handle> handles;
  for (const Part& p : parts) {
    handles.push_back(sc_core::sc_spawn(
        [this, prefill_instance, decode_system, p, request] {
          to_wafer(prefill_instance, decode_system, p.wafer, p.first, p.last, p.bytes, request);
        },
        sc_core::sc_gen_unique_name("kv_part")));
    all &= handles.back().terminated_event();
  }
  sc_core::wait(all);
}

void WaferKvPath::to_wafer(unsigned prefill_instance, unsigned decode_system, unsigned wafer,
                           std::uint32_t first_layer, std::uint32_t last_layer, std::uint64_t bytes,
                           std::uint64_t request) {
  if (bytes == 0) return;
  const unsigned cs3 = decode_system * wafers_ + wafer;
  const double start = sc_core::sc_time_stamp().to_seconds();
  efa_.transfer(prefill_instance, cs3, bytes);
  const double arrived = sc_core::sc_time_stamp().to_seconds();
  auto it = ingress_.find({first_layer, last_layer});
  if (it == ingress_.end()) {
    const std::vector<wafer::LayerRegion> dest(regions_.begin() + first_layer,
                                               regions_.begin() + last_layer + 1);
    it = ingress_.emplace(std::make_pair(first_layer, last_layer), wafer_ingress(wafer_, dest)).first;
  }
  const WaferIngress in = it->second;
  Edge& e = edges_.at(cs3);
  // Cut through: the edge takes the bytes as they arrive, behind whatever it is already
  // taking in, and cannot finish before the last byte has arrived.
  const double edge_start = std::max(start, e.free_s);
  const double edge_end = std::max(arrived, edge_start + static_cast<double>(bytes) / in.bytes_per_s);
  e.free_s = edge_end;
  e.util->add_busy(static_cast<double>(bytes) / wafer_.io_bandwidth.bytes_per_s);
  bytes_ += bytes;
  const double done = edge_end + in.carry_s;
  if (trace_) {
    trace_->slice(e.track,
                  "KV r" + std::to_string(request) + " L" + std::to_string(first_layer) + "-" +
                      std::to_string(last_layer),
                  edge_start, done - edge_start, {{"bytes", std::to_string(bytes)}});
    trace_->flow(request, e.track, edge_start, false, false);
  }
  const double now = sc_core::sc_time_stamp().to_seconds();
  if (done > now) sc_core::wait(sim_delay(done - now, "a KV transfer into the wafer"));
}

}  // namespace wse::experiments
