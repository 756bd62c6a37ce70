#include "flow_key.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <unordered_set>
#include <vector>

namespace xdpfwd::ingress::balance {
namespace {

FlowKey tcp_key(std::uint32_t client, std::uint16_t sport) {
  return FlowKey{.src = v4_mapped(client), .dst = v4_mapped(0xC612000A), .src_port = sport,
                 .dst_port = 443, .proto = IpProto::Tcp};
}

TEST(FlowKey, V4MappedLayout) {
  const Address a = v4_mapped(0xC6120001); // 198.18.0.1
  EXPECT_TRUE(is_v4_mapped(a));
  EXPECT_EQ(a[10], 0xff);
  EXPECT_EQ(a[12], 198);
  EXPECT_EQ(a[15], 1);
  Address v6{};
  v6[0] = 0xfd;
  EXPECT_FALSE(is_v4_mapped(v6));
}

TEST(FlowKey, ReversedSwapsBothSidesAndIsAnInvolution) {
  const FlowKey k = tcp_key(0xC6120001, 40000);
  const FlowKey r = k.reversed();
  EXPECT_EQ(r.src, k.dst);
  EXPECT_EQ(r.dst, k.src);
  EXPECT_EQ(r.src_port, 443);
  EXPECT_EQ(r.dst_port, 40000);
  EXPECT_EQ(r.proto, IpProto::Tcp);
  EXPECT_NE(r, k);
  EXPECT_EQ(r.reversed(), k);
}

TEST(FlowKey, EqualityLooksAtEveryField) {
  const FlowKey k = tcp_key(0xC6120001, 40000);
  FlowKey other = k;
  EXPECT_EQ(other, k);
  other.proto = IpProto::Udp;
  EXPECT_NE(other, k);
  other = k;
  other.dst_port = 80;
  EXPECT_NE(other, k);
  other = k;
  other.dst[15] ^= 1;
  EXPECT_NE(other, k);
}

TEST(FlowKey, HashIsDeterministicSeededAndDirectional) {
  const FlowKey k = tcp_key(0xC6120001, 40000);
  EXPECT_EQ(hash(k), hash(tcp_key(0xC6120001, 40000)));
  EXPECT_NE(hash(k), hash(k, kFlowHashSeed + 1));
  EXPECT_NE(hash(k), hash(k.reversed()));
}

// Keys that differ in one port or one address bit must spread over buckets like random
// numbers: both the low bits (flow-table home slot) and the high bits (Maglev) are used.
TEST(FlowKey, HashSpreadsNearbyKeys) {
  constexpr int kKeys = 1 << 16;
  constexpr int kBuckets = 256;
  std::vector<int> low(kBuckets), high(kBuckets);
  std::unordered_set<std::uint64_t> seen;
  for (int i = 0; i < kKeys; ++i) {
    const std::uint64_t h = hash(tcp_key(0xC6120000 + (i >> 8), static_cast<std::uint16_t>(i)));
    seen.insert(h);
    ++low[h % kBuckets];
    ++high[h >> 56];
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kKeys)); // no collisions among 64k keys
  // Expected 256 per bucket, standard deviation 16: +-6 sigma is far outside chance.
  for (int b = 0; b < kBuckets; ++b) {
    EXPECT_GT(low[b], 160) << b;
    EXPECT_LT(low[b], 352) << b;
    EXPECT_GT(high[b], 160) << b;
    EXPECT_LT(high[b], 352) << b;
  }
}

} // namespace
} // namespace xdpfwd::ingress::balance
