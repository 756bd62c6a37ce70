// Fuzzes RequestHeadParser: no crash, no read out of bounds, and the same verdict whether the
// bytes come at once, in two reads split where the input says, or one byte at a time.
#include "host_name.hpp"
#include "http_host.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

using namespace xdpfwd::ingress::domain;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  const std::size_t limit = size > 0 && (data[size - 1] & 1) ? 300 : RequestHeadParser::kDefaultLimit;

  RequestHeadParser whole(limit);
  const Status verdict = whole.feed(input);
  if (verdict == Status::Found) {
    const HostName again = classify_host(whole.name());
    if (again.kind != HostName::Kind::Name || again.name != whole.name()) std::abort();
  } else if (!whole.name().empty()) {
    std::abort();
  }
  if (verdict == Status::NeedMore && size >= limit) std::abort();

  const std::size_t split = size == 0 ? 0 : data[0] * 13 % (size + 1);
  RequestHeadParser two(limit);
  two.feed(input.first(split));
  two.feed(input.subspan(split));
  if (two.status() != verdict || two.name() != whole.name()) std::abort();

  if (size <= 4096) {
    RequestHeadParser bytes(limit);
    for (std::size_t i = 0; i < size && bytes.status() == Status::NeedMore; ++i) bytes.feed(input.subspan(i, 1));
    if (bytes.status() != verdict || bytes.name() != whole.name()) std::abort();
  }
  return 0;
}
