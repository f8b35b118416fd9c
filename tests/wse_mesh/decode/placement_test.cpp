// Placement of transformer layers on wafers: regions, grids, KV capacity, errors.
#include <gtest/gtest.h>

#include <vector>

#include "decode_test_util.h"
#include "wse_mesh/decode/placement.h"
#include "wse_mesh/decode/wafer_decoder.h"
#include "wse_mesh/kernels/pe.h"

namespace wse::wafer {
namespace {

using test::load_cs3;
using test::load_model;
using test::tiny_decode_config;
using test::tiny_llama;
using test::tiny_wafer;

// Regions of a wafer tile it without gaps or overlaps; every grid copy lies inside its
// layer's region. Packed grids share no PE (of any layer on the wafer); spread grids
// cover their layer's region, each tensor's copies on disjoint PEs.
void expect_disjoint(const WaferConfig& w, const std::vector<LayerPlan>& plans, std::uint32_t wafers) {
  for (std::uint32_t wafer = 0; wafer < wafers; ++wafer) {
    std::vector<char> region_of(std::size_t{w.width} * w.height, 0);
    std::vector<char> used(std::size_t{w.width} * w.height, 0);
    std::uint64_t covered = 0;
    for (const LayerPlan& p : plans) {
      if (p.region.wafer != wafer) continue;
      const LayerRegion& r = p.region;
      ASSERT_LE(r.x0 + r.width, w.width);
      ASSERT_LE(r.y0 + r.height, w.height);
      for (std::uint32_t y = r.y0; y < r.y0 + r.height; ++y) {
        for (std::uint32_t x = r.x0; x < r.x0 + r.width; ++x) {
          char& c = region_of[std::size_t{y} * w.width + x];
          ASSERT_EQ(c, 0) << "PE (" << x << "," << y << ") in two regions; layer " << r.layer;
          c = 1;
        }
      }
      covered += std::uint64_t{r.width} * r.height;
      for (const TensorGrid& t : p.grids) {
        ASSERT_EQ(t.origins.size(), t.copies);
        const GridShape f = t.footprint();
        std::vector<char> own(std::size_t{w.width} * w.height, 0);
        for (const PeCoord& o : t.origins) {
          ASSERT_GE(o.y, r.y0);
          ASSERT_GE(o.x, r.x0);
          ASSERT_LE(o.y + f.rows, r.y0 + r.height) << t.tensor << " of layer " << r.layer;
          ASSERT_LE(o.x + f.cols, r.x0 + r.width) << t.tensor << " of layer " << r.layer;
          for (std::uint32_t y = o.y; y < o.y + f.rows; ++y) {
            for (std::uint32_t x = o.x; x < o.x + f.cols; ++x) {
              char& c = (p.spread ? own : used)[std::size_t{y} * w.width + x];
              ASSERT_EQ(c, 0) << "PE (" << x << "," << y << ") holds two grids; " << t.tensor;
              c = 1;
            }
          }
        }
      }
    }
    EXPECT_EQ(covered, std::uint64_t{w.width} * w.height) << "wafer " << wafer;
  }
}

TEST(DecodePlacement, GemvPeBytesAndSmallestGrid) {
  // 64 x 64 bf16 on 2 x 2: Mt = Kt = 32: tile 32*32*2 = 2048, x 2*32 = 64, accumulators
  // 4*32 = 128: 2240 B.
  EXPECT_EQ(gemv_pe_bytes(64, 64, {2, 2}, workloads::DType::bf16), 2240u);
  // Within 2240 B the 2 x 2 grid is the smallest: on 1 x Q, Mt = 64 needs 256 B of
  // accumulators and Kt*(128 + 2) <= 1984 gives Kt = 15, Q = 5 (5 PEs > 4); on 2 x 2 it fits.
  EXPECT_EQ(smallest_grid(64, 64, workloads::DType::bf16, 2240, 100, 100), (GridShape{2, 2}));
  // (4 x 1 needs 16*64*2 + 128 + 64 = 2240 too, but 2 x 2 is squarer.) One byte less and
  // 2 x 2 no longer fits: 1 x 5 (Kt = 15: 64*15*2 + 30 + 256 = 2206) and 5 x 1 (Mt = 13:
  // 13*64*2 + 128 + 52 = 1844) take 5 PEs; equally square, the first found (fewer rows) wins.
  EXPECT_EQ(smallest_grid(64, 64, workloads::DType::bf16, 2239, 100, 100), (GridShape{1, 5}));
  EXPECT_EQ(smallest_grid(64, 64, workloads::DType::bf16, 2239, 100, 4), (GridShape{5, 1}));
  // At most 4 x 4: 2 x 3 (Kt 22: 32*22*2 + 44 + 128 = 1580) and 3 x 2 take 6 PEs.
  EXPECT_EQ(smallest_grid(64, 64, workloads::DType::bf16, 2239, 4, 4), (GridShape{2, 3}));
  // 64 x 64 PEs of one value each need 2 + 2 + 4 = 8 B; with 7 B there is no grid.
  EXPECT_EQ(smallest_grid(64, 64, workloads::DType::bf16, 8, 100, 100), (GridShape{64, 64}));
  EXPECT_TRUE(smallest_grid(64, 64, workloads::DType::bf16, 7, 100, 100).is_auto());
}

TEST(DecodePlacement, TinyModelKvCapacityByHand) {
  // tiny_llama on a 16 x 20 wafer of 8 KiB PEs, 1 KiB reserved: 7168 B usable per PE,
  // 16 x 7168 = 114688 B per PE row.
  // Grid bytes per PE (gemv_pe_bytes): q, o 2x2: 2240 (4 PEs: 8960 each); k, v 2x2:
  // Mt 16, Kt 32: 1024 + 64 + 64 = 1152 (4608 each); gate, up 2x4: Mt 64, Kt 16: 2048 +
  // 32 + 256 = 2336 (8 PEs: 18688 each); down 2x4: Mt 32, Kt 32: 2240 (17920). A layer:
  // 82432 B. Embedding (layer 0) and LM head (layer 1), 256 x 64 on 4x4: Mt 64, Kt 16:
  // 2336 x 16 = 37376. Norms: 2 x 64 x 2 = 256 per layer, the final norm 128 more on
  // layer 1. Used: layer 0 82432 + 37376 + 256 = 120064; layer 1 120192.
  // Shelves 16 wide, tallest first: [table 4x4, q, k, v, o, gate] then [up, down]: 6 rows.
  // KV: the largest C with ceil((C + used) / 114688) summed <= 20 gives 10 rows each
  // (C = 1146880 - 120192 = 1026688); capacities 1146880 - used = 1026816 and 1026688.
  // KV per token per layer: 2 x 2 heads x 16 x 2 B = 128 B: 8022 and 8021 tokens; the
  // admission limit is 8021 tokens x 256 B (both layers) = 2053376 B.
  const WaferConfig w = tiny_wafer(20);
  const workloads::TransformerModel m = tiny_llama();
  DecodeConfig cfg = tiny_decode_config();
  WaferDecoder d(w, cfg, m);
  const std::vector<LayerPlan>& p = d.plans();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].grid_pe_bytes, 82432u + 37376u);
  EXPECT_EQ(p[1].grid_pe_bytes, 82432u + 37376u);
  EXPECT_EQ(p[0].vector_weight_bytes, 256u);
  EXPECT_EQ(p[1].vector_weight_bytes, 384u);
  EXPECT_EQ(p[0].weight_rows, 6u);
  EXPECT_EQ(p[1].weight_rows, 6u);
  EXPECT_EQ(p[0].region.y0, 0u);
  EXPECT_EQ(p[0].region.height, 10u);
  EXPECT_EQ(p[1].region.y0, 10u);
  EXPECT_EQ(p[1].region.height, 10u);
  EXPECT_EQ(p[0].region.kv_capacity_bytes, 1026816u);
  EXPECT_EQ(p[1].region.kv_capacity_bytes, 1026688u);
  EXPECT_EQ(d.kv_capacity_tokens(), 8021u);
  EXPECT_EQ(d.kv_capacity_bytes(), 8021u * 256u);
  // Positions: the table at the north-west corner, gate after four 2x2 grids and the
  // table (x = 12), up on the second shelf.
  EXPECT_EQ(p[0].grid("embed_tokens")->origins[0], (PeCoord{0, 0}));
  EXPECT_EQ(p[0].grid("mlp.gate_proj")->origins[0], (PeCoord{12, 0}));
  EXPECT_EQ(p[0].grid("mlp.up_proj")->origins[0], (PeCoord{0, 4}));
  EXPECT_EQ(p[1].grid("lm_head")->origins[0], (PeCoord{0, 10}));
  EXPECT_EQ(p[0].region.weight_bytes + p[1].region.weight_bytes, m.weight_bytes());
  expect_disjoint(w, p, 1);
  EXPECT_EQ(d.regions()[1].kv_capacity_bytes, 1026688u);
}

TEST(DecodePlacement, TinyModelTooSmallWaferNamesTheShortfall) {
  // 11 rows: the two layers' weight grids need 6 + 6 = 12; short by one row of
  // 16 PEs x 8192 B = 131072 B = 128 KiB. Layer 1 starts at row 6; its up projection on
  // the second shelf (rows 4-5 of the band) would end at row 12.
  const workloads::TransformerModel m = tiny_llama();
  try {
    WaferDecoder d(tiny_wafer(11), tiny_decode_config(), m);
    FAIL() << "expected a CapacityError";
  } catch (const CapacityError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.shortfall_bytes(), 131072u);
    EXPECT_NE(
        what.find(
            "layer 1 tensor 'mlp.up_proj' (grid 2x4, 2.3 KiB (2336 B) per PE) would end at PE row 12 of 11"),
        std::string::npos)
        << what;
    EXPECT_NE(what.find("short by 128.00 KiB (131072 B)"), std::string::npos) << what;
    EXPECT_NE(what.find("decode.wafers to at least 2"), std::string::npos) << what;
  }
  // The same on two wafers of 11 rows: one layer each.
  DecodeConfig two = tiny_decode_config();
  two.wafers = 2;
  WaferDecoder d(tiny_wafer(11), two, m);
  EXPECT_EQ(d.regions()[0].wafer, 0u);
  EXPECT_EQ(d.regions()[1].wafer, 1u);
  EXPECT_EQ(d.regions()[1].y0, 0u);
  EXPECT_EQ(d.regions()[1].height, 11u);
  expect_disjoint(tiny_wafer(11), d.plans(), 2);
}

TEST(DecodePlacement, ConfiguredGridErrors) {
  const workloads::TransformerModel m = tiny_llama();
  DecodeConfig cfg = tiny_decode_config();
  cfg.grids["qkv"] = {1, 1};  // q: 64 x 64 on one PE: 8192 + 128 + 256 = 8576 B > 7168
  try {
    WaferDecoder d(tiny_wafer(20), cfg, m);
    FAIL() << "expected a CapacityError";
  } catch (const CapacityError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.shortfall_bytes(), 8576u - 7168u);
    EXPECT_NE(what.find("tensor 'self_attn.q_proj'"), std::string::npos) << what;
    EXPECT_NE(what.find("decode.grids.qkv"), std::string::npos) << what;
  }
  cfg.grids["qkv"] = {2, 17};  // wider than the 16-PE wafer
  EXPECT_THROW(WaferDecoder(tiny_wafer(20), cfg, m), CapacityError);
  DecodeConfig many = tiny_decode_config();
  many.wafers = 3;  // more wafers than layers
  EXPECT_THROW(WaferDecoder(tiny_wafer(20), many, m), std::invalid_argument);
}

TEST(DecodePlacement, Llama8bFitsOneWse3) {
  const WaferConfig w = load_cs3();
  const workloads::TransformerModel m = load_model("llama-3.1-8b.yaml");
  WaferDecoder d(w, DecodeConfig{}, m);
  const auto& p = d.plans();
  ASSERT_EQ(p.size(), 32u);
  std::uint64_t weights = 0;
  for (const LayerPlan& l : p) {
    EXPECT_EQ(l.region.wafer, 0u);
    weights += l.region.weight_bytes;
    // Every auto grid keeps its fullest PE within 90% of 48 KiB (44236 B).
    for (const TensorGrid& t : l.grids) EXPECT_LE(t.pe_bytes, 44236u) << t.tensor;
  }
  EXPECT_EQ(weights, m.weight_bytes());
  ASSERT_NE(p[0].grid("embed_tokens"), nullptr);
  ASSERT_NE(p[31].grid("lm_head"), nullptr);
  expect_disjoint(w, p, 1);
  // 16 GB of weights on a 44 GB wafer: tens of GB left for KV, at 128 KiB per token
  // (32 layers x 2 x 8 heads x 128 x 2 B).
  EXPECT_EQ(m.kv_bytes_per_token(), 131072u);
  EXPECT_GT(d.kv_capacity_bytes(), 15'000'000'000u);
  EXPECT_LT(d.kv_capacity_bytes(), 44'000'000'000u - m.weight_bytes());
}

TEST(DecodePlacement, Llama70bNeedsFourWse3) {
  const WaferConfig w = load_cs3();
  const workloads::TransformerModel m = load_model("llama-3.1-70b.yaml");
  try {
    WaferDecoder d(w, DecodeConfig{}, m);
    FAIL() << "Llama-3.1-70B should not fit one WSE-3";
  } catch (const CapacityError& e) {
    const std::string what = e.what();
    EXPECT_GT(e.shortfall_bytes(), 90'000'000'000u);  // 141 GB of weights, 44 GB of SRAM
    EXPECT_NE(what.find("wafer 0 (WSE-3, 762 x 1176 PEs) cannot hold the weights of layers 0-79"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("short by"), std::string::npos) << what;
    EXPECT_NE(what.find("Set decode.wafers to at least 4 (now 1)"), std::string::npos) << what;
  }
  DecodeConfig three;
  three.wafers = 3;
  EXPECT_THROW(WaferDecoder(w, three, m), CapacityError);
  DecodeConfig four;
  four.wafers = 4;
  WaferDecoder d(w, four, m);
  const auto& p = d.plans();
  ASSERT_EQ(p.size(), 80u);
  std::uint32_t wafer = 0;
  std::vector<int> layers_per_wafer(4, 0);
  for (const LayerPlan& l : p) {
    EXPECT_GE(l.region.wafer, wafer);  // contiguous groups
    wafer = l.region.wafer;
    ++layers_per_wafer[l.region.wafer];
  }
  for (int n : layers_per_wafer) EXPECT_GE(n, 19);
  expect_disjoint(w, p, 4);
  EXPECT_GT(d.kv_capacity_bytes(), 0u);
}

}  // namespace
}  // namespace wse::wafer
