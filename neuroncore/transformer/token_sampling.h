// Token counts sampled (PrefillConfig::token_grain): an operator whose time depends on a
// token count is simulated at the sample points around it and interpolated between them.
#pragma once

#include <cstdint>

namespace wse::neuron {

// The two sample points around a token count x for a grain g > 0. The grid: steps of g up
// to 32 g, then 16 steps per octave (in [16 g 2^j, 16 g 2^(j+1)) steps of g 2^j). A count
// strictly between two grid points L and L + step is interpolated between L + 1 and
// L + step (the counts of (L, L + step] have the same number of 128-token tiles when the
// step is a multiple of 128); a grid point or L + 1 is its own sample (lo == hi == x).
// x < g gives {1, g}. grain 0: {x, x}.
struct SampleInterval {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  bool exact() const { return lo == hi; }
  double weight(std::uint64_t x) const {  // of hi
    return exact() ? 0.0 : static_cast<double>(x - lo) / static_cast<double>(hi - lo);
  }
};
SampleInterval token_sample_interval(std::uint64_t x, std::uint64_t grain);

}  // namespace wse::neuron
