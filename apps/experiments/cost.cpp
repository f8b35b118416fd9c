#include "apps/experiments/cost.h"

#include "systemc_models/config/config.h"

namespace wse::experiments {

namespace {

struct Price {
  std::string_view kind;
  std::string_view doc;
  std::string_view def;
};

// Each default in one place, cited (docs/hardware_reference.md, "Prices").
constexpr Price kPrices[] = {
    // trn2.48xlarge: no public on-demand price (Oct 2026); "24 h Capacity Block $858.26 = $35.76/h".
    {"trainium_instance",
     "US dollars per hour of one Trainium instance (trn2.48xlarge: 24 h Capacity Block rate)", "35.76"},
    // assumption: "CS-3 system price not published; ~$2-3M per system (2nd estimate)": $2.5M
    // over a 3-year life of 26,298 h (365.25 days) = $95.06/h; power, hosting and margin excluded.
    {"cs3", "US dollars per hour of one CS-3 system (assumption: $2.5M purchase over 3 years, docs/cost.md)",
     "95.06"},
    // p5.48xlarge: "$55.04/h (after AWS's June 2025 cut of up to 45%)".
    {"gpu_instance", "US dollars per hour of one GPU instance (p5.48xlarge on demand)", "55.04"},
};

}  // namespace

FleetPart read_fleet_part(config::Section& root, std::string_view kind, std::uint64_t count) {
  config::Section cost = root.section("cost", "what the machines cost", true);
  config::Section hourly = cost.section("hourly", "US dollars per hour of one machine of each kind", true);
  for (const Price& p : kPrices) {
    if (p.kind != kind) continue;
    FleetPart f;
    f.kind = std::string(kind);
    f.count = count;
    f.usd_per_hour = hourly.number(kind, {.doc = p.doc, .def = p.def, .min = 0});
    return f;
  }
  throw std::logic_error("no price for machine kind " + std::string(kind));
}

double RunCost::fleet_usd_per_hour() const {
  double usd = 0.0;
  for (const FleetPart& f : fleet) usd += static_cast<double>(f.count) * f.usd_per_hour;
  return usd;
}

nlohmann::json RunCost::summary(double simulated_s, std::uint64_t output_tokens,
                                std::uint64_t prompt_tokens) const {
  const double per_hour = fleet_usd_per_hour();
  const double usd = per_hour * simulated_s / 3600.0;
  nlohmann::json machines = nlohmann::json::object();
  for (const FleetPart& f : fleet) {
    machines[f.kind] = {{"count", f.count}, {"usd_per_hour", f.usd_per_hour}};
  }
  const auto per_million = [usd](std::uint64_t tokens) {
    return tokens > 0 ? usd / static_cast<double>(tokens) * 1e6 : 0.0;
  };
  return nlohmann::json{{"fleet", machines},
                        {"fleet_usd_per_hour", per_hour},
                        {"hours", simulated_s / 3600.0},
                        {"usd", usd},
                        {"usd_per_million_output_tokens", per_million(output_tokens)},
                        {"usd_per_million_tokens", per_million(output_tokens + prompt_tokens)}};
}

}  // namespace wse::experiments
