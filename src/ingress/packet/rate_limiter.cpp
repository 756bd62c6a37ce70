#include "rate_limiter.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace xdpfwd::ingress::packet {

namespace {

// One token is 1e9 units, and a bucket gains `packets_per_second` units per nanosecond: exact
// integer arithmetic, no rounding drift, for any rate up to 1e9/s.
constexpr std::uint64_t kUnitsPerPacket = 1'000'000'000ull;
constexpr std::uint64_t kMaxRate = 1'000'000'000ull;

std::uint64_t mix(std::uint64_t x) noexcept { // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

std::uint64_t load64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

} // namespace

RateLimiter::RateLimiter(std::uint64_t packets_per_second, std::uint64_t burst, RateLimiterOptions options)
    : probe_(std::max(1u, options.probe)),
      ipv6_prefix_len_(std::clamp(options.ipv6_prefix_len, 1u, 128u)),
      seed_(options.seed) {
  rate_ = std::min(packets_per_second, kMaxRate);
  if (rate_ == 0) {
    return; // disabled: no table
  }
  const std::uint64_t b = std::min(burst == 0 ? rate_ : burst, kMaxRate);
  capacity_ = b * kUnitsPerPacket;
  full_ns_ = (capacity_ + rate_ - 1) / rate_;
  const std::size_t size = std::bit_ceil(std::max<std::size_t>(options.capacity, 16));
  table_.resize(size);
  mask_ = size - 1;
  probe_ = std::min<unsigned>(probe_, static_cast<unsigned>(size));
}

bool RateLimiter::allow(std::uint8_t version, const std::uint8_t* source, std::uint64_t now_ns) noexcept {
  if (rate_ == 0) {
    return true;
  }
  // Key: the address bytes, IPv6 cut to its prefix. Byte order does not matter for equality.
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
  if (version == 4) {
    std::uint32_t a;
    std::memcpy(&a, source, 4);
    k0 = a;
  } else {
    std::uint8_t masked[16];
    std::memcpy(masked, source, 16);
    const unsigned full_bytes = ipv6_prefix_len_ / 8;
    const unsigned rest_bits = ipv6_prefix_len_ % 8;
    if (full_bytes < 16) {
      masked[full_bytes] &= static_cast<std::uint8_t>(0xFF00u >> rest_bits);
      std::memset(masked + full_bytes + 1, 0, 16 - full_bytes - 1);
    }
    k0 = load64(masked);
    k1 = load64(masked + 8);
  }
  const std::uint64_t h = mix(k0 ^ seed_) ^ mix(k1 + seed_ + version);

  Entry* victim = nullptr;
  for (unsigned i = 0; i < probe_; ++i) {
    Entry& e = table_[(h + i) & mask_];
    if (e.version == version && e.k0 == k0 && e.k1 == k1) {
      // Bring the bucket up to date, then take a token.
      const std::uint64_t elapsed = now_ns > e.last_ns ? now_ns - e.last_ns : 0;
      e.tokens = elapsed >= full_ns_ ? capacity_ : std::min(capacity_, e.tokens + elapsed * rate_);
      e.last_ns = now_ns;
      if (e.tokens < kUnitsPerPacket) {
        return false;
      }
      e.tokens -= kUnitsPerPacket;
      return true;
    }
    if (e.version == 0) {
      // Entries are never removed, so the key cannot sit past an empty slot of its window.
      victim = &e;
      break;
    }
    if (victim == nullptr || e.last_ns < victim->last_ns) {
      victim = &e;
    }
  }
  if (victim->version != 0) {
    const bool idle = now_ns >= victim->last_ns && now_ns - victim->last_ns >= full_ns_;
    ++(idle ? stats_.evicted_idle : stats_.evicted_active);
  }
  ++stats_.inserted;
  *victim = Entry{.k0 = k0, .k1 = k1, .tokens = capacity_ - kUnitsPerPacket, .last_ns = now_ns, .version = version};
  return true;
}

std::size_t RateLimiter::size() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(table_.begin(), table_.end(), [](const Entry& e) { return e.version != 0; }));
}

} // namespace xdpfwd::ingress::packet
