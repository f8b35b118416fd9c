// Progress of a long run on stderr: simulated time, work done, rate and ETA. Shown only
// when stderr is a terminal and --quiet is not given; updates at most a few times per
// wall second, so calling update() often is cheap.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace wse::sim {

class Progress {
 public:
  // `total_work` in `unit`s (e.g. 1000 "requests"); 0 when unknown.
  Progress(bool enabled, double total_work, std::string unit);
  void set_total(double total_work, std::string unit) {
    total_ = total_work;
    unit_ = std::move(unit);
  }
  void update(double simulated_s, double work_done);
  // The same for callers off the hot path (a request ended): looks at the wall clock on
  // every call, not every 256th, so that a slow run draws its line too.
  void update_every_call(double simulated_s, double work_done);
  void finish();
  bool enabled() const { return enabled_; }
  // True when stderr is a terminal (progress is worth drawing).
  static bool stderr_is_terminal();

 private:
  bool enabled_;
  double total_;
  std::string unit_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  std::uint64_t calls_ = 0;
  bool drawn_ = false;
};

}  // namespace wse::sim
