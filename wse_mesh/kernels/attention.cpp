#include "wse_mesh/kernels/attention.h"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "systemc_models/units/integer.h"
#include "wse_mesh/kernels/attention_tiled.h"

namespace wse::wafer {

namespace {

constexpr std::uint64_t kUnknown = UINT64_MAX;
constexpr std::uint32_t kNone = UINT32_MAX;

// Where a head's cached tokens live. Block b (tokens [b * tpp, (b + 1) * tpp)) is on the
// head's PE (b mod Q, b / Q); block ids double as node ids within a head.
struct Layout {
  std::uint64_t tpp = 0;  // tokens per PE
  std::uint64_t D = 0;    // head_dim
  std::uint64_t G = 0;    // queries per KV head
  std::uint64_t qt = 0;   // query tokens
  std::uint64_t context = 0;
  std::uint64_t N = 0;   // tokens after the append
  std::uint32_t nb = 0;  // blocks (used PEs) per head
  std::uint32_t Q = 0;   // columns
  std::uint32_t R = 0;   // rows per head

  std::uint64_t tokens_in(std::uint32_t b) const { return std::min(tpp, N - b * tpp); }
  // Tokens of block b that query token i (at position context + i) attends to (causal).
  std::uint64_t attended(std::uint32_t b, std::uint64_t i) const {
    const std::uint64_t limit = context + i + 1;
    const std::uint64_t first = b * tpp;
    return limit <= first ? 0 : std::min(tokens_in(b), limit - first);
  }
  std::uint32_t row_len(std::uint32_t r) const { return std::min(Q, nb - r * Q); }
  std::uint32_t col_rows(std::uint32_t c) const { return (nb - c + Q - 1) / Q; }
  std::uint64_t queries() const { return G * qt; }
  std::uint64_t q_wavelets() const { return ceil_div(queries() * D, 2); }  // the query multicast (fp16 pairs)
};

Layout layout_of(const AttentionConfig& a) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("attention: " + what);
  };
  require_attention_shape("attention", {a.q_heads, a.kv_heads, a.head_dim, a.query_tokens, a.tokens_per_pe,
                                        a.max_grid_cols, a.kv_bytes});
  Layout l;
  l.tpp = a.tokens_per_pe;
  l.D = a.head_dim;
  l.G = a.q_heads / a.kv_heads;
  l.qt = a.query_tokens;
  l.context = a.context;
  l.N = a.context + a.query_tokens;
  const std::uint64_t blocks = ceil_div(l.N, l.tpp);
  require(blocks <= (1ull << 24), "the cache is spread over more than 2^24 PEs per head");
  l.nb = static_cast<std::uint32_t>(blocks);
  l.Q = std::min(l.nb, a.max_grid_cols);
  l.R = static_cast<std::uint32_t>(ceil_div(l.nb, l.Q));
  return l;
}

// Colors of the mapping: 0 append, 1 query multicast, then the combine's row phase, then
// its column phase.
constexpr Color kAppendColor = 0;
constexpr Color kQueryColor = 1;
constexpr Color kRowColor = 2;

enum class MsgKind : std::uint8_t { kAppend, kQuery, kCombine };
struct MsgInfo {
  MsgKind kind = MsgKind::kQuery;
  std::uint32_t head = 0;
  std::uint32_t owner = kNone;  // append: the block the new tokens belong to
  std::uint32_t from = kNone;   // combine (tiled): the block that sends the stream
};

// Events by cycle for cycles from `base` on, taken in cycle order and, within a cycle,
// in booking order: a ring of per-cycle lists (a bucket calendar) that grows to the span
// booked ahead. It stands where a std::map<cycle, std::vector<E>> would, without a map
// node and a list allocation for every cycle: the tiled attention kernel books an event
// for nearly every wavelet inside a node. A booking before the last cycle taken is a
// logic error (the caller books only ahead of the cycle it handles).
template <class E>
class BucketCalendar {
 public:
  bool empty() const { return pending_ == 0; }
  void book(std::uint64_t cycle, const E& e) {
    if (cycle < base_) throw std::logic_error("BucketCalendar: an event booked before the last cycle taken");
    if (cycle - base_ >= slots_.size()) grow(cycle - base_ + 1);
    slots_[cycle & mask_].push_back(e);
    ++pending_;
    scan_ = std::min(scan_, cycle);
  }
  // The earliest cycle with an event (the calendar must not be empty).
  std::uint64_t next() {
    while (slots_[scan_ & mask_].empty()) ++scan_;
    return scan_;
  }
  // Moves the events of the earliest cycle into `out` (its former contents dropped) and
  // returns that cycle; later bookings must be after it.
  std::uint64_t take(std::vector<E>& out) {
    const std::uint64_t cycle = next();
    out.clear();
    out.swap(slots_[cycle & mask_]);
    pending_ -= out.size();
    base_ = cycle + 1;
    scan_ = base_;
    return cycle;
  }

 private:
  void grow(std::uint64_t span) {
    const std::size_t size = std::bit_ceil(std::max<std::uint64_t>({span, 2 * slots_.size(), 64}));
    std::vector<std::vector<E>> slots(size);
    for (std::uint64_t c = base_; c < base_ + slots_.size(); ++c)
      slots[c & (size - 1)].swap(slots_[c & mask_]);
    slots_.swap(slots);
    mask_ = size - 1;
  }
  std::vector<std::vector<E>> slots_;  // cycle c in slots_[c & mask_], for c in [base_, base_ + size)
  std::uint64_t mask_ = 0;
  std::uint64_t base_ = 0;  // no event before it
  std::uint64_t scan_ = 0;  // no event before it either (>= base_)
  std::size_t pending_ = 0;
};

struct PeState {
  std::uint64_t engine_free = 0;
  std::uint64_t busy = 0;             // local work: stores, scores, softmax, P V
  std::uint64_t append_expected = 0;  // wavelets of new K/V this PE stores
  std::uint64_t append_stored = 0;
  std::uint64_t append_done = 0;         // kUnknown while waiting for the append
  std::vector<std::uint64_t> pending_q;  // q wavelets delivered before the append was stored (cycle)
  std::uint64_t q_wavelets = 0;          // q wavelets processed
  std::uint64_t last_q_delivery = kUnknown;
  std::uint64_t own_done = kUnknown;                          // the last query's local work done
  std::vector<std::uint64_t> query_done;                      // per query: its partial result (m, l, o) done
  std::vector<std::pair<std::uint64_t, MessageId>> arrivals;  // combine wavelets waiting for query_done
  struct Stream {  // a combine stream coming in: its next wavelet's index k, as query and offset
    MessageId msg;
    std::uint64_t k = 0;
    std::uint64_t query = 0;     // k / payload_per_query
    std::uint64_t in_query = 0;  // k % payload_per_query
  };
  std::vector<Stream> streams;
  std::uint64_t q_query = 0;  // the query of the next q element to process, and the element in it
  std::uint64_t q_in_query = 0;
  std::uint64_t next_final = 0;
  MessageId out = kNone;
};

// The instruction costs of the mapping's steps on one PE (pe.h).
struct AttentionCosts {
  AttentionCosts(const PeConfig& pe, const AttentionConfig& a, const Layout& L)
      : pe_(pe),
        D_(L.D),
        kv_bits_(8 * a.kv_bytes),
        per_wavelet_(4 / a.kv_bytes),
        k_wavelets(ceil_div(L.D, per_wavelet_)),
        payload_per_query(L.D + 2),
        payload(L.queries() * payload_per_query),
        combine_m(vector_cycles(pe, pe.simd_fp32_add, 1, 32, 32) + 2 * exp_cycles(pe, 1)),
        combine_o(2 * vector_cycles(pe, pe.simd_fp32_fmac, 1, 32, 32)),
        normalize(reciprocal_cycles(pe, 1) + fp32_scale_cycles(pe, L.D)) {
    // The costs for every token count a PE can hold and every wavelet of a token, worked
    // out once (the handlers ask for them per wavelet).
    if (L.tpp <= kTabled) {
      for (std::uint64_t T = 0; T <= L.tpp; ++T) {
        score_fmac_.push_back(score_fmac_of(T));
        softmax_pv_.push_back(softmax_pv_of(T));
      }
    }
    for (std::uint64_t w = 0; w < 2 * k_wavelets; ++w)
      store_.push_back(kv_wavelet_store_cycles(pe_, D_, kv_bits_ / 8, w));
  }

  // Scores: for each query element q[d], one FMAC over the token's scores
  // s[0:T] += q[d] * K^T[d][0:T] (K read at kv width, scores fp32 read and written, q[d]
  // from the fabric).
  std::uint64_t score_fmac(std::uint64_t T) const {
    return T < score_fmac_.size() ? score_fmac_[T] : score_fmac_of(T);
  }
  std::uint64_t score_fmac_of(std::uint64_t T) const {
    return attention_score_fmac_cycles(pe_, T, kv_bits_ / 8);
  }
  // Then per query: max, exp(s - m), sum, and P V as T FMACs o[0:D] += p[t] * V[t][0:D].
  std::uint64_t softmax_pv(std::uint64_t T) const {
    return T < softmax_pv_.size() ? softmax_pv_[T] : softmax_pv_of(T);
  }
  std::uint64_t softmax_pv_of(std::uint64_t T) const {
    return attention_softmax_pv_cycles(pe_, T, D_, kv_bits_ / 8);
  }
  // Append: each wavelet of K is written into the column of K^T (a strided write: SIMD
  // width 1, SDK), each wavelet of V contiguously.
  std::uint64_t store(std::uint64_t w) const {
    if (w >= store_.size()) w %= store_.size();
    return store_[w];
  }

 private:
  static constexpr std::uint64_t kTabled = 4096;  // token counts up to this are tabled
  const PeConfig& pe_;
  std::uint64_t D_;
  std::uint32_t kv_bits_;
  std::uint64_t per_wavelet_;
  std::vector<std::uint64_t> score_fmac_, softmax_pv_, store_;

 public:
  const std::uint64_t k_wavelets;  // wavelets of one token's K (the same for V)
  // Combine of (m, l, o[D]) per query: on m, m' = max(m_own, m_in), alpha = exp(m_own -
  // m'), beta = exp(m_in - m'); on each of l, o[d]: own = alpha * own + beta * in (two
  // fp32 multiply-adds of one element, `in` from the fabric). The root divides o by l.
  const std::uint64_t payload_per_query;
  const std::uint64_t payload;
  const std::uint64_t combine_m;
  const std::uint64_t combine_o;
  const std::uint64_t normalize;
};

// The wavelet hops (PE links crossed) of one head of the per-PE mapping, from its static
// routes: every wavelet crosses each link of its route once. The query multicast's tree
// (the first row, then down each column), the append's tree (east along the first row,
// south to each owner: every owner's message crosses all of it) and the combine's edges
// (row phase, then column 0), each carrying the whole payload. The tiled fidelity
// reports these (its node fabric sees only the links between nodes).
std::uint64_t route_hops(const AttentionConfig& a, const Layout& L) {
  const auto line = [&](std::uint64_t n) {
    if (a.reduction == Reduction::kChain) return n > 0 ? n - 1 : 0;
    std::uint64_t h = 0;
    for (std::uint64_t span = 1; span < n; span *= 2) h += span * ((n - span + 2 * span - 1) / (2 * span));
    return h;
  };
  std::uint64_t hops = 0;
  if (L.nb > 1) {
    std::uint64_t links = L.row_len(0) - 1;
    for (std::uint32_t c = 0; c < L.Q; ++c) links += L.col_rows(c) - 1;
    hops += links * L.q_wavelets();
  }
  const auto first = static_cast<std::uint32_t>(L.context / L.tpp);
  const auto last = static_cast<std::uint32_t>((L.N - 1) / L.tpp);
  const std::uint64_t token_wavelets = kv_token_wavelets(L.D, a.kv_bytes);
  std::uint64_t append_wavelets = 0, east = 0;
  std::vector<std::uint32_t> south(L.Q, 0);
  for (std::uint32_t b = std::max(first, 1u); b <= last; ++b) {
    const std::uint64_t lo = std::max<std::uint64_t>(L.context, std::uint64_t{b} * L.tpp);
    const std::uint64_t hi = std::min<std::uint64_t>(L.N, (std::uint64_t{b} + 1) * L.tpp);
    append_wavelets += (hi - lo) * token_wavelets;
    east = std::max<std::uint64_t>(east, b % L.Q);
    south[b % L.Q] = std::max(south[b % L.Q], b / L.Q);
  }
  std::uint64_t append_links = east;
  for (const std::uint32_t r : south) append_links += r;
  hops += append_links * append_wavelets;
  std::uint64_t combine = line(L.R);
  for (std::uint32_t r = 0; r < L.R; ++r) combine += line(L.row_len(r));
  hops += combine * L.queries() * (L.D + 2);
  return hops;
}

// A delivery at a PE of column 0 other than the combine's column phase (row phase,
// query, the PE's own append), recorded by a folded run's first pass for its second.
struct HeadDelivery {
  std::uint64_t cycle = 0;
  std::uint32_t row = 0;  // the head's row
  Color color = 0;
  MessageId msg = 0;
};

// One run of the mapping on `heads` heads of a fabric, in its steps: the routes of the
// append, the query multicast and the combine; then each PE's behaviour as wavelets
// reach it (store, score, combine, finish at the root); then the result.
class AttentionRun {
 public:
  // `column_only`: the second pass of a folded run, on a fabric one PE wide: the
  // head's column 0 runs the column phase, fed by replay() instead of its rows.
  // `node` > 0: tiled fidelity (attention_tiled.h): `fabric` is tiled(per-PE grid, node),
  // one head at origin (0, 0); the PEs keep their state, the fabric carries what
  // crosses between nodes, and what stays inside a node is timed as events.
  AttentionRun(Fabric& fabric, const PeConfig& pe, const AttentionConfig& a, const Layout& L,
               std::uint32_t heads, bool column_only = false, std::uint32_t node = 0)
      : fabric_(fabric),
        a_(a),
        L_(L),
        heads_(heads),
        column_only_(column_only),
        k_(node),
        tiled_(node > 0),
        H_(node > 0 ? fabric.config().hop_latency_cycles / node : fabric.config().hop_latency_cycles),
        R_(fabric.config().ramp_latency_cycles),
        cost_(pe, a, L),
        first_owner_(static_cast<std::uint32_t>(L.context / L.tpp)),
        last_owner_(static_cast<std::uint32_t>((L.N - 1) / L.tpp)) {
    if (tiled_ && (heads != 1 || column_only || a.origin.x != 0 || a.origin.y != 0))
      throw std::logic_error("attention tiled: one head at the origin");
    validate(pe);
    require_mapped(a.reduction, {Reduction::kChain, Reduction::kTree}, "attention (combine)");
    check_fit();
    sram_ = place_sram(pe);
    if (cost_.payload > UINT32_MAX || L.queries() * L.D > (1ull << 31)) {
      throw std::invalid_argument("attention: " + std::to_string(L.queries()) +
                                  " queries per KV head exceed the combine's stream size");
    }
  }

  // Records the deliveries at column 0 (see HeadDelivery) into `out` during run().
  void record_head_deliveries(std::vector<HeadDelivery>* out) { record_ = out; }
  // Deliveries replayed at column 0 during run() (column_only), sorted by cycle; each
  // `msg` must be a stream id unused by the fabric.
  void replay(std::vector<HeadDelivery> events) { replay_ = std::move(events); }
  // Link wavelets sent north on column 0 (the combine's column phase) and sent west or
  // south by the PEs of `row` of head 0: the hops of one row (run() first).
  std::uint64_t column_north_hops() const {
    std::uint64_t n = 0;
    for (std::uint32_t r = 0; r < L_.R; ++r) n += fabric_.link_wavelets(at(0, r * L_.Q), Port::kNorth);
    return n;
  }
  std::uint64_t row_out_hops(std::uint32_t row) const {
    std::uint64_t n = 0;
    for (std::uint32_t c = 0; c < L_.row_len(row); ++c) {
      n += fabric_.link_wavelets(at(0, row * L_.Q + c), Port::kWest) +
           fabric_.link_wavelets(at(0, row * L_.Q + c), Port::kSouth);
    }
    return n;
  }

  AttentionResult run() {
    const auto t0 = std::chrono::steady_clock::now();
    if (!column_only_) {
      route_append();
      route_query();
    }
    route_combine();
    st_.resize(static_cast<std::size_t>(heads_) * L_.nb);
    head_done_.assign(heads_, kUnknown);
    msg_base_ = static_cast<MessageId>(fabric_.message_count());
    start_ = fabric_.now();
    fabric_.on_delivery([this](PeCoord p, MessageId msg, std::uint64_t cycle) { deliver(p, msg, cycle); });
    const std::uint64_t hops0 = fabric_.wavelet_hops();
    const std::uint64_t sim0 = fabric_.cycles_simulated();
    ramp_free_.assign(tiled_ ? L_.nb : 0, 0);
    now_ = start_;
    for (std::uint32_t h = 0; h < heads_; ++h) start_head(h);
    for (std::size_t i = 0; i < replay_.size();) {
      const std::uint64_t cycle = replay_[i].cycle;
      fabric_.run_until_idle(cycle);
      fabric_.advance_to(cycle);
      for (; i < replay_.size() && replay_[i].cycle == cycle; ++i) {
        const HeadDelivery& e = replay_[i];
        handle(0, e.row * L_.Q, e.color, e.msg, e.cycle);
      }
    }
    if (tiled_) {
      run_merged();
    } else {
      fabric_.run_until_idle();
    }
    fabric_.on_delivery(nullptr);
    if (column_only_) {
      return AttentionResult{
          .total_cycles = head_done_.at(0) - start_,
          .wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
    }
    AttentionResult res = collect();
    res.wavelet_hops = tiled_ ? route_hops(a_, L_) : fabric_.wavelet_hops() - hops0;
    res.fabric_cycles_simulated = fabric_.cycles_simulated() - sim0;
    res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
  }

 private:
  // --- The grid, its colors and its SRAM -----------------------------------------------
  void check_fit() {
    const FabricConfig& fc = fabric_.config();
    const std::uint32_t per = tiled_ ? k_ : 1;  // PEs a router stands for, each way
    if (ceil_div(a_.origin.x + (column_only_ ? 1 : L_.Q), per) > fc.width ||
        ceil_div(a_.origin.y + heads_ * L_.R, per) > fc.height) {
      throw std::invalid_argument(
          "attention: a " + std::to_string(L_.Q) + " x " + std::to_string(heads_ * L_.R) + " PE grid at (" +
          std::to_string(a_.origin.x) + "," + std::to_string(a_.origin.y) + ") does not fit the " +
          std::to_string(fc.width) + " x " + std::to_string(fc.height) + " fabric");
    }
    const std::uint32_t n_row_colors = reduction_colors(a_.reduction, L_.Q);
    const std::uint32_t n_col_colors = reduction_colors(a_.reduction, L_.R);
    col_color_ = static_cast<Color>(kRowColor + n_row_colors);
    if (col_color_ + n_col_colors > fc.colors) {
      throw std::invalid_argument("attention: append, query and a " +
                                  std::string(reduction_name(a_.reduction)) + " combine over " +
                                  std::to_string(L_.Q) + " x " + std::to_string(L_.R) + " PEs need " +
                                  std::to_string(col_color_ + n_col_colors) + " colors, beyond the " +
                                  std::to_string(fc.colors) + " colors");
    }
  }

  // SRAM of the fullest PE (block 0: a full block whenever the cache holds tokens_per_pe).
  std::uint64_t place_sram(const PeConfig& pe) const {
    const std::uint64_t T0 = L_.tokens_in(0);
    const std::string kv_type = a_.kv_bytes == 1 ? "fp8" : (a_.kv_bytes == 2 ? "fp16" : "fp32");
    SramPlacement sram(a_.origin, pe.sram_bytes);
    sram.place("K cache (" + std::to_string(T0) + " tokens x " + std::to_string(L_.D) + " " + kv_type + ")",
               T0 * L_.D * a_.kv_bytes);
    sram.place("V cache (" + std::to_string(T0) + " tokens x " + std::to_string(L_.D) + " " + kv_type + ")",
               T0 * L_.D * a_.kv_bytes);
    sram.place("query vectors (" + std::to_string(L_.queries()) + " x " + std::to_string(L_.D) + " fp16)",
               L_.queries() * L_.D * 2);
    sram.place("scores (" + std::to_string(L_.queries()) + " x " + std::to_string(T0) + " fp32)",
               L_.queries() * T0 * 4);
    sram.place(
        "partial outputs (" + std::to_string(L_.queries()) + " x " + std::to_string(L_.D + 2) + " fp32)",
        L_.queries() * (L_.D + 2) * 4);
    return sram.used_bytes();
  }

  // Fabric coordinates of block b of head h (tiled: of its node).
  PeCoord at(std::uint32_t h, std::uint32_t b) const {
    if (tiled_) return PeCoord{(b % L_.Q) / k_, (b / L_.Q) / k_};
    return PeCoord{a_.origin.x + b % L_.Q, a_.origin.y + h * L_.R + b / L_.Q};
  }
  // Tiled: PE hops from the north-west PE of b's node to b (where a wavelet that enters
  // the node on the query or append tree stands for b's column and row).
  std::uint64_t in_node(std::uint32_t b) const { return (b % L_.Q) % k_ + (b / L_.Q) % k_; }
  bool same_node(std::uint32_t x, std::uint32_t y) const { return at(0, x) == at(0, y); }

  // Static routes of `color` given per block (rx, tx as run_attention's per-PE mapping).
  // Tiled: a node takes the ports by which the tree enters and leaves its PEs (links
  // inside it are not on the fabric), and its RAMP when one of its PEs other than the
  // source takes the wavelets (at the source's node: a loopback, so that the node's
  // other PEs see each wavelet one PE hop after the source's router does, per hop).
  void set_routes(Color color, const std::vector<PortMask>& rx, const std::vector<PortMask>& tx) {
    if (!tiled_) {
      for (std::uint32_t h = 0; h < heads_; ++h) {
        for (std::uint32_t b = 0; b < L_.nb; ++b) {
          if (tx[b] != 0) fabric_.set_route(at(h, b), color, rx[b], tx[b]);
        }
      }
      return;
    }
    const FabricConfig& fc = fabric_.config();
    std::vector<PortMask> nrx(static_cast<std::size_t>(fc.width) * fc.height, 0), ntx(nrx.size(), 0);
    const auto leaves = [&](std::uint32_t b, Port p) {  // the PE link from b through p leaves b's node
      const std::uint32_t c = b % L_.Q, r = b / L_.Q;
      switch (p) {
        case Port::kEast:
          return (c + 1) % k_ == 0;
        case Port::kWest:
          return c % k_ == 0;
        case Port::kSouth:
          return (r + 1) % k_ == 0;
        case Port::kNorth:
          return r % k_ == 0;
        case Port::kRamp:
          break;
      }
      return true;
    };
    for (std::uint32_t b = 0; b < L_.nb; ++b) {
      if (tx[b] == 0) continue;
      const PeCoord n = at(0, b);
      const std::size_t i = static_cast<std::size_t>(n.y) * fc.width + n.x;
      for (int q = 0; q < kPorts; ++q) {
        const auto p = static_cast<Port>(q);
        if ((rx[b] & mask(p)) && leaves(b, p)) nrx[i] |= mask(p);
        if ((tx[b] & mask(p)) && leaves(b, p)) ntx[i] |= mask(p);
      }
    }
    for (std::size_t i = 0; i < nrx.size(); ++i) {
      if (ntx[i] == 0) continue;
      if (nrx[i] == 0) throw std::logic_error("attention tiled: a node on a tree with no way in");
      fabric_.set_route({static_cast<std::uint32_t>(i % fc.width), static_cast<std::uint32_t>(i / fc.width)},
                        color, nrx[i], ntx[i]);
    }
  }

  // --- Routes: the same for every head on its own rows (no route leaves a head's rows,
  // so heads never share a link) -------------------------------------------------------
  // Append: a tree from the source (block 0) east along row 0, then south to each owner.
  void route_append() {
    std::vector<PortMask> rx(L_.nb, 0), tx(L_.nb, 0);
    for (std::uint32_t b = std::max(first_owner_, 1u); b <= last_owner_; ++b) {
      const std::uint32_t c = b % L_.Q;
      const std::uint32_t r = b / L_.Q;
      rx[0] = mask(Port::kRamp);
      tx[0] |= mask(c > 0 ? Port::kEast : Port::kSouth);
      for (std::uint32_t x = 1; x <= c; ++x) {
        rx[x] = mask(Port::kWest);
        tx[x] |= mask(x < c ? Port::kEast : (r > 0 ? Port::kSouth : Port::kRamp));
      }
      for (std::uint32_t y = 1; y <= r; ++y) {
        rx[y * L_.Q + c] = mask(Port::kNorth);
        tx[y * L_.Q + c] |= mask(y < r ? Port::kSouth : Port::kRamp);
      }
    }
    set_routes(kAppendColor, rx, tx);
  }

  // Query multicast: east along row 0, and from each PE of row 0 south down its column.
  void route_query() {
    if (L_.nb <= 1) return;
    std::vector<PortMask> rx(L_.nb, 0), tx(L_.nb, 0);
    for (std::uint32_t b = 0; b < L_.nb; ++b) {
      const std::uint32_t c = b % L_.Q;
      const std::uint32_t r = b / L_.Q;
      PortMask in = 0;
      PortMask out = 0;
      if (b == 0) {
        in = mask(Port::kRamp);
      } else {
        in = mask(r == 0 ? Port::kWest : Port::kNorth);
        out |= mask(Port::kRamp);
      }
      if (r == 0 && c + 1 < L_.row_len(0)) out |= mask(Port::kEast);
      if (r + 1 < L_.col_rows(c)) out |= mask(Port::kSouth);
      rx[b] = in;
      tx[b] = out;
    }
    set_routes(kQueryColor, rx, tx);
  }

  // Combine: along each row toward the west (column 0), then up column 0 to the source.
  void route_combine() {
    parent_.assign(L_.nb, kNone);
    n_in_.assign(L_.nb, 0);
    out_color_.assign(L_.nb, 0);
    intra_.assign(L_.nb, 0);
    inside_hops_.assign(L_.nb, 0);
    for (std::uint32_t r = 0; r < L_.R; ++r) {
      reduce_line(
          L_.row_len(r), [&](std::uint32_t k) { return r * L_.Q + k; }, kRowColor, true);
    }
    reduce_line(
        L_.R, [&](std::uint32_t k) { return k * L_.Q; }, col_color_, false);
  }

  // The chain or tree over the n nodes node_of(0..n-1) of one line, toward node_of(0).
  template <class NodeOf>
  void reduce_line(std::uint32_t n, NodeOf node_of, Color base, bool horizontal) {
    auto link = [&](std::uint32_t from, std::uint32_t to, Color color) {
      const Port fwd = horizontal ? Port::kWest : Port::kNorth;  // toward the line's first PE
      const Port back = horizontal ? Port::kEast : Port::kSouth;
      if (tiled_) {
        link_nodes(node_of(from), node_of(to), color, horizontal);
        return;
      }
      for (std::uint32_t h = 0; h < heads_ && (!column_only_ || !horizontal); ++h) {
        fabric_.set_route(at(h, node_of(from)), color, mask(Port::kRamp), mask(fwd));
        for (std::uint32_t m = to + 1; m < from; ++m)
          fabric_.set_route(at(h, node_of(m)), color, mask(back), mask(fwd));
        fabric_.set_route(at(h, node_of(to)), color, mask(back), mask(Port::kRamp));
      }
      parent_[node_of(from)] = node_of(to);
      out_color_[node_of(from)] = color;
      ++n_in_[node_of(to)];
    };
    if (a_.reduction == Reduction::kChain) {
      for (std::uint32_t k = n - 1; k >= 1 && n > 1; --k)
        link(k, k - 1, static_cast<Color>(base + (k + 1) % 2));
      return;
    }
    for (std::uint32_t s = 0; (1u << s) < n; ++s) {
      const std::uint32_t span = 1u << s;
      for (std::uint32_t k = span; k < n; k += 2 * span) link(k, k - span, static_cast<Color>(base + s));
    }
  }

  // Tiled: the combine edge from block `from` to its parent `to`. Inside a node it is
  // timed as an event (send()); between nodes it is a stream on the node fabric. The
  // chain's colors alternate by node, not by PE (a node sends on one and takes the
  // stream from the east or south on the other); the tree keeps its round's color.
  void link_nodes(std::uint32_t from, std::uint32_t to, Color color, bool horizontal) {
    parent_[from] = to;
    ++n_in_[to];
    const PeCoord f = at(0, from), t = at(0, to);
    if (f == t) {
      intra_[from] = 1;
      out_color_[from] = color;
      // The chain's PE hop inside a node is in the node hop (k H) that its stream takes
      // to the next node (as the tiled GEMV's chain); a tree edge inside a node keeps its
      // own hops.
      const std::uint32_t span = horizontal ? (from % L_.Q) - (to % L_.Q) : (from / L_.Q) - (to / L_.Q);
      inside_hops_[from] = a_.reduction == Reduction::kChain ? 0 : span;
      return;
    }
    const Port fwd = horizontal ? Port::kWest : Port::kNorth;
    const Port back = horizontal ? Port::kEast : Port::kSouth;
    if (a_.reduction == Reduction::kChain) {
      const Color base = horizontal ? kRowColor : col_color_;
      color = static_cast<Color>(base + ((horizontal ? f.x : f.y) + 1) % 2);
    }
    out_color_[from] = color;
    fabric_.set_route(f, color, mask(Port::kRamp), mask(fwd));
    if (horizontal) {
      for (std::uint32_t x = t.x + 1; x < f.x; ++x) fabric_.set_route({x, f.y}, color, mask(back), mask(fwd));
    } else {
      for (std::uint32_t y = t.y + 1; y < f.y; ++y) fabric_.set_route({f.x, y}, color, mask(back), mask(fwd));
    }
    fabric_.set_route(t, color, mask(back), mask(Port::kRamp));
  }

  // --- Each PE's behaviour ------------------------------------------------------------
  PeState& state(std::uint32_t h, std::uint32_t b) { return st_[static_cast<std::size_t>(h) * L_.nb + b]; }

  void note(MessageId id, MsgInfo mi) {
    if (id - msg_base_ >= info_.size()) info_.resize(id - msg_base_ + 1);
    info_[id - msg_base_] = mi;
  }

  // The PE's combine stream toward its parent, opened on first use.
  MessageId out_stream(std::uint32_t h, std::uint32_t b) {
    PeState& s = state(h, b);
    if (s.out == kNone) {
      s.out = fabric_.open_message(at(h, b), out_color_[b]);
      note(s.out, {MsgKind::kCombine, h, kNone, b});
    }
    return s.out;
  }

  // Block b's combine stream gets n wavelets ready at `ready`. Tiled, an edge inside a
  // node: each leaves b's ramp one a cycle and reaches its parent 2R + h H later (h the
  // PE hops not already in a node hop), an event in time with the fabric's deliveries.
  //
  // Tiled, an edge between nodes: the wavelets are handed to the node's ramp at `ready`
  // (an event until then), not queued ahead: a node's ramp queue holds its PEs' streams
  // of one color in order, and a wavelet queued early for a later cycle would hold up
  // another PE's wavelets behind it, which per PE have ramps of their own.
  void send(std::uint32_t h, std::uint32_t b, std::uint32_t n, std::uint64_t ready) {
    if (!tiled_) {
      fabric_.append_wavelets(out_stream(h, b), n, ready);
      return;
    }
    if (!intra_[b]) {
      if (ready <= now_) {
        fabric_.append_wavelets(out_stream(h, b), n, now_);
      } else {
        for (std::uint32_t i = 0; i < n; ++i) inside_.book(ready, {b, kNoColor, 0});
      }
      return;
    }
    const std::uint64_t delay = 2 * R_ + inside_hops_[b] * H_;
    std::uint64_t& ramp = ramp_free_[b];
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint64_t leave = std::max(ready, ramp);
      ramp = leave + 1;
      inside_.book(leave + delay, {parent_[b], out_color_[b], kInsideStream + b});
    }
  }

  // The root divides each query's output by its sum as that output becomes final.
  void root_final(std::uint32_t h, PeState& s, std::uint64_t k) {
    if (k % cost_.payload_per_query != cost_.payload_per_query - 1) return;
    s.engine_free += cost_.normalize;
    if (k + 1 == cost_.payload) head_done_[h] = s.engine_free;
  }

  // Combines the waiting wavelets in arrival order, each once this PE's own result for
  // that query is done; a wavelet complete from every stream goes on toward the root.
  void drain(std::uint32_t h, std::uint32_t b) {
    PeState& s = state(h, b);
    std::size_t used = 0;
    for (; used < s.arrivals.size(); ++used) {
      const auto [arrived, msg] = s.arrivals[used];
      auto stream = std::find_if(s.streams.begin(), s.streams.end(),
                                 [&wanted = msg](const PeState::Stream& x) { return x.msg == wanted; });
      const bool known = stream != s.streams.end();
      const std::uint64_t k = known ? stream->k : 0;
      const std::uint64_t own = s.query_done[known ? stream->query : 0];
      if (own == kUnknown) break;  // this PE's own result for that query is not ready yet
      if (!known) {
        s.streams.push_back(PeState::Stream{msg, 0, 0, 0});
        stream = s.streams.end() - 1;
      }
      const bool first_of_query = stream->in_query == 0;
      ++stream->k;
      if (++stream->in_query == cost_.payload_per_query) {
        stream->in_query = 0;
        ++stream->query;
      }
      const std::uint64_t begin = std::max({arrived + 1, own, s.engine_free});
      s.engine_free = begin + (first_of_query ? cost_.combine_m : cost_.combine_o);
      // Wavelet k is complete once every stream in has passed it (each stream comes in
      // order): this arrival completes it if it was the last one missing.
      if (s.streams.size() < n_in_[b]) continue;
      bool complete = true;
      for (const PeState::Stream& x : s.streams) complete = complete && x.k > k;
      if (!complete) continue;
      if (k != s.next_final++) throw std::logic_error("attention: combine completed out of order");
      if (b == 0) {
        root_final(h, s, k);
      } else {
        send(h, b, 1, s.engine_free);
      }
    }
    s.arrivals.erase(s.arrivals.begin(), s.arrivals.begin() + static_cast<std::ptrdiff_t>(used));
  }

  // Query `query`'s partial result (m, l, o) is done on this PE.
  void query_ready(std::uint32_t h, std::uint32_t b, std::uint64_t query) {
    PeState& s = state(h, b);
    if (b == 0 && n_in_[0] == 0) {  // one PE: no combine
      s.engine_free = std::max(s.engine_free, s.query_done[query]);
      root_final(h, s, (query + 1) * cost_.payload_per_query - 1);
    } else if (n_in_[b] == 0) {  // a leaf: the query's partial result goes out at once
      send(h, b, static_cast<std::uint32_t>(cost_.payload_per_query), s.query_done[query]);
    } else {
      drain(h, b);
    }
  }

  // One q wavelet (two fp16 elements) usable at `usable`: its score FMACs, and the
  // softmax and P V of each query it completes.
  void process_q(std::uint32_t h, std::uint32_t b, std::uint64_t usable) {
    PeState& s = state(h, b);
    if (s.query_done.empty()) s.query_done.assign(L_.queries(), kUnknown);
    const std::uint64_t q_elements = L_.queries() * L_.D;
    const std::uint64_t w = s.q_wavelets++;
    const std::uint64_t begin = std::max(usable, s.engine_free);
    std::uint64_t t = begin;
    std::uint64_t completed[2];
    std::size_t n_completed = 0;
    for (std::uint64_t e = 2 * w; e < std::min(2 * w + 2, q_elements); ++e) {
      // Element e is element s.q_in_query of query s.q_query (e / D, e % D, kept as counts).
      const std::uint64_t query = s.q_query;
      const std::uint64_t T = L_.attended(b, query / L_.G);
      t += cost_.score_fmac(T);
      if (++s.q_in_query == L_.D) {
        t += cost_.softmax_pv(T);
        s.query_done[query] = t;
        completed[n_completed++] = query;
        s.q_in_query = 0;
        ++s.q_query;
      }
    }
    s.busy += t - begin;
    s.engine_free = t;
    if (s.q_wavelets == L_.q_wavelets()) s.own_done = t;
    for (std::size_t i = 0; i < n_completed; ++i) query_ready(h, b, completed[i]);
  }

  void append_stored(std::uint32_t h, std::uint32_t b) {
    PeState& s = state(h, b);
    s.append_done = s.engine_free;
    for (const std::uint64_t d : s.pending_q) process_q(h, b, d + 1);
    s.pending_q.clear();
  }

  // Tiled: a wavelet reaches node p. The query reaches each PE of the node (but the
  // source) and an append its owner one PE hop per PE after the node's north-west PE;
  // a combine stream reaches the parent of the block that sends it.
  void deliver_node(PeCoord p, MessageId msg, std::uint64_t cycle) {
    const Color color = fabric_.message(msg).color;
    const MsgInfo& info = info_.at(msg - msg_base_);
    if (color == kAppendColor) {
      if (at(0, info.owner) == p) at_pe(info.owner, color, msg, cycle + in_node(info.owner) * H_, cycle);
    } else if (color == kQueryColor) {
      const std::uint32_t c_end = std::min(L_.Q, (p.x + 1) * k_), r_end = std::min(L_.R, (p.y + 1) * k_);
      for (std::uint32_t r = p.y * k_; r < r_end; ++r) {
        for (std::uint32_t c = p.x * k_; c < c_end; ++c) {
          const std::uint32_t b = r * L_.Q + c;
          if (b == 0 || b >= L_.nb) continue;
          at_pe(b, color, msg, cycle + in_node(b) * H_, cycle);
        }
      }
    } else {
      at_pe(parent_[info.from], color, msg, cycle, cycle);
    }
  }

  // Tiled: block b takes a wavelet at `cycle` (now, or an event for later).
  void at_pe(std::uint32_t b, Color color, MessageId msg, std::uint64_t cycle, std::uint64_t now) {
    now_ = now;
    if (cycle == now) {
      take(b, color, msg, cycle);
    } else {
      inside_.book(cycle, {b, color, msg});
    }
  }
  void take(std::uint32_t b, Color color, MessageId msg, std::uint64_t cycle) {
    if (record_ != nullptr && b % L_.Q == 0 && color < col_color_) {
      record_->push_back(HeadDelivery{cycle, b / L_.Q, color, msg});
    }
    handle(0, b, color, msg, cycle);
  }

  // Tiled: the node fabric and the events inside nodes, merged in time: the events due
  // at cycle d are taken before the fabric's deliveries of cycle d.
  void run_merged() {
    for (;;) {
      const std::uint64_t next_fabric = fabric_.idle() ? UINT64_MAX : fabric_.next_activity_cycle();
      const std::uint64_t next_inside = inside_.empty() ? UINT64_MAX : inside_.next();
      if (next_fabric == UINT64_MAX && next_inside == UINT64_MAX) break;
      if (next_inside <= next_fabric) {
        fabric_.run_until_idle(next_inside);
        // Events booked now are due at least one cycle later: this cycle's list is final.
        if (inside_.take(due_) != next_inside)
          throw std::logic_error("attention (tiled): an event inside a node was booked behind the fabric");
        now_ = next_inside;
        for (const Inside& e : due_) {
          if (e.color == kNoColor) {
            fabric_.append_wavelets(out_stream(0, e.b), 1, next_inside);  // a send handed to the ramp
          } else {
            take(e.b, e.color, e.msg, next_inside);
          }
        }
      } else {
        fabric_.run_until_idle(next_fabric + 1);
      }
    }
  }

  void deliver(PeCoord p, MessageId msg, std::uint64_t cycle) {
    if (tiled_) {
      deliver_node(p, msg, cycle);
      return;
    }
    const std::uint32_t h = (p.y - a_.origin.y) / L_.R;
    const std::uint32_t b = ((p.y - a_.origin.y) % L_.R) * L_.Q + (p.x - a_.origin.x);
    const Color color = fabric_.message(msg).color;
    // The append tree passes every owner's tokens by every owner: keep one's own.
    if (color == kAppendColor && (msg - msg_base_ >= info_.size() || info_[msg - msg_base_].owner != b))
      return;
    if (record_ != nullptr && h == 0 && p.x == a_.origin.x && color < col_color_) {
      record_->push_back(HeadDelivery{cycle, b / L_.Q, color, msg});
    }
    handle(h, b, color, msg, cycle);
  }

  void handle(std::uint32_t h, std::uint32_t b, Color color, MessageId msg, std::uint64_t cycle) {
    PeState& s = state(h, b);
    if (color == kAppendColor) {
      const std::uint64_t w = s.append_stored++;
      const std::uint64_t cost = cost_.store(w);
      s.engine_free = std::max(cycle + 1, s.engine_free) + cost;
      s.busy += cost;
      if (s.append_stored == s.append_expected) append_stored(h, b);
    } else if (color == kQueryColor) {
      s.last_q_delivery = cycle;
      if (s.append_done == kUnknown) {
        s.pending_q.push_back(cycle);
      } else {
        process_q(h, b, cycle + 1);
      }
    } else {
      s.arrivals.emplace_back(cycle, msg);
      drain(h, b);
    }
  }

  // The new tokens' K and V, sent from the source to each owner (the source stores its
  // own), and the queries, multicast from the source, which computes from its SRAM at once.
  void start_head(std::uint32_t h) {
    for (std::uint32_t b = first_owner_; b <= last_owner_; ++b) {
      const std::uint64_t first = std::max<std::uint64_t>(L_.context, static_cast<std::uint64_t>(b) * L_.tpp);
      const std::uint64_t last = std::min<std::uint64_t>(L_.N, (static_cast<std::uint64_t>(b) + 1) * L_.tpp);
      const std::uint64_t wavelets = (last - first) * 2 * cost_.k_wavelets;
      PeState& s = state(h, b);
      s.append_expected = wavelets;
      s.append_done = kUnknown;
      if (b == 0) {
        for (std::uint64_t w = 0; w < wavelets; ++w) s.busy += cost_.store(w);
        s.append_stored = wavelets;
        s.engine_free = start_ + s.busy;
        s.append_done = s.engine_free;
      } else if (!column_only_) {
        if (wavelets > UINT32_MAX) throw std::invalid_argument("attention: append message too long");
        if (paced()) {
          const MessageId id = fabric_.open_message(at(h, 0), kAppendColor);
          note(id, {MsgKind::kAppend, h, b});
          paced_.emplace_back(id, wavelets);
        } else {
          const MessageId id =
              fabric_.inject(at(h, 0), kAppendColor, static_cast<std::uint32_t>(wavelets), start_);
          note(id, {MsgKind::kAppend, h, b});
        }
      }
    }
    const std::uint64_t q_wavelets = L_.q_wavelets();
    if (L_.nb > 1 && !column_only_) {
      if (q_wavelets > UINT32_MAX) throw std::invalid_argument("attention: query message too long");
      if (paced()) {
        const MessageId id = fabric_.open_message(at(h, 0), kQueryColor);
        note(id, {MsgKind::kQuery, h, kNone});
        pace(id, q_wavelets);
      } else {
        const MessageId id =
            fabric_.inject(at(h, 0), kQueryColor, static_cast<std::uint32_t>(q_wavelets), start_);
        note(id, {MsgKind::kQuery, h, kNone});
      }
    }
    if (paced()) pace(kNone, 0);
    PeState& src = state(h, 0);
    src.engine_free = std::max(src.engine_free, start_);
    for (std::uint64_t w = 0; w < q_wavelets; ++w) process_q(h, 0, start_);
  }

  // Tiled with k > 1: the source node's ramp is k^2 PE ramps wide, but the source is
  // one PE, whose ramp takes a wavelet a cycle: its appends (owner after owner) and its
  // query leave it alternately, one a cycle from the start, the query first, as the
  // per-PE ramp's round-robin does (it starts after the color queued first, the append).
  bool paced() const { return tiled_ && k_ > 1; }
  void pace(MessageId query, std::uint64_t q_wavelets) {
    if (query == kNone && paced_.empty()) return;
    std::uint64_t t = start_, q_left = q_wavelets;
    std::size_t a = 0;
    std::uint64_t a_left = paced_.empty() ? 0 : paced_[0].second;
    bool append_turn = query == kNone;
    while (q_left > 0 || a < paced_.size()) {
      const bool append = a < paced_.size() && (append_turn || q_left == 0);
      if (append) {
        fabric_.append_wavelets(paced_[a].first, 1, t);
        if (--a_left == 0 && ++a < paced_.size()) a_left = paced_[a].second;
      } else {
        fabric_.append_wavelets(query, 1, t);
        --q_left;
      }
      append_turn = !append;
      ++t;
    }
    paced_.clear();
  }

  // --- The result -----------------------------------------------------------------------
  AttentionResult collect() {
    AttentionResult res;
    res.grid_rows = a_.kv_heads * L_.R;
    res.grid_cols = L_.Q;
    res.sram_bytes_per_pe = sram_;
    for (std::uint32_t h = 0; h < heads_; ++h) {
      if (head_done_[h] == kUnknown)
        throw std::logic_error("attention: head " + std::to_string(h) + " never completed");
      res.total_cycles = std::max(res.total_cycles, head_done_[h] - start_);
      for (std::uint32_t b = 0; b < L_.nb; ++b) {
        const PeState& s = state(h, b);
        if (b >= first_owner_ && b <= last_owner_)
          res.append_cycles = std::max(res.append_cycles, s.append_done - start_);
        if (s.last_q_delivery != kUnknown)
          res.query_cycles = std::max(res.query_cycles, s.last_q_delivery + 1 - start_);
        res.compute_cycles = std::max(res.compute_cycles, s.busy);
        if (s.own_done == kUnknown) throw std::logic_error("attention: a PE never finished its local work");
        res.compute_done_cycles = std::max(res.compute_done_cycles, s.own_done - start_);
      }
    }
    res.combine_cycles = res.total_cycles - res.compute_done_cycles;
    res.rows_simulated = L_.R;
    return res;
  }

  // Tiled: a wavelet due at a PE of a node later than its node's delivery.
  struct Inside {
    std::uint32_t b;
    Color color;
    MessageId msg;
  };
  // Stream ids of the combine edges inside nodes (block b: kInsideStream + b), apart
  // from the fabric's message ids.
  static constexpr MessageId kInsideStream = MessageId{1} << 30;
  static constexpr Color kNoColor = 255;  // an Inside that hands block b's wavelet to its node's ramp

  Fabric& fabric_;
  const AttentionConfig& a_;
  const Layout& L_;
  const std::uint32_t heads_;
  const bool column_only_;
  const std::uint32_t k_;  // tiled: PEs a node stands for, each way
  const bool tiled_;       // k_ > 0
  const std::uint64_t H_;  // per-PE hop latency
  const std::uint64_t R_;  // ramp latency
  const AttentionCosts cost_;
  const std::uint32_t first_owner_;  // blocks that receive the new tokens
  const std::uint32_t last_owner_;
  Color col_color_ = 0;                       // the first color of the combine's column phase
  std::uint64_t sram_ = 0;                    // SRAM bytes of the fullest PE
  std::vector<std::uint32_t> parent_, n_in_;  // per block: the combine's parent, streams in
  std::vector<Color> out_color_;              // per block: the color of its combine stream
  std::vector<char> intra_;                   // tiled, per block: its combine edge stays in its node
  std::vector<std::uint32_t> inside_hops_;    // tiled, per block: that edge's PE hops not in a node hop
  std::vector<std::uint64_t> ramp_free_;      // tiled, per block: its ramp free for the next inside send
  BucketCalendar<Inside> inside_;             // tiled: events by cycle, in booking order
  std::vector<Inside> due_;                   // tiled: the events of the cycle being handled
  std::vector<std::pair<MessageId, std::uint64_t>> paced_;  // tiled: appends the source sends paced
  std::uint64_t now_ = 0;                                   // tiled: the cycle being handled
  std::vector<PeState> st_;
  std::vector<std::uint64_t> head_done_;
  std::vector<MsgInfo> info_;
  MessageId msg_base_ = 0;
  std::uint64_t start_ = 0;
  std::vector<HeadDelivery>* record_ = nullptr;
  std::vector<HeadDelivery> replay_;
};

AttentionResult simulate(Fabric& fabric, const PeConfig& pe, const AttentionConfig& a, const Layout& L,
                         std::uint32_t heads) {
  return AttentionRun(fabric, pe, a, L, heads).run();
}

FabricConfig sized_to(const FabricConfig& fc, const AttentionConfig& a, std::uint32_t cols,
                      std::uint32_t rows) {
  FabricConfig sized = fc;
  sized.width = a.origin.x + cols;
  sized.height = a.origin.y + rows;
  return sized;
}

// Folded rows (AttentionConfig::fold_rows). A head's rows 1 .. R-2 hold full blocks and
// none of the new tokens; each receives the query (and passes the append on) one hop
// after the row above, and its row phase of the combine uses only its own links. So the
// first pass simulates a head of three rows, the first, one of those middle rows and
// the last (the new tokens' row, with the same columns), recording what reaches each
// row's column-0 PE; the second simulates the head's column 0 alone, all R rows, with
// the combine's column phase on the fabric and each row's recorded deliveries replayed
// at its column-0 PE, later by one hop per row (row r of the middle ones: r - 1 hops;
// the last row: R - 3). Not exact by construction: in the whole head a row's column-0 PE
// also receives the column phase from the rows below, on the same ramp, while its row
// phase arrives, and a prefill chunk's longer append shares a column's south links with
// the query multicast in a pattern that is not quite a shift. Measured (test
// KernelsTest.FoldedRowsGiveTheWholeHeadsResult, DecodeSimulated.FoldedAttentionRowsStay-
// WithinATenthOfAPercent and docs/wse_mesh.md): a decode's total is within 0.1% of the
// whole head's (10 of 188 small-head chain cases off by 1-2 cycles; every other figure
// equal); a chunk's last query delivery moves by up to 9 of ~580 cycles. (At 4 rows, a
// chunk's total moved by 2 of 12,025 cycles and no time was saved: folding starts at 5.)
// With `node` > 0 (tiled fidelity) the first pass runs on the tiled fabric (the second
// stays per-PE: one column) and the hops are the head's route hops.
AttentionResult run_folded(const FabricConfig& fc, const PeConfig& pe, const AttentionConfig& a,
                           const Layout& L, std::uint32_t node = 0) {
  const std::uint64_t dropped_tokens = std::uint64_t{L.R - 3} * L.Q * L.tpp;
  AttentionConfig a3 = a;
  a3.context = a.context - dropped_tokens;
  const Layout L3 = layout_of(a3);
  const FabricConfig sized3 = sized_to(fc, a, L3.Q, L3.R);
  Fabric f1(node > 0 ? tiled(sized3, node) : sized3);
  AttentionRun pass1(f1, pe, a3, L3, 1, false, node);
  std::vector<HeadDelivery> rec;
  pass1.record_head_deliveries(&rec);
  AttentionResult res = pass1.run();
  const std::uint64_t north1 = node > 0 ? 0 : pass1.column_north_hops();
  const std::uint64_t middle_row_hops = node > 0 ? 0 : pass1.row_out_hops(1);

  const std::uint64_t hop = fc.hop_latency_cycles;
  std::array<std::vector<HeadDelivery>, 3> by_row;  // the recording, per row of the first pass
  for (const HeadDelivery& e : rec) by_row.at(e.row).push_back(e);
  std::vector<HeadDelivery> events;
  events.reserve(rec.size() * L.R / 2);
  std::map<std::pair<std::uint32_t, MessageId>, MessageId> stream;  // (row, first pass's id) -> replayed id
  for (std::uint32_t r = 0; r < L.R; ++r) {
    const std::uint32_t folded = r == 0 ? 0 : (r + 1 == L.R ? 2 : 1);
    const std::uint64_t later = (r - folded) * hop;
    for (const HeadDelivery& e : by_row[folded]) {
      const auto id =
          stream.try_emplace({r, e.msg}, (MessageId{1} << 30) + static_cast<MessageId>(stream.size()));
      events.push_back(HeadDelivery{e.cycle + later, r, e.color, id.first->second});
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const HeadDelivery& x, const HeadDelivery& y) { return x.cycle < y.cycle; });
  Fabric f2(sized_to(fc, a, 1, L.R));
  AttentionRun pass2(f2, pe, a, L, 1, true);
  pass2.replay(std::move(events));
  const AttentionResult col = pass2.run();

  const std::uint64_t later = std::uint64_t{L.R - 3} * hop;  // the last row's times
  res.grid_rows = a.kv_heads * L.R;
  res.total_cycles = col.total_cycles;
  res.append_cycles += later;
  res.query_cycles += later;
  res.compute_done_cycles += later;
  res.combine_cycles = res.total_cycles - std::min(res.total_cycles, res.compute_done_cycles);
  // Hops: the first pass's, less its column phase, plus the column phase of all R rows,
  // plus R - 3 more middle rows; the middle row simulated sends the query south into the
  // last row only, the others into a full row: Q - (the last row's length) more columns.
  const std::uint64_t into_full_row =
      middle_row_hops + std::uint64_t{L.Q - L.row_len(L.R - 1)} * L.q_wavelets();
  res.wavelet_hops =
      node > 0 ? route_hops(a, L)
               : res.wavelet_hops - north1 + std::uint64_t{L.R - 3} * into_full_row + f2.wavelet_hops();
  res.fabric_cycles_simulated += f2.cycles_simulated();
  res.wall_seconds += col.wall_seconds;
  return res;
}

}  // namespace

void require_attention_shape(std::string_view kernel, const AttentionShape& a) {
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(std::string(kernel) + ": " + what);
  };
  require(a.kv_heads >= 1 && a.q_heads >= a.kv_heads && a.q_heads % a.kv_heads == 0,
          "q_heads (" + std::to_string(a.q_heads) + ") must be a positive multiple of kv_heads (" +
              std::to_string(a.kv_heads) + ")");
  require(a.head_dim >= 1, "head_dim must be at least 1");
  require(a.query_tokens >= 1, "query_tokens must be at least 1");
  require(a.tokens_per_pe >= 1, "tokens_per_pe must be at least 1");
  require(a.max_grid_cols >= 1, "max_grid_cols must be at least 1");
  require(a.kv_bytes == 1 || a.kv_bytes == 2 || a.kv_bytes == 4, "kv_bytes must be 1, 2 or 4");
}

std::pair<std::uint32_t, std::uint32_t> attention_grid(const AttentionConfig& a) {
  const Layout L = layout_of(a);
  return {a.kv_heads * L.R, L.Q};
}

AttentionResult run_attention(Fabric& fabric, const PeConfig& pe, const AttentionConfig& a) {
  const Layout L = layout_of(a);
  return simulate(fabric, pe, a, L, a.kv_heads);
}

AttentionResult run_attention(const FabricConfig& fc, const PeConfig& pe, const AttentionConfig& a) {
  // The heads are copies of one another on disjoint rows, and no route leaves a head's
  // rows: on an otherwise empty fabric every head takes exactly the same cycles, so one
  // head is simulated (on a fabric the size of its rows) and stands for all.
  const Layout L = layout_of(a);
  if (a.fold_rows && L.R >= 5 && L.context / L.tpp >= std::uint64_t{L.R - 1} * L.Q)
    return run_folded(fc, pe, a, L);
  Fabric fabric(sized_to(fc, a, L.Q, L.R));
  return simulate(fabric, pe, a, L, 1);
}

AttentionResult run_attention_tiled(const FabricConfig& per_pe, std::uint32_t k, const PeConfig& pe,
                                    const AttentionConfig& a) {
  if (k == 0) throw std::invalid_argument("attention tiled: k must be at least 1");
  if (a.reduction == Reduction::kTree && !std::has_single_bit(k)) {
    throw std::invalid_argument(
        "attention tiled: the tree combine needs k a power of two (k = " + std::to_string(k) + ")");
  }
  AttentionConfig at = a;
  at.origin = {0, 0};  // a fresh fabric sized to the grid (the time is translation invariant)
  const Layout L = layout_of(at);
  if (at.fold_rows && L.R >= 5 && L.context / L.tpp >= std::uint64_t{L.R - 1} * L.Q)
    return run_folded(per_pe, pe, at, L, k);
  Fabric fabric(tiled(sized_to(per_pe, at, L.Q, L.R), k));
  AttentionResult res = AttentionRun(fabric, pe, at, L, 1, false, k).run();
  return res;
}

std::uint64_t kv_token_wavelets(std::uint64_t head_dim, std::uint32_t kv_bytes) {
  return 2 * ceil_div(head_dim, 4 / kv_bytes);
}

std::uint64_t kv_wavelet_store_cycles(const PeConfig& pe, std::uint64_t head_dim, std::uint32_t kv_bytes,
                                      std::uint64_t idx) {
  const std::uint64_t per_wavelet = 4 / kv_bytes, k_wavelets = ceil_div(head_dim, per_wavelet);
  const bool is_k = idx < k_wavelets;
  const std::uint64_t in_half = is_k ? idx : idx - k_wavelets;
  const std::uint64_t values = std::min(per_wavelet, head_dim - in_half * per_wavelet);
  const std::uint32_t bits = 8 * kv_bytes;
  return is_k ? vector_cycles(pe, 1, values, 0, bits) : vector_cycles(pe, pe.simd_fp16_add, values, 0, bits);
}

std::uint64_t attention_score_fmac_cycles(const PeConfig& pe, std::uint64_t T, std::uint32_t kv_bytes) {
  return vector_cycles(pe, pe.simd_fp16_fp32_fmac, T, 8 * kv_bytes + 32, 32);
}

std::uint64_t attention_softmax_pv_cycles(const PeConfig& pe, std::uint64_t T, std::uint64_t head_dim,
                                          std::uint32_t kv_bytes) {
  if (T == 0) return 0;
  const std::uint64_t reduce = vector_cycles(pe, pe.simd_fp32_add, T, 32, 0);  // max, then sum
  return 2 * reduce + exp_cycles(pe, T) +
         T * vector_cycles(pe, pe.simd_fp16_fp32_fmac, head_dim, 8 * kv_bytes + 32, 32);
}

std::uint64_t attention_decode_floor(const PeConfig& pe, const AttentionConfig& a) {
  if (a.kv_heads == 0 || a.tokens_per_pe == 0) return 0;
  const std::uint64_t G = a.q_heads / a.kv_heads;
  const std::uint64_t T = std::min<std::uint64_t>(a.tokens_per_pe, a.context + 1);
  return G * (a.head_dim * attention_score_fmac_cycles(pe, T, a.kv_bytes) +
              attention_softmax_pv_cycles(pe, T, a.head_dim, a.kv_bytes));
}

std::uint64_t kv_token_store_cycles(const PeConfig& pe, std::uint64_t head_dim, std::uint32_t kv_bytes) {
  std::uint64_t c = 0;
  for (std::uint64_t w = 0; w < kv_token_wavelets(head_dim, kv_bytes); ++w) {
    c += kv_wavelet_store_cycles(pe, head_dim, kv_bytes, w);
  }
  return c;
}

}  // namespace wse::wafer
