#include "efa_link/srd_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace wse::efa {

namespace {

constexpr std::uint8_t kPlaced = 1;
constexpr std::uint8_t kAcked = 2;

std::uint64_t to_ps(Duration d) { return static_cast<std::uint64_t>(std::llround(d.seconds * 1e12)); }

double ps_per_byte(Bandwidth b) { return 1e12 / b.bytes_per_s; }

std::string fmt_time(std::uint64_t ps) {
  std::ostringstream s;
  s << static_cast<double>(ps) * 1e-6 << " us";
  return s.str();
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

void validate_adapter(const EfaAdapterConfig& a, const std::string& side) {
  check(a.adapters >= 1, "efa." + side + ".adapters must be at least 1");
  check(a.adapters <= 1024, "efa." + side + ".adapters must be at most 1024");
  check(a.line_rate.bytes_per_s > 0, "efa." + side + ".line_rate must be > 0");
  check(a.mtu.bytes >= 64, "efa." + side + ".mtu must be at least 64 B");
  check(a.host_dma.bytes_per_s > 0, "efa." + side + ".host_dma must be > 0");
  check(a.nic_latency.seconds >= 0, "efa." + side + ".nic_latency must be >= 0");
}

}  // namespace

void validate(const EfaNetworkConfig& c) {
  check(c.senders >= 1 && c.receivers >= 1, "efa.senders and efa.receivers must be at least 1");
  validate_adapter(c.sender, "sender");
  validate_adapter(c.receiver, "receiver");
  check(c.sender.mtu == c.receiver.mtu && c.sender.header == c.receiver.header,
        "efa.sender and efa.receiver must use the same mtu and header (one SRD packet format)");
  check(c.fabric.paths >= 1 && c.fabric.paths <= 65535, "efa.fabric.paths must be in [1, 65535]");
  check(c.fabric.path_capacity.bytes_per_s > 0, "efa.fabric.path_capacity must be > 0");
  check(c.fabric.path_latency.seconds >= 0 && c.fabric.path_latency_spread.seconds >= 0,
        "efa.fabric.path_latency and path_latency_spread must be >= 0");
  for (const auto& g : c.fabric.congestion) {
    check(g.path < c.fabric.paths, "efa.fabric.congestion: path " + std::to_string(g.path) +
                                       " does not exist (paths are 0.." + std::to_string(c.fabric.paths - 1) +
                                       ")");
    check(g.load >= 0 && g.load < 1, "efa.fabric.congestion: load must be in [0, 1)");
  }
  for (const auto& f : c.fabric.faults) {
    check(f.all_paths || f.path < c.fabric.paths,
          "efa.fabric.faults: path " + std::to_string(f.path) + " does not exist");
    check(f.until.seconds >= f.from.seconds, "efa.fabric.faults: until must not be before from");
  }
  check(c.srd.retransmit_timeout.seconds > 0, "efa.srd.retransmit_timeout must be > 0");
  check(c.srd.retry_budget <= 200, "efa.srd.retry_budget must be at most 200");
  check(c.srd.loss_probability >= 0 && c.srd.loss_probability < 1,
        "efa.srd.loss_probability must be in [0, 1)");
  check(c.srd.max_outstanding.bytes > 0, "efa.srd.max_outstanding must be > 0");
  check(c.srd.congestion_delay.seconds >= 0, "efa.srd.congestion_delay must be >= 0");
  check(c.srd.burst.bytes >= c.sender.mtu.bytes, "efa.srd.burst must be at least one mtu");
  check(c.srd.bursts_per_message >= 1, "efa.srd.bursts_per_message must be at least 1");
}

void validate(const EfaFaults& f, const EfaNetworkConfig& c) {
  for (const auto& o : f.path_down) {
    check(o.all_paths || o.path < c.fabric.paths, "efa_path_down: path " + std::to_string(o.path) +
                                                      " does not exist (paths are 0.." +
                                                      std::to_string(c.fabric.paths - 1) + ")");
    check(o.until.seconds >= o.from.seconds, "efa_path_down: the end must not be before the start");
  }
  for (const auto& b : f.loss_bursts) {
    check(b.probability >= 0 && b.probability < 1, "efa_loss_burst: probability must be in [0, 1)");
    check(b.path == LossBurst::kAny || b.path < c.fabric.paths,
          "efa_loss_burst: path " + std::to_string(b.path) + " does not exist (paths are 0.." +
              std::to_string(c.fabric.paths - 1) + ")");
    check(b.machine == LossBurst::kAny || b.machine < c.senders + c.receivers,
          "efa_loss_burst: machine " + std::to_string(b.machine) + " does not exist");
    check(b.adapter == LossBurst::kAny ||
              (b.machine != LossBurst::kAny &&
               b.adapter < (b.machine < c.senders ? c.sender.adapters : c.receiver.adapters)),
          "efa_loss_burst: adapter " + std::to_string(b.adapter) + " does not exist on its machine");
    check(b.until.seconds >= b.from.seconds, "efa_loss_burst: the end must not be before the start");
  }
}

SrdEngine::SrdEngine(const EfaNetworkConfig& config, EfaFaults faults, std::string stats_name)
    : config_(config), faults_(std::move(faults)), rng_(config.srd.seed), stats_(std::move(stats_name)) {
  validate(config_);
  validate(faults_, config_);
  messages_done_ = &stats_.counter("messages_completed", "messages", "RDMA operations completed");
  messages_failed_ = &stats_.counter("messages_failed", "messages", "RDMA operations failed (retry budget)");
  packets_sent_ =
      &stats_.counter("packets_sent", "packets", "SRD packets put on the wire, retransmissions included");
  packets_lost_ = &stats_.counter("packets_lost", "packets", "SRD packets dropped in the network");
  packets_retransmitted_ =
      &stats_.counter("packets_retransmitted", "packets", "SRD packets sent again after a timeout");
  packets_rerouted_ =
      &stats_.counter("packets_rerouted", "packets",
                      "SRD packets sent over another path because the next one was down (efa_path_down)");
  packets_duplicate_ =
      &stats_.counter("packets_duplicate", "packets", "SRD packets that arrived twice and were discarded");
  bytes_placed_ = &stats_.counter("bytes_placed", "B", "payload bytes placed at their destination");
  completion_latency_ =
      &stats_.distribution("completion_latency", "us", "post to completion of each RDMA operation");

  const std::uint32_t n = machines();
  for (std::uint32_t m = 0; m < n; ++m) {
    const bool sender = m < config_.senders;
    const EfaAdapterConfig& ac = sender ? config_.sender : config_.receiver;
    adapter_base_.push_back(static_cast<std::uint32_t>(adapters_.size()));
    stats::Group& mg = stats_.child(sender ? "sender" + std::to_string(m)
                                           : "receiver" + std::to_string(m - config_.senders));
    for (std::uint32_t a = 0; a < ac.adapters; ++a) {
      Adapter ad;
      ad.cfg = sender ? &config_.sender : &config_.receiver;
      ad.machine = m;
      ad.next_path = a % config_.fabric.paths;  // adapters start their spray at different paths
      stats::Group& g = mg.child("adapter" + std::to_string(a));
      ad.dma_read = {0, ps_per_byte(ac.host_dma), &g.utilization("host_dma_read", "host memory -> NIC DMA")};
      ad.tx = {0, ps_per_byte(ac.line_rate), &g.utilization("tx", "NIC transmit port")};
      ad.rx = {0, ps_per_byte(ac.line_rate), &g.utilization("rx", "NIC receive port")};
      ad.dma_write = {0, ps_per_byte(ac.host_dma),
                      &g.utilization("host_dma_write", "NIC -> host memory DMA")};
      ad.cwnd_bytes = static_cast<double>(config_.srd.max_outstanding.bytes);
      adapters_.push_back(ad);
    }
  }
  const EfaFabricConfig& fc = config_.fabric;
  stats::Group& fg = stats_.child("fabric");
  paths_.resize(fc.paths);
  for (std::uint32_t p = 0; p < fc.paths; ++p) {
    double load = 0.0;
    for (const auto& g : fc.congestion)
      if (g.path == p) load = g.load;
    const double rate = fc.path_capacity.bytes_per_s * (1.0 - load);
    const double spread = fc.paths > 1 ? fc.path_latency_spread.seconds * p / (fc.paths - 1) : 0.0;
    paths_[p].latency_ps = to_ps(Duration{fc.path_latency.seconds + spread});
    stats::Group& pg = fg.child("path" + std::to_string(p));
    paths_[p].link[0] = {0, 1e12 / rate, &pg.utilization("forward", "sender side -> receiver side")};
    paths_[p].link[1] = {0, 1e12 / rate, &pg.utilization("reverse", "receiver side -> sender side")};
  }
  fault_windows_path_.resize(fc.paths);
  for (const auto& f : fc.faults) {
    auto w = std::make_pair(to_ps(f.from), to_ps(f.until));
    if (f.all_paths)
      fault_windows_all_.push_back(w);
    else
      fault_windows_path_[f.path].push_back(w);
  }
  // Fault schedule (efa_config.h: EfaFaults).
  outages_path_.resize(fc.paths);
  for (const auto& o : faults_.path_down) {
    auto w = std::make_pair(to_ps(o.from), to_ps(o.until));
    if (o.all_paths)
      outages_all_.push_back(w);
    else
      outages_path_[o.path].push_back(w);
  }
  has_outages_ = !faults_.path_down.empty();
  timeout_ps_ = to_ps(config_.srd.retransmit_timeout);
  congestion_delay_ps_ = to_ps(config_.srd.congestion_delay);
}

std::uint64_t SrdEngine::dur_ps(const Server& s, std::uint64_t bytes) {
  const double ps = static_cast<double>(bytes) * s.ps_per_byte;
  if (!(ps <= static_cast<double>(kMaxSimulatedPs))) {
    (void)sim_ps(ps * 1e-12, "an EFA transfer of " + std::to_string(bytes) + " B");
  }
  return static_cast<std::uint64_t>(std::llround(ps));
}

SrdEngine::Train SrdEngine::pass(Server& s, Train in, std::uint64_t first_bytes, std::uint64_t last_bytes,
                                 std::uint64_t total_bytes) {
  const std::uint64_t start = std::max(in.head_ps, s.free_ps);
  const std::uint64_t busy = dur_ps(s, total_bytes);
  s.free_ps = start + busy;
  s.busy->add_busy(static_cast<double>(busy) * 1e-12);
  Train out;
  out.head_ps = start + dur_ps(s, first_bytes);
  out.tail_ps = std::max(s.free_ps, in.tail_ps + dur_ps(s, last_bytes));
  return out;
}

std::uint32_t SrdEngine::adapters_of(std::uint32_t machine) const {
  return machine < config_.senders ? config_.sender.adapters : config_.receiver.adapters;
}

std::uint32_t SrdEngine::adapter_index(std::uint32_t machine, std::uint32_t adapter) const {
  return adapter_base_[machine] + adapter;
}

void SrdEngine::schedule(std::uint64_t t_ps, Ev kind, std::uint32_t idx) {
  if (kind == Ev::Timer) {
    timer_push(Event{t_ps, seq_++, idx, kind});
  } else {
    events_.push(Event{t_ps, seq_++, idx, kind});
  }
}

void SrdEngine::timer_place(std::uint32_t slot, const Event& e) {
  timers_[slot] = e;
  tx_[e.idx].timer_slot = slot;
}

void SrdEngine::timer_sift_up(std::uint32_t slot) {
  const Event e = timers_[slot];
  while (slot > 0) {
    const std::uint32_t parent = (slot - 1) / 2;
    if (!(timers_[parent] > e)) break;
    timer_place(slot, timers_[parent]);
    slot = parent;
  }
  timer_place(slot, e);
}

void SrdEngine::timer_sift_down(std::uint32_t slot) {
  const Event e = timers_[slot];
  const auto n = static_cast<std::uint32_t>(timers_.size());
  for (;;) {
    std::uint32_t child = 2 * slot + 1;
    if (child >= n) break;
    if (child + 1 < n && timers_[child] > timers_[child + 1]) ++child;
    if (!(e > timers_[child])) break;
    timer_place(slot, timers_[child]);
    slot = child;
  }
  timer_place(slot, e);
}

void SrdEngine::timer_push(const Event& e) {
  timers_.push_back(e);
  timer_sift_up(static_cast<std::uint32_t>(timers_.size() - 1));
}

void SrdEngine::timer_remove(std::uint32_t slot) {
  tx_[timers_[slot].idx].timer_slot = kNoTimer;
  const Event last = timers_.back();
  timers_.pop_back();
  if (slot == timers_.size()) return;
  timer_place(slot, last);
  timer_sift_down(slot);
  timer_sift_up(tx_[last.idx].timer_slot);
}

bool SrdEngine::pop_next(std::uint64_t t_ps, Event& e) {
  const bool have_event = !events_.empty() && events_.top().t_ps <= t_ps;
  const bool have_timer = !timers_.empty() && timers_.front().t_ps <= t_ps;
  if (!have_event && !have_timer) return false;
  if (have_timer && (!have_event || events_.top() > timers_.front())) {
    e = timers_.front();
    timer_remove(0);
  } else {
    e = events_.top();
    events_.pop();
  }
  return true;
}

std::string SrdEngine::machine_name(std::uint32_t machine) const {
  return machine < config_.senders ? "sender " + std::to_string(machine)
                                   : "receiver " + std::to_string(machine - config_.senders);
}

void SrdEngine::trace_message(const Message& m, const Completion& c) {
  // Operations of one machine overlap: each goes on the first lane free at its post time.
  if (trace_lanes_.size() < machines()) trace_lanes_.resize(machines());
  auto& lanes = trace_lanes_[m.wr.initiator];
  std::size_t lane = 0;
  while (lane < lanes.size() && lanes[lane].first > c.posted_ps) ++lane;
  if (lane == lanes.size())
    lanes.emplace_back(
        0, trace_->track("EFA " + machine_name(m.wr.initiator), "RDMA lane " + std::to_string(lane)));
  lanes[lane].first = c.completed_ps;
  const std::string name =
      std::string(m.wr.op == RdmaOp::Write ? "write " : "read ") + std::to_string(m.wr.bytes) + " B";
  trace_->slice(lanes[lane].second, name, static_cast<double>(c.posted_ps) * 1e-12,
                static_cast<double>(c.completed_ps - c.posted_ps) * 1e-12,
                {{"target", machine_name(m.wr.target)},
                 {"tag", std::to_string(c.tag)},
                 {"packets", std::to_string(c.packets_sent)},
                 {"retransmitted", std::to_string(c.packets_retransmitted)},
                 {"status", c.ok ? "ok" : c.error}});
}

std::string SrdEngine::describe(const Message& m) const {
  std::ostringstream s;
  auto name = [&](std::uint32_t machine) { return machine_name(machine); };
  s << "RDMA " << (m.wr.op == RdmaOp::Write ? "write" : "read") << " of " << m.wr.bytes << " B (tag "
    << m.wr.tag << ") from " << name(m.wr.initiator) << " to " << name(m.wr.target);
  return s.str();
}

std::uint64_t SrdEngine::post(const WorkRequest& wr, std::uint64_t at_ps) {
  const std::uint32_t n = machines();
  check(wr.initiator < n && wr.target < n, "RDMA work request names machine " +
                                               std::to_string(std::max(wr.initiator, wr.target)) +
                                               " but the network has " + std::to_string(n));
  check((wr.initiator < config_.senders) != (wr.target < config_.senders),
        "RDMA work request between two machines of the same side (sender/receiver); the model "
        "joins senders to receivers");
  check(wr.initiator_adapter == kAllAdapters || wr.initiator_adapter < adapters_of(wr.initiator),
        "RDMA work request: initiator adapter " + std::to_string(wr.initiator_adapter) + " does not exist");
  check(wr.target_adapter == kAllAdapters || wr.target_adapter < adapters_of(wr.target),
        "RDMA work request: target adapter " + std::to_string(wr.target_adapter) + " does not exist");
  check(at_ps >= now_ps_, "RDMA work request posted in the past");
  check(messages_.size() < std::numeric_limits<std::uint32_t>::max(), "too many RDMA messages");

  const auto m = static_cast<std::uint32_t>(messages_.size());
  Message msg;
  msg.wr = wr;
  msg.posted_ps = at_ps;
  msg.first_flow = static_cast<std::uint32_t>(flows_.size());

  // Data goes from `from` to `to`.
  const bool write = wr.op == RdmaOp::Write;
  const std::uint32_t from = write ? wr.initiator : wr.target;
  const std::uint32_t to = write ? wr.target : wr.initiator;
  const std::uint32_t from_adapter = write ? wr.initiator_adapter : wr.target_adapter;
  const std::uint32_t to_adapter = write ? wr.target_adapter : wr.initiator_adapter;
  const std::uint8_t dir = from < config_.senders ? 0 : 1;
  const std::uint64_t mtu = config_.sender.mtu.bytes;

  struct Part {
    std::uint32_t src, dst;
    std::uint64_t offset, bytes;
  };
  std::vector<Part> parts;
  if (from_adapter != kAllAdapters && to_adapter != kAllAdapters) {
    parts.push_back({adapter_index(from, from_adapter), adapter_index(to, to_adapter), 0, wr.bytes});
  } else {
    // Stripe in whole packets: rail j carries the j-th share, into adapter j mod A_to.
    const std::uint32_t rails = from_adapter != kAllAdapters ? 1 : adapters_of(from);
    const std::uint64_t packets = (wr.bytes + mtu - 1) / mtu;
    const std::uint64_t share = std::max<std::uint64_t>(1, (packets + rails - 1) / rails) * mtu;
    for (std::uint32_t j = 0; j < rails; ++j) {
      const std::uint64_t off = j * share;
      if (off >= wr.bytes && j > 0) break;
      const std::uint32_t src_a = from_adapter != kAllAdapters ? from_adapter : j;
      const std::uint32_t dst_a = to_adapter != kAllAdapters ? to_adapter : j % adapters_of(to);
      parts.push_back({adapter_index(from, src_a), adapter_index(to, dst_a), off,
                       std::min(share, wr.bytes - std::min(off, wr.bytes))});
    }
  }
  for (const Part& p : parts) {
    Flow f;
    f.message = m;
    f.src = p.src;
    f.dst = p.dst;
    f.dir = dir;
    f.offset = p.offset;
    f.bytes = p.bytes;
    if (config_.srd.grain == Grain::Packet) {
      f.unit_bytes = mtu;
    } else {
      // Whole packets, at most `burst`, and at least bursts_per_message units per flow.
      const std::uint64_t packets = std::max<std::uint64_t>(1, (p.bytes + mtu - 1) / mtu);
      const std::uint64_t per_unit = std::max<std::uint64_t>(
          1, std::min(config_.srd.burst.bytes / mtu,
                      (packets + config_.srd.bursts_per_message - 1) / config_.srd.bursts_per_message));
      f.unit_bytes = per_unit * mtu;
    }
    f.units =
        static_cast<std::uint32_t>(std::max<std::uint64_t>(1, (p.bytes + f.unit_bytes - 1) / f.unit_bytes));
    f.tries.assign(f.units, 0);
    f.state.assign(f.units, 0);
    flows_.push_back(std::move(f));
  }
  msg.flow_count = static_cast<std::uint32_t>(parts.size());
  msg.flows_left = msg.flow_count;
  messages_.push_back(std::move(msg));
  schedule(at_ps, Ev::Post, m);
  return m;
}

void SrdEngine::activate_message(std::uint32_t m, std::uint64_t t_ps) {
  const Message& msg = messages_[m];
  for (std::uint32_t i = 0; i < msg.flow_count; ++i) {
    const std::uint32_t fi = msg.first_flow + i;
    adapters_[flows_[fi].src].active.push_back(fi);
    kick(flows_[fi].src, t_ps);
  }
}

void SrdEngine::kick(std::uint32_t adapter, std::uint64_t t_ps) {
  Adapter& a = adapters_[adapter];
  if (a.pick_scheduled || (a.active.empty() && a.retransmit.empty())) return;
  a.pick_scheduled = true;
  schedule(t_ps, Ev::Pick, adapter);
}

SrdEngine::UnitShape SrdEngine::shape(const Flow& f, std::uint32_t unit) const {
  const std::uint64_t mtu = config_.sender.mtu.bytes;
  const std::uint64_t header = config_.sender.header.bytes;
  UnitShape s;
  const std::uint64_t begin = static_cast<std::uint64_t>(unit) * f.unit_bytes;
  s.payload = std::min(f.unit_bytes, f.bytes - std::min(begin, f.bytes));
  s.packets = std::max<std::uint64_t>(1, (s.payload + mtu - 1) / mtu);
  s.first_payload = std::min(s.payload, mtu);
  s.last_payload = s.payload - (s.packets - 1) * mtu;
  s.wire = s.payload + s.packets * header;
  return s;
}

bool SrdEngine::link_down(std::uint32_t path, std::uint64_t t_ps) const {
  for (const auto& w : fault_windows_all_)
    if (t_ps >= w.first && t_ps < w.second) return true;
  for (const auto& w : fault_windows_path_[path])
    if (t_ps >= w.first && t_ps < w.second) return true;
  return false;
}

// --- Fault schedule: path outages and loss bursts -------------------------------------

bool SrdEngine::path_out(std::uint32_t path, std::uint64_t t_ps) const {
  for (const auto& w : outages_all_)
    if (t_ps >= w.first && t_ps < w.second) return true;
  for (const auto& w : outages_path_[path])
    if (t_ps >= w.first && t_ps < w.second) return true;
  return false;
}

std::uint64_t SrdEngine::paths_return_ps(std::uint64_t t_ps) const {
  std::uint64_t best = std::numeric_limits<std::uint64_t>::max();
  for (std::uint32_t p = 0; p < config_.fabric.paths && best > t_ps; ++p) {
    // The first time >= t_ps at which path p is out of every window.
    std::uint64_t t = t_ps;
    for (bool moved = true; moved;) {
      moved = false;
      for (const auto* ws : {&outages_all_, &outages_path_[p]})
        for (const auto& w : *ws)
          if (t >= w.first && t < w.second) {
            t = w.second;
            moved = true;
          }
    }
    best = std::min(best, t);
  }
  return best;
}

double SrdEngine::loss_at(std::uint32_t path, const Flow& f, std::uint64_t t_ps) const {
  double p = config_.srd.loss_probability;
  for (const auto& b : faults_.loss_bursts) {
    if (t_ps < to_ps(b.from) || t_ps >= to_ps(b.until)) continue;
    if (b.path != LossBurst::kAny && b.path != path) continue;
    if (b.machine != LossBurst::kAny) {
      // The burst hits the packets that leave or enter the machine's adapters.
      bool hit = false;
      for (const std::uint32_t ai : {f.src, f.dst}) {
        const std::uint32_t m = adapters_[ai].machine;
        hit = hit || (m == b.machine && (b.adapter == LossBurst::kAny || ai - adapter_base_[m] == b.adapter));
      }
      if (!hit) continue;
    }
    p = std::max(p, b.probability);
  }
  return p;
}

// -------------------------------------------------------------------------------------

bool SrdEngine::draw_loss(std::uint64_t packets, double p) {
  if (p <= 0.0) return false;
  // A train is lost (and sent again whole) if any of its packets is lost.
  const double p_train = packets == 1 ? p : 1.0 - std::pow(1.0 - p, static_cast<double>(packets));
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // same on every platform
  return u < p_train;
}

std::uint64_t SrdEngine::path_wait(std::uint32_t p, std::uint8_t dir, std::uint64_t arrive_ps) const {
  const Server& s = paths_[p].link[dir];
  const std::uint64_t backlog_end = s.free_ps + dur_ps(s, paths_[p].pending_bytes[dir]);
  return backlog_end > arrive_ps ? backlog_end - arrive_ps : 0;
}

std::uint32_t SrdEngine::choose_path(Adapter& a, std::uint8_t dir, std::uint64_t arrive_ps,
                                     std::uint64_t wire, std::uint64_t packets) {
  const std::uint32_t n = config_.fabric.paths;
  std::uint32_t best = a.next_path % n;
  if (has_outages_ && path_out(best, arrive_ps)) {
    // A path that is down carries nothing: spray to the next path that is up. If every
    // path is down the packet goes as planned and is lost (pick() holds new packets
    // while no path is up, so only packets picked just before that happen here).
    for (std::uint32_t k = 1; k < n; ++k) {
      const std::uint32_t p = (a.next_path + k) % n;
      if (!path_out(p, arrive_ps)) {
        best = p;
        packets_rerouted_->add(packets);
        break;
      }
    }
  }
  if (config_.srd.path_selection == PathSelection::Adaptive && n > 1) {
    // Spray round robin, but skip paths with a longer queue: the wait a packet sent now
    // would see, from the path's backlog including packets already on their way to it.
    std::uint64_t best_wait = std::numeric_limits<std::uint64_t>::max();
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::uint32_t p = (a.next_path + k) % n;
      if (has_outages_ && path_out(p, arrive_ps)) continue;
      const std::uint64_t wait = path_wait(p, dir, arrive_ps);
      if (wait < best_wait) {
        best_wait = wait;
        best = p;
        if (wait == 0) break;
      }
    }
  }
  a.next_path = (best + 1) % n;
  paths_[best].pending_bytes[dir] += wire;
  return best;
}

void SrdEngine::pick(std::uint32_t ai) {
  Adapter& a = adapters_[ai];
  a.pick_scheduled = false;
  if (static_cast<double>(a.outstanding_bytes) >= a.cwnd_bytes) return;  // an ack or timer kicks
  if (has_outages_ && (!a.active.empty() || !a.retransmit.empty())) {
    // Every path is down: hold the packets until one returns (efa_path_down).
    const std::uint64_t up = paths_return_ps(now_ps_);
    if (up > now_ps_) {
      a.pick_scheduled = true;
      schedule(up, Ev::Pick, ai);
      return;
    }
  }

  std::uint32_t fi = 0, unit = 0;
  bool found = false;
  while (!found && !a.retransmit.empty()) {
    auto [f, u] = a.retransmit.front();
    a.retransmit.pop_front();
    if (flows_[f].failed || flows_[f].finished || (flows_[f].state[u] & kAcked)) continue;
    fi = f;
    unit = u;
    found = true;
  }
  while (!found && !a.active.empty()) {
    const std::uint32_t f = a.active.front();
    a.active.pop_front();
    Flow& fl = flows_[f];
    if (fl.failed || fl.finished || fl.next_new >= fl.units) continue;
    fi = f;
    unit = fl.next_new++;
    if (fl.next_new < fl.units) a.active.push_back(f);  // round robin between flows
    found = true;
  }
  if (!found) return;

  Flow& f = flows_[fi];
  Message& msg = messages_[f.message];
  const UnitShape s = shape(f, unit);
  const std::uint64_t h = config_.sender.header.bytes;
  Train t{now_ps_, now_ps_};
  t = pass(a.dma_read, t, s.first_payload, s.last_payload, s.payload);
  t = pass(a.tx, t, s.first_payload + h, s.last_payload + h, s.wire);
  const std::uint64_t nic = to_ps(a.cfg->nic_latency);

  const std::uint8_t attempt = ++f.tries[unit];
  packets_sent_->add(s.packets);
  msg.packets += s.packets;
  if (attempt > 1) {
    packets_retransmitted_->add(s.packets);
    msg.retransmitted += s.packets;
  }

  std::uint32_t ti;
  if (!free_tx_.empty()) {
    ti = free_tx_.back();
    free_tx_.pop_back();
  } else {
    ti = static_cast<std::uint32_t>(tx_.size());
    tx_.emplace_back();
  }
  Transmission& tx = tx_[ti];
  tx.flow = fi;
  tx.unit = unit;
  tx.attempt = attempt;
  tx.refs = 2;  // the journey and the timer
  tx.counted = true;
  tx.path = static_cast<std::uint16_t>(choose_path(a, f.dir, t.head_ps + nic, s.wire, s.packets));
  tx.tail_ps = t.tail_ps + nic;
  tx.sent_ps = t.tail_ps + nic;
  tx.queued_ps = 0;
  a.outstanding_bytes += s.wire;
  schedule(t.head_ps + nic, Ev::PathArrive, ti);
  schedule(t.tail_ps + nic + retransmit_timeout_ps(a, attempt) + burst_slack_ps(a, s), Ev::Timer, ti);

  if (!a.active.empty() || !a.retransmit.empty()) {
    // Pick the next train so that its DMA ends when the port frees: the port never idles
    // and a newly posted message joins the round robin without waiting behind a backlog.
    const std::uint64_t dma = dur_ps(a.dma_read, s.payload);
    std::uint64_t next = std::max(a.dma_read.free_ps, a.tx.free_ps > dma ? a.tx.free_ps - dma : 0);
    next = std::max(next, now_ps_);
    a.pick_scheduled = true;
    schedule(next, Ev::Pick, ai);
  }
}

void SrdEngine::uncount(Transmission& tx) {
  if (!tx.counted) return;
  tx.counted = false;
  Flow& f = flows_[tx.flow];
  adapters_[f.src].outstanding_bytes -= shape(f, tx.unit).wire;
}

void SrdEngine::release(std::uint32_t ti) {
  if (--tx_[ti].refs == 0) free_tx_.push_back(ti);
}

void SrdEngine::path_arrive(std::uint32_t ti) {
  Transmission& tx = tx_[ti];
  Flow& f = flows_[tx.flow];
  const UnitShape s = shape(f, tx.unit);
  Path& p = paths_[tx.path];
  p.pending_bytes[f.dir] -= s.wire;
  if (f.failed) {
    uncount(tx);
    kick(f.src, now_ps_);
    release(ti);
    return;
  }
  if (link_down(tx.path, now_ps_) || path_out(tx.path, now_ps_) ||
      draw_loss(s.packets, loss_at(tx.path, f, now_ps_))) {
    packets_lost_->add(s.packets);
    release(ti);  // the timer will find it unacknowledged
    return;
  }
  const std::uint64_t h = config_.sender.header.bytes;
  tx.queued_ps += p.link[f.dir].free_ps > now_ps_ ? p.link[f.dir].free_ps - now_ps_ : 0;
  Train t = pass(p.link[f.dir], Train{now_ps_, tx.tail_ps}, s.first_payload + h, s.last_payload + h, s.wire);
  tx.tail_ps = t.tail_ps + p.latency_ps;
  schedule(t.head_ps + p.latency_ps, Ev::RxArrive, ti);
}

void SrdEngine::rx_arrive(std::uint32_t ti) {
  Transmission& tx = tx_[ti];
  const std::uint32_t fi = tx.flow;
  Flow& f = flows_[fi];
  if (f.failed) {
    uncount(tx);
    kick(f.src, now_ps_);
    release(ti);
    return;
  }
  const UnitShape s = shape(f, tx.unit);
  const std::uint64_t h = config_.sender.header.bytes;
  Adapter& d = adapters_[f.dst];
  tx.queued_ps += d.rx.free_ps > now_ps_ ? d.rx.free_ps - now_ps_ : 0;
  Train t = pass(d.rx, Train{now_ps_, tx.tail_ps}, s.first_payload + h, s.last_payload + h, s.wire);
  t = pass(d.dma_write, t, s.first_payload, s.last_payload, s.payload);
  const std::uint64_t placed_ps = t.tail_ps + to_ps(d.cfg->nic_latency);

  if (f.finished || (f.state[tx.unit] & kPlaced)) {
    packets_duplicate_->add(s.packets);  // reassembly drops the second copy
  } else {
    f.state[tx.unit] |= kPlaced;
    ++f.placed;
    bytes_placed_->add(s.payload);
    f.in_place_ps = std::max(f.in_place_ps, placed_ps);
    const Message& msg = messages_[f.message];
    const std::uint64_t off = f.offset + static_cast<std::uint64_t>(tx.unit) * f.unit_bytes;
    if (msg.wr.local && msg.wr.remote && s.payload > 0) {
      const bool write = msg.wr.op == RdmaOp::Write;
      std::memcpy((write ? msg.wr.remote : msg.wr.local) + off, (write ? msg.wr.local : msg.wr.remote) + off,
                  s.payload);
    }
    if (on_place_) on_place_(f.message, off, s.payload);
    if (f.placed == f.units) schedule(f.in_place_ps, Ev::FlowInPlace, fi);
  }
  // The acknowledgement returns over the reverse direction of the same path; it is a
  // header-sized packet, so only latency is modelled for it.
  const std::uint64_t ack_ps =
      placed_ps + paths_[tx.path].latency_ps + to_ps(adapters_[f.src].cfg->nic_latency);
  schedule(ack_ps, Ev::Ack, ti);
}

void SrdEngine::ack(std::uint32_t ti) {
  Transmission& tx = tx_[ti];
  const std::uint32_t fi = tx.flow;
  Flow& f = flows_[fi];
  const std::uint32_t src = f.src;  // flow_done may post new work from its callback
  const std::uint32_t unit = tx.unit;
  uncount(tx);
  adjust_window(adapters_[src], tx, shape(f, unit).wire);
  if (tx.timer_slot != kNoTimer) {
    // The acknowledgement settles the transmission's timer (its unit is acknowledged, or
    // its flow failed), which would only release the transmission when it fired: release
    // it now and drop the timer, counted as the event it would have been.
    timer_remove(tx.timer_slot);
    ++events_processed_;
    release(ti);
  }
  release(ti);
  if (!f.failed && !f.finished && !(f.state[unit] & kAcked)) {
    f.state[unit] |= kAcked;
    ++f.acked;
    if (f.acked == f.units && messages_[f.message].wr.op == RdmaOp::Write) flow_done(fi, now_ps_);
  }
  kick(src, now_ps_);
}

std::uint64_t SrdEngine::burst_slack_ps(const Adapter& a, const UnitShape& s) const {
  // Burst grain: a train's last packet may wait behind the previous train of its own flow
  // at the path and at the receive port, a wait its packets would not see one by one.
  return s.packets > 1 ? 2 * dur_ps(a.tx, s.wire) : 0;
}

std::uint64_t SrdEngine::retransmit_timeout_ps(const Adapter& a, std::uint8_t attempt) const {
  if (!config_.srd.adaptive_timeout) return timeout_ps_;
  const std::uint64_t rto =
      a.srtt_ps == 0 ? timeout_ps_
                     : std::max(timeout_ps_, static_cast<std::uint64_t>(a.srtt_ps + 4 * a.rttvar_ps));
  // Exponential backoff (RFC 6298, 5.5, per unit): the k-th transmission of a unit waits
  // 2^(k-1) timeouts, at most kMaxBackoff. The round-trip estimate learns only from first
  // transmissions (Karn), so under a queue that outgrew it every copy would time out
  // again after the same stale timeout; doubling lets a copy outwait the queue, while a
  // path that stays down still uses up the retry budget within a bounded time.
  const std::uint64_t backoff = std::uint64_t{1}
                                << std::min<unsigned>(attempt > 0 ? attempt - 1 : 0, kMaxBackoffShift);
  return rto * backoff;
}

void SrdEngine::sample_round_trip(Adapter& a, std::uint64_t rtt_ps) {
  const double sample = static_cast<double>(rtt_ps);
  if (a.srtt_ps == 0) {
    a.srtt_ps = sample;
    a.rttvar_ps = sample / 2;
  } else {
    a.rttvar_ps = 0.75 * a.rttvar_ps + 0.25 * std::abs(a.srtt_ps - sample);
    a.srtt_ps = 0.875 * a.srtt_ps + 0.125 * sample;
  }
}

void SrdEngine::adjust_window(Adapter& a, const Transmission& tx, std::uint64_t wire) {
  // Delay-based congestion control (in the manner of SRD's RTT-based rate control): a
  // packet that queued in the network longer than congestion_delay shrinks the window
  // multiplicatively, at most once per round trip; otherwise the window grows by about
  // one packet per round trip. Flows sharing a bottleneck converge to equal windows.
  const double mtu_wire = static_cast<double>(config_.sender.mtu.bytes + config_.sender.header.bytes);
  const double max_window = static_cast<double>(config_.srd.max_outstanding.bytes);
  const std::uint64_t rtt = now_ps_ > tx.sent_ps ? now_ps_ - tx.sent_ps : 1;
  if (tx.attempt == 1) {
    // Round-trip estimate from first transmissions only (a retransmitted packet's
    // acknowledgement may belong to either copy).
    sample_round_trip(a, rtt);
  }
  if (tx.queued_ps > congestion_delay_ps_) {
    if (now_ps_ >= a.last_decrease_ps + rtt) {
      const double over =
          static_cast<double>(tx.queued_ps - congestion_delay_ps_) / static_cast<double>(tx.queued_ps);
      a.cwnd_bytes = std::max(mtu_wire, a.cwnd_bytes * std::max(0.5, 1.0 - 0.8 * over));
      a.last_decrease_ps = now_ps_;
    }
  } else {
    a.cwnd_bytes = std::min(max_window, a.cwnd_bytes + mtu_wire * static_cast<double>(wire) / a.cwnd_bytes);
  }
}

void SrdEngine::timer(std::uint32_t ti) {
  Transmission& tx = tx_[ti];
  const std::uint32_t fi = tx.flow;
  const std::uint32_t unit = tx.unit;
  Flow& f = flows_[fi];
  const std::uint32_t src = f.src;
  const bool settled =
      f.failed || f.finished || (f.state[unit] & kAcked) || f.tries[unit] != tx.attempt;  // or superseded
  if (!settled && config_.srd.adaptive_timeout) {
    // The round-trip estimate may have grown since the timer was set (queues building):
    // wait until the packet is late by the current estimate.
    const std::uint64_t deadline = tx.sent_ps + retransmit_timeout_ps(adapters_[src], tx.attempt) +
                                   burst_slack_ps(adapters_[src], shape(f, unit));
    if (deadline > now_ps_) {
      schedule(deadline, Ev::Timer, ti);
      return;
    }
  }
  if (!settled) uncount(tx);
  release(ti);
  if (settled) return;
  // No acknowledgement within the timeout: the packet is presumed lost.
  if (f.tries[unit] > config_.srd.retry_budget) {
    fail_flow(fi, unit);
  } else {
    adapters_[src].retransmit.push_back({fi, unit});
  }
  kick(src, now_ps_);
}

void SrdEngine::flow_in_place(std::uint32_t fi) {
  Flow& f = flows_[fi];
  if (f.failed) return;
  Message& msg = messages_[f.message];
  msg.in_place_ps = std::max(msg.in_place_ps, f.in_place_ps);
  if (msg.wr.op == RdmaOp::Read) flow_done(fi, now_ps_);
}

void SrdEngine::fail_flow(std::uint32_t fi, std::uint32_t unit) {
  Flow& f = flows_[fi];
  Message& msg = messages_[f.message];
  if (!msg.failed) {
    const UnitShape s = shape(f, unit);
    const std::uint64_t off = f.offset + static_cast<std::uint64_t>(unit) * f.unit_bytes;
    std::ostringstream e;
    e << describe(msg) << " failed at " << fmt_time(now_ps_) << ": bytes " << off << ".." << off + s.payload
      << " were sent " << static_cast<int>(f.tries[unit])
      << " times without acknowledgement (efa.srd.retry_budget = " << config_.srd.retry_budget
      << " retransmissions, efa.srd.retransmit_timeout = " << fmt_time(timeout_ps_)
      << (config_.srd.adaptive_timeout ? " or the measured round trip" : "")
      << "); the network path stayed down or lossy";
    msg.error = e.str();
  }
  // The whole operation fails at once: the other rails of a striped message stop too
  // (their packets still in flight are dropped when they arrive).
  msg.failed = true;
  for (std::uint32_t i = 0; i < msg.flow_count; ++i) {
    Flow& g = flows_[msg.first_flow + i];
    if (g.finished) continue;
    g.failed = true;
    g.finished = true;
    release_units(g);
    --msg.flows_left;
  }
  if (msg.flows_left == 0) flow_done(fi, now_ps_);
}

void SrdEngine::release_units(Flow& f) {
  // Nothing reads a finished flow's per-unit tables (copies still in flight check
  // `finished` first): give their memory back, a run keeps every flow.
  std::vector<std::uint8_t>().swap(f.tries);
  std::vector<std::uint8_t>().swap(f.state);
}

std::uint64_t SrdEngine::retained_bytes_per_message(std::uint32_t rails) {
  return sizeof(Message) + sizeof(Completion) + static_cast<std::uint64_t>(rails) * sizeof(Flow);
}

void SrdEngine::flow_done(std::uint32_t fi, std::uint64_t t_ps) {
  Flow& f = flows_[fi];
  Message& msg = messages_[f.message];
  if (!f.failed) {
    f.finished = true;
    release_units(f);
    if (--msg.flows_left != 0) return;
  }
  // Every flow of the message finished (or one failed and this is the last).
  Completion c;
  c.message = f.message;
  c.tag = msg.wr.tag;
  c.ok = !msg.failed;
  c.error = msg.error;
  c.posted_ps = msg.posted_ps;
  c.in_place_ps = msg.failed ? 0 : msg.in_place_ps;
  c.completed_ps = t_ps;
  c.packets_sent = msg.packets;
  c.packets_retransmitted = msg.retransmitted;
  (c.ok ? messages_done_ : messages_failed_)->add();
  completion_latency_->sample(static_cast<double>(t_ps - msg.posted_ps) * 1e-6);
  if (trace_) trace_message(msg, c);
  completions_.push_back(c);
  if (on_completion_) on_completion_(completions_.back());
}

void SrdEngine::dispatch(const Event& e) {
  switch (e.kind) {
    case Ev::Post: {
      const Message& msg = messages_[e.idx];
      if (msg.wr.op == RdmaOp::Write) {
        activate_message(e.idx, now_ps_);
      } else {
        // The read request (one header-only packet) crosses to the target, which then
        // streams the data back.
        const std::uint32_t ia = msg.wr.initiator_adapter == kAllAdapters ? 0 : msg.wr.initiator_adapter;
        const std::uint32_t ta = msg.wr.target_adapter == kAllAdapters ? 0 : msg.wr.target_adapter;
        const std::uint64_t t =
            now_ps_ + to_ps(adapters_[adapter_index(msg.wr.initiator, ia)].cfg->nic_latency) +
            paths_[0].latency_ps + to_ps(adapters_[adapter_index(msg.wr.target, ta)].cfg->nic_latency);
        schedule(t, Ev::ReadRequest, e.idx);
      }
      break;
    }
    case Ev::ReadRequest:
      activate_message(e.idx, now_ps_);
      break;
    case Ev::Pick:
      pick(e.idx);
      break;
    case Ev::PathArrive:
      path_arrive(e.idx);
      break;
    case Ev::RxArrive:
      rx_arrive(e.idx);
      break;
    case Ev::Ack:
      ack(e.idx);
      break;
    case Ev::Timer:
      timer(e.idx);
      break;
    case Ev::FlowInPlace:
      flow_in_place(e.idx);
      break;
  }
}

void SrdEngine::run_until(std::uint64_t t_ps) {
  Event e{};
  while (pop_next(t_ps, e)) {
    now_ps_ = e.t_ps;
    ++events_processed_;
    dispatch(e);
  }
  now_ps_ = std::max(now_ps_, t_ps);
}

void SrdEngine::run() {
  Event e{};
  while (pop_next(UINT64_MAX, e)) {
    now_ps_ = e.t_ps;
    ++events_processed_;
    dispatch(e);
  }
}

std::optional<std::uint64_t> SrdEngine::next_event_ps() const {
  if (events_.empty() && timers_.empty()) return std::nullopt;
  if (timers_.empty()) return events_.top().t_ps;
  if (events_.empty()) return timers_.front().t_ps;
  return std::min(events_.top().t_ps, timers_.front().t_ps);
}

}  // namespace wse::efa
