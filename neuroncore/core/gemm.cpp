#include "neuroncore/core/gemm.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "systemc_models/units/integer.h"

namespace wse::neuron {

namespace {

std::string binary(std::uint64_t bytes) { return pretty_binary(Size{bytes}); }

std::string over(const char* what, std::uint64_t need, std::uint64_t have, const std::string& detail) {
  return std::string(what) + " capacity exceeded: " + detail + " needs " + binary(need) + " but " + what +
         " holds " + binary(have) + " (" + binary(need - have) + " over)";
}

}  // namespace

GemmFootprint gemm_footprint(const NeuronCoreConfig& nc, const GemmShape& s, const GemmPlan& p) {
  const std::uint64_t e = bytes_of(s.dtype);
  const std::uint64_t n_tile = std::min<std::uint64_t>(s.n, nc.tensor.max_moving);
  const std::uint64_t k_rows = ceil_div(s.k, nc.tensor.rows) * nc.tensor.rows;
  GemmFootprint f{};
  const std::uint64_t panel = k_rows * n_tile * e;
  f.sbuf_bytes =
      panel + std::uint64_t{p.a_buffers} * p.a_slab_tiles * nc.tensor.rows * nc.tensor.columns * e  // A slabs
      + p.c_buffers * nc.tensor.columns * n_tile * e;                                               // C tiles
  f.b_buffers = 1;
  if (s.n > n_tile && f.sbuf_bytes + panel <= nc.sbuf.bytes) {
    f.b_buffers = 2;
    f.sbuf_bytes += panel;
  }
  f.hbm_bytes = (s.m * s.k + s.k * s.n + s.m * s.n) * e;
  return f;
}

Program lower_gemm(const ChipConfig& chip, const GemmShape& s, const GemmPlan& p) {
  const NeuronCoreConfig& nc = chip.core;
  if (s.m == 0 || s.k == 0 || s.n == 0) throw std::invalid_argument("gemm: empty shape");
  const GemmFootprint f = gemm_footprint(nc, s, p);
  const std::string shape = "GEMM " + std::to_string(s.m) + "x" + std::to_string(s.k) + "x" +
                            std::to_string(s.n) + " " + std::string(to_string(s.dtype));
  if (f.sbuf_bytes > nc.sbuf.bytes) {
    throw CapacityError(over("SBUF", f.sbuf_bytes, nc.sbuf.bytes,
                             shape + " (B panel of K x " +
                                 std::to_string(std::min<std::uint64_t>(s.n, nc.tensor.max_moving)) +
                                 " plus A and C buffers)"));
  }
  if (f.hbm_bytes > chip.hbm.capacity().bytes) {
    throw CapacityError(over("HBM", f.hbm_bytes, chip.hbm.capacity().bytes, shape + " (A, B and C)"));
  }
  const std::uint64_t psum_bank_bytes = nc.psum.bytes / nc.psum_banks / nc.partitions;
  const std::uint64_t n_tile = std::min<std::uint64_t>(s.n, nc.tensor.max_moving);
  if (n_tile * 4 > psum_bank_bytes) {
    throw CapacityError(over("PSUM bank", n_tile * 4, psum_bank_bytes,
                             "an fp32 accumulation row of " + std::to_string(n_tile)));
  }

  const std::uint64_t e = bytes_of(s.dtype);
  const std::uint64_t tk = nc.tensor.rows;
  const std::uint64_t tm = nc.tensor.columns;
  const std::uint64_t kt = ceil_div(s.k, tk);
  const std::uint64_t mt = ceil_div(s.m, tm);
  const std::uint64_t nt = ceil_div(s.n, n_tile);
  const std::uint64_t a_base = p.hbm_base;
  const std::uint64_t b_base = a_base + s.m * s.k * e;
  const std::uint64_t c_base = b_base + s.k * s.n * e;
  const std::uint32_t queues = nc.dma.queues;

  Program prog;
  std::uint32_t next_queue = 0;
  // One transfer split over the queues; returns the pieces.
  auto transfer = [&](bool store, std::uint64_t addr, std::uint64_t bytes,
                      const std::vector<Program::Id>& deps) {
    const std::uint64_t pieces =
        std::clamp<std::uint64_t>(bytes / std::max<std::uint64_t>(p.min_dma_piece, 1), 1, queues);
    const std::uint64_t piece = ceil_div(bytes, pieces);
    std::vector<Program::Id> ids;
    for (std::uint64_t off = 0; off < bytes; off += piece) {
      const std::uint64_t len = std::min(piece, bytes - off);
      const Program::Id id =
          store ? prog.dma_store(next_queue, addr + off, len) : prog.dma_load(next_queue, addr + off, len);
      for (Program::Id d : deps) prog.depend(id, d);
      next_queue = (next_queue + 1) % queues;
      ids.push_back(id);
    }
    return ids;
  };
  auto wait_all = [&](Program::Id id, const std::vector<Program::Id>& on) {
    for (Program::Id d : on) prog.depend(id, d);
  };

  std::vector<std::vector<Program::Id>> c_slot_store(p.c_buffers);
  std::vector<std::vector<Program::Id>> b_slice(kt);
  const std::size_t b_buffers = f.b_buffers;
  std::vector<Program::Id> b_last_reader(kt * b_buffers, 0);
  std::vector<bool> b_read(kt * b_buffers, false);
  // The store of the previous block, emitted once the next block's first loads are.
  std::uint64_t store_addr = 0;
  std::uint64_t store_bytes = 0;
  std::size_t store_slot = 0;
  Program::Id store_after = 0;
  bool store_pending = false;
  auto flush_store = [&] {
    if (!store_pending) return;
    c_slot_store[store_slot] = transfer(true, store_addr, store_bytes, {store_after});
    store_pending = false;
  };
  std::vector<Program::Id> a_slot_last_reader(p.a_buffers, 0);
  std::vector<bool> a_slot_read(p.a_buffers, false);
  std::vector<Program::Id> bank_drain(nc.psum_banks, 0);
  std::vector<bool> bank_drained(nc.psum_banks, false);
  std::uint64_t slab_count = 0;
  std::uint64_t group = 0;
  const std::uint64_t slab_tiles = std::max<std::uint32_t>(p.a_slab_tiles, 1);

  for (std::uint64_t nb = 0; nb < nt; ++nb) {
    const std::uint64_t n_len = std::min(n_tile, s.n - nb * n_tile);
    const std::size_t bbuf = nb % b_buffers;
    for (std::uint64_t kb = 0; kb < kt; ++kb) {
      const std::uint64_t k_len = std::min(tk, s.k - kb * tk);
      std::vector<Program::Id> deps;
      // Overwrite a panel slice only after its last reader.
      if (b_read[bbuf * kt + kb]) deps.push_back(b_last_reader[bbuf * kt + kb]);
      b_slice[kb] = transfer(false, b_base + (nb * s.k + kb * tk) * n_tile * e, k_len * n_len * e, deps);
    }
    for (std::uint64_t mb = 0; mb < mt; ++mb) {
      const std::uint64_t m_len = std::min(tm, s.m - mb * tm);
      const std::size_t bank = group % nc.psum_banks;
      Program::Id last_mm = 0;
      for (std::uint64_t kb0 = 0; kb0 < kt; kb0 += slab_tiles) {
        const std::uint64_t kb1 = std::min(kt, kb0 + slab_tiles);
        const std::uint64_t k_rows = std::min(s.k, kb1 * tk) - kb0 * tk;
        const std::size_t slot = slab_count++ % p.a_buffers;
        std::vector<Program::Id> deps;
        if (a_slot_read[slot]) deps.push_back(a_slot_last_reader[slot]);
        const std::vector<Program::Id> slab =
            transfer(false, a_base + (mb * s.k + kb0 * tk) * tm * e, k_rows * m_len * e, deps);
        flush_store();
        for (std::uint64_t kb = kb0; kb < kb1; ++kb) {
          const std::uint64_t k_len = std::min(tk, s.k - kb * tk);
          const Program::Id mm =
              prog.matmul(static_cast<std::uint32_t>(k_len), static_cast<std::uint32_t>(m_len),
                          static_cast<std::uint32_t>(n_len), s.dtype);
          wait_all(mm, slab);
          wait_all(mm, b_slice[kb]);
          if (kb == 0 && bank_drained[bank]) prog.depend(mm, bank_drain[bank]);
          b_last_reader[bbuf * kt + kb] = mm;
          b_read[bbuf * kt + kb] = true;
          last_mm = mm;
        }
        a_slot_last_reader[slot] = last_mm;
        a_slot_read[slot] = true;
      }
      const std::size_t cslot = group % p.c_buffers;
      const Program::Id copy = prog.elementwise(Engine::kVector, m_len * n_len, DType::kFp32, {last_mm});
      wait_all(copy, c_slot_store[cslot]);
      bank_drain[bank] = copy;
      bank_drained[bank] = true;
      store_addr = c_base + (nb * mt + mb) * tm * n_tile * e;
      store_bytes = m_len * n_len * e;
      store_slot = cslot;
      store_after = copy;
      store_pending = true;
      ++group;
    }
  }
  flush_store();
  return prog;
}

GemmResult run_gemm(const ChipConfig& chip, const GemmShape& s, const GemmPlan& p) {
  const Program prog = lower_gemm(chip, s, p);
  ChipSim sim(chip);
  const ChipResult r = sim.run({prog});
  GemmResult g;
  g.seconds = static_cast<double>(r.end_ps) * 1e-12;
  g.tensor_utilization = r.tensor_utilization(0);
  g.achieved_tflops = static_cast<double>(r.cores[0].flops) / g.seconds * 1e-12;
  g.hbm_utilization = r.hbm_utilization();
  g.instructions = prog.size();
  return g;
}

GemmResult run_gemm_on_cores(const ChipConfig& chip, const GemmShape& s, std::uint32_t cores,
                             const GemmPlan& p) {
  if (cores == 0 || cores > chip.cores || s.n % cores != 0) {
    throw std::invalid_argument("gemm: N = " + std::to_string(s.n) + " does not split over " +
                                std::to_string(cores) + " of " + std::to_string(chip.cores) + " cores");
  }
  const GemmShape part{s.m, s.k, s.n / cores, s.dtype};
  const std::uint64_t per_core = gemm_footprint(chip.core, part, p).hbm_bytes;
  if (per_core * cores > chip.hbm.capacity().bytes) {
    throw CapacityError(over("HBM", per_core * cores, chip.hbm.capacity().bytes,
                             "GEMM split over " + std::to_string(cores) + " cores (A, B and C)"));
  }
  std::vector<Program> programs;
  for (std::uint32_t c = 0; c < cores; ++c) {
    GemmPlan pc = p;
    pc.hbm_base = p.hbm_base + c * per_core;
    programs.push_back(lower_gemm(chip, part, pc));
  }
  ChipSim sim(chip);
  const ChipResult r = sim.run(programs);
  GemmResult g;
  g.seconds = static_cast<double>(r.end_ps) * 1e-12;
  std::uint64_t flops = 0;
  for (std::uint32_t c = 0; c < cores; ++c) {
    g.tensor_utilization += r.tensor_utilization(c) / cores;
    flops += r.cores[c].flops;
    g.instructions += programs[c].size();
  }
  g.achieved_tflops = static_cast<double>(flops) / g.seconds * 1e-12;
  g.hbm_utilization = r.hbm_utilization();
  return g;
}

}  // namespace wse::neuron
