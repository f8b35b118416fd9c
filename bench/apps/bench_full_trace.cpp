// Speed and memory of a whole-trace run: runs `wse-emu run` on an experiment (default:
// configs/experiments/default.yaml) with the request limit lifted (the whole Azure
// conversation trace, 19,366 requests), and reports wall time, peak resident memory of
// the run, simulated seconds, and simulated seconds per wall second.
//
//   build/bin/bench_full_trace [EXPERIMENT.yaml] [--set key=value ...]
//
// The child process is measured with wait4's rusage, so the figure is that of the
// simulator alone.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path source = WSE_SOURCE_DIR;
  const fs::path binary = WSE_BINARY_DIR;
  std::string experiment = (source / "configs/experiments/default.yaml").string();
  std::vector<std::string> extra;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--set" && i + 1 < argc) {
      extra.push_back("--set");
      extra.push_back(argv[++i]);
    } else {
      experiment = a;
    }
  }
  const fs::path out = fs::temp_directory_path() / ("wse_full_trace_" + std::to_string(::getpid()));
  std::vector<std::string> args = {
      (binary / "bin/wse-emu").string(), "run", experiment, "--out", out.string(), "--set",
      "workload.trace.limit=0"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);

  std::printf("running:");
  for (const auto& a : args) std::printf(" %s", a.c_str());
  std::printf("\n");
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::freopen("/dev/null", "w", stdout);
    ::execv(cargs[0], cargs.data());
    std::perror("execv");
    std::_Exit(127);
  }
  int status = 0;
  struct rusage ru {};
  ::wait4(pid, &status, 0, &ru);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "wse-emu failed (status %d)\n", status);
    return 1;
  }
  std::ifstream in(out / "summary.json");
  const nlohmann::json s = nlohmann::json::parse(in);
  const double simulated = s.value("simulated_time_s", 0.0);
  const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  std::printf("requests          %s\n", s["requests"].value("completed", nlohmann::json()).dump().c_str());
  std::printf("wall time         %.2f s (CPU %.2f s)\n", wall, cpu);
  std::printf("peak memory       %.1f MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  std::printf("simulated time    %.1f s\n", simulated);
  std::printf("simulated/wall    %.1f\n", wall > 0 ? simulated / wall : 0.0);
  fs::remove_all(out);
  return 0;
}
