// The `efa` bench in quick mode writes its CSV files, and their figures follow the model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "efa_link/efa_bench.h"

namespace wse::efa {
namespace {

std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

TEST(EfaBench, QuickRunWritesCsvFiles) {
  const std::filesystem::path dir = ::wse::testing::temp_path("efa_bench_test");
  std::filesystem::create_directories(dir);
  sim::BenchArgs args;
  args.out_dir = dir;
  args.quick = true;
  args.quiet = true;
  const std::vector<std::string> files = run_efa_bench(args);
  ASSERT_EQ(files.size(), 6u);
  for (const auto& f : files) EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;

  // Fairness: 4 flows on 4 distinct adapters are served alike (Jain 1); 17 flows on 16
  // adapters put two on adapter 0, each getting half of it (Jain < 1).
  for (const auto& r : read_csv(dir / "efa_fairness.csv")) {
    if (r[0] != "trn2_48xlarge") continue;
    if (r[2] == "4") {
      EXPECT_NEAR(std::stod(r[6]), 1.0, 1e-3);
    }
    if (r[2] == "17") {
      EXPECT_LT(std::stod(r[6]), 0.99);  // 15 flows at 1, 2 at 1/2: 256 / (17 x 15.5) = 0.97
    }
  }
  // Loss: more loss, more retransmissions, and a later 99th percentile.
  const auto loss = read_csv(dir / "efa_loss.csv");
  ASSERT_EQ(loss.size(), 5u);
  EXPECT_EQ(loss[1][10], "0");
  EXPECT_GT(std::stoull(loss[4][10]), std::stoull(loss[2][10]));
  EXPECT_GT(std::stod(loss[4][6]), std::stod(loss[1][6]));
  // Incast: several senders into one receiver never exceed its ports' line rate and
  // share them evenly.
  for (const auto& r : read_csv(dir / "efa_incast.csv")) {
    if (r[0] == "receiver") continue;
    EXPECT_LE(std::stod(r[3]), std::stod(r[4])) << r[0] << " " << r[1];
    EXPECT_EQ(r[8], "0") << "failed transfers";
    if (r[0] == "trn2_48xlarge" && r[1] == "4") {
      EXPECT_NEAR(std::stod(r[5]), 1.0, 0.01);
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace wse::efa
