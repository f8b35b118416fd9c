#include "neuroncore/core/chip_sim.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace wse::neuron {

double ChipResult::tensor_utilization(std::size_t core) const {
  return end_ps == 0 ? 0.0 : cores.at(core).tensor_full_array_ps / static_cast<double>(end_ps);
}

double ChipResult::hbm_utilization() const {
  return end_ps == 0 ? 0.0 : static_cast<double>(hbm_busy_ps) / hbm_lanes / static_cast<double>(end_ps);
}

std::uint64_t ChipSim::matmul_cycles(const TensorEngineConfig& t, std::uint32_t k, std::uint32_t m,
                                     std::uint32_t n, DType d) {
  const auto load = (k + t.stationary_rows_per_cycle - 1) / t.stationary_rows_per_cycle;
  const auto stream = static_cast<std::uint64_t>(std::ceil(n / t.moving_per_cycle(d)));
  return load + stream + k + m;
}

ChipSim::ChipSim(const ChipConfig& cfg) : cfg_(cfg), hbm_(make_hbm_backend(cfg.hbm, cfg.hbm_fidelity)) {}

std::uint64_t ChipSim::cycles_to_ps(double cycles, Frequency f) const {
  return round_ps(cycles * 1e12 / f.hz);
}

void ChipSim::push(std::uint64_t at, EventKind k, std::uint32_t core, std::uint32_t index) {
  events_.push(Event{at, seq_++, k, core, index});
}

ChipResult ChipSim::run(const std::vector<Program>& programs) {
  if (programs.size() > cfg_.cores) {
    throw std::invalid_argument("chip: " + std::to_string(programs.size()) + " programs for " +
                                std::to_string(cfg_.cores) + " cores");
  }
  const NeuronCoreConfig& nc = cfg_.core;
  cores_.assign(programs.size(), Core{});
  for (std::uint32_t c = 0; c < programs.size(); ++c) {
    Core& core = cores_[c];
    const Program& p = programs[c];
    core.program = &p;
    const std::size_t n = p.size();
    core.pending_deps.assign(n, 0);
    core.ready_ps.assign(n, 0);
    core.dependents.assign(n, {});
    core.queues.assign(nc.dma.queues, DmaQueue{});
    core.result.timing.assign(n, {});
    for (std::uint32_t i = 0; i < n; ++i) {
      const Instruction& ins = p.instructions()[i];
      core.pending_deps[i] = static_cast<std::uint32_t>(ins.deps.size());
      for (std::uint32_t d : ins.deps) core.dependents[d].push_back(i);
      switch (ins.engine) {
        case Engine::kTensor:
          if (ins.k == 0 || ins.k > nc.tensor.rows || ins.m == 0 || ins.m > nc.tensor.columns || ins.n == 0 ||
              ins.n > nc.tensor.max_moving) {
            throw std::invalid_argument(
                "matmul " + std::to_string(i) + ": K x M x N = " + std::to_string(ins.k) + " x " +
                std::to_string(ins.m) + " x " + std::to_string(ins.n) + " exceeds one tile (" +
                std::to_string(nc.tensor.rows) + " x " + std::to_string(nc.tensor.columns) + " x " +
                std::to_string(nc.tensor.max_moving) + ")");
          }
          core.tensor.order.push_back(i);
          break;
        case Engine::kVector:
          core.vector.order.push_back(i);
          break;
        case Engine::kScalar:
          core.scalar.order.push_back(i);
          break;
        case Engine::kGpSimd:
          core.gpsimd.order.push_back(i);
          break;
        case Engine::kDma:
          if (ins.queue >= nc.dma.queues) {
            throw std::invalid_argument("DMA instruction " + std::to_string(i) + " names queue " +
                                        std::to_string(ins.queue) + " of " + std::to_string(nc.dma.queues));
          }
          core.queues[ins.queue].order.push_back(i);
          break;
      }
    }
  }
  now_ps_ = 0;
  for (std::uint32_t c = 0; c < cores_.size(); ++c) {
    Core& core = cores_[c];
    dispatch(c, core.tensor);
    dispatch(c, core.vector);
    dispatch(c, core.scalar);
    dispatch(c, core.gpsimd);
    for (std::uint32_t q = 0; q < core.queues.size(); ++q) dispatch_dma(c, q, 0);
  }
  const HbmBackend::Done on_done = [this](std::uint64_t tag, std::uint64_t done_ps) {
    on_chunk_done(tag, done_ps);
  };
  for (;;) {
    const std::uint64_t t_event = events_.empty() ? HbmBackend::kNever : events_.top().at_ps;
    const std::uint64_t t_hbm = hbm_->next_event_ps();
    if (t_event == HbmBackend::kNever && t_hbm == HbmBackend::kNever) break;
    if (t_hbm <= t_event) {
      now_ps_ = t_hbm;
      hbm_->advance_to(t_hbm, on_done);
      continue;
    }
    const Event e = events_.top();
    events_.pop();
    now_ps_ = e.at_ps;
    if (e.kind == EventKind::kComplete) {
      complete(e.core, e.index, e.at_ps);
    } else {
      cores_[e.core].queues[e.index].issue_pending = false;
      issue_chunks(e.core, e.index, e.at_ps);
    }
  }
  ChipResult r;
  for (Core& core : cores_) {
    if (core.done != core.program->size()) {
      throw std::logic_error(
          "chip: a program deadlocked (an instruction waits for one that "
          "comes later on the same engine)");
    }
    r.end_ps = std::max(r.end_ps, core.result.end_ps);
    r.cores.push_back(std::move(core.result));
  }
  r.hbm_busy_ps = hbm_->busy_ps();
  r.hbm_lanes = hbm_->lanes();
  return r;
}

void ChipSim::dispatch(std::uint32_t c, EngineQueue& e) {
  Core& core = cores_[c];
  const NeuronCoreConfig& nc = cfg_.core;
  while (e.head < e.order.size()) {
    const std::uint32_t i = e.order[e.head];
    if (core.pending_deps[i] != 0) return;
    ++e.head;
    const Instruction& ins = core.program->instructions()[i];
    const std::uint64_t ready = core.ready_ps[i];
    InstructionTiming& t = core.result.timing[i];
    if (ins.engine == Engine::kTensor) {
      const TensorEngineConfig& te = nc.tensor;
      const std::uint64_t load_ps =
          cycles_to_ps(std::ceil(static_cast<double>(ins.k) / te.stationary_rows_per_cycle), te.clock);
      const double stream_cycles = std::ceil(ins.n / te.moving_per_cycle(ins.dtype));
      const std::uint64_t stream_ps = cycles_to_ps(stream_cycles, te.clock);
      const std::uint64_t drain_ps = cycles_to_ps(ins.k + ins.m, te.clock);
      const std::uint64_t load_start = te.stationary_preload
                                           ? std::max({ready, core.load_end_ps, core.stream_start_ps})
                                           : std::max({ready, core.load_end_ps, core.stream_end_ps});
      core.load_end_ps = load_start + load_ps;
      core.stream_start_ps = std::max(core.load_end_ps, core.stream_end_ps);
      core.stream_end_ps = core.stream_start_ps + stream_ps;
      t.start_ps = load_start;
      t.end_ps = core.stream_end_ps + drain_ps;
      core.result.tensor_stream_ps += stream_ps;
      core.result.tensor_full_array_ps += static_cast<double>(stream_ps) * ins.k / te.rows * ins.m /
                                          te.columns * ins.n /
                                          (stream_cycles * te.moving_per_cycle(ins.dtype));
      core.result.flops += 2ULL * ins.k * ins.m * ins.n;
    } else {
      const ElementEngineConfig& ec = ins.engine == Engine::kVector   ? nc.vector
                                      : ins.engine == Engine::kScalar ? nc.scalar
                                                                      : nc.gpsimd;
      const double cycles = ec.instruction_overhead_cycles +
                            std::ceil(static_cast<double>(ins.elements) / ec.elements_per_cycle(ins.dtype));
      t.start_ps = std::max(ready, e.free_ps);
      t.end_ps = t.start_ps + cycles_to_ps(cycles, ec.clock);
      e.free_ps = t.end_ps;
      std::uint64_t& busy = ins.engine == Engine::kVector   ? core.result.vector_busy_ps
                            : ins.engine == Engine::kScalar ? core.result.scalar_busy_ps
                                                            : core.result.gpsimd_busy_ps;
      busy += t.end_ps - t.start_ps;
    }
    push(t.end_ps, EventKind::kComplete, c, i);
  }
}

void ChipSim::dispatch_dma(std::uint32_t c, std::uint32_t q, std::uint64_t now) {
  Core& core = cores_[c];
  DmaQueue& dq = core.queues[q];
  if (dq.busy || dq.head >= dq.order.size()) return;
  const std::uint32_t i = dq.order[dq.head];
  if (core.pending_deps[i] != 0) return;
  ++dq.head;
  const Instruction& ins = core.program->instructions()[i];
  const DmaConfig& dma = cfg_.core.dma;
  dq.busy = true;
  dq.current = i;
  dq.chunks = std::max<std::uint64_t>(1, (ins.bytes + dma.chunk.bytes - 1) / dma.chunk.bytes);
  dq.issued = 0;
  dq.completed = 0;
  dq.in_flight = 0;
  const std::uint64_t start = std::max({core.ready_ps[i], dq.free_ps, now});
  core.result.timing[i].start_ps = start;
  // Descriptor generation, then data.
  dq.next_issue_ps = start + round_ps(dma.instruction_overhead.seconds * 1e12);
  dq.issue_pending = true;
  push(dq.next_issue_ps, EventKind::kDmaIssue, c, q);
}

void ChipSim::issue_chunks(std::uint32_t c, std::uint32_t q, std::uint64_t now) {
  Core& core = cores_[c];
  DmaQueue& dq = core.queues[q];
  const DmaConfig& dma = cfg_.core.dma;
  const Instruction& ins = core.program->instructions()[dq.current];
  while (dq.issued < dq.chunks && dq.in_flight < dma.chunks_in_flight) {
    if (dq.next_issue_ps > now) {
      if (!dq.issue_pending) {
        dq.issue_pending = true;
        push(dq.next_issue_ps, EventKind::kDmaIssue, c, q);
      }
      return;
    }
    const std::uint64_t offset = dq.issued * dma.chunk.bytes;
    const std::uint64_t bytes = std::min<std::uint64_t>(dma.chunk.bytes, ins.bytes - offset);
    // Tag: core (8 bits), queue (8 bits), instruction-local chunk count is not needed.
    const std::uint64_t tag = (static_cast<std::uint64_t>(c) << 8) | q;
    hbm_->submit(now, ins.hbm_address + offset, std::max<std::uint64_t>(bytes, 1), ins.to_hbm, tag);
    ++dq.issued;
    ++dq.in_flight;
    // The queue's own rate: the next chunk leaves one serialization time later.
    dq.next_issue_ps = std::max(dq.next_issue_ps, now) +
                       round_ps(static_cast<double>(bytes) / dma.bandwidth_per_queue.bytes_per_s * 1e12);
  }
}

void ChipSim::on_chunk_done(std::uint64_t tag, std::uint64_t done_ps) {
  const auto c = static_cast<std::uint32_t>(tag >> 8);
  const auto q = static_cast<std::uint32_t>(tag & 0xff);
  Core& core = cores_[c];
  DmaQueue& dq = core.queues[q];
  --dq.in_flight;
  ++dq.completed;
  dq.last_done_ps = std::max(dq.last_done_ps, done_ps);
  if (dq.completed == dq.chunks) {
    const std::uint32_t i = dq.current;
    const Instruction& ins = core.program->instructions()[i];
    InstructionTiming& t = core.result.timing[i];
    t.end_ps = std::max(dq.last_done_ps, dq.next_issue_ps);
    dq.free_ps = t.end_ps;
    dq.busy = false;
    core.result.dma_busy_ps += t.end_ps - t.start_ps;
    core.result.dma_bytes += ins.bytes;
    push(t.end_ps, EventKind::kComplete, c, i);
  } else {
    issue_chunks(c, q, now_ps_);
  }
}

void ChipSim::complete(std::uint32_t c, std::uint32_t i, std::uint64_t now) {
  Core& core = cores_[c];
  ++core.done;
  core.result.end_ps = std::max(core.result.end_ps, now);
  const Instruction& ins = core.program->instructions()[i];
  for (std::uint32_t d : core.dependents[i]) {
    core.ready_ps[d] = std::max(core.ready_ps[d], now);
    if (--core.pending_deps[d] == 0) {
      const Instruction& di = core.program->instructions()[d];
      switch (di.engine) {
        case Engine::kTensor:
          dispatch(c, core.tensor);
          break;
        case Engine::kVector:
          dispatch(c, core.vector);
          break;
        case Engine::kScalar:
          dispatch(c, core.scalar);
          break;
        case Engine::kGpSimd:
          dispatch(c, core.gpsimd);
          break;
        case Engine::kDma:
          dispatch_dma(c, di.queue, now);
          break;
      }
    }
  }
  if (ins.engine == Engine::kDma) dispatch_dma(c, ins.queue, now);
}

}  // namespace wse::neuron
