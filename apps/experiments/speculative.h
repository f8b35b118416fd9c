// Speculative decoding's draft model (serving.speculative.draft_model, docs/serving.md
// "Speculative decoding"): read beside the serving section's other speculative keys, and
// the KV room a decode machine keeps when it holds both models.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "systemc_models/config/config.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/serving_config.h"

namespace wse::experiments {

struct DraftModel {
  workloads::TransformerModel model;
  config::Section section;  // serving.speculative, where a capacity error is placed (at draft_model)
};

// When cfg.speculative is set (read_serving_config read serving.speculative): reads its
// draft_model (a model section like `model:`, a Hugging Face config.json plus dtypes),
// checks that it drafts in the target's vocabulary, and gives the acceptance draws the
// run's seed. `mode` names the experiment mode in the error of a mode without a draft
// path (supported = false). Returns nothing without serving.speculative.
std::optional<DraftModel> read_draft_model(config::Section& serving,
                                           const workloads::TransformerModel& target, std::uint64_t seed,
                                           serving::ServingConfig& cfg, bool supported,
                                           const std::string& mode);

// The KV room of a decode machine holding both models: `free_bytes` is its memory after
// both models' weights; every token a request holds costs the target's KV and the
// draft's, but admission counts the target's (serving kv_bytes, what crosses the KV
// path), so the room is free_bytes x target / (target + draft) bytes per token.
std::uint64_t speculative_kv_room(std::uint64_t free_bytes, const workloads::TransformerModel& target,
                                  const workloads::TransformerModel& draft);

}  // namespace wse::experiments
