#include "http_host.hpp"

#include <gtest/gtest.h>

#include <string>

namespace xdpfwd::ingress::domain {
namespace {

void expect(std::string_view request, Status status, const std::string& name = "") {
  const HostResult result = find_http_host(request);
  EXPECT_EQ(result.status, status) << to_string(result.status) << " for: " << request;
  EXPECT_EQ(result.name, name) << request;
}

TEST(HttpHost, SimpleGet) {
  expect("GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n", Status::Found, "a.example.test");
  expect("GET /x?y=1 HTTP/1.1\r\nUser-Agent: t\r\nHost: a.example.test\r\nAccept: */*\r\n\r\n", Status::Found,
         "a.example.test");
  expect("POST /submit HTTP/1.0\r\nHost: b.example.test\r\nContent-Length: 3\r\n\r\nabc", Status::Found,
         "b.example.test");
}

TEST(HttpHost, NameAndValueCaseAndWhitespace) {
  expect("GET / HTTP/1.1\r\nhOsT: A.Example.TEST\r\n\r\n", Status::Found, "a.example.test");
  expect("GET / HTTP/1.1\r\nHOST:a.example.test\r\n\r\n", Status::Found, "a.example.test");
  expect("GET / HTTP/1.1\r\nHost: \t a.example.test \t\r\n\r\n", Status::Found, "a.example.test");
  expect("GET / HTTP/1.1\r\nHost: a.example.test.\r\n\r\n", Status::Found, "a.example.test");
}

TEST(HttpHost, PortIsDropped) {
  expect("GET / HTTP/1.1\r\nHost: a.example.test:8080\r\n\r\n", Status::Found, "a.example.test");
  expect("GET / HTTP/1.1\r\nHost: a.example.test:\r\n\r\n", Status::Found, "a.example.test");
  expect("GET / HTTP/1.1\r\nHost: a.example.test:80a\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nHost: a.example.test:80:81\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", Status::Malformed);
}

TEST(HttpHost, IpLiteralsAreNoName) {
  expect("GET / HTTP/1.1\r\nHost: [fd00::1]\r\n\r\n", Status::NoName);
  expect("GET / HTTP/1.1\r\nHost: [fd00::1]:8080\r\n\r\n", Status::NoName);
  expect("GET / HTTP/1.1\r\nHost: [::ffff:10.0.0.1]:80\r\n\r\n", Status::NoName);
  expect("GET / HTTP/1.1\r\nHost: 198.18.0.10:80\r\n\r\n", Status::NoName);
  expect("GET / HTTP/1.1\r\nHost: [fd00::1\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nHost: []\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nHost: [fd00::1]x\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nHost: [fd00::1]:x\r\n\r\n", Status::Malformed);
}

TEST(HttpHost, BadNames) {
  expect("GET / HTTP/1.1\r\nHost: bad_name.test\r\n\r\n", Status::BadName);
  expect("GET / HTTP/1.1\r\nHost: a.test b.test\r\n\r\n", Status::BadName);
  expect("GET / HTTP/1.1\r\nHost: a.test,b.test\r\n\r\n", Status::BadName);
  expect("GET / HTTP/1.1\r\nHost: caf\xc3\xa9.test\r\n\r\n", Status::BadName);
  expect("GET / HTTP/1.1\r\nHost: a%2e.test\r\n\r\n", Status::BadName);
}

TEST(HttpHost, MissingHost) {
  expect("GET / HTTP/1.1\r\n\r\n", Status::Malformed);           // required in 1.1
  expect("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.0\r\n\r\n", Status::NoName);              // optional in 1.0
  expect("GET / HTTP/1.1\r\nHost:\r\n\r\n", Status::NoName);     // empty: present, no name
  expect("GET / HTTP/1.1\r\nX-Host: a.test\r\n\r\n", Status::Malformed);
}

TEST(HttpHost, DuplicateHostIsMalformed) {
  expect("GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nHost: a.test\r\nhost: b.test\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.0\r\nHost: a.test\r\nHOST: \r\n\r\n", Status::Malformed);
}

TEST(HttpHost, AbsoluteFormWins) {
  expect("GET http://abs.example.test/x HTTP/1.1\r\nHost: other.example.test\r\n\r\n", Status::Found,
         "abs.example.test");
  expect("GET HTTPS://Abs.Example.test:8443?q HTTP/1.1\r\nHost: other.example.test\r\n\r\n", Status::Found,
         "abs.example.test");
  expect("GET http://abs.example.test HTTP/1.0\r\n\r\n", Status::Found, "abs.example.test");
  expect("GET http://[fd00::1]:80/ HTTP/1.1\r\nHost: a.example.test\r\n\r\n", Status::NoName);
  expect("GET http://abs.example.test/ HTTP/1.1\r\n\r\n", Status::Malformed); // 1.1 still needs Host
  expect("GET http://user@abs.example.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET http:///x HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET http://abs.example.test/ HTTP/1.1\r\nHost: a.test:x\r\n\r\n", Status::Malformed);
  expect("GET http://abs.example.test/ HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n", Status::Malformed);
}

TEST(HttpHost, OtherTargetForms) {
  expect("OPTIONS * HTTP/1.1\r\nHost: a.example.test\r\n\r\n", Status::Found, "a.example.test");
  expect("CONNECT c.example.test:443 HTTP/1.1\r\nHost: c.example.test:443\r\n\r\n", Status::Found, "c.example.test");
  expect("CONNECT c.example.test:443 HTTP/1.1\r\nHost: other.test\r\n\r\n", Status::Found, "c.example.test");
  expect("CONNECT c.example.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET index.html HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET mailto:x HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);
}

TEST(HttpHost, RequestLineRules) {
  expect("\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Found, "a.test"); // leading empty lines
  expect("\nGET / HTTP/1.1\nHost: a.test\n\n", Status::Found, "a.test");               // bare LF
  expect("GET / HTTP/1.2\r\nHost: a.test\r\n\r\n", Status::Found, "a.test");          // later 1.x: as 1.1
  expect("GET  / HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);                 // two SP
  expect("GET / x HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET /\x01 HTTP/1.1\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET / http/1.1\r\nHost: a.test\r\n\r\n", Status::NotProtocol);
  expect("GET / HTTP/1.1 \r\nHost: a.test\r\n\r\n", Status::NotProtocol);
  expect("GET /\r\n\r\n", Status::NotProtocol);                                          // HTTP/0.9
  expect("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Status::NotProtocol);                       // h2 preface
  expect("GET / HTTP/3.0\r\nHost: a.test\r\n\r\n", Status::NotProtocol);
  expect("SSH-2.0-OpenSSH_9.2\r\n", Status::NotProtocol);
  expect("\x16\x03\x01\x02\x00", Status::NotProtocol);                                   // TLS
  expect(" GET / HTTP/1.1\r\n", Status::NotProtocol);
  expect("\rGET / HTTP/1.1\r\n", Status::NotProtocol);
  expect(std::string(40, 'G') + " / HTTP/1.1\r\n", Status::NotProtocol);
  expect("G\x7f" "T / HTTP/1.1\r\n", Status::NotProtocol);
  expect("GET / HTTP/1.1\r\nHost: a.test\r\n", Status::NeedMore);
  expect("", Status::NeedMore);
  expect("\r", Status::NeedMore);
}

TEST(HttpHost, HeaderLineRules) {
  expect("GET / HTTP/1.1\r\nHost : a.test\r\n\r\n", Status::Malformed);            // space before colon
  expect("GET / HTTP/1.1\r\nHost: a.test\r\n folded\r\n\r\n", Status::Malformed);   // obs-fold
  expect("GET / HTTP/1.1\r\n Host: a.test\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nNoColon\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\n: x\r\nHost: a.test\r\n\r\n", Status::Malformed);
  expect("GET / HTTP/1.1\r\nX: a\rb\r\nHost: a.test\r\n\r\n", Status::Malformed);  // bare CR
  expect(std::string("GET / HTTP/1.1\r\nX: a\0b\r\nHost: a.test\r\n\r\n", 40), Status::Malformed);
  expect("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\nHost: a.test\r\n\r\n", Status::Found, "a.test"); // obs-text
  expect("GET / HTTP/1.1\r\nHost: a.test\r\r\n\r\n", Status::Malformed);
}

const std::string kRequest = "GET /index.html HTTP/1.1\r\nUser-Agent: curl/7.88\r\nHost: Split.Example.test:8080\r\n"
                             "Accept: */*\r\n\r\nBODY";

TEST(HttpHost, EverySplitPoint) {
  for (std::size_t split = 0; split <= kRequest.size(); ++split) {
    RequestHeadParser parser;
    const Status first = parser.feed(std::string_view(kRequest).substr(0, split));
    const bool complete = split >= kRequest.size() - 4;
    ASSERT_EQ(first, complete ? Status::Found : Status::NeedMore) << split;
    ASSERT_EQ(parser.feed(std::string_view(kRequest).substr(split)), Status::Found) << split;
    ASSERT_EQ(parser.name(), "split.example.test");
    ASSERT_EQ(parser.buffered().size(), complete ? split : kRequest.size());
  }
}

TEST(HttpHost, ByteByByteAndThreeWaySplits) {
  RequestHeadParser bytes;
  for (const char c : kRequest) bytes.feed(std::string_view(&c, 1));
  EXPECT_EQ(bytes.status(), Status::Found);
  EXPECT_EQ(bytes.name(), "split.example.test");
  EXPECT_EQ(bytes.minor_version(), 1);
  for (std::size_t a = 0; a < kRequest.size(); a += 3) {
    for (std::size_t b = a; b < kRequest.size(); b += 5) {
      RequestHeadParser parser;
      parser.feed(std::string_view(kRequest).substr(0, a));
      parser.feed(std::string_view(kRequest).substr(a, b - a));
      ASSERT_EQ(parser.feed(std::string_view(kRequest).substr(b)), Status::Found) << a << " " << b;
    }
  }
}

TEST(HttpHost, CrlfSplitBetweenReads) {
  RequestHeadParser parser;
  EXPECT_EQ(parser.feed("\r"), Status::NeedMore);
  EXPECT_EQ(parser.feed("\nGET / HTTP/1.1\r"), Status::NeedMore);
  EXPECT_EQ(parser.feed("\nHost: a.test\r\n\r"), Status::NeedMore);
  EXPECT_EQ(parser.feed("\n"), Status::Found);
}

TEST(HttpHost, Oversize) {
  const std::string padding = "X-Pad: " + std::string(9000, 'p') + "\r\n";
  expect("GET / HTTP/1.1\r\nHost: a.test\r\n" + padding + "\r\n", Status::TooLong);
  expect("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n", Status::TooLong);
  // Byte by byte too, and no verdict change past the limit.
  RequestHeadParser parser(64);
  const std::string request = "GET / HTTP/1.1\r\nHost: a.test\r\nX: " + std::string(64, 'x') + "\r\n\r\n";
  Status status = Status::NeedMore;
  std::size_t fed = 0;
  for (; fed < request.size() && status == Status::NeedMore; ++fed) status = parser.feed(request.substr(fed, 1));
  EXPECT_EQ(status, Status::TooLong);
  EXPECT_EQ(fed, 64U);
  // Exactly at the limit is fine.
  const std::string exact = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
  EXPECT_EQ(find_http_host(exact, exact.size()).status, Status::Found);
  EXPECT_EQ(find_http_host(exact, exact.size() - 1).status, Status::TooLong);
}

TEST(HttpHost, FinalVerdictIgnoresMoreBytes) {
  const std::string_view head = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
  RequestHeadParser parser;
  EXPECT_EQ(parser.feed(head), Status::Found);
  EXPECT_EQ(parser.feed("more"), Status::Found);
  EXPECT_EQ(parser.buffered().size(), head.size());
}

TEST(ParseAuthority, Forms) {
  EXPECT_EQ(parse_authority("").status, Status::NoName);
  EXPECT_EQ(parse_authority("a.test").name, "a.test");
  EXPECT_EQ(parse_authority("A.test:1").name, "a.test");
  EXPECT_EQ(parse_authority("[v1.x]").status, Status::NoName);
  EXPECT_EQ(parse_authority("[a b]").status, Status::Malformed);
}

} // namespace
} // namespace xdpfwd::ingress::domain
