// Models the benchmarks run without reading files: the architecture fields of the
// Hugging Face config.json files of workloads/data/models/meta-llama--Meta-Llama-3.1-
// {8B,70B}_config.json, bf16 (as configs/models/llama-3.1-{8b,70b}.yaml).
#pragma once

#include "workloads/model/transformer.h"

namespace wse::workloads {

TransformerModel llama31_8b();
TransformerModel llama31_70b();

}  // namespace wse::workloads
