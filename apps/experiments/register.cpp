#include "apps/experiments/register.h"

#include "apps/experiments/kv_transfer.h"

namespace wse::experiments {

void register_experiments(sim::Registry& registry) {
  registry.add_mode("kv_transfer",
                    "KV caches of a request trace sent from prefill senders over one shared link",
                    make_kv_transfer);
}

}  // namespace wse::experiments
