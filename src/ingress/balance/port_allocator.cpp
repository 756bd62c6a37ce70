#include "port_allocator.hpp"

#include <stdexcept>

namespace xdpfwd::ingress::balance {

PortAllocator::PortAllocator(PortRange range)
    : range_(range), size_(static_cast<std::uint32_t>(range.last) - range.first + 1) {
  if (range.first == 0 || range.first > range.last) {
    throw std::invalid_argument("NAT port range must be first..last with 0 < first <= last");
  }
}

void PortAllocator::reset(SlotPools& sp, std::uint32_t generation) {
  sp.generation = generation;
  for (Pool& pool : sp.pools) {
    pool.ring.resize(size_);
    for (std::uint32_t i = 0; i < size_; ++i) {
      pool.ring[i] = static_cast<std::uint16_t>(range_.first + i);
    }
    pool.used.assign((size_ + 63) / 64, 0);
    pool.head = 0;
    pool.free_count = size_;
  }
  sp.ready = true;
}

PortAllocator::SlotPools& PortAllocator::pools_for(ReplicaRef replica) {
  if (replica.slot >= slots_.size()) slots_.resize(replica.slot + 1);
  SlotPools& sp = slots_[replica.slot];
  // A new replica in the slot starts with every port free: the old one's flows are gone.
  if (!sp.ready || sp.generation != replica.generation) reset(sp, replica.generation);
  return sp;
}

void PortAllocator::prepare(ReplicaRef replica) { pools_for(replica); }

std::optional<std::uint16_t> PortAllocator::allocate(ReplicaRef replica, IpProto proto) {
  const std::size_t p = pool_index(proto);
  if (p >= kProtocols) return std::nullopt;
  Pool& pool = pools_for(replica).pools[p];
  if (pool.free_count == 0) {
    ++exhausted_;
    return std::nullopt;
  }
  const std::uint16_t port = pool.ring[pool.head];
  pool.head = pool.head + 1 == size_ ? 0 : pool.head + 1;
  --pool.free_count;
  const std::uint32_t bit = port - range_.first;
  pool.used[bit / 64] |= std::uint64_t{1} << (bit % 64);
  return port;
}

void PortAllocator::free(ReplicaRef replica, IpProto proto, std::uint16_t port) noexcept {
  const std::size_t p = pool_index(proto);
  if (p >= kProtocols || replica.slot >= slots_.size()) return;
  SlotPools& sp = slots_[replica.slot];
  if (!sp.ready || sp.generation != replica.generation) return; // replica left: pool was reset
  Pool& pool = sp.pools[p];
  if (port < range_.first || port > range_.last) {
    ++bad_frees_;
    return;
  }
  const std::uint32_t bit = port - range_.first;
  const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
  if ((pool.used[bit / 64] & mask) == 0) {
    ++bad_frees_;
    return;
  }
  pool.used[bit / 64] &= ~mask;
  std::uint32_t tail = pool.head + pool.free_count;
  if (tail >= size_) tail -= size_;
  pool.ring[tail] = port;
  ++pool.free_count;
}

std::uint32_t PortAllocator::in_use(ReplicaRef replica, IpProto proto) const noexcept {
  const std::size_t p = pool_index(proto);
  if (p >= kProtocols || replica.slot >= slots_.size()) return 0;
  const SlotPools& sp = slots_[replica.slot];
  if (!sp.ready || sp.generation != replica.generation) return 0;
  return size_ - sp.pools[p].free_count;
}

} // namespace xdpfwd::ingress::balance
