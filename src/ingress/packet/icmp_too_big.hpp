// The answer to a packet too big for the path ahead: ICMP "fragmentation needed" (IPv4, RFC 792
// / 1191) or ICMPv6 "packet too big" (RFC 4443), written in place over the offending frame and
// addressed back to its sender, so that its path-MTU discovery adapts instead of losing data.
#pragma once

#include "ip_addr.hpp"
#include "nat.hpp"
#include "packet_view.hpp"

#include <cstdint>
#include <span>

namespace xdpfwd::ingress::packet {

// Rewrites `frame` (parsed as `view`, an IPv4 packet with DF or any IPv6 packet) into the ICMP
// answer from `from` (the address the sender talked to) with next-hop MTU `mtu`, Ethernet
// source `src_mac` and destination `dst_mac`. Returns the answer's length in bytes, or 0 when
// the packet must not be answered (an ICMP error itself, IPv4 without DF, a fragment that is
// not the first): the caller then drops and counts it.
std::uint32_t make_too_big_reply(std::span<std::uint8_t> frame, const PacketView& view, const IpAddr& from,
                                 std::uint32_t mtu, const nat::Mac& src_mac, const nat::Mac& dst_mac) noexcept;

} // namespace xdpfwd::ingress::packet
