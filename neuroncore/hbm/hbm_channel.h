// One HBM channel and its memory controller: two pseudo-channels of banks with open
// rows, the HBM3 timing constraints between commands, all-bank refresh, and an FR-FCFS
// scheduler over a request queue of configured depth.
//
// This is plain C++ (no SystemC): time is integer picoseconds given by the caller, and
// the controller is event-driven rather than ticked. It decides commands in time order,
// each at the earliest tCK edge at which every constraint holds, so it issues the same
// command sequence as a cycle-by-cycle FR-FCFS controller without visiting idle cycles.
// Decisions are made lazily: advance(t) commits every command issued before t, and the
// caller must call advance(now) before enqueue(now, ...) so that a request never
// influences a decision taken before it arrived.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <queue>
#include <vector>

#include "neuroncore/hbm/hbm_config.h"

namespace wse::neuron {

class HbmChannel {
 public:
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  // One access of HbmConfig::access bytes, already decoded to this channel.
  struct Access {
    std::uint64_t tag = 0;  // the caller's handle, returned with the completion
    std::uint32_t row = 0;
    std::uint8_t pseudo_channel = 0;
    std::uint8_t sid = 0;
    std::uint8_t bank_group = 0;
    std::uint8_t bank = 0;
    bool write = false;
  };
  struct Completion {
    std::uint64_t done_ps;     // end of the data burst
    std::uint64_t arrival_ps;  // when the access reached the controller
    std::uint64_t tag;
    bool write;
  };
  struct Counters {
    std::uint64_t reads = 0;
    std::uint64_t writes = 0;
    std::uint64_t activates = 0;
    std::uint64_t precharges = 0;  // row conflicts (refresh precharges not counted)
    std::uint64_t refreshes = 0;
    std::uint64_t data_busy_ps = 0;  // summed over both pseudo-channels
    std::uint64_t read_latency_sum_ps = 0;
    std::uint64_t read_latency_max_ps = 0;
  };

  // `channel_index` is the channel's place over all stacks (kept for per-channel
  // policies; refresh currently runs on one schedule for all channels).
  HbmChannel(const HbmConfig& cfg, std::uint32_t channel_index);

  // Commits every command whose issue time is before `until_ps` (and the refreshes of
  // idle pseudo-channels that fall before it).
  void advance(std::uint64_t until_ps);
  // A new access arriving at `now_ps`. Call advance(now_ps) first.
  void enqueue(std::uint64_t now_ps, const Access& a);
  // A lower bound on the next completion: the caller may sleep until then (kNever when
  // nothing is in flight or queued).
  std::uint64_t next_event_ps();
  // Removes and passes to `f` every completion with done_ps <= t_ps, in time order.
  template <class F>
  void drain_completions(std::uint64_t t_ps, F&& f) {
    while (!done_.empty() && done_.top().done_ps <= t_ps) {
      Completion c = done_.top();
      done_.pop();
      f(c);
    }
  }
  // Accesses in the scheduler queue, waiting behind it, and in flight on the data bus.
  std::size_t outstanding() const { return in_queue_ + overflow_.size() + done_.size(); }
  const Counters& counters() const { return counters_; }

 private:
  // The first four index per-kind tables.
  enum class Command : std::uint8_t { kActivate, kPrecharge, kRead, kWrite, kNone, kRefresh };
  static constexpr std::size_t kMaxBanks = 64;

  struct Entry {
    Access a;
    std::uint64_t arrival_ps;
    std::uint64_t earliest_ps;  // arrival rounded up to a tCK edge
    std::uint64_t seq;
  };
  // The command a bank wants next, from its own state only (cached until the bank
  // changes).
  struct BankChoice {
    std::uint32_t pending_pos = 0;  // which of the bank's pending entries it serves
  };
  struct Bank {
    std::int64_t open_row = -1;
    std::uint64_t next_act = 0;
    std::uint64_t next_rd = 0;
    std::uint64_t next_wr = 0;
    std::uint64_t next_pre = 0;
    std::vector<std::uint32_t> pending;  // pool indices, in arrival order
    BankChoice choice;
  };
  struct Decision {
    Command cmd = Command::kNone;
    std::uint32_t bank = 0;
    std::uint64_t time_ps = kNever;
    std::uint64_t completion_bound_ps = kNever;
  };
  struct PseudoChannel {
    std::vector<Bank> banks;
    std::vector<std::uint64_t> bg_next_act;  // per bank group (over both SIDs)
    std::vector<std::uint64_t> bg_next_rd;
    std::vector<std::uint64_t> bg_next_wr;
    std::uint64_t faw[4] = {0, 0, 0, 0};
    std::uint32_t faw_pos = 0;
    std::uint64_t activates = 0;
    // Earliest read / write command so that its data follows the previous burst.
    std::uint64_t rd_bus_floor_ps = 0;
    std::uint64_t wr_bus_floor_ps = 0;
    std::uint64_t next_cmd_ps = 0;  // one command per tCK
    std::uint64_t next_refresh_ps = 0;
    std::uint64_t pending_mask = 0;  // banks with pending entries
    std::uint64_t choice_valid = 0;  // banks whose cached choice is current
    // Each bank's wanted command (structure of arrays: scanned on every decision).
    std::uint8_t kind[kMaxBanks] = {};
    std::uint64_t local_ps[kMaxBanks] = {};  // from bank-local constraints and arrival
    std::uint64_t seq[kMaxBanks] = {};
    Decision decision;
    bool decision_valid = false;
  };

  std::uint64_t ceil_tck(std::uint64_t t) const { return (t + tck_ - 1) / tck_ * tck_; }
  void choose(PseudoChannel& pc, std::uint32_t bank);
  // Earliest tCK edge allowed by pseudo-channel-wide constraints for `kind` in group g.
  std::uint64_t floor_ps(const PseudoChannel& pc, std::uint8_t kind, std::uint32_t g) const;
  Decision decide(PseudoChannel& pc);
  // Merges the (new) wish of one bank into a valid cached decision.
  void merge(PseudoChannel& pc, std::uint32_t bank);
  void issue(PseudoChannel& pc, const Decision& d);
  void refresh(PseudoChannel& pc);
  void catch_up_idle_refresh(PseudoChannel& pc, std::uint64_t until_ps);
  void remove_entry(PseudoChannel& pc, std::uint32_t bank_index, std::uint32_t pos);
  void admit(std::uint64_t now_ps, const Access& a, std::uint64_t arrival_ps);

  // Timing in picoseconds.
  std::uint64_t tck_, burst_;
  std::uint64_t to_data_end_[4];  // lower bound from a command of each kind to its data end
  std::uint64_t tCL_, tCWL_, tRCD_RD_, tRCD_WR_, tRP_, tRAS_, tRC_, tWR_, tRTP_;
  std::uint64_t tCCD_S_, tCCD_L_, tCCD_R_, tRRD_S_, tRRD_L_, tFAW_, tWTR_S_, tWTR_L_, tRTW_;
  std::uint64_t tRFC_, tREFI_;
  std::uint32_t bank_groups_, banks_per_group_, groups_per_pc_;
  std::uint8_t group_of_[kMaxBanks] = {};  // bank -> bank group over both SIDs (no division)
  std::uint8_t sid_of_group_[kMaxBanks] = {};
  std::uint32_t queue_depth_;
  bool refresh_enabled_;

  std::vector<PseudoChannel> pcs_;
  std::vector<Entry> pool_;
  std::vector<std::uint32_t> free_;
  std::deque<std::pair<Access, std::uint64_t>> overflow_;
  std::uint32_t in_queue_ = 0;
  std::uint64_t seq_ = 0;
  struct Later {
    bool operator()(const Completion& a, const Completion& b) const {
      return a.done_ps != b.done_ps ? a.done_ps > b.done_ps : a.tag > b.tag;
    }
  };
  std::priority_queue<Completion, std::vector<Completion>, Later> done_;
  Counters counters_;
};

}  // namespace wse::neuron
