// Machines whose timing is given by simple rules (test doubles) for the serving-system
// tests, so that every time can be derived by hand.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "systemc_models/tlm/shared_resource.h"
#include "workloads/serving/serving_system.h"

namespace wse::serving::doubles {

// Prefill takes 1 ms + 10 us per token; layer l of L is done at (l+1)/L of the batch.
class LinearPrefill : public PrefillBackend {
 public:
  explicit LinearPrefill(unsigned layers) : layers_(layers) {}
  PrefillTiming prefill(const std::vector<PrefillChunk>& batch) override {
    std::uint64_t tokens = 0;
    for (const auto& c : batch) tokens += c.tokens;
    PrefillTiming t;
    t.seconds = 1e-3 + 10e-6 * static_cast<double>(tokens);
    for (unsigned l = 0; l < layers_; ++l) t.layer_done_s.push_back(t.seconds * (l + 1) / layers_);
    batches.push_back(batch);
    return t;
  }
  std::vector<std::vector<PrefillChunk>> batches;

 private:
  unsigned layers_;
};

// Every decode step takes 1 ms.
class FixedDecode : public DecodeBackend {
 public:
  double step(const std::vector<std::uint32_t>& contexts) override {
    batch_sizes.push_back(contexts.size());
    steps += 1;
    return 1e-3;
  }
  std::vector<std::size_t> batch_sizes;
  int steps = 0;
};

// One shared link: 1 GB/s, 10 us latency, FIFO.
class LinkPath : public KvPath {
 public:
  LinkPath() {
    tlm_blocks::SharedResourceConfig c;
    c.bandwidth = Bandwidth{1e9};
    c.latency = Duration{10e-6};
    c.initiators = 4;
    link_ = std::make_unique<tlm_blocks::SharedResource>("link", c);
  }
  void transfer(unsigned prefill_instance, unsigned decode_system, std::uint64_t bytes) override {
    destinations.push_back(decode_system);
    link_->transfer(prefill_instance, bytes);
  }
  std::vector<unsigned> destinations;

 private:
  std::unique_ptr<tlm_blocks::SharedResource> link_;
};

// The configuration the rules above are stated with: 1000 B of KV per token, prefill
// batches of up to 1000 prompt tokens, 1 GB of KV capacity per decode system (a test
// that needs less room sets it).
inline ServingConfig linear_config(unsigned layers, KvSend kv_send = ServingConfig{}.kv_send) {
  ServingConfig c;
  c.layers = layers;
  c.kv_bytes = [](std::uint64_t tokens) { return 1000 * tokens; };
  c.decode_kv_capacity_bytes = 1'000'000'000;
  c.prefill_max_batch_tokens = 1000;
  c.kv_send = kv_send;
  return c;
}

inline double ms(double s) { return s * 1e3; }

inline workloads::Request req(double arrival_s, std::uint32_t in, std::uint32_t out,
                              std::vector<std::uint64_t> hashes = {}) {
  workloads::Request r;
  r.arrival_s = arrival_s;
  r.input_tokens = in;
  r.output_tokens = out;
  r.hash_ids = std::move(hashes);
  return r;
}

}  // namespace wse::serving::doubles
