// Reading results.csv in the sweep tests, and running shell commands.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/cli_harness.h"

namespace wse::testing {

struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  const std::string& at(std::size_t row, const std::string& column) const {
    for (std::size_t c = 0; c < header.size(); ++c) {
      if (header[c] == column) return rows.at(row).at(c);
    }
    throw std::out_of_range("no column " + column);
  }
  bool operator==(const Csv&) const = default;
};

// RFC 4180 cells: quoted cells may hold commas, quotes ("") and newlines.
inline Csv read_csv(const std::filesystem::path& file) {
  const std::string text = slurp(file);
  std::vector<std::vector<std::string>> lines(1);
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"')
        cell += '"', ++i;
      else if (ch == '"')
        quoted = false;
      else
        cell += ch;
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      lines.back().push_back(cell), cell.clear();
    } else if (ch == '\n') {
      lines.back().push_back(cell), cell.clear();
      lines.emplace_back();
    } else if (ch != '\r') {
      cell += ch;
    }
  }
  if (!cell.empty() || !lines.back().empty()) lines.back().push_back(cell);
  if (lines.back().empty()) lines.pop_back();
  Csv csv;
  if (lines.empty()) return csv;
  csv.header = lines.front();
  csv.rows.assign(lines.begin() + 1, lines.end());
  return csv;
}

inline Csv without_column(Csv csv, const std::string& column) {
  for (std::size_t c = 0; c < csv.header.size(); ++c) {
    if (csv.header[c] != column) continue;
    csv.header.erase(csv.header.begin() + static_cast<long>(c));
    for (auto& r : csv.rows) r.erase(r.begin() + static_cast<long>(c));
    break;
  }
  return csv;
}

// Runs `cmd` with sh from the source folder; captures exit status, stdout and stderr.
inline Result shell(const std::string& cmd, const std::filesystem::path& scratch) {
  std::filesystem::create_directories(scratch);
  const auto out = scratch / "stdout.txt";
  const auto err = scratch / "stderr.txt";
  const std::string full = "cd '" + std::string(WSE_SOURCE_DIR) + "' && ( " + cmd + " ) >'" + out.string() +
                           "' 2>'" + err.string() + "'";
  const int status = std::system(full.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

inline std::string wse_emu_path() { return std::string(WSE_BINARY_DIR) + "/bin/wse-emu"; }

}  // namespace wse::testing
