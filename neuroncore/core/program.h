// A NeuronCore program: instructions for the tensor, vector, scalar and GpSimd engines
// and the DMA queues, each engine executing its own instructions in program order and
// waiting for the instructions it depends on (the semaphores of an NKI kernel).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "neuroncore/core/neuroncore_config.h"

namespace wse::neuron {

enum class Engine : std::uint8_t { kTensor, kVector, kScalar, kGpSimd, kDma };

struct Instruction {
  Engine engine = Engine::kTensor;
  DType dtype = DType::kBf16;
  // Matmul: contraction K (partitions), stationary M, moving N.
  std::uint32_t k = 0;
  std::uint32_t m = 0;
  std::uint32_t n = 0;
  // Element-wise: elements processed.
  std::uint64_t elements = 0;
  // DMA between HBM and SBUF.
  std::uint32_t queue = 0;
  std::uint64_t bytes = 0;
  std::uint64_t hbm_address = 0;
  bool to_hbm = false;
  std::vector<std::uint32_t> deps;  // earlier instructions of the same program
};

class Program {
 public:
  using Id = std::uint32_t;
  Id matmul(std::uint32_t k, std::uint32_t m, std::uint32_t n, DType t, std::initializer_list<Id> deps = {});
  Id elementwise(Engine e, std::uint64_t elements, DType t, std::initializer_list<Id> deps = {});
  Id dma_load(std::uint32_t queue, std::uint64_t hbm_address, std::uint64_t bytes,
              std::initializer_list<Id> deps = {});
  Id dma_store(std::uint32_t queue, std::uint64_t hbm_address, std::uint64_t bytes,
               std::initializer_list<Id> deps = {});
  Id add(Instruction i);
  // Adds a dependency of `id` on `on` (on < id).
  void depend(Id id, Id on);
  const std::vector<Instruction>& instructions() const { return instructions_; }
  std::size_t size() const { return instructions_.size(); }

 private:
  std::vector<Instruction> instructions_;
};

}  // namespace wse::neuron
