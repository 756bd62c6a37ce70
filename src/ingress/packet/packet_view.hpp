// Parser of one Ethernet frame into a PacketView: where each header starts and the fields the
// inspector, the balancer and NAT need. The view points into the caller's (mutable) buffer so
// that NAT can rewrite in place; nothing is copied or allocated.
//
// Byte order: every integer field of PacketView and InnerView is in HOST order (ports, flags,
// lengths, ethertype, ICMP id). Addresses are not converted: src_addr()/dst_addr() return the
// network-order bytes in the frame.
//
// Bounds: the parser never reads a byte outside [data, data + frame_len) and, beyond L2, outside
// the IP packet as its own length field delimits it (Ethernet padding after l3_end is ignored).
#pragma once

#include "ip_addr.hpp"

#include <cstdint>
#include <span>
#include <string_view>

namespace xdpfwd::ingress::packet {

inline constexpr std::uint16_t kEthertypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEthertypeIpv6 = 0x86DD;
inline constexpr std::uint16_t kEthertypeVlan = 0x8100; // 802.1Q C-tag
inline constexpr std::uint16_t kEthertypeQinq = 0x88A8; // 802.1ad S-tag, accepted as the one tag

inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoIcmpv6 = 58;
inline constexpr std::uint8_t kProtoIpv6HopByHop = 0;
inline constexpr std::uint8_t kProtoIpv6Routing = 43;
inline constexpr std::uint8_t kProtoIpv6Fragment = 44;
inline constexpr std::uint8_t kProtoIpv6NoNext = 59;
inline constexpr std::uint8_t kProtoIpv6DestOpts = 60;

// At most this many IPv6 extension headers are walked; a longer chain is refused rather than
// followed (a chain of hundreds of tiny headers is an evasion and CPU-burning trick).
inline constexpr int kMaxIpv6ExtHeaders = 8;

inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;
inline constexpr std::uint8_t kTcpPsh = 0x08;
inline constexpr std::uint8_t kTcpAck = 0x10;
inline constexpr std::uint8_t kTcpUrg = 0x20;
inline constexpr std::uint8_t kTcpEce = 0x40;
inline constexpr std::uint8_t kTcpCwr = 0x80;

inline constexpr std::uint32_t kEthHeaderLen = 14;
inline constexpr std::uint32_t kVlanTagLen = 4;
inline constexpr std::uint32_t kIpv4MinHeaderLen = 20;
inline constexpr std::uint32_t kIpv6HeaderLen = 40;
inline constexpr std::uint32_t kTcpMinHeaderLen = 20;
inline constexpr std::uint32_t kUdpHeaderLen = 8;
inline constexpr std::uint32_t kIcmpHeaderLen = 8; // type, code, checksum, 4 bytes of "rest"

enum class ParseStatus : std::uint8_t {
  Ok = 0,
  TruncatedEthernet,      // fewer than 14 bytes, or the VLAN tag cut short
  UnsupportedEthertype,   // neither IPv4 nor IPv6 (ARP, LLDP, ...)
  TooManyVlanTags,        // more than one 802.1Q/802.1ad tag
  TruncatedIpv4,          // IPv4 header, options or total length beyond the frame
  BadIpv4Version,         // ethertype IPv4, version field not 4
  BadIpv4HeaderLength,    // IHL < 5
  BadIpv4TotalLength,     // total length < IHL * 4
  TruncatedIpv6,          // fixed header or payload length beyond the frame
  BadIpv6Version,         // ethertype IPv6, version field not 6
  TruncatedIpv6ExtHeader, // an extension header runs past the end of the packet
  BadIpv6ExtHeader,       // hop-by-hop not first, or a second fragment header
  TooManyIpv6ExtHeaders,  // more than kMaxIpv6ExtHeaders
  TruncatedL4,            // TCP/UDP/ICMP header does not fit in the IP packet (or first fragment)
  BadTcpDataOffset,       // TCP data offset < 5 or past the end of the packet
};

inline constexpr std::size_t kParseStatusCount = 15;

// "truncated_ipv4", ...; never null, for logs and tests.
std::string_view parse_status_name(ParseStatus status) noexcept;

struct PacketView {
  std::uint8_t* data = nullptr; // first byte of the Ethernet header
  std::uint32_t frame_len = 0;  // bytes in the buffer, Ethernet padding included

  std::uint32_t l3_off = 0;      // IPv4 / IPv6 header
  std::uint32_t l4_off = 0;      // after the IP header (IPv4 options, IPv6 extension headers)
  std::uint32_t payload_off = 0; // after the L4 header; == l4_off when none was parsed
  std::uint32_t l3_end = 0;      // end of the IP packet per its length field (<= frame_len)

  std::uint16_t ethertype = 0; // after the VLAN tag if any
  std::uint16_t vlan_tci = 0;  // valid when has_vlan
  bool has_vlan = false;

  std::uint8_t ip_version = 0; // 4 or 6
  std::uint8_t l4_proto = 0;   // IPv4 protocol, or the IPv6 next header after the extension chain
  std::uint8_t ttl = 0;        // TTL or hop limit

  // Fragments. is_fragment is false for IPv6 "atomic fragments" (offset 0, M clear; RFC 6946).
  bool is_fragment = false;
  bool more_fragments = false;
  bool has_ipv6_frag_header = false;
  std::uint16_t frag_offset = 0; // in bytes
  std::uint32_t frag_id = 0;     // IPv4 identification (16 bits) or IPv6 fragment id

  std::uint8_t ipv6_routing_segments_left = 0; // of the last routing header, 0 without one

  // L4: has_l4 is true when a TCP, UDP, ICMP (in IPv4) or ICMPv6 (in IPv6) header was parsed;
  // false for other protocols and for non-first fragments.
  bool has_l4 = false;
  std::uint16_t src_port = 0; // TCP/UDP only
  std::uint16_t dst_port = 0;
  std::uint8_t tcp_flags = 0;  // FIN..CWR bits of byte 13
  std::uint16_t udp_len = 0;   // the UDP length field
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  bool icmp_echo = false;      // echo request/reply: icmp_id is meaningful
  std::uint16_t icmp_id = 0;

  std::uint32_t l3_len() const noexcept { return l3_end - l3_off; }
  std::uint32_t l4_len() const noexcept { return l3_end - l4_off; } // L4 header + payload
  std::uint32_t payload_len() const noexcept { return l3_end - payload_off; }
  std::uint32_t addr_len() const noexcept { return ip_version == 4 ? 4 : 16; }
  std::uint32_t src_addr_off() const noexcept { return l3_off + (ip_version == 4 ? 12 : 8); }
  std::uint32_t dst_addr_off() const noexcept { return l3_off + (ip_version == 4 ? 16 : 24); }
  std::uint8_t* src_addr() const noexcept { return data + src_addr_off(); }
  std::uint8_t* dst_addr() const noexcept { return data + dst_addr_off(); }
  IpAddr source() const noexcept { return IpAddr::from_bytes(ip_version, src_addr()); }
  IpAddr destination() const noexcept { return IpAddr::from_bytes(ip_version, dst_addr()); }
  bool is_icmp() const noexcept {
    return (ip_version == 4 && l4_proto == kProtoIcmp) || (ip_version == 6 && l4_proto == kProtoIcmpv6);
  }
  // Offset of the L4 checksum field (TCP, UDP, ICMP, ICMPv6), 0 when there is none here.
  std::uint32_t l4_checksum_off() const noexcept;
};

// Parses `frame`. On Ok every offset in `view` is valid; on failure `view` holds what was parsed
// before the problem (do not use it). noexcept, allocation-free.
ParseStatus parse_frame(std::span<std::uint8_t> frame, PacketView& view) noexcept;

// ICMP error messages (they embed the start of the packet that caused them).
// IPv4: destination unreachable (3), time exceeded (11), parameter problem (12).
// IPv6: destination unreachable (1), packet too big (2), time exceeded (3), parameter problem (4).
bool is_icmp_error(std::uint8_t ip_version, std::uint8_t type) noexcept;
// Echo request/reply: 8/0 for ICMP, 128/129 for ICMPv6.
bool is_icmp_echo(std::uint8_t ip_version, std::uint8_t type) noexcept;

// The packet embedded in an ICMP error: its IP header must be complete; its L4 part is usually
// cut short, so only the first 8 bytes (ports, or ICMP type/code/checksum/id) are required when
// has_l4 is set. Offsets are into the same buffer as the outer PacketView.
struct InnerView {
  std::uint32_t l3_off = 0;
  std::uint32_t l4_off = 0;
  std::uint32_t end = 0;       // end of the bytes present (the outer packet's end)
  std::uint8_t ip_version = 0;
  std::uint8_t l4_proto = 0;
  bool is_fragment = false;    // a non-first fragment: no L4 header
  bool has_l4 = false;         // TCP/UDP/ICMP with at least 8 bytes present
  std::uint16_t src_port = 0;  // TCP/UDP
  std::uint16_t dst_port = 0;
  std::uint8_t icmp_type = 0;  // inner ICMP/ICMPv6
  bool icmp_echo = false;
  std::uint16_t icmp_id = 0;

  std::uint32_t src_addr_off() const noexcept { return l3_off + (ip_version == 4 ? 12 : 8); }
  std::uint32_t dst_addr_off() const noexcept { return l3_off + (ip_version == 4 ? 16 : 24); }
  bool is_icmp() const noexcept {
    return (ip_version == 4 && l4_proto == kProtoIcmp) || (ip_version == 6 && l4_proto == kProtoIcmpv6);
  }
};

// Parses the packet embedded in `outer`, which must be a parsed ICMP error (is_icmp_error).
// Returns the status naming the inner problem (truncated_ipv4, ...) or Ok.
ParseStatus parse_icmp_error_inner(const PacketView& outer, InnerView& inner) noexcept;

} // namespace xdpfwd::ingress::packet
