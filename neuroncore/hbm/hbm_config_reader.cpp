// The `hbm:` section of a hardware configuration -> HbmConfig. Defaults come from
// HbmConfig{} (the hardware.md HBM3 reference device), so each lives in one place.
#include <optional>
#include <string>
#include <vector>

#include "neuroncore/hbm/hbm_config.h"
#include "systemc_models/config/config.h"

namespace wse::neuron {

namespace {

struct Reader {
  config::Section& s;
  std::vector<std::string> defaults;  // keeps default text alive while Param points at it

  std::string_view keep(std::string text) {
    defaults.push_back(std::move(text));
    return defaults.back();
  }
  std::uint32_t count(std::string_view key, std::string_view doc, std::uint32_t def, double max = 1 << 20) {
    return static_cast<std::uint32_t>(
        s.integer(key, {.doc = doc, .def = keep(std::to_string(def)), .min = 1, .max = max}));
  }
};

}  // namespace

HbmConfig read_hbm_config(config::Section& s) {
  const HbmConfig d;
  HbmConfig c;
  Reader r{s, {}};
  r.defaults.reserve(64);
  c.stacks = r.count("stacks", "HBM stacks on the chip", d.stacks, 64);
  c.channels_per_stack =
      r.count("channels_per_stack", "independent channels per stack", d.channels_per_stack, 64);
  c.pseudo_channels_per_channel =
      r.count("pseudo_channels_per_channel", "pseudo-channels per channel (own banks and data bus)",
              d.pseudo_channels_per_channel, 8);
  c.sids = r.count("sids", "stack IDs per pseudo-channel", d.sids, 8);
  c.bank_groups = r.count("bank_groups", "bank groups per SID", d.bank_groups, 16);
  c.banks_per_group = r.count("banks_per_group", "banks per bank group", d.banks_per_group, 16);
  const Size total =
      s.size("capacity", {.doc = "capacity of all stacks together (rows per bank follow from it)",
                          .def = r.keep(wse::to_string(d.capacity())),
                          .min = 0,
                          .min_exclusive = true});
  c.capacity_per_stack = Size{total.bytes / c.stacks};
  c.page = s.size("page", {.doc = "row (page) size of one pseudo-channel bank",
                           .def = r.keep(wse::to_string(d.page)),
                           .min = 0,
                           .min_exclusive = true});
  c.access = s.size("access", {.doc = "bytes moved by one column command (one burst)",
                               .def = r.keep(wse::to_string(d.access)),
                               .min = 0,
                               .min_exclusive = true});
  c.dq_bits = r.count("dq_bits", "data pins per pseudo-channel", d.dq_bits, 1024);
  c.burst_length = r.count("burst_length", "beats per burst", d.burst_length, 64);
  c.tCK = s.duration("tCK", {.doc = "command clock period; timing values are cycles of it",
                             .def = r.keep(wse::to_string(d.tCK)),
                             .min = 0,
                             .min_exclusive = true});
  if (s.has("pin_rate") && s.has("peak_bandwidth")) {
    s.fail("peak_bandwidth", "give either 'pin_rate' or 'peak_bandwidth', not both");
  }
  std::optional<Bandwidth> peak;
  if (s.has("peak_bandwidth")) {
    peak = s.bandwidth("peak_bandwidth",
                       {.doc = "data bandwidth of all stacks: rescales the device given by tCK and timing "
                               "(at the default pin_rate, 6.4 Gb/s) to this rate: pin rate and tCK scale, "
                               "timing durations in ns are kept",
                        .min = 0,
                        .min_exclusive = true});
  } else {
    c.pin_rate = s.bandwidth("pin_rate", {.doc = "data rate per pin (e.g. 6.4 Gb/s)",
                                          .def = r.keep(wse::to_string(d.pin_rate)),
                                          .min = 0,
                                          .min_exclusive = true});
  }
  {
    config::Section t = s.section("timing", "HBM timing parameters in tCK cycles", true);
    Reader rt{t, {}};
    rt.defaults.reserve(32);
    auto cyc = [&](std::string_view key, std::string_view doc, std::uint32_t def) {
      return static_cast<std::uint32_t>(
          t.integer(key, {.doc = doc, .def = rt.keep(std::to_string(def)), .min = 0, .max = 1e7}));
    };
    const HbmTiming& dt = d.timing;
    HbmTiming& ct = c.timing;
    ct.tCL = cyc("tCL", "read command to first data", dt.tCL);
    ct.tCWL = cyc("tCWL", "write command to first data", dt.tCWL);
    ct.tRCD_RD = cyc("tRCD_RD", "activate to read", dt.tRCD_RD);
    ct.tRCD_WR = cyc("tRCD_WR", "activate to write", dt.tRCD_WR);
    ct.tRP = cyc("tRP", "precharge to activate", dt.tRP);
    ct.tRAS = cyc("tRAS", "activate to precharge", dt.tRAS);
    ct.tRC = cyc("tRC", "activate to activate, same bank", dt.tRC);
    ct.tWR = cyc("tWR", "end of write data to precharge", dt.tWR);
    ct.tRTP = cyc("tRTP", "read to precharge", dt.tRTP);
    ct.tCCD_S = cyc("tCCD_S", "column to column, other bank group", dt.tCCD_S);
    ct.tCCD_L = cyc("tCCD_L", "column to column, same bank group", dt.tCCD_L);
    ct.tCCD_R = cyc("tCCD_R", "column to column, other SID", dt.tCCD_R);
    ct.tRRD_S = cyc("tRRD_S", "activate to activate, other bank group", dt.tRRD_S);
    ct.tRRD_L = cyc("tRRD_L", "activate to activate, same bank group", dt.tRRD_L);
    ct.tFAW = cyc("tFAW", "window of four activates per pseudo-channel", dt.tFAW);
    ct.tWTR_S = cyc("tWTR_S", "write data end to read, other bank group", dt.tWTR_S);
    ct.tWTR_L = cyc("tWTR_L", "write data end to read, same bank group", dt.tWTR_L);
    ct.tRTW = cyc("tRTW", "read to write", dt.tRTW);
    ct.tRFC = cyc("tRFC", "all-bank refresh cycle", dt.tRFC);
    ct.tREFI = cyc("tREFI", "refresh interval", dt.tREFI);
  }
  c.queue_depth =
      r.count("queue_depth", "scheduler queue entries per channel (FR-FCFS window)", d.queue_depth, 65536);
  c.refresh = s.boolean("refresh", {.doc = "model all-bank refresh", .def = "true"});
  std::string def_map = "[";
  for (std::size_t i = 0; i < d.address_mapping.size(); ++i) {
    def_map += (i ? ", " : "") + std::string(to_string(d.address_mapping[i]));
  }
  def_map += "]";
  const std::vector<std::string> fields =
      s.string_list("address_mapping",
                    {.doc = "address fields from most to least significant (stack, channel, pseudo_channel, "
                            "sid, bank_group, bank, row, column)",
                     .def = r.keep(def_map)});
  c.address_mapping.clear();
  for (const std::string& f : fields) {
    bool found = false;
    for (int i = 0; i < 8; ++i) {
      const auto field = static_cast<HbmField>(i);
      if (f == to_string(field)) {
        c.address_mapping.push_back(field);
        found = true;
      }
    }
    if (!found) {
      s.fail("address_mapping", "unknown field '" + f +
                                    "'; allowed: stack, channel, pseudo_channel, sid, "
                                    "bank_group, bank, row, column");
    }
  }
  if (peak) c = rescale_to_bandwidth(c, *peak);
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    s.fail("", e.what());
  }
  return c;
}

}  // namespace wse::neuron
