// Finds the server name (SNI, RFC 6066) in the ClientHello that opens a TLS connection, fed
// with the bytes as they arrive from the client. TLS 1.0 to 1.3 records; a ClientHello split
// over several records and over any number of reads.
//
//   ClientHelloParser parser;
//   while (parser.feed(read_some()) == Status::NeedMore) {}
//   switch (parser.status()) { case Status::Found: use(parser.name()); ... }
//   forward(parser.buffered()); // every byte fed, for the chosen replica
#pragma once

#include "status.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xdpfwd::ingress::domain {

class ClientHelloParser {
public:
  // Bytes (record headers included) within which the ClientHello must be complete. Real
  // ClientHellos are below 2 KiB; post-quantum key shares bring them to about 2.5 KiB.
  static constexpr std::size_t kDefaultLimit = 16 * 1024;
  // TLSPlaintext.length may not exceed 2^14 (RFC 8446 5.1).
  static constexpr std::size_t kMaxRecordLength = 16 * 1024;

  explicit ClientHelloParser(std::size_t limit = kDefaultLimit) : limit_(limit) {}

  // Takes the next bytes of the stream and returns the verdict so far. Once the verdict is
  // final (anything but NeedMore) further calls change nothing and keep nothing.
  Status feed(std::span<const std::uint8_t> bytes);
  Status feed(std::string_view bytes) {
    return feed(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }

  Status status() const noexcept { return status_; }
  // The server name, normalised (lower case, no trailing dot); empty unless status() is Found.
  const std::string& name() const noexcept { return name_; }
  // Every byte given to feed() up to and including the call that gave the verdict (that call's
  // bytes are kept whole, even past the limit): what the proxy forwards to the replica.
  std::span<const std::uint8_t> buffered() const noexcept { return stream_; }
  std::vector<std::uint8_t> take_buffered() noexcept { return std::move(stream_); }

private:
  Status run(std::size_t end);
  Status finish_handshake();

  std::size_t limit_;
  Status status_ = Status::NeedMore;
  std::string name_;
  std::vector<std::uint8_t> stream_;    // the bytes fed
  std::size_t cursor_ = 0;              // first byte of stream_ not looked at
  std::size_t record_left_ = 0;         // payload bytes of the current record still to come
  bool first_record_ = true;
  std::vector<std::uint8_t> handshake_; // handshake bytes, record framing removed
};

// The same over a complete buffer (one call of feed()).
struct SniResult {
  Status status = Status::NeedMore;
  std::string name;
};
SniResult find_sni(std::span<const std::uint8_t> bytes, std::size_t limit = ClientHelloParser::kDefaultLimit);

} // namespace xdpfwd::ingress::domain
