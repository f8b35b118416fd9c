// Headline figures and per-request rows of a serving run, from its records.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "workloads/serving/serving_system.h"

namespace wse::serving {

// Adds to `summary`: requests.{completed, rejected, total, ttft_s, tpot_s, e2e_s, itl_s}, throughput.{
// output_tokens_per_s, requests_per_s}, kv_transfer.{bytes, time_s, hidden_share}
// (disaggregated), goodput.{ttft_slo_s, tpot_slo_s, requests, fraction,
// requests_per_s}, preemption.{policy, preemptions, requests_preempted, by_recompute,
// by_swap, tokens_recomputed, swap_bytes}. Rates are over the span from the first
// arrival to the last token; ITL (inter-token latency) is over every token after a
// request's first that the run emitted.
void summarize(const ServingSystem& system, const ServingConfig& config, nlohmann::json& summary);

// Adds to `faults` what decode-system failures did: failures, requests re-routed or
// rejected, re-routes, re-prefills, KV resends, KV bytes sent again, tokens recomputed,
// rejections by reason (docs/faults.md).
void summarize_faults(const ServingSystem& system, nlohmann::json& faults);

// One row per request: arrival, prefill start/end, transfer start/end, decode start,
// first and last token, tokens, machines; its terminal state (completed, rejected) and
// reason; fault bookkeeping (re-routes, re-prefills, KV resends and bytes, tokens
// recomputed); preemptions for KV capacity, the tokens they made the prefill side
// recompute and the KV bytes they swapped out and in.
std::string requests_csv(const ServingSystem& system);

// One row per token of every request, when the system kept token times
// (record_token_times): request id, token index (0: the first token, from the
// prefill), emission time.
std::string tokens_csv(const ServingSystem& system);

// Share of a request's KV transfer that overlapped its own prefill: the length of
// [kv_start, kv_end] inside [prefill_start, first_token], over the transfer's length.
double hidden_share(const RequestRecord& r);

}  // namespace wse::serving
