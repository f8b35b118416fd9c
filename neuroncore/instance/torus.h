// A Trainium instance: chips on a 2D NeuronLink torus, and the collectives of tensor
// parallelism (all-reduce, all-gather, reduce-scatter) run as messages on its links.
//
// Each chip has one link to each of its four neighbours (+X, -X, +Y, -Y; in a ring of
// two, + and - reach the same chip over two links). A directed link serializes the
// messages sent on it in order (bandwidth) and delivers each `link_latency` after its
// last byte. The collectives are bidirectional rings along each torus dimension: half
// of the data goes each way round. An all-reduce of S bytes is
//   reduce-scatter along X (nx - 1 steps of S / (2 nx) bytes per direction),
//   reduce-scatter along Y (ny - 1 steps of S / (2 nx ny)),
//   all-gather along Y, then along X (the same steps in reverse order);
// a reduce-scatter is the first half, an all-gather (S = bytes gathered per chip) the
// second. A chip sends step s + 1 of a ring once it has received step s; it starts a
// phase once both directions of its previous phase are done. Reductions are taken as
// free (the vector engine keeps up with the links).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
}

namespace wse::neuron {

struct InstanceConfig {
  std::uint32_t chips_x = 4;  // trn2.48xlarge: "16 Trainium2 chips in a 4x4 2D torus"
  std::uint32_t chips_y = 4;
  // Per direction of one link: 1,024 GiB/s per chip over 4 links x 2 directions.
  Bandwidth link_bandwidth{128.0 * 1024 * 1024 * 1024};
  Duration link_latency{1e-6};  // assumption
  std::uint32_t chips() const { return chips_x * chips_y; }
};

enum class Collective { kAllReduce, kAllGather, kReduceScatter };
std::string_view to_string(Collective c);

struct CollectiveResult {
  std::uint64_t time_ps = 0;
  std::uint64_t messages = 0;
  double algorithm_bandwidth = 0.0;  // bytes / time (B/s)
  double bus_bandwidth = 0.0;        // algorithm bandwidth x the algorithm's traffic factor
  double link_utilization = 0.0;     // busy time over all directed links / (links x time)
};

// Simulates one collective of `bytes` (the buffer each chip holds: input of all-reduce
// and reduce-scatter, output of all-gather) starting on every chip at time 0.
CollectiveResult run_collective(const InstanceConfig& cfg, Collective c, std::uint64_t bytes);

InstanceConfig read_instance_config(config::Section& s);

}  // namespace wse::neuron
