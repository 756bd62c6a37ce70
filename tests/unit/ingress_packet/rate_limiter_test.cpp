#include "frames.hpp"
#include "rate_limiter.hpp"

#include <gtest/gtest.h>

#include <random>

namespace pkt = xdpfwd::ingress::packet;
using frames::ip;

namespace {

constexpr std::uint64_t kMs = 1'000'000;
constexpr std::uint64_t kSec = 1'000'000'000;
constexpr std::uint64_t kStart = 1000 * kSec; // any monotonic origin

int allowed(pkt::RateLimiter& rl, const pkt::IpAddr& a, int n, std::uint64_t now) {
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    ok += rl.allow(a, now) ? 1 : 0;
  }
  return ok;
}

} // namespace

TEST(RateLimiter, BurstThenRefusal) {
  pkt::RateLimiter rl(100, 20);
  const auto a = ip("198.51.100.1");
  EXPECT_EQ(allowed(rl, a, 50, kStart), 20);
  EXPECT_FALSE(rl.allow(a, kStart));
}

TEST(RateLimiter, RefillsOverTime) {
  pkt::RateLimiter rl(100, 20); // one token per 10 ms
  const auto a = ip("198.51.100.1");
  ASSERT_EQ(allowed(rl, a, 20, kStart), 20);
  EXPECT_FALSE(rl.allow(a, kStart + 9 * kMs));
  EXPECT_TRUE(rl.allow(a, kStart + 10 * kMs)); // 1 token after 10 ms (9 ms were already credited)
  EXPECT_FALSE(rl.allow(a, kStart + 10 * kMs));
  EXPECT_EQ(allowed(rl, a, 100, kStart + 60 * kMs), 5);
  // A long idle time refills to the burst, not beyond.
  EXPECT_EQ(allowed(rl, a, 100, kStart + 3600 * kSec), 20);
}

TEST(RateLimiter, SustainedRateIsExact) {
  pkt::RateLimiter rl(3, 1); // 3/s: 333,333,333.3 ns per token, no rounding drift allowed
  const auto a = ip("198.51.100.1");
  int ok = 0;
  for (std::uint64_t t = 0; t < 10 * kSec; t += kMs) {
    ok += rl.allow(a, kStart + t) ? 1 : 0;
  }
  EXPECT_EQ(ok, 30); // 1 (burst) + 29 refills in 9.999 s
}

TEST(RateLimiter, SourcesAreIndependent) {
  pkt::RateLimiter rl(10, 5);
  EXPECT_EQ(allowed(rl, ip("198.51.100.1"), 10, kStart), 5);
  EXPECT_EQ(allowed(rl, ip("198.51.100.2"), 10, kStart), 5);
  EXPECT_EQ(allowed(rl, ip("2001:db8::1"), 10, kStart), 5);
}

TEST(RateLimiter, Ipv6GroupedByPrefix) {
  pkt::RateLimiter rl(10, 5);
  EXPECT_EQ(allowed(rl, ip("2001:db8:1:2::1"), 3, kStart), 3);
  EXPECT_EQ(allowed(rl, ip("2001:db8:1:2:ffff::9"), 10, kStart), 2); // same /64
  EXPECT_EQ(allowed(rl, ip("2001:db8:1:3::1"), 10, kStart), 5);      // another /64

  pkt::RateLimiter per_address(10, 5, {.ipv6_prefix_len = 128});
  EXPECT_EQ(allowed(per_address, ip("2001:db8:1:2::1"), 10, kStart), 5);
  EXPECT_EQ(allowed(per_address, ip("2001:db8:1:2::2"), 10, kStart), 5);
}

TEST(RateLimiter, DisabledAndDefaults) {
  pkt::RateLimiter off(0, 10);
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(allowed(off, ip("198.51.100.1"), 1000, kStart), 1000);
  pkt::RateLimiter burst_default(7, 0); // burst 0: one second's worth
  EXPECT_EQ(allowed(burst_default, ip("198.51.100.1"), 100, kStart), 7);
}

TEST(RateLimiter, ClockGoingBackwardsIsHarmless) {
  pkt::RateLimiter rl(10, 2);
  const auto a = ip("198.51.100.1");
  EXPECT_EQ(allowed(rl, a, 5, kStart), 2);
  EXPECT_FALSE(rl.allow(a, kStart - kSec));
  EXPECT_EQ(allowed(rl, a, 5, kStart + kSec), 2);
}

// A flood of random sources: the table never grows past its capacity, and a busy source keeps
// its (empty) bucket rather than being pushed out and handed a fresh burst.
TEST(RateLimiter, BoundedUnderRandomSources) {
  pkt::RateLimiter rl(1000, 100, {.capacity = 1024, .probe = 8, .seed = 42});
  ASSERT_EQ(rl.capacity(), 1024u);
  const auto heavy = ip("198.51.100.1");
  std::mt19937_64 rng(5);
  std::uint64_t now = kStart;
  int heavy_ok = 0;
  for (int i = 0; i < 200000; ++i) {
    now += 1000; // 1 µs per step: 0.2 s in all
    heavy_ok += rl.allow(heavy, now) ? 1 : 0;
    for (int k = 0; k < 5; ++k) { // 5 new random sources per step
      rl.allow(pkt::IpAddr::v4(static_cast<std::uint32_t>(rng())), now);
    }
  }
  EXPECT_LE(rl.size(), rl.capacity());
  EXPECT_EQ(rl.size(), rl.capacity()); // full, and no more
  EXPECT_GT(rl.stats().evicted_active + rl.stats().evicted_idle, 900000u);
  // 100 burst + 1000/s * 0.2 s = 300; a reset bucket would have let far more through.
  EXPECT_GE(heavy_ok, 290);
  EXPECT_LE(heavy_ok, 310);
}

TEST(RateLimiter, IdleEntriesAreReusedFirst) {
  pkt::RateLimiter rl(1000, 10, {.capacity = 16, .probe = 16});
  for (std::uint32_t i = 0; i < 16; ++i) {
    rl.allow(pkt::IpAddr::v4(0x0A000000 + i), kStart);
  }
  EXPECT_EQ(rl.size(), 16u);
  // 10 ms later every bucket is full again: replacing them is "idle" eviction.
  rl.allow(ip("198.51.100.1"), kStart + 10 * kMs);
  EXPECT_EQ(rl.stats().evicted_idle, 1u);
  EXPECT_EQ(rl.stats().evicted_active, 0u);
}
