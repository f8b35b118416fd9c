// EventHeap: the pending events of a discrete-event engine, earliest first, as a 4-ary
// min-heap in one vector. The engines that use it (the Trainium chip, the EFA SRD
// transport) order their events by (time, sequence number), a total order, so any exact
// priority queue pops them in the same order: this one replaces std::priority_queue only
// to make a pop cheaper (half the levels of a binary heap, and a node's four children
// share a cache line or two), not to change what is simulated.
//
// `Later(a, b)` is true when a comes after b (std::greater<> on events with operator>).
#pragma once

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

namespace wse::sim {

template <class T, class Later = std::greater<>>
class EventHeap {
 public:
  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  const T& top() const { return items_.front(); }

  void push(T item) {
    std::size_t i = items_.size();
    items_.push_back(std::move(item));
    T moving = std::move(items_[i]);
    while (i > 0) {
      const std::size_t parent = (i - 1) / kArity;
      if (!later_(items_[parent], moving)) break;
      items_[i] = std::move(items_[parent]);
      i = parent;
    }
    items_[i] = std::move(moving);
  }

  void pop() {
    T moving = std::move(items_.back());
    items_.pop_back();
    const std::size_t n = items_.size();
    if (n == 0) return;
    std::size_t i = 0;
    for (;;) {
      const std::size_t first = i * kArity + 1;
      if (first >= n) break;
      const std::size_t end = first + kArity < n ? first + kArity : n;
      std::size_t best = first;
      for (std::size_t c = first + 1; c < end; ++c) {
        if (later_(items_[best], items_[c])) best = c;
      }
      if (!later_(moving, items_[best])) break;
      items_[i] = std::move(items_[best]);
      i = best;
    }
    items_[i] = std::move(moving);
  }

  void clear() { items_.clear(); }

 private:
  static constexpr std::size_t kArity = 4;
  std::vector<T> items_;
  [[no_unique_address]] Later later_{};
};

}  // namespace wse::sim
