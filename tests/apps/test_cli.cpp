// The command line: help, version, and every kind of bad input named in the
// foundation's checklist, each giving one clear message, exit status 2 and no output
// directory.
#include <filesystem>
#include <fstream>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/cli_harness.h"
#include "util/scratch_dir.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class Cli : public ScratchDirTest {
 protected:
  // A valid small experiment (the default's files, 5 requests), with `extra` appended.
  fs::path experiment(const std::string& name, const std::string& extra,
                      const std::string& rate = "    bandwidth: 400 GB/s\n") {
    const std::string src = WSE_SOURCE_DIR;
    return write(name,
                 "experiment: {name: t, mode: kv_transfer}\n"
                 "include:\n  - " +
                     src +
                     "/configs/models/llama-3.1-70b.yaml\n"
                     "  - " +
                     src +
                     "/configs/workloads/azure_conv_1000.yaml\n"
                     "workload: {trace: {limit: 5}}\n"
                     "kv_transfer:\n  link:\n" +
                     rate + "    latency: 15 us\n" + extra);
  }
  // Runs `wse-emu run FILE --out DIR` and checks the bad-input contract.
  Result run_bad(const fs::path& file, const std::string& extra_args = "") {
    const fs::path out = dir_ / "out";
    Result r = wse_emu("run '" + file.string() + "' --out '" + out.string() + "' " + extra_args, dir_ / "io");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "bad input must not create the output directory";
    EXPECT_THAT(r.err, HasSubstr("wse-emu: error: "));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one message: " << r.err;
    return r;
  }
};

TEST_F(Cli, HelpVersionAndUnknownCommands) {
  Result help = wse_emu("--help", dir_);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("usage: wse-emu <command>"));
  Result run_help = wse_emu("help run", dir_);
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_THAT(run_help.out, HasSubstr("--set"));
  Result version = wse_emu("version", dir_);
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, HasSubstr("SystemC 2.3.4"));
  Result unknown = wse_emu("rnu x.yaml", dir_);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command 'rnu'; did you mean 'run'?"));
  Result option = wse_emu("run x.yaml --out d --frobnicate", dir_);
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_THAT(option.err, HasSubstr("frobnicate"));
  Result bench = wse_emu("bench nonexistent --out " + (dir_ / "b").string(), dir_);
  EXPECT_EQ(bench.exit_code, 2);
  EXPECT_THAT(bench.err, HasSubstr("unknown benchmark 'nonexistent'"));
  EXPECT_EQ(wse_emu("", dir_).exit_code, 2);
}

TEST_F(Cli, YamlSyntaxError) {
  Result r = run_bad(write("e.yaml", "experiment: {name: t, mode: kv_transfer\n"));
  EXPECT_THAT(r.err, HasSubstr("e.yaml:"));
  EXPECT_THAT(r.err, HasSubstr("syntax error"));
}

TEST_F(Cli, UnknownKeyOneLetterOff) {
  Result r = run_bad(experiment("e.yaml", "    arbitraton: fifo\n"));
  EXPECT_THAT(r.err, HasSubstr("e.yaml:10:5: key 'kv_transfer.link.arbitraton'"));
  EXPECT_THAT(r.err, HasSubstr("did you mean 'arbitration'?"));
}

TEST_F(Cli, BandwidthWithoutUnit) {
  Result r = run_bad(experiment("e.yaml", ""), "--set kv_transfer.link.bandwidth=100");
  EXPECT_THAT(r.err, HasSubstr("key 'kv_transfer.link.bandwidth'"));
  EXPECT_THAT(r.err, HasSubstr("needs a unit"));
}

TEST_F(Cli, NegativeBandwidth) {
  Result r = run_bad(experiment("e.yaml", ""), "--set 'kv_transfer.link.bandwidth=-3 GB/s'");
  EXPECT_THAT(r.err, HasSubstr("cannot be negative"));
}

TEST_F(Cli, SizeInFurlongs) {
  Result r = run_bad(experiment("e.yaml", "", "    width: 12 furlongs\n    clock: 1 GHz\n"));
  EXPECT_THAT(r.err, HasSubstr("key 'kv_transfer.link.width'"));
  EXPECT_THAT(r.err, HasSubstr("unknown size unit 'furlongs'"));
}

TEST_F(Cli, IncludeCycle) {
  write("a.yaml", "include: b.yaml\n");
  write("b.yaml", "include: a.yaml\n");
  Result r = run_bad(dir_ / "a.yaml");
  EXPECT_THAT(r.err, HasSubstr("include cycle"));
}

TEST_F(Cli, MissingFile) {
  Result r = run_bad(dir_ / "nowhere.yaml");
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
}

TEST_F(Cli, EmptyFile) {
  Result r = run_bad(write("e.yaml", ""));
  EXPECT_THAT(r.err, HasSubstr("file is empty"));
}

TEST_F(Cli, HundredMegabytesOfGarbage) {
  const fs::path p = dir_ / "garbage.yaml";
  {
    std::ofstream out(p, std::ios::binary);
    std::mt19937_64 rng(42);
    std::vector<std::uint64_t> block(1 << 16);
    for (int i = 0; i < 100 * 1000 * 1000 / static_cast<int>(block.size() * 8) + 1; ++i) {
      for (auto& w : block) w = rng();
      out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
  }
  Result r = run_bad(p);
  EXPECT_THAT(r.err, HasSubstr("too large for a configuration file"));
}

TEST_F(Cli, SetOfAKeyThatDoesNotExist) {
  Result r = run_bad(experiment("e.yaml", ""), "--set kv_transfer.link.bandwith=1GB/s");
  EXPECT_THAT(r.err, HasSubstr("--set 'kv_transfer.link.bandwith=1GB/s'"));
  EXPECT_THAT(r.err, HasSubstr("did you mean 'bandwidth'?"));
}

TEST_F(Cli, MalformedTraceLineNamesFileAndLine) {
  write("t.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,100,5\n"
        "2023-11-16 18:17:04.1,abc,5\n");
  Result r = run_bad(experiment("e.yaml", ""), "--set workload.trace.path=" + (dir_ / "t.csv").string());
  EXPECT_THAT(r.err, HasSubstr("t.csv:3:1"));
  EXPECT_THAT(r.err, HasSubstr("ContextTokens 'abc' is not a positive integer"));
}

TEST_F(Cli, TrainiumGroupLargerThanTheInstanceIsBadInputAtItsKey) {
  // TP 64 x LNC 2 = 128 cores, 16 chips, on a switch of 8 Trainium3 chips (64 cores).
  const std::string src = WSE_SOURCE_DIR;
  Result r = run_bad(fs::path(src) / "configs/experiments/trn3_cs3.yaml", "--set instance.chips=8");
  EXPECT_THAT(r.err, HasSubstr("prefill.tp_degree"));
  EXPECT_THAT(r.err, HasSubstr("trn3_instance.yaml:"));
  EXPECT_THAT(r.err, HasSubstr("128 physical cores, but the instance has 64"));
  EXPECT_THAT(r.err, HasSubstr("lower prefill.tp_degree or prefill.lnc"));
}

TEST_F(Cli, CheckPrintsTheResolvedConfiguration) {
  Result r = wse_emu("check '" + experiment("e.yaml", "").string() + "'", dir_ / "io");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("arbitration: fifo"));  // a default written out
  EXPECT_THAT(r.out, HasSubstr("num_hidden_layers: 80"));
  EXPECT_FALSE(r.out.find("include") != std::string::npos && r.out.find("include:") != std::string::npos);
}

// The EFA machine counts of a serving experiment are declared once, in the pools:
// with no efa.receivers the default system over 3 decode systems of decode.wafers = 4
// CS-3s (configs/experiments/default.yaml) gets 3 x 4 = 12 receivers, and the 2
// prefill instances 2 senders; the resolved configuration shows both. A typed count
// that agrees is accepted; one that disagrees (8) is bad input at efa.receivers that
// names the pool keys with where each was written (this file, line 3, and
// default.yaml), and the derived count.
TEST_F(Cli, EfaCountsAreDerivedFromThePoolsAndATypedCountMustAgree) {
  const std::string src = WSE_SOURCE_DIR;
  const std::string pools = "include: " + src +
                            "/configs/experiments/default.yaml\n"
                            "serving:\n"
                            "  decode_systems: 3\n"
                            "  prefill_instances: 2\n";
  const Result derived = wse_emu("check '" + write("derived.yaml", pools).string() + "'", dir_ / "io");
  EXPECT_EQ(derived.exit_code, 0) << derived.err;
  EXPECT_THAT(derived.out, HasSubstr("\n  senders: 2  # sender machines"));
  EXPECT_THAT(derived.out, HasSubstr("\n  receivers: 12  # receiver machines"));

  const Result agrees =
      wse_emu("check '" + write("agrees.yaml", pools + "efa: {receivers: 12, senders: 2}\n").string() + "'",
              dir_ / "io");
  EXPECT_EQ(agrees.exit_code, 0) << agrees.err;

  const fs::path bad = write("bad.yaml", pools + "efa:\n  receivers: 8\n");
  const Result r = run_bad(bad, "--quiet");
  EXPECT_THAT(
      r.err,
      HasSubstr(bad.string() + ":6:14: key 'efa.receivers': is 8 but serving.decode_systems (" +
                bad.string() + ":3:19) x decode.wafers (" + src + "/configs/experiments/default.yaml:"));
  EXPECT_THAT(r.err,
              HasSubstr(") gives 12 receivers (every CS-3 has its own EFA attachment); leave efa.receivers "
                        "out (it is derived from them)"));
  // A count left at its default is named as such: one prefill instance gives 1 sender.
  const Result senders = run_bad(write("senders.yaml", "include: " + src +
                                                           "/configs/experiments/default.yaml\n"
                                                           "serving: {prefill_instances: ~}\n"
                                                           "efa: {senders: 2}\n"),
                                 "--quiet");
  EXPECT_THAT(senders.err,
              HasSubstr("key 'efa.senders': is 2 but serving.prefill_instances (default) gives 1 sender; "
                        "leave efa.senders out"));
}

}  // namespace
}  // namespace wse::testing
