// The EFA configuration of the hand-derived tests, and a write request: round numbers that give whole
// picoseconds per byte. Line 100 Gb/s = 12.5 GB/s -> 80 ps/B; host DMA 25 GB/s ->
// 40 ps/B; one path of 200 Gb/s = 25 GB/s -> 40 ps/B; packet grain.
#pragma once

#include "efa_link/efa_config.h"
#include "efa_link/srd_engine.h"

namespace wse::efa::testing {

inline EfaNetworkConfig simple_config() {
  EfaNetworkConfig c;
  c.sender.adapters = 1;
  c.sender.line_rate = Bandwidth{12.5e9};
  c.sender.mtu = Size{4096};
  c.sender.header = Size{64};
  c.sender.host_dma = Bandwidth{25e9};
  c.sender.nic_latency = Duration{1e-6};
  c.receiver = c.sender;
  c.fabric.paths = 1;
  c.fabric.path_capacity = Bandwidth{25e9};
  c.fabric.path_latency = Duration{10e-6};
  c.fabric.path_latency_spread = Duration{0};
  c.srd.retransmit_timeout = Duration{1e-3};
  c.srd.grain = Grain::Packet;
  return c;
}

// An RDMA write of `bytes` from machine `from` to machine `to`.
inline WorkRequest write(std::uint64_t bytes, std::uint32_t from = 0, std::uint32_t to = 1) {
  WorkRequest wr;
  wr.op = RdmaOp::Write;
  wr.initiator = from;
  wr.target = to;
  wr.bytes = bytes;
  return wr;
}

}  // namespace wse::efa::testing
