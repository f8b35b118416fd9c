#include "apps/experiments/inputs.h"

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

}  // namespace wse::experiments
