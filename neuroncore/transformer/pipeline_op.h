// Pipeline parallelism over the chips of an instance (docs/neuroncore.md, "Parallelism:
// tp x pp x dp"): the decoder layers split into pp stages of contiguous layers, each stage
// a tensor-parallel group of its own chips (TrainiumPrefill of tp_degree x lnc cores); a
// prompt cut into microbatches (sequence chunks) that flow through the stages, a chunk's
// activations crossing from one stage's chips to the next stage's over NeuronLink; dp
// independent replicas of that pipeline on the remaining chips.
#pragma once

#include <cstdint>
#include <vector>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/instance/torus.h"
#include "neuroncore/transformer/prefill.h"
#include "neuroncore/transformer/prefill_config.h"
#include "workloads/model/transformer.h"

namespace wse::neuron {

// The stage of decoder layer `layer` (0-based) when `layers` layers are split into `pp`
// contiguous stages, the first layers mod pp stages one layer longer.
std::uint32_t stage_of_layer(std::uint32_t layer, std::uint32_t layers, std::uint32_t pp);

// The end of a pipeline of chunks through stages, in ps: stage s of chunk c starts once
// stage s - 1 of chunk c has ended and its activations have crossed (transfer_ps[c]) and
// stage s has ended chunk c - 1:
//   end[c][s] = max(end[c][s-1] + transfer_ps[c], end[c-1][s]) + stage_ps[c][s]
// (end[c][-1] = -transfer_ps[c], end[-1][s] = 0); the result is end[C-1][S-1].
std::uint64_t pipeline_makespan(const std::vector<std::vector<std::uint64_t>>& stage_ps,
                                const std::vector<std::uint64_t>& transfer_ps);

// The same recurrence through stages still busy with earlier work until stage_free_ps[s]
// (end[-1][s] = stage_free_ps[s]; 0 = free): a pipelined serving machine's next batch.
// Returns the last chunk's end on every stage, end[C-1][s] (stage_free_ps when no chunk).
std::vector<std::uint64_t> pipeline_stage_ends(const std::vector<std::vector<std::uint64_t>>& stage_ps,
                                               const std::vector<std::uint64_t>& transfer_ps,
                                               std::vector<std::uint64_t> stage_free_ps);

// Successive decode steps of one replica through its stages (docs/neuroncore.md, "Decode
// steps in flight"): step n of group g on stage s ends at
//   end[n][g][s] = max(ready, end of the item before it on stage s) + stage_ps[g][s]
// where the items of a stage run in the order (n, 0), (n, 1), ..., (n + 1, 0), ...; ready
// is end[n][g][s-1] + transfer_ps[g] for s > 0, and for stage 0 the return of group g's
// sampled tokens from the last stage, end[n-1][g][S-1] + return_ps[g] (0 for n = 0), and
// with `drained` also no earlier than the end of step n - 1 (end[n-1][G-1][S-1]).
struct DecodeSteps {
  std::uint64_t fill_ps = 0;  // step 0 from an empty pipeline: pipeline_makespan
  // The steady-state time per step, exact: the schedule becomes periodic (its state, the
  // stages' and groups' last ends less the step's end, repeats after k steps: period =
  // (E[n] - E[n - k]) / k, E[n] = end[n][G-1][S-1], rounded to the nearest ps).
  std::uint64_t step_ps = 0;
  std::uint32_t steps_to_periodic = 0;  // steps simulated until the state repeated
};
DecodeSteps decode_steps(const std::vector<std::vector<std::uint64_t>>& stage_ps,
                         const std::vector<std::uint64_t>& transfer_ps,
                         const std::vector<std::uint64_t>& return_ps, bool drained);

// Ring attention in one decoder layer of a context-parallel group (docs/neuroncore.md,
// "Context parallelism"): the group's attention (attention_ps, its queries against every
// earlier key) runs as cp steps of a = floor(attention_ps / cp), the last one the rest;
// before each of the steps after the first, the next KV block arrives from the neighbour
// group (step_ps), while the step before computes. The time beyond attention_ps:
//   (cp - 1) x max(step_ps, a) + (attention_ps - (cp - 1) a) - attention_ps
//   = (cp - 1) x max(0, step_ps - a)
std::uint64_t ring_attention_exposed_ps(std::uint64_t attention_ps, std::uint64_t step_ps, std::uint32_t cp);

struct PipelineResult {
  // The prompt's prefill: the pipeline's end. A decode step: the time per step of the
  // steady state (decode_steps under the split's schedule), the inter-token latency.
  std::uint64_t total_ps = 0;
  std::vector<std::vector<std::uint64_t>> stage_ps;  // [chunk][stage]: each stage's time on the chunk
  std::vector<std::uint64_t> transfer_ps;            // [chunk]: one stage boundary's activation transfer
  // Decode: [group] the return of the group's sampled tokens from the last stage to stage
  // 0 (0 with pp 1), and the step from an empty pipeline (a step after an idle gap).
  std::vector<std::uint64_t> return_ps;
  std::uint64_t fill_ps = 0;
  // Context parallelism (cp > 1): each group's pass alone ([group]), one ring step (a KV
  // block to the neighbour group), and the time the ring added to the prefill beyond the
  // groups' passes.
  std::uint32_t cp = 1;
  std::vector<std::uint64_t> rank_ps;
  std::uint64_t ring_step_ps = 0;
  std::uint64_t ring_exposed_ps = 0;
  // With cp > 1: [decoder layer] when it ends on every group (the ring's exposed part in it),
  // from the start: the layer-wise KV send of the serving modes.
  std::vector<std::uint64_t> layer_end_ps;
  std::uint64_t bottleneck_ps = 0;  // the busiest stage's time over all chunks
  std::uint32_t chips_per_stage = 1;
  std::uint32_t chips = 1;     // chips_per_stage x pp x cp x dp
  std::uint32_t replicas = 1;  // dp
  // The floor of the prompt's prefill (docs/neuroncore.md, "Parallelism: tp x pp x dp"):
  // each term the largest over the stages of what that stage must do for all chunks at
  // its chips' peaks (compute: the chunks' matmul flops; HBM: the stage's weights once and
  // the chunks' KV cache read and written; collective: the chunks' tensor-parallel
  // collectives, bandwidth only), and step_s the largest term.
  TrainiumFloor floor;
  // Busy times summed over every pass run for the result (each chunk on a stage group,
  // every replica of a decode step), and the directed links of a stage group.
  EngineBusy busy;
  std::uint32_t group_links = 0;
  // Prompts per second of the dp replicas, each a stream of prompts through its stages:
  // dp / bottleneck (a stage takes the next prompt's first chunk once it has ended this
  // prompt's last).
  double prompts_per_s() const;
  double seconds() const { return static_cast<double>(total_ps) * 1e-12; }
};

class TrainiumPipeline {
 public:
  // `prefill` gives each stage's tensor-parallel group (tp_degree x lnc cores); `pp` stages
  // and `dp` replicas of the pipeline must fit the instance's chips, a stage being whole
  // chips when pp > 1; `microbatches` sequence chunks per prompt. Throws
  // std::invalid_argument naming the parallelism and how many chips it lacks.
  TrainiumPipeline(const ChipConfig& chip, const InstanceConfig& instance, const PrefillConfig& prefill,
                   std::uint32_t pp, std::uint32_t dp, std::uint32_t microbatches);

  // One prompt of `prompt_tokens` through the stages (chunks as equal as can be, the first
  // prompt_tokens mod microbatches one token longer), or with cp > 1 over the cp groups
  // (2 cp pieces as equal as can be, group r pieces r and 2 cp - 1 - r, attention a ring of
  // KV blocks; at least 2 cp tokens); with cp > 1 and pp stages or microbatches, each chunk
  // over the cp groups of every stage, the chunks through the stages (at least 2 cp tokens
  // a chunk). Throws CapacityError when a stage's share of the weights and KV cache does not
  // fit one chip's HBM.
  PipelineResult run(const workloads::TransformerModel& m, std::uint64_t prompt_tokens);

  // A serving prefill batch on one replica (docs/neuroncore.md, "Prefill splits in the
  // serving modes"): chunk i, chunk_tokens[i] tokens of a prompt at offsets[i]. With cp > 1
  // over the cp groups, each chunk cut into 2 cp pieces as run() cuts a prompt (a chunk of
  // fewer than 2 cp tokens leaves some empty), group r taking pieces r and 2 cp - 1 - r of
  // every chunk. Else through the pp stages from empty stages: each chunk cut into
  // microbatches pieces as run() cuts a prompt, microbatch k the k-th piece of every chunk
  // (stage_ps, transfer_ps; the caller schedules them behind its earlier batches with
  // pipeline_stage_ends). The piece that ends a chunk produces its logits. chips is one
  // replica's. No capacity check (the serving mode checks a batch's).
  PipelineResult run_batch(const workloads::TransformerModel& m,
                           const std::vector<std::uint64_t>& chunk_tokens,
                           const std::vector<std::uint64_t>& offsets);

  // Per chip of the fullest stage: its layers' weights and the prompt's KV cache over the
  // stage's chips (the embedding with stage 0, the final norm and LM head with the last).
  // With cp > 1: a group's, all the weights and its ceil(prompt_tokens / cp) tokens.
  HbmFootprint stage_footprint(const workloads::TransformerModel& m, std::uint64_t prompt_tokens) const;

  // One decode step (docs/neuroncore.md, "Decode with its own split"): the sequences of
  // `contexts` (cached tokens each) dealt over the dp replicas, longest first, round robin;
  // a replica's sequences cut into min(microbatches, sequences) groups as equal as can be
  // (the first ones one longer) that flow through its stages as a prompt's chunks do. The
  // step ends when the slowest replica ends: the result is that replica's, its floor the
  // largest over the replicas term by term. The step's time (total_ps) is the steady
  // state of successive steps under the split's decode_schedule (decode_steps), fill_ps
  // the first step's. No capacity check (decode_capacity is the serving layer's bound on
  // the KV cache).
  PipelineResult decode_step(const workloads::TransformerModel& m,
                             const std::vector<std::uint64_t>& contexts);

  // What the split leaves for the KV cache of decode: per replica, over the stages, the
  // HBM of a stage's chips less its weights (the embedding table with stage 0, the final
  // norm and the LM head with the last), scaled by the model's layers over the stage's
  // (the KV cache is spread evenly over the layers); the least of the stages.
  struct DecodeCapacity {
    std::uint64_t weight_bytes_per_chip = 0;  // of the fullest stage
    std::uint64_t hbm_bytes_per_chip = 0;
    std::uint64_t replica_kv_bytes = 0;  // 0 when a stage's weights do not fit
    std::uint32_t replicas = 1;
  };
  DecodeCapacity decode_capacity(const workloads::TransformerModel& m) const;

  std::uint32_t chips_per_stage() const { return chips_per_stage_; }
  std::uint32_t chips() const { return chips_per_stage_ * pp_ * cp_ * dp_; }

 private:
  // The chunk graphs through the stages of one replica: stage times, transfers, the end
  // and the floor.
  PipelineResult run_chunks(const workloads::TransformerModel& m,
                            const std::vector<workloads::OperatorGraph>& chunks);
  // One prompt over the cp groups (pp 1): the groups' passes, the ring, the floor.
  PipelineResult run_context_parallel(const workloads::TransformerModel& m, std::uint64_t prompt_tokens);
  // cp with pp stages or microbatches: each chunk over the cp groups of every stage.
  PipelineResult run_context_parallel_stages(const workloads::TransformerModel& m,
                                             std::uint64_t prompt_tokens);
  // Chunks over the cp groups: the result (stage_ps one row: each stage's layers with the
  // ring, the time before the layers with stage 0 and after with the last; transfer_ps the
  // stage boundary of the largest group's activations), and the floor's parts per stage and
  // group ([stage][group]). prompt_ends[i]: the end of chunk i's prompt (its logits), empty
  // = each chunk's own end.
  struct CpChunk {
    PipelineResult result;
    std::vector<std::vector<double>> compute_s, collective_s;
    std::vector<std::vector<std::uint64_t>> weight_bytes, kv_bytes;
  };
  CpChunk context_parallel(const workloads::TransformerModel& m,
                           const std::vector<std::uint64_t>& chunk_tokens,
                           const std::vector<std::uint64_t>& offsets,
                           const std::vector<std::uint64_t>& prompt_ends);

  ChipConfig chip_;
  InstanceConfig instance_;
  InstanceConfig pair_;    // two neighbouring chips: a stage boundary
  TrainiumPrefill stage_;  // one stage's tensor-parallel group (stages are alike)
  std::uint32_t pp_ = 1;
  std::uint32_t dp_ = 1;
  std::uint32_t cp_ = 1;
  std::uint32_t microbatches_ = 1;
  DecodeSchedule schedule_ = DecodeSchedule::kOverlapped;
  std::uint32_t chips_per_stage_ = 1;
};

}  // namespace wse::neuron
