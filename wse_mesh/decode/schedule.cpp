#include "wse_mesh/decode/schedule.h"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace wse::wafer {

namespace {

using workloads::OpKind;
using workloads::Operator;

// A step of the pipeline with the step that decided its start (critical path).
struct Step {  // 32 bytes: hundreds of thousands of passes fill millions of these
  enum class Kind : std::uint8_t { kRun, kMove, kLink };
  Kind kind = Kind::kRun;
  double start = 0.0, end = 0.0;
  int pred = -1;
  std::uint32_t mb = 0, layer = 0;
};

void add(KernelTiming& sum, const KernelTiming& t) {
  sum.cycles += t.cycles;
  sum.link_cycles += t.link_cycles;
  sum.sram_read_bytes += t.sram_read_bytes;
  sum.sram_write_bytes += t.sram_write_bytes;
  sum.pe_busy_cycles += t.pe_busy_cycles;
}

// Kernel kinds interned once per process, so that the critical-path walk of every pass
// adds up cycles by index instead of looking up strings.
std::vector<std::string>& kind_table() {
  static std::vector<std::string> names;
  return names;
}

std::uint16_t intern_kind(const std::string& kind) {
  std::vector<std::string>& names = kind_table();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kind) return static_cast<std::uint16_t>(i);
  }
  names.push_back(kind);
  return static_cast<std::uint16_t>(names.size() - 1);
}

}  // namespace

const std::string& kernel_kind_name(std::uint16_t id) { return kind_table().at(id); }

std::string kernel_kind(const Operator& op, const LayerPlan& layer) {
  if (op.kind == OpKind::gemm) {
    const TensorGrid* g = layer.grid(op.name);
    return std::string("gemm.") + (g != nullptr ? g->kind : std::string("other"));
  }
  return workloads::to_string(op.kind);
}

MicrobatchWork microbatch_work(const std::vector<LayerPlan>& plans, const workloads::OperatorGraph& mbg,
                               KernelTimer& timer) {
  if (plans.empty()) throw std::invalid_argument("run_schedule: no layers");
  const std::size_t L = plans.size();
  MicrobatchWork w;
  w.layers.resize(L);
  for (const auto& s : mbg.sequences) w.tokens += s.new_tokens;
  bool in_layers = false;
  // A group of operators that run at once on disjoint PEs: a run of consecutive
  // operators of one kind and name in one layer (the sequences' attention), or of the
  // routed experts (the token-count groups of each expert weight: all their gate
  // projections at once, then the up, then the down). Its time: the sum over names of
  // the slowest operator of that name.
  bool open = false;
  std::size_t group_layer = 0;
  std::string group_kind, group_name;
  std::map<std::string, std::uint64_t> slowest;  // by operator name
  const auto flush = [&] {
    if (!open) return;
    std::uint64_t cycles = 0;
    for (const auto& [name, c] : slowest) cycles += c;
    LayerWork& lw = w.layers[group_layer];
    lw.cycles += cycles;
    lw.by_kind[group_kind] += cycles;
    slowest.clear();
    open = false;
  };
  for (const Operator& op : mbg.ops) {
    std::size_t layer = 0;
    if (op.layer >= 0) {
      layer = static_cast<std::size_t>(op.layer);
      in_layers = true;
      if (layer >= L) throw std::invalid_argument("run_schedule: operator of layer " + std::to_string(layer) +
                                                  " beyond the " + std::to_string(L) + " placed layers");
    } else {
      layer = (op.kind == OpKind::embedding || !in_layers) ? 0 : L - 1;
    }
    const KernelTiming t = timer.time(op, plans[layer]);
    add(w.totals, t);
    w.weight_bytes_read += op.weight_bytes;
    w.kv_bytes_read += op.kv_read_bytes;
    w.kv_bytes_written += op.kv_write_bytes;
    const std::string kind = kernel_kind(op, plans[layer]);
    const bool joins = open && group_layer == layer && group_kind == kind &&
                       (kind == "gemm.experts" || group_name == op.name);
    if (!joins) {
      flush();
      open = true;
      group_layer = layer;
      group_kind = kind;
      group_name = op.name;
    }
    std::uint64_t& c = slowest[op.name];
    c = std::max(c, t.cycles);
  }
  flush();
  w.kind_begin.reserve(L + 1);
  for (const LayerWork& lw : w.layers) {
    w.kind_begin.push_back(static_cast<std::uint32_t>(w.kind_cycles.size()));
    for (const auto& [kind, cycles] : lw.by_kind) w.kind_cycles.emplace_back(intern_kind(kind), cycles);
  }
  w.kind_begin.push_back(static_cast<std::uint32_t>(w.kind_cycles.size()));
  return w;
}

WaferRunResult run_schedule(const std::vector<LayerPlan>& plans, const std::vector<workloads::OperatorGraph>& mbs,
                            KernelTimer& timer, const ScheduleOptions& opt) {
  if (mbs.empty()) throw std::invalid_argument("run_schedule: no microbatches");
  std::vector<MicrobatchWork> work;
  work.reserve(mbs.size());
  for (const auto& g : mbs) work.push_back(microbatch_work(plans, g, timer));
  std::vector<const MicrobatchWork*> ptrs;
  for (const auto& w : work) ptrs.push_back(&w);
  MoveMemo moves;
  return run_pipeline(plans, ptrs, timer, opt, moves);
}

WaferRunResult run_pipeline(const std::vector<LayerPlan>& plans, const std::vector<const MicrobatchWork*>& work,
                            KernelTimer& timer, const ScheduleOptions& opt, MoveMemo& moves) {
  if (plans.empty()) throw std::invalid_argument("run_schedule: no layers");
  if (work.empty()) throw std::invalid_argument("run_schedule: no microbatches");
  const std::size_t L = plans.size(), M = work.size();
  WaferRunResult r;
  r.microbatches = static_cast<std::uint32_t>(M);
  KernelTiming totals;
  for (const MicrobatchWork* w : work) {
    add(totals, w->totals);
    r.weight_bytes_read += w->weight_bytes_read;
    r.kv_bytes_read += w->kv_bytes_read;
    r.kv_bytes_written += w->kv_bytes_written;
  }

  // The pipeline, one cell per (microbatch, layer). A cell keeps only what the
  // critical-path walk needs to retrace it exactly: when its run ended, which input
  // decided its start, and for a layer whose input crosses a link, when that transfer
  // ended and what decided the transfer's start. The buffers live across passes: a
  // serving run schedules hundreds of thousands of passes.
  const double clock = opt.clock_hz;
  thread_local std::vector<double> done;       // run end of cell mb * L + l
  thread_local std::vector<double> xfer_end;   // link cells: the transfer's end
  thread_local std::vector<std::int32_t> xfer_pred;  // link cells: previous transfer's cell, or -1 (the run)
  thread_local std::vector<std::uint8_t> after_prev;  // 1: the run waited for the previous microbatch
  done.assign(M * L, 0.0);
  after_prev.assign(M * L, 0);
  xfer_end.resize(M * L);
  xfer_pred.resize(M * L);
  std::vector<std::int32_t> link_last(opt.wafers > 0 ? opt.wafers : 1, -1);  // last transfer's cell per link
  // Per layer: the link its input crosses (the sending wafer), or -1 when it comes over
  // the fabric of the same wafer; read once, not from the plans in the inner loop.
  thread_local std::vector<std::int32_t> link_in;
  link_in.assign(L, -1);
  for (std::size_t l = 1; l < L; ++l) {
    if (plans[l].region.wafer != plans[l - 1].region.wafer) link_in[l] = static_cast<std::int32_t>(plans[l - 1].region.wafer);
  }
  double link_transfer_s = 0.0;
  // The moves of the current token count, per layer (looked up once per count).
  std::vector<const KernelTiming*> move_of(L, nullptr);
  std::uint64_t move_tokens = UINT64_MAX;
  for (std::size_t mb = 0; mb < M; ++mb) {
    const std::uint64_t tokens = work[mb]->tokens;
    const std::uint64_t act_bytes = tokens * opt.hidden * opt.activation_bytes;
    if (tokens != move_tokens) {
      move_tokens = tokens;
      for (std::size_t l = 1; l < L; ++l) {
        if (link_in[l] >= 0) continue;
        auto it = moves.find({l, tokens});
        if (it == moves.end()) {
          it = moves.emplace(std::make_pair(l, tokens), timer.move(plans[l - 1], plans[l], tokens, act_bytes)).first;
        }
        move_of[l] = &it->second;
      }
    }
    const std::size_t row = mb * L;
    for (std::size_t l = 0; l < L; ++l) {
      const std::size_t cell = row + l;
      double arrival = 0.0;  // when the input is at layer l
      if (l > 0) {
        const double prev_done = done[cell - 1];  // this microbatch's run of layer l-1
        if (link_in[l] >= 0) {
          const auto link = static_cast<std::size_t>(link_in[l]);
          double start = prev_done;
          xfer_pred[cell] = -1;
          if (link_last[link] >= 0 && xfer_end[static_cast<std::size_t>(link_last[link])] > start) {
            start = xfer_end[static_cast<std::size_t>(link_last[link])];
            xfer_pred[cell] = link_last[link];
          }
          const double end = start + static_cast<double>(act_bytes) / opt.link_bandwidth_bytes_per_s;
          link_transfer_s += end - start;
          r.link_bytes += act_bytes;
          xfer_end[cell] = end;
          link_last[link] = static_cast<std::int32_t>(cell);
          arrival = end + opt.link_latency_s;
        } else {
          add(totals, *move_of[l]);
          arrival = prev_done + static_cast<double>(move_of[l]->cycles) / clock;
        }
      }
      double start = arrival;
      if (mb > 0 && done[cell - L] > start) {
        start = done[cell - L];
        after_prev[cell] = 1;
      }
      done[cell] = start + static_cast<double>(work[mb]->layers[l].cycles) / clock;
    }
  }
  r.layer_done_s.resize(L);
  for (std::size_t l = 0; l < L; ++l) r.layer_done_s[l] = done[(M - 1) * L + l];
  r.seconds = done[M * L - 1];

  // Critical path, charged by kernel kind: from the last run back, through the step that
  // decided each start (the previous microbatch's run of the layer, the activation move
  // or the link transfer and its latency, or the previous transfer on the link).
  std::vector<std::uint64_t> critical(kind_table().size(), 0);
  std::size_t mb = M - 1, l = L - 1;
  std::uint64_t walk_tokens = move_tokens;  // move_of holds this count's moves
  for (;;) {
    const MicrobatchWork& w = *work[mb];
    for (std::uint32_t k = w.kind_begin[l]; k < w.kind_begin[l + 1]; ++k) critical[w.kind_cycles[k].first] += w.kind_cycles[k].second;
    const std::size_t cell = mb * L + l;
    if (after_prev[cell] != 0) {
      --mb;
      continue;
    }
    if (l == 0) break;
    if (link_in[l] >= 0) {
      // The link's latency, then the transfer, then back through the transfers before it
      // on the link while one of them decided the start, to the run that sent the first.
      r.kernel_seconds["link"] += (xfer_end[cell] + opt.link_latency_s) - xfer_end[cell];
      std::size_t x = cell;
      for (;;) {
        const std::int32_t p = xfer_pred[x];
        const double start = p >= 0 ? xfer_end[static_cast<std::size_t>(p)] : done[x - 1];
        r.kernel_seconds["link"] += xfer_end[x] - start;
        if (p < 0) break;
        x = static_cast<std::size_t>(p);
      }
      mb = x / L;
      l = x % L - 1;
      continue;
    }
    if (work[mb]->tokens != walk_tokens) {  // the moves of this token count, as in the pass
      walk_tokens = work[mb]->tokens;
      for (std::size_t m = 1; m < L; ++m) {
        if (link_in[m] < 0) move_of[m] = &moves.at({m, walk_tokens});
      }
    }
    const double start = done[cell - 1];
    const double move = static_cast<double>(move_of[l]->cycles) / clock;
    r.kernel_seconds["activation_move"] += (start + move) - start;
    --l;
  }

  for (std::size_t id = 0; id < critical.size(); ++id) {
    if (critical[id] > 0) {
      r.kernel_seconds[kind_table()[id]] += static_cast<double>(critical[id]) / clock;
    }
  }

  // Busy fractions over the pass.
  const double cycles = r.seconds * clock;
  if (cycles > 0.0) {
    const double wafers = opt.wafers;
    if (opt.link_directions_per_wafer > 0) {
      r.fabric_link_busy = static_cast<double>(totals.link_cycles) /
                           (wafers * static_cast<double>(opt.link_directions_per_wafer) * cycles);
    }
    if (opt.pes_per_wafer > 0) {
      const double pes = wafers * static_cast<double>(opt.pes_per_wafer);
      r.pe_busy = static_cast<double>(totals.pe_busy_cycles) / (pes * cycles);
      if (opt.sram_port_bytes_per_cycle > 0) {
        r.sram_port_busy = static_cast<double>(totals.sram_read_bytes + totals.sram_write_bytes) /
                           (pes * static_cast<double>(opt.sram_port_bytes_per_cycle) * cycles);
      }
    }
    if (opt.wafers > 1) r.link_busy = link_transfer_s / ((wafers - 1.0) * r.seconds);
  }
  return r;
}

}  // namespace wse::wafer
