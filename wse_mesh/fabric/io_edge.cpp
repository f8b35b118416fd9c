#include "wse_mesh/fabric/io_edge.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace wse::wafer {

IoEdge::IoEdge(Fabric& fabric, const IoEdgeConfig& cfg)
    : fabric_(fabric), cfg_(cfg), bytes_per_cycle_(cfg.bandwidth.bytes_per_s / cfg.clock.hz) {
  if (!(bytes_per_cycle_ > 0.0)) throw std::invalid_argument("io edge: bandwidth and clock must be positive");
  if (cfg_.side == Port::kRamp)
    throw std::invalid_argument("io edge: side must be NORTH, EAST, SOUTH or WEST");
  fabric_.set_dimension_ordered(cfg_.color);
}

MessageId IoEdge::send(PeCoord dest, std::uint64_t bytes, std::uint64_t ready_cycle) {
  if (bytes == 0) throw std::invalid_argument("io edge: a message has at least one byte");
  const FabricConfig& fc = fabric_.config();
  PeCoord entry = dest;
  switch (cfg_.side) {
    case Port::kWest:
      entry.x = 0;
      break;
    case Port::kEast:
      entry.x = fc.width - 1;
      break;
    case Port::kNorth:
      entry.y = 0;
      break;
    case Port::kSouth:
      entry.y = fc.height - 1;
      break;
    case Port::kRamp:
      break;
  }
  const std::uint64_t start = std::max({ready_cycle, free_cycle_, fabric_.now()});
  const auto hold = static_cast<std::uint64_t>(std::ceil(static_cast<double>(bytes) / bytes_per_cycle_));
  free_cycle_ = start + hold;
  busy_cycles_ += hold;
  bytes_ += bytes;
  const auto wavelets = static_cast<std::uint32_t>((bytes + 3) / 4);
  return fabric_.inject(entry, cfg_.color, wavelets, start + 1, dest);
}

}  // namespace wse::wafer
