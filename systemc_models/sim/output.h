// Writing result files so that a reader never sees a half-written one.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace wse::sim {

// Writes `content` to `path` + ".tmp", then renames it onto `path`.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

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
