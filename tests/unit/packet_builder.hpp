// A small Ethernet frame builder for tests: lengths and checksums are computed when the frame is
// built, and each of them can be overridden to make a malformed frame.
//
//   auto frame = Eth(kClientMac, kHostMac).vlan(100).ipv4("198.18.0.1", "198.18.0.10")
//                    .udp(40000, 53).payload("hello").build();
//
// Layers are written in the order Ethernet, VLAN tags, network (IPv4, IPv6, ARP or a raw
// EtherType), transport (UDP, TCP, ICMP), payload, then trailing padding (pad_to). Every
// multi-byte field is written in network byte order; the setters take host byte order.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace xdpfwd::testing {

using Bytes = std::vector<std::uint8_t>;
using Mac = std::array<std::uint8_t, 6>;
using Ipv4Address = std::array<std::uint8_t, 4>;
using Ipv6Address = std::array<std::uint8_t, 16>;

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kEtherTypeVlan = 0x8100; // 802.1Q
inline constexpr std::uint16_t kEtherTypeQinQ = 0x88a8; // 802.1ad service tag
inline constexpr std::uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr std::uint16_t kEtherTypeLldp = 0x88cc;

inline constexpr std::size_t kEthHeaderLen = 14;
inline constexpr std::size_t kVlanTagLen = 4;
inline constexpr std::size_t kIpv4HeaderLen = 20; // without options
inline constexpr std::size_t kIpv6HeaderLen = 40;
inline constexpr std::size_t kUdpHeaderLen = 8;
inline constexpr std::size_t kTcpHeaderLen = 20; // without options
inline constexpr std::size_t kIcmpEchoLen = 8;
inline constexpr std::size_t kEthMinFrameLen = 60; // without the FCS

inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoIcmpv6 = 58;

inline Ipv4Address ipv4_address(std::string_view text) {
  Ipv4Address address{};
  if (::inet_pton(AF_INET, std::string(text).c_str(), address.data()) != 1)
    throw std::invalid_argument("not an IPv4 address: " + std::string(text));
  return address;
}

inline Ipv6Address ipv6_address(std::string_view text) {
  Ipv6Address address{};
  if (::inet_pton(AF_INET6, std::string(text).c_str(), address.data()) != 1)
    throw std::invalid_argument("not an IPv6 address: " + std::string(text));
  return address;
}

// One's complement sum (RFC 1071), to be folded by checksum_finish.
inline std::uint32_t checksum_add(std::uint32_t sum, const std::uint8_t* data, std::size_t size) {
  for (std::size_t i = 0; i + 1 < size; i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (size % 2 != 0) sum += static_cast<std::uint32_t>(data[size - 1] << 8);
  return sum;
}

inline std::uint16_t checksum_finish(std::uint32_t sum) {
  while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

class PacketBuilder {
public:
  PacketBuilder(const Mac& dst, const Mac& src) : dst_mac_(dst), src_mac_(src) {}

  // An 802.1Q tag by default; tpid kEtherTypeQinQ for the outer tag of 802.1ad QinQ.
  PacketBuilder& vlan(std::uint16_t id, std::uint16_t tpid = kEtherTypeVlan, std::uint8_t priority = 0) {
    vlans_.push_back({tpid, static_cast<std::uint16_t>(priority << 13 | (id & 0x0fff))});
    return *this;
  }

  PacketBuilder& ipv4(std::string_view src, std::string_view dst) {
    network_ = Network::Ipv4;
    ipv4_.src = ipv4_address(src);
    ipv4_.dst = ipv4_address(dst);
    return *this;
  }
  PacketBuilder& ipv6(std::string_view src, std::string_view dst) {
    network_ = Network::Ipv6;
    ipv6_.src = ipv6_address(src);
    ipv6_.dst = ipv6_address(dst);
    return *this;
  }
  // An ARP request (Ethernet/IPv4) from sender for target.
  PacketBuilder& arp_request(const Mac& sender_mac, std::string_view sender_ip, std::string_view target_ip) {
    network_ = Network::Arp;
    arp_ = {sender_mac, ipv4_address(sender_ip), ipv4_address(target_ip)};
    return *this;
  }
  // Anything else: the EtherType only; the rest of the frame is the payload.
  PacketBuilder& ether_type(std::uint16_t type) {
    network_ = Network::Raw;
    raw_ether_type_ = type;
    return *this;
  }

  // IPv4 header fields and overrides; options are padded with zeros (end of options list) to a
  // multiple of 4 bytes.
  PacketBuilder& ipv4_options(const Bytes& options) {
    ipv4_.options = options;
    while (ipv4_.options.size() % 4 != 0) ipv4_.options.push_back(0);
    return *this;
  }
  PacketBuilder& ttl(std::uint8_t ttl) {
    ipv4_.ttl = ttl;
    ipv6_.hop_limit = ttl;
    return *this;
  }
  PacketBuilder& ipv4_id(std::uint16_t id) { return ipv4_.id = id, *this; }
  // Flags (DF 0x4000, MF 0x2000) and fragment offset in 8-byte units, as one field.
  PacketBuilder& ipv4_frag(std::uint16_t flags_and_offset) { return ipv4_.frag = flags_and_offset, *this; }
  PacketBuilder& ipv4_version(std::uint8_t version) { return ipv4_.version = version, *this; }
  PacketBuilder& ipv4_ihl(std::uint8_t ihl) { return ipv4_.ihl = ihl, *this; }
  PacketBuilder& ipv4_total_length(std::uint16_t length) { return ipv4_.total_length = length, *this; }
  PacketBuilder& ipv4_checksum(std::uint16_t checksum) { return ipv4_.checksum = checksum, *this; }
  PacketBuilder& ipv6_version(std::uint8_t version) { return ipv6_.version = version, *this; }
  PacketBuilder& ipv6_payload_length(std::uint16_t length) { return ipv6_.payload_length = length, *this; }
  PacketBuilder& ipv6_flow_label(std::uint32_t label) { return ipv6_.flow_label = label & 0xfffff, *this; }
  // The protocol / next header field, when it must differ from the transport layer's.
  PacketBuilder& ip_protocol(std::uint8_t protocol) { return protocol_ = protocol, *this; }

  PacketBuilder& udp(std::uint16_t src_port, std::uint16_t dst_port) {
    transport_ = {Transport::Udp, src_port, dst_port};
    return *this;
  }
  PacketBuilder& tcp(std::uint16_t src_port, std::uint16_t dst_port, std::uint8_t flags = kTcpSyn,
                     std::uint32_t seq = 1, std::uint32_t ack = 0) {
    transport_ = {Transport::Tcp, src_port, dst_port, flags, seq, ack};
    return *this;
  }
  // ICMP echo request (ICMPv6 for an IPv6 packet).
  PacketBuilder& icmp_echo(std::uint16_t id, std::uint16_t seq) {
    transport_ = {Transport::IcmpEcho, id, seq};
    return *this;
  }
  PacketBuilder& transport_checksum(std::uint16_t checksum) { return transport_checksum_ = checksum, *this; }

  PacketBuilder& payload(const Bytes& bytes) { return payload_ = bytes, *this; }
  PacketBuilder& payload(std::string_view text) { return payload_.assign(text.begin(), text.end()), *this; }
  // Zero bytes after the packet up to size (Ethernet padding: not counted in any IP length).
  PacketBuilder& pad_to(std::size_t size) { return pad_to_ = size, *this; }

  static constexpr std::uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10;

  // Offsets of the layers in the built frame.
  std::size_t l3_offset() const { return kEthHeaderLen + vlans_.size() * kVlanTagLen; }
  std::size_t l4_offset() const { return l3_offset() + network_header_length(); }
  // Ethernet, VLAN tags, network and transport headers: where the payload starts.
  std::size_t headers_length() const { return l4_offset() + transport_header_length(); }

  Bytes build() const {
    Bytes frame;
    append(frame, dst_mac_);
    append(frame, src_mac_);
    for (const auto& tag : vlans_) {
      put16(frame, tag.tpid);
      put16(frame, tag.tci);
    }
    put16(frame, ether_type());

    const Bytes l4 = transport_bytes();
    switch (network_) {
    case Network::Ipv4: append(frame, ipv4_header(l4.size())); break;
    case Network::Ipv6: append(frame, ipv6_header(l4.size())); break;
    case Network::Arp: append(frame, arp_bytes()); break;
    case Network::Raw: break;
    }
    append(frame, l4);
    if (frame.size() < pad_to_) frame.resize(pad_to_, 0);
    return frame;
  }

private:
  enum class Network { Raw, Ipv4, Ipv6, Arp };
  enum class Transport { None, Udp, Tcp, IcmpEcho };

  struct VlanTag {
    std::uint16_t tpid;
    std::uint16_t tci;
  };
  struct Ipv4Fields {
    Ipv4Address src{}, dst{};
    Bytes options;
    std::uint8_t ttl = 64;
    std::uint16_t id = 0;
    std::uint16_t frag = 0;
    std::uint8_t version = 4;
    std::optional<std::uint8_t> ihl;
    std::optional<std::uint16_t> total_length;
    std::optional<std::uint16_t> checksum;
  };
  struct Ipv6Fields {
    Ipv6Address src{}, dst{};
    std::uint8_t hop_limit = 64;
    std::uint32_t flow_label = 0;
    std::uint8_t version = 6;
    std::optional<std::uint16_t> payload_length;
  };
  struct ArpFields {
    Mac sender_mac{};
    Ipv4Address sender_ip{}, target_ip{};
  };
  struct TransportFields {
    Transport type = Transport::None;
    std::uint16_t a = 0, b = 0; // ports, or ICMP id and sequence
    std::uint8_t tcp_flags = 0;
    std::uint32_t seq = 0, ack = 0;
  };

  template <typename Range>
  static void append(Bytes& out, const Range& bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  static void put16(Bytes& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value));
  }
  static void put32(Bytes& out, std::uint32_t value) {
    put16(out, static_cast<std::uint16_t>(value >> 16));
    put16(out, static_cast<std::uint16_t>(value));
  }
  static void set16(Bytes& out, std::size_t offset, std::uint16_t value) {
    out[offset] = static_cast<std::uint8_t>(value >> 8);
    out[offset + 1] = static_cast<std::uint8_t>(value);
  }

  std::uint16_t ether_type() const {
    switch (network_) {
    case Network::Ipv4: return kEtherTypeIpv4;
    case Network::Ipv6: return kEtherTypeIpv6;
    case Network::Arp: return kEtherTypeArp;
    case Network::Raw: return raw_ether_type_;
    }
    return raw_ether_type_;
  }
  std::size_t network_header_length() const {
    switch (network_) {
    case Network::Ipv4: return kIpv4HeaderLen + ipv4_.options.size();
    case Network::Ipv6: return kIpv6HeaderLen;
    case Network::Arp: return 28;
    case Network::Raw: return 0;
    }
    return 0;
  }
  std::size_t transport_header_length() const {
    switch (transport_.type) {
    case Transport::Udp: return kUdpHeaderLen;
    case Transport::Tcp: return kTcpHeaderLen;
    case Transport::IcmpEcho: return kIcmpEchoLen;
    case Transport::None: return 0;
    }
    return 0;
  }
  std::uint8_t protocol() const {
    if (protocol_) return *protocol_;
    switch (transport_.type) {
    case Transport::Udp: return kProtoUdp;
    case Transport::Tcp: return kProtoTcp;
    case Transport::IcmpEcho: return network_ == Network::Ipv6 ? kProtoIcmpv6 : kProtoIcmp;
    case Transport::None: return 59; // IPv6 "no next header"; reserved in IPv4 too
    }
    return 0;
  }

  Bytes ipv4_header(std::size_t l4_length) const {
    const std::size_t header_length = kIpv4HeaderLen + ipv4_.options.size();
    Bytes h;
    h.push_back(static_cast<std::uint8_t>(ipv4_.version << 4 | (ipv4_.ihl ? *ipv4_.ihl : header_length / 4)));
    h.push_back(0); // DSCP, ECN
    put16(h, ipv4_.total_length ? *ipv4_.total_length : static_cast<std::uint16_t>(header_length + l4_length));
    put16(h, ipv4_.id);
    put16(h, ipv4_.frag);
    h.push_back(ipv4_.ttl);
    h.push_back(protocol());
    put16(h, 0);
    append(h, ipv4_.src);
    append(h, ipv4_.dst);
    append(h, ipv4_.options);
    set16(h, 10, ipv4_.checksum ? *ipv4_.checksum : checksum_finish(checksum_add(0, h.data(), h.size())));
    return h;
  }

  Bytes ipv6_header(std::size_t l4_length) const {
    Bytes h;
    put32(h, static_cast<std::uint32_t>(ipv6_.version) << 28 | ipv6_.flow_label);
    put16(h, ipv6_.payload_length ? *ipv6_.payload_length : static_cast<std::uint16_t>(l4_length));
    h.push_back(protocol());
    h.push_back(ipv6_.hop_limit);
    append(h, ipv6_.src);
    append(h, ipv6_.dst);
    return h;
  }

  Bytes arp_bytes() const {
    Bytes a;
    put16(a, 1); // Ethernet
    put16(a, kEtherTypeIpv4);
    a.push_back(6);
    a.push_back(4);
    put16(a, 1); // request
    append(a, arp_.sender_mac);
    append(a, arp_.sender_ip);
    append(a, Mac{});
    append(a, arp_.target_ip);
    return a;
  }

  // The transport header and the payload, with the checksum over the pseudo-header.
  Bytes transport_bytes() const {
    Bytes t;
    std::size_t checksum_offset = 0;
    switch (transport_.type) {
    case Transport::None: append(t, payload_); return t;
    case Transport::Udp:
      put16(t, transport_.a);
      put16(t, transport_.b);
      put16(t, static_cast<std::uint16_t>(kUdpHeaderLen + payload_.size()));
      put16(t, 0);
      checksum_offset = 6;
      break;
    case Transport::Tcp:
      put16(t, transport_.a);
      put16(t, transport_.b);
      put32(t, transport_.seq);
      put32(t, transport_.ack);
      t.push_back(static_cast<std::uint8_t>(kTcpHeaderLen / 4 << 4));
      t.push_back(transport_.tcp_flags);
      put16(t, 65535); // window
      put16(t, 0);
      put16(t, 0); // urgent pointer
      checksum_offset = 16;
      break;
    case Transport::IcmpEcho:
      t.push_back(network_ == Network::Ipv6 ? 128 : 8);
      t.push_back(0);
      put16(t, 0);
      put16(t, transport_.a);
      put16(t, transport_.b);
      checksum_offset = 2;
      break;
    }
    append(t, payload_);

    std::uint32_t sum = 0;
    if (network_ == Network::Ipv4 && transport_.type != Transport::IcmpEcho) {
      sum = checksum_add(sum, ipv4_.src.data(), ipv4_.src.size());
      sum = checksum_add(sum, ipv4_.dst.data(), ipv4_.dst.size());
      sum += protocol();
      sum += static_cast<std::uint32_t>(t.size());
    } else if (network_ == Network::Ipv6) {
      sum = checksum_add(sum, ipv6_.src.data(), ipv6_.src.size());
      sum = checksum_add(sum, ipv6_.dst.data(), ipv6_.dst.size());
      sum += static_cast<std::uint32_t>(t.size());
      sum += protocol();
    }
    std::uint16_t checksum = checksum_finish(checksum_add(sum, t.data(), t.size()));
    if (transport_.type == Transport::Udp && checksum == 0) checksum = 0xffff; // 0 means "none"
    set16(t, checksum_offset, transport_checksum_ ? *transport_checksum_ : checksum);
    return t;
  }

  Mac dst_mac_, src_mac_;
  std::vector<VlanTag> vlans_;
  Network network_ = Network::Raw;
  std::uint16_t raw_ether_type_ = 0;
  Ipv4Fields ipv4_;
  Ipv6Fields ipv6_;
  ArpFields arp_;
  std::optional<std::uint8_t> protocol_;
  TransportFields transport_;
  std::optional<std::uint16_t> transport_checksum_;
  Bytes payload_;
  std::size_t pad_to_ = 0;
};

// Starts a frame: Eth(dst, src).vlan(...).ipv4(...).udp(...).payload(...).build().
inline PacketBuilder Eth(const Mac& dst, const Mac& src) { return PacketBuilder(dst, src); }

} // namespace xdpfwd::testing
