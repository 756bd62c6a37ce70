// Fixed responses of the terminating proxy on HTTP ports, sent before it closes the
// connection.
#pragma once

#include <string_view>

namespace xdpfwd::ingress::domain {

// The host is not served by this ingress (RFC 9110 15.5.20).
inline constexpr std::string_view kHttpMisdirectedRequest =
    "HTTP/1.1 421 Misdirected Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 21\r\n"
    "Connection: close\r\n"
    "\r\n"
    "Misdirected Request\r\n";

// The request head is malformed or too long (Malformed, TooLong).
inline constexpr std::string_view kHttpBadRequest =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "Connection: close\r\n"
    "\r\n"
    "Bad Request\r\n";

} // namespace xdpfwd::ingress::domain
