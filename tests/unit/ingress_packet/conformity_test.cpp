#include "conformity.hpp"
#include "frames.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>

namespace pkt = xdpfwd::ingress::packet;
namespace config = xdpfwd::config;
using frames::Builder;
using frames::Bytes;
using pkt::DropReason;

namespace {

constexpr std::uint64_t kNow = 5'000'000'000ull;
const std::string kClient4 = "198.51.100.7";
const std::string kService4 = "198.18.0.10";
const std::string kClient6 = "2001:db8::7";
const std::string kService6 = "fd00:18::10";

// The example of DESIGN.md: tcp 80/443, udp 53, icmp.
config::Inspect example_inspect() {
  config::Inspect in;
  in.allow = {{.protocol = config::Protocol::Tcp, .ports = {80, 443}},
              {.protocol = config::Protocol::Udp, .ports = {53}},
              {.protocol = config::Protocol::Icmp, .ports = {}}};
  in.deny_sources = {boost::asio::ip::make_network_v4("198.19.66.0/24"),
                     boost::asio::ip::make_network_v6("2001:db8:bad::/48")};
  in.fragments = config::FragmentPolicy::Drop;
  return in;
}

Builder v4() { return Builder{}.ipv4(kClient4, kService4); }
Builder v6() { return Builder{}.ipv6(kClient6, kService6); }

DropReason check(pkt::Conformity& c, Bytes f, std::uint64_t now = kNow) {
  pkt::PacketView v;
  return c.check(f, now, v);
}

DropReason check(const config::Inspect& in, Bytes f) {
  pkt::Conformity c(in);
  return check(c, std::move(f));
}

} // namespace

TEST(Conformity, AcceptsAllowedTraffic) {
  const auto in = example_inspect();
  EXPECT_EQ(check(in, v4().tcp(40000, 443, pkt::kTcpSyn).build()), DropReason::None);
  EXPECT_EQ(check(in, v4().tcp(40000, 80, pkt::kTcpAck | pkt::kTcpPsh).payload_size(100).build()), DropReason::None);
  EXPECT_EQ(check(in, v4().udp(5353, 53).payload_size(30).build()), DropReason::None);
  EXPECT_EQ(check(in, v4().icmp(8, 0, 1, 1).payload_size(56).build()), DropReason::None);
  EXPECT_EQ(check(in, v6().tcp(40000, 443, pkt::kTcpSyn).build()), DropReason::None);
  EXPECT_EQ(check(in, v6().udp(5353, 53).build()), DropReason::None);
  EXPECT_EQ(check(in, v6().icmp(128, 0, 1, 1).build()), DropReason::None);
  EXPECT_EQ(check(in, v4().vlan(5).tcp(40000, 443, pkt::kTcpAck).pad_to(60).build()), DropReason::None);
}

TEST(Conformity, StructuralDrops) {
  const auto in = example_inspect();
  Bytes f = v4().tcp(1, 80, pkt::kTcpAck).build();
  EXPECT_EQ(check(in, Bytes(f.begin(), f.begin() + 40)), DropReason::Truncated);
  EXPECT_EQ(check(in, Builder{}.ethertype(0x0806).build()), DropReason::UnsupportedEthertype);
  Bytes bad_version = f;
  bad_version[14] = 0x65;
  EXPECT_EQ(check(in, bad_version), DropReason::BadIpv4Header);
  Bytes f6 = v6().udp(1, 53).build();
  f6[14] = 0x70;
  EXPECT_EQ(check(in, f6), DropReason::BadIpv6Header);
  Bytes doff = f;
  doff[14 + 20 + 12] = 0x40;
  EXPECT_EQ(check(in, doff), DropReason::BadTcpHeader);
  // Tiny first fragment (RFC 1858): the TCP header does not fit.
  Bytes tiny = v4().ipv4_fragment(true, 0).raw(6, Bytes(8, 0)).build();
  config::Inspect allow_frags = in;
  allow_frags.fragments = config::FragmentPolicy::Allow;
  EXPECT_EQ(check(allow_frags, tiny), DropReason::Truncated);
}

TEST(Conformity, Ipv4HeaderChecksum) {
  const auto in = example_inspect();
  Bytes f = v4().tcp(1, 80, pkt::kTcpAck).build();
  EXPECT_EQ(check(in, f), DropReason::None);
  f[14 + 10] ^= 0x01;
  EXPECT_EQ(check(in, f), DropReason::BadIpv4Checksum);
}

TEST(Conformity, TtlZero) {
  const auto in = example_inspect();
  EXPECT_EQ(check(in, v4().ttl(0).tcp(1, 80, pkt::kTcpAck).build()), DropReason::TtlExpired);
  EXPECT_EQ(check(in, v6().ttl(0).tcp(1, 80, pkt::kTcpAck).build()), DropReason::TtlExpired);
  EXPECT_EQ(check(in, v4().ttl(1).tcp(1, 80, pkt::kTcpAck).build()), DropReason::None);
}

TEST(Conformity, BadSources) {
  const auto in = example_inspect();
  for (const char* s : {"0.1.2.3", "127.0.0.1", "224.0.0.1", "255.255.255.255", "240.0.0.1"}) {
    EXPECT_EQ(check(in, Builder{}.ipv4(s, kService4).tcp(1, 80, pkt::kTcpAck).build()), DropReason::BadSource) << s;
  }
  for (const char* s : {"::", "::1", "ff02::1", "::ffff:198.51.100.7"}) {
    EXPECT_EQ(check(in, Builder{}.ipv6(s, kService6).tcp(1, 80, pkt::kTcpAck).build()), DropReason::BadSource) << s;
  }
  EXPECT_EQ(check(in, Builder{}.ipv6("::2", kService6).tcp(1, 80, pkt::kTcpAck).build()), DropReason::None);
}

TEST(Conformity, Ipv4SourceRouteOption) {
  const auto in = example_inspect();
  // NOP, then LSRR with one address.
  const Bytes lsrr = {1, 0x83, 7, 4, 192, 0, 2, 1};
  EXPECT_EQ(check(in, v4().ipv4_options(lsrr).tcp(1, 80, pkt::kTcpAck).build()), DropReason::BadIpv4Header);
  const Bytes record_route = {1, 0x07, 7, 4, 0, 0, 0, 0};
  EXPECT_EQ(check(in, v4().ipv4_options(record_route).tcp(1, 80, pkt::kTcpAck).build()), DropReason::None);
}

TEST(Conformity, Ipv6RoutingHeaderWithSegmentsLeft) {
  const auto in = example_inspect();
  EXPECT_EQ(check(in, v6().ext({.type = 43, .len = 24, .segments_left = 1}).tcp(1, 80, pkt::kTcpAck).build()),
            DropReason::BadIpv6Header);
  EXPECT_EQ(check(in, v6().ext({.type = 43, .len = 24, .segments_left = 0}).tcp(1, 80, pkt::kTcpAck).build()),
            DropReason::None);
}

TEST(Conformity, TcpFlagCombinations) {
  const auto in = example_inspect();
  using namespace pkt;
  const std::vector<std::uint8_t> good = {kTcpSyn, kTcpSyn | kTcpAck, kTcpAck, kTcpAck | kTcpPsh, kTcpFin | kTcpAck,
                                          kTcpFin | kTcpAck | kTcpPsh, kTcpRst, kTcpRst | kTcpAck,
                                          kTcpSyn | kTcpEce | kTcpCwr, kTcpAck | kTcpUrg};
  const std::vector<std::uint8_t> bad = {0,                              // null scan
                                         kTcpSyn | kTcpFin,              // SYN+FIN
                                         kTcpSyn | kTcpRst,              // SYN+RST
                                         kTcpRst | kTcpFin,              // RST+FIN
                                         kTcpFin,                        // FIN without ACK
                                         kTcpFin | kTcpPsh | kTcpUrg,    // X-mas
                                         0x3F,                           // everything
                                         kTcpPsh,                        // PSH alone
                                         kTcpSyn | kTcpFin | kTcpAck,
                                         kTcpRst | kTcpFin | kTcpAck};
  for (std::uint8_t flags : good) {
    EXPECT_EQ(check(in, v4().tcp(1000, 80, flags).build()), DropReason::None) << int(flags);
  }
  for (std::uint8_t flags : bad) {
    EXPECT_EQ(check(in, v4().tcp(1000, 80, flags).build()), DropReason::TcpFlags) << int(flags);
    EXPECT_EQ(check(in, v6().tcp(1000, 80, flags).build()), DropReason::TcpFlags) << int(flags);
  }
}

TEST(Conformity, PortZero) {
  config::Inspect all; // empty allow list: every port, so only the sanity rule can refuse
  EXPECT_EQ(check(all, v4().tcp(0, 80, pkt::kTcpSyn).build()), DropReason::BadTcpHeader);
  EXPECT_EQ(check(all, v4().tcp(1, 0, pkt::kTcpSyn).build()), DropReason::BadTcpHeader);
  EXPECT_EQ(check(all, v4().udp(1, 0).build()), DropReason::BadUdpHeader);
  EXPECT_EQ(check(all, v4().udp(0, 53).build()), DropReason::None); // UDP source 0: "no reply"
}

TEST(Conformity, UdpLength) {
  const auto in = example_inspect();
  Bytes f = v4().udp(1000, 53).payload_size(20).build();
  EXPECT_EQ(check(in, f), DropReason::None);
  Bytes longer = f;
  frames::set16(longer.data() + 34 + 4, 29);
  EXPECT_EQ(check(in, longer), DropReason::BadUdpHeader);
  Bytes shorter = f;
  frames::set16(shorter.data() + 34 + 4, 27);
  EXPECT_EQ(check(in, shorter), DropReason::BadUdpHeader);
  Bytes tiny = f;
  frames::set16(tiny.data() + 34 + 4, 4);
  EXPECT_EQ(check(in, tiny), DropReason::BadUdpHeader);
}

TEST(Conformity, L4Checksums) {
  const auto in = example_inspect();
  const std::vector<Bytes> samples = {
      v4().tcp(1000, 80, pkt::kTcpAck).payload_size(50).build(), v4().udp(1000, 53).payload_size(7).build(),
      v4().icmp(8, 0, 1, 2).payload_size(9).build(),           v6().tcp(1000, 443, pkt::kTcpAck).build(),
      v6().udp(1000, 53).payload_size(3).build(),              v6().icmp(128, 0, 1, 2).payload_size(9).build(),
  };
  for (Bytes f : samples) {
    EXPECT_EQ(check(in, f), DropReason::None);
    f.back() ^= 0x10;
    EXPECT_EQ(check(in, f), DropReason::BadChecksum);
  }
  EXPECT_EQ(check(in, v4().udp(1000, 53).payload_size(7).udp_checksum_zero().build()), DropReason::None);
  EXPECT_EQ(check(in, v6().udp(1000, 53).payload_size(7).udp_checksum_zero().build()), DropReason::BadChecksum);
}

// A host behind a veth with TX checksum offload sends TCP and UDP checksums left partial: not an
// error (the forwarder finishes them). ICMP has no such offload: that value is just wrong there.
TEST(Conformity, L4ChecksumsLeftPartialByOffload) {
  const auto in = example_inspect();
  for (Builder b : {v4().tcp(1000, 80, pkt::kTcpAck).payload_size(50), v4().udp(1000, 53).payload_size(7),
                    v6().tcp(1000, 443, pkt::kTcpAck).payload_size(9), v6().udp(1000, 53).payload_size(3)}) {
    const Bytes partial = b.l4_checksum_partial().build();
    EXPECT_FALSE(frames::ref_verify(partial).l4);
    EXPECT_EQ(check(in, partial), DropReason::None);
    // A field that is neither the full checksum nor the pseudo-header sum is wrong. (A partial
    // checksum covers no payload, on a wire with hardware offload no less: nothing can.)
    Bytes corrupt = partial;
    const frames::RefLayout l = frames::ref_layout(corrupt.data(), 14, corrupt.size());
    corrupt[l.l4 + (l.proto == pkt::kProtoTcp ? 16 : 6)] ^= 0x10;
    EXPECT_EQ(check(in, corrupt), DropReason::BadChecksum);
  }
  EXPECT_EQ(check(in, v4().icmp(8, 0, 1, 2).payload_size(9).l4_checksum_partial().build()), DropReason::BadChecksum);
}

TEST(Conformity, ProtocolsAndPorts) {
  const auto in = example_inspect();
  EXPECT_EQ(check(in, v4().tcp(1000, 22, pkt::kTcpSyn).build()), DropReason::PortNotAllowed);
  EXPECT_EQ(check(in, v4().udp(1000, 443).build()), DropReason::PortNotAllowed);
  EXPECT_EQ(check(in, v6().tcp(1000, 8080, pkt::kTcpSyn).build()), DropReason::PortNotAllowed);
  EXPECT_EQ(check(in, v4().raw(47, Bytes(20, 0)).build()), DropReason::ProtoNotAllowed); // GRE
  EXPECT_EQ(check(in, v6().raw(132, Bytes(20, 0)).build()), DropReason::ProtoNotAllowed); // SCTP

  config::Inspect tcp_only;
  tcp_only.allow = {{.protocol = config::Protocol::Tcp, .ports = {}}};
  EXPECT_EQ(check(tcp_only, v4().tcp(1000, 22, pkt::kTcpSyn).build()), DropReason::None);
  EXPECT_EQ(check(tcp_only, v4().tcp(1000, 65535, pkt::kTcpSyn).build()), DropReason::None);
  EXPECT_EQ(check(tcp_only, v4().udp(1000, 53).build()), DropReason::ProtoNotAllowed);
  EXPECT_EQ(check(tcp_only, v4().icmp(8, 0, 1, 1).build()), DropReason::ProtoNotAllowed);
  EXPECT_EQ(check(tcp_only, v6().icmp(128, 0, 1, 1).build()), DropReason::ProtoNotAllowed);

  config::Inspect everything; // empty list: all protocols and ports
  EXPECT_EQ(check(everything, v4().raw(47, Bytes(20, 0)).build()), DropReason::None);
  EXPECT_EQ(check(everything, v4().udp(1, 9999).build()), DropReason::None);
}

TEST(Conformity, IcmpTypes) {
  const auto in = example_inspect();
  EXPECT_EQ(check(in, v4().icmp(0, 0, 1, 1).build()), DropReason::None);  // echo reply
  EXPECT_EQ(check(in, v4().icmp(5, 1).build()), DropReason::IcmpType);    // redirect
  EXPECT_EQ(check(in, v4().icmp(13, 0).build()), DropReason::IcmpType);   // timestamp
  EXPECT_EQ(check(in, v6().icmp(129, 0, 1, 1).build()), DropReason::None); // echo reply
  EXPECT_EQ(check(in, v6().icmp(135, 0).build()), DropReason::IcmpType);  // neighbour solicitation
  EXPECT_EQ(check(in, v6().icmp(134, 0).build()), DropReason::IcmpType);  // router advertisement
  config::Inspect everything;
  EXPECT_EQ(check(everything, v4().icmp(5, 1).build()), DropReason::IcmpType);
}

TEST(Conformity, IcmpErrors) {
  const auto in = example_inspect();
  // Replies from the service to the client, reported back by a router on the way.
  const Bytes tcp_reply = Builder{}.ipv4(kService4, kClient4).tcp(443, 40000, pkt::kTcpAck).payload_size(64).ip_packet();
  const Bytes ssh_reply = Builder{}.ipv4(kService4, kClient4).tcp(22, 40000, pkt::kTcpAck).ip_packet();
  const Bytes frag_needed = Builder{}.ipv4("192.0.2.1", kService4).icmp_error(3, 4, Bytes(tcp_reply.begin(), tcp_reply.begin() + 28), 1400).build();
  EXPECT_EQ(check(in, frag_needed), DropReason::None);

  // Without an icmp rule, an error about an allowed flow (service source port 443) still passes.
  config::Inspect no_icmp = in;
  no_icmp.allow.pop_back();
  EXPECT_EQ(check(no_icmp, frag_needed), DropReason::None);
  EXPECT_EQ(check(no_icmp, Builder{}.ipv4("192.0.2.1", kService4).icmp_error(3, 4, ssh_reply).build()),
            DropReason::PortNotAllowed);
  EXPECT_EQ(check(no_icmp, v4().icmp(8, 0, 1, 1).build()), DropReason::ProtoNotAllowed);

  const Bytes tcp6 = Builder{}.ipv6(kService6, kClient6).tcp(443, 40000, pkt::kTcpAck).payload_size(1300).ip_packet();
  const Bytes too_big = Builder{}.ipv6("2001:db8::ff", kService6).icmp_error(2, 0, Bytes(tcp6.begin(), tcp6.begin() + 1000), 1280).build();
  EXPECT_EQ(check(in, too_big), DropReason::None);
  EXPECT_EQ(check(no_icmp, too_big), DropReason::None);

  // Unusable embedded header, or an error about an error.
  EXPECT_EQ(check(in, Builder{}.ipv4("192.0.2.1", kService4).icmp_error(3, 4, Bytes(tcp_reply.begin(), tcp_reply.begin() + 12)).build()),
            DropReason::BadIcmp);
  EXPECT_EQ(check(in, Builder{}.ipv4("192.0.2.1", kService4).icmp_error(3, 4, tcp6).build()), DropReason::BadIcmp);
  const Bytes inner_error = Builder{}.ipv4(kService4, kClient4).icmp_error(3, 3, tcp_reply).ip_packet();
  EXPECT_EQ(check(in, Builder{}.ipv4("192.0.2.1", kService4).icmp_error(11, 0, inner_error).build()), DropReason::BadIcmp);
  // An error about an echo reply is fine.
  const Bytes echo_reply = Builder{}.ipv4(kService4, kClient4).icmp(0, 0, 7, 1).ip_packet();
  EXPECT_EQ(check(in, Builder{}.ipv4("192.0.2.1", kService4).icmp_error(11, 0, echo_reply).build()), DropReason::None);
  // And its checksum is verified like any other.
  Bytes corrupt = frag_needed;
  corrupt.back() ^= 0xFF;
  EXPECT_EQ(check(in, corrupt), DropReason::BadChecksum);
}

TEST(Conformity, DeniedSources) {
  const auto in = example_inspect();
  EXPECT_EQ(check(in, Builder{}.ipv4("198.19.66.1", kService4).tcp(1, 80, pkt::kTcpSyn).build()), DropReason::DeniedSource);
  EXPECT_EQ(check(in, Builder{}.ipv4("198.19.66.255", kService4).tcp(1, 80, pkt::kTcpSyn).build()), DropReason::DeniedSource);
  EXPECT_EQ(check(in, Builder{}.ipv4("198.19.67.1", kService4).tcp(1, 80, pkt::kTcpSyn).build()), DropReason::None);
  EXPECT_EQ(check(in, Builder{}.ipv6("2001:db8:bad:1::5", kService6).tcp(1, 80, pkt::kTcpSyn).build()), DropReason::DeniedSource);
  EXPECT_EQ(check(in, Builder{}.ipv6("2001:db8:bae::5", kService6).tcp(1, 80, pkt::kTcpSyn).build()), DropReason::None);
  // Denied even for a protocol that is not allowed: the source decides first.
  EXPECT_EQ(check(in, Builder{}.ipv4("198.19.66.1", kService4).udp(1, 9).build()), DropReason::DeniedSource);
}

TEST(Conformity, FragmentsDropPolicy) {
  const auto in = example_inspect(); // fragments: drop
  EXPECT_EQ(check(in, v4().ipv4_fragment(true, 0).tcp(1, 80, pkt::kTcpAck).payload_size(28).build()), DropReason::Fragment);
  EXPECT_EQ(check(in, v4().ipv4_fragment(false, 1480).raw(6, Bytes(40, 0)).build()), DropReason::Fragment);
  EXPECT_EQ(check(in, v6().ext({.type = 44, .more = true}).udp(1, 53).payload_size(24).build()), DropReason::Fragment);
  EXPECT_EQ(check(in, v6().ext({.type = 44, .frag_offset = 1232}).raw(17, Bytes(40, 0)).build()), DropReason::Fragment);
  // Atomic fragment: a whole packet.
  EXPECT_EQ(check(in, v6().ext({.type = 44}).udp(1, 53).build()), DropReason::None);
}

TEST(Conformity, FragmentsAllowPolicy) {
  auto in = example_inspect();
  in.fragments = config::FragmentPolicy::Allow;
  // First fragments are port-checked; their (partial) checksum is not verified.
  Bytes first = v4().ipv4_fragment(true, 0).tcp(1, 443, pkt::kTcpAck).payload_size(36).build();
  first.back() ^= 0xFF;
  EXPECT_EQ(check(in, first), DropReason::None);
  EXPECT_EQ(check(in, v4().ipv4_fragment(true, 0).tcp(1, 22, pkt::kTcpAck).payload_size(36).build()), DropReason::PortNotAllowed);
  EXPECT_EQ(check(in, v6().ext({.type = 44, .more = true}).udp(1, 53).payload_size(24).build()), DropReason::None);
  EXPECT_EQ(check(in, v6().ext({.type = 44, .more = true}).udp(1, 54).payload_size(24).build()), DropReason::PortNotAllowed);
  // Non-first fragments: allowed protocol, any port.
  EXPECT_EQ(check(in, v4().ipv4_fragment(false, 1480).raw(6, Bytes(40, 0)).build()), DropReason::None);
  EXPECT_EQ(check(in, v6().ext({.type = 44, .frag_offset = 1232}).raw(17, Bytes(40, 0)).build()), DropReason::None);
  EXPECT_EQ(check(in, v4().ipv4_fragment(false, 1480).raw(47, Bytes(40, 0)).build()), DropReason::ProtoNotAllowed);
  // Overlapping the TCP header (RFC 1858).
  EXPECT_EQ(check(in, v4().ipv4_fragment(false, 8).raw(6, Bytes(40, 0)).build()), DropReason::Fragment);
  EXPECT_EQ(check(in, v4().ipv4_fragment(false, 16).raw(6, Bytes(40, 0)).build()), DropReason::Fragment);
  EXPECT_EQ(check(in, v4().ipv4_fragment(false, 24).raw(6, Bytes(40, 0)).build()), DropReason::None);
  // Geometry: non-last fragment not a multiple of 8; end past 64 KiB.
  EXPECT_EQ(check(in, v4().ipv4_fragment(true, 1480).raw(6, Bytes(41, 0)).build()), DropReason::BadIpv4Header);
  EXPECT_EQ(check(in, v4().ipv4_fragment(false, 65528).raw(6, Bytes(16, 0)).build()), DropReason::BadIpv4Header);
  EXPECT_EQ(check(in, v6().ext({.type = 44, .frag_offset = 1232, .more = true}).raw(17, Bytes(41, 0)).build()),
            DropReason::BadIpv6Header);
  // A first fragment's UDP length covers the whole datagram: it may exceed the fragment.
  Bytes udp_first = v4().ipv4_fragment(true, 0).udp(1, 53).payload_size(32).build();
  frames::set16(udp_first.data() + 34 + 4, 3000);
  EXPECT_EQ(check(in, udp_first), DropReason::None);
}

TEST(Conformity, RateLimitPerSource) {
  auto in = example_inspect();
  in.rate_limit = config::RateLimit{.packets_per_second_per_source = 10, .burst = 3};
  pkt::Conformity c(in);
  const Bytes a = v4().tcp(1000, 80, pkt::kTcpAck).build();
  const Bytes b = Builder{}.ipv4("198.51.100.8", kService4).tcp(1000, 80, pkt::kTcpAck).build();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(check(c, a), DropReason::None);
  }
  EXPECT_EQ(check(c, a), DropReason::RateLimited);
  EXPECT_EQ(check(c, b), DropReason::None);
  EXPECT_EQ(check(c, a, kNow + 100'000'000), DropReason::None); // 100 ms: one token back
  EXPECT_EQ(check(c, a, kNow + 100'000'000), DropReason::RateLimited);
  // Refused packets do not take tokens from other checks' point of view: a port-refused packet
  // never reaches the limiter.
  EXPECT_EQ(check(c, Builder{}.ipv4("198.51.100.9", kService4).tcp(1000, 22, pkt::kTcpAck).build()), DropReason::PortNotAllowed);
  EXPECT_EQ(c.rate_limiter().stats().inserted, 2u);
}

TEST(Conformity, CountersAndNames) {
  const auto in = example_inspect();
  pkt::Conformity c(in);
  check(c, v4().tcp(1000, 80, pkt::kTcpAck).build());
  check(c, v4().tcp(1000, 80, pkt::kTcpAck).build());
  check(c, v4().tcp(1000, 22, pkt::kTcpAck).build());
  check(c, Builder{}.ethertype(0x0806).build());
  EXPECT_EQ(c.counters()[static_cast<std::size_t>(DropReason::None)], 2u);
  EXPECT_EQ(c.counters()[static_cast<std::size_t>(DropReason::PortNotAllowed)], 1u);
  EXPECT_EQ(c.counters()[static_cast<std::size_t>(DropReason::UnsupportedEthertype)], 1u);

  std::set<std::string_view> names;
  for (std::size_t i = 0; i < pkt::kDropReasonCount; ++i) {
    const auto name = pkt::drop_reason_name(static_cast<DropReason>(i));
    EXPECT_NE(name, "unknown");
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string_view::npos) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), pkt::kDropReasonCount);
  EXPECT_EQ(pkt::drop_reason_name(DropReason::RateLimited), "rate_limited");
  EXPECT_EQ(pkt::drop_reason_name(DropReason::BadChecksum), "bad_checksum");
  EXPECT_EQ(pkt::drop_reason_name(static_cast<DropReason>(pkt::kDropReasonCount)), "unknown");
  // Every parse status maps to a reason, Ok to None only.
  for (std::size_t i = 0; i < pkt::kParseStatusCount; ++i) {
    const auto r = pkt::drop_reason_for(static_cast<pkt::ParseStatus>(i));
    EXPECT_EQ(r == DropReason::None, i == 0) << i;
  }
}

// Random corruption of valid frames: the checker never crashes and never accepts a frame whose
// checksums (recomputed independently) are wrong.
TEST(Conformity, RandomCorruptionNeverAcceptedWithBadChecksum) {
  config::Inspect in; // allow everything: only sanity checks apply
  in.fragments = config::FragmentPolicy::Drop;
  pkt::Conformity c(in);
  std::mt19937_64 rng(99);
  const std::vector<Bytes> seeds = {
      v4().tcp(1000, 80, pkt::kTcpAck).payload_size(40).build(),
      v6().udp(1000, 53).payload_size(40).build(),
      v4().icmp(8, 0, 1, 1).payload_size(40).build(),
      v6().icmp(128, 0, 1, 1).payload_size(40).build(),
  };
  int accepted = 0;
  for (int i = 0; i < 100000; ++i) {
    Bytes f = seeds[i % seeds.size()];
    // Corrupt only beyond the addresses so that sources stay valid and checks get deep.
    const std::size_t from = f[14] >> 4 == 4 ? 14 + 20 : 14 + 40;
    f[from + rng() % (f.size() - from)] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    pkt::PacketView v;
    if (c.check(f, kNow, v) == DropReason::None) {
      ++accepted;
      const auto r = frames::ref_verify(f);
      ASSERT_TRUE(r.ipv4_header && r.l4) << i;
    }
  }
  // Single-byte changes are always caught by the checksum.
  EXPECT_EQ(accepted, 0);
}

// Not a benchmark with a threshold (shared 2-core machine): prints the cost per packet.
TEST(Conformity, CostPerPacket) {
  auto in = example_inspect();
  in.rate_limit = config::RateLimit{.packets_per_second_per_source = 1'000'000'000, .burst = 1'000'000'000};
  pkt::Conformity c(in);
  Bytes tcp = v4().tcp(40000, 443, pkt::kTcpAck).payload_size(10).build();
  Bytes udp6 = v6().udp(40000, 53).payload_size(40).build();
  constexpr int kN = 2'000'000;
  pkt::PacketView v;
  std::uint64_t accepted = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) {
    accepted += c.check(i & 1 ? tcp : udp6, kNow + static_cast<std::uint64_t>(i), v) == DropReason::None;
  }
  const auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kN;
  EXPECT_EQ(accepted, static_cast<std::uint64_t>(kN));
  std::printf("parse + conformity check (64-100 byte frames, rate limiter on): %.1f ns/packet\n", ns);
}
