#include "dns_query.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace xdpfwd::ingress::domain {
namespace {

using Bytes = std::vector<std::uint8_t>;

// A DNS header: ID 0x1234, flags, QDCOUNT, ANCOUNT 0, NSCOUNT 0, ARCOUNT.
Bytes header(std::uint16_t flags = 0x0100, std::uint16_t qdcount = 1, std::uint16_t arcount = 0) {
  return {0x12, 0x34, static_cast<std::uint8_t>(flags >> 8), static_cast<std::uint8_t>(flags), 0,
          static_cast<std::uint8_t>(qdcount), 0, 0, 0, 0, 0, static_cast<std::uint8_t>(arcount)};
}

// "a.example.test" -> 1 a 7 example 4 test 0
Bytes wire(const std::string& dotted) {
  Bytes out;
  std::size_t start = 0;
  while (start < dotted.size()) {
    const auto dot = dotted.find('.', start);
    const std::string label = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    out.push_back(static_cast<std::uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  out.push_back(0);
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const Bytes kTypeA{0, 1, 0, 1};
const Bytes kOpt{0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0}; // EDNS OPT record, 4096 bytes, no options

Bytes query(const std::string& name) { return header() + wire(name) + kTypeA; }

TEST(DnsQuery, PlainQuery) {
  const DnsQuery q = parse_dns_query(query("svc-a.Example.TEST"));
  EXPECT_EQ(q.status, Status::Found);
  EXPECT_EQ(q.name, "svc-a.example.test");
  EXPECT_EQ(q.id, 0x1234);
  EXPECT_EQ(q.qtype, 1);
  EXPECT_EQ(q.qclass, 1);
  EXPECT_EQ(q.question_end, 12 + 20 + 4U);
}

TEST(DnsQuery, WithEdnsAndSrvName) {
  const DnsQuery q = parse_dns_query(header(0x0100, 1, 1) + wire("_sip._tcp.a.example.test") + Bytes{0, 33, 0, 1} + kOpt);
  EXPECT_EQ(q.status, Status::Found);
  EXPECT_EQ(q.name, "_sip._tcp.a.example.test");
  EXPECT_EQ(q.qtype, 33);
}

TEST(DnsQuery, RootAndOddNames) {
  EXPECT_EQ(parse_dns_query(header() + Bytes{0} + kTypeA).status, Status::NoName);
  EXPECT_EQ(parse_dns_query(query("10.0.0.1")).status, Status::BadName);
  EXPECT_EQ(parse_dns_query(query("a b.test")).status, Status::BadName);
  EXPECT_EQ(parse_dns_query(query("-a.test")).status, Status::BadName);
  EXPECT_EQ(parse_dns_query(header() + Bytes{3, 'a', '.', 'b', 4, 't', 'e', 's', 't', 0} + kTypeA).status,
            Status::BadName); // a dot inside a label
  EXPECT_EQ(parse_dns_query(header() + Bytes{2, 'a', 0, 4, 't', 'e', 's', 't', 0} + kTypeA).status, Status::BadName);
  EXPECT_EQ(parse_dns_query(header() + Bytes{2, 0xc3, 0xa9, 4, 't', 'e', 's', 't', 0} + kTypeA).status,
            Status::BadName);
}

TEST(DnsQuery, HeaderChecks) {
  EXPECT_EQ(parse_dns_query(Bytes{}).status, Status::Malformed);
  EXPECT_EQ(parse_dns_query(header()).status, Status::Malformed);                      // no question
  const Bytes full = header();
  EXPECT_EQ(parse_dns_query(Bytes(full.begin(), full.begin() + 11)).status, Status::Malformed);
  EXPECT_EQ(parse_dns_query(header(0x8180) + wire("a.test") + kTypeA).status, Status::NotProtocol); // response
  EXPECT_EQ(parse_dns_query(header(0x2800) + wire("a.test") + kTypeA).status, Status::NotProtocol); // UPDATE
  EXPECT_EQ(parse_dns_query(header(0x1000) + wire("a.test") + kTypeA).status, Status::NotProtocol); // STATUS
  EXPECT_EQ(parse_dns_query(header(0x0100, 0) + wire("a.test") + kTypeA).status, Status::Malformed); // QDCOUNT 0
  EXPECT_EQ(parse_dns_query(header(0x0100, 2) + wire("a.test") + kTypeA).status, Status::Found);     // first only
}

TEST(DnsQuery, Truncated) {
  const Bytes whole = query("a.example.test");
  for (std::size_t size = 0; size < whole.size(); ++size) {
    EXPECT_EQ(parse_dns_query(Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(size))).status,
              Status::Malformed)
        << size;
  }
  EXPECT_EQ(parse_dns_query(whole).status, Status::Found);
}

TEST(DnsQuery, LabelAndNameLimits) {
  const std::string l63(63, 'a');
  EXPECT_EQ(parse_dns_query(query(l63 + ".test")).status, Status::Found);
  // 64: the length byte's top bits are 01, an extended label type.
  EXPECT_EQ(parse_dns_query(header() + Bytes{64} + Bytes(64, 'a') + Bytes{0} + kTypeA).status, Status::Malformed);
  EXPECT_EQ(parse_dns_query(header() + Bytes{0x80, 'a', 0} + kTypeA).status, Status::Malformed);
  // 255 bytes on the wire is the most: 3 x (1+63) + (1+61) + 1 = 255.
  const std::string n253 = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  EXPECT_EQ(wire(n253).size(), 255U);
  EXPECT_EQ(parse_dns_query(query(n253)).name, n253);
  EXPECT_EQ(parse_dns_query(query(n253 + "b")).status, Status::Malformed);
  EXPECT_EQ(parse_dns_query(query(n253 + ".c")).status, Status::Malformed);
}

// A message with a name at 12 and a second at `second`; returns read_dns_name at `second`.
TEST(DnsName, CompressionPointersBackwards) {
  // 12: "example.test", then 26: "a" + pointer to 12 -> a.example.test.
  const Bytes message = header() + wire("example.test") + Bytes{1, 'a', 0xc0, 12};
  ASSERT_EQ(message.size(), 30U);
  const DnsName name = read_dns_name(message, 26);
  EXPECT_EQ(name.status, Status::Found);
  EXPECT_EQ(name.text, "a.example.test");
  EXPECT_EQ(name.end, 30U); // just past the pointer
  // A pointer alone, and a chain of pointers: 30 -> 26 -> 12.
  const Bytes chain = message + Bytes{1, 'b', 0xc0, 26};
  const DnsName b = read_dns_name(chain, 30);
  EXPECT_EQ(b.text, "b.a.example.test");
  EXPECT_EQ(b.end, 34U);
  EXPECT_EQ(read_dns_name(chain, 32).text, "a.example.test");
  // Into the middle of a name: 20 is "test" of "example.test".
  EXPECT_EQ(read_dns_name(header() + wire("example.test") + Bytes{0xc0, 20}, 26).text, "test");
}

TEST(DnsName, PointerLoopsAndForwardPointersAreMalformed) {
  // Points to itself.
  EXPECT_EQ(read_dns_name(header() + Bytes{0xc0, 12}, 12).status, Status::Malformed);
  // Forwards.
  EXPECT_EQ(read_dns_name(header() + Bytes{0xc0, 14, 1, 'a', 0}, 12).status, Status::Malformed);
  // A two-pointer loop: 12 -> 14 (forwards), 14 -> 12 (backwards): from 14 it would loop.
  const Bytes loop = header() + Bytes{0xc0, 14, 0xc0, 12};
  EXPECT_EQ(read_dns_name(loop, 12).status, Status::Malformed);
  EXPECT_EQ(read_dns_name(loop, 14).status, Status::Malformed);
  // Label then a pointer back to that label: a -> a -> a ...
  EXPECT_EQ(read_dns_name(header() + Bytes{1, 'a', 0xc0, 12}, 12).status, Status::Malformed);
  // Backwards, but to a point after an earlier jump's target: 16 -> 12, where 12: 'a' then
  // pointer to 16 - forwards from the segment that began at 12.
  EXPECT_EQ(read_dns_name(header() + Bytes{1, 'a', 0xc0, 16, 1, 'b', 0xc0, 12}, 16).status, Status::Malformed);
  // Into the header.
  EXPECT_EQ(read_dns_name(header() + Bytes{0xc0, 0}, 12).status, Status::Malformed);
  EXPECT_EQ(read_dns_name(header() + Bytes{0xc0, 11}, 12).status, Status::Malformed);
  // Pointer cut in half; pointer past the end.
  EXPECT_EQ(read_dns_name(header() + Bytes{1, 'a', 0xc0}, 12).status, Status::Malformed);
  EXPECT_EQ(read_dns_name(header() + wire("a") + Bytes{0xc0, 200}, 15).status, Status::Malformed);
}

TEST(DnsName, PointerCountIsBounded) {
  // 12: "a", then a chain of pointers each to the previous one.
  Bytes message = header() + wire("x");
  std::size_t previous = 12;
  for (std::size_t i = 0; i < kMaxCompressionPointers + 1; ++i) {
    const std::size_t here = message.size();
    message.insert(message.end(), {static_cast<std::uint8_t>(0xc0 | previous >> 8), static_cast<std::uint8_t>(previous)});
    previous = here;
  }
  // Starting at the k-th pointer follows k pointers.
  const std::size_t first_pointer = 15;
  EXPECT_EQ(read_dns_name(message, first_pointer + 2 * (kMaxCompressionPointers - 1)).text, "x");
  EXPECT_EQ(read_dns_name(message, first_pointer + 2 * kMaxCompressionPointers).status, Status::Malformed);
}

TEST(DnsName, LengthLimitCountsAcrossPointers) {
  const std::string l63(63, 'a');
  // 12: 3 x 63-byte labels + root = 193 bytes; then 61-byte label + pointer = 255 total: fine;
  // a 62-byte label makes 256.
  const Bytes base = header() + wire(l63 + "." + l63 + "." + l63);
  const std::size_t second = base.size();
  Bytes ok = base + Bytes{61} + Bytes(61, 'b') + Bytes{0xc0, 12};
  EXPECT_EQ(read_dns_name(ok, second).status, Status::Found);
  Bytes over = base + Bytes{62} + Bytes(62, 'b') + Bytes{0xc0, 12};
  EXPECT_EQ(read_dns_name(over, second).status, Status::Malformed);
}

TEST(DnsQuery, PointerInFirstQuestionIsMalformed) {
  // Nothing lies before the first question but the header.
  EXPECT_EQ(parse_dns_query(header() + Bytes{0xc0, 12} + kTypeA).status, Status::Malformed);
  EXPECT_EQ(parse_dns_query(header() + Bytes{1, 'a', 0xc0, 12} + kTypeA).status, Status::Malformed);
  EXPECT_EQ(parse_dns_query(header() + Bytes{0xc0, 2} + kTypeA).status, Status::Malformed);
}

TEST(Refuse, InPlace) {
  Bytes message = header(0x0110, 1, 1) + wire("unknown.example.test") + kTypeA + kOpt; // RD and CD set
  const Bytes original = message;
  const auto length = refuse_in_place(message);
  ASSERT_TRUE(length);
  const std::size_t question_end = 12 + 22 + 4;
  EXPECT_EQ(*length, question_end);
  message.resize(*length);
  EXPECT_EQ(message[0], 0x12);
  EXPECT_EQ(message[1], 0x34);
  EXPECT_EQ(message[2], 0x81); // QR, opcode QUERY, RD
  EXPECT_EQ(message[3], 0x05); // RA=0 Z=0 RCODE=REFUSED
  EXPECT_EQ(Bytes(message.begin() + 4, message.begin() + 12), (Bytes{0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(Bytes(message.begin() + 12, message.end()),
            Bytes(original.begin() + 12, original.begin() + static_cast<std::ptrdiff_t>(question_end)));
  const DnsQuery reread = parse_dns_query(message);
  EXPECT_EQ(reread.status, Status::NotProtocol);
}

TEST(Refuse, KeepsOnlyTheFirstQuestionAndClearsAaTc) {
  Bytes message = header(0x0700, 2) + wire("a.test") + kTypeA + wire("b.test") + kTypeA; // AA TC RD
  const auto length = refuse_in_place(message);
  ASSERT_TRUE(length);
  EXPECT_EQ(*length, 12 + 8 + 4U);
  EXPECT_EQ(message[2], 0x81);
  EXPECT_EQ(message[5], 1);
}

TEST(Refuse, NamesThatAreNotHostNamesAreStillRefused) {
  Bytes root = header() + Bytes{0} + kTypeA;
  EXPECT_EQ(refuse_in_place(root), 17U);
  Bytes odd = query("a b.test");
  EXPECT_TRUE(refuse_in_place(odd));
}

TEST(Refuse, LeavesNonQueriesAlone) {
  for (Bytes message : {header(0x8180) + wire("a.test") + kTypeA, header() + wire("a.test") + Bytes{0, 1},
                        header(0x0100, 0), Bytes{1, 2, 3}}) {
    const Bytes original = message;
    EXPECT_FALSE(refuse_in_place(message));
    EXPECT_EQ(message, original);
  }
}

} // namespace
} // namespace xdpfwd::ingress::domain
