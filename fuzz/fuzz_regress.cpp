// Fuzz target: the regression suite and reference readers of `wse-emu regress`
// (apps/wse-emu/regress_command.h). The input is two files separated by a line `%%`:
// the suite (written as suite.yaml next to a base experiment `base.yaml`) and a
// reference JSON (written as refs/a.json and refs/b.json, the references of experiments
// named `a` or `b`). Bad input must be an InputFileError naming the file, or a
// config::ConfigError located in the suite (the suite is read through the configuration
// language); a raw yaml-cpp or JSON exception (a message naming neither file nor key)
// or any other type is a finding. A suite that reads returns the number of figures of its references.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "apps/wse-emu/regress_command.h"
#include "apps/wse-emu/sweep_command.h"
#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"

using wse::fuzz::finding;
using wse::fuzz::unexpected;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto base = wse::fuzz::write_scratch("base.yaml", "a: 1\n");
  static const bool refs = std::filesystem::create_directories(wse::fuzz::scratch_dir() / "refs");
  (void)refs;
  const auto parts = wse::fuzz::split_parts(std::string_view(reinterpret_cast<const char*>(data), size));
  const auto suite = wse::fuzz::write_scratch("suite.yaml", parts[0]);
  const std::string ref = parts.size() > 1 ? std::string(parts[1]) : std::string();
  wse::fuzz::write_scratch("refs/a.json", ref);
  wse::fuzz::write_scratch("refs/b.json", ref);
  try {
    (void)wse::app::check_regress_suite(suite);
  } catch (const wse::app::InputFileError& e) {
    const std::string what = e.what();
    if (what.find(suite.string()) == std::string::npos && what.find("refs/") == std::string::npos &&
        what.find("regression suite '") != 0)
      finding("a suite or reference error that names no file: " + what);
  } catch (const wse::config::ConfigError& e) {
    // The suite is read through the configuration language: its errors name the suite's
    // file:line:column and the key path.
    if (e.source().file != suite.string())
      finding("a suite error that names another file: " + std::string(e.what()));
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
