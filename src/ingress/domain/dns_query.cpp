#include "dns_query.hpp"

#include "host_name.hpp"

#include <algorithm>

namespace xdpfwd::ingress::domain {
namespace {

constexpr std::uint8_t kLabelTypeMask = 0xc0;
constexpr std::uint8_t kPointer = 0xc0;
constexpr std::uint8_t kFlagQr = 0x80;   // byte 2
constexpr std::uint8_t kOpcodeMask = 0x78; // byte 2
constexpr std::uint8_t kFlagRd = 0x01;   // byte 2

std::uint16_t load16(std::span<const std::uint8_t> m, std::size_t at) noexcept {
  return static_cast<std::uint16_t>(m[at] << 8 | m[at + 1]);
}

} // namespace

DnsName read_dns_name(std::span<const std::uint8_t> message, std::size_t offset) {
  DnsName out;
  std::string text;
  std::size_t wire_length = 0; // labels and their length bytes, with the root byte
  std::size_t pointers = 0;
  std::size_t segment_start = offset; // where the bytes being read began: pointers go before it
  std::size_t pos = offset;
  bool bad = false; // a label whose bytes cannot appear in a dotted name
  while (true) {
    if (pos >= message.size()) return out; // truncated
    const std::uint8_t length = message[pos];
    if ((length & kLabelTypeMask) == kPointer) {
      if (pos + 1 >= message.size()) return out;
      const std::size_t target = static_cast<std::size_t>(length & ~kLabelTypeMask) << 8 | message[pos + 1];
      if (out.end == 0) out.end = pos + 2;
      // Strictly before where this run of labels began: every jump goes further back, so no
      // loop; never into the header.
      if (target < kDnsHeaderLength || target >= segment_start || ++pointers > kMaxCompressionPointers) return out;
      segment_start = pos = target;
      continue;
    }
    if ((length & kLabelTypeMask) != 0) return out; // 0x40 extended, 0x80 reserved
    wire_length += 1 + length;
    if (wire_length > kMaxWireNameLength) return out;
    if (length == 0) {
      if (out.end == 0) out.end = pos + 1;
      break;
    }
    if (pos + 1 + length > message.size()) return out;
    const auto label = message.subspan(pos + 1, length);
    // A '.' inside a label would shift the label boundaries of the text form.
    bad = bad || std::any_of(label.begin(), label.end(), [](std::uint8_t c) { return c == '.' || c == 0 || c >= 0x80; });
    if (!text.empty()) text.push_back('.');
    text.append(reinterpret_cast<const char*>(label.data()), label.size());
    pos += 1 + length;
  }
  if (text.empty()) {
    out.status = Status::NoName;
    return out;
  }
  if (bad) {
    out.status = Status::BadName;
    return out;
  }
  auto classified = classify_host(text, NameRules::DnsQuery);
  switch (classified.kind) {
  case HostName::Kind::Name:
    out.status = Status::Found;
    out.text = std::move(classified.name);
    break;
  case HostName::Kind::Address: out.status = Status::BadName; break; // "10.0.0.1." is no host
  case HostName::Kind::Invalid: out.status = Status::BadName; break;
  }
  return out;
}

DnsQuery parse_dns_query(std::span<const std::uint8_t> message) {
  DnsQuery out;
  if (message.size() < kDnsHeaderLength) return out;
  out.id = load16(message, 0);
  if ((message[2] & kFlagQr) != 0 || (message[2] & kOpcodeMask) != 0) {
    out.status = Status::NotProtocol;
    return out;
  }
  if (load16(message, 4) == 0) return out; // QDCOUNT
  DnsName name = read_dns_name(message, kDnsHeaderLength);
  if (name.status == Status::Malformed || name.end + 4 > message.size()) return out;
  out.qtype = load16(message, name.end);
  out.qclass = load16(message, name.end + 2);
  out.question_end = name.end + 4;
  out.status = name.status;
  out.name = std::move(name.text);
  return out;
}

std::optional<std::size_t> refuse_in_place(std::span<std::uint8_t> message) {
  const DnsQuery query = parse_dns_query(message);
  if (query.status == Status::Malformed || query.status == Status::NotProtocol) return std::nullopt;
  // Byte 2: QR opcode(4) AA TC RD; byte 3: RA Z(3) RCODE(4).
  message[2] = static_cast<std::uint8_t>(kFlagQr | (message[2] & (kOpcodeMask | kFlagRd)));
  message[3] = kRcodeRefused;
  constexpr std::uint8_t counts[8] = {0, 1, 0, 0, 0, 0, 0, 0}; // QD=1 AN=NS=AR=0
  std::copy(std::begin(counts), std::end(counts), message.begin() + 4);
  return query.question_end;
}

} // namespace xdpfwd::ingress::domain
