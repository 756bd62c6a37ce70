// Fuzzes ClientHelloParser: no crash, no read out of bounds, and the same verdict whether the
// bytes come at once, in two reads split where the input says, or one byte at a time.
#include "host_name.hpp"
#include "tls_client_hello.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

using namespace xdpfwd::ingress::domain;

namespace {

void check_name(Status status, const std::string& name) {
  if (status == Status::Found) {
    // A name found is already normalised: normalising it again changes nothing.
    const HostName again = classify_host(name);
    if (again.kind != HostName::Kind::Name || again.name != name) std::abort();
  } else if (!name.empty()) {
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  // A small limit half of the time, so that TooLong is reached too.
  const std::size_t limit = size > 0 && (data[0] & 1) ? 600 : ClientHelloParser::kDefaultLimit;

  ClientHelloParser whole(limit);
  const Status verdict = whole.feed(input);
  check_name(verdict, whole.name());
  if (verdict == Status::NeedMore && size >= limit) std::abort();

  const std::size_t split = size == 0 ? 0 : (size > 1 ? data[1] : 0) * 7 % (size + 1);
  ClientHelloParser two(limit);
  two.feed(input.first(split));
  two.feed(input.subspan(split));
  if (two.status() != verdict || two.name() != whole.name()) std::abort();

  if (size <= 4096) {
    ClientHelloParser bytes(limit);
    for (std::size_t i = 0; i < size && bytes.status() == Status::NeedMore; ++i) bytes.feed(input.subspan(i, 1));
    if (bytes.status() != verdict || bytes.name() != whole.name()) std::abort();
  }
  return 0;
}
