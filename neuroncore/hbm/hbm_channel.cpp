#include "neuroncore/hbm/hbm_channel.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace wse::neuron {

HbmChannel::HbmChannel(const HbmConfig& cfg, std::uint32_t /*channel_index*/)
    : tck_(cfg.tck_ps()),
      burst_(cfg.burst_ps()),
      bank_groups_(cfg.bank_groups),
      banks_per_group_(cfg.banks_per_group),
      groups_per_pc_(cfg.sids * cfg.bank_groups),
      queue_depth_(cfg.queue_depth),
      refresh_enabled_(cfg.refresh) {
  if (cfg.banks_per_pseudo_channel() > 64) {
    throw std::invalid_argument("hbm: at most 64 banks per pseudo-channel are supported");
  }
  const HbmTiming& t = cfg.timing;
  auto ps = [&](std::uint32_t cycles) { return static_cast<std::uint64_t>(cycles) * tck_; };
  tCL_ = ps(t.tCL);
  tCWL_ = ps(t.tCWL);
  tRCD_RD_ = ps(t.tRCD_RD);
  tRCD_WR_ = ps(t.tRCD_WR);
  tRP_ = ps(t.tRP);
  tRAS_ = ps(t.tRAS);
  tRC_ = ps(t.tRC);
  tWR_ = ps(t.tWR);
  tRTP_ = ps(t.tRTP);
  tCCD_S_ = ps(t.tCCD_S);
  tCCD_L_ = ps(t.tCCD_L);
  tCCD_R_ = ps(t.tCCD_R);
  tRRD_S_ = ps(t.tRRD_S);
  tRRD_L_ = ps(t.tRRD_L);
  tFAW_ = ps(t.tFAW);
  tWTR_S_ = ps(t.tWTR_S);
  tWTR_L_ = ps(t.tWTR_L);
  tRTW_ = ps(t.tRTW);
  tRFC_ = ps(t.tRFC);
  tREFI_ = ps(t.tREFI);

  const std::uint32_t n_pc = cfg.pseudo_channels_per_channel;
  pcs_.resize(n_pc);
  for (std::uint32_t p = 0; p < n_pc; ++p) {
    PseudoChannel& pc = pcs_[p];
    pc.banks.resize(cfg.banks_per_pseudo_channel());
    pc.bg_next_act.assign(groups_per_pc_, 0);
    pc.bg_next_rd.assign(groups_per_pc_, 0);
    pc.bg_next_wr.assign(groups_per_pc_, 0);
    // All pseudo-channels refresh on one schedule (as the reference simulator's
    // per-channel refresh managers do). A staggered schedule resonates with a single
    // stream that walks the channels in address order: it meets a refresh in every
    // channel it visits.
    pc.next_refresh_ps = tREFI_;
  }
  pool_.reserve(queue_depth_);
  for (std::uint32_t b = 0; b < cfg.banks_per_pseudo_channel(); ++b) {
    group_of_[b] = static_cast<std::uint8_t>(b / banks_per_group_);
  }
  for (std::uint32_t g = 0; g < groups_per_pc_; ++g) {
    sid_of_group_[g] = static_cast<std::uint8_t>(g / bank_groups_);
  }
  const std::uint64_t act_to_end = std::min(tRCD_RD_ + tCL_, tRCD_WR_ + tCWL_) + burst_;
  to_data_end_[static_cast<int>(Command::kActivate)] = act_to_end;
  to_data_end_[static_cast<int>(Command::kPrecharge)] = tRP_ + act_to_end;
  to_data_end_[static_cast<int>(Command::kRead)] = tCL_ + burst_;
  to_data_end_[static_cast<int>(Command::kWrite)] = tCWL_ + burst_;
}

void HbmChannel::choose(PseudoChannel& pc, std::uint32_t i) {
  Bank& b = pc.banks[i];
  BankChoice& c = b.choice;
  pc.choice_valid |= std::uint64_t{1} << i;
  Command cmd = Command::kNone;
  std::uint64_t local = 0;
  std::uint64_t seq = 0;
  c.pending_pos = 0;
  if (!b.pending.empty()) {
    const Entry& oldest = pool_[b.pending.front()];
    cmd = Command::kActivate;
    seq = oldest.seq;
    local = std::max(b.next_act, oldest.earliest_ps);
    if (b.open_row >= 0) {
      cmd = Command::kPrecharge;
      local = std::max(b.next_pre, oldest.earliest_ps);
      // First ready: the oldest access to the open row goes before any older conflict.
      for (std::uint32_t pos = 0; pos < b.pending.size(); ++pos) {
        const Entry& e = pool_[b.pending[pos]];
        if (e.a.row == b.open_row) {
          cmd = e.a.write ? Command::kWrite : Command::kRead;
          c.pending_pos = pos;
          seq = e.seq;
          local = std::max(e.a.write ? b.next_wr : b.next_rd, e.earliest_ps);
          break;
        }
      }
    }
  }
  pc.kind[i] = static_cast<std::uint8_t>(cmd);
  pc.local_ps[i] = ceil_tck(local);
  pc.seq[i] = seq;
}

std::uint64_t HbmChannel::floor_ps(const PseudoChannel& pc, std::uint8_t kind, std::uint32_t g) const {
  std::uint64_t f = pc.next_cmd_ps;
  switch (static_cast<Command>(kind)) {
    case Command::kActivate:
      f = std::max(f, pc.bg_next_act[g]);
      if (pc.activates >= 4) f = std::max(f, pc.faw[pc.faw_pos] + tFAW_);
      break;
    case Command::kRead:
      f = std::max({f, pc.bg_next_rd[g], pc.rd_bus_floor_ps});
      break;
    case Command::kWrite:
      f = std::max({f, pc.bg_next_wr[g], pc.wr_bus_floor_ps});
      break;
    default:
      break;
  }
  return f;  // every term is on a tCK edge
}

HbmChannel::Decision HbmChannel::decide(PseudoChannel& pc) {
  // Floors per (command kind, bank group), then one pass over the banks with work:
  // earliest time first, then row hits, then the oldest (FR-FCFS).
  std::uint64_t floors[4][kMaxBanks];
  const std::uint64_t common = pc.next_cmd_ps;
  const std::uint64_t act_common = pc.activates >= 4 ? std::max(common, pc.faw[pc.faw_pos] + tFAW_) : common;
  const std::uint64_t rd_common = std::max(common, pc.rd_bus_floor_ps);
  const std::uint64_t wr_common = std::max(common, pc.wr_bus_floor_ps);
  for (std::uint32_t g = 0; g < groups_per_pc_; ++g) {
    floors[0][g] = std::max(act_common, pc.bg_next_act[g]);
    floors[1][g] = common;
    floors[2][g] = std::max(rd_common, pc.bg_next_rd[g]);
    floors[3][g] = std::max(wr_common, pc.bg_next_wr[g]);
  }
  // Ties on time go to row hits (rank bit clear), then to the oldest (smallest seq).
  constexpr std::uint64_t kNotHit = std::uint64_t{1} << 63;
  std::uint64_t best_t = kNever;
  std::uint64_t best_key = ~std::uint64_t{0};
  std::uint32_t best_bank = 0;
  std::uint64_t bound = kNever;
  for (std::uint64_t mask = pc.pending_mask; mask != 0; mask &= mask - 1) {
    const auto i = static_cast<std::uint32_t>(std::countr_zero(mask));
    if ((pc.choice_valid >> i & 1U) == 0) choose(pc, i);
    const std::uint8_t k = pc.kind[i];
    const std::uint64_t t = std::max(pc.local_ps[i], floors[k][group_of_[i]]);
    bound = std::min(bound, t + to_data_end_[k]);
    const std::uint64_t key = (k < 2 ? kNotHit : 0) | pc.seq[i];
    const bool better = (t < best_t) | ((t == best_t) & (key < best_key));
    best_t = better ? t : best_t;
    best_key = better ? key : best_key;
    best_bank = better ? i : best_bank;
  }
  Decision best;
  if (best_t != kNever) {
    best.cmd = static_cast<Command>(pc.kind[best_bank]);
    best.bank = best_bank;
    best.time_ps = best_t;
  }
  if (refresh_enabled_ && best.cmd != Command::kNone && best.time_ps >= pc.next_refresh_ps) {
    // A refresh that is due goes before anything that could only issue after it.
    best.cmd = Command::kRefresh;
    best.time_ps = pc.next_refresh_ps;
  }
  best.completion_bound_ps = bound;
  return best;
}

void HbmChannel::merge(PseudoChannel& pc, std::uint32_t i) {
  Decision& best = pc.decision;
  if (best.cmd == Command::kRefresh || best.bank == i) {
    pc.decision_valid = false;
    pc.choice_valid &= ~(std::uint64_t{1} << i);  // the new entry may change its wish
    return;
  }
  choose(pc, i);
  const std::uint8_t k = pc.kind[i];
  const std::uint64_t t = std::max(pc.local_ps[i], floor_ps(pc, k, group_of_[i]));
  best.completion_bound_ps = std::min(best.completion_bound_ps, t + to_data_end_[k]);
  const bool hit = k >= 2;
  const bool best_hit = best.cmd == Command::kRead || best.cmd == Command::kWrite;
  const bool better =
      t < best.time_ps || (t == best.time_ps && (hit != best_hit ? hit : pc.seq[i] < pc.seq[best.bank]));
  if (better) {
    if (refresh_enabled_ && t >= pc.next_refresh_ps) {
      pc.decision_valid = false;
      return;
    }
    best.cmd = static_cast<Command>(k);
    best.bank = i;
    best.time_ps = t;
  }
}

void HbmChannel::refresh(PseudoChannel& pc) {
  // All-bank refresh: precharge every open bank (after its tRAS/tRTP/tWR), wait tRP,
  // then the banks are busy for tRFC.
  std::uint64_t t = std::max(pc.next_refresh_ps, pc.next_cmd_ps);
  bool any_open = false;
  for (const Bank& b : pc.banks) {
    if (b.open_row >= 0) {
      any_open = true;
      t = std::max(t, b.next_pre);
    }
  }
  t = ceil_tck(t);
  std::uint64_t t_ref = any_open ? t + tRP_ : t;
  for (const Bank& b : pc.banks) t_ref = std::max(t_ref, b.next_act);
  t_ref = ceil_tck(t_ref);
  for (Bank& b : pc.banks) {
    b.open_row = -1;
    b.next_act = std::max(b.next_act, t_ref + tRFC_);
  }
  pc.choice_valid = 0;
  pc.next_cmd_ps = t_ref + tck_;
  pc.next_refresh_ps += tREFI_;
  pc.decision_valid = false;
  ++counters_.refreshes;
}

void HbmChannel::catch_up_idle_refresh(PseudoChannel& pc, std::uint64_t until_ps) {
  if (!refresh_enabled_) return;
  while (pc.pending_mask == 0 && pc.next_refresh_ps < until_ps) refresh(pc);
}

void HbmChannel::remove_entry(PseudoChannel& pc, std::uint32_t bank_index, std::uint32_t pos) {
  Bank& b = pc.banks[bank_index];
  free_.push_back(b.pending[pos]);
  b.pending.erase(b.pending.begin() + pos);
  if (b.pending.empty()) pc.pending_mask &= ~(std::uint64_t{1} << bank_index);
  --in_queue_;
}

void HbmChannel::issue(PseudoChannel& pc, const Decision& d) {
  if (d.cmd == Command::kRefresh) {
    refresh(pc);
    return;
  }
  Bank& b = pc.banks[d.bank];
  const std::uint32_t g = group_of_[d.bank];
  const std::uint32_t sid = sid_of_group_[g];
  const std::uint64_t t = d.time_ps;
  switch (d.cmd) {
    case Command::kActivate: {
      b.open_row = pool_[b.pending[b.choice.pending_pos]].a.row;
      b.next_rd = std::max(b.next_rd, t + tRCD_RD_);
      b.next_wr = std::max(b.next_wr, t + tRCD_WR_);
      b.next_pre = std::max(b.next_pre, t + tRAS_);
      b.next_act = std::max(b.next_act, t + tRC_);
      for (std::uint32_t i = 0; i < groups_per_pc_; ++i) {
        pc.bg_next_act[i] = std::max(pc.bg_next_act[i], t + (i == g ? tRRD_L_ : tRRD_S_));
      }
      pc.faw[pc.faw_pos] = t;
      pc.faw_pos = (pc.faw_pos + 1) & 3U;
      ++pc.activates;
      ++counters_.activates;
      break;
    }
    case Command::kPrecharge:
      b.open_row = -1;
      b.next_act = std::max(b.next_act, t + tRP_);
      ++counters_.precharges;
      break;
    case Command::kRead:
    case Command::kWrite: {
      const bool write = d.cmd == Command::kWrite;
      const std::uint32_t pos = b.choice.pending_pos;
      const Entry e = pool_[b.pending[pos]];
      const std::uint64_t data_end = t + (write ? tCWL_ : tCL_) + burst_;
      pc.rd_bus_floor_ps = data_end > tCL_ ? ceil_tck(data_end - tCL_) : 0;
      pc.wr_bus_floor_ps = data_end > tCWL_ ? ceil_tck(data_end - tCWL_) : 0;
      for (std::uint32_t i = 0; i < groups_per_pc_; ++i) {
        const std::uint64_t ccd = i == g ? tCCD_L_ : (sid_of_group_[i] == sid ? tCCD_S_ : tCCD_R_);
        if (write) {
          pc.bg_next_wr[i] = std::max(pc.bg_next_wr[i], t + ccd);
          pc.bg_next_rd[i] = std::max(pc.bg_next_rd[i], ceil_tck(data_end + (i == g ? tWTR_L_ : tWTR_S_)));
        } else {
          pc.bg_next_rd[i] = std::max(pc.bg_next_rd[i], t + ccd);
          pc.bg_next_wr[i] = std::max(pc.bg_next_wr[i], t + tRTW_);
        }
      }
      b.next_pre = std::max(b.next_pre, write ? ceil_tck(data_end + tWR_) : t + tRTP_);
      done_.push(Completion{data_end, e.arrival_ps, e.a.tag, write});
      counters_.data_busy_ps += burst_;
      if (write) {
        ++counters_.writes;
      } else {
        ++counters_.reads;
        const std::uint64_t lat = data_end - e.arrival_ps;
        counters_.read_latency_sum_ps += lat;
        counters_.read_latency_max_ps = std::max(counters_.read_latency_max_ps, lat);
      }
      remove_entry(pc, d.bank, pos);
      // The queue entry frees when its column command issues: the next waiting access
      // enters the scheduler now.
      if (!overflow_.empty()) {
        auto [a, arrival] = overflow_.front();
        overflow_.pop_front();
        admit(t, a, arrival);
      }
      break;
    }
    case Command::kNone:
    case Command::kRefresh:
      break;
  }
  pc.next_cmd_ps = t + tck_;
  pc.choice_valid &= ~(std::uint64_t{1} << d.bank);
  pc.decision_valid = false;
}

void HbmChannel::admit(std::uint64_t now_ps, const Access& a, std::uint64_t arrival_ps) {
  std::uint32_t idx = 0;
  if (!free_.empty()) {
    idx = free_.back();
    free_.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(pool_.size());
    pool_.emplace_back();
  }
  pool_[idx] = Entry{a, arrival_ps, ceil_tck(now_ps), seq_++};
  PseudoChannel& pc = pcs_[a.pseudo_channel];
  if (pc.pending_mask == 0) catch_up_idle_refresh(pc, now_ps);
  const std::uint32_t bank =
      (static_cast<std::uint32_t>(a.sid) * bank_groups_ + a.bank_group) * banks_per_group_ + a.bank;
  Bank& b = pc.banks[bank];
  b.pending.push_back(idx);
  pc.pending_mask |= std::uint64_t{1} << bank;
  ++in_queue_;
  if (pc.decision_valid) {
    merge(pc, bank);
  } else {
    pc.choice_valid &= ~(std::uint64_t{1} << bank);
  }
}

void HbmChannel::enqueue(std::uint64_t now_ps, const Access& a) {
  if (in_queue_ < queue_depth_) {
    admit(now_ps, a, now_ps);
  } else {
    overflow_.emplace_back(a, now_ps);
  }
}

void HbmChannel::advance(std::uint64_t until_ps) {
  for (;;) {
    PseudoChannel* best = nullptr;
    for (PseudoChannel& pc : pcs_) {
      if (pc.pending_mask == 0) {
        catch_up_idle_refresh(pc, until_ps);
        continue;
      }
      if (!pc.decision_valid) {
        pc.decision = decide(pc);
        pc.decision_valid = true;
      }
      if (best == nullptr || pc.decision.time_ps < best->decision.time_ps) best = &pc;
    }
    if (best == nullptr || best->decision.time_ps >= until_ps) return;
    const Decision d = best->decision;
    issue(*best, d);
  }
}

std::uint64_t HbmChannel::next_event_ps() {
  std::uint64_t m = done_.empty() ? kNever : done_.top().done_ps;
  for (PseudoChannel& pc : pcs_) {
    if (pc.pending_mask == 0) continue;
    if (!pc.decision_valid) {
      pc.decision = decide(pc);
      pc.decision_valid = true;
    }
    m = std::min(m, pc.decision.completion_bound_ps);
  }
  return m;
}

}  // namespace wse::neuron
