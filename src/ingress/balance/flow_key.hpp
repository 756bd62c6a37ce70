// The 5-tuple that names a flow, and the hash every balancing structure keys on.
//
// Addresses are 16 bytes in network byte order, IPv4 as v4-mapped (::ffff:a.b.c.d), so one
// key type serves both families. Ports are in host byte order.
//
// ICMP echo uses the identifier as its "port": a request is {src_port = identifier,
// dst_port = 0}, a reply {src_port = 0, dst_port = identifier}, so that a reply's key is its
// request's key reversed(), as for TCP and UDP.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace xdpfwd::ingress::balance {

// IP protocol numbers as they appear in the IP header.
enum class IpProto : std::uint8_t { Icmp = 1, Tcp = 6, Udp = 17, Icmpv6 = 58 };

using Address = std::array<std::uint8_t, 16>;

// ::ffff:a.b.c.d from an address in host byte order (0xC6120001 = 198.18.0.1).
constexpr Address v4_mapped(std::uint32_t host_order) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
          static_cast<std::uint8_t>(host_order >> 24), static_cast<std::uint8_t>(host_order >> 16),
          static_cast<std::uint8_t>(host_order >> 8), static_cast<std::uint8_t>(host_order)};
}

constexpr bool is_v4_mapped(const Address& a) {
  for (int i = 0; i < 10; ++i) {
    if (a[i] != 0) return false;
  }
  return a[10] == 0xff && a[11] == 0xff;
}

// The IP family of an address, a flow or a replica. Replicas are balanced per family: a flow
// only ever goes to a replica of its own family (no NAT46/64).
enum class Family : std::uint8_t { V4 = 0, V6 = 1 };
inline constexpr std::size_t kFamilies = 2;

constexpr Family family_of(const Address& a) { return is_v4_mapped(a) ? Family::V4 : Family::V6; }
constexpr const char* to_string(Family family) { return family == Family::V4 ? "ipv4" : "ipv6"; }

struct FlowKey {
  Address src{};
  Address dst{};
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  IpProto proto = IpProto::Tcp;
  // Explicit so that equality and hashing, which read the whole 40 bytes, never see garbage.
  std::array<std::uint8_t, 3> pad{};

  // The same flow seen from the other side: what the peer's packets carry.
  constexpr FlowKey reversed() const {
    return FlowKey{.src = dst, .dst = src, .src_port = dst_port, .dst_port = src_port,
                   .proto = proto, .pad = {}};
  }

  friend bool operator==(const FlowKey& a, const FlowKey& b) noexcept {
    // Five 8-byte compares instead of a member-wise walk: this runs on every lookup hit.
    std::uint64_t wa[5];
    std::uint64_t wb[5];
    std::memcpy(wa, &a, sizeof wa);
    std::memcpy(wb, &b, sizeof wb);
    return ((wa[0] ^ wb[0]) | (wa[1] ^ wb[1]) | (wa[2] ^ wb[2]) | (wa[3] ^ wb[3]) |
            (wa[4] ^ wb[4])) == 0;
  }
};
static_assert(sizeof(FlowKey) == 40, "FlowKey is hashed and compared as five 64-bit words");

// A flow's family is its client's (the service address has the same one).
constexpr Family family_of(const FlowKey& key) { return family_of(key.src); }

namespace detail {

// wyhash's multiply-and-fold: one 64x64->128 multiply, the two halves xored.
inline std::uint64_t mum(std::uint64_t a, std::uint64_t b) noexcept {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline constexpr std::uint64_t kP0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t kP1 = 0xe7037ed1a0b428dbULL;
inline constexpr std::uint64_t kP2 = 0x8ebc6af09c88c6e3ULL;
inline constexpr std::uint64_t kP3 = 0x589965cc75374cc3ULL;

} // namespace detail

// Fixed, so that every ingress (and every restart) maps a flow to the same Maglev entry.
inline constexpr std::uint64_t kFlowHashSeed = 0x7864706677640001ULL;

// A seeded 64-bit hash of the 40 key bytes (wyhash-style, three multiplies). Direction
// matters: hash(k) != hash(k.reversed()) in general.
inline std::uint64_t hash(const FlowKey& key, std::uint64_t seed = kFlowHashSeed) noexcept {
  using namespace detail;
  std::uint64_t w[5];
  std::memcpy(w, &key, sizeof w);
  std::uint64_t s = seed ^ kP0;
  s = mum(w[0] ^ kP1, w[1] ^ s);
  s = mum(w[2] ^ kP2, w[3] ^ s);
  s = mum(w[4] ^ kP3, s ^ kP1);
  return mum(s ^ kP0, kP2 ^ sizeof(FlowKey));
}

// Mixes a 64-bit value (a replica id, an address word) with a seed; used off the packet path.
inline std::uint64_t hash64(std::uint64_t value, std::uint64_t seed) noexcept {
  using namespace detail;
  return mum(mum(value ^ kP0, seed ^ kP1) ^ kP2, kP3 ^ seed);
}

} // namespace xdpfwd::ingress::balance
