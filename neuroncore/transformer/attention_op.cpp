#include "neuroncore/transformer/attention_op.h"

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "neuroncore/core/gemm.h"
#include "neuroncore/transformer/kernel_builders.h"
#include "neuroncore/transformer/operator_keys.h"
#include "neuroncore/transformer/token_sampling.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

std::uint64_t attention_matmul_flops(const Operator& op, std::uint32_t tp_degree, std::uint32_t lnc,
                                     std::uint32_t chip_cores, std::uint32_t q_tile,
                                     std::uint32_t key_block) {
  // The loops of AttentionMapping::run, counting 2 x q rows x keys x (dk + dv) per (tile, block).
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

EngineBusy AttentionMapping::run(const Operator& op) {
  const NeuronCoreConfig& nc = ctx_.chip().core;
  const std::uint32_t tile = nc.tensor.columns;  // queries per tile (stationary side)
  const std::uint32_t kb = ctx_.cfg().attention_key_block;
  const std::uint32_t rows = nc.tensor.rows;
  const std::uint64_t e = bytes_of(DType::kBf16);
  const std::uint64_t q_tiles = ceil_div(op.query_len, tile);
  const std::uint64_t keys_total = op.context_offset + op.query_len;  // absolute positions
  const std::uint64_t key_blocks = ceil_div(keys_total, kb);
  const std::uint32_t heads_per_kv =
      std::max<std::uint32_t>(1, op.q_heads / std::max<std::uint32_t>(op.kv_heads, 1));
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
                        " keys (" + binary(2 * block_bytes) + ") but half of SBUF is " +
                        binary(nc.sbuf.bytes / 2));
  }
  std::vector<Program> programs(ctx_.sim_cores());
  for (std::uint32_t core = 0; core < ctx_.sim_cores(); ++core) {
    Program& prog = programs[core];
    DmaEmitter dma{prog, nc.dma.queues, 0, ctx_.base(core), ctx_.chip().hbm.capacity().bytes};
    const std::uint32_t logical = core / ctx_.cfg().lnc;
    const std::uint32_t half = core % ctx_.cfg().lnc;
    // K and V blocks of each kv head this core needs, loaded once.
    std::map<std::uint32_t, std::vector<std::pair<std::vector<Program::Id>, std::vector<Program::Id>>>> kv;
    BufferRing score_banks(2);
    // Streaming: the ring of K/V slots (read by the P V matmuls), and the slot each of
    // the current tile's blocks went to.
    BufferRing slots(stream ? ring : 1);
    std::vector<std::size_t> stream_slot;
    for (std::uint32_t h = logical; h < op.q_heads; h += ctx_.cfg().tp_degree) {
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
      for (std::uint64_t t = half; t < q_tiles; t += ctx_.cfg().lnc) {
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
          const Program::Id vec =
              prog.elementwise(Engine::kVector, scores * (masked ? 3 : 2), DType::kFp32, {cur.first});
          const Program::Id ex = prog.elementwise(Engine::kScalar, scores, DType::kFp32, {vec});
          score_banks.read_by(cur.second, ex);
          for (std::uint64_t k0 = 0; k0 < n_keys; k0 += rows) {
            last_pv = prog.matmul(static_cast<std::uint32_t>(std::min<std::uint64_t>(rows, n_keys - k0)), m,
                                  dv, DType::kBf16, {ex});
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
  return ctx_.run_programs(programs);
}

EngineBusy AttentionMapping::run_sampled(const Operator& op) {
  const std::uint64_t grain = ctx_.cfg().token_grain;
  // Chunk c: sampled from g queries on (below, as it is); offset o: sampled from 0.
  // Sliding-window attention is simulated as it is (its key range changes regime with the
  // offset).
  SampleInterval c = token_sample_interval(op.query_len, grain);
  if (op.query_len < grain) c = {op.query_len, op.query_len};
  const SampleInterval o = token_sample_interval(op.context_offset, grain);
  const NeuronCoreConfig& nc = ctx_.chip().core;
  const std::uint64_t hi_head_bytes =
      (o.hi + c.hi) * (std::uint64_t{op.qk_head_dim} + op.v_head_dim) * bytes_of(DType::kBf16);
  if (grain == 0 || op.window != 0 || (c.exact() && o.exact()) || hi_head_bytes > nc.sbuf.bytes / 2) {
    return run(op);
  }
  auto corner = [&](std::uint64_t queries, std::uint64_t offset) {
    std::string key;
    KeyWriter w{key};
    w << std::string_view("attention_sample|") << op.q_heads << ',' << op.kv_heads << ',' << op.qk_head_dim
      << ',' << op.v_head_dim << '|' << queries << ',' << offset;
    return ctx_.cached(key, [&] {
      Operator s = op;
      s.query_len = queries;
      s.context_offset = offset;
      s.kv_len = offset + queries;
      return run(s);
    });
  };
  const double wc = c.weight(op.query_len);
  auto along_c = [&](std::uint64_t offset) {
    if (c.exact()) return corner(c.lo, offset);
    return EngineBusy::interpolated(corner(c.lo, offset), corner(c.hi, offset), wc);
  };
  EngineBusy b = o.exact()
                     ? along_c(o.lo)
                     : EngineBusy::interpolated(along_c(o.lo), along_c(o.hi), o.weight(op.context_offset));
  b.flops = attention_matmul_flops(op, ctx_.cfg().tp_degree, ctx_.cfg().lnc, ctx_.chip().cores,
                                   nc.tensor.columns, ctx_.cfg().attention_key_block) *
            ctx_.chips();
  return b;
}

}  // namespace wse::neuron
