// `wse-emu plan PLAN.yaml --out DIR`: size a fleet. For every workload and arrival rate
// of the plan, the smallest pools of each kind that meet the service-level objectives,
// and among them the deployment that minimises the objective (fleet cost, power or
// machine count). Each evaluation is one `wse-emu run` of the base experiment (run as
// `wse-emu sweep` runs its points: locally or on Slurm, resumable).
//
// The search (PlanSearch) assumes what the serving model guarantees in the large: more
// machines never make an SLO worse. Then a deployment (p, d) that meets the SLOs means
// every (p' >= p, d' >= d) does, and one that misses means every (p' <= p, d' <= d)
// misses; such points are implied, not run. For each decode pool size d it finds the
// fewest prefill machines p*(d) by bisection on [min, max] (first asking the largest,
// which settles whether d can meet the SLOs at all), all d of all scenarios in the same
// rounds so that a round's runs go out in parallel. A measured result that contradicts
// an implication (more machines, an SLO missed) is reported in plan.csv and on stderr.
// A deployment whose prefill pool cannot meet a TTFT SLO even at the tensor engines' peak
// (fewest_prefill_by_floor, from the scenario's first run) is recorded as `pruned`, a
// miss, without a run; what its run would say, so the search and its answer are unchanged.
// So is one whose decode pool cannot make the decode tokens that the SLOs force to finish
// by their deadlines, even at the decode systems' peak (fewest_decode_by_floor).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "systemc_models/sim/registry.h"

namespace wse::app {

struct PlanOptions {
  std::filesystem::path plan_file;
  std::filesystem::path out_dir;
  std::string backend = "local";  // local | slurm
  int jobs = 0;
  bool quiet = false;
  bool force = false;
  bool prune = true;  // false (--no-prune): run deployments the floor bound rules out
};

// The floor bound on a prefill pool (docs/plan.md, "Pruning with the floors"). A
// TTFT quantile q of N requests is at most L only if m = ceil(q/100 x N) requests
// (nearest rank) each have their first token by arrival + L, so by the last arrival + L:
// their prefill work, at least the sum of the m smallest per-request lower bounds W_m,
// fits in p machines x (span + L), span = last arrival - first arrival. The fewest
// prefill machines not ruled out: ceil(W_m / (span + L)), at least 1.
// `work_s`: each request's prefill work lower bound in machine-seconds (any order).
std::uint32_t fewest_prefill_by_floor(std::vector<double> work_s, double span_s, double limit_s,
                                      double quantile);

// The floor bound on a decode pool (docs/plan.md, "The decode floor"). k requests
// (those an SLO forces to finish in time) must each have their decode tokens made by a
// deadline no later than the first arrival + `window_s`, and none can start before the
// first arrival; each decode token needs at least its decoder GEMMs at the decode
// system's peak, so their decode work, at least the sum of the k smallest per-request
// lower bounds W_k (machine-seconds of one decode system), fits in d x window_s. The
// fewest decode systems not ruled out: ceil(W_k / window_s), at least 1 (and 1, no
// bound, when k is 0 or the window is not positive). `work_s`: any order.
std::uint32_t fewest_decode_by_floor(std::vector<double> work_s, std::size_t k, double window_s);

int run_plan(const sim::Registry& registry, const PlanOptions& opt);

// The bisection of one scenario (a workload at a rate) over prefill counts p in
// [p_min, p_max] for every decode count d in [d_min, d_max]. Pure: the caller runs the
// points it asks for and records whether each met the SLOs.
class PlanSearch {
 public:
  PlanSearch(std::uint32_t p_min, std::uint32_t p_max, std::uint32_t d_min, std::uint32_t d_max);

  // Deployments (p, d) to run next: one per decode count whose search is not done and
  // whose next point is not implied by a result already known. Empty when every search
  // is done.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> next_round();
  void record(std::uint32_t p, std::uint32_t d, bool met);

  // Known (run or implied) outcome of (p, d), or nothing.
  std::optional<bool> known(std::uint32_t p, std::uint32_t d) const;
  // Whether (p, d)'s outcome was implied by another point (not run).
  bool implied(std::uint32_t p, std::uint32_t d) const;
  // The fewest prefill machines that meet the SLOs with d decode machines, or nothing
  // when even p_max misses. Valid once next_round() returned empty.
  std::optional<std::uint32_t> fewest(std::uint32_t d) const;
  // Measured outcomes that contradict monotonicity: a point that missed although one
  // with no more machines of either kind met (pairs: the one that missed, the one that met).
  std::vector<std::pair<std::pair<std::uint32_t, std::uint32_t>, std::pair<std::uint32_t, std::uint32_t>>>
  contradictions() const;
  std::size_t runs() const { return measured_.size(); }

 private:
  struct Bisection {
    std::uint32_t lo, hi;  // p*(d) is in [lo, hi] (hi = p_max + 1: none)
    bool done = false;
  };
  std::optional<bool> implied_outcome(std::uint32_t p, std::uint32_t d) const;
  void settle();  // advances every bisection past points whose outcome is known

  std::uint32_t p_min_, p_max_, d_min_, d_max_;
  std::map<std::uint32_t, Bisection> bisect_;                         // by d
  std::map<std::pair<std::uint32_t, std::uint32_t>, bool> measured_;  // (p, d) -> met
};

}  // namespace wse::app
