#include "systemc_models/sim/output.h"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace wse::sim {

namespace fs = std::filesystem;

namespace {

std::string reason(int err) { return std::strerror(err); }

// Writes all of `data` to `fd`, retrying short writes and EINTR; returns 0 or errno.
int write_all(int fd, std::string_view data) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return 0;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0 && errno == EEXIST) {  // left by an earlier process with our pid that died
    ::unlink(tmp.c_str());
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  }
  if (fd < 0) throw OutputError("cannot write '" + path.string() + "': " + reason(errno));
  auto fail = [&](int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw OutputError("cannot write '" + path.string() + "': " + reason(err));
  };
  if (const int err = write_all(fd, content)) fail(err);
  // Some file systems report a full disk only when the data reaches it.
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) fail(errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0 && errno != EINTR) fail(errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(errno);
}

void create_output_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw OutputError("cannot create the output directory '" + dir.string() + "': " + ec.message());
  if (!std::filesystem::is_directory(dir)) {
    throw OutputError("cannot create the output directory '" + dir.string() + "': " + reason(ENOTDIR));
  }
}

bool directory_in_use(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return false;
  if (!std::filesystem::is_directory(dir, ec)) return true;  // a file in the way
  return std::filesystem::directory_iterator(dir, ec) != std::filesystem::directory_iterator();
}

std::string output_in_use_message(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return "output directory '" + dir.string() + "' exists and is not a directory; choose another --out";
  }
  return "output directory '" + dir.string() +
         "' already exists and is not empty; pass --force to write over it, or choose another --out";
}

CsvWriter::CsvWriter(std::vector<std::string> header) : columns_(header.size()) { row(header); }

CsvWriter& CsvWriter::row(const std::vector<std::string>& cells) {
  if (cells.size() != columns_) throw std::logic_error("CSV row has the wrong number of cells");
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i) text_ += ',';
    const std::string& c = cells[i];
    if (c.find_first_of(",\"\n") != std::string::npos) {
      text_ += '"';
      for (char ch : c) {
        if (ch == '"') text_ += '"';
        text_ += ch;
      }
      text_ += '"';
    } else {
      text_ += c;
    }
  }
  text_ += '\n';
  return *this;
}

std::string fmt_num(double v) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.9g", v);
  return buf.data();
}

std::string claim_folder(const fs::path& dir) {
  const fs::path claim = dir / kClaimMarker;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = ::open(claim.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const std::string pid = std::to_string(::getpid()) + "\n";
      const bool ok = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
      ::close(fd);
      if (!ok) throw OutputError("cannot write '" + claim.string() + "': " + std::strerror(errno));
      return "";
    }
    if (errno != EEXIST) throw OutputError("cannot write '" + claim.string() + "': " + std::strerror(errno));
    std::ifstream in(claim);
    long other = 0;
    in >> other;
    if (other > 0 && (::kill(static_cast<pid_t>(other), 0) == 0 || errno == EPERM)) {
      return "output directory '" + dir.string() + "' is being written by another run (pid " +
             std::to_string(other) + "); wait for it to end, or choose another --out";
    }
    ::unlink(claim.c_str());  // left by a process that no longer exists
  }
  return "output directory '" + dir.string() + "' could not be claimed; choose another --out";
}

FolderClaim::FolderClaim(fs::path dir) : dir_(std::move(dir)) { refused_ = claim_folder(dir_); }

FolderClaim::~FolderClaim() {
  if (!refused_.empty()) return;
  std::error_code ec;
  fs::remove(dir_ / kClaimMarker, ec);
}

}  // namespace wse::sim
