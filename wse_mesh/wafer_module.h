// The wafer as one SystemC module: a per-PE fabric in flat arrays (never a module per
// PE) advanced in step with simulated time, and the system I/O edge behind a TLM-2.0
// target socket.
//
// `io` takes writes from outside the wafer (weights, KV caches arriving over EFA,
// tokens). The wafer's SRAM is one address space: address = PE index (y * width + x) *
// sram_bytes + offset within that PE. A write crosses the I/O edge (wse_mesh/fabric/io_edge.h),
// travels the fabric to the PE, and b_transport returns when its last wavelet has
// arrived. Reads, and writes that cross a PE boundary, are answered with TLM error
// responses.
//
// With `tile` = k > 1 the fabric is tiled (nodes of k x k PEs) and a write goes to the
// node holding its PE.
//
// The fabric thread simulates one cycle per clock period while anything is in flight
// and sleeps through idle spans, so an idle wafer costs no simulation time.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include "systemc_models/stats/stats.h"
#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/fabric/io_edge.h"
#include "wse_mesh/wafer_config.h"

namespace wse::wafer {

class WaferModule : public sc_core::sc_module, public stats::Provider {
 public:
  tlm_utils::simple_target_socket<WaferModule> io;

  WaferModule(const sc_core::sc_module_name& name, const WaferConfig& config);

  const stats::Group& stats() const override;
  const Fabric& fabric() const { return *fabric_; }
  const IoEdge& io_edge() const { return *edge_; }

 private:
  void b_transport(tlm::tlm_generic_payload& payload, sc_core::sc_time& delay);
  void run();
  std::uint64_t cycle_at_or_after(const sc_core::sc_time& t) const;
  void on_delivery(PeCoord pe, MessageId msg, std::uint64_t cycle);

  WaferConfig config_;
  sc_core::sc_time period_;
  std::unique_ptr<Fabric> fabric_;
  std::unique_ptr<IoEdge> edge_;
  sc_core::sc_event wake_;
  struct Pending {
    std::uint32_t remaining;
    sc_core::sc_event* done;
  };
  std::unordered_map<MessageId, Pending> pending_;

  mutable stats::Group stats_;
  stats::Counter& io_writes_;
  stats::Counter& io_bytes_;
  stats::Counter& io_errors_;
  stats::Counter& wavelet_hops_;
  stats::Utilization& links_;
  stats::Utilization& io_util_;
  stats::Scalar& fabric_bandwidth_;
};

}  // namespace wse::wafer
