#include "wse_mesh/gemv.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "wse_mesh/gemv_pe_engine.h"

namespace wse::wafer {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Elements of a segment of `n` elements carried by wavelet `w`, `per` per wavelet.
std::uint64_t elements_in(std::uint64_t n, std::uint64_t per, std::uint64_t w) {
  return std::min(per, n - w * per);
}

// One incoming stream of partial sums (the sums of one sender, m x n wavelets in order).
struct Stream {
  MessageId msg = UINT32_MAX;
  std::uint64_t added = 0;  // wavelets added so far (the next one's index)
  std::vector<std::pair<std::uint64_t, std::uint64_t>> waiting;  // (delivery cycle, arrival order)
  std::size_t head = 0;
};

struct PeState {
  explicit PeState(detail::GemvPeEngine e) : engine(std::move(e)) {}
  detail::GemvPeEngine engine;
  std::uint32_t vector = 0;     // the vector whose sums this PE is adding (or sending, at a leaf)
  std::uint64_t adds_left = 0;  // adds of `vector` still to book
  std::uint64_t arrivals = 0;   // partial-sum wavelets delivered so far (their arrival order)
  std::uint64_t last_x_delivery = 0;
  std::uint64_t x_delivered = 0;  // x wavelets delivered so far
  std::vector<Stream> streams;
  std::vector<std::uint16_t> contributions;  // per wavelet of sums of `vector`: streams added
  MessageId out = UINT32_MAX;                // the partial sums this PE sends on
};

}  // namespace

GemvResult run_gemv(Fabric& fabric, const PeConfig& pe, const GemvConfig& g) {
  detail::VectorTimes times(g.grid_rows, g.vectors);
  return run_gemv_on(fabric, pe, g, times);
}

GemvResult run_gemv(const FabricConfig& fc, const PeConfig& pe, const GemvConfig& g) {
  FabricConfig sized = fc;
  sized.width = g.origin.x + g.grid_cols;
  sized.height = g.origin.y + g.grid_rows;
  return detail::run_gemm(g, pe, g.origin, [&](const GemvConfig& part, detail::VectorTimes& times) {
    Fabric fabric(sized);
    return run_gemv_on(fabric, pe, part, times);
  });
}

}  // namespace wse::wafer
