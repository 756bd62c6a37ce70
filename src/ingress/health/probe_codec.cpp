#include "probe_codec.hpp"

#include <charconv>
#include <cstdio>

namespace xdpfwd::ingress::health {

std::string make_http_request(std::string_view path, const boost::asio::ip::address& replica, std::uint16_t port) {
  std::string host = replica.is_v6() ? "[" + replica.to_string() + "]" : replica.to_string();
  if (port != 80) host += ":" + std::to_string(port);
  std::string request;
  request.reserve(96 + path.size() + host.size());
  request.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host);
  request.append("\r\nConnection: close\r\nUser-Agent: xdpfwd-health\r\n\r\n");
  return request;
}

HttpHead parse_http_status(std::string_view head) {
  using Verdict = HttpHead::Verdict;
  const auto end = head.find('\n');
  std::string_view line = head.substr(0, end);
  // Judge a partial line as soon as what is there cannot start a status line.
  constexpr std::string_view kPrefix = "HTTP/1.";
  if (line.substr(0, kPrefix.size()) != kPrefix.substr(0, std::min(line.size(), kPrefix.size())))
    return {Verdict::Malformed};
  if (end == std::string_view::npos) return {Verdict::NeedMore};
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // "HTTP/1.x SSS[ reason]"
  if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) return {Verdict::Malformed};
  unsigned status = 0;
  const char* first = line.data() + 9;
  const auto [ptr, ec] = std::from_chars(first, first + 3, status);
  if (ec != std::errc{} || ptr != first + 3 || status < 100) return {Verdict::Malformed};
  return {Verdict::Status, status};
}

std::vector<std::uint8_t> make_dns_query(std::uint16_t id, std::string_view name, std::uint16_t qtype) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::vector<std::uint8_t> query = {
      static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0x01, 0x00, // RD
      0, 1, 0, 0, 0, 0, 0, 0};                                                    // QDCOUNT 1
  std::size_t encoded = 1; // the root label
  while (!name.empty()) {
    const auto dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return {};
    encoded += 1 + label.size();
    if (encoded > 255) return {};
    query.push_back(static_cast<std::uint8_t>(label.size()));
    query.insert(query.end(), label.begin(), label.end());
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
    if (name.empty()) return {}; // "a..": an empty label
  }
  query.push_back(0);
  query.push_back(static_cast<std::uint8_t>(qtype >> 8));
  query.push_back(static_cast<std::uint8_t>(qtype));
  query.push_back(0);
  query.push_back(1); // class IN
  return query;
}

std::optional<std::string> check_dns_answer(std::span<const std::uint8_t> query,
                                            std::span<const std::uint8_t> answer) {
  if (answer.size() < 12) return "answer of " + std::to_string(answer.size()) + " bytes, shorter than a DNS header";
  const unsigned id = (unsigned{answer[0]} << 8) | answer[1];
  const unsigned expected = query.size() >= 2 ? (unsigned{query[0]} << 8) | query[1] : 0;
  if (id != expected) {
    char text[64];
    std::snprintf(text, sizeof text, "answer ID 0x%04x, expected 0x%04x", id, expected);
    return std::string(text);
  }
  if ((answer[2] & 0x80) == 0) return std::string("not a DNS response (QR clear)");
  if (((answer[2] >> 3) & 0x0f) != 0) return "answer opcode " + std::to_string((answer[2] >> 3) & 0x0f);
  if ((answer[3] & 0x0f) == 2) return std::string("rcode SERVFAIL");
  return std::nullopt;
}

} // namespace xdpfwd::ingress::health
