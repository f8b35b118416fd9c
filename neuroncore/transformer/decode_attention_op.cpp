#include "neuroncore/transformer/decode_attention_op.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "neuroncore/core/gemm.h"
#include "neuroncore/transformer/kernel_builders.h"
#include "neuroncore/transformer/operator_keys.h"

namespace wse::neuron {

using workloads::Operator;
using workloads::OpKind;

EngineBusy DecodeAttentionMapping::run(const std::vector<Operator>& sequences) {
  const NeuronCoreConfig& nc = ctx_.chip().core;
  const Operator& a = sequences.front();
  const std::uint32_t kb = ctx_.cfg().attention_key_block;
  const std::uint32_t rows = nc.tensor.rows;
  const std::uint32_t dk = a.qk_head_dim, dv = a.v_head_dim;
  const std::uint32_t kv_heads = std::max<std::uint32_t>(a.kv_heads, 1);
  const std::uint32_t heads_per_kv = std::max<std::uint32_t>(1, a.q_heads / kv_heads);
  const std::uint64_t e = bytes_of(DType::kBf16);                   // queries and outputs
  const std::uint64_t kv_e = bytes_of(chip_dtype(a.weight_dtype));  // the cache's type
  // The query heads of this chip (head h on logical core h mod tp, as for prefill),
  // counted per kv head: the GQA rows that share one K and V stream.
  const std::uint32_t chip_logical = std::max<std::uint32_t>(1, ctx_.sim_cores() / ctx_.cfg().lnc);
  std::map<std::uint32_t, std::uint32_t> group_rows;
  for (std::uint32_t h = 0; h < a.q_heads; ++h) {
    if (h % ctx_.cfg().tp_degree < chip_logical) ++group_rows[std::min(h / heads_per_kv, kv_heads - 1)];
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
    return x.keys * x.bytes_per_key != y.keys * y.bytes_per_key
               ? x.keys * x.bytes_per_key > y.keys * y.bytes_per_key
               : x.q_rows > y.q_rows;
  });
  std::vector<std::vector<Pair>> dealt(ctx_.sim_cores());
  std::vector<std::uint64_t> load(ctx_.sim_cores(), 0);
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
  const std::uint64_t slots =
      std::max<std::uint64_t>(2, nc.sbuf.bytes / 2 / std::max<std::uint64_t>(block_bytes, 1));
  // PSUM: two banks for the scores (QK^T of the next block while this one's softmax runs),
  // the others for the outputs of successive pairs.
  const std::uint32_t out_banks = std::max<std::uint32_t>(1, nc.psum_banks - 2);
  const std::uint64_t efficient = ctx_.efficient_dma_piece();
  std::vector<Program> programs(ctx_.sim_cores());
  for (std::uint32_t core = 0; core < ctx_.sim_cores(); ++core) {
    Program& prog = programs[core];
    DmaEmitter dma{prog, nc.dma.queues, 0, ctx_.base(core), ctx_.chip().hbm.capacity().bytes};
    // Split the K and V loads so that the core's loads cover all of its queues, and into
    // pieces of about smallest_efficient_dma_piece: the pieces of one round over the queues
    // arrive together, and smaller rounds let the softmax of a pair start sooner.
    std::uint64_t loads = 0;
    for (const Pair& pr : dealt[core]) loads += 2 * ceil_div(pr.keys, kb);
    const auto pieces = static_cast<std::uint32_t>(
        std::clamp<std::uint64_t>(std::max(ceil_div(nc.dma.queues, std::max<std::uint64_t>(loads, 1)),
                                           ceil_div(block_bytes / 2, efficient)),
                                  1, nc.dma.queues));
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
      const Program::Id norm =
          prog.elementwise(Engine::kVector, std::uint64_t{m} * dv, DType::kFp32, {last_pv});
      out_ring.read_by(obank, norm);
      outputs.push_back(norm);
    }
    dma.transfer(true, out_bytes, outputs, 1);
  }
  return ctx_.run_programs(programs);
}

EngineBusy DecodeAttentionMapping::run_cached(const std::vector<Operator>& sequences) {
  return ctx_.cached(
      ctx_.cfg().reuse ? decode_attention_key(sequences) : std::string(), [&] { return run(sequences); },
      true);
}

}  // namespace wse::neuron
