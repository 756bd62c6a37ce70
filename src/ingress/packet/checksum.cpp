#include "checksum.hpp"

#include "bytes.hpp"

#include <bit>
#include <cstring>

namespace xdpfwd::ingress::packet::csum {

namespace {

constexpr bool kLittle = std::endian::native == std::endian::little;

// A 16-bit value in the byte order the native loads see memory in.
constexpr std::uint16_t to_memory_order(std::uint16_t host) noexcept {
  if constexpr (kLittle) {
    return static_cast<std::uint16_t>(host << 8 | host >> 8);
  } else {
    return host;
  }
}

inline std::uint64_t load64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// 64-bit add with end-around carry: 2^64 == 1 modulo 2^16 - 1, so the sum stays a valid
// one's complement sum of the 16-bit words.
inline std::uint64_t add_carry(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r;
  const bool carry = __builtin_add_overflow(a, b, &r);
  return r + carry;
}

} // namespace

Acc add(Acc acc, const std::uint8_t* p, std::size_t len) noexcept {
  // Four independent-ish adds per round keep the loop short; memcpy loads are unaligned-safe.
  while (len >= 32) {
    acc = add_carry(acc, load64(p));
    acc = add_carry(acc, load64(p + 8));
    acc = add_carry(acc, load64(p + 16));
    acc = add_carry(acc, load64(p + 24));
    p += 32;
    len -= 32;
  }
  while (len >= 8) {
    acc = add_carry(acc, load64(p));
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    acc = add_carry(acc, w);
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    acc = add_carry(acc, w);
    p += 2;
    len -= 2;
  }
  if (len == 1) {
    // Padded big-endian word {p[0], 0}, seen in memory order.
    acc = add_carry(acc, to_memory_order(static_cast<std::uint16_t>(p[0] << 8)));
  }
  return acc;
}

Acc add16(Acc acc, std::uint16_t host_value) noexcept {
  return add_carry(acc, to_memory_order(host_value));
}

std::uint16_t fold(Acc acc) noexcept {
  // 2^32 and 2^16 are both 1 modulo 2^16 - 1: folding halves keeps the sum.
  acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
  acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
  acc = (acc & 0xFFFFu) + (acc >> 16);
  acc = (acc & 0xFFFFu) + (acc >> 16);
  acc = (acc & 0xFFFFu) + (acc >> 16);
  // Byte swapping commutes with the one's complement sum (RFC 1071 2.B): swap once at the end.
  return to_memory_order(static_cast<std::uint16_t>(acc));
}

Acc pseudo_v4(const std::uint8_t* src, const std::uint8_t* dst, std::uint8_t proto, std::uint32_t len) noexcept {
  Acc acc = add(0, src, 4);
  acc = add(acc, dst, 4);
  acc = add16(acc, proto);
  return add16(acc, static_cast<std::uint16_t>(len));
}

Acc pseudo_v6(const std::uint8_t* src, const std::uint8_t* dst, std::uint8_t next_header,
              std::uint32_t len) noexcept {
  Acc acc = add(0, src, 16);
  acc = add(acc, dst, 16);
  acc = add16(acc, static_cast<std::uint16_t>(len >> 16));
  acc = add16(acc, static_cast<std::uint16_t>(len));
  return add16(acc, next_header);
}

std::uint16_t update16(std::uint16_t check, std::uint16_t old_word, std::uint16_t new_word) noexcept {
  std::uint32_t sum = static_cast<std::uint16_t>(~check);
  sum += static_cast<std::uint16_t>(~old_word);
  sum += new_word;
  sum = (sum & 0xFFFF) + (sum >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::uint16_t update_bytes(std::uint16_t check, const std::uint8_t* old_bytes, const std::uint8_t* new_bytes,
                           std::size_t len) noexcept {
  std::uint32_t sum = static_cast<std::uint16_t>(~check);
  for (std::size_t i = 0; i + 1 < len; i += 2) {
    sum += static_cast<std::uint16_t>(~load_be16(old_bytes + i));
    sum += load_be16(new_bytes + i);
  }
  sum = (sum & 0xFFFF) + (sum >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

bool ipv4_header_ok(const PacketView& v) noexcept {
  if (v.ip_version != 4) {
    return true;
  }
  const std::uint32_t ihl = v.l4_off - v.l3_off; // IPv4: l4 starts right after the header
  return verifies(add(0, v.data + v.l3_off, ihl));
}

void set_ipv4_header(const PacketView& v) noexcept {
  if (v.ip_version != 4) {
    return;
  }
  std::uint8_t* ip = v.data + v.l3_off;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, finish(add(0, ip, v.l4_off - v.l3_off)));
}

Acc l4_pseudo(const PacketView& v) noexcept {
  if (v.ip_version == 4) {
    return v.l4_proto == kProtoIcmp ? 0 : pseudo_v4(v.src_addr(), v.dst_addr(), v.l4_proto, v.l4_len());
  }
  return pseudo_v6(v.src_addr(), v.dst_addr(), v.l4_proto, v.l4_len());
}

bool l4_ok(const PacketView& v) noexcept {
  const std::uint32_t field = v.l4_checksum_off();
  if (field == 0) {
    return true;
  }
  if (v.l4_proto == kProtoUdp && load_be16(v.data + field) == 0) {
    return v.ip_version == 4;
  }
  return verifies(add(l4_pseudo(v), v.data + v.l4_off, v.l4_len()));
}

bool l4_partial(const PacketView& v) noexcept {
  if ((v.l4_proto != kProtoTcp && v.l4_proto != kProtoUdp) || v.is_fragment) return false;
  const std::uint32_t field = v.l4_checksum_off();
  return field != 0 && load_be16(v.data + field) == fold(l4_pseudo(v));
}

void set_l4(const PacketView& v) noexcept {
  const std::uint32_t field = v.l4_checksum_off();
  if (field == 0) {
    return;
  }
  store_be16(v.data + field, 0);
  std::uint16_t c = finish(add(l4_pseudo(v), v.data + v.l4_off, v.l4_len()));
  if (c == 0 && v.l4_proto == kProtoUdp) {
    c = 0xFFFF; // RFC 768: 0 means "no checksum"
  }
  store_be16(v.data + field, c);
}

} // namespace xdpfwd::ingress::packet::csum
