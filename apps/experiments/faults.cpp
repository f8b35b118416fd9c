#include "apps/experiments/faults.h"

#include <algorithm>
#include <string>

namespace wse::experiments {

namespace {

constexpr const char* kKinds[] = {"efa_loss_burst", "efa_path_down", "decode_system_down"};
enum class Kind { loss_burst, path_down, decode_down };

// A key that the entry's kind does not take is an error naming the kinds that do.
void forbid(config::Section& f, std::string_view key, std::string_view kind, std::string_view takes) {
  if (f.has(key)) {
    f.fail(key, "kind " + std::string(kind) + " has no '" + std::string(key) + "' (it is for " +
                    std::string(takes) + ")");
  }
}

}  // namespace

nlohmann::json FaultSchedule::counts() const {
  nlohmann::json j = nlohmann::json::object();
  for (const char* k : kKinds) j[k] = 0;
  for (const Entry& e : entries) j[e.kind] = j[e.kind].get<int>() + 1;
  return j;
}

FaultSchedule read_faults(config::Section& root, const efa::EfaNetworkConfig* efa, unsigned decode_systems) {
  FaultSchedule out;
  for (config::Section& f : root.section_list("faults", "fault schedule (docs/faults.md)")) {
    const Kind kind =
        f.enumeration<Kind>("kind", {.doc = "efa_loss_burst, efa_path_down or decode_system_down"},
                            {{"efa_loss_burst", Kind::loss_burst},
                             {"efa_path_down", Kind::path_down},
                             {"decode_system_down", Kind::decode_down}});
    const std::string name = kKinds[static_cast<int>(kind)];
    FaultSchedule::Entry e;
    e.kind = name;
    e.start_s = f.duration("start", {.doc = "simulated time the fault begins", .min = 0}).seconds;
    if (f.has("end") && f.has("duration")) f.fail("duration", "give either 'end' or 'duration', not both");
    if (f.has("end")) {
      e.end_s = f.duration("end", {.doc = "simulated time the fault ends", .min = 0}).seconds;
      if (e.end_s <= e.start_s) f.fail("end", "must be after 'start'");
    } else if (f.has("duration")) {
      e.end_s = e.start_s +
                f.duration("duration", {.doc = "how long the fault lasts", .min = 0, .min_exclusive = true})
                    .seconds;
      if (e.end_s > kMaxSimulatedSeconds) {
        f.fail("duration", "the fault would end at " + to_string(Duration{e.end_s}) +
                               " (start + duration), later than a run can simulate, " +
                               max_simulated_time_text());
      }
    } else if (kind != Kind::decode_down) {
      f.fail("end", "kind " + name + " needs 'end' or 'duration'");
    }

    if (kind != Kind::decode_down && !efa) {
      f.fail("kind", name + " needs an EFA network (modes disaggregated and trainium_disaggregated)");
    }
    if (kind != Kind::loss_burst) {
      for (const char* k : {"probability", "sender", "receiver", "adapter"})
        forbid(f, k, name, "efa_loss_burst");
    }
    if (kind == Kind::decode_down) forbid(f, "path", name, "efa_loss_burst and efa_path_down");
    if (kind != Kind::decode_down) forbid(f, "system", name, "decode_system_down");

    auto read_path = [&](efa::LossBurst* burst, efa::PathOutage* outage) {
      if (!f.has("path")) return;
      const auto p = static_cast<std::uint32_t>(
          f.integer("path", {.doc = "EFA path index (absent: every path)", .min = 0}));
      if (p >= efa->fabric.paths) {
        f.fail("path", "path " + std::to_string(p) + " does not exist: efa.fabric.paths is " +
                           std::to_string(efa->fabric.paths) + " (paths 0.." +
                           std::to_string(efa->fabric.paths - 1) + ")");
      }
      if (burst) burst->path = p;
      if (outage) {
        outage->all_paths = false;
        outage->path = p;
      }
    };

    switch (kind) {
      case Kind::loss_burst: {
        efa::LossBurst b;
        b.probability =
            f.number("probability", {.doc = "probability that a packet is dropped", .min = 0, .max = 0.999});
        b.from = Duration{e.start_s};
        b.until = Duration{e.end_s};
        read_path(&b, nullptr);
        if (f.has("sender") && f.has("receiver"))
          f.fail("receiver", "give either 'sender' or 'receiver', not both");
        std::uint32_t adapters = 0;
        if (f.has("sender")) {
          const auto i = static_cast<std::uint32_t>(
              f.integer("sender", {.doc = "sender machine (prefill instance)", .min = 0}));
          if (i >= efa->senders) {
            f.fail("sender", "sender " + std::to_string(i) + " does not exist: efa.senders is " +
                                 std::to_string(efa->senders));
          }
          b.machine = i;
          adapters = efa->sender.adapters;
        } else if (f.has("receiver")) {
          const auto j = static_cast<std::uint32_t>(
              f.integer("receiver", {.doc = "receiver machine (a CS-3, or a decode instance)", .min = 0}));
          if (j >= efa->receivers) {
            f.fail("receiver", "receiver " + std::to_string(j) + " does not exist: efa.receivers is " +
                                   std::to_string(efa->receivers));
          }
          b.machine = efa->senders + j;
          adapters = efa->receiver.adapters;
        }
        if (f.has("adapter")) {
          if (b.machine == efa::LossBurst::kAny) f.fail("adapter", "'adapter' needs 'sender' or 'receiver'");
          const auto a =
              static_cast<std::uint32_t>(f.integer("adapter", {.doc = "adapter of that machine", .min = 0}));
          if (a >= adapters) {
            f.fail("adapter", "adapter " + std::to_string(a) + " does not exist: the machine has " +
                                  std::to_string(adapters) + " adapters");
          }
          b.adapter = a;
        }
        out.efa.loss_bursts.push_back(b);
        break;
      }
      case Kind::path_down: {
        efa::PathOutage o;
        o.from = Duration{e.start_s};
        o.until = Duration{e.end_s};
        read_path(nullptr, &o);
        out.efa.path_down.push_back(o);
        break;
      }
      case Kind::decode_down: {
        if (decode_systems == 0) {
          f.fail("kind",
                 "decode_system_down needs separate decode systems (modes disaggregated and "
                 "trainium_disaggregated)");
        }
        serving::DecodeOutage o;
        o.system = static_cast<unsigned>(f.integer("system", {.doc = "decode system that fails", .min = 0}));
        if (o.system >= decode_systems) {
          f.fail("system", "decode system " + std::to_string(o.system) + " does not exist: there are " +
                               std::to_string(decode_systems) + " (0.." + std::to_string(decode_systems - 1) +
                               ")");
        }
        o.start_s = e.start_s;
        o.end_s = e.end_s;
        for (const auto& other : out.decode_down) {
          const bool overlap = other.system == o.system && (other.end_s < 0 || o.start_s < other.end_s) &&
                               (o.end_s < 0 || other.start_s < o.end_s);
          if (overlap)
            f.fail("start", "overlaps an earlier decode_system_down of system " + std::to_string(o.system));
        }
        out.decode_down.push_back(o);
        break;
      }
    }
    out.entries.push_back(e);
  }
  return out;
}

}  // namespace wse::experiments
