#include "apps/experiments/speculative.h"

#include <utility>

namespace wse::experiments {

std::optional<DraftModel> read_draft_model(config::Section& serving,
                                           const workloads::TransformerModel& target, std::uint64_t seed,
                                           serving::ServingConfig& cfg, bool supported,
                                           const std::string& mode) {
  if (!cfg.speculative) return std::nullopt;
  config::Section spec = serving.section("speculative", "speculative decoding");
  if (!supported) {
    spec.fail("draft_model", "speculative decoding is not modelled in mode " + mode +
                                 " (modes with a draft path: trainium_only, and disaggregated and wafer_only "
                                 "when the draft fits beside the target); remove serving.speculative");
  }
  config::Section ms = spec.section(
      "draft_model",
      "the draft model (a Hugging Face config.json plus dtypes, as model:), on the decode machines");
  DraftModel d{workloads::read_transformer(ms), spec};
  if (d.model.vocab != target.vocab) {
    spec.fail("draft_model", "has a vocabulary of " + std::to_string(d.model.vocab) +
                                 " tokens but the target (" + target.name + ") has " +
                                 std::to_string(target.vocab) +
                                 ": a draft proposes tokens of the target's vocabulary; use a draft of the "
                                 "target's family");
  }
  cfg.speculative->seed = seed;
  return d;
}

std::uint64_t speculative_kv_room(std::uint64_t free_bytes, const workloads::TransformerModel& target,
                                  const workloads::TransformerModel& draft) {
  const auto t = static_cast<double>(target.kv_bytes_per_token());
  const double both = t + static_cast<double>(draft.kv_bytes_per_token());
  if (both <= 0) return free_bytes;
  return static_cast<std::uint64_t>(static_cast<double>(free_bytes) * (t / both));
}

}  // namespace wse::experiments
