#include "wse_mesh/wafer_config.h"

namespace wse::wafer {

namespace {
std::uint32_t read_u32(config::Section& s, std::string_view key, const config::Param& p) {
  return static_cast<std::uint32_t>(s.integer(key, p));
}
}  // namespace

FabricConfig read_fabric_config(config::Section& s, std::uint32_t width, std::uint32_t height) {
  FabricConfig c;
  c.width = width;
  c.height = height;
  c.colors = read_u32(s, "colors",
                      {.doc = "routable colors sharing each link, each with its own input buffers "
                              "(Cerebras SDK: 24, colors 0-23)",
                       .def = "24",
                       .min = 1,
                       .max = 24});
  c.hop_latency_cycles =
      read_u32(s, "hop_latency_cycles",
               {.doc = "cycles for a wavelet to move to the neighbouring router (SDK: one cycle)",
                .def = "1",
                .min = 1,
                .max = 64});
  c.ramp_latency_cycles =
      read_u32(s, "ramp_latency_cycles",
               {.doc = "cycles between a PE and its router, each way", .def = "1", .min = 1, .max = 64});
  c.input_buffer_wavelets =
      read_u32(s, "input_buffer_wavelets",
               {.doc = "wavelets buffered per color at each router input port (credits)",
                .def = "4",
                .min = 1,
                .max = 255});
  c.credit_latency_cycles =
      read_u32(s, "credit_latency_cycles",
               {.doc = "cycles from a buffer slot emptying to the upstream router reusing it",
                .def = "1",
                .min = 1,
                .max = 64});
  c.allocator = s.enumeration<SwitchAllocator>(
      "allocator",
      {.doc = "router switch allocation: separable (input-first, one iteration) or greedy (maximal matching)",
       .def = "separable"},
      {{"separable", SwitchAllocator::kSeparable}, {"greedy", SwitchAllocator::kGreedy}});
  return c;
}

PeConfig read_pe_config(config::Section& s) {
  PeConfig c;
  const Size sram = s.size("sram", {.doc = "SRAM per PE", .def = "48 KiB", .min = 0, .min_exclusive = true});
  c.sram_bytes = sram.bytes;
  c.sram_banks = read_u32(s, "sram_banks", {.doc = "SRAM banks per PE", .def = "8", .min = 1, .max = 64});
  c.sram_read_ports =
      read_u32(s, "sram_read_ports", {.doc = "SRAM reads per cycle", .def = "2", .min = 1, .max = 16});
  c.sram_write_ports =
      read_u32(s, "sram_write_ports", {.doc = "SRAM writes per cycle", .def = "1", .min = 1, .max = 16});
  c.sram_port_bits = read_u32(s, "sram_port_bits",
                              {.doc = "bits per SRAM read or write", .def = "32", .min = 16, .max = 1024});
  c.simd_fp16_fmac =
      read_u32(s, "simd_fp16_fmac",
               {.doc = "fp16 multiply-accumulates per cycle (@fmach)", .def = "4", .min = 1, .max = 64});
  c.simd_fp16_fp32_fmac = read_u32(s, "simd_fp16_fp32_fmac",
                                   {.doc = "fp16-in fp32-accumulate multiply-accumulates per cycle (@fmachs)",
                                    .def = "2",
                                    .min = 1,
                                    .max = 64});
  c.simd_fp32_add =
      read_u32(s, "simd_fp32_add", {.doc = "fp32 adds per cycle (@fadds)", .def = "2", .min = 1, .max = 64});
  c.simd_fp16_add =
      read_u32(s, "simd_fp16_add", {.doc = "fp16 adds per cycle (@faddh)", .def = "4", .min = 1, .max = 64});
  c.simd_fp32_fmac =
      read_u32(s, "simd_fp32_fmac",
               {.doc = "fp32 multiply-adds per cycle (@fmacs; exp, rsqrt and rescaling passes)",
                .def = "2",
                .min = 1,
                .max = 64});
  c.exp_fmacs_per_element =
      read_u32(s, "exp_fmacs_per_element",
               {.doc = "fp32 FMAC passes of exp(x) (range reduction, polynomial, exponent insert)",
                .def = "8",
                .min = 1,
                .max = 64});
  c.rsqrt_fmacs_per_element = read_u32(
      s, "rsqrt_fmacs_per_element",
      {.doc = "fp32 FMAC passes of 1/sqrt(x) (seed and Newton steps)", .def = "7", .min = 1, .max = 64});
  c.reciprocal_fmacs_per_element =
      read_u32(s, "reciprocal_fmacs_per_element",
               {.doc = "fp32 FMAC passes of 1/x (seed and Newton steps)", .def = "5", .min = 1, .max = 64});
  return c;
}

WaferConfig read_wafer_config(config::Section& s) {
  WaferConfig c;
  c.name = s.string("name", {.doc = "name of the wafer in reports", .def = "WSE-3"});
  c.width = read_u32(
      s, "width", {.doc = "usable fabric width in PEs (west to east)", .def = "762", .min = 1, .max = 65535});
  c.height = read_u32(
      s, "height",
      {.doc = "usable fabric height in PEs (north to south)", .def = "1176", .min = 1, .max = 65535});
  c.clock =
      s.frequency("clock", {.doc = "fabric and PE clock", .def = "1.1 GHz", .min = 0, .min_exclusive = true});
  c.io_bandwidth = s.bandwidth("io_bandwidth", {.doc = "system I/O bandwidth of the machine (each direction)",
                                                .def = "1.2 Tb/s",
                                                .min = 0,
                                                .min_exclusive = true});
  config::Section fabric = s.section("fabric", "per-PE routers and links", true);
  c.fabric = read_fabric_config(fabric, c.width, c.height);
  c.tile =
      read_u32(fabric, "tile",
               {.doc = "fidelity: 1 = a router per PE (regions, validation); k > 1 = nodes of k x k PEs "
                       "with k-wide links and k-cycle hops (whole wafers; error bound in docs/wse_mesh.md)",
                .def = "1",
                .min = 1,
                .max = 64});
  config::Section pe = s.section("pe", "processing element: SRAM and SIMD widths", true);
  c.pe = read_pe_config(pe);
  config::Section kernels = s.section("kernels", "reuse of simulated kernel results", true);
  c.kernels = read_kernel_cache_config(kernels);
  return c;
}

}  // namespace wse::wafer
