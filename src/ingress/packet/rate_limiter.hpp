// Per-source token buckets in a fixed-size table, so a flood of random source addresses costs
// a bounded amount of memory (capacity * 40 bytes, allocated once) and a bounded amount of work
// per packet (at most `probe` slots looked at).
//
// Table: open addressing with a seeded hash; a source lives in one of `probe` consecutive slots.
// Entries are never deleted, only replaced: a new source takes the first empty slot of its
// window, else the least recently seen entry of the window. Replacing an idle entry (its bucket
// has refilled to `burst`) loses nothing, since a new entry starts with a full bucket anyway.
// Replacing an active one (counted in Stats::evicted_active) only happens when the window is
// full of sources seen within the refill time, and the least recent of them goes: a busy
// source, seen all the time, is the last one to be pushed out by a spray of one-packet sources.
//
// Time: the caller passes a monotonic clock in nanoseconds, so tests are deterministic and the
// packet path makes no clock call per packet if the caller reads the clock once per batch.
//
// Key: the source address; IPv6 sources are grouped by prefix (/64 by default) because one
// host commonly owns a whole /64 and could otherwise rotate addresses to get fresh buckets.
//
// Not thread-safe: one limiter per packet-processing thread.
#pragma once

#include "ip_addr.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace xdpfwd::ingress::packet {

struct RateLimiterOptions {
  std::size_t capacity = 65536;   // entries; rounded up to a power of two (at least 16)
  unsigned probe = 8;             // slots looked at per packet
  unsigned ipv6_prefix_len = 64;  // IPv6 sources sharing this prefix share a bucket (1..128)
  std::uint64_t seed = 0x2545F4914F6CDD1Dull; // hash key: pass a random value in production
};

class RateLimiter {
public:
  // packets_per_second 0 disables the limiter (allow() always true). burst 0 means one second's
  // worth (= packets_per_second). Both are clamped to 10^9, which keeps the fixed-point
  // arithmetic in 64 bits and is far beyond any sensible per-source rate.
  RateLimiter(std::uint64_t packets_per_second, std::uint64_t burst, RateLimiterOptions options = {});

  // Takes one token from the bucket of `source`; false when it is empty.
  bool allow(std::uint8_t version, const std::uint8_t* source, std::uint64_t now_ns) noexcept;
  bool allow(const IpAddr& source, std::uint64_t now_ns) noexcept {
    return allow(source.version, source.bytes.data(), now_ns);
  }

  struct Stats {
    std::uint64_t inserted = 0;       // new sources
    std::uint64_t evicted_idle = 0;   // replaced entries whose bucket was full again
    std::uint64_t evicted_active = 0; // replaced entries still refilling (table under pressure)
  };
  const Stats& stats() const noexcept { return stats_; }
  std::size_t capacity() const noexcept { return table_.size(); }
  std::size_t size() const noexcept; // occupied entries, O(capacity): not for the packet path
  bool enabled() const noexcept { return rate_ != 0; }

private:
  struct Entry {
    std::uint64_t k0 = 0;
    std::uint64_t k1 = 0;
    std::uint64_t tokens = 0;  // in units of 1e-9 packet
    std::uint64_t last_ns = 0; // when tokens was last brought up to date
    std::uint8_t version = 0;  // 0: empty slot
  };

  std::vector<Entry> table_;
  std::size_t mask_ = 0;
  unsigned probe_ = 8;
  unsigned ipv6_prefix_len_ = 64;
  std::uint64_t seed_ = 0;
  std::uint64_t rate_ = 0;     // units per nanosecond = packets per second
  std::uint64_t capacity_ = 0; // bucket size in units = burst * 1e9
  std::uint64_t full_ns_ = 0;  // time an empty bucket takes to fill
  Stats stats_;
};

} // namespace xdpfwd::ingress::packet
