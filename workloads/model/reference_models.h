// Models the benchmarks run without reading files: the architecture fields of the
// Hugging Face config.json files of workloads/data/models/ (meta-llama--Meta-Llama-3.1-
// {8B,70B,405B}_config.json, Qwen--Qwen3-32B_config.json), bf16 (as configs/models/).
#pragma once

#include "workloads/model/transformer.h"

namespace wse::workloads {

TransformerModel llama31_8b();
TransformerModel llama31_70b();
TransformerModel qwen3_32b();
TransformerModel llama31_405b();

}  // namespace wse::workloads
