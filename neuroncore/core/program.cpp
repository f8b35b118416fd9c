#include "neuroncore/core/program.h"

#include <stdexcept>

namespace wse::neuron {

Program::Id Program::add(Instruction i) {
  const auto id = static_cast<Id>(instructions_.size());
  for (Id d : i.deps) {
    if (d >= id) throw std::invalid_argument("program: an instruction can only wait for earlier ones");
  }
  instructions_.push_back(std::move(i));
  return id;
}

void Program::depend(Id id, Id on) {
  if (on >= id) throw std::invalid_argument("program: an instruction can only wait for earlier ones");
  instructions_.at(id).deps.push_back(on);
}

Program::Id Program::matmul(std::uint32_t k, std::uint32_t m, std::uint32_t n, DType t,
                            std::initializer_list<Id> deps) {
  Instruction i;
  i.engine = Engine::kTensor;
  i.k = k;
  i.m = m;
  i.n = n;
  i.dtype = t;
  i.deps = deps;
  return add(std::move(i));
}

Program::Id Program::elementwise(Engine e, std::uint64_t elements, DType t, std::initializer_list<Id> deps) {
  Instruction i;
  i.engine = e;
  i.elements = elements;
  i.dtype = t;
  i.deps = deps;
  return add(std::move(i));
}

Program::Id Program::dma_load(std::uint32_t queue, std::uint64_t hbm_address, std::uint64_t bytes,
                              std::initializer_list<Id> deps) {
  Instruction i;
  i.engine = Engine::kDma;
  i.queue = queue;
  i.hbm_address = hbm_address;
  i.bytes = bytes;
  i.deps = deps;
  return add(std::move(i));
}

Program::Id Program::dma_store(std::uint32_t queue, std::uint64_t hbm_address, std::uint64_t bytes,
                               std::initializer_list<Id> deps) {
  Id id = dma_load(queue, hbm_address, bytes, deps);
  instructions_[id].to_hbm = true;
  return id;
}

}  // namespace wse::neuron
