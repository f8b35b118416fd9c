// Shared inputs of the decode tests: shipped configurations and a tiny model.
#pragma once

#include <string>

#include "systemc_models/config/config.h"
#include "util/systemc_test.h"
#include "workloads/model/transformer.h"
#include "wse_mesh/decode/wafer_decoder.h"
#include "wse_mesh/wafer_config.h"

namespace wse::wafer::test {

inline WaferConfig load_cs3() {
  auto doc = config::load(testing::source_path("configs/hardware/cs3.yaml"));
  config::Section root = doc.root();
  config::Section w = root.section("wafer", "wafer");
  WaferConfig c = read_wafer_config(w);
  doc.finish();
  return c;
}

inline workloads::TransformerModel load_model(const std::string& file) {
  auto doc = config::load(testing::source_path("configs/models/" + file));
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  workloads::TransformerModel t = workloads::read_transformer(m);
  doc.finish();
  return t;
}

// A two-layer Llama: hidden 64, 4 query heads and 2 KV heads of 16, MLP 128, vocab 256,
// bf16. Per layer: q 64x64, k and v 64x32, o 64x64, gate and up 64x128, down 128x64.
inline workloads::TransformerModel tiny_llama(int layers = 2) {
  const std::string yaml =
      "model:\n  name: tiny\n  model_type: llama\n  hidden_size: 64\n"
      "  intermediate_size: 128\n  num_attention_heads: 4\n  num_key_value_heads: 2\n"
      "  num_hidden_layers: " +
      std::to_string(layers) + "\n  vocab_size: 256\n  tie_word_embeddings: false\n";
  auto doc = config::parse(yaml, "tiny.yaml");
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  workloads::TransformerModel t = workloads::read_transformer(m);
  doc.finish();
  return t;
}

// A 16-PE-wide wafer with 8 KiB PEs, 1 GHz.
inline WaferConfig tiny_wafer(std::uint32_t height) {
  WaferConfig w;
  w.name = "tiny";
  w.width = 16;
  w.height = height;
  w.clock = Frequency{1e9};
  w.fabric.width = w.width;
  w.fabric.height = height;
  w.pe.sram_bytes = 8192;
  return w;
}

// Every grid configured, so that the placement of tiny_llama can be followed by hand:
// the packed mapping (each grid where configured), fp32 accumulation and the chain
// reduction, the kernels these hand derivations follow. The spread mapping has tests
// of its own (spread_test.cpp).
inline DecodeConfig tiny_decode_config() {
  DecodeConfig c;
  c.mapping = Mapping::kPacked;
  c.accumulate = Accumulate::kFp32;
  c.reduction_auto = false;
  c.reduction = Reduction::kChain;
  c.reserved_sram_bytes = 1024;
  c.vocab_slices = 1;
  c.grids = {{"qkv", {2, 2}},  {"o", {2, 2}},       {"gate_up", {2, 4}},
             {"down", {2, 4}}, {"lm_head", {4, 4}}, {"embedding", {4, 4}}};
  return c;
}

}  // namespace wse::wafer::test
