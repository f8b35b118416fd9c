#include "systemc_models/sim/output.h"

#include <array>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace wse::sim {

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot open '" + tmp.string() + "' for writing");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw std::runtime_error("cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
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

}  // namespace wse::sim
