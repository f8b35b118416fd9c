#include "efa_link/register.h"

#include "efa_link/efa_bench.h"

namespace wse::efa {

void register_efa_link(sim::Registry& registry) {
  registry.add_bench(
      "efa", sim::Bench{"EFA RDMA link: bandwidth and latency vs message size, fairness of 1..64 flows, "
                        "packet loss vs completion-time percentiles, 1 vs many paths around a congested path",
                        run_efa_bench});
}

}  // namespace wse::efa
