#include "nat.hpp"

#include "bytes.hpp"
#include "checksum.hpp"

#include <cstring>

namespace xdpfwd::ingress::packet::nat {

namespace {

// Applies an old -> new change to the 16-bit checksum stored at `field`, keeping UDP's special
// values: over IPv4 a stored 0 means "no checksum" and stays 0; a computed 0 is sent as 0xFFFF.
// `len` bytes of network-order data, or one host-order word when old/new_word are used.
void update_field_bytes(std::uint8_t* field, bool udp, bool udp_zero_means_none, const std::uint8_t* old_bytes,
                        const std::uint8_t* new_bytes, std::size_t len) noexcept {
  const std::uint16_t c = load_be16(field);
  if (udp && udp_zero_means_none && c == 0) {
    return;
  }
  std::uint16_t n = csum::update_bytes(c, old_bytes, new_bytes, len);
  if (udp && n == 0) {
    n = 0xFFFF;
  }
  store_be16(field, n);
}

void update_field_word(std::uint8_t* field, bool udp, bool udp_zero_means_none, std::uint16_t old_word,
                       std::uint16_t new_word) noexcept {
  std::uint8_t o[2];
  std::uint8_t n[2];
  store_be16(o, old_word);
  store_be16(n, new_word);
  update_field_bytes(field, udp, udp_zero_means_none, o, n, 2);
}

// Whether the L4 checksum of this protocol covers the addresses (pseudo-header).
bool pseudo_header_covered(std::uint8_t ip_version, std::uint8_t proto) noexcept {
  return proto == kProtoTcp || proto == kProtoUdp || (ip_version == 6 && proto == kProtoIcmpv6);
}

bool set_address(PacketView& v, std::uint32_t off, const IpAddr& a) noexcept {
  if (a.version != v.ip_version) {
    return false;
  }
  std::uint8_t* p = v.data + off;
  const std::size_t n = v.addr_len();
  if (v.ip_version == 4) {
    std::uint8_t* check = v.data + v.l3_off + 10;
    store_be16(check, csum::update32(load_be16(check), p, a.bytes.data()));
  }
  const std::uint32_t field = v.l4_checksum_off(); // 0 for non-first fragments
  if (field != 0 && pseudo_header_covered(v.ip_version, v.l4_proto)) {
    const bool udp = v.l4_proto == kProtoUdp;
    update_field_bytes(v.data + field, udp, v.ip_version == 4, p, a.bytes.data(), n);
  }
  std::memcpy(p, a.bytes.data(), n);
  return true;
}

bool set_port(PacketView& v, bool source, std::uint16_t port) noexcept {
  if (!v.has_l4) {
    return false;
  }
  if (v.l4_proto == kProtoTcp || v.l4_proto == kProtoUdp) {
    std::uint8_t* p = v.data + v.l4_off + (source ? 0 : 2);
    const bool udp = v.l4_proto == kProtoUdp;
    update_field_word(v.data + v.l4_checksum_off(), udp, v.ip_version == 4, load_be16(p), port);
    store_be16(p, port);
    (source ? v.src_port : v.dst_port) = port;
    return true;
  }
  if (v.is_icmp() && v.icmp_echo) {
    std::uint8_t* id = v.data + v.l4_off + 4;
    update_field_word(v.data + v.l4_off + 2, false, false, load_be16(id), port);
    store_be16(id, port);
    v.icmp_id = port;
    return true;
  }
  return false;
}

// Writes inside the ICMP error's payload, keeping the outer ICMP checksum `outer` in step with
// every word changed. All offsets used are even from the ICMP header start (IPv4 IHL is a
// multiple of 4, IPv6 extension headers of 8), so the words line up with the checksummed ones.
struct TrackedWriter {
  std::uint16_t outer;

  void bytes(std::uint8_t* p, const std::uint8_t* new_bytes, std::size_t len) noexcept {
    outer = csum::update_bytes(outer, p, new_bytes, len);
    std::memcpy(p, new_bytes, len);
  }
  void word(std::uint8_t* p, std::uint16_t value) noexcept {
    outer = csum::update16(outer, load_be16(p), value);
    store_be16(p, value);
  }
  // Applies old -> new (network order bytes) to the checksum at `field`, with UDP's rules.
  void checksum(std::uint8_t* field, bool udp, bool udp_zero_means_none, const std::uint8_t* old_bytes,
                const std::uint8_t* new_bytes, std::size_t len) noexcept {
    const std::uint16_t c = load_be16(field);
    if (udp && udp_zero_means_none && c == 0) {
      return;
    }
    std::uint16_t n = csum::update_bytes(c, old_bytes, new_bytes, len);
    if (udp && n == 0) {
      n = 0xFFFF;
    }
    word(field, n);
  }
};

} // namespace

void set_macs(const PacketView& v, const Mac& src, const Mac& dst) noexcept {
  std::memcpy(v.data, dst.data(), 6);
  std::memcpy(v.data + 6, src.data(), 6);
}

bool set_source(PacketView& v, const IpAddr& address) noexcept {
  return set_address(v, v.src_addr_off(), address);
}

bool set_destination(PacketView& v, const IpAddr& address) noexcept {
  return set_address(v, v.dst_addr_off(), address);
}

bool set_source_port(PacketView& v, std::uint16_t port) noexcept { return set_port(v, true, port); }

bool set_destination_port(PacketView& v, std::uint16_t port) noexcept { return set_port(v, false, port); }

bool decrement_ttl(PacketView& v) noexcept {
  if (v.ttl <= 1) {
    return false;
  }
  std::uint8_t* ip = v.data + v.l3_off;
  if (v.ip_version == 4) {
    // TTL is the high byte of the 16-bit word at offset 8 (TTL, protocol).
    const std::uint16_t old_word = load_be16(ip + 8);
    const auto new_word = static_cast<std::uint16_t>(old_word - 0x0100);
    store_be16(ip + 10, csum::update16(load_be16(ip + 10), old_word, new_word));
    ip[8] = static_cast<std::uint8_t>(v.ttl - 1);
  } else {
    ip[7] = static_cast<std::uint8_t>(v.ttl - 1);
  }
  --v.ttl;
  return true;
}

IcmpTranslateStatus translate_icmp_error(PacketView& v, const IcmpErrorRewrite& rw) noexcept {
  if (!v.has_l4 || !v.is_icmp() || !is_icmp_error(v.ip_version, v.icmp_type)) {
    return IcmpTranslateStatus::NotIcmpError;
  }
  InnerView in;
  if (parse_icmp_error_inner(v, in) != ParseStatus::Ok) {
    return IcmpTranslateStatus::BadInner;
  }
  for (const auto* a : {&rw.outer_source, &rw.outer_destination, &rw.inner_source, &rw.inner_destination}) {
    if (a->has_value() && (*a)->version != v.ip_version) {
      return IcmpTranslateStatus::FamilyMismatch;
    }
  }
  const bool inner_tcp_udp = in.l4_proto == kProtoTcp || in.l4_proto == kProtoUdp;
  const bool inner_has_ports = in.has_l4 && (inner_tcp_udp || (in.is_icmp() && in.icmp_echo));
  if ((rw.inner_source_port || rw.inner_destination_port) && !inner_has_ports) {
    return IcmpTranslateStatus::NoInnerPorts;
  }

  std::uint8_t* const d = v.data;
  std::uint8_t* const outer_check = d + v.l4_off + 2;
  TrackedWriter w{load_be16(outer_check)};
  const std::size_t alen = v.addr_len();
  const bool inner_udp = in.l4_proto == kProtoUdp;
  // The inner L4 checksum field, when present in the embedded bytes (TCP's is at 16..17).
  std::uint8_t* inner_l4_check = nullptr;
  if (in.has_l4) {
    const std::uint32_t field = in.l4_off + (in.l4_proto == kProtoTcp ? 16 : (inner_udp ? 6 : 2));
    if (field + 2 <= in.end) {
      inner_l4_check = d + field;
    }
  }

  auto inner_address = [&](std::uint32_t off, const IpAddr& a) {
    std::uint8_t* p = d + off;
    if (in.ip_version == 4) {
      w.checksum(d + in.l3_off + 10, false, false, p, a.bytes.data(), 4);
    }
    if (inner_l4_check != nullptr && pseudo_header_covered(in.ip_version, in.l4_proto)) {
      w.checksum(inner_l4_check, inner_udp, in.ip_version == 4, p, a.bytes.data(), alen);
    }
    w.bytes(p, a.bytes.data(), alen);
  };
  auto inner_port = [&](bool source, std::uint16_t port) {
    // TCP/UDP port, or the echo identifier for an embedded ICMP echo.
    std::uint8_t* p = d + in.l4_off + (inner_tcp_udp ? (source ? 0 : 2) : 4);
    if (inner_l4_check != nullptr) {
      std::uint8_t o[2];
      std::uint8_t n[2];
      std::memcpy(o, p, 2);
      store_be16(n, port);
      w.checksum(inner_l4_check, inner_udp, in.ip_version == 4, o, n, 2);
    }
    w.word(p, port);
  };

  if (rw.inner_source) {
    inner_address(in.src_addr_off(), *rw.inner_source);
  }
  if (rw.inner_destination) {
    inner_address(in.dst_addr_off(), *rw.inner_destination);
  }
  if (rw.inner_source_port) {
    inner_port(true, *rw.inner_source_port);
  }
  if (rw.inner_destination_port) {
    inner_port(false, *rw.inner_destination_port);
  }

  // Outer addresses: IPv4 header checksum; ICMPv6 covers them through its pseudo-header.
  auto outer_address = [&](std::uint32_t off, const IpAddr& a) {
    std::uint8_t* p = d + off;
    if (v.ip_version == 4) {
      std::uint8_t* check = d + v.l3_off + 10;
      store_be16(check, csum::update32(load_be16(check), p, a.bytes.data()));
    } else {
      w.outer = csum::update128(w.outer, p, a.bytes.data());
    }
    std::memcpy(p, a.bytes.data(), alen);
  };
  if (rw.outer_source) {
    outer_address(v.src_addr_off(), *rw.outer_source);
  }
  if (rw.outer_destination) {
    outer_address(v.dst_addr_off(), *rw.outer_destination);
  }
  store_be16(outer_check, w.outer);
  return IcmpTranslateStatus::Ok;
}

} // namespace xdpfwd::ingress::packet::nat
