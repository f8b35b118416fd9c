// limits.memory_budget: a configuration whose configuration-sized state (per-request
// records of a trace, the fabric of a wafer) would need more memory than the budget is
// refused while it is read, before that state is allocated: exit 2, the key that sized
// it, the estimate, the budget and what to change; nothing written.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "apps/experiments/inputs.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/limits.h"
#include "util/cli_harness.h"
#include "util/scratch_dir.h"
#include "workloads/serving/serving_system.h"
#include "wse_mesh/fabric/fabric.h"

namespace wse::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(MemoryBudget, DefaultIsSixteenGibibytesAndChargesAddUpToTheBudget) {
  config::Document none = config::parse("a: {n: 1}\n", "t.yaml");
  config::Section r0 = none.root();
  EXPECT_EQ(sim::MemoryBudget::read(r0).budget(), 16ULL << 30);

  config::Document doc = config::parse("limits: {memory_budget: 1 KiB}\nw:\n  width: 10\n", "t.yaml");
  config::Section root = doc.root();
  sim::MemoryBudget b = sim::MemoryBudget::read(root);
  EXPECT_EQ(b.budget(), 1024u);
  config::Section w = root.section("w", "a section");
  b.charge(w, "width", 1000, "the first thing", "use less");
  b.charge(w, "width", 24, "the second thing", "use less");  // exactly the budget: allowed
  EXPECT_EQ(b.charged(), 1024u);
  try {
    b.charge(w, "width", 1, "one byte more", "make w.width smaller");
    FAIL() << "a charge past the budget must throw";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(e.key_path(), "w.width");
    EXPECT_EQ(e.source().line, 3);
    EXPECT_THAT(e.detail(), HasSubstr("needs an estimated 1 B"));
    EXPECT_THAT(e.detail(), HasSubstr("for one byte more, on top of"));
    EXPECT_THAT(e.detail(), HasSubstr("more than limits.memory_budget = 1.00 KiB; make w.width smaller"));
    EXPECT_THAT(e.detail(), HasSubstr("--set limits.memory_budget="));
  }
  EXPECT_EQ(b.charged(), 1024u) << "a refused charge is not added";
  EXPECT_EQ(sim::mul_sat(1ULL << 40, 1ULL << 40), UINT64_MAX);
}

// An idle fabric's state per router, from its element sizes (fabric.h): routes_
// (uint16) and block_ (uint32) per color: 24 x 6 = 144 B; RouterState: two arrays of 5
// uint8 and a bool (11 B, padded to 16 for the uint64 pair) plus 2 x 8 = 32 B;
// source_of_, xy_ (uint32 each) and link_count_ (5 ports x uint32): 28 B. Total 204 B,
// which for the 896,112 routers of a WSE-3 is 182.8 MB = 174.3 MiB (docs/wse_mesh.md
// measures 171 MiB of these tables without xy_, 4 B less per router).
TEST(MemoryBudget, FabricStatePerRouterFromItsElementSizes) {
  EXPECT_EQ(wafer::Fabric::idle_bytes_per_router(24), 204u);
}

class MemoryLimits : public ScratchDirTest {
 protected:
  fs::path synthetic(const std::string& requests) {
    const std::string src = WSE_SOURCE_DIR;
    return write("e.yaml",
                 "experiment: {name: t, mode: kv_transfer}\n"
                 "include:\n  - " +
                     src +
                     "/configs/models/llama-3.1-70b.yaml\n"
                     "workload:\n  trace:\n    format: synthetic\n    requests: " +
                     requests +
                     "\n"
                     "    arrival: {rate: 10}\n"
                     "    input_tokens: {distribution: fixed, value: 100}\n"
                     "    output_tokens: {distribution: fixed, value: 10}\n"
                     "kv_transfer:\n  link:\n    bandwidth: 400 GB/s\n    latency: 15 us\n");
  }
  Result run_refused(const fs::path& exp, const std::string& extra) {
    const fs::path out = dir_ / "out";
    Result r =
        wse_emu("run '" + exp.string() + "' --quiet --out '" + out.string() + "' " + extra, dir_ / "io");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "nothing written";
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one message: " << r.err;
    return r;
  }
};

// 10^8 synthetic requests. Per request (apps/experiments/inputs.h): the trace's
// Request, 88 B (id 8, arrival 8, two uint32 token counts 8, the hash-id vector 24,
// priority 8; for sessions the previous turn 8, the session 8, the think time 8, the
// turn and the new tokens 8); the serving system's RequestRecord; its two uint32 prompt counters, 8 B,
// and admission state, 42 B (KV held, ready order, latest token time, swapped flag; KV
// retention's retained tokens, ready-after time, counted flag);
// and the requests.csv row, 26 columns of at most 21 characters, 546 B. With the 16 GiB
// default budget (17,179,869,184 B) that is refused for any RequestRecord: 10^8 x 684 B
// alone is 68.4 GB.
TEST_F(MemoryLimits, HundredMillionRequestsAreRefusedBeforeTheTraceIsGenerated) {
  ASSERT_EQ(sizeof(workloads::Request), 88u);
  const std::uint64_t per = 88 + sizeof(serving::RequestRecord) + 8 + 42 + 26 * 21;
  ASSERT_EQ(experiments::request_state_bytes(), per);
  Result r = run_refused(synthetic("100000000"), "");
  EXPECT_THAT(r.err, HasSubstr("e.yaml:7:15: key 'workload.trace.requests'"));
  EXPECT_THAT(r.err, HasSubstr("needs an estimated " + std::to_string(100000000ULL * per) + " B"));
  EXPECT_THAT(r.err, HasSubstr("100000000 requests x " + std::to_string(per) + " B of per-request state"));
  EXPECT_THAT(r.err, HasSubstr("more than limits.memory_budget = 16.00 GiB"));
  EXPECT_THAT(r.err, HasSubstr("generate fewer (workload.trace.requests)"));
}

// 10^6 requests x per B (about 650 MB) against a 256 MiB budget: refused; with the
// budget raised on the command line to 1 GiB the same file is accepted.
TEST_F(MemoryLimits, TheBudgetIsAKnobOfTheCommandLine) {
  const fs::path exp = synthetic("1000000");
  Result r = run_refused(exp, "--set 'limits.memory_budget=256 MiB'");
  EXPECT_THAT(r.err, HasSubstr("more than limits.memory_budget = 256.00 MiB"));
  Result ok = wse_emu("check '" + exp.string() + "' --set 'limits.memory_budget=1 GiB'", dir_ / "io");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("memory_budget: 1 GiB"));
}

// A wafer of 31,623 x 31,623 = 1,000,014,129 PEs at tile 1 (a router per PE): 204 B per
// router (above) gives 204,002,882,316 B = 189.99 GiB of fabric state, refused at
// wafer.width before the decoder is placed. At tile 8 the same wafer is 3,953 x 3,953 =
// 15,626,209 routers, 3,187,746,636 B: within the budget.
TEST_F(MemoryLimits, ABillionPeWaferIsRefusedWithTheFabricEstimate) {
  const std::string exp = std::string(WSE_SOURCE_DIR) + "/configs/experiments/llama8b_one_cs3.yaml";
  Result r = run_refused(exp,
                         "--set workload.trace.limit=2 --set wafer.width=31623 --set wafer.height=31623 "
                         "--set wafer.fabric.tile=1");
  EXPECT_THAT(r.err, HasSubstr("key 'wafer.width'"));
  EXPECT_THAT(r.err, HasSubstr("needs an estimated 204002882316 B (189.99 GiB)"));
  EXPECT_THAT(r.err, HasSubstr("the fabric of a 31623 x 31623 wafer at tile 1 (1000014129 routers x 204 B)"));
  EXPECT_THAT(r.err, HasSubstr("use a coarser wafer.fabric.tile"));
}

// A trace file without a limit: the requests are bounded by its lines, counted without
// reading them. workloads/data/traces/azure2023_code.csv holds 8,819 newlines and a last
// line without one: 8,820 lines (the header counted too, an upper bound), which at
// request_state_bytes() each pass a 1 MiB budget (8,820 x 539 B > 4.7 MB for any
// RequestRecord).
TEST_F(MemoryLimits, AnUnlimitedTraceFileIsBoundedByItsLines) {
  const std::string src = WSE_SOURCE_DIR;
  const fs::path exp = write("f.yaml",
                             "experiment: {name: t, mode: kv_transfer}\n"
                             "include:\n  - " +
                                 src +
                                 "/configs/models/llama-3.1-70b.yaml\n"
                                 "workload:\n  trace:\n    format: azure_csv\n    path: " +
                                 src +
                                 "/workloads/data/traces/azure2023_code.csv\n"
                                 "kv_transfer:\n  link:\n    bandwidth: 400 GB/s\n    latency: 15 us\n");
  Result r = run_refused(exp, "--set 'limits.memory_budget=1 MiB'");
  const std::uint64_t per = experiments::request_state_bytes();
  EXPECT_THAT(r.err, HasSubstr("key 'workload.trace.limit'"));
  EXPECT_THAT(r.err, HasSubstr("needs an estimated " + std::to_string(8820 * per) + " B"));
  EXPECT_THAT(r.err, HasSubstr("8820 requests x " + std::to_string(per) + " B"));
  EXPECT_THAT(r.err, HasSubstr("select fewer (workload.trace.limit)"));
}

// The shipped experiments are far inside the budget: the default (1,000 requests, four
// CS-3s at tile 8: 14,112 routers x 204 B = 2,878,848 B of fabric), Mooncake (500
// requests and their hash ids) and azure_code are accepted, and the resolved
// configuration states the budget.
TEST_F(MemoryLimits, ShippedExperimentsAreNotRefused) {
  for (const char* e : {"default.yaml", "mooncake.yaml", "azure_code.yaml"}) {
    Result r = wse_emu("check configs/experiments/" + std::string(e), dir_ / "io");
    EXPECT_EQ(r.exit_code, 0) << e << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("memory_budget: 16 GiB")) << e;
  }
}

}  // namespace
}  // namespace wse::testing
