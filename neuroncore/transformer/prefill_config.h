// The configuration of the transformer mapping on a Trainium instance (prefill batches and
// decode steps alike): the `prefill:` section of a Trainium hardware file
// (configs/hardware/trn2_48xlarge.yaml). The mapping it drives: prefill.h.
#pragma once

#include <cstdint>

#include "neuroncore/core/chip_sim.h"
#include "systemc_models/units/units.h"

namespace wse::config {
class Section;
}

namespace wse::neuron {

// How a pipelined decode instance (pp > 1) runs successive steps (docs/neuroncore.md,
// "Decode steps in flight"): overlapped, a microbatch enters stage 0 of its next step as
// soon as its token is back from the last stage, while later microbatches are still in
// later stages of this step, as deployed pipelines run; drained, every stage waits for the
// whole step to end before the next step begins (the ablation). Identical with pp 1.
enum class DecodeSchedule { kOverlapped, kDrained };

struct PrefillConfig {
  std::uint32_t tp_degree = 64;  // logical cores a layer is sharded over (trn2.48xlarge: all)
  std::uint32_t lnc = 2;         // physical cores per logical core (Trainium2 default LNC=2)
  bool reuse = true;             // simulate identical layers / operators once
  // Consecutive column-parallel GEMMs of the same input (q/k/v, gate/up) run as one GEMM
  // of the summed N, as fused kernels do: the activations are read once.
  bool fuse_projections = true;
  std::uint64_t gemm_token_block = 16384;       // token rows of one simulated GEMM piece
  std::uint64_t elementwise_tile = 128 * 2048;  // values per tile of an element-wise operator
  std::uint32_t attention_key_block = 512;      // keys per QK^T matmul (one PSUM bank)
  // Smallest DMA instruction of a GEMM operand transfer: a 128 x 512 bf16 slice (128 KiB)
  // goes as one instruction, so the 600 ns instruction cost is amortised (the GEMM
  // lowering's 4 KiB default makes 8 KiB pieces that spend 2/3 of a queue's time on it).
  // Also the largest weight piece of the weight-streaming GEMM of few token rows.
  std::uint64_t gemm_dma_piece = 128 * 1024;
  HbmFidelity hbm_fidelity = HbmFidelity::kStreaming;  // for the whole-model runs
  // Token counts simulated only at sample points (token_sample_interval), times
  // interpolated between them; 0: every token count simulated exactly.
  std::uint64_t token_grain = 128;
  // The runtime around each pass (one graph invocation): see runtime_op.h. Off,
  // a pass is its operators alone.
  bool runtime = true;
  Duration host_overhead{437e-6};            // host work per invocation (dispatch, tensor allocation)
  bool async_execution = true;               // the host prepares the next invocation while this one runs
  std::uint32_t sampling_vector_passes = 2;  // over the logits: the max, then the scan to the sampled token
  // Row-parallel GEMMs of more than one chunk run as a pipeline of token chunks whose
  // inter-chip collectives overlap the next chunk's compute (docs/neuroncore.md, "Overlap").
  bool overlap = true;
  std::uint64_t overlap_chunk_tokens = 2048;  // token rows of one chunk of that pipeline
  // Pipeline and data parallelism over the instance's chips (pipeline_op.h; the mode
  // trainium_prefill): pp_degree stages of contiguous layers, each a group of tp_degree x
  // lnc cores, a prompt in `microbatches` sequence chunks; dp_degree replicas.
  std::uint32_t pp_degree = 1;
  std::uint32_t dp_degree = 1;
  std::uint32_t microbatches = 1;
  // Context parallelism (mode trainium_prefill, pp 1, one microbatch): cp_degree groups of
  // tp_degree x lnc cores, each with the weights, a prompt's tokens dealt over them and
  // attention as a ring exchanging KV blocks (docs/neuroncore.md, "Context parallelism").
  std::uint32_t cp_degree = 1;
  DecodeSchedule decode_schedule = DecodeSchedule::kOverlapped;  // trainium_decode.schedule
  std::uint32_t physical_cores() const { return tp_degree * lnc; }
};

// Reads the `prefill:` section (configs/hardware/trn2_48xlarge.yaml).
PrefillConfig read_prefill_config(config::Section& s);

// Reads the `trainium_decode:` section: the split of a decode instance's chips for decode
// steps (tp_degree, pp_degree, dp_degree, microbatches, schedule; docs/neuroncore.md, "Decode with
// its own split"), every other key the prefill's. tp_degree defaults to the prefill's,
// the others to 1 (the prefill's split of one group).
PrefillConfig read_decode_split(config::Section& s, const PrefillConfig& prefill);

}  // namespace wse::neuron
