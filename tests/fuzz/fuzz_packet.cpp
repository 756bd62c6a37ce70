// Fuzzes the ingress packet library (src/ingress/packet): parse_frame, Conformity::check with a
// fixed inspect policy (allow list, deny list, fragments, rate limit) and, on accepted frames, the
// NAT rewrites. Invariants:
// - no crash, no read or write outside the frame (the frame is a heap copy of exactly its size);
// - parse_frame Ok: offsets in order and inside the frame; otherwise check() returns the drop
//   reason of the parse status;
// - check() leaves the frame untouched and counts exactly one verdict;
// - an accepted frame (not a fragment) has checksums that verify when recomputed in full here;
// - after the NAT rewrites (addresses, ports or echo id, TTL, MACs; ICMP errors translated) the
//   frame still parses to the same layout with the new fields, and every checksum still verifies
//   when recomputed in full (not with the library's own checksum code).
//
// Input: byte 0 picks the policy and what to do, byte 1 the clock, the rest is the frame.
//   byte 0 bit 0: fragments "allow" (else "drop")
//          bit 1: an empty allow list (everything allowed)
//          bit 2: fix the IPv4 header and L4 checksums first, so that the fuzzer gets past them
//          bits 3-4: how many more times the same frame is checked (rate limit: burst 2)
//          bit 5: rewrite towards IPv6 addresses for an IPv4 frame (must be refused)
#include "checksum.hpp"
#include "conformity.hpp"
#include "nat.hpp"
#include "packet_view.hpp"

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

using namespace xdpfwd;
using namespace xdpfwd::ingress::packet;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_packet invariant broken: %s\n", what);
  std::abort();
}

// --- an independent Internet checksum (RFC 1071), byte by byte ---------------------------------

std::uint32_t sum_bytes(std::uint32_t sum, const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}

std::uint16_t fold_sum(std::uint32_t sum) {
  while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
void put16(std::uint8_t* p, std::uint16_t value) {
  p[0] = static_cast<std::uint8_t>(value >> 8);
  p[1] = static_cast<std::uint8_t>(value);
}

// Where the L4 checksum lies, relative to the L4 header; 0: no checksum this program knows.
std::size_t checksum_field(std::uint8_t version, std::uint8_t proto) {
  if (proto == 6) return 16;
  if (proto == 17) return 6;
  if ((version == 4 && proto == 1) || (version == 6 && proto == 58)) return 2;
  return 0;
}

// The one's complement sum over the L4 data plus its pseudo-header (none for ICMPv4).
std::uint32_t l4_sum(const std::uint8_t* frame, const PacketView& v) {
  const std::uint32_t length = v.l3_end - v.l4_off;
  std::uint32_t sum = sum_bytes(0, frame + v.l4_off, length);
  if (v.ip_version == 4 && v.l4_proto == 1) return sum;
  const std::size_t addr = v.ip_version == 4 ? 4 : 16;
  sum = sum_bytes(sum, frame + v.l3_off + (v.ip_version == 4 ? 12 : 8), 2 * addr);
  sum += v.l4_proto;
  sum += length >> 16;
  sum += length & 0xffff;
  return sum;
}

bool ipv4_header_verifies(const std::uint8_t* frame, const PacketView& v) {
  return v.ip_version != 4 || fold_sum(sum_bytes(0, frame + v.l3_off, v.l4_off - v.l3_off)) == 0xffff;
}

// True when there is no L4 checksum to verify here (fragments, other protocols, UDP/IPv4 "none").
bool l4_verifies(const std::uint8_t* frame, const PacketView& v) {
  if (v.is_fragment || !v.has_l4) return true;
  const std::size_t field = checksum_field(v.ip_version, v.l4_proto);
  if (field == 0) return true;
  if (v.ip_version == 4 && v.l4_proto == 17 && get16(frame + v.l4_off + field) == 0) return true;
  return fold_sum(l4_sum(frame, v)) == 0xffff;
}

void fix_checksums(std::uint8_t* frame, const PacketView& v) {
  if (v.ip_version == 4) {
    put16(frame + v.l3_off + 10, 0);
    put16(frame + v.l3_off + 10, static_cast<std::uint16_t>(~fold_sum(sum_bytes(0, frame + v.l3_off, v.l4_off - v.l3_off))));
  }
  if (v.is_fragment || !v.has_l4) return;
  const std::size_t field = checksum_field(v.ip_version, v.l4_proto);
  if (field == 0 || v.l4_off + field + 2 > v.l3_end) return;
  put16(frame + v.l4_off + field, 0);
  std::uint16_t check = static_cast<std::uint16_t>(~fold_sum(l4_sum(frame, v)));
  if (v.l4_proto == 17 && check == 0) check = 0xffff;
  put16(frame + v.l4_off + field, check);
}

// --- the fixed policy ---------------------------------------------------------------------------

config::Inspect policy(bool fragments_allowed, bool allow_everything) {
  config::Inspect inspect;
  if (!allow_everything) {
    std::vector<std::uint16_t> tcp{80, 443};
    for (std::uint16_t port = 1000; port <= 1100; ++port) tcp.push_back(port);
    inspect.allow = {{.protocol = config::Protocol::Tcp, .ports = tcp},
                     {.protocol = config::Protocol::Udp, .ports = {53, 443}},
                     {.protocol = config::Protocol::Icmp, .ports = {}}};
  }
  inspect.deny_sources = {boost::asio::ip::make_network_v4("198.19.66.0/24"),
                          boost::asio::ip::make_network_v6("fd00:66::/48")};
  inspect.fragments = fragments_allowed ? config::FragmentPolicy::Allow : config::FragmentPolicy::Drop;
  inspect.rate_limit = config::RateLimit{.packets_per_second_per_source = 3, .burst = 2};
  return inspect;
}

// --- checks -------------------------------------------------------------------------------------

void check_layout(const PacketView& v, std::uint32_t frame_len) {
  if (!(v.l3_off >= kEthHeaderLen && v.l3_off < v.l4_off && v.l4_off <= v.payload_off && v.payload_off <= v.l3_end &&
        v.l3_end <= frame_len && v.frame_len == frame_len))
    fail("parsed offsets out of order or outside the frame");
  if (v.ip_version != 4 && v.ip_version != 6) fail("parsed IP version");
}

void same_layout(const PacketView& a, const PacketView& b) {
  if (a.l3_off != b.l3_off || a.l4_off != b.l4_off || a.payload_off != b.payload_off || a.l3_end != b.l3_end ||
      a.l4_proto != b.l4_proto || a.ip_version != b.ip_version || a.has_l4 != b.has_l4 ||
      a.is_fragment != b.is_fragment)
    fail("the rewritten frame parses to another layout");
}

IpAddr address(std::uint8_t version, std::uint8_t last) {
  IpAddr a;
  a.version = version;
  if (version == 4) {
    a.bytes = {10, 201, 0, last};
  } else {
    a.bytes = {0xfd, 0x00, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
  }
  return a;
}

void rewrite_and_verify(std::vector<std::uint8_t>& frame, PacketView& v, bool wrong_family) {
  const std::uint8_t version = v.ip_version;
  if (wrong_family) {
    const IpAddr other = address(version == 4 ? 6 : 4, 1);
    const std::vector<std::uint8_t> before = frame;
    if (nat::set_source(v, other) || nat::set_destination(v, other)) fail("a rewrite to the other family was done");
    if (frame != before) fail("a refused rewrite changed the frame");
  }

  const bool icmp_error = v.is_icmp() && v.has_l4 && is_icmp_error(version, v.icmp_type);
  if (icmp_error) {
    InnerView inner;
    const bool inner_ok = parse_icmp_error_inner(v, inner) == ParseStatus::Ok;
    nat::IcmpErrorRewrite rewrite{.outer_source = address(version, 1), .outer_destination = address(version, 2)};
    if (inner_ok) {
      rewrite.inner_source = address(inner.ip_version, 3);
      rewrite.inner_destination = address(inner.ip_version, 4);
      if (inner.has_l4 && !inner.is_fragment && (inner.l4_proto == 6 || inner.l4_proto == 17 || inner.icmp_echo)) {
        rewrite.inner_source_port = 4242;
        rewrite.inner_destination_port = 2424;
      }
    }
    // The embedded header's checksum is not checked by anyone (it may be anything): an
    // incremental update keeps a correct one correct.
    const auto inner_header_ok = [&] {
      return inner.ip_version != 4 ||
             fold_sum(sum_bytes(0, frame.data() + inner.l3_off, inner.l4_off - inner.l3_off)) == 0xffff;
    };
    const bool inner_was_ok = inner_ok && inner_header_ok();
    const std::vector<std::uint8_t> before = frame;
    const auto status = nat::translate_icmp_error(v, rewrite);
    if (status != nat::IcmpTranslateStatus::Ok) {
      if (frame != before) fail("a refused ICMP translation changed the frame");
      return;
    }
    if (!ipv4_header_verifies(frame.data(), v)) fail("outer IPv4 header checksum after translate_icmp_error");
    if (!l4_verifies(frame.data(), v)) fail("ICMP checksum after translate_icmp_error");
    if (std::memcmp(v.src_addr(), address(version, 1).bytes.data(), v.addr_len()) != 0) fail("outer source not set");
    if (inner_was_ok && !inner_header_ok()) fail("inner IPv4 header checksum after translate_icmp_error");
    return;
  }

  // A first fragment has its L4 header (has_l4), a later one has none.
  const bool had_ports = v.has_l4 && (v.l4_proto == 6 || v.l4_proto == 17 || v.icmp_echo);
  if (!nat::set_source(v, address(version, 11)) || !nat::set_destination(v, address(version, 12)))
    fail("a rewrite of the frame's own family was refused");
  const bool source_port = nat::set_source_port(v, 40001);
  const bool destination_port = nat::set_destination_port(v, 8443);
  if (source_port != had_ports || destination_port != had_ports) fail("port rewrite accepted or refused wrongly");
  const std::uint8_t ttl = v.ttl;
  const bool decremented = nat::decrement_ttl(v);
  if (decremented != (ttl > 1)) fail("decrement_ttl");
  nat::set_macs(v, {2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2});

  PacketView again;
  if (parse_frame(frame, again) != ParseStatus::Ok) fail("the rewritten frame does not parse");
  same_layout(v, again);
  if (std::memcmp(again.src_addr(), address(version, 11).bytes.data(), again.addr_len()) != 0 ||
      std::memcmp(again.dst_addr(), address(version, 12).bytes.data(), again.addr_len()) != 0)
    fail("addresses not rewritten");
  if (had_ports && (v.l4_proto == 6 || v.l4_proto == 17) && (again.src_port != 40001 || again.dst_port != 8443))
    fail("ports not rewritten");
  if (had_ports && v.icmp_echo && again.icmp_id != 8443) fail("echo id not rewritten");
  if (again.ttl != (decremented ? ttl - 1 : ttl)) fail("TTL");
  if (frame[0] != 2 || frame[5] != 2 || frame[11] != 1) fail("MACs not rewritten");
  if (!ipv4_header_verifies(frame.data(), again)) fail("IPv4 header checksum after NAT");
  if (!l4_verifies(frame.data(), again)) fail("L4 checksum after NAT");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t control = data[0];
  const std::uint64_t now_ns = 1'000'000'000ull + data[1] * 50'000'000ull;
  // A heap copy of exactly the frame: ASan sees any byte read or written past its end.
  std::vector<std::uint8_t> frame(data + 2, data + size);
  const auto frame_len = static_cast<std::uint32_t>(frame.size());

  PacketView view;
  const ParseStatus status = parse_frame(frame, view);
  if (status == ParseStatus::Ok) {
    check_layout(view, frame_len);
    if (control & 0x04) fix_checksums(frame.data(), view);
  }

  ConformityOptions options;
  options.rate_limiter.capacity = 16;
  Conformity conformity(policy(control & 0x01, control & 0x02), options);
  const std::vector<std::uint8_t> before = frame;
  DropReason reason = DropReason::None;
  const int runs = 1 + ((control >> 3) & 3);
  for (int run = 0; run < runs; ++run) {
    PacketView checked;
    reason = conformity.check(frame, now_ns, checked);
    if (frame != before) fail("check() changed the frame");
    std::uint64_t total = 0;
    for (const auto count : conformity.counters()) total += count;
    if (total != static_cast<std::uint64_t>(run + 1)) fail("check() did not count exactly one verdict");
    if (status != ParseStatus::Ok && reason != drop_reason_for(status)) fail("a parse failure with another reason");
    if (reason == DropReason::RateLimited && run < 2) fail("rate limited within the burst");
    if (reason != DropReason::None) continue;
    check_layout(checked, frame_len);
    if (!ipv4_header_verifies(frame.data(), checked)) fail("accepted with a bad IPv4 header checksum");
    if (!l4_verifies(frame.data(), checked)) fail("accepted with a bad L4 checksum");
    view = checked;
  }
  if (reason != DropReason::None) return 0;
  rewrite_and_verify(frame, view, control & 0x20);
  return 0;
}
