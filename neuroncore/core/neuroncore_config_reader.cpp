// The `trainium:` section of a hardware configuration -> ChipConfig. Defaults are those
// of the structs (Trainium2), so each default lives in one place.
#include <deque>
#include <string>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/hbm/hbm_presets.h"
#include "systemc_models/config/config.h"

namespace wse::neuron {

namespace {

// Keeps default texts alive while a Param points at them.
struct Defaults {
  std::deque<std::string> texts;
  std::string_view operator()(std::string t) {
    texts.push_back(std::move(t));
    return texts.back();
  }
};

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

ElementEngineConfig read_element_engine(config::Section& s, const ElementEngineConfig& d, Defaults& def) {
  ElementEngineConfig e;
  e.clock = s.frequency(
      "clock", {.doc = "engine clock", .def = def(wse::to_string(d.clock)), .min = 0, .min_exclusive = true});
  e.elements_per_cycle_bf16 =
      s.number("elements_per_cycle_bf16", {.doc = "bf16 (and fp8) elements processed per cycle",
                                           .def = def(num(d.elements_per_cycle_bf16)),
                                           .min = 0,
                                           .min_exclusive = true});
  e.elements_per_cycle_fp32 = s.number("elements_per_cycle_fp32", {.doc = "fp32 elements processed per cycle",
                                                                   .def = def(num(d.elements_per_cycle_fp32)),
                                                                   .min = 0,
                                                                   .min_exclusive = true});
  e.instruction_overhead_cycles = static_cast<std::uint32_t>(
      s.integer("instruction_overhead_cycles", {.doc = "fixed cycles per instruction (issue, pipeline fill)",
                                                .def = def(std::to_string(d.instruction_overhead_cycles)),
                                                .min = 0,
                                                .max = 1e6}));
  return e;
}

}  // namespace

NeuronCoreConfig read_neuroncore_config(config::Section& s) {
  const NeuronCoreConfig d;
  NeuronCoreConfig c;
  Defaults def;
  {
    config::Section t = s.section("tensor", "tensor engine (systolic array)", true);
    const TensorEngineConfig& dt = d.tensor;
    TensorEngineConfig& ct = c.tensor;
    ct.rows = static_cast<std::uint32_t>(
        t.integer("rows", {.doc = "array rows: contraction (partition) depth K of one matmul",
                           .def = def(std::to_string(dt.rows)),
                           .min = 1,
                           .max = 4096}));
    ct.columns = static_cast<std::uint32_t>(
        t.integer("columns", {.doc = "array columns: stationary free size M of one matmul",
                              .def = def(std::to_string(dt.columns)),
                              .min = 1,
                              .max = 4096}));
    ct.max_moving =
        static_cast<std::uint32_t>(t.integer("max_moving", {.doc = "largest moving free size N of one matmul",
                                                            .def = def(std::to_string(dt.max_moving)),
                                                            .min = 1,
                                                            .max = 65536}));
    ct.clock = t.frequency(
        "clock",
        {.doc = "array clock", .def = def(wse::to_string(dt.clock)), .min = 0, .min_exclusive = true});
    ct.moving_per_cycle_bf16 =
        t.number("moving_per_cycle_bf16", {.doc = "bf16 moving columns entering the array per cycle",
                                           .def = def(num(dt.moving_per_cycle_bf16)),
                                           .min = 0,
                                           .min_exclusive = true});
    ct.moving_per_cycle_fp8 = t.number("moving_per_cycle_fp8", {.doc = "fp8 moving columns per cycle",
                                                                .def = def(num(dt.moving_per_cycle_fp8)),
                                                                .min = 0,
                                                                .min_exclusive = true});
    ct.moving_per_cycle_fp32 = t.number("moving_per_cycle_fp32", {.doc = "fp32 moving columns per cycle",
                                                                  .def = def(num(dt.moving_per_cycle_fp32)),
                                                                  .min = 0,
                                                                  .min_exclusive = true});
    ct.stationary_rows_per_cycle = static_cast<std::uint32_t>(
        t.integer("stationary_rows_per_cycle", {.doc = "stationary tile rows loaded per cycle",
                                                .def = def(std::to_string(dt.stationary_rows_per_cycle)),
                                                .min = 1,
                                                .max = 4096}));
    ct.stationary_preload =
        t.boolean("stationary_preload", {.doc = "next stationary tile loads while the current one streams",
                                         .def = dt.stationary_preload ? "true" : "false"});
  }
  {
    config::Section v = s.section("vector", "vector engine", true);
    c.vector = read_element_engine(v, d.vector, def);
    config::Section sc = s.section("scalar", "scalar (activation) engine", true);
    c.scalar = read_element_engine(sc, d.scalar, def);
    config::Section g = s.section("gpsimd", "GpSimd engine", true);
    c.gpsimd = read_element_engine(g, d.gpsimd, def);
  }
  c.sbuf = s.size(
      "sbuf",
      {.doc = "SBUF capacity per core", .def = def(wse::to_string(d.sbuf)), .min = 0, .min_exclusive = true});
  c.partitions = static_cast<std::uint32_t>(s.integer(
      "partitions",
      {.doc = "SBUF/PSUM partitions", .def = def(std::to_string(d.partitions)), .min = 1, .max = 4096}));
  c.psum = s.size(
      "psum",
      {.doc = "PSUM capacity per core", .def = def(wse::to_string(d.psum)), .min = 0, .min_exclusive = true});
  c.psum_banks =
      static_cast<std::uint32_t>(s.integer("psum_banks", {.doc = "PSUM banks (one accumulation group each)",
                                                          .def = def(std::to_string(d.psum_banks)),
                                                          .min = 1,
                                                          .max = 1024}));
  {
    config::Section m = s.section("dma", "DMA queues between HBM and SBUF", true);
    c.dma.queues = static_cast<std::uint32_t>(m.integer("queues", {.doc = "DMA queues (engines) per core",
                                                                   .def = def(std::to_string(d.dma.queues)),
                                                                   .min = 1,
                                                                   .max = 256}));
    c.dma.bandwidth_per_queue =
        m.bandwidth("bandwidth_per_queue", {.doc = "data rate of one DMA queue",
                                            .def = def(wse::to_string(d.dma.bandwidth_per_queue)),
                                            .min = 0,
                                            .min_exclusive = true});
    c.dma.instruction_overhead =
        m.duration("instruction_overhead", {.doc = "descriptor generation per DMA instruction",
                                            .def = def(wse::to_string(d.dma.instruction_overhead)),
                                            .min = 0});
    c.dma.chunk =
        m.size("chunk",
               {.doc = "bytes per HBM request of a DMA", .def = def(wse::to_string(d.dma.chunk)), .min = 32});
    c.dma.chunks_in_flight = static_cast<std::uint32_t>(
        m.integer("chunks_in_flight", {.doc = "HBM requests outstanding per queue",
                                       .def = def(std::to_string(d.dma.chunks_in_flight)),
                                       .min = 1,
                                       .max = 65536}));
  }
  if (c.psum.bytes / c.psum_banks / c.partitions < c.tensor.max_moving * 4ULL) {
    s.fail("psum_banks",
           "a PSUM bank per partition (" + std::to_string(c.psum.bytes / c.psum_banks / c.partitions) +
               " B) must hold max_moving fp32 values (" + std::to_string(c.tensor.max_moving * 4ULL) + " B)");
  }
  return c;
}

ChipConfig read_chip_config(config::Section& s) {
  ChipConfig c;
  c.cores = static_cast<std::uint32_t>(
      s.integer("cores", {.doc = "NeuronCores per chip", .def = "8", .min = 1, .max = 256}));
  c.hbm_fidelity = s.enumeration<HbmFidelity>(
      "hbm_fidelity",
      {.doc = "banks: every 32 B access scheduled on banks; streaming: one bandwidth pipe", .def = "banks"},
      {{"banks", HbmFidelity::kBanks}, {"streaming", HbmFidelity::kStreaming}});
  config::Section nc = s.section("neuroncore", "one NeuronCore", true);
  c.core = read_neuroncore_config(nc);
  config::Section hbm = s.section("hbm", "the chip's HBM", true);
  c.hbm = read_hbm_config(hbm);
  return c;
}

}  // namespace wse::neuron
