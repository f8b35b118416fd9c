// Tests of the `efa:` configuration reader and the shipped hardware files.
#include <gtest/gtest.h>

#include <string>

#include "efa_link/efa_bench.h"
#include "efa_link/efa_config.h"
#include "systemc_models/config/config.h"

namespace wse::efa {
namespace {

EfaNetworkConfig read(const std::string& yaml) {
  config::Document doc = config::parse(yaml, "test.yaml");
  config::Section efa = doc.root().section("efa", "the EFA link");
  EfaNetworkConfig c = read_efa_config(efa);
  doc.finish();
  return c;
}

TEST(EfaConfig, ShippedTrn2AttachmentIs16x200Gbps) {
  const EfaNetworkConfig c = shipped_config("trn2_48xlarge");
  EXPECT_EQ(c.sender.adapters, 16u);
  EXPECT_DOUBLE_EQ(c.sender.line_rate.bytes_per_s * 8 * c.sender.adapters, 3.2e12);  // 3.2 Tb/s in all
  EXPECT_EQ(c.sender.mtu.bytes, 8192u);
  EXPECT_EQ(c.receiver.adapters, 16u);  // receiver defaults to the sender
  EXPECT_EQ(c.fabric.paths, 64u);
  EXPECT_EQ(c.srd.path_selection, PathSelection::Adaptive);
}

TEST(EfaConfig, ShippedC5nIsOne100GbpsAdapter) {
  const EfaNetworkConfig c = shipped_config("c5n");
  EXPECT_EQ(c.sender.adapters, 1u);
  EXPECT_DOUBLE_EQ(c.sender.line_rate.bytes_per_s * 8, 100e9);
}

TEST(EfaConfig, ReceiverOverridesAndListsAreRead) {
  const EfaNetworkConfig c = read(R"(
efa:
  senders: 2
  receivers: 3
  sender: {adapters: 4, line_rate: 200 Gb/s}
  receiver: {adapters: 1, line_rate: 1.2 Tb/s}
  fabric:
    paths: 8
    congestion: [{path: 2, load: 0.5}]
    faults: [{from: 1 ms, until: 2 ms}, {path: 3, from: 0 s, until: 5 us}]
  srd: {grain: burst, loss_probability: 0.001, path_selection: round_robin}
)");
  EXPECT_EQ(c.senders, 2u);
  EXPECT_EQ(c.receivers, 3u);
  EXPECT_EQ(c.sender.adapters, 4u);
  EXPECT_EQ(c.receiver.adapters, 1u);
  EXPECT_DOUBLE_EQ(c.receiver.line_rate.bytes_per_s, 1.2e12 / 8);
  EXPECT_DOUBLE_EQ(c.receiver.host_dma.bytes_per_s, c.sender.host_dma.bytes_per_s);
  ASSERT_EQ(c.fabric.congestion.size(), 1u);
  EXPECT_EQ(c.fabric.congestion[0].path, 2u);
  ASSERT_EQ(c.fabric.faults.size(), 2u);
  EXPECT_TRUE(c.fabric.faults[0].all_paths);
  EXPECT_FALSE(c.fabric.faults[1].all_paths);
  EXPECT_EQ(c.fabric.faults[1].path, 3u);
  EXPECT_DOUBLE_EQ(c.fabric.faults[0].from.seconds, 1e-3);
  EXPECT_EQ(c.srd.grain, Grain::Burst);
  EXPECT_EQ(c.srd.path_selection, PathSelection::RoundRobin);
}

// An empty section gives the struct defaults (one source of defaults, written out as text
// and parsed back).
TEST(EfaConfig, EmptySectionGivesStructDefaults) {
  const EfaNetworkConfig c = read("efa: {}");
  const EfaNetworkConfig d;
  EXPECT_EQ(c.sender.adapters, d.sender.adapters);
  EXPECT_EQ(c.sender.line_rate, d.sender.line_rate);
  EXPECT_EQ(c.sender.mtu, d.sender.mtu);
  EXPECT_EQ(c.sender.host_dma, d.sender.host_dma);
  EXPECT_DOUBLE_EQ(c.sender.nic_latency.seconds, d.sender.nic_latency.seconds);
  EXPECT_EQ(c.receiver.line_rate, d.sender.line_rate);
  EXPECT_EQ(c.fabric.paths, d.fabric.paths);
  EXPECT_EQ(c.fabric.path_capacity, d.fabric.path_capacity);
  EXPECT_DOUBLE_EQ(c.fabric.path_latency.seconds, d.fabric.path_latency.seconds);
  EXPECT_DOUBLE_EQ(c.srd.retransmit_timeout.seconds, d.srd.retransmit_timeout.seconds);
  EXPECT_EQ(c.srd.adaptive_timeout, d.srd.adaptive_timeout);
  EXPECT_EQ(c.srd.retry_budget, d.srd.retry_budget);
  EXPECT_EQ(c.srd.max_outstanding, d.srd.max_outstanding);
  EXPECT_EQ(c.srd.grain, d.srd.grain);
  EXPECT_EQ(c.srd.path_selection, d.srd.path_selection);
  EXPECT_EQ(c.srd.bursts_per_message, d.srd.bursts_per_message);
}

TEST(EfaConfig, ErrorsNameTheKey) {
  auto message = [](const std::string& yaml) -> std::string {
    try {
      read(yaml);
    } catch (const config::ConfigError& e) {
      return e.key_path() + ": " + e.what();
    }
    return "no error";
  };
  EXPECT_NE(message("efa: {sender: {line_rat: 100 Gb/s}}").find("line_rat"), std::string::npos);
  EXPECT_NE(message("efa: {sender: {line_rate: 100 GB}}").find("efa.sender.line_rate"), std::string::npos);
  EXPECT_NE(message("efa: {fabric: {paths: 4, congestion: [{path: 4, load: 0.5}]}}")
                .find("efa.fabric.congestion[0].path"),
            std::string::npos);
  EXPECT_NE(message("efa: {srd: {grain: fluid}}").find("efa.srd.grain"), std::string::npos);
  EXPECT_NE(message("efa: {srd: {loss_probability: 1}}").find("efa.srd.loss_probability"), std::string::npos);
  // Checks across keys (validate) are reported at the section they concern.
  const std::string mtu = message("efa: {sender: {mtu: 8 KiB}, receiver: {mtu: 4 KiB}}");
  EXPECT_EQ(mtu.rfind("efa.sender: ", 0), 0u) << mtu;
  EXPECT_NE(mtu.find("same mtu"), std::string::npos) << mtu;
}

}  // namespace
}  // namespace wse::efa
