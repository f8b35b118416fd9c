// The configuration language: YAML files with units, includes and overrides, read
// through a schema so that every key is typed, range-checked, documented and
// accounted for.
//
//   config::Document doc = config::load("configs/experiments/default.yaml", {"a.b=3"});
//   config::Section hw = doc.root().section("hardware", "the machines");
//   Bandwidth bw = hw.bandwidth("line_rate", {.doc = "adapter line rate", .def = "100 Gb/s",
//                                             .min = 0, .min_exclusive = true});
//   doc.finish();   // unknown keys -> ConfigError with "did you mean"
//
// Loading resolves `include:` (a path or a list of paths, relative to the including
// file) at any mapping level: the included files are merged in order, then the
// mapping's own keys override them. Files ending in .json (Hugging Face config.json)
// are read as they are; keys of such "foreign" files that the schema does not read are
// reported as notes, not errors. Every value keeps its file, line and column so that
// each error names them together with the key path, what was found and what is
// allowed. Reading a key records it, with its default written out, in the resolved
// document that `wse-emu check` prints; feeding that output back gives the same run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "systemc_models/units/units.h"

namespace wse::config {

// Where a value was written. `file` is "--set" for command-line overrides and
// "<default>" for a schema default; line and column are 1-based (0 when unknown).
struct Source {
  std::string file;
  int line = 0;
  int column = 0;
  std::string where() const;  // "file:line:column" or "--set"
};

class ConfigError : public std::runtime_error {
 public:
  ConfigError(Source source, std::string key_path, std::string message);
  const Source& source() const { return source_; }
  const std::string& key_path() const { return key_path_; }
  const std::string& detail() const { return detail_; }

 private:
  Source source_;
  std::string key_path_;
  std::string detail_;
};

// A node of the merged configuration tree.
struct Node {
  enum class Kind { Null, Scalar, Map, Seq };
  Kind kind = Kind::Null;
  std::string scalar;
  bool quoted = false;  // the scalar was written in quotes (so "3" is a string, not a number)
  std::vector<std::pair<std::string, std::shared_ptr<Node>>> map;
  std::vector<std::shared_ptr<Node>> seq;
  Source source;                // where the value is written
  Source key_source;            // where its key is written (map entries only)
  bool foreign = false;         // from a .json file: unread keys are notes, not errors
  bool consumed = false;        // read by the schema
  std::set<std::string> known;  // keys the schema asked for at this mapping
  std::string doc;              // description (resolved output only), written as a comment
  bool is_path = false;         // a file path (resolved output only), absolute

  std::shared_ptr<Node> find(std::string_view key) const;
  std::string kind_name() const;
};
using NodePtr = std::shared_ptr<Node>;

// One parameter's schema: description, default (config-language text; no default
// means required), and an allowed range on the value in base units (B, B/s, Hz, s, or
// the plain number).
struct Param {
  std::string_view doc;
  std::optional<std::string_view> def = std::nullopt;
  std::optional<double> min = std::nullopt;
  std::optional<double> max = std::nullopt;
  bool min_exclusive = false;
};

class Document;
// A component's declared keys (config/fields.h).
template <class T>
class Fields;

// A mapping in the configuration, seen through the schema.
class Section {
 public:
  const std::string& path() const { return path_; }
  // Key path of a child: "<path>.<key>".
  std::string key_path(std::string_view key) const;
  const Source& source() const;
  Source source_of(std::string_view key) const;
  bool has(std::string_view key) const;
  // The keys written in this mapping, in the order written (for a mapping whose keys are
  // data, such as a list of overrides). Listing them does not read them: each must still
  // be read, or `Document::finish` names it.
  std::vector<std::string> keys() const;
  // The kind of value written at `key` (Null when absent or empty), for a key that may be
  // written in more than one form (a mapping or a list of mappings). Does not read it.
  Node::Kind kind(std::string_view key) const;

  // A nested mapping. `section` requires it unless `allow_missing` (then an empty
  // mapping is used, so that all its keys take their defaults).
  Section section(std::string_view key, std::string_view doc, bool allow_missing = false);
  std::optional<Section> optional_section(std::string_view key, std::string_view doc);
  // A list of mappings.
  std::vector<Section> section_list(std::string_view key, std::string_view doc);

  Size size(std::string_view key, const Param& p);
  Bandwidth bandwidth(std::string_view key, const Param& p);
  Frequency frequency(std::string_view key, const Param& p);
  // "N cycles" is accepted when `clock` is given.
  Duration duration(std::string_view key, const Param& p, std::optional<Frequency> clock = std::nullopt);
  std::int64_t integer(std::string_view key, const Param& p);
  double number(std::string_view key, const Param& p);
  bool boolean(std::string_view key, const Param& p);
  std::string string(std::string_view key, const Param& p);
  // A file path; relative paths are taken from the directory of the file that wrote
  // the key. Returned (and written to the resolved document) as an absolute path.
  std::filesystem::path path(std::string_view key, const Param& p);
  std::vector<std::int64_t> integer_list(std::string_view key, const Param& p);
  std::vector<std::string> string_list(std::string_view key, const Param& p);

  // A value handed on as data rather than read through a schema, such as an override
  // KEY=VALUE of another configuration (the `set:` of a sweep or a plan): any kind, with
  // its location.
  struct Value {
    Node::Kind kind = Node::Kind::Null;
    // A scalar as written; a list or mapping in YAML flow form ("[1, 2]"), "~" for an
    // empty value.
    std::string text;
    // The value as `--set KEY=VALUE` takes it: `text`, except that a scalar written in
    // quotes is quoted again (so "007" stays a string). The scalars inside a list or
    // mapping are written plain where YAML allows it.
    std::string yaml;
    Source source;
  };
  // The value at `key`, all of it read (none of its keys is unknown to `finish`);
  // required: a missing key is an error naming `doc`.
  Value value(std::string_view key, std::string_view doc);
  // The items of the list at `key`, each with its own location; required, and an error
  // (naming `doc` and what was found) when the value is not a list. An empty list is
  // returned empty: whether that is allowed is the caller's to say.
  std::vector<Value> value_list(std::string_view key, std::string_view doc);

  // One of a fixed set of names; the error lists them.
  template <class E>
  E enumeration(std::string_view key, const Param& p,
                std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::vector<std::string_view> names;
    for (const auto& c : choices) names.push_back(c.first);
    const std::size_t i = choice_index(key, p, names);
    return std::data(choices)[i].second;
  }

  // The same with the names given as a list (a declared field's table, config/fields.h):
  // the index of the name written.
  std::size_t choice(std::string_view key, const Param& p, const std::vector<std::string_view>& names) {
    return choice_index(key, p, names);
  }

  // Raises a ConfigError located at `key` (or at this section if the key is absent).
  [[noreturn]] void fail(std::string_view key, std::string_view message) const;

 private:
  friend class Document;
  Section(Document* doc, NodePtr node, NodePtr out, std::string path);
  // The scalar text for `key` (value or default) and where it came from; records it in
  // the resolved output. Throws if required and missing or if not a scalar.
  std::pair<std::string, Source> scalar_text(std::string_view key, const Param& p,
                                             std::string_view type_name);
  void check_range(std::string_view key, const Source& src, const std::string& text, double value,
                   const Param& p, std::string_view unit) const;
  std::size_t choice_index(std::string_view key, const Param& p, const std::vector<std::string_view>& names);
  NodePtr child(std::string_view key) const;

  Document* doc_;
  NodePtr node_;  // input mapping
  NodePtr out_;   // resolved output mapping
  std::string path_;
};

// A note about a configuration (keys of a foreign file that nothing read).
struct Note {
  Source source;
  std::string key_path;
  std::string message;
};

class Document {
 public:
  // The whole configuration as a section.
  Section root();
  // Call after all reading: throws ConfigError for the first key nothing read (with
  // "did you mean" among the keys read at that level).
  void finish();
  // The resolved configuration as YAML: every key read, defaults written out, each
  // with its description as a comment.
  std::string resolved_yaml() const;
  // The same, to be written into the folder `written_in` for the experiment file
  // `experiment`: a file path (absolute in resolved_yaml()) that shares a folder other
  // than the file system root with `written_in` (the checkout, when the output goes
  // inside it) is written relative to `written_in`, so that two clones write the same
  // file, it reruns from where it is (relative paths are taken from the file's folder),
  // and a rerun from it into a sibling folder writes the same file again. Any other
  // path stays absolute.
  std::string resolved_yaml(const std::filesystem::path& written_in,
                            const std::filesystem::path& experiment) const;
  const std::vector<Note>& notes() const { return notes_; }
  const NodePtr& tree() const { return tree_; }
  // Documentation of every parameter read: key path, value, default, description.
  struct ParamDoc {
    std::string key_path;
    std::string value;
    std::string def;
    std::string doc;
  };
  const std::vector<ParamDoc>& params() const { return params_; }

 private:
  friend Document load(const std::filesystem::path&, const std::vector<std::string>&);
  friend Document parse(std::string_view, std::string_view, const std::vector<std::string>&);
  friend class Section;
  NodePtr tree_;
  NodePtr out_;
  std::vector<Note> notes_;
  std::vector<ParamDoc> params_;
};

// Loads `file` with its includes, then applies `overrides` ("a.b.c=VALUE", VALUE in
// YAML syntax). Throws ConfigError for any syntax, include or override problem.
Document load(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
// The same from text (tests); includes are resolved relative to the current directory.
Document parse(std::string_view yaml_text, std::string_view name = "<string>",
               const std::vector<std::string>& overrides = {});

// Closest candidate by edit distance, if close enough to suggest.
std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace wse::config
