#include "neuroncore/transformer/token_sampling.h"

namespace wse::neuron {

SampleInterval token_sample_interval(std::uint64_t x, std::uint64_t grain) {
  if (grain == 0) return {x, x};
  // Steps of g up to 32 g, then doubling per octave: 16 points in [16 g 2^j, 16 g 2^(j+1)).
  std::uint64_t step = grain;
  while (x / step >= 32) step *= 2;
  // Between two multiples L < x < L + step the points are L + 1 and L + step: every count
  // of (L, L + step] has the same number of 128-token tiles when step is a multiple of 128
  // (a row-parallel GEMM's time jumps by ~2% as a tile of rows starts).
  const std::uint64_t base = x / step * step;
  if (base == x || base + 1 == x) return {x, x};
  return {base + 1, base + step};
}

}  // namespace wse::neuron
