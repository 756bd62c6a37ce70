// Fuzzes parse_dns_query, read_dns_name at every offset and refuse_in_place: no crash, no read
// out of bounds; a REFUSED answer keeps the ID and the question and parses as a response.
#include "dns_query.hpp"
#include "host_name.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

using namespace xdpfwd::ingress::domain;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  const DnsQuery query = parse_dns_query(input);
  if (query.status == Status::Found) {
    const HostName again = classify_host(query.name, NameRules::DnsQuery);
    if (again.kind != HostName::Kind::Name || again.name != query.name || query.question_end > size) std::abort();
  }

  // Names at any offset, as a response's records would be read.
  for (std::size_t offset = 0; offset < std::min<std::size_t>(size, 64); ++offset) {
    const DnsName name = read_dns_name(input, offset);
    if (name.status != Status::Malformed && (name.end <= offset || name.end > size)) std::abort();
  }

  std::vector<std::uint8_t> answer(input.begin(), input.end());
  const auto length = refuse_in_place(answer);
  const bool query_ok = query.status != Status::Malformed && query.status != Status::NotProtocol;
  if (length.has_value() != query_ok) std::abort();
  if (!length) {
    if (!std::equal(answer.begin(), answer.end(), input.begin())) std::abort(); // untouched
    return 0;
  }
  if (*length != query.question_end || *length > size) std::abort();
  answer.resize(*length);
  // The answer is a response: re-parsed as a query it is NotProtocol, with the same ID, and its
  // question (flags aside) is byte for byte the query's.
  const DnsQuery reread = parse_dns_query(answer);
  if (reread.status != Status::NotProtocol || reread.id != query.id) std::abort();
  if ((answer[3] & 0x0f) != kRcodeRefused || !(answer[2] & 0x80)) std::abort();
  if (!std::equal(answer.begin() + kDnsHeaderLength, answer.end(), input.begin() + kDnsHeaderLength)) std::abort();
  return 0;
}
