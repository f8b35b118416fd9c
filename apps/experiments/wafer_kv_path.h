// KV caches from prefill machines to CS-3 decode systems. A decode system is a pipeline
// of `wafers` CS-3s, each holding some of the model's layers; the KV of a layer goes to
// the CS-3 that holds the layer:
//   1. over the EFA network (efa_link) to that CS-3's attachment (receiver
//      system * wafers + wafer), one RDMA write per wafer the layers span, in parallel;
//   2. through the CS-3's system I/O edge, a serializer of `wafer.io_bandwidth` shared by
//      everything entering that wafer, cut through: it takes the bytes as they arrive
//      (it cannot finish before the EFA write does, nor faster than the edge allows);
//   3. across the fabric from the west edge to the PEs of the layers' regions: each
//      region row takes one wavelet (4 B) per cycle through its edge PE's ramp, so the
//      ingress rate is min(io_bandwidth, rows x 4 B x clock), and the last wavelet lands
//      x_max x hop_latency + 2 ramp_latency + 1 cycles after it crosses (x_max: the
//      farthest column; the edge PE is column 0).
// With a timeline, each KV part is a slice on its CS-3's `io_edge` track, joined to the
// request's flow (prefill batch -> KV ingress on each CS-3 -> decode steps).
// Step 3's rate and latency are the per-PE fabric's own rules for uncontended rows
// (docs/wse_mesh.md, "System I/O edge"); a test checks them against the per-PE fabric
// simulation of IoEdge on a small region. Simulating every KV wavelet of a whole trace
// on the full fabric (hundreds of millions of wavelet-hops per request) is what this
// avoids.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include <systemc>

#include "apps/experiments/kv_paths.h"
#include "systemc_models/stats/stats.h"
#include "workloads/serving/backends.h"
#include "wse_mesh/decode/wafer_decoder.h"
#include "wse_mesh/wafer_config.h"

namespace wse::experiments {

// Ingress of `bytes` into a set of regions of one wafer: the rate and the carry latency
// of step 3 above.
struct WaferIngress {
  double bytes_per_s = 0.0;  // min(io_bandwidth, rows x 4 B x clock)
  double carry_s = 0.0;      // from crossing the edge to the last wavelet in its PE
};
WaferIngress wafer_ingress(const wafer::WaferConfig& w, const std::vector<wafer::LayerRegion>& regions);

class WaferKvPath : public sc_core::sc_module, public serving::KvPath, public stats::Provider {
 public:
  // `regions`: the placement of one decode system (all systems are placed alike);
  // `wafers`: CS-3s per decode system; `systems`: decode systems; `faults`: the EFA part
  // of the run's fault schedule; `sender_span`: EFA senders per prefill machine (a GPU
  // group over several instances sends from each, EfaKvPath).
  WaferKvPath(const sc_core::sc_module_name& name, const efa::EfaNetworkConfig& efa,
              const efa::EfaFaults& faults, const wafer::WaferConfig& wafer,
              std::vector<wafer::LayerRegion> regions, unsigned wafers, unsigned systems,
              trace::Writer* trace, unsigned sender_span = 1);
  void transfer(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) override;
  void transfer_layers(unsigned prefill_instance, unsigned decode_system, std::uint32_t first_layer,
                       std::uint32_t last_layer, std::uint64_t bytes, std::uint64_t request) override;
  const stats::Group& stats() const override { return stats_; }
  const EfaKvPath& efa() const { return efa_; }

 private:
  void to_wafer(unsigned prefill_instance, unsigned decode_system, unsigned wafer, std::uint32_t first_layer,
                std::uint32_t last_layer, std::uint64_t bytes, std::uint64_t request);

  EfaKvPath efa_;
  wafer::WaferConfig wafer_;
  std::vector<wafer::LayerRegion> regions_;
  unsigned wafers_;
  struct Edge {
    double free_s = 0.0;  // the edge serializer is busy until then
    stats::Utilization* util = nullptr;
    trace::TrackId track{};
  };
  std::vector<Edge> edges_;  // per CS-3: system * wafers + wafer
  std::map<std::pair<std::uint32_t, std::uint32_t>, WaferIngress> ingress_;  // by (first, last) layer
  trace::Writer* trace_;
  stats::Group stats_;
  stats::Counter& bytes_;
};

}  // namespace wse::experiments
