// The memory a chip's DMA queues talk to, at one of two fidelities: the bank-level
// HbmSystem, or a single bandwidth pipe for runs too long for per-access scheduling.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/hbm/hbm_system.h"

namespace wse::neuron {

// std::llround for a non-negative time below 2^52 ps, without the libm call (the chip
// simulation rounds a few times per 2 KiB DMA chunk): the fraction x - trunc(x) is
// exact in that range, and halves round up as llround's do.
inline std::uint64_t round_ps(double x) {
  const auto t = static_cast<std::uint64_t>(x);
  return t + (x - static_cast<double>(t) >= 0.5 ? 1 : 0);
}

class HbmBackend {
 public:
  static constexpr std::uint64_t kNever = HbmSystem::kNever;
  using Done = std::function<void(std::uint64_t tag, std::uint64_t done_ps)>;
  virtual ~HbmBackend() = default;
  virtual void submit(std::uint64_t now_ps, std::uint64_t address, std::uint64_t bytes, bool write,
                      std::uint64_t tag) = 0;
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
  // Completions in submission order: the pipe is FIFO and the latency constant, so
  // done times never decrease (a ring buffer, not a heap).
  struct Item {
    std::uint64_t done_ps;
    std::uint64_t tag;
  };
  std::vector<Item> done_;
  std::size_t head_ = 0;
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
  void advance_to(std::uint64_t t_ps, const Done& done) override { system_.advance_to(t_ps, done); }
  std::uint64_t busy_ps() const override;
  double lanes() const override { return system_.config().pseudo_channels(); }
  const HbmSystem& system() const { return system_; }

 private:
  HbmSystem system_;
};

std::unique_ptr<HbmBackend> make_hbm_backend(const HbmConfig& cfg, HbmFidelity f);

}  // namespace wse::neuron
