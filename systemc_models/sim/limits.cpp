#include "systemc_models/sim/limits.h"

#include <limits>

#include "systemc_models/units/units.h"

namespace wse::sim {

MemoryBudget MemoryBudget::read(config::Section& root) {
  config::Section s = root.section("limits", "resource limits of the run (docs/trust.md)", true);
  const Size b = s.size("memory_budget",
                        {.doc = "memory the run may plan for its configuration-sized state (per-request "
                                "records, wafer fabric); more is refused before allocating",
                         .def = kDefaultMemoryBudget,
                         .min = 0,
                         .min_exclusive = true});
  return MemoryBudget(b.bytes);
}

std::uint64_t mul_sat(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a)
    return std::numeric_limits<std::uint64_t>::max();
  return a * b;
}

void MemoryBudget::charge(const config::Section& s, std::string_view key, std::uint64_t bytes,
                          std::string_view what, std::string_view fix) {
  const std::uint64_t total = bytes > std::numeric_limits<std::uint64_t>::max() - charged_
                                  ? std::numeric_limits<std::uint64_t>::max()
                                  : charged_ + bytes;
  if (total > budget_) {
    std::string msg = "needs an estimated " + std::to_string(bytes) + " B (" + pretty_binary(Size{bytes}) +
                      ") for " + std::string(what);
    if (charged_ > 0) msg += ", on top of " + pretty_binary(Size{charged_}) + " already planned";
    msg += ", more than limits.memory_budget = " + pretty_binary(Size{budget_}) + "; " + std::string(fix) +
           ", or raise the budget (--set limits.memory_budget=...)";
    s.fail(key, msg);
  }
  charged_ = total;
}

}  // namespace wse::sim
