// Speed benchmark: the KV caches of the first N requests of the Azure 2023 conversation
// trace for Llama-3.1-70B, sent over one trn2.48xlarge EFA attachment through the
// SystemC/TLM model, each request's cache one RDMA write striped over all adapters,
// posted at the request's arrival time.
//
//   efa_kv_trace_bench [--requests N] [--grain burst|packet] [--trace FILE]
//
// KV bytes per token, Llama-3.1-70B in bf16: 2 (K and V) x 80 layers x 8 KV heads x
// 128 head_dim x 2 B = 327,680 B = 320 KiB.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include "efa_link/efa_bench.h"
#include "efa_link/efa_network.h"

namespace {

constexpr std::uint64_t kKvBytesPerToken = 2ULL * 80 * 8 * 128 * 2;

struct Request {
  double arrival_s;
  std::uint64_t context_tokens;
};

// "2023-11-16 18:15:46.6805900" -> seconds since midnight.
double seconds_of_day(const std::string& stamp) {
  const auto space = stamp.find(' ');
  if (space == std::string::npos || stamp.size() < space + 9)
    throw std::runtime_error("bad TIMESTAMP '" + stamp + "'");
  const std::string t = stamp.substr(space + 1);
  return std::stod(t.substr(0, 2)) * 3600 + std::stod(t.substr(3, 2)) * 60 + std::stod(t.substr(6));
}

// Reads TIMESTAMP,ContextTokens,GeneratedTokens (just enough for this benchmark).
std::vector<Request> read_trace(const std::string& path, std::size_t limit) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open trace '" + path + "'");
  std::string line;
  std::getline(in, line);  // header
  std::vector<Request> out;
  double t0 = -1;
  std::size_t line_no = 1;
  while (out.size() < limit && std::getline(in, line)) {
    ++line_no;
    std::stringstream s(line);
    std::string stamp, ctx;
    if (!std::getline(s, stamp, ',') || !std::getline(s, ctx, ','))
      throw std::runtime_error(path + ":" + std::to_string(line_no) +
                               ": expected TIMESTAMP,ContextTokens,...");
    const double t = seconds_of_day(stamp);
    if (t0 < 0) t0 = t;
    out.push_back({t - t0, std::stoull(ctx)});
  }
  return out;
}

struct KvSender : sc_core::sc_module, tlm::tlm_bw_transport_if<> {
  tlm::tlm_initiator_socket<> socket;
  std::vector<Request> requests;
  std::uint32_t target = 1;
  std::vector<std::unique_ptr<tlm::tlm_generic_payload>> gps;
  std::vector<double> latency_us;
  std::uint64_t failed = 0;

  SC_HAS_PROCESS(KvSender);
  explicit KvSender(sc_core::sc_module_name n) : sc_core::sc_module(n), socket("socket") {
    socket.bind(*this);
    SC_THREAD(run);
  }
  void run() {
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const sc_core::sc_time at(requests[i].arrival_s, sc_core::SC_SEC);
      if (at > sc_core::sc_time_stamp()) wait(at - sc_core::sc_time_stamp());
      auto gp = std::make_unique<tlm::tlm_generic_payload>();
      auto* ext = new wse::efa::EfaWorkRequestExt;
      ext->target = target;
      ext->tag = i;
      gp->set_extension(ext);
      gp->set_command(tlm::TLM_WRITE_COMMAND);
      gp->set_data_ptr(nullptr);                                   // timing only
      ext->bytes = requests[i].context_tokens * kKvBytesPerToken;  // 64-bit: long contexts exceed 4 GiB
      tlm::tlm_phase phase = tlm::BEGIN_REQ;
      sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
      socket->nb_transport_fw(*gp, phase, delay);
      gps.push_back(std::move(gp));
    }
  }
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload& gp, tlm::tlm_phase& phase,
                                     sc_core::sc_time&) override {
    const auto& c = gp.get_extension<wse::efa::EfaWorkRequestExt>()->completion;
    if (!c.ok) ++failed;
    latency_us.push_back(static_cast<double>(c.completed_ps - c.posted_ps) * 1e-6);
    phase = tlm::END_RESP;
    return tlm::TLM_COMPLETED;
  }
  void invalidate_direct_mem_ptr(sc_dt::uint64, sc_dt::uint64) override {}
};

}  // namespace

int sc_main(int argc, char** argv) {
  std::size_t requests = 2000;
  std::string grain = "burst";
  std::string trace = std::string(WSE_SOURCE_DIR) + "/workloads/data/traces/azure2023_conv.csv";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--requests")
      requests = std::stoul(argv[i + 1]);
    else if (k == "--grain")
      grain = argv[i + 1];
    else if (k == "--trace")
      trace = argv[i + 1];
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  try {
    const auto wall0 = std::chrono::steady_clock::now();
    wse::efa::EfaNetworkConfig cfg = wse::efa::shipped_config("trn2_48xlarge");
    cfg.srd.grain = grain == "packet" ? wse::efa::Grain::Packet : wse::efa::Grain::Burst;
    KvSender host("prefill_host");
    host.requests = read_trace(trace, requests);
    std::uint64_t bytes = 0;
    for (const auto& r : host.requests) bytes += r.context_tokens * kKvBytesPerToken;
    wse::efa::EfaNetwork net("efa", cfg);
    host.target = cfg.senders;  // the first receiver machine
    host.socket.bind(net.sender(0).work_requests);
    const auto wall1 = std::chrono::steady_clock::now();
    const std::clock_t cpu1 = std::clock();
    sc_core::sc_start();
    const std::clock_t cpu2 = std::clock();
    const auto wall2 = std::chrono::steady_clock::now();
    std::vector<double> lat = host.latency_us;
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double q) {
      return lat.empty() ? 0.0
                         : lat[std::min(lat.size() - 1, static_cast<std::size_t>(q / 100 * lat.size()))];
    };
    std::printf("requests %zu, KV bytes %.3f TB (%.1f GiB), grain %s\n", host.requests.size(), bytes * 1e-12,
                bytes / 1073741824.0, grain.c_str());
    std::printf(
        "simulated %.3f s, completions %zu (failed %llu), transfer latency p50 %.1f us p99 %.1f us max %.1f "
        "us\n",
        sc_core::sc_time_stamp().to_seconds(), lat.size(), static_cast<unsigned long long>(host.failed),
        pct(50), pct(99), lat.empty() ? 0.0 : lat.back());
    std::printf("engine events %llu, packets sent %llu (retransmitted %llu, duplicates %llu)\n",
                static_cast<unsigned long long>(net.engine().events_processed()),
                static_cast<unsigned long long>(net.engine().packets_sent()),
                static_cast<unsigned long long>(net.engine().packets_retransmitted()),
                static_cast<unsigned long long>(net.engine().packets_duplicate()));
    std::printf("wall time: setup %.3f s, simulation %.3f s (CPU %.3f s)\n",
                std::chrono::duration<double>(wall1 - wall0).count(),
                std::chrono::duration<double>(wall2 - wall1).count(),
                static_cast<double>(cpu2 - cpu1) / CLOCKS_PER_SEC);
    return host.failed == 0 && lat.size() == host.requests.size() ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "efa_kv_trace_bench: " << e.what() << "\n";
    return 1;
  }
}
