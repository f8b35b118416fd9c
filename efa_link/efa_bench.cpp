#include "efa_link/efa_bench.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <stdexcept>

#include "efa_link/embedded_configs.h"
#include "efa_link/srd_engine.h"
#include "systemc_models/config/config.h"
#include "systemc_models/sim/output.h"

namespace wse::efa {

namespace {

using sim::fmt_num;

double gbps(std::uint64_t bytes, std::uint64_t ps) {
  return ps == 0 ? 0.0 : static_cast<double>(bytes) * 8.0 / (static_cast<double>(ps) * 1e-12) / 1e9;
}

WorkRequest write_request(std::uint64_t bytes, std::uint32_t initiator, std::uint32_t target,
                          std::uint32_t adapter) {
  WorkRequest wr;
  wr.initiator = initiator;
  wr.target = target;
  wr.initiator_adapter = adapter;
  wr.target_adapter = adapter;
  wr.bytes = bytes;
  return wr;
}

// One write on an idle network: (in place, completion) in ps.
Completion one_write(const EfaNetworkConfig& cfg, std::uint64_t bytes, std::uint32_t adapter) {
  SrdEngine e(cfg);
  e.post(write_request(bytes, 0, cfg.senders, adapter), 0);
  e.run();
  return e.completions().at(0);
}

double rails_line_gbps(const EfaNetworkConfig& cfg, std::uint32_t rails) {
  return cfg.sender.line_rate.bytes_per_s * 8.0 / 1e9 * rails;
}

struct SizeSweep {
  std::string csv;
  std::string summary;
};

// Bandwidth and latency vs message size, one work request on an idle network.
void message_size_sweep(const std::vector<std::pair<std::string, EfaNetworkConfig>>& configs, bool quick,
                        sim::CsvWriter& out, sim::CsvWriter& summary) {
  std::vector<std::uint64_t> sizes;
  for (std::uint64_t s = 64; s <= (quick ? (16ULL << 20) : (1ULL << 30)); s *= quick ? 16 : 4)
    sizes.push_back(s);
  for (const auto& [name, cfg] : configs) {
    std::vector<std::uint32_t> rail_choices{1};
    if (cfg.sender.adapters > 1) rail_choices.push_back(cfg.sender.adapters);
    for (std::uint32_t rails : rail_choices) {
      const std::uint32_t adapter = rails == 1 ? 0 : kAllAdapters;
      const double line = rails_line_gbps(cfg, rails);
      double saturation = 0;
      for (std::uint64_t s : sizes) {
        const Completion c = one_write(cfg, s, adapter);
        const double bw = gbps(s, c.completed_ps);
        saturation = std::max(saturation, bw);
        out.row({name, std::to_string(rails), std::to_string(s), fmt_num(c.in_place_ps * 1e-6),
                 fmt_num(c.completed_ps * 1e-6), fmt_num(bw), fmt_num(line), fmt_num(bw / line)});
      }
      // The smallest message (whole packets) reaching half the line rate, by bisection.
      const std::uint64_t mtu = cfg.sender.mtu.bytes;
      std::uint64_t lo = 1, hi = (256ULL << 20) / mtu;
      while (lo < hi) {
        const std::uint64_t mid = (lo + hi) / 2;
        const Completion c = one_write(cfg, mid * mtu, adapter);
        if (gbps(mid * mtu, c.completed_ps) >= 0.5 * line)
          hi = mid;
        else
          lo = mid + 1;
      }
      const Completion small = one_write(cfg, 64, adapter);
      const std::string r = std::to_string(rails);
      summary.row({name, r, "zero_load_in_place_64B", fmt_num(small.in_place_ps * 1e-6), "us"});
      summary.row({name, r, "zero_load_completion_64B", fmt_num(small.completed_ps * 1e-6), "us"});
      summary.row({name, r, "half_line_rate_message", std::to_string(lo * mtu), "B"});
      summary.row({name, r, "saturation_bandwidth", fmt_num(saturation), "Gb/s"});
      summary.row({name, r, "line_rate", fmt_num(line), "Gb/s"});
    }
  }
}

// n concurrent writes of `bytes`, flow i on adapter i mod A, all posted at time 0.
void fairness_sweep(const std::vector<std::pair<std::string, EfaNetworkConfig>>& configs, bool quick,
                    sim::CsvWriter& out) {
  const std::uint64_t bytes = quick ? (4ULL << 20) : (16ULL << 20);
  for (const auto& [name, cfg] : configs) {
    for (std::uint32_t n : quick ? std::vector<std::uint32_t>{1, 4, 17, 64}
                                 : std::vector<std::uint32_t>{1, 2, 4, 8, 16, 17, 24, 32, 48, 64}) {
      SrdEngine e(cfg);
      for (std::uint32_t i = 0; i < n; ++i)
        e.post(write_request(bytes, 0, cfg.senders, i % cfg.sender.adapters), 0);
      e.run();
      double sum = 0, sum_sq = 0, lo = 1e300, hi = 0;
      std::uint64_t last = 0;
      for (const Completion& c : e.completions()) {
        const double x = gbps(bytes, c.completed_ps - c.posted_ps);
        sum += x;
        sum_sq += x * x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        last = std::max(last, c.completed_ps);
      }
      const double jain = sum * sum / (n * sum_sq);
      const double aggregate = gbps(bytes * n, last);
      out.row({name, std::to_string(cfg.sender.adapters), std::to_string(n), std::to_string(bytes),
               fmt_num(aggregate), fmt_num(rails_line_gbps(cfg, cfg.sender.adapters)), fmt_num(jain),
               fmt_num(lo), fmt_num(hi)});
    }
  }
}

// Completion-time percentiles of a stream of writes under random packet loss.
void loss_sweep(const EfaNetworkConfig& base, const std::string& name, bool quick, sim::CsvWriter& out) {
  const std::uint32_t count = quick ? 64 : 1000;
  const std::uint64_t bytes = 1ULL << 20;
  const std::uint64_t gap_ps = 20'000'000;  // 1 MiB every 20 us = 420 Gb/s offered, 1/8 of the attachment
  for (double loss : {0.0, 1e-4, 1e-3, 1e-2}) {
    EfaNetworkConfig cfg = base;
    cfg.srd.loss_probability = loss;
    SrdEngine e(cfg);
    for (std::uint32_t i = 0; i < count; ++i)
      e.post(write_request(bytes, 0, cfg.senders, i % cfg.sender.adapters), i * gap_ps);
    e.run();
    std::vector<double> t;
    std::uint32_t failed = 0;
    for (const Completion& c : e.completions()) {
      if (!c.ok) ++failed;
      t.push_back(static_cast<double>(c.completed_ps - c.posted_ps) * 1e-6);
    }
    std::sort(t.begin(), t.end());
    auto pct = [&](double q) {
      const auto k = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(t.size())));
      return t[std::min(t.size() - 1, k == 0 ? 0 : k - 1)];
    };
    out.row({name, fmt_num(loss), std::to_string(count), std::to_string(bytes), fmt_num(pct(50)),
             fmt_num(pct(90)), fmt_num(pct(99)), fmt_num(pct(99.9)), fmt_num(t.back()),
             std::to_string(e.packets_lost()), std::to_string(e.packets_retransmitted()),
             std::to_string(failed)});
  }
}

// One write over 1..64 paths, path 0 carrying 90% cross traffic.
void path_sweep(const EfaNetworkConfig& base, const std::string& name, bool quick, sim::CsvWriter& out) {
  const std::uint64_t bytes = quick ? (8ULL << 20) : (64ULL << 20);
  for (PathSelection sel : {PathSelection::RoundRobin, PathSelection::Adaptive}) {
    for (std::uint32_t paths : {1U, 2U, 4U, 8U, 16U, 64U}) {
      EfaNetworkConfig cfg = base;
      cfg.fabric.paths = paths;
      cfg.fabric.congestion = {PathCongestion{0, 0.9}};
      cfg.srd.path_selection = sel;
      cfg.srd.retry_budget = 200;  // let oblivious spraying finish, however many timeouts
      SrdEngine e(cfg);
      e.post(write_request(bytes, 0, cfg.senders, 0), 0);
      e.run();
      const Completion& c = e.completions().at(0);
      out.row({name, sel == PathSelection::Adaptive ? "adaptive" : "round_robin", std::to_string(paths),
               std::to_string(bytes), c.ok ? "1" : "0", fmt_num(c.completed_ps * 1e-6),
               fmt_num(gbps(bytes, c.completed_ps)), std::to_string(c.packets_retransmitted),
               std::to_string(e.packets_duplicate())});
    }
  }
}

// N sender machines each write one striped message to a single receiver at time 0
// (incast): the receiver's ports are the shared bottleneck.
void incast_sweep(const EfaNetworkConfig& base, bool quick, sim::CsvWriter& out) {
  const std::uint64_t bytes = quick ? (8ULL << 20) : (64ULL << 20);
  EfaNetworkConfig cs3 = base;
  // assumption: the decode side's ~1.2 Tb/s of system I/O (hardware.md, EFA section)
  // reached as 6 adapters of 200 Gb/s.
  cs3.receiver.adapters = 6;
  for (const auto& [receiver, cfg0] : {std::make_pair(std::string("trn2_48xlarge"), base),
                                       std::make_pair(std::string("6x200G_1.2Tbps"), cs3)}) {
    for (std::uint32_t n :
         quick ? std::vector<std::uint32_t>{1, 4} : std::vector<std::uint32_t>{1, 2, 4, 8}) {
      EfaNetworkConfig cfg = cfg0;
      cfg.senders = n;
      SrdEngine e(cfg);
      for (std::uint32_t i = 0; i < n; ++i) e.post(write_request(bytes, i, n, kAllAdapters), 0);
      e.run();
      double sum = 0, sum_sq = 0, lo = 1e300, hi = 0;
      std::uint64_t last = 0;
      std::uint32_t failed = 0;
      for (const Completion& c : e.completions()) {
        if (!c.ok) ++failed;
        const double x = gbps(bytes, c.completed_ps - c.posted_ps);
        sum += x;
        sum_sq += x * x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        last = std::max(last, c.completed_ps);
      }
      out.row({receiver, std::to_string(n), std::to_string(bytes), fmt_num(gbps(bytes * n, last)),
               fmt_num(cfg.receiver.line_rate.bytes_per_s * 8e-9 * cfg.receiver.adapters),
               fmt_num(sum * sum / (n * sum_sq)), fmt_num(lo), fmt_num(hi), std::to_string(failed)});
    }
  }
}

}  // namespace

EfaNetworkConfig shipped_config(std::string_view name) {
  const char* text = nullptr;
  if (name == "trn2_48xlarge") text = embedded::kTrn2_48xlarge;
  if (name == "c5n") text = embedded::kC5n;
  if (!text) throw std::invalid_argument("no shipped EFA configuration named '" + std::string(name) + "'");
  config::Document doc = config::parse(text, "configs/hardware/efa_" + std::string(name) + ".yaml");
  config::Section efa = doc.root().section("efa", "the EFA link");
  EfaNetworkConfig c = read_efa_config(efa);
  doc.finish();
  return c;
}

std::vector<std::string> run_efa_bench(const sim::BenchArgs& args) {
  const std::vector<std::pair<std::string, EfaNetworkConfig>> configs{
      {"trn2_48xlarge", shipped_config("trn2_48xlarge")}, {"c5n", shipped_config("c5n")}};
  std::vector<std::string> files;
  auto say = [&](const std::string& what) {
    if (!args.quiet) std::cerr << "efa bench: " << what << "\n";
  };

  say("bandwidth and latency vs message size");
  sim::CsvWriter sizes({"config", "rails", "message_bytes", "in_place_us", "completion_us", "bandwidth_gbps",
                        "line_rate_gbps", "fraction_of_line_rate"});
  sim::CsvWriter summary({"config", "rails", "metric", "value", "unit"});
  message_size_sweep(configs, args.quick, sizes, summary);
  sim::write_file_atomic(args.out_dir / "efa_message_size.csv", sizes.str());
  sim::write_file_atomic(args.out_dir / "efa_summary.csv", summary.str());
  files.push_back("efa_message_size.csv");
  files.push_back("efa_summary.csv");

  say("fairness of concurrent flows");
  sim::CsvWriter fair({"config", "adapters", "flows", "message_bytes", "aggregate_gbps",
                       "attachment_line_rate_gbps", "jain_index", "min_flow_gbps", "max_flow_gbps"});
  fairness_sweep(configs, args.quick, fair);
  sim::write_file_atomic(args.out_dir / "efa_fairness.csv", fair.str());
  files.push_back("efa_fairness.csv");

  say("packet loss vs completion time");
  sim::CsvWriter loss({"config", "loss_probability", "messages", "message_bytes", "p50_us", "p90_us",
                       "p99_us", "p999_us", "max_us", "packets_lost", "packets_retransmitted", "failed"});
  loss_sweep(configs[0].second, configs[0].first, args.quick, loss);
  sim::write_file_atomic(args.out_dir / "efa_loss.csv", loss.str());
  files.push_back("efa_loss.csv");

  say("path count under one congested path");
  sim::CsvWriter paths({"config", "path_selection", "paths", "message_bytes", "ok", "completion_us",
                        "bandwidth_gbps", "packets_retransmitted", "packets_duplicate"});
  path_sweep(configs[0].second, configs[0].first, args.quick, paths);
  sim::write_file_atomic(args.out_dir / "efa_paths.csv", paths.str());
  files.push_back("efa_paths.csv");

  say("incast: several senders into one receiver");
  sim::CsvWriter incast({"receiver", "senders", "message_bytes", "aggregate_gbps", "receiver_line_rate_gbps",
                         "jain_index", "min_flow_gbps", "max_flow_gbps", "failed"});
  incast_sweep(configs[0].second, args.quick, incast);
  sim::write_file_atomic(args.out_dir / "efa_incast.csv", incast.str());
  files.push_back("efa_incast.csv");
  return files;
}

}  // namespace wse::efa
