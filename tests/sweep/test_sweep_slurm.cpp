// `wse-emu sweep --backend slurm` on a real one-node Slurm cluster started for the test
// from Debian's slurm-wlm and munge (scripts/slurm_test_cluster.sh: munged as the munge
// user, slurmctld -D and slurmd -D, no systemd, no accounting). The job array's
// results.csv must equal the local backend's (the host's wall time is in host.csv); every
// daemon started is stopped by PID at the end.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sweep/csv.h"
#include "util/cli_harness.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SlurmSweep : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wse_sweep_slurm_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (started_) {
      std::vector<pid_t> pids;
      for (const char* name : {"slurmd", "slurmctld", "munged"}) {
        const fs::path f = dir_ / "cluster" / (std::string(name) + ".pid");
        if (fs::exists(f)) pids.push_back(static_cast<pid_t>(std::stol(slurp(f))));
      }
      EXPECT_EQ(pids.size(), 3u) << "a daemon's pid file is missing";
      Result stop =
          shell("scripts/slurm_test_cluster.sh stop '" + (dir_ / "cluster").string() + "'", dir_ / "io");
      EXPECT_EQ(stop.exit_code, 0) << stop.err;
      for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0), 0) << "daemon " << pid << " still running";
      ::unsetenv("SLURM_CONF");
    }
    fs::remove_all(dir_);
  }
  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  fs::path dir_;
  bool started_ = false;
};

TEST_F(SlurmSweep, JobArrayGivesTheSameResultsAsTheLocalBackend) {
  if (::geteuid() != 0) GTEST_SKIP() << "slurmd of the test cluster must run as root";
  // CI machines start fresh: scripts/test.sh has run scripts/install_deps.sh, which lists
  // slurm-wlm and munge; run it again here in case this test binary is run on its own.
  if (shell("command -v slurmctld && command -v slurmd && command -v munged", dir_ / "io").exit_code != 0) {
    Result inst = shell("scripts/install_deps.sh", dir_ / "io");
    ASSERT_EQ(inst.exit_code, 0) << inst.err;
  }
  Result start =
      shell("scripts/slurm_test_cluster.sh start '" + (dir_ / "cluster").string() + "'", dir_ / "io");
  started_ = true;
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  ASSERT_THAT(start.out, HasSubstr("export SLURM_CONF="));
  ::setenv("SLURM_CONF", (dir_ / "cluster" / "slurm.conf").c_str(), 1);

  const std::string src = WSE_SOURCE_DIR;
  write("base.yaml",
        "experiment: {name: t, mode: kv_transfer}\n"
        "include:\n  - " +
            src +
            "/configs/models/llama-3.1-70b.yaml\n"
            "  - " +
            src +
            "/configs/workloads/azure_conv_1000.yaml\n"
            "workload: {trace: {limit: 50}}\n"
            "kv_transfer:\n  link:\n    bandwidth: 400 GB/s\n    latency: 15 us\n");
  write("s.yaml",
        "experiment: base.yaml\n"
        "grid:\n  kv_transfer.link.bandwidth: [50 GB/s, 1.6 Tb/s, 400 GB/s]\n"
        "  workload.trace.rate_scale: [1, 40]\n");
  const auto sweep = [&](const std::string& backend, const fs::path& out) {
    // Built with append: GCC 12 at -O3 reports a false -Wrestrict overlap in
    // `"'" + std::string&&` (inlined basic_string::insert).
    std::string cmd = "'";
    cmd += wse_emu_path();
    cmd += "' sweep '" + (dir_ / "s.yaml").string() + "' --out '" + out.string() + "' --backend " + backend +
           " --jobs 3";
    return shell(cmd, dir_ / "io");
  };
  Result local = sweep("local", dir_ / "local");
  ASSERT_EQ(local.exit_code, 0) << local.err;
  Result slurm = sweep("slurm", dir_ / "slurm");
  ASSERT_EQ(slurm.exit_code, 0) << slurm.err << "\n" << slurp(dir_ / "cluster" / "slurmctld.log");
  EXPECT_THAT(slurm.err, HasSubstr("submitted Slurm job array"));
  EXPECT_TRUE(fs::exists(dir_ / "slurm" / "slurm" / "sweep.sbatch"));
  EXPECT_THAT(slurp(dir_ / "slurm" / "slurm" / "sweep.sbatch"), HasSubstr("\"$SLURM_ARRAY_TASK_ID\""));

  const Csv a = read_csv(dir_ / "local" / "results.csv");
  const Csv b = read_csv(dir_ / "slurm" / "results.csv");
  ASSERT_EQ(a.rows.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(b.at(i, "status"), "ok") << "row " << i;
  EXPECT_EQ(a, b);
  // The figures really differ between points (the comparison is not of empty rows):
  // at 40x the arrival rate on a 50 GB/s link, transfers queue.
  EXPECT_GT(std::stod(b.at(1, "kv_transfer.time_s.p99")), std::stod(b.at(0, "kv_transfer.time_s.p99")));

  // Resubmitting a complete sweep submits nothing.
  Result again = sweep("slurm", dir_ / "slurm");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("0 to run (6 already complete)"));
  EXPECT_THAT(again.err, ::testing::Not(HasSubstr("submitted")));
}

}  // namespace
}  // namespace wse::testing
