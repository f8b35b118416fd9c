// Speculative decoding's draft model (serving.speculative.draft_model, docs/serving.md
// "Speculative decoding"): read beside the serving section's other speculative keys, and
// the KV room a decode machine keeps when it holds both models.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "systemc_models/config/config.h"
#include "workloads/model/transformer.h"
#include "workloads/serving/backends.h"
#include "workloads/serving/serving_config.h"

namespace wse::experiments {

struct TrainiumSide;  // serving_experiment.h

struct DraftModel {
  workloads::TransformerModel model;
  config::Section section;  // serving.speculative, where a capacity error is placed (at draft_model)
};

// When cfg.speculative is set (read_serving_config read serving.speculative): reads its
// draft_model (a model section like `model:`, a Hugging Face config.json plus dtypes),
// checks that it drafts in the target's vocabulary, and gives the acceptance draws the
// run's seed. Returns nothing without serving.speculative. (Every serving mode has a draft
// path; a combination one does not model is refused by the mode at draft_model.)
std::optional<DraftModel> read_draft_model(config::Section& serving,
                                           const workloads::TransformerModel& target, std::uint64_t seed,
                                           serving::ServingConfig& cfg);

// Trainium prefill machines in front of other decode machines make the draft's prompt
// KV beside the target's: a prefill pass of the draft after the target's on the same
// group (TrainiumMachine, fused). An error at draft_model when the prefill is split
// (prefill.cp_degree or pp_degree > 1: the draft's pass is modelled on one group only) or
// when both models' weights do not fit the HBM of the group's chips.
void check_trainium_draft_prefill(const TrainiumSide& trn, const workloads::TransformerModel& target,
                                  const DraftModel& draft);

// The KV room of a decode machine holding both models: `free_bytes` is its memory after
// both models' weights; every token a request holds costs the target's KV and the
// draft's, but admission counts the target's (serving kv_bytes, what crosses the KV
// path), so the room is free_bytes x target / (target + draft) bytes per token.
std::uint64_t speculative_kv_room(std::uint64_t free_bytes, const workloads::TransformerModel& target,
                                  const workloads::TransformerModel& draft);

// The KV room of `free_bytes` in the units admission counts: each token a request holds
// stores `stored_per_token` bytes there (both models' KV, with any replicas) and counts
// `counted_per_token` (the serving layer's kv_bytes per token): free_bytes x counted /
// stored. speculative_kv_room is kv_room(free_bytes, target + draft, target).
std::uint64_t kv_room(std::uint64_t free_bytes, double stored_per_token, double counted_per_token);

// A speculative step's passes on a decode machine that holds both models: the draft's
// `draft_tokens` single-token passes one after another (pass i, from 0, over contexts + i:
// each request's last token and the i drafted before it), then the target's verification
// of draft_tokens + 1 tokens per request at its context. `draft(ctx)` and `verify(ctx)`
// run a pass on the machine's model of its hardware and return its seconds.
template <class Draft, class Verify>
serving::SpeculativeTiming speculative_passes(const std::vector<std::uint32_t>& contexts,
                                              std::uint32_t draft_tokens, Draft&& draft, Verify&& verify) {
  serving::SpeculativeTiming t;
  const std::vector<std::uint64_t> ctx(contexts.begin(), contexts.end());
  for (std::uint32_t i = 0; i < draft_tokens; ++i) {
    std::vector<std::uint64_t> c = ctx;
    for (std::uint64_t& x : c) x += i;
    t.draft_s += draft(c);
  }
  t.verify_s = verify(ctx);
  return t;
}

}  // namespace wse::experiments
