#include "icmp_too_big.hpp"

#include "bytes.hpp"
#include "checksum.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace xdpfwd::ingress::packet {
namespace {

constexpr std::uint32_t kEthernetHeader = 14;
constexpr std::uint32_t kIpv4Header = 20;
constexpr std::uint32_t kIpv6Header = 40;
constexpr std::uint32_t kIcmpHeader = 8;
constexpr std::uint32_t kIpv6MinimumMtu = 1280; // an ICMPv6 error never exceeds it
constexpr std::uint8_t kIcmpDestUnreachable = 3, kIcmpFragNeeded = 4;
constexpr std::uint8_t kIcmpv6PacketTooBig = 2;
constexpr std::uint8_t kDefaultTtl = 64;

bool is_icmp_error(const PacketView& v) {
  if (!v.is_icmp()) return false;
  return v.ip_version == 4 ? (v.icmp_type == 3 || v.icmp_type == 11 || v.icmp_type == 12)
                           : v.icmp_type < 128;
}

} // namespace

std::uint32_t make_too_big_reply(std::span<std::uint8_t> frame, const PacketView& view, const IpAddr& from,
                                 std::uint32_t mtu, const nat::Mac& src_mac, const nat::Mac& dst_mac) noexcept {
  if (is_icmp_error(view) || (view.is_fragment && view.frag_offset != 0)) return 0;
  std::uint8_t* l3 = frame.data() + view.l3_off;
  const bool v4 = view.ip_version == 4;
  if (v4 && (load_be16(l3 + 6) & 0x4000) == 0) return 0; // no DF: the sender allows fragmenting
  if (from.version != view.ip_version) return 0;

  // What the answer quotes of the offending packet: IPv4 its header and 8 bytes (RFC 792), IPv6
  // as much as fits in the minimum MTU (RFC 4443 2.4).
  const std::uint32_t ip_header = v4 ? kIpv4Header : kIpv6Header;
  const std::uint32_t quote_limit = v4 ? (view.l4_off - view.l3_off) + 8 : kIpv6MinimumMtu - ip_header - kIcmpHeader;
  const std::uint32_t quoted = std::min(view.l3_len(), quote_limit);
  const std::uint32_t l3_len = ip_header + kIcmpHeader + quoted;
  if (view.l3_off + l3_len > frame.size()) return 0;

  IpAddr sender = view.source();
  // Quote first: the new headers overlap the start of the original packet.
  std::memmove(l3 + ip_header + kIcmpHeader, l3, quoted);

  std::uint8_t* icmp = l3 + ip_header;
  std::memset(icmp, 0, kIcmpHeader);
  if (v4) {
    std::memset(l3, 0, kIpv4Header);
    l3[0] = 0x45;
    store_be16(l3 + 2, static_cast<std::uint16_t>(l3_len));
    l3[8] = kDefaultTtl;
    l3[9] = kProtoIcmp;
    std::memcpy(l3 + 12, from.bytes.data(), 4);
    std::memcpy(l3 + 16, sender.bytes.data(), 4);
    store_be16(l3 + 10, csum::compute({l3, kIpv4Header}));
    icmp[0] = kIcmpDestUnreachable;
    icmp[1] = kIcmpFragNeeded;
    store_be16(icmp + 6, static_cast<std::uint16_t>(mtu));
    store_be16(icmp + 2, csum::compute({icmp, kIcmpHeader + quoted}));
  } else {
    std::memset(l3, 0, kIpv6Header);
    l3[0] = 0x60;
    store_be16(l3 + 4, static_cast<std::uint16_t>(kIcmpHeader + quoted));
    l3[6] = kProtoIcmpv6;
    l3[7] = kDefaultTtl;
    std::memcpy(l3 + 8, from.bytes.data(), 16);
    std::memcpy(l3 + 24, sender.bytes.data(), 16);
    icmp[0] = kIcmpv6PacketTooBig;
    store_be32(icmp + 4, mtu);
    csum::Acc sum = csum::pseudo_v6(l3 + 8, l3 + 24, kProtoIcmpv6, kIcmpHeader + quoted);
    store_be16(icmp + 2, csum::finish(csum::add(sum, icmp, kIcmpHeader + quoted)));
  }
  // The frame keeps its Ethernet type; any VLAN tag is gone (l3_off counts it), so rebuild L2.
  std::uint8_t* eth = l3 - kEthernetHeader;
  std::memcpy(eth, dst_mac.data(), 6);
  std::memcpy(eth + 6, src_mac.data(), 6);
  store_be16(eth + 12, v4 ? 0x0800 : 0x86DD);
  if (eth != frame.data()) std::memmove(frame.data(), eth, kEthernetHeader + l3_len);
  return kEthernetHeader + l3_len;
}

} // namespace xdpfwd::ingress::packet
