#include "systemc_models/config/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace wse::config {

namespace fs = std::filesystem;

// Defined in yaml_loader.cpp.
NodePtr load_tree(const fs::path& file, const std::vector<std::string>& overrides);
NodePtr parse_tree(std::string_view text, std::string_view name, const std::vector<std::string>& overrides);

namespace {

const Source kDefaultSource{"<default>", 0, 0};

std::string join(const std::vector<std::string_view>& v, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

std::string shown(const std::string& text) {
  constexpr std::size_t kMax = 60;
  if (text.size() <= kMax) return "'" + text + "'";
  return "'" + text.substr(0, kMax) + "...'";
}

// Offset of the first byte that does not belong to well-formed UTF-8 (no overlong
// forms, surrogates or code points past U+10FFFF), or npos.
std::size_t invalid_utf8_at(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b < 0x80) {
      ++i;
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return i;
    }
    i += n + 1;
  }
  return std::string_view::npos;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

NodePtr make_map() {
  auto n = std::make_shared<Node>();
  n->kind = Node::Kind::Map;
  return n;
}

NodePtr make_scalar(std::string text, bool quoted, std::string doc) {
  auto n = std::make_shared<Node>();
  n->kind = Node::Kind::Scalar;
  n->scalar = std::move(text);
  n->quoted = quoted;
  n->doc = std::move(doc);
  return n;
}

// Output nodes are appended in the order keys are read; reading a key twice keeps one.
void put(Node& out, std::string_view key, NodePtr value) {
  for (auto& [k, v] : out.map) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  out.map.emplace_back(std::string(key), std::move(value));
}

// yaml-cpp 0.7 writes a string that begins with a document marker ("--- x", "... x")
// without quotes, and reading it back starts or ends a document there: such text is
// always written double-quoted (found by fuzz_config).
bool starts_with_document_marker(std::string_view s) {
  return s.size() >= 3 && (s.substr(0, 3) == "---" || s.substr(0, 3) == "...");
}

void emit(YAML::Emitter& e, const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null:
      e << YAML::Null;
      break;
    case Node::Kind::Scalar:
      if (n.quoted || starts_with_document_marker(n.scalar))
        e << YAML::DoubleQuoted << n.scalar;
      else
        e << n.scalar;
      break;
    case Node::Kind::Seq:
      e << YAML::BeginSeq;
      for (const auto& c : n.seq) emit(e, *c);
      e << YAML::EndSeq;
      break;
    case Node::Kind::Map:
      e << YAML::BeginMap;
      for (const auto& [k, v] : n.map) {
        e << YAML::Key;
        if (starts_with_document_marker(k)) e << YAML::DoubleQuoted;
        e << k << YAML::Value;
        emit(e, *v);
        if (!v->doc.empty() && v->kind == Node::Kind::Scalar) e << YAML::Comment(v->doc);
      }
      e << YAML::EndMap;
      break;
  }
}

// A value handed on as data (Section::Value): nested scalars plain, as yaml-cpp writes
// the scalars of a node it read.
void emit_data(YAML::Emitter& e, const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null:
      e << YAML::Null;
      break;
    case Node::Kind::Scalar:
      e << n.scalar;
      break;
    case Node::Kind::Seq:
      e << YAML::BeginSeq;
      for (const auto& c : n.seq) emit_data(e, *c);
      e << YAML::EndSeq;
      break;
    case Node::Kind::Map:
      e << YAML::BeginMap;
      for (const auto& [k, v] : n.map) {
        e << YAML::Key << k << YAML::Value;
        emit_data(e, *v);
      }
      e << YAML::EndMap;
      break;
  }
}

Section::Value data_value(const Node& n) {
  Section::Value v{n.kind, "", "", n.source};
  if (n.kind == Node::Kind::Scalar) {
    v.text = n.scalar;
    v.yaml = n.scalar;
    if (n.quoted) {
      YAML::Emitter e;
      e << YAML::DoubleQuoted << n.scalar;  // quoted: keep it a string
      v.yaml = e.c_str();
    }
    return v;
  }
  YAML::Emitter e;
  e << YAML::Flow;
  emit_data(e, n);
  v.text = v.yaml = e.c_str();
  return v;
}

void consume_all(Node& n) {
  n.consumed = true;
  for (auto& [k, v] : n.map) consume_all(*v);
  for (auto& c : n.seq) consume_all(*c);
}

// What a value is, for an error: "a scalar '3'", "a mapping", "an empty value".
std::string found_text(const Node& n) {
  if (n.kind == Node::Kind::Null) return "an empty value";
  return "a " + n.kind_name() + (n.kind == Node::Kind::Scalar ? " " + shown(n.scalar) : "");
}

template <class T>
bool parse_whole(std::string_view text, T& value) {
  const char* b = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(b, end, value);
  return ec == std::errc() && ptr == end && b != end;
}

}  // namespace

std::string Source::where() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

ConfigError::ConfigError(Source source, std::string key_path, std::string message)
    : std::runtime_error(source.where() + ": " +
                         (key_path.empty() ? std::string() : "key '" + key_path + "': ") + message),
      source_(std::move(source)),
      key_path_(std::move(key_path)),
      detail_(std::move(message)) {}

NodePtr Node::find(std::string_view key) const {
  for (const auto& [k, v] : map) {
    if (k == key) return v;
  }
  return nullptr;
}

std::string Node::kind_name() const {
  switch (kind) {
    case Kind::Null:
      return "empty value";
    case Kind::Scalar:
      return "scalar";
    case Kind::Map:
      return "mapping";
    case Kind::Seq:
      return "sequence";
  }
  return "?";
}

std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------
// Section

Section::Section(Document* doc, NodePtr node, NodePtr out, std::string path)
    : doc_(doc), node_(std::move(node)), out_(std::move(out)), path_(std::move(path)) {}

std::string Section::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const Source& Section::source() const { return node_->source; }

Source Section::source_of(std::string_view key) const {
  auto c = node_->find(key);
  return c ? c->source : node_->source;
}

bool Section::has(std::string_view key) const {
  node_->known.insert(std::string(key));
  auto c = node_->find(key);
  return c && c->kind != Node::Kind::Null;
}

std::vector<std::string> Section::keys() const {
  std::vector<std::string> out;
  out.reserve(node_->map.size());
  for (const auto& [k, v] : node_->map) out.push_back(k);
  return out;
}

Node::Kind Section::kind(std::string_view key) const {
  auto c = child(key);
  return c ? c->kind : Node::Kind::Null;
}

NodePtr Section::child(std::string_view key) const {
  node_->known.insert(std::string(key));
  return node_->find(key);
}

void Section::fail(std::string_view key, std::string_view message) const {
  throw ConfigError(source_of(key), key_path(key), std::string(message));
}

Section Section::section(std::string_view key, std::string_view doc, bool allow_missing) {
  NodePtr c = child(key);
  if (!c || c->kind == Node::Kind::Null) {
    if (!allow_missing) {
      throw ConfigError(node_->source, key_path(key),
                        "missing required section '" + std::string(key) + "' (" + std::string(doc) +
                            "); add it as a mapping of keys");
    }
    if (c) c->consumed = true;
    c = make_map();
    c->source = node_->source;
  }
  if (c->kind != Node::Kind::Map) {
    throw ConfigError(c->source, key_path(key),
                      "expected a mapping (" + std::string(doc) + "), found a " + c->kind_name() +
                          (c->kind == Node::Kind::Scalar ? " " + shown(c->scalar) : ""));
  }
  c->consumed = true;
  // Reading a section again (e.g. by two modules) continues the same resolved mapping.
  NodePtr out = out_->find(key);
  if (!out || out->kind != Node::Kind::Map) {
    out = make_map();
    put(*out_, key, out);
  }
  return Section(doc_, c, out, key_path(key));
}

std::optional<Section> Section::optional_section(std::string_view key, std::string_view doc) {
  if (!has(key)) {
    if (auto c = child(key)) c->consumed = true;
    return std::nullopt;
  }
  return section(key, doc);
}

std::vector<Section> Section::section_list(std::string_view key, std::string_view doc) {
  NodePtr c = child(key);
  std::vector<Section> out;
  if (!c || c->kind == Node::Kind::Null) {
    if (c) c->consumed = true;
    return out;
  }
  if (c->kind != Node::Kind::Seq) {
    throw ConfigError(c->source, key_path(key),
                      "expected a list of mappings (" + std::string(doc) + "), found a " + c->kind_name());
  }
  c->consumed = true;
  auto out_seq = std::make_shared<Node>();
  out_seq->kind = Node::Kind::Seq;
  put(*out_, key, out_seq);
  for (std::size_t i = 0; i < c->seq.size(); ++i) {
    const NodePtr& e = c->seq[i];
    const std::string p = key_path(key) + "[" + std::to_string(i) + "]";
    if (e->kind != Node::Kind::Map) {
      throw ConfigError(e->source, p, "expected a mapping, found a " + e->kind_name());
    }
    e->consumed = true;
    NodePtr o = make_map();
    out_seq->seq.push_back(o);
    out.push_back(Section(doc_, e, o, p));
  }
  return out;
}

std::pair<std::string, Source> Section::scalar_text(std::string_view key, const Param& p,
                                                    std::string_view type_name) {
  NodePtr c = child(key);
  std::string text;
  Source src;
  bool quoted = false;
  if (c && c->kind != Node::Kind::Null) {
    if (c->kind != Node::Kind::Scalar) {
      throw ConfigError(c->source, key_path(key),
                        "expected " + std::string(type_name) + ", found a " + c->kind_name());
    }
    c->consumed = true;
    text = c->scalar;
    src = c->source;
    quoted = c->quoted;
    // The configuration is UTF-8 text: a stray byte (a Latin-1 file, a file name in
    // another encoding) would reach the JSON and YAML outputs, which cannot hold it.
    if (const std::size_t at = invalid_utf8_at(text); at != std::string::npos) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[at])));
      throw ConfigError(src, key_path(key),
                        "is not valid UTF-8 (byte " + std::string(byte) + " at offset " + std::to_string(at) +
                            " of the value); write the value in UTF-8 (re-save the file as UTF-8, or rename "
                            "the file it names)");
    }
  } else if (p.def) {
    if (c) c->consumed = true;
    text = std::string(*p.def);
    src = kDefaultSource;
  } else {
    throw ConfigError(c ? c->source : node_->source, key_path(key),
                      "missing required key '" + std::string(key) + "' (" + std::string(p.doc) +
                          "; expected " + std::string(type_name) + ")");
  }
  put(*out_, key, make_scalar(text, quoted, std::string(p.doc)));
  doc_->params_.push_back(Document::ParamDoc{key_path(key), text, p.def ? std::string(*p.def) : "(required)",
                                             std::string(p.doc)});
  return {text, src};
}

void Section::check_range(std::string_view key, const Source& src, const std::string& text, double value,
                          const Param& p, std::string_view unit) const {
  auto bound = [&](double b) {
    std::ostringstream os;
    os << b;
    if (!unit.empty()) os << " " << unit;
    return os.str();
  };
  const bool below = p.min && (p.min_exclusive ? value <= *p.min : value < *p.min);
  const bool above = p.max && value > *p.max;
  if (below || above) {
    std::string allowed;
    if (p.min) allowed += (p.min_exclusive ? "> " : ">= ") + bound(*p.min);
    if (p.min && p.max) allowed += " and ";
    if (p.max) allowed += "<= " + bound(*p.max);
    throw ConfigError(src, key_path(key), "value " + shown(text) + " is out of range; allowed: " + allowed);
  }
}

namespace {
template <class F>
auto with_unit_errors(const Source& src, const std::string& path, F&& f) {
  try {
    return f();
  } catch (const UnitError& e) {
    throw ConfigError(src, path,
                      e.problem() + ": found " + shown(e.found()) + "; allowed units: " + e.allowed());
  }
}
}  // namespace

Size Section::size(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "a size such as '48 KiB'");
  Size v = with_unit_errors(src, key_path(key), [&t = text] { return parse_size(t); });
  check_range(key, src, text, static_cast<double>(v.bytes), p, "B");
  return v;
}

Bandwidth Section::bandwidth(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "a bandwidth such as '100 Gb/s'");
  Bandwidth v = with_unit_errors(src, key_path(key), [&t = text] { return parse_bandwidth(t); });
  check_range(key, src, text, v.bytes_per_s, p, "B/s");
  return v;
}

Frequency Section::frequency(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "a frequency such as '1.1 GHz'");
  Frequency v = with_unit_errors(src, key_path(key), [&t = text] { return parse_frequency(t); });
  check_range(key, src, text, v.hz, p, "Hz");
  return v;
}

Duration Section::duration(std::string_view key, const Param& p, std::optional<Frequency> clock) {
  auto [text, src] = scalar_text(key, p, "a time such as '600 ns'");
  Duration v = with_unit_errors(src, key_path(key), [&t = text, &clock] { return parse_duration(t, clock); });
  check_range(key, src, text, v.seconds, p, "s");
  return v;
}

std::int64_t Section::integer(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "an integer");
  std::int64_t v = 0;
  if (!parse_whole(text, v)) {
    throw ConfigError(src, key_path(key), "expected an integer, found " + shown(text));
  }
  check_range(key, src, text, static_cast<double>(v), p, "");
  return v;
}

double Section::number(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "a number");
  double v = 0;
  if (!parse_whole(text, v) || !std::isfinite(v)) {
    throw ConfigError(src, key_path(key), "expected a number, found " + shown(text));
  }
  check_range(key, src, text, v, p, "");
  return v;
}

bool Section::boolean(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "true or false");
  if (text == "true") return true;
  if (text == "false") return false;
  throw ConfigError(src, key_path(key), "expected true or false, found " + shown(text));
}

std::string Section::string(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "a string");
  (void)src;
  return text;
}

fs::path Section::path(std::string_view key, const Param& p) {
  auto [text, src] = scalar_text(key, p, "a file path");
  if (text.empty()) fail(key, "expected a file path, found an empty string");
  fs::path v = text;
  if (v.is_relative()) {
    fs::path base = fs::current_path();
    if (src.line > 0) base = fs::absolute(fs::path(src.file)).parent_path();
    v = base / v;
  }
  v = v.lexically_normal();
  // The resolved document carries the absolute path so that it runs from anywhere.
  NodePtr written = make_scalar(v.string(), true, std::string(p.doc));
  written->is_path = true;
  put(*out_, key, written);
  return v;
}

std::vector<std::int64_t> Section::integer_list(std::string_view key, const Param& p) {
  NodePtr c = child(key);
  std::vector<std::int64_t> out;
  if (!c || c->kind == Node::Kind::Null) {
    if (!p.def) {
      throw ConfigError(node_->source, key_path(key),
                        "missing required key '" + std::string(key) + "' (" + std::string(p.doc) +
                            "; expected a list of integers)");
    }
    if (c) c->consumed = true;
    auto parsed = parse(std::string("v: ") + std::string(*p.def), "<default>");
    c = parsed.tree()->find("v");
  }
  if (c->kind != Node::Kind::Seq) {
    throw ConfigError(c->source, key_path(key),
                      "expected a list of integers such as [1, 2], found a " + c->kind_name());
  }
  c->consumed = true;
  auto o = std::make_shared<Node>();
  o->kind = Node::Kind::Seq;
  for (const auto& e : c->seq) {
    std::int64_t v = 0;
    if (e->kind != Node::Kind::Scalar || !parse_whole(e->scalar, v)) {
      throw ConfigError(e->source, key_path(key),
                        "expected an integer in the list, found " +
                            (e->kind == Node::Kind::Scalar ? shown(e->scalar) : "a " + e->kind_name()));
    }
    check_range(key, e->source, e->scalar, static_cast<double>(v), p, "");
    out.push_back(v);
    o->seq.push_back(make_scalar(e->scalar, false, ""));
  }
  put(*out_, key, o);
  // Listed by `check --params` as the scalars are (as "[a, b, ...]").
  std::string text = "[";
  for (std::size_t i = 0; i < out.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(out[i]);
  text += "]";
  doc_->params_.push_back(Document::ParamDoc{key_path(key), text, p.def ? std::string(*p.def) : "(required)",
                                             std::string(p.doc)});
  return out;
}

std::vector<std::string> Section::string_list(std::string_view key, const Param& p) {
  NodePtr c = child(key);
  std::vector<std::string> out;
  if (!c || c->kind == Node::Kind::Null) {
    if (!p.def) {
      throw ConfigError(node_->source, key_path(key),
                        "missing required key '" + std::string(key) + "' (" + std::string(p.doc) +
                            "; expected a list of strings)");
    }
    if (c) c->consumed = true;
    auto parsed = parse(std::string("v: ") + std::string(*p.def), "<default>");
    c = parsed.tree()->find("v");
  }
  if (c->kind != Node::Kind::Seq) {
    throw ConfigError(c->source, key_path(key), "expected a list of strings, found a " + c->kind_name());
  }
  c->consumed = true;
  auto o = std::make_shared<Node>();
  o->kind = Node::Kind::Seq;
  for (const auto& e : c->seq) {
    if (e->kind != Node::Kind::Scalar) {
      throw ConfigError(e->source, key_path(key), "expected a string in the list, found a " + e->kind_name());
    }
    out.push_back(e->scalar);
    o->seq.push_back(make_scalar(e->scalar, true, ""));
  }
  put(*out_, key, o);
  return out;
}

Section::Value Section::value(std::string_view key, std::string_view doc) {
  NodePtr c = child(key);
  if (!c) {
    throw ConfigError(node_->source, key_path(key),
                      "missing required key '" + std::string(key) + "' (" + std::string(doc) + ")");
  }
  consume_all(*c);
  Value v = data_value(*c);
  put(*out_, key, c);
  doc_->params_.push_back(Document::ParamDoc{key_path(key), v.text, "(required)", std::string(doc)});
  return v;
}

std::vector<Section::Value> Section::value_list(std::string_view key, std::string_view doc) {
  NodePtr c = child(key);
  if (!c) {
    throw ConfigError(
        node_->source, key_path(key),
        "missing required key '" + std::string(key) + "' (" + std::string(doc) + "; expected a list)");
  }
  if (c->kind != Node::Kind::Seq) {
    throw ConfigError(c->source, key_path(key),
                      "expected a list (" + std::string(doc) + "), found " + found_text(*c));
  }
  consume_all(*c);
  std::vector<Value> out;
  out.reserve(c->seq.size());
  for (const auto& e : c->seq) out.push_back(data_value(*e));
  put(*out_, key, c);
  doc_->params_.push_back(
      Document::ParamDoc{key_path(key), data_value(*c).text, "(required)", std::string(doc)});
  return out;
}

std::size_t Section::choice_index(std::string_view key, const Param& p,
                                  const std::vector<std::string_view>& names) {
  auto [text, src] = scalar_text(key, p, "one of: " + join(names, ", "));
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == text) return i;
  }
  std::vector<std::string> cands(names.begin(), names.end());
  auto guess = did_you_mean(text, cands);
  throw ConfigError(src, key_path(key),
                    "unknown value " + shown(text) + (guess ? "; did you mean '" + *guess + "'?" : "") +
                        " Allowed: " + join(names, ", "));
}

// ---------------------------------------------------------------------------------
// Document

Section Document::root() {
  if (!out_) out_ = make_map();
  return Section(this, tree_, out_, "");
}

void Document::finish() {
  auto walk = [&](const Node& n, const std::string& path, auto&& self) -> void {
    if (n.kind == Node::Kind::Seq) {
      for (std::size_t i = 0; i < n.seq.size(); ++i) {
        if (n.seq[i]->consumed) self(*n.seq[i], path + "[" + std::to_string(i) + "]", self);
      }
      return;
    }
    if (n.kind != Node::Kind::Map) return;
    for (const auto& [k, v] : n.map) {
      const std::string p = path.empty() ? k : path + "." + k;
      if (v->consumed) {
        self(*v, p, self);
        continue;
      }
      if (v->foreign) {
        notes_.push_back(Note{v->source, p, "not used by the model description"});
        continue;
      }
      std::vector<std::string> known(n.known.begin(), n.known.end());
      auto guess = did_you_mean(k, known);
      std::vector<std::string_view> kv(known.begin(), known.end());
      throw ConfigError(v->key_source.file.empty() ? v->source : v->key_source, p,
                        "unknown key '" + k + "'" + (guess ? "; did you mean '" + *guess + "'?" : "") +
                            (known.empty() ? std::string(" (nothing is read at this level)")
                                           : " Known keys here: " + join(kv, ", ")));
    }
  };
  notes_.clear();
  walk(*tree_, "", walk);
}

std::string Document::resolved_yaml() const {
  YAML::Emitter e;
  e.SetIndent(2);
  emit(e, out_ ? *out_ : Node{});
  std::string s = e.c_str();
  s += "\n";
  return s;
}

namespace {
// A path that shares a folder other than the file system root with `written_in` is
// written relative to `written_in`; any other stays absolute.
NodePtr relative_paths(const Node& n, const fs::path& written_in) {
  auto c = std::make_shared<Node>(n);
  if (c->kind == Node::Kind::Scalar && c->is_path) {
    const fs::path p(c->scalar);
    if (p.is_absolute()) {
      fs::path common;
      for (auto a = p.begin(), b = written_in.begin(); a != p.end() && b != written_in.end() && *a == *b;
           ++a, ++b) {
        common /= *a;
      }
      if (!common.empty() && common != common.root_path())
        c->scalar = p.lexically_relative(written_in).string();
    }
  }
  for (auto& [k, v] : c->map) v = relative_paths(*v, written_in);
  for (auto& e : c->seq) e = relative_paths(*e, written_in);
  return c;
}
}  // namespace

std::string Document::resolved_yaml(const fs::path& written_in, const fs::path& /*experiment*/) const {
  if (!out_) return resolved_yaml();
  YAML::Emitter e;
  e.SetIndent(2);
  emit(e, *relative_paths(*out_, fs::absolute(written_in).lexically_normal()));
  std::string s = e.c_str();
  s += "\n";
  return s;
}

Document load(const fs::path& file, const std::vector<std::string>& overrides) {
  Document d;
  d.tree_ = load_tree(file, overrides);
  return d;
}

Document parse(std::string_view yaml_text, std::string_view name, const std::vector<std::string>& overrides) {
  Document d;
  d.tree_ = parse_tree(yaml_text, name, overrides);
  return d;
}

}  // namespace wse::config
