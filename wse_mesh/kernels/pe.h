// A processing element's compute engine and SRAM, as far as kernel timing needs them.
//
// Vector instructions (the SDK's @fmach, @fmachs, @fadds over memory and fabric DSDs)
// run at the SIMD width of their data type, and no faster than the SRAM ports can feed
// them: per cycle `sram_read_ports` reads and `sram_write_ports` writes of
// `sram_port_bits` each (SDK CSL appendix: two 32-bit reads + one 32-bit write per cycle
// on WSE-2). An operand that streams in from the fabric (fabin DSD) or out to it
// (fabout) takes no SRAM port: that is how compute overlaps communication per wavelet.
//
// SRAM capacity is accounted per PE: every tensor a mapping places on a PE is named, and
// a placement that does not fit raises CapacityError naming the PE, the tensor, what is
// already there and the shortfall.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "wse_mesh/fabric/fabric.h"

namespace wse::wafer {

// Resolved configuration of a PE.
struct PeConfig {
  std::uint64_t sram_bytes = 48 * 1024;   // 48 KiB (SDK CSL appendix)
  std::uint32_t sram_banks = 8;           // 8 banks of 6 KiB (SDK CSL appendix)
  std::uint32_t sram_read_ports = 2;      // per cycle (SDK CSL appendix)
  std::uint32_t sram_write_ports = 1;     // per cycle (SDK CSL appendix)
  std::uint32_t sram_port_bits = 32;      // per access (SDK CSL appendix, WSE-2)
  std::uint32_t simd_fp16_fmac = 4;       // @fmach, fp16 multiply-accumulate (WSE-2: 4, WSE-3: 8)
  std::uint32_t simd_fp16_fp32_fmac = 2;  // @fmachs, fp16 in, fp32 accumulate (WSE-2: 2, WSE-3: 4)
  std::uint32_t simd_fp32_add = 2;        // @fadds (WSE-2: 2, WSE-3: 4)
  std::uint32_t simd_fp16_add = 4;        // @faddh (assumption: the fp16 FMAC width)
  std::uint32_t simd_fp32_fmac = 2;       // @fmacs, fp32 multiply-add (assumption: the fp32 add width)
  // Functions without an instruction of their own, as sequences of fp32 FMAC passes over
  // the vector (each pass reads and writes every element once; coefficients are scalars):
  std::uint32_t exp_fmacs_per_element =
      8;  // assumption: range reduction 2 + degree-5 Horner 5 + exponent insert 1
  std::uint32_t rsqrt_fmacs_per_element = 7;       // assumption: seed 1 + two Newton steps of 3
  std::uint32_t reciprocal_fmacs_per_element = 5;  // assumption: seed 1 + two Newton steps of 2
};

void validate(const PeConfig& cfg);

// Accumulator precision of a multiply-accumulate.
enum class Accumulate : std::uint8_t { kFp16, kFp32 };
inline std::uint32_t accumulator_bytes(Accumulate a) { return a == Accumulate::kFp16 ? 2 : 4; }

// Cycles of one vector instruction y[i] += w[i] * s over `elements` fp16 weights w read
// from SRAM, accumulator y read from and written back to SRAM, scalar s from the fabric:
//   max(ceil(e / simd), ceil(e * (16 + acc_bits) / (read_ports * port_bits)),
//       ceil(e * acc_bits / (write_ports * port_bits))).
std::uint64_t fmac_cycles(const PeConfig& pe, Accumulate acc, std::uint64_t elements);
// Cycles of y[i] += in[i] over `elements`, y in SRAM, `in` streaming from the fabric.
std::uint64_t add_cycles(const PeConfig& pe, Accumulate acc, std::uint64_t elements);

// The general rule behind both: one vector instruction over `elements` with `simd`
// lanes, reading `read_bits` and writing `write_bits` of SRAM per element (operands from
// or to the fabric take no port):
//   max(ceil(e / simd), ceil(e * read_bits / (read_ports * port_bits)),
//       ceil(e * write_bits / (write_ports * port_bits))), and 0 for e = 0.
std::uint64_t vector_cycles(const PeConfig& pe, std::uint32_t simd, std::uint64_t elements,
                            std::uint32_t read_bits, std::uint32_t write_bits);
// y[i] = a * y[i] + b over fp32 values in SRAM (a, b scalars): one read, one write each.
std::uint64_t fp32_scale_cycles(const PeConfig& pe, std::uint64_t elements);
// exp, rsqrt and 1/x of `elements` fp32 values in place: their FMAC passes (PeConfig).
std::uint64_t exp_cycles(const PeConfig& pe, std::uint64_t elements);
std::uint64_t rsqrt_cycles(const PeConfig& pe, std::uint64_t elements);
std::uint64_t reciprocal_cycles(const PeConfig& pe, std::uint64_t elements);

// Raised when a tensor does not fit in a PE's SRAM.
class CapacityError : public std::runtime_error {
 public:
  CapacityError(const std::string& message, std::uint64_t shortfall_bytes)
      : std::runtime_error(message), shortfall_bytes_(shortfall_bytes) {}
  std::uint64_t shortfall_bytes() const { return shortfall_bytes_; }

 private:
  std::uint64_t shortfall_bytes_;
};

// The tensors placed in one PE's SRAM.
class SramPlacement {
 public:
  SramPlacement(PeCoord pe, std::uint64_t capacity_bytes) : pe_(pe), capacity_(capacity_bytes) {}
  // Places `bytes` of `tensor`; throws CapacityError if it does not fit.
  void place(const std::string& tensor, std::uint64_t bytes);
  std::uint64_t used_bytes() const { return used_; }
  std::uint64_t free_bytes() const { return capacity_ - used_; }

 private:
  PeCoord pe_;
  std::uint64_t capacity_;
  std::uint64_t used_ = 0;
  std::vector<std::pair<std::string, std::uint64_t>> tensors_;
};

std::string format_bytes(std::uint64_t bytes);

}  // namespace wse::wafer
