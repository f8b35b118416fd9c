// Fuzz target: the Azure LLM inference CSV request-trace reader (workloads/trace). The input is the
// trace file; the checks are those of fuzz/trace_target.h. Besides, every line's
// TIMESTAMP that parses (parse_azure_timestamp) must write back to the text it was read
// from: its whole seconds, turned into a date and time here (H. Hinnant's
// civil_from_days, independent of the reader's days_from_civil), must equal its first
// 19 characters ('T' read as ' '), and the fraction must lie in [0, 1]. (2023-02-31 used
// to be read as 2023-03-03; a leap second, 60, is the next minute's second 0 and is not
// compared.)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fuzz/trace_target.h"

namespace {

// Seconds since 1970-01-01 -> "YYYY-MM-DD hh:mm:ss".
std::string civil_text(std::int64_t t) {
  std::int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
  const std::int64_t sec = t - days * 86400;
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld", static_cast<long long>(y), m, d,
                static_cast<long long>(sec / 3600), static_cast<long long>(sec / 60 % 60),
                static_cast<long long>(sec % 60));
  return buf;
}

void check_timestamps(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view cell = text.substr(pos, std::min(end, text.find(',', pos)) - pos);
    pos = end + 1;
    if (!cell.empty() && cell.back() == '\r') cell.remove_suffix(1);
    double whole = 0, full = 0;
    if (cell.size() < 19 || !wse::workloads::parse_azure_timestamp(cell.substr(0, 19), whole)) continue;
    if (cell.substr(17, 2) == "60") continue;  // a leap second: the next minute
    std::string written(cell.substr(0, 19));
    if (written[10] == 'T') written[10] = ' ';
    const std::string back = civil_text(static_cast<std::int64_t>(whole));
    if (back != written) wse::fuzz::finding("TIMESTAMP '" + written + "' is read as " + back);
    if (wse::workloads::parse_azure_timestamp(cell, full) && !(full - whole >= 0 && full - whole <= 1))
      wse::fuzz::finding("TIMESTAMP '" + std::string(cell) + "': a fraction outside [0, 1]");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_timestamps(std::string_view(reinterpret_cast<const char*>(data), size));
  return wse::fuzz::fuzz_trace(wse::workloads::TraceFormat::azure_csv, "trace.csv", data, size);
}
