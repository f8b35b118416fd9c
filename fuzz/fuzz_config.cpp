// Fuzz target: the configuration loader (systemc_models/config): YAML and JSON syntax,
// `include:` of other files, merging, `--set` overrides, then reading through the
// schema API and writing the resolved document.
//
// Input layout: parts separated by lines holding only "%%":
//   part 0       main.yaml
//   part 1       written both as inc.yaml and inc.json (the main file may include either)
//   part 2       one --set override per line
// Every key found is read as each kind of value (size, bandwidth, ..., path, lists,
// sections), catching the ConfigError of the kinds it is not. The resolved document
// (`wse-emu check`) must load again: it is documented to run to the same result.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "systemc_models/config/config.h"

namespace {

namespace config = wse::config;
using wse::fuzz::finding;
using wse::fuzz::unexpected;

template <class F>
void tolerate_config_error(F&& f) {
  try {
    f();
  } catch (const config::ConfigError&) {
  }
}

void read_everything(config::Section& s, const config::Node& node) {
  // Keys are copied first: reading never changes the input tree, but stay safe.
  std::vector<std::pair<std::string, config::NodePtr>> entries = node.map;
  for (const auto& entry : entries) {
    const std::string& key = entry.first;
    const config::NodePtr& value = entry.second;
    if (value->kind == config::Node::Kind::Map) {
      tolerate_config_error([&] {
        config::Section c = s.section(key, "fuzzed section");
        read_everything(c, *value);
      });
      continue;
    }
    if (value->kind == config::Node::Kind::Seq) {
      tolerate_config_error([&] {
        std::vector<config::Section> list = s.section_list(key, "fuzzed list");
        for (std::size_t i = 0; i < list.size(); ++i) read_everything(list[i], *value->seq[i]);
      });
      tolerate_config_error([&] { (void)s.string_list(key, {.doc = "fuzzed strings"}); });
      tolerate_config_error([&] { (void)s.integer_list(key, {.doc = "fuzzed integers", .min = -5}); });
      continue;
    }
    const config::Param p{.doc = "fuzzed", .def = "1"};
    tolerate_config_error([&] { (void)s.size(key, {.doc = "size", .def = "1 B", .min = 0}); });
    tolerate_config_error(
        [&] { (void)s.bandwidth(key, {.doc = "bw", .def = "1 B/s", .min = 0, .min_exclusive = true}); });
    tolerate_config_error([&] { (void)s.frequency(key, {.doc = "f", .def = "1 Hz", .max = 1e12}); });
    tolerate_config_error([&] { (void)s.duration(key, {.doc = "t", .def = "1 ns"}, wse::Frequency{1e9}); });
    tolerate_config_error([&] { (void)s.integer(key, {.doc = "i", .def = "1", .min = -1e6, .max = 1e18}); });
    tolerate_config_error([&] { (void)s.number(key, {.doc = "x", .def = "1.5", .min = 0}); });
    tolerate_config_error([&] { (void)s.boolean(key, {.doc = "b", .def = "false"}); });
    tolerate_config_error([&] { (void)s.enumeration<int>(key, p, {{"one", 1}, {"two", 2}, {"three", 3}}); });
    tolerate_config_error([&] { (void)s.path(key, {.doc = "path", .def = "file.txt"}); });
    tolerate_config_error([&] { (void)s.string(key, p); });
  }
  tolerate_config_error([&] { (void)s.optional_section("absent_section", "never written"); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> parts = wse::fuzz::split_parts(text);
  const auto main_file = wse::fuzz::write_scratch("main.yaml", parts[0]);
  const std::string_view included = parts.size() > 1 ? parts[1] : std::string_view("x: 1\n");
  wse::fuzz::write_scratch("inc.yaml", included);
  wse::fuzz::write_scratch("inc.json", included);
  std::vector<std::string> overrides;
  if (parts.size() > 2) {
    std::string_view rest = parts[2];
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }
  try {
    config::Document doc = config::load(main_file, overrides);
    config::Section root = doc.root();
    read_everything(root, *doc.tree());
    tolerate_config_error([&] { doc.finish(); });
    const std::string resolved = doc.resolved_yaml();
    const auto again = wse::fuzz::write_scratch("resolved.yaml", resolved);
    try {
      (void)config::load(again);
    } catch (const config::ConfigError& e) {
      finding(std::string("the resolved document does not load again: ") + e.what() + "\n--- resolved:\n" +
              resolved);
    }
  } catch (const config::ConfigError&) {
    // bad input, reported with file, line and key
  } catch (const std::exception& e) {
    unexpected(e);
  }
  return 0;
}
