#include "host_name.hpp"
#include "http_misdirected.hpp"
#include "status.hpp"
#include "tls_alert.hpp"

#include <gtest/gtest.h>

#include <string>

namespace xdpfwd::ingress::domain {
namespace {

using Kind = HostName::Kind;

HostName name(std::string text) { return {.kind = Kind::Name, .name = std::move(text)}; }
const HostName kInvalid{.kind = Kind::Invalid, .name = {}};
const HostName kAddress{.kind = Kind::Address, .name = {}};

TEST(HostName, NormalisesCaseAndOneTrailingDot) {
  EXPECT_EQ(classify_host("a.example.test"), name("a.example.test"));
  EXPECT_EQ(classify_host("A.Example.TEST"), name("a.example.test"));
  EXPECT_EQ(classify_host("a.example.test."), name("a.example.test"));
  EXPECT_EQ(classify_host("a.example.test.."), kInvalid);
  EXPECT_EQ(classify_host("localhost"), name("localhost"));
  EXPECT_EQ(classify_host("xn--bcher-kva.example"), name("xn--bcher-kva.example"));
  EXPECT_EQ(classify_host("1a.2b-c.test"), name("1a.2b-c.test"));
}

TEST(HostName, RejectsWhatIsNoHostName) {
  for (const char* text : {"", ".", "..", ".a.test", "a..test", "-a.test", "a-.test", "a.-test", "a_b.test", "a b.test",
                           "a.test/", "*.a.test", "a.123", "\xc3\xa9.test", "a:80"}) {
    EXPECT_EQ(classify_host(text), kInvalid) << text;
  }
  EXPECT_EQ(classify_host(std::string("a\0b.test", 8)), kInvalid);
}

TEST(HostName, LabelAndNameLengths) {
  const std::string l63(63, 'a');
  EXPECT_EQ(classify_host(l63 + ".test"), name(l63 + ".test"));
  EXPECT_EQ(classify_host(std::string(64, 'a') + ".test"), kInvalid);
  // 253 characters: 4 labels of 63 and one of 1 with their dots... 63*3+3 = 192, + 61 = 253.
  const std::string n253 = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  ASSERT_EQ(n253.size(), 253U);
  EXPECT_EQ(classify_host(n253), name(n253));
  EXPECT_EQ(classify_host(n253 + "."), name(n253));
  EXPECT_EQ(classify_host(n253 + "b"), kInvalid);
}

TEST(HostName, AddressesAreNotNames) {
  EXPECT_EQ(classify_host("10.0.0.1"), kAddress);
  EXPECT_EQ(classify_host("10.0.0.1."), kAddress);
  EXPECT_EQ(classify_host("999.1"), kAddress);
  EXPECT_EQ(classify_host("1.0.0.10.in-addr.arpa"), name("1.0.0.10.in-addr.arpa"));
}

TEST(HostName, UnderscoreOnlyUnderDnsRules) {
  EXPECT_EQ(classify_host("_sip._tcp.a.test"), kInvalid);
  EXPECT_EQ(classify_host("_sip._TCP.a.test", NameRules::DnsQuery), name("_sip._tcp.a.test"));
  EXPECT_EQ(classify_host("_dmarc.a.test", NameRules::DnsQuery), name("_dmarc.a.test"));
  EXPECT_EQ(classify_host("-x.a.test", NameRules::DnsQuery), kInvalid);
}

TEST(Status, Names) {
  EXPECT_EQ(to_string(Status::NeedMore), "need_more");
  EXPECT_EQ(to_string(Status::NotProtocol), "not_protocol");
  EXPECT_EQ(to_string(Status::TooLong), "too_long");
  EXPECT_FALSE(is_final(Status::NeedMore));
  EXPECT_TRUE(is_final(Status::Malformed));
}

TEST(TlsAlert, RecordBytes) {
  constexpr auto alert = tls_fatal_alert(TlsAlert::UnrecognizedName);
  EXPECT_EQ(alert, (std::array<std::uint8_t, 7>{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70}));
  EXPECT_EQ(tls_fatal_alert(TlsAlert::HandshakeFailure)[6], 40);
}

// Header fields as the client will read them, and a Content-Length that matches the body.
void check_response(std::string_view response, std::string_view status_line) {
  EXPECT_TRUE(response.starts_with(std::string(status_line) + "\r\n")) << response;
  EXPECT_NE(response.find("\r\nConnection: close\r\n"), std::string_view::npos);
  const auto end = response.find("\r\n\r\n");
  ASSERT_NE(end, std::string_view::npos);
  const auto length_at = response.find("Content-Length: ");
  ASSERT_NE(length_at, std::string_view::npos);
  const std::size_t length = std::stoul(std::string(response.substr(length_at + 16)));
  EXPECT_EQ(response.size() - (end + 4), length);
}

TEST(HttpResponses, MisdirectedAndBadRequest) {
  check_response(kHttpMisdirectedRequest, "HTTP/1.1 421 Misdirected Request");
  check_response(kHttpBadRequest, "HTTP/1.1 400 Bad Request");
}

} // namespace
} // namespace xdpfwd::ingress::domain
