// `wse-emu sweep` through the real command: expansion of grid and zip into points,
// results.csv with hand-derived figures, validation of every point before any runs,
// resume, a failing point that does not stop the others, and bad sweep files.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sweep/csv.h"
#include "util/cli_harness.h"
#include "util/scratch_dir.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class Sweep : public ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    // The default experiment's files with `limit` requests: request 0 of the Azure
    // conversation trace has 374 input tokens; Llama-3.1-70B keeps 327,680 B of KV per
    // token (80 layers x 8 KV heads x 128 x 2 (K,V) x 2 B), so its cache is
    // 374 x 327,680 = 122,552,320 B.
    const std::string src = WSE_SOURCE_DIR;
    write("base.yaml",
          "experiment: {name: t, mode: kv_transfer}\n"
          "include:\n  - " +
              src +
              "/configs/models/llama-3.1-70b.yaml\n"
              "  - " +
              src +
              "/configs/workloads/azure_conv_1000.yaml\n"
              "workload: {trace: {limit: 1}}\n"
              "kv_transfer:\n  link:\n    bandwidth: 400 GB/s\n    latency: 15 us\n");
  }
  Result sweep(const std::string& file, const fs::path& out, const std::string& extra = "--jobs 2") {
    return wse_emu("sweep '" + (dir_ / file).string() + "' --out '" + out.string() + "' " + extra,
                   dir_ / "io");
  }
};

TEST_F(Sweep, GridTimesZipInFileOrderWithHandDerivedTimes) {
  write("s.yaml",
        "experiment: base.yaml\n"
        "grid:\n  kv_transfer.link.bandwidth: [400 GB/s, 6.4 Tb/s]\n"
        "zip:\n  kv_transfer.senders: [1, 3]\n  kv_transfer.link.initiators: [1, 3]\n");
  const fs::path out = dir_ / "out";
  Result r = sweep("s.yaml", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Csv csv = read_csv(out / "results.csv");
  ASSERT_GE(csv.header.size(), 8u);
  EXPECT_EQ(csv.header[0], "point");
  EXPECT_EQ(csv.header[1], "kv_transfer.link.bandwidth");
  EXPECT_EQ(csv.header[2], "kv_transfer.senders");
  EXPECT_EQ(csv.header[3], "kv_transfer.link.initiators");
  EXPECT_EQ(csv.header[4], "status");
  EXPECT_EQ(csv.header[5], "error");
  EXPECT_EQ(csv.header[6], "simulated_time_s");
  EXPECT_EQ(csv.header[7], "events");
  // The host's time is not in results.csv (the same for any --jobs) but in host.csv.
  EXPECT_EQ(std::count(csv.header.begin(), csv.header.end(), "wall_time_s"), 0);
  EXPECT_EQ(read_csv(out / "host.csv").header.at(4), "wall_time_s");
  // 2 bandwidths x 1 zip group of 2 = 4 points; the first dimension varies slowest.
  ASSERT_EQ(csv.rows.size(), 4u);
  const std::vector<std::vector<std::string>> varied{{"000", "400 GB/s", "1", "1"},
                                                     {"001", "400 GB/s", "3", "3"},
                                                     {"002", "6.4 Tb/s", "1", "1"},
                                                     {"003", "6.4 Tb/s", "3", "3"}};
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t c = 0; c < 4; ++c) EXPECT_EQ(csv.rows[i][c], varied[i][c]) << "row " << i;
    EXPECT_EQ(csv.at(i, "status"), "ok");
    EXPECT_EQ(csv.at(i, "error"), "");
    EXPECT_TRUE(fs::exists(out / "points" / varied[i][0] / "summary.json"));
    EXPECT_TRUE(fs::exists(out / "points" / varied[i][0] / "requests.csv"));
  }
  // One request alone on the link: time = bytes / bandwidth + latency.
  //   400 GB/s:            122,552,320 B / 400e9 B/s = 306.3808 us, + 15 us = 321.3808 us
  //   6.4 Tb/s = 800 GB/s: 122,552,320 B / 800e9 B/s = 153.1904 us, + 15 us = 168.1904 us
  // The number of senders does not matter for a single request.
  for (std::size_t i = 0; i < 4; ++i) {
    const double expect = i < 2 ? 321.3808e-6 : 168.1904e-6;
    EXPECT_NEAR(std::stod(csv.at(i, "kv_transfer.time_s.max")), expect, 1e-12) << "row " << i;
    EXPECT_NEAR(std::stod(csv.at(i, "kv_transfer.time_s.p50")), expect, 1e-12) << "row " << i;
    EXPECT_EQ(csv.at(i, "kv_transfer.bytes"), "122552320");
    EXPECT_EQ(csv.at(i, "requests.completed"), "1");
  }
}

TEST_F(Sweep, EveryPointIsValidatedBeforeAnyRuns) {
  // Point 001 (0 senders) and 002 (a bandwidth without a unit) are invalid; 000 is fine
  // but must not run either.
  write("s.yaml",
        "experiment: base.yaml\n"
        "zip:\n  kv_transfer.senders: [1, 0, 1]\n  kv_transfer.link.initiators: [1, 0, 1]\n"
        "  kv_transfer.link.bandwidth: [400 GB/s, 400 GB/s, 400]\n");
  const fs::path out = dir_ / "out";
  Result r = sweep("s.yaml", out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sweep point 001 (kv_transfer.senders=0"));
  EXPECT_THAT(r.err, HasSubstr("sweep point 002 ("));
  EXPECT_THAT(r.err, HasSubstr("needs a unit"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("sweep point 000")));
  EXPECT_THAT(r.err, HasSubstr("2 of 3 sweep points are invalid"));
  EXPECT_FALSE(fs::exists(out)) << "nothing runs, nothing is written";
}

TEST_F(Sweep, ResumeSkipsCompletePointsAndRerunsTheRest) {
  write("s.yaml",
        "experiment: base.yaml\ngrid:\n  kv_transfer.link.bandwidth: [100 GB/s, 200 GB/s, 400 GB/s]\n");
  const fs::path out = dir_ / "out";
  ASSERT_EQ(sweep("s.yaml", out).exit_code, 0);
  const Csv first = read_csv(out / "results.csv");
  // An interrupted sweep: point 001 never finished, results.csv was never written.
  fs::remove(out / "points" / "001" / "summary.json");
  fs::remove(out / "results.csv");
  const std::string kept = slurp(out / "points" / "000" / "summary.json");
  const auto kept_time = fs::last_write_time(out / "points" / "000" / "summary.json");
  Result r = sweep("s.yaml", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("3 points, 1 to run (2 already complete)"));
  EXPECT_EQ(fs::last_write_time(out / "points" / "000" / "summary.json"), kept_time) << "point 000 was rerun";
  EXPECT_EQ(slurp(out / "points" / "000" / "summary.json"), kept);
  const Csv second = read_csv(out / "results.csv");
  EXPECT_EQ(first, second);

  // The same folder with a different sweep is refused rather than mixed.
  write("s.yaml",
        "experiment: base.yaml\ngrid:\n  kv_transfer.link.bandwidth: [1 GB/s, 200 GB/s, 400 GB/s]\n");
  Result other = sweep("s.yaml", out);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_THAT(other.err, HasSubstr("holds the result of a different point"));
}

TEST_F(Sweep, AFailingPointIsRecordedAndTheOthersRun) {
  // Every point is valid; point 001 reads 1,000 requests and writes a requests.csv of
  // about 63 KB, which the 16 KiB file-size limit of the sweep's processes (ulimit -f)
  // does not allow, so that run is killed by SIGXFSZ. Points 000 and 002 write < 1 KB.
  write("s.yaml", "experiment: base.yaml\ngrid:\n  workload.trace.limit: [1, 1000, 2]\n");
  const fs::path out = dir_ / "out";
  Result r = shell("ulimit -c 0; ulimit -f 16; exec '" + wse_emu_path() + "' sweep '" +
                       (dir_ / "s.yaml").string() + "' --out '" + out.string() + "' --jobs 1",
                   dir_ / "io");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("some sweep points failed"));
  const Csv csv = read_csv(out / "results.csv");
  ASSERT_EQ(csv.rows.size(), 3u);
  EXPECT_EQ(csv.at(0, "status"), "ok");
  EXPECT_EQ(csv.at(1, "status"), "failed");
  EXPECT_THAT(csv.at(1, "error"), HasSubstr("killed by signal"));
  EXPECT_EQ(csv.at(1, "simulated_time_s"), "");
  EXPECT_EQ(csv.at(2, "status"), "ok");
  EXPECT_EQ(csv.at(2, "requests.completed"), "2");
}

TEST_F(Sweep, BadSweepFilesAreRefusedWithTheirLocation) {
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases{
      {"experiment: base.yaml\ngird:\n  a.b: [1]\n",
       "s.yaml:2:1: key 'gird': unknown key 'gird'; did you mean 'grid'?"},
      {"grid:\n  kv_transfer.senders: [1]\n",
       "s.yaml:1:1: key 'experiment': missing required key 'experiment'"},
      {"experiment: nowhere.yaml\ngrid:\n  kv_transfer.senders: [1]\n", "does not exist"},
      {"experiment: base.yaml\n", "nothing to vary"},
      {"experiment: base.yaml\ngrid:\n  kv_transfer.senders: 1\n",
       "s.yaml:3:24: key 'grid.kv_transfer.senders': expected a list (a grid key takes a non-empty list of "
       "values), found a scalar '1'"},
      {"experiment: base.yaml\nzip:\n  kv_transfer.senders: [1, 2]\n  kv_transfer.link.initiators: [1]\n",
       "zip lists differ in length"},
      {"experiment: base.yaml\ngrid:\n  kv_transfer.senders: [1]\nzip:\n  kv_transfer.senders: [1]\n",
       "given twice"},
      {"experiment: base.yaml\ngrid:\n  kv_transfer.link.bandwdth: [1 GB/s]\n", "did you mean 'bandwidth'"},
      {"experiment: base.yaml\ngrid: [1, 2\n", "s.yaml:"},
      // Read through the configuration language: file:line:column, the key path in the
      // sweep, what was found.
      {"experiment: base.yaml\ngrid:\n  kv_transfer.senders: [1]\nsett:\n  workload.trace.limit: 2\n",
       "s.yaml:4:1: key 'sett': unknown key 'sett'; did you mean 'set'?"},
      {"experiment: base.yaml\ngrid:\n  kv_transfer.senders: []\n",
       "s.yaml:3:3: key 'grid.kv_transfer.senders': a grid key needs a non-empty list of values, found []"},
      {"experiment: base.yaml\nzip:\n  - {kv_transfer.senders: [1, 2]}\n  - 3\n",
       "s.yaml:4:5: key 'zip[1]': expected a mapping, found a scalar"},
      {"experiment: base.yaml\nzip:\n  kv_transfer.senders: [1, 2]\n  kv_transfer.link.initiators: [1]\n",
       "s.yaml:4:3: key 'zip.kv_transfer.link.initiators': zip lists differ in length: 'kv_transfer.senders' "
       "has "
       "2 values, 'kv_transfer.link.initiators' has 1"},
      {"experiment: base.yaml\ngrid:\n  kv_transfer.senders: [1]\nzip:\n  kv_transfer.senders: [1]\n",
       "s.yaml:5:3: key 'zip.kv_transfer.senders': key 'kv_transfer.senders' is given twice in the sweep "
       "(also "
       "as 'grid.kv_transfer.senders')"},
      {"experiment: base.yaml\nname: [x]\ngrid:\n  kv_transfer.senders: [1]\n",
       "s.yaml:2:1: key 'name': expected a string, found a sequence"},
  };
  for (const auto& c : cases) {
    write("s.yaml", c.text);
    const fs::path out = dir_ / "out";
    Result r = sweep("s.yaml", out);
    EXPECT_EQ(r.exit_code, 2) << c.text;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.text;
    EXPECT_FALSE(fs::exists(out)) << c.text;
  }
  Result backend = sweep("s.yaml", dir_ / "out", "--backend lsf");
  EXPECT_EQ(backend.exit_code, 2);
  EXPECT_THAT(backend.err, HasSubstr("unknown backend 'lsf'"));
}

TEST_F(Sweep, ShippedExampleSweepsValidate) {
  for (const auto& e : fs::directory_iterator(fs::path(WSE_SOURCE_DIR) / "configs" / "sweeps")) {
    if (e.path().extension() != ".yaml") continue;
    // An invalid point or file is exit 2 before anything runs; --out in a folder that
    // cannot be created (under a regular file) turns a valid sweep into exit 1 at once.
    write("blocker", "");
    Result r =
        wse_emu("sweep '" + e.path().string() + "' --out '" + (dir_ / "blocker" / "x").string() + "' -q",
                dir_ / "io");
    EXPECT_EQ(r.exit_code, 1) << e.path() << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("sweep failed")) << e.path();
  }
}

// The plot scripts on real outputs: PNG files out, clear errors for bad arguments.
TEST_F(Sweep, PlotScriptsDrawPngs) {
  write("s.yaml",
        "experiment: base.yaml\ngrid:\n  kv_transfer.link.bandwidth: [100 GB/s, 1.6 Tb/s]\n"
        "  workload.trace.limit: [3, 5]\n");
  const fs::path out = dir_ / "out";
  ASSERT_EQ(sweep("s.yaml", out).exit_code, 0);
  const auto is_png = [](const fs::path& p) { return slurp(p).rfind("\x89PNG\r\n", 0) == 0; };
  Result plot = shell("/usr/bin/python3 scripts/plot_sweep.py '" + (out / "results.csv").string() +
                          "' --x kv_transfer.link.bandwidth --y kv_transfer.time_s.p99 kv_transfer.time_s.p50"
                          " --logx --out '" +
                          (dir_ / "sweep.png").string() + "'",
                      dir_ / "io");
  ASSERT_EQ(plot.exit_code, 0) << plot.err;
  EXPECT_TRUE(is_png(dir_ / "sweep.png"));
  Result bad = shell("/usr/bin/python3 scripts/plot_sweep.py '" + (out / "results.csv").string() +
                         "' --x kv_transfer.senders --y events --out '" + (dir_ / "bad.png").string() + "'",
                     dir_ / "io");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("'kv_transfer.senders' is not a varied parameter"));

  // Two sweeps overlaid, --logy on one panel only. Before: one results.csv only, --logy
  // on every panel, rates such as output_tokens_per_s labelled [s], the title the
  // folder's absolute path, colours repeating after ten lines.
  fs::create_directories(dir_ / "other");
  fs::copy_file(out / "results.csv", dir_ / "other" / "results.csv");
  Result overlay =
      shell("/usr/bin/python3 scripts/plot_sweep.py '" + (out / "results.csv").string() + "' '" +
                (dir_ / "other" / "results.csv").string() +
                "' --x kv_transfer.link.bandwidth --y kv_transfer.time_s.p99 kv_transfer.time_s.p50"
                " --logy kv_transfer.time_s.p99 --out '" +
                (dir_ / "overlay.png").string() + "'",
            dir_ / "io");
  ASSERT_EQ(overlay.exit_code, 0) << overlay.err;
  EXPECT_TRUE(is_png(dir_ / "overlay.png"));
  Result units = shell(
      "/usr/bin/python3 -c 'import sys; sys.path.insert(0, \"scripts\"); import plot_sweep as p, itertools; "
      "print(p.figure_scale(\"throughput.output_tokens_per_s\", [1e3])[1]); "
      "print(p.sweep_name(\"/a/b/mysweep/results.csv\")); "
      "print(len({str(s[\"color\"]) + s[\"marker\"] for s in itertools.islice(p.line_styles(), 40)}))'",
      dir_ / "io");
  ASSERT_EQ(units.exit_code, 0) << units.err;
  EXPECT_EQ(units.out, "tokens/s\nmysweep\n40\n");

  // An experiment's outputs with a trace: latency CDF, utilization bars and over time.
  const fs::path run = dir_ / "run";
  ASSERT_EQ(wse_emu("run '" + (dir_ / "base.yaml").string() + "' --out '" + run.string() +
                        "' --trace -q --set workload.trace.limit=20",
                    dir_ / "io")
                .exit_code,
            0);
  Result r = shell(
      "/usr/bin/python3 scripts/plot_run.py '" + run.string() + "' --out '" + (dir_ / "p").string() + "'",
      dir_ / "io");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* f : {"p_latency_cdf.png", "p_utilization.png", "p_utilization_time.png"}) {
    EXPECT_TRUE(is_png(dir_ / f)) << f;
  }
  // A serving run's requests.csv: TTFT and TPOT columns take precedence.
  fs::create_directories(dir_ / "serving");
  write("serving/summary.json",
        "{\"experiment\": \"s\", \"mode\": \"serving\", \"simulated_time_s\": 1,"
        " \"utilization\": {\"a\": 0.5}}\n");
  write("serving/requests.csv", "request,ttft_s,tpot_s,e2e_s\n0,0.1,0.01,1.0\n1,0.2,0.02,2.0\n");
  Result s2 =
      shell("/usr/bin/python3 scripts/plot_run.py '" + (dir_ / "serving").string() + "'", dir_ / "io");
  ASSERT_EQ(s2.exit_code, 0) << s2.err;
  EXPECT_TRUE(is_png(dir_ / "serving" / "plot_latency_cdf.png"));
  EXPECT_FALSE(fs::exists(dir_ / "serving" / "plot_utilization_time.png")) << "no trace.json, no plot";
}

}  // namespace
}  // namespace wse::testing
