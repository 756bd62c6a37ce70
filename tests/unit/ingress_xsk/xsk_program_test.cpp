// Verdicts of the ingress programs (bpf/ingress_xsk.bpf.c) through BPF_PROG_TEST_RUN: one frame
// per case, the counter it must land in. No socket is bound, so a frame the program redirects
// comes back XDP_PASS and counts as *_no_socket. Each frame also goes through the program's tc
// twin (the AF_PACKET fallback), which must mark exactly those frames for the inspector's packet
// sockets. Nothing is attached; needs root (CAP_BPF).
#include "ingress_xdp.hpp"
#include "packet_builder.hpp"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

namespace xdpfwd::ingress::xsk {
namespace {

using boost::asio::ip::make_address;
using xdpfwd::testing::Bytes;
using xdpfwd::testing::Eth;
using xdpfwd::testing::Mac;
using xdpfwd::testing::PacketBuilder;

constexpr Mac kA = {0x02, 0, 0, 0, 0, 1};
constexpr Mac kB = {0x02, 0, 0, 0, 0, 2};
constexpr Mac kOvl = {0x02, 0, 0, 0, 1, 1};

struct Case {
  const char* name;
  Bytes frame;
  int counter; // enum xdpfwd_ingress_counter
};

Bytes icmp(std::uint8_t type, std::uint16_t id = 0) {
  return {type, 0, 0, 0, static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0, 1, 'x', 'y'};
}

// An IPv6 frame whose next headers are the given extension headers (8 bytes each) then UDP.
Bytes ipv6_with_extensions(const char* dst, std::vector<std::uint8_t> chain, std::uint16_t fragment_offset = 0) {
  Bytes body;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const std::uint8_t next = i + 1 < chain.size() ? chain[i + 1] : std::uint8_t{IPPROTO_UDP};
    if (chain[i] == IPPROTO_FRAGMENT)
      body.insert(body.end(), {next, 0, static_cast<std::uint8_t>(fragment_offset >> 8),
                               static_cast<std::uint8_t>(fragment_offset | 1), 0, 0, 0, 7});
    else
      body.insert(body.end(), {next, 0, 1, 4, 0, 0, 0, 0});
  }
  body.insert(body.end(), {0x9c, 0x40, 0x00, 0x35, 0, 12, 0, 0, 'u', 'd', 'p', '!'}); // 40000 -> 53
  return Eth(kB, kA).ipv6("fd00:18::1", dst).ip_protocol(chain.empty() ? std::uint8_t{IPPROTO_UDP} : chain[0]).payload(body).build();
}

class IngressXskProgram : public ::testing::Test {
protected:
  void SetUp() override {
    xdp_.add_service_ip(make_address("198.18.0.10"));
    xdp_.add_service_ip(make_address("fd00:18::10"));
    xdp_.add_overlay_ip(make_address("10.201.0.1"));
    xdp_.add_overlay_ip(make_address("fd00:201::1"));
    xdp_.add_stack_tcp_port(443);
    xdp_.set_nat_port_range(40000, 40999);
    auto config = xdp_.overlay_config();
    std::copy(kOvl.begin(), kOvl.end(), config.mac);
    xdp_.set_overlay_config(config);
  }

  // The tc twin of an XDP program: the frames that program redirects (here: *_no_socket) are
  // marked and counted in packet_socket_counter, the others pass untouched and uncounted.
  void expect_tc(int prog_fd, const Case& c, int no_socket_counter, int packet_socket_counter) {
    // BPF_PROG_TEST_RUN builds no skb whose IP header is cut short (EINVAL); the stack would not
    // either, so such a frame never reaches a tc program.
    if (c.frame.size() >= 14 && c.frame[12] == 0x08 && c.frame[13] == 0x00 && c.frame.size() < 14 + 20) return;
    const bool inspectors = c.counter == no_socket_counter;
    const auto before = xdp_.counters();
    Bytes out(c.frame.size() + 256);
    __sk_buff skb{};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<std::uint32_t>(c.frame.size()),
                .data_size_out = static_cast<std::uint32_t>(out.size()), .ctx_in = &skb, .ctx_out = &skb,
                .ctx_size_in = sizeof(skb), .ctx_size_out = sizeof(skb), .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(prog_fd, &opts), 0) << c.name << " (tc)";
    EXPECT_EQ(opts.retval, static_cast<std::uint32_t>(TC_ACT_OK)) << c.name << " (tc)";
    out.resize(opts.data_size_out);
    EXPECT_EQ(out, c.frame) << c.name << " (tc): the frame was modified";
    EXPECT_EQ(skb.mark, inspectors ? XDPFWD_INGRESS_INSPECTOR_MARK : 0u) << c.name << " (tc)";
    const auto after = xdp_.counters();
    for (int i = 0; i < XDPFWD_INGRESS_COUNTERS; ++i)
      EXPECT_EQ(after[i] - before[i], i == packet_socket_counter && inspectors ? 1u : 0u)
          << c.name << " (tc): counter " << ingress_counter_name(i);
  }

  void expect(int prog_fd, const Case& c) {
    const auto before = xdp_.counters();
    Bytes out(c.frame.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<std::uint32_t>(c.frame.size()),
                .data_size_out = static_cast<std::uint32_t>(out.size()), .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(prog_fd, &opts), 0) << c.name;
    EXPECT_EQ(opts.retval, static_cast<std::uint32_t>(XDP_PASS)) << c.name;
    out.resize(opts.data_size_out);
    EXPECT_EQ(out, c.frame) << c.name << ": the frame was modified";
    const auto after = xdp_.counters();
    for (int i = 0; i < XDPFWD_INGRESS_COUNTERS; ++i)
      EXPECT_EQ(after[i] - before[i], i == c.counter ? 1u : 0u) << c.name << ": counter " << ingress_counter_name(i);
  }

  IngressXdp xdp_;
};

TEST_F(IngressXskProgram, ClientVerdicts) {
  const std::vector<Case> cases = {
      {"udp4 to service", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").udp(1, 53).build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"udp6 to service", Eth(kB, kA).ipv6("fd00:18::1", "fd00:18::10").udp(1, 53).build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"icmp echo to service", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").icmp_echo(1, 1).build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"icmpv6 echo to service", Eth(kB, kA).ipv6("fd00:18::1", "fd00:18::10").icmp_echo(1, 1).build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"tcp 80 to service", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").tcp(1, 80).build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"tcp 443 to service", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").tcp(1, 443).build(), XDPFWD_INGRESS_CLIENT_STACK_PORT},
      {"tcp6 443 to service", Eth(kB, kA).ipv6("fd00:18::1", "fd00:18::10").tcp(1, 443).build(), XDPFWD_INGRESS_CLIENT_STACK_PORT},
      {"udp 443 to service", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").udp(1, 443).build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"ipv4 options", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").ipv4_options({1, 1, 1, 1}).tcp(1, 443).build(), XDPFWD_INGRESS_CLIENT_STACK_PORT},
      {"tcp 443 fragment", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").ipv4_frag(0x2000).tcp(1, 443).build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"later fragment", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").ipv4_frag(100).payload("rest").build(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"neighbour solicitation", Eth(kB, kA).ipv6("fd00:18::1", "fd00:18::10").ip_protocol(IPPROTO_ICMPV6).payload(icmp(135)).build(), XDPFWD_INGRESS_CLIENT_NEIGHBOR},
      {"neighbour advertisement", Eth(kB, kA).ipv6("fd00:18::1", "fd00:18::10").ip_protocol(IPPROTO_ICMPV6).payload(icmp(136)).build(), XDPFWD_INGRESS_CLIENT_NEIGHBOR},
      {"v6 extensions", ipv6_with_extensions("fd00:18::10", {IPPROTO_HOPOPTS, IPPROTO_DSTOPTS}), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"v6 later fragment", ipv6_with_extensions("fd00:18::10", {IPPROTO_FRAGMENT}, 0x100), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"udp4 elsewhere", Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.2").udp(1, 53).build(), XDPFWD_INGRESS_CLIENT_OTHER},
      {"udp6 elsewhere", Eth(kB, kA).ipv6("fd00:18::1", "fd00:18::2").udp(1, 53).build(), XDPFWD_INGRESS_CLIENT_OTHER},
      {"v4-mapped v6", Eth(kB, kA).ipv6("fd00:18::1", "::ffff:198.18.0.10").udp(1, 53).build(), XDPFWD_INGRESS_CLIENT_OTHER},
      {"arp", Eth(kB, kA).arp_request(kA, "198.18.0.1", "198.18.0.10").build(), XDPFWD_INGRESS_CLIENT_OTHER},
      {"truncated ipv4", [] { Bytes f = Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").udp(1, 53).build(); f.resize(30); return f; }(), XDPFWD_INGRESS_CLIENT_OTHER},
      {"truncated tcp", [] { Bytes f = Eth(kB, kA).ipv4("198.18.0.1", "198.18.0.10").tcp(1, 443).build(); f.resize(36); return f; }(), XDPFWD_INGRESS_CLIENT_NO_SOCKET},
      {"ethernet only", Eth(kB, kA).ether_type(xdpfwd::testing::kEtherTypeIpv4).build(), XDPFWD_INGRESS_CLIENT_OTHER},
  };
  for (const auto& c : cases) {
    expect(xdp_.client_prog_fd(), c);
    expect_tc(xdp_.client_tc_prog_fd(), c, XDPFWD_INGRESS_CLIENT_NO_SOCKET, XDPFWD_INGRESS_CLIENT_PACKET_SOCKET);
  }
}

TEST_F(IngressXskProgram, OverlayVerdicts) {
  const auto to_ovl = [] { return Eth(kOvl, kA); };
  const std::vector<Case> cases = {
      {"udp4 nat", to_ovl().ipv4("10.201.0.11", "10.201.0.1").udp(53, 40000).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"tcp4 nat max", to_ovl().ipv4("10.201.0.11", "10.201.0.1").tcp(80, 40999).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"udp6 nat", to_ovl().ipv6("fd00:201::11", "fd00:201::1").udp(53, 40500).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"echo reply nat", to_ovl().ipv4("10.201.0.11", "10.201.0.1").ip_protocol(IPPROTO_ICMP).payload(icmp(0, 40001)).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"echo6 reply nat", to_ovl().ipv6("fd00:201::11", "fd00:201::1").ip_protocol(IPPROTO_ICMPV6).payload(icmp(129, 40001)).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"dest unreachable", to_ovl().ipv4("10.201.0.11", "10.201.0.1").ip_protocol(IPPROTO_ICMP).payload(icmp(3)).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"time exceeded", to_ovl().ipv4("10.201.0.11", "10.201.0.1").ip_protocol(IPPROTO_ICMP).payload(icmp(11)).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"packet too big", to_ovl().ipv6("fd00:201::11", "fd00:201::1").ip_protocol(IPPROTO_ICMPV6).payload(icmp(2)).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"fragment", to_ovl().ipv4("10.201.0.11", "10.201.0.1").ipv4_frag(200).payload("rest").build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"transit4", to_ovl().ipv4("10.201.0.11", "198.18.0.1").udp(53, 1234).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"transit6", to_ovl().ipv6("fd00:201::11", "fd00:18::1").tcp(80, 1234).build(), XDPFWD_INGRESS_OVERLAY_NO_SOCKET},
      {"udp below nat", to_ovl().ipv4("10.201.0.11", "10.201.0.1").udp(53, 39999).build(), XDPFWD_INGRESS_OVERLAY_LOCAL},
      {"tcp above nat", to_ovl().ipv4("10.201.0.11", "10.201.0.1").tcp(80, 41000).build(), XDPFWD_INGRESS_OVERLAY_LOCAL},
      {"echo request", to_ovl().ipv4("10.201.0.11", "10.201.0.1").icmp_echo(40001, 1).build(), XDPFWD_INGRESS_OVERLAY_LOCAL},
      {"echo reply other id", to_ovl().ipv4("10.201.0.11", "10.201.0.1").ip_protocol(IPPROTO_ICMP).payload(icmp(0, 7)).build(), XDPFWD_INGRESS_OVERLAY_LOCAL},
      {"neighbour solicitation", to_ovl().ipv6("fd00:201::11", "fd00:201::1").ip_protocol(IPPROTO_ICMPV6).payload(icmp(135)).build(), XDPFWD_INGRESS_OVERLAY_LOCAL},
      {"arp", Eth({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kA).arp_request(kA, "10.201.0.11", "10.201.0.1").build(), XDPFWD_INGRESS_OVERLAY_OTHER},
      {"multicast ip", to_ovl().ipv4("10.201.0.11", "224.0.0.18").udp(1, 1).build(), XDPFWD_INGRESS_OVERLAY_OTHER},
      {"broadcast mac", Eth({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kA).ipv4("10.201.0.11", "10.201.0.255").udp(1, 40000).build(), XDPFWD_INGRESS_OVERLAY_OTHER},
      {"other mac", Eth(kB, kA).ipv4("10.201.0.11", "198.18.0.1").udp(1, 1).build(), XDPFWD_INGRESS_OVERLAY_OTHER},
      {"link-local6", to_ovl().ipv6("fd00:201::11", "fe80::1").udp(1, 1).build(), XDPFWD_INGRESS_OVERLAY_OTHER},
      {"multicast6", to_ovl().ipv6("fd00:201::11", "ff02::1").udp(1, 1).build(), XDPFWD_INGRESS_OVERLAY_OTHER},
      {"loopback4", to_ovl().ipv4("10.201.0.11", "127.0.0.1").udp(1, 1).build(), XDPFWD_INGRESS_OVERLAY_OTHER},
      {"truncated", Bytes(20, 0), XDPFWD_INGRESS_OVERLAY_OTHER},
  };
  for (const auto& c : cases) {
    expect(xdp_.overlay_prog_fd(), c);
    expect_tc(xdp_.overlay_tc_prog_fd(), c, XDPFWD_INGRESS_OVERLAY_NO_SOCKET, XDPFWD_INGRESS_OVERLAY_PACKET_SOCKET);
  }
}

TEST_F(IngressXskProgram, NoNatRangeUntilOneIsSet) {
  IngressXdp fresh;
  fresh.add_overlay_ip(make_address("10.201.0.1"));
  const Bytes frame = Eth(kOvl, kA).ipv4("10.201.0.11", "10.201.0.1").udp(53, 0).build();
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<std::uint32_t>(frame.size()), .repeat = 1);
  ASSERT_EQ(bpf_prog_test_run_opts(fresh.overlay_prog_fd(), &opts), 0);
  EXPECT_EQ(fresh.counters()[XDPFWD_INGRESS_OVERLAY_LOCAL], 1u);
}

} // namespace
} // namespace xdpfwd::ingress::xsk
