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
    const std::uint16_t id = intern_kind(group_kind);
    auto it = std::find_if(lw.by_kind_id.begin(), lw.by_kind_id.end(), [&](const auto& e) { return e.first == id; });
    if (it == lw.by_kind_id.end()) {
      lw.by_kind_id.emplace_back(id, cycles);
    } else {
      it->second += cycles;
    }
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

  // The pipeline.
  const double clock = opt.clock_hz;
  // The steps of the pass, in a buffer kept across passes: a serving run schedules
  // hundreds of thousands of passes, and allocating (and faulting in) a fresh buffer of
  // microbatches x layers steps each time costs more than the schedule itself.
  thread_local std::vector<Step> steps;
  steps.clear();
  steps.reserve(M * L * 3);
  std::vector<int> last_run(L, -1);                                   // previous microbatch's run per layer
  std::vector<int> link_last(opt.wafers > 0 ? opt.wafers : 1, -1);    // last transfer per link (wafer w -> w+1)
  double link_transfer_s = 0.0;
  const auto push = [&](Step s) {
    steps.push_back(s);
    return static_cast<int>(steps.size() - 1);
  };
  // The moves of the current token count, per layer (looked up once per count).
  std::vector<const KernelTiming*> move_of(L, nullptr);
  std::uint64_t move_tokens = UINT64_MAX;
  for (std::size_t mb = 0; mb < M; ++mb) {
    const std::uint64_t tokens = work[mb]->tokens;
    const std::uint64_t act_bytes = tokens * opt.hidden * opt.activation_bytes;
    if (tokens != move_tokens) {
      move_tokens = tokens;
      for (std::size_t l = 1; l < L; ++l) {
        if (plans[l].region.wafer != plans[l - 1].region.wafer) continue;
        auto it = moves.find({l, tokens});
        if (it == moves.end()) {
          it = moves.emplace(std::make_pair(l, tokens), timer.move(plans[l - 1], plans[l], tokens, act_bytes)).first;
        }
        move_of[l] = &it->second;
      }
    }
    int arrival = -1;  // the step whose end is when the input is at layer l
    const auto mb32 = static_cast<std::uint32_t>(mb);
    for (std::size_t l = 0; l < L; ++l) {
      const auto l32 = static_cast<std::uint32_t>(l);
      if (l > 0) {
        const int prev_run = last_run[l - 1];  // this microbatch's run of layer l-1 (already updated)
        if (plans[l].region.wafer != plans[l - 1].region.wafer) {
          const std::uint32_t link = plans[l - 1].region.wafer;
          Step xfer{Step::Kind::kLink, 0, 0, prev_run, mb32, l32};
          xfer.start = steps[prev_run].end;
          if (link_last[link] >= 0 && steps[link_last[link]].end > xfer.start) {
            xfer.start = steps[link_last[link]].end;
            xfer.pred = link_last[link];
          }
          xfer.end = xfer.start + static_cast<double>(act_bytes) / opt.link_bandwidth_bytes_per_s;
          link_transfer_s += xfer.end - xfer.start;
          r.link_bytes += act_bytes;
          const int xi = push(xfer);
          link_last[link] = xi;
          Step lat{Step::Kind::kLink, steps[xi].end, steps[xi].end + opt.link_latency_s, xi, mb32, l32};
          arrival = push(lat);
        } else {
          const KernelTiming& mv = *move_of[l];
          add(totals, mv);
          const double start = steps[prev_run].end;
          arrival = push({Step::Kind::kMove, start, start + static_cast<double>(mv.cycles) / clock, prev_run, mb32, l32});
        }
      }
      Step run{Step::Kind::kRun, 0.0, 0.0, arrival, mb32, l32};
      run.start = arrival >= 0 ? steps[arrival].end : 0.0;
      if (last_run[l] >= 0 && steps[last_run[l]].end > run.start) {
        run.start = steps[last_run[l]].end;
        run.pred = last_run[l];
      }
      run.end = run.start + static_cast<double>(work[mb]->layers[l].cycles) / clock;
      last_run[l] = push(run);
    }
  }
  r.layer_done_s.resize(L);
  for (std::size_t l = 0; l < L; ++l) r.layer_done_s[l] = steps[last_run[l]].end;
  r.seconds = steps[last_run[L - 1]].end;

  // Critical path, charged by kernel kind.
  std::vector<std::uint64_t> critical(kind_table().size(), 0);
  for (int i = last_run[L - 1]; i >= 0; i = steps[i].pred) {
    const Step& s = steps[i];
    switch (s.kind) {
      case Step::Kind::kRun:
        for (const auto& [id, cycles] : work[s.mb]->layers[s.layer].by_kind_id) critical[id] += cycles;
        break;
      case Step::Kind::kMove:
        r.kernel_seconds["activation_move"] += s.end - s.start;
        break;
      case Step::Kind::kLink:
        r.kernel_seconds["link"] += s.end - s.start;
        break;
    }
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
