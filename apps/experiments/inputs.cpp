#include "apps/experiments/inputs.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "workloads/serving/serving_system.h"

namespace wse::experiments {

std::uint64_t request_state_bytes() {
  return sizeof(workloads::Request) + sizeof(serving::RequestRecord) + kServingCounterBytes +
         kRequestsCsvColumns * kCsvCellBytes;
}

RequestStateEstimate request_state_estimate(const workloads::TraceOptions& opt) {
  RequestStateEstimate e;
  std::uint64_t hash_ids = 0;
  if (opt.format == workloads::TraceFormat::synthetic) {
    e.requests = opt.synthetic.requests;
    e.key = "requests";
  } else if (opt.format == workloads::TraceFormat::synthetic_sessions) {
    // Every turn is a request: sessions x the most turns a session can draw (a
    // lognormal without a clamp counted at 4 x its mean).
    const workloads::LengthSpec& t = opt.sessions.turns;
    const double turns = t.distribution == workloads::LengthDistribution::fixed     ? t.value
                         : t.distribution == workloads::LengthDistribution::uniform ? t.max
                         : t.max > 0                                                ? t.max
                                                                                    : 4 * t.mean;
    const std::uint64_t sessions =
        opt.limit > 0 ? std::min(opt.limit, opt.sessions.sessions) : opt.sessions.sessions;
    e.requests = sim::mul_sat(sessions, static_cast<std::uint64_t>(std::ceil(turns)));
    e.key = "sessions";
  } else if (opt.format == workloads::TraceFormat::sessions_jsonl) {
    // A turn takes at least 24 bytes of the file ({"prompt":1,"output":1}).
    std::error_code ec;
    const std::uint64_t file_bytes = std::filesystem::file_size(opt.path, ec);
    e.requests = ec ? 0 : file_bytes / 24;
    e.key = "limit";
  } else {
    std::error_code ec;
    const std::uint64_t file_bytes = std::filesystem::file_size(opt.path, ec);
    if (opt.format == workloads::TraceFormat::mooncake_jsonl && !ec) hash_ids = file_bytes / 2;
    e.key = "limit";
    if (opt.limit > 0) {
      e.requests = opt.limit;
    } else {
      // Every request is a line: count them (no allocation; a missing file is reported
      // by the reader).
      std::ifstream in(opt.path, std::ios::binary);
      std::vector<char> buf(1 << 20);
      while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto got = static_cast<std::size_t>(in.gcount());
        e.requests += static_cast<std::uint64_t>(std::count(buf.data(), buf.data() + got, '\n'));
        if (got > 0 && in.eof() && buf[got - 1] != '\n') ++e.requests;
      }
    }
  }
  e.bytes = sim::mul_sat(e.requests, request_state_bytes());
  const std::uint64_t hash_bytes = sim::mul_sat(hash_ids, sizeof(std::uint64_t));
  e.bytes = e.bytes > UINT64_MAX - hash_bytes ? UINT64_MAX : e.bytes + hash_bytes;
  return e;
}

ModelAndTrace read_model_and_trace(config::Section& root, config::Section* trace_section,
                                   sim::MemoryBudget* memory) {
  config::Section ms = root.section("model", "the transformer (a Hugging Face config.json)");
  ModelAndTrace in{workloads::read_transformer(ms), {}};
  config::Section wl = root.section("workload", "the requests");
  config::Section tr = wl.section("trace", "request trace");
  workloads::TraceOptions topt = workloads::read_trace_options(tr);
  if (in.model.max_position_embeddings > 0) {
    topt.max_context_tokens = in.model.max_position_embeddings;
    topt.max_context_what = "max_position_embeddings = " + std::to_string(in.model.max_position_embeddings) +
                            " (" + in.model.name + ")";
  }
  if (memory) {
    const RequestStateEstimate e = request_state_estimate(topt);
    memory->charge(tr, e.key, e.bytes,
                   std::to_string(e.requests) + " requests x " + std::to_string(request_state_bytes()) +
                       " B of per-request state" +
                       (topt.format == workloads::TraceFormat::mooncake_jsonl
                            ? " and their hash ids (at most one per 2 bytes of the file)"
                            : ""),
                   topt.format == workloads::TraceFormat::synthetic
                       ? "generate fewer (workload.trace.requests)"
                   : topt.format == workloads::TraceFormat::synthetic_sessions
                       ? "generate fewer (workload.trace.sessions)"
                       : "select fewer (workload.trace.limit)");
  }
  in.requests = workloads::read_trace(topt);
  if (topt.format == workloads::TraceFormat::synthetic_sessions && topt.max_context_tokens > 0) {
    for (const auto& r : in.requests) {
      const std::uint64_t tokens =
          std::uint64_t{r.input_tokens} + std::max<std::uint32_t>(1, r.output_tokens);
      if (tokens > topt.max_context_tokens) {
        tr.fail("turns",
                "turn " + std::to_string(r.turn) + " of generated session " + std::to_string(r.session) +
                    " needs " + std::to_string(tokens) +
                    " tokens of context (the shared prefix, every earlier turn, its prompt and output), "
                    "more than the model's context window, " +
                    topt.max_context_what +
                    "; lower turns, shared_prefix, prompt_tokens or output_tokens (their max)");
      }
    }
  }
  if (topt.format == workloads::TraceFormat::synthetic && topt.max_context_tokens > 0) {
    for (const auto& r : in.requests) {
      const std::uint64_t tokens =
          std::uint64_t{r.input_tokens} + std::max<std::uint32_t>(1, r.output_tokens);
      if (tokens > topt.max_context_tokens) {
        tr.fail("input_tokens", "generated request " + std::to_string(r.id) + " needs " +
                                    std::to_string(tokens) +
                                    " tokens of context, more than the model's context window, " +
                                    topt.max_context_what + "; lower input_tokens.max and output_tokens.max");
      }
    }
  }
  if (trace_section) *trace_section = tr;
  return in;
}

nlohmann::json model_summary(const workloads::TransformerModel& model) {
  const double bits =
      std::min(workloads::bits_per_value(model.linear_dtype), workloads::bits_per_value(model.expert_dtype));
  const double token_weight_bytes =
      static_cast<double>(model.layer_linear_flops_per_token()) / 2.0 * bits / 8.0;
  return {{"name", model.name},
          {"weight_bytes", model.weight_bytes()},
          {"kv_bytes_per_token", model.kv_bytes_per_token()},
          {"linear_flops_per_token", model.linear_flops_per_token()},
          {"token_weight_bytes", token_weight_bytes}};
}

}  // namespace wse::experiments
