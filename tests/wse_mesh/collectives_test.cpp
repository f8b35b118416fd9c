// Reductions and broadcasts on the per-PE fabric, with cycle counts derived by hand.
//
// Common facts (default fabric: H = R = C = 1, 4-wavelet buffers; default PE = WSE-2):
//  - a wavelet handed to the ramp at t is in the router at t + 1 (R), crosses h links in
//    h cycles (H each) and reaches the PE at t + 1 + h + 1; a PE that receives it at d can
//    start an instruction at d + 1;
//  - add of one fp32 element (one wavelet): SIMD 2 -> 1 cycle; reads 32 bits over
//    2 x 32 -> 1; writes 32 over 32 -> 1: 1 cycle. One chain stage (ramp, hop, ramp,
//    add issue, add) therefore costs 5 cycles.
#include "wse_mesh/kernels/collectives.h"

#include <gtest/gtest.h>

#include "util/systemc_test.h"

namespace wse::wafer {
namespace {

class CollectivesTest : public wse::testing::SystemCTest {};

ReduceConfig reduce_cfg(std::uint32_t P, std::uint32_t Q, std::uint64_t n, Reduction red) {
  ReduceConfig r;
  r.grid_rows = P;
  r.grid_cols = Q;
  r.elements = n;
  r.dtype = Accumulate::kFp32;
  r.reduction = red;
  return r;
}

TEST_F(CollectivesTest, ChainOfFourExactCycles) {
  // 4 PEs in a row, 4 fp32 = 4 wavelets each. PE 0 sends wavelet k at k; PE 1 receives
  // it at k + 3, adds it in cycle k + 4 (final at k + 5) and sends it at k + 5; PE 2
  // receives at k + 8, final at k + 10; PE 3 (root) receives at k + 13, final at k + 15.
  // Last wavelet (k = 3): 18 cycles.
  const CollectiveResult r = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 4, 4, Reduction::kChain));
  EXPECT_EQ(r.total_cycles, 18u);
  EXPECT_EQ(r.wavelets, 4u);
  EXPECT_EQ(r.root, (PeCoord{3, 0}));
  EXPECT_EQ(r.wavelet_hops, 3u * 4u);  // 3 links, 4 wavelets each
  // The same line as a column (4 x 1): the same time, root at the south end.
  const CollectiveResult c = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(4, 1, 4, Reduction::kChain));
  EXPECT_EQ(c.total_cycles, 18u);
  EXPECT_EQ(c.root, (PeCoord{0, 3}));
}

TEST_F(CollectivesTest, TreeOfFourExactCycles) {
  // Round 0: PE 1 -> PE 0 and PE 3 -> PE 2 (1 hop): wavelet k arrives at k + 3, added
  // in k + 4, final at k + 5 (at PE 2; at PE 0 the sum still waits for PE 2).
  // Round 1: PE 2 -> PE 0 over 2 hops: sent at k + 5, arrives at k + 5 + 1 + 2 + 1 =
  // k + 9, added in k + 10, final at k + 11. PE 0's engine adds PE 1's wavelets in cycles
  // 4..7 and PE 2's in 10..13, no overlap. Last (k = 3): 14 cycles, against the
  // chain's 18.
  const CollectiveResult r = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 4, 4, Reduction::kTree));
  EXPECT_EQ(r.total_cycles, 14u);
  EXPECT_EQ(r.root, (PeCoord{0, 0}));
  EXPECT_EQ(r.wavelet_hops, 4u * (1 + 1 + 2));
}

TEST_F(CollectivesTest, TwoByTwoExactCycles) {
  // 2 x 2 grid, 2 wavelets (fp32) per PE. Chain: rows reduce east, then column 1 south.
  // (0,0) -> (1,0) and (0,1) -> (1,1): wavelet k arrives at k + 3, added in k + 4.
  // (1,0) has the final row sum at k + 5 and sends it south: arrives at (1,1) at k + 8,
  // added in k + 9, final at k + 10. (1,1)'s engine: row adds in cycles 4, 5, column
  // adds in 9, 10. Last (k = 1): 11 cycles. The tree is the mirror image (root (0,0),
  // west then north): also 11.
  const CollectiveResult chain =
      run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(2, 2, 2, Reduction::kChain));
  EXPECT_EQ(chain.total_cycles, 11u);
  EXPECT_EQ(chain.root, (PeCoord{1, 1}));
  const CollectiveResult tree = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(2, 2, 2, Reduction::kTree));
  EXPECT_EQ(tree.total_cycles, 11u);
  EXPECT_EQ(tree.root, (PeCoord{0, 0}));
}

TEST_F(CollectivesTest, KTreeLineExactCycles) {
  // 1 x 9, one fp32 wavelet, groups of 3 ({0,1,2} {3,4,5} {6,7,8}, roots 2, 5, 8).
  // Phase 1: PE 0 sends at 0, PE 1 gets it at 3, adds in 4, sends at 5; PE 2 gets it at
  //   8, adds in 9: final at 10 (likewise PE 5; PE 8 has added PE 7's by 10).
  // Phase 2 (3 hops a stage): PE 2 sends at 10, PE 5 gets it at 10 + 1 + 3 + 1 = 15, adds
  //   in 16, sends at 17; PE 8 gets it at 22, adds in 23: 24 = ktree_latency(9, 3).
  //   The chain: 8 stages of 5 = 40.
  ReduceConfig r = reduce_cfg(1, 9, 1, Reduction::kKTree);
  r.ktree_group = 3;
  CollectiveResult res = run_reduce(FabricConfig{}, PeConfig{}, r);
  EXPECT_EQ(res.total_cycles, 24u);
  EXPECT_EQ(res.root, (PeCoord{8, 0}));
  EXPECT_EQ(res.wavelet_hops, 6u * 1 + 2u * 3);
  r.ktree_group = 0;  // auto: 3 for 9 PEs (gemv_test.cpp)
  EXPECT_EQ(run_reduce(FabricConfig{}, PeConfig{}, r).total_cycles, 24u);
  EXPECT_EQ(run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 9, 1, Reduction::kChain)).total_cycles, 40u);
}

TEST_F(CollectivesTest, KTreeAllReduceOnFourByFourExactCycles) {
  // 4 x 4 grid, 2 fp32 wavelets per PE, K-tree with groups of 2 on the rows (to column 3)
  // and then on column 3 (to row 3); root (3, 3). Wavelet k (0, 1):
  //  rows: PEs 0 and 2 send k at k; PEs 1 and 3 get it at k + 3 and add in k + 4 (final
  //    at PE 1: k + 5). Group root 1 -> row root 3 (2 hops): sent at k + 5, arrives
  //    k + 9, added in k + 10: the row sum is final at PE (3, i) at k + 11 (its adds at
  //    4, 5, 10, 11: no clash).
  //  column 3: (3,0) sends k at k + 11; (3,1) gets it at k + 14, adds in k + 15, final
  //    k + 16; (3,2) sends its row sum at k + 11 to (3,3): arrives k + 14, added in
  //    k + 15. Group root (3,1) -> (3,3) (2 hops): sent k + 16, arrives k + 20, added in
  //    k + 21: final at k + 22. Reduce: wavelet 1 at 23 cycles.
  //  Broadcast back on color 23: the root sends wavelet k at k + 22 up column 3 and each
  //    column PE west along its row; the farthest PE (0, 0) is 6 hops away: wavelet 1
  //    (sent at 23) gets there at 23 + 1 + 6 + 1 = 31, usable at 32.
  ReduceConfig r = reduce_cfg(4, 4, 2, Reduction::kKTree);
  r.ktree_group = 2;
  const CollectiveResult red = run_reduce(FabricConfig{}, PeConfig{}, r);
  EXPECT_EQ(red.total_cycles, 23u);
  EXPECT_EQ(red.root, (PeCoord{3, 3}));
  const CollectiveResult all = run_allreduce(FabricConfig{}, PeConfig{}, r);
  EXPECT_EQ(all.reduce_cycles, 23u);
  EXPECT_EQ(all.total_cycles, 32u);
  EXPECT_EQ(all.root, (PeCoord{3, 3}));
  // Wavelet-hops: reduce per row 2 x 1 + 1 x 2 links, the column the same, 2 wavelets
  // each: 5 x 4 x 2 = 40; broadcast: 3 links of column 3 and 3 per row, 2 wavelets: 30.
  EXPECT_EQ(all.wavelet_hops, 40u + 30u);
  // The broadcast color may not overlap the reduction's (row phase 0..3 here).
  r.broadcast_color = 2;
  EXPECT_THROW(run_allreduce(FabricConfig{}, PeConfig{}, r), std::invalid_argument);
}

TEST_F(CollectivesTest, AddCostFollowsSramPorts) {
  // 16-bit SRAM ports: an fp32 add writes 32 bits through one 16-bit port: 2 cycles.
  // Chain of 2 PEs, 3 wavelets: they reach PE 1 at 3, 4, 5; adds run 4-5, 6-7, 8-9
  // (the engine binds, not the fabric): 10 cycles. With 32-bit ports: 5, 6, 7 -> 7.
  PeConfig narrow;
  narrow.sram_port_bits = 16;
  ASSERT_EQ(add_cycles(narrow, Accumulate::kFp32, 1), 2u);
  EXPECT_EQ(run_reduce(FabricConfig{}, narrow, reduce_cfg(1, 2, 3, Reduction::kChain)).total_cycles, 10u);
  EXPECT_EQ(run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 2, 3, Reduction::kChain)).total_cycles, 7u);
  // fp16: 2 elements per wavelet, 6 elements = 3 wavelets; add of 2 fp16: SIMD 4 -> 1,
  // reads 32 / 64 -> 1, writes 32 / 32 -> 1: 7 cycles as for fp32.
  ReduceConfig half = reduce_cfg(1, 2, 6, Reduction::kChain);
  half.dtype = Accumulate::kFp16;
  const CollectiveResult h = run_reduce(FabricConfig{}, PeConfig{}, half);
  EXPECT_EQ(h.wavelets, 3u);
  EXPECT_EQ(h.total_cycles, 7u);
}

TEST_F(CollectivesTest, BroadcastExactCycles) {
  BroadcastConfig b;
  b.elements = 4;  // fp32: 4 wavelets
  b.grid_rows = 1;
  b.grid_cols = 4;
  // Row 1 x 4 from PE 0: the far PE is 3 hops away; the last wavelet (sent at 3)
  // reaches it at 3 + 1 + 3 + 1 = 8, usable at 9 = 3 H + n + 2 R.
  CollectiveResult r = run_broadcast(FabricConfig{}, PeConfig{}, b);
  EXPECT_EQ(r.total_cycles, 9u);
  EXPECT_EQ(r.wavelet_hops, 3u * 4u);
  // From PE 1 (multicast east and west): the far PE is 2 hops away: 8.
  b.source = {1, 0};
  EXPECT_EQ(run_broadcast(FabricConfig{}, PeConfig{}, b).total_cycles, 8u);
  // Column 4 x 1 from the top: as the row, 9.
  b.source = {0, 0};
  b.grid_rows = 4;
  b.grid_cols = 1;
  EXPECT_EQ(run_broadcast(FabricConfig{}, PeConfig{}, b).total_cycles, 9u);
  // 2 x 2 grid from (0,0): east along the row, then south in both columns; (1,1) is 2
  // hops away: 3 + 1 + 2 + 1 = 7, usable at 8. Links used: (0,0)->E, (0,0)->S,
  // (1,0)->S: 3 x 4 wavelet-hops.
  b.grid_rows = 2;
  b.grid_cols = 2;
  r = run_broadcast(FabricConfig{}, PeConfig{}, b);
  EXPECT_EQ(r.total_cycles, 8u);
  EXPECT_EQ(r.wavelet_hops, 3u * 4u);
}

TEST_F(CollectivesTest, LongerRowsFavourTheTreeForShortVectors) {
  // 1 x 32, 2 wavelets: chain ~ 5 x 31 stages; tree ~ sum over 5 rounds of (2^s + 4) +
  // 5 x 2 adds at the root. Tree must be far faster; for a long vector (64 wavelets)
  // on 4 PEs the chain's single stream per PE beats the tree's root adding 2 streams.
  const auto chain = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 32, 2, Reduction::kChain));
  const auto tree = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 32, 2, Reduction::kTree));
  EXPECT_EQ(chain.total_cycles, 31u * 5u + 1u);  // 31 stages of 5, the second wavelet trails by 1
  EXPECT_LT(tree.total_cycles, chain.total_cycles / 2);
  const auto chain_long = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 4, 64, Reduction::kChain));
  const auto tree_long = run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 4, 64, Reduction::kTree));
  EXPECT_EQ(chain_long.total_cycles, 63u + 15u);
  EXPECT_GT(tree_long.total_cycles, chain_long.total_cycles);
}

TEST_F(CollectivesTest, DefaultColorsCoverAWse3Side) {
  // A tree over 1176 PEs (a WSE-3 column) needs 11 colors: the default phases (0..10
  // and 12..22) stay apart and within the 24 colors, in both directions. 2 x 1176, one
  // element: the column phase spans 11 rounds, the row phase 1.
  ReduceConfig r = reduce_cfg(1176, 2, 1, Reduction::kTree);
  const CollectiveResult res = run_reduce(FabricConfig{}, PeConfig{}, r);
  EXPECT_EQ(res.root, (PeCoord{0, 0}));
  // The last round alone crosses 1024 hops.
  EXPECT_GT(res.total_cycles, 1024u);
}

TEST_F(CollectivesTest, Errors) {
  // A vector that does not fit a PE's SRAM: 16384 fp32 = 64 KiB > 48 KiB.
  EXPECT_THROW(run_reduce(FabricConfig{}, PeConfig{}, reduce_cfg(1, 4, 16384, Reduction::kChain)),
               CapacityError);
  // Row and column phases on overlapping colors.
  ReduceConfig r = reduce_cfg(4, 4, 4, Reduction::kTree);
  r.col_color = 1;  // row phase uses 0, 1
  EXPECT_THROW(run_reduce(FabricConfig{}, PeConfig{}, r), std::invalid_argument);
  // A grid that does not fit the fabric.
  Fabric small(FabricConfig{});  // 8 x 8
  EXPECT_THROW(run_reduce(small, PeConfig{}, reduce_cfg(1, 9, 4, Reduction::kChain)), std::invalid_argument);
  BroadcastConfig b;
  b.source = {4, 0};  // outside the 1 x 4 grid
  EXPECT_THROW(run_broadcast(FabricConfig{}, PeConfig{}, b), std::invalid_argument);
}

}  // namespace
}  // namespace wse::wafer
