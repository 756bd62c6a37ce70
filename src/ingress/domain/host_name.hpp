// Normalisation of a host name found in traffic, to the form services.json uses for
// service.domains: lower case, no trailing dot.
#pragma once

#include <string>
#include <string_view>

namespace xdpfwd::ingress::domain {

// The longest name in text form (255 bytes on the wire: 253 characters without the root dot).
inline constexpr std::size_t kMaxNameLength = 253;
inline constexpr std::size_t kMaxLabelLength = 63;

enum class NameRules {
  HostName, // RFC 1123 host names: labels of [a-z0-9-], no '-' at either end (SNI, HTTP Host)
  DnsQuery, // the same, plus '_' anywhere in a label ("_sip._tcp.example.test" SRV owners)
};

struct HostName {
  enum class Kind {
    Name,    // name holds the normalised host name
    Address, // digits and dots only: an IPv4 literal (or a would-be one), not a domain
    Invalid, // anything else: empty, bad characters, empty or over-long labels, too long
  };
  Kind kind = Kind::Invalid;
  std::string name; // set when kind is Name

  friend bool operator==(const HostName&, const HostName&) = default;
};

// Lower-cases ASCII letters, strips one trailing dot and checks the rules above (labels of
// 1..63 characters, 253 characters at most). Bytes outside ASCII make the name Invalid (IDNs
// travel in their xn-- form). Digits and dots alone are an Address; any other name whose last
// label is all digits is Invalid.
HostName classify_host(std::string_view text, NameRules rules = NameRules::HostName);

} // namespace xdpfwd::ingress::domain
