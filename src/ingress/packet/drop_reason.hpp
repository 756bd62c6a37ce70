// Why the conformity check refused a packet. The names are what operators see (metrics labels,
// xdpfwdctl status): extend by appending, never rename.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xdpfwd::ingress::packet {

enum class DropReason : std::uint8_t {
  None = 0,             // accepted; counters[None] counts accepted packets
  Truncated,            // a header cut short by the frame or by the IP length (tiny fragments too)
  UnsupportedEthertype, // not IPv4/IPv6, or more than one VLAN tag
  BadIpv4Header,        // version, IHL, total length, fragment past 64 KiB, odd fragment size
  BadIpv4Checksum,      // IPv4 header checksum
  BadIpv6Header,        // version, extension chain (order, length, count), unprocessed routing header
  TtlExpired,           // TTL / hop limit 0
  BadSource,            // source that can never be a client: 0/8, 127/8, multicast, ::, ::1, ...
  BadTcpHeader,         // TCP data offset
  TcpFlags,             // impossible flag combination (null, SYN+FIN, SYN+RST, FIN without ACK, ...)
  BadUdpHeader,         // UDP length inconsistent with the IP packet
  BadChecksum,          // TCP, UDP, ICMP or ICMPv6 checksum
  BadIcmp,              // ICMP error without a usable embedded header, or about an ICMP error
  IcmpType,             // ICMP type a service never needs (redirect, router/neighbour discovery, ...)
  ProtoNotAllowed,      // protocol not in the allow list
  PortNotAllowed,       // destination port not in the allow list for its protocol
  DeniedSource,         // source in inspect.deny_sources
  Fragment,             // fragments policy "drop", or an overlapping (RFC 1858) fragment
  RateLimited,          // per-source rate limit exceeded
};

inline constexpr std::size_t kDropReasonCount = 19;

// "bad_ipv4_header", ...; None is "accepted".
std::string_view drop_reason_name(DropReason reason) noexcept;

// Counters indexed by DropReason; index 0 (None) counts accepted packets. Plain integers: one
// instance per packet-processing thread, summed by whoever reports them.
using DropCounters = std::array<std::uint64_t, kDropReasonCount>;

} // namespace xdpfwd::ingress::packet
