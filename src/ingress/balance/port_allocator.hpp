// Source ports (ICMP echo identifiers) for client_ip nat. With nat, a replica's replies
// all go to the ingress's one overlay address, so the port is what tells flows apart: it
// must be unique per (replica, protocol) while the flow lives.
//
// Each (replica, protocol) has a FIFO ring of free ports: allocate and free are O(1), and a
// freed port goes to the back, so it is reused as late as possible (the replica may still
// hold the old connection in TIME_WAIT).
//
// The default range 20000-59999 (40000 ports per replica and protocol) overlaps the kernel's
// ephemeral range (32768-60999): the ingress netns must move its own
// net.ipv4.ip_local_port_range (per netns) out of the way, e.g. to 60000-65535, so that
// health checks and the terminating path never collide with NAT'ed flows.
#pragma once

#include "balancer.hpp"
#include "flow_key.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace xdpfwd::ingress::balance {

struct PortRange {
  std::uint16_t first = 20000;
  std::uint16_t last = 59999; // inclusive
};

class PortAllocator {
public:
  // Throws std::invalid_argument when first > last or first == 0 (start-up boundary).
  explicit PortAllocator(PortRange range = {});

  // Whether a protocol can be NAT'ed here (TCP, UDP, ICMP/ICMPv6 echo).
  static bool supports(IpProto proto) noexcept { return pool_index(proto) < kProtocols; }

  // Makes the replica's pools ready (control path). allocate() does it on first use otherwise:
  // a one-time allocation per replica slot, later replicas in the slot reuse the memory.
  void prepare(ReplicaRef replica);

  // A free port, or nullopt when the range is used up (counted in exhausted()) or the
  // protocol has no ports.
  std::optional<std::uint16_t> allocate(ReplicaRef replica, IpProto proto);
  // Gives a port back. A port of a replica that has since left its slot, or one not
  // allocated, is ignored (the latter counted in bad_frees()).
  void free(ReplicaRef replica, IpProto proto, std::uint16_t port) noexcept;

  std::uint32_t in_use(ReplicaRef replica, IpProto proto) const noexcept;
  std::uint32_t range_size() const noexcept { return size_; }
  std::uint64_t exhausted() const noexcept { return exhausted_; }
  std::uint64_t bad_frees() const noexcept { return bad_frees_; }

private:
  static constexpr std::size_t kProtocols = 3; // tcp, udp, icmp (v4 and v6 share)
  static std::size_t pool_index(IpProto proto) noexcept {
    switch (proto) {
    case IpProto::Tcp: return 0;
    case IpProto::Udp: return 1;
    case IpProto::Icmp:
    case IpProto::Icmpv6: return 2;
    }
    return kProtocols;
  }

  struct Pool {
    std::vector<std::uint16_t> ring; // free ports, FIFO
    std::vector<std::uint64_t> used; // bitmap by port - first: catches double frees
    std::uint32_t head = 0;
    std::uint32_t free_count = 0;
  };
  struct SlotPools {
    bool ready = false;
    std::uint32_t generation = 0;
    Pool pools[kProtocols];
  };

  SlotPools& pools_for(ReplicaRef replica);
  void reset(SlotPools& pools, std::uint32_t generation);

  PortRange range_;
  std::uint32_t size_;
  std::vector<SlotPools> slots_;
  std::uint64_t exhausted_ = 0;
  std::uint64_t bad_frees_ = 0;
};

} // namespace xdpfwd::ingress::balance
