#include "http_host.hpp"

#include "host_name.hpp"

#include <algorithm>

namespace xdpfwd::ingress::domain {
namespace {

// tchar (RFC 9110 5.6.2): the characters of methods and header names.
constexpr bool is_tchar(unsigned char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
constexpr bool is_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
// Field values: VCHAR, obs-text, SP, HTAB; no other control character (NUL, CR, DEL...).
constexpr bool is_field_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr char to_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == to_lower(y); });
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
bool is_scheme(std::string_view s) noexcept {
  if (s.empty() || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '+' || c == '-' || c == '.';
  });
}

} // namespace

HostResult parse_authority(std::string_view authority) {
  const HostResult malformed{.status = Status::Malformed, .name = {}};
  if (authority.empty()) return {.status = Status::NoName, .name = {}};
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return malformed;
    const std::string_view literal = authority.substr(1, close - 1);
    // IPv6address or IPvFuture ("v1.x"): hex digits, ':', '.', and IPvFuture's characters.
    if (!std::all_of(literal.begin(), literal.end(), [](char c) {
          return is_tchar(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        }))
      return malformed;
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return malformed;
    port = rest.empty() ? rest : rest.substr(1);
    if (!std::all_of(port.begin(), port.end(), is_digit)) return malformed;
    return {.status = Status::NoName, .name = {}};
  }
  if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), is_digit)) return malformed; // also a second ':'
    if (host.empty()) return malformed;
  }
  auto classified = classify_host(host, NameRules::HostName);
  switch (classified.kind) {
  case HostName::Kind::Name: return {.status = Status::Found, .name = std::move(classified.name)};
  case HostName::Kind::Address: return {.status = Status::NoName, .name = {}};
  case HostName::Kind::Invalid: break;
  }
  return {.status = Status::BadName, .name = {}};
}

Status RequestHeadParser::feed(std::span<const std::uint8_t> bytes) {
  if (is_final(status_)) return status_;
  stream_.insert(stream_.end(), bytes.begin(), bytes.end());
  const std::size_t end = std::min(stream_.size(), limit_);
  status_ = run(end);
  if (status_ == Status::NeedMore && end >= limit_) status_ = Status::TooLong;
  if (status_ != Status::Found) name_.clear();
  return status_;
}

Status RequestHeadParser::run(std::size_t end) {
  const auto* data = reinterpret_cast<const char*>(stream_.data());
  while (cursor_ < end) {
    const char c = data[cursor_];
    if (!in_headers_ && !method_done_) {
      // Empty lines before the request line are ignored (RFC 9112 2.2).
      if (cursor_ == line_start_ && (c == '\r' || c == '\n')) {
        if (c == '\r') {
          if (cursor_ + 1 == end) return Status::NeedMore; // its '\n' is still to come
          if (data[cursor_ + 1] != '\n') return Status::NotProtocol;
          ++cursor_;
        }
        line_start_ = ++cursor_;
        continue;
      }
      // The method must be a short token followed by SP: TLS, SSH banners and binary data are
      // told apart from the first bytes.
      if (c == ' ') {
        if (cursor_ == line_start_) return Status::NotProtocol;
        method_done_ = true;
      } else if (!is_tchar(static_cast<unsigned char>(c)) || cursor_ - line_start_ >= kMaxMethodLength) {
        return Status::NotProtocol;
      }
    }
    ++cursor_;
    if (c != '\n') continue;
    std::string_view line(data + line_start_, cursor_ - 1 - line_start_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line_start_ = cursor_;
    if (!in_headers_) {
      if (const Status status = request_line(line); status != Status::NeedMore) return status;
      in_headers_ = true;
    } else if (line.empty()) {
      return finish();
    } else if (const Status status = header_line(line); status != Status::NeedMore) {
      return status;
    }
  }
  return Status::NeedMore;
}

// method SP request-target SP HTTP-version
Status RequestHeadParser::request_line(std::string_view line) {
  const auto first = line.find(' ');
  const auto last = line.rfind(' ');
  if (first == std::string_view::npos) return Status::NotProtocol; // "SSH-2.0-..." and the like
  const std::string_view method = line.substr(0, first);
  const std::string_view version = line.substr(last + 1);
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
  if (version.size() != 8 || !version.starts_with("HTTP/") || !is_digit(version[5]) || version[6] != '.' ||
      !is_digit(version[7]))
    return Status::NotProtocol;
  if (version[5] != '1') return Status::NotProtocol; // HTTP/2 prior knowledge ("PRI * HTTP/2.0"), 0.9, 3
  if (first == last || !is_token(method)) return Status::Malformed;
  const std::string_view target = line.substr(first + 1, last - first - 1);
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f; // one SP each side, no white space or controls inside
      }))
    return Status::Malformed;
  minor_version_ = version[7] - '0';

  if (method == "CONNECT") { // authority-form: host:port
    if (target.find_first_of("/?#@") != std::string_view::npos) return Status::Malformed;
    target_authority_ = std::string(target);
  } else if (target.front() == '/' || target == "*") { // origin-form, asterisk-form
  } else if (const auto colon = target.find("://"); colon != std::string_view::npos && is_scheme(target.substr(0, colon))) {
    const std::string_view rest = target.substr(colon + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    // userinfo is deprecated in http(s) URIs and a classic spoofing vector; an empty host is
    // invalid (RFC 9110 4.2.1).
    if (authority.empty() || authority.find('@') != std::string_view::npos) return Status::Malformed;
    target_authority_ = std::string(authority);
  } else {
    return Status::Malformed;
  }
  return Status::NeedMore;
}

// field-name ":" OWS field-value OWS
Status RequestHeadParser::header_line(std::string_view line) {
  if (is_ows(line.front())) return Status::Malformed; // obs-fold, or white space before a name
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return Status::Malformed;
  const std::string_view field = line.substr(0, colon);
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (!is_token(field)) return Status::Malformed; // includes "Host :" (RFC 9112 5.1)
  if (!std::all_of(value.begin(), value.end(), is_field_char)) return Status::Malformed;
  if (iequals(field, "host")) {
    if (host_header_) return Status::Malformed; // RFC 9112 3.2: more than one Host is a 400
    host_header_ = std::string(value);
  }
  return Status::NeedMore;
}

Status RequestHeadParser::finish() {
  if (!host_header_ && minor_version_.value_or(0) >= 1) return Status::Malformed; // RFC 9112 3.2
  HostResult result{.status = Status::NoName, .name = {}};
  if (target_authority_) {
    result = parse_authority(*target_authority_);
    // The Host header is ignored then, but must still be well-formed.
    if (host_header_ && parse_authority(*host_header_).status == Status::Malformed) return Status::Malformed;
  } else if (host_header_) {
    result = parse_authority(*host_header_);
  }
  name_ = std::move(result.name);
  return result.status;
}

HostResult find_http_host(std::string_view bytes, std::size_t limit) {
  RequestHeadParser parser(limit);
  const Status status = parser.feed(bytes);
  return {.status = status, .name = parser.name()};
}

} // namespace xdpfwd::ingress::domain
