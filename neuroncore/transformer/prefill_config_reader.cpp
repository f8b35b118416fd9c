// The reader of the `prefill:` (and `decode:`) section: every key with its doc, default
// and range (configs/hardware/trn2_48xlarge.yaml, docs/neuroncore.md).
#include "neuroncore/transformer/prefill_config.h"

#include <string>

#include "systemc_models/config/config.h"

namespace wse::neuron {

PrefillConfig read_prefill_config(config::Section& s) {
  const PrefillConfig d;
  PrefillConfig c;
  c.tp_degree = static_cast<std::uint32_t>(
      s.integer("tp_degree", {.doc = "tensor-parallel degree: logical cores a layer is sharded over",
                              .def = std::to_string(d.tp_degree),
                              .min = 1,
                              .max = 4096}));
  c.pp_degree = static_cast<std::uint32_t>(s.integer(
      "pp_degree",
      {.doc = "pipeline-parallel degree: stages of contiguous decoder layers, each a tensor-parallel "
              "group of chips of its own (mode trainium_prefill; the serving modes run 1)",
       .def = std::to_string(d.pp_degree),
       .min = 1,
       .max = 1024}));
  c.dp_degree = static_cast<std::uint32_t>(
      s.integer("dp_degree",
                {.doc = "data-parallel degree: independent replicas of the tp x pp group on the instance's "
                        "chips (mode trainium_prefill; the serving modes run 1)",
                 .def = std::to_string(d.dp_degree),
                 .min = 1,
                 .max = 1024}));
  c.microbatches = static_cast<std::uint32_t>(s.integer(
      "microbatches", {.doc = "sequence chunks a prompt is cut into to flow through the pipeline stages",
                       .def = std::to_string(d.microbatches),
                       .min = 1,
                       .max = 4096}));
  c.cp_degree = static_cast<std::uint32_t>(s.integer(
      "cp_degree",
      {.doc = "context-parallel degree: groups of tp_degree x lnc cores on chips of their own, each "
              "with a copy of the weights, a prompt's tokens dealt over them (2 cp pieces, group r "
              "pieces r and 2 cp - 1 - r) and attention a ring passing KV blocks between the groups "
              "(mode trainium_prefill with pp_degree 1 and one microbatch; the serving modes run 1)",
       .def = std::to_string(d.cp_degree),
       .min = 1,
       .max = 1024}));
  c.lnc = s.enumeration<std::uint32_t>(
      "lnc",
      {.doc = "logical NeuronCore config: physical cores per logical core", .def = std::to_string(d.lnc)},
      {{"1", 1}, {"2", 2}});
  c.reuse = s.boolean("reuse", {.doc = "simulate identical decoder layers and operators once",
                                .def = d.reuse ? "true" : "false"});
  c.gemm_token_block = static_cast<std::uint64_t>(
      s.integer("gemm_token_block", {.doc = "token rows of one simulated GEMM piece (longer GEMMs repeat it)",
                                     .def = std::to_string(d.gemm_token_block),
                                     .min = 128}));
  c.elementwise_tile = static_cast<std::uint64_t>(
      s.integer("elementwise_tile", {.doc = "values per tile of an element-wise operator on one core",
                                     .def = std::to_string(d.elementwise_tile),
                                     .min = 1}));
  c.attention_key_block = static_cast<std::uint32_t>(
      s.integer("attention_key_block", {.doc = "keys per QK^T matmul (at most one PSUM bank of 512)",
                                        .def = std::to_string(d.attention_key_block),
                                        .min = 1,
                                        .max = 512}));
  c.gemm_dma_piece =
      s.size("gemm_dma_piece", {.doc = "smallest DMA instruction of a GEMM's operand transfers",
                                .def = wse::to_string(Size{d.gemm_dma_piece}),
                                .min = 1})
          .bytes;
  c.fuse_projections =
      s.boolean("fuse_projections", {.doc = "run q/k/v and gate/up as one GEMM each (fused kernels)",
                                     .def = d.fuse_projections ? "true" : "false"});
  c.token_grain = static_cast<std::uint64_t>(s.integer(
      "token_grain",
      {.doc = "simulation choice: token counts (GEMM rows, attention chunk and offset, per-token operators) "
              "simulated only at sample points on a grid of steps of this grain up to 32 x grain, then 16 "
              "steps per octave; a count between grid points L and L + step is interpolated linearly "
              "between L + 1 and L + step (bilinearly for attention), flops exact; 0: every count "
              "simulated exactly",
       .def = std::to_string(d.token_grain),
       .min = 0,
       .max = 1 << 20}));
  c.runtime =
      s.boolean("runtime",
                {.doc = "model the runtime around each pass: a launch barrier between the chips, the logits' "
                        "all-gather, on-device sampling and the host overhead not hidden",
                 .def = d.runtime ? "true" : "false"});
  c.host_overhead = s.duration(
      "host_overhead", {.doc = "host work per graph invocation (dispatch, tensor allocation): paid in full "
                               "without async_execution, else only where it exceeds the device's pass",
                        .def = wse::to_string(d.host_overhead),
                        .min = 0});
  c.async_execution = s.boolean(
      "async_execution", {.doc = "the host prepares the next invocation while the device runs this one",
                          .def = d.async_execution ? "true" : "false"});
  c.sampling_vector_passes = static_cast<std::uint32_t>(
      s.integer("sampling_vector_passes",
                {.doc = "vector-engine passes over each logit row of on-device sampling (besides "
                        "the scalar engine's exp with the row sum)",
                 .def = std::to_string(d.sampling_vector_passes),
                 .min = 1,
                 .max = 64}));
  c.overlap = s.boolean(
      "overlap",
      {.doc = "row-parallel GEMMs of two or more chunks of overlap_chunk_tokens rows, their all-reduce "
              "(split into a reduce-scatter and an all-gather between the chips) and the residual add and "
              "norm after them run as a pipeline of token chunks: a chunk's collective on the NeuronLink "
              "overlaps the next chunk's compute; false: every operator after the previous one",
       .def = d.overlap ? "true" : "false"});
  c.overlap_chunk_tokens = static_cast<std::uint64_t>(
      s.integer("overlap_chunk_tokens",
                {.doc = "token rows of one chunk of the overlap pipeline (at most gemm_token_block "
                        "is used)",
                 .def = std::to_string(d.overlap_chunk_tokens),
                 .min = 128,
                 .max = 1 << 20}));
  c.hbm_fidelity = s.enumeration<HbmFidelity>(
      "hbm_fidelity", {.doc = "HBM model for whole-model prefill", .def = "streaming"},
      {{"streaming", HbmFidelity::kStreaming}, {"banks", HbmFidelity::kBanks}});
  return c;
}

PrefillConfig read_decode_split(config::Section& s, const PrefillConfig& prefill) {
  PrefillConfig c = prefill;
  c.cp_degree = 1;  // a decode step has one new token per sequence: nothing to deal over groups
  c.tp_degree = static_cast<std::uint32_t>(s.integer(
      "tp_degree",
      {.doc = "tensor-parallel degree of a decode step: logical cores (prefill.lnc physical cores each) "
              "a layer is sharded over",
       .def = std::to_string(prefill.tp_degree),
       .min = 1,
       .max = 4096}));
  c.pp_degree = static_cast<std::uint32_t>(s.integer(
      "pp_degree",
      {.doc = "pipeline-parallel degree of a decode step: stages of contiguous decoder layers, each a "
              "tensor-parallel group of chips of its own",
       .def = "1",
       .min = 1,
       .max = 1024}));
  c.dp_degree = static_cast<std::uint32_t>(s.integer(
      "dp_degree",
      {.doc = "data-parallel degree of a decode step: replicas of the tp x pp group, each with a copy "
              "of the weights, the step's sequences dealt over them",
       .def = "1",
       .min = 1,
       .max = 1024}));
  c.microbatches = static_cast<std::uint32_t>(s.integer(
      "microbatches", {.doc = "groups a replica's sequences are cut into to flow through its pipeline stages",
                       .def = "1",
                       .min = 1,
                       .max = 4096}));
  c.decode_schedule = s.enumeration<DecodeSchedule>(
      "schedule",
      {.doc =
           "how successive decode steps share the pipeline stages (pp > 1): overlapped, a microbatch enters "
           "stage 0 of its next step once its sampled tokens are back from the last stage, while other "
           "microbatches are still in later stages; drained, a step begins only when the previous one has "
           "left every stage (the ablation). The same with pp 1",
       .def = "overlapped"},
      {{"overlapped", DecodeSchedule::kOverlapped}, {"drained", DecodeSchedule::kDrained}});
  return c;
}

}  // namespace wse::neuron
