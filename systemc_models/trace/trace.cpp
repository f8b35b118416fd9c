#include "systemc_models/trace/trace.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "systemc_models/sim/output.h"

namespace wse::trace {

namespace {
// Trace-event timestamps are microseconds; keep picosecond resolution.
double us(double seconds) { return seconds * 1e6; }
constexpr std::size_t kBlock = 1 << 20;  // bytes buffered between writes
// The file being written, named after the process as write_file_atomic's are, so that
// two processes never share one and an interrupted run's leftover is recognizable.
std::string temporary(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }
}  // namespace

Writer::Writer() = default;

Writer::Writer(std::string path) { open(std::move(path)); }

void Writer::open(std::string path) {
  if (open_) throw std::logic_error("trace writer opened twice");
  path_ = std::move(path);
  const std::string tmp = temporary(path_);
  fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) throw sim::OutputError("cannot write trace file '" + path_ + "': " + std::strerror(errno));
  buffer_.insert(0, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
  open_ = true;
  error_ = 0;
  if (buffer_.size() >= kBlock) flush_buffer();
}

void Writer::flush_buffer() {
  // After a failure nothing more is written; finish() reports the first error.
  std::size_t done = 0;
  while (error_ == 0 && done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

void Writer::emit(const std::string& text) {
  buffer_ += text;
  if (open_ && buffer_.size() >= kBlock) flush_buffer();
}

Writer::~Writer() {
  if (open_) abandon();
}

void Writer::begin_event() {
  if (events_ > 0) emit(",\n");
  ++events_;
}

std::uint32_t Writer::process_id(std::string_view process) {
  auto it = processes_.find(process);
  if (it != processes_.end()) return it->second;
  const auto pid = static_cast<std::uint32_t>(processes_.size() + 1);
  processes_.emplace(std::string(process), pid);
  begin_event();
  emit(nlohmann::json{{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"args", {{"name", process}}}}
           .dump());
  return pid;
}

TrackId Writer::track(std::string_view process, std::string_view track) {
  const std::uint32_t pid = process_id(process);
  auto key = std::make_pair(pid, std::string(track));
  auto it = tracks_.find(key);
  if (it != tracks_.end()) return it->second;
  const auto id = static_cast<TrackId>(track_process_.size());
  track_process_.push_back(pid);
  tracks_.emplace(std::move(key), id);
  begin_event();
  emit(nlohmann::json{
      {"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", id + 1}, {"args", {{"name", track}}}}
           .dump());
  return id;
}

void Writer::slice(TrackId track, std::string_view name, double start_s, double duration_s,
                   const std::vector<std::pair<std::string, std::string>>& args) {
  nlohmann::json e{{"ph", "X"},        {"name", name},      {"pid", track_process_.at(track)},
                   {"tid", track + 1}, {"ts", us(start_s)}, {"dur", us(duration_s)}};
  if (!args.empty()) {
    nlohmann::json a = nlohmann::json::object();
    for (const auto& [k, v] : args) a[k] = v;
    e["args"] = std::move(a);
  }
  begin_event();
  emit(e.dump());
}

void Writer::instant(TrackId track, std::string_view name, double at_s) {
  begin_event();
  emit(nlohmann::json{{"ph", "i"},
                      {"s", "t"},
                      {"name", name},
                      {"pid", track_process_.at(track)},
                      {"tid", track + 1},
                      {"ts", us(at_s)}}
           .dump());
}

void Writer::counter(std::string_view process, std::string_view name, double at_s, double value) {
  const std::uint32_t pid = process_id(process);
  begin_event();
  emit(nlohmann::json{
      {"ph", "C"}, {"name", name}, {"pid", pid}, {"ts", us(at_s)}, {"args", {{"value", value}}}}
           .dump());
}

void Writer::flow(std::uint64_t flow_id, TrackId track, double at_s, bool first, bool last) {
  const char* ph = first ? "s" : (last ? "f" : "t");
  nlohmann::json e{{"ph", ph},
                   {"id", flow_id},
                   {"name", "request"},
                   {"cat", "request"},
                   {"pid", track_process_.at(track)},
                   {"tid", track + 1},
                   {"ts", us(at_s)}};
  if (last) e["bp"] = "e";
  begin_event();
  emit(e.dump());
}

void Writer::finish() {
  if (!open_) throw std::logic_error("trace writer finished before it was opened");
  buffer_ += "\n]}\n";
  flush_buffer();
  if (error_ == 0 && ::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) error_ = errno;
  if (::close(fd_) != 0 && error_ == 0 && errno != EINTR) error_ = errno;
  fd_ = -1;
  open_ = false;
  const std::string tmp = temporary(path_);
  if (error_ == 0 && std::rename(tmp.c_str(), path_.c_str()) != 0) error_ = errno;
  if (error_ != 0) {
    ::unlink(tmp.c_str());
    throw sim::OutputError("cannot write trace file '" + path_ + "': " + std::strerror(error_));
  }
}

void Writer::abandon() {
  if (!open_) return;
  ::close(fd_);
  fd_ = -1;
  open_ = false;
  buffer_.clear();
  ::unlink(temporary(path_).c_str());
}

}  // namespace wse::trace
