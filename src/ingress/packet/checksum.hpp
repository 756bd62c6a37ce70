// The Internet checksum (RFC 1071): full computation, pseudo-headers, verification, and the
// incremental updates of RFC 1624 that NAT uses so it never re-reads a payload.
//
// Byte order: an Acc is a running one's complement sum of the 16-bit words AS THEY LIE IN MEMORY
// (loaded natively, which is why summing is fast); only fold()/finish() turn it into a host-order
// value. Every uint16_t checksum taken or returned by these functions is in HOST order: read it
// from a packet with load_be16 and write it with store_be16.
#pragma once

#include "packet_view.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace xdpfwd::ingress::packet::csum {

using Acc = std::uint64_t;

// Adds `len` bytes starting at a 16-bit word boundary of the checksummed data; an odd last byte
// is padded with a zero byte, as RFC 1071 says.
Acc add(Acc acc, const std::uint8_t* data, std::size_t len) noexcept;
inline Acc add(Acc acc, std::span<const std::uint8_t> data) noexcept {
  return add(acc, data.data(), data.size());
}
// Adds a host-order 16-bit value as if it were a big-endian word in the data.
Acc add16(Acc acc, std::uint16_t host_value) noexcept;

// The 16-bit one's complement sum, host order.
std::uint16_t fold(Acc acc) noexcept;
// The checksum to store: the complement of the sum.
inline std::uint16_t finish(Acc acc) noexcept { return static_cast<std::uint16_t>(~fold(acc)); }
// Data that includes its own (correct) checksum field sums to 0xFFFF.
inline bool verifies(Acc acc) noexcept { return fold(acc) == 0xFFFF; }

// Checksum of `data` (its checksum field, if any, must hold 0).
inline std::uint16_t compute(std::span<const std::uint8_t> data) noexcept { return finish(add(0, data)); }

// Pseudo-headers of TCP/UDP/ICMPv6: addresses in network order, length of the L4 header + data.
Acc pseudo_v4(const std::uint8_t* src, const std::uint8_t* dst, std::uint8_t proto, std::uint32_t len) noexcept;
Acc pseudo_v6(const std::uint8_t* src, const std::uint8_t* dst, std::uint8_t next_header,
              std::uint32_t len) noexcept;

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Host order in and out.
std::uint16_t update16(std::uint16_t check, std::uint16_t old_word, std::uint16_t new_word) noexcept;
// Same for `len` bytes (even) of network-order data at a 16-bit word boundary.
std::uint16_t update_bytes(std::uint16_t check, const std::uint8_t* old_bytes, const std::uint8_t* new_bytes,
                           std::size_t len) noexcept;
inline std::uint16_t update32(std::uint16_t check, const std::uint8_t* old4, const std::uint8_t* new4) noexcept {
  return update_bytes(check, old4, new4, 4);
}
inline std::uint16_t update128(std::uint16_t check, const std::uint8_t* old16, const std::uint8_t* new16) noexcept {
  return update_bytes(check, old16, new16, 16);
}

// Packet-level helpers on a parsed view.

// IPv4 header checksum correct (views of IPv6 packets: true, there is none).
bool ipv4_header_ok(const PacketView& v) noexcept;
// Recomputes and stores the IPv4 header checksum.
void set_ipv4_header(const PacketView& v) noexcept;

// The pseudo-header sum of the view's L4 protocol (IPv4 ICMP has none: 0).
Acc l4_pseudo(const PacketView& v) noexcept;

// TCP, UDP, ICMP, ICMPv6 checksum correct over the whole L4 data. UDP checksum 0 means "none" and
// is accepted on IPv4 only (RFC 8200 8.1 makes it mandatory on IPv6). Meaningless for fragments
// (the sum covers the reassembled packet): callers skip them. Other protocols: true.
bool l4_ok(const PacketView& v) noexcept;
// Recomputes and stores the L4 checksum (UDP: a computed 0 is stored as 0xFFFF).
void set_l4(const PacketView& v) noexcept;

// A TCP or UDP checksum left for hardware to finish (Linux's CHECKSUM_PARTIAL): the field holds
// only the folded pseudo-header sum. Senders behind a veth with TX checksum offload send such
// frames; nothing on an XDP/AF_XDP path completes them, so a forwarder must (set_l4 after its
// rewrite). A corrupt checksum is not mistaken for one but for 1 in 65536 values.
bool l4_partial(const PacketView& v) noexcept;

} // namespace xdpfwd::ingress::packet::csum
