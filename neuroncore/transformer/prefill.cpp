#include "neuroncore/transformer/prefill.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <type_traits>

namespace wse::neuron {

namespace {

using workloads::OpKind;
using workloads::Operator;

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

DType chip_dtype(workloads::DType t) {
  switch (t) {
    case workloads::DType::fp32: return DType::kFp32;
    case workloads::DType::fp8: return DType::kFp8;
    // mxfp4 weights are taken as fp8 on the tensor engine (assumption: dequantised to the
    // narrowest type the array multiplies).
    case workloads::DType::mxfp4: return DType::kFp8;
    case workloads::DType::bf16:
    case workloads::DType::fp16: return DType::kBf16;
  }
  return DType::kBf16;
}


std::string binary(std::uint64_t bytes) { return pretty_binary(Size{bytes}); }

// Emits DMA instructions moving `bytes` split over the core's queues (pieces of at least
// 4 KiB, as the GEMM lowering does), each depending on `deps`; returns the pieces.
struct DmaEmitter {
  Program& prog;
  std::uint32_t queues;
  std::uint32_t next = 0;
  std::uint64_t address = 0;  // a fresh, contiguous HBM range per transfer
  std::uint64_t limit = std::uint64_t{1} << 36;  // wraps within the HBM
  std::vector<Program::Id> transfer(bool store, std::uint64_t bytes, const std::vector<Program::Id>& deps,
                                    std::uint32_t max_pieces = 0) {
    const std::uint32_t cap = max_pieces == 0 ? queues : std::min(queues, max_pieces);
    const std::uint64_t pieces = std::clamp<std::uint64_t>(bytes / 4096, 1, cap);
    const std::uint64_t piece = ceil_div(std::max<std::uint64_t>(bytes, 1), pieces);
    std::vector<Program::Id> ids;
    for (std::uint64_t off = 0; off < std::max<std::uint64_t>(bytes, 1); off += piece) {
      const std::uint64_t len = std::min(piece, std::max<std::uint64_t>(bytes, 1) - off);
      const Program::Id id = store ? prog.dma_store(next, address + off, len) : prog.dma_load(next, address + off, len);
      for (Program::Id d : deps) prog.depend(id, d);
      next = (next + 1) % queues;
      ids.push_back(id);
    }
    address = (address + bytes + 4096) % limit;
    return ids;
  }
};

void depend_all(Program& p, Program::Id id, const std::vector<Program::Id>& on) {
  for (Program::Id d : on) p.depend(id, d);
}

// Buffers that work passes through in turn (SBUF slots of streamed K/V blocks, PSUM
// score or output banks): a new user of a buffer waits for the instruction that last
// read it.
class BufferRing {
 public:
  explicit BufferRing(std::size_t buffers) : reader_(buffers, 0), read_(buffers, false) {}
  std::size_t next() { return used_++ % reader_.size(); }
  // What a new user of `b` waits for: nothing the first time round.
  std::vector<Program::Id> wait_for(std::size_t b) const {
    return read_[b] ? std::vector<Program::Id>{reader_[b]} : std::vector<Program::Id>{};
  }
  void order_after_reader(Program& p, Program::Id id, std::size_t b) const {
    if (read_[b]) p.depend(id, reader_[b]);
  }
  void read_by(std::size_t b, Program::Id id) {
    reader_[b] = id;
    read_[b] = true;
  }

 private:
  std::vector<Program::Id> reader_;
  std::vector<bool> read_;
  std::uint64_t used_ = 0;
};

// QK^T of m queries against n keys into the next score bank: matmuls over the head
// dimension dk in slices of the array's rows, each after the queries, the keys and the
// bank's last reader. Returns the last matmul and the bank.
std::pair<Program::Id, std::size_t> qk_scores(Program& prog, BufferRing& banks, std::uint32_t dk, std::uint32_t rows,
                                              std::uint32_t m, std::uint32_t n, const std::vector<Program::Id>& q,
                                              const std::vector<Program::Id>& k) {
  const std::size_t bank = banks.next();
  Program::Id mm = 0;
  for (std::uint32_t d0 = 0; d0 < dk; d0 += rows) {
    mm = prog.matmul(std::min(rows, dk - d0), m, n, DType::kBf16);
    depend_all(prog, mm, q);
    depend_all(prog, mm, k);
    banks.order_after_reader(prog, mm, bank);
  }
  return {mm, bank};
}

// DMA instructions covering a contiguous byte stream, in order: the ones a consumer of
// [begin, end) waits for.
struct PieceStream {
  std::vector<std::uint64_t> end;  // end offset of each piece
  std::vector<Program::Id> id;
  std::pair<std::size_t, std::size_t> covering(std::uint64_t begin, std::uint64_t stop) const {
    const auto first = static_cast<std::size_t>(std::upper_bound(end.begin(), end.end(), begin) - end.begin());
    auto last = static_cast<std::size_t>(std::lower_bound(end.begin(), end.end(), stop) - end.begin());
    last = std::min(last + 1, end.size());
    return {first, last};
  }
  void depend(Program& p, Program::Id consumer, std::uint64_t begin, std::uint64_t stop) const {
    const auto [a, b] = covering(begin, stop);
    for (std::size_t i = a; i < b; ++i) p.depend(consumer, id[i]);
  }
};

// The smallest DMA instruction that still lets a chip's queues outrun its HBM: a queue
// spends `instruction_overhead` per instruction and then moves data at its bandwidth, so
// with pieces of s bytes the queues of all cores deliver
//   R_dma x s / (s + overhead x b_q)   (R_dma = cores x queues x b_q),
// which stays at or above the HBM peak R_hbm for s >= overhead x b_q x R_hbm / (R_dma - R_hbm).
// Smaller pieces let the consumers start earlier; larger ones would only add pipeline
// fill. 0 when the queues cannot outrun the HBM at all (then as large as allowed).
std::uint64_t smallest_efficient_dma_piece(const ChipConfig& chip) {
  const DmaConfig& d = chip.core.dma;
  const double b_q = d.bandwidth_per_queue.bytes_per_s;
  const double r_dma = b_q * d.queues * chip.cores;
  const double r_hbm = chip.hbm.peak_bandwidth().bytes_per_s;
  if (r_dma <= r_hbm) return 0;
  const double s = d.instruction_overhead.seconds * b_q * r_hbm / (r_dma - r_hbm);
  return ceil_div(static_cast<std::uint64_t>(std::ceil(s)), 4096) * 4096;
}

// C groups of the streamed GEMM held in SBUF until their store is done.
constexpr std::size_t kCStoreSlots = 8;

// SBUF ring for the C rows of the streamed GEMM awaiting their store: kCStoreSlots groups
// of half the PSUM banks' 128-row blocks of `tokens` columns.
std::uint64_t c_ring_bytes(const NeuronCoreConfig& nc, std::uint64_t tokens, std::uint64_t e) {
  return kCStoreSlots * std::max<std::uint32_t>(1, nc.psum_banks / 2) * nc.tensor.columns * tokens * e;
}

// The weight-streaming GEMM of one core for few token rows (decode), `count` independent
// instances (MoE experts) one after another in the same program:
//   C_i^T[out x T] = W_i^T[out x k] X_i^T[k x T], T <= max_moving.
// The weights of all instances form one stream, in instance, n-block, k-tile order, cut
// into DMA instructions of about `piece_target` bytes dealt round-robin over the load
// queues, through a ring of SBUF slots (a piece reuses a slot once the last matmul reading
// the slot's previous piece is done). An instance's X^T is loaded (one piece per load
// queue) when its first matmul is emitted, so it queues behind the previous instance's
// weights. Each 128 x 128 weight tile is the stationary side of a matmul, the T tokens
// stream; one PSUM bank per block of 128 outputs accumulates the k tiles. Half of the
// banks are drained at a time by one vector copy, whose C rows are stored by one DMA
// instruction on the store queues (a share of the queues proportional to the output's part
// of the bytes moved, at least one), so stores never wait behind loads.
Program streamed_gemm_program(const ChipConfig& chip, std::uint64_t out, std::uint64_t k, std::uint64_t tokens,
                              DType t, std::uint64_t piece_target, std::uint64_t hbm_base, std::uint64_t count) {
  const NeuronCoreConfig& nc = chip.core;
  const std::uint32_t queues = nc.dma.queues;
  const std::uint64_t e = bytes_of(t);
  const std::uint64_t tk = nc.tensor.rows, tm = nc.tensor.columns;
  const std::uint64_t kt = ceil_div(k, tk), nb = ceil_div(out, tm);
  const std::uint64_t act_bytes = k * tokens * e, w_bytes = out * k * e * count, out_bytes = out * tokens * e;
  const std::uint32_t store_queues =
      queues == 1 ? 0
                  : static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
                        ceil_div(std::uint64_t{queues} * out_bytes, act_bytes + w_bytes / count + out_bytes), 1,
                        queues - 1));
  const std::uint32_t load_queues = queues - store_queues;
  Program p;
  std::uint32_t next_load = 0, next_store = 0;
  auto load = [&](std::uint64_t addr, std::uint64_t bytes) {
    const Program::Id id = p.dma_load(next_load, addr, bytes);
    next_load = (next_load + 1) % load_queues;
    return id;
  };
  const std::uint64_t act_base = hbm_base, w_base = act_base + act_bytes * count, c_base = w_base + w_bytes;
  // An instance's activations: one piece per load queue (at least 4 KiB each).
  auto load_activations = [&](std::uint64_t instance) {
    PieceStream act;
    const std::uint64_t pieces = std::clamp<std::uint64_t>(act_bytes / 4096, 1, load_queues);
    const std::uint64_t piece = ceil_div(act_bytes, pieces);
    for (std::uint64_t off = 0; off < act_bytes; off += piece) {
      const std::uint64_t len = std::min(piece, act_bytes - off);
      act.end.push_back(off + len);
      act.id.push_back(load(act_base + instance * act_bytes + off, len));
    }
    return act;
  };
  // Weights: a whole number of pieces per load queue, so that the queues end together.
  // The pieces of one round over the queues arrive together, and the matmuls of the last
  // round can only start then: that round is cut into quarters, so that the tensor engine
  // works through the end of the stream while its last quarters arrive.
  const std::uint64_t w_pieces = std::min<std::uint64_t>(
      std::max<std::uint64_t>(1, w_bytes / 4096),
      ceil_div(std::max<std::uint64_t>(1, ceil_div(w_bytes, piece_target)), load_queues) * load_queues);
  const std::uint64_t w_piece = ceil_div(w_bytes, w_pieces);
  std::vector<std::uint64_t> w_sizes;
  {
    // The first round is staggered (queue q's first piece is (q + 1) / queues of a piece),
    // so that the queues' instruction costs fall at different times and the HBM stays busy
    // while some queues prepare their next instruction.
    const std::uint64_t main = w_pieces > load_queues ? w_pieces - load_queues : 0;
    std::uint64_t placed = 0;
    for (std::uint64_t i = 0; i < main; ++i) {
      const std::uint64_t len =
          i < load_queues ? std::max<std::uint64_t>(4096, w_piece * (i + 1) / load_queues) : w_piece;
      if (placed + len >= w_bytes) break;
      w_sizes.push_back(len);
      placed += len;
    }
    const std::uint64_t rest = w_bytes - placed;
    const std::uint64_t tail = std::clamp<std::uint64_t>(rest / 4096, 1, 4ULL * load_queues);
    const std::uint64_t tail_piece = ceil_div(rest, tail);
    for (std::uint64_t off = 0; off < rest; off += tail_piece) w_sizes.push_back(std::min(tail_piece, rest - off));
  }
  const std::uint64_t slots = std::max<std::uint64_t>(2, nc.sbuf.bytes / 2 / w_piece);
  PieceStream w;
  std::vector<Program::Id> w_reader;
  std::vector<bool> w_read;
  std::uint64_t w_emitted = 0;
  auto ensure = [&](std::uint64_t upto) {
    while (w_emitted < upto) {
      const std::size_t i = w.id.size();
      const std::uint64_t len = w_sizes[i];
      const Program::Id id = load(w_base + w_emitted, len);
      if (i >= slots) {
        if (!w_read[i - slots]) throw std::logic_error("streamed GEMM: a weight slot is reused before it was read");
        p.depend(id, w_reader[i - slots]);
      }
      w_emitted += len;
      w.end.push_back(w_emitted);
      w.id.push_back(id);
      w_reader.push_back(0);
      w_read.push_back(false);
    }
  };
  const std::uint32_t banks = nc.psum_banks;
  const std::uint64_t group_blocks = std::max<std::uint32_t>(1, banks / 2);
  std::vector<Program::Id> bank_drain(banks, 0);
  std::vector<bool> bank_drained(banks, false);
  // C rows wait in a ring of SBUF (c_ring_bytes) for their store. Consecutive groups are
  // stored by one instruction once they reach a full group's bytes: the tiny outputs of
  // many expert instances would otherwise each pay the 600 ns instruction cost.
  const std::uint64_t ring = c_ring_bytes(nc, tokens, e);
  const std::uint64_t flush_bytes = group_blocks * tm * tokens * e;
  PieceStream stored;  // issued stores, by end offset in the output
  std::vector<Program::Id> pending;  // copies of groups not yet stored
  std::uint64_t pending_from = 0;
  std::vector<Program::Id> group_last;
  std::uint64_t w_off = 0, group_rows = 0, c_off = 0, blocks = 0;
  for (std::uint64_t instance = 0; instance < count; ++instance) {
    PieceStream act;
    for (std::uint64_t b = 0; b < nb; ++b, ++blocks) {
      const std::uint64_t m_len = std::min(tm, out - b * tm);
      const std::size_t bank = blocks % banks;
      Program::Id mm = 0;
      for (std::uint64_t j = 0; j < kt; ++j) {
        const std::uint64_t k_len = std::min(tk, k - j * tk);
        const std::uint64_t tile = k_len * m_len * e;
        if (act.id.empty()) act = load_activations(instance);
        ensure(w_off + tile);
        mm = p.matmul(static_cast<std::uint32_t>(k_len), static_cast<std::uint32_t>(m_len),
                      static_cast<std::uint32_t>(tokens), t);
        w.depend(p, mm, w_off, w_off + tile);
        act.depend(p, mm, j * tk * tokens * e, (j * tk + k_len) * tokens * e);
        if (j == 0 && bank_drained[bank]) p.depend(mm, bank_drain[bank]);
        const auto [a, z] = w.covering(w_off, w_off + tile);
        for (std::size_t i = a; i < z; ++i) {
          w_reader[i] = mm;
          w_read[i] = true;
        }
        w_off += tile;
      }
      group_last.push_back(mm);
      group_rows += m_len;
      if (group_last.size() < group_blocks && b + 1 < nb) continue;
      const std::uint64_t bytes = group_rows * tokens * e;
      const Program::Id copy = p.elementwise(Engine::kVector, group_rows * tokens, DType::kFp32);
      depend_all(p, copy, group_last);
      // The ring space this group overwrites must have been stored.
      if (c_off + bytes > ring) stored.depend(p, copy, c_off > ring ? c_off - ring : 0, c_off + bytes - ring);
      for (std::uint64_t bb = blocks + 1 - group_last.size(); bb <= blocks; ++bb) {
        bank_drain[bb % banks] = copy;
        bank_drained[bb % banks] = true;
      }
      pending.push_back(copy);
      c_off += bytes;
      const bool last = b + 1 == nb && instance + 1 == count;
      if (c_off - pending_from >= flush_bytes || last) {
        const std::uint64_t len = c_off - pending_from;
        // The last store: every load is done, so it is spread over all queues.
        const std::uint64_t pieces = last ? std::clamp<std::uint64_t>(len / 4096, 1, queues) : 1;
        const std::uint64_t piece = ceil_div(len, pieces);
        for (std::uint64_t off = 0; off < len; off += piece) {
          std::uint32_t q = 0;
          if (last) {
            q = static_cast<std::uint32_t>(off / piece) % queues;
          } else if (store_queues > 0) {
            q = load_queues + next_store;
            next_store = (next_store + 1) % store_queues;
          }
          const Program::Id st = p.dma_store(q, c_base + pending_from + off, std::min(piece, len - off));
          depend_all(p, st, pending);
          stored.end.push_back(pending_from + std::min(off + piece, len));
          stored.id.push_back(st);
        }
        pending.clear();
        pending_from = c_off;
      }
      group_last.clear();
      group_rows = 0;
    }
  }
  return p;
}

}  // namespace

EngineBusy& EngineBusy::operator+=(const EngineBusy& o) {
  elapsed_ps += o.elapsed_ps;
  tensor_ps += o.tensor_ps;
  vector_ps += o.vector_ps;
  scalar_ps += o.scalar_ps;
  gpsimd_ps += o.gpsimd_ps;
  dma_ps += o.dma_ps;
  hbm_ps += o.hbm_ps;
  link_ps += o.link_ps;
  collective_ps += o.collective_ps;
  for (std::size_t i = 0; i < algorithm_ps.size(); ++i) algorithm_ps[i] += o.algorithm_ps[i];
  collective_floor_ps += o.collective_floor_ps;
  runtime_ps += o.runtime_ps;
  flops += o.flops;
  instructions += o.instructions;
  chip_runs += o.chip_runs;
  return *this;
}

EngineBusy EngineBusy::scaled(std::uint64_t times) const {
  EngineBusy b = *this;
  const auto t = static_cast<double>(times);
  b.elapsed_ps *= times;
  b.tensor_ps *= t;
  b.vector_ps *= t;
  b.scalar_ps *= t;
  b.gpsimd_ps *= t;
  b.dma_ps *= t;
  b.hbm_ps *= t;
  b.link_ps *= t;
  b.collective_ps *= t;
  for (double& a : b.algorithm_ps) a *= t;
  b.collective_floor_ps *= t;
  b.runtime_ps *= t;
  b.flops *= times;
  return b;  // instructions and chip runs are what was simulated: not repeated
}

EngineBusy EngineBusy::interpolated(const EngineBusy& a, const EngineBusy& b, double w) {
  auto lerp = [w](double x, double y) { return x + (y - x) * w; };
  EngineBusy r;
  r.elapsed_ps = static_cast<std::uint64_t>(
      std::llround(lerp(static_cast<double>(a.elapsed_ps), static_cast<double>(b.elapsed_ps))));
  r.tensor_ps = lerp(a.tensor_ps, b.tensor_ps);
  r.vector_ps = lerp(a.vector_ps, b.vector_ps);
  r.scalar_ps = lerp(a.scalar_ps, b.scalar_ps);
  r.gpsimd_ps = lerp(a.gpsimd_ps, b.gpsimd_ps);
  r.dma_ps = lerp(a.dma_ps, b.dma_ps);
  r.hbm_ps = lerp(a.hbm_ps, b.hbm_ps);
  r.link_ps = lerp(a.link_ps, b.link_ps);
  r.collective_ps = lerp(a.collective_ps, b.collective_ps);
  for (std::size_t i = 0; i < r.algorithm_ps.size(); ++i) r.algorithm_ps[i] = lerp(a.algorithm_ps[i], b.algorithm_ps[i]);
  r.collective_floor_ps = lerp(a.collective_floor_ps, b.collective_floor_ps);
  r.runtime_ps = lerp(a.runtime_ps, b.runtime_ps);
  r.instructions = a.instructions + b.instructions;
  r.chip_runs = a.chip_runs + b.chip_runs;
  return r;
}

SampleInterval token_sample_interval(std::uint64_t x, std::uint64_t grain) {
  if (grain == 0) return {x, x};
  // Steps of g up to 32 g, then doubling per octave: 16 points in [16 g 2^j, 16 g 2^(j+1)).
  std::uint64_t step = grain;
  while (x / step >= 32) step *= 2;
  // Between two multiples L < x < L + step the points are L + 1 and L + step: every count
  // of (L, L + step] has the same number of 128-token tiles when step is a multiple of 128
  // (a row-parallel GEMM's time jumps by ~2% as a tile of rows starts).
  const std::uint64_t base = x / step * step;
  if (base == x || base + 1 == x) return {x, x};
  return {base + 1, base + step};
}

std::uint64_t attention_matmul_flops(const Operator& op, std::uint32_t tp_degree, std::uint32_t lnc,
                                     std::uint32_t chip_cores, std::uint32_t q_tile, std::uint32_t key_block) {
  // The loops of run_attention, counting 2 x q rows x keys x (dk + dv) per (tile, block).
  const std::uint32_t cores = std::min(tp_degree * lnc, chip_cores);
  const std::uint64_t q_tiles = ceil_div(op.query_len, q_tile);
  const std::uint64_t keys_total = op.context_offset + op.query_len;
  const std::uint64_t d = std::uint64_t{op.qk_head_dim} + op.v_head_dim;
  std::uint64_t flops = 0;
  for (std::uint32_t core = 0; core < cores; ++core) {
    const std::uint32_t logical = core / lnc;
    const std::uint32_t half = core % lnc;
    for (std::uint32_t h = logical; h < op.q_heads; h += tp_degree) {
      for (std::uint64_t t = half; t < q_tiles; t += lnc) {
        const std::uint64_t q_rows = std::min<std::uint64_t>(q_tile, op.query_len - t * q_tile);
        const std::uint64_t first = op.context_offset + t * q_tile;
        const std::uint64_t last = first + q_rows - 1;
        const std::uint64_t lo = op.window == 0 || first + 1 <= op.window ? 0 : first + 1 - op.window;
        for (std::uint64_t j = lo / key_block; j <= last / key_block; ++j) {
          flops += 2 * q_rows * std::min<std::uint64_t>(key_block, keys_total - j * key_block) * d;
        }
      }
    }
  }
  return flops;
}

namespace {

// Appends numbers and separators to a key (std::to_chars: keys are built for every
// operator of every step, and stream formatting dominated the run time of cached steps).
struct KeyWriter {
  std::string& out;
  template <typename T>
    requires std::is_unsigned_v<T> && (!std::is_same_v<T, char>) && (!std::is_same_v<T, bool>)
  KeyWriter& operator<<(T v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
    return *this;
  }
  KeyWriter& operator<<(char c) {
    out.push_back(c);
    return *this;
  }
  KeyWriter& operator<<(std::string_view v) {
    out.append(v);
    return *this;
  }
};

}  // namespace

std::string operator_key(const Operator& op) {
  std::string s;
  s.reserve(160);
  KeyWriter k{s};
  k << std::string_view(workloads::to_string(op.kind)) << '|' << op.name << '|' << op.count << '|' << op.m << ','
    << op.k << ',' << op.n << '|' << op.q_heads << ',' << op.kv_heads << ',' << op.qk_head_dim << ','
    << op.v_head_dim << '|' << op.query_len << ',' << op.kv_len << ',' << op.context_offset << ',' << op.window
    << ',' << static_cast<std::uint64_t>(op.sinks) << '|' << op.elements << ',' << op.vector_ops << '|'
    << static_cast<std::uint64_t>(op.weight_dtype) << ',' << static_cast<std::uint64_t>(op.activation_dtype) << '|'
    << op.input_bytes << ',' << op.output_bytes << ',' << op.weight_bytes;
  return s;
}

TrainiumPrefill::TrainiumPrefill(const ChipConfig& chip, const InstanceConfig& instance, const PrefillConfig& prefill)
    : chip_(chip), instance_(instance), cfg_(prefill) {
  chip_.hbm_fidelity = cfg_.hbm_fidelity;
  const std::uint32_t p = cfg_.physical_cores();
  const std::uint32_t available = chip_.cores * instance_.chips();
  if (cfg_.tp_degree == 0 || cfg_.lnc == 0) throw std::invalid_argument("prefill: tp_degree and lnc must be >= 1");
  if (p > available) {
    throw std::invalid_argument("prefill: tp_degree " + std::to_string(cfg_.tp_degree) + " x lnc " +
                                std::to_string(cfg_.lnc) + " = " + std::to_string(p) +
                                " physical cores, but the instance has " + std::to_string(available));
  }
  if (p > chip_.cores && p % chip_.cores != 0) {
    throw std::invalid_argument("prefill: " + std::to_string(p) + " physical cores is not a whole number of " +
                                std::to_string(chip_.cores) + "-core chips");
  }
  chips_ = p > chip_.cores ? p / chip_.cores : 1;
  sim_cores_ = std::min(p, chip_.cores);
  // The group's chips as a sub-torus: whole rows of X first.
  group_ = instance_;
  group_.chips_x = std::min(instance_.chips_x, chips_);
  group_.chips_y = chips_ / group_.chips_x;
  if (group_.chips_x * group_.chips_y != chips_ || group_.chips_y > instance_.chips_y) {
    throw std::invalid_argument("prefill: " + std::to_string(chips_) + " chips do not form a sub-torus of " +
                                std::to_string(instance_.chips_x) + " x " + std::to_string(instance_.chips_y));
  }
  if (!algorithm_applies(group_, group_.algorithm)) {
    throw std::invalid_argument("prefill: the group's " + std::to_string(group_.chips_x) + " x " +
                                std::to_string(group_.chips_y) + " chips cannot run the collective algorithm " +
                                std::string(to_string(group_.algorithm)) +
                                " (instance.collective_algorithm); use auto, ring, mesh or torus2d");
  }
  if (cfg_.attention_key_block == 0 || cfg_.attention_key_block > chip_.core.tensor.max_moving ||
      cfg_.gemm_token_block == 0 || cfg_.elementwise_tile == 0) {
    throw std::invalid_argument("prefill: attention_key_block must be in 1.." +
                                std::to_string(chip_.core.tensor.max_moving) +
                                ", gemm_token_block and elementwise_tile >= 1");
  }
}

HbmFootprint TrainiumPrefill::check_capacity(const workloads::OperatorGraph& g, std::uint64_t model_weight_bytes) const {
  HbmFootprint f;
  const std::uint64_t weights = model_weight_bytes != 0 ? model_weight_bytes : g.total_weight_bytes();
  f.weight_bytes = ceil_div(weights, chips_);
  f.kv_bytes = ceil_div(g.total_kv_write_bytes() + g.total_kv_read_bytes(), chips_);
  std::uint64_t act = 0;
  for (const Operator& op : g.ops) act = std::max(act, op.input_bytes + op.output_bytes);
  f.activation_bytes = ceil_div(act, chips_);
  const std::uint64_t have = chip_.hbm.capacity().bytes;
  if (f.total() > have) {
    throw CapacityError("HBM capacity exceeded: TP " + std::to_string(cfg_.tp_degree) + " x LNC " +
                        std::to_string(cfg_.lnc) + " = " + std::to_string(cfg_.physical_cores()) +
                        " cores on " + std::to_string(chips_) + " chip(s); per chip weights " +
                        binary(f.weight_bytes) + " + KV cache " + binary(f.kv_bytes) + " + activations " +
                        binary(f.activation_bytes) + " = " + binary(f.total()) + " but a chip's HBM holds " +
                        binary(have) + " (" + binary(f.total() - have) + " over)");
  }
  return f;
}

template <typename F>
EngineBusy TrainiumPrefill::cached(const std::string& key, F&& simulate, bool count_reuse) {
  if (cfg_.reuse) {
    if (auto it = op_cache_.find(key); it != op_cache_.end()) {
      if (count_reuse) ++reused_operators_;
      EngineBusy b = it->second;
      b.instructions = 0;
      b.chip_runs = 0;
      return b;
    }
  }
  const EngineBusy b = simulate();
  if (cfg_.reuse) op_cache_.emplace(key, b);
  return b;
}

EngineBusy TrainiumPrefill::run_programs(const std::vector<Program>& programs) {
  ChipSim sim(chip_);
  const ChipResult r = sim.run(programs);
  EngineBusy b;
  const double n = static_cast<double>(programs.size());
  for (const CoreResult& c : r.cores) {
    b.tensor_ps += c.tensor_full_array_ps / n;
    b.vector_ps += static_cast<double>(c.vector_busy_ps) / n;
    b.scalar_ps += static_cast<double>(c.scalar_busy_ps) / n;
    b.gpsimd_ps += static_cast<double>(c.gpsimd_busy_ps) / n;
    b.dma_ps += static_cast<double>(c.dma_busy_ps) / chip_.core.dma.queues / n;
    b.flops += c.flops * chips_;
  }
  for (const Program& p : programs) b.instructions += p.size();
  b.hbm_ps = static_cast<double>(r.hbm_busy_ps) / r.hbm_lanes;
  b.chip_runs = 1;
  b.elapsed_ps = r.end_ps;
  return b;
}

EngineBusy TrainiumPrefill::gemm_piece(const GemmShape& s) {
  // Every simulated core runs the same slice; each has its own operands in the shared HBM.
  std::vector<Program> programs;
  for (std::uint32_t c = 0; c < sim_cores_; ++c) {
    GemmPlan plan;
    plan.min_dma_piece = cfg_.gemm_dma_piece;
    plan.c_buffers = 8;  // stores of whole C tiles each take one queue: a deeper store pipeline
    plan.hbm_base = base(c);
    programs.push_back(lower_gemm(chip_, s, plan));
  }
  return run_programs(programs);
}

std::uint64_t TrainiumPrefill::efficient_dma_piece() const {
  // When the queues cannot outrun the HBM at all (Trainium3: "DMA 4.9 TB/s" against 4.9
  // TB/s of HBM), no piece is large enough: pieces as large as allowed, gemm_dma_piece.
  const std::uint64_t efficient = smallest_efficient_dma_piece(chip_);
  return efficient == 0 ? cfg_.gemm_dma_piece : std::max<std::uint64_t>(efficient, 4096);
}

EngineBusy TrainiumPrefill::streamed_gemm(std::uint64_t out_features, std::uint64_t k, std::uint64_t tokens, DType t,
                                          std::uint64_t count) {
  // Weight pieces: the smallest that keeps the queues ahead of the HBM (the earlier the
  // matmuls can start, the shorter the tail after the last byte), at most gemm_dma_piece.
  const std::uint64_t efficient = smallest_efficient_dma_piece(chip_);
  const std::uint64_t piece = efficient == 0 ? cfg_.gemm_dma_piece : std::min(cfg_.gemm_dma_piece, efficient);
  std::vector<Program> programs;
  for (std::uint32_t c = 0; c < sim_cores_; ++c) {
    programs.push_back(streamed_gemm_program(chip_, out_features, k, tokens, t, piece, base(c), count));
  }
  return run_programs(programs);
}

bool TrainiumPrefill::streams_weights(std::uint64_t k, std::uint64_t tokens, DType t) const {
  const NeuronCoreConfig& nc = chip_.core;
  const std::uint64_t e = bytes_of(t);
  return tokens <= nc.tensor.max_moving && 2 * k * tokens * e + c_ring_bytes(nc, tokens, e) <= nc.sbuf.bytes / 2;
}

EngineBusy TrainiumPrefill::run_gemm_op(const Operator& op) {
  const std::uint64_t p = cfg_.physical_cores();
  const bool row = row_parallel(op);
  const std::uint64_t k = row ? ceil_div(op.k, p) : op.k;
  const std::uint64_t n = row ? op.n : ceil_div(op.n, p);
  const DType t = chip_dtype(op.weight_dtype);
  EngineBusy total;
  if (op.m == 0 || op.count == 0) return total;
  const std::uint64_t grain = cfg_.token_grain;
  // Matmul flops of `tokens` rows of one instance on every core of the group (the
  // kernels' matmuls cover the core's k x n slice exactly).
  auto flops_of = [&](std::uint64_t tokens) { return 2 * tokens * k * n * sim_cores_ * chips_; };
  // Key prefix of the pieces of this GEMM's shape (everything but the token count).
  auto shape_key = [&](std::string_view kind) {
    std::string key;
    KeyWriter w{key};
    w << kind << '|' << std::uint64_t{row} << '|' << k << ',' << n << ',' << static_cast<std::uint64_t>(t) << ','
      << op.count << ',' << op.n << ',' << static_cast<std::uint64_t>(op.activation_dtype) << '|';
    return key;
  };
  // Few token rows (a decode step, a prefill's LM head): the weights are the traffic, so
  // they are streamed once in large DMA instructions over all queues, the tokens being
  // the moving side of one pass. Needs X^T and the C store buffers in half of SBUF (the
  // weight ring takes the other half); otherwise the tiled GEMM below.
  auto streamed_fits = [&](std::uint64_t m) { return streams_weights(k, m, t); };
  // A row-parallel GEMM's partial sums are all-reduced (per block of tokens, or once for
  // all instances of the streamed kernel).
  const std::uint64_t row_bytes = op.n * workloads::bytes_per_value(op.activation_dtype);
  if (streamed_fits(op.m)) {
    // `count` instances (experts) are one kernel: the fixed costs of a GEMM are paid once,
    // and the partial sums of a row-parallel one are all-reduced once, for all instances'
    // rows together (the expert outputs of a token are then combined).
    auto streamed_at = [&](std::uint64_t m) {
      EngineBusy b = streamed_gemm(n, k, m, t, op.count);
      if (row) b += all_reduce(m * op.count * row_bytes);
      return b;
    };
    const SampleInterval s = token_sample_interval(op.m, grain);
    // Sampled only when both points run the same kernel as M (from g tokens on).
    if (grain == 0 || s.exact() || op.m < grain || !streamed_fits(s.hi)) return streamed_at(op.m);
    const std::string key = shape_key("streamed_gemm");
    total = EngineBusy::interpolated(cached(key + std::to_string(s.lo), [&] { return streamed_at(s.lo); }),
                                     cached(key + std::to_string(s.hi), [&] { return streamed_at(s.hi); }),
                                     s.weight(op.m));
    total.flops = flops_of(op.m) * op.count;
    return total;
  }
  // Column-parallel (narrow N slice, deep K): weights stationary, C^T[n x tokens] =
  // W^T[n x k] X^T[k x tokens], tokens streaming. Row-parallel (shallow K slice, full N):
  // tokens stationary, the weight rows streaming. Tokens in blocks of gemm_token_block.
  const std::uint64_t block = cfg_.gemm_token_block;
  const std::uint64_t full = op.m / block;
  const std::uint64_t rest = op.m % block;
  auto shape = [&](std::uint64_t tokens) { return row ? GemmShape{tokens, k, n, t} : GemmShape{n, k, tokens, t}; };
  auto piece = [&](std::uint64_t tokens) {
    EngineBusy b = gemm_piece(shape(tokens));
    if (row) b += all_reduce(tokens * row_bytes);
    return b;
  };
  EngineBusy one;
  if (grain == 0) {
    if (full > 0) one += piece(block).scaled(full);
    if (rest > 0) one += piece(rest);
  } else {
    // Pieces through the reuse cache by token count; the remainder interpolated between
    // its sample points (below g tokens, or at a sample point, simulated as it is).
    const std::string key = shape_key("gemm_piece");
    auto piece_at = [&](std::uint64_t tokens) {
      return cached(key + std::to_string(tokens), [&] { return piece(tokens); });
    };
    if (full > 0) one += piece_at(block).scaled(full);
    if (rest > 0) {
      const SampleInterval s = token_sample_interval(rest, grain);
      if (s.exact() || rest < grain) {
        one += piece_at(rest);
      } else {
        EngineBusy r = EngineBusy::interpolated(piece_at(s.lo), piece_at(std::min(s.hi, block)),
                                                SampleInterval{s.lo, std::min(s.hi, block)}.weight(rest));
        r.flops = flops_of(rest);
        one += r;
      }
    }
  }
  total += one.scaled(op.count);
  total.instructions = one.instructions;
  total.chip_runs = one.chip_runs;
  return total;
}

namespace {

// Pieces per load of an in-chip reduce-scatter or all-gather of `share` bytes per core
// over c cores: each of a core's c - 1 loads takes enough queues that together they cover
// the core's queues, in pieces of at least `efficient` bytes when the share is large (a
// decode step's share is ~100 KiB: 4 KiB pieces would spend 3/4 of the time on
// instruction costs).
std::uint32_t in_chip_pieces_per_load(const ChipConfig& chip, std::uint32_t c, std::uint64_t share,
                                      std::uint64_t efficient) {
  const std::uint32_t queues = chip.core.dma.queues;
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(std::max<std::uint64_t>(queues / (c - 1), ceil_div(share, efficient)), 1, queues));
}

}  // namespace

EngineBusy TrainiumPrefill::in_chip_reduce_scatter(std::uint64_t bytes) {
  // Each core reads its share of the other cores' partial sums, adds them (vector, fp32
  // accumulate of bf16 values), stores its share.
  const std::uint32_t c = sim_cores_;
  if (c <= 1) return {};
  const std::uint64_t share = ceil_div(bytes, c);
  const std::uint32_t per_load = in_chip_pieces_per_load(chip_, c, share, efficient_dma_piece());
  std::vector<Program> rs(c);
  for (std::uint32_t i = 0; i < c; ++i) {
    DmaEmitter dma{rs[i], chip_.core.dma.queues, 0, base(i), chip_.hbm.capacity().bytes};
    std::vector<Program::Id> loads;
    for (std::uint32_t j = 0; j + 1 < c; ++j) {
      const auto l = dma.transfer(false, share, {}, per_load);
      const Program::Id add = rs[i].elementwise(Engine::kVector, share / 2, DType::kBf16);
      depend_all(rs[i], add, l);
      loads.push_back(add);
    }
    dma.transfer(true, share, loads);
  }
  return run_programs(rs);
}

EngineBusy TrainiumPrefill::in_chip_all_gather(std::uint64_t bytes) {
  // Each core loads the c - 1 other cores' shares.
  const std::uint32_t c = sim_cores_;
  if (c <= 1) return {};
  const std::uint64_t share = ceil_div(bytes, c);
  const std::uint32_t per_load = in_chip_pieces_per_load(chip_, c, share, efficient_dma_piece());
  std::vector<Program> ag(c);
  for (std::uint32_t i = 0; i < c; ++i) {
    DmaEmitter gather{ag[i], chip_.core.dma.queues, 0, base(i), chip_.hbm.capacity().bytes};
    for (std::uint32_t j = 0; j + 1 < c; ++j) gather.transfer(false, share, {}, per_load);
  }
  return run_programs(ag);
}

EngineBusy TrainiumPrefill::link_collective(Collective c, std::uint64_t bytes) {
  EngineBusy b;
  if (chips_ <= 1) return b;
  const CollectiveResult& r = group_collective(c, bytes);
  b.elapsed_ps = r.time_ps;
  b.collective_ps = static_cast<double>(r.time_ps);
  b.algorithm_ps[static_cast<std::size_t>(r.algorithm)] = static_cast<double>(r.time_ps);
  b.collective_floor_ps = collective_floor_seconds(group_, c, bytes) * 1e12;
  b.link_ps = r.link_utilization * static_cast<double>(group_.chips() * group_.links_per_chip()) *
              static_cast<double>(r.time_ps);
  return b;
}

EngineBusy TrainiumPrefill::all_reduce(std::uint64_t bytes) {
  // Reduce-scatter inside the chip through HBM, all-reduce between the chips on the
  // torus, all-gather inside the chip, one after another.
  EngineBusy b;
  if (sim_cores_ <= 1) return b;
  b += in_chip_reduce_scatter(bytes);
  b += link_collective(Collective::kAllReduce, bytes);
  b += in_chip_all_gather(bytes);
  return b;
}

std::uint64_t overlap_makespan(const std::vector<OverlapChunk>& chunks) {
  constexpr std::size_t kStages = 6;
  // The resource of each stage: 0 the chip, 1 the NeuronLink.
  constexpr std::array<std::size_t, kStages> resource{0, 0, 1, 0, 1, 0};
  const auto duration = [](const OverlapChunk& c, std::size_t stage) {
    switch (stage) {
      case 0: return c.gemm_ps;
      case 1: return c.rs_chip_ps;
      case 2: return c.rs_link_ps;
      case 3: return c.shard_ps;
      case 4: return c.ag_link_ps;
      default: return c.ag_chip_ps;
    }
  };
  std::vector<std::size_t> next(chunks.size(), 0);   // each chunk's next stage
  std::vector<std::uint64_t> ready(chunks.size(), 0);  // the end of its previous stage
  std::array<std::uint64_t, 2> free{0, 0};
  std::uint64_t end = 0;
  for (std::size_t left = chunks.size() * kStages; left > 0; --left) {
    // The stage that can start first (ties: the lower chunk); every other stage waiting
    // for the same resource starts no earlier, so committing it first is exact.
    std::size_t best = chunks.size();
    std::uint64_t best_start = 0;
    for (std::size_t k = 0; k < chunks.size(); ++k) {
      if (next[k] == kStages) continue;
      const std::uint64_t start = std::max(ready[k], free[resource[next[k]]]);
      if (best == chunks.size() || start < best_start) {
        best = k;
        best_start = start;
      }
    }
    const std::size_t stage = next[best]++;
    const std::uint64_t stop = best_start + duration(chunks[best], stage);
    free[resource[stage]] = stop;
    ready[best] = stop;
    end = std::max(end, stop);
  }
  return end;
}

std::ptrdiff_t TrainiumPrefill::overlap_segment(const std::vector<Operator>& ops, std::size_t from) const {
  const Operator& op = ops[from];
  if (!cfg_.overlap || chips_ <= 1 || sim_cores_ <= 1 || op.kind != OpKind::gemm || !row_parallel(op) ||
      op.count != 1 || op.m == 0) {
    return -1;
  }
  const std::uint64_t chunk = std::min(cfg_.overlap_chunk_tokens, cfg_.gemm_token_block);
  if (ceil_div(op.m, chunk) < 2) return -1;
  // The residual adds and norms right after it, over the same tokens (per-token counts):
  // they run on each chunk's shard between its reduce-scatter and its all-gather.
  const std::uint64_t m = op.m;
  std::size_t j = from + 1;
  while (j < ops.size() && (ops[j].kind == OpKind::residual_add || ops[j].kind == OpKind::norm) &&
         ops[j].layer == op.layer && ops[j].elements > 0 && ops[j].elements % m == 0 && ops[j].vector_ops % m == 0 &&
         ops[j].input_bytes % m == 0 && ops[j].output_bytes % m == 0) {
    ++j;
  }
  return static_cast<std::ptrdiff_t>(j - from - 1);
}

std::vector<OverlapChunk> TrainiumPrefill::overlap_pipeline(const std::vector<Operator>& ops, std::size_t from) {
  std::vector<OverlapChunk> pipeline;
  const std::ptrdiff_t shard = overlap_segment(ops, from);
  if (shard >= 0) run_overlapped(ops, from, static_cast<std::size_t>(shard), &pipeline);
  return pipeline;
}

EngineBusy TrainiumPrefill::run_overlapped(const std::vector<Operator>& ops, std::size_t from, std::size_t shard,
                                           std::vector<OverlapChunk>* chunks_out) {
  const Operator& op = ops[from];
  const std::uint64_t k = ceil_div(op.k, cfg_.physical_cores());
  const std::uint64_t n = op.n;
  const DType t = chip_dtype(op.weight_dtype);
  const std::uint64_t row_bytes = op.n * workloads::bytes_per_value(op.activation_dtype);
  const std::uint64_t m = op.m;
  const std::uint64_t block = cfg_.gemm_token_block;
  const std::uint64_t chunks = ceil_div(m, std::min(cfg_.overlap_chunk_tokens, block));
  // Chunks of equal size (the first m mod chunks one row longer).
  const std::uint64_t q = m / chunks, longer = m % chunks;
  // The key of this segment's shape: everything but the token count.
  std::string key;
  {
    KeyWriter w{key};
    w << std::string_view("overlap|") << k << ',' << n << ',' << static_cast<std::uint64_t>(t) << ','
      << static_cast<std::uint64_t>(op.activation_dtype) << '|';
    for (std::size_t i = 1; i <= shard; ++i) {
      const Operator& e = ops[from + i];
      w << std::string_view(workloads::to_string(e.kind)) << ',' << e.elements / m << ',' << e.vector_ops / m << ','
        << e.input_bytes / m << ',' << e.output_bytes / m << ',' << e.weight_bytes << ';';
    }
  }
  constexpr std::size_t kParts = 6;
  using Parts = std::array<EngineBusy, kParts>;  // the stages of OverlapChunk, in order
  auto parts_at = [&](std::uint64_t tokens) {
    Parts p;
    const std::uint64_t bytes = tokens * row_bytes;
    const std::string at = key + std::to_string(tokens) + '|';
    // The kernel a GEMM of this many rows runs as (run_gemm_op), without its all-reduce.
    p[0] = cached(at + "gemm", [&] {
      return streams_weights(k, tokens, t) ? streamed_gemm(n, k, tokens, t, 1) : gemm_piece(GemmShape{tokens, k, n, t});
    });
    p[1] = cached(at + "rs_chip", [&] { return in_chip_reduce_scatter(bytes); });
    p[2] = link_collective(Collective::kReduceScatter, bytes);
    p[3] = cached(at + "shard", [&] {
      EngineBusy b;
      for (std::size_t i = 1; i <= shard; ++i) {
        Operator x = ops[from + i];
        x.elements = x.elements / m * tokens;
        x.vector_ops = x.vector_ops / m * tokens;
        x.input_bytes = x.input_bytes / m * tokens;
        x.output_bytes = x.output_bytes / m * tokens;
        b += run_per_token(x);
      }
      return b;
    });
    p[4] = link_collective(Collective::kAllGather, bytes);
    p[5] = cached(at + "ag_chip", [&] { return in_chip_all_gather(bytes); });
    return p;
  };
  // A chunk's parts, interpolated between the sample points around its size (token_grain).
  auto parts_of = [&](std::uint64_t tokens) {
    const SampleInterval s = token_sample_interval(tokens, cfg_.token_grain);
    if (cfg_.token_grain == 0 || s.exact() || tokens < cfg_.token_grain) return parts_at(tokens);
    const SampleInterval clipped{s.lo, std::min(s.hi, block)};
    const Parts lo = parts_at(clipped.lo), hi = parts_at(clipped.hi);
    Parts p;
    for (std::size_t i = 0; i < kParts; ++i) p[i] = EngineBusy::interpolated(lo[i], hi[i], clipped.weight(tokens));
    return p;
  };
  auto stages = [](const Parts& p) {
    return OverlapChunk{p[0].elapsed_ps, p[1].elapsed_ps, p[2].elapsed_ps,
                        p[3].elapsed_ps, p[4].elapsed_ps, p[5].elapsed_ps};
  };
  EngineBusy total;
  std::vector<OverlapChunk> pipeline;
  auto add_chunks = [&](std::uint64_t tokens, std::uint64_t count) {
    if (count == 0) return;
    const Parts p = parts_of(tokens);
    for (const EngineBusy& b : p) {
      total += b.scaled(count);  // instructions and chip runs once: what was simulated
    }
    pipeline.insert(pipeline.end(), count, stages(p));
  };
  add_chunks(q + 1, longer);
  add_chunks(q, chunks - longer);
  // Busy times are the parts' sums; the time is the pipeline's.
  total.elapsed_ps = overlap_makespan(pipeline);
  total.flops = 2 * m * k * n * sim_cores_ * chips_;
  if (chunks_out != nullptr) *chunks_out = std::move(pipeline);
  return total;
}

EngineBusy TrainiumPrefill::run_attention(const Operator& op) {
  const NeuronCoreConfig& nc = chip_.core;
  const std::uint32_t tile = nc.tensor.columns;  // queries per tile (stationary side)
  const std::uint32_t kb = cfg_.attention_key_block;
  const std::uint32_t rows = nc.tensor.rows;
  const std::uint64_t e = bytes_of(DType::kBf16);
  const std::uint64_t q_tiles = ceil_div(op.query_len, tile);
  const std::uint64_t keys_total = op.context_offset + op.query_len;  // absolute positions
  const std::uint64_t key_blocks = ceil_div(keys_total, kb);
  const std::uint32_t heads_per_kv = std::max<std::uint32_t>(1, op.q_heads / std::max<std::uint32_t>(op.kv_heads, 1));
  const std::uint32_t dk = op.qk_head_dim, dv = op.v_head_dim;
  const std::uint64_t kv_head_bytes = keys_total * (dk + dv) * e;
  // K and V of a head stay in (half of) SBUF for all its query tiles when they fit;
  // otherwise they are streamed, flash-attention style: each query tile loads the key
  // blocks it sees into a ring of slots in that half, a slot reused once the P V
  // matmuls of the block it held are done, so a long context reads K and V once per
  // query tile instead of once.
  const bool stream = kv_head_bytes > nc.sbuf.bytes / 2;
  const std::uint64_t block_bytes = std::uint64_t{kb} * (dk + dv) * e;
  const std::uint64_t ring = std::max<std::uint64_t>(2, (nc.sbuf.bytes / 2) / block_bytes);
  if (stream && 2 * block_bytes > nc.sbuf.bytes / 2) {
    throw CapacityError("SBUF capacity exceeded: attention streams two key blocks of " + std::to_string(kb) +
                        " keys (" + binary(2 * block_bytes) + ") but half of SBUF is " + binary(nc.sbuf.bytes / 2));
  }
  std::vector<Program> programs(sim_cores_);
  for (std::uint32_t core = 0; core < sim_cores_; ++core) {
    Program& prog = programs[core];
    DmaEmitter dma{prog, nc.dma.queues, 0, base(core), chip_.hbm.capacity().bytes};
    const std::uint32_t logical = core / cfg_.lnc;
    const std::uint32_t half = core % cfg_.lnc;
    // K and V blocks of each kv head this core needs, loaded once.
    std::map<std::uint32_t, std::vector<std::pair<std::vector<Program::Id>, std::vector<Program::Id>>>> kv;
    BufferRing score_banks(2);
    // Streaming: the ring of K/V slots (read by the P V matmuls), and the slot each of
    // the current tile's blocks went to.
    BufferRing slots(stream ? ring : 1);
    std::vector<std::size_t> stream_slot;
    for (std::uint32_t h = logical; h < op.q_heads; h += cfg_.tp_degree) {
      const std::uint32_t g = h / heads_per_kv;
      auto& blocks = kv[g];
      if (blocks.empty() && !stream) {
        for (std::uint64_t j = 0; j < key_blocks; ++j) {
          const std::uint64_t n_keys = std::min<std::uint64_t>(kb, keys_total - j * kb);
          auto kl = dma.transfer(false, n_keys * dk * e, {}, 2);
          auto vl = dma.transfer(false, n_keys * dv * e, {}, 2);
          blocks.emplace_back(std::move(kl), std::move(vl));
        }
      }
      for (std::uint64_t t = half; t < q_tiles; t += cfg_.lnc) {
        const std::uint64_t q_rows = std::min<std::uint64_t>(tile, op.query_len - t * tile);
        const std::uint64_t first = op.context_offset + t * tile;  // first query's position
        const std::uint64_t last = first + q_rows - 1;
        // Keys the tile's queries see: from the first query's window edge to the last query.
        const std::uint64_t lo = op.window == 0 || first + 1 <= op.window ? 0 : first + 1 - op.window;
        const std::uint64_t hi_lo = op.window == 0 || last + 1 <= op.window ? 0 : last + 1 - op.window;
        const std::uint64_t j0 = lo / kb, j1 = last / kb;  // blocks above the diagonal skipped
        const auto q = dma.transfer(false, q_rows * dk * e, {}, 2);
        const auto m = static_cast<std::uint32_t>(q_rows);
        if (stream) {
          // This tile's key blocks, each loaded into the next ring slot once the P V
          // matmuls of the block the slot held before are done.
          blocks.assign(key_blocks, {});
          stream_slot.assign(key_blocks, 0);
        }
        auto load = [&](std::uint64_t j) {
          if (!stream || !blocks[j].first.empty()) return;
          const std::uint64_t n_keys = std::min<std::uint64_t>(kb, keys_total - j * kb);
          const std::size_t slot = slots.next();
          const std::vector<Program::Id> deps = slots.wait_for(slot);
          blocks[j].first = dma.transfer(false, n_keys * dk * e, deps, 2);
          blocks[j].second = dma.transfer(false, n_keys * dv * e, deps, 2);
          stream_slot[j] = slot;
        };
        auto qk = [&](std::uint64_t j) {
          load(j);
          const auto n_keys = static_cast<std::uint32_t>(std::min<std::uint64_t>(kb, keys_total - j * kb));
          return qk_scores(prog, score_banks, dk, rows, m, n_keys, q, blocks[j].first);
        };
        auto cur = qk(j0);
        Program::Id last_pv = 0;
        for (std::uint64_t j = j0; j <= j1; ++j) {
          const auto next = j < j1 ? qk(j + 1) : cur;  // QK^T of the next block before PV of this one
          const std::uint64_t n_keys = std::min<std::uint64_t>(kb, keys_total - j * kb);
          const std::uint64_t scores = q_rows * n_keys;
          // Blocks crossing the diagonal (or the window's lower edge) are masked.
          const bool masked = (j + 1) * kb > first + 1 || j * kb < hi_lo;
          const Program::Id vec = prog.elementwise(Engine::kVector, scores * (masked ? 3 : 2), DType::kFp32,
                                                   {cur.first});
          const Program::Id ex = prog.elementwise(Engine::kScalar, scores, DType::kFp32, {vec});
          score_banks.read_by(cur.second, ex);
          for (std::uint64_t k0 = 0; k0 < n_keys; k0 += rows) {
            last_pv = prog.matmul(static_cast<std::uint32_t>(std::min<std::uint64_t>(rows, n_keys - k0)), m, dv,
                                  DType::kBf16, {ex});
            depend_all(prog, last_pv, blocks[j].second);
          }
          if (stream) slots.read_by(stream_slot[j], last_pv);
          cur = next;
        }
        const Program::Id norm = prog.elementwise(Engine::kVector, q_rows * dv, DType::kFp32, {last_pv});
        dma.transfer(true, q_rows * dv * e, {norm}, 2);
      }
    }
    // A core with no head still runs (idle) so that the chip's cores stay aligned.
  }
  return run_programs(programs);
}

EngineBusy TrainiumPrefill::run_attention_sampled(const Operator& op) {
  const std::uint64_t grain = cfg_.token_grain;
  // Chunk c: sampled from g queries on (below, as it is); offset o: sampled from 0.
  // Sliding-window attention is simulated as it is (its key range changes regime with the
  // offset).
  SampleInterval c = token_sample_interval(op.query_len, grain);
  if (op.query_len < grain) c = {op.query_len, op.query_len};
  const SampleInterval o = token_sample_interval(op.context_offset, grain);
  const NeuronCoreConfig& nc = chip_.core;
  const std::uint64_t hi_head_bytes = (o.hi + c.hi) * (std::uint64_t{op.qk_head_dim} + op.v_head_dim) *
                                      bytes_of(DType::kBf16);
  if (grain == 0 || op.window != 0 || (c.exact() && o.exact()) || hi_head_bytes > nc.sbuf.bytes / 2) {
    return run_attention(op);
  }
  auto corner = [&](std::uint64_t queries, std::uint64_t offset) {
    std::string key;
    KeyWriter w{key};
    w << std::string_view("attention_sample|") << op.q_heads << ',' << op.kv_heads << ',' << op.qk_head_dim << ','
      << op.v_head_dim << '|' << queries << ',' << offset;
    return cached(key, [&] {
      Operator s = op;
      s.query_len = queries;
      s.context_offset = offset;
      s.kv_len = offset + queries;
      return run_attention(s);
    });
  };
  const double wc = c.weight(op.query_len);
  auto along_c = [&](std::uint64_t offset) {
    if (c.exact()) return corner(c.lo, offset);
    return EngineBusy::interpolated(corner(c.lo, offset), corner(c.hi, offset), wc);
  };
  EngineBusy b = o.exact() ? along_c(o.lo)
                           : EngineBusy::interpolated(along_c(o.lo), along_c(o.hi), o.weight(op.context_offset));
  b.flops = attention_matmul_flops(op, cfg_.tp_degree, cfg_.lnc, chip_.cores, nc.tensor.columns,
                                   cfg_.attention_key_block) *
            chips_;
  return b;
}

bool is_decode_attention(const Operator& op) { return op.kind == OpKind::attention && op.query_len == 1; }

namespace {

// KV bytes of one key of one kv head: what the operator reads from the cache (MLA decode
// reads one latent per key for both K and V), or K and V of the head dims when the
// operator names none.
std::uint64_t kv_bytes_per_key(const Operator& op) {
  const std::uint64_t keys = std::max<std::uint64_t>(op.kv_len, 1) * std::max<std::uint32_t>(op.kv_heads, 1);
  if (op.kv_read_bytes >= keys) return op.kv_read_bytes / keys;
  return std::uint64_t{op.qk_head_dim + op.v_head_dim} * bytes_of(chip_dtype(op.weight_dtype));
}

}  // namespace

namespace {

// `b` joins the decode attention batch that `a` starts: same layer and shape.
// Everything of two operators but their layer is equal: the two decide the same time
// (their operator_key / decode_attention_key would be equal).
bool same_but_layer(const Operator& a, const Operator& b) {
  static_assert(sizeof(Operator) == 200, "an Operator field was added or removed: compare it here");
  return a.kind == b.kind && a.count == b.count && a.m == b.m && a.k == b.k && a.n == b.n &&
         a.sequence == b.sequence && a.q_heads == b.q_heads && a.kv_heads == b.kv_heads &&
         a.qk_head_dim == b.qk_head_dim && a.v_head_dim == b.v_head_dim && a.query_len == b.query_len &&
         a.kv_len == b.kv_len && a.context_offset == b.context_offset && a.window == b.window &&
         a.sinks == b.sinks && a.elements == b.elements && a.weight_dtype == b.weight_dtype &&
         a.activation_dtype == b.activation_dtype && a.flops == b.flops && a.vector_ops == b.vector_ops &&
         a.weight_bytes == b.weight_bytes && a.input_bytes == b.input_bytes && a.output_bytes == b.output_bytes &&
         a.kv_read_bytes == b.kv_read_bytes && a.kv_write_bytes == b.kv_write_bytes && a.name == b.name;
}

bool same_decode_batch(const Operator& a, const Operator& b) {
  return is_decode_attention(b) && b.layer == a.layer && b.name == a.name && b.q_heads == a.q_heads &&
         b.kv_heads == a.kv_heads && b.qk_head_dim == a.qk_head_dim && b.v_head_dim == a.v_head_dim &&
         b.weight_dtype == a.weight_dtype;
}

}  // namespace

std::string decode_attention_key(const std::vector<Operator>& sequences) {
  if (sequences.empty()) return {};
  const Operator& a = sequences.front();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> keys;
  for (const Operator& op : sequences) keys.emplace_back(op.kv_len, kv_bytes_per_key(op));
  std::sort(keys.begin(), keys.end());
  std::string s;
  s.reserve(64 + 12 * keys.size());
  KeyWriter k{s};
  k << std::string_view("decode_attention|") << a.name << '|' << a.q_heads << ',' << a.kv_heads << ','
    << a.qk_head_dim << ',' << a.v_head_dim << ',' << static_cast<std::uint64_t>(a.weight_dtype) << '|';
  for (const auto& [n, b] : keys) k << n << ':' << b << ',';
  return s;
}

EngineBusy TrainiumPrefill::run_decode_attention(const std::vector<Operator>& sequences) {
  const NeuronCoreConfig& nc = chip_.core;
  const Operator& a = sequences.front();
  const std::uint32_t kb = cfg_.attention_key_block;
  const std::uint32_t rows = nc.tensor.rows;
  const std::uint32_t dk = a.qk_head_dim, dv = a.v_head_dim;
  const std::uint32_t kv_heads = std::max<std::uint32_t>(a.kv_heads, 1);
  const std::uint32_t heads_per_kv = std::max<std::uint32_t>(1, a.q_heads / kv_heads);
  const std::uint64_t e = bytes_of(DType::kBf16);  // queries and outputs
  const std::uint64_t kv_e = bytes_of(chip_dtype(a.weight_dtype));  // the cache's type
  // The query heads of this chip (head h on logical core h mod tp, as for prefill),
  // counted per kv head: the GQA rows that share one K and V stream.
  const std::uint32_t chip_logical = std::max<std::uint32_t>(1, sim_cores_ / cfg_.lnc);
  std::map<std::uint32_t, std::uint32_t> group_rows;
  for (std::uint32_t h = 0; h < a.q_heads; ++h) {
    if (h % cfg_.tp_degree < chip_logical) ++group_rows[std::min(h / heads_per_kv, kv_heads - 1)];
  }
  struct Pair {
    std::uint64_t keys;
    std::uint64_t bytes_per_key;
    std::uint32_t q_rows;
  };
  std::vector<Pair> pairs;
  for (const Operator& op : sequences) {
    for (const auto& [g, n] : group_rows) {
      // More query rows than the array's columns (MLA: every head shares one latent) are
      // split into several pairs, each streaming the K/V again.
      for (std::uint32_t r0 = 0; r0 < n; r0 += nc.tensor.columns) {
        pairs.push_back(Pair{std::max<std::uint64_t>(op.kv_len, 1), kv_bytes_per_key(op),
                             std::min(nc.tensor.columns, n - r0)});
      }
    }
  }
  // Longest first, each to the core with the fewest KV bytes so far (ties: lowest core):
  // depends only on the multiset of lengths.
  std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& x, const Pair& y) {
    return x.keys * x.bytes_per_key != y.keys * y.bytes_per_key ? x.keys * x.bytes_per_key > y.keys * y.bytes_per_key
                                                                 : x.q_rows > y.q_rows;
  });
  std::vector<std::vector<Pair>> dealt(sim_cores_);
  std::vector<std::uint64_t> load(sim_cores_, 0);
  for (const Pair& pr : pairs) {
    const auto c = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    dealt[c].push_back(pr);
    load[c] += pr.keys * pr.bytes_per_key;
  }
  // K and V stream through a ring of key-block slots in half of SBUF.
  const std::uint64_t block_bytes = std::uint64_t{kb} * pairs.front().bytes_per_key;
  for (const Pair& pr : pairs) {
    if (std::uint64_t{kb} * pr.bytes_per_key > nc.sbuf.bytes / 4) {
      throw CapacityError("SBUF capacity exceeded: a decode attention key block of " + std::to_string(kb) +
                          " keys needs " + binary(kb * pr.bytes_per_key) + " but a quarter of SBUF is " +
                          binary(nc.sbuf.bytes / 4));
    }
  }
  const std::uint64_t slots = std::max<std::uint64_t>(2, nc.sbuf.bytes / 2 / std::max<std::uint64_t>(block_bytes, 1));
  // PSUM: two banks for the scores (QK^T of the next block while this one's softmax runs),
  // the others for the outputs of successive pairs.
  const std::uint32_t out_banks = std::max<std::uint32_t>(1, nc.psum_banks - 2);
  const std::uint64_t efficient = efficient_dma_piece();
  std::vector<Program> programs(sim_cores_);
  for (std::uint32_t core = 0; core < sim_cores_; ++core) {
    Program& prog = programs[core];
    DmaEmitter dma{prog, nc.dma.queues, 0, base(core), chip_.hbm.capacity().bytes};
    // Split the K and V loads so that the core's loads cover all of its queues, and into
    // pieces of about smallest_efficient_dma_piece: the pieces of one round over the queues
    // arrive together, and smaller rounds let the softmax of a pair start sooner.
    std::uint64_t loads = 0;
    for (const Pair& pr : dealt[core]) loads += 2 * ceil_div(pr.keys, kb);
    const auto pieces = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
        std::max(ceil_div(nc.dma.queues, std::max<std::uint64_t>(loads, 1)), ceil_div(block_bytes / 2, efficient)), 1,
        nc.dma.queues));
    BufferRing slot_ring(slots);
    BufferRing score_banks(2);
    BufferRing out_ring(out_banks);
    // The queries of all of the core's pairs come in one load (rows of the batch's q
    // activations) and the outputs leave in one store at the end: a store waiting for a
    // pair's softmax would hold back the K/V loads queued behind it.
    std::uint64_t q_bytes = 0, out_bytes = 0;
    for (const Pair& pr : dealt[core]) {
      q_bytes += std::uint64_t{pr.q_rows} * dk * e;
      out_bytes += std::uint64_t{pr.q_rows} * dv * e;
    }
    if (dealt[core].empty()) continue;
    const auto q = dma.transfer(false, q_bytes, {}, 1);
    std::vector<Program::Id> outputs;
    for (std::size_t i = 0; i < dealt[core].size(); ++i) {
      const Pair& pr = dealt[core][i];
      const auto m = pr.q_rows;
      const std::uint64_t k_bytes = std::min<std::uint64_t>(pr.bytes_per_key, std::uint64_t{dk} * kv_e);
      const std::uint64_t v_bytes = pr.bytes_per_key - k_bytes;  // 0: V is part of the K latent (MLA)
      const std::size_t obank = i % out_banks;
      const std::uint64_t nblocks = ceil_div(pr.keys, kb);
      std::vector<std::pair<std::vector<Program::Id>, std::vector<Program::Id>>> kv(nblocks);
      std::vector<std::uint64_t> slot_of(nblocks);
      // Block j's K and V into the next ring slot, once the slot's previous block is read
      // (emitted when QK^T of block j is: the reader of a slot `slots` blocks back exists).
      auto load_block = [&](std::uint64_t j) {
        const std::uint64_t n = std::min<std::uint64_t>(kb, pr.keys - j * kb);
        const std::size_t slot = slot_ring.next();
        slot_of[j] = slot;
        const std::vector<Program::Id> deps = slot_ring.wait_for(slot);
        kv[j].first = dma.transfer(false, n * k_bytes, deps, pieces);
        kv[j].second = v_bytes == 0 ? kv[j].first : dma.transfer(false, n * v_bytes, deps, pieces);
      };
      auto qk = [&](std::uint64_t j) {
        load_block(j);
        const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kb, pr.keys - j * kb));
        return qk_scores(prog, score_banks, dk, rows, m, n, q, kv[j].first);
      };
      auto cur = qk(0);
      Program::Id last_pv = 0;
      for (std::uint64_t j = 0; j < nblocks; ++j) {
        const auto next = j + 1 < nblocks ? qk(j + 1) : cur;  // QK^T of the next block before PV of this one
        const std::uint64_t n = std::min<std::uint64_t>(kb, pr.keys - j * kb);
        const std::uint64_t scores = std::uint64_t{m} * n;
        const Program::Id vec = prog.elementwise(Engine::kVector, scores * 2, DType::kFp32, {cur.first});
        const Program::Id ex = prog.elementwise(Engine::kScalar, scores, DType::kFp32, {vec});
        score_banks.read_by(cur.second, ex);
        for (std::uint64_t k0 = 0; k0 < n; k0 += rows) {
          last_pv = prog.matmul(static_cast<std::uint32_t>(std::min<std::uint64_t>(rows, n - k0)), m, dv,
                                DType::kBf16, {ex});
          depend_all(prog, last_pv, kv[j].second);
          if (j == 0 && k0 == 0) out_ring.order_after_reader(prog, last_pv, obank);
        }
        slot_ring.read_by(slot_of[j], last_pv);
        cur = next;
      }
      const Program::Id norm = prog.elementwise(Engine::kVector, std::uint64_t{m} * dv, DType::kFp32, {last_pv});
      out_ring.read_by(obank, norm);
      outputs.push_back(norm);
    }
    dma.transfer(true, out_bytes, outputs, 1);
  }
  return run_programs(programs);
}

EngineBusy TrainiumPrefill::run_elementwise(const Operator& op) {
  const std::uint64_t p = cfg_.physical_cores();
  const std::uint64_t values = ceil_div(op.elements, p);
  if (values == 0) return {};
  const std::uint64_t passes = std::max<std::uint64_t>(1, op.vector_ops / std::max<std::uint64_t>(op.elements, 1));
  // The exp of a softmax or a SiLU runs on the scalar (activation) engine; the rest on the
  // vector engine.
  const bool scalar_pass = op.kind == OpKind::activation || op.kind == OpKind::router;
  const std::uint64_t vector_passes = scalar_pass ? passes - 1 : passes;
  const double in_per_value = static_cast<double>(op.input_bytes) / static_cast<double>(op.elements);
  const double out_per_value = static_cast<double>(op.output_bytes) / static_cast<double>(op.elements);
  const std::uint64_t tile = cfg_.elementwise_tile;
  const std::uint64_t tiles = ceil_div(values, tile);
  std::vector<Program> programs(sim_cores_);
  for (std::uint32_t core = 0; core < sim_cores_; ++core) {
    Program& prog = programs[core];
    DmaEmitter dma{prog, chip_.core.dma.queues, 0, base(core), chip_.hbm.capacity().bytes};
    std::vector<Program::Id> done_with(2, 0);  // last reader of each input buffer
    for (std::uint64_t i = 0; i < tiles; ++i) {
      const std::uint64_t v = std::min(tile, values - i * tile);
      std::vector<Program::Id> deps;
      if (i >= 2) deps.push_back(done_with[i % 2]);
      const auto in = dma.transfer(false, static_cast<std::uint64_t>(in_per_value * static_cast<double>(v)), deps);
      Program::Id last = 0;
      bool first = true;
      if (scalar_pass) {
        last = prog.elementwise(Engine::kScalar, v, DType::kBf16);
        depend_all(prog, last, in);
        first = false;
      }
      if (vector_passes > 0) {
        const Program::Id vec = prog.elementwise(Engine::kVector, v * vector_passes, DType::kBf16);
        if (first) depend_all(prog, vec, in);
        else prog.depend(vec, last);
        last = vec;
      }
      done_with[i % 2] = last;
      dma.transfer(true, static_cast<std::uint64_t>(out_per_value * static_cast<double>(v)), {last});
    }
  }
  return run_programs(programs);
}

EngineBusy TrainiumPrefill::run_embedding(const Operator& op) {
  // The table rows of the core's tokens gathered into SBUF (row gathers coalesced into
  // pieces spread over the queues), then stored as the layer input.
  const std::uint64_t out = ceil_div(op.output_bytes, cfg_.physical_cores());
  std::vector<Program> programs(sim_cores_);
  for (std::uint32_t core = 0; core < sim_cores_; ++core) {
    DmaEmitter dma{programs[core], chip_.core.dma.queues, 0, base(core), chip_.hbm.capacity().bytes};
    const auto loads = dma.transfer(false, out, {});
    dma.transfer(true, out, loads);
  }
  return run_programs(programs);
}

EngineBusy TrainiumPrefill::run_per_token(const Operator& op) {
  return op.kind == OpKind::embedding ? run_embedding(op) : run_elementwise(op);
}

EngineBusy TrainiumPrefill::run_per_token_sampled(const Operator& op) {
  // An operator over the batch's M tokens has per-token values, passes and bytes: the
  // sample operators at M_s tokens are the same operator with every count scaled by M_s / M
  // (the final norm over the logit rows, outside the layers, is not over M: exact).
  const std::uint64_t m = graph_tokens_;
  const SampleInterval s = token_sample_interval(m, cfg_.token_grain);
  const bool embedding = op.kind == OpKind::embedding;
  const bool per_token = m > 0 && (op.layer >= 0 || embedding) && op.elements % m == 0 &&
                         op.vector_ops % m == 0 && op.input_bytes % m == 0 && op.output_bytes % m == 0 &&
                         (!embedding || op.weight_bytes % m == 0);
  if (cfg_.token_grain == 0 || !per_token || s.exact() || m < cfg_.token_grain) return run_per_token(op);
  auto sample = [&](std::uint64_t tokens) {
    Operator x = op;
    x.elements = op.elements / m * tokens;
    x.vector_ops = op.vector_ops / m * tokens;
    x.input_bytes = op.input_bytes / m * tokens;
    x.output_bytes = op.output_bytes / m * tokens;
    // The embedding gathers a table row per token; a norm's weights do not grow with M.
    if (embedding) x.weight_bytes = op.weight_bytes / m * tokens;
    return cached(operator_key(x), [&] { return run_per_token(x); });
  };
  EngineBusy b = EngineBusy::interpolated(sample(s.lo), sample(s.hi), s.weight(m));
  b.flops = 0;  // no matmuls
  return b;
}

EngineBusy TrainiumPrefill::run_operator(const Operator& op) {
  const auto simulate = [&] {
    switch (op.kind) {
      case OpKind::gemm: return run_gemm_op(op);
      case OpKind::attention: return cfg_.token_grain == 0 ? run_attention(op) : run_attention_sampled(op);
      case OpKind::embedding:
      case OpKind::norm:
      case OpKind::rope:
      case OpKind::activation:
      case OpKind::router:
      case OpKind::expert_combine:
      case OpKind::residual_add: break;
    }
    return cfg_.token_grain == 0 ? run_per_token(op) : run_per_token_sampled(op);
  };
  return cached(cfg_.reuse ? operator_key(op) : std::string(), simulate, true);
}

EngineBusy TrainiumPrefill::run_decode_attention_cached(const std::vector<Operator>& sequences) {
  return cached(cfg_.reuse ? decode_attention_key(sequences) : std::string(),
                [&] { return run_decode_attention(sequences); }, true);
}

PrefillResult TrainiumPrefill::run(const workloads::OperatorGraph& g, std::uint64_t model_weight_bytes) {
  check_capacity(g, model_weight_bytes);
  PrefillResult r;
  r.physical_cores = cfg_.physical_cores();
  r.chips = chips_;
  r.links = chips_ > 1 ? group_.chips() * group_.links_per_chip() : 0;
  reused_operators_ = 0;
  graph_tokens_ = 0;
  for (const workloads::Sequence& q : g.sequences) graph_tokens_ += q.new_tokens;
  // A runtime part of the timeline (before or after the layers), when it has operators.
  const auto add_runtime = [&r](LayerTime part) {
    if (part.operators.empty()) return;
    for (const OperatorTime& ot : part.operators) r.busy += ot.busy;
    r.total_ps = part.end_ps;
    r.layers.push_back(std::move(part));
  };
  if (cfg_.runtime) add_runtime(runtime_before(0));
  std::size_t i = 0;
  std::size_t prev_i = 0, prev_j = 0;  // the previous part's operators
  while (i < g.ops.size()) {
    // One part of the timeline: a decoder layer, or a run of operators outside the layers.
    const std::int32_t layer = g.ops[i].layer;
    std::size_t j = i;
    while (j < g.ops.size() && g.ops[j].layer == layer) ++j;
    LayerTime lt;
    lt.layer = layer;
    lt.start_ps = r.total_ps;
    std::string key;
    EngineBusy part;
    bool cached = false;
    // A layer whose operators equal the previous layer's but for their layer index (most
    // layers of a dense model): its key is the previous layer's, which is in the cache
    // now, so take the previous layer's times without building the key.
    if (cfg_.reuse && layer >= 0 && !r.layers.empty() && r.layers.back().layer >= 0 && j - i == prev_j - prev_i &&
        std::equal(g.ops.begin() + static_cast<std::ptrdiff_t>(i), g.ops.begin() + static_cast<std::ptrdiff_t>(j),
                   g.ops.begin() + static_cast<std::ptrdiff_t>(prev_i), same_but_layer)) {
      lt.operators = r.layers.back().operators;
      for (const OperatorTime& ot : lt.operators) part += ot.busy;
      part.instructions = 0;
      part.chip_runs = 0;
      cached = true;
      ++r.reused_layers;
    } else if (cfg_.reuse && layer >= 0) {
      // A run of decode attentions enters the key as its batch key (sorted lengths): a
      // layer whose sequences are a permutation of an earlier one's is the same layer.
      for (std::size_t o = i; o < j;) {
        std::size_t e = o + 1;
        if (is_decode_attention(g.ops[o])) {
          while (e < j && same_decode_batch(g.ops[o], g.ops[e])) ++e;
          key += decode_attention_key({g.ops.begin() + static_cast<std::ptrdiff_t>(o),
                                       g.ops.begin() + static_cast<std::ptrdiff_t>(e)});
        } else {
          key += operator_key(g.ops[o]);
        }
        key += ';';
        o = e;
      }
      if (auto it = layer_cache_.find(key); it != layer_cache_.end()) {
        for (const OperatorTime& ot : it->second) part += ot.busy;
        part.instructions = 0;
        part.chip_runs = 0;
        lt.operators = it->second;
        cached = true;
        ++r.reused_layers;
      }
    }
    if (!cached) {
      const std::vector<Operator> ops =
          cfg_.fuse_projections ? workloads::fuse_projections(g.ops, i, j)
                                : std::vector<Operator>(g.ops.begin() + static_cast<std::ptrdiff_t>(i),
                                                        g.ops.begin() + static_cast<std::ptrdiff_t>(j));
      for (std::size_t o = 0; o < ops.size();) {
        const Operator& op = ops[o];
        if (is_decode_attention(op)) {
          // The layer's consecutive decode attentions of the same shape: one kernel.
          std::size_t e = o + 1;
          while (e < ops.size() && same_decode_batch(op, ops[e])) ++e;
          const std::vector<Operator> batch(ops.begin() + static_cast<std::ptrdiff_t>(o),
                                            ops.begin() + static_cast<std::ptrdiff_t>(e));
          const EngineBusy b = run_decode_attention_cached(batch);
          part += b;
          lt.operators.push_back(OperatorTime{op.name + " (decode x" + std::to_string(batch.size()) + ")",
                                              workloads::to_string(op.kind), b});
          o = e;
          continue;
        }
        if (const std::ptrdiff_t shard = overlap_segment(ops, o); shard >= 0) {
          // A row-parallel GEMM with its all-reduce and the residual adds and norms after it
          // as one pipeline of token chunks.
          const auto count = static_cast<std::size_t>(shard);
          std::string name = op.name;
          std::string segment = "overlapped|" + operator_key(op);
          for (std::size_t x = 1; x <= count; ++x) {
            name += "+" + ops[o + x].name;
            segment += ';' + operator_key(ops[o + x]);
          }
          const EngineBusy b = this->cached(cfg_.reuse ? segment : std::string(),
                                            [&] { return run_overlapped(ops, o, count); }, true);
          part += b;
          lt.operators.push_back(OperatorTime{name + " (overlapped)", workloads::to_string(op.kind), b});
          o += 1 + count;
          continue;
        }
        const EngineBusy b = run_operator(op);
        part += b;
        lt.operators.push_back(OperatorTime{op.name, workloads::to_string(op.kind), b});
        ++o;
      }
      if (cfg_.reuse && layer >= 0) layer_cache_.emplace(key, lt.operators);
    }
    r.busy += part;
    r.total_ps += part.elapsed_ps;
    lt.end_ps = r.total_ps;
    lt.reused = cached;
    r.layers.push_back(std::move(lt));
    prev_i = i;
    prev_j = j;
    i = j;
  }
  if (cfg_.runtime) add_runtime(runtime_after(g, r.total_ps, r.total_ps));
  r.reused_operators = reused_operators_;
  r.floor = floor_of(g, r.busy);
  return r;
}

const CollectiveResult& TrainiumPrefill::group_collective(Collective c, std::uint64_t bytes) {
  const auto key = std::make_pair(c, bytes);
  if (auto it = collective_cache_.find(key); it != collective_cache_.end()) return it->second;
  return collective_cache_.emplace(key, run_collective(group_, c, bytes)).first->second;
}

namespace {

OperatorTime collective_time(std::string name, const CollectiveResult& r, const InstanceConfig& group) {
  OperatorTime t{std::move(name), "runtime", {}};
  t.busy.elapsed_ps = r.time_ps;
  t.busy.collective_ps = static_cast<double>(r.time_ps);
  t.busy.runtime_ps = static_cast<double>(r.time_ps);
  if (r.time_ps > 0) t.busy.algorithm_ps[static_cast<std::size_t>(r.algorithm)] = static_cast<double>(r.time_ps);
  t.busy.link_ps = r.link_utilization * static_cast<double>(group.chips() * group.links_per_chip()) *
                  static_cast<double>(r.time_ps);
  return t;
}

}  // namespace

LayerTime TrainiumPrefill::runtime_before(std::uint64_t start_ps) {
  // The ranks of a graph start together: a barrier, priced as an all-reduce of one 4-byte
  // flag between the chips of the group (the cores of a chip share its semaphores).
  LayerTime lt;
  lt.start_ps = lt.end_ps = start_ps;
  if (chips_ <= 1) return lt;
  lt.operators.push_back(collective_time("runtime.launch_barrier", group_collective(Collective::kAllReduce, 4), group_));
  lt.end_ps += lt.operators.back().busy.elapsed_ps;
  return lt;
}

LayerTime TrainiumPrefill::runtime_after(const workloads::OperatorGraph& g, std::uint64_t start_ps,
                                         std::uint64_t device_ps) {
  LayerTime lt;
  lt.start_ps = lt.end_ps = start_ps;
  // The LM head, the graph's last operator of that name (looked for from the end, where
  // the lowering puts it: this runs on every pass).
  const auto it = std::find_if(g.ops.rbegin(), g.ops.rend(), [](const Operator& op) { return op.name == "lm_head"; });
  const Operator* head = it == g.ops.rend() ? nullptr : &*it;
  if (head != nullptr && head->m > 0) {
    // The LM head is column-parallel: each chip holds vocab / chips of every row's logits.
    // They are all-gathered between the chips, then each logit row is sampled on one core
    // (rows dealt over the chip's cores): the row loaded, a max pass (vector), exp with the
    // row sum (scalar, fp32), a scan to the sampled token (vector), the token stored.
    if (chips_ > 1) {
      lt.operators.push_back(
          collective_time("runtime.logits_all_gather", group_collective(Collective::kAllGather, head->output_bytes),
                          group_));
    }
    const std::uint64_t rows = head->m, vocab = head->n;
    const std::uint64_t row_bytes = head->output_bytes / rows;
    const std::string key = "runtime.sampling|" + std::to_string(rows) + "," + std::to_string(vocab) + "," +
                            std::to_string(row_bytes);
    EngineBusy b = cached(key, [&] {
      const std::uint32_t cores = static_cast<std::uint32_t>(std::min<std::uint64_t>(sim_cores_, rows));
      std::vector<Program> programs(cores);
      for (std::uint32_t c = 0; c < cores; ++c) {
        const std::uint64_t mine = rows / cores + (c < rows % cores ? 1 : 0);
        Program& prog = programs[c];
        DmaEmitter dma{prog, chip_.core.dma.queues, 0, base(c), chip_.hbm.capacity().bytes};
        const auto in = dma.transfer(false, mine * row_bytes, {});
        const std::uint64_t values = mine * vocab;
        Program::Id last = prog.elementwise(Engine::kVector, values, DType::kFp32);
        depend_all(prog, last, in);
        const Program::Id exp = prog.elementwise(Engine::kScalar, values, DType::kFp32, {last});
        last = exp;
        if (cfg_.sampling_vector_passes > 1) {
          last = prog.elementwise(Engine::kVector, values * (cfg_.sampling_vector_passes - 1), DType::kFp32, {exp});
        }
        dma.transfer(true, mine * 4, {last});
      }
      return run_programs(programs);
    });
    b.runtime_ps = static_cast<double>(b.elapsed_ps);
    lt.operators.push_back(OperatorTime{"runtime.sampling", "runtime", b});
  }
  for (const OperatorTime& ot : lt.operators) lt.end_ps += ot.busy.elapsed_ps;
  // The host's work per invocation: hidden behind the device's pass with asynchronous
  // execution (the next invocation is prepared while this one runs), else paid in full.
  const auto host_ps = static_cast<std::uint64_t>(std::llround(cfg_.host_overhead.seconds * 1e12));
  const std::uint64_t device = device_ps + (lt.end_ps - start_ps);
  const std::uint64_t exposed = cfg_.async_execution ? (host_ps > device ? host_ps - device : 0) : host_ps;
  if (exposed > 0) {
    OperatorTime h{"runtime.host", "runtime", {}};
    h.busy.elapsed_ps = exposed;
    h.busy.runtime_ps = static_cast<double>(exposed);
    lt.operators.push_back(h);
    lt.end_ps += exposed;
  }
  return lt;
}

TrainiumFloor TrainiumPrefill::floor_of(const workloads::OperatorGraph& g, const EngineBusy& busy) const {
  TrainiumFloor f;
  const TensorEngineConfig& te = chip_.core.tensor;
  double moving = te.moving_per_cycle(DType::kBf16);
  for (const Operator& op : g.ops) {
    if (op.kind == OpKind::gemm) moving = std::max(moving, te.moving_per_cycle(chip_dtype(op.weight_dtype)));
  }
  const double peak = static_cast<double>(cfg_.physical_cores()) * te.rows * te.columns * 2.0 * te.clock.hz * moving;
  f.compute_s = static_cast<double>(busy.flops) / peak;
  const double bytes = static_cast<double>(g.total_weight_bytes() + g.total_kv_read_bytes() + g.total_kv_write_bytes());
  f.hbm_s = bytes / chips_ / chip_.hbm.peak_bandwidth().bytes_per_s;
  f.collective_s = busy.collective_floor_ps * 1e-12;
  f.step_s = std::max({f.compute_s, f.hbm_s, f.collective_s});
  return f;
}

PrefillResult TrainiumPrefill::run(const workloads::TransformerModel& m, const std::vector<std::uint64_t>& prompt_tokens) {
  return run(workloads::lower_prefill(m, prompt_tokens), m.weight_bytes());
}

}  // namespace wse::neuron

#include "systemc_models/config/config.h"

namespace wse::neuron {

PrefillConfig read_prefill_config(config::Section& s) {
  const PrefillConfig d;
  PrefillConfig c;
  c.tp_degree = static_cast<std::uint32_t>(
      s.integer("tp_degree", {.doc = "tensor-parallel degree: logical cores a layer is sharded over",
                              .def = std::to_string(d.tp_degree), .min = 1, .max = 4096}));
  c.lnc = s.enumeration<std::uint32_t>("lnc", {.doc = "logical NeuronCore config: physical cores per logical core",
                                               .def = std::to_string(d.lnc)},
                                       {{"1", 1}, {"2", 2}});
  c.reuse = s.boolean("reuse", {.doc = "simulate identical decoder layers and operators once",
                                .def = d.reuse ? "true" : "false"});
  c.gemm_token_block = static_cast<std::uint64_t>(
      s.integer("gemm_token_block", {.doc = "token rows of one simulated GEMM piece (longer GEMMs repeat it)",
                                     .def = std::to_string(d.gemm_token_block), .min = 128}));
  c.elementwise_tile = static_cast<std::uint64_t>(
      s.integer("elementwise_tile", {.doc = "values per tile of an element-wise operator on one core",
                                     .def = std::to_string(d.elementwise_tile), .min = 1}));
  c.attention_key_block = static_cast<std::uint32_t>(
      s.integer("attention_key_block", {.doc = "keys per QK^T matmul (at most one PSUM bank of 512)",
                                        .def = std::to_string(d.attention_key_block), .min = 1, .max = 512}));
  c.gemm_dma_piece = s.size("gemm_dma_piece", {.doc = "smallest DMA instruction of a GEMM's operand transfers",
                                               .def = wse::to_string(Size{d.gemm_dma_piece}), .min = 1})
                         .bytes;
  c.fuse_projections = s.boolean("fuse_projections", {.doc = "run q/k/v and gate/up as one GEMM each (fused kernels)",
                                                      .def = d.fuse_projections ? "true" : "false"});
  c.token_grain = static_cast<std::uint64_t>(s.integer(
      "token_grain",
      {.doc = "simulation choice: token counts (GEMM rows, attention chunk and offset, per-token operators) "
              "simulated only at sample points on a grid of steps of this grain up to 32 x grain, then 16 "
              "steps per octave; a count between grid points L and L + step is interpolated linearly "
              "between L + 1 and L + step (bilinearly for attention), flops exact; 0: every count "
              "simulated exactly",
       .def = std::to_string(d.token_grain), .min = 0, .max = 1 << 20}));
  c.runtime = s.boolean(
      "runtime", {.doc = "model the runtime around each pass: a launch barrier between the chips, the logits' "
                         "all-gather, on-device sampling and the host overhead not hidden",
                  .def = d.runtime ? "true" : "false"});
  c.host_overhead = s.duration(
      "host_overhead", {.doc = "host work per graph invocation (dispatch, tensor allocation): paid in full "
                               "without async_execution, else only where it exceeds the device's pass",
                        .def = wse::to_string(d.host_overhead), .min = 0});
  c.async_execution = s.boolean(
      "async_execution", {.doc = "the host prepares the next invocation while the device runs this one",
                          .def = d.async_execution ? "true" : "false"});
  c.sampling_vector_passes = static_cast<std::uint32_t>(s.integer(
      "sampling_vector_passes", {.doc = "vector-engine passes over each logit row of on-device sampling (besides "
                                        "the scalar engine's exp with the row sum)",
                                 .def = std::to_string(d.sampling_vector_passes), .min = 1, .max = 64}));
  c.overlap = s.boolean(
      "overlap", {.doc = "row-parallel GEMMs of two or more chunks of overlap_chunk_tokens rows, their all-reduce "
                         "(split into a reduce-scatter and an all-gather between the chips) and the residual add and "
                         "norm after them run as a pipeline of token chunks: a chunk's collective on the NeuronLink "
                         "overlaps the next chunk's compute; false: every operator after the previous one",
                  .def = d.overlap ? "true" : "false"});
  c.overlap_chunk_tokens = static_cast<std::uint64_t>(s.integer(
      "overlap_chunk_tokens", {.doc = "token rows of one chunk of the overlap pipeline (at most gemm_token_block "
                                      "is used)",
                               .def = std::to_string(d.overlap_chunk_tokens), .min = 128, .max = 1 << 20}));
  c.hbm_fidelity = s.enumeration<HbmFidelity>(
      "hbm_fidelity", {.doc = "HBM model for whole-model prefill", .def = "streaming"},
      {{"streaming", HbmFidelity::kStreaming}, {"banks", HbmFidelity::kBanks}});
  return c;
}

}  // namespace wse::neuron
