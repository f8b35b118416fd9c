#include "wse_mesh/kernels/pe.h"

#include <algorithm>
#include <cstdio>

#include "systemc_models/units/integer.h"

namespace wse::wafer {

void validate(const PeConfig& c) {
  auto require = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("pe: ") + what);
  };
  require(c.sram_bytes > 0, "sram must be larger than 0");
  require(c.sram_banks > 0, "sram_banks must be at least 1");
  require(c.sram_read_ports > 0 && c.sram_write_ports > 0, "SRAM needs at least one read and one write port");
  require(c.sram_port_bits >= 16, "sram_port_bits must be at least 16");
  require(c.simd_fp16_fmac > 0 && c.simd_fp16_fp32_fmac > 0 && c.simd_fp32_add > 0 && c.simd_fp16_add > 0 &&
              c.simd_fp32_fmac > 0,
          "SIMD widths must be at least 1");
  require(c.exp_fmacs_per_element > 0 && c.rsqrt_fmacs_per_element > 0 && c.reciprocal_fmacs_per_element > 0,
          "exp, rsqrt and reciprocal take at least one FMAC pass");
}

std::uint64_t fmac_cycles(const PeConfig& pe, Accumulate acc, std::uint64_t e) {
  // Reads the fp16 operand and the accumulator, writes the accumulator.
  const auto acc_bits = static_cast<std::uint32_t>(8 * accumulator_bytes(acc));
  const std::uint32_t simd = acc == Accumulate::kFp16 ? pe.simd_fp16_fmac : pe.simd_fp16_fp32_fmac;
  return vector_cycles(pe, simd, e, 16 + acc_bits, acc_bits);
}

std::uint64_t add_cycles(const PeConfig& pe, Accumulate acc, std::uint64_t e) {
  const auto acc_bits = static_cast<std::uint32_t>(8 * accumulator_bytes(acc));
  const std::uint32_t simd = acc == Accumulate::kFp16 ? pe.simd_fp16_add : pe.simd_fp32_add;
  return vector_cycles(pe, simd, e, acc_bits, acc_bits);
}

std::uint64_t vector_cycles(const PeConfig& pe, std::uint32_t simd, std::uint64_t e, std::uint32_t read_bits,
                            std::uint32_t write_bits) {
  if (e == 0) return 0;
  const std::uint64_t read_bits_per_cycle =
      static_cast<std::uint64_t>(pe.sram_read_ports) * pe.sram_port_bits;
  const std::uint64_t write_bits_per_cycle =
      static_cast<std::uint64_t>(pe.sram_write_ports) * pe.sram_port_bits;
  return std::max({ceil_div(e, simd), ceil_div(e * read_bits, read_bits_per_cycle),
                   ceil_div(e * write_bits, write_bits_per_cycle)});
}

std::uint64_t fp32_scale_cycles(const PeConfig& pe, std::uint64_t e) {
  return vector_cycles(pe, pe.simd_fp32_fmac, e, 32, 32);
}
std::uint64_t exp_cycles(const PeConfig& pe, std::uint64_t e) {
  return pe.exp_fmacs_per_element * fp32_scale_cycles(pe, e);
}
std::uint64_t rsqrt_cycles(const PeConfig& pe, std::uint64_t e) {
  return pe.rsqrt_fmacs_per_element * fp32_scale_cycles(pe, e);
}
std::uint64_t reciprocal_cycles(const PeConfig& pe, std::uint64_t e) {
  return pe.reciprocal_fmacs_per_element * fp32_scale_cycles(pe, e);
}

std::string format_bytes(std::uint64_t b) {
  char buf[64];
  if (b >= 1024 && b % 1024 == 0) {
    std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(b / 1024));
  } else if (b >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB (%llu B)", static_cast<double>(b) / 1024.0,
                  static_cast<unsigned long long>(b));
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  }
  return buf;
}

void SramPlacement::place(const std::string& tensor, std::uint64_t bytes) {
  if (bytes > capacity_ - used_) {
    const std::uint64_t shortfall = bytes - (capacity_ - used_);
    std::string already;
    for (const auto& [name, b] : tensors_) {
      already += (already.empty() ? "" : ", ") + name + " " + format_bytes(b);
    }
    throw CapacityError("SRAM of PE (" + std::to_string(pe_.x) + "," + std::to_string(pe_.y) +
                            ") cannot hold tensor '" + tensor + "' (" + format_bytes(bytes) +
                            "): " + format_bytes(capacity_ - used_) + " of " + format_bytes(capacity_) +
                            " free" + (already.empty() ? "" : " after " + already) + "; short by " +
                            format_bytes(shortfall) + ". Use a larger PE grid or a smaller tile.",
                        shortfall);
  }
  used_ += bytes;
  tensors_.emplace_back(tensor, bytes);
}

}  // namespace wse::wafer
