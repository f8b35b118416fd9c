#include "apps/wse-emu/cli.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include <boost/program_options.hpp>
#include <systemc>
#include <tlm>

#include "apps/wse-emu/compare_command.h"
#include "apps/wse-emu/plan_command.h"
#include "apps/wse-emu/registrations.h"
#include "apps/wse-emu/regress_command.h"
#include "apps/wse-emu/sweep_command.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"
#include "systemc_models/sim/progress.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace wse::app {

namespace {

constexpr const char* kUsage =
    "wse-emu: cycle-approximate emulator of disaggregated LLM inference\n"
    "(Trainium prefill, EFA RDMA network, Cerebras wafer-scale decode)\n"
    "\n"
    "usage: wse-emu <command> [options]\n"
    "\n"
    "commands:\n"
    "  run EXPERIMENT.yaml --out DIR   simulate an experiment and write its results\n"
    "  check EXPERIMENT.yaml           validate and print the resolved configuration\n"
    "  bench NAME --out DIR            run a microbenchmark, writing CSV files\n"
    "  sweep SWEEP.yaml --out DIR      run every point of a parameter sweep; DIR/results.csv\n"
    "  regress [--update]              rerun the regression suite against its references\n"
    "  compare RUN_DIR... [--baseline DIR]  headline figures of runs side by side; compare.csv\n"
    "  plan PLAN.yaml --out DIR        size a fleet: the fewest machines that meet the SLOs; plan.csv\n"
    "  list                            list experiment modes and benchmarks\n"
    "  version                         print the version and the SystemC version\n"
    "  help [COMMAND]                  show help for a command\n"
    "\n"
    "Exit status: 0 success, 1 the run failed, 2 bad input (nothing written).\n";

struct Command {
  const char* name;
  const char* synopsis;
  po::options_description options;
  po::positional_options_description positional;
};

Command make_run() {
  Command c{"run",
            "wse-emu run EXPERIMENT.yaml --out DIR [--set KEY=VALUE]... [--trace] [--token-times] [--quiet]\n"
            "             [--force]\n\n"
            "DIR must not exist or be empty unless --force is given (then the files of this run\n"
            "replace those of the same name). Writes summary.json, stats.json,\n"
            "config.resolved.yaml, mode-specific files (byte-identical on a rerun) and host.json\n"
            "(wall time, peak memory: the host's figures, not reproducible).",
            po::options_description("options"),
            {}};
  c.options.add_options()("help,h", "show this help")("experiment", po::value<std::string>(),
                                                      "experiment YAML file")(
      "out,o", po::value<std::string>(), "output directory (created; files written atomically)")(
      "set,s", po::value<std::vector<std::string>>()->composing(),
      "override a configuration key, e.g. --set efa.sender.adapters=8 (repeatable; a relative path "
      "in VALUE is taken from the current directory)")(
      "trace", "also write DIR/trace.json (Chrome/Perfetto trace events)")(
      "token-times", "also write DIR/tokens.csv: every output token's emission time (serving modes)")(
      "force,f", "write into DIR even if it is not empty")("quiet,q", "no progress on stderr");
  c.positional.add("experiment", 1);
  return c;
}

Command make_check() {
  Command c{"check",
            "wse-emu check EXPERIMENT.yaml [--set KEY=VALUE]... [--params]",
            po::options_description("options"),
            {}};
  c.options.add_options()("help,h", "show this help")("experiment", po::value<std::string>(),
                                                      "experiment YAML file")(
      "set,s", po::value<std::vector<std::string>>()->composing(), "override a configuration key")(
      "params", "list every parameter with its value, default and description instead");
  c.positional.add("experiment", 1);
  return c;
}

Command make_bench() {
  Command c{"bench",
            "wse-emu bench NAME --out DIR [--quick] [--quiet] [--force]\n"
            "  bench gemv also: [--size N]... [--grid PxQ|SIDE]... [--reduction chain|tree|ktree|all]\n"
            "                   [--accumulate fp16|fp32|all] (values may be comma lists)",
            po::options_description("options"),
            {}};
  c.options.add_options()("help,h", "show this help")("name", po::value<std::string>(),
                                                      "benchmark name (see 'wse-emu list')")(
      "out,o", po::value<std::string>(), "output directory for the CSV files")(
      "quick", "a smaller sweep (seconds instead of minutes)")(
      "size", po::value<std::vector<std::string>>()->composing(), "gemv: square matrix side(s)")(
      "grid", po::value<std::vector<std::string>>()->composing(), "gemv: PE grid(s), PxQ or a side")(
      "reduction", po::value<std::vector<std::string>>()->composing(), "gemv: chain, tree, ktree or all")(
      "accumulate", po::value<std::vector<std::string>>()->composing(), "gemv: fp16, fp32 or all")(
      "force,f", "write into DIR even if it is not empty")("quiet,q", "no progress on stderr");
  c.positional.add("name", 1);
  return c;
}

Command make_sweep() {
  Command c{"sweep",
            "wse-emu sweep SWEEP.yaml --out DIR [--backend local|slurm] [--jobs N] [--quiet] [--force]\n\n"
            "Validates every point of the sweep, then runs each as 'wse-emu run' into\n"
            "DIR/points/<id>/ and writes DIR/results.csv (one row per point; the same for any\n"
            "--jobs and backend) and DIR/host.csv (wall time, peak memory per point; not\n"
            "reproducible). DIR holding an earlier run of the same sweep is resumed: points whose\n"
            "summary.json exists are not rerun. Any other non-empty DIR is refused unless\n"
            "--force (then points of another sweep there are run again). Exit 0 all points ran,\n"
            "1 some failed (recorded in results.csv), 2 bad sweep file, an invalid point or DIR\n"
            "in use (nothing run).",
            po::options_description("options"),
            {}};
  c.options.add_options()("help,h", "show this help")("sweep", po::value<std::string>(),
                                                      "sweep YAML file (see docs/sweeps.md)")(
      "out,o", po::value<std::string>(),
      "output directory (resumed if it holds an earlier run of this sweep)")(
      "force,f", "use DIR even if it holds something else (points of another sweep are rerun)")(
      "backend,b", po::value<std::string>()->default_value("local"),
      "local: parallel processes here; slurm: one sbatch job array, waited for")(
      "jobs,j", po::value<int>()->default_value(0),
      "local: parallel processes (0 = host cores); slurm: array throttle %N (0 = none)")(
      "quiet,q", "no progress on stderr");
  c.positional.add("sweep", 1);
  return c;
}

Command make_plan() {
  Command c{"plan",
            "wse-emu plan PLAN.yaml --out DIR [--backend local|slurm] [--jobs N] [--no-prune] [--quiet] "
            "[--force]\n\n"
            "Sizes a fleet: for every workload and arrival rate of the plan, the fewest prefill\n"
            "machines that meet the SLOs for each decode pool size (bisection, assuming more\n"
            "machines never hurt; implied points are not run), and the deployment with the lowest\n"
            "objective (cost, power, machines or a summary figure). A deployment whose prefill\n"
            "pool cannot meet a TTFT SLO, or whose CS-3 decode pool cannot meet the requests'\n"
            "deadlines (E2E, or TTFT with TPOT), even at the machines' floor is 'pruned', not run\n"
            "(--no-prune or 'prune: false' runs it; docs/plan.md). Each deployment is one\n"
            "'wse-emu run' into DIR/points/<id>/ (resumed when DIR holds an earlier run of the\n"
            "plan). Writes DIR/plan.csv (every deployment run) and DIR/frontier.csv;\n"
            "scripts/plot_plan.py DIR draws DIR/plan.png. Exit 0 done, 1 a run failed, 2 bad plan\n"
            "file (docs/serving.md, 'Sizing a fleet').",
            po::options_description("options"),
            {}};
  c.options.add_options()("help,h", "show this help")("plan", po::value<std::string>(), "plan YAML file")(
      "out,o", po::value<std::string>(), "output directory (resumed if it holds an earlier run of the plan)")(
      "force,f", "use DIR even if it holds something else")(
      "backend,b", po::value<std::string>()->default_value("local"),
      "local: parallel processes here; slurm: one sbatch job array per round, waited for")(
      "jobs,j", po::value<int>()->default_value(0),
      "local: parallel processes (0 = host cores); slurm: array throttle %N (0 = none)")(
      "no-prune", "run every deployment the search asks for, even one its floor bound rules out")(
      "quiet,q", "no progress on stderr");
  c.positional.add("plan", 1);
  return c;
}

Command make_regress() {
  Command c{"regress",
            "wse-emu regress [--update] [--suite FILE] [--only NAME] [--out DIR] [--all] [--quiet]\n\n"
            "Reruns the suite's experiments. Per experiment it prints first the configuration\n"
            "keys that differ from the reference's, then the headline figures (time, requests,\n"
            "throughput, goodput, KV transfer) that moved, and counts the other figures that\n"
            "moved; --all lists every figure. Exit 1 when a figure is out of tolerance.\n"
            "--update rewrites the references (keeping their tolerances) and prints what\n"
            "changed.",
            po::options_description("options"),
            {}};
  c.options.add_options()("help,h", "show this help")("update", "rewrite the reference files from this run")(
      "all", "list every figure (default: the headline figures that moved; the others are counted)")(
      "suite", po::value<std::string>()->default_value("tests/regression/suite.yaml"),
      "regression suite file")("only", po::value<std::string>(), "run only this experiment of the suite")(
      "out,o", po::value<std::string>(), "keep the runs' outputs here (default: temporary, removed)")(
      "force,f", "write into --out DIR even if it is not empty")(
      "quiet,q", "print only each experiment's verdict and the result, not the figure tables");
  return c;
}

Command make_compare() {
  Command c{"compare",
            "wse-emu compare RUN_DIR... [--baseline DIR] [--out DIR] [--quiet]\n\n"
            "Prints the headline figures of the run folders side by side (TTFT and TPOT p50/p99,\n"
            "output tokens/s, goodput, tokens per joule, dollars per million tokens, the busiest\n"
            "resource), each with its ratio to the baseline run (the first folder unless\n"
            "--baseline names one), and writes them to DIR/compare.csv. A sweep's output folder\n"
            "stands for its points. A figure a run does not report shows as '-'.\n"
            "scripts/plot_compare.py DIR draws DIR/compare.png from compare.csv.",
            po::options_description("options"),
            {}};
  c.options.add_options()("help,h", "show this help")(
      "runs", po::value<std::vector<std::string>>()->multitoken(), "run folders (positional)")(
      "baseline,b", po::value<std::string>(), "the run the ratios are to (default: the first)")(
      "out,o", po::value<std::string>()->default_value("."), "folder for compare.csv")(
      "quiet,q", "write compare.csv only, print no table");
  c.positional.add("runs", -1);
  return c;
}

void print_help(const Command& c) { std::cout << "usage: " << c.synopsis << "\n\n" << c.options << "\n"; }

int usage_error(const std::string& msg, const char* command = nullptr) {
  std::cerr << "wse-emu: error: " << msg << "\n";
  std::cerr << "Run 'wse-emu " << (command ? std::string("help ") + command : std::string("--help"))
            << "' for usage.\n";
  return kExitBadInput;
}

// --out, --backend, --jobs, --quiet and --force of a command that runs many points
// (sweep, plan) into `opt`; the usage error's exit status when one is missing or wrong.
template <class Options>
std::optional<int> read_batch_options(const po::variables_map& vm, const std::string& cmd, Options& opt) {
  if (!vm.count("out")) return usage_error(cmd + ": --out DIR is required", cmd.c_str());
  opt.out_dir = vm["out"].as<std::string>();
  opt.backend = vm["backend"].as<std::string>();
  opt.jobs = vm["jobs"].as<int>();
  opt.quiet = vm.count("quiet") > 0;
  opt.force = vm.count("force") > 0;
  if (opt.backend != "local" && opt.backend != "slurm") {
    return usage_error(cmd + ": unknown backend '" + opt.backend + "'; allowed: local, slurm", cmd.c_str());
  }
  if (opt.jobs < 0) return usage_error(cmd + ": --jobs must be 0 or more", cmd.c_str());
  return std::nullopt;
}

// Parses a subcommand's arguments; returns false (after printing) on a usage error.
bool parse(Command& c, const std::vector<std::string>& args, po::variables_map& vm, int& exit_code) {
  try {
    po::store(po::command_line_parser(args).options(c.options).positional(c.positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    exit_code = usage_error(e.what(), c.name);
    return false;
  }
  if (vm.count("help")) {
    print_help(c);
    exit_code = kExitOk;
    return false;
  }
  // An empty --out ('' from an unset shell variable) is bad input, not a failed run.
  if (vm.count("out") && vm["out"].as<std::string>().empty()) {
    exit_code = usage_error(std::string(c.name) + ": --out needs a folder name, found ''", c.name);
    return false;
  }
  return true;
}

std::vector<std::string> strings(const po::variables_map& vm, const char* key) {
  return vm.count(key) ? vm[key].as<std::vector<std::string>>() : std::vector<std::string>{};
}

int cmd_bench(const sim::Registry& registry, const std::vector<std::string>& args) {
  Command c = make_bench();
  po::variables_map vm;
  int code = 0;
  if (!parse(c, args, vm, code)) return code;
  if (!vm.count("name")) return usage_error("bench: which benchmark? (see 'wse-emu list')", "bench");
  const std::string name = vm["name"].as<std::string>();
  const sim::Bench* b = registry.bench(name);
  if (!b) {
    std::vector<std::string> names;
    std::string all;
    for (const auto& [n, d] : registry.benches()) {
      names.push_back(n);
      all += (all.empty() ? "" : ", ") + n;
    }
    auto guess = config::did_you_mean(name, names);
    return usage_error("unknown benchmark '" + name + "'" +
                           (guess ? "; did you mean '" + *guess + "'?" : "") +
                           " Available: " + (all.empty() ? "(none)" : all),
                       "bench");
  }
  if (!vm.count("out")) return usage_error("bench: --out DIR is required", "bench");
  sim::BenchArgs ba;
  ba.out_dir = vm["out"].as<std::string>();
  ba.quick = vm.count("quick") > 0;
  ba.quiet = vm.count("quiet") > 0;
  for (const char* opt : {"size", "grid", "reduction", "accumulate"}) {
    if (vm.count(opt)) ba.options[opt] = vm[opt].as<std::vector<std::string>>();
  }
  if (!vm.count("force") && sim::directory_in_use(ba.out_dir)) {
    std::cerr << "wse-emu: error: " << sim::output_in_use_message(ba.out_dir) << "\n";
    return kExitBadInput;
  }
  try {
    sim::create_output_directory(ba.out_dir);
    const sim::FolderClaim claim(ba.out_dir);  // one command at a time in the folder, as `run`
    if (!claim.refused().empty()) {
      std::cerr << "wse-emu: error: " << claim.refused() << "\n";
      return kExitBadInput;
    }
    const auto files = b->run(ba);
    for (const auto& f : files) std::cout << (ba.out_dir / f).string() << "\n";
  } catch (const config::ConfigError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "wse-emu: bench '" << name << "' failed: " << error_text(e) << "\n";
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace

std::string error_text(const std::exception& e) {
  std::string text = e.what();
  if (const auto* r = dynamic_cast<const sc_core::sc_report*>(&e)) text = r->get_msg();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string one;
  for (char c : text) {
    if (c == '\n') {
      one += "; ";
    } else {
      one += c;
    }
  }
  return one;
}

namespace {
int dispatch(int argc, char** argv);
}

// No exception reaches SystemC's reporter (which prints on stdout): whatever escapes a
// command ends the program with one last line on stderr and exit 1.
int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const config::ConfigError& e) {
    std::cerr << "wse-emu: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "wse-emu: run failed: " << error_text(e) << "\n";
  } catch (...) {
    std::cerr << "wse-emu: run failed: an unknown exception\n";
  }
  return kExitRunFailed;
}

namespace {

int dispatch(int argc, char** argv) {
  sim::Registry registry;
  register_all(registry);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return kExitBadInput;
  }
  const std::string cmd = args.front();
  args.erase(args.begin());

  if (cmd == "--help" || cmd == "-h") {
    std::cout << kUsage;
    return kExitOk;
  }
  if (cmd == "help") {
    if (args.empty()) {
      std::cout << kUsage;
      return kExitOk;
    }
    const std::string& topic = args.front();
    if (topic == "run")
      print_help(make_run());
    else if (topic == "check")
      print_help(make_check());
    else if (topic == "bench")
      print_help(make_bench());
    else if (topic == "sweep")
      print_help(make_sweep());
    else if (topic == "regress")
      print_help(make_regress());
    else if (topic == "compare")
      print_help(make_compare());
    else if (topic == "plan")
      print_help(make_plan());
    else if (topic == "version" || topic == "list" || topic == "help")
      std::cout << kUsage;
    else
      return usage_error("no help for unknown command '" + topic + "'");
    return kExitOk;
  }
  if (cmd == "version" || cmd == "--version") {
    std::cout << "wse-emu " << WSE_VERSION << "\n"
              << "SystemC " << sc_core::sc_release() << " (TLM-2.0 " << tlm::tlm_release() << ")\n";
    return kExitOk;
  }
  if (cmd == "list") {
    std::cout << "experiment modes (experiment.mode):\n";
    for (const auto& [n, d] : registry.modes()) std::cout << "  " << n << "  " << d << "\n";
    std::cout << "benchmarks (wse-emu bench NAME):\n";
    for (const auto& [n, d] : registry.benches()) std::cout << "  " << n << "  " << d << "\n";
    return kExitOk;
  }
  if (cmd == "run") {
    Command c = make_run();
    po::variables_map vm;
    int code = 0;
    if (!parse(c, args, vm, code)) return code;
    if (!vm.count("experiment")) return usage_error("run: which experiment file?", "run");
    if (!vm.count("out")) return usage_error("run: --out DIR is required", "run");
    RunOptions opt;
    opt.experiment = vm["experiment"].as<std::string>();
    opt.out_dir = vm["out"].as<std::string>();
    opt.overrides = strings(vm, "set");
    opt.trace = vm.count("trace") > 0;
    opt.token_times = vm.count("token-times") > 0;
    opt.quiet = vm.count("quiet") > 0;
    opt.force = vm.count("force") > 0;
    return run_experiment(registry, opt);
  }
  if (cmd == "check") {
    Command c = make_check();
    po::variables_map vm;
    int code = 0;
    if (!parse(c, args, vm, code)) return code;
    if (!vm.count("experiment")) return usage_error("check: which experiment file?", "check");
    return check_experiment(registry, vm["experiment"].as<std::string>(), strings(vm, "set"),
                            vm.count("params") > 0);
  }
  if (cmd == "bench") return cmd_bench(registry, args);
  if (cmd == "sweep") {
    Command c = make_sweep();
    po::variables_map vm;
    int code = 0;
    if (!parse(c, args, vm, code)) return code;
    if (!vm.count("sweep")) return usage_error("sweep: which sweep file?", "sweep");
    SweepOptions opt;
    opt.sweep_file = vm["sweep"].as<std::string>();
    if (const std::optional<int> bad = read_batch_options(vm, "sweep", opt)) return *bad;
    return run_sweep(registry, opt);
  }
  if (cmd == "regress") {
    Command c = make_regress();
    po::variables_map vm;
    int code = 0;
    if (!parse(c, args, vm, code)) return code;
    RegressOptions opt;
    opt.suite = vm["suite"].as<std::string>();
    if (vm.count("out")) opt.out_dir = vm["out"].as<std::string>();
    if (vm.count("only")) opt.only = vm["only"].as<std::string>();
    opt.update = vm.count("update") > 0;
    opt.all = vm.count("all") > 0;
    opt.force = vm.count("force") > 0;
    opt.quiet = vm.count("quiet") > 0;
    return run_regress(opt);
  }

  if (cmd == "compare") {
    Command c = make_compare();
    po::variables_map vm;
    int code = 0;
    if (!parse(c, args, vm, code)) return code;
    if (!vm.count("runs")) return usage_error("compare: which run folders?", "compare");
    CompareOptions opt;
    for (const std::string& r : vm["runs"].as<std::vector<std::string>>()) opt.runs.emplace_back(r);
    if (vm.count("baseline")) opt.baseline = vm["baseline"].as<std::string>();
    opt.out_dir = vm["out"].as<std::string>();
    opt.quiet = vm.count("quiet") > 0;
    return run_compare(opt);
  }

  if (cmd == "plan") {
    Command c = make_plan();
    po::variables_map vm;
    int code = 0;
    if (!parse(c, args, vm, code)) return code;
    if (!vm.count("plan")) return usage_error("plan: which plan file?", "plan");
    PlanOptions opt;
    opt.plan_file = vm["plan"].as<std::string>();
    if (const std::optional<int> bad = read_batch_options(vm, "plan", opt)) return *bad;
    opt.prune = vm.count("no-prune") == 0;
    return run_plan(registry, opt);
  }

  std::vector<std::string> known{"run",     "check", "bench", "sweep",   "regress",
                                 "compare", "plan",  "list",  "version", "help"};
  auto guess = config::did_you_mean(cmd, known);
  return usage_error("unknown command '" + cmd + "'" + (guess ? "; did you mean '" + *guess + "'?" : ""));
}

}  // namespace

}  // namespace wse::app
