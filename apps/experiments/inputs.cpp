#include "apps/experiments/inputs.h"

#include <algorithm>

namespace wse::experiments {

ModelAndTrace read_model_and_trace(config::Section& root, config::Section* trace_section) {
  config::Section ms = root.section("model", "the transformer (a Hugging Face config.json)");
  ModelAndTrace in{workloads::read_transformer(ms), {}};
  config::Section wl = root.section("workload", "the requests");
  config::Section tr = wl.section("trace", "request trace");
  const workloads::TraceOptions topt = workloads::read_trace_options(tr);
  in.requests = workloads::read_trace(topt);
  if (trace_section) *trace_section = tr;
  return in;
}

nlohmann::json model_summary(const workloads::TransformerModel& model) {
  const double bits = std::min(workloads::bits_per_value(model.linear_dtype), workloads::bits_per_value(model.expert_dtype));
  const double token_weight_bytes = static_cast<double>(model.layer_linear_flops_per_token()) / 2.0 * bits / 8.0;
  return {{"name", model.name},
          {"weight_bytes", model.weight_bytes()},
          {"kv_bytes_per_token", model.kv_bytes_per_token()},
          {"linear_flops_per_token", model.linear_flops_per_token()},
          {"token_weight_bytes", token_weight_bytes}};
}

}  // namespace wse::experiments
