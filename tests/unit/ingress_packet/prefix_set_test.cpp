#include "frames.hpp"
#include "prefix_set.hpp"

#include <gtest/gtest.h>

#include <random>

namespace pkt = xdpfwd::ingress::packet;
using frames::ip;

namespace {

pkt::PrefixSet make(const std::vector<std::pair<std::string, int>>& list) {
  std::vector<pkt::Prefix> p;
  for (const auto& [a, len] : list) {
    p.push_back({ip(a), static_cast<std::uint8_t>(len)});
  }
  return pkt::PrefixSet(p);
}

} // namespace

TEST(PrefixSet, EmptyContainsNothing) {
  pkt::PrefixSet s;
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.contains(ip("1.2.3.4")));
  EXPECT_FALSE(s.contains(ip("::1")));
}

TEST(PrefixSet, Ipv4Boundaries) {
  const auto s = make({{"198.19.66.0", 24}, {"10.0.0.1", 32}});
  EXPECT_TRUE(s.contains(ip("198.19.66.0")));
  EXPECT_TRUE(s.contains(ip("198.19.66.255")));
  EXPECT_FALSE(s.contains(ip("198.19.65.255")));
  EXPECT_FALSE(s.contains(ip("198.19.67.0")));
  EXPECT_TRUE(s.contains(ip("10.0.0.1")));
  EXPECT_FALSE(s.contains(ip("10.0.0.2")));
  EXPECT_FALSE(s.contains(ip("10.0.0.0")));
  // Families never mix.
  EXPECT_FALSE(s.contains(ip("::ffff:198.19.66.1")));
}

TEST(PrefixSet, HostBitsIgnoredAndRangesMerged) {
  const auto s = make({{"192.0.2.77", 24}, {"192.0.2.128", 25}, {"192.0.3.0", 24}, {"192.0.4.0", 24}});
  EXPECT_TRUE(s.contains(ip("192.0.2.0")));
  EXPECT_TRUE(s.contains(ip("192.0.4.255")));
  EXPECT_FALSE(s.contains(ip("192.0.5.0")));
  EXPECT_EQ(s.range_count(), 1u); // nested and adjacent collapse into 192.0.2.0 - 192.0.4.255
}

TEST(PrefixSet, Ipv6AndZeroLength) {
  const auto s = make({{"2001:db8:bad::", 48}, {"fd00::1", 128}});
  EXPECT_TRUE(s.contains(ip("2001:db8:bad::1")));
  EXPECT_TRUE(s.contains(ip("2001:db8:bad:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(s.contains(ip("2001:db8:bae::")));
  EXPECT_TRUE(s.contains(ip("fd00::1")));
  EXPECT_FALSE(s.contains(ip("fd00::2")));
  EXPECT_FALSE(s.contains(ip("1.2.3.4")));

  const auto all = make({{"0.0.0.0", 0}, {"::", 0}});
  EXPECT_TRUE(all.contains(ip("255.255.255.255")));
  EXPECT_TRUE(all.contains(ip("ffff::1")));
}

TEST(PrefixSet, FromConfig) {
  std::vector<xdpfwd::config::Cidr> cidrs = {
      boost::asio::ip::make_network_v4("198.19.66.0/24"),
      boost::asio::ip::make_network_v6("fd00:bad::/32"),
  };
  const auto s = pkt::PrefixSet::from_config(cidrs);
  EXPECT_TRUE(s.contains(ip("198.19.66.9")));
  EXPECT_FALSE(s.contains(ip("198.19.67.9")));
  EXPECT_TRUE(s.contains(ip("fd00:bad:1::9")));
  EXPECT_FALSE(s.contains(ip("fd00:bae::9")));
}

// Against a linear scan over the prefixes, with random prefixes and addresses near them.
TEST(PrefixSet, MatchesLinearScan) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 50; ++round) {
    std::vector<pkt::Prefix> prefixes;
    for (int i = 0; i < 40; ++i) {
      pkt::IpAddr a = pkt::IpAddr::v4(static_cast<std::uint32_t>(rng()) & 0xFF00FFFFu); // cluster them
      prefixes.push_back({a, static_cast<std::uint8_t>(8 + rng() % 25)});
    }
    const pkt::PrefixSet set(prefixes);
    auto linear = [&](std::uint32_t x) {
      for (const auto& p : prefixes) {
        const std::uint32_t net = static_cast<std::uint32_t>(p.address.bytes[0]) << 24 | p.address.bytes[1] << 16 |
                                  p.address.bytes[2] << 8 | p.address.bytes[3];
        const std::uint32_t mask = p.length == 0 ? 0 : ~std::uint32_t{0} << (32 - p.length);
        if ((x & mask) == (net & mask)) {
          return true;
        }
      }
      return false;
    };
    for (int i = 0; i < 2000; ++i) {
      const auto x = static_cast<std::uint32_t>(rng()) & 0xFF00FFFFu;
      ASSERT_EQ(set.contains(pkt::IpAddr::v4(x)), linear(x)) << std::hex << x;
    }
  }
}
