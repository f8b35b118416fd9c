// Timeline traces in the Chrome/Perfetto trace-event JSON format (opens in
// ui.perfetto.dev). Off by default: models hold a `trace::Writer*` that is null when
// tracing is off, so the cost of a disabled trace is one pointer test.
//
// Each resource gets its own track (a "thread" in trace-event terms) grouped under a
// process (the machine or module it belongs to). Events are streamed to a temporary
// file and renamed into place by finish(), so an aborted run leaves no trace.json. A
// write that fails (a full disk) is remembered and reported by finish(), which then
// removes the temporary file: no truncated trace.json is ever left.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wse::trace {

using TrackId = std::uint32_t;

class Writer {
 public:
  // Opens `path` + ".tmp" for writing; throws sim::OutputError (a std::runtime_error
  // naming the file and the reason) on failure.
  explicit Writer(std::string path);
  // A writer whose file is opened later by open(): events recorded before (track
  // names registered while modules are built) are kept in memory until then. This
  // lets modules be elaborated before the output directory exists.
  Writer();
  void open(std::string path);
  bool is_open() const { return open_; }
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // A track named `track` inside the group `process` (created on first use; the same
  // names give the same id).
  TrackId track(std::string_view process, std::string_view track);

  // A slice [start_s, start_s + duration_s) on `track`. `args` are shown in the UI.
  void slice(TrackId track, std::string_view name, double start_s, double duration_s,
             const std::vector<std::pair<std::string, std::string>>& args = {});
  // A point event.
  void instant(TrackId track, std::string_view name, double at_s);
  // A counter track sample (plotted as a step function).
  void counter(std::string_view process, std::string_view name, double at_s, double value);
  // A flow arrow linking slices of one logical item (a request) across tracks.
  void flow(std::uint64_t flow_id, TrackId track, double at_s, bool first, bool last);

  std::uint64_t events_written() const { return events_; }
  // Closes the JSON array, flushes, fsyncs and renames the temporary file to `path`;
  // throws sim::OutputError (temporary file removed) if any write failed.
  void finish();
  // Deletes the temporary file (an aborted run).
  void abandon();

 private:
  void begin_event();
  void emit(const std::string& text);
  void flush_buffer();
  std::uint32_t process_id(std::string_view process);

  std::string path_;
  int fd_ = -1;
  std::string buffer_;  // events recorded before open(), then written in blocks
  int error_ = 0;       // errno of the first failed write (0: none)
  bool open_ = false;
  std::uint64_t events_ = 0;
  std::map<std::string, std::uint32_t, std::less<>> processes_;
  std::map<std::pair<std::uint32_t, std::string>, TrackId> tracks_;
  std::vector<std::uint32_t> track_process_;
};

}  // namespace wse::trace
