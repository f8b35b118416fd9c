// Output directories and files: an --out folder in use is refused without --force (run,
// bench, sweep, regress), and a full disk or an unwritable path is an error naming the
// path and the reason, with no partial file left behind.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "systemc_models/sim/output.h"
#include "systemc_models/trace/trace.h"
#include "util/cli_harness.h"
#include "util/scratch_dir.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> n;
  if (!fs::is_directory(dir)) return n;
  for (const auto& e : fs::directory_iterator(dir)) n.insert(e.path().filename().string());
  return n;
}

class Outputs : public ScratchDirTest {
 protected:
  // A small valid experiment: the KV transfers of the first `limit` requests of the
  // Azure conversation trace over one 400 GB/s link.
  fs::path experiment(int limit = 5) {
    const std::string src = WSE_SOURCE_DIR;
    return write("e.yaml",
                 "experiment: {name: t, mode: kv_transfer}\n"
                 "include:\n  - " +
                     src +
                     "/configs/models/llama-3.1-70b.yaml\n"
                     "  - " +
                     src +
                     "/configs/workloads/azure_conv_1000.yaml\n"
                     "workload: {trace: {limit: " +
                     std::to_string(limit) +
                     "}}\n"
                     "kv_transfer:\n  link:\n    bandwidth: 400 GB/s\n    latency: 15 us\n");
  }
  Result run(const fs::path& out, const std::string& extra = "") {
    return wse_emu("run '" + experiment().string() + "' --quiet --out '" + out.string() + "' " + extra,
                   dir_ / "io");
  }
};

TEST_F(Outputs, RunRefusesAFolderInUseWithoutForce) {
  const fs::path out = dir_ / "out";
  ASSERT_EQ(run(out).exit_code, 0);
  const std::string summary = slurp(out / "summary.json");
  write("out/notes.txt", "mine\n");
  const auto before = names_in(out);
  const auto stamp = fs::last_write_time(out / "summary.json");

  Result again = run(out);
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err,
              HasSubstr("output directory '" + out.string() + "' already exists and is not empty"));
  EXPECT_THAT(again.err, HasSubstr("--force"));
  EXPECT_EQ(names_in(out), before) << "nothing written";
  EXPECT_EQ(fs::last_write_time(out / "summary.json"), stamp);

  // --force writes the run's files over the earlier ones and leaves the others alone.
  Result forced = run(out, "--force");
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(slurp(out / "summary.json"), summary);
  EXPECT_EQ(slurp(out / "notes.txt"), "mine\n");

  // An empty folder (e.g. from mktemp -d) is not in use.
  fs::create_directories(dir_ / "empty");
  EXPECT_EQ(run(dir_ / "empty").exit_code, 0);
  EXPECT_TRUE(fs::exists(dir_ / "empty" / "summary.json"));
}

TEST_F(Outputs, BenchSweepAndRegressRefuseAFolderInUse) {
  write("used/x.csv", "1\n");
  // The check comes before the benchmark runs.
  Result bench = wse_emu("bench hbm --quick --quiet --out '" + (dir_ / "used").string() + "'", dir_ / "io");
  EXPECT_EQ(bench.exit_code, 2);
  EXPECT_THAT(bench.err, HasSubstr("already exists and is not empty"));
  EXPECT_EQ(names_in(dir_ / "used"), std::set<std::string>{"x.csv"});

  write("s.yaml", "experiment: e.yaml\ngrid:\n  kv_transfer.link.bandwidth: [100 GB/s, 200 GB/s]\n");
  experiment();
  Result sweep = wse_emu(
      "sweep '" + (dir_ / "s.yaml").string() + "' -q --out '" + (dir_ / "used").string() + "'", dir_ / "io");
  EXPECT_EQ(sweep.exit_code, 2);
  EXPECT_THAT(sweep.err, HasSubstr("it holds 'x.csv', which is not part of a sweep"));
  EXPECT_EQ(names_in(dir_ / "used"), std::set<std::string>{"x.csv"});
  Result forced = wse_emu("sweep '" + (dir_ / "s.yaml").string() + "' -q --jobs 2 --force --out '" +
                              (dir_ / "used").string() + "'",
                          dir_ / "io");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(fs::exists(dir_ / "used" / "results.csv"));

  Result regress = wse_emu("regress --only kv_link --out '" + (dir_ / "used").string() + "'", dir_ / "io");
  EXPECT_EQ(regress.exit_code, 2);
  EXPECT_THAT(regress.err, HasSubstr("already exists and is not empty"));
}

TEST_F(Outputs, AnOutPathUnderARegularFileIsAnErrorNamingItAndNothingIsLeft) {
  write("file", "x");
  const fs::path out = dir_ / "file" / "out";
  Result r = run(out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot create the output directory '" + out.string() + "'"));
  EXPECT_THAT(r.err, HasSubstr("Not a directory"));
  EXPECT_EQ(slurp(dir_ / "file"), "x");
}

// Runs wse-emu ARGS in a child whose file-size limit is `limit` bytes (setrlimit
// RLIMIT_FSIZE) with SIGXFSZ ignored, so that a write past the limit fails with EFBIG
// (as on a full disk) instead of killing the process. Returns the wait status.
int run_with_file_limit(const std::vector<std::string>& args, rlim_t limit, const fs::path& err_file) {
  std::vector<std::string> argv_s{std::string(WSE_BINARY_DIR) + "/bin/wse-emu"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (!std::freopen(err_file.c_str(), "w", stderr) || !std::freopen("/dev/null", "w", stdout))
      std::_Exit(126);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{limit, limit};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// A full disk: 1,000 requests give a requests.csv of tens of KB while the files written
// before it (config.resolved.yaml, before the simulation) are a few KB; a limit between
// the two stops requests.csv. The limit is set from the sizes of an unlimited run.
TEST_F(Outputs, AFullDiskIsAnErrorNamingTheFileAndLeavesNoPartialFile) {
  const fs::path exp = experiment(1000);
  const fs::path ref = dir_ / "ref";
  ASSERT_EQ(wse_emu("run '" + exp.string() + "' --quiet --out '" + ref.string() + "'", dir_ / "io").exit_code,
            0);
  const std::uintmax_t csv_bytes = fs::file_size(ref / "requests.csv");
  std::uintmax_t others = 0;
  for (const char* f : {"config.resolved.yaml", "stats.json"})
    others = std::max(others, fs::file_size(ref / f));
  ASSERT_LT(others, csv_bytes);
  const rlim_t limit = (others + csv_bytes) / 2;
  for (const bool existed : {false, true}) {
    const fs::path out = dir_ / (existed ? "empty" : "new");
    if (existed) fs::create_directories(out);
    const fs::path err_file = dir_ / "full.err";
    const int status =
        run_with_file_limit({"run", exp.string(), "--quiet", "--out", out.string()}, limit, err_file);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal: SIGXFSZ was not ignored";
    EXPECT_EQ(WEXITSTATUS(status), 1);
    const std::string err = slurp(err_file);
    EXPECT_THAT(err, HasSubstr("wse-emu: run failed: cannot write '" + (out / "requests.csv").string() +
                               "': File too large"));
    if (existed) {
      EXPECT_TRUE(names_in(out).empty()) << "files left: " << ::testing::PrintToString(names_in(out));
    } else {
      EXPECT_FALSE(fs::exists(out)) << "the folder the run made is removed";
    }
    fs::remove(err_file);
  }
}

// write_file_atomic itself, in a child process whose file-size limit is 4 KiB: a
// 64 KiB file fails with EFBIG, the error names the path, and neither the file nor its
// temporary is left; an earlier file of that name is kept as it was.
TEST_F(Outputs, WriteFileAtomicLeavesNothingBehindOnEfbig) {
  write("keep.txt", "earlier\n");
  const fs::path report = dir_ / "report.txt";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    std::string msg = "no error";
    try {
      sim::write_file_atomic(dir_ / "big.txt", std::string(64 * 1024, 'x'));
    } catch (const sim::OutputError& e) {
      msg = e.what();
    }
    std::string msg2 = "no error";
    try {
      sim::write_file_atomic(dir_ / "keep.txt", std::string(64 * 1024, 'y'));
    } catch (const sim::OutputError& e) {
      msg2 = e.what();
    }
    std::ofstream(report) << msg << "\n" << msg2 << "\n";
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  const std::string text = slurp(report);
  EXPECT_THAT(text, HasSubstr("cannot write '" + (dir_ / "big.txt").string() + "': File too large"));
  EXPECT_THAT(text, HasSubstr("cannot write '" + (dir_ / "keep.txt").string() + "': File too large"));
  EXPECT_EQ(names_in(dir_), (std::set<std::string>{"keep.txt", "report.txt"}));
  EXPECT_EQ(slurp(dir_ / "keep.txt"), "earlier\n");
}

// The trace writer streams: a failed write is remembered, finish() reports it with the
// path and removes the temporary file.
TEST_F(Outputs, TraceWriterReportsAFullDiskAtFinish) {
  const fs::path report = dir_ / "report.txt";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{64 * 1024, 64 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    std::string msg = "no error";
    try {
      trace::Writer w((dir_ / "trace.json").string());
      const trace::TrackId t = w.track("machine", "link");
      for (int i = 0; i < 100000; ++i) w.slice(t, "transfer", i * 1e-6, 0.5e-6);  // ~10 MB of events
      w.finish();
    } catch (const std::exception& e) {
      msg = e.what();
    }
    std::ofstream(report) << msg << "\n";
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_THAT(slurp(report),
              HasSubstr("cannot write trace file '" + (dir_ / "trace.json").string() + "': File too large"));
  EXPECT_EQ(names_in(dir_), std::set<std::string>{"report.txt"});
}

}  // namespace
}  // namespace wse::testing
