#include "drop_reason.hpp"

namespace xdpfwd::ingress::packet {

static_assert(static_cast<std::size_t>(DropReason::RateLimited) + 1 == kDropReasonCount);

std::string_view drop_reason_name(DropReason reason) noexcept {
  static constexpr std::array<std::string_view, kDropReasonCount> names = {
      "accepted",
      "truncated",
      "unsupported_ethertype",
      "bad_ipv4_header",
      "bad_ipv4_checksum",
      "bad_ipv6_header",
      "ttl_expired",
      "bad_source",
      "bad_tcp_header",
      "tcp_flags",
      "bad_udp_header",
      "bad_checksum",
      "bad_icmp",
      "icmp_type",
      "proto_not_allowed",
      "port_not_allowed",
      "denied_source",
      "fragment",
      "rate_limited",
  };
  const auto i = static_cast<std::size_t>(reason);
  return i < names.size() ? names[i] : "unknown";
}

} // namespace xdpfwd::ingress::packet
