// Resource limits of a run, checked while the configuration is read (phase 1), before
// the structures they guard are allocated.
//
// limits.memory_budget (default 16 GiB): the memory a run may plan to use for the
// structures that grow with its configuration (per-request state of a trace, the
// router state of a simulated wafer fabric). Each such structure is charged, with an
// estimate from the per-element size (sizeof) of what it will allocate, where its size
// is read from the configuration; a charge that takes the total over the budget is bad
// input (exit 2) naming the key that sized it, the estimate, the budget and what to change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "systemc_models/config/config.h"

namespace wse::sim {

// The default budget, fixed rather than a share of the host's memory so that a
// configuration is accepted or refused the same way on every machine (and its resolved
// file reruns anywhere): 16 GiB leaves a third of the project's 24 GiB machines to the
// system and to a second process (a build, a sweep's other point).
inline constexpr std::string_view kDefaultMemoryBudget = "16 GiB";

class MemoryBudget {
 public:
  // Reads `limits.memory_budget` from the configuration root.
  static MemoryBudget read(config::Section& root);
  explicit MemoryBudget(std::uint64_t bytes) : budget_(bytes) {}

  std::uint64_t budget() const { return budget_; }
  std::uint64_t charged() const { return charged_; }

  // Charges `bytes` for `what` (e.g. "100000000 requests x 408 B of per-request
  // state"), sized by key `key` of section `s`. Throws config::ConfigError located at
  // that key when the total would exceed the budget; `fix` says what to change there.
  void charge(const config::Section& s, std::string_view key, std::uint64_t bytes, std::string_view what,
              std::string_view fix);

 private:
  std::uint64_t budget_;
  std::uint64_t charged_ = 0;
};

// Saturating a x b (estimates of absurd configurations must not wrap around).
std::uint64_t mul_sat(std::uint64_t a, std::uint64_t b);

}  // namespace wse::sim
