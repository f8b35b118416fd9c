// A component's keys, declared once. One function lists the fields of a configuration
// struct, each with its key name, description, unit and allowed range; the type comes
// from the member and the default from the member's value in a default-constructed
// struct. Everything else is derived from that list:
//
//   struct CacheConfig {
//     bool reuse = true;
//     std::uint32_t threads = 0;
//   };
//   void describe(config::Fields<CacheConfig>& f) {   // found by argument-dependent lookup
//     f.field("reuse", &CacheConfig::reuse, {.doc = "reuse results"});
//     f.field("threads", &CacheConfig::threads, {.doc = "host threads", .unit = "threads", .max = 256});
//   }
//
//   CacheConfig c = config::read<CacheConfig>(section);  // every key, typed, range-checked
//   std::optional<config::Invalid> bad = config::validate(c);  // {key, reason} or nothing
//   std::string k = config::key_of(c);  // "reuse=true;threads=0;": every declared field
//
// The reader reads the keys in the order declared (the order of the resolved document),
// each with the Section method of the member's type: bool (true/false), integers, double,
// std::string, Size, Bandwidth, Frequency, Duration, and enums (declared with their names).
// An unsigned or narrow integer member is also held to its type's range. `validate` checks
// the declared ranges and then the checks across fields (`Fields::check`), and `read`
// reports the first failure at the offending key's file:line:column. `key_of` writes every
// declared field as name=value, so a field added to the declaration is part of every key
// built from it: a cache keyed by it cannot keep a stale entry.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "systemc_models/config/config.h"
#include "systemc_models/units/units.h"

namespace wse::config {

// One declared key: its description, the unit of a plain number (a typed quantity's
// unit is its type's: B, B/s, Hz, s) and the allowed range, in base units.
struct FieldOptions {
  std::string_view doc;
  std::string_view unit = {};
  std::optional<double> min = std::nullopt;
  std::optional<double> max = std::nullopt;
  bool min_exclusive = false;
};

// A value that breaks its declaration: the key and why.
struct Invalid {
  std::string key;
  std::string reason;
  bool operator==(const Invalid&) const = default;
};

// What `schema_of` lists for each declared key.
struct KeyDoc {
  std::string key;
  std::string type;  // "integer", "size", "one of: a, b", ...
  std::string unit;
  std::string def;    // the default as configuration text
  std::string range;  // ">= 0 and <= 256", or empty
  std::string doc;
};

namespace detail {

// Shortest decimal text that reads back as the same double.
inline std::string exact_text(double v) {
  std::array<char, 64> buf{};
  auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  (void)ec;
  return std::string(buf.data(), ptr);
}

inline std::string range_text(const FieldOptions& o, std::string_view unit) {
  auto bound = [&](double b) {
    std::ostringstream os;
    os << b;
    if (!unit.empty()) os << " " << unit;
    return os.str();
  };
  std::string r;
  if (o.min) r += (o.min_exclusive ? "> " : ">= ") + bound(*o.min);
  if (o.min && o.max) r += " and ";
  if (o.max) r += "<= " + bound(*o.max);
  return r;
}

template <class M>
constexpr bool kIsQuantity = std::is_same_v<M, Size> || std::is_same_v<M, Bandwidth> ||
                             std::is_same_v<M, Frequency> || std::is_same_v<M, Duration>;

// The value in base units, for the range.
template <class M>
double magnitude(const M& v) {
  if constexpr (std::is_same_v<M, Size>) {
    return static_cast<double>(v.bytes);
  } else if constexpr (std::is_same_v<M, Bandwidth>) {
    return v.bytes_per_s;
  } else if constexpr (std::is_same_v<M, Frequency>) {
    return v.hz;
  } else if constexpr (std::is_same_v<M, Duration>) {
    return v.seconds;
  } else {
    return static_cast<double>(v);
  }
}

template <class M>
std::string_view base_unit(const FieldOptions& o) {
  if constexpr (std::is_same_v<M, Size>) {
    return "B";
  } else if constexpr (std::is_same_v<M, Bandwidth>) {
    return "B/s";
  } else if constexpr (std::is_same_v<M, Frequency>) {
    return "Hz";
  } else if constexpr (std::is_same_v<M, Duration>) {
    return "s";
  } else {
    return o.unit;
  }
}

template <class M>
std::string type_name() {
  if constexpr (std::is_same_v<M, bool>) {
    return "boolean";
  } else if constexpr (std::is_integral_v<M>) {
    return "integer";
  } else if constexpr (std::is_floating_point_v<M>) {
    return "number";
  } else if constexpr (std::is_same_v<M, std::string>) {
    return "string";
  } else if constexpr (std::is_same_v<M, Size>) {
    return "size";
  } else if constexpr (std::is_same_v<M, Bandwidth>) {
    return "bandwidth";
  } else if constexpr (std::is_same_v<M, Frequency>) {
    return "frequency";
  } else {
    return "time";
  }
}

// A value as configuration text: what the resolved document shows as a default and
// what a key holds.
template <class M>
std::string text_of(const M& v) {
  if constexpr (std::is_same_v<M, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_integral_v<M>) {
    return std::to_string(v);
  } else if constexpr (std::is_floating_point_v<M>) {
    return exact_text(static_cast<double>(v));
  } else if constexpr (std::is_same_v<M, std::string>) {
    return v;
  } else {
    return to_string(v);
  }
}

// The declared range, narrowed to what an integer member can hold.
template <class M>
FieldOptions with_type_range(FieldOptions o) {
  if constexpr (std::is_integral_v<M> && !std::is_same_v<M, bool>) {
    constexpr auto lo = static_cast<double>(std::numeric_limits<M>::min());
    // The largest integer member a double holds exactly enough to compare with.
    constexpr double hi = std::numeric_limits<M>::digits >= 53
                              ? static_cast<double>(std::numeric_limits<std::int64_t>::max())
                              : static_cast<double>(std::numeric_limits<M>::max());
    if (!o.min || *o.min < lo) {
      o.min = lo;
      o.min_exclusive = false;
    }
    if (!o.max || *o.max > hi) o.max = hi;
  }
  return o;
}

}  // namespace detail

// The declared fields of T. A component provides `void describe(Fields<T>&)` in T's
// namespace; `fields_of<T>()` runs it once.
template <class T>
class Fields {
 public:
  struct Field {
    std::string key;
    FieldOptions options;  // as declared
    std::string type;
    std::string unit;
    std::function<void(Section&, T&, const T& defaults)> read;
    std::function<std::string(const T&)> text;                  // the value as configuration text
    std::function<std::optional<std::string>(const T&)> check;  // why the value is out of range
  };

  // A key held in member `m`.
  template <class M>
  requires(!std::is_enum_v<M>) Fields& field(std::string_view key, M T::*m, FieldOptions o) {
    static_assert(std::is_arithmetic_v<M> || std::is_same_v<M, std::string> || detail::kIsQuantity<M>,
                  "a declared field is bool, an integer, double, std::string, Size, Bandwidth, "
                  "Frequency or Duration (or an enum with its names)");
    Field f{std::string(key), o, detail::type_name<M>(), std::string(detail::base_unit<M>(o)), {}, {}, {}};
    const FieldOptions ranged = detail::with_type_range<M>(o);
    const std::string name(key);
    f.read = [m, name, ranged](Section& s, T& c, const T& defaults) {
      const std::string def = detail::text_of(defaults.*m);
      const Param p{.doc = ranged.doc,
                    .def = def,
                    .min = ranged.min,
                    .max = ranged.max,
                    .min_exclusive = ranged.min_exclusive};
      if constexpr (std::is_same_v<M, bool>) {
        c.*m = s.boolean(name, p);
      } else if constexpr (std::is_integral_v<M>) {
        c.*m = static_cast<M>(s.integer(name, p));
      } else if constexpr (std::is_floating_point_v<M>) {
        c.*m = static_cast<M>(s.number(name, p));
      } else if constexpr (std::is_same_v<M, std::string>) {
        c.*m = s.string(name, p);
      } else if constexpr (std::is_same_v<M, Size>) {
        c.*m = s.size(name, p);
      } else if constexpr (std::is_same_v<M, Bandwidth>) {
        c.*m = s.bandwidth(name, p);
      } else if constexpr (std::is_same_v<M, Frequency>) {
        c.*m = s.frequency(name, p);
      } else {
        c.*m = s.duration(name, p);
      }
    };
    f.text = [m](const T& c) { return detail::text_of(c.*m); };
    if constexpr (std::is_same_v<M, bool> || std::is_same_v<M, std::string>) {
      f.check = [](const T&) -> std::optional<std::string> { return std::nullopt; };  // no range
    } else {
      f.check = [m, ranged, unit = f.unit](const T& c) -> std::optional<std::string> {
        const double v = detail::magnitude(c.*m);
        const bool below = ranged.min && (ranged.min_exclusive ? v <= *ranged.min : v < *ranged.min);
        const bool above = ranged.max && v > *ranged.max;
        if (below || above || std::isnan(v)) {
          return "value '" + detail::text_of(c.*m) +
                 "' is out of range; allowed: " + detail::range_text(ranged, unit);
        }
        return std::nullopt;
      };
    }
    fields_.push_back(std::move(f));
    return *this;
  }

  // A key held in enum member `m`, written as one of `names`.
  template <class E>
  requires std::is_enum_v<E> Fields& field(
      std::string_view key, E T::*m, FieldOptions o,
      std::initializer_list<std::pair<std::string_view, std::type_identity_t<E>>> names) {
    std::vector<std::pair<std::string, E>> table;
    std::string type = "one of:";
    for (const auto& [n, e] : names) {
      table.emplace_back(std::string(n), e);
      type += (table.size() == 1 ? " " : ", ") + std::string(n);
    }
    auto name_of = [table](E e) {
      for (const auto& [n, v] : table) {
        if (v == e) return n;
      }
      return std::to_string(static_cast<std::underlying_type_t<E>>(e));  // not in the table
    };
    Field f{std::string(key), o, type, std::string(o.unit), {}, {}, {}};
    const std::string name(key);
    f.read = [m, name, o, table, name_of](Section& s, T& c, const T& defaults) {
      const std::string def = name_of(defaults.*m);
      std::vector<std::string_view> choices;
      choices.reserve(table.size());
      for (const auto& t : table) choices.push_back(t.first);
      c.*m = table[s.choice(name, Param{.doc = o.doc, .def = def}, choices)].second;
    };
    f.text = [m, name_of](const T& c) { return name_of(c.*m); };
    f.check = [m, table, name_of](const T& c) -> std::optional<std::string> {
      for (const auto& t : table) {
        if (t.second == c.*m) return std::nullopt;
      }
      std::string allowed;
      for (const auto& t : table) allowed += (allowed.empty() ? "" : ", ") + t.first;
      return "value " + name_of(c.*m) + " is not one of the names; allowed: " + allowed;
    };
    fields_.push_back(std::move(f));
    return *this;
  }

  // A check across fields, run by `validate` after the declared ranges: the offending
  // key and why, or nothing.
  Fields& check(std::function<std::optional<Invalid>(const T&)> c) {
    checks_.push_back(std::move(c));
    return *this;
  }

  const std::vector<Field>& fields() const { return fields_; }
  const std::vector<std::function<std::optional<Invalid>(const T&)>>& checks() const { return checks_; }

 private:
  std::vector<Field> fields_;
  std::vector<std::function<std::optional<Invalid>(const T&)>> checks_;
};

// T's declaration, built once.
template <class T>
const Fields<T>& fields_of() {
  static const Fields<T> fields = [] {
    Fields<T> f;
    describe(f);  // the component's declaration, found by argument-dependent lookup
    return f;
  }();
  return fields;
}

// The first declared key whose value is out of its range, then the first failing check
// across fields; nothing when `c` is valid.
template <class T>
std::optional<Invalid> validate(const T& c) {
  const Fields<T>& fs = fields_of<T>();
  for (const auto& f : fs.fields()) {
    if (auto why = f.check(c)) return Invalid{f.key, *why};
  }
  for (const auto& check : fs.checks()) {
    if (auto bad = check(c)) return bad;
  }
  return std::nullopt;
}

// Reads every declared key of T from `s`, in the order declared; a key not written
// takes its value in `defaults` (the default-constructed T unless given: a receiver
// that defaults to its sender's values). Then validates, and raises a ConfigError at
// the offending key.
template <class T>
T read(Section& s, const T& defaults = T{}) {
  T c = defaults;
  for (const auto& f : fields_of<T>().fields()) f.read(s, c, defaults);
  if (auto bad = config::validate(c)) s.fail(bad->key, bad->reason);
  return c;
}

// Every declared field of `c` as "key=value;", in the order declared: a key for a cache
// of results that depend on T.
template <class T>
std::string key_of(const T& c) {
  std::string k;
  for (const auto& f : fields_of<T>().fields()) {
    k += f.key;
    k += '=';
    for (const char ch : f.text(c)) {  // a string value may hold the separators
      if (ch == ';' || ch == '\\') k += '\\';
      k += ch;
    }
    k += ';';
  }
  return k;
}

// The declared keys with their type, unit, default, range and description.
template <class T>
std::vector<KeyDoc> schema_of() {
  const T d{};
  std::vector<KeyDoc> out;
  for (const auto& f : fields_of<T>().fields()) {
    out.push_back(KeyDoc{f.key, f.type, f.unit, f.text(d), detail::range_text(f.options, f.unit),
                         std::string(f.options.doc)});
  }
  return out;
}

}  // namespace wse::config
