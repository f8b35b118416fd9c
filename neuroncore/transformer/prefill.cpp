#include "neuroncore/transformer/prefill.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

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

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Row-parallel projections: the input features are split, partial outputs all-reduced.
bool row_parallel(const Operator& op) { return ends_with(op.name, "o_proj") || ends_with(op.name, "down_proj"); }

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
  b.flops *= times;
  return b;  // instructions and chip runs are what was simulated: not repeated
}

std::string operator_key(const Operator& op) {
  std::ostringstream k;
  k << workloads::to_string(op.kind) << '|' << op.name << '|' << op.count << '|' << op.m << ',' << op.k << ','
    << op.n << '|' << op.q_heads << ',' << op.kv_heads << ',' << op.qk_head_dim << ',' << op.v_head_dim << '|'
    << op.query_len << ',' << op.kv_len << ',' << op.context_offset << ',' << op.window << ',' << op.sinks << '|'
    << op.elements << ',' << op.vector_ops << '|' << static_cast<int>(op.weight_dtype) << ','
    << static_cast<int>(op.activation_dtype) << '|' << op.input_bytes << ',' << op.output_bytes << ','
    << op.weight_bytes;
  return k.str();
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

EngineBusy TrainiumPrefill::run_gemm_op(const Operator& op) {
  const std::uint64_t p = cfg_.physical_cores();
  const bool row = row_parallel(op);
  const std::uint64_t k = row ? ceil_div(op.k, p) : op.k;
  const std::uint64_t n = row ? op.n : ceil_div(op.n, p);
  const DType t = chip_dtype(op.weight_dtype);
  EngineBusy total;
  if (op.m == 0 || op.count == 0) return total;
  // Column-parallel (narrow N slice, deep K): weights stationary, C^T[n x tokens] =
  // W^T[n x k] X^T[k x tokens], tokens streaming. Row-parallel (shallow K slice, full N):
  // tokens stationary, the weight rows streaming. Tokens in blocks of gemm_token_block.
  const std::uint64_t block = cfg_.gemm_token_block;
  const std::uint64_t full = op.m / block;
  const std::uint64_t rest = op.m % block;
  auto shape = [&](std::uint64_t tokens) { return row ? GemmShape{tokens, k, n, t} : GemmShape{n, k, tokens, t}; };
  // A row-parallel block's partial sums are all-reduced block by block.
  const std::uint64_t row_bytes = op.n * workloads::bytes_per_value(op.activation_dtype);
  auto piece = [&](std::uint64_t tokens) {
    EngineBusy b = gemm_piece(shape(tokens));
    if (row) b += all_reduce(tokens * row_bytes);
    return b;
  };
  EngineBusy one;
  if (full > 0) one += piece(block).scaled(full);
  if (rest > 0) one += piece(rest);
  total += one.scaled(op.count);
  total.instructions = one.instructions;
  total.chip_runs = one.chip_runs;
  return total;
}

EngineBusy TrainiumPrefill::all_reduce(std::uint64_t bytes) {
  EngineBusy b;
  const std::uint32_t c = sim_cores_;
  const std::uint64_t share = ceil_div(bytes, c);
  // Reduce-scatter inside the chip through HBM: each core reads its share of the
  // other cores' partial sums, adds them (vector, fp32 accumulate of bf16 values), stores.
  if (c > 1) {
    std::vector<Program> rs(c), ag(c);
    for (std::uint32_t i = 0; i < c; ++i) {
      DmaEmitter dma{rs[i], chip_.core.dma.queues, 0, base(i), chip_.hbm.capacity().bytes};
      std::vector<Program::Id> loads;
      for (std::uint32_t j = 0; j + 1 < c; ++j) {
        const auto l = dma.transfer(false, share, {});
        const Program::Id add = rs[i].elementwise(Engine::kVector, share / 2, DType::kBf16);
        depend_all(rs[i], add, l);
        loads.push_back(add);
      }
      dma.transfer(true, share, loads);
      DmaEmitter gather{ag[i], chip_.core.dma.queues, 0, base(i), chip_.hbm.capacity().bytes};
      for (std::uint32_t j = 0; j + 1 < c; ++j) gather.transfer(false, share, {});
    }
    b += run_programs(rs);
    if (chips_ > 1) {
      const CollectiveResult r = run_collective(group_, Collective::kAllReduce, bytes);
      b.elapsed_ps += r.time_ps;
      b.collective_ps += static_cast<double>(r.time_ps);
      b.link_ps += r.link_utilization * static_cast<double>(group_.chips()) * 4 * static_cast<double>(r.time_ps);
    }
    b += run_programs(ag);
  }
  return b;
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
  if (kv_head_bytes > nc.sbuf.bytes / 2) {
    throw CapacityError("SBUF capacity exceeded: attention keeps the K and V of a head (" +
                        std::to_string(keys_total) + " keys) in SBUF: needs " + binary(kv_head_bytes) +
                        " but half of SBUF is " + binary(nc.sbuf.bytes / 2) + " (" +
                        binary(kv_head_bytes - nc.sbuf.bytes / 2) + " over)");
  }
  std::vector<Program> programs(sim_cores_);
  for (std::uint32_t core = 0; core < sim_cores_; ++core) {
    Program& prog = programs[core];
    DmaEmitter dma{prog, nc.dma.queues, 0, base(core), chip_.hbm.capacity().bytes};
    const std::uint32_t logical = core / cfg_.lnc;
    const std::uint32_t half = core % cfg_.lnc;
    // K and V blocks of each kv head this core needs, loaded once.
    std::map<std::uint32_t, std::vector<std::pair<std::vector<Program::Id>, std::vector<Program::Id>>>> kv;
    std::vector<Program::Id> s_bank_reader(2, 0);
    std::vector<bool> s_bank_used(2, false);
    std::uint64_t s_count = 0;
    for (std::uint32_t h = logical; h < op.q_heads; h += cfg_.tp_degree) {
      const std::uint32_t g = h / heads_per_kv;
      auto& blocks = kv[g];
      if (blocks.empty()) {
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
        auto qk = [&](std::uint64_t j) {
          const auto n_keys = static_cast<std::uint32_t>(std::min<std::uint64_t>(kb, keys_total - j * kb));
          const std::size_t bank = s_count++ % 2;
          Program::Id mm = 0;
          for (std::uint32_t d0 = 0; d0 < dk; d0 += rows) {
            mm = prog.matmul(std::min(rows, dk - d0), m, n_keys, DType::kBf16);
            depend_all(prog, mm, q);
            depend_all(prog, mm, blocks[j].first);
            if (s_bank_used[bank]) prog.depend(mm, s_bank_reader[bank]);
          }
          return std::pair{mm, bank};
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
          s_bank_reader[cur.second] = ex;
          s_bank_used[cur.second] = true;
          for (std::uint64_t k0 = 0; k0 < n_keys; k0 += rows) {
            last_pv = prog.matmul(static_cast<std::uint32_t>(std::min<std::uint64_t>(rows, n_keys - k0)), m, dv,
                                  DType::kBf16, {ex});
            depend_all(prog, last_pv, blocks[j].second);
          }
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

EngineBusy TrainiumPrefill::run_operator(const Operator& op) {
  std::string key;
  if (cfg_.reuse) {
    key = operator_key(op);
    if (auto it = op_cache_.find(key); it != op_cache_.end()) {
      ++reused_operators_;
      EngineBusy b = it->second;
      b.instructions = 0;
      b.chip_runs = 0;
      return b;
    }
  }
  EngineBusy b;
  switch (op.kind) {
    case OpKind::gemm: b = run_gemm_op(op); break;
    case OpKind::attention: b = run_attention(op); break;
    case OpKind::embedding: b = run_embedding(op); break;
    case OpKind::norm:
    case OpKind::rope:
    case OpKind::activation:
    case OpKind::router:
    case OpKind::expert_combine:
    case OpKind::residual_add: b = run_elementwise(op); break;
  }
  if (cfg_.reuse) op_cache_.emplace(key, b);
  return b;
}

std::vector<Operator> TrainiumPrefill::fuse(const std::vector<Operator>& ops, std::size_t from, std::size_t to) const {
  std::vector<Operator> out;
  for (std::size_t o = from; o < to; ++o) {
    const Operator& op = ops[o];
    if (cfg_.fuse_projections && !out.empty()) {
      Operator& prev = out.back();
      // q/k/v and gate/up: column-parallel GEMMs of the same input, one after another.
      if (op.kind == OpKind::gemm && prev.kind == OpKind::gemm && !row_parallel(op) && !row_parallel(prev) &&
          op.m == prev.m && op.k == prev.k && op.count == 1 && prev.count == 1 &&
          op.weight_dtype == prev.weight_dtype && op.activation_dtype == prev.activation_dtype) {
        prev.name += "+" + op.name;
        prev.n += op.n;
        prev.flops += op.flops;
        prev.weight_bytes += op.weight_bytes;
        prev.output_bytes += op.output_bytes;
        continue;
      }
    }
    out.push_back(op);
  }
  return out;
}

PrefillResult TrainiumPrefill::run(const workloads::OperatorGraph& g, std::uint64_t model_weight_bytes) {
  check_capacity(g, model_weight_bytes);
  PrefillResult r;
  r.physical_cores = cfg_.physical_cores();
  r.chips = chips_;
  r.links = chips_ > 1 ? group_.chips() * 4 : 0;
  reused_operators_ = 0;
  std::size_t i = 0;
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
    if (cfg_.reuse && layer >= 0) {
      for (std::size_t o = i; o < j; ++o) key += operator_key(g.ops[o]) + ';';
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
      for (const Operator& op : fuse(g.ops, i, j)) {
        const EngineBusy b = run_operator(op);
        part += b;
        lt.operators.push_back(OperatorTime{op.name, workloads::to_string(op.kind), b});
      }
      if (cfg_.reuse && layer >= 0) layer_cache_.emplace(key, lt.operators);
    }
    r.busy += part;
    r.total_ps += part.elapsed_ps;
    lt.end_ps = r.total_ps;
    lt.reused = cached;
    r.layers.push_back(lt);
    i = j;
  }
  r.reused_operators = reused_operators_;
  return r;
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
  c.hbm_fidelity = s.enumeration<HbmFidelity>(
      "hbm_fidelity", {.doc = "HBM model for whole-model prefill", .def = "streaming"},
      {{"streaming", HbmFidelity::kStreaming}, {"banks", HbmFidelity::kBanks}});
  return c;
}

}  // namespace wse::neuron
