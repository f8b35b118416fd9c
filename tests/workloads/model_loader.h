// Loads a bundled Hugging Face config.json through the configuration language, the way
// a model YAML does (`model: {include: <json>}`), with optional --set overrides.
#pragma once

#include <string>
#include <vector>

#include "systemc_models/config/config.h"
#include "util/systemc_test.h"
#include "workloads/model/transformer.h"

namespace wse::workloads {

inline TransformerModel load_model(const std::string& file, const std::vector<std::string>& overrides = {}) {
  auto doc =
      config::parse("model:\n  include: " + testing::source_path("workloads/data/models/" + file) + "\n",
                    "model.yaml", overrides);
  config::Section root = doc.root();
  config::Section m = root.section("model", "model");
  TransformerModel t = read_transformer(m);
  doc.finish();
  return t;
}

}  // namespace wse::workloads
