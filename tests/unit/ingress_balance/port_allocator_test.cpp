#include "port_allocator.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <vector>

namespace xdpfwd::ingress::balance {
namespace {

constexpr ReplicaRef kA{0, 0};
constexpr ReplicaRef kB{1, 0};

TEST(PortAllocator, DefaultRangeIs20000To59999) {
  PortAllocator ports;
  EXPECT_EQ(ports.range_size(), 40000U);
  EXPECT_EQ(ports.allocate(kA, IpProto::Tcp), 20000);
}

TEST(PortAllocator, AllocatesEveryPortOnceThenReportsExhaustion) {
  PortAllocator ports({.first = 30000, .last = 30999});
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto p = ports.allocate(kA, IpProto::Udp);
    ASSERT_TRUE(p);
    EXPECT_GE(*p, 30000);
    EXPECT_LE(*p, 30999);
    EXPECT_TRUE(seen.insert(*p).second) << "duplicate " << *p;
  }
  EXPECT_EQ(ports.in_use(kA, IpProto::Udp), 1000U);
  EXPECT_FALSE(ports.allocate(kA, IpProto::Udp));
  EXPECT_FALSE(ports.allocate(kA, IpProto::Udp));
  EXPECT_EQ(ports.exhausted(), 2U);
}

TEST(PortAllocator, PoolsArePerReplicaAndProtocol) {
  PortAllocator ports({.first = 40000, .last = 40001});
  EXPECT_EQ(ports.allocate(kA, IpProto::Tcp), 40000);
  EXPECT_EQ(ports.allocate(kA, IpProto::Tcp), 40001);
  EXPECT_FALSE(ports.allocate(kA, IpProto::Tcp));
  EXPECT_EQ(ports.allocate(kA, IpProto::Udp), 40000);
  EXPECT_EQ(ports.allocate(kA, IpProto::Icmp), 40000);
  EXPECT_EQ(ports.allocate(kA, IpProto::Icmpv6), 40001); // echo ids: v4 and v6 share a pool
  EXPECT_EQ(ports.allocate(kB, IpProto::Tcp), 40000);
  EXPECT_FALSE(ports.allocate(kA, static_cast<IpProto>(47))); // no ports to allocate
  EXPECT_FALSE(PortAllocator::supports(static_cast<IpProto>(47)));
  EXPECT_TRUE(PortAllocator::supports(IpProto::Udp));
}

TEST(PortAllocator, FreedPortsAreReusedLast) {
  PortAllocator ports({.first = 100, .last = 103});
  std::vector<std::uint16_t> got;
  for (int i = 0; i < 4; ++i) got.push_back(*ports.allocate(kA, IpProto::Tcp));
  EXPECT_EQ(got, (std::vector<std::uint16_t>{100, 101, 102, 103}));
  ports.free(kA, IpProto::Tcp, 102);
  ports.free(kA, IpProto::Tcp, 100);
  EXPECT_EQ(ports.in_use(kA, IpProto::Tcp), 2U);
  EXPECT_EQ(ports.allocate(kA, IpProto::Tcp), 102); // FIFO: first freed, first reused
  EXPECT_EQ(ports.allocate(kA, IpProto::Tcp), 100);
  EXPECT_FALSE(ports.allocate(kA, IpProto::Tcp));
}

TEST(PortAllocator, FIFOKeepsAFreedPortIdleWhileOthersAreFree) {
  PortAllocator ports({.first = 1000, .last = 1009});
  const std::uint16_t p = *ports.allocate(kA, IpProto::Tcp);
  ports.free(kA, IpProto::Tcp, p);
  for (int i = 0; i < 9; ++i) EXPECT_NE(*ports.allocate(kA, IpProto::Tcp), p);
  EXPECT_EQ(ports.allocate(kA, IpProto::Tcp), p);
}

TEST(PortAllocator, DoubleAndForeignFreesAreIgnored) {
  PortAllocator ports({.first = 100, .last = 101});
  const std::uint16_t p = *ports.allocate(kA, IpProto::Tcp);
  ports.free(kA, IpProto::Tcp, p);
  ports.free(kA, IpProto::Tcp, p);    // twice
  ports.free(kA, IpProto::Tcp, 101);  // never allocated
  ports.free(kA, IpProto::Tcp, 5000); // outside the range
  EXPECT_EQ(ports.bad_frees(), 3U);
  EXPECT_EQ(ports.in_use(kA, IpProto::Tcp), 0U);
  std::set<std::uint16_t> got{*ports.allocate(kA, IpProto::Tcp), *ports.allocate(kA, IpProto::Tcp)};
  EXPECT_EQ(got.size(), 2U); // no port handed out twice despite the bad frees
  EXPECT_FALSE(ports.allocate(kA, IpProto::Tcp));
}

TEST(PortAllocator, ANewReplicaInTheSlotStartsWithAllPortsFree) {
  PortAllocator ports({.first = 100, .last = 101});
  ports.allocate(kA, IpProto::Tcp);
  ports.allocate(kA, IpProto::Tcp);
  const ReplicaRef next{kA.slot, kA.generation + 1};
  EXPECT_EQ(ports.in_use(next, IpProto::Tcp), 0U);
  EXPECT_TRUE(ports.allocate(next, IpProto::Tcp));
  ports.free(kA, IpProto::Tcp, 101); // the old replica's flow ends later: no effect
  EXPECT_EQ(ports.in_use(next, IpProto::Tcp), 1U);
  EXPECT_EQ(ports.bad_frees(), 0U);
}

TEST(PortAllocator, ChurnNeverHandsOutAPortInUse) {
  PortAllocator ports({.first = 50000, .last = 50099});
  std::set<std::uint16_t> used;
  std::uint32_t x = 12345;
  for (int i = 0; i < 20000; ++i) {
    x = x * 1103515245 + 12345;
    if ((x >> 16) % 3 != 0 || used.empty()) {
      if (auto p = ports.allocate(kA, IpProto::Udp)) {
        ASSERT_TRUE(used.insert(*p).second);
      } else {
        ASSERT_EQ(used.size(), 100U);
      }
    } else {
      auto it = used.begin();
      std::advance(it, (x >> 8) % used.size());
      ports.free(kA, IpProto::Udp, *it);
      used.erase(it);
    }
    ASSERT_EQ(ports.in_use(kA, IpProto::Udp), used.size());
  }
}

TEST(PortAllocator, RejectsBadRanges) {
  EXPECT_THROW(PortAllocator({.first = 0, .last = 10}), std::invalid_argument);
  EXPECT_THROW(PortAllocator({.first = 10, .last = 9}), std::invalid_argument);
  PortAllocator whole({.first = 1, .last = 65535});
  EXPECT_EQ(whole.range_size(), 65535U);
}

} // namespace
} // namespace xdpfwd::ingress::balance
