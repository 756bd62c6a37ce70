#include "conformity.hpp"

#include "bytes.hpp"
#include "checksum.hpp"

namespace xdpfwd::ingress::packet {

namespace {

constexpr std::uint64_t bit(unsigned i) { return std::uint64_t{1} << i; }

// Linux nf_conntrack tcp_valid_flags, indexed by FIN|SYN|RST|ACK|URG (PSH, ECE, CWR ignored).
constexpr std::uint8_t kTcpFlagMask = kTcpFin | kTcpSyn | kTcpRst | kTcpAck | kTcpUrg;
constexpr std::uint64_t kValidTcpFlags =
    bit(kTcpSyn) | bit(kTcpSyn | kTcpUrg) | bit(kTcpSyn | kTcpAck) | bit(kTcpRst) | bit(kTcpRst | kTcpAck) |
    bit(kTcpFin | kTcpAck) | bit(kTcpFin | kTcpAck | kTcpUrg) | bit(kTcpAck) | bit(kTcpAck | kTcpUrg);

bool tcp_flags_valid(std::uint8_t flags) noexcept {
  return (kValidTcpFlags >> (flags & kTcpFlagMask)) & 1;
}

// Sources that never belong to a client reaching a service: unspecified, loopback, multicast
// and IPv4 reserved/broadcast; for IPv6 also IPv4-mapped (RFC 4291 2.5.5.2, as Linux does).
bool bad_source(const PacketView& v) noexcept {
  const std::uint8_t* s = v.src_addr();
  if (v.ip_version == 4) {
    return s[0] == 0 || s[0] == 127 || s[0] >= 224;
  }
  if (s[0] == 0xFF) {
    return true;
  }
  for (int i = 0; i < 10; ++i) {
    if (s[i] != 0) {
      return false;
    }
  }
  if (s[10] == 0xFF && s[11] == 0xFF) {
    return true; // ::ffff:a.b.c.d
  }
  return s[10] == 0 && s[11] == 0 && s[12] == 0 && s[13] == 0 && s[14] == 0 && s[15] <= 1; // ::, ::1
}

// IPv4 loose/strict source route options: a host must not act on them (Linux drops them by
// default, accept_source_route=0). The walk is bounded by the 40 bytes of options.
bool ipv4_source_routed(const PacketView& v) noexcept {
  const std::uint8_t* p = v.data + v.l3_off + kIpv4MinHeaderLen;
  const std::uint8_t* end = v.data + v.l4_off;
  while (p < end) {
    const std::uint8_t type = p[0];
    if (type == 0) { // end of options
      return false;
    }
    if (type == 1) { // no-op
      ++p;
      continue;
    }
    if (type == 0x83 || type == 0x89) { // LSRR, SSRR
      return true;
    }
    if (end - p < 2 || p[1] < 2) {
      return false; // malformed length: the stack ignores the rest, so do we
    }
    p += p[1];
  }
  return false;
}

// Shared by both families: the last byte of a reassembled packet must stay within 64 KiB
// (ping of death), and every fragment but the last carries a multiple of 8 bytes.
bool fragment_geometry_ok(const PacketView& v) noexcept {
  const std::uint32_t frag_len = v.l4_len();
  return std::uint32_t{v.frag_offset} + frag_len <= 0xFFFF && (!v.more_fragments || (frag_len & 7) == 0);
}

// Smallest L4 header: a non-first fragment starting before this would overwrite it.
std::uint32_t min_l4_header(std::uint8_t proto) noexcept {
  return proto == kProtoTcp ? kTcpMinHeaderLen : 8;
}

} // namespace

DropReason drop_reason_for(ParseStatus status) noexcept {
  switch (status) {
  case ParseStatus::Ok: return DropReason::None;
  case ParseStatus::TruncatedEthernet:
  case ParseStatus::TruncatedIpv4:
  case ParseStatus::TruncatedIpv6:
  case ParseStatus::TruncatedIpv6ExtHeader:
  case ParseStatus::TruncatedL4: return DropReason::Truncated;
  case ParseStatus::UnsupportedEthertype:
  case ParseStatus::TooManyVlanTags: return DropReason::UnsupportedEthertype;
  case ParseStatus::BadIpv4Version:
  case ParseStatus::BadIpv4HeaderLength:
  case ParseStatus::BadIpv4TotalLength: return DropReason::BadIpv4Header;
  case ParseStatus::BadIpv6Version:
  case ParseStatus::BadIpv6ExtHeader:
  case ParseStatus::TooManyIpv6ExtHeaders: return DropReason::BadIpv6Header;
  case ParseStatus::BadTcpDataOffset: return DropReason::BadTcpHeader;
  }
  return DropReason::Truncated;
}

Conformity::Conformity(const config::Inspect& inspect, ConformityOptions options)
    : allow_all_(inspect.allow.empty()),
      port_bits_(2048, 0),
      deny_(PrefixSet::from_config(inspect.deny_sources)),
      fragments_(inspect.fragments),
      limiter_(inspect.rate_limit ? inspect.rate_limit->packets_per_second_per_source : 0,
               inspect.rate_limit ? inspect.rate_limit->burst : 0, options.rate_limiter) {
  for (const config::AllowRule& rule : inspect.allow) {
    std::size_t base = 0;
    switch (rule.protocol) {
    case config::Protocol::Icmp: icmp_rule_ = true; continue;
    case config::Protocol::Tcp: tcp_rule_ = true; base = 0; break;
    case config::Protocol::Udp: udp_rule_ = true; base = 1024; break;
    }
    if (rule.ports.empty()) {
      std::fill(port_bits_.begin() + static_cast<std::ptrdiff_t>(base),
                port_bits_.begin() + static_cast<std::ptrdiff_t>(base + 1024), ~std::uint64_t{0});
    }
    for (std::uint16_t port : rule.ports) {
      port_bits_[base + port / 64] |= bit(port % 64);
    }
  }
}

bool Conformity::protocol_allowed(std::uint8_t ip_version, std::uint8_t proto) const noexcept {
  if (allow_all_) {
    return true;
  }
  if (proto == kProtoTcp) {
    return tcp_rule_;
  }
  if (proto == kProtoUdp) {
    return udp_rule_;
  }
  const bool icmp = (ip_version == 4 && proto == kProtoIcmp) || (ip_version == 6 && proto == kProtoIcmpv6);
  return icmp && icmp_rule_;
}

bool Conformity::port_allowed(std::uint8_t proto, std::uint16_t port) const noexcept {
  if (allow_all_) {
    return true;
  }
  if (proto != kProtoTcp && proto != kProtoUdp) {
    return false;
  }
  const std::size_t base = proto == kProtoTcp ? 0 : 1024;
  return (port_bits_[base + port / 64] >> (port % 64)) & 1;
}

DropReason Conformity::check(std::span<std::uint8_t> frame, std::uint64_t now_ns, PacketView& view) noexcept {
  const ParseStatus status = parse_frame(frame, view);
  const DropReason reason = status == ParseStatus::Ok ? evaluate(view, now_ns) : drop_reason_for(status);
  ++counters_[static_cast<std::size_t>(reason)];
  return reason;
}

DropReason Conformity::check_parsed(const PacketView& view, std::uint64_t now_ns) noexcept {
  const DropReason reason = evaluate(view, now_ns);
  ++counters_[static_cast<std::size_t>(reason)];
  return reason;
}

DropReason Conformity::check_icmp(const PacketView& v) const noexcept {
  if (v.icmp_echo) {
    return allow_all_ || icmp_rule_ ? DropReason::None : DropReason::ProtoNotAllowed;
  }
  if (!is_icmp_error(v.ip_version, v.icmp_type)) {
    return DropReason::IcmpType;
  }
  InnerView in;
  if (parse_icmp_error_inner(v, in) != ParseStatus::Ok) {
    return DropReason::BadIcmp;
  }
  if (in.is_icmp() && in.has_l4 && is_icmp_error(in.ip_version, in.icmp_type)) {
    return DropReason::BadIcmp; // RFC 1122 3.2.2 / RFC 4443 2.4: never an error about an error
  }
  if (allow_all_ || icmp_rule_) {
    return DropReason::None;
  }
  // No icmp rule: allowed when it reports on an allowed flow (see header).
  if (!in.has_l4 || in.is_icmp() || !protocol_allowed(in.ip_version, in.l4_proto)) {
    return DropReason::ProtoNotAllowed;
  }
  return port_allowed(in.l4_proto, in.src_port) ? DropReason::None : DropReason::PortNotAllowed;
}

DropReason Conformity::evaluate(const PacketView& v, std::uint64_t now_ns) noexcept {
  // 2. IP sanity.
  if (v.ip_version == 4) {
    if (!csum::ipv4_header_ok(v)) {
      return DropReason::BadIpv4Checksum;
    }
    if ((v.is_fragment && !fragment_geometry_ok(v)) ||
        (v.l4_off - v.l3_off > kIpv4MinHeaderLen && ipv4_source_routed(v))) {
      return DropReason::BadIpv4Header;
    }
  } else if (v.ipv6_routing_segments_left != 0 || (v.is_fragment && !fragment_geometry_ok(v))) {
    return DropReason::BadIpv6Header; // a host processes no routing header with segments left
  }
  if (v.ttl == 0) {
    return DropReason::TtlExpired;
  }
  if (bad_source(v)) {
    return DropReason::BadSource;
  }

  // 3. L4 header sanity (whole packets and first fragments).
  if (v.has_l4) {
    if (v.l4_proto == kProtoTcp) {
      if (!tcp_flags_valid(v.tcp_flags)) {
        return DropReason::TcpFlags;
      }
      if (v.src_port == 0 || v.dst_port == 0) {
        return DropReason::BadTcpHeader;
      }
    } else if (v.l4_proto == kProtoUdp) {
      // A first fragment only bounds the datagram from below.
      const bool length_ok = v.is_fragment ? v.udp_len >= v.l4_len() : v.udp_len == v.l4_len();
      if (!length_ok || v.dst_port == 0) {
        return DropReason::BadUdpHeader;
      }
    }
  }

  // 4. Denied sources.
  if (!deny_.empty() && deny_.contains(v.ip_version, v.src_addr())) {
    return DropReason::DeniedSource;
  }

  // 5. Fragments, 6. allow list.
  if (v.is_fragment && fragments_ == config::FragmentPolicy::Drop) {
    return DropReason::Fragment;
  }
  if (v.frag_offset != 0) {
    if (v.frag_offset < min_l4_header(v.l4_proto)) {
      return DropReason::Fragment;
    }
    if (!protocol_allowed(v.ip_version, v.l4_proto)) {
      return DropReason::ProtoNotAllowed;
    }
  } else if (v.is_icmp()) {
    if (const DropReason r = check_icmp(v); r != DropReason::None) {
      return r;
    }
  } else if (!allow_all_) {
    if (!protocol_allowed(v.ip_version, v.l4_proto)) {
      return DropReason::ProtoNotAllowed;
    }
    if (!port_allowed(v.l4_proto, v.dst_port)) {
      return DropReason::PortNotAllowed;
    }
  }

  // 7. Rate limit.
  if (limiter_.enabled() && !limiter_.allow(v.ip_version, v.src_addr(), now_ns)) {
    return DropReason::RateLimited;
  }

  // 8. L4 checksum: needs the whole packet, so never for fragments. A checksum left partial by a
  // sender's TX offload (a host behind a veth) is not an error: the forwarder finishes it.
  if (!v.is_fragment && !csum::l4_ok(v) && !csum::l4_partial(v)) {
    return DropReason::BadChecksum;
  }
  return DropReason::None;
}

} // namespace xdpfwd::ingress::packet
