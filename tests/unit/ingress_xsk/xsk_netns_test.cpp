// The ingress AF_XDP data path with real frames, in a private network namespace per test (see
// netns_lab.hpp): what reaches the AF_XDP sockets, what the kernel gets, transmission, shared
// UMEM forwarding between eth0 (veth, native XDP) and ovl0 (VXLAN, generic XDP). Needs root.
#include "ingress_pass_bpf.skel.h"
#include "ingress_xdp.hpp"
#include "netns_lab.hpp"
#include "poller.hpp"
#include "xsk_socket.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <netinet/in.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace xdpfwd::ingress::xsk {
namespace {

using boost::asio::ip::make_address;
using xdpfwd::testing::Bytes;
using xdpfwd::testing::Eth;
using xdpfwd::testing::kBroadcast;
using xdpfwd::testing::kEth0Mac;
using xdpfwd::testing::kOvlMac;
using xdpfwd::testing::kRepMac;
using xdpfwd::testing::kWait;
using xdpfwd::testing::kXhMac;
using xdpfwd::testing::PacketBuilder;
using xdpfwd::testing::PacketSocket;
using xdpfwd::testing::UdpSocket;
using xdpfwd::testing::contains;
using xdpfwd::testing::ifindex;

constexpr std::uint16_t kNatMin = 40000;
constexpr std::uint16_t kNatMax = 40999;
constexpr std::size_t kBatch = 64;

std::string marker(const std::string& prefix, std::size_t n) { return prefix + "#" + std::to_string(n) + "#"; }

// UMEMs small enough for many tests in a row.
UmemConfig small_umem() { return {.frame_count = 4096, .frame_size = 4096, .frame_headroom = 0, .fill_size = 1024, .comp_size = 1024}; }

// Up to count frames from xsk, copied out and recycled, waiting up to kWait for them.
std::vector<Bytes> receive_frames(XskSocket& xsk, std::size_t count) {
  std::vector<Bytes> frames;
  Poller poller;
  poller.add(xsk.fd());
  std::array<Frame, kBatch> batch;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (frames.size() < count && std::chrono::steady_clock::now() < deadline) {
    const std::size_t got = xsk.receive(std::span(batch).first(std::min(kBatch, count - frames.size())));
    if (got == 0) {
      poller.wait(std::chrono::milliseconds(50));
      continue;
    }
    for (std::size_t i = 0; i < got; ++i) frames.emplace_back(xsk.data(batch[i]), xsk.data(batch[i]) + batch[i].len);
    xsk.recycle(std::span(batch).first(got));
  }
  return frames;
}

// A frame with nothing else to come: whether xsk receives one within a short wait.
bool xsk_empty(XskSocket& xsk) {
  Poller poller;
  poller.add(xsk.fd());
  poller.wait(std::chrono::milliseconds(100));
  Frame frame;
  const std::size_t got = xsk.receive(std::span(&frame, 1));
  xsk.recycle(std::span(&frame, got));
  return got == 0;
}

std::uint16_t read16(const Bytes& frame, std::size_t offset) {
  return static_cast<std::uint16_t>(frame[offset] << 8 | frame[offset + 1]);
}

class IngressXskNetns : public ::testing::Test {
protected:
  void SetUp() override {
    lab_ = xdpfwd::testing::enter_private_netns_with_lab();
    ASSERT_NE(xdpfwd::testing::netns_inode(), xdpfwd::testing::kStartNetns);

    // What the daemon leaves on eth0 before the ingress starts.
    pass_.reset(ingress_pass_bpf__open_and_load());
    ASSERT_TRUE(pass_);
    ASSERT_EQ(bpf_xdp_attach(ifindex("eth0"), bpf_program__fd(pass_->progs.xdpfwd_ingress_pass), XDP_FLAGS_DRV_MODE,
                             nullptr),
              0);

    xdp_.emplace();
    xdp_->add_service_ip(make_address("198.18.0.10"));
    xdp_->add_service_ip(make_address("fd00:18::10"));
    xdp_->add_overlay_ip(make_address("10.201.0.1"));
    xdp_->add_overlay_ip(make_address("fd00:201::1"));
    xdp_->add_stack_tcp_port(443);
    xdp_->set_nat_port_range(kNatMin, kNatMax);
    xdp_->attach_client(ifindex("eth0"));
    xdp_->attach_overlay(ifindex("ovl0"));
    xh_.emplace("xh0");
    lab_.in_replica([&] { rep_.emplace("rep0"); });
  }

  void TearDown() override {
    xdp_.reset();
    pass_.reset();
  }

  static PacketBuilder from_client() { return Eth(kEth0Mac, kXhMac); }
  static PacketBuilder from_replica() { return Eth(kOvlMac, kRepMac); }

  std::uint64_t counter(int which) const { return xdp_->counters()[static_cast<std::size_t>(which)]; }

  struct PassDeleter {
    void operator()(ingress_pass_bpf* skeleton) const { ingress_pass_bpf__destroy(skeleton); }
  };
  std::unique_ptr<ingress_pass_bpf, PassDeleter> pass_;
  std::optional<IngressXdp> xdp_;
  xdpfwd::testing::Lab lab_;
  std::optional<PacketSocket> xh_, rep_;
};

TEST_F(IngressXskNetns, ServiceFramesReachTheClientSocket) {
  XskSocket xsk(Umem::create(small_umem()), "eth0", 0, xdp_->client_xsks_fd());
  const std::vector<Bytes> sent = {
      from_client().ipv4("198.18.0.1", "198.18.0.10").udp(40000, 53).payload("udp4").build(),
      from_client().ipv6("fd00:18::1", "fd00:18::10").udp(40000, 53).payload("udp6").build(),
      from_client().ipv4("198.18.0.1", "198.18.0.10").tcp(40000, 80).payload("tcp80").build(),
      from_client().ipv4("198.18.0.1", "198.18.0.10").icmp_echo(7, 1).payload("ping").build(),
  };
  for (const auto& frame : sent) xh_->send(frame);
  const auto received = receive_frames(xsk, sent.size());
  ASSERT_EQ(received.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(received[i], sent[i]) << "frame " << i;
  EXPECT_EQ(counter(XDPFWD_INGRESS_CLIENT_REDIRECTED), sent.size());
}

TEST_F(IngressXskNetns, OtherAddressesAndArpReachTheKernel) {
  XskSocket xsk(Umem::create(small_umem()), "eth0", 0, xdp_->client_xsks_fd());
  UdpSocket kernel("198.18.0.2", 5353);
  xh_->send(from_client().ipv4("198.18.0.1", "198.18.0.2").udp(40000, 5353).payload("to-eth0-address").build());
  EXPECT_EQ(kernel.receive(), "to-eth0-address");

  // ARP for the service IP: the kernel answers it.
  xh_->send(Eth(kBroadcast, kXhMac).arp_request(kXhMac, "198.18.0.1", "198.18.0.10").build());
  const auto reply = xh_->receive([](const Bytes& f) {
    return read16(f, 12) == xdpfwd::testing::kEtherTypeArp && read16(f, 20) == 2 /* reply */;
  });
  ASSERT_TRUE(reply);
  EXPECT_TRUE(std::equal(kEth0Mac.begin(), kEth0Mac.end(), reply->begin() + 22)); // sender MAC

  EXPECT_TRUE(xsk_empty(xsk));
  EXPECT_EQ(counter(XDPFWD_INGRESS_CLIENT_REDIRECTED), 0u);
  EXPECT_GE(counter(XDPFWD_INGRESS_CLIENT_OTHER), 2u);
}

TEST_F(IngressXskNetns, StackTcpPortsReachTheKernel) {
  XskSocket xsk(Umem::create(small_umem()), "eth0", 0, xdp_->client_xsks_fd());
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(443);
  ::inet_pton(AF_INET, "198.18.0.10", &address.sin_addr);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);

  xh_->send(from_client().ipv4("198.18.0.1", "198.18.0.10").tcp(41000, 443).build());
  const auto syn_ack = xh_->receive([](const Bytes& f) {
    return read16(f, 12) == xdpfwd::testing::kEtherTypeIpv4 && f[23] == IPPROTO_TCP && read16(f, 34) == 443 &&
           (f[47] & 0x12) == 0x12;
  });
  EXPECT_TRUE(syn_ack) << "the kernel did not answer the SYN to a stack port";
  EXPECT_EQ(counter(XDPFWD_INGRESS_CLIENT_STACK_PORT), 1u);

  // Another TCP port of the service IP goes to the socket.
  const Bytes to_80 = from_client().ipv4("198.18.0.1", "198.18.0.10").tcp(41000, 80).build();
  xh_->send(to_80);
  const auto received = receive_frames(xsk, 1);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0], to_80);
}

TEST_F(IngressXskNetns, BatchesOfServiceFramesAllArrive) {
  XskSocket xsk(Umem::create(small_umem()), "eth0", 0, xdp_->client_xsks_fd());
  constexpr std::size_t kFrames = 1024;
  std::size_t next = 0;
  for (std::size_t burst = 0; burst < kFrames / kBatch; ++burst) {
    for (std::size_t i = 0; i < kBatch; ++i)
      xh_->send(from_client().ipv4("198.18.0.1", "198.18.0.10").udp(40000, 53).payload(marker("b", burst * kBatch + i)).build());
    for (const auto& frame : receive_frames(xsk, kBatch)) {
      ASSERT_TRUE(contains(frame, marker("b", next))) << "frame " << next << " out of order or missing";
      ++next;
    }
  }
  EXPECT_EQ(next, kFrames);
  EXPECT_EQ(xsk.statistics().rx_dropped, 0u);
  EXPECT_EQ(xsk.umem().free_frames() + 1024 /* fill ring */, 4096u);
}

TEST_F(IngressXskNetns, TransmittedFramesReachThePeer) {
  XskSocket xsk(Umem::create(small_umem()), "eth0", 0, xdp_->client_xsks_fd());
  Umem& umem = xsk.umem();
  constexpr std::size_t kFrames = 1024;
  std::array<Frame, kBatch> batch;
  for (std::size_t burst = 0; burst < kFrames / kBatch; ++burst) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      const Bytes frame =
          Eth(kXhMac, kEth0Mac).ipv4("198.18.0.10", "198.18.0.1").udp(53, 40000).payload(marker("tx", burst * kBatch + i)).build();
      const std::uint64_t addr = umem.allocate();
      ASSERT_NE(addr, Umem::kNoFrame);
      std::memcpy(umem.data(addr), frame.data(), frame.size());
      batch[i] = {addr, static_cast<std::uint32_t>(frame.size())};
    }
    std::size_t queued = 0;
    while (queued < kBatch) {
      queued += xsk.transmit(std::span(batch).subspan(queued));
      xsk.flush();
    }
    for (std::size_t i = 0; i < kBatch; ++i) {
      const std::string expected = marker("tx", burst * kBatch + i);
      ASSERT_TRUE(xh_->receive([&](const Bytes& f) { return contains(f, expected); })) << expected;
    }
  }
  for (int i = 0; i < 100 && xsk.tx_in_flight() != 0; ++i) xsk.flush();
  EXPECT_EQ(xsk.tx_in_flight(), 0u);
  EXPECT_EQ(xsk.tx_kick_errors(), 0u);
}

TEST_F(IngressXskNetns, WithoutSocketServiceFramesFallBackToTheKernel) {
  UdpSocket kernel("198.18.0.10", 53);
  {
    XskSocket xsk(Umem::create(small_umem()), "eth0", 0, xdp_->client_xsks_fd());
    xh_->send(from_client().ipv4("198.18.0.1", "198.18.0.10").udp(40000, 53).payload("while-bound").build());
    ASSERT_EQ(receive_frames(xsk, 1).size(), 1u);
  } // socket and UMEM gone: the kernel drops the XSKMAP entry
  xh_->send(from_client().ipv4("198.18.0.1", "198.18.0.10").udp(40000, 53).payload("after-close").build());
  EXPECT_EQ(kernel.receive(), "after-close");
  EXPECT_EQ(counter(XDPFWD_INGRESS_CLIENT_NO_SOCKET), 1u);
}

TEST_F(IngressXskNetns, OverlayRedirectsNatRangeRepliesOnly) {
  XskSocket xsk(Umem::create(small_umem()), "ovl0", 0, xdp_->overlay_xsks_fd());
  UdpSocket health("10.201.0.1", 5000);
  UdpSocket health6("fd00:201::1", 5000);

  const auto icmp = [](std::uint8_t type, std::uint8_t code, std::uint16_t id, std::string_view text) {
    Bytes body = {type, code, 0, 0, static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0, 1};
    body.insert(body.end(), text.begin(), text.end());
    return body;
  };
  const std::vector<Bytes> redirected = {
      from_replica().ipv4("10.201.0.11", "10.201.0.1").udp(53, 40001).payload("nat-udp4").build(),
      from_replica().ipv4("10.201.0.11", "10.201.0.1").tcp(80, 40999, PacketBuilder::kTcpSyn | PacketBuilder::kTcpAck).payload("nat-tcp4").build(),
      from_replica().ipv6("fd00:201::11", "fd00:201::1").udp(53, 40500).payload("nat-udp6").build(),
      from_replica().ipv4("10.201.0.11", "10.201.0.1").ip_protocol(IPPROTO_ICMP).payload(icmp(0, 0, 40010, "echo-reply")).build(),
      from_replica().ipv4("10.201.0.11", "10.201.0.1").ip_protocol(IPPROTO_ICMP).payload(icmp(3, 4, 0, "frag-needed")).build(),
      from_replica().ipv6("fd00:201::11", "fd00:201::1").ip_protocol(IPPROTO_ICMPV6).payload(icmp(2, 0, 0, "too-big")).build(),
      // client_ip preserve: a reply to a client, routed via the ingress
      from_replica().ipv4("10.201.0.11", "198.18.0.1").udp(53, 40000).payload("transit4").build(),
      from_replica().ipv6("fd00:201::11", "fd00:18::1").udp(53, 40000).payload("transit6").build(),
  };
  for (const auto& frame : redirected) rep_->send(frame);
  const auto received = receive_frames(xsk, redirected.size());
  ASSERT_EQ(received.size(), redirected.size());
  for (std::size_t i = 0; i < redirected.size(); ++i) EXPECT_EQ(received[i], redirected[i]) << "frame " << i;
  EXPECT_EQ(counter(XDPFWD_INGRESS_OVERLAY_REPLY), 6u);
  EXPECT_EQ(counter(XDPFWD_INGRESS_OVERLAY_TRANSIT), 2u);

  // Outside the NAT range (health checks): the kernel.
  rep_->send(from_replica().ipv4("10.201.0.11", "10.201.0.1").udp(53, 5000).payload("health4").build());
  EXPECT_EQ(health.receive(), "health4");
  rep_->send(from_replica().ipv6("fd00:201::11", "fd00:201::1").udp(53, 5000).payload("health6").build());
  EXPECT_EQ(health6.receive(), "health6");
  // Not for us: broadcast, multicast, another MAC.
  rep_->send(Eth(kBroadcast, kRepMac).ipv4("10.201.0.11", "10.201.0.255").udp(53, 40001).payload("bcast").build());
  rep_->send(from_replica().ipv4("10.201.0.11", "224.0.0.5").udp(53, 40001).payload("mcast").build());
  rep_->send(Eth(xdpfwd::testing::Mac{0x02, 0, 0, 0, 9, 9}, kRepMac).ipv4("10.201.0.11", "198.18.0.1").udp(53, 1).build());
  EXPECT_TRUE(xsk_empty(xsk));
  EXPECT_EQ(counter(XDPFWD_INGRESS_OVERLAY_LOCAL), 2u);
  EXPECT_GE(counter(XDPFWD_INGRESS_OVERLAY_OTHER), 3u);

  // The range is changed at run time.
  xdp_->set_nat_port_range(5000, 5000);
  rep_->send(from_replica().ipv4("10.201.0.11", "10.201.0.1").udp(53, 5000).payload("now-nat").build());
  const auto now_nat = receive_frames(xsk, 1);
  ASSERT_EQ(now_nat.size(), 1u);
  EXPECT_TRUE(contains(now_nat[0], "now-nat"));
}

TEST_F(IngressXskNetns, OverlayTransmitReachesTheReplicaSide) {
  XskSocket xsk(Umem::create(small_umem()), "ovl0", 0, xdp_->overlay_xsks_fd());
  const Bytes frame = Eth(kRepMac, kOvlMac).ipv4("10.201.0.1", "10.201.0.11").udp(40001, 53).payload("to-replica").build();
  const std::uint64_t addr = xsk.umem().allocate();
  std::memcpy(xsk.umem().data(addr), frame.data(), frame.size());
  const Frame out{addr, static_cast<std::uint32_t>(frame.size())};
  ASSERT_EQ(xsk.transmit(std::span(&out, 1)), 1u);
  const auto received = rep_->receive([](const Bytes& f) { return contains(f, "to-replica"); });
  ASSERT_TRUE(received);
  EXPECT_EQ(*received, frame);
}

// A bind that fails because the queue is taken (EBUSY, as when a restarted inspector meets a
// socket still held) leaves the UMEM whole: its rings are unmapped once, by the UMEM, and a later
// socket on it receives frames. (libxdp unmaps a first socket's rings on that failure unless they
// came in the UMEM's own structs: the rings were then used after munmap and unmapped twice.)
TEST_F(IngressXskNetns, UmemOutlivesAFailedBindAndServesTheNextSocket) {
  auto umem = Umem::create(small_umem());
  {
    XskSocket holder(Umem::create(small_umem()), "ovl0", 0, -1);
    try {
      XskSocket taken(umem, "ovl0", 0, -1);
      FAIL() << "a second socket bound a taken queue";
    } catch (const std::system_error& error) {
      EXPECT_EQ(error.code().value(), EBUSY) << error.what();
    }
  }
  XskSocket xsk(umem, "eth0", 0, xdp_->client_xsks_fd());
  const Bytes frame = from_client().ipv4("198.18.0.1", "198.18.0.10").udp(40000, 53).payload("after EBUSY").build();
  xh_->send(frame);
  const auto received = receive_frames(xsk, 1);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0], frame);
}

// eth0 and ovl0 sockets on one UMEM: frames move between them without a copy.
TEST_F(IngressXskNetns, SharedUmemForwardsBothWays) {
  auto umem = Umem::create({.frame_count = 8192, .frame_size = 4096, .frame_headroom = 0, .fill_size = 2048, .comp_size = 2048});
  XskSocket client(umem, "eth0", 0, xdp_->client_xsks_fd());
  XskSocket overlay(umem, "ovl0", 0, xdp_->overlay_xsks_fd());
  umem.reset();

  // Receives a batch on from, rewrites the MACs in place, transmits it on to.
  const auto forward = [](XskSocket& from, XskSocket& to, const xdpfwd::testing::Mac& dst, const xdpfwd::testing::Mac& src) {
    std::array<Frame, kBatch> batch;
    Poller poller;
    poller.add(from.fd());
    std::size_t done = 0;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (done < kBatch && std::chrono::steady_clock::now() < deadline) {
      const std::size_t got = from.receive(std::span(batch).first(kBatch - done));
      if (got == 0) {
        poller.wait(std::chrono::milliseconds(50));
        continue;
      }
      for (std::size_t i = 0; i < got; ++i) {
        std::uint8_t* data = from.data(batch[i]);
        std::memcpy(data, dst.data(), 6);
        std::memcpy(data + 6, src.data(), 6);
      }
      std::size_t queued = 0;
      while (queued < got) {
        queued += to.transmit(std::span(batch).subspan(queued, got - queued));
        to.flush();
      }
      done += got;
    }
    return done;
  };

  constexpr std::size_t kFrames = 1024;
  for (std::size_t burst = 0; burst < kFrames / kBatch; ++burst) {
    for (std::size_t i = 0; i < kBatch; ++i)
      xh_->send(from_client().ipv4("198.18.0.1", "198.18.0.10").udp(40000, 53).payload(marker("c2r", burst * kBatch + i)).build());
    ASSERT_EQ(forward(client, overlay, kRepMac, kOvlMac), kBatch);
    for (std::size_t i = 0; i < kBatch; ++i) {
      const std::string expected = marker("c2r", burst * kBatch + i);
      ASSERT_TRUE(rep_->receive([&](const Bytes& f) { return contains(f, expected); })) << expected;
    }
  }
  for (std::size_t burst = 0; burst < kFrames / kBatch; ++burst) {
    for (std::size_t i = 0; i < kBatch; ++i)
      rep_->send(from_replica().ipv4("10.201.0.11", "10.201.0.1").udp(53, 40001).payload(marker("r2c", burst * kBatch + i)).build());
    ASSERT_EQ(forward(overlay, client, kXhMac, kEth0Mac), kBatch);
    for (std::size_t i = 0; i < kBatch; ++i) {
      const std::string expected = marker("r2c", burst * kBatch + i);
      ASSERT_TRUE(xh_->receive([&](const Bytes& f) { return contains(f, expected); })) << expected;
    }
  }
  for (int i = 0; i < 100 && (client.tx_in_flight() != 0 || overlay.tx_in_flight() != 0); ++i) {
    client.flush();
    overlay.flush();
  }
  EXPECT_EQ(client.tx_in_flight() + overlay.tx_in_flight(), 0u);
  // Every frame is back: free, or in one of the two fill rings.
  EXPECT_EQ(client.umem().free_frames(), 8192u - 2 * 2048u);
}

// Frames/s of an eth0 -> ovl0 forward loop, fed by a packet-socket generator thread on xh0, with
// one shared UMEM (frames move between the sockets) or one UMEM per socket (memcpy). Prints the
// figures, asserts nothing about them; runs only with XDPFWD_XSK_BENCH=1.
TEST_F(IngressXskNetns, ForwardLoopThroughput) {
  if (std::getenv("XDPFWD_XSK_BENCH") == nullptr) GTEST_SKIP() << "set XDPFWD_XSK_BENCH=1 to measure";
  const char* size = std::getenv("XDPFWD_XSK_BENCH_FRAME"); // bytes, default 60
  const Bytes frame = from_client().ipv4("198.18.0.1", "198.18.0.10").udp(40000, 53)
                          .pad_to(size != nullptr ? std::strtoul(size, nullptr, 10) : 60).build();
  const auto seconds = std::chrono::seconds(3);

  for (const bool shared : {true, false}) {
    const UmemConfig config{.frame_count = 8192, .frame_size = 4096, .frame_headroom = 0, .fill_size = 2048, .comp_size = 2048};
    auto client_umem = Umem::create(config);
    auto overlay_umem = shared ? client_umem : Umem::create(config);
    XskSocket client(client_umem, "eth0", 0, xdp_->client_xsks_fd());
    XskSocket overlay(overlay_umem, "ovl0", 0, xdp_->overlay_xsks_fd());

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> generated{0};
    std::thread generator([&] { // a thread of the ingress netns, like its creator
      xdpfwd::testing::PacketSocket out("xh0");
      const int bypass = 1;
      ::setsockopt(out.fd(), SOL_PACKET, PACKET_QDISC_BYPASS, &bypass, sizeof(bypass));
      std::array<iovec, 64> iov;
      std::array<mmsghdr, 64> msgs{};
      for (std::size_t i = 0; i < msgs.size(); ++i) {
        iov[i] = {const_cast<std::uint8_t*>(frame.data()), frame.size()};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      while (!stop.load(std::memory_order_relaxed)) {
        const int sent = ::sendmmsg(out.fd(), msgs.data(), msgs.size(), 0);
        if (sent > 0) generated += static_cast<std::uint64_t>(sent);
      }
    });

    std::array<Frame, kBatch> batch, copies;
    Poller poller;
    poller.add(client.fd());
    std::uint64_t forwarded = 0, dropped = 0;
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < seconds) {
      const std::size_t got = client.receive(batch);
      if (got == 0) {
        overlay.flush();
        poller.wait(std::chrono::milliseconds(1));
        continue;
      }
      std::span<Frame> out = std::span(batch).first(got);
      if (!shared) {
        std::size_t n = 0;
        for (; n < got; ++n) {
          const std::uint64_t addr = overlay_umem->allocate();
          if (addr == Umem::kNoFrame) break;
          std::memcpy(overlay_umem->data(addr), client.data(batch[n]), batch[n].len);
          copies[n] = {addr, batch[n].len};
        }
        client.recycle(out);
        out = std::span(copies).first(n);
        dropped += got - n;
      }
      for (Frame& f : out) {
        std::uint8_t* data = overlay.data(f);
        std::memcpy(data, kRepMac.data(), 6);
        std::memcpy(data + 6, kOvlMac.data(), 6);
      }
      const std::size_t queued = overlay.transmit(out);
      overlay.recycle(out.subspan(queued));
      forwarded += queued;
      dropped += out.size() - queued;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stop = true;
    generator.join();
    for (int i = 0; i < 100 && overlay.tx_in_flight() != 0; ++i) overlay.flush();
    const auto stats = client.statistics();
    std::printf("%zu-byte frames, %s UMEM: forwarded %.0f frames/s (generated %.0f/s, tx ring full %llu, eth0 rx dropped %llu, "
                "rx ring full %llu, fill ring empty %llu)\n",
                frame.size(), shared ? "shared" : "separate+memcpy", forwarded / elapsed, generated.load() / elapsed,
                static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(stats.rx_dropped),
                static_cast<unsigned long long>(stats.rx_ring_full),
                static_cast<unsigned long long>(stats.rx_fill_ring_empty_descs));
    EXPECT_GT(forwarded, 0u);
  }
}

TEST_F(IngressXskNetns, DestructionRestoresThePassThroughProgram) {
  bpf_prog_info info{};
  std::uint32_t size = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(bpf_program__fd(pass_->progs.xdpfwd_ingress_pass), &info, &size), 0);
  std::uint32_t attached = 0;
  ASSERT_EQ(bpf_xdp_query_id(ifindex("eth0"), XDP_FLAGS_DRV_MODE, &attached), 0);
  EXPECT_NE(attached, info.id);
  ASSERT_EQ(bpf_xdp_query_id(ifindex("ovl0"), XDP_FLAGS_SKB_MODE, &attached), 0);
  EXPECT_NE(attached, 0u);

  xdp_.reset();
  ASSERT_EQ(bpf_xdp_query_id(ifindex("eth0"), XDP_FLAGS_DRV_MODE, &attached), 0);
  EXPECT_EQ(attached, info.id);
  ASSERT_EQ(bpf_xdp_query_id(ifindex("ovl0"), XDP_FLAGS_SKB_MODE, &attached), 0);
  EXPECT_EQ(attached, 0u);
}

} // namespace
} // namespace xdpfwd::ingress::xsk
