// Fuzz target: the Hugging Face config.json reader (workloads/model). The input is the
// config.json; it is included under `model:` as configs/models/*.yaml do, read with
// read_transformer, then every size the models use is computed and a small prefill and
// decode batch is lowered to operators.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"
#include "workloads/model/op_trace.h"  // summarize
#include "workloads/model/operators.h"
#include "workloads/model/transformer.h"

namespace {

namespace config = wse::config;
namespace wl = wse::workloads;
using wse::fuzz::finding;
using wse::fuzz::unexpected;

void use_model(const wl::TransformerModel& m) {
  // Counts that wrapped around 2^64 would break these orderings: a token uses at most
  // all weights, and every weight takes at least 4.25 bits.
  if (m.active_parameters() > m.parameters()) finding("more active parameters than parameters");
  if (m.weight_bytes() < m.parameters() / 2) finding("fewer weight bytes than half the parameters");
  if (m.linear_flops_per_token() / 2 > m.parameters() + m.lm_head_flops_per_token())
    finding("more multiply-adds per token than weights");
  (void)m.active_parameters_without_embedding();
  (void)m.mtp_parameters();
  (void)m.weight_bytes();
  (void)m.kv_bytes_per_token();
  (void)m.kv_bytes(4096);
  (void)m.has_sliding_layers();
  (void)m.linear_flops_per_token();
  (void)m.prefill_attention_flops(512, 100);
  (void)m.decode_attention_flops(2048);
  (void)wl::summarize(m);
  const wl::OperatorGraph prefill = wl::lower_prefill(m, {7, 3}, {0, 5}, {7, 20});
  const wl::OperatorGraph decode = wl::lower_decode(m, {1, 300});
  if (prefill.ops.empty() || decode.ops.empty()) finding("a model lowered to no operators");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  wse::fuzz::write_scratch("config.json", text);
  const auto main_file =
      wse::fuzz::write_scratch("model.yaml", "model:\n  include: config.json\n  name: fuzzed\n");
  try {
    config::Document doc = config::load(main_file);
    config::Section root = doc.root();
    config::Section ms = root.section("model", "the transformer");
    const wl::TransformerModel m = wl::read_transformer(ms);
    doc.finish();
    use_model(m);
  } catch (const config::ConfigError&) {
    // bad input, reported with file, line and key
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
