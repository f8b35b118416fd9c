#include "apps/experiments/register.h"

#include "apps/experiments/gpu_serving.h"
#include "apps/experiments/kv_transfer.h"
#include "apps/experiments/op_trace_run.h"
#include "apps/experiments/trainium_prefill_run.h"
#include "apps/experiments/trainium_serving.h"
#include "apps/experiments/wafer_serving.h"

namespace wse::experiments {

void register_experiments(sim::Registry& registry) {
  registry.add_mode("kv_transfer",
                    "KV caches of a request trace sent from prefill senders over one shared link",
                    make_kv_transfer);
  registry.add_mode("trainium_only",
                    "a request trace served by Trainium instances alone (prefill and decode colocated)",
                    make_trainium_only);
  registry.add_mode("trainium_disaggregated",
                    "Trainium prefill pool, KV caches over EFA, Trainium decode pool",
                    make_trainium_disaggregated);
  registry.add_mode(
      "disaggregated",
      "Trainium prefill pool, KV caches over EFA into the CS-3s' wafer SRAM, CS-3 decode systems",
      make_disaggregated);
  registry.add_mode("wafer_only",
                    "a request trace served by CS-3 systems alone (prefill and decode on the wafer)",
                    make_wafer_only);
  registry.add_mode("gpu_only",
                    "a request trace served by GPU instances alone (tensor-parallel groups, prefill and "
                    "decode colocated)",
                    make_gpu_only);
  registry.add_mode("trainium_prefill_gpu_decode",
                    "Trainium prefill pool, KV caches over EFA, GPU decode pool",
                    make_trainium_prefill_gpu_decode);
  registry.add_mode("gpu_prefill_cs3_decode",
                    "GPU prefill pool, KV caches over EFA into the CS-3s' wafer SRAM, CS-3 decode systems",
                    make_gpu_prefill_cs3_decode);
  registry.add_mode("op_trace", "an operator-trace file executed on the Trainium model (trace-driven)",
                    make_op_trace);
  registry.add_mode(
      "trainium_prefill",
      "one prompt prefilled on a Trainium instance split tp x pp x dp (pipeline stages, microbatches)",
      make_trainium_prefill);
  registry.add_mode("trainium_decode",
                    "one decode step on a Trainium instance split tp x pp x dp for decode (trainium_decode:)",
                    make_trainium_decode);
}

}  // namespace wse::experiments
