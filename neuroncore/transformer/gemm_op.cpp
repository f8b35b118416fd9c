#include "neuroncore/transformer/gemm_op.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>

#include "neuroncore/transformer/collective_op.h"
#include "neuroncore/transformer/kernel_builders.h"
#include "neuroncore/transformer/operator_keys.h"
#include "neuroncore/transformer/token_sampling.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

namespace {

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
Program streamed_gemm_program(const ChipConfig& chip, std::uint64_t out, std::uint64_t k,
                              std::uint64_t tokens, DType t, std::uint64_t piece_target,
                              std::uint64_t hbm_base, std::uint64_t count) {
  const NeuronCoreConfig& nc = chip.core;
  const std::uint32_t queues = nc.dma.queues;
  const std::uint64_t e = bytes_of(t);
  const std::uint64_t tk = nc.tensor.rows, tm = nc.tensor.columns;
  const std::uint64_t kt = ceil_div(k, tk), nb = ceil_div(out, tm);
  const std::uint64_t act_bytes = k * tokens * e, w_bytes = out * k * e * count, out_bytes = out * tokens * e;
  const std::uint32_t store_queues =
      queues == 1 ? 0
                  : static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
                        ceil_div(std::uint64_t{queues} * out_bytes, act_bytes + w_bytes / count + out_bytes),
                        1, queues - 1));
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
    for (std::uint64_t off = 0; off < rest; off += tail_piece)
      w_sizes.push_back(std::min(tail_piece, rest - off));
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
        if (!w_read[i - slots])
          throw std::logic_error("streamed GEMM: a weight slot is reused before it was read");
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
  PieceStream stored;                // issued stores, by end offset in the output
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

EngineBusy GemmMapping::piece(const GemmShape& s) {
  // Every simulated core runs the same slice; each has its own operands in the shared HBM.
  std::vector<Program> programs;
  for (std::uint32_t c = 0; c < ctx_.sim_cores(); ++c) {
    GemmPlan plan;
    plan.min_dma_piece = ctx_.cfg().gemm_dma_piece;
    plan.c_buffers = 8;  // stores of whole C tiles each take one queue: a deeper store pipeline
    plan.hbm_base = ctx_.base(c);
    programs.push_back(lower_gemm(ctx_.chip(), s, plan));
  }
  return ctx_.run_programs(programs);
}

EngineBusy GemmMapping::streamed(std::uint64_t out_features, std::uint64_t k, std::uint64_t tokens, DType t,
                                 std::uint64_t count) {
  // Weight pieces: the smallest that keeps the queues ahead of the HBM (the earlier the
  // matmuls can start, the shorter the tail after the last byte), at most gemm_dma_piece.
  const std::uint64_t efficient = smallest_efficient_dma_piece(ctx_.chip());
  const std::uint64_t piece =
      efficient == 0 ? ctx_.cfg().gemm_dma_piece : std::min(ctx_.cfg().gemm_dma_piece, efficient);
  std::vector<Program> programs;
  for (std::uint32_t c = 0; c < ctx_.sim_cores(); ++c) {
    programs.push_back(
        streamed_gemm_program(ctx_.chip(), out_features, k, tokens, t, piece, ctx_.base(c), count));
  }
  return ctx_.run_programs(programs);
}

bool GemmMapping::streams_weights(std::uint64_t k, std::uint64_t tokens, DType t) const {
  const NeuronCoreConfig& nc = ctx_.chip().core;
  const std::uint64_t e = bytes_of(t);
  return tokens <= nc.tensor.max_moving &&
         2 * k * tokens * e + c_ring_bytes(nc, tokens, e) <= nc.sbuf.bytes / 2;
}

EngineBusy GemmMapping::run(const Operator& op) {
  const std::uint64_t p = ctx_.cfg().physical_cores();
  const bool row = row_parallel(op);
  const std::uint64_t k = row ? ceil_div(op.k, p) : op.k;
  const std::uint64_t n = row ? op.n : ceil_div(op.n, p);
  const DType t = chip_dtype(op.weight_dtype);
  EngineBusy total;
  if (op.m == 0 || op.count == 0) return total;
  const std::uint64_t grain = ctx_.cfg().token_grain;
  // Matmul flops of `tokens` rows of one instance on every core of the group (the
  // kernels' matmuls cover the core's k x n slice exactly).
  auto flops_of = [&](std::uint64_t tokens) { return 2 * tokens * k * n * ctx_.sim_cores() * ctx_.chips(); };
  // Key prefix of the pieces of this GEMM's shape (everything but the token count).
  auto shape_key = [&](std::string_view kind) {
    std::string key;
    KeyWriter w{key};
    w << kind << '|' << std::uint64_t{row} << '|' << k << ',' << n << ',' << static_cast<std::uint64_t>(t)
      << ',' << op.count << ',' << op.n << ',' << static_cast<std::uint64_t>(op.activation_dtype) << '|';
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
      EngineBusy b = streamed(n, k, m, t, op.count);
      if (row) b += CollectiveMapping(ctx_).all_reduce(m * op.count * row_bytes);
      return b;
    };
    const SampleInterval s = token_sample_interval(op.m, grain);
    // Sampled only when both points run the same kernel as M (from g tokens on).
    if (grain == 0 || s.exact() || op.m < grain || !streamed_fits(s.hi)) return streamed_at(op.m);
    const std::string key = shape_key("streamed_gemm");
    total = EngineBusy::interpolated(
        ctx_.cached(key + std::to_string(s.lo), [&] { return streamed_at(s.lo); }),
        ctx_.cached(key + std::to_string(s.hi), [&] { return streamed_at(s.hi); }), s.weight(op.m));
    total.flops = flops_of(op.m) * op.count;
    return total;
  }
  // Column-parallel (narrow N slice, deep K): weights stationary, C^T[n x tokens] =
  // W^T[n x k] X^T[k x tokens], tokens streaming. Row-parallel (shallow K slice, full N):
  // tokens stationary, the weight rows streaming. Tokens in blocks of gemm_token_block.
  const std::uint64_t block = ctx_.cfg().gemm_token_block;
  const std::uint64_t full = op.m / block;
  const std::uint64_t rest = op.m % block;
  auto shape = [&](std::uint64_t tokens) {
    return row ? GemmShape{tokens, k, n, t} : GemmShape{n, k, tokens, t};
  };
  auto piece = [&](std::uint64_t tokens) {
    EngineBusy b = this->piece(shape(tokens));
    if (row) b += CollectiveMapping(ctx_).all_reduce(tokens * row_bytes);
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
      return ctx_.cached(key + std::to_string(tokens), [&] { return piece(tokens); });
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

}  // namespace wse::neuron
