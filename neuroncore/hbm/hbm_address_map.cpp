#include "neuroncore/hbm/hbm_address_map.h"

#include <bit>

namespace wse::neuron {

HbmAddressMap::HbmAddressMap(const HbmConfig& cfg)
    : access_bytes_(cfg.access.bytes),
      capacity_(cfg.capacity().bytes),
      channels_per_stack_(cfg.channels_per_stack) {
  for (auto it = cfg.address_mapping.rbegin(); it != cfg.address_mapping.rend(); ++it) {
    std::uint64_t n = 1;
    switch (*it) {
      case HbmField::kStack:
        n = cfg.stacks;
        break;
      case HbmField::kChannel:
        n = cfg.channels_per_stack;
        break;
      case HbmField::kPseudoChannel:
        n = cfg.pseudo_channels_per_channel;
        break;
      case HbmField::kSid:
        n = cfg.sids;
        break;
      case HbmField::kBankGroup:
        n = cfg.bank_groups;
        break;
      case HbmField::kBank:
        n = cfg.banks_per_group;
        break;
      case HbmField::kRow:
        n = cfg.rows();
        break;
      case HbmField::kColumn:
        n = cfg.columns();
        break;
    }
    const bool pow2 = n != 0 && (n & (n - 1)) == 0;
    lsb_first_.push_back({*it, n, pow2 ? std::countr_zero(n) : -1});
  }
}

HbmCoordinates HbmAddressMap::decode(std::uint64_t address) const {
  std::uint64_t x = (address % capacity_) / access_bytes_;
  HbmCoordinates c;
  for (const Radix& r : lsb_first_) {
    // Shifts and masks for power-of-two fields; a division only for the others.
    std::uint32_t v = 0;
    if (r.shift >= 0) {
      v = static_cast<std::uint32_t>(x & (r.count - 1));
      x >>= r.shift;
    } else {
      v = static_cast<std::uint32_t>(x % r.count);
      x /= r.count;
    }
    switch (r.field) {
      case HbmField::kStack:
        c.stack = v;
        break;
      case HbmField::kChannel:
        c.channel = v;
        break;
      case HbmField::kPseudoChannel:
        c.pseudo_channel = v;
        break;
      case HbmField::kSid:
        c.sid = v;
        break;
      case HbmField::kBankGroup:
        c.bank_group = v;
        break;
      case HbmField::kBank:
        c.bank = v;
        break;
      case HbmField::kRow:
        c.row = v;
        break;
      case HbmField::kColumn:
        c.column = v;
        break;
    }
  }
  return c;
}

std::uint64_t HbmAddressMap::encode(const HbmCoordinates& c) const {
  std::uint64_t x = 0;
  for (auto it = lsb_first_.rbegin(); it != lsb_first_.rend(); ++it) {
    std::uint64_t v = 0;
    switch (it->field) {
      case HbmField::kStack:
        v = c.stack;
        break;
      case HbmField::kChannel:
        v = c.channel;
        break;
      case HbmField::kPseudoChannel:
        v = c.pseudo_channel;
        break;
      case HbmField::kSid:
        v = c.sid;
        break;
      case HbmField::kBankGroup:
        v = c.bank_group;
        break;
      case HbmField::kBank:
        v = c.bank;
        break;
      case HbmField::kRow:
        v = c.row;
        break;
      case HbmField::kColumn:
        v = c.column;
        break;
    }
    x = x * it->count + v;
  }
  return x * access_bytes_;
}

}  // namespace wse::neuron
