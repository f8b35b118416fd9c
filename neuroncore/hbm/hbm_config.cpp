#include "neuroncore/hbm/hbm_config.h"

#include <cmath>
#include <stdexcept>

namespace wse::neuron {

std::string_view to_string(HbmField f) {
  switch (f) {
    case HbmField::kStack:
      return "stack";
    case HbmField::kChannel:
      return "channel";
    case HbmField::kPseudoChannel:
      return "pseudo_channel";
    case HbmField::kSid:
      return "sid";
    case HbmField::kBankGroup:
      return "bank_group";
    case HbmField::kBank:
      return "bank";
    case HbmField::kRow:
      return "row";
    case HbmField::kColumn:
      return "column";
  }
  return "?";
}

std::uint64_t HbmConfig::rows() const {
  const std::uint64_t per_row_all_banks =
      page.bytes * banks_per_pseudo_channel() * pseudo_channels_per_channel * channels_per_stack;
  return per_row_all_banks == 0 ? 0 : capacity_per_stack.bytes / per_row_all_banks;
}

std::uint64_t HbmConfig::tck_ps() const {
  return static_cast<std::uint64_t>(std::llround(tCK.seconds * 1e12));
}

std::uint64_t HbmConfig::burst_ps() const {
  // BL beats of dq_bits each move one access; a pin carries pin_rate bits per second.
  const double pin_bits_per_s = pin_rate.bytes_per_s * 8.0;
  return static_cast<std::uint64_t>(std::llround(burst_length / pin_bits_per_s * 1e12));
}

Bandwidth HbmConfig::peak_bandwidth() const {
  return Bandwidth{pin_rate.bytes_per_s * dq_bits * pseudo_channels()};
}

void HbmConfig::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("hbm: " + what); };
  if (stacks == 0 || channels_per_stack == 0 || pseudo_channels_per_channel == 0 || sids == 0 ||
      bank_groups == 0 || banks_per_group == 0) {
    fail(
        "every organisation count (stacks, channels, pseudo-channels, SIDs, bank groups, banks) "
        "must be at least 1");
  }
  if (access.bytes == 0 || page.bytes % access.bytes != 0) {
    fail("page (" + wse::to_string(page) + ") must be a whole number of accesses (" + wse::to_string(access) +
         ")");
  }
  if (access.bytes * 8 != static_cast<std::uint64_t>(dq_bits) * burst_length) {
    fail("one access (" + wse::to_string(access) + ") must equal burst_length (" +
         std::to_string(burst_length) + ") x dq_bits (" + std::to_string(dq_bits) + ") / 8");
  }
  if (rows() == 0) {
    fail("capacity_per_stack " + wse::to_string(capacity_per_stack) +
         " is smaller than one row in every bank");
  }
  if (tck_ps() == 0 || pin_rate.bytes_per_s <= 0 || burst_ps() == 0) {
    fail("tCK and pin_rate must be positive");
  }
  if (queue_depth == 0) fail("queue_depth must be at least 1");
  bool seen[8] = {};
  for (HbmField f : address_mapping) {
    auto i = static_cast<std::size_t>(f);
    if (seen[i]) fail("address_mapping names '" + std::string(to_string(f)) + "' twice");
    seen[i] = true;
  }
  for (std::size_t i = 0; i < 8; ++i) {
    if (!seen[i]) {
      fail("address_mapping lacks '" + std::string(to_string(static_cast<HbmField>(i))) + "'");
    }
  }
}

HbmConfig hbm3_reference() { return HbmConfig{}; }

HbmConfig rescale_to_bandwidth(const HbmConfig& cfg, Bandwidth total) {
  HbmConfig c = cfg;
  c.pin_rate = pin_rate_for(cfg, total);
  const double old_tck_ps = static_cast<double>(cfg.tck_ps());
  const double ratio = cfg.pin_rate.bytes_per_s / c.pin_rate.bytes_per_s;
  const double new_tck_ps = std::round(old_tck_ps * ratio);
  c.tCK = Duration{new_tck_ps * 1e-12};
  auto up = [&](std::uint32_t cycles) {
    return static_cast<std::uint32_t>(std::ceil(cycles * old_tck_ps / new_tck_ps - 1e-9));
  };
  HbmTiming& t = c.timing;
  const HbmTiming& o = cfg.timing;
  t.tCL = up(o.tCL);
  t.tCWL = up(o.tCWL);
  t.tRCD_RD = up(o.tRCD_RD);
  t.tRCD_WR = up(o.tRCD_WR);
  t.tRP = up(o.tRP);
  t.tRAS = up(o.tRAS);
  t.tRC = up(o.tRC);
  t.tWR = up(o.tWR);
  t.tRTP = up(o.tRTP);
  t.tCCD_S = up(o.tCCD_S);
  t.tCCD_L = up(o.tCCD_L);
  t.tCCD_R = up(o.tCCD_R);
  t.tRRD_S = up(o.tRRD_S);
  t.tRRD_L = up(o.tRRD_L);
  t.tFAW = up(o.tFAW);
  t.tWTR_S = up(o.tWTR_S);
  t.tWTR_L = up(o.tWTR_L);
  t.tRTW = up(o.tRTW);
  t.tRFC = up(o.tRFC);
  t.tREFI = static_cast<std::uint32_t>(std::floor(o.tREFI * old_tck_ps / new_tck_ps + 1e-9));
  return c;
}

Bandwidth pin_rate_for(const HbmConfig& cfg, Bandwidth total) {
  const double pins = static_cast<double>(cfg.dq_bits) * cfg.pseudo_channels();
  return Bandwidth{total.bytes_per_s / pins};
}

}  // namespace wse::neuron
