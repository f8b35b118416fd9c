// A wafer as configured in YAML (configs/hardware/wse2.yaml, cs3.yaml): dimensions,
// clock, system I/O, the per-PE fabric and the PE. The models take the resolved structs;
// the read_* functions are the only code that sees the configuration language.
#pragma once

#include <cstdint>
#include <string>

#include "systemc_models/config/config.h"
#include "systemc_models/units/units.h"
#include "wse_mesh/fabric/fabric.h"
#include "wse_mesh/kernels/kernel_cache.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {

struct WaferConfig {
  std::string name = "WSE-3";
  std::uint32_t width = 762;    // usable fabric, PEs west to east
  std::uint32_t height = 1176;  // PEs north to south
  Frequency clock{1.1e9};
  Bandwidth io_bandwidth{1.2e12 / 8};  // system I/O of the whole machine
  FabricConfig fabric;                 // per-PE: width and height equal the wafer's
  std::uint32_t tile = 1;  // fidelity: 1 = per-PE routers; k = nodes of k x k PEs (tiled(fabric, k))
  PeConfig pe;
  KernelCacheConfig kernels;  // reuse of simulated kernel results
};

// Reads the mapping under `wafer:`.
WaferConfig read_wafer_config(config::Section& wafer);
// Reads `fabric:` (per-PE routers) for a wafer of the given size.
FabricConfig read_fabric_config(config::Section& fabric, std::uint32_t width, std::uint32_t height);
// Reads `pe:` (SRAM and SIMD widths).
PeConfig read_pe_config(config::Section& pe);

}  // namespace wse::wafer
