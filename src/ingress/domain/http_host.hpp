// Finds the host an HTTP/1.x request is for, fed with the bytes of the request head as they
// arrive from the client (RFC 9112, formerly RFC 7230):
//   request-line = method SP request-target SP "HTTP/1." DIGIT CRLF
//   headers until the empty line.
// The host of an absolute-form target ("GET http://a.example.test/ HTTP/1.1") or of CONNECT's
// authority-form target takes precedence over the Host header (RFC 7230 5.4). Port numbers
// are dropped; an IP literal ("[fd00::1]:80", "10.0.0.1") is NoName: it names no domain.
//
// Verdicts: Malformed for a broken request line or header line, a folded header (obs-fold),
// control characters in a value, two Host headers, an HTTP/1.1 request without Host, an
// absolute URI with userinfo or an empty host, a bad port; NotProtocol when the first bytes
// are not a method token or the version is not HTTP/1.x; TooLong when the head is not complete
// within the limit. Lines end with CRLF; a bare LF is accepted too (RFC 9112 2.2).
#pragma once

#include "status.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xdpfwd::ingress::domain {

class RequestHeadParser {
public:
  // The request head (request line and headers, CRLFs included) must be complete within this.
  static constexpr std::size_t kDefaultLimit = 8 * 1024;
  // Longer than any registered method: past this the client is not speaking HTTP.
  static constexpr std::size_t kMaxMethodLength = 32;

  explicit RequestHeadParser(std::size_t limit = kDefaultLimit) : limit_(limit) {}

  // Takes the next bytes of the stream and returns the verdict so far. Once the verdict is
  // final (anything but NeedMore) further calls change nothing and keep nothing.
  Status feed(std::span<const std::uint8_t> bytes);
  Status feed(std::string_view bytes) {
    return feed(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }

  Status status() const noexcept { return status_; }
  // The host, normalised (lower case, no port, no trailing dot); empty unless status() is Found.
  const std::string& name() const noexcept { return name_; }
  // The minor version of HTTP/1.x, once the request line has been read.
  std::optional<int> minor_version() const noexcept { return minor_version_; }
  // Every byte given to feed() up to and including the call that gave the verdict.
  std::span<const std::uint8_t> buffered() const noexcept { return stream_; }
  std::vector<std::uint8_t> take_buffered() noexcept { return std::move(stream_); }

private:
  Status run(std::size_t end);
  Status request_line(std::string_view line);
  Status header_line(std::string_view line);
  Status finish();

  std::size_t limit_;
  Status status_ = Status::NeedMore;
  std::string name_;
  std::vector<std::uint8_t> stream_;
  std::size_t cursor_ = 0;     // first byte not scanned for the end of a line
  std::size_t line_start_ = 0; // first byte of the current line
  bool method_done_ = false; // the request line's first SP has been seen
  bool in_headers_ = false;
  std::optional<int> minor_version_;
  std::optional<std::string> target_authority_; // from an absolute-form or authority-form target
  std::optional<std::string> host_header_;
};

// The same over a complete buffer (one call of feed()).
struct HostResult {
  Status status = Status::NeedMore;
  std::string name;
};
HostResult find_http_host(std::string_view bytes, std::size_t limit = RequestHeadParser::kDefaultLimit);

// The verdict for one authority ("host[:port]", "[v6]:port", as in a Host header). Empty:
// NoName. Exposed for tests.
HostResult parse_authority(std::string_view authority);

} // namespace xdpfwd::ingress::domain
