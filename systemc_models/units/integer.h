// Integer helpers shared by the models.
#pragma once

#include <cstdint>

namespace wse {

// ceil(a / b) for b > 0 (a + b - 1 must not pass 2^64).
[[nodiscard]] constexpr std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

}  // namespace wse
