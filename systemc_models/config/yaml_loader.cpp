// Reading configuration files into the merged Node tree: YAML/JSON syntax, includes,
// merging and command-line overrides. Schema checks happen later, in config.cpp.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include "systemc_models/config/config.h"

namespace wse::config {

namespace fs = std::filesystem;

namespace {

// A configuration file larger than this is not a configuration file (a trace or a
// binary given by mistake); refusing it early keeps the parser from churning.
constexpr std::uintmax_t kMaxConfigBytes = 16ULL * 1024 * 1024;

Source mark_source(const std::string& file, const YAML::Mark& m) {
  return Source{file, m.line + 1, m.column + 1};
}

// YAML aliases (*name) share nodes, and the tree below copies them: an alias that refers
// to itself would recurse forever, and aliases of aliases grow exponentially ("billion
// laughs": nine lines can stand for 10^8 values). A configuration is at most a few dozen
// levels deep and has no more values than a few per byte of its text, so both are
// bounded and reported as bad input.
constexpr int kMaxDepth = 100;
constexpr std::size_t kNodesPerByte = 4;
constexpr std::size_t kMinNodeBudget = 1024;

struct ConvertLimits {
  std::size_t nodes_left;
  explicit ConvertLimits(std::size_t text_bytes) : nodes_left(kMinNodeBudget + kNodesPerByte * text_bytes) {}
};

NodePtr convert(const YAML::Node& y, const std::string& file, bool foreign, ConvertLimits& limits,
                int depth = 0) {
  if (depth > kMaxDepth) {
    throw ConfigError(mark_source(file, y.Mark()), "",
                      "values nested more than " + std::to_string(kMaxDepth) +
                          " levels deep (an alias that refers to itself?)");
  }
  if (limits.nodes_left == 0) {
    throw ConfigError(mark_source(file, y.Mark()), "",
                      "aliases expand to too many values (more than " + std::to_string(kNodesPerByte) +
                          " per byte of the file); write the values out or use fewer nested aliases");
  }
  --limits.nodes_left;
  auto n = std::make_shared<Node>();
  n->source = mark_source(file, y.Mark());
  n->foreign = foreign;
  switch (y.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      n->kind = Node::Kind::Null;
      break;
    case YAML::NodeType::Scalar:
      n->kind = Node::Kind::Scalar;
      n->scalar = y.Scalar();
      n->quoted = (y.Tag() == "!");
      break;
    case YAML::NodeType::Sequence:
      n->kind = Node::Kind::Seq;
      for (const auto& e : y) n->seq.push_back(convert(e, file, foreign, limits, depth + 1));
      break;
    case YAML::NodeType::Map:
      n->kind = Node::Kind::Map;
      for (const auto& kv : y) {
        if (!kv.first.IsScalar()) {
          throw ConfigError(mark_source(file, kv.first.Mark()), "",
                            "a key must be a plain name, found " + std::string(kv.first.IsMap() ? "a mapping"
                                                                               : kv.first.IsSequence()
                                                                                   ? "a sequence"
                                                                                   : "an empty (null) key"));
        }
        const std::string key = kv.first.Scalar();
        if (n->find(key)) {
          throw ConfigError(mark_source(file, kv.first.Mark()), key,
                            "duplicate key '" + key + "' in the same mapping; keep one of them");
        }
        n->map.emplace_back(key, convert(kv.second, file, foreign, limits, depth + 1));
        Node& value = *n->map.back().second;
        value.key_source = mark_source(file, kv.first.Mark());
        // Errors about a scalar point at the value; about a mapping, sequence or empty
        // value, at its key.
        if (value.kind != Node::Kind::Scalar) value.source = value.key_source;
      }
      break;
  }
  return n;
}

// Replaces or merges `src` into `dst` (maps merge key by key; anything else replaces).
// A key whose value is null (`key: null`, `key: ~`, `key:`) removes the key that an
// earlier file gave (a derived experiment drops an inherited key).
void merge_into(Node& dst, const NodePtr& src) {
  if (dst.kind != Node::Kind::Map || src->kind != Node::Kind::Map) {
    dst = *src;
    return;
  }
  for (const auto& [k, v] : src->map) {
    auto it =
        std::find_if(dst.map.begin(), dst.map.end(), [&key = k](const auto& e) { return e.first == key; });
    if (v->kind == Node::Kind::Null && it != dst.map.end()) {
      dst.map.erase(it);
      continue;
    }
    if (it == dst.map.end()) {
      dst.map.emplace_back(k, v);
    } else if (it->second->kind == Node::Kind::Map && v->kind == Node::Kind::Map) {
      auto copy = std::make_shared<Node>(*it->second);
      merge_into(*copy, v);
      it->second = copy;
    } else {
      it->second = v;
    }
  }
}

class Loader {
 public:
  NodePtr load_file(const fs::path& file, const Source& included_from) {
    const std::string shown = file.lexically_normal().string();
    std::error_code ec;
    // A symlink loop or an unreadable folder: its reason, not "does not exist".
    if (const auto st = fs::status(file, ec); ec && st.type() != fs::file_type::not_found) {
      throw ConfigError(included_from.file.empty() ? Source{shown, 0, 0} : included_from, "",
                        "cannot read '" + shown + "': " + ec.message());
    }
    if (!fs::exists(file, ec)) {
      throw ConfigError(included_from.file.empty() ? Source{shown, 0, 0} : included_from, "",
                        included_from.file.empty() ? "file '" + shown + "' does not exist"
                                                   : "include '" + shown +
                                                         "' does not exist; check the path (relative "
                                                         "paths are taken from the including file's folder)");
    }
    if (!fs::is_regular_file(file, ec)) {
      throw ConfigError(included_from, "", "'" + shown + "' is not a regular file");
    }
    const fs::path canonical = fs::canonical(file, ec);
    if (std::find(stack_.begin(), stack_.end(), canonical) != stack_.end()) {
      std::string chain;
      for (const auto& p : stack_) chain += p.filename().string() + " -> ";
      chain += canonical.filename().string();
      throw ConfigError(included_from, "include",
                        "include cycle: " + chain +
                            "; a file cannot include itself, directly or "
                            "through others");
    }
    const auto bytes = fs::file_size(file, ec);
    if (bytes > kMaxConfigBytes) {
      throw ConfigError(Source{shown, 0, 0}, "",
                        "file is " + std::to_string(bytes) +
                            " bytes, too large for a configuration file (limit 16 MiB); is it "
                            "the right file?");
    }
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    stack_.push_back(canonical);
    NodePtr root = parse_text(text, shown, file.extension() == ".json");
    root = resolve(root, file.parent_path());
    stack_.pop_back();
    return root;
  }

  NodePtr parse_text(const std::string& text, const std::string& name, bool foreign) {
    if (text.find('\0') != std::string::npos) {
      throw ConfigError(Source{name, 0, 0}, "", "file contains NUL bytes: not a YAML or JSON text file");
    }
    YAML::Node y;
    try {
      y = YAML::Load(text);
    } catch (const YAML::DeepRecursion& e) {
      // yaml-cpp's own depth limit (its message is "bad file").
      throw ConfigError(mark_source(name, e.mark), "",
                        "values nested more than " + std::to_string(e.depth()) +
                            " levels deep: not a configuration file (nest at most 100 levels)");
    } catch (const YAML::Exception& e) {
      throw ConfigError(mark_source(name, e.mark), "", "syntax error: " + e.msg);
    }
    if (y.IsNull() || !y.IsDefined()) {
      throw ConfigError(Source{name, 0, 0}, "",
                        "file is empty; expected a mapping of keys (e.g. 'experiment: ...')");
    }
    if (!y.IsMap()) {
      throw ConfigError(mark_source(name, y.Mark()), "",
                        std::string("expected a mapping of keys at the top level, found a ") +
                            (y.IsSequence() ? "sequence" : "scalar"));
    }
    ConvertLimits limits(text.size());
    return convert(y, name, foreign, limits);
  }

  // Resolves `include:` keys in `node` and below; `dir` is the folder of the file the
  // node was read from.
  NodePtr resolve(const NodePtr& node, const fs::path& dir) {
    if (node->kind == Node::Kind::Seq) {
      for (auto& e : node->seq) e = resolve(e, dir);
      return node;
    }
    if (node->kind != Node::Kind::Map) return node;
    auto result = std::make_shared<Node>();
    result->kind = Node::Kind::Map;
    result->source = node->source;
    result->foreign = node->foreign;
    if (auto inc = node->find("include")) {
      std::vector<NodePtr> items;
      if (inc->kind == Node::Kind::Scalar)
        items.push_back(inc);
      else if (inc->kind == Node::Kind::Seq)
        items = inc->seq;
      else
        throw ConfigError(inc->source, "include", "expected a file path or a list of file paths");
      for (const auto& item : items) {
        if (item->kind != Node::Kind::Scalar || item->scalar.empty()) {
          throw ConfigError(item->source, "include", "expected a file path");
        }
        fs::path p = item->scalar;
        if (p.is_relative()) p = dir / p;
        merge_into(*result, load_file(p, item->source));
      }
    }
    Node own;
    own.kind = Node::Kind::Map;
    for (const auto& [k, v] : node->map) {
      if (k == "include") continue;
      own.map.emplace_back(k, resolve(v, dir));
    }
    merge_into(*result, std::make_shared<Node>(own));
    return result;
  }

 private:
  std::vector<fs::path> stack_;
};

void apply_override(Node& root, const std::string& text) {
  const Source src{"--set '" + text + "'", 0, 0};
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(src, "", "expected KEY.PATH=VALUE, e.g. --set efa.adapters=8");
  }
  const std::string path = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  for (const auto& p : parts) {
    if (p.empty()) throw ConfigError(src, path, "empty name in key path");
    // Includes are resolved while files are read, before overrides apply: an `include`
    // key set here would never be read (and the resolved document would not load).
    if (p == "include") {
      throw ConfigError(src, path, "'include' cannot be set with --set; write it in a configuration file");
    }
  }
  NodePtr leaf;
  try {
    YAML::Node y = YAML::Load(value);
    ConvertLimits limits(value.size());
    leaf = convert(y, src.file, false, limits);
  } catch (const YAML::Exception& e) {
    throw ConfigError(src, path, "value is not valid YAML: " + e.msg);
  }
  auto mark = [&](Node& n, auto&& self) -> void {
    n.source = src;
    for (auto& [k, v] : n.map) self(*v, self);
    for (auto& e : n.seq) self(*e, self);
  };
  mark(*leaf, mark);
  // "--set a=null" or "--set a=~" removes the key, as `a: null` in a file does; "--set a="
  // is the empty string.
  const bool remove = leaf->kind == Node::Kind::Null && !value.empty();
  if (leaf->kind == Node::Kind::Null) leaf->kind = Node::Kind::Scalar;
  Node* node = &root;
  std::string walked;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + parts[i];
    if (node->kind != Node::Kind::Map) {
      throw ConfigError(src, walked, "cannot set a key inside a " + node->kind_name());
    }
    auto it =
        std::find_if(node->map.begin(), node->map.end(), [&](const auto& e) { return e.first == parts[i]; });
    if (i + 1 == parts.size()) {
      if (remove) {
        if (it != node->map.end()) node->map.erase(it);
      } else if (it == node->map.end()) {
        node->map.emplace_back(parts[i], leaf);
      } else {
        it->second = leaf;
      }
      return;
    }
    if (it == node->map.end()) {
      auto m = std::make_shared<Node>();
      m->kind = Node::Kind::Map;
      m->source = src;
      node->map.emplace_back(parts[i], m);
      node = m.get();
    } else {
      auto copy = std::make_shared<Node>(*it->second);  // do not alter shared included nodes
      it->second = copy;
      node = copy.get();
    }
  }
}

}  // namespace

NodePtr load_tree(const fs::path& file, const std::vector<std::string>& overrides) {
  Loader loader;
  NodePtr root = loader.load_file(file, Source{});
  for (const auto& o : overrides) apply_override(*root, o);
  return root;
}

NodePtr parse_tree(std::string_view text, std::string_view name, const std::vector<std::string>& overrides) {
  Loader loader;
  NodePtr root = loader.parse_text(std::string(text), std::string(name), false);
  root = loader.resolve(root, fs::current_path());
  for (const auto& o : overrides) apply_override(*root, o);
  return root;
}

}  // namespace wse::config
