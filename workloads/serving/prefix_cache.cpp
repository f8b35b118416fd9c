#include "workloads/serving/prefix_cache.h"

namespace wse::serving {

std::uint64_t PrefixCache::leading_hits(const std::vector<std::uint64_t>& hashes) const {
  std::uint64_t n = 0;
  for (std::uint64_t h : hashes) {
    if (map_.find(h) == map_.end()) break;
    ++n;
  }
  return n;
}

void PrefixCache::insert(const std::vector<std::uint64_t>& hashes) {
  if (capacity_ == 0) return;
  for (std::uint64_t h : hashes) {
    auto it = map_.find(h);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      continue;
    }
    lru_.push_front(h);
    map_[h] = lru_.begin();
    if (map_.size() > capacity_) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
  }
}

}  // namespace wse::serving
