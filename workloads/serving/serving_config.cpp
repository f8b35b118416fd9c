#include "workloads/serving/serving_config.h"

#include <charconv>
#include <string>

namespace wse::serving {

double Speculative::expected_tokens_per_step() const {
  double expected = 1.0, all_accepted = 1.0;
  for (double a : acceptance) {
    all_accepted *= a;
    expected += all_accepted;
  }
  return expected;
}

Speculative read_speculative(config::Section& s) {
  Speculative sp;
  sp.tokens = static_cast<std::uint32_t>(s.integer(
      "tokens", {.doc = "tokens the draft model proposes per decode step (k)", .min = 1, .max = 64}));
  const bool by_position = s.has("acceptance_by_position");
  if (by_position == s.has("acceptance")) {
    s.fail(by_position ? "acceptance" : "acceptance_by_position",
           by_position ? "give acceptance (one probability for every drafted position) or "
                         "acceptance_by_position (one per position), not both"
                       : "missing: give acceptance (the probability that the target accepts a drafted token, "
                         "in [0, 1]; no hardware fact sets it: state it as an assumption) or "
                         "acceptance_by_position (a list of tokens probabilities)");
  }
  if (!by_position) {
    const double a =
        s.number("acceptance",
                 {.doc = "probability that the target accepts a drafted token, given the earlier ones were "
                         "(required: a property of the draft, the target and the text, not of hardware)",
                  .min = 0,
                  .max = 1});
    sp.acceptance.assign(sp.tokens, a);
    return sp;
  }
  const std::vector<std::string> list = s.string_list(
      "acceptance_by_position",
      {.doc =
           "per drafted position, the probability that the target accepts it given the earlier ones were"});
  if (list.size() != sp.tokens) {
    s.fail("acceptance_by_position", "has " + std::to_string(list.size()) + " entries but tokens is " +
                                         std::to_string(sp.tokens) +
                                         ": give one probability per drafted position");
  }
  for (const std::string& text : list) {
    double v = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !(v >= 0 && v <= 1)) {
      s.fail("acceptance_by_position",
             "entry '" + text + "' is not a probability: each entry must be a number in [0, 1]");
    }
    sp.acceptance.push_back(v);
  }
  return sp;
}

ServingConfig read_serving_config(config::Section& s) {
  ServingConfig c;
  c.routing = s.enumeration<Routing>(
      "routing", {.doc = "how requests are assigned to prefill instances", .def = "least_loaded"},
      {{"round_robin", Routing::round_robin},
       {"least_loaded", Routing::least_loaded},
       {"prefix_affinity", Routing::prefix_affinity}});
  c.prefill_max_batch_tokens = static_cast<std::uint32_t>(
      s.integer("prefill_max_batch_tokens",
                {.doc = "prompt tokens one prefill batch may hold", .def = "8192", .min = 1, .max = 1e7}));
  c.prefill_chunk_tokens = static_cast<std::uint32_t>(s.integer(
      "prefill_chunk_tokens",
      {.doc = "chunk size of chunked prefill (0 = whole prompts)", .def = "0", .min = 0, .max = 1e7}));
  c.decode_max_batch = static_cast<std::uint32_t>(s.integer(
      "decode_max_batch", {.doc = "requests one decode step may hold (KV capacity limits it further)",
                           .def = "64",
                           .min = 1,
                           .max = 1e6}));
  c.kv_send = s.enumeration<KvSend>(
      "kv_send", {.doc = "when the KV cache leaves the prefill machine", .def = "layerwise"},
      {{"layerwise", KvSend::layerwise}, {"after_prefill", KvSend::after_prefill}});
  c.kv_layers_per_message = static_cast<std::uint32_t>(s.integer(
      "kv_layers_per_message", {.doc = "layers whose KV travels as one message (layer-wise sending)",
                                .def = "1",
                                .min = 1,
                                .max = 1e4}));
  c.prefix_reuse =
      s.boolean("prefix_reuse", {.doc = "reuse cached prompt prefixes (Mooncake hash ids)", .def = "false"});
  c.prefix_cache_blocks = static_cast<std::uint64_t>(s.integer(
      "prefix_cache_blocks", {.doc = "prefix-cache capacity per prefill instance, in 512-token blocks",
                              .def = "0",
                              .min = 0,
                              .max = 1e12}));
  if (c.prefix_reuse && c.prefix_cache_blocks == 0) {
    s.fail("prefix_cache_blocks", "must be > 0 when prefix_reuse is true");
  }
  const Duration ttft =
      s.duration("ttft_slo", {.doc = "time-to-first-token target for goodput (0 s = none)", .def = "0 s"});
  const Duration tpot =
      s.duration("tpot_slo", {.doc = "time-per-output-token target for goodput (0 s = none)", .def = "0 s"});
  c.failover = s.enumeration<Failover>(
      "failover",
      {.doc = "a request whose decode system failed: resend_kv (the prefill side resends the prompt's KV "
              "while it holds it) or reprefill (recompute it)",
       .def = "resend_kv"},
      {{"resend_kv", Failover::resend_kv}, {"reprefill", Failover::reprefill}});
  c.prefill_kv_hold_s =
      s.duration("prefill_kv_hold", {.doc = "how long the prefill side keeps a request's KV after "
                                            "its prefill, for resend_kv (0 s = until the request ends)",
                                     .def = "0 s",
                                     .min = 0})
          .seconds;
  c.reject_after_s =
      s.duration("reject_after", {.doc = "a request that has waited this long for a decode system while "
                                         "none is up is rejected (0 s = it waits)",
                                  .def = "0 s",
                                  .min = 0})
          .seconds;
  c.admission = s.enumeration<Admission>(
      "admission",
      {.doc = "the order in which requests waiting for decode KV capacity are admitted; none overtakes "
              "the first in the order (docs/serving.md)",
       .def = "fcfs"},
      {{"fcfs", Admission::fcfs},
       {"shortest_first", Admission::shortest_first},
       {"priority", Admission::priority}});
  c.output_length = s.enumeration<OutputLength>(
      "output_length",
      {.doc = "oracle: admission reserves the KV of prompt + every output token (no preemption); "
              "unknown: KV is reserved as it grows and a request is preempted when it runs out",
       .def = "oracle"},
      {{"oracle", OutputLength::oracle}, {"unknown", OutputLength::unknown}});
  c.preemption = s.enumeration<Preemption>(
      "preemption",
      {.doc = "what a request preempted for KV capacity gives up (output_length: unknown): recompute "
              "(its KV, rebuilt by the prefill side) or swap (copied to host memory and back)",
       .def = "recompute"},
      {{"recompute", Preemption::recompute}, {"swap", Preemption::swap}});
  c.swap_bandwidth_Bps =
      s.bandwidth("swap_bandwidth", {.doc = "decode machine to host memory and back, each way, "
                                            "for preemption by swap (PCIe 5.0 x16: 64 GB/s)",
                                     .def = "64 GB/s",
                                     .min = 0,
                                     .min_exclusive = true})
          .bytes_per_s;
  c.kv_retention =
      s.boolean("kv_retention",
                {.doc = "sessions: a decode machine keeps a session's KV between turns (LRU eviction); a "
                        "returning turn sends (colocated: prefills) only the KV it lacks (docs/serving.md)",
                 .def = "true"});
  if (std::optional<config::Section> tiers = s.optional_section(
          "kv_tiers", "KV memory tiers below a decode machine's own, for retained session KV")) {
    if (std::optional<config::Section> host = tiers->optional_section(
            "host_dram",
            "host DRAM beside each decode system: evicted session KV goes here and reloads from here")) {
      KvTier t;
      t.capacity_bytes =
          host->size("capacity",
                     {.doc = "host DRAM for retained KV, per decode system", .min = 0, .min_exclusive = true})
              .bytes;
      t.bandwidth_Bps =
          host->bandwidth("bandwidth", {.doc = "host DRAM to the decode machine and back, each way",
                                        .min = 0,
                                        .min_exclusive = true})
              .bytes_per_s;
      c.host_tier = t;
    }
  }
  if (std::optional<config::Section> spec = s.optional_section(
          "speculative",
          "speculative decoding: a draft model on the decode machine proposes tokens, the target "
          "verifies them in one pass (docs/serving.md)")) {
    c.speculative = read_speculative(*spec);
  }
  c.ttft_slo_s = ttft.seconds;
  c.tpot_slo_s = tpot.seconds;
  return c;
}

}  // namespace wse::serving
