#include "gpu/transformer/pass.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <stdexcept>
#include <string>
#include <string_view>

#include "systemc_models/units/integer.h"

namespace wse::gpu {

namespace {

using workloads::Operator;
using workloads::OpKind;

// A sequence's attention run by the batched decode kernel: a decode token's, or in a
// speculative verification pass (`verify`) the k + 1 tokens' of each cached sequence.
bool is_decode_attention(const Operator& op, bool verify) {
  return op.kind == OpKind::attention && (op.query_len == 1 || verify) && op.context_offset > 0;
}

// Operators equal but for their decoder layer (and so timed the same).
bool same_but_layer(const Operator& a, const Operator& b) {
  return a.kind == b.kind && a.count == b.count && a.m == b.m && a.k == b.k && a.n == b.n &&
         a.sequence == b.sequence && a.q_heads == b.q_heads && a.kv_heads == b.kv_heads &&
         a.qk_head_dim == b.qk_head_dim && a.v_head_dim == b.v_head_dim && a.query_len == b.query_len &&
         a.kv_len == b.kv_len && a.context_offset == b.context_offset && a.window == b.window &&
         a.sinks == b.sinks && a.elements == b.elements && a.weight_dtype == b.weight_dtype &&
         a.activation_dtype == b.activation_dtype && a.flops == b.flops && a.weight_bytes == b.weight_bytes &&
         a.input_bytes == b.input_bytes && a.output_bytes == b.output_bytes &&
         a.kv_read_bytes == b.kv_read_bytes && a.kv_write_bytes == b.kv_write_bytes && a.name == b.name;
}

// Element-wise operators split over the GPUs of the group (by head or by intermediate
// column); the others run whole on every GPU.
bool split_elementwise(OpKind k) { return k == OpKind::rope || k == OpKind::activation; }

std::uint64_t share(std::uint64_t bytes, std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? bytes : bytes / whole * part + bytes % whole * part / whole;
}

}  // namespace

std::uint32_t stage_of_layer(std::uint32_t layer, std::uint32_t layers, std::uint32_t pp) {
  const std::uint32_t base = layers / pp, longer = layers % pp;
  const std::uint32_t split = longer * (base + 1);  // the first `longer` stages hold base + 1 layers
  return layer < split ? layer / (base + 1) : longer + (layer - split) / std::max<std::uint32_t>(base, 1);
}

GpuBusy& GpuBusy::operator+=(const GpuBusy& o) {
  tensor_s += o.tensor_s;
  hbm_s += o.hbm_s;
  nvlink_s += o.nvlink_s;
  efa_s += o.efa_s;
  flops += o.flops;
  hbm_bytes += o.hbm_bytes;
  nvlink_bytes += o.nvlink_bytes;
  efa_bytes += o.efa_bytes;
  launch_s += o.launch_s;
  for (std::size_t i = 0; i < algorithm_s.size(); ++i) algorithm_s[i] += o.algorithm_s[i];
  kernels += o.kernels;
  return *this;
}

GpuPass::GpuPass(const GpuConfig& gpu, const NodeConfig& node, const PassConfig& pass)
    : gpu_(gpu), node_(node), cfg_(pass), hbm_(hbm_pipe(gpu.hbm)) {
  const std::uint32_t gpus = node_.gpus, tp = cfg_.tp_degree, pp = cfg_.pp_degree;
  if (tp == 0 || (gpus % tp != 0 && tp % gpus != 0)) {
    throw std::invalid_argument("tp_degree " + std::to_string(tp) + " must divide the node's " +
                                std::to_string(gpus) + " GPUs or be a multiple of them");
  }
  if (pp == 0 || (pp > 1 && gpus % tp != 0)) {
    throw std::invalid_argument("pp_degree " + std::to_string(pp) + " needs tp_degree to divide the node's " +
                                std::to_string(gpus) + " GPUs");
  }
  const std::uint32_t group = tp * pp;
  if (gpus % group != 0 && group % gpus != 0) {
    throw std::invalid_argument("tp_degree x pp_degree = " + std::to_string(group) +
                                " must divide the node's " + std::to_string(gpus) +
                                " GPUs or be a multiple of them");
  }
  tp_nodes_ = tp > gpus ? tp / gpus : 1;
  if (cfg_.gemm_tiles.empty()) throw std::invalid_argument("no GEMM tile configured");
}

GemmShape GpuPass::shard(const Operator& op) const {
  const std::uint64_t p = cfg_.tp_degree;
  GemmShape s{op.m, op.k, op.n, op.count, op.weight_dtype};
  if (row_parallel(op)) {
    s.k = ceil_div(op.k, p);
  } else {
    s.n = ceil_div(op.n, p);
  }
  return s;
}

const GemmTiming& GpuPass::gemm(const GemmShape& s) {
  const auto key = std::make_tuple(s.m, s.k, s.n, s.count, static_cast<int>(s.dtype));
  auto it = gemm_cache_.find(key);
  if (it == gemm_cache_.end()) it = gemm_cache_.emplace(key, best_gemm(gpu_, hbm_, s, cfg_.gemm_tiles)).first;
  return it->second;
}

double GpuPass::attention_compute_s(const Operator& op) {
  const auto key = std::make_tuple(op.query_len, op.context_offset, op.window, op.q_heads, op.kv_heads,
                                   op.qk_head_dim, op.v_head_dim, static_cast<int>(op.weight_dtype));
  if (auto it = attention_cache_.find(key); it != attention_cache_.end()) return it->second;
  const std::uint64_t bq = cfg_.attention_query_tile, bk = cfg_.attention_key_block;
  const std::uint64_t heads = ceil_div(op.q_heads, cfg_.tp_degree);
  const double block_clocks = static_cast<double>(bq * bk) * (op.qk_head_dim + op.v_head_dim) * 2.0 /
                              gpu_.tensor.flops_per_clock(op.weight_dtype);
  // Key blocks of each query tile (rows o + i bq ... the tile's last row, causal).
  std::vector<std::uint64_t> blocks;
  for (std::uint64_t first = 0; first < op.query_len; first += bq) {
    const std::uint64_t last_row = op.context_offset + std::min(first + bq, op.query_len) - 1;
    const std::uint64_t first_row = op.context_offset + first;
    const std::uint64_t first_key =
        op.window == 0 || first_row + 1 < op.window ? 0 : first_row + 1 - op.window;
    const std::uint64_t b = ceil_div(last_row + 1, bk) - first_key / bk;
    for (std::uint64_t h = 0; h < heads; ++h) blocks.push_back(b);
  }
  // Longest first, each to the least loaded SM (the CTA scheduler hands a free SM the next CTA).
  std::sort(blocks.begin(), blocks.end(), std::greater<>());
  std::priority_queue<std::uint64_t, std::vector<std::uint64_t>, std::greater<>> sms;
  for (std::uint32_t s = 0; s < gpu_.sms; ++s) sms.push(0);
  std::uint64_t makespan = 0;
  for (std::uint64_t b : blocks) {
    const std::uint64_t load = sms.top() + b;
    sms.pop();
    sms.push(load);
    makespan = std::max(makespan, load);
  }
  const double s = static_cast<double>(makespan) * block_clocks / gpu_.tensor.clock.hz;
  attention_cache_.emplace(key, s);
  return s;
}

void GpuPass::kernel(Part& p, double compute_s, double flops, workloads::DType t,
                     std::uint64_t hbm_bytes) const {
  const double launch = cfg_.kernel_launch.seconds;
  p.seconds += launch + std::max(compute_s, hbm_.seconds(hbm_bytes));
  p.busy.launch_s += launch;
  p.busy.tensor_s += flops > 0.0 ? flops / gpu_.peak_flops(t) : 0.0;
  p.busy.flops += flops;
  p.busy.hbm_s += static_cast<double>(hbm_bytes) / hbm_.bytes_per_s;
  p.busy.hbm_bytes += hbm_bytes;
  ++p.busy.kernels;
}

void GpuPass::all_reduce(Part& p, std::uint64_t bytes) const {
  if (tp_nodes_ > 1) {
    add_collective(p, multi_node_all_reduce(node_, tp_nodes_, bytes));
    return;
  }
  const NodeCollective c = node_all_reduce(node_, cfg_.tp_degree, bytes);
  p.seconds += c.seconds;
  p.busy.nvlink_s += c.seconds;
  // The bytes the bandwidth floor counts: a GPU's whole buffer leaves it (none alone).
  p.busy.nvlink_bytes += c.floor_s > 0.0 ? bytes : 0;
  p.busy.algorithm_s[static_cast<std::size_t>(c.algorithm)] += c.seconds;
  p.collective_floor_s += c.floor_s;
}

// A collective with a part between nodes (a hierarchical all-reduce, a stage transfer):
// NVLink is busy for its time but the EFA phase, EFA for that phase.
void GpuPass::add_collective(Part& p, const NodeCollective& c) const {
  p.seconds += c.seconds;
  p.busy.nvlink_s += c.seconds - c.efa_s;
  p.busy.efa_s += c.efa_s;
  p.busy.nvlink_bytes += static_cast<std::uint64_t>(c.floor_s * node_.link_bandwidth.bytes_per_s);
  p.busy.efa_bytes += c.efa_bytes;
  p.busy.algorithm_s[static_cast<std::size_t>(c.algorithm)] += c.seconds - c.efa_s;
  p.collective_floor_s += c.floor_s;
  p.efa_floor_s += c.efa_floor_s;
}

void GpuPass::decode_attention(Part& p, const std::vector<Operator>& seqs) const {
  const std::uint64_t bk = cfg_.attention_key_block;
  std::uint64_t blocks = 0, bytes = 0;
  double flops = 0;
  const Operator& first = seqs.front();
  const std::uint64_t kv_heads = ceil_div(first.kv_heads, cfg_.tp_degree);
  const std::uint64_t q_heads = ceil_div(first.q_heads, cfg_.tp_degree);
  const std::uint64_t group = ceil_div(first.q_heads, std::max<std::uint32_t>(first.kv_heads, 1));
  // A (sequence, KV head) pair's rows: its query heads x its query tokens (1 in a decode
  // step, k + 1 in a verification), padded to decode_query_rows; the pairs of the most rows
  // set the blocks' size.
  std::uint64_t query_len = 1;
  for (const Operator& op : seqs) query_len = std::max(query_len, op.query_len);
  const std::uint64_t rows = ceil_div(group * query_len, cfg_.decode_query_rows) * cfg_.decode_query_rows;
  for (const Operator& op : seqs) {
    blocks += kv_heads * ceil_div(op.kv_len, bk);
    bytes += share(op.kv_read_bytes + op.kv_write_bytes, kv_heads, op.kv_heads) +
             share(op.input_bytes + op.output_bytes, q_heads, op.q_heads);
    flops += static_cast<double>(op.flops) * static_cast<double>(q_heads) / op.q_heads;
  }
  const double block_clocks = static_cast<double>(rows * bk) * (first.qk_head_dim + first.v_head_dim) * 2.0 /
                              gpu_.tensor.flops_per_clock(first.weight_dtype);
  const double compute =
      static_cast<double>(ceil_div(blocks, gpu_.sms)) * block_clocks / gpu_.tensor.clock.hz;
  kernel(p, compute, flops, first.weight_dtype, bytes);
}

GpuPass::Part GpuPass::run_ops(const std::vector<Operator>& all, std::size_t from, std::size_t to,
                               bool verify) {
  // Fuse q/k/v and gate/up: column-parallel GEMMs of the same input, one after another.
  const std::vector<Operator> ops =
      cfg_.fuse_projections ? workloads::fuse_projections(all, from, to)
                            : std::vector<Operator>(all.begin() + static_cast<std::ptrdiff_t>(from),
                                                    all.begin() + static_cast<std::ptrdiff_t>(to));
  Part p;
  const std::uint64_t tp = cfg_.tp_degree;
  for (std::size_t o = 0; o < ops.size();) {
    const Operator& op = ops[o];
    if (is_decode_attention(op, verify)) {
      std::size_t e = o + 1;
      while (e < ops.size() && is_decode_attention(ops[e], verify) && ops[e].q_heads == op.q_heads &&
             ops[e].kv_heads == op.kv_heads && ops[e].qk_head_dim == op.qk_head_dim &&
             ops[e].v_head_dim == op.v_head_dim && ops[e].weight_dtype == op.weight_dtype)
        ++e;
      decode_attention(
          p, {ops.begin() + static_cast<std::ptrdiff_t>(o), ops.begin() + static_cast<std::ptrdiff_t>(e)});
      o = e;
      continue;
    }
    switch (op.kind) {
      case OpKind::gemm: {
        const GemmShape s = shard(op);
        const GemmTiming& g = gemm(s);
        kernel(p, g.compute_s, static_cast<double>(g.flops), s.dtype, g.hbm_bytes);
        if (row_parallel(op) && tp > 1) all_reduce(p, op.output_bytes);
        break;
      }
      case OpKind::attention: {
        const std::uint64_t hq = ceil_div(op.q_heads, tp), hkv = ceil_div(op.kv_heads, tp);
        const std::uint64_t bytes = share(op.input_bytes + op.output_bytes, hq, op.q_heads) +
                                    share(op.kv_read_bytes + op.kv_write_bytes, hkv, op.kv_heads);
        const double flops = static_cast<double>(op.flops) * static_cast<double>(hq) / op.q_heads;
        kernel(p, attention_compute_s(op), flops, op.weight_dtype, bytes);
        break;
      }
      default: {
        const std::uint64_t bytes = split_elementwise(op.kind) ? ceil_div(op.bytes(), tp) : op.bytes();
        kernel(p, 0.0, 0.0, op.weight_dtype, bytes);
        break;
      }
    }
    ++o;
  }
  return p;
}

GpuPassResult GpuPass::run(const workloads::OperatorGraph& g) {
  GpuPassResult r;
  const std::uint32_t pp = cfg_.pp_degree;
  std::uint32_t layers = 0;
  std::uint64_t stream_bytes = 0;  // the residual stream: what crosses a stage boundary
  for (const Operator& op : g.ops) {
    if (op.layer >= 0) layers = std::max(layers, static_cast<std::uint32_t>(op.layer) + 1);
    if (op.kind == OpKind::embedding && stream_bytes == 0) stream_bytes = op.output_bytes;
  }
  // Each stage's share of the floor: its matrix FLOPs, HBM bytes, collective floors.
  struct StageWork {
    std::uint64_t flops = 0, bytes = 0;
    double collective_s = 0.0, efa_s = 0.0;
  };
  std::vector<StageWork> work(pp);
  std::size_t prev_i = 0, prev_j = 0;
  Part prev;
  bool prev_layer = false, after = false;
  std::uint32_t stage = 0;
  double stage_start = 0.0;
  r.stage_s.assign(pp, 0.0);
  r.transfer_s.assign(pp - 1, 0.0);
  for (std::size_t i = 0; i < g.ops.size();) {
    const std::int32_t layer = g.ops[i].layer;
    std::size_t j = i;
    while (j < g.ops.size() && g.ops[j].layer == layer) ++j;
    const std::uint32_t s = layer >= 0 ? stage_of_layer(static_cast<std::uint32_t>(layer), layers, pp)
                            : after    ? pp - 1
                                       : 0;
    after = after || layer >= 0;
    for (; stage < s; ++stage) {
      r.stage_s[stage] = r.seconds - stage_start;
      // The activations cross from stage `stage` to the next: between nodes when the
      // next stage's first GPU starts a node.
      const bool across = cfg_.tp_degree * pp > node_.gpus && (stage + 1) * cfg_.tp_degree % node_.gpus == 0;
      Part x;
      add_collective(x, stage_transfer(node_, cfg_.tp_degree,
                                       stream_bytes != 0 ? stream_bytes : g.ops[i].input_bytes, across));
      r.seconds += x.seconds;
      r.transfer_s[stage] = x.seconds;
      stage_start = r.seconds;
      r.busy += x.busy;
      work[stage].collective_s += x.collective_floor_s;
      work[stage].efa_s += x.efa_floor_s;
    }
    Part part;
    if (layer >= 0 && prev_layer && j - i == prev_j - prev_i &&
        std::equal(g.ops.begin() + static_cast<std::ptrdiff_t>(i),
                   g.ops.begin() + static_cast<std::ptrdiff_t>(j),
                   g.ops.begin() + static_cast<std::ptrdiff_t>(prev_i), same_but_layer)) {
      part = prev;
      ++r.reused_layers;
    } else {
      part = run_ops(g.ops, i, j, g.phase == "verify");
    }
    r.seconds += part.seconds;
    r.busy += part.busy;
    StageWork& w = work[s];
    for (std::size_t o = i; o < j; ++o) {
      w.flops += g.ops[o].flops;
      w.bytes += g.ops[o].weight_bytes + g.ops[o].kv_read_bytes + g.ops[o].kv_write_bytes;
    }
    w.collective_s += part.collective_floor_s;
    w.efa_s += part.efa_floor_s;
    if (layer >= 0) r.layer_done_s.push_back(r.seconds);
    prev = part;
    prev_layer = layer >= 0;
    prev_i = i;
    prev_j = j;
    i = j;
  }
  r.stage_s[stage] = r.seconds - stage_start;
  // The floor: each term the largest over the stages (a stage's GPUs can do no better
  // than their share at their peaks).
  workloads::DType fastest = workloads::DType::bf16;
  for (const Operator& op : g.ops) {
    if (op.kind == OpKind::gemm &&
        gpu_.tensor.flops_per_clock(op.weight_dtype) > gpu_.tensor.flops_per_clock(fastest)) {
      fastest = op.weight_dtype;
    }
  }
  const double tp = cfg_.tp_degree;
  for (const StageWork& w : work) {
    r.floor.compute_s =
        std::max(r.floor.compute_s, static_cast<double>(w.flops) / (tp * gpu_.peak_flops(fastest)));
    r.floor.hbm_s = std::max(r.floor.hbm_s, static_cast<double>(w.bytes) / tp / hbm_.peak_bytes_per_s);
    r.floor.collective_s = std::max(r.floor.collective_s, w.collective_s);
    r.floor.efa_s = std::max(r.floor.efa_s, w.efa_s);
  }
  r.floor.step_s = std::max({r.floor.compute_s, r.floor.hbm_s, r.floor.collective_s, r.floor.efa_s});
  return r;
}

}  // namespace wse::gpu

#include "systemc_models/config/config.h"

namespace wse::gpu {

PassConfig read_pass_config(config::Section& s) {
  const PassConfig d;
  PassConfig c;
  c.tp_degree = static_cast<std::uint32_t>(s.integer(
      "tp_degree", {.doc = "tensor-parallel degree: GPUs a stage's layers are sharded over (a divisor "
                           "of the instance's GPUs, or a multiple of them: a group over several "
                           "instances, its all-reduces over EFA between them)",
                    .def = std::to_string(d.tp_degree),
                    .min = 1,
                    .max = 1024}));
  c.pp_degree = static_cast<std::uint32_t>(s.integer(
      "pp_degree", {.doc = "pipeline stages of contiguous decoder layers, each on tp_degree GPUs of "
                           "its own; stages on different instances send activations over EFA",
                    .def = std::to_string(d.pp_degree),
                    .min = 1,
                    .max = 1024}));
  std::string def_tiles = "[";
  for (const CtaTile& t : d.gemm_tiles) {
    if (def_tiles.size() > 1) def_tiles += ", ";
    def_tiles += std::to_string(t.m) + ", " + std::to_string(t.n) + ", " + std::to_string(t.k);
  }
  def_tiles += "]";
  const std::vector<std::int64_t> flat = s.integer_list(
      "gemm_tiles",
      {.doc = "CTA tiles of the GEMM kernels, m, n, k after one another (three numbers per tile)",
       .def = def_tiles});
  if (flat.empty() || flat.size() % 3 != 0) {
    s.fail("gemm_tiles", "expected one or more tiles as m, n, k triples (e.g. [128, 256, 64]), got " +
                             std::to_string(flat.size()) + " numbers");
  }
  c.gemm_tiles.clear();
  for (std::size_t i = 0; i < flat.size(); i += 3) {
    if (flat[i] < 1 || flat[i + 1] < 1 || flat[i + 2] < 1 || flat[i] > 1024 || flat[i + 1] > 1024 ||
        flat[i + 2] > 1024) {
      s.fail("gemm_tiles", "tile " + std::to_string(i / 3 + 1) + " needs m, n and k from 1 to 1024");
    }
    c.gemm_tiles.push_back({static_cast<std::uint32_t>(flat[i]), static_cast<std::uint32_t>(flat[i + 1]),
                            static_cast<std::uint32_t>(flat[i + 2])});
  }
  c.attention_query_tile = static_cast<std::uint32_t>(
      s.integer("attention_query_tile", {.doc = "query rows of one prefill attention CTA",
                                         .def = std::to_string(d.attention_query_tile),
                                         .min = 1,
                                         .max = 4096}));
  c.attention_key_block = static_cast<std::uint32_t>(
      s.integer("attention_key_block", {.doc = "keys per step of an attention CTA's loop",
                                        .def = std::to_string(d.attention_key_block),
                                        .min = 1,
                                        .max = 65536}));
  c.decode_query_rows = static_cast<std::uint32_t>(
      s.integer("decode_query_rows",
                {.doc = "rows a decode attention CTA computes for a KV head's query heads (padded)",
                 .def = std::to_string(d.decode_query_rows),
                 .min = 1,
                 .max = 4096}));
  c.kernel_launch =
      s.duration("kernel_launch", {.doc = "time between two kernels of a pass (launch and drain)",
                                   .def = wse::to_string(d.kernel_launch),
                                   .min = 0});
  c.fuse_projections = s.boolean("fuse_projections", {.doc = "q/k/v and gate/up run as one GEMM each",
                                                      .def = d.fuse_projections ? "true" : "false"});
  return c;
}

}  // namespace wse::gpu
