// The wafer fabric at per-PE fidelity: one router per processing element, held in
// flat arrays and advanced cycle by cycle over the routers that have work.
//
// Each router has five ports: RAMP (its own PE) and North/East/South/West. A 32-bit
// wavelet crosses one link direction per cycle and reaches the neighbouring router
// `hop_latency_cycles` later (Cerebras SDK: "wavelets move to a neighbouring PE in a
// single clock cycle"). Each of the `colors` (24 on WSE-2/3) has its own input buffer
// at every input port, so a color whose downstream buffer is full waits without
// blocking any other color on the same link (colors act as virtual channels).
// Credit-based flow control: a sender forwards a wavelet only into a downstream buffer
// slot that is free, and a slot's credit comes back `credit_latency_cycles` after the
// wavelet leaves it. Colors that meet at one output are arbitrated round-robin by the
// switch allocator (SwitchAllocator); each input port feeds the crossbar one wavelet per
// cycle (link_wavelets_per_cycle when a node stands for a tile of PEs, see tiled()).
//
// Routes are static per color and per PE, as set by the kernel mapping: the input ports
// the color is accepted from (rx) and the outputs it is forwarded to (tx, several for
// multicast). A color may instead be declared dimension-ordered (XY) for synthetic
// traffic, where each message carries its destination.
//
// Timing of one message of n wavelets over h uncontended hops, first wavelet handed to
// the ramp at cycle 0: its last wavelet reaches the destination PE at cycle
//   ramp_latency + h * hop_latency + ramp_latency + (n - 1),
// so the message is complete at the end of that cycle: h*hop + n + 2*ramp cycles.
//
// Buffers are allocated per (router, color) only when a route is set there, or for every
// router when a color is declared dimension-ordered, so an idle full wafer costs only
// the per-router tables (about 200 B per PE).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <queue>
#include <stdexcept>
#include <string>
#include <vector>

namespace wse::wafer {

// Router ports in the hardware's words. RAMP links the router to its own PE.
enum class Port : std::uint8_t { kRamp = 0, kNorth = 1, kEast = 2, kSouth = 3, kWest = 4 };
inline constexpr int kPorts = 5;
using PortMask = std::uint8_t;
constexpr PortMask mask(Port p) { return static_cast<PortMask>(1u << static_cast<unsigned>(p)); }
template <class... P>
constexpr PortMask mask(Port p, P... rest) {
  return static_cast<PortMask>(mask(p) | mask(rest...));
}
const char* port_name(Port p);

// A PE's coordinates on the fabric: x grows eastward, y grows southward (as in the
// Cerebras SDK, where (0,0) is the north-west corner).
struct PeCoord {
  std::uint32_t x = 0;
  std::uint32_t y = 0;
  bool operator==(const PeCoord&) const = default;
};

using Color = std::uint8_t;
using MessageId = std::uint32_t;

// How a router matches buffered wavelets to outputs each cycle.
//  - kSeparable: input-first separable allocation, one iteration (as in BookSim 2's
//    input-queued router): each input port picks one of its colors round-robin among
//    those that can go somewhere, then each output picks one requesting input
//    round-robin. Not always a maximal matching.
//  - kGreedy: outputs in turn take the next color round-robin whose input port is still
//    free: a maximal matching, the optimistic bound.
enum class SwitchAllocator : std::uint8_t { kSeparable, kGreedy };

// Resolved configuration of one fabric (per-PE fidelity).
struct FabricConfig {
  std::uint32_t width = 8;                  // PEs west to east
  std::uint32_t height = 8;                 // PEs north to south
  std::uint32_t colors = 24;                // routable colors 0..23 (Cerebras SDK)
  std::uint32_t hop_latency_cycles = 1;     // router to neighbouring router (SDK: one cycle)
  std::uint32_t ramp_latency_cycles = 1;    // PE -> router and router -> PE, each (assumption)
  std::uint32_t input_buffer_wavelets = 4;  // per color per input port (assumption)
  std::uint32_t credit_latency_cycles = 1;  // slot freed -> upstream may reuse it (assumption)
  SwitchAllocator allocator = SwitchAllocator::kSeparable;  // (assumption)
  // Wavelets per cycle through each link direction and each input port (1 per PE link;
  // k for a tile of k x k PEs), and through each ramp direction (1; k^2 for a tile).
  std::uint32_t link_wavelets_per_cycle = 1;
  std::uint32_t ramp_wavelets_per_cycle = 1;
};

// Checks a configuration; throws std::invalid_argument naming the field and the limit.
void validate(const FabricConfig& cfg);

// Tiled fidelity: the same fabric seen as nodes of k x k PEs, for whole wafers. Each
// node's router stands for k x k PE routers: the width and height shrink by k (rounded
// up), a link is k PE links wide (k wavelets per cycle), a hop crosses k PEs
// (k x hop_latency), a ramp is k^2 PE ramps wide, and a node's buffers are those of its
// k x k routers (k^2 times deeper, at most 255), so a color still streams at the link's
// full width through the longer credit loop.
FabricConfig tiled(const FabricConfig& per_pe, std::uint32_t k);

// A message: n wavelets of one color sent by one PE. With a static route it goes where
// the color's routes take it (one or many PEs); with a dimension-ordered color it goes
// to `dest`.
struct Message {
  PeCoord src;
  PeCoord dest;
  Color color = 0;
  std::uint32_t wavelets = 1;
  std::uint64_t ready_cycle = 0;  // first cycle its first wavelet may enter the ramp
  std::uint32_t appended = 0;     // wavelets queued so far (== wavelets once complete)
  std::uint32_t sent = 0;         // wavelets handed to the ramp so far
  std::uint64_t first_sent_cycle = 0;
};

// Called when a wavelet reaches a PE through its ramp: (pe, message, cycle). The
// callee may inject new messages whose ready cycle is >= `cycle`.
using DeliveryHandler = std::function<void(PeCoord pe, MessageId msg, std::uint64_t cycle)>;

// Raised when a wavelet meets a PE whose routes do not accept or forward its color.
class RouteError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class Fabric {
 public:
  explicit Fabric(const FabricConfig& cfg);

  const FabricConfig& config() const { return cfg_; }
  std::uint64_t now() const { return now_; }  // the next cycle to simulate

  // Static route of `color` at `pe`: accept from `rx`, forward to every port in `tx`.
  void set_route(PeCoord pe, Color color, PortMask rx, PortMask tx);
  // Marks `color` as dimension-ordered (X then Y) on the whole fabric.
  void set_dimension_ordered(Color color);

  // Queues a message at `src`'s ramp. `dest` is used by dimension-ordered colors only.
  MessageId inject(PeCoord src, Color color, std::uint32_t wavelets, std::uint64_t ready_cycle,
                   PeCoord dest = {});
  // A message whose wavelets are produced over time (a PE computing and sending as it
  // goes): open it, then append wavelets with the cycle each becomes ready. Wavelets of
  // one color leave a PE in the order they were appended.
  MessageId open_message(PeCoord src, Color color, PeCoord dest = {});
  void append_wavelets(MessageId msg, std::uint32_t wavelets, std::uint64_t ready_cycle);
  const Message& message(MessageId id) const { return messages_[id]; }
  std::size_t message_count() const { return messages_.size(); }

  void on_delivery(DeliveryHandler h) { deliver_ = std::move(h); }

  // Simulates one cycle.
  void step();
  // Simulates until nothing is in flight or queued, or until `max_cycle`; skips idle
  // cycles. Returns the cycle after the last one in which anything happened.
  std::uint64_t run_until_idle(std::uint64_t max_cycle = UINT64_MAX);
  bool idle() const;
  // Wavelets are buffered but nothing can ever move again (a cycle of full buffers).
  bool deadlocked() const;
  // First cycle at which something is due (now() if routers or ramps are busy),
  // UINT64_MAX when idle.
  std::uint64_t next_activity_cycle() const;
  // Moves the clock forward to `cycle` without simulating; nothing may be due before it.
  void advance_to(std::uint64_t cycle);

  // Counters over the whole run.
  std::uint64_t wavelet_hops() const { return wavelet_hops_; }  // router-to-router link traversals
  std::uint64_t wavelets_delivered() const { return delivered_; }
  std::uint64_t wavelets_injected() const { return injected_; }
  std::uint64_t cycles_simulated() const { return cycles_simulated_; }
  // Wavelets sent on output `p` of `pe` (link busy cycles).
  std::uint64_t link_wavelets(PeCoord pe, Port p) const;
  // Bytes of model state now allocated (for the scale benchmark).
  std::size_t state_bytes() const;
  // Bytes the constructor allocates per router for a fabric of `colors` colors (its
  // per-router and per-(router, color) tables, from their element sizes): what a
  // fabric costs before any route is set, for memory-budget checks.
  static std::size_t idle_bytes_per_router(std::uint32_t colors);

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  static constexpr std::uint16_t kRouteDor = 0x8000;

  struct Channel {  // the input buffer of one color at one input port of one router
    std::uint32_t router = 0;
    std::uint8_t in_port = 0;
    Color color = 0;
    std::uint8_t count = 0;     // wavelets buffered
    std::uint8_t reserved = 0;  // slots taken from the upstream's view (credits spent)
    std::uint8_t head = 0;      // ring position of the oldest wavelet
    PortMask pending = 0;       // outputs the head wavelet still has to be sent to
    MessageId head_msg = 0;     // the head wavelet's message (a copy of its slot, kept hot)
  };
  struct RouterState {
    std::array<std::uint8_t, kPorts> rr{};     // last key served per output
    std::array<std::uint8_t, kPorts> rr_in{};  // last key chosen per input (separable allocator)
    bool active = false;
    std::array<std::uint64_t, 2> nonempty{};  // bit key = in_port * colors + color
  };
  struct Burst {  // wavelets of one message that become ready together
    MessageId msg;
    std::uint32_t count;
    std::uint64_t ready_cycle;
  };
  // A FIFO that allocates nothing until used (std::deque allocates a block up front,
  // which a full wafer of PEs cannot afford).
  struct BurstFifo {
    std::vector<Burst> items;
    std::size_t head = 0;
    bool empty() const { return head == items.size(); }
    Burst& front() { return items[head]; }
    const Burst& front() const { return items[head]; }
    Burst& back() { return items.back(); }
    void push_back(const Burst& b) { items.push_back(b); }
    void pop_front() {
      if (++head == items.size()) {
        if (items.capacity() > 8) {
          std::vector<Burst>().swap(items);  // release: most PEs send once
        } else {
          items.clear();
        }
        head = 0;
      } else if (head >= 64 && 2 * head >= items.size()) {
        items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(head));
        head = 0;
      }
    }
  };
  struct ColorQueue {
    Color color = 0;
    BurstFifo bursts;  // a color's wavelets leave the PE in order
  };
  struct Source {  // a PE's ramp injection queues, one per color it sends on
    std::uint32_t pe = 0;
    std::uint8_t rr = 0;
    bool active = false;
    std::uint64_t wake_cycle = UINT64_MAX;  // booked in sleeping_ (UINT64_MAX: none)
    std::vector<ColorQueue> queues;
  };
  enum class EventKind : std::uint8_t { kArrive, kCredit, kDeliver };
  struct Event {
    EventKind kind;
    std::uint32_t a;  // channel (arrive, credit) or router (deliver)
    MessageId msg;
  };

  std::uint32_t index(PeCoord p) const { return p.y * cfg_.width + p.x; }
  PeCoord coord(std::uint32_t r) const { return {r % cfg_.width, r / cfg_.width}; }
  std::uint32_t neighbour(std::uint32_t r, Port p) const;  // kNone at the edge
  // The neighbour through a port known to lead somewhere (routes are checked when set).
  std::uint32_t step_to(std::uint32_t r, Port p) const {
    switch (p) {
      case Port::kNorth:
        return r - cfg_.width;
      case Port::kSouth:
        return r + cfg_.width;
      case Port::kWest:
        return r - 1;
      case Port::kEast:
        return r + 1;
      case Port::kRamp:
        break;
    }
    return r;
  }
  std::uint32_t channel_id(std::uint32_t r, Port in, Color c);          // allocates the block if needed
  std::uint32_t find_channel(std::uint32_t r, Port in, Color c) const;  // kNone if absent
  void schedule(std::uint64_t cycle, EventKind kind, std::uint32_t a, MessageId msg);
  void arrive(std::uint32_t ch, MessageId msg);
  PortMask route_head(const Channel& ch, MessageId msg) const;
  bool has_credit(std::uint32_t r, Port out, Color c) const;
  bool allocate(std::uint32_t r, std::uint32_t round);  // true if a wavelet moved
  bool inject_from(Source& s);                          // true if a wavelet entered the ramp
  ColorQueue& queue_of(std::uint32_t r, Color c, std::uint64_t ready_cycle);
  void check_color(Color c, const char* what) const;
  std::string where(std::uint32_t r) const;

  FabricConfig cfg_;
  std::uint32_t routers_;
  std::uint32_t rounds_ = 1;  // allocation rounds per cycle: the widest port
  std::uint64_t now_ = 0;
  std::vector<std::uint32_t> xy_;      // [router] x << 16 | y
  std::vector<std::uint16_t> routes_;  // [router * colors + color]: rx | tx << 5, or kRouteDor
  std::vector<bool> dor_color_;
  std::vector<std::uint32_t> block_;  // [router * colors + color] -> channel block (5 channels)
  std::vector<Channel> channels_;
  std::vector<MessageId> slots_;  // channel * depth + ring position
  std::vector<RouterState> router_;
  std::vector<std::uint32_t> active_routers_;
  std::vector<std::uint32_t> source_of_;  // [router] -> index in sources_, kNone if none
  std::vector<Source> sources_;
  std::vector<std::uint32_t> active_sources_;
  using Wake = std::pair<std::uint64_t, std::uint32_t>;  // (ready cycle, source)
  // Wake-ups booked by sleeping sources, taken in (cycle, source) order: those of the
  // next kSpan cycles from `from` (the first cycle not yet taken) in a ring of buckets
  // with a bit per nonempty bucket, later ones in a heap, moved into the ring as it
  // advances. Booked cycles are never before `from`.
  class WakeCalendar {
   public:
    bool empty() const { return size_ == 0; }
    void push(std::uint64_t cycle, std::uint32_t si) {
      ++size_;
      if (cycle < from_ + kSpan) {
        put(cycle, si);
      } else {
        later_.emplace(cycle, si);
      }
    }
    // The earliest booked cycle (empty(): UINT64_MAX).
    std::uint64_t top_cycle() const {
      std::uint64_t c = later_.empty() ? UINT64_MAX : later_.top().first;
      if (bits_ != 0) {
        const unsigned off = static_cast<unsigned>(from_ & (kSpan - 1));
        const std::uint64_t rotated = std::rotr(bits_, static_cast<int>(off));
        c = std::min(c, from_ + static_cast<std::uint64_t>(std::countr_zero(rotated)));
      }
      return c;
    }
    // Takes every wake-up booked at or before `now` into `out`, in (cycle, source) order.
    void take_due(std::uint64_t now, std::vector<Wake>& out) {
      out.clear();
      if (now < from_ || size_ == 0) {
        if (now >= from_) from_ = now + 1;
        refill();
        return;
      }
      const std::uint64_t last = std::min(now, from_ + kSpan - 1);
      for (std::uint64_t c = from_; c <= last && bits_ != 0; ++c) {
        const unsigned b = static_cast<unsigned>(c & (kSpan - 1));
        if (!(bits_ & (1ull << b))) continue;
        for (const std::uint32_t si : ring_[b]) out.emplace_back(c, si);
        ring_[b].clear();
        bits_ &= ~(1ull << b);
      }
      while (!later_.empty() && later_.top().first <= now) {
        out.push_back(later_.top());
        later_.pop();
      }
      if (out.size() > 1) std::sort(out.begin(), out.end());
      size_ -= out.size();
      from_ = now + 1;
      refill();
    }

   private:
    static constexpr std::uint64_t kSpan = 64;
    void put(std::uint64_t cycle, std::uint32_t si) {
      const unsigned b = static_cast<unsigned>(cycle & (kSpan - 1));
      ring_[b].push_back(si);
      bits_ |= 1ull << b;
    }
    void refill() {
      while (!later_.empty() && later_.top().first < from_ + kSpan) {
        put(later_.top().first, later_.top().second);
        later_.pop();
      }
    }
    std::uint64_t from_ = 0;
    std::uint64_t bits_ = 0;
    std::size_t size_ = 0;
    std::array<std::vector<std::uint32_t>, kSpan> ring_;
    std::priority_queue<Wake, std::vector<Wake>, std::greater<>> later_;
  };
  WakeCalendar sleeping_;
  std::vector<Wake> due_wakes_;               // scratch: the wake-ups of this cycle
  std::vector<std::vector<Event>> wheel_;     // power-of-two calendar of the next cycles
  std::array<std::uint8_t, 128> key_port_{};  // key -> input port
  std::array<Color, 128> key_color_{};        // key -> color
  std::uint64_t events_pending_ = 0;
  std::vector<Message> messages_;
  std::vector<std::uint32_t> dor_dest_;    // [message] destination x << 16 | y (compact, hot)
  std::vector<std::uint32_t> link_count_;  // [router * kPorts + out port]
  DeliveryHandler deliver_;
  std::uint64_t wavelet_hops_ = 0;
  std::uint64_t delivered_ = 0;
  std::uint64_t injected_ = 0;
  std::uint64_t cycles_simulated_ = 0;
  std::uint64_t queued_wavelets_ = 0;
  std::uint64_t buffered_ =
      0;  // wavelets in router input buffers  // handed to inject() but not yet to the ramp
};

}  // namespace wse::wafer
