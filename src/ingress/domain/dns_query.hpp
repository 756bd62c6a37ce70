// The name a DNS query asks about (RFC 1035 4.1): the QNAME of its first question, from the
// payload of one UDP datagram; and the REFUSED answer for a query whose name no service
// claims. Hostile input is expected: every read is bounds-checked, compression pointers must
// point strictly backwards (each jump before the previous one) and their number is bounded.
#pragma once

#include "status.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace xdpfwd::ingress::domain {

inline constexpr std::size_t kDnsHeaderLength = 12;
// A name on the wire is 255 bytes at most, root label included (RFC 1035 3.1).
inline constexpr std::size_t kMaxWireNameLength = 255;
// Jumps followed in one name; more than any legitimate message needs (each jump must also go
// backwards, so loops are impossible anyway: this bounds the work).
inline constexpr std::size_t kMaxCompressionPointers = 32;
inline constexpr std::uint8_t kRcodeRefused = 5;

struct DnsName {
  // Found: text holds the name, normalised (lower case, no trailing dot). NoName: the root.
  // BadName: a well-formed name that is not a host name (a '.' or a byte outside
  // [A-Za-z0-9_-] in a label, a label starting or ending with '-', an all-numeric last label).
  // Malformed: truncated, a label over 63 bytes, a name over 255 bytes, a reserved label type
  // (0x40, 0x80), a pointer into the header, forwards, or one too many.
  Status status = Status::Malformed;
  std::string text;
  std::size_t end = 0; // offset just past the name where it starts (past its first pointer)
};

// Reads the (possibly compressed) name that starts at offset in message.
DnsName read_dns_name(std::span<const std::uint8_t> message, std::size_t offset);

struct DnsQuery {
  // NotProtocol: a response (QR=1) or an opcode other than QUERY; Malformed: shorter than the
  // header, QDCOUNT 0, a bad name or no room for QTYPE and QCLASS; else the status of QNAME.
  Status status = Status::Malformed;
  std::string name; // set when status is Found
  std::uint16_t id = 0;
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  std::size_t question_end = 0; // offset just past the first question (QTYPE, QCLASS)
};

DnsQuery parse_dns_query(std::span<const std::uint8_t> message);

// Turns the query in message into its REFUSED answer, in place: same ID, opcode, RD and first
// question; QR=1, AA=TC=RA=Z=0, RCODE=5, QDCOUNT=1 and no other record (EDNS included). Returns
// the answer's length (message is cut there), or nullopt when message is not a query that
// parse_dns_query() reads to the end of its first question (then nothing is changed).
std::optional<std::size_t> refuse_in_place(std::span<std::uint8_t> message);

} // namespace xdpfwd::ingress::domain
