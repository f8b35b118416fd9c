#include "neuroncore/instance/torus.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>
#include <stdexcept>

namespace wse::neuron {

std::string_view to_string(Collective c) {
  switch (c) {
    case Collective::kAllReduce: return "all_reduce";
    case Collective::kAllGather: return "all_gather";
    case Collective::kReduceScatter: return "reduce_scatter";
  }
  return "?";
}

namespace {

struct Phase {
  int dim;               // 0 = X, 1 = Y
  double bytes_per_step;  // per direction
};

struct Arrival {
  std::uint64_t at_ps;
  std::uint64_t seq;
  std::uint32_t chip;  // receiver
  std::uint32_t phase;
  int dir;             // 0 = +, 1 = -
  std::uint32_t step;  // 1-based
  bool operator>(const Arrival& o) const { return at_ps != o.at_ps ? at_ps > o.at_ps : seq > o.seq; }
};

}  // namespace

CollectiveResult run_collective(const InstanceConfig& cfg, Collective c, std::uint64_t bytes) {
  const std::uint32_t nx = cfg.chips_x, ny = cfg.chips_y, p = cfg.chips();
  if (nx == 0 || ny == 0) throw std::invalid_argument("instance: torus dimensions must be >= 1");
  const double s = static_cast<double>(bytes);
  std::vector<Phase> phases;
  const bool rs = c != Collective::kAllGather;
  const bool ag = c != Collective::kReduceScatter;
  if (rs) {
    if (nx > 1) phases.push_back({0, s / (2.0 * nx)});
    if (ny > 1) phases.push_back({1, s / (2.0 * nx * ny)});
  }
  if (ag) {
    if (ny > 1) phases.push_back({1, s / (2.0 * nx * ny)});
    if (nx > 1) phases.push_back({0, s / (2.0 * nx)});
  }
  auto ring_size = [&](int dim) { return dim == 0 ? nx : ny; };
  auto neighbour = [&](std::uint32_t chip, int dim, int dir) {
    const std::uint32_t x = chip % nx, y = chip / nx;
    const int step = dir == 0 ? 1 : -1;
    if (dim == 0) return static_cast<std::uint32_t>((x + nx + step) % nx + y * nx);
    return static_cast<std::uint32_t>(x + ((y + ny + step) % ny) * nx);
  };
  // Directed links: chip x (dim, dir).
  std::vector<double> link_free(static_cast<std::size_t>(p) * 4, 0.0);
  double link_busy = 0.0;
  const double bytes_per_ps = cfg.link_bandwidth.bytes_per_s * 1e-12;
  const std::uint64_t latency_ps = static_cast<std::uint64_t>(std::llround(cfg.link_latency.seconds * 1e12));
  std::priority_queue<Arrival, std::vector<Arrival>, std::greater<>> q;
  std::uint64_t seq = 0;
  CollectiveResult r;
  auto send = [&](std::uint32_t from, std::uint32_t phase, int dir, std::uint32_t step, std::uint64_t t) {
    const Phase& ph = phases[phase];
    double& free = link_free[from * 4 + ph.dim * 2 + dir];
    const double start = std::max(free, static_cast<double>(t));
    const double serial = ph.bytes_per_step / bytes_per_ps;
    free = start + serial;
    link_busy += serial;
    ++r.messages;
    q.push(Arrival{static_cast<std::uint64_t>(std::llround(free)) + latency_ps, seq++,
                   neighbour(from, ph.dim, dir), phase, dir, step});
  };
  // Per chip: directions finished in its current phase.
  std::vector<int> done_dirs(p, 0);
  std::vector<std::uint32_t> phase_of(p, 0);
  std::vector<std::uint64_t> finish(p, 0);
  auto start_phase = [&](std::uint32_t chip, std::uint32_t phase, std::uint64_t t) {
    phase_of[chip] = phase;
    done_dirs[chip] = 0;
    for (int dir = 0; dir < 2; ++dir) send(chip, phase, dir, 1, t);
  };
  if (!phases.empty()) {
    for (std::uint32_t chip = 0; chip < p; ++chip) start_phase(chip, 0, 0);
  }
  // A chip may receive a message of its next phase before it finished the current one
  // (a neighbour ahead of it); such arrivals wait here.
  std::vector<std::vector<Arrival>> early(p);
  std::function<void(const Arrival&)> receive = [&](const Arrival& a) {
    const std::uint32_t n = ring_size(phases[a.phase].dim);
    if (a.step < n - 1) {
      send(a.chip, a.phase, a.dir, a.step + 1, a.at_ps);
      return;
    }
    if (++done_dirs[a.chip] < 2) return;
    finish[a.chip] = a.at_ps;
    if (a.phase + 1 < phases.size()) {
      start_phase(a.chip, a.phase + 1, a.at_ps);
      std::vector<Arrival> waiting;
      waiting.swap(early[a.chip]);
      for (Arrival w : waiting) {
        w.at_ps = std::max(w.at_ps, a.at_ps);
        receive(w);
      }
    }
  };
  while (!q.empty()) {
    const Arrival a = q.top();
    q.pop();
    if (a.phase != phase_of[a.chip]) {
      early[a.chip].push_back(a);
      continue;
    }
    receive(a);
  }
  r.time_ps = *std::max_element(finish.begin(), finish.end());
  const double t = static_cast<double>(r.time_ps) * 1e-12;
  r.algorithm_bandwidth = t > 0 ? s / t : 0.0;
  const double factor = c == Collective::kAllReduce ? 2.0 * (p - 1) / p : (p - 1.0) / p;
  r.bus_bandwidth = r.algorithm_bandwidth * factor;
  r.link_utilization = r.time_ps > 0 ? link_busy / (static_cast<double>(p) * 4 * r.time_ps) : 0.0;
  return r;
}

}  // namespace wse::neuron

#include "systemc_models/config/config.h"

namespace wse::neuron {

InstanceConfig read_instance_config(config::Section& s) {
  const InstanceConfig d;
  InstanceConfig c;
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict overlap in
  // `"[" + std::string&&` (inlined basic_string::insert), which failed Release builds with -Werror.
  std::string def_torus = "[";
  def_torus += std::to_string(d.chips_x);
  def_torus += ", ";
  def_torus += std::to_string(d.chips_y);
  def_torus += "]";
  const std::vector<std::int64_t> torus = s.integer_list(
      "torus", {.doc = "chips along X and Y of the NeuronLink torus", .def = def_torus});
  if (torus.size() != 2 || torus[0] < 1 || torus[1] < 1 || torus[0] * torus[1] > 4096) {
    s.fail("torus", "expected two positive chip counts [x, y] (at most 4096 chips)");
  }
  c.chips_x = static_cast<std::uint32_t>(torus[0]);
  c.chips_y = static_cast<std::uint32_t>(torus[1]);
  const std::string def_bw = wse::to_string(d.link_bandwidth);
  const std::string def_lat = wse::to_string(d.link_latency);
  c.link_bandwidth = s.bandwidth("link_bandwidth", {.doc = "bandwidth of one link, each direction",
                                                    .def = def_bw, .min = 0, .min_exclusive = true});
  c.link_latency = s.duration("link_latency", {.doc = "latency of one link hop", .def = def_lat,
                                               .min = 0});
  return c;
}

}  // namespace wse::neuron
