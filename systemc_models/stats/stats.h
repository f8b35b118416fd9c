// Typed, self-described statistics.
//
// Every module that measures something owns a stats::Group named after its place in
// the module tree (usually its sc_module name) and adds scalars, counters,
// distributions and utilizations to it, each with a unit and a description. One walker
// (stats::collect) finds the groups of every module that implements stats::Provider
// and writes them all to JSON; nothing is looked up by string on a hot path: a model
// keeps a reference to its stat and updates it directly.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace wse::stats {

class Stat {
 public:
  Stat(std::string name, std::string unit, std::string description)
      : name_(std::move(name)), unit_(std::move(unit)), description_(std::move(description)) {}
  virtual ~Stat() = default;
  Stat(const Stat&) = delete;
  Stat& operator=(const Stat&) = delete;

  const std::string& name() const { return name_; }
  const std::string& unit() const { return unit_; }
  const std::string& description() const { return description_; }
  // Writes {"value"|"mean"...: , "unit":, "description":} for a run of `elapsed_s`.
  virtual void to_json(nlohmann::json& out, double elapsed_s) const = 0;
  virtual void reset() = 0;

 private:
  std::string name_;
  std::string unit_;
  std::string description_;
};

// A value that is set (a configuration-derived figure, a final measurement).
class Scalar final : public Stat {
 public:
  using Stat::Stat;
  void set(double v) { value_ = v; }
  double value() const { return value_; }
  void to_json(nlohmann::json& out, double elapsed_s) const override;
  void reset() override { value_ = 0.0; }

 private:
  double value_ = 0.0;
};

// A monotonically increasing count (bytes moved, packets, transactions).
class Counter final : public Stat {
 public:
  using Stat::Stat;
  void add(std::uint64_t n = 1) { value_ += n; }
  Counter& operator+=(std::uint64_t n) {
    value_ += n;
    return *this;
  }
  std::uint64_t value() const { return value_; }
  void to_json(nlohmann::json& out, double elapsed_s) const override;
  void reset() override { value_ = 0; }

 private:
  std::uint64_t value_ = 0;
};

// Samples kept exactly, so that percentiles are exact and deterministic.
class Distribution final : public Stat {
 public:
  using Stat::Stat;
  void sample(double v) { samples_.push_back(v); }
  std::size_t count() const { return samples_.size(); }
  double mean() const;
  double min() const;
  double max() const;
  // Nearest-rank percentile, q in [0, 100]. 0 when there are no samples.
  double percentile(double q) const;
  const std::vector<double>& samples() const { return samples_; }
  void to_json(nlohmann::json& out, double elapsed_s) const override;
  void reset() override {
    samples_.clear();
    sorted_.clear();
  }

 private:
  std::vector<double> samples_;
  // The samples sorted, kept for the percentiles asked until the next sample (a
  // whole-trace run asks several of each of its millions-long distributions).
  mutable std::vector<double> sorted_;
};

// Busy time of a resource; its value is busy / elapsed, a fraction in [0, 1].
// The summary lists every Utilization under "utilization" keyed by its path.
class Utilization final : public Stat {
 public:
  Utilization(std::string name, std::string description)
      : Stat(std::move(name), "fraction", std::move(description)) {}
  void add_busy(double seconds) { busy_s_ += seconds; }
  double busy_seconds() const { return busy_s_; }
  // Number of parallel units the busy time is spread over (a resource of `lanes`
  // identical servers is fully used when busy_s == lanes * elapsed).
  void set_lanes(double lanes) { lanes_ = lanes; }
  double fraction(double elapsed_s) const;
  void to_json(nlohmann::json& out, double elapsed_s) const override;
  void reset() override { busy_s_ = 0.0; }

 private:
  double busy_s_ = 0.0;
  double lanes_ = 1.0;
};

class Group {
 public:
  explicit Group(std::string name) : name_(std::move(name)) {}
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  const std::string& name() const { return name_; }

  Scalar& scalar(std::string name, std::string unit, std::string description);
  Counter& counter(std::string name, std::string unit, std::string description);
  Distribution& distribution(std::string name, std::string unit, std::string description);
  Utilization& utilization(std::string name, std::string description);
  // A nested group, e.g. one per channel of a memory.
  Group& child(std::string name);

  const std::vector<std::unique_ptr<Stat>>& stats() const { return stats_; }
  const std::deque<Group>& children() const { return children_; }

  // Writes this group's stats and children into `out` (an object).
  void to_json(nlohmann::json& out, double elapsed_s) const;
  // Appends (path, fraction) for every Utilization below this group. `prefix` is the
  // path of this group's parent ("" at top level).
  void collect_utilization(const std::string& prefix, double elapsed_s,
                           std::vector<std::pair<std::string, double>>& out) const;
  void reset();

 private:
  template <class T, class... A>
  T& add(A&&... args);

  std::string name_;
  std::vector<std::unique_ptr<Stat>> stats_;
  std::deque<Group> children_;  // deque: references stay valid as children are added
};

// Implemented by every sc_module (or other object) that owns statistics.
class Provider {
 public:
  virtual ~Provider() = default;
  virtual const Group& stats() const = 0;
};

// Every group reachable from the SystemC object hierarchy (modules implementing
// Provider), followed by `extra` groups owned outside it. Order: depth-first in the
// order the kernel lists objects, which is construction order, hence deterministic.
std::vector<const Group*> collect(const std::vector<const Group*>& extra = {});

// {"<group>": {"<stat>": {...}, "<child>": {...}}} for all groups.
nlohmann::json to_json(const std::vector<const Group*>& groups, double elapsed_s);

// Sorted (path, fraction) of every Utilization in the groups.
std::vector<std::pair<std::string, double>> utilizations(const std::vector<const Group*>& groups,
                                                         double elapsed_s);

// Resources of one kind: the paths that differ only in their indices
// ("efa.sender0.adapter3.tx" and "efa.sender1.adapter0.tx" are "efa.sender*.adapter*.tx").
struct UtilizationClass {
  std::string pattern;  // the path with every index replaced by '*'
  double max = 0.0;
  double mean = 0.0;
  std::size_t count = 0;
  std::string busiest;  // the path with the highest utilization (first in path order on ties)
};

// Classes of `utilizations` (path, fraction), busiest class first (ties: by pattern).
std::vector<UtilizationClass> utilization_classes(
    const std::vector<std::pair<std::string, double>>& utilizations);

}  // namespace wse::stats
