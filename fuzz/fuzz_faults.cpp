// Fuzz target: the fault schedule reader (apps/experiments/faults.h). The input is the
// YAML of an experiment's `faults:` list; it is read against an EFA network of 2 senders
// (4 adapters each), 3 receivers (2 adapters each) and 8 paths, and 2 decode systems.
// A schedule that reads must hold: every start and end finite, 0 or more and within the
// longest simulated time (units.h), each end after its start (only a decode system may
// stay down: end < 0); targets within the network and the decode systems; loss
// probabilities within [0, 1]; no two outages of one decode system overlapping; the
// counts equal to the entries; and the EFA network's own validation of the schedule
// (efa::validate(EfaFaults, config)) must accept what the reader accepted (a fault
// refused only when the run starts would be a late error).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "apps/experiments/faults.h"
#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"
#include "systemc_models/units/units.h"

namespace ex = wse::experiments;
using wse::fuzz::finding;
using wse::fuzz::unexpected;

namespace {

void check_time(double s, const std::string& what) {
  if (!std::isfinite(s) || s < 0 || s > wse::kMaxSimulatedSeconds)
    finding(what + " " + std::to_string(s) + " s is not a time a run can simulate");
}

void check_window(double from, double until, const std::string& what) {
  check_time(from, what + " start");
  check_time(until, what + " end");
  if (!(until > from)) finding(what + " ends (" + std::to_string(until) + ") before it starts");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  wse::efa::EfaNetworkConfig efa;
  efa.senders = 2;
  efa.receivers = 3;
  efa.sender.adapters = 4;
  efa.receiver.adapters = 2;
  efa.fabric.paths = 8;
  constexpr unsigned kDecodeSystems = 2;
  try {
    wse::config::Document doc =
        wse::config::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
    wse::config::Section root = doc.root();
    const ex::FaultSchedule s = ex::read_faults(root, &efa, kDecodeSystems);
    doc.finish();
    for (const auto& e : s.entries) {
      check_time(e.start_s, e.kind + " start");
      if (e.end_s < 0) {
        if (e.kind != "decode_system_down") finding(e.kind + " without an end");
      } else {
        check_window(e.start_s, e.end_s, e.kind);
      }
    }
    for (const auto& p : s.efa.path_down) {
      check_window(p.from.seconds, p.until.seconds, "efa_path_down");
      if (!p.all_paths && p.path >= efa.fabric.paths)
        finding("efa_path_down on path " + std::to_string(p.path));
    }
    for (const auto& b : s.efa.loss_bursts) {
      check_window(b.from.seconds, b.until.seconds, "efa_loss_burst");
      if (!(b.probability >= 0 && b.probability <= 1))
        finding("loss probability " + std::to_string(b.probability));
      if (b.path != b.kAny && b.path >= efa.fabric.paths)
        finding("loss burst on path " + std::to_string(b.path));
      if (b.machine != b.kAny) {
        if (b.machine >= efa.senders + efa.receivers)
          finding("loss burst on machine " + std::to_string(b.machine));
        const std::uint32_t adapters = b.machine < efa.senders ? efa.sender.adapters : efa.receiver.adapters;
        if (b.adapter != b.kAny && b.adapter >= adapters)
          finding("loss burst on adapter " + std::to_string(b.adapter));
      } else if (b.adapter != b.kAny) {
        finding("loss burst on an adapter of no machine");
      }
    }
    for (std::size_t i = 0; i < s.decode_down.size(); ++i) {
      const auto& o = s.decode_down[i];
      if (o.system >= kDecodeSystems) finding("decode_system_down of system " + std::to_string(o.system));
      check_time(o.start_s, "decode_system_down start");
      if (o.end_s >= 0) check_window(o.start_s, o.end_s, "decode_system_down");
      for (std::size_t j = 0; j < i; ++j) {
        const auto& p = s.decode_down[j];
        if (p.system == o.system && (p.end_s < 0 || o.start_s < p.end_s) &&
            (o.end_s < 0 || p.start_s < o.end_s))
          finding("two overlapping outages of decode system " + std::to_string(o.system));
      }
    }
    const auto counts = s.counts();
    std::size_t total = 0;
    for (const auto& [k, v] : counts.items()) total += v.get<std::size_t>();
    if (total != s.entries.size()) finding("counts() does not add up to the entries");
    try {
      wse::efa::validate(s.efa, efa);
    } catch (const std::invalid_argument& e) {
      finding(std::string("the reader accepted a schedule the EFA network refuses: ") + e.what());
    }
  } catch (const wse::config::ConfigError&) {
    // bad input, reported with file, line and key
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
