#include "wse_mesh/kernels/attention_stream.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "systemc_models/units/integer.h"
#include "wse_mesh/kernels/gemm_cannon.h"

namespace wse::wafer {

namespace {

std::uint64_t manhattan(PeCoord a, PeCoord b) {
  const auto d = [](std::uint32_t u, std::uint32_t v) { return u > v ? u - v : v - u; };
  return std::uint64_t{d(a.x, b.x)} + d(a.y, b.y);
}

// One head's shapes (attention.h's layout) and the costs of the mapping's steps.
struct Head {
  std::uint64_t G = 0, qt = 0, D = 0, tpp = 0, context = 0, N = 0;
  std::uint64_t cache_tpp = 0;  // the cache's layout: blocks of cache_tpp tokens on cache_Q columns
  std::uint32_t cache_Q = 0;
  std::uint32_t nb = 0, Q = 0, R = 0, kv_bytes = 2;
  std::uint64_t H = 1, ramp = 1;
  std::uint64_t kvw = 0;             // wavelets of one token's K and V
  std::uint64_t store_tok = 0;       // the append's store of one token (strided K)
  std::vector<std::uint64_t> cost;   // [T]: one query's online-softmax update by T tokens
  std::vector<std::uint64_t> store;  // [T]: storing an arriving block of T tokens
  std::uint64_t combine = 0;         // one query's (m, l, o) merged into another's
  std::uint64_t normalize = 0;       // one query's o / l

  std::uint64_t tokens_in(std::uint32_t b) const { return std::min(tpp, N - std::uint64_t{b} * tpp); }
  // Tokens of block b that query token i (position context + i) attends to.
  std::uint64_t attended(std::uint32_t b, std::uint64_t i) const {
    const std::uint64_t limit = context + i + 1, first = std::uint64_t{b} * tpp;
    return limit <= first ? 0 : std::min(tokens_in(b), limit - first);
  }
  std::uint32_t row_len(std::uint32_t r) const { return std::min(Q, nb - r * Q); }
  PeCoord pe_of(std::uint32_t b) const { return {b % Q, b / Q}; }
  std::uint64_t query_wavelets(std::uint64_t queries) const { return ceil_div(queries * D, 2); }
};

Head head_of(const FabricConfig& fabric, const PeConfig& pe, const AttentionStreamConfig& a) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("attention stream: " + what);
  };
  validate(pe);
  require_attention_shape("attention stream", {a.q_heads, a.kv_heads, a.head_dim, a.query_tokens,
                                               a.tokens_per_pe, a.max_grid_cols, a.kv_bytes});
  Head h;
  h.G = a.q_heads / a.kv_heads;
  h.qt = a.query_tokens;
  h.D = a.head_dim;
  require(a.stream_tokens_per_pe <= a.tokens_per_pe, "stream_tokens_per_pe must be at most tokens_per_pe");
  h.cache_tpp = a.tokens_per_pe;
  h.tpp = a.stream_tokens_per_pe > 0 ? a.stream_tokens_per_pe : a.tokens_per_pe;
  h.cache_Q = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(ceil_div(a.context + a.query_tokens, h.cache_tpp), a.max_grid_cols));
  h.context = a.context;
  h.N = a.context + a.query_tokens;
  const std::uint64_t blocks = ceil_div(h.N, h.tpp);
  require(blocks <= (1ull << 24), "the cache is spread over more than 2^24 PEs per head");
  h.nb = static_cast<std::uint32_t>(blocks);
  h.Q = std::min(h.nb, a.max_grid_cols);
  h.R = static_cast<std::uint32_t>(ceil_div(h.nb, h.Q));
  h.kv_bytes = a.kv_bytes;
  h.H = fabric.hop_latency_cycles;
  h.ramp = fabric.ramp_latency_cycles;
  h.kvw = kv_token_wavelets(h.D, a.kv_bytes);
  h.store_tok = kv_token_store_cycles(pe, h.D, a.kv_bytes);
  for (std::uint64_t t = 0; t <= h.tpp; ++t) {
    h.cost.push_back(stream_query_cycles(pe, h.D, a.kv_bytes, t));
    h.store.push_back(stream_block_store_cycles(pe, h.D, a.kv_bytes, t));
  }
  h.combine = vector_cycles(pe, pe.simd_fp32_add, 1, 32, 32) + 2 * exp_cycles(pe, 1) +
              (h.D + 1) * 2 * vector_cycles(pe, pe.simd_fp32_fmac, 1, 32, 32);
  h.normalize = reciprocal_cycles(pe, 1) + fp32_scale_cycles(pe, h.D);
  return h;
}

// The rings of one head: each a path of PEs (path order), folded; the query slots.
struct Ring {
  std::vector<std::uint32_t> path;  // blocks along the path
  std::vector<int> slot;            // per path index: the query slot it holds, -1 none
};
struct Rings {
  std::vector<Ring> rings;
  std::uint32_t slots = 0;
};

Rings rings_of(const Head& h, StreamRing kind) {
  Rings out;
  if (kind == StreamRing::kSnake || h.R == 1) {
    Ring r;
    for (std::uint32_t row = 0; row < h.R; ++row) {
      const std::uint32_t len = h.row_len(row);
      for (std::uint32_t i = 0; i < len; ++i) {
        const std::uint32_t col = row % 2 == 0 ? i : len - 1 - i;
        r.path.push_back(row * h.Q + col);
        r.slot.push_back(static_cast<int>(r.path.size() - 1));
      }
    }
    out.slots = static_cast<std::uint32_t>(r.path.size());
    out.rings.push_back(std::move(r));
    return out;
  }
  const std::uint32_t full = h.nb / h.Q, part = h.nb % h.Q;
  for (std::uint32_t row = 0; row < full; ++row) {
    Ring r;
    for (std::uint32_t c = 0; c < h.Q; ++c) {
      r.path.push_back(row * h.Q + c);
      r.slot.push_back(static_cast<int>(c));
    }
    if (row + 1 == full && part > 0) {
      // The partial last row joins this ring, back along its PEs (no queries of its own).
      for (std::uint32_t i = 0; i < part; ++i) {
        r.path.push_back(full * h.Q + part - 1 - i);
        r.slot.push_back(-1);
      }
    }
    out.rings.push_back(std::move(r));
  }
  out.slots = h.Q;
  return out;
}

// Query vectors of each slot (v = token x G + head, dealt round-robin), as token indices.
std::vector<std::vector<std::uint32_t>> deal(const Head& h, std::uint32_t slots) {
  std::vector<std::vector<std::uint32_t>> q(slots);
  const std::uint64_t n = h.G * h.qt;
  for (std::uint64_t v = 0; v < n; ++v) q[v % slots].push_back(static_cast<std::uint32_t>(v / h.G));
  return q;
}

std::uint64_t block_bytes(const Head& h) { return h.tpp * h.D * h.kv_bytes; }  // K (or V) of a block
std::uint64_t cache_bytes(const Head& h) { return h.cache_tpp * h.D * h.kv_bytes; }
std::uint64_t query_bytes(const Head& h) { return h.D * 2 + h.tpp * 4 + (h.D + 2) * 4; }

struct Timing {
  std::uint64_t total = 0, input = 0, compute = 0, done = 0, chain = 0, shift = 0, busy = 0, hops = 0;
  std::uint64_t skipped = 0, qv = 0, rounds = 0, sram = 0, length = 0, max_hops = 0;
};

Timing time_rings(const Head& h, const PeConfig& pe, const AttentionStreamConfig& a, StreamRing kind) {
  const Rings rs = rings_of(h, kind);
  const std::vector<std::vector<std::uint32_t>> dealt = deal(h, rs.slots);
  std::uint64_t qv = 0;
  for (const auto& s : dealt) qv = std::max<std::uint64_t>(qv, s.size());
  // SRAM: the fewest rounds whose queries fit.
  const std::uint64_t capacity = a.sram_bytes > 0 ? a.sram_bytes : pe.sram_bytes;
  // Own K and V (the cache; with smaller stream blocks, the cache and a copy of the
  // PE's stream block) and two received blocks.
  const bool split = h.tpp < h.cache_tpp;
  const std::uint64_t fixed = 2 * cache_bytes(h) + (split ? 6 : 4) * block_bytes(h);
  const std::uint64_t per_q = query_bytes(h);
  std::uint64_t fit = capacity > fixed ? (capacity - fixed) / per_q : 0;
  std::uint64_t qr = std::min(qv, std::max<std::uint64_t>(fit, 1));
  const std::uint64_t rounds = ceil_div(qv, qr);
  qr = ceil_div(qv, rounds);
  const std::string kv_type = h.kv_bytes == 1 ? "fp8" : h.kv_bytes == 2 ? "fp16" : "fp32";
  SramPlacement sram({0, 0}, capacity);
  sram.place("K and V cache (" + std::to_string(h.cache_tpp) + " tokens x 2 x " + std::to_string(h.D) + " " +
                 kv_type + ")",
             2 * cache_bytes(h));
  if (split) {
    sram.place("stream block (" + std::to_string(h.tpp) + " tokens of K and V)", 2 * block_bytes(h));
  }
  sram.place("receive buffers (2 blocks of " + std::to_string(h.tpp) + " tokens of K and V)",
             4 * block_bytes(h));
  sram.place("query vectors (" + std::to_string(qr) + " x " + std::to_string(h.D) + " fp16)", qr * h.D * 2);
  sram.place("scores (" + std::to_string(qr) + " x " + std::to_string(h.tpp) + " fp32)", qr * h.tpp * 4);
  sram.place("accumulators (" + std::to_string(qr) + " x " + std::to_string(h.D + 2) + " fp32)",
             qr * (h.D + 2) * 4);

  Timing t;
  t.qv = qr;
  t.rounds = rounds;
  t.sram = sram.used_bytes();
  const PeCoord source{0, 0};
  const std::uint64_t R2 = 2 * h.ramp;
  const std::uint64_t head_pes = h.nb;
  // Own blocks: those holding new tokens are stored from the source's stream first.
  std::vector<std::uint64_t> own(h.nb, 0);
  std::uint64_t split_hops = 0;
  for (std::uint32_t b = 0; b < h.nb; ++b) {
    const std::uint64_t first = std::uint64_t{b} * h.tpp, end = first + h.tokens_in(b);
    if (split && first < h.context) {
      // Cached tokens of a stream block smaller than the cache's: sent by the PE that
      // caches them, its stream blocks in token order (kv_token_wavelets a token).
      const std::uint64_t c = first / h.cache_tpp, old_end = std::min(end, h.context);
      const PeCoord from{static_cast<std::uint32_t>(c % h.cache_Q),
                         static_cast<std::uint32_t>(c / h.cache_Q)};
      const std::uint64_t d = manhattan(from, h.pe_of(b));
      own[b] = (old_end - c * h.cache_tpp) * h.kvw + d * h.H + R2 + h.store[old_end - first];
      split_hops += (old_end - first) * h.kvw * d;
    }
    if (end <= h.context) continue;
    const std::uint64_t first_new = std::max(first, h.context), n_new = end - first_new;
    own[b] = std::max(own[b], (first_new - h.context) * h.kvw + manhattan(source, h.pe_of(b)) * h.H + R2 +
                                  n_new * std::max(h.kvw, h.store_tok));
  }
  const std::uint64_t kv_stream = h.qt * h.kvw;
  t.hops += split_hops;
  std::uint64_t start = 0;  // of the round
  std::vector<std::uint64_t> engine_busy(h.nb, 0);
  for (std::uint64_t round = 0; round < rounds; ++round) {
    // Queries of this round: slot-major through the source's ramp, after the new K and V.
    std::vector<std::vector<std::uint32_t>> q(rs.slots);
    std::vector<std::uint64_t> slot_sent(rs.slots, 0);
    std::uint64_t off = start + (round == 0 ? kv_stream : 0);
    std::uint64_t stream = round == 0 ? kv_stream : 0;
    for (std::uint32_t s = 0; s < rs.slots; ++s) {
      const auto& all = dealt[s];
      const std::uint64_t lo = std::min<std::uint64_t>(all.size(), round * qr);
      const std::uint64_t hi = std::min<std::uint64_t>(all.size(), lo + qr);
      q[s].assign(all.begin() + static_cast<std::ptrdiff_t>(lo),
                  all.begin() + static_cast<std::ptrdiff_t>(hi));
      off += h.query_wavelets(q[s].size());
      stream += h.query_wavelets(q[s].size());
      slot_sent[s] = off;
    }
    t.hops += stream * (head_pes - 1);  // multicast over the head's PEs
    std::uint64_t round_end = 0;
    // Per slot, per ring: the ring's end for it (for the chain).
    std::vector<std::vector<std::uint64_t>> slot_done(rs.slots,
                                                      std::vector<std::uint64_t>(rs.rings.size(), 0));
    for (std::size_t ri = 0; ri < rs.rings.size(); ++ri) {
      const Ring& ring = rs.rings[ri];
      const auto n = static_cast<std::uint32_t>(ring.path.size());
      t.length = std::max<std::uint64_t>(t.length, n);
      // Ring position l -> path index; its block, PE, queries.
      std::vector<std::uint32_t> blk(n), in_hops(n, 0);
      std::vector<PeCoord> at(n);
      std::vector<const std::vector<std::uint32_t>*> mine(n, nullptr);
      std::vector<std::uint64_t> q_ready(n, start), e(n, start), have(n), link(n, start);
      for (std::uint32_t l = 0; l < n; ++l) {
        const std::uint32_t p = folded_column(l, n);
        blk[l] = ring.path[p];
        at[l] = h.pe_of(blk[l]);
        have[l] = std::max(start, round == 0 ? own[blk[l]] : 0);
        t.input = std::max(t.input, have[l]);
        if (ring.slot[p] >= 0 && !q[static_cast<std::size_t>(ring.slot[p])].empty()) {
          const auto s = static_cast<std::size_t>(ring.slot[p]);
          mine[l] = &q[s];
          q_ready[l] = slot_sent[s] + manhattan(source, at[l]) * h.H + R2 + 1;
          t.input = std::max(t.input, std::max(q_ready[l], have[l]));
        }
      }
      for (std::uint32_t l = 0; l < n && n > 1; ++l) {
        in_hops[l] = static_cast<std::uint32_t>(manhattan(at[(l + 1) % n], at[l]));
        t.max_hops = std::max<std::uint64_t>(t.max_hops, in_hops[l]);
      }
      std::vector<std::uint64_t> used[2] = {std::vector<std::uint64_t>(n, start),
                                            std::vector<std::uint64_t>(n, start)};
      std::vector<std::uint64_t> fwd[2] = {std::vector<std::uint64_t>(n, start),
                                           std::vector<std::uint64_t>(n, start)};
      std::vector<std::uint64_t> arrive(n, 0), edge(n, 0);
      for (std::uint32_t s = 0; s < n; ++s) {
        for (std::uint32_t l = 0; l < n; ++l) {
          const std::uint32_t b = blk[(l + s) % n];
          const std::uint64_t tokens = h.tokens_in(b);
          std::uint64_t work = 0;
          if (mine[l] != nullptr) {
            for (std::uint32_t i : *mine[l]) work += h.cost[h.attended(b, i)];
            if (work == 0) ++t.skipped;
          }
          std::uint64_t ready = have[l];
          if (s > 0) {
            ready = std::max(ready, e[l] + h.store[tokens]);  // the block stored as it arrives
            engine_busy[blk[l]] += h.store[tokens];
            t.busy += h.store[tokens];
          }
          if (work > 0) {
            ready = std::max(ready, q_ready[l]);
            e[l] = ready + work;
            engine_busy[blk[l]] += work;
            t.busy += work;
          } else {
            e[l] = std::max(e[l], ready);
          }
          used[s % 2][l] = e[l];
        }
        if (s + 1 == n) break;
        // Sends for step s + 1: position l passes its block to l - 1.
        for (std::uint32_t l = 0; l < n; ++l) {
          const std::uint32_t to = (l + n - 1) % n;
          const std::uint64_t W = h.tokens_in(blk[(l + s) % n]) * h.kvw;
          std::uint64_t send = std::max(have[l], link[l]);
          if (s + 1 >= 3) send = std::max({send, used[(s + 1) % 2][to], fwd[(s + 1) % 2][to]});
          link[l] = send + W;
          fwd[s % 2][l] = send + W;
          arrive[to] = send + in_hops[to] * h.H + W + R2;
          edge[to] += W;
          t.hops += W * in_hops[to];
        }
        have = arrive;
      }
      for (std::uint32_t l = 0; l < n; ++l) {
        t.shift = std::max(t.shift, edge[l]);
        t.done = std::max(t.done, e[l]);
        if (mine[l] != nullptr)
          slot_done[static_cast<std::size_t>(ring.slot[folded_column(l, n)])][ri] = e[l];
      }
    }
    // The chain up each column (rows), then normalise and drain.
    std::uint64_t chain_end = 0;
    for (std::uint32_t s = 0; s < rs.slots; ++s) {
      const std::uint64_t k = q[s].size();
      if (k == 0) continue;
      std::uint64_t fin = slot_done[s].back();
      const std::uint64_t Wc = k * (h.D + 2);
      for (std::size_t j = rs.rings.size() - 1; j-- > 0;) {
        fin = std::max(slot_done[s][j], fin + h.H + Wc + R2) + k * h.combine;
        t.hops += Wc;
        t.busy += k * h.combine;
      }
      chain_end = std::max(chain_end, fin);
      t.busy += k * h.normalize;
      round_end = std::max(round_end, fin + k * h.normalize + h.query_wavelets(k) + R2);
    }
    t.chain = std::max(t.chain, chain_end);
    start = round_end;
  }
  t.total = start;
  for (std::uint64_t b : engine_busy) t.compute = std::max(t.compute, b);
  return t;
}

}  // namespace

const char* prefill_attention_name(PrefillAttention a) {
  switch (a) {
    case PrefillAttention::kAuto:
      return "auto";
    case PrefillAttention::kStream:
      return "stream";
    case PrefillAttention::kCombine:
      return "combine";
  }
  return "?";
}

bool parse_prefill_attention(std::string_view name, PrefillAttention& a) {
  for (PrefillAttention x :
       {PrefillAttention::kAuto, PrefillAttention::kStream, PrefillAttention::kCombine}) {
    if (name == prefill_attention_name(x)) {
      a = x;
      return true;
    }
  }
  return false;
}

const char* stream_ring_name(StreamRing r) {
  switch (r) {
    case StreamRing::kAuto:
      return "auto";
    case StreamRing::kRows:
      return "rows";
    case StreamRing::kSnake:
      return "snake";
  }
  return "?";
}

AttentionStreamConfig stream_config(const AttentionConfig& a) {
  AttentionStreamConfig s;
  s.q_heads = a.q_heads;
  s.kv_heads = a.kv_heads;
  s.head_dim = a.head_dim;
  s.context = a.context;
  s.query_tokens = a.query_tokens;
  s.tokens_per_pe = a.tokens_per_pe;
  s.stream_tokens_per_pe = 0;
  s.max_grid_cols = a.max_grid_cols;
  s.kv_bytes = a.kv_bytes;
  return s;
}

std::uint64_t stream_query_cycles(const PeConfig& pe, std::uint64_t D, std::uint32_t kv_bytes,
                                  std::uint64_t T) {
  if (T == 0) return 0;
  const std::uint32_t kv_bits = 8 * kv_bytes;
  const std::uint64_t scores = D * vector_cycles(pe, pe.simd_fp16_fp32_fmac, T, kv_bits + 32, 32);
  const std::uint64_t reduce = vector_cycles(pe, pe.simd_fp32_add, T, 32, 0);  // max, then sum
  const std::uint64_t rescale = vector_cycles(pe, pe.simd_fp32_add, 1, 32, 32) + exp_cycles(pe, 1) +
                                fp32_scale_cycles(pe, 1) + fp32_scale_cycles(pe, D);
  const std::uint64_t pv = T * vector_cycles(pe, pe.simd_fp16_fp32_fmac, D, kv_bits + 32, 32);
  return scores + 2 * reduce + exp_cycles(pe, T) + rescale + pv;
}

std::uint64_t stream_block_store_cycles(const PeConfig& pe, std::uint64_t D, std::uint32_t kv_bytes,
                                        std::uint64_t tokens) {
  const std::uint64_t wavelets = tokens * kv_token_wavelets(D, kv_bytes);
  return ceil_div(wavelets * 32, std::uint64_t{pe.sram_write_ports} * pe.sram_port_bits);
}

AttentionStreamResult run_attention_stream(const FabricConfig& fabric, const PeConfig& pe,
                                           const AttentionStreamConfig& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const Head h = head_of(fabric, pe, a);
  StreamRing kind = a.ring == StreamRing::kAuto ? StreamRing::kRows : a.ring;
  if (h.R == 1) kind = StreamRing::kRows;  // one row: the same ring either way
  Timing t = time_rings(h, pe, a, kind);
  if (a.ring == StreamRing::kAuto && h.R > 1) {
    const Timing snake = time_rings(h, pe, a, StreamRing::kSnake);
    if (snake.total < t.total) {
      t = snake;
      kind = StreamRing::kSnake;
    }
  }
  AttentionStreamResult res;
  res.grid_rows = a.kv_heads * h.R;
  res.grid_cols = h.Q;
  res.ring = kind;
  res.rings = static_cast<std::uint32_t>(rings_of(h, kind).rings.size());
  res.ring_length = static_cast<std::uint32_t>(t.length);
  res.queries_per_pe = static_cast<std::uint32_t>(t.qv);
  res.rounds = static_cast<std::uint32_t>(t.rounds);
  res.sram_bytes_per_pe = t.sram;
  res.total_cycles = t.total;
  res.input_cycles = t.input;
  res.compute_cycles = t.compute;
  res.compute_done_cycles = t.done;
  res.combine_cycles = t.chain > t.done ? t.chain - t.done : 0;
  res.drain_cycles = t.total - std::max(t.chain, t.done);
  res.shift_cycles = t.shift;
  res.busy_cycles = t.busy * a.kv_heads;
  res.wavelet_hops = t.hops * a.kv_heads;
  res.skipped_blocks = t.skipped;
  res.max_ring_hops = static_cast<std::uint32_t>(t.max_hops);
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

std::uint64_t attention_stream_closed_form(const FabricConfig& fabric, const PeConfig& pe,
                                           const AttentionStreamConfig& a, StreamRing ring,
                                           std::uint32_t hops) {
  const Head h = head_of(fabric, pe, a);
  const Rings rs = rings_of(h, ring);
  std::uint64_t n = 0;
  for (const Ring& r : rs.rings) n = std::max<std::uint64_t>(n, r.path.size());
  const std::uint64_t qv = ceil_div(h.G * h.qt, rs.slots);
  const std::uint64_t R2 = 2 * h.ramp, W = h.tpp * h.kvw;
  // Input: the new K and V, then every query, to the farthest PE.
  std::uint64_t far = 0;
  for (std::uint32_t b = 0; b < h.nb; ++b) far = std::max(far, manhattan({0, 0}, h.pe_of(b)));
  std::uint64_t query_stream = 0;
  for (std::uint32_t s = 0; s < rs.slots; ++s) {
    query_stream += h.query_wavelets(h.G * h.qt / rs.slots + (s < h.G * h.qt % rs.slots ? 1 : 0));
  }
  const std::uint64_t t_in = h.qt * h.kvw + query_stream + far * h.H + R2 + 1;
  const std::uint64_t w = qv * h.cost[h.tpp], c = w + h.store[h.tpp], L = hops * h.H + W + R2;
  std::uint64_t T = t_in + w + (n - 1) * std::max(c, L);
  const std::uint64_t stages = rs.rings.size() - 1;
  T += stages * (h.H + qv * (h.D + 2) + R2 + qv * h.combine);
  return T + qv * h.normalize + h.query_wavelets(qv) + R2;
}

}  // namespace wse::wafer
