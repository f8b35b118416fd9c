// The KV ingress of a CS-3 (apps/experiments/wafer_kv_path.h) against the per-PE fabric.
#include <gtest/gtest.h>

#include "apps/experiments/wafer_kv_path.h"
#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/fabric/io_edge.h"

namespace wse::experiments {
namespace {

wafer::WaferConfig small_wafer(std::uint32_t width, std::uint32_t height) {
  wafer::WaferConfig w;
  w.width = width;
  w.height = height;
  w.clock = Frequency{1.1e9};
  w.io_bandwidth = Bandwidth{1.2e12 / 8};  // 136.4 B per cycle
  w.fabric.width = width;
  w.fabric.height = height;
  return w;
}

// Rate and latency by hand. A region of 40 rows (y 0..39) and columns 50..59 on a
// 60 x 40 wafer, H = R = 1: the rows take 40 x 4 B = 160 B per cycle, more than the edge's
// 136.4, so the edge sets the rate (150 GB/s); the farthest column is 59 hops from the
// edge PE, so carry = 59 + 2 + 1 = 62 cycles.
TEST(WaferIngress, RateIsTheNarrowerOfEdgeAndRowsAndCarryIsTheHops) {
  const wafer::WaferConfig w = small_wafer(60, 40);
  wafer::LayerRegion r;
  r.x0 = 50;
  r.width = 10;
  r.y0 = 0;
  r.height = 40;
  const WaferIngress in = wafer_ingress(w, {r});
  EXPECT_DOUBLE_EQ(in.bytes_per_s, 1.2e12 / 8);
  EXPECT_NEAR(in.carry_s * 1.1e9, 62.0, 1e-9);
  // 20 rows take 80 B per cycle = 88 GB/s, below the edge: the rows set the rate.
  r.height = 20;
  EXPECT_NEAR(wafer_ingress(w, {r}).bytes_per_s, 20 * 4 * 1.1e9, 1e-3);
  // Two regions sharing rows count each row once.
  wafer::LayerRegion r2 = r;
  r2.x0 = 0;
  r2.width = 5;
  EXPECT_NEAR(wafer_ingress(w, {r, r2}).bytes_per_s, 20 * 4 * 1.1e9, 1e-3);
}

// The same ingress simulated wavelet by wavelet: 40 x 4 KiB enter through the IoEdge as
// 136-byte messages (one edge cycle each) dealt round-robin over the region's 40 rows,
// each to the row's farthest PE (59, y), so every wavelet crosses 59 hops. Formula:
// 163,840 B / 136.36 B per cycle = 1,201.5 cycles at the edge + 62 carry = 1,263.5. The
// simulation's messages hold the edge for whole cycles (ceil(136 / 136.36) = 1, so 1,205
// messages take 1,205 cycles) and the last one streams its 34 wavelets through its
// row's ramp: the fabric may be later by up to one message (34 cycles) plus the
// rounding (4 cycles), never earlier.
TEST(WaferIngress, AgreesWithThePerPeFabricWithinOneMessage) {
  const wafer::WaferConfig w = small_wafer(60, 40);
  wafer::LayerRegion r;
  r.x0 = 50;
  r.width = 10;
  r.y0 = 0;
  r.height = 40;
  const std::uint64_t bytes = 40 * 4096;
  const WaferIngress in = wafer_ingress(w, {r});
  const double formula_cycles = static_cast<double>(bytes) / in.bytes_per_s * 1.1e9 + in.carry_s * 1.1e9;

  wafer::Fabric fabric(w.fabric);
  wafer::IoEdgeConfig ec;
  ec.bandwidth = w.io_bandwidth;
  ec.clock = w.clock;
  wafer::IoEdge edge(fabric, ec);
  std::uint64_t last = 0;
  fabric.on_delivery(
      [&](wafer::PeCoord, wafer::MessageId, std::uint64_t cycle) { last = std::max(last, cycle); });
  std::uint64_t left = bytes;
  for (std::uint32_t k = 0; left > 0; ++k) {
    const std::uint64_t b = std::min<std::uint64_t>(136, left);
    edge.send({59, k % 40}, b, 0);
    left -= b;
  }
  fabric.run_until_idle();
  const double simulated = static_cast<double>(last + 1);
  EXPECT_GE(simulated, formula_cycles - 1.0);
  EXPECT_LE(simulated, formula_cycles + 34.0 + 4.0);
}

}  // namespace
}  // namespace wse::experiments
