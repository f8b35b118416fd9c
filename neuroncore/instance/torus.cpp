#include "neuroncore/instance/torus.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <queue>
#include <stdexcept>

namespace wse::neuron {

std::string_view to_string(Collective c) {
  switch (c) {
    case Collective::kAllReduce:
      return "all_reduce";
    case Collective::kAllGather:
      return "all_gather";
    case Collective::kReduceScatter:
      return "reduce_scatter";
  }
  return "?";
}

std::string_view to_string(CollectiveAlgorithm a) {
  switch (a) {
    case CollectiveAlgorithm::kRing:
      return "ring";
    case CollectiveAlgorithm::kRdh:
      return "rdh";
    case CollectiveAlgorithm::kMesh:
      return "mesh";
    case CollectiveAlgorithm::kTorus2d:
      return "torus2d";
    case CollectiveAlgorithm::kAuto:
      return "auto";
  }
  return "?";
}

namespace {

// One message part: from a chip, dx hops along X then dy along Y (signed: the direction).
struct Send {
  std::int32_t dx = 0;
  std::int32_t dy = 0;
  double bytes = 0;
};

// rounds[chip][round]: what the chip sends in that round.
using Schedule = std::vector<std::vector<std::vector<Send>>>;

struct Torus {
  std::uint32_t nx, ny;
  bool via_switch = false;  // Topology::kSwitch: nx chips, ny = 1
  std::uint32_t chips() const { return nx * ny; }
  std::uint32_t x(std::uint32_t c) const { return c % nx; }
  std::uint32_t y(std::uint32_t c) const { return c / nx; }
  std::uint32_t at(std::uint32_t x, std::uint32_t y) const { return x + y * nx; }
  // The chip dx along X and dy along Y from c, wrapping.
  std::uint32_t moved(std::uint32_t c, std::int64_t dx, std::int64_t dy) const {
    const auto wrap = [](std::int64_t v, std::uint32_t n) {
      return static_cast<std::uint32_t>(((v % n) + n) % n);
    };
    return at(wrap(x(c) + dx, nx), wrap(y(c) + dy, ny));
  }
};

// Signed shortest displacements from a to b on a ring of n; a tie (n even, half the ring
// away) gives both ways.
std::vector<std::int32_t> displacements(std::uint32_t a, std::uint32_t b, std::uint32_t n) {
  const auto fwd = static_cast<std::int32_t>((b + n - a) % n);
  const auto ni = static_cast<std::int32_t>(n);
  if (fwd == 0) return {0};
  if (2 * fwd < ni) return {fwd};
  if (2 * fwd > ni) return {fwd - ni};
  return {fwd, fwd - ni};
}

// Through the switch (Topology::kSwitch): dx counts the links left (the sender's up link,
// then the receiver's down link), dy is the receiver + 1.
Send through_switch(std::uint32_t b, double bytes) {
  return Send{2, static_cast<std::int32_t>(b) + 1, bytes};
}

// The chip a message part from `chip` is addressed to.
std::uint32_t receiver(const Torus& t, std::uint32_t chip, const Send& m) {
  return t.via_switch ? static_cast<std::uint32_t>(m.dy - 1) : t.moved(chip, m.dx, m.dy);
}

// Links a message part crosses.
std::int32_t hops_of(const Torus& t, const Send& m) {
  return t.via_switch ? 2 : std::abs(m.dx) + std::abs(m.dy);
}

// Sends from chip a to chip b: the short way round in X and in Y, a tie split evenly.
void route(const Torus& t, std::uint32_t a, std::uint32_t b, double bytes, std::vector<Send>& out) {
  if (t.via_switch) {
    out.push_back(through_switch(b, bytes));
    return;
  }
  const auto xs = displacements(t.x(a), t.x(b), t.nx);
  const auto ys = displacements(t.y(a), t.y(b), t.ny);
  const double part = bytes / static_cast<double>(xs.size() * ys.size());
  for (std::int32_t dx : xs) {
    for (std::int32_t dy : ys) out.push_back(Send{dx, dy, part});
  }
}

// The chips in ring order: a snake (row 0 left to right, row 1 right to left, ...), so
// that consecutive chips are neighbours (and the last is next to the first when ny is
// even or 1).
std::vector<std::uint32_t> snake(const Torus& t) {
  std::vector<std::uint32_t> order;
  for (std::uint32_t y = 0; y < t.ny; ++y) {
    for (std::uint32_t i = 0; i < t.nx; ++i) order.push_back(t.at(y % 2 == 0 ? i : t.nx - 1 - i, y));
  }
  return order;
}

// The single step from a to its ring neighbour b in the ring's direction `sign` (+1: the
// snake's order): a tie (a ring of two) takes the link of that direction.
Send step(const Torus& t, std::uint32_t a, std::uint32_t b, int sign, double bytes) {
  if (t.via_switch) return through_switch(b, bytes);
  Send s;
  s.bytes = bytes;
  const auto xs = displacements(t.x(a), t.x(b), t.nx);
  const auto ys = displacements(t.y(a), t.y(b), t.ny);
  s.dx = xs.size() == 2 ? (sign > 0 ? xs[0] : xs[1]) : xs[0];
  s.dy = ys.size() == 2 ? (sign > 0 ? ys[0] : ys[1]) : ys[0];
  return s;
}

Schedule build(const Torus& t, Collective c, double s, CollectiveAlgorithm a) {
  const std::uint32_t p = t.chips();
  const bool rs = c != Collective::kAllGather;
  const bool ag = c != Collective::kReduceScatter;
  Schedule sched(p);
  const auto add_round = [&](auto&& sends_of) {
    for (std::uint32_t chip = 0; chip < p; ++chip) sched[chip].push_back(sends_of(chip));
  };
  switch (a) {
    case CollectiveAlgorithm::kRing: {
      const std::vector<std::uint32_t> order = snake(t);
      std::vector<std::uint32_t> pos(p);
      for (std::uint32_t i = 0; i < p; ++i) pos[order[i]] = i;
      const double part = s / (2.0 * p);
      const std::uint32_t rounds = (rs ? p - 1 : 0) + (ag ? p - 1 : 0);
      for (std::uint32_t r = 0; r < rounds; ++r) {
        add_round([&](std::uint32_t chip) {
          const std::uint32_t next = order[(pos[chip] + 1) % p], prev = order[(pos[chip] + p - 1) % p];
          return std::vector<Send>{step(t, chip, next, +1, part), step(t, chip, prev, -1, part)};
        });
      }
      break;
    }
    case CollectiveAlgorithm::kRdh: {
      const auto levels = static_cast<std::uint32_t>(std::countr_zero(p));
      const auto round_k = [&](std::uint32_t k) {
        add_round([&](std::uint32_t chip) {
          std::vector<Send> out;
          route(t, chip, chip ^ (1u << k), s / std::ldexp(1.0, static_cast<int>(k) + 1), out);
          return out;
        });
      };
      if (rs) {
        for (std::uint32_t k = 0; k < levels; ++k) round_k(k);
      }
      if (ag) {
        for (std::uint32_t k = levels; k-- > 0;) round_k(k);
      }
      break;
    }
    case CollectiveAlgorithm::kMesh: {
      const auto round = [&] {
        add_round([&](std::uint32_t chip) {
          std::vector<Send> out;
          // In the same relative order on every chip: offsets (i mod nx, i / nx).
          for (std::uint32_t i = 1; i < p; ++i) route(t, chip, t.moved(chip, i % t.nx, i / t.nx), s / p, out);
          return out;
        });
      };
      if (rs) round();
      if (ag) round();
      break;
    }
    case CollectiveAlgorithm::kTorus2d: {
      const auto phase = [&](bool along_x, double bytes) {
        const std::uint32_t n = along_x ? t.nx : t.ny;
        for (std::uint32_t r = 0; r + 1 < n; ++r) {
          add_round([&](std::uint32_t chip) {
            std::vector<Send> out;
            for (int sign : {+1, -1}) {
              const std::uint32_t to = along_x ? t.moved(chip, sign, 0) : t.moved(chip, 0, sign);
              out.push_back(step(t, chip, to, sign, bytes));
            }
            return out;
          });
        }
      };
      const double x_part = s / (2.0 * t.nx), y_part = s / (2.0 * t.nx * t.ny);
      if (rs) {
        phase(true, x_part);
        phase(false, y_part);
      }
      if (ag) {
        phase(false, y_part);
        phase(true, x_part);
      }
      break;
    }
    case CollectiveAlgorithm::kAuto:
      break;
  }
  return sched;
}

// A message part's head reaching `chip` at `at_ps`: with hops left (dx, dy), it takes
// the next link; without, it is delivered (the round's data at its receiver).
struct Event {
  double at_ps;
  std::uint64_t seq;
  std::uint32_t chip;
  std::uint32_t round;
  std::int32_t dx, dy;
  double bytes;
  bool operator>(const Event& o) const { return at_ps != o.at_ps ? at_ps > o.at_ps : seq > o.seq; }
};

CollectiveResult simulate(const InstanceConfig& cfg, const Torus& t, Collective c, std::uint64_t bytes,
                          CollectiveAlgorithm a) {
  const std::uint32_t p = t.chips();
  const double s = static_cast<double>(bytes);
  const Schedule sched = build(t, c, s, a);
  const std::size_t rounds = p > 0 ? sched[0].size() : 0;
  const double bytes_per_ps = cfg.link_bandwidth.bytes_per_s * 1e-12;
  const auto latency_ps = static_cast<std::uint64_t>(std::llround(cfg.link_latency.seconds * 1e12));
  const auto setup_ps = static_cast<std::uint64_t>(std::llround(cfg.collective_setup.seconds * 1e12));
  CollectiveResult r;
  r.algorithm = a;
  r.rounds = static_cast<std::uint32_t>(rounds);
  // Expected arrivals per (chip, round).
  std::vector<std::vector<std::uint32_t>> expect(p, std::vector<std::uint32_t>(rounds, 0));
  // The alpha-beta price of the rounds: per round, the most hops of a message x the hop
  // latency, plus the most bytes one link must carry if a chip spreads what it sends evenly
  // over its useful links (at least its largest message) over the link bandwidth.
  const double useful_links = t.via_switch ? 1.0 : 2.0 * ((t.nx > 1 ? 1 : 0) + (t.ny > 1 ? 1 : 0));
  double ab = 0;
  for (std::size_t k = 0; k < rounds; ++k) {
    double hops = 0, link_bytes = 0;
    for (std::uint32_t chip = 0; chip < p; ++chip) {
      double sent = 0;
      for (const Send& m : sched[chip][k]) {
        ++expect[receiver(t, chip, m)][k];
        hops = std::max(hops, static_cast<double>(hops_of(t, m)));
        link_bytes = std::max(link_bytes, m.bytes);
        sent += m.bytes;
      }
      link_bytes = std::max(link_bytes, sent / useful_links);
    }
    ab += hops * static_cast<double>(latency_ps) + link_bytes / bytes_per_ps;
  }
  r.alpha_beta_ps = setup_ps + static_cast<std::uint64_t>(std::llround(ab));
  // Directed links: chip x (dim, dir), each serving the heads that reach it in time order.
  std::vector<double> link_free(static_cast<std::size_t>(p) * 4, 0.0);
  double link_busy = 0.0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> q;
  std::uint64_t seq = 0;
  const auto send = [&](std::uint32_t from, std::uint32_t round, const Send& m, double at) {
    ++r.messages;
    q.push(Event{at, seq++, from, round, m.dx, m.dy, m.bytes});
  };
  // Through the switch: the sender's up link (link 0 of the chip), then the receiver's
  // down link (link 1 of the receiver).
  const auto hop_switch = [&](const Event& e) {
    const double serial = e.bytes / bytes_per_ps;
    const auto to = static_cast<std::uint32_t>(e.dy - 1);
    const bool up = e.dx == 2;
    double& free = link_free[static_cast<std::size_t>(up ? e.chip : to) * 4 + (up ? 0 : 1)];
    const double start = std::max(free, e.at_ps);
    free = start + serial;
    link_busy += serial;
    Event next = e;
    next.seq = seq++;
    if (up) {
      next.dx = 1;
      next.at_ps = start + static_cast<double>(latency_ps);
    } else {
      next.chip = to;
      next.dx = 0;
      next.dy = 0;
      next.at_ps = static_cast<double>(std::llround(free) + latency_ps);
    }
    q.push(next);
  };
  // The head of `e` takes its next link: X first, then Y.
  const auto hop = [&](const Event& e) {
    if (t.via_switch) {
      hop_switch(e);
      return;
    }
    const int dim = e.dx != 0 ? 0 : 1;
    const std::int32_t d = dim == 0 ? e.dx : e.dy;
    const int dir = d > 0 ? 0 : 1;
    const int sign = d > 0 ? 1 : -1;
    const double serial = e.bytes / bytes_per_ps;
    double& free = link_free[static_cast<std::size_t>(e.chip) * 4 + dim * 2 + dir];
    const double start = std::max(free, e.at_ps);
    free = start + serial;
    link_busy += serial;
    Event next = e;
    next.seq = seq++;
    next.chip = dim == 0 ? t.moved(e.chip, sign, 0) : t.moved(e.chip, 0, sign);
    (dim == 0 ? next.dx : next.dy) -= sign;
    // The last link delivers `link_latency` after the last byte; an earlier one passes the
    // head on `link_latency` after it entered (cut through).
    next.at_ps = next.dx == 0 && next.dy == 0 ? static_cast<double>(std::llround(free) + latency_ps)
                                              : start + static_cast<double>(latency_ps);
    q.push(next);
  };
  std::vector<std::vector<std::uint32_t>> got(p, std::vector<std::uint32_t>(rounds, 0));
  std::vector<std::uint32_t> current(p, 0);
  std::vector<std::uint64_t> finish(p, setup_ps);
  // Starts the chip's rounds from `current` for as long as they are complete.
  const auto advance = [&](std::uint32_t chip, std::uint64_t at) {
    while (current[chip] < rounds) {
      const std::uint32_t k = current[chip];
      if (got[chip][k] < expect[chip][k]) return;
      finish[chip] = at;
      ++current[chip];
      if (current[chip] < rounds) {
        for (const Send& m : sched[chip][current[chip]])
          send(chip, current[chip], m, static_cast<double>(at));
      }
    }
  };
  if (rounds > 0) {
    for (std::uint32_t chip = 0; chip < p; ++chip) {
      for (const Send& m : sched[chip][0]) send(chip, 0, m, static_cast<double>(setup_ps));
    }
  }
  while (!q.empty()) {
    const Event e = q.top();
    q.pop();
    if (e.dx != 0 || e.dy != 0) {
      hop(e);
      continue;
    }
    ++got[e.chip][e.round];
    if (e.round == current[e.chip]) advance(e.chip, static_cast<std::uint64_t>(e.at_ps));
  }
  r.time_ps = rounds > 0 ? *std::max_element(finish.begin(), finish.end()) : 0;
  const double time = static_cast<double>(r.time_ps) * 1e-12;
  r.algorithm_bandwidth = time > 0 ? s / time : 0.0;
  const double factor = c == Collective::kAllReduce ? 2.0 * (p - 1) / p : (p - 1.0) / p;
  r.bus_bandwidth = r.algorithm_bandwidth * factor;
  const double links = static_cast<double>(p) * (t.via_switch ? 2 : 4);
  r.link_utilization = r.time_ps > 0 ? link_busy / (links * static_cast<double>(r.time_ps)) : 0.0;
  return r;
}

Torus torus_of(const InstanceConfig& cfg) {
  if (cfg.chips_x == 0 || cfg.chips_y == 0)
    throw std::invalid_argument("instance: torus dimensions must be >= 1");
  if (cfg.topology == Topology::kSwitch && cfg.chips_y != 1) {
    throw std::invalid_argument("instance: a switch holds chips_x chips and chips_y = 1");
  }
  return Torus{cfg.chips_x, cfg.chips_y, cfg.topology == Topology::kSwitch};
}

}  // namespace

bool algorithm_applies(const InstanceConfig& cfg, CollectiveAlgorithm a) {
  if (a == CollectiveAlgorithm::kAuto) return true;
  if (a == CollectiveAlgorithm::kRdh)
    return std::has_single_bit(cfg.chips_x) && std::has_single_bit(cfg.chips_y);
  if (a == CollectiveAlgorithm::kTorus2d) return cfg.topology == Topology::kTorus;
  return true;
}

CollectiveResult run_collective(const InstanceConfig& cfg, Collective c, std::uint64_t bytes,
                                CollectiveAlgorithm a) {
  const Torus t = torus_of(cfg);
  if (a == CollectiveAlgorithm::kAuto) return run_collective(cfg, c, bytes);
  if (!algorithm_applies(cfg, a)) {
    if (a == CollectiveAlgorithm::kTorus2d) {
      throw std::invalid_argument("instance: collective algorithm torus2d needs a torus, not a switch");
    }
    throw std::invalid_argument("instance: collective algorithm " + std::string(to_string(a)) +
                                " needs a torus of " + "power-of-two sides, not " +
                                std::to_string(cfg.chips_x) + " x " + std::to_string(cfg.chips_y));
  }
  if (t.chips() == 1) {
    CollectiveResult r;
    r.algorithm = a;
    return r;  // nothing to exchange
  }
  return simulate(cfg, t, c, bytes, a);
}

CollectiveResult run_collective(const InstanceConfig& cfg, Collective c, std::uint64_t bytes) {
  if (cfg.algorithm != CollectiveAlgorithm::kAuto) return run_collective(cfg, c, bytes, cfg.algorithm);
  CollectiveResult best;
  best.time_ps = std::numeric_limits<std::uint64_t>::max();
  for (CollectiveAlgorithm a : kCollectiveAlgorithms) {
    if (!algorithm_applies(cfg, a)) continue;
    const CollectiveResult r = run_collective(cfg, c, bytes, a);
    if (r.time_ps < best.time_ps) best = r;  // ties: the first in kCollectiveAlgorithms
  }
  return best;
}

double collective_floor_seconds(const InstanceConfig& cfg, Collective c, std::uint64_t bytes) {
  const std::uint32_t p = cfg.chips();
  const std::uint32_t links =
      cfg.topology == Topology::kSwitch ? 1 : 2 * ((cfg.chips_x > 1 ? 1 : 0) + (cfg.chips_y > 1 ? 1 : 0));
  if (p <= 1 || links == 0) return 0.0;
  const double share = (c == Collective::kAllReduce ? 2.0 : 1.0) * (p - 1) / p * static_cast<double>(bytes);
  return share / (links * cfg.link_bandwidth.bytes_per_s);
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
  c.topology = s.enumeration<Topology>(
      "topology",
      {.doc = "how the chips are linked: torus (a 2-D NeuronLink torus, `torus: [x, y]`) or switch "
              "(every chip on one port of a non-blocking switch, `chips: N`)",
       .def = "torus"},
      {{"torus", Topology::kTorus}, {"switch", Topology::kSwitch}});
  if (c.topology == Topology::kSwitch) {
    c.chips_x = static_cast<std::uint32_t>(
        s.integer("chips", {.doc = "chips on the switch", .def = "16", .min = 1, .max = 4096}));
    c.chips_y = 1;
  } else {
    const std::vector<std::int64_t> torus =
        s.integer_list("torus", {.doc = "chips along X and Y of the NeuronLink torus", .def = def_torus});
    if (torus.size() != 2 || torus[0] < 1 || torus[1] < 1 || torus[0] * torus[1] > 4096) {
      s.fail("torus", "expected two positive chip counts [x, y] (at most 4096 chips)");
    }
    c.chips_x = static_cast<std::uint32_t>(torus[0]);
    c.chips_y = static_cast<std::uint32_t>(torus[1]);
  }
  const std::string def_bw = wse::to_string(d.link_bandwidth);
  const std::string def_lat = wse::to_string(d.link_latency);
  c.link_bandwidth = s.bandwidth("link_bandwidth",
                                 {.doc = "bandwidth of one link, each direction (switch: of a chip's port)",
                                  .def = def_bw,
                                  .min = 0,
                                  .min_exclusive = true});
  c.link_latency = s.duration(
      "link_latency",
      {.doc = "latency of one link hop (per hop of a message, per ring step)", .def = def_lat, .min = 0});
  c.collective_setup = s.duration("collective_setup",
                                  {.doc = "fixed cost of one collective before its first message: the ranks' "
                                          "synchronisation and the DMA descriptor setup",
                                   .def = wse::to_string(d.collective_setup),
                                   .min = 0});
  c.algorithm = s.enumeration<CollectiveAlgorithm>(
      "collective_algorithm",
      {.doc = "algorithm of the collectives between chips: auto (the fastest for each message size, as the "
              "runtime chooses), ring, rdh (recursive halving-doubling), mesh or torus2d",
       .def = "auto"},
      {{"auto", CollectiveAlgorithm::kAuto},
       {"ring", CollectiveAlgorithm::kRing},
       {"rdh", CollectiveAlgorithm::kRdh},
       {"mesh", CollectiveAlgorithm::kMesh},
       {"torus2d", CollectiveAlgorithm::kTorus2d}});
  if (!algorithm_applies(c, c.algorithm)) {
    if (c.algorithm == CollectiveAlgorithm::kTorus2d) {
      s.fail("collective_algorithm", "torus2d needs topology torus, not switch; use auto, ring, rdh or mesh");
    }
    if (c.topology == Topology::kSwitch) {
      s.fail("collective_algorithm", "rdh needs a power-of-two number of chips on the switch, not " +
                                         std::to_string(c.chips_x) + "; use auto, ring or mesh");
    }
    s.fail("collective_algorithm", "rdh needs a torus whose sides are powers of two, not " +
                                       std::to_string(c.chips_x) + " x " + std::to_string(c.chips_y) +
                                       "; use auto, ring, mesh or torus2d");
  }
  return c;
}

}  // namespace wse::neuron
