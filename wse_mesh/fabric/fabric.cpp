#include "wse_mesh/fabric/fabric.h"

#include <algorithm>
#include <bit>

namespace wse::wafer {

namespace {

Port opposite(Port p) {
  switch (p) {
    case Port::kNorth:
      return Port::kSouth;
    case Port::kSouth:
      return Port::kNorth;
    case Port::kEast:
      return Port::kWest;
    case Port::kWest:
      return Port::kEast;
    case Port::kRamp:
      return Port::kRamp;
  }
  return Port::kRamp;
}

std::string mask_names(PortMask m) {
  std::string s;
  for (int p = 0; p < kPorts; ++p) {
    if (m & (1u << p)) {
      if (!s.empty()) s += '+';
      s += port_name(static_cast<Port>(p));
    }
  }
  return s.empty() ? "none" : s;
}

}  // namespace

const char* port_name(Port p) {
  switch (p) {
    case Port::kRamp:
      return "RAMP";
    case Port::kNorth:
      return "NORTH";
    case Port::kEast:
      return "EAST";
    case Port::kSouth:
      return "SOUTH";
    case Port::kWest:
      return "WEST";
  }
  return "?";
}

void validate(const FabricConfig& cfg) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("fabric: " + what);
  };
  require(cfg.width >= 1 && cfg.height >= 1, "width and height must be at least 1 PE");
  require(cfg.width <= 65535 && cfg.height <= 65535, "width and height must be at most 65535 PEs");
  // Keys in_port * colors + color index a 128-bit mask; the wavelet's color field is 5 bits
  // and the SDK routes colors 0..23.
  require(cfg.colors >= 1 && cfg.colors <= 24, "colors must be 1..24 (routable colors of the SDK)");
  require(cfg.hop_latency_cycles >= 1, "hop_latency_cycles must be at least 1");
  require(cfg.ramp_latency_cycles >= 1, "ramp_latency_cycles must be at least 1");
  require(cfg.credit_latency_cycles >= 1, "credit_latency_cycles must be at least 1");
  require(cfg.input_buffer_wavelets >= 1 && cfg.input_buffer_wavelets <= 255,
          "input_buffer_wavelets must be 1..255");
  require(cfg.link_wavelets_per_cycle >= 1 && cfg.link_wavelets_per_cycle <= 64,
          "link_wavelets_per_cycle must be 1..64");
  require(cfg.ramp_wavelets_per_cycle >= 1 && cfg.ramp_wavelets_per_cycle <= 4096,
          "ramp_wavelets_per_cycle must be 1..4096");
}

FabricConfig tiled(const FabricConfig& per_pe, std::uint32_t k) {
  if (k < 1 || k > 64) throw std::invalid_argument("tiled: k must be 1..64");
  FabricConfig c = per_pe;
  c.width = (per_pe.width + k - 1) / k;
  c.height = (per_pe.height + k - 1) / k;
  c.hop_latency_cycles = per_pe.hop_latency_cycles * k;
  c.link_wavelets_per_cycle = per_pe.link_wavelets_per_cycle * k;
  c.ramp_wavelets_per_cycle = per_pe.ramp_wavelets_per_cycle * k * k;
  // A node holds the buffers of its k x k routers: k links wide, k routers deep.
  c.input_buffer_wavelets = std::min<std::uint32_t>(255, per_pe.input_buffer_wavelets * k * k);
  return c;
}

Fabric::Fabric(const FabricConfig& cfg) : cfg_(cfg) {
  validate(cfg_);
  routers_ = cfg_.width * cfg_.height;
  const std::size_t rc = static_cast<std::size_t>(routers_) * cfg_.colors;
  routes_.assign(rc, 0);
  dor_color_.assign(cfg_.colors, false);
  block_.assign(rc, kNone);
  router_.resize(routers_);
  source_of_.assign(routers_, kNone);
  link_count_.assign(static_cast<std::size_t>(routers_) * kPorts, 0);
  rounds_ = std::max(cfg_.link_wavelets_per_cycle, cfg_.ramp_wavelets_per_cycle);
  xy_.resize(routers_);
  for (std::uint32_t r = 0; r < routers_; ++r) xy_[r] = ((r % cfg_.width) << 16) | (r / cfg_.width);
  const std::uint32_t span =
      std::max({cfg_.hop_latency_cycles, cfg_.ramp_latency_cycles, cfg_.credit_latency_cycles}) + 1;
  wheel_.resize(std::bit_ceil(span));
  for (std::uint32_t key = 0; key < kPorts * cfg_.colors; ++key) {
    key_port_[key] = static_cast<std::uint8_t>(key / cfg_.colors);
    key_color_[key] = static_cast<Color>(key % cfg_.colors);
  }
}

std::string Fabric::where(std::uint32_t r) const {
  const PeCoord c = coord(r);
  return "PE (" + std::to_string(c.x) + "," + std::to_string(c.y) + ")";
}

void Fabric::check_color(Color c, const char* what) const {
  if (c >= cfg_.colors) {
    throw std::invalid_argument(std::string(what) + ": color " + std::to_string(c) +
                                " is not routable (colors 0.." + std::to_string(cfg_.colors - 1) + ")");
  }
}

std::uint32_t Fabric::neighbour(std::uint32_t r, Port p) const {
  const PeCoord c = coord(r);
  switch (p) {
    case Port::kNorth:
      return c.y == 0 ? kNone : r - cfg_.width;
    case Port::kSouth:
      return c.y + 1 == cfg_.height ? kNone : r + cfg_.width;
    case Port::kWest:
      return c.x == 0 ? kNone : r - 1;
    case Port::kEast:
      return c.x + 1 == cfg_.width ? kNone : r + 1;
    case Port::kRamp:
      return r;
  }
  return kNone;
}

std::uint32_t Fabric::find_channel(std::uint32_t r, Port in, Color c) const {
  const std::uint32_t b = block_[static_cast<std::size_t>(r) * cfg_.colors + c];
  return b == kNone ? kNone : b * kPorts + static_cast<std::uint32_t>(in);
}

std::uint32_t Fabric::channel_id(std::uint32_t r, Port in, Color c) {
  std::uint32_t& b = block_[static_cast<std::size_t>(r) * cfg_.colors + c];
  if (b == kNone) {
    b = static_cast<std::uint32_t>(channels_.size() / kPorts);
    for (int p = 0; p < kPorts; ++p) {
      Channel ch;
      ch.router = r;
      ch.in_port = static_cast<std::uint8_t>(p);
      ch.color = c;
      channels_.push_back(ch);
    }
    slots_.resize(channels_.size() * cfg_.input_buffer_wavelets, 0);
  }
  return b * kPorts + static_cast<std::uint32_t>(in);
}

void Fabric::set_route(PeCoord pe, Color color, PortMask rx, PortMask tx) {
  check_color(color, "set_route");
  if (pe.x >= cfg_.width || pe.y >= cfg_.height) {
    throw std::invalid_argument("set_route: PE (" + std::to_string(pe.x) + "," + std::to_string(pe.y) +
                                ") is outside the " + std::to_string(cfg_.width) + " x " +
                                std::to_string(cfg_.height) + " fabric");
  }
  if (dor_color_[color]) {
    throw std::invalid_argument("set_route: color " + std::to_string(color) + " is dimension-ordered");
  }
  const std::uint32_t r = index(pe);
  if (rx == 0 || tx == 0 || rx >= 32 || tx >= 32) {
    throw std::invalid_argument("set_route: color " + std::to_string(color) + " at " + where(r) +
                                " needs at least one input and one output port");
  }
  for (int p = 1; p < kPorts; ++p) {
    if (((rx | tx) & (1u << p)) && neighbour(r, static_cast<Port>(p)) == kNone) {
      throw std::invalid_argument("set_route: color " + std::to_string(color) + " at " + where(r) +
                                  " uses port " + port_name(static_cast<Port>(p)) +
                                  ", which leads off the fabric");
    }
  }
  routes_[static_cast<std::size_t>(r) * cfg_.colors + color] =
      static_cast<std::uint16_t>(rx | (static_cast<unsigned>(tx) << 5));
  channel_id(r, Port::kRamp, color);
}

void Fabric::set_dimension_ordered(Color color) {
  check_color(color, "set_dimension_ordered");
  if (dor_color_[color]) return;
  dor_color_[color] = true;
  // Any router may see this color: allocate its buffers now, in router order, so that
  // neighbours' buffers sit near each other in memory.
  channels_.reserve(channels_.size() + static_cast<std::size_t>(routers_) * kPorts);
  for (std::uint32_t r = 0; r < routers_; ++r) channel_id(r, Port::kRamp, color);
}

MessageId Fabric::inject(PeCoord src, Color color, std::uint32_t wavelets, std::uint64_t ready_cycle,
                         PeCoord dest) {
  if (wavelets == 0) throw std::invalid_argument("inject: a message has at least one wavelet");
  const MessageId id = open_message(src, color, dest);
  append_wavelets(id, wavelets, ready_cycle);
  return id;
}

MessageId Fabric::open_message(PeCoord src, Color color, PeCoord dest) {
  check_color(color, "inject");
  if (src.x >= cfg_.width || src.y >= cfg_.height || dest.x >= cfg_.width || dest.y >= cfg_.height) {
    throw std::invalid_argument("inject: source or destination PE is outside the fabric");
  }
  const std::uint32_t r = index(src);
  if (!dor_color_[color]) {
    const std::uint16_t code = routes_[static_cast<std::size_t>(r) * cfg_.colors + color];
    if (!(code & mask(Port::kRamp))) {
      throw RouteError("inject: color " + std::to_string(color) + " at " + where(r) +
                       " does not accept wavelets from the RAMP (rx is " + mask_names(code & 31) + ")");
    }
  } else {
    channel_id(r, Port::kRamp, color);
  }
  const auto id = static_cast<MessageId>(messages_.size());
  Message m;
  m.src = src;
  m.dest = dest;
  m.color = color;
  m.wavelets = 0;
  messages_.push_back(m);
  dor_dest_.push_back((dest.x << 16) | dest.y);
  return id;
}

Fabric::ColorQueue& Fabric::queue_of(std::uint32_t r, Color color, std::uint64_t ready_cycle) {
  std::uint32_t& si = source_of_[r];
  if (si == kNone) {
    si = static_cast<std::uint32_t>(sources_.size());
    sources_.emplace_back();
    sources_.back().pe = r;
  }
  Source& s = sources_[si];
  if (!s.active) {
    if (ready_cycle <= now_) {
      s.active = true;
      active_sources_.push_back(si);
    } else {
      if (ready_cycle < s.wake_cycle) {  // an earlier wake-up than the one booked
        s.wake_cycle = ready_cycle;
        sleeping_.push(ready_cycle, si);
      }
    }
  }
  for (ColorQueue& q : s.queues) {
    if (q.color == color) return q;
  }
  s.queues.push_back(ColorQueue{color, {}});
  return s.queues.back();
}

void Fabric::append_wavelets(MessageId id, std::uint32_t wavelets, std::uint64_t ready_cycle) {
  if (id >= messages_.size()) throw std::invalid_argument("append_wavelets: unknown message");
  if (wavelets == 0) return;
  if (ready_cycle < now_) {
    throw std::invalid_argument("inject: ready cycle " + std::to_string(ready_cycle) +
                                " is in the past (now " + std::to_string(now_) + ")");
  }
  Message& m = messages_[id];
  if (m.appended == 0) m.ready_cycle = ready_cycle;
  m.wavelets += wavelets;
  m.appended += wavelets;
  ColorQueue& q = queue_of(index(m.src), m.color, ready_cycle);
  if (!q.bursts.empty() && q.bursts.back().msg == id && q.bursts.back().ready_cycle == ready_cycle) {
    q.bursts.back().count += wavelets;
  } else {
    q.bursts.push_back(Burst{id, wavelets, ready_cycle});
  }
  queued_wavelets_ += wavelets;
}

void Fabric::schedule(std::uint64_t cycle, EventKind kind, std::uint32_t a, MessageId msg) {
  // The event is built in place (passing it whole made the caller assemble it on the
  // stack from a byte and two words and read it back as one: a stalled load each time).
  wheel_[cycle & (wheel_.size() - 1)].push_back(Event{kind, a, msg});
  ++events_pending_;
}

PortMask Fabric::route_head(const Channel& ch, MessageId msg) const {
  const std::uint32_t r = ch.router;
  if (dor_color_[ch.color]) {
    // Packed x << 16 | y: comparing the high halves compares x, then the low halves y.
    const std::uint32_t here = xy_[r];
    const std::uint32_t d = dor_dest_[msg];
    if ((d >> 16) > (here >> 16)) return mask(Port::kEast);
    if ((d >> 16) < (here >> 16)) return mask(Port::kWest);
    if ((d & 0xffffu) > (here & 0xffffu)) return mask(Port::kSouth);
    if ((d & 0xffffu) < (here & 0xffffu)) return mask(Port::kNorth);
    return mask(Port::kRamp);
  }
  const std::uint16_t code = routes_[static_cast<std::size_t>(r) * cfg_.colors + ch.color];
  const PortMask rx = code & 31;
  const PortMask tx = (code >> 5) & 31;
  if (!(rx & (1u << ch.in_port))) {
    throw RouteError("color " + std::to_string(ch.color) + " arrived at " + where(r) + " on port " +
                     port_name(static_cast<Port>(ch.in_port)) + ", but its route there accepts only " +
                     mask_names(rx));
  }
  return tx;
}

bool Fabric::has_credit(std::uint32_t r, Port out, Color c) const {
  if (out == Port::kRamp) return true;
  const std::uint32_t d = find_channel(step_to(r, out), opposite(out), c);
  return d == kNone || channels_[d].reserved < cfg_.input_buffer_wavelets;
}

void Fabric::arrive(std::uint32_t chi, MessageId msg) {
  Channel& ch = channels_[chi];
  const std::uint32_t depth = cfg_.input_buffer_wavelets;
  std::uint32_t pos = static_cast<std::uint32_t>(ch.head) + ch.count;  // both < depth
  if (pos >= depth) pos -= depth;
  slots_[static_cast<std::size_t>(chi) * depth + pos] = msg;
  ++ch.count;
  ++buffered_;
  if (ch.count == 1) {
    ch.head_msg = msg;
    ch.pending = route_head(ch, msg);
    RouterState& rs = router_[ch.router];
    const std::uint32_t key = static_cast<std::uint32_t>(ch.in_port) * cfg_.colors + ch.color;
    rs.nonempty[key >> 6] |= 1ull << (key & 63);
    if (!rs.active) {
      rs.active = true;
      active_routers_.push_back(ch.router);
    }
  }
}

bool Fabric::inject_from(Source& s) {
  const std::size_t nq = s.queues.size();
  for (std::size_t k = 1; k <= nq; ++k) {
    std::size_t qi = s.rr + k;  // s.rr < nq: one wrap at most (no division)
    if (qi >= nq) qi -= nq;
    ColorQueue& q = s.queues[qi];
    if (q.bursts.empty()) continue;
    Burst& b = q.bursts.front();
    if (b.ready_cycle > now_) continue;
    const std::uint32_t chi = find_channel(s.pe, Port::kRamp, q.color);
    Channel& ch = channels_[chi];
    if (ch.reserved >= cfg_.input_buffer_wavelets) continue;
    ++ch.reserved;
    schedule(now_ + cfg_.ramp_latency_cycles, EventKind::kArrive, chi, b.msg);
    Message& m = messages_[b.msg];
    if (m.sent == 0) m.first_sent_cycle = now_;
    ++m.sent;
    ++injected_;
    --queued_wavelets_;
    if (--b.count == 0) q.bursts.pop_front();
    s.rr = static_cast<std::uint8_t>(qi);
    return true;
  }
  return false;
}

bool Fabric::allocate(std::uint32_t r, std::uint32_t round) {
  // Round `round` of this cycle: each output and input port moves at most one wavelet
  // per round, and takes part only in as many rounds as it is wide.
  auto width = [&](std::uint32_t port) {
    return port == 0 ? cfg_.ramp_wavelets_per_cycle : cfg_.link_wavelets_per_cycle;
  };
  const std::uint32_t colors = cfg_.colors;
  const std::uint32_t depth = cfg_.input_buffer_wavelets;
  RouterState& rs = router_[r];
  // The heads of the nonempty buffers, in key order (key = in_port * colors + color).
  struct Candidate {
    std::uint32_t key;
    std::uint32_t chi;
    std::uint32_t in;
  };
  std::array<Candidate, 128> cand;
  std::uint32_t nc = 0;
  PortMask wanted = 0;
  PortMask inputs_seen = 0;
  bool shared_input = false;  // two colors wait at one input port
  for (std::uint32_t w = 0; w < 2; ++w) {
    std::uint64_t bits = rs.nonempty[w];
    while (bits) {
      const std::uint32_t key = (w << 6) + static_cast<std::uint32_t>(std::countr_zero(bits));
      bits &= bits - 1;
      const std::uint32_t in = key_port_[key];
      const std::uint32_t chi = block_[static_cast<std::size_t>(r) * colors + key_color_[key]] * kPorts + in;
      cand[nc++] = Candidate{key, chi, in};
      shared_input = shared_input || (inputs_seen & (1u << in));
      inputs_seen = static_cast<PortMask>(inputs_seen | (1u << in));
      wanted |= channels_[chi].pending;
    }
  }
  std::array<std::uint32_t, kPorts> sel;  // key chosen at each input port this cycle
  sel.fill(kNone);
  std::array<std::uint32_t, kPorts> request;  // separable: the one key each input offers
  request.fill(kNone);
  // With one color per input port the separable input stage has nothing to choose:
  // every input offers its only color, and the output stage below decides alone.
  const bool separable = cfg_.allocator == SwitchAllocator::kSeparable && shared_input;
  if (separable) {
    // Each input port offers one color: the first after its last granted one,
    // round-robin, whose head wavelet has somewhere to go (a pending output with a
    // credit). The input's pointer moves only when the color is granted (as in iSLIP).
    std::array<std::uint32_t, kPorts> best_rank;
    best_rank.fill(UINT32_MAX);
    for (std::uint32_t j = 0; j < nc; ++j) {
      const Candidate& c = cand[j];
      const std::uint32_t last = rs.rr_in[c.in];
      const std::uint32_t rank = c.key > last ? c.key - last : c.key + 128 - last;
      if (rank >= best_rank[c.in]) continue;
      const PortMask pend = channels_[c.chi].pending;
      bool can_go = false;
      for (int o = 0; o < kPorts && !can_go; ++o) {
        can_go = (pend & (1u << o)) && has_credit(r, static_cast<Port>(o), key_color_[c.key]);
      }
      if (!can_go) continue;
      best_rank[c.in] = rank;
      request[c.in] = c.key;
    }
  }
  const auto start = static_cast<int>(now_ % kPorts);
  for (int k = 0; k < kPorts; ++k) {
    const int o = (start + k) % kPorts;
    if (!(wanted & (1u << o)) || round >= width(static_cast<std::uint32_t>(o))) continue;
    const Port out = static_cast<Port>(o);
    // Round-robin: the first candidate after the last one served, wrapping around.
    const std::uint32_t last = rs.rr[o];
    std::uint32_t first = 0;
    while (first < nc && cand[first].key <= last) ++first;
    if (first == nc) first = 0;
    for (std::uint32_t j = 0, idx = first; j < nc; ++j, idx = idx + 1 == nc ? 0 : idx + 1) {
      const Candidate& c = cand[idx];
      if (sel[c.in] != kNone && sel[c.in] != c.key) continue;  // one wavelet per input port per round
      if (round >= width(c.in)) continue;
      if (separable && request[c.in] != c.key) continue;
      if (!(channels_[c.chi].pending & (1u << o))) continue;
      const MessageId msg = channels_[c.chi].head_msg;
      if (out == Port::kRamp) {
        schedule(now_ + cfg_.ramp_latency_cycles, EventKind::kDeliver, r, msg);
      } else {
        const Color color = key_color_[c.key];
        const std::uint32_t nb = step_to(r, out);  // routes never lead off the fabric
        std::uint32_t dchi;
        if (dor_color_[color]) {
          dchi = find_channel(nb, opposite(out), color);  // allocated for every router up front
        } else {
          dchi = find_channel(nb, opposite(out), color);
          if (dchi == kNone) {
            throw RouteError("color " + std::to_string(color) + " leaves " + where(r) + " " + port_name(out) +
                             "ward but " + where(nb) + " has no route for it");
          }
        }
        Channel& down = channels_[dchi];
        if (down.reserved >= depth) continue;  // no credit: this color waits, others may go
        ++down.reserved;
        schedule(now_ + cfg_.hop_latency_cycles, EventKind::kArrive, dchi, msg);
        ++wavelet_hops_;
      }
      ++link_count_[static_cast<std::size_t>(r) * kPorts + o];
      channels_[c.chi].pending = static_cast<PortMask>(channels_[c.chi].pending & ~(1u << o));
      sel[c.in] = c.key;
      rs.rr[o] = static_cast<std::uint8_t>(c.key);
      rs.rr_in[c.in] = static_cast<std::uint8_t>(c.key);
      break;
    }
  }
  bool moved = false;
  for (std::uint32_t in = 0; in < kPorts; ++in) {
    if (sel[in] == kNone) continue;
    moved = true;
    const std::uint32_t chi =
        block_[static_cast<std::size_t>(r) * colors + key_color_[sel[in]]] * kPorts + in;
    Channel& ch = channels_[chi];
    if (ch.pending != 0) continue;  // a multicast head still owes some outputs
    ch.head = static_cast<std::uint8_t>(ch.head + 1u == depth ? 0u : ch.head + 1u);
    --ch.count;
    --buffered_;
    schedule(now_ + cfg_.credit_latency_cycles, EventKind::kCredit, chi, 0);
    if (ch.count > 0) {
      ch.head_msg = slots_[static_cast<std::size_t>(chi) * depth + ch.head];
      ch.pending = route_head(ch, ch.head_msg);
    } else {
      rs.nonempty[sel[in] >> 6] &= ~(1ull << (sel[in] & 63));
    }
  }
  return moved;
}

void Fabric::step() {
  // 1. Events due now: credits, arrivals into input buffers, deliveries to PEs.
  const std::size_t slot = static_cast<std::size_t>(now_) & (wheel_.size() - 1);  // a power of two
  std::vector<Event> due;
  due.swap(wheel_[slot]);
  events_pending_ -= due.size();
  for (const Event& e : due) {
    switch (e.kind) {
      case EventKind::kCredit: {
        Channel& d = channels_[e.a];
        --d.reserved;
        // A router parked because all its colors lacked credits may move again.
        if (d.in_port != static_cast<std::uint8_t>(Port::kRamp)) {
          const std::uint32_t up = step_to(d.router, static_cast<Port>(d.in_port));
          RouterState& rs = router_[up];
          if (!rs.active && (rs.nonempty[0] | rs.nonempty[1])) {
            rs.active = true;
            active_routers_.push_back(up);
          }
        }
        break;
      }
      case EventKind::kArrive:
        arrive(e.a, e.msg);
        break;
      case EventKind::kDeliver:
        ++delivered_;
        if (deliver_) deliver_(PeCoord{xy_[e.a] >> 16, xy_[e.a] & 0xffffu}, e.msg, now_);
        break;
    }
  }
  due.clear();
  if (wheel_[slot].empty()) due.swap(wheel_[slot]);  // keep capacity
  // 2. Each PE with a ready wavelet hands at most one to its ramp. PEs whose next
  //    wavelets become ready later sleep in a calendar instead of being polled.
  sleeping_.take_due(now_, due_wakes_);
  for (const auto& [cycle, si] : due_wakes_) {
    if (cycle != sources_[si].wake_cycle) continue;  // superseded by an earlier wake-up
    sources_[si].wake_cycle = UINT64_MAX;
    if (!sources_[si].active) {
      sources_[si].active = true;
      active_sources_.push_back(si);
    }
  }
  for (std::size_t i = 0; i < active_sources_.size();) {
    Source& s = sources_[active_sources_[i]];
    for (std::uint32_t w = 0; w < cfg_.ramp_wavelets_per_cycle && inject_from(s); ++w) {
    }
    std::uint64_t next_ready = UINT64_MAX;
    for (const ColorQueue& q : s.queues) {
      if (!q.bursts.empty()) next_ready = std::min(next_ready, q.bursts.front().ready_cycle);
    }
    if (next_ready > now_ + 1) {  // nothing to send next cycle: leave the active list
      if (next_ready != UINT64_MAX && next_ready < s.wake_cycle) {
        s.wake_cycle = next_ready;
        sleeping_.push(next_ready, active_sources_[i]);
      }
      s.active = false;
      active_sources_[i] = active_sources_.back();
      active_sources_.pop_back();
    } else {
      ++i;
    }
  }
  // 3. Every router with buffered wavelets arbitrates its outputs. A router that moved
  //    nothing had every color blocked on credits: it is parked until a credit comes
  //    back to it or a wavelet arrives (both re-activate it), instead of being polled.
  for (std::size_t i = 0; i < active_routers_.size();) {
    const std::uint32_t r = active_routers_[i];
    bool moved = false;
    for (std::uint32_t round = 0; round < rounds_; ++round) {
      moved = allocate(r, round) || moved;
      if (router_[r].nonempty[0] == 0 && router_[r].nonempty[1] == 0) break;
    }
    if ((router_[r].nonempty[0] == 0 && router_[r].nonempty[1] == 0) || !moved) {
      router_[r].active = false;
      active_routers_[i] = active_routers_.back();
      active_routers_.pop_back();
    } else {
      ++i;
    }
  }
  ++now_;
  ++cycles_simulated_;
}

bool Fabric::idle() const {
  return events_pending_ == 0 && active_routers_.empty() && queued_wavelets_ == 0 && buffered_ == 0;
}

bool Fabric::deadlocked() const {
  if (idle() || events_pending_ > 0 || !active_routers_.empty()) return false;
  // Nothing in flight, no credit coming back, no router able to move: buffered wavelets
  // wait in a cycle of full buffers. Senders can only add to it, unless one of them still
  // has a free slot at its ramp.
  if (active_sources_.empty()) return sleeping_.empty();
  for (const std::uint32_t si : active_sources_) {
    const Source& s = sources_[si];
    for (const ColorQueue& q : s.queues) {
      if (q.bursts.empty()) continue;
      const std::uint32_t chi = find_channel(s.pe, Port::kRamp, q.color);
      if (channels_[chi].reserved < cfg_.input_buffer_wavelets) return false;
    }
  }
  return true;
}

std::uint64_t Fabric::next_activity_cycle() const {
  if (!active_routers_.empty() || !active_sources_.empty()) return now_;
  std::uint64_t next = UINT64_MAX;
  if (events_pending_ > 0) {
    for (std::uint64_t d = 0; d < wheel_.size(); ++d) {
      if (!wheel_[(now_ + d) & (wheel_.size() - 1)].empty()) {
        next = now_ + d;
        break;
      }
    }
  }
  if (!sleeping_.empty()) next = std::min(next, std::max(now_, sleeping_.top_cycle()));
  return next;
}

void Fabric::advance_to(std::uint64_t cycle) {
  if (cycle <= now_) return;
  if (next_activity_cycle() < cycle) {
    throw std::logic_error("fabric: cannot skip to cycle " + std::to_string(cycle) + ", work is due at " +
                           std::to_string(next_activity_cycle()));
  }
  now_ = cycle;
}

std::uint64_t Fabric::run_until_idle(std::uint64_t max_cycle) {
  while (!idle() && now_ < max_cycle) {
    // Jump over cycles in which nothing is due (no wavelet buffered or ready to send).
    const std::uint64_t next = next_activity_cycle();
    if (next == UINT64_MAX || deadlocked()) {
      throw std::logic_error("fabric deadlock at cycle " + std::to_string(now_) + ": " +
                             std::to_string(buffered_) +
                             " wavelets wait for credits that can never return (a cyclic route?)");
    }
    if (next > now_) now_ = std::min(next, max_cycle);
    if (now_ >= max_cycle) break;
    step();
  }
  return now_;
}

std::uint64_t Fabric::link_wavelets(PeCoord pe, Port p) const {
  return link_count_[static_cast<std::size_t>(index(pe)) * kPorts + static_cast<std::size_t>(p)];
}

std::size_t Fabric::idle_bytes_per_router(std::uint32_t colors) {
  // routes_ and block_ per (router, color); router_, source_of_, xy_ and link_count_
  // (one per output port) per router. dor_color_ and the wheel do not grow with routers.
  return colors * (sizeof(std::uint16_t) + sizeof(std::uint32_t)) + sizeof(RouterState) +
         sizeof(std::uint32_t) * (2 + kPorts);
}

std::size_t Fabric::state_bytes() const {
  std::size_t b = routes_.capacity() * sizeof(std::uint16_t) + block_.capacity() * sizeof(std::uint32_t) +
                  channels_.capacity() * sizeof(Channel) + slots_.capacity() * sizeof(MessageId) +
                  router_.capacity() * sizeof(RouterState) + source_of_.capacity() * sizeof(std::uint32_t) +
                  link_count_.capacity() * sizeof(std::uint32_t) + messages_.capacity() * sizeof(Message);
  for (const Source& s : sources_) b += sizeof(Source) + s.queues.capacity() * sizeof(ColorQueue);
  return b;
}

}  // namespace wse::wafer
