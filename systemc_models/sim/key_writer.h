// Appends integers, characters and strings to a cache key with std::to_chars: keys of
// kernel and operator results are built on every lookup (every operator of every step
// that misses a coarser cache), where stream formatting (std::ostringstream) took more
// host time than the lookups themselves. The text is the same as `operator<<` of a
// std::ostream for these types (decimal integers, no padding), so a key written either
// way compares equal.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>

namespace wse::sim {

struct KeyWriter {
  std::string& out;
  template <typename T>
  requires std::is_integral_v<T> &&(!std::is_same_v<T, char>)&&(!std::is_same_v<T, bool>)KeyWriter&
  operator<<(T v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
    return *this;
  }
  KeyWriter& operator<<(char c) {
    out.push_back(c);
    return *this;
  }
  KeyWriter& operator<<(std::string_view v) {
    out.append(v);
    return *this;
  }
};

}  // namespace wse::sim
