// Prefix reuse from Mooncake hash ids: each id names one 512-token block of a prompt,
// and a prompt whose leading blocks are already cached (with their KV) on the prefill
// instance skips computing them. Least-recently-used replacement over a capacity in
// blocks.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

namespace wse::serving {

class PrefixCache {
 public:
  explicit PrefixCache(std::uint64_t capacity_blocks) : capacity_(capacity_blocks) {}
  // Number of leading blocks of `hashes` present (a prefix stops at the first miss).
  std::uint64_t leading_hits(const std::vector<std::uint64_t>& hashes) const;
  // Marks all blocks as most recently used, inserting the missing ones.
  void insert(const std::vector<std::uint64_t>& hashes);
  std::uint64_t size() const { return map_.size(); }

 private:
  std::uint64_t capacity_;
  std::list<std::uint64_t> lru_;  // front = most recent
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> map_;
};

}  // namespace wse::serving
