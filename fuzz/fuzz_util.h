// Shared by the fuzz targets: what counts as an expected outcome, and scratch files for
// readers that take a path.
//
// A reader given bad input must throw the project's bad-input error (config::ConfigError,
// or UnitError for the unit parsers): that is an expected outcome. Anything else is a
// finding: a crash or sanitizer report (libFuzzer stops on those by itself), a hang
// (-timeout), another exception type escaping, or a broken invariant checked below
// (wse::fuzz::finding aborts, so libFuzzer saves the input).
#pragma once

#include <cxxabi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>
#include <vector>

namespace wse::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "==FUZZ FINDING== %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// For `catch (const std::exception& e)` after the expected types: reports which type escaped.
[[noreturn]] inline void unexpected(const std::exception& e) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status), &std::free);
  finding(std::string("unexpected exception ") + (status == 0 ? name.get() : typeid(e).name()) + ": " +
          e.what());
}

// One folder per process, removed at a normal exit (libFuzzer exits normally at
// -max_total_time / -runs; after a crash it stays in $TMPDIR).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wse-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) finding("cannot create a scratch folder");
    return std::filesystem::path(tmpl);
  }();
  // Registered after `dir` is constructed, so it runs before `dir` is destroyed.
  static const bool cleanup_registered = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return true;
  }();
  (void)cleanup_registered;
  return dir;
}

inline std::filesystem::path write_scratch(const std::string& name, std::string_view text) {
  const auto p = scratch_dir() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) finding("cannot write " + p.string());
  return p;
}

// Splits the input at lines that hold only "%%" (how one input carries several files).
inline std::vector<std::string_view> split_parts(std::string_view text) {
  std::vector<std::string_view> parts;
  constexpr std::string_view kSep = "\n%%\n";
  std::size_t pos = 0;
  while (true) {
    const auto at = text.find(kSep, pos);
    if (at == std::string_view::npos) {
      parts.push_back(text.substr(pos));
      return parts;
    }
    parts.push_back(text.substr(pos, at - pos));
    pos = at + kSep.size();
  }
}

}  // namespace wse::fuzz
