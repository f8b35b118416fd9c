// Hostile input that used to give silent wrong numbers or hang (issue 17): each case is
// the reproduction, run through the wse-emu program, with the exit status and the
// message it must now give. docs/trust.md lists them.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/cli_harness.h"
#include "util/scratch_dir.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSrc = WSE_SOURCE_DIR;

class Trust : public ScratchDirTest {
 protected:
  // `wse-emu run ARGS --out DIR`: bad input is exit 2, one message, no output folder.
  Result run_bad(const std::string& args) {
    const fs::path out = dir_ / "out";
    Result r = wse_emu("run " + args + " --out '" + out.string() + "'", dir_ / "io");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "bad input must not create the output directory";
    EXPECT_THAT(r.err, HasSubstr("wse-emu: error: "));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one message: " << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("9223372.04"))) << r.out;
    return r;
  }
  // A run that must fail (exit 1) and leave nothing behind.
  Result run_failed(const std::string& args) {
    const fs::path out = dir_ / "out";
    Result r = wse_emu("run " + args + " --out '" + out.string() + "'", dir_ / "io");
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_FALSE(fs::exists(out)) << "a failed run removes its folder";
    EXPECT_THAT(r.err, HasSubstr("wse-emu: run failed: "));
    return r;
  }
  // Starts `wse-emu ARGS` from the checkout in a child process, its stderr into `err`;
  // returns the child's pid.
  pid_t start_wse_emu(const std::vector<std::string>& args, const fs::path& err) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
      ::chdir(WSE_SOURCE_DIR);
      const std::string bin = std::string(WSE_BINARY_DIR) + "/bin/wse-emu";
      std::vector<char*> argv = {const_cast<char*>(bin.c_str())};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    return pid;
  }
  // The pid of a process that has exited (a stale claim marker's).
  static pid_t exited_pid() {
    const pid_t gone = ::fork();
    if (gone == 0) ::_exit(0);
    ::waitpid(gone, nullptr, 0);
    return gone;
  }
  // A synthetic kv_transfer experiment (a 70B model over one link) with `trace` under
  // workload.trace and `extra` appended.
  fs::path synthetic(const std::string& trace, const std::string& extra = "") {
    return write("s.yaml",
                 "experiment: {name: s, mode: kv_transfer}\n"
                 "include: " +
                     kSrc +
                     "/configs/models/llama-3.1-70b.yaml\n"
                     "workload:\n  trace:\n    format: synthetic\n" +
                     trace + "kv_transfer:\n  link: {bandwidth: 400 GB/s, latency: 15 us}\n" + extra);
  }
};

const std::string kKvLink = "configs/experiments/kv_link.yaml --set workload.trace.limit=3";

// --- Item 1: times past 2^63 ps used to saturate at 9,223,372.04 s with exit 0. ---

// `--set 'kv_transfer.link.bandwidth=1 b/s'`: a 122 MB transfer reported 9223372.04 s.
TEST_F(Trust, LinkTooSlowForATransferIsRefusedAtLoad) {
  Result r = run_bad(kKvLink + " --set 'kv_transfer.link.bandwidth=1 b/s'");
  EXPECT_THAT(r.err, HasSubstr("--set 'kv_transfer.link.bandwidth=1 b/s': key 'kv_transfer.link.bandwidth'"));
  EXPECT_THAT(r.err, HasSubstr("longer than a run can simulate, 9223372.036854775 s (2^63 ps"));
  EXPECT_THAT(r.err, HasSubstr("raise the bandwidth"));
}

// Each transfer fits, but three queued one after another end beyond 2^63 ps: found only
// while running, so the run fails (exit 1) naming what overflowed.
TEST_F(Trust, QueueOfTransfersPastTheLimitFailsTheRun) {
  Result r = run_failed(kKvLink + " --set 'kv_transfer.link.bandwidth=300 b/s'");
  EXPECT_THAT(r.err, HasSubstr("simulated time overflow"));
  EXPECT_THAT(r.err, HasSubstr("beyond the longest time a run can simulate"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("9223372.04")));
}

TEST_F(Trust, RateScaleStretchingTheTracePastTheLimitIsRefused) {
  Result r = run_bad(kKvLink + " --set workload.trace.rate_scale=1e-9");
  EXPECT_THAT(r.err, HasSubstr("azure2023_conv.csv:3:1: "));  // the first request too late
  EXPECT_THAT(r.err, HasSubstr("(after workload.trace.rate_scale 1e-09)"));
  EXPECT_THAT(r.err, HasSubstr("later than a run can simulate"));
}

TEST_F(Trust, AzureTraceSpanningAYearIsRefused) {
  write("year.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2024-01-01 00:00:00.0000000,100,10\n"    // 45 days: fits
        "2024-11-16 18:15:46.6805900,100,10\n");  // a year: does not
  Result r = run_bad(kKvLink + " --set workload.trace.path=" + (dir_ / "year.csv").string());
  EXPECT_THAT(
      r.err,
      HasSubstr("year.csv:4:1: malformed trace line: request 2 arrives 3.16224e+07 s after the first"));
}

TEST_F(Trust, MooncakeTimestampOf1e300IsRefused) {
  write("m.jsonl",
        "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 10, \"hash_ids\": [1]}\n"
        "{\"timestamp\": 1e300, \"input_length\": 100, \"output_length\": 10, \"hash_ids\": [2]}\n");
  Result r =
      run_bad("configs/experiments/mooncake.yaml --set workload.trace.path=" + (dir_ / "m.jsonl").string());
  EXPECT_THAT(r.err,
              HasSubstr("m.jsonl:2:1: malformed trace line: request 1 arrives 1e+297 s after the first"));
}

TEST_F(Trust, SyntheticRateTooLowIsRefused) {
  const fs::path f = synthetic(
      "    requests: 3\n"
      "    arrival: {rate: 1e-9}\n"
      "    input_tokens: {distribution: fixed, value: 100}\n"
      "    output_tokens: {distribution: fixed, value: 10}\n");
  Result r = run_bad("'" + f.string() + "'");
  EXPECT_THAT(r.err,
              HasSubstr("s.yaml:7:21: key 'workload.trace.arrival.rate': 3 requests at 1e-09 per second"));
  EXPECT_THAT(r.err, HasSubstr("longer than a run can simulate"));
  EXPECT_THAT(r.err, HasSubstr("raise the rate"));
}

TEST_F(Trust, LinkLatencyOf1e9SecondsIsRefused) {
  Result r = run_bad(kKvLink + " --set 'kv_transfer.link.latency=1e9 s'");
  EXPECT_THAT(r.err, HasSubstr("key 'kv_transfer.link.latency': time is longer than a run can simulate, "
                               "9223372.036854775 s (2^63 ps, about 106.75 days): found '1e9 s'"));
}

TEST_F(Trust, FaultWindowPastTheLimitIsRefused) {
  const fs::path f = write("f.yaml", "include: " + kSrc +
                                         "/configs/experiments/default.yaml\n"
                                         "faults:\n"
                                         "  - kind: efa_path_down\n"
                                         "    start: 0 s\n"
                                         "    end: 1e9 s\n");
  Result r = run_bad("'" + f.string() + "'");
  EXPECT_THAT(r.err, HasSubstr("f.yaml:5:10: key 'faults[0].end': time is longer than a run can simulate"));
  const fs::path g = write("g.yaml", "include: " + kSrc +
                                         "/configs/experiments/default.yaml\n"
                                         "faults:\n"
                                         "  - kind: efa_path_down\n"
                                         "    start: 9000000 s\n"
                                         "    duration: 9000000 s\n");
  Result s = run_bad("'" + g.string() + "'");
  EXPECT_THAT(s.err,
              HasSubstr("key 'faults[0].duration': the fault would end at 1.8e+07 s (start + duration)"));
}

TEST_F(Trust, RejectAfterOf1e9SecondsIsRefused) {
  Result r = run_bad("configs/experiments/default.yaml --set 'serving.reject_after=1e9 s'");
  EXPECT_THAT(r.err, HasSubstr("key 'serving.reject_after': time is longer than a run can simulate"));
}

// --- Item 2: the KV fit check added prompt and output tokens in 32 bits. ---

// An output of 4,294,967,295 tokens wrapped to 99 tokens of context: the check passed
// and the run went on for about 4.29e9 decode steps.
TEST_F(Trust, OutputOf2To32Minus1TokensIsRefusedNotWrapped) {
  write("m.jsonl", "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 4294967295}\n");
  // The context window (PromptLongerThanTheContextWindowIsRefusedAtItsLine) would refuse
  // it first; without one, the KV capacity check must.
  Result r = run_bad(
      "configs/experiments/mooncake.yaml --set model.max_position_embeddings=0 --set workload.trace.path=" +
      (dir_ / "m.jsonl").string());
  EXPECT_THAT(r.err,
              HasSubstr("key 'workload.trace.path': request 0 (4294967395 tokens of context) needs more KV "
                        "cache"));
  EXPECT_THAT(r.err, HasSubstr("raise decode.wafers or drop the request"));
}

// A prompt of 4,294,967,295 tokens failed at run time with SystemC text.
TEST_F(Trust, PromptOf2To32Minus1TokensIsRefused) {
  write("m.jsonl", "{\"timestamp\": 0, \"input_length\": 4294967295, \"output_length\": 10}\n");
  Result r = run_bad(
      "configs/experiments/mooncake.yaml --set model.max_position_embeddings=0 --set workload.trace.path=" +
      (dir_ / "m.jsonl").string());
  EXPECT_THAT(r.err, HasSubstr("request 0 (4294967305 tokens of context) needs more KV cache"));
  // With the model's window: refused at the trace line, the count unwrapped too.
  Result w =
      run_bad("configs/experiments/mooncake.yaml --set workload.trace.path=" + (dir_ / "m.jsonl").string());
  EXPECT_THAT(w.err, HasSubstr("m.jsonl:1:1: request 0 needs 4294967305 tokens of context"));
}

// --- Item 10: invalid UTF-8 in a string value. ---

// The whole simulation ran, then exit 1 with nlohmann's raw type_error.316 when the
// name reached summary.json. Now refused at load, naming the key.
TEST_F(Trust, InvalidUtf8InAStringValueIsRefusedAtLoad) {
  const fs::path f = write("u.yaml", "include: " + kSrc +
                                         "/configs/experiments/kv_link.yaml\n"
                                         "experiment: {name: \"caf\xe9\"}\n"
                                         "workload: {trace: {limit: 3}}\n");
  Result r = run_bad("'" + f.string() + "'");
  EXPECT_THAT(r.err,
              HasSubstr("u.yaml:2:20: key 'experiment.name': is not valid UTF-8 (byte 0xE9 at offset 3 of "
                        "the value)"));
  EXPECT_THAT(r.err, Not(HasSubstr("type_error")));
}

// Item 15: a trace file name with a non-UTF-8 byte was written into
// config.resolved.yaml as U+FFFD, so the resolved file did not rerun.
TEST_F(Trust, TraceFileNameThatIsNotUtf8IsRefused) {
  const std::string name = "tr\xe9.csv";
  fs::copy_file(kSrc + "/workloads/data/traces/azure2023_conv.csv", dir_ / name);
  const fs::path f = write("n.yaml", "include: " + kSrc +
                                         "/configs/experiments/kv_link.yaml\n"
                                         "workload: {trace: {limit: 3, path: \"" +
                                         name + "\"}}\n");
  Result r = run_bad("'" + f.string() + "'");
  EXPECT_THAT(r.err, HasSubstr("key 'workload.trace.path': is not valid UTF-8 (byte 0xE9 at offset 2"));
}

// --- Item 14: an error caused by a --set is located at the --set. ---

// It was reported at `default.yaml:28:11: key 'decode.wafers'`, a key nobody changed.
TEST_F(Trust, SramTooSmallForTheReservationPointsAtTheSet) {
  Result r = run_bad("configs/experiments/default.yaml --set 'wafer.pe.sram=0.5 KiB'");
  EXPECT_THAT(r.err,
              HasSubstr("wse-emu: error: --set 'wafer.pe.sram=0.5 KiB': key 'wafer.pe.sram': "
                        "decode.reserved_sram (2.00 KiB) must be smaller than a PE's SRAM, wafer.pe.sram "
                        "(512.00 B); raise wafer.pe.sram or lower decode.reserved_sram"));
  EXPECT_THAT(r.err, Not(HasSubstr("decode.wafers")));
  // Given in a file, the same mistake is at decode.reserved_sram, where it was written.
  const fs::path f = write("r.yaml", "include: " + kSrc +
                                         "/configs/experiments/default.yaml\n"
                                         "decode: {reserved_sram: 48 KiB}\n");
  Result s = run_bad("'" + f.string() + "'");
  EXPECT_THAT(s.err,
              HasSubstr("r.yaml:2:25: key 'decode.reserved_sram': decode.reserved_sram (48.00 KiB) must be "
                        "smaller than a PE's SRAM, wafer.pe.sram (48.00 KiB)"));
}

// --- Item 15: the smaller cases. ---

// YAML nested beyond yaml-cpp's depth limit said "syntax error: bad file".
TEST_F(Trust, YamlNestedTooDeepSaysSo) {
  std::string deep = "a: ";
  for (int i = 0; i < 600; ++i) deep += "[";
  for (int i = 0; i < 600; ++i) deep += "]";
  const fs::path f = write("deep.yaml", deep + "\n");
  Result r = run_bad("'" + f.string() + "'");
  EXPECT_THAT(r.err, HasSubstr("deep.yaml:1:"));
  EXPECT_THAT(r.err, HasSubstr("values nested more than"));
  EXPECT_THAT(r.err, Not(HasSubstr("bad file")));
}

// A null key was described as "a sequence".
TEST_F(Trust, NullKeyIsCalledANullKey) {
  const fs::path f = write("null.yaml", "experiment: {name: x}\n: 3\n");
  Result r = run_bad("'" + f.string() + "'");
  EXPECT_THAT(r.err, HasSubstr("a key must be a plain name, found an empty (null) key"));
}

// Entries of mlp_only_layers were not range-checked: layer 99 of a 48-layer model was
// accepted and meant nothing.
TEST_F(Trust, MlpOnlyLayersMustBeLayersOfTheModel) {
  Result r = run_bad("configs/experiments/moe_qwen3_30b.yaml --set 'model.mlp_only_layers=[3, 99]'");
  EXPECT_THAT(r.err, HasSubstr("key 'model.mlp_only_layers': value '99' is out of range"));
}

// 2023-02-31 was accepted (as 2023-03-03), then the next line was reported as
// "timestamp goes backwards".
TEST_F(Trust, DateThatDoesNotExistIsMalformed) {
  write("feb.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-02-29 00:00:00.0000000,374,44\n"  // a leap day: fine
        "2023-02-31 00:00:00.0000000,100,10\n"
        "2023-03-01 00:00:00.0000000,100,10\n");
  Result r = run_bad(kKvLink + " --set workload.trace.path=" + (dir_ / "feb.csv").string());
  EXPECT_THAT(r.err,
              HasSubstr("feb.csv:3:1: malformed trace line: TIMESTAMP '2023-02-31 00:00:00.0000000' is not"));
}

// `--out ''` read the whole configuration, then exited 1.
TEST_F(Trust, EmptyOutIsBadInput) {
  Result r = wse_emu("run configs/experiments/kv_link.yaml --out ''", dir_ / "io");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("wse-emu: error: run: --out needs a folder name, found ''"));
  EXPECT_THAT(r.err, Not(HasSubstr("note:")));  // nothing was read
}

// --- Item 13: regress with a corrupt, empty or wrongly typed reference file. ---

// Each gave exit 1 with a raw parser message naming no file, after running the
// experiment. Now exit 2 naming the file (and the figure), before anything runs.
TEST_F(Trust, RegressRefusesABadReferenceNamingFileAndFigure) {
  const fs::path suite = write("suite.yaml",
                               "references: refs\n"
                               "experiments:\n"
                               "  - name: kv_link\n"
                               "    experiment: " +
                                   kSrc +
                                   "/configs/experiments/kv_link.yaml\n"
                                   "    set: {workload.trace.limit: 3}\n");
  const auto regress = [&](const std::string& reference) {
    write("refs/kv_link.json", reference);
    Result r = wse_emu("regress --suite '" + suite.string() + "'", dir_ / "io");
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("== kv_link"))) << "nothing runs";
    EXPECT_THAT(r.err,
                HasSubstr("wse-emu: error: reference " + (dir_ / "refs/kv_link.json").string() + ": "));
    EXPECT_THAT(r.err, HasSubstr("delete it and run 'wse-emu regress --update'"));
    return r.err;
  };
  EXPECT_THAT(regress("{\"figures\": {\"events\": "), HasSubstr(": not valid JSON ("));
  EXPECT_THAT(regress(""), HasSubstr(": the file is empty"));
  EXPECT_THAT(regress("[1, 2]"), HasSubstr(": expected a JSON object with \"figures\", found array"));
  EXPECT_THAT(regress(R"({"figures": {"events": {"value": "4993"}}})"),
              HasSubstr(": figure 'events': \"value\" must be a number, found \"4993\""));
  EXPECT_THAT(regress(R"({"figures": {"events": {"value": 4993, "tolerance": {"relative": -1}}}})"),
              HasSubstr(": figure 'events': tolerance \"relative\" must be a number, 0 or more, found -1"));
}

// --- Item 22: wall-time cliffs. ---

// decode.prefill_chunk_tokens above 1 on wafer_only times every prompt token afresh
// (the whole 1,000-request trace: about a million token passes, against 1,260 at the
// default 1, tens of minutes more of CPU), and nothing said so. `check` and `run` now
// warn on stderr, one line naming where the value was set, the key, the value, both
// estimates and what to do; the default, and a trace short enough for the difference not
// to matter, get no warning.
TEST_F(Trust, CostlyPrefillChunkIsWarnedAboutByCheckAndRun) {
  const std::string wafer = "configs/experiments/wafer_only.yaml";
  const auto warnings = [](const std::string& err) {
    std::vector<std::string> w;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);)
      if (l.find("warning") != std::string::npos) w.push_back(l);
    return w;
  };
  Result costly = wse_emu("check " + wafer + " --set decode.prefill_chunk_tokens=4", dir_ / "io");
  EXPECT_EQ(costly.exit_code, 0) << costly.err;
  ASSERT_EQ(warnings(costly.err).size(), 1u) << costly.err;
  EXPECT_THAT(
      warnings(costly.err)[0],
      HasSubstr(
          "wse-emu: warning: --set 'decode.prefill_chunk_tokens=4': key 'decode.prefill_chunk_tokens' = "
          "4: the prompts' prefill is estimated at 1014189 token passes to simulate, against 1260 at "
          "the default 1 (804x; "));
  EXPECT_THAT(warnings(costly.err)[0],
              HasSubstr("min more of CPU; keep the default 1 unless chunked prefill is what "
                        "is studied, or run fewer requests (workload.trace.limit)"));
  EXPECT_THAT(costly.out, HasSubstr("prefill_chunk_tokens: 4"));  // the resolved file is still printed

  Result def = wse_emu("check " + wafer, dir_ / "io");
  EXPECT_EQ(def.exit_code, 0) << def.err;
  EXPECT_THAT(warnings(def.err), ::testing::IsEmpty()) << def.err;
  Result small = wse_emu(
      "check " + wafer + " --set decode.prefill_chunk_tokens=4 --set workload.trace.limit=3", dir_ / "io");
  EXPECT_THAT(warnings(small.err), ::testing::IsEmpty()) << small.err;

  // Set in a file: the warning names its line.
  const fs::path file = write("chunked.yaml", "include: " + kSrc + "/" + wafer +
                                                  "\n"
                                                  "decode:\n"
                                                  "  prefill_chunk_tokens: 2\n");
  Result in_file = wse_emu("check '" + file.string() + "'", dir_ / "io");
  ASSERT_EQ(warnings(in_file.err).size(), 1u) << in_file.err;
  EXPECT_THAT(warnings(in_file.err)[0],
              HasSubstr("chunked.yaml:3:25: key 'decode.prefill_chunk_tokens' = 2: "));

  // `run` warns before it simulates (here it then fails at once: its --out is under a
  // regular file).
  write("plain", "x");
  Result run = wse_emu("run " + wafer + " --set decode.prefill_chunk_tokens=4 --quiet --out '" +
                           (dir_ / "plain" / "out").string() + "'",
                       dir_ / "io");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  ASSERT_EQ(warnings(run.err).size(), 1u) << run.err;
  EXPECT_THAT(warnings(run.err)[0], HasSubstr("key 'decode.prefill_chunk_tokens' = 4: "));
}

// --- Fuzzing at depth: the sweep file and the regression suite (fuzz_sweep, fuzz_regress). ---

// A key that is a YAML list gave yaml-cpp's "bad conversion", naming neither the key nor
// what to write; 64 grid keys of two values each made 2^64 points, which wrapped around
// to 0 under the 100,000-point limit: a sweep of nothing, exit 0.
TEST_F(Trust, SweepFileKeysMustBeTextAndThePointCountCannotWrap) {
  const std::string head = "experiment: " + kSrc + "/configs/experiments/kv_link.yaml\ngrid:\n";
  const fs::path list_key = write("list_key.yaml", head + "  [a, b]: [1]\n");
  Result r = wse_emu("sweep '" + list_key.string() + "' --out '" + (dir_ / "sw").string() + "'", dir_ / "io");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // The sweep is read through the configuration language: its loader's message.
  EXPECT_THAT(r.err, HasSubstr("list_key.yaml:3:3: a key must be a plain name, found a sequence"));
  std::string many = head;
  for (int i = 0; i < 64; ++i) many += "  k" + std::to_string(i) + ": [1, 2]\n";
  const fs::path wrap = write("wrap.yaml", many);
  Result w = wse_emu("sweep '" + wrap.string() + "' --out '" + (dir_ / "sw").string() + "'", dir_ / "io");
  EXPECT_EQ(w.exit_code, 2) << w.out << w.err;
  // Located at the key whose list takes the count past the limit: 2^17 > 100,000 at the
  // 17th key, k16 on line 19.
  EXPECT_THAT(w.err, HasSubstr("wrap.yaml:19:3: key 'grid.k16': with this dimension the sweep has more than "
                               "100000 points (the product of the lists' lengths)"));
  EXPECT_FALSE(fs::exists(dir_ / "sw"));
}

// An infinite tolerance (`.inf`) passed every figure whatever it was; a tolerance that
// was not a number gave yaml-cpp's "bad conversion" naming no file; an experiment named
// with a path (`../x`) would have written its reference outside the references folder.
// The suite is read through the configuration language, as experiment files are: each
// error names file:line:column and the key path (columns counted by hand below: in
// "tolerance: {relative: .inf}" the value starts at column 23; in "  - name: x" at 11;
// a flow list or an empty one is located at its key, columns 5 and 1).
TEST_F(Trust, RegressSuiteRefusesInfiniteTolerancesAndNamesWithAPath) {
  const std::string exp = "    experiment: " + kSrc + "/configs/experiments/kv_link.yaml\n";
  const auto regress = [&](const std::string& suite) {
    const fs::path f = write("suite.yaml", suite);
    Result r = wse_emu("regress --suite '" + f.string() + "'", dir_ / "io");
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("== kv_link"))) << "nothing runs";
    return r.err;
  };
  EXPECT_THAT(regress("tolerance: {relative: .inf}\nexperiments:\n  - name: kv_link\n" + exp),
              HasSubstr("suite.yaml:1:23: key 'tolerance.relative': expected a number, found '.inf'"));
  EXPECT_THAT(regress("tolerance: {absolute: abc}\nexperiments:\n  - name: kv_link\n" + exp),
              HasSubstr("suite.yaml:1:23: key 'tolerance.absolute': expected a number, found 'abc'"));
  EXPECT_THAT(
      regress("tolerance: {absolute: -1}\nexperiments:\n  - name: kv_link\n" + exp),
      HasSubstr("suite.yaml:1:23: key 'tolerance.absolute': value '-1' is out of range; allowed: >= 0"));
  EXPECT_THAT(regress("experiments:\n  - name: ../kv_link\n" + exp),
              HasSubstr("suite.yaml:2:11: key 'experiments[0].name': '../kv_link' names the reference file "
                        "<name>.json"));
  EXPECT_THAT(regress("experiments:\n  - name: [kv_link]\n" + exp),
              HasSubstr("suite.yaml:2:5: key 'experiments[0].name': expected a string, found a sequence"));
  // A typo is an error at its key with the keys read there, never a default.
  EXPECT_THAT(
      regress("experiments:\n  - name: kv_link\n" + exp + "    sett: {workload.trace.limit: 3}\n"),
      HasSubstr("suite.yaml:4:5: key 'experiments[0].sett': unknown key 'sett'; did you mean 'set'?"));
  EXPECT_THAT(
      regress("tolerence: {relative: 0}\nexperiments:\n  - name: kv_link\n" + exp),
      HasSubstr("suite.yaml:1:1: key 'tolerence': unknown key 'tolerence'; did you mean 'tolerance'?"));
  EXPECT_THAT(regress("references: refs\nexperiments: []\n"),
              HasSubstr("suite.yaml:2:1: key 'experiments': must list at least one {name:, experiment:}"));
}

// Found by fuzz_regress: an experiment path longer than the system allows (a corrupted
// suite) escaped as std::filesystem's "filesystem error: status: File name too long
// [...]", naming neither the suite nor its line; the sweep file's base experiment too.
TEST_F(Trust, SuiteAndSweepWithAnUnreadableExperimentPathNameTheirLine) {
  const std::string long_name(5000, 'G');
  const fs::path suite =
      write("suite.yaml", "experiments:\n  - name: a\n    experiment: " + long_name + "\n");
  Result r = wse_emu("regress --suite '" + suite.string() + "'", dir_ / "io");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("suite.yaml:3:17: key 'experiments[0].experiment': '"));
  EXPECT_THAT(r.err, HasSubstr("' cannot be read: File name too long"));
  EXPECT_THAT(r.err, Not(HasSubstr("filesystem error")));
  const fs::path sweep = write("sweep.yaml", "experiment: " + long_name + "\ngrid:\n  a: [1]\n");
  Result w = wse_emu("sweep '" + sweep.string() + "' --out '" + (dir_ / "sw").string() + "'", dir_ / "io");
  EXPECT_EQ(w.exit_code, 2) << w.err;
  EXPECT_THAT(w.err, HasSubstr("sweep.yaml:1:13: key 'experiment': base experiment '"));
  EXPECT_THAT(w.err, HasSubstr("' cannot be read: File name too long"));
  EXPECT_THAT(w.err, Not(HasSubstr("filesystem error")));
}

// --- Item 11: file errors with their reason on stderr; no SystemC text. ---

// A trace path that was a symlink loop exited 1 with SystemC's "Error: (E549) uncaught
// exception: filesystem error ..." on stdout only; a directory, FIFO or device "did not
// exist".
TEST_F(Trust, TracePathThatIsNotAFileSaysWhy) {
  fs::create_symlink(dir_ / "loop_a", dir_ / "loop_b");
  fs::create_symlink(dir_ / "loop_b", dir_ / "loop_a");
  Result loop = run_bad(kKvLink + " --set workload.trace.path=" + (dir_ / "loop_a").string());
  EXPECT_THAT(loop.err, HasSubstr("key 'workload.trace.path': cannot read trace file '" +
                                  (dir_ / "loop_a").string() + "': Too many levels of symbolic links"));
  EXPECT_EQ(loop.out, "");
  Result folder = run_bad(kKvLink + " --set workload.trace.path=" + dir_.string());
  EXPECT_THAT(folder.err, HasSubstr("' is a directory, not a trace file"));
  Result device = run_bad(kKvLink + " --set workload.trace.path=/dev/null");
  EXPECT_THAT(device.err, HasSubstr("'/dev/null' is not a regular file (a FIFO, socket or device)"));
  // The experiment file itself.
  Result top = wse_emu("check '" + (dir_ / "loop_a").string() + "'", dir_ / "io");
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_THAT(top.err, HasSubstr("Too many levels of symbolic links"));
}

// A failure inside the simulation went through SystemC's reporter: "run failed: Error:
// (E549) uncaught exception: ..." followed by "In file: ..." and "In process: ... @ ...
// ps" lines. Now the run ends with one line, the tool's own.
TEST_F(Trust, RunFailureEndsWithOneLineOfItsOwn) {
  Result r = run_failed(kKvLink + " --set 'kv_transfer.link.bandwidth=300 b/s'");
  ASSERT_FALSE(r.err.empty());
  std::string last = r.err.substr(0, r.err.size() - 1);
  last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
  EXPECT_THAT(last,
              HasSubstr("wse-emu: run failed: simulated time overflow: kv_path.link: the end of a transfer"));
  EXPECT_THAT(r.err + r.out, Not(HasSubstr("E549")));
  EXPECT_THAT(r.err + r.out, Not(HasSubstr("In process:")));
}

// Item 12: the sweep's error column held SystemC's "In process: ... @ ... ps" trailer;
// it now holds the point's own last error line.
TEST_F(Trust, SweepErrorColumnHoldsTheToolsOwnMessage) {
  const fs::path sweep = write("s.yaml",
                               "description: a point that overflows simulated time\n"
                               "experiment: " +
                                   kSrc +
                                   "/configs/experiments/kv_link.yaml\n"
                                   "grid:\n"
                                   "  workload.trace.limit: [3]\n"
                                   "  kv_transfer.link.bandwidth: [300 b/s]\n");
  Result r = wse_emu("sweep '" + sweep.string() + "' --out '" + (dir_ / "sw").string() + "' --jobs 1 --quiet",
                     dir_ / "io");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::string csv = slurp(dir_ / "sw" / "results.csv");
  EXPECT_THAT(csv,
              HasSubstr("run failed: simulated time overflow: kv_path.link: the end of a transfer reaches"));
  EXPECT_THAT(csv, Not(HasSubstr("In process")));
  EXPECT_THAT(csv, Not(HasSubstr("E549")));
}

// --- Item 18: command-line consistency. ---

TEST_F(Trust, RunHelpExampleUsesARealKey) {
  Result help = wse_emu("help run", dir_ / "io");
  EXPECT_THAT(help.out, HasSubstr("efa.sender.adapters=8"));  // was efa.adapters, not a key
  Result check = wse_emu("check configs/experiments/default.yaml --set efa.sender.adapters=8", dir_ / "io");
  EXPECT_EQ(check.exit_code, 0) << check.err;
}

// Defaults were listed in base units: `[default: 137438953472 B/s]`, `[default: 1e-06 s]`.
TEST_F(Trust, CheckParamsShowsDefaultsWithUnitPrefixes) {
  Result r = wse_emu("check configs/experiments/default.yaml --params", dir_ / "io");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[default: 128 GiB/s]  bandwidth of one link, each direction"));
  EXPECT_THAT(r.out, HasSubstr("[default: 1.5 us]  latency of one link hop"));
  EXPECT_THAT(r.out, HasSubstr("[default: 2.1 us]  fixed cost of one collective"));
  EXPECT_THAT(r.out, HasSubstr("[default: 27.34375 GB/s]  data rate of one DMA queue"));
  EXPECT_THAT(r.out, Not(HasSubstr("137438953472 B/s")));
}

// `regress` did not accept --quiet, which run and bench do.
TEST_F(Trust, RegressAcceptsQuiet) {
  const fs::path suite = write("suite.yaml",
                               "references: refs\n"
                               "experiments:\n"
                               "  - name: kv_link\n"
                               "    experiment: " +
                                   kSrc +
                                   "/configs/experiments/kv_link.yaml\n"
                                   "    set: {workload.trace.limit: 3}\n");
  Result update = wse_emu("regress --update --quiet --suite '" + suite.string() + "'", dir_ / "io");
  ASSERT_EQ(update.exit_code, 0) << update.err;
  Result r = wse_emu("regress --quiet --suite '" + suite.string() + "'", dir_ / "io");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("all figures within tolerance"));
  EXPECT_THAT(r.out, HasSubstr("regression: PASS"));
  EXPECT_THAT(r.out, Not(HasSubstr("figure  ")));  // no table
}

// --- Item 8: SIGINT, SIGTERM and SIGHUP. ---

// They acted like SIGKILL: config.resolved.yaml and a 0-byte trace.json.tmp were left
// behind and the rerun was refused without --force. Now the run removes its files (and
// the folder it created), prints one line and exits 128 + n.
class TrustSignals : public Trust, public ::testing::WithParamInterface<int> {
 protected:
  // Starts `wse-emu run` of the whole default experiment with --trace (several seconds),
  // waits until it has written config.resolved.yaml, sends `sig`, and returns the exit
  // status and stderr.
  std::pair<int, std::string> interrupt(const fs::path& out, int sig) {
    const fs::path err = dir_ / "stderr.txt";
    const pid_t pid = start_wse_emu(
        {"run", "configs/experiments/default.yaml", "--out", out.string(), "--trace", "--quiet"}, err);
    for (int i = 0; i < 3000 && !fs::exists(out / "config.resolved.yaml"); ++i) ::usleep(10000);
    EXPECT_TRUE(fs::exists(out / "config.resolved.yaml")) << "the run did not start";
    ::usleep(200000);  // into the simulation, with trace.json.tmp.PID open
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(err)};
  }
};

TEST_P(TrustSignals, RemovesTheRunsFilesAndExits128PlusN) {
  const int sig = GetParam();
  const auto [code, err] = interrupt(dir_ / "out", sig);
  EXPECT_EQ(code, 128 + sig) << err;
  EXPECT_FALSE(fs::exists(dir_ / "out")) << "the folder this run created is removed";
  EXPECT_THAT(err, HasSubstr("wse-emu: interrupted by " +
                             std::string(sig == SIGINT    ? "SIGINT"
                                         : sig == SIGTERM ? "SIGTERM"
                                                          : "SIGHUP") +
                             "; removed this run's files\n"));
  // A folder that existed (empty) stays, empty: only this run's files go.
  fs::create_directories(dir_ / "kept");
  const auto [code2, err2] = interrupt(dir_ / "kept", sig);
  EXPECT_EQ(code2, 128 + sig) << err2;
  ASSERT_TRUE(fs::exists(dir_ / "kept"));
  EXPECT_TRUE(fs::is_empty(dir_ / "kept")) << "left: " << fs::directory_iterator(dir_ / "kept")->path();
}

INSTANTIATE_TEST_SUITE_P(Signals, TrustSignals, ::testing::Values(SIGINT, SIGTERM, SIGHUP));

// --- Item 9: two runs into one --out. ---

// Both passed the "new or empty" check and the folder mixed their files. The folder is
// now claimed with a marker created exclusively: a second claimant is refused (exit 2)
// and removes nothing; a marker left by a process that no longer exists is taken over.
TEST_F(Trust, AFolderClaimedByAnotherRunIsRefused) {
  const fs::path out = dir_ / "out";
  fs::create_directories(out);
  write("out/.wse-emu-run.claim", std::to_string(::getpid()) + "\n");  // this test: a live process
  Result r = wse_emu("run " + kKvLink + " --force --quiet --out '" + out.string() + "'", dir_ / "io");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is being written by another run (pid " + std::to_string(::getpid()) + ")"));
  EXPECT_TRUE(fs::exists(out / ".wse-emu-run.claim")) << "the other run's marker is not removed";
  EXPECT_FALSE(fs::exists(out / "config.resolved.yaml"));
  // A marker of a process that has exited: taken over, and removed at the end.
  const pid_t gone = exited_pid();
  write("out/.wse-emu-run.claim", std::to_string(gone) + "\n");
  Result s = wse_emu("run " + kKvLink + " --force --quiet --out '" + out.string() + "'", dir_ / "io");
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_TRUE(fs::exists(out / "summary.json"));
  EXPECT_FALSE(fs::exists(out / ".wse-emu-run.claim"));
}

// --force without --trace left an earlier run's trace.json beside the new results.
TEST_F(Trust, ForceWithoutTraceRemovesAnEarlierTrace) {
  const fs::path out = dir_ / "out";
  ASSERT_EQ(
      wse_emu("run " + kKvLink + " --trace --quiet --out '" + out.string() + "'", dir_ / "io").exit_code, 0);
  ASSERT_TRUE(fs::exists(out / "trace.json"));
  Result r = wse_emu("run " + kKvLink + " --force --quiet --out '" + out.string() + "'", dir_ / "io");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out / "trace.json"));
}

// --- CLI consistency ---

// An experiment that includes llama8b_one_cs3.yaml (an Azure trace file) could not switch
// to a synthetic trace: `workload.trace.path` and `limit` were inherited, and B check said
// "key 'workload.trace.path': unknown key 'path' Known keys here: arrival, format, ...".
// A null value removes an inherited key (in a file, and with --set KEY=null).
TEST_F(Trust, NullRemovesAnInheritedKey) {
  const fs::path f =
      write("synthetic8b.yaml", "include: " + kSrc +
                                    "/configs/experiments/llama8b_one_cs3.yaml\n"
                                    "workload:\n  trace:\n    path: ~\n    limit: null\n    start:\n"
                                    "    format: synthetic\n    requests: 3\n    seed: 1\n"
                                    "    arrival: {process: poisson, rate: 40}\n"
                                    "    input_tokens: {distribution: fixed, value: 8192}\n"
                                    "    output_tokens: {distribution: fixed, value: 16}\n");
  Result r = wse_emu("check '" + f.string() + "'", dir_ / "io");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("unknown key")));
  // --set removes too: the trace's limit, which `check` then does not show.
  Result s =
      wse_emu("check configs/experiments/llama8b_one_cs3.yaml --set workload.trace.limit=null", dir_ / "io");
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_THAT(s.out, Not(HasSubstr("limit: 1000"))) << s.out;
}

// The note listing a Hugging Face config.json's unused keys came on every run of every
// shipped experiment (B run configs/experiments/kv_link.yaml ... : "note: 14 key(s) of
// .../Meta-Llama-3.1-70B_config.json are not used by this model: ..."). It is shown once
// per file (remembered in $WSE_EMU_STATE_DIR, else ~/.cache/wse-emu) and --quiet hides it.
TEST_F(Trust, UnusedHuggingFaceKeysAreNotedOncePerFile) {
  const std::string env = "env WSE_EMU_STATE_DIR='" + (dir_ / "state").string() + "' ";
  auto run = [&](const std::string& extra, const std::string& out) {
    const std::string cmd = "run " + kKvLink + extra + " --out '" + (dir_ / out).string() + "'";
    const std::string full = "cd '" + kSrc + "' && " + env + "'" + std::string(WSE_BINARY_DIR) +
                             "/bin/wse-emu' " + cmd + " >/dev/null 2>'" + (dir_ / "err.txt").string() + "'";
    EXPECT_EQ(std::system(full.c_str()), 0);
    return slurp(dir_ / "err.txt");
  };
  EXPECT_THAT(run(" --quiet", "q"), Not(HasSubstr("are not used by this model")));
  const std::string first = run("", "a");
  EXPECT_THAT(first, HasSubstr("are not used by this model"));
  EXPECT_THAT(first, HasSubstr("shown once per file"));
  EXPECT_THAT(run("", "b"), Not(HasSubstr("are not used by this model")));
}

// --- Decisions on requests the model cannot take ---

// A prompt longer than the model's context window (150,000 tokens for Llama-3.1-8B,
// whose max_position_embeddings is 131,072) ran as if the model could take it. Now it is
// refused as the trace is read, at its line, naming the window; the key is no longer
// among the "unused" ones. A synthetic trace that can generate such a request is refused
// at workload.trace.input_tokens.
TEST_F(Trust, PromptLongerThanTheContextWindowIsRefusedAtItsLine) {
  write("long.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,1000,10\n"
        "2023-11-16 18:15:47.6805900,150000,10\n");
  const fs::path e = write("e.yaml",
                           "experiment: {name: e, mode: kv_transfer}\n"
                           "include: " +
                               kSrc +
                               "/configs/models/llama-3.1-8b.yaml\n"
                               "workload:\n  trace: {format: azure_csv, path: long.csv}\n"
                               "kv_transfer:\n  link: {bandwidth: 400 GB/s, latency: 15 us}\n");
  Result r = run_bad("'" + e.string() + "'");
  EXPECT_THAT(r.err, HasSubstr("long.csv:3:1: "));
  EXPECT_THAT(r.err,
              HasSubstr("request 1 needs 150010 tokens of context (150000 of prompt + 10 of output), more "
                        "than the model's context window, max_position_embeddings = 131072"));
  // 131,062 + 10 tokens fill the window exactly: accepted.
  write("long.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,131062,10\n");
  Result ok = wse_emu("check '" + e.string() + "'", dir_ / "io");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const fs::path syn = write("syn.yaml",
                             "experiment: {name: e, mode: kv_transfer}\n"
                             "include: " +
                                 kSrc +
                                 "/configs/models/llama-3.1-8b.yaml\n"
                                 "workload:\n  trace:\n    format: synthetic\n    requests: 2\n"
                                 "    arrival: {process: poisson, rate: 1}\n"
                                 "    input_tokens: {distribution: fixed, value: 150000}\n"
                                 "    output_tokens: {distribution: fixed, value: 10}\n"
                                 "kv_transfer:\n  link: {bandwidth: 400 GB/s, latency: 15 us}\n");
  Result s = run_bad("'" + syn.string() + "'");
  EXPECT_THAT(s.err, HasSubstr("key 'workload.trace.input_tokens': generated request 0 needs 150010 tokens"));
}

// SIGTERM to `wse-emu sweep` (Slurm's time limit, kill) ended the sweep and left its
// running point behind, still simulating and writing into the folder. Now the signal is
// passed on: the point removes its files (as `run` does), the sweep exits 128 + 15 and
// names what happened, and no point process is left.
TEST_F(Trust, SweepPassesSigtermOnToItsRunningPoint) {
  const fs::path sweep = write("s.yaml", "experiment: " + kSrc +
                                             "/configs/experiments/default.yaml\n"
                                             "grid:\n  workload.trace.limit: [1000]\n");
  const fs::path out = dir_ / "out";
  const fs::path err = dir_ / "stderr.txt";
  const pid_t pid = start_wse_emu({"sweep", sweep.string(), "--out", out.string(), "--jobs", "1"}, err);
  // Wait for the point's run to claim its folder: the marker holds its pid.
  fs::path claim;
  for (int i = 0; i < 3000 && claim.empty(); ++i) {
    if (fs::exists(out / "points"))
      for (const auto& d : fs::directory_iterator(out / "points"))
        if (fs::exists(d.path() / ".wse-emu-run.claim") && fs::file_size(d.path() / ".wse-emu-run.claim") > 0)
          claim = d.path() / ".wse-emu-run.claim";
    if (claim.empty()) ::usleep(10000);
  }
  ASSERT_FALSE(claim.empty()) << "the point did not start: " << slurp(err);
  const pid_t point = static_cast<pid_t>(std::stol(slurp(claim)));
  ::usleep(200000);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << slurp(err);
  EXPECT_THAT(slurp(err),
              HasSubstr("sweep stopped by Terminated (signal 15): the running points were stopped too"));
  EXPECT_NE(::kill(point, 0), 0) << "the point's process " << point << " is still running";
  EXPECT_FALSE(fs::exists(claim.parent_path() / "summary.json"));
  EXPECT_FALSE(fs::exists(claim.parent_path() / "exit_code")) << "a stopped point is not recorded as run";
}

// config.resolved.yaml held the checkout's absolute trace path (workload.trace.path:
// "/work/a/workloads/data/traces/...csv"), so two clones wrote different files. A path
// inside the folder that holds both the output and the experiment (the checkout, when
// the output is inside it) is now written relative to the output folder; the file still
// reruns; an output outside keeps the absolute path.
TEST_F(Trust, ResolvedConfigurationIsTheSameInTwoClones) {
  auto clone = [&](const std::string& name) {
    const fs::path root = dir_ / name;
    fs::create_directories(root / "configs" / "experiments");
    fs::create_directories(root / "traces");
    std::ofstream(root / "traces" / "t.csv") << "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                                "2023-11-16 18:15:46.6805900,1000,10\n"
                                                "2023-11-16 18:15:47.6805900,2000,10\n";
    std::ofstream(root / "configs" / "experiments" / "e.yaml")
        << "experiment: {name: e, mode: kv_transfer}\n"
        << "include: " << kSrc << "/configs/models/llama-3.1-8b.yaml\n"
        << "workload:\n  trace: {format: azure_csv, path: ../../traces/t.csv}\n"
        << "kv_transfer:\n  link: {bandwidth: 400 GB/s, latency: 15 us}\n";
    Result r = wse_emu("run '" + (root / "configs/experiments/e.yaml").string() + "' --quiet --out '" +
                           (root / "out" / "e").string() + "'",
                       dir_ / "io");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return slurp(root / "out" / "e" / "config.resolved.yaml");
  };
  const std::string a = clone("a"), b = clone("b");
  EXPECT_THAT(a, HasSubstr("path: \"../../traces/t.csv\""));
  EXPECT_EQ(a, b);
  // It reruns from where it is.
  Result again = wse_emu("run '" + (dir_ / "a/out/e/config.resolved.yaml").string() + "' --quiet --out '" +
                             (dir_ / "a/out/again").string() + "'",
                         dir_ / "io");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  // Written outside the clone: absolute, as before.
  Result outside = wse_emu("run '" + (dir_ / "a/configs/experiments/e.yaml").string() +
                               "' --quiet --out /var/tmp/" + dir_.filename().string() + "_out",
                           dir_ / "io");
  EXPECT_EQ(outside.exit_code, 0) << outside.err;
  const fs::path outside_dir = fs::path("/var/tmp") / (dir_.filename().string() + "_out");
  EXPECT_THAT(slurp(outside_dir / "config.resolved.yaml"), HasSubstr((dir_ / "a/traces/t.csv").string()));
  fs::remove_all(outside_dir);
}

// `run --out` claims its folder with an O_EXCL marker; sweep, bench and regress did not:
// two of them into one new --out mixed their files. Now each claims it the same way: a
// folder held by a live process (here this test's pid) is refused with exit 2 naming
// the pid, and nothing of the other's is removed.
TEST_F(Trust, SweepBenchAndRegressClaimTheirFolder) {
  const std::string pid = std::to_string(::getpid());
  const fs::path sweep = write("s.yaml", "experiment: " + kSrc +
                                             "/configs/experiments/kv_link.yaml\n"
                                             "grid:\n  workload.trace.limit: [2, 3]\n");
  const fs::path suite = write("suite.yaml",
                               "references: refs\ntolerance: {relative: 1.0e-6, absolute: 0}\n"
                               "experiments:\n  - name: kv_link\n"
                               "    experiment: " +
                                   kSrc +
                                   "/configs/experiments/kv_link.yaml\n"
                                   "    set: {workload.trace.limit: 3}\n");
  const std::vector<std::pair<std::string, std::string>> commands{
      {"sweep", "sweep '" + sweep.string() + "' --quiet --out "},
      {"bench", "bench efa --quick --quiet --force --out "},
      {"regress", "regress --quiet --suite '" + suite.string() + "' --force --out "}};
  for (const auto& [name, cmd] : commands) {
    const fs::path out = dir_ / ("out_" + name);
    fs::create_directories(out);
    write("out_" + name + "/.wse-emu-run.claim", pid + "\n");
    Result r = wse_emu(cmd + "'" + out.string() + "'", dir_ / "io");
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("is being written by another run (pid " + pid + ")")) << name;
    EXPECT_EQ(slurp(out / ".wse-emu-run.claim"), pid + "\n") << name << ": the other's marker is kept";
  }
  // A stale marker (a process that has exited) is taken over, and removed at the end.
  const pid_t gone = exited_pid();
  write("out_sweep/.wse-emu-run.claim", std::to_string(gone) + "\n");
  Result ok = wse_emu("sweep '" + sweep.string() + "' --quiet --out '" + (dir_ / "out_sweep").string() + "'",
                      dir_ / "io");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_FALSE(fs::exists(dir_ / "out_sweep" / ".wse-emu-run.claim"));
  EXPECT_TRUE(fs::exists(dir_ / "out_sweep" / "results.csv"));
}

// `run` drew its progress line (simulated time, requests done, rate, ETA) only in
// kv_transfer mode, though docs/results.md promises it for every mode. The serving modes
// draw it now, on a terminal only (here a pseudo-terminal made by script(1)); not when
// stderr is a file.
TEST_F(Trust, ServingRunShowsProgressOnATerminal) {
  const fs::path e =
      write("t.yaml",
            "experiment: {name: t, mode: trainium_only, seed: 1}\n"
            "include:\n  - " +
                kSrc +
                "/configs/models/llama-3.1-8b.yaml\n"
                "  - " +
                kSrc +
                "/configs/hardware/trn2_48xlarge.yaml\n"
                "workload:\n  trace:\n    format: synthetic\n    requests: 40000\n    seed: 1\n"
                "    arrival: {process: poisson, rate: 1000}\n"
                "    input_tokens: {distribution: fixed, value: 32}\n"
                "    output_tokens: {distribution: fixed, value: 2}\n"
                "serving: {instances: 1, prefill_max_batch_tokens: 8192, decode_max_batch: 64}\n");
  const std::string bin = std::string(WSE_BINARY_DIR) + "/bin/wse-emu";
  const std::string cmd = "script -qec \"'" + bin + "' run '" + e.string() + "' --out '" +
                          (dir_ / "tty").string() + "'\" /dev/null > '" + (dir_ / "tty.txt").string() +
                          "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "tty.txt");
  const std::string tty = slurp(dir_ / "tty.txt");
  EXPECT_THAT(tty, HasSubstr("/40000 requests ("));
  EXPECT_THAT(tty, HasSubstr("requests/s | ETA "));
  Result file = wse_emu("run '" + e.string() + "' --out '" + (dir_ / "file").string() + "'", dir_ / "io");
  EXPECT_EQ(file.exit_code, 0) << file.err;
  EXPECT_THAT(file.err, Not(HasSubstr("ETA")));
}

}  // namespace
}  // namespace wse::testing
