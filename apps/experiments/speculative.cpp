#include "apps/experiments/speculative.h"

#include <string>
#include <utility>

#include "apps/experiments/serving_experiment.h"

namespace wse::experiments {

std::optional<DraftModel> read_draft_model(config::Section& serving,
                                           const workloads::TransformerModel& target, std::uint64_t seed,
                                           serving::ServingConfig& cfg) {
  if (!cfg.speculative) return std::nullopt;
  config::Section spec = serving.section("speculative", "speculative decoding");
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

void check_trainium_draft_prefill(const TrainiumSide& trn, const workloads::TransformerModel& target,
                                  const DraftModel& draft) {
  if (trn.prefill.cp_degree > 1 || trn.prefill.pp_degree > 1) {
    draft.section.fail("draft_model",
                       "speculative decoding behind a split prefill (prefill.cp_degree or pp_degree > 1) is "
                       "not modelled: the draft's prompt pass runs on one group; set them to 1 or remove "
                       "serving.speculative");
  }
  const std::uint64_t hbm = prefill_group_hbm_bytes(trn);
  const std::uint64_t weights = target.weight_bytes() + draft.model.weight_bytes();
  if (weights >= hbm) {
    draft.section.fail("draft_model",
                       "the draft's weights (" + std::to_string(draft.model.weight_bytes()) +
                           " B) do not fit beside the target's (" + std::to_string(target.weight_bytes()) +
                           " B) in the HBM of a prefill group's chips (" + std::to_string(hbm) +
                           " B), where the draft makes its prompt KV: " + std::to_string(weights - hbm) +
                           " B short; raise prefill.tp_degree or use a smaller draft");
  }
}

std::uint64_t speculative_kv_room(std::uint64_t free_bytes, const workloads::TransformerModel& target,
                                  const workloads::TransformerModel& draft) {
  const auto t = static_cast<double>(target.kv_bytes_per_token());
  return kv_room(free_bytes, t + static_cast<double>(draft.kv_bytes_per_token()), t);
}

std::uint64_t kv_room(std::uint64_t free_bytes, double stored_per_token, double counted_per_token) {
  if (stored_per_token <= 0) return free_bytes;
  return static_cast<std::uint64_t>(static_cast<double>(free_bytes) * (counted_per_token / stored_per_token));
}

}  // namespace wse::experiments
