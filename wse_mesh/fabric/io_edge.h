// The wafer's system I/O edge: data from outside the wafer (weights, KV caches arriving
// over EFA, tokens) crosses the edge at the machine's I/O bandwidth, enters the fabric
// at the edge PE of the destination's row, and is carried over the fabric to the PE
// that needs it.
//
// Timing: the edge is one shared serializer of `bandwidth` (bytes per cycle =
// bandwidth / clock), taken by messages in arrival order; a message of b bytes holds it
// for ceil(b / bytes_per_cycle) cycles. Its first wavelet is across one cycle after the
// message starts crossing; from there the edge PE's ramp takes one wavelet per cycle and
// the message travels dimension-ordered on `color` like any other. On a CS-3
// (1.2 Tb/s at 1.1 GHz: 136 B = 34 wavelets per cycle) one row's ramp takes 4 B per
// cycle, so the full edge bandwidth needs messages spread over at least 35 rows.
#pragma once

#include <cstdint>

#include "systemc_models/units/units.h"
#include "wse_mesh/fabric/fabric.h"

namespace wse::wafer {

struct IoEdgeConfig {
  Bandwidth bandwidth{1.2e12 / 8};  // CS-3 system I/O (hardware.md)
  Frequency clock{1.1e9};           // wafer clock (assumed 1.1 GHz on WSE-3)
  Port side = Port::kWest;          // assumption: data enters on the west edge
  Color color = 23;                 // assumption: the last color is kept for I/O, dimension-ordered
};

class IoEdge {
 public:
  IoEdge(Fabric& fabric, const IoEdgeConfig& cfg);
  // `bytes` arriving from outside, ready at the edge at `ready_cycle`, for PE `dest`.
  // Returns the fabric message carrying them.
  MessageId send(PeCoord dest, std::uint64_t bytes, std::uint64_t ready_cycle);
  double bytes_per_cycle() const { return bytes_per_cycle_; }
  std::uint64_t busy_cycles() const { return busy_cycles_; }  // edge serializer busy time
  std::uint64_t bytes_sent() const { return bytes_; }

 private:
  Fabric& fabric_;
  IoEdgeConfig cfg_;
  double bytes_per_cycle_;
  std::uint64_t free_cycle_ = 0;
  std::uint64_t busy_cycles_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace wse::wafer
