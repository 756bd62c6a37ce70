// The per-ingress conformity check (DESIGN.md part 3): is this frame one a client may send to
// the service? Built once from the validated config::Inspect; then check() per packet, with no
// allocation, no exception and no system call.
//
// Order of the checks (the first failing one names the drop):
//   1. structure (parser): truncated, unsupported_ethertype, bad_ipv4_header, bad_ipv6_header,
//      bad_tcp_header;
//   2. IP sanity: bad_ipv4_checksum, bad_ipv4_header (fragment past 64 KiB, non-last fragment not
//      a multiple of 8, source-route option), bad_ipv6_header (routing header with segments
//      left, the same fragment checks), ttl_expired (0), bad_source;
//   3. L4 header sanity: tcp_flags, bad_tcp_header (port 0), bad_udp_header (length, port 0);
//   4. deny_sources: denied_source;
//   5. fragments policy: fragment;
//   6. allow list: icmp_type, bad_icmp, proto_not_allowed, port_not_allowed;
//   7. per-source rate limit: rate_limited;
//   8. L4 checksum (last: its cost grows with the packet size): bad_checksum.
// So a flood of bad-checksum packets from one source is counted as rate_limited once its
// bucket is empty: rate limiting is cheap and stops the per-byte work.
//
// Decisions (see also drop_reason.hpp):
// - Allow list: empty means every protocol and port. Otherwise TCP/UDP are checked by
//   destination port (one 64 Ki-bit bitmap per protocol: O(1)); an "icmp" rule covers ICMPv4 and
//   ICMPv6; any other protocol is refused.
// - ICMP: whatever the allow list says, only echo request/reply and the error types
//   (is_icmp_error) are accepted; redirects, router/neighbour discovery, timestamps and the like
//   are never for a service (icmp_type). An error must embed a parseable header of its own family
//   that is not itself an ICMP error (bad_icmp). An error is allowed by an "icmp" rule, or without
//   one when the flow it reports on is allowed: the embedded packet went from the service to the
//   client, so its SOURCE port must be allowed for its protocol. That keeps path MTU discovery
//   working for allowed TCP/UDP services. Whether the flow exists is the flow table's business.
// - Fragments, "drop": every fragment (first or not) is dropped. "allow": the first fragment is
//   checked like a whole packet (its L4 header is complete, else truncated) except that L4
//   checksum and UDP length cannot be verified (they cover the reassembled packet). A non-first
//   fragment has no ports: it is accepted when its protocol has any allow rule (whatever the
//   ports); the forwarder must tie it to its first fragment (same source, destination, protocol
//   and id) and drop it otherwise. A non-first fragment whose offset would overlap the L4 header
//   (RFC 1858 overlapping-fragment attack: offset < 20 for TCP, < 8 for UDP/ICMP) is dropped.
//   IPv6 atomic fragments (offset 0, M clear) are whole packets.
// - TCP flags: accepted combinations are Linux conntrack's (tcp_valid_flags): SYN, SYN+ACK,
//   RST, RST+ACK, FIN+ACK, ACK, each optionally with URG (SYN+ACK excepted) and with PSH, ECE,
//   CWR ignored. So null, SYN+FIN, SYN+RST, RST+FIN, FIN without ACK and X-mas are refused.
// - UDP length must equal the IP payload (Linux trims a longer IP payload and accepts; an
//   inspector rejects packets that different stacks would read differently).
// - The rate limit applies to packets that passed every policy check before it (see order).
//
// Not thread-safe: one Conformity per packet-processing thread (counters, rate limiter).
#pragma once

#include "drop_reason.hpp"
#include "packet_view.hpp"
#include "prefix_set.hpp"
#include "rate_limiter.hpp"

#include <xdpfwd/config.hpp>

#include <cstdint>
#include <span>
#include <vector>

namespace xdpfwd::ingress::packet {

// Drop reason of a parse failure (Ok maps to None).
DropReason drop_reason_for(ParseStatus status) noexcept;

struct ConformityOptions {
  RateLimiterOptions rate_limiter; // table size, probe length, IPv6 prefix, hash seed
};

class Conformity {
public:
  explicit Conformity(const config::Inspect& inspect, ConformityOptions options = {});

  // Parses `frame` into `view`, checks it and counts the verdict. On None, `view` is valid and
  // ready for the balancer and NAT.
  DropReason check(std::span<std::uint8_t> frame, std::uint64_t now_ns, PacketView& view) noexcept;

  // Checks a view that parse_frame() returned Ok for, and counts the verdict.
  DropReason check_parsed(const PacketView& view, std::uint64_t now_ns) noexcept;

  const DropCounters& counters() const noexcept { return counters_; }
  const RateLimiter& rate_limiter() const noexcept { return limiter_; }

  // The allow list alone: protocol has a rule / port allowed (TCP and UDP by port, ICMP and
  // ICMPv6 by an "icmp" rule).
  bool protocol_allowed(std::uint8_t ip_version, std::uint8_t proto) const noexcept;
  bool port_allowed(std::uint8_t proto, std::uint16_t port) const noexcept;

private:
  DropReason evaluate(const PacketView& v, std::uint64_t now_ns) noexcept;
  DropReason check_icmp(const PacketView& v) const noexcept;

  bool allow_all_ = true;
  bool tcp_rule_ = false;
  bool udp_rule_ = false;
  bool icmp_rule_ = false;
  std::vector<std::uint64_t> port_bits_; // [0, 1024): TCP ports, [1024, 2048): UDP ports
  PrefixSet deny_;
  config::FragmentPolicy fragments_ = config::FragmentPolicy::Drop;
  RateLimiter limiter_;
  DropCounters counters_{};
};

} // namespace xdpfwd::ingress::packet
