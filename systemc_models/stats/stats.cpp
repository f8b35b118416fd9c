#include "systemc_models/stats/stats.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>
#include <systemc>

namespace wse::stats {

namespace {
void describe(nlohmann::json& out, const Stat& s) {
  out["unit"] = s.unit();
  out["description"] = s.description();
}
}  // namespace

void Scalar::to_json(nlohmann::json& out, double /*elapsed_s*/) const {
  out["value"] = value_;
  describe(out, *this);
}

void Counter::to_json(nlohmann::json& out, double /*elapsed_s*/) const {
  out["value"] = value_;
  describe(out, *this);
}

double Distribution::mean() const {
  if (samples_.empty()) return 0.0;
  double sum = 0.0;
  for (double v : samples_) sum += v;
  return sum / static_cast<double>(samples_.size());
}

double Distribution::min() const {
  return samples_.empty() ? 0.0 : *std::min_element(samples_.begin(), samples_.end());
}

double Distribution::max() const {
  return samples_.empty() ? 0.0 : *std::max_element(samples_.begin(), samples_.end());
}

double Distribution::percentile(double q) const {
  if (samples_.empty()) return 0.0;
  // Samples are only appended (or all cleared), so a sorted copy of the same size is
  // a sort of the current samples.
  if (sorted_.size() != samples_.size()) {
    sorted_ = samples_;
    std::sort(sorted_.begin(), sorted_.end());
  }
  const std::vector<double>& sorted = sorted_;
  // Nearest rank: the smallest value with at least q% of samples at or below it.
  const double rank = std::ceil(q / 100.0 * static_cast<double>(sorted.size()));
  const auto idx = static_cast<std::size_t>(std::clamp(rank, 1.0, static_cast<double>(sorted.size()))) - 1;
  return sorted[idx];
}

void Distribution::to_json(nlohmann::json& out, double /*elapsed_s*/) const {
  out["count"] = samples_.size();
  out["mean"] = mean();
  out["min"] = min();
  out["p50"] = percentile(50);
  out["p90"] = percentile(90);
  out["p99"] = percentile(99);
  out["max"] = max();
  describe(out, *this);
}

double Utilization::fraction(double elapsed_s) const {
  if (elapsed_s <= 0.0 || lanes_ <= 0.0) return 0.0;
  return busy_s_ / (elapsed_s * lanes_);
}

void Utilization::to_json(nlohmann::json& out, double elapsed_s) const {
  out["value"] = fraction(elapsed_s);
  out["busy_s"] = busy_s_;
  describe(out, *this);
}

template <class T, class... A>
T& Group::add(A&&... args) {
  auto p = std::make_unique<T>(std::forward<A>(args)...);
  T& ref = *p;
  stats_.push_back(std::move(p));
  return ref;
}

Scalar& Group::scalar(std::string name, std::string unit, std::string description) {
  return add<Scalar>(std::move(name), std::move(unit), std::move(description));
}
Counter& Group::counter(std::string name, std::string unit, std::string description) {
  return add<Counter>(std::move(name), std::move(unit), std::move(description));
}
Distribution& Group::distribution(std::string name, std::string unit, std::string description) {
  return add<Distribution>(std::move(name), std::move(unit), std::move(description));
}
Utilization& Group::utilization(std::string name, std::string description) {
  return add<Utilization>(std::move(name), std::move(description));
}
Group& Group::child(std::string name) { return children_.emplace_back(std::move(name)); }

void Group::to_json(nlohmann::json& out, double elapsed_s) const {
  if (!out.is_object()) out = nlohmann::json::object();
  for (const auto& s : stats_) s->to_json(out[s->name()], elapsed_s);
  for (const auto& c : children_) c.to_json(out[c.name()], elapsed_s);
}

void Group::collect_utilization(const std::string& prefix, double elapsed_s,
                                std::vector<std::pair<std::string, double>>& out) const {
  const std::string path = prefix.empty() ? name_ : prefix + "." + name_;
  for (const auto& s : stats_) {
    if (const auto* u = dynamic_cast<const Utilization*>(s.get())) {
      out.emplace_back(u->name() == "utilization" ? path : path + "." + u->name(), u->fraction(elapsed_s));
    }
  }
  for (const auto& c : children_) c.collect_utilization(path, elapsed_s, out);
}

void Group::reset() {
  for (auto& s : stats_) s->reset();
  for (auto& c : children_) c.reset();
}

std::vector<const Group*> collect(const std::vector<const Group*>& extra) {
  std::vector<const Group*> out;
  std::function<void(const sc_core::sc_object*)> walk = [&](const sc_core::sc_object* o) {
    if (const auto* p = dynamic_cast<const Provider*>(o)) out.push_back(&p->stats());
    for (const sc_core::sc_object* c : o->get_child_objects()) walk(c);
  };
  for (const sc_core::sc_object* o : sc_core::sc_get_top_level_objects()) walk(o);
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

nlohmann::json to_json(const std::vector<const Group*>& groups, double elapsed_s) {
  nlohmann::json out = nlohmann::json::object();
  for (const Group* g : groups) {
    // A dotted group name ("system.kv_link") nests under its parents.
    nlohmann::json* node = &out;
    std::string_view rest = g->name();
    while (true) {
      const auto dot = rest.find('.');
      if (dot == std::string_view::npos) break;
      node = &(*node)[std::string(rest.substr(0, dot))];
      rest.remove_prefix(dot + 1);
    }
    g->to_json((*node)[std::string(rest)], elapsed_s);
  }
  return out;
}

std::vector<std::pair<std::string, double>> utilizations(const std::vector<const Group*>& groups,
                                                         double elapsed_s) {
  std::vector<std::pair<std::string, double>> out;
  for (const Group* g : groups) g->collect_utilization("", elapsed_s, out);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
// Replaces each run of digits that ends a name component's word ("adapter12") by '*'.
std::string class_pattern(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    const bool digit = path[i] >= '0' && path[i] <= '9';
    if (digit && i > 0 && path[i - 1] != '.' && !(path[i - 1] >= '0' && path[i - 1] <= '9')) {
      std::size_t j = i;
      while (j < path.size() && path[j] >= '0' && path[j] <= '9') ++j;
      if (j == path.size() || path[j] == '.') {
        out += '*';
        i = j - 1;
        continue;
      }
    }
    out += path[i];
  }
  return out;
}
}  // namespace

std::vector<UtilizationClass> utilization_classes(
    const std::vector<std::pair<std::string, double>>& utilizations) {
  std::map<std::string, UtilizationClass> by_pattern;
  for (const auto& [path, f] : utilizations) {
    const std::string p = class_pattern(path);
    UtilizationClass& c = by_pattern[p];
    if (c.count == 0 || f > c.max) {
      c.max = f;
      c.busiest = path;
    }
    c.pattern = p;
    c.mean += f;
    ++c.count;
  }
  std::vector<UtilizationClass> out;
  for (auto& [p, c] : by_pattern) {
    c.mean /= static_cast<double>(c.count);
    out.push_back(c);
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.max > b.max; });
  return out;
}

}  // namespace wse::stats
