#include "probe_codec.hpp"

#include <gtest/gtest.h>

namespace xdpfwd::ingress::health {
namespace {

using Verdict = HttpHead::Verdict;
namespace ip = boost::asio::ip;

TEST(HttpRequest, HostWithPortUnlessEighty) {
  EXPECT_EQ(make_http_request("/healthz", ip::make_address("10.201.0.11"), 8080),
            "GET /healthz HTTP/1.1\r\nHost: 10.201.0.11:8080\r\nConnection: close\r\n"
            "User-Agent: xdpfwd-health\r\n\r\n");
  EXPECT_EQ(make_http_request("/", ip::make_address("10.201.0.11"), 80),
            "GET / HTTP/1.1\r\nHost: 10.201.0.11\r\nConnection: close\r\nUser-Agent: xdpfwd-health\r\n\r\n");
}

TEST(HttpRequest, Ipv6HostIsBracketed) {
  const auto request = make_http_request("/", ip::make_address("fd00:201::11"), 8080);
  EXPECT_NE(request.find("\r\nHost: [fd00:201::11]:8080\r\n"), std::string::npos) << request;
}

TEST(HttpStatus, StatusLines) {
  EXPECT_EQ(parse_http_status("HTTP/1.1 200 OK\r\n").status, 200u);
  EXPECT_EQ(parse_http_status("HTTP/1.1 200 OK\r\n").verdict, Verdict::Status);
  EXPECT_EQ(parse_http_status("HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n").status, 503u);
  EXPECT_EQ(parse_http_status("HTTP/1.1 204\r\n").status, 204u); // empty reason phrase
  EXPECT_EQ(parse_http_status("HTTP/1.1 404 \n").status, 404u); // bare LF
}

TEST(HttpStatus, NeedsMoreUntilTheLineEnds) {
  for (std::string_view partial : {"", "H", "HTTP/1", "HTTP/1.1 2", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK\r"})
    EXPECT_EQ(parse_http_status(partial).verdict, Verdict::NeedMore) << partial;
}

TEST(HttpStatus, Malformed) {
  for (std::string_view bad : {"SSH-2.0-OpenSSH\r\n", "X", "HTTP/2 200\r\n", "HTTP/1.1 20\r\n", "HTTP/1.1 2000\r\n",
                               "HTTP/1.1 abc OK\r\n", "HTTP/1.1 099 x\r\n", "HTTP/1.1  200 OK\r\n"})
    EXPECT_EQ(parse_http_status(bad).verdict, Verdict::Malformed) << bad;
}

TEST(DnsQuery, RootNs) {
  const auto query = make_dns_query(0x1234, ".", kDnsTypeNs);
  const std::vector<std::uint8_t> expected = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
  EXPECT_EQ(query, expected);
  EXPECT_EQ(make_dns_query(0x1234, "", kDnsTypeNs), expected);
}

TEST(DnsQuery, Name) {
  const auto query = make_dns_query(1, "health.example.test.", kDnsTypeA);
  const std::vector<std::uint8_t> name = {6, 'h', 'e', 'a', 'l', 't', 'h', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                          4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
  ASSERT_EQ(query.size(), 12 + name.size());
  EXPECT_TRUE(std::equal(name.begin(), name.end(), query.begin() + 12));
  EXPECT_EQ(make_dns_query(1, "health.example.test", kDnsTypeA), query);
}

TEST(DnsQuery, UnencodableNames) {
  EXPECT_TRUE(make_dns_query(1, "a..b", kDnsTypeA).empty());
  EXPECT_TRUE(make_dns_query(1, ".a", kDnsTypeA).empty());
  EXPECT_TRUE(make_dns_query(1, std::string(64, 'a'), kDnsTypeA).empty());
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  EXPECT_TRUE(make_dns_query(1, long_name, kDnsTypeA).empty());
  EXPECT_FALSE(make_dns_query(1, std::string(63, 'a'), kDnsTypeA).empty());
}

std::vector<std::uint8_t> answer_to(std::vector<std::uint8_t> query, std::uint8_t rcode) {
  query[2] |= 0x80;
  query[3] = static_cast<std::uint8_t>(0x80 | rcode);
  return query;
}

TEST(DnsAnswer, AnyRcodeButServfail) {
  const auto query = make_dns_query(0xbeef, ".", kDnsTypeNs);
  EXPECT_EQ(check_dns_answer(query, answer_to(query, 0)), std::nullopt);
  EXPECT_EQ(check_dns_answer(query, answer_to(query, 3)), std::nullopt); // NXDOMAIN
  EXPECT_EQ(check_dns_answer(query, answer_to(query, 5)), std::nullopt); // REFUSED
  EXPECT_EQ(check_dns_answer(query, answer_to(query, 2)), "rcode SERVFAIL");
}

TEST(DnsAnswer, NotAnAnswer) {
  const auto query = make_dns_query(0xbeef, ".", kDnsTypeNs);
  EXPECT_EQ(check_dns_answer(query, query), "not a DNS response (QR clear)");
  auto other_id = answer_to(query, 0);
  other_id[1] = 0xee;
  EXPECT_EQ(check_dns_answer(query, other_id), "answer ID 0xbeee, expected 0xbeef");
  EXPECT_TRUE(check_dns_answer(query, std::vector<std::uint8_t>(5, 0)).has_value());
  const std::string echo = "xdpfwd-health";
  EXPECT_TRUE(check_dns_answer(query, std::span(reinterpret_cast<const std::uint8_t*>(echo.data()), echo.size())));
}

} // namespace
} // namespace xdpfwd::ingress::health
