// The configuration language: typed keys with units and defaults, includes and
// overrides, and one clear error (file:line:column, key path, found, allowed) for each
// kind of bad input.
#include <filesystem>
#include <fstream>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "systemc_models/config/config.h"
#include "systemc_models/config/fields.h"
#include "util/scratch_dir.h"

namespace wse::config {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using ConfigFiles = wse::testing::ScratchDirTest;

// Reads a small schema: link.{bandwidth, latency, width, arbitration}, name.
struct Link {
  Bandwidth bandwidth;
  Duration latency;
  std::int64_t lanes;
  std::string policy;
};

Link read_link(Document& doc) {
  Section root = doc.root();
  Section link = root.section("link", "a link");
  Link l;
  l.bandwidth = link.bandwidth("bandwidth", {.doc = "line rate", .min = 0, .min_exclusive = true});
  l.latency = link.duration("latency", {.doc = "one-way latency", .def = "15 us"}, Frequency{1e9});
  l.lanes = link.integer("lanes", {.doc = "parallel lanes", .def = "4", .min = 1, .max = 64});
  l.policy = link.enumeration<std::string>("arbitration", {.doc = "policy", .def = "fifo"},
                                           {{"fifo", "fifo"}, {"round_robin", "round_robin"}});
  doc.finish();
  return l;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, TypedValuesAndDefaults) {
  Document doc = parse("link:\n  bandwidth: 3.2 Tb/s\n  latency: 100 cycles\n", "exp.yaml");
  const Link l = read_link(doc);
  EXPECT_DOUBLE_EQ(l.bandwidth.bytes_per_s, 400e9);
  EXPECT_DOUBLE_EQ(l.latency.seconds, 100e-9);  // 100 cycles of the 1 GHz clock in scope
  EXPECT_EQ(l.lanes, 4);
  EXPECT_EQ(l.policy, "fifo");
}

TEST(Config, ResolvedDocumentWritesDefaultsAndRunsTheSame) {
  Document doc = parse("link:\n  bandwidth: 100 Gb/s\n", "exp.yaml");
  const Link a = read_link(doc);
  const std::string resolved = doc.resolved_yaml();
  EXPECT_THAT(resolved, HasSubstr("latency: 15 us"));
  EXPECT_THAT(resolved, HasSubstr("lanes: 4"));
  EXPECT_THAT(resolved, HasSubstr("# line rate"));
  Document again = parse(resolved, "resolved.yaml");
  const Link b = read_link(again);
  EXPECT_EQ(a.bandwidth, b.bandwidth);
  EXPECT_EQ(a.latency, b.latency);
  EXPECT_EQ(a.lanes, b.lanes);
  EXPECT_EQ(a.policy, b.policy);
  EXPECT_EQ(again.resolved_yaml(), resolved);
}

// Keys and strings that begin with a YAML document marker ("--- ", "... ") must be
// written quoted: yaml-cpp writes them plain, and "--- a: x" read back is a new document
// (a fuzz_config finding).
TEST(Config, ResolvedDocumentQuotesTextThatLooksLikeADocumentMarker) {
  Document doc = parse("\"--- a\":\n  \"... b\": \"--- c\"\n", "exp.yaml");
  Section root = doc.root();
  Section s = root.section("--- a", "marker-like section");
  EXPECT_EQ(s.string("... b", {.doc = "marker-like string"}), "--- c");
  const std::string resolved = doc.resolved_yaml();
  EXPECT_THAT(resolved, HasSubstr("\"--- a\":"));
  EXPECT_THAT(resolved, HasSubstr("\"... b\": \"--- c\""));
  Document again = parse(resolved, "resolved.yaml");
  Section r = again.root();
  EXPECT_EQ(r.section("--- a", "marker-like section").string("... b", {.doc = "marker-like string"}),
            "--- c");
  EXPECT_EQ(again.resolved_yaml(), resolved);
}

TEST(Config, UnknownKeyOneLetterOffSuggestsTheKnownKey) {
  Document doc = parse("link:\n  bandwidth: 1 GB/s\n  latncy: 5 us\n", "exp.yaml");
  const std::string e = error_of([&] { read_link(doc); });
  EXPECT_THAT(e, HasSubstr("exp.yaml:3:3"));
  EXPECT_THAT(e, HasSubstr("key 'link.latncy'"));
  EXPECT_THAT(e, HasSubstr("did you mean 'latency'?"));
  EXPECT_THAT(e, HasSubstr("Known keys here: arbitration, bandwidth, lanes, latency"));
}

// A mapping whose keys are data (a list of overrides) lists its keys in the order
// written; listing does not read them, so a key left unread is still an unknown key.
TEST(Config, KeysOfAMappingInOrderAndUnreadOnesStillUnknown) {
  Document doc = parse("set:\n  b.c: 2\n  a: x\n  z: 1\n", "s.yaml");
  Section set = doc.root().section("set", "overrides");
  EXPECT_EQ(set.keys(), (std::vector<std::string>{"b.c", "a", "z"}));
  EXPECT_EQ(set.string("b.c", {.doc = "o"}), "2");
  EXPECT_EQ(set.string("a", {.doc = "o"}), "x");
  const std::string e = error_of([&] { doc.finish(); });
  EXPECT_THAT(e, HasSubstr("s.yaml:4:3: key 'set.z': unknown key 'z'"));
}

// A toy component that declares its keys once (config/fields.h): the defaults are the
// member initializers, the reader, the validation and the cache key come from the list.
enum class Order { Fifo, Lifo };
struct Toy {
  std::uint32_t depth = 4;
  Bandwidth rate{25e9};
  Order order = Order::Fifo;
  bool trace = false;
};
void describe(Fields<Toy>& f) {
  f.field("depth", &Toy::depth, {.doc = "queue depth", .unit = "entries", .min = 1, .max = 64});
  f.field("rate", &Toy::rate, {.doc = "drain rate", .min = 0, .min_exclusive = true});
  f.field("order", &Toy::order, {.doc = "service order"}, {{"fifo", Order::Fifo}, {"lifo", Order::Lifo}});
  f.field("trace", &Toy::trace, {.doc = "write a trace"});
  f.check([](const Toy& t) -> std::optional<Invalid> {
    if (t.order == Order::Lifo && t.depth > 16) return Invalid{"depth", "a lifo queue holds at most 16"};
    return std::nullopt;
  });
}

// The same component with one more field, as the next version of it would declare it.
struct ToyWithWidth {
  std::uint32_t depth = 4;
  Bandwidth rate{25e9};
  Order order = Order::Fifo;
  bool trace = false;
  std::uint32_t width = 1;
};
void describe(Fields<ToyWithWidth>& f) {
  f.field("depth", &ToyWithWidth::depth, {.doc = "queue depth", .min = 1, .max = 64});
  f.field("rate", &ToyWithWidth::rate, {.doc = "drain rate", .min = 0, .min_exclusive = true});
  f.field("order", &ToyWithWidth::order, {.doc = "service order"},
          {{"fifo", Order::Fifo}, {"lifo", Order::Lifo}});
  f.field("trace", &ToyWithWidth::trace, {.doc = "write a trace"});
  f.field("width", &ToyWithWidth::width, {.doc = "lanes"});
}

TEST(ConfigFields, ReadsDeclaredKeysWithTheStructsDefaults) {
  Document doc = parse("toy:\n  rate: 100 Gb/s\n  order: lifo\n", "toy.yaml");
  Section s = doc.root().section("toy", "a toy");
  const Toy t = read<Toy>(s);
  doc.finish();
  EXPECT_EQ(t.depth, 4u);  // the member initializer
  EXPECT_DOUBLE_EQ(t.rate.bytes_per_s, 12.5e9);
  EXPECT_EQ(t.order, Order::Lifo);
  EXPECT_FALSE(t.trace);
  // The resolved document writes the defaults out, in the order declared.
  EXPECT_EQ(
      doc.resolved_yaml(),
      "toy:\n  depth: 4  # queue depth\n  rate: 100 Gb/s  # drain rate\n  order: lifo  # service order\n"
      "  trace: false  # write a trace\n");
  ASSERT_EQ(doc.params().size(), 4u);
  EXPECT_EQ(doc.params()[1].def, "2.5e+10 B/s");
  // Defaults may come from another value (a receiver defaulting to its sender).
  Document doc2 = parse("toy:\n  trace: true\n", "toy.yaml");
  Section s2 = doc2.root().section("toy", "a toy");
  const Toy u = read<Toy>(s2, t);
  EXPECT_EQ(u.order, Order::Lifo);
  EXPECT_TRUE(u.trace);
  EXPECT_EQ(doc2.params()[2].def, "lifo");
}

TEST(ConfigFields, ErrorsNameTheFileLineColumnAndKey) {
  auto read_toy = [](const std::string& text) {
    return error_of([&] {
      Document doc = parse(text, "toy.yaml");
      Section s = doc.root().section("toy", "a toy");
      (void)read<Toy>(s);
      doc.finish();
    });
  };
  EXPECT_THAT(
      read_toy("toy:\n  order: fifo\n  depth: 65\n"),
      HasSubstr("toy.yaml:3:10: key 'toy.depth': value '65' is out of range; allowed: >= 1 and <= 64"));
  EXPECT_THAT(read_toy("toy:\n  order: lilo\n"),
              HasSubstr("toy.yaml:2:10: key 'toy.order': unknown value 'lilo'; did you mean 'lifo'?"));
  EXPECT_THAT(read_toy("toy:\n  depht: 3\n"),
              HasSubstr("toy.yaml:2:3: key 'toy.depht': unknown key 'depht'"));
  EXPECT_THAT(read_toy("toy:\n  depht: 3\n"), HasSubstr("did you mean 'depth'?"));
  // A narrow member is held to its type's range even where the declaration gives none.
  Document doc = parse("toy:\n  width: -1\n", "w.yaml");
  Section s = doc.root().section("toy", "a toy");
  EXPECT_THAT(error_of([&] { (void)read<ToyWithWidth>(s); }),
              HasSubstr("w.yaml:2:10: key 'toy.width': value '-1' is out of range; allowed: >= 0 and <= "));
  // A check across fields names the offending key, located where it is written.
  EXPECT_THAT(read_toy("toy:\n  depth: 20\n  order: lifo\n"),
              HasSubstr("toy.yaml:2:10: key 'toy.depth': a lifo queue holds at most 16"));
}

TEST(ConfigFields, ValidateReturnsTheOffendingKey) {
  Toy t;
  EXPECT_EQ(validate(t), std::nullopt);
  t.depth = 0;
  EXPECT_EQ(validate(t),
            (Invalid{"depth", "value '0' is out of range; allowed: >= 1 entries and <= 64 entries"}));
  t.depth = 20;
  t.order = Order::Lifo;
  EXPECT_EQ(validate(t), (Invalid{"depth", "a lifo queue holds at most 16"}));
  t = Toy{};
  t.rate = Bandwidth{0};
  ASSERT_TRUE(validate(t).has_value());
  EXPECT_EQ(validate(t)->key, "rate");
  EXPECT_THAT(validate(t)->reason, HasSubstr("allowed: > 0 B/s"));
}

TEST(ConfigFields, KeyWritesEveryDeclaredField) {
  const Toy a;
  EXPECT_EQ(key_of(a), "depth=4;rate=2.5e+10 B/s;order=fifo;trace=false;");
  // Two values that differ in any one field have different keys.
  Toy b = a;
  b.trace = true;
  EXPECT_NE(key_of(a), key_of(b));
  b = a;
  b.order = Order::Lifo;
  EXPECT_NE(key_of(a), key_of(b));
  b = a;
  b.rate = Bandwidth{25e9 + 1};
  EXPECT_NE(key_of(a), key_of(b));
}

// Adding a field to a component's declaration changes the key of every value, even one
// whose common fields are all equal: a cache keyed by it cannot return a result computed
// before the field existed.
TEST(ConfigFields, AddingAFieldChangesTheKey) {
  const Toy old_value;
  const ToyWithWidth new_value;
  EXPECT_EQ(old_value.depth, new_value.depth);
  EXPECT_EQ(old_value.trace, new_value.trace);
  EXPECT_NE(key_of(old_value), key_of(new_value));
  EXPECT_EQ(key_of(new_value), key_of(old_value) + "width=1;");
}

TEST(ConfigFields, SchemaListsTypeUnitDefaultRangeAndDescription) {
  const std::vector<KeyDoc> keys = schema_of<Toy>();
  ASSERT_EQ(keys.size(), 4u);
  EXPECT_EQ(keys[0].key, "depth");
  EXPECT_EQ(keys[0].type, "integer");
  EXPECT_EQ(keys[0].unit, "entries");
  EXPECT_EQ(keys[0].def, "4");
  EXPECT_EQ(keys[0].range, ">= 1 entries and <= 64 entries");
  EXPECT_EQ(keys[1].unit, "B/s");
  EXPECT_EQ(keys[1].range, "> 0 B/s");
  EXPECT_EQ(keys[2].type, "one of: fifo, lifo");
  EXPECT_EQ(keys[2].def, "fifo");
  EXPECT_EQ(keys[3].type, "boolean");
  EXPECT_EQ(keys[3].doc, "write a trace");
}

// Values handed on as data (the overrides of a sweep or a plan): a scalar as written, a
// quoted one quoted again for --set, a list or mapping in flow form; all of it read, so
// that the keys inside a mapping value are not unknown keys.
TEST(Config, ValuesHandedOnAsDataKeepTheirTextQuotesAndLocation) {
  Document doc = parse(
      "set:\n  a: 1.6 Tb/s\n  b: \"007\"\n  c: {format: synthetic, rate: 1.0, seed: [1, \"2\"]}\n  d:\n"
      "grid:\n  x: [400 Gb/s, \"08\", [1, 2]]\n",
      "s.yaml");
  Section root = doc.root();
  Section set = root.section("set", "overrides");
  EXPECT_EQ(set.kind("c"), Node::Kind::Map);
  EXPECT_EQ(set.kind("absent"), Node::Kind::Null);
  const Section::Value a = set.value("a", "o");
  EXPECT_EQ(a.kind, Node::Kind::Scalar);
  EXPECT_EQ(a.text, "1.6 Tb/s");
  EXPECT_EQ(a.yaml, "1.6 Tb/s");
  EXPECT_EQ(a.source.where(), "s.yaml:2:6");
  const Section::Value b = set.value("b", "o");
  EXPECT_EQ(b.text, "007");
  EXPECT_EQ(b.yaml, "\"007\"");
  const Section::Value c = set.value("c", "o");
  EXPECT_EQ(c.kind, Node::Kind::Map);
  EXPECT_EQ(c.yaml, "{format: synthetic, rate: 1.0, seed: [1, 2]}");
  EXPECT_EQ(c.text, c.yaml);
  EXPECT_EQ(c.source.where(), "s.yaml:4:3");  // a mapping is located at its key
  EXPECT_EQ(set.value("d", "o").yaml, "~");
  const std::vector<Section::Value> x = root.section("grid", "axes").value_list("x", "values");
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x[0].yaml, "400 Gb/s");
  EXPECT_EQ(x[0].source.where(), "s.yaml:7:7");
  EXPECT_EQ(x[1].text, "08");
  EXPECT_EQ(x[1].yaml, "\"08\"");
  EXPECT_EQ(x[1].source.where(), "s.yaml:7:17");
  EXPECT_EQ(x[2].kind, Node::Kind::Seq);
  EXPECT_EQ(x[2].text, "[1, 2]");
  EXPECT_NO_THROW(doc.finish());
}

TEST(Config, AValueListThatIsNotAListOrIsMissingNamesItsKey) {
  Document doc = parse("grid:\n  x: 3\n", "s.yaml");
  Section grid = doc.root().section("grid", "axes");
  EXPECT_THAT(error_of([&] { grid.value_list("x", "the values of x"); }),
              HasSubstr("s.yaml:2:6: key 'grid.x': expected a list (the values of x), found a scalar '3'"));
  EXPECT_THAT(error_of([&] { grid.value_list("y", "the values of y"); }),
              HasSubstr("key 'grid.y': missing required key 'y' (the values of y; expected a list)"));
  EXPECT_THAT(error_of([&] { grid.value("z", "an override"); }),
              HasSubstr("key 'grid.z': missing required key 'z' (an override)"));
}

TEST(Config, BareNumberWhereAUnitIsRequired) {
  Document doc = parse("link:\n  bandwidth: 100\n", "exp.yaml");
  const std::string e = error_of([&] { read_link(doc); });
  EXPECT_THAT(e, HasSubstr("exp.yaml:2:14"));
  EXPECT_THAT(e, HasSubstr("key 'link.bandwidth'"));
  EXPECT_THAT(e, HasSubstr("needs a unit"));
  EXPECT_THAT(e, HasSubstr("found '100'"));
  EXPECT_THAT(e, HasSubstr("Gb/s"));
}

TEST(Config, NegativeBandwidthAndUnknownUnit) {
  Document neg = parse("link:\n  bandwidth: -3 GB/s\n", "exp.yaml");
  EXPECT_THAT(error_of([&] { read_link(neg); }), HasSubstr("cannot be negative"));
  Document zero = parse("link:\n  bandwidth: 0 GB/s\n", "exp.yaml");
  EXPECT_THAT(error_of([&] { read_link(zero); }), HasSubstr("out of range; allowed: > 0 B/s"));
  Document furl = parse("size: 12 furlongs\n", "exp.yaml");
  EXPECT_THAT(error_of([&] {
                Section r = furl.root();
                r.size("size", {.doc = "a size"});
              }),
              HasSubstr("unknown size unit 'furlongs'"));
}

TEST(Config, OutOfRangeWrongTypeMissingKeyAndBadChoice) {
  Document range = parse("link:\n  bandwidth: 1 GB/s\n  lanes: 65\n", "exp.yaml");
  EXPECT_THAT(error_of([&] { read_link(range); }),
              HasSubstr("'65' is out of range; allowed: >= 1 and <= 64"));
  Document type = parse("link:\n  bandwidth: 1 GB/s\n  lanes: four\n", "exp.yaml");
  EXPECT_THAT(error_of([&] { read_link(type); }), HasSubstr("expected an integer, found 'four'"));
  Document section = parse("link: fast\n", "exp.yaml");
  EXPECT_THAT(error_of([&] { read_link(section); }),
              HasSubstr("expected a mapping (a link), found a scalar 'fast'"));
  Document missing = parse("link:\n  lanes: 2\n", "exp.yaml");
  EXPECT_THAT(error_of([&] { read_link(missing); }), HasSubstr("missing required key 'bandwidth'"));
  Document choice = parse("link:\n  bandwidth: 1 GB/s\n  arbitration: fif0\n", "exp.yaml");
  const std::string e = error_of([&] { read_link(choice); });
  EXPECT_THAT(e, HasSubstr("did you mean 'fifo'?"));
  EXPECT_THAT(e, HasSubstr("Allowed: fifo, round_robin"));
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  const std::string e = error_of([] { parse("link:\n  bandwidth: [1 GB/s\n", "exp.yaml"); });
  EXPECT_THAT(e, HasSubstr("exp.yaml:"));
  EXPECT_THAT(e, HasSubstr("syntax error"));
  const std::string dup = error_of([] { parse("a: 1\na: 2\n", "exp.yaml"); });
  EXPECT_THAT(dup, HasSubstr("exp.yaml:2:1"));
  EXPECT_THAT(dup, HasSubstr("duplicate key 'a'"));
}

TEST_F(ConfigFiles, IncludesMergeInOrderAndLocalKeysOverride) {
  write("hw/base.yaml", "link:\n  bandwidth: 1 GB/s\n  lanes: 2\n");
  write("hw/fast.yaml", "link:\n  bandwidth: 8 GB/s\n");
  const fs::path exp = write("exp.yaml", "include: [hw/base.yaml, hw/fast.yaml]\nlink:\n  lanes: 8\n");
  Document doc = load(exp);
  const Link l = read_link(doc);
  EXPECT_DOUBLE_EQ(l.bandwidth.bytes_per_s, 8e9);  // the later include wins
  EXPECT_EQ(l.lanes, 8);                           // the including file wins over both
  // Errors point at the file that wrote the value.
  write("hw/bad.yaml", "link:\n  bandwidth: fast\n");
  const fs::path exp2 = write("exp2.yaml", "include: hw/bad.yaml\n");
  Document doc2 = load(exp2);
  EXPECT_THAT(error_of([&] { read_link(doc2); }), HasSubstr("bad.yaml:2:14"));
}

TEST_F(ConfigFiles, IncludeUnderAKeyReadsJsonAsItIs) {
  write("models/m.json", R"({"hidden_size": 4096, "rope_theta": 500000.0, "num_hidden_layers": 32})");
  const fs::path exp = write("exp.yaml", "model:\n  include: models/m.json\n  num_hidden_layers: 2\n");
  Document doc = load(exp);
  Section root = doc.root();
  Section m = root.section("model", "model");
  EXPECT_EQ(m.integer("hidden_size", {.doc = "width"}), 4096);
  EXPECT_EQ(m.integer("num_hidden_layers", {.doc = "layers"}), 2);
  doc.finish();  // rope_theta is not read: a note, not an error, because it is from JSON
  ASSERT_EQ(doc.notes().size(), 1u);
  EXPECT_EQ(doc.notes()[0].key_path, "model.rope_theta");
}

TEST_F(ConfigFiles, IncludeCycleMissingIncludeEmptyFileAndGarbage) {
  write("a.yaml", "include: b.yaml\nx: 1\n");
  write("b.yaml", "include: a.yaml\n");
  EXPECT_THAT(error_of([&] { load(dir_ / "a.yaml"); }),
              HasSubstr("include cycle: a.yaml -> b.yaml -> a.yaml"));
  write("self.yaml", "include: self.yaml\n");
  EXPECT_THAT(error_of([&] { load(dir_ / "self.yaml"); }), HasSubstr("include cycle"));
  write("c.yaml", "include: nowhere.yaml\n");
  const std::string missing = error_of([&] { load(dir_ / "c.yaml"); });
  EXPECT_THAT(missing, HasSubstr("c.yaml:1:10"));
  EXPECT_THAT(missing, HasSubstr("does not exist"));
  EXPECT_THAT(error_of([&] { load(dir_ / "absent.yaml"); }), HasSubstr("does not exist"));
  write("empty.yaml", "# nothing here\n");
  EXPECT_THAT(error_of([&] { load(dir_ / "empty.yaml"); }), HasSubstr("file is empty"));
  write("list.yaml", "- 1\n- 2\n");
  EXPECT_THAT(error_of([&] { load(dir_ / "list.yaml"); }),
              HasSubstr("expected a mapping of keys at the top level"));
  // Random bytes: refused as binary, never parsed for long.
  std::string garbage(1 << 20, '\0');
  std::mt19937 rng(7);
  for (auto& c : garbage) c = static_cast<char>(rng() & 0xFF);
  write("garbage.yaml", garbage);
  EXPECT_THAT(error_of([&] { load(dir_ / "garbage.yaml"); }), HasSubstr("garbage.yaml"));
  // A file too large to be a configuration (sparse, so the test stays cheap).
  {
    std::ofstream big(dir_ / "big.yaml", std::ios::binary);
    big.seekp(100 * 1000 * 1000);
    big.put('x');
  }
  EXPECT_THAT(error_of([&] { load(dir_ / "big.yaml"); }), HasSubstr("too large for a configuration file"));
}

TEST_F(ConfigFiles, CommandLineOverrides) {
  const fs::path exp = write("exp.yaml", "link:\n  bandwidth: 1 GB/s\n");
  Document doc = load(exp, {"link.bandwidth=2 GB/s", "link.lanes=16"});
  const Link l = read_link(doc);
  EXPECT_DOUBLE_EQ(l.bandwidth.bytes_per_s, 2e9);
  EXPECT_EQ(l.lanes, 16);
  // An override of a key that does not exist is an unknown key, named as an override.
  Document bad = load(exp, {"link.bandwith=2 GB/s"});
  const std::string e = error_of([&] { read_link(bad); });
  EXPECT_THAT(e, HasSubstr("--set 'link.bandwith=2 GB/s'"));
  EXPECT_THAT(e, HasSubstr("did you mean 'bandwidth'?"));
  EXPECT_THAT(error_of([&] { load(exp, {"novalue"}); }), HasSubstr("expected KEY.PATH=VALUE"));
  EXPECT_THAT(error_of([&] { load(exp, {"link.bandwidth.x=1"}); }),
              HasSubstr("cannot set a key inside a scalar"));
}

// Found by fuzzing (fuzz/regressions/fuzz_config/alias_refers_to_itself): an anchor
// whose value refers to itself through an alias used to recurse until the stack
// overflowed (a crash, no message). Now nesting is bounded and named.
TEST(Config, AliasThatRefersToItselfIsAnErrorNotACrash) {
  const std::string e = error_of([] { parse("a: &x\n  b: *x\n", "exp.yaml"); });
  EXPECT_THAT(e, HasSubstr("exp.yaml:"));
  EXPECT_THAT(e, HasSubstr("nested more than 100 levels deep (an alias that refers to itself?)"));
  // 100 levels written out are still read.
  std::string deep;
  for (int i = 0; i < 99; ++i) deep += "{a: ";
  deep += "1";
  for (int i = 0; i < 99; ++i) deep += "}";
  EXPECT_NO_THROW(parse("k: " + deep + "\n", "deep.yaml"));
}

// Found by fuzzing (fuzz/regressions/fuzz_config/nested_aliases_billion_laughs): nine
// lines of aliases of aliases, each level a list of 8 aliases of the one before, stand
// for 8^9 = 134,217,728 values. Copying them into the tree used to run for minutes and
// exhaust memory. Now a file may expand to at most 1,024 + 4 values per byte of its text.
TEST(Config, AliasesExpandingToTooManyValuesAreRefused) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x]\n";
  // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a known false positive)
  // on `"literal" + std::to_string(...)` here.
  for (int i = 1; i < 9; ++i) {
    const std::string n = std::to_string(i), prev = std::to_string(i - 1);
    yaml.append("a").append(n).append(": &a").append(n).append(" [*a").append(prev);
    for (int k = 1; k < 8; ++k) yaml.append(", *a").append(prev);
    yaml += "]\n";
  }
  const std::string e = error_of([&] { parse(yaml, "laughs.yaml"); });
  EXPECT_THAT(e, HasSubstr("laughs.yaml:"));
  EXPECT_THAT(e, HasSubstr("aliases expand to too many values"));
  // A modest use of aliases is fine: 8 x 8 = 64 values from two lines.
  EXPECT_NO_THROW(
      parse("a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8]\na1: [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\n", "ok.yaml"));
}

// Found by fuzzing (fuzz/regressions/fuzz_config/set_include): `--set include.b=2` put an
// `include` key into the tree after includes had been resolved; it was never read, and
// the resolved document (`wse-emu check`) carried it and did not load again.
TEST_F(ConfigFiles, OverrideCannotAddAnInclude) {
  const fs::path exp = write("exp.yaml", "link:\n  bandwidth: 1 GB/s\n");
  const std::string e = error_of([&] { load(exp, {"include.b=2"}); });
  EXPECT_THAT(e, HasSubstr("--set 'include.b=2'"));
  EXPECT_THAT(e, HasSubstr("'include' cannot be set with --set"));
  EXPECT_THAT(error_of([&] { load(exp, {"link.include=other.yaml"}); }),
              HasSubstr("'include' cannot be set"));
}

TEST(Config, DidYouMean) {
  EXPECT_EQ(did_you_mean("bandwith", {"bandwidth", "latency"}), "bandwidth");
  EXPECT_EQ(did_you_mean("zzzzzz", {"bandwidth", "latency"}), std::nullopt);
}

}  // namespace
}  // namespace wse::config
