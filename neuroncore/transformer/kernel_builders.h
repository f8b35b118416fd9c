// Building blocks of the NeuronCore programs the transformer mapping emits: DMA
// transfers split over a core's queues, rings of SBUF and PSUM buffers, the QK^T matmuls
// of an attention block, the DMA pieces of a byte stream, and the smallest DMA piece that
// keeps a chip's queues ahead of its HBM. Shared by the operator kinds (gemm_op.h,
// attention_op.h, decode_attention_op.h, elementwise_op.h, collective_op.h, runtime_op.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "neuroncore/core/neuroncore_config.h"
#include "neuroncore/core/program.h"
#include "systemc_models/units/integer.h"
#include "workloads/model/operators.h"

namespace wse::neuron {

// The tensor engine's type for a model's data type.
DType chip_dtype(workloads::DType t);

// A byte count in binary units, for messages.
std::string binary(std::uint64_t bytes);

// Emits DMA instructions moving `bytes` split over the core's queues (pieces of at least
// 4 KiB, as the GEMM lowering does), each depending on `deps`; returns the pieces.
struct DmaEmitter {
  Program& prog;
  std::uint32_t queues;
  std::uint32_t next = 0;
  std::uint64_t address = 0;                     // a fresh, contiguous HBM range per transfer
  std::uint64_t limit = std::uint64_t{1} << 36;  // wraps within the HBM
  std::vector<Program::Id> transfer(bool store, std::uint64_t bytes, const std::vector<Program::Id>& deps,
                                    std::uint32_t max_pieces = 0) {
    const std::uint32_t cap = max_pieces == 0 ? queues : std::min(queues, max_pieces);
    const std::uint64_t pieces = std::clamp<std::uint64_t>(bytes / 4096, 1, cap);
    const std::uint64_t piece = ceil_div(std::max<std::uint64_t>(bytes, 1), pieces);
    std::vector<Program::Id> ids;
    for (std::uint64_t off = 0; off < std::max<std::uint64_t>(bytes, 1); off += piece) {
      const std::uint64_t len = std::min(piece, std::max<std::uint64_t>(bytes, 1) - off);
      const Program::Id id =
          store ? prog.dma_store(next, address + off, len) : prog.dma_load(next, address + off, len);
      for (Program::Id d : deps) prog.depend(id, d);
      next = (next + 1) % queues;
      ids.push_back(id);
    }
    address = (address + bytes + 4096) % limit;
    return ids;
  }
};

inline void depend_all(Program& p, Program::Id id, const std::vector<Program::Id>& on) {
  for (Program::Id d : on) p.depend(id, d);
}

// Buffers that work passes through in turn (SBUF slots of streamed K/V blocks, PSUM
// score or output banks): a new user of a buffer waits for the instruction that last
// read it.
class BufferRing {
 public:
  explicit BufferRing(std::size_t buffers) : reader_(buffers, 0), read_(buffers, false) {}
  std::size_t next() { return used_++ % reader_.size(); }
  // What a new user of `b` waits for: nothing the first time round.
  std::vector<Program::Id> wait_for(std::size_t b) const {
    return read_[b] ? std::vector<Program::Id>{reader_[b]} : std::vector<Program::Id>{};
  }
  void order_after_reader(Program& p, Program::Id id, std::size_t b) const {
    if (read_[b]) p.depend(id, reader_[b]);
  }
  void read_by(std::size_t b, Program::Id id) {
    reader_[b] = id;
    read_[b] = true;
  }

 private:
  std::vector<Program::Id> reader_;
  std::vector<bool> read_;
  std::uint64_t used_ = 0;
};

// QK^T of m queries against n keys into the next score bank: matmuls over the head
// dimension dk in slices of the array's rows, each after the queries, the keys and the
// bank's last reader. Returns the last matmul and the bank.
inline std::pair<Program::Id, std::size_t> qk_scores(Program& prog, BufferRing& banks, std::uint32_t dk,
                                                     std::uint32_t rows, std::uint32_t m, std::uint32_t n,
                                                     const std::vector<Program::Id>& q,
                                                     const std::vector<Program::Id>& k) {
  const std::size_t bank = banks.next();
  Program::Id mm = 0;
  for (std::uint32_t d0 = 0; d0 < dk; d0 += rows) {
    mm = prog.matmul(std::min(rows, dk - d0), m, n, DType::kBf16);
    depend_all(prog, mm, q);
    depend_all(prog, mm, k);
    banks.order_after_reader(prog, mm, bank);
  }
  return {mm, bank};
}

// DMA instructions covering a contiguous byte stream, in order: the ones a consumer of
// [begin, end) waits for.
struct PieceStream {
  std::vector<std::uint64_t> end;  // end offset of each piece
  std::vector<Program::Id> id;
  std::pair<std::size_t, std::size_t> covering(std::uint64_t begin, std::uint64_t stop) const {
    const auto first =
        static_cast<std::size_t>(std::upper_bound(end.begin(), end.end(), begin) - end.begin());
    auto last = static_cast<std::size_t>(std::lower_bound(end.begin(), end.end(), stop) - end.begin());
    last = std::min(last + 1, end.size());
    return {first, last};
  }
  void depend(Program& p, Program::Id consumer, std::uint64_t begin, std::uint64_t stop) const {
    const auto [a, b] = covering(begin, stop);
    for (std::size_t i = a; i < b; ++i) p.depend(consumer, id[i]);
  }
};

// The smallest DMA instruction that still lets a chip's queues outrun its HBM
// (kernel_builders.cpp gives the equation); 0 when the queues cannot outrun the HBM at
// all.
std::uint64_t smallest_efficient_dma_piece(const ChipConfig& chip);

}  // namespace wse::neuron
