// Resolved configuration of an HBM memory system (one or more HBM3 stacks).
//
// Organisation and timing follow the JEDEC HBM3 parameters used by the Ramulator 2 HBM3
// preset (6400 MT/s): every timing value is a whole number of command-clock cycles
// (tCK). The data rate per pin is separate from tCK so that a chip whose stated
// bandwidth is below 6.4 Gb/s per pin is modelled with the same core timings (in ns) and
// a longer burst on the data bus.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
}

namespace wse::neuron {

// Timing parameters in cycles of tCK (hardware.md, "HBM3 timing").
struct HbmTiming {
  std::uint32_t tCL = 20;      // read command to first data
  std::uint32_t tCWL = 10;     // write command to first data
  std::uint32_t tRCD_RD = 31;  // activate to read
  std::uint32_t tRCD_WR = 15;  // activate to write
  std::uint32_t tRP = 26;      // precharge to activate
  std::uint32_t tRAS = 45;     // activate to precharge
  std::uint32_t tRC = 72;      // activate to activate, same bank
  std::uint32_t tWR = 33;      // end of write data to precharge
  std::uint32_t tRTP = 9;      // read to precharge
  std::uint32_t tCCD_S = 2;    // column to column, different bank group
  std::uint32_t tCCD_L = 4;    // column to column, same bank group
  std::uint32_t tCCD_R = 3;    // column to column, different stack ID (SID)
  std::uint32_t tRRD_S = 4;    // activate to activate, different bank group
  std::uint32_t tRRD_L = 5;    // activate to activate, same bank group
  std::uint32_t tFAW = 24;     // window holding at most four activates (per pseudo-channel)
  std::uint32_t tWTR_S = 7;    // end of write data to read, different bank group
  std::uint32_t tWTR_L = 10;   // end of write data to read, same bank group
  std::uint32_t tRTW = 20;     // read to write turnaround
  std::uint32_t tRFC = 416;    // all-bank refresh cycle time (260 ns)
  std::uint32_t tREFI = 6240;  // average refresh interval (3.9 us)
};

// Address fields, used to describe the address mapping.
enum class HbmField : std::uint8_t {
  kStack,
  kChannel,
  kPseudoChannel,
  kSid,
  kBankGroup,
  kBank,
  kRow,
  kColumn,
};
std::string_view to_string(HbmField f);

struct HbmConfig {
  // Organisation (hardware.md HBM3: 16 channels per stack; a channel is 2 pseudo-channels
  // of 32 DQ; a pseudo-channel has 2 SIDs x 4 bank groups x 4 banks; 1 KB page; 32 B
  // per access; BL8).
  std::uint32_t stacks = 1;
  std::uint32_t channels_per_stack = 16;
  std::uint32_t pseudo_channels_per_channel = 2;
  std::uint32_t sids = 2;
  std::uint32_t bank_groups = 4;  // per SID
  std::uint32_t banks_per_group = 4;
  Size capacity_per_stack{8ULL << 30};  // 8192 rows x 1 KB x 32 banks x 32 pseudo-channels
  Size page{1024};
  Size access{32};
  std::uint32_t dq_bits = 32;  // per pseudo-channel
  std::uint32_t burst_length = 8;
  // Command clock and data rate per pin (6400 MT/s: 6.4 Gb/s per pin).
  Duration tCK{625e-12};
  Bandwidth pin_rate{6.4e9 / 8.0};
  HbmTiming timing;
  // Requests the scheduler of one channel sees at once (FR-FCFS window); further
  // requests wait in arrival order until an entry frees (backpressure).
  std::uint32_t queue_depth = 128;
  bool refresh = true;
  // Address fields from the most to the least significant; below them sits the offset
  // within one access. Mixed radix, so field sizes need not be powers of two.
  std::vector<HbmField> address_mapping = {HbmField::kRow,     HbmField::kBank,      HbmField::kSid,
                                           HbmField::kColumn,  HbmField::kBankGroup, HbmField::kPseudoChannel,
                                           HbmField::kChannel, HbmField::kStack};

  // Derived figures.
  std::uint32_t channels() const { return stacks * channels_per_stack; }
  std::uint32_t pseudo_channels() const { return channels() * pseudo_channels_per_channel; }
  std::uint32_t banks_per_pseudo_channel() const { return sids * bank_groups * banks_per_group; }
  std::uint32_t columns() const { return static_cast<std::uint32_t>(page.bytes / access.bytes); }
  std::uint64_t rows() const;
  Size capacity() const { return Size{capacity_per_stack.bytes * stacks}; }
  std::uint64_t tck_ps() const;
  // Time one access occupies the data bus of its pseudo-channel.
  std::uint64_t burst_ps() const;
  // Peak data bandwidth of all pseudo-channels together.
  Bandwidth peak_bandwidth() const;

  // Throws std::invalid_argument naming the inconsistent value.
  void validate() const;
};

// The reference device of hardware.md: one HBM3 stack at 6400 MT/s (819.2 GB/s).
HbmConfig hbm3_reference();

// Pin data rate that gives `total` bandwidth over all pins of `cfg`.
Bandwidth pin_rate_for(const HbmConfig& cfg, Bandwidth total);

// The device of `cfg` run at the data rate that gives `total` bandwidth: the command
// clock scales with the pin rate (a burst stays burst_length / 4 cycles, as at 6400 MT/s)
// and every timing parameter keeps its duration in ns (cycles rounded up; tREFI, an
// upper bound on the refresh interval, rounded down).
HbmConfig rescale_to_bandwidth(const HbmConfig& cfg, Bandwidth total);

// Reads an `hbm:` section. Defaults are those of HbmConfig{} (the reference device);
// `peak_bandwidth`, when given, sets the pin rate through pin_rate_for().
HbmConfig read_hbm_config(config::Section& s);

}  // namespace wse::neuron
