// The memory a chip's DMA queues talk to, at one of two fidelities: the bank-level
// HbmSystem, or a single bandwidth pipe for runs too long for per-access scheduling.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <vector>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/hbm/hbm_system.h"

namespace wse::neuron {

class HbmBackend {
 public:
  static constexpr std::uint64_t kNever = HbmSystem::kNever;
  using Done = std::function<void(std::uint64_t tag, std::uint64_t done_ps)>;
  virtual ~HbmBackend() = default;
  virtual void submit(std::uint64_t now_ps, std::uint64_t address, std::uint64_t bytes,
                      bool write, std::uint64_t tag) = 0;
  virtual std::uint64_t next_event_ps() const = 0;
  virtual void advance_to(std::uint64_t t_ps, const Done& done) = 0;
  virtual std::uint64_t busy_ps() const = 0;  // data transfer time summed over lanes
  virtual double lanes() const = 0;
};

// Streaming fidelity: all channels as one FIFO pipe at peak x (1 - tRFC / tREFI), each
// request delivered tRCD + tCL + burst after its last byte leaves the pipe.
class StreamingHbm final : public HbmBackend {
 public:
  explicit StreamingHbm(const HbmConfig& cfg);
  void submit(std::uint64_t now_ps, std::uint64_t address, std::uint64_t bytes, bool write,
              std::uint64_t tag) override;
  std::uint64_t next_event_ps() const override;
  void advance_to(std::uint64_t t_ps, const Done& done) override;
  std::uint64_t busy_ps() const override { return busy_ps_; }
  double lanes() const override { return 1.0; }
  double bytes_per_ps() const { return bytes_per_ps_; }
  std::uint64_t latency_ps() const { return latency_ps_; }

 private:
  double bytes_per_ps_;
  std::uint64_t latency_ps_;
  double free_ps_ = 0.0;
  std::uint64_t busy_ps_ = 0;
  struct Item {
    std::uint64_t done_ps;
    std::uint64_t seq;
    std::uint64_t tag;
    bool operator>(const Item& o) const {
      return done_ps != o.done_ps ? done_ps > o.done_ps : seq > o.seq;
    }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<>> done_;
  std::uint64_t seq_ = 0;
};

// Bank fidelity: the HbmSystem.
class BankHbm final : public HbmBackend {
 public:
  explicit BankHbm(const HbmConfig& cfg) : system_(cfg) {}
  void submit(std::uint64_t now_ps, std::uint64_t address, std::uint64_t bytes, bool write,
              std::uint64_t tag) override {
    system_.submit(now_ps, address, bytes, write, tag);
  }
  std::uint64_t next_event_ps() const override { return system_.next_event_ps(); }
  void advance_to(std::uint64_t t_ps, const Done& done) override {
    system_.advance_to(t_ps, done);
  }
  std::uint64_t busy_ps() const override;
  double lanes() const override { return system_.config().pseudo_channels(); }
  const HbmSystem& system() const { return system_; }

 private:
  HbmSystem system_;
};

std::unique_ptr<HbmBackend> make_hbm_backend(const HbmConfig& cfg, HbmFidelity f);

}  // namespace wse::neuron
