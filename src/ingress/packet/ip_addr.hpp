// An IPv4 or IPv6 address as it lies in a packet: raw network-order bytes plus the family.
// Trivially copyable and allocation-free, so it can travel on the packet path; the conversion
// from the config model's boost address is for start-up code.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <cstring>

namespace xdpfwd::ingress::packet {

struct IpAddr {
  std::array<std::uint8_t, 16> bytes{}; // network order; IPv4 fills bytes[0..3], the rest stay 0
  std::uint8_t version = 0;             // 4 or 6; 0: no address

  // 4 or 16: how many of `bytes` are the address.
  std::size_t size() const noexcept { return version == 4 ? 4 : 16; }

  static IpAddr from_bytes(std::uint8_t version, const std::uint8_t* p) noexcept {
    IpAddr a;
    a.version = version;
    std::memcpy(a.bytes.data(), p, version == 4 ? 4 : 16);
    return a;
  }

  // IPv4 from a host-order integer (0xC6120001 is 198.18.0.1).
  static IpAddr v4(std::uint32_t host_order) noexcept {
    IpAddr a;
    a.version = 4;
    a.bytes[0] = static_cast<std::uint8_t>(host_order >> 24);
    a.bytes[1] = static_cast<std::uint8_t>(host_order >> 16);
    a.bytes[2] = static_cast<std::uint8_t>(host_order >> 8);
    a.bytes[3] = static_cast<std::uint8_t>(host_order);
    return a;
  }

  friend bool operator==(const IpAddr&, const IpAddr&) = default;
};

inline IpAddr to_ip_addr(const boost::asio::ip::address& address) {
  if (address.is_v4()) {
    return IpAddr::v4(address.to_v4().to_uint());
  }
  const auto b = address.to_v6().to_bytes();
  return IpAddr::from_bytes(6, b.data());
}

} // namespace xdpfwd::ingress::packet
