// The verdict of the domain parsers (TLS SNI, HTTP Host, DNS QNAME), one enum for all three so
// that the terminating proxy treats its TLS and HTTP ports alike.
#pragma once

#include <string_view>

namespace xdpfwd::ingress::domain {

enum class Status {
  NeedMore,    // incremental parsers: no verdict yet, feed more bytes
  Found,       // a valid host name was found: name() is it, normalised (see host_name.hpp)
  NoName,      // well-formed, but carries no name (no SNI, HTTP/1.0 without Host, an IP literal,
               // DNS root): the ingress's unknown_domain decides
  BadName,     // well-formed, but the name is not a valid host name: treat as an unknown name
  NotProtocol, // not TLS / not HTTP/1.x / not a DNS query at all (first bytes say so)
  Malformed,   // starts like the protocol but breaks its rules: close / drop
  TooLong,     // no verdict within the byte limit: close
};

// "need_more", "found", "no_name", "bad_name", "not_protocol", "malformed", "too_long": for logs
// and metric labels.
std::string_view to_string(Status status) noexcept;

// Whether more bytes can change the verdict.
constexpr bool is_final(Status status) noexcept { return status != Status::NeedMore; }

} // namespace xdpfwd::ingress::domain
