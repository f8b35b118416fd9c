// A Trainium instance: chips on a 2D NeuronLink torus, and the collectives of tensor
// parallelism (all-reduce, all-gather, reduce-scatter) run as messages on its links.
//
// Each chip has one link to each of its four neighbours (+X, -X, +Y, -Y; in a ring of
// two, + and - reach the same chip over two links). A directed link serializes the
// messages sent on it in order (bandwidth) and delivers each `link_latency` after its
// last byte. A message to a chip that is not a neighbour goes X first, then Y, the short
// way round (a tie, half the ring away, sends half of the bytes each way), cut through:
// it holds each link of its path for its bytes and reaches the next one `link_latency`
// after it entered the previous one.
//
// A collective is a schedule of rounds. In every round each chip sends its messages and
// waits for the messages of the round addressed to it (the data it reduces or forwards
// next) before it starts the next round. Before the first round the group pays
// `collective_setup` once (the ranks' synchronisation and the DMA descriptor setup).
// Reductions are free (the vector engine keeps up with the links). Algorithms, for S
// bytes (the buffer each chip holds: input of all-reduce and reduce-scatter, output of
// all-gather) on p chips:
//   ring       a bidirectional ring through all chips (a snake over the torus: every
//              ring step is one link); p - 1 rounds of S / (2p) per direction for a
//              reduce-scatter or an all-gather, both for an all-reduce;
//   rdh        recursive halving-doubling (p a power of two): reduce-scatter in log2 p
//              rounds with partner chip ^ 2^k and S / 2^(k+1) bytes (k = 0, 1, ...: the
//              largest message to the nearest partner), all-gather the same rounds in
//              reverse order;
//   mesh       one round: every chip sends S / p to each other chip (reduce-scatter, or
//              all-gather), routed over the torus;
//   torus2d    bidirectional rings along each dimension: reduce-scatter along X
//              (nx - 1 rounds of S / (2 nx) per direction), along Y (ny - 1 rounds of
//              S / (2 nx ny)), all-gather along Y, then along X.
// `auto` simulates every algorithm that applies and takes the fastest, as the Neuron
// runtime chooses its algorithm by message size.
//
// Topology `switch` (Trainium3: "NeuronSwitch-v1 all-to-all"): the chips hang off one
// non-blocking switch, each by one port, an up link and a down link of `link_bandwidth`
// each. Every message crosses two links, the sender's up link and the receiver's down
// link (cut through, as on the torus). The ring, rdh (p a power of two) and mesh
// algorithms run on it (the ring in chip order); torus2d does not apply.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
}

namespace wse::neuron {

enum class CollectiveAlgorithm : std::uint8_t { kRing, kRdh, kMesh, kTorus2d, kAuto };
inline constexpr std::array<CollectiveAlgorithm, 4> kCollectiveAlgorithms{
    CollectiveAlgorithm::kRing, CollectiveAlgorithm::kRdh, CollectiveAlgorithm::kMesh,
    CollectiveAlgorithm::kTorus2d};
std::string_view to_string(CollectiveAlgorithm a);

enum class Topology : std::uint8_t { kTorus, kSwitch };

struct InstanceConfig {
  Topology topology = Topology::kTorus;
  // Torus: chips along X and Y. Switch: chips_x chips, chips_y = 1.
  std::uint32_t chips_x = 4;  // trn2.48xlarge: "16 Trainium2 chips in a 4x4 2D torus"
  std::uint32_t chips_y = 4;
  // Per direction of one link: 1,024 GiB/s per chip over 4 links x 2 directions.
  Bandwidth link_bandwidth{128.0 * 1024 * 1024 * 1024};
  // "per-hop of Ring/KangaRing ~1-2 us": the middle of the range.
  Duration link_latency{1.5e-6};
  // assumption: one handshake with the neighbours (one hop) + one descriptor-generated
  // DMA instruction (~600 ns).
  Duration collective_setup{2.1e-6};
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto;
  std::uint32_t chips() const { return chips_x * chips_y; }
  // Directed links per chip: four neighbours on the torus, a port's up and down link on
  // the switch.
  std::uint32_t links_per_chip() const { return topology == Topology::kSwitch ? 2 : 4; }
};

enum class Collective { kAllReduce, kAllGather, kReduceScatter };
std::string_view to_string(Collective c);

struct CollectiveResult {
  std::uint64_t time_ps = 0;   // setup included
  std::uint64_t messages = 0;  // message parts sent (a tie split in two counts two)
  std::uint32_t rounds = 0;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kTorus2d;  // the one that ran
  // The alpha-beta price of the same schedule: setup + per round alpha x its most hops +
  // beta x the most bytes on one link (a chip's bytes spread evenly over its useful links,
  // at least its largest message); no queueing between rounds' messages.
  std::uint64_t alpha_beta_ps = 0;
  double algorithm_bandwidth = 0.0;  // bytes / time (B/s)
  double bus_bandwidth = 0.0;        // algorithm bandwidth x the collective's traffic factor
  double link_utilization = 0.0;     // busy time over all directed links / (links x time)
};

// Whether `a` can run on the torus of `cfg` (rdh: a power-of-two number of chips on a
// torus whose sides are powers of two; torus2d: not on a switch).
bool algorithm_applies(const InstanceConfig& cfg, CollectiveAlgorithm a);

// Simulates one collective of `bytes` starting on every chip at time 0 with
// cfg.algorithm (auto: the fastest that applies).
CollectiveResult run_collective(const InstanceConfig& cfg, Collective c, std::uint64_t bytes);
// With one algorithm (not auto); throws std::invalid_argument when it does not apply.
CollectiveResult run_collective(const InstanceConfig& cfg, Collective c, std::uint64_t bytes,
                                CollectiveAlgorithm a);

// The bandwidth-only floor of a collective on the group: the bytes every chip must send
// (all-reduce 2 (p - 1) / p x S, the others (p - 1) / p x S) over its useful links (two
// per torus dimension longer than one chip; one on a switch).
double collective_floor_seconds(const InstanceConfig& cfg, Collective c, std::uint64_t bytes);

InstanceConfig read_instance_config(config::Section& s);

}  // namespace wse::neuron
