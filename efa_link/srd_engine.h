// The event-driven core of the EFA link: adapters, network paths and the SRD transport
// of every machine in one calendar queue, with no SystemC process per packet.
//
// Grain. The unit that moves through the model is a *train*: one SRD packet (packet
// grain) or a burst of consecutive packets of one message (burst grain). A train passes
// each resource (host DMA, NIC port, network path, receiving NIC port, host DMA) as a
// FIFO server of fixed rate R that tracks when it is next free F:
//
//   start = max(head_in, F)
//   head_out = start + first_packet_bytes / R
//   F        = start + train_bytes / R            (work-conserving: gaps stay usable)
//   tail_out = max(F, tail_in + last_packet_bytes / R)
//
// For one packet head = tail and this is the store-and-forward FIFO queue; for a train
// of evenly spaced packets it gives the exact head and tail times of the packets, so
// both grains agree on completion time when nothing is lost (see docs/efa_link.md).
//
// Timing is in integer picoseconds; the calendar orders events by (time, sequence), so
// the same inputs and seed give the same result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "efa_link/efa_config.h"
#include "systemc_models/sim/event_heap.h"
#include "systemc_models/stats/stats.h"
#include "systemc_models/trace/trace.h"

namespace wse::efa {

enum class RdmaOp : std::uint8_t { Write, Read };

// In WorkRequest::*_adapter: spread the message over all adapters of the data-sending
// machine (multi-rail striping, as libfabric users such as NCCL/NIXL do).
inline constexpr std::uint32_t kAllAdapters = 0xffffffffU;

// One RDMA work request. Machines are numbered senders first (0..senders-1), then
// receivers (senders..senders+receivers-1); a transfer always crosses between the two
// groups. A write moves `bytes` from the initiator to the target, a read from the target
// to the initiator. `local` / `remote` are optional buffers: when both are given, the
// payload of each packet is copied when it is placed, so tests can check the data.
struct WorkRequest {
  RdmaOp op = RdmaOp::Write;
  std::uint32_t initiator = 0;
  std::uint32_t target = 0;
  std::uint32_t initiator_adapter = kAllAdapters;
  std::uint32_t target_adapter = kAllAdapters;
  std::uint64_t bytes = 0;
  std::byte* local = nullptr;
  std::byte* remote = nullptr;
  std::uint64_t tag = 0;  // returned in the completion
};

struct Completion {
  std::uint64_t message = 0;
  std::uint64_t tag = 0;
  bool ok = true;
  std::string error;  // set when !ok
  std::uint64_t posted_ps = 0;
  std::uint64_t in_place_ps = 0;   // every byte at its destination
  std::uint64_t completed_ps = 0;  // the initiator sees the completion
  std::uint64_t packets_sent = 0;  // including retransmissions
  std::uint64_t packets_retransmitted = 0;
};

class SrdEngine {
 public:
  using CompletionFn = std::function<void(const Completion&)>;
  // Called once per packet range placed for the first time at its destination.
  using PlaceFn = std::function<void(std::uint64_t message, std::uint64_t offset, std::uint64_t bytes)>;

  // Throws std::invalid_argument if the configuration is invalid.
  SrdEngine(const EfaNetworkConfig& config, std::string stats_name = "efa")
      : SrdEngine(config, EfaFaults{}, std::move(stats_name)) {}
  // The network `config` under the fault schedule `faults` (path outages, loss bursts),
  // given beside the configuration; throws std::invalid_argument if either is invalid.
  SrdEngine(const EfaNetworkConfig& config, EfaFaults faults, std::string stats_name = "efa");

  void on_completion(CompletionFn f) { on_completion_ = std::move(f); }
  void on_place(PlaceFn f) { on_place_ = std::move(f); }
  // Timeline: one slice per RDMA operation, from post to completion, on lanes of the
  // initiating machine. Null (the default) turns it off.
  void set_trace(trace::Writer* writer) { trace_ = writer; }

  // Posts a work request that the initiator hands to its NIC at `at_ps` (>= now).
  // Throws std::invalid_argument for a malformed request. Returns the message id.
  std::uint64_t post(const WorkRequest& wr, std::uint64_t at_ps);

  // Processes every event with time <= t_ps (the clock then reads t_ps).
  void run_until(std::uint64_t t_ps);
  // Processes events until none is left.
  void run();
  std::optional<std::uint64_t> next_event_ps() const;
  std::uint64_t now_ps() const { return now_ps_; }

  std::uint32_t machines() const { return config_.senders + config_.receivers; }
  std::uint64_t events_processed() const { return events_processed_; }
  const std::vector<Completion>& completions() const { return completions_; }
  // What one posted operation keeps for the rest of the run, striped over `rails` flows
  // (its per-unit tables are released when it completes): the budget's estimate
  // (limits.memory_budget) for the KV transfers of a run. Deque storage, plus the
  // allocator's 16 B per block, rounded.
  static std::uint64_t retained_bytes_per_message(std::uint32_t rails);
  const stats::Group& stats() const { return stats_; }
  const EfaNetworkConfig& config() const { return config_; }
  const EfaFaults& faults() const { return faults_; }

  // Counters, also in stats().
  std::uint64_t packets_sent() const { return packets_sent_->value(); }
  std::uint64_t packets_lost() const { return packets_lost_->value(); }
  std::uint64_t packets_retransmitted() const { return packets_retransmitted_->value(); }
  std::uint64_t packets_duplicate() const { return packets_duplicate_->value(); }
  std::uint64_t packets_rerouted() const { return packets_rerouted_->value(); }
  std::uint64_t bytes_placed() const { return bytes_placed_->value(); }

 private:
  // A FIFO server of fixed rate (see the header comment).
  struct Server {
    std::uint64_t free_ps = 0;
    double ps_per_byte = 0.0;
    stats::Utilization* busy = nullptr;
  };
  struct Train {
    std::uint64_t head_ps;
    std::uint64_t tail_ps;
  };
  struct Adapter {
    Server dma_read, tx, rx, dma_write;
    const EfaAdapterConfig* cfg = nullptr;
    std::uint32_t machine = 0;
    std::deque<std::uint32_t> active;  // flows with never-sent units, served round robin
    std::deque<std::pair<std::uint32_t, std::uint32_t>> retransmit;  // (flow, unit)
    std::uint64_t outstanding_bytes = 0;
    double cwnd_bytes = 0;              // congestion window (<= max_outstanding)
    double srtt_ps = 0, rttvar_ps = 0;  // smoothed round trip and its mean deviation
    std::uint64_t last_decrease_ps = 0;
    bool pick_scheduled = false;
    std::uint32_t next_path = 0;
  };
  struct Path {
    Server link[2];  // [0] sender side -> receiver side, [1] the reverse
    std::uint64_t latency_ps = 0;
    std::uint64_t pending_bytes[2] = {0, 0};  // sent towards the path, not yet arrived
  };
  // The part of one message that goes from one source adapter to one destination adapter.
  struct Flow {
    std::uint32_t message = 0;
    std::uint32_t src = 0, dst = 0;  // global adapter indices
    std::uint8_t dir = 0;
    bool failed = false, finished = false;
    std::uint64_t offset = 0, bytes = 0, unit_bytes = 0;
    std::uint32_t units = 0, next_new = 0, acked = 0, placed = 0;
    std::uint64_t in_place_ps = 0;
    std::vector<std::uint8_t> tries;  // transmissions of each unit
    std::vector<std::uint8_t> state;  // kPlaced | kAcked
  };
  struct Message {
    WorkRequest wr;
    std::uint32_t first_flow = 0, flow_count = 0, flows_left = 0;
    bool failed = false;
    std::string error;
    std::uint64_t posted_ps = 0, in_place_ps = 0;
    std::uint64_t packets = 0, retransmitted = 0;
  };
  // One transmission of a unit, alive until both its journey and its timer have ended.
  struct Transmission {
    std::uint32_t flow = 0, unit = 0;
    std::uint8_t attempt = 0, refs = 0;
    bool counted = false;  // still counted in the source adapter's outstanding bytes
    std::uint16_t path = 0;
    std::uint64_t tail_ps = 0;
    std::uint64_t sent_ps = 0;            // left the sending NIC
    std::uint64_t queued_ps = 0;          // waited in path and receive-port queues
    std::uint32_t timer_slot = kNoTimer;  // position of its pending timer in timers_
  };
  static constexpr std::uint32_t kNoTimer = 0xffffffffU;
  enum class Ev : std::uint8_t { Post, ReadRequest, Pick, PathArrive, RxArrive, Ack, Timer, FlowInPlace };
  struct Event {
    std::uint64_t t_ps;
    std::uint64_t seq;
    std::uint32_t idx;
    Ev kind;
    bool operator>(const Event& o) const { return t_ps != o.t_ps ? t_ps > o.t_ps : seq > o.seq; }
  };
  struct UnitShape {
    std::uint64_t payload, packets, first_payload, last_payload, wire;
  };

  static Train pass(Server& s, Train in, std::uint64_t first_bytes, std::uint64_t last_bytes,
                    std::uint64_t total_bytes);
  static std::uint64_t dur_ps(const Server& s, std::uint64_t bytes);
  void schedule(std::uint64_t t_ps, Ev kind, std::uint32_t idx);
  void dispatch(const Event& e);
  void activate_message(std::uint32_t m, std::uint64_t t_ps);
  void kick(std::uint32_t adapter, std::uint64_t t_ps);
  void pick(std::uint32_t adapter);
  void path_arrive(std::uint32_t tx);
  void rx_arrive(std::uint32_t tx);
  void ack(std::uint32_t tx);
  void timer(std::uint32_t tx);
  void flow_in_place(std::uint32_t flow);
  void flow_done(std::uint32_t flow, std::uint64_t t_ps);
  void fail_flow(std::uint32_t flow, std::uint32_t unit);
  void release(std::uint32_t tx);
  void adjust_window(Adapter& a, const Transmission& tx, std::uint64_t wire);
  static void sample_round_trip(Adapter& a, std::uint64_t rtt_ps);
  std::uint64_t retransmit_timeout_ps(const Adapter& a, std::uint8_t attempt) const;
  static constexpr unsigned kMaxBackoffShift = 6;  // assumption: a retransmission waits at most 64 timeouts
  std::uint64_t burst_slack_ps(const Adapter& a, const UnitShape& s) const;
  void uncount(Transmission& tx);
  static void release_units(Flow& f);
  UnitShape shape(const Flow& f, std::uint32_t unit) const;
  std::uint64_t path_wait(std::uint32_t path, std::uint8_t dir, std::uint64_t arrive_ps) const;
  std::uint32_t choose_path(Adapter& a, std::uint8_t dir, std::uint64_t arrive_ps, std::uint64_t wire,
                            std::uint64_t packets);
  bool link_down(std::uint32_t path, std::uint64_t t_ps) const;
  // Fault schedule: a path out (PathOutage) at t; the first time >= t at which some path
  // is up; the loss probability of a packet of flow f entering `path` at t (LossBurst).
  bool path_out(std::uint32_t path, std::uint64_t t_ps) const;
  std::uint64_t paths_return_ps(std::uint64_t t_ps) const;
  double loss_at(std::uint32_t path, const Flow& f, std::uint64_t t_ps) const;
  bool draw_loss(std::uint64_t packets, double p);
  std::uint32_t adapter_index(std::uint32_t machine, std::uint32_t adapter) const;
  std::uint32_t adapters_of(std::uint32_t machine) const;
  std::string describe(const Message& m) const;
  std::string machine_name(std::uint32_t machine) const;
  void trace_message(const Message& m, const Completion& c);

  EfaNetworkConfig config_;
  EfaFaults faults_;
  std::vector<Adapter> adapters_;
  std::vector<std::uint32_t> adapter_base_;  // first adapter of each machine
  std::vector<Path> paths_;
  // Deques: a message's index is its id for good, and a deque grows without copying
  // (a vector's doubling held old and new copies at once: 176 MB of flows at 4,500
  // requests of layer-wise KV transfers).
  std::deque<Flow> flows_;
  std::deque<Message> messages_;
  std::vector<Transmission> tx_;
  std::vector<std::uint32_t> free_tx_;
  std::vector<Completion> completions_;
  // The calendar, in two heaps ordered alike by (time, sequence): retransmission timers
  // and every other event. The next event is the earlier of the two tops, so events run
  // in the order of one heap. The timer heap is indexed (each transmission knows its
  // timer's slot): an acknowledgement settles its transmission's timer, which would only
  // release the transmission when it fired, so the acknowledgement does that and removes
  // the timer. Only the timers of trains still unacknowledged stay in the heap, not one
  // per train sent within the last timeout.
  sim::EventHeap<Event> events_;  // (time, sequence) order
  std::vector<Event> timers_;     // binary min-heap by (time, sequence); Event::idx = transmission
  void timer_push(const Event& e);
  void timer_remove(std::uint32_t slot);
  void timer_place(std::uint32_t slot, const Event& e);
  void timer_sift_up(std::uint32_t slot);
  void timer_sift_down(std::uint32_t slot);
  // Takes the next event at or before t_ps into e; false if there is none.
  bool pop_next(std::uint64_t t_ps, Event& e);
  std::uint64_t seq_ = 0;
  std::uint64_t now_ps_ = 0;
  std::uint64_t events_processed_ = 0;
  std::uint64_t timeout_ps_ = 0;
  std::uint64_t congestion_delay_ps_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> fault_windows_all_;
  std::vector<std::vector<std::pair<std::uint64_t, std::uint64_t>>> fault_windows_path_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> outages_all_;
  std::vector<std::vector<std::pair<std::uint64_t, std::uint64_t>>> outages_path_;
  bool has_outages_ = false;
  std::mt19937_64 rng_;
  trace::Writer* trace_ = nullptr;
  std::vector<std::vector<std::pair<std::uint64_t, trace::TrackId>>>
      trace_lanes_;  // per machine: (busy until, track)
  CompletionFn on_completion_;
  PlaceFn on_place_;

  stats::Group stats_;
  stats::Counter* messages_done_;
  stats::Counter* messages_failed_;
  stats::Counter* packets_sent_;
  stats::Counter* packets_lost_;
  stats::Counter* packets_retransmitted_;
  stats::Counter* packets_duplicate_;
  stats::Counter* packets_rerouted_;
  stats::Counter* bytes_placed_;
  stats::Distribution* completion_latency_;
};

}  // namespace wse::efa
