#include "tls_client_hello.hpp"

#include "host_name.hpp"

#include <algorithm>
#include <optional>

namespace xdpfwd::ingress::domain {
namespace {

constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kHandshakeClientHello = 1;
constexpr std::uint16_t kExtensionServerName = 0;
constexpr std::uint8_t kNameTypeHostName = 0;
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kHandshakeHeader = 4;
constexpr std::size_t kRandom = 32;
constexpr std::size_t kMaxSessionId = 32;

// Bounds-checked reads over one structure; every read fails once one has failed.
class Reader {
public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return ok_ && pos_ == bytes_.size(); }
  std::size_t left() const noexcept { return ok_ ? bytes_.size() - pos_ : 0; }

  std::optional<std::uint32_t> u8() { return number(1); }
  std::optional<std::uint32_t> u16() { return number(2); }

  // The next n bytes, or nullopt when fewer are left.
  std::optional<std::span<const std::uint8_t>> take(std::size_t n) {
    if (!ok_ || n > bytes_.size() - pos_) {
      ok_ = false;
      return std::nullopt;
    }
    const auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  // A vector with a length prefix of `width` bytes (TLS's opaque<..> and lists).
  std::optional<std::span<const std::uint8_t>> prefixed(std::size_t width) {
    const auto length = number(width);
    if (!length) return std::nullopt;
    return take(*length);
  }

private:
  std::optional<std::uint32_t> number(std::size_t width) {
    const auto bytes = take(width);
    if (!bytes) return std::nullopt;
    std::uint32_t value = 0;
    for (const std::uint8_t b : *bytes) value = value << 8 | b;
    return value;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

struct Sni {
  Status status = Status::NoName;
  std::string name;
};

// ServerNameList of a ClientHello's server_name extension (RFC 6066 3).
Sni parse_server_name(std::span<const std::uint8_t> data) {
  Reader ext(data);
  const auto list = ext.prefixed(2);
  if (!list || !ext.at_end() || list->empty()) return {.status = Status::Malformed, .name = {}};
  Reader names(*list);
  std::optional<std::span<const std::uint8_t>> host;
  while (!names.at_end()) {
    const auto type = names.u8();
    const auto name = names.prefixed(2); // every name type so far is opaque<1..2^16-1>
    if (!type || !name || name->empty()) return {.status = Status::Malformed, .name = {}};
    if (*type != kNameTypeHostName) continue;
    if (host) return {.status = Status::Malformed, .name = {}}; // one name per type
    host = name;
  }
  if (!host) return {.status = Status::NoName, .name = {}};
  const std::string_view text(reinterpret_cast<const char*>(host->data()), host->size());
  auto classified = classify_host(text, NameRules::HostName);
  switch (classified.kind) {
  case HostName::Kind::Name: return {.status = Status::Found, .name = std::move(classified.name)};
  case HostName::Kind::Address: return {.status = Status::NoName, .name = {}}; // literal IPs are not SNI
  case HostName::Kind::Invalid: break;
  }
  return {.status = Status::BadName, .name = {}};
}

// The body of a ClientHello handshake message (RFC 5246 7.4.1.2, RFC 8446 4.1.2).
Sni parse_client_hello(std::span<const std::uint8_t> body) {
  const Sni malformed{.status = Status::Malformed, .name = {}};
  Reader hello(body);
  const auto version = hello.u16();
  if (!version || *version >> 8 != 3) return malformed;
  if (!hello.take(kRandom)) return malformed;
  const auto session_id = hello.prefixed(1);
  if (!session_id || session_id->size() > kMaxSessionId) return malformed;
  const auto suites = hello.prefixed(2);
  if (!suites || suites->empty() || suites->size() % 2 != 0) return malformed;
  const auto compression = hello.prefixed(1);
  if (!compression || compression->empty()) return malformed;
  if (hello.at_end()) return {.status = Status::NoName, .name = {}}; // no extensions at all
  const auto extensions = hello.prefixed(2);
  if (!extensions || !hello.at_end()) return malformed;

  Reader list(*extensions);
  std::optional<Sni> sni;
  while (!list.at_end()) {
    const auto type = list.u16();
    const auto data = list.prefixed(2);
    if (!type || !data) return malformed;
    if (*type != kExtensionServerName) continue;
    if (sni) return malformed; // an extension type appears once at most
    sni = parse_server_name(*data);
    if (sni->status == Status::Malformed) return malformed;
  }
  return sni ? std::move(*sni) : Sni{.status = Status::NoName, .name = {}};
}

} // namespace

Status ClientHelloParser::feed(std::span<const std::uint8_t> bytes) {
  if (is_final(status_)) return status_;
  stream_.insert(stream_.end(), bytes.begin(), bytes.end());
  // Only the first limit_ bytes are looked at: the verdict must come within them.
  const std::size_t end = std::min(stream_.size(), limit_);
  status_ = run(end);
  if (status_ == Status::NeedMore && end >= limit_) status_ = Status::TooLong;
  if (status_ != Status::Found) name_.clear();
  return status_;
}

// Walks the records in stream_[cursor_, end), collecting their payload in handshake_.
Status ClientHelloParser::run(std::size_t end) {
  while (cursor_ < end) {
    if (record_left_ == 0) {
      const std::uint8_t* header = stream_.data() + cursor_;
      const std::size_t have = end - cursor_;
      // The first record's first two bytes decide quickly whether this is TLS at all (an SSL 2
      // compatible hello, 0x80..., is not: it has no extensions).
      if (first_record_ && header[0] != kContentHandshake) return Status::NotProtocol;
      if (first_record_ && have >= 2 && header[1] != 3) return Status::NotProtocol;
      if (have < kRecordHeader) return Status::NeedMore;
      // Between the first record and the end of the ClientHello only handshake records may
      // come (RFC 8446 5.1: handshake messages may not be interleaved with other records).
      if (header[0] != kContentHandshake || header[1] != 3) return Status::Malformed;
      // TLS 1.0 to 1.3 carry 0x0301..0x0303 here (1.3 keeps 0x0301/0x0303); SSL 3.0 and a
      // would-be 0x0304 are taken too: the handshake's own version is checked below.
      if (header[2] > 4) return first_record_ ? Status::NotProtocol : Status::Malformed;
      const std::size_t length = static_cast<std::size_t>(header[3]) << 8 | header[4];
      // Zero-length handshake fragments are forbidden (RFC 8446 5.1).
      if (length == 0 || length > kMaxRecordLength) return Status::Malformed;
      record_left_ = length;
      first_record_ = false;
      cursor_ += kRecordHeader;
      continue;
    }
    const std::size_t n = std::min(record_left_, end - cursor_);
    handshake_.insert(handshake_.end(), stream_.begin() + static_cast<std::ptrdiff_t>(cursor_),
                      stream_.begin() + static_cast<std::ptrdiff_t>(cursor_ + n));
    cursor_ += n;
    record_left_ -= n;
    if (const Status status = finish_handshake(); status != Status::NeedMore) return status;
  }
  return Status::NeedMore;
}

// Checks the handshake bytes so far; the verdict once the ClientHello is complete.
Status ClientHelloParser::finish_handshake() {
  if (handshake_.empty()) return Status::NeedMore;
  if (handshake_[0] != kHandshakeClientHello) return Status::Malformed;
  if (handshake_.size() < kHandshakeHeader) return Status::NeedMore;
  const std::size_t length =
      static_cast<std::size_t>(handshake_[1]) << 16 | static_cast<std::size_t>(handshake_[2]) << 8 | handshake_[3];
  // Record headers come on top of the message: if the message alone is too big, stop now.
  if (length + kHandshakeHeader > limit_) return Status::TooLong;
  if (handshake_.size() < kHandshakeHeader + length) return Status::NeedMore;
  Sni sni = parse_client_hello(std::span(handshake_).subspan(kHandshakeHeader, length));
  name_ = std::move(sni.name);
  return sni.status;
}

SniResult find_sni(std::span<const std::uint8_t> bytes, std::size_t limit) {
  ClientHelloParser parser(limit);
  const Status status = parser.feed(bytes);
  return {.status = status, .name = parser.name()};
}

} // namespace xdpfwd::ingress::domain
