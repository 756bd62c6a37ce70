// Cursor-style parsing: each step checks that the bytes it is about to read lie before the
// current end (frame end for L2/L3 fixed headers, IP packet end beyond), then advances.
#include "packet_view.hpp"

#include "bytes.hpp"

#include <array>

namespace xdpfwd::ingress::packet {

static_assert(static_cast<std::size_t>(ParseStatus::BadTcpDataOffset) + 1 == kParseStatusCount);

std::string_view parse_status_name(ParseStatus status) noexcept {
  static constexpr std::array<std::string_view, kParseStatusCount> names = {
      "ok",
      "truncated_ethernet",
      "unsupported_ethertype",
      "too_many_vlan_tags",
      "truncated_ipv4",
      "bad_ipv4_version",
      "bad_ipv4_header_length",
      "bad_ipv4_total_length",
      "truncated_ipv6",
      "bad_ipv6_version",
      "truncated_ipv6_ext_header",
      "bad_ipv6_ext_header",
      "too_many_ipv6_ext_headers",
      "truncated_l4",
      "bad_tcp_data_offset",
  };
  const auto i = static_cast<std::size_t>(status);
  return i < names.size() ? names[i] : "unknown";
}

bool is_icmp_error(std::uint8_t ip_version, std::uint8_t type) noexcept {
  if (ip_version == 4) {
    return type == 3 || type == 11 || type == 12;
  }
  return type >= 1 && type <= 4;
}

bool is_icmp_echo(std::uint8_t ip_version, std::uint8_t type) noexcept {
  return ip_version == 4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
}

std::uint32_t PacketView::l4_checksum_off() const noexcept {
  if (!has_l4) {
    return 0;
  }
  switch (l4_proto) {
  case kProtoTcp: return l4_off + 16;
  case kProtoUdp: return l4_off + 6;
  default: return is_icmp() ? l4_off + 2 : 0;
  }
}

namespace {

struct Ipv6Chain {
  std::uint32_t l4_off = 0;
  std::uint8_t l4_proto = 0;
  bool has_frag_header = false;
  bool is_fragment = false;
  bool more_fragments = false;
  std::uint16_t frag_offset = 0;
  std::uint32_t frag_id = 0;
  std::uint8_t segments_left = 0;
};

// Walks the extension headers that start at `off` (right after the fixed header) up to `end`.
// Stops at the first header that is not hop-by-hop, routing, destination options or fragment,
// and after a fragment header with a non-zero offset (what follows is the middle of a packet).
ParseStatus walk_ipv6_chain(const std::uint8_t* data, std::uint32_t off, std::uint32_t end,
                            std::uint8_t next, Ipv6Chain& chain) noexcept {
  for (int count = 0;; ++count) {
    const bool extension = next == kProtoIpv6HopByHop || next == kProtoIpv6Routing ||
                           next == kProtoIpv6DestOpts || next == kProtoIpv6Fragment;
    if (!extension) {
      break;
    }
    if (count == kMaxIpv6ExtHeaders) {
      return ParseStatus::TooManyIpv6ExtHeaders;
    }
    if (end - off < 8) { // every extension header is at least 8 bytes
      return ParseStatus::TruncatedIpv6ExtHeader;
    }
    const std::uint8_t* h = data + off;
    if (next == kProtoIpv6Fragment) {
      if (chain.has_frag_header) {
        return ParseStatus::BadIpv6ExtHeader;
      }
      const std::uint16_t offset_flags = load_be16(h + 2);
      chain.has_frag_header = true;
      chain.frag_offset = offset_flags & 0xFFF8; // 13-bit offset in 8-byte units, already << 3
      chain.more_fragments = (offset_flags & 1) != 0;
      chain.is_fragment = chain.frag_offset != 0 || chain.more_fragments;
      chain.frag_id = load_be32(h + 4);
      next = h[0];
      off += 8;
      if (chain.frag_offset != 0) {
        break; // the rest is the middle of the original packet: nothing more to parse
      }
      continue;
    }
    if (next == kProtoIpv6HopByHop && count != 0) {
      return ParseStatus::BadIpv6ExtHeader; // RFC 8200 4.1: only right after the fixed header
    }
    const std::uint32_t len = (std::uint32_t{h[1]} + 1) * 8;
    if (end - off < len) {
      return ParseStatus::TruncatedIpv6ExtHeader;
    }
    if (next == kProtoIpv6Routing) {
      chain.segments_left = h[3];
    }
    next = h[0];
    off += len;
  }
  chain.l4_off = off;
  chain.l4_proto = next;
  return ParseStatus::Ok;
}

} // namespace

ParseStatus parse_frame(std::span<std::uint8_t> frame, PacketView& v) noexcept {
  v = PacketView{};
  v.data = frame.data();
  v.frame_len = static_cast<std::uint32_t>(frame.size());
  std::uint8_t* const d = v.data;
  const std::uint32_t len = v.frame_len;

  // L2
  if (len < kEthHeaderLen) {
    return ParseStatus::TruncatedEthernet;
  }
  std::uint32_t off = kEthHeaderLen;
  std::uint16_t ethertype = load_be16(d + 12);
  if (ethertype == kEthertypeVlan || ethertype == kEthertypeQinq) {
    if (len < kEthHeaderLen + kVlanTagLen) {
      return ParseStatus::TruncatedEthernet;
    }
    v.has_vlan = true;
    v.vlan_tci = load_be16(d + 14);
    ethertype = load_be16(d + 16);
    off += kVlanTagLen;
    if (ethertype == kEthertypeVlan || ethertype == kEthertypeQinq) {
      return ParseStatus::TooManyVlanTags;
    }
  }
  v.ethertype = ethertype;
  v.l3_off = off;
  const std::uint8_t* ip = d + off;

  // L3
  if (ethertype == kEthertypeIpv4) {
    if (len - off < kIpv4MinHeaderLen) {
      return ParseStatus::TruncatedIpv4;
    }
    if ((ip[0] >> 4) != 4) {
      return ParseStatus::BadIpv4Version;
    }
    const std::uint32_t ihl = (ip[0] & 0x0F) * 4u;
    if (ihl < kIpv4MinHeaderLen) {
      return ParseStatus::BadIpv4HeaderLength;
    }
    const std::uint32_t total = load_be16(ip + 2);
    if (total < ihl) {
      return ParseStatus::BadIpv4TotalLength;
    }
    if (total > len - off) { // covers options past the frame too, as ihl <= total
      return ParseStatus::TruncatedIpv4;
    }
    v.ip_version = 4;
    v.ttl = ip[8];
    v.l4_proto = ip[9];
    const std::uint16_t flags_offset = load_be16(ip + 6);
    v.more_fragments = (flags_offset & 0x2000) != 0;
    v.frag_offset = static_cast<std::uint16_t>((flags_offset & 0x1FFF) << 3);
    v.is_fragment = v.more_fragments || v.frag_offset != 0;
    v.frag_id = load_be16(ip + 4);
    v.l3_end = off + total;
    v.l4_off = off + ihl;
  } else if (ethertype == kEthertypeIpv6) {
    if (len - off < kIpv6HeaderLen) {
      return ParseStatus::TruncatedIpv6;
    }
    if ((ip[0] >> 4) != 6) {
      return ParseStatus::BadIpv6Version;
    }
    // Payload length 0 is only legal as a jumbogram (RFC 2675), which never fits a frame; with it
    // every upper layer below is simply found truncated.
    const std::uint32_t payload = load_be16(ip + 4);
    if (payload > len - off - kIpv6HeaderLen) {
      return ParseStatus::TruncatedIpv6;
    }
    v.ip_version = 6;
    v.ttl = ip[7];
    v.l3_end = off + kIpv6HeaderLen + payload;
    Ipv6Chain chain;
    const ParseStatus st = walk_ipv6_chain(d, off + kIpv6HeaderLen, v.l3_end, ip[6], chain);
    if (st != ParseStatus::Ok) {
      return st;
    }
    v.l4_off = chain.l4_off;
    v.l4_proto = chain.l4_proto;
    v.has_ipv6_frag_header = chain.has_frag_header;
    v.is_fragment = chain.is_fragment;
    v.more_fragments = chain.more_fragments;
    v.frag_offset = chain.frag_offset;
    v.frag_id = chain.frag_id;
    v.ipv6_routing_segments_left = chain.segments_left;
  } else {
    return ParseStatus::UnsupportedEthertype;
  }
  v.payload_off = v.l4_off;

  // L4: only the first fragment (or an unfragmented packet) carries the L4 header.
  if (v.frag_offset != 0) {
    return ParseStatus::Ok;
  }
  const std::uint8_t* l4 = d + v.l4_off;
  const std::uint32_t l4_len = v.l3_end - v.l4_off;
  if (v.l4_proto == kProtoTcp) {
    if (l4_len < kTcpMinHeaderLen) {
      return ParseStatus::TruncatedL4;
    }
    const std::uint32_t doff = (l4[12] >> 4) * 4u;
    if (doff < kTcpMinHeaderLen || doff > l4_len) {
      // Past the end of a first fragment means a tiny-fragment (RFC 1858) header split.
      return v.is_fragment && doff >= kTcpMinHeaderLen ? ParseStatus::TruncatedL4
                                                       : ParseStatus::BadTcpDataOffset;
    }
    v.src_port = load_be16(l4);
    v.dst_port = load_be16(l4 + 2);
    v.tcp_flags = l4[13];
    v.payload_off = v.l4_off + doff;
    v.has_l4 = true;
  } else if (v.l4_proto == kProtoUdp) {
    if (l4_len < kUdpHeaderLen) {
      return ParseStatus::TruncatedL4;
    }
    v.src_port = load_be16(l4);
    v.dst_port = load_be16(l4 + 2);
    v.udp_len = load_be16(l4 + 4);
    v.payload_off = v.l4_off + kUdpHeaderLen;
    v.has_l4 = true;
  } else if (v.is_icmp()) {
    if (l4_len < kIcmpHeaderLen) {
      return ParseStatus::TruncatedL4;
    }
    v.icmp_type = l4[0];
    v.icmp_code = l4[1];
    v.icmp_echo = is_icmp_echo(v.ip_version, v.icmp_type);
    if (v.icmp_echo) {
      v.icmp_id = load_be16(l4 + 4);
    }
    v.payload_off = v.l4_off + kIcmpHeaderLen;
    v.has_l4 = true;
  }
  return ParseStatus::Ok;
}

ParseStatus parse_icmp_error_inner(const PacketView& outer, InnerView& in) noexcept {
  in = InnerView{};
  const std::uint8_t* d = outer.data;
  const std::uint32_t end = outer.l3_end;
  const std::uint32_t off = outer.l4_off + kIcmpHeaderLen;
  in.l3_off = off;
  in.end = end;
  if (off > end) {
    return ParseStatus::TruncatedL4;
  }
  const std::uint32_t avail = end - off;
  const std::uint8_t* ip = d + off;
  // The embedded header is of the same family as the error: an ICMP error about an IPv6 packet
  // is always ICMPv6.
  if (outer.ip_version == 4) {
    if (avail < kIpv4MinHeaderLen) {
      return ParseStatus::TruncatedIpv4;
    }
    if ((ip[0] >> 4) != 4) {
      return ParseStatus::BadIpv4Version;
    }
    const std::uint32_t ihl = (ip[0] & 0x0F) * 4u;
    if (ihl < kIpv4MinHeaderLen) {
      return ParseStatus::BadIpv4HeaderLength;
    }
    if (ihl > avail) {
      return ParseStatus::TruncatedIpv4;
    }
    in.ip_version = 4;
    in.l4_proto = ip[9];
    in.is_fragment = (load_be16(ip + 6) & 0x1FFF) != 0;
    in.l4_off = off + ihl;
  } else {
    if (avail < kIpv6HeaderLen) {
      return ParseStatus::TruncatedIpv6;
    }
    if ((ip[0] >> 4) != 6) {
      return ParseStatus::BadIpv6Version;
    }
    in.ip_version = 6;
    Ipv6Chain chain;
    const ParseStatus st = walk_ipv6_chain(d, off + kIpv6HeaderLen, end, ip[6], chain);
    if (st != ParseStatus::Ok) {
      return st;
    }
    in.l4_off = chain.l4_off;
    in.l4_proto = chain.l4_proto;
    in.is_fragment = chain.frag_offset != 0;
  }
  if (in.is_fragment) {
    return ParseStatus::Ok;
  }
  const bool known = in.l4_proto == kProtoTcp || in.l4_proto == kProtoUdp || in.is_icmp();
  if (!known) {
    return ParseStatus::Ok;
  }
  if (end - in.l4_off < 8) { // RFC 792 / 4443: at least the first 8 bytes of the L4 header
    return ParseStatus::TruncatedL4;
  }
  const std::uint8_t* l4 = d + in.l4_off;
  in.has_l4 = true;
  if (in.is_icmp()) {
    in.icmp_type = l4[0];
    in.icmp_echo = is_icmp_echo(in.ip_version, in.icmp_type);
    if (in.icmp_echo) {
      in.icmp_id = load_be16(l4 + 4);
    }
  } else {
    in.src_port = load_be16(l4);
    in.dst_port = load_be16(l4 + 2);
  }
  return ParseStatus::Ok;
}

} // namespace xdpfwd::ingress::packet
