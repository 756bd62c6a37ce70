// The fatal alert record the terminating proxy sends in answer to a ClientHello whose name no
// service claims (and no unknown_domain service takes), before closing the connection.
#pragma once

#include <array>
#include <cstdint>

namespace xdpfwd::ingress::domain {

enum class TlsAlert : std::uint8_t {
  HandshakeFailure = 40, // RFC 5246 7.2.2
  UnrecognizedName = 112, // RFC 6066 3: the name in SNI is not served here
};

// An unencrypted alert record: content type 21, legacy_record_version 0x0303 (what TLS 1.3
// puts on every record, and what TLS 1.0-1.2 clients accept before the version is agreed),
// length 2, level fatal (2), description.
constexpr std::array<std::uint8_t, 7> tls_fatal_alert(TlsAlert alert) noexcept {
  return {21, 0x03, 0x03, 0x00, 0x02, 2, static_cast<std::uint8_t>(alert)};
}

} // namespace xdpfwd::ingress::domain
