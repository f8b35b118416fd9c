// NeuronCore engines: exact times of small matmul tiles (derived by hand below from
// the Trainium2 tensor engine: 2.4 GHz, one stationary row loaded per cycle, one bf16
// (two fp8) moving column per cycle, fill and drain K + M cycles), DMA/compute overlap,
// HBM contention between two cores, and capacity errors naming what does not fit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "neuroncore/core/chip_module.h"
#include "neuroncore/core/chip_sim.h"
#include "neuroncore/core/gemm.h"
#include "util/systemc_test.h"

namespace wse::neuron {
namespace {

using ::testing::HasSubstr;

// Picoseconds of `cycles` at 2.4 GHz, rounded as the model rounds each phase.
std::uint64_t te_ps(double cycles) { return static_cast<std::uint64_t>(std::llround(cycles / 2.4e9 * 1e12)); }

ChipResult run_one(const ChipConfig& chip, const Program& p) {
  ChipSim sim(chip);
  return sim.run({p});
}

TEST(TensorEngine, FullBf16TileTakesLoadStreamAndDrain) {
  // K = M = 128, N = 512 bf16: load 128 cycles (one row per cycle), stream 512 (one
  // column per cycle), fill/drain 128 + 128: 896 cycles = 373.333 ns.
  EXPECT_EQ(ChipSim::matmul_cycles(TensorEngineConfig{}, 128, 128, 512, DType::kBf16), 896u);
  Program p;
  p.matmul(128, 128, 512, DType::kBf16);
  const ChipResult r = run_one(trainium2_chip(), p);
  EXPECT_EQ(r.end_ps, te_ps(128) + te_ps(512) + te_ps(256));  // 53333 + 213333 + 106667
  EXPECT_EQ(r.end_ps, 373333u);
}

TEST(TensorEngine, Fp8StreamsTwoColumnsPerCycle) {
  // N = 512 fp8: stream 256 cycles; 128 + 256 + 256 = 640 cycles = 266.667 ns.
  Program p;
  p.matmul(128, 128, 512, DType::kFp8);
  EXPECT_EQ(run_one(trainium2_chip(), p).end_ps, te_ps(128) + te_ps(256) + te_ps(256));
}

TEST(TensorEngine, SmallTileTimeFollowsItsShape) {
  // K = 64, M = 32, N = 128 bf16: load 64, stream 128, drain 64 + 32 = 96: 288 cycles
  // = 120 ns. Utilization of the array: (64/128)(32/128) of 128 stream cycles over 288.
  Program p;
  p.matmul(64, 32, 128, DType::kBf16);
  const ChipResult r = run_one(trainium2_chip(), p);
  EXPECT_EQ(r.end_ps, 120000u);
  EXPECT_NEAR(r.tensor_utilization(0), 0.5 * 0.25 * 128.0 / 288.0, 1e-4);
}

TEST(TensorEngine, AccumulatingMatmulsOverlapTheNextLoadWithTheStream) {
  // Two 128 x 128 x 512 bf16 matmuls into one PSUM bank. With preload the second
  // stationary tile loads (cycles 128-256) while the first streams (128-640); the second
  // streams 640-1152 and drains 256: done at 1408 cycles. Without preload its load waits
  // for the first stream to end: load 640-768, stream 768-1280, done 1536 cycles.
  Program p;
  p.matmul(128, 128, 512, DType::kBf16);
  p.matmul(128, 128, 512, DType::kBf16);
  ChipConfig chip = trainium2_chip();
  const std::uint64_t load = te_ps(128), stream = te_ps(512), drain = te_ps(256);
  EXPECT_EQ(run_one(chip, p).end_ps, load + 2 * stream + drain);
  chip.core.tensor.stationary_preload = false;
  EXPECT_EQ(run_one(chip, p).end_ps, 2 * (load + stream) + drain);
}

TEST(Engines, VectorCopyOfAPsumBankTakesOverheadPlusElementsOverRate) {
  // 128 x 512 fp32 elements at 256 per cycle (0.96 GHz) after 64 cycles of overhead:
  // 64 + 256 = 320 cycles = 333.333 ns. The scalar engine (1.2 GHz, 128 per cycle):
  // 64 + 512 = 576 cycles = 480 ns, running at the same time.
  Program p;
  const auto v = p.elementwise(Engine::kVector, 128 * 512, DType::kFp32);
  const auto s = p.elementwise(Engine::kScalar, 128 * 512, DType::kFp32);
  const ChipResult r = run_one(trainium2_chip(), p);
  EXPECT_EQ(r.cores[0].timing[v].end_ps, 333333u);
  EXPECT_EQ(r.cores[0].timing[s].start_ps, 0u);
  EXPECT_EQ(r.cores[0].timing[s].end_ps, 480000u);
}

// A core with round DMA figures: 4 KiB chunks at 4.096 GB/s (1 us each), 600 ns per
// DMA instruction, streaming HBM (far faster than one queue).
ChipConfig round_dma_chip(std::uint32_t queues) {
  ChipConfig c = trainium2_chip();
  c.cores = 2;
  c.hbm_fidelity = HbmFidelity::kStreaming;
  c.core.dma.queues = queues;
  c.core.dma.bandwidth_per_queue = Bandwidth{4.096e9};
  c.core.dma.chunk = Size{4096};
  return c;
}

TEST(Dma, InstructionPaysDescriptorOverheadThenMovesAtTheQueueRate) {
  // 8 KiB: 600 ns, then two 1 us chunks: done at 2.6 us (the HBM answers each chunk
  // ~34 ns after it leaves, well inside the queue's own serialization).
  Program p;
  p.dma_load(0, 0, 8192);
  EXPECT_EQ(run_one(round_dma_chip(1), p).end_ps, 2'600'000u);
}

TEST(Dma, DoubleBufferingOverlapsLoadsWithMatmuls) {
  // Four 8 KiB tiles, each feeding one 128 x 128 x 512 bf16 matmul (load 53333 ps,
  // stream 213333, drain 106667: 373333 ps alone); a tile buffer is reused only after
  // its matmul is done.
  // One buffer, one queue: DMA 2.6 us then matmul, four times: 4 x 2973333 - rounding
  // = 11893332 ps.
  Program single;
  std::uint32_t prev_mm = 0;
  for (int i = 0; i < 4; ++i) {
    const auto d = i == 0 ? single.dma_load(0, 0, 8192) : single.dma_load(0, 0, 8192, {prev_mm});
    prev_mm = single.matmul(128, 128, 512, DType::kBf16, {d});
  }
  EXPECT_EQ(run_one(round_dma_chip(1), single).end_ps, 11'893'332u);
  // Two buffers on two queues: tiles 0 and 1 load together (done 2.6 us); matmul 0 is
  // done at 2973333, matmul 1 (stationary preloaded during matmul 0's stream) at
  // 3186666; tile 2 loads 2973333-5573333, tile 3 3186666-5786666; matmul 2 is done at
  // 5946666; matmul 3 loads at 5786666, streams 5839999-6053332, done 6159999.
  Program dbl;
  std::uint32_t mm[4] = {};
  for (std::uint32_t i = 0; i < 4; ++i) {
    const auto d = i < 2 ? dbl.dma_load(i % 2, 0, 8192) : dbl.dma_load(i % 2, 0, 8192, {mm[i - 2]});
    mm[i] = dbl.matmul(128, 128, 512, DType::kBf16, {d});
  }
  const ChipResult r = run_one(round_dma_chip(2), dbl);
  EXPECT_EQ(r.cores[0].timing[mm[1]].end_ps, 3'186'666u);
  EXPECT_EQ(r.end_ps, 6'159'999u);
}

TEST(Dma, TwoCoresContendForTheSameHbm) {
  // An HBM cut to 2 channels of one stack (102.4 GB/s peak) is slower than one core's
  // DMA queue (here 437.5 GB/s, 64 chunks in flight): one core streaming 4 MiB is
  // limited by the HBM. Two cores streaming 4 MiB each take more than twice as long:
  // they share the channels, and their streams (64 MiB apart: same banks, other rows)
  // also cost each other row conflicts.
  ChipConfig chip = trainium2_chip();
  chip.hbm = hbm3_reference();
  chip.hbm.channels_per_stack = 2;
  chip.hbm.capacity_per_stack = Size{1ULL << 30};
  chip.core.dma.bandwidth_per_queue = Bandwidth{437.5e9};
  chip.core.dma.chunks_in_flight = 64;
  auto program = [](std::uint64_t base) {
    Program p;
    p.dma_load(0, base, 4ULL << 20);
    return p;
  };
  ChipSim one(chip);
  const ChipResult r1 = one.run({program(0)});
  ChipSim two(chip);
  const ChipResult r2 = two.run({program(0), program(64ULL << 20)});
  const double peak = 2 * 51.2e9;
  EXPECT_GT(static_cast<double>(4 << 20) / (r1.end_ps * 1e-12), 0.80 * peak);
  EXPECT_GT(r2.end_ps, 2.0 * r1.end_ps);
  EXPECT_LT(r2.end_ps, 2.6 * r1.end_ps);
  EXPECT_GT(r2.hbm_utilization(), 0.7);
}

TEST(Gemm, LargeBf16GemmKeepsTheTensorEngineBusy) {
  // 2048^3 bf16 on one core: loads of A overlap the matmuls; the array is busy most of
  // the time. fp8 halves the compute but not the bytes per tile: lower utilization.
  ChipConfig chip = trainium2_chip();
  chip.hbm_fidelity = HbmFidelity::kStreaming;
  const GemmResult bf16 = run_gemm(chip, {2048, 2048, 2048, DType::kBf16});
  const GemmResult fp8 = run_gemm(chip, {2048, 2048, 2048, DType::kFp8});
  EXPECT_GT(bf16.tensor_utilization, 0.7);
  EXPECT_LT(bf16.tensor_utilization, 1.0);
  EXPECT_LT(fp8.tensor_utilization, bf16.tensor_utilization);
  EXPECT_GT(fp8.achieved_tflops, bf16.achieved_tflops);
  // The bank-level HBM gives nearly the same time for this compute-bound case.
  chip.hbm_fidelity = HbmFidelity::kBanks;
  const GemmResult banks = run_gemm(chip, {1024, 1024, 1024, DType::kBf16});
  chip.hbm_fidelity = HbmFidelity::kStreaming;
  const GemmResult stream = run_gemm(chip, {1024, 1024, 1024, DType::kBf16});
  EXPECT_NEAR(banks.seconds / stream.seconds, 1.0, 0.03);
}

TEST(Gemm, EightCoresShareTheHbm) {
  // 2048^3 bf16 split by columns over 8 cores: each core has 1/8 of the work, but every
  // core reads all of A, and the eight share one HBM: faster than one core by less than
  // 8x, with the HBM far busier.
  ChipConfig chip = trainium2_chip();
  chip.hbm_fidelity = HbmFidelity::kStreaming;
  const GemmResult one = run_gemm(chip, {2048, 2048, 2048, DType::kBf16});
  const GemmResult eight = run_gemm_on_cores(chip, {2048, 2048, 2048, DType::kBf16}, 8);
  EXPECT_LT(eight.seconds, one.seconds / 3.0);
  EXPECT_GT(eight.seconds, one.seconds / 8.0);
  EXPECT_GT(eight.hbm_utilization, 4 * one.hbm_utilization);
  EXPECT_THROW(run_gemm_on_cores(chip, {2048, 2048, 2044, DType::kBf16}, 8), std::invalid_argument);
}

TEST(Gemm, SbufOverflowNamesWhatDoesNotFitAndByHowMuch) {
  // K = 32768 bf16: the B panel alone is 32768 x 512 x 2 B = 32 MiB; with three A slabs
  // (3 x 16 x 128 x 128 x 2 B = 1.5 MiB) and two C tiles (2 x 128 x 512 x 2 B = 256 KiB)
  // the kernel needs 33.75 MiB of the 24 MiB SBUF: 9.75 MiB over.
  EXPECT_THAT(
      [] {
        lower_gemm(trainium2_chip(), {128, 32768, 512, DType::kBf16});
      },
      ::testing::ThrowsMessage<CapacityError>(::testing::AllOf(
          HasSubstr("SBUF capacity exceeded"), HasSubstr("GEMM 128x32768x512 bf16"),
          HasSubstr("needs 33.75 MiB"), HasSubstr("holds 24.00 MiB"), HasSubstr("(9.75 MiB over)"))));
}

TEST(Gemm, HbmOverflowNamesWhatDoesNotFit) {
  // (M K + K N + M N) x 2 B with M = N = 2^20, K = 128: 2 TiB + 0.5 GiB needed, 96 GiB
  // held: 1.91 TiB over.
  EXPECT_THAT(
      [] {
        lower_gemm(trainium2_chip(), {1ULL << 20, 128, 1ULL << 20, DType::kBf16});
      },
      ::testing::ThrowsMessage<CapacityError>(
          ::testing::AllOf(HasSubstr("HBM capacity exceeded"), HasSubstr("(A, B and C) needs 2.00 TiB"),
                           HasSubstr("holds 96.00 GiB"), HasSubstr("(1.91 TiB over)"))));
}

TEST(Program, RejectsAMatmulLargerThanTheArrayAndForwardDependencies) {
  Program p;
  p.matmul(256, 128, 512, DType::kBf16);
  EXPECT_THAT([&] { run_one(trainium2_chip(), p); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("exceeds one tile")));
  Program q;
  q.matmul(128, 128, 512, DType::kBf16);
  EXPECT_THROW(q.depend(0, 0), std::invalid_argument);
}

class ChipModule : public wse::testing::SystemCTest {};

TEST_F(ChipModule, RunsTheProgramsAndReportsEngineUtilization) {
  // Two cores: one matmul (373333 ps) and one vector copy (333333 ps). SystemC time
  // ends at the later finish; the tensor utilization of core 0 is 213333 / 373333.
  const ChipConfig cfg = trainium2_chip();
  Program a;
  a.matmul(128, 128, 512, DType::kBf16);
  Program b;
  b.elementwise(Engine::kVector, 128 * 512, DType::kFp32);
  TrainiumChip chip("chip", cfg, {a, b});
  run_to_end();
  EXPECT_EQ(now_ps(), 373333u);
  const auto utils = stats::utilizations({&chip.stats()}, 373333e-12);
  double tensor0 = -1, vector1 = -1;
  for (const auto& [path, f] : utils) {
    if (path == "chip.core0.tensor_engine") tensor0 = f;
    if (path == "chip.core1.vector_engine") vector1 = f;
  }
  EXPECT_NEAR(tensor0, 213333.0 / 373333.0, 1e-6);
  EXPECT_NEAR(vector1, 333333.0 / 373333.0, 1e-6);
}

}  // namespace
}  // namespace wse::neuron
