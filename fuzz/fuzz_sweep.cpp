// Fuzz target: the sweep file reader of `wse-emu sweep` (apps/wse-emu/sweep_command.h).
// The input is the sweep file, written next to a base experiment `base.yaml` (so that
// `experiment: base.yaml` exists). Bad input must be an InputFileError naming the file,
// or a config::ConfigError located in a file (the sweep is read through the
// configuration language: the sweep file, or a file it includes); a raw yaml-cpp
// exception (a message without the key), an error located nowhere or any other type is
// a finding.
// A sweep that reads must have between 1 and 100,000 points, every point the same
// number of overrides, each KEY=VALUE with a key path a.b.c, and every override must be
// accepted or refused as bad input (ConfigError) by the configuration loader, as
// `wse-emu sweep` validates each point.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/wse-emu/sweep_command.h"
#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"

using wse::fuzz::finding;
using wse::fuzz::unexpected;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto base = wse::fuzz::write_scratch("base.yaml", "a: 1\nb: {c: 2}\n");
  const auto file =
      wse::fuzz::write_scratch("sweep.yaml", std::string(reinterpret_cast<const char*>(data), size));
  try {
    const std::vector<std::vector<std::string>> points = wse::app::sweep_points(file);
    if (points.empty() || points.size() > 100000) finding(std::to_string(points.size()) + " points");
    for (const auto& p : points) {
      if (p.size() != points.front().size()) finding("points with different numbers of overrides");
      for (const auto& o : p) {
        const auto eq = o.find('=');
        if (eq == std::string::npos || eq == 0 || o[0] == '.' || o[eq - 1] == '.')
          finding("override '" + o + "' is not KEY=VALUE with a key path");
      }
    }
    // The first and the last point, through the configuration loader as `sweep` does.
    for (const auto* p : {&points.front(), &points.back()}) {
      try {
        wse::config::Document doc = wse::config::load(base, *p);
        (void)doc;
      } catch (const wse::config::ConfigError&) {
        // the point is invalid: `sweep` reports it before running anything
      }
    }
  } catch (const wse::app::InputFileError& e) {
    if (std::string(e.what()).find(file.string()) == std::string::npos &&
        std::string(e.what()).find("sweep file '") != 0)
      finding(std::string("a sweep file error that does not name the file: ") + e.what());
  } catch (const wse::config::ConfigError& e) {
    std::error_code ec;
    if (e.source().file != file.string() && !std::filesystem::is_regular_file(e.source().file, ec))
      finding("a sweep file error located in no file: " + std::string(e.what()));
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
