// The bytes of the health probes, without sockets: the HTTP request and its status line, the DNS
// query and the check of its answer. Pure functions, unit-tested on their own.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xdpfwd::ingress::health {

// Bytes of an HTTP answer read at most while looking for the status line.
inline constexpr std::size_t kMaxHttpHead = 1024;
// The payload of a udp probe.
inline constexpr std::string_view kUdpProbePayload = "xdpfwd-health";

// "GET <path> HTTP/1.1\r\nHost: <replica>[:port]\r\nConnection: close\r\nUser-Agent: xdpfwd-health\r\n\r\n".
// The port is left out when it is 80; IPv6 addresses are bracketed.
std::string make_http_request(std::string_view path, const boost::asio::ip::address& replica, std::uint16_t port);

// What the first bytes of an HTTP answer say.
struct HttpHead {
  enum class Verdict { NeedMore, Status, Malformed } verdict = Verdict::NeedMore;
  unsigned status = 0; // Verdict::Status: 100-999
};
// Looks at the status line ("HTTP/1.1 200 OK\r\n") of `head`, the bytes read so far. NeedMore
// until the line's CRLF (or LF) arrived; Malformed when it is not an HTTP/1.x status line.
HttpHead parse_http_status(std::string_view head);

inline constexpr std::uint16_t kDnsTypeA = 1;
inline constexpr std::uint16_t kDnsTypeNs = 2;

// A standard query (opcode QUERY, RD set, one question, class IN) for `name` ("." or
// "health.example.test", a trailing dot optional). Empty when the name cannot be encoded (an
// empty label, a label over 63 bytes, over 255 bytes in all).
std::vector<std::uint8_t> make_dns_query(std::uint16_t id, std::string_view name, std::uint16_t qtype);

// Whether `answer` is a healthy answer to the query `query` (made by make_dns_query): a DNS
// response (QR set, opcode QUERY) with the query's ID whose RCODE is not SERVFAIL (2). Any other
// RCODE (NOERROR, NXDOMAIN, REFUSED, ...) shows a server that parses and answers queries, which is
// what the probe checks: the name asked may well be outside the replica's zones. nullopt: healthy;
// otherwise why not ("answer ID 0x1234, expected 0x4321", "rcode SERVFAIL").
std::optional<std::string> check_dns_answer(std::span<const std::uint8_t> query,
                                            std::span<const std::uint8_t> answer);

} // namespace xdpfwd::ingress::health
