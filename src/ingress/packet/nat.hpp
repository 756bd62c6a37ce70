// In-place rewrites for forwarding: addresses, ports, MACs, TTL, and the translation of ICMP
// errors that embed a flow's header. Every checksum is updated incrementally (RFC 1624): the
// cost does not depend on the payload size and the payload is never read.
//
// What each rewrite fixes:
// - IPv4 address: IPv4 header checksum; TCP/UDP checksum (pseudo-header). ICMPv4 has no
//   pseudo-header, so its checksum is untouched.
// - IPv6 address: TCP/UDP/ICMPv6 checksum (pseudo-header).
// - Port: TCP/UDP checksum. For ICMP/ICMPv6 echo request/reply the identifier plays the part of
//   both ports (it is what tells flows apart and what the peer echoes back), so either port
//   setter rewrites it and fixes the ICMP checksum.
// - UDP over IPv4 with checksum 0 ("none") keeps 0; a computed 0 is stored as 0xFFFF.
// - Fragments: a non-first fragment has no L4 header; only its IP header is rewritten. The first
//   fragment's L4 checksum covers the whole reassembled packet, and an incremental update is
//   still exact for it, so translating every fragment of a packet the same way keeps the
//   reassembled packet consistent. Port setters on a non-first fragment return false.
// - TTL / hop limit: not touched by the address rewrites. The ingress forwards like a router,
//   so the caller may call decrement_ttl() (policy of the data path, not of this library).
//
// The setters also update the cached fields of the view (ports, ICMP id, address bytes are read
// from the frame anyway), so the view stays consistent with the frame.
#pragma once

#include "ip_addr.hpp"
#include "packet_view.hpp"

#include <array>
#include <cstdint>
#include <optional>

namespace xdpfwd::ingress::packet::nat {

using Mac = std::array<std::uint8_t, 6>;

// Ethernet source and destination.
void set_macs(const PacketView& v, const Mac& src, const Mac& dst) noexcept;

// Rewrite the source / destination address. False (nothing changed) when the family differs
// from the packet's.
bool set_source(PacketView& v, const IpAddr& address) noexcept;
bool set_destination(PacketView& v, const IpAddr& address) noexcept;

// Rewrite the TCP/UDP port, or the ICMP echo identifier. False (nothing changed) for other
// protocols, non-echo ICMP and non-first fragments.
bool set_source_port(PacketView& v, std::uint16_t port) noexcept;
bool set_destination_port(PacketView& v, std::uint16_t port) noexcept;

// Decrements the TTL / hop limit (fixing the IPv4 header checksum). Returns false, changing
// nothing, when it is 0 or 1: the packet must not be forwarded (the caller may answer with an
// ICMP time exceeded).
bool decrement_ttl(PacketView& v) noexcept;

// Translation of an ICMP error (PacketView::is_icmp() and is_icmp_error()): each field set is
// rewritten. "outer" is the error's own IP header; "inner" is the embedded packet, whose
// direction is the reverse of the error's (an error travelling client -> service embeds a
// packet that went service -> client). Ports of the inner packet are TCP/UDP ports, or the
// ICMP echo identifier (either port field) when the embedded packet is an echo.
//
// Fixed: outer IPv4 header checksum, ICMPv6 pseudo-header; the inner IPv4 header checksum; the
// inner L4 checksum when its field lies inside the bytes present (UDP and ICMP always do, TCP
// only when at least 18 bytes were embedded; UDP over IPv4 with checksum 0 keeps 0); and the
// outer ICMP checksum, for every inner byte changed.
struct IcmpErrorRewrite {
  std::optional<IpAddr> outer_source{};
  std::optional<IpAddr> outer_destination{};
  std::optional<IpAddr> inner_source{};
  std::optional<IpAddr> inner_destination{};
  std::optional<std::uint16_t> inner_source_port{};
  std::optional<std::uint16_t> inner_destination_port{};
};

enum class IcmpTranslateStatus : std::uint8_t {
  Ok = 0,
  NotIcmpError,   // the view is not an ICMP error
  BadInner,       // the embedded packet does not parse (parse_icmp_error_inner)
  FamilyMismatch, // an address of the other family than the packet
  NoInnerPorts,   // ports requested but the inner packet has none (other protocol, fragment)
};

// All checks happen before the first byte is written: on any status but Ok the frame is as it was.
IcmpTranslateStatus translate_icmp_error(PacketView& v, const IcmpErrorRewrite& rewrite) noexcept;

} // namespace xdpfwd::ingress::packet::nat
