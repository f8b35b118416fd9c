#include "wse_mesh/decode/schedule.h"

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>

namespace wse::wafer {

namespace {

using workloads::Operator;
using workloads::OpKind;

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

// kKernelKinds lists "gemm." and each of these eight grid kinds: a grid kind added there
// needs its entry here too.
static_assert(std::size(kGridKinds) == 8, "kKernelKinds: add \"gemm.<kind>\" for the new grid kind");

}  // namespace

std::uint16_t kernel_kind_index(std::string_view kind) {
  for (std::size_t i = 0; i < kKernelKindCount; ++i) {
    if (kKernelKinds[i] == kind) return static_cast<std::uint16_t>(i);
  }
  throw std::logic_error("kernel_kind_index: kernel kind '" + std::string(kind) + "' is not in kKernelKinds");
}

std::string kernel_kind(const Operator& op, const LayerPlan& layer) {
  if (op.kind == OpKind::gemm) {
    const TensorGrid* g = layer.grid(op.name);
    return std::string("gemm.") + (g != nullptr ? g->kind : std::string("other"));
  }
  return workloads::to_string(op.kind);
}

namespace {

// Operators that leave their output in place, with no collective: they cost a floor
// latency of nothing (docs/wse_mesh.md, "The floor").
bool local_only(OpKind k) {
  return k == OpKind::rope || k == OpKind::activation || k == OpKind::residual_add ||
         k == OpKind::expert_combine;
}

}  // namespace

// The fewest hops a collective over `bytes` of operands can take (docs/wse_mesh.md, "The
// floor"): the operands fill at least n = ceil(bytes / SRAM) PEs, and at most 2d^2 + 2d +
// 1 PEs lie within d hops of any PE, so some operand is at least the smallest such d away
// from wherever the result forms.
std::uint64_t floor_hops(std::uint64_t bytes, std::uint64_t sram_bytes_per_pe) {
  if (sram_bytes_per_pe == 0 || bytes == 0) return 0;
  const std::uint64_t n = (bytes + sram_bytes_per_pe - 1) / sram_bytes_per_pe;
  std::uint64_t d = 0;
  while (2 * d * d + 2 * d + 1 < n) ++d;
  return d;
}

MicrobatchWork microbatch_work(const std::vector<LayerPlan>& plans, const workloads::OperatorGraph& mbg,
                               KernelTimer& timer, double clock_hz, std::uint64_t sram_bytes_per_pe) {
  if (plans.empty()) throw std::invalid_argument("run_schedule: no layers");
  const std::size_t L = plans.size();
  MicrobatchWork w;
  w.layers.resize(L);
  w.floor_hops.assign(L, 0);
  for (const auto& s : mbg.sequences) w.tokens += s.new_tokens;
  bool in_layers = false;
  // A group: consecutive operators of one kind in one layer that may run at once: the
  // sequences' attention (same name), the routed experts (every expert weight), or GEMMs
  // reading the same input (same k: q, k, v; gate, up). Inside a group, operators on the
  // same grid (or of the same name, without a grid) are one stage, whose time is its
  // slowest operator's (experts with different token counts are different copies; the
  // fused q/k/v grid is timed once). Stages then form levels in order: a stage joins the
  // current level when it reads the same input and its PEs are disjoint from every
  // stage of the level (they run at once); otherwise it starts the next level. A group's
  // time is the sum of its levels' slowest stages, plus, for GEMMs, the hand-off of each
  // level's results to the next kernel (KernelTimer::handoff).
  struct Stage {
    const TensorGrid* grid = nullptr;
    std::string name;
    std::uint64_t k = 0;
    std::uint64_t cycles = 0;
    std::uint64_t handoff = 0;
    std::uint64_t operand_bytes = 0;  // weights or KV one operator gathers from (the floor)
  };
  bool open = false;
  std::size_t group_layer = 0;
  std::string group_kind, group_name;
  std::uint64_t group_k = 0;
  bool group_collective = false;
  std::vector<Stage> stages;
  const auto flush = [&] {
    if (!open) return;
    std::uint64_t cycles = 0, moves = 0;
    std::size_t level_begin = 0;
    std::uint64_t level_max = 0, level_move = 0, level_bytes = 0;
    std::uint64_t hops = 0;  // the floor: fewest hops of the levels' collectives
    for (std::size_t i = 0; i < stages.size(); ++i) {
      bool joins = i > 0 && stages[i].k == stages[level_begin].k;
      for (std::size_t j = level_begin; joins && j < i; ++j) {
        joins = stages[i].grid != nullptr && stages[j].grid != nullptr &&
                !overlaps(*stages[i].grid, *stages[j].grid);
      }
      if (!joins && i > 0) {
        cycles += level_max;
        moves += level_move;
        hops += floor_hops(level_bytes, sram_bytes_per_pe);
        level_begin = i;
        level_max = level_move = level_bytes = 0;
      }
      level_max = std::max(level_max, stages[i].cycles);
      level_move = std::max(level_move, stages[i].handoff);
      level_bytes = std::max(level_bytes, stages[i].operand_bytes);
    }
    cycles += level_max;
    moves += level_move;
    hops += floor_hops(level_bytes, sram_bytes_per_pe);
    LayerWork& lw = w.layers[group_layer];
    lw.cycles += cycles + moves;
    lw.by_kind[group_kind] += cycles;
    if (moves > 0) lw.by_kind["kernel_move"] += moves;
    if (group_collective) w.floor_hops[group_layer] += hops;
    stages.clear();
    open = false;
  };
  for (const Operator& op : mbg.ops) {
    std::size_t layer = 0;
    if (op.layer >= 0) {
      layer = static_cast<std::size_t>(op.layer);
      in_layers = true;
      if (layer >= L)
        throw std::invalid_argument("run_schedule: operator of layer " + std::to_string(layer) +
                                    " beyond the " + std::to_string(L) + " placed layers");
    } else {
      layer = (op.kind == OpKind::embedding || !in_layers) ? 0 : L - 1;
    }
    const LayerPlan& plan = plans[layer];
    w.weight_bytes_read += op.weight_bytes;
    w.kv_bytes_read += op.kv_read_bytes;
    w.kv_bytes_written += op.kv_write_bytes;
    if (op.kind == OpKind::gemm || op.kind == OpKind::attention) w.flops += op.flops;
    const std::string kind = kernel_kind(op, plan);
    const bool gemm = op.kind == OpKind::gemm;
    const bool joins = open && group_layer == layer && group_kind == kind &&
                       (kind == "gemm.experts" || group_name == op.name || (gemm && op.k == group_k));
    if (!joins) {
      flush();
      open = true;
      group_layer = layer;
      group_kind = kind;
      group_name = op.name;
      group_k = op.k;
      group_collective = !local_only(op.kind) && op.kind != OpKind::embedding;
    }
    const TensorGrid* grid = gemm ? plan.grid(op.name) : nullptr;
    auto it = std::find_if(stages.begin(), stages.end(), [&](const Stage& s) {
      return grid != nullptr ? s.grid == grid : (s.grid == nullptr && s.name == op.name);
    });
    // A fused grid computes all its members' outputs in one GEMM: timed once.
    if (it != stages.end() && grid != nullptr && !grid->members.empty()) continue;
    const KernelTiming t = timer.time(op, plan);
    add(w.totals, t);
    if (it == stages.end()) {
      stages.push_back({grid, op.name, op.k, 0, 0});
      it = stages.end() - 1;
    }
    it->cycles = std::max(it->cycles, t.cycles);
    it->operand_bytes = std::max(it->operand_bytes,
                                 op.weight_bytes / std::max<std::uint32_t>(1, op.count) + op.kv_read_bytes);
    if (grid != nullptr && grid->kind != "lm_head") {
      const KernelTiming h = timer.handoff(*grid, op.m);
      add(w.totals, h);
      it->handoff = std::max(it->handoff, h.cycles);
    }
  }
  flush();
  w.kind_begin.reserve(L + 1);
  for (const LayerWork& lw : w.layers) {
    w.kind_begin.push_back(static_cast<std::uint32_t>(w.kind_cycles.size()));
    for (const auto& [kind, cycles] : lw.by_kind) w.kind_cycles.emplace_back(kernel_kind_index(kind), cycles);
  }
  w.kind_begin.push_back(static_cast<std::uint32_t>(w.kind_cycles.size()));
  w.clock_hz = clock_hz;
  w.layer_seconds.resize(L);
  for (std::size_t l = 0; l < L; ++l) w.layer_seconds[l] = static_cast<double>(w.layers[l].cycles) / clock_hz;
  return w;
}

namespace {

// The physical floor of a pass (docs/wse_mesh.md, "The floor"): its matrix FLOPs at every
// PE's peak, its SRAM bytes at every PE's ports, and the longest chain of dependent
// collectives of one microbatch at the fewest hops its operands allow, plus the link
// crossings between wafers (latency and the activations' transfer).
WaferFloor pass_floor(const std::vector<const MicrobatchWork*>& work,
                      const std::vector<std::int32_t>& link_in, const ScheduleOptions& opt) {
  WaferFloor f;
  const double clock = opt.clock_hz;
  const double pes = static_cast<double>(opt.wafers) * static_cast<double>(opt.pes_per_wafer);
  std::uint64_t flops = 0, reads = 0, writes = 0;
  double chain = 0.0;
  for (const MicrobatchWork* w : work) {
    flops += w->flops;
    reads += w->weight_bytes_read + w->kv_bytes_read;
    writes += w->kv_bytes_written;
    std::uint64_t hops = 0;
    for (std::uint64_t h : w->floor_hops) hops += h;
    double s = static_cast<double>(hops) * opt.hop_latency_cycles / clock;
    const double act = static_cast<double>(w->tokens) * opt.hidden * opt.activation_bytes;
    for (std::int32_t link : link_in) {
      if (link >= 0) s += opt.link_latency_s + act / opt.link_bandwidth_bytes_per_s;
    }
    chain = std::max(chain, s);
  }
  if (pes > 0.0 && opt.macs_per_cycle_per_pe > 0) {
    f.compute_s =
        static_cast<double>(flops) / (2.0 * static_cast<double>(opt.macs_per_cycle_per_pe) * pes * clock);
  }
  if (pes > 0.0 && opt.sram_read_bytes_per_cycle > 0 && opt.sram_write_bytes_per_cycle > 0) {
    f.sram_s = std::max(
        static_cast<double>(reads) / (pes * static_cast<double>(opt.sram_read_bytes_per_cycle) * clock),
        static_cast<double>(writes) / (pes * static_cast<double>(opt.sram_write_bytes_per_cycle) * clock));
  }
  f.latency_s = chain;
  f.step_s = std::max({f.compute_s, f.sram_s, f.latency_s});
  return f;
}

}  // namespace

WaferRunResult run_schedule(const std::vector<LayerPlan>& plans,
                            const std::vector<workloads::OperatorGraph>& mbs, KernelTimer& timer,
                            const ScheduleOptions& opt) {
  if (mbs.empty()) throw std::invalid_argument("run_schedule: no microbatches");
  std::vector<MicrobatchWork> work;
  work.reserve(mbs.size());
  for (const auto& g : mbs)
    work.push_back(microbatch_work(plans, g, timer, opt.clock_hz, opt.floor_sram_bytes_per_pe));
  std::vector<const MicrobatchWork*> ptrs;
  for (const auto& w : work) ptrs.push_back(&w);
  MoveMemo moves;
  return run_pipeline(plans, ptrs, timer, opt, moves);
}

WaferRunResult run_pipeline(const std::vector<LayerPlan>& plans,
                            const std::vector<const MicrobatchWork*>& work, KernelTimer& timer,
                            const ScheduleOptions& opt, MoveMemo& moves) {
  if (plans.empty()) throw std::invalid_argument("run_schedule: no layers");
  if (work.empty()) throw std::invalid_argument("run_schedule: no microbatches");
  const std::size_t L = plans.size(), M = work.size();
  WaferRunResult r;
  r.microbatches = static_cast<std::uint32_t>(M);
  KernelTiming totals;
  for (const MicrobatchWork* w : work) {
    add(totals, w->totals);
    r.flops += w->flops;
    r.weight_bytes_read += w->weight_bytes_read;
    r.kv_bytes_read += w->kv_bytes_read;
    r.kv_bytes_written += w->kv_bytes_written;
  }

  // The pipeline, one cell per (microbatch, layer). A cell keeps only what the
  // critical-path walk needs to retrace it exactly: when its run ended, which input
  // decided its start, and for a layer whose input crosses a link, when that transfer
  // ended and what decided the transfer's start. The buffers' storage lives across passes
  // (a serving run schedules hundreds of thousands of passes), thread_local so that
  // decoders on different threads do not share it; they hold no state between calls:
  // every entry a pass reads it has written (assign, or a link cell's transfer written
  // before link_last or xfer_pred points at it).
  const double clock = opt.clock_hz;
  thread_local std::vector<double> done;              // run end of cell mb * L + l
  thread_local std::vector<double> xfer_end;          // link cells: the transfer's end
  thread_local std::vector<std::int32_t> xfer_pred;   // link cells: previous transfer's cell, or -1 (the run)
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
    if (plans[l].region.wafer != plans[l - 1].region.wafer)
      link_in[l] = static_cast<std::int32_t>(plans[l - 1].region.wafer);
  }
  double link_transfer_s = 0.0;
  // The moves of the current token count, per layer (looked up once per count).
  std::vector<const KernelTiming*> move_of(L, nullptr);
  thread_local std::vector<double> move_seconds;  // move_of[l]->cycles / clock
  move_seconds.assign(L, 0.0);
  std::uint64_t move_tokens = UINT64_MAX;
  for (std::size_t mb = 0; mb < M; ++mb) {
    const MicrobatchWork& w = *work[mb];
    if (w.clock_hz != clock || w.layer_seconds.size() != L) {
      throw std::invalid_argument(
          "run_pipeline: a microbatch's work was timed for another clock or placement");
    }
    const double* layer_s = w.layer_seconds.data();
    const std::uint64_t tokens = w.tokens;
    const std::uint64_t act_bytes = tokens * opt.hidden * opt.activation_bytes;
    if (tokens != move_tokens) {
      move_tokens = tokens;
      auto it = moves.find(tokens);
      if (it == moves.end()) {
        std::vector<KernelTiming> timed(L);
        for (std::size_t l = 1; l < L; ++l) {
          if (link_in[l] < 0) timed[l] = timer.move(plans[l - 1], plans[l], tokens, act_bytes);
        }
        it = moves.emplace(tokens, std::move(timed)).first;
      }
      for (std::size_t l = 1; l < L; ++l) {
        if (link_in[l] >= 0) continue;
        move_of[l] = &it->second[l];
        move_seconds[l] = static_cast<double>(it->second[l].cycles) / clock;
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
          arrival = prev_done + move_seconds[l];
        }
      }
      double start = arrival;
      if (mb > 0 && done[cell - L] > start) {
        start = done[cell - L];
        after_prev[cell] = 1;
      }
      done[cell] = start + layer_s[l];
    }
  }
  r.layer_done_s.resize(L);
  for (std::size_t l = 0; l < L; ++l) r.layer_done_s[l] = done[(M - 1) * L + l];
  r.seconds = done[M * L - 1];

  // Critical path, charged by kernel kind: from the last run back, through the step that
  // decided each start (the previous microbatch's run of the layer, the activation move
  // or the link transfer and its latency, or the previous transfer on the link).
  std::array<std::uint64_t, kKernelKindCount> critical{};
  // The link and move times are summed here in the walk's order (the same additions, in
  // the same order, as into their entries of kernel_seconds), and entered once.
  double link_s = 0.0, move_s = 0.0;
  bool link_walked = false, move_walked = false;
  std::size_t mb = M - 1, l = L - 1;
  std::uint64_t walk_tokens = move_tokens;  // move_of holds this count's moves
  for (;;) {
    const MicrobatchWork& w = *work[mb];
    for (std::uint32_t k = w.kind_begin[l]; k < w.kind_begin[l + 1]; ++k)
      critical[w.kind_cycles[k].first] += w.kind_cycles[k].second;
    const std::size_t cell = mb * L + l;
    if (after_prev[cell] != 0) {
      --mb;
      continue;
    }
    if (l == 0) break;
    if (link_in[l] >= 0) {
      // The link's latency, then the transfer, then back through the transfers before it
      // on the link while one of them decided the start, to the run that sent the first.
      link_walked = true;
      link_s += (xfer_end[cell] + opt.link_latency_s) - xfer_end[cell];
      std::size_t x = cell;
      for (;;) {
        const std::int32_t p = xfer_pred[x];
        const double start = p >= 0 ? xfer_end[static_cast<std::size_t>(p)] : done[x - 1];
        link_s += xfer_end[x] - start;
        if (p < 0) break;
        x = static_cast<std::size_t>(p);
      }
      mb = x / L;
      l = x % L - 1;
      continue;
    }
    if (work[mb]->tokens != walk_tokens) {  // the moves of this token count, as in the pass
      walk_tokens = work[mb]->tokens;
      const std::vector<KernelTiming>& timed = moves.at(walk_tokens);
      for (std::size_t m = 1; m < L; ++m) {
        if (link_in[m] < 0) move_of[m] = &timed[m];
      }
    }
    const double start = done[cell - 1];
    const double move = static_cast<double>(move_of[l]->cycles) / clock;
    move_walked = true;
    move_s += (start + move) - start;
    --l;
  }
  if (link_walked) r.kernel_seconds["link"] = link_s;
  if (move_walked) r.kernel_seconds["activation_move"] = move_s;

  for (std::size_t id = 0; id < kKernelKindCount; ++id) {
    if (critical[id] > 0) {
      r.kernel_seconds[std::string(kKernelKinds[id])] += static_cast<double>(critical[id]) / clock;
    }
  }

  r.sram_read_bytes = totals.sram_read_bytes;
  r.sram_write_bytes = totals.sram_write_bytes;
  r.fabric_wavelet_hops = totals.link_cycles;
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
  r.floor = pass_floor(work, link_in, opt);
  r.floor_ratio = r.floor.step_s > 0.0 ? r.seconds / r.floor.step_s : 0.0;
  return r;
}

}  // namespace wse::wafer
