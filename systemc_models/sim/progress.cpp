#include "systemc_models/sim/progress.h"

#include <cstdio>

#include <unistd.h>

namespace wse::sim {

Progress::Progress(bool enabled, double total_work, std::string unit)
    : enabled_(enabled),
      total_(total_work),
      unit_(std::move(unit)),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) != 0; }

void Progress::update(double simulated_s, double work_done) {
  if (!enabled_) return;
  // Look at the wall clock only every 256 calls: update() sits on hot paths.
  if ((++calls_ & 0xFFU) != 0) return;
  update_every_call(simulated_s, work_done);
}

void Progress::update_every_call(double simulated_s, double work_done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  const double wall = std::chrono::duration<double>(now - start_).count();
  const double rate = wall > 0 ? work_done / wall : 0.0;
  if (total_ > 0) {
    const double eta = rate > 0 ? (total_ - work_done) / rate : 0.0;
    std::fprintf(stderr, "\r  sim %.6g s | %.0f/%.0f %s (%.0f%%) | %.3g %s/s | ETA %.0f s   ", simulated_s,
                 work_done, total_, unit_.c_str(), 100.0 * work_done / total_, rate, unit_.c_str(), eta);
  } else {
    std::fprintf(stderr, "\r  sim %.6g s | %.0f %s | %.3g %s/s   ", simulated_s, work_done, unit_.c_str(),
                 rate, unit_.c_str());
  }
  drawn_ = true;
}

void Progress::finish() {
  if (enabled_ && drawn_) std::fprintf(stderr, "\r%*s\r", 90, "");
  drawn_ = false;
}

}  // namespace wse::sim
