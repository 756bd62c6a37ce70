#include "tls_alert.hpp"
#include "tls_client_hello.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xdpfwd::ingress::domain {
namespace {

using Bytes = std::vector<std::uint8_t>;

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};

// An OpenSSL client between two memory BIOs: what it writes is the ClientHello.
class Client {
public:
  Client(int min_version, int max_version, const std::optional<std::string>& sni)
      : ctx_(SSL_CTX_new(TLS_client_method())) {
    EXPECT_TRUE(ctx_);
    SSL_CTX_set_security_level(ctx_.get(), 0); // lets TLS 1.0 be offered
    SSL_CTX_set_cipher_list(ctx_.get(), "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx_.get(), min_version);
    SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
    ssl_.reset(SSL_new(ctx_.get()));
    to_client_ = BIO_new(BIO_s_mem());
    from_client_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_.get(), to_client_, from_client_); // ssl_ owns both
    if (sni) SSL_set_tlsext_host_name(ssl_.get(), sni->c_str());
    SSL_set_connect_state(ssl_.get());
  }

  // Runs the handshake as far as it goes without the server: the bytes the client sent.
  Bytes step() {
    const int rc = SSL_do_handshake(ssl_.get());
    last_error_ = SSL_get_error(ssl_.get(), rc);
    Bytes out(static_cast<std::size_t>(BIO_pending(from_client_)));
    if (!out.empty()) BIO_read(from_client_, out.data(), static_cast<int>(out.size()));
    return out;
  }
  void receive(const std::uint8_t* data, std::size_t size) { BIO_write(to_client_, data, static_cast<int>(size)); }
  int last_error() const noexcept { return last_error_; }

private:
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;
  BIO* to_client_ = nullptr;
  BIO* from_client_ = nullptr;
  int last_error_ = 0;
};

Bytes client_hello(int min_version, int max_version, const std::optional<std::string>& sni) {
  Client client(min_version, max_version, sni);
  Bytes hello = client.step();
  EXPECT_EQ(client.last_error(), SSL_ERROR_WANT_READ);
  EXPECT_GT(hello.size(), 50U);
  return hello;
}

struct Flavour {
  const char* label;
  int min_version;
  int max_version;
};
const Flavour kFlavours[] = {
    {"tls10", TLS1_VERSION, TLS1_VERSION},
    {"tls12_only", TLS1_2_VERSION, TLS1_2_VERSION},
    {"tls13", TLS1_3_VERSION, TLS1_3_VERSION},
    {"tls12_13", TLS1_2_VERSION, TLS1_3_VERSION},
};

// The handshake bytes of a stream of records, and the record version of the first.
std::pair<Bytes, std::uint16_t> unwrap(const Bytes& records) {
  Bytes payload;
  std::size_t at = 0;
  while (at + 5 <= records.size()) {
    const std::size_t length = records[at + 3] << 8 | records[at + 4];
    payload.insert(payload.end(), records.begin() + at + 5, records.begin() + at + 5 + length);
    at += 5 + length;
  }
  EXPECT_EQ(at, records.size());
  return {payload, static_cast<std::uint16_t>(records[1] << 8 | records[2])};
}

// Handshake bytes in records of at most `size` bytes each.
Bytes wrap(const Bytes& handshake, std::size_t size, std::uint16_t version = 0x0301) {
  Bytes out;
  for (std::size_t at = 0; at < handshake.size(); at += size) {
    const std::size_t n = std::min(size, handshake.size() - at);
    out.insert(out.end(), {22, static_cast<std::uint8_t>(version >> 8), static_cast<std::uint8_t>(version),
                           static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
    out.insert(out.end(), handshake.begin() + at, handshake.begin() + at + n);
  }
  return out;
}

SniResult whole(const Bytes& bytes) { return find_sni(bytes); }

SniResult byte_by_byte(const Bytes& bytes) {
  ClientHelloParser parser;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const Status status = parser.feed(std::span(bytes).subspan(i, 1));
    if (status != Status::NeedMore) return {.status = status, .name = parser.name()};
  }
  return {.status = parser.status(), .name = parser.name()};
}

void expect_result(const SniResult& result, Status status, const std::string& name) {
  EXPECT_EQ(result.status, status) << to_string(result.status);
  EXPECT_EQ(result.name, name);
}

class RealHello : public testing::TestWithParam<Flavour> {};

TEST_P(RealHello, WithSniWholeAndByteByByte) {
  const Bytes hello = client_hello(GetParam().min_version, GetParam().max_version, "Svc-A.Example.test");
  expect_result(whole(hello), Status::Found, "svc-a.example.test");
  expect_result(byte_by_byte(hello), Status::Found, "svc-a.example.test");
}

TEST_P(RealHello, WithoutSni) {
  const Bytes hello = client_hello(GetParam().min_version, GetParam().max_version, std::nullopt);
  expect_result(whole(hello), Status::NoName, "");
  expect_result(byte_by_byte(hello), Status::NoName, "");
}

TEST_P(RealHello, EverySplitPoint) {
  const Bytes hello = client_hello(GetParam().min_version, GetParam().max_version, "a.example.test");
  for (std::size_t split = 0; split <= hello.size(); ++split) {
    ClientHelloParser parser;
    const Status first = parser.feed(std::span(hello).first(split));
    ASSERT_EQ(first, split == hello.size() ? Status::Found : Status::NeedMore) << split;
    ASSERT_EQ(parser.feed(std::span(hello).subspan(split)), Status::Found) << split;
    ASSERT_EQ(parser.name(), "a.example.test");
    ASSERT_EQ(parser.buffered().size(), hello.size());
  }
}

TEST_P(RealHello, RefragmentedIntoRecords) {
  const Bytes hello = client_hello(GetParam().min_version, GetParam().max_version, "frag.example.test");
  const auto [handshake, version] = unwrap(hello);
  for (const std::size_t size : {1U, 2U, 3U, 4U, 5U, 7U, 64U, 100U, 511U}) {
    const Bytes records = wrap(handshake, size, version);
    expect_result(whole(records), Status::Found, "frag.example.test");
    expect_result(byte_by_byte(records), Status::Found, "frag.example.test");
  }
  // And at every split point of a 3-byte-record version.
  const Bytes records = wrap(handshake, 3, version);
  for (std::size_t split = 0; split <= records.size(); split += 5) {
    ClientHelloParser parser;
    parser.feed(std::span(records).first(split));
    ASSERT_EQ(parser.feed(std::span(records).subspan(split)), Status::Found) << split;
  }
}

TEST_P(RealHello, TrailingBytesAfterTheHelloAreKept) {
  Bytes stream = client_hello(GetParam().min_version, GetParam().max_version, "a.example.test");
  const std::size_t hello_size = stream.size();
  stream.insert(stream.end(), {23, 3, 3, 0, 3, 1, 2, 3}); // e.g. early data
  ClientHelloParser parser;
  EXPECT_EQ(parser.feed(stream), Status::Found);
  EXPECT_EQ(parser.buffered().size(), stream.size());
  // Later bytes are not the parser's.
  EXPECT_EQ(parser.feed(Bytes{1, 2, 3}), Status::Found);
  EXPECT_EQ(parser.take_buffered().size(), stream.size());
  EXPECT_GT(stream.size(), hello_size);
}

TEST_P(RealHello, TruncatedIsNeedMore) {
  const Bytes hello = client_hello(GetParam().min_version, GetParam().max_version, "a.example.test");
  EXPECT_EQ(find_sni(std::span(hello).first(hello.size() - 1)).status, Status::NeedMore);
}

TEST_P(RealHello, ClientUnderstandsTheAlert) {
  for (const TlsAlert alert : {TlsAlert::UnrecognizedName, TlsAlert::HandshakeFailure}) {
    Client client(GetParam().min_version, GetParam().max_version, "unknown.example.test");
    ASSERT_FALSE(client.step().empty());
    ERR_clear_error();
    const auto record = tls_fatal_alert(alert);
    client.receive(record.data(), record.size());
    client.step();
    EXPECT_EQ(client.last_error(), SSL_ERROR_SSL);
    const unsigned long error = ERR_get_error();
    EXPECT_EQ(ERR_GET_REASON(error), alert == TlsAlert::UnrecognizedName ? SSL_R_TLSV1_UNRECOGNIZED_NAME
                                                                        : SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE)
        << ERR_reason_error_string(error);
    ERR_clear_error();
  }
}

INSTANTIATE_TEST_SUITE_P(OpenSsl, RealHello, testing::ValuesIn(kFlavours),
                         [](const testing::TestParamInfo<Flavour>& info) { return std::string(info.param.label); });

// ---- Hand-made ClientHellos: every field under control.

void put16(Bytes& out, std::size_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value));
}

Bytes extension(std::uint16_t type, const Bytes& data) {
  Bytes out;
  put16(out, type);
  put16(out, data.size());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// A server_name extension's data from (name_type, name) entries.
Bytes server_names(const std::vector<std::pair<std::uint8_t, std::string>>& names) {
  Bytes list;
  for (const auto& [type, name] : names) {
    list.push_back(type);
    put16(list, name.size());
    list.insert(list.end(), name.begin(), name.end());
  }
  Bytes out;
  put16(out, list.size());
  out.insert(out.end(), list.begin(), list.end());
  return out;
}

Bytes sni(const std::string& name) { return extension(0, server_names({{0, name}})); }

// A ClientHello handshake message with the given extensions (nullopt: no extensions block).
Bytes hello_message(const std::optional<Bytes>& extensions, std::uint16_t version = 0x0303) {
  Bytes body;
  put16(body, version);
  body.insert(body.end(), 32, 0xab);  // random
  body.push_back(0);                  // session id
  put16(body, 4);                     // cipher suites
  body.insert(body.end(), {0x13, 0x01, 0xc0, 0x2f});
  body.insert(body.end(), {1, 0});    // compression: null
  if (extensions) {
    put16(body, extensions->size());
    body.insert(body.end(), extensions->begin(), extensions->end());
  }
  Bytes message{1, static_cast<std::uint8_t>(body.size() >> 16), static_cast<std::uint8_t>(body.size() >> 8),
                static_cast<std::uint8_t>(body.size())};
  message.insert(message.end(), body.begin(), body.end());
  return message;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

SniResult hand(const std::optional<Bytes>& extensions) { return find_sni(wrap(hello_message(extensions), 16384)); }

TEST(HandHello, SniAmongOtherExtensions) {
  const Bytes extensions = concat({extension(10, {0, 2, 0, 29}), sni("b.example.test"), extension(0xfe0d, Bytes(40, 7))});
  expect_result(hand(extensions), Status::Found, "b.example.test");
}

TEST(HandHello, NoExtensionsOrNoSni) {
  expect_result(hand(std::nullopt), Status::NoName, "");
  expect_result(hand(Bytes{}), Status::NoName, "");
  expect_result(hand(extension(10, {0, 2, 0, 29})), Status::NoName, "");
  expect_result(hand(extension(0, server_names({{1, "other-type"}}))), Status::NoName, "");
}

TEST(HandHello, NameNormalisedOrRejected) {
  expect_result(hand(sni("WWW.Example.TEST.")), Status::Found, "www.example.test");
  expect_result(hand(sni("10.1.2.3")), Status::NoName, "");
  expect_result(hand(sni("bad_name.example.test")), Status::BadName, "");
  expect_result(hand(sni("a..b")), Status::BadName, "");
  expect_result(hand(sni(std::string("a\0b", 3))), Status::BadName, "");
  expect_result(hand(sni(std::string(64, 'a') + ".test")), Status::BadName, "");
  expect_result(hand(sni(std::string(300, 'a'))), Status::BadName, "");
}

TEST(HandHello, UnknownNameTypesAreSkipped) {
  expect_result(hand(extension(0, server_names({{7, "x"}, {0, "c.example.test"}}))), Status::Found, "c.example.test");
}

TEST(HandHello, BrokenServerNameIsMalformed) {
  expect_result(hand(extension(0, {})), Status::Malformed, "");                      // server's empty form
  expect_result(hand(extension(0, {0, 0})), Status::Malformed, ""); // empty list
  expect_result(hand(extension(0, server_names({{0, ""}}))), Status::Malformed, "");
  expect_result(hand(extension(0, server_names({{0, "a.test"}, {0, "b.test"}}))), Status::Malformed, "");
  expect_result(hand(concat({sni("a.test"), sni("a.test")})), Status::Malformed, "");
  Bytes list_too_long = server_names({{0, "a.test"}});
  list_too_long[1] += 1;
  expect_result(hand(extension(0, list_too_long)), Status::Malformed, "");
  Bytes name_too_long = server_names({{0, "a.test"}});
  name_too_long[4] += 1;
  expect_result(hand(extension(0, name_too_long)), Status::Malformed, "");
  Bytes trailing = server_names({{0, "a.test"}});
  trailing.push_back(0);
  expect_result(hand(extension(0, trailing)), Status::Malformed, "");
}

TEST(HandHello, BrokenBodyIsMalformed) {
  // Extension block longer than the body, and a body with bytes after the extensions.
  Bytes message = hello_message(sni("a.test"));
  const std::size_t ext_length_at = 4 + 2 + 32 + 1 + 2 + 4 + 2;
  message[ext_length_at + 1] += 1;
  expect_result(find_sni(wrap(message, 16384)), Status::Malformed, "");
  message[ext_length_at + 1] -= 2;
  expect_result(find_sni(wrap(message, 16384)), Status::Malformed, "");
  // Odd cipher suite length; session id over 32; no compression method; not TLS inside.
  Bytes odd = hello_message(sni("a.test"));
  odd[4 + 2 + 32 + 1 + 1] = 3;
  expect_result(find_sni(wrap(odd, 16384)), Status::Malformed, "");
  Bytes session = hello_message(sni("a.test"));
  session[4 + 2 + 32] = 33;
  expect_result(find_sni(wrap(session, 16384)), Status::Malformed, "");
  expect_result(find_sni(wrap(hello_message(sni("a.test"), 0x0203), 16384)), Status::Malformed, "");
  // A ClientHello cut short inside its own length.
  Bytes cut = hello_message(sni("a.test"));
  cut.resize(20);
  cut[1] = 0, cut[2] = 0, cut[3] = 16;
  expect_result(find_sni(wrap(cut, 16384)), Status::Malformed, "");
}

TEST(HandHello, WrongHandshakeTypeIsMalformed) {
  Bytes message = hello_message(sni("a.test"));
  message[0] = 2; // ServerHello
  expect_result(find_sni(wrap(message, 16384)), Status::Malformed, "");
}

TEST(Records, NotTlsFromTheFirstBytes) {
  expect_result(find_sni(Bytes{'G'}), Status::NotProtocol, "");
  expect_result(find_sni(Bytes{22, 4}), Status::NotProtocol, "");
  expect_result(find_sni(Bytes{0x80, 0x2e, 0x01, 0x03, 0x01}), Status::NotProtocol, ""); // SSL 2 hello
  expect_result(find_sni(Bytes{22, 3, 9, 0, 5}), Status::NotProtocol, "");
  expect_result(find_sni(Bytes{21, 3, 3, 0, 2, 2, 40}), Status::NotProtocol, ""); // an alert first
  expect_result(find_sni(Bytes{}), Status::NeedMore, "");
  expect_result(find_sni(Bytes{22}), Status::NeedMore, "");
  expect_result(find_sni(Bytes{22, 3, 1, 0}), Status::NeedMore, "");
}

TEST(Records, RecordVersions) {
  const Bytes message = hello_message(sni("v.example.test"));
  for (const std::uint16_t version : {0x0300, 0x0301, 0x0302, 0x0303, 0x0304})
    expect_result(find_sni(wrap(message, 16384, version)), Status::Found, "v.example.test");
}

TEST(Records, BadFramingIsMalformed) {
  const Bytes message = hello_message(sni("a.test"));
  expect_result(find_sni(Bytes{22, 3, 1, 0, 0}), Status::Malformed, ""); // zero-length record
  Bytes zero_later = wrap(Bytes(message.begin(), message.begin() + 10), 16384);
  zero_later.insert(zero_later.end(), {22, 3, 1, 0, 0});
  expect_result(find_sni(zero_later), Status::Malformed, "");
  expect_result(find_sni(Bytes{22, 3, 1, 0x40, 0x01}), Status::Malformed, ""); // 2^14 + 1
  // A second record of another content type in the middle of the hello.
  Bytes mixed = wrap(Bytes(message.begin(), message.begin() + 10), 16384);
  mixed.insert(mixed.end(), {20, 3, 3, 0, 1, 1});
  expect_result(find_sni(mixed), Status::Malformed, "");
  Bytes bad_major = wrap(Bytes(message.begin(), message.begin() + 10), 16384);
  bad_major.insert(bad_major.end(), {22, 2, 3, 0, 1, 1});
  expect_result(find_sni(bad_major), Status::Malformed, "");
}

TEST(Limits, BigHelloWithinLimitAndTooLong) {
  // A 12 KiB padding extension: still found, over records of 4000 bytes.
  const Bytes big = hello_message(concat({extension(21, Bytes(12000, 0)), sni("big.example.test")}));
  expect_result(find_sni(wrap(big, 4000)), Status::Found, "big.example.test");
  // Over 16 KiB: TooLong as soon as the handshake header says so.
  const Bytes huge = hello_message(concat({extension(21, Bytes(17000, 0)), sni("big.example.test")}));
  const Bytes huge_records = wrap(huge, 16384);
  ClientHelloParser parser;
  EXPECT_EQ(parser.feed(std::span(huge_records).first(9)), Status::TooLong);
  // A smaller limit.
  expect_result(find_sni(wrap(big, 4000), 4096), Status::TooLong, "");
  // Records of one byte each: the limit counts record headers too.
  const Bytes small = hello_message(sni("s.example.test"));
  expect_result(find_sni(wrap(small, 1), small.size() * 6), Status::Found, "s.example.test");
  expect_result(find_sni(wrap(small, 1), small.size() * 6 - 1), Status::TooLong, "");
}

TEST(Limits, FinalVerdictIgnoresMoreBytes) {
  ClientHelloParser parser;
  EXPECT_EQ(parser.feed(Bytes{'x', 'y'}), Status::NotProtocol);
  EXPECT_EQ(parser.feed(wrap(hello_message(sni("a.test")), 16384)), Status::NotProtocol);
  EXPECT_EQ(parser.buffered().size(), 2U);
}

} // namespace
} // namespace xdpfwd::ingress::domain
