// Writing result files so that a reader never sees a half-written one, and so that a
// full disk or an unwritable folder is an error naming the file and the reason, with no
// partial file left behind.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wse::sim {

// An output file or folder could not be written. what() names the path and the
// operating system's reason ("cannot write 'out/stats.json': No space left on device").
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `content` to a temporary file in the same folder (`path` + ".tmp." + pid,
// created exclusively), checks every write, fsyncs it, closes it and renames it onto
// `path`. On any failure the temporary file is removed, `path` is left as it was, and
// OutputError is thrown.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Creates `dir` and its parents; OutputError naming the folder and the reason if it
// cannot (a parent is a regular file, no permission, ...).
void create_output_directory(const std::filesystem::path& dir);

// True if `dir` exists and holds at least one entry (an empty folder is not "in use").
bool directory_in_use(const std::filesystem::path& dir);

// The message of `wse-emu run/bench/sweep --out DIR` when DIR is in use and --force was
// not given.
std::string output_in_use_message(const std::filesystem::path& dir);

// The output folder is claimed by one command at a time (run, sweep, bench, regress): a
// marker `.wse-emu-run.claim` created exclusively (O_EXCL) holding the claimant's pid,
// removed when the command ends. Two commands that both found a new or empty --out
// cannot both write into it; a marker left by a process that no longer exists (killed
// outright) is taken over.
inline constexpr const char* kClaimMarker = ".wse-emu-run.claim";

// Claims `dir` (which must exist). Returns an empty string once claimed, else why not
// (another live process's pid). OutputError if the marker cannot be written.
std::string claim_folder(const std::filesystem::path& dir);

// A claim held for a scope: `refused()` is why not, if the folder is another's; the
// marker is removed on destruction when this claimed it.
class FolderClaim {
 public:
  explicit FolderClaim(std::filesystem::path dir);
  ~FolderClaim();
  FolderClaim(const FolderClaim&) = delete;
  FolderClaim& operator=(const FolderClaim&) = delete;
  const std::string& refused() const { return refused_; }

 private:
  std::filesystem::path dir_;
  std::string refused_;
};

// Builds a CSV file in memory: header once, then rows of already-formatted cells.
class CsvWriter {
 public:
  explicit CsvWriter(std::vector<std::string> header);
  CsvWriter& row(const std::vector<std::string>& cells);
  std::string str() const { return text_; }

 private:
  std::size_t columns_;
  std::string text_;
};

// Formats a double with up to 9 significant digits, deterministic across runs.
std::string fmt_num(double v);

}  // namespace wse::sim
