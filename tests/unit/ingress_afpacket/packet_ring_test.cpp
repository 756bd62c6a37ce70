// PacketRx and PacketTx on the veth of the lab (netns_lab.hpp): frames in and out in order
// across ring wraps, the mark filter with the ingress's tc program (the kernel's stack does not
// get what the inspector takes), full rings and oversized frames counted. Needs root.
#include "ingress_xdp.hpp"
#include "netns_lab.hpp"
#include "packet_rx.hpp"
#include "packet_tx.hpp"

#include <gtest/gtest.h>
#include <linux/if_ether.h>

#include <array>
#include <optional>
#include <thread>
#include <vector>

namespace xdpfwd::ingress::afpacket {
namespace {

using boost::asio::ip::make_address;
using xdpfwd::testing::Bytes;
using xdpfwd::testing::Eth;
using xdpfwd::testing::kEth0Mac;
using xdpfwd::testing::kWait;
using xdpfwd::testing::kXhMac;
using xdpfwd::testing::PacketSocket;
using xdpfwd::testing::UdpSocket;
using xdpfwd::testing::contains;
using xdpfwd::testing::ifindex;

constexpr RingConfig kSmallRing{.frame_size = 4096, .frame_count = 16};

Bytes to_address(const std::string& address, const std::string& payload) {
  const bool v6 = address.find(':') != std::string::npos;
  auto frame = Eth(kEth0Mac, kXhMac);
  if (v6) frame.ipv6("fd00:18::1", address);
  else frame.ipv4("198.18.0.1", address);
  return frame.udp(40000, 53).payload(payload).build();
}

// What is not to come: waited for this long.
constexpr auto kQuiet = std::chrono::milliseconds(200);

std::string marker(std::size_t n) { return "#" + std::to_string(n) + "#"; }

// Up to count frames from rx, copied out, waiting up to timeout; batch: frames per receive().
std::vector<Bytes> receive_frames(PacketRx& rx, std::size_t count, std::size_t batch = 8,
                                  std::chrono::milliseconds timeout = kWait) {
  std::vector<Bytes> frames;
  std::array<RxFrame, 64> ready;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (frames.size() < count && std::chrono::steady_clock::now() < deadline) {
    const std::size_t got = rx.receive(std::span(ready).first(std::min(batch, count - frames.size())));
    for (std::size_t i = 0; i < got; ++i) frames.emplace_back(ready[i].data, ready[i].data + ready[i].len);
    rx.release();
    if (got == 0) xdpfwd::testing::wait_readable(rx.fd(), std::chrono::milliseconds(50));
  }
  return frames;
}

class PacketRingNetns : public ::testing::Test {
protected:
  void SetUp() override {
    lab_ = xdpfwd::testing::enter_private_netns_with_lab();
    ASSERT_NE(xdpfwd::testing::netns_inode(), xdpfwd::testing::kStartNetns);
    xh_.emplace("xh0");
  }

  // The inspector's programs on eth0 as the AF_PACKET fallback runs them: XDP (no AF_XDP
  // socket: passes) and the tc twin that marks frames to the service IPs.
  void attach_ingress_programs() {
    xdp_.emplace();
    xdp_->add_service_ip(make_address("198.18.0.10"));
    xdp_->add_service_ip(make_address("fd00:18::10"));
    xdp_->attach_client(ifindex("eth0"));
    xdp_->attach_client_tc(ifindex("eth0"));
  }

  void TearDown() override { xdp_.reset(); }

  xdpfwd::testing::Lab lab_;
  std::optional<PacketSocket> xh_;
  std::optional<xsk::IngressXdp> xdp_;
};

TEST_F(PacketRingNetns, MarkedFramesReachTheRingsAndNotTheKernel) {
  attach_ingress_programs();
  PacketRx rx4(ifindex("eth0"), ETH_P_IP, XDPFWD_INGRESS_INSPECTOR_MARK, kSmallRing);
  PacketRx rx6(ifindex("eth0"), ETH_P_IPV6, XDPFWD_INGRESS_INSPECTOR_MARK, kSmallRing);
  UdpSocket kernel4("198.18.0.10", 53);
  UdpSocket kernel6("fd00:18::10", 53);
  UdpSocket other("198.18.0.2", 53);

  const Bytes service4 = to_address("198.18.0.10", "service4");
  const Bytes service6 = to_address("fd00:18::10", "service6");
  xh_->send(service4);
  xh_->send(service6);
  xh_->send(to_address("198.18.0.2", "not-a-service"));

  const auto got4 = receive_frames(rx4, 1);
  const auto got6 = receive_frames(rx6, 1);
  ASSERT_EQ(got4.size(), 1u);
  ASSERT_EQ(got6.size(), 1u);
  EXPECT_EQ(got4[0], service4);
  EXPECT_EQ(got6[0], service6);
  EXPECT_EQ(other.receive(), "not-a-service"); // unmarked: the kernel's, and not in rx4
  EXPECT_EQ(kernel4.receive(kQuiet), std::nullopt);
  EXPECT_EQ(kernel6.receive(kQuiet), std::nullopt);
  EXPECT_TRUE(receive_frames(rx4, 1, 1, kQuiet).empty());
  EXPECT_EQ(xdp_->counters()[XDPFWD_INGRESS_CLIENT_PACKET_SOCKET], 2u);
  EXPECT_EQ(xdp_->counters()[XDPFWD_INGRESS_CLIENT_NO_SOCKET], 2u);
}

TEST_F(PacketRingNetns, WithoutTheProgramsNothingIsMarked) {
  PacketRx marked(ifindex("eth0"), ETH_P_IP, XDPFWD_INGRESS_INSPECTOR_MARK, kSmallRing);
  UdpSocket kernel("198.18.0.10", 53);
  xh_->send(to_address("198.18.0.10", "no-program"));
  EXPECT_EQ(kernel.receive(), "no-program");
  EXPECT_TRUE(receive_frames(marked, 1, 1, kQuiet).empty());
}

TEST_F(PacketRingNetns, ReceivedInOrderAcrossRingWraps) {
  PacketRx rx(ifindex("eth0"), ETH_P_IP, std::nullopt, kSmallRing);
  constexpr std::size_t kFrames = 200, kBurst = 10; // bursts under the 16 slots: none dropped
  std::size_t next = 0;
  for (std::size_t burst = 0; burst < kFrames / kBurst; ++burst) {
    for (std::size_t i = 0; i < kBurst; ++i) xh_->send(to_address("198.18.0.2", marker(burst * kBurst + i)));
    for (const Bytes& frame : receive_frames(rx, kBurst, 3))
      ASSERT_TRUE(contains(frame, marker(next++))) << "frame " << next - 1 << " out of order or missing";
  }
  EXPECT_EQ(next, kFrames);
  EXPECT_EQ(rx.statistics().drops, 0u);
  EXPECT_EQ(rx.statistics().packets, kFrames);
}

TEST_F(PacketRingNetns, AFullRingCountsItsDropsAndRecovers) {
  PacketRx rx(ifindex("eth0"), ETH_P_IP, std::nullopt, kSmallRing);
  for (std::size_t i = 0; i < 40; ++i) xh_->send(to_address("198.18.0.2", marker(i)));
  const auto first = receive_frames(rx, 40, 64, kQuiet);
  ASSERT_EQ(first.size(), kSmallRing.frame_count);
  EXPECT_TRUE(contains(first.front(), marker(0)));
  const auto statistics = rx.statistics();
  EXPECT_EQ(statistics.packets, 40u);
  EXPECT_EQ(statistics.drops, 40u - kSmallRing.frame_count);

  xh_->send(to_address("198.18.0.2", "after"));
  const auto after = receive_frames(rx, 1);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(contains(after[0], "after"));
}

TEST_F(PacketRingNetns, FramesLargerThanASlotAreCountedAndSkipped) {
  xdpfwd::testing::sh("ip link set xh0 mtu 9000 && ip link set eth0 mtu 9000");
  PacketRx rx(ifindex("eth0"), ETH_P_IP, std::nullopt, kSmallRing);
  xh_->send(to_address("198.18.0.2", std::string(6000, 'x')));
  xh_->send(to_address("198.18.0.2", "small"));
  const auto got = receive_frames(rx, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(contains(got[0], "small"));
  EXPECT_EQ(rx.truncated(), 1u);
}

TEST_F(PacketRingNetns, SentInOrderAcrossRingWraps) {
  PacketTx tx(ifindex("eth0"), kSmallRing);
  constexpr std::size_t kFrames = 200, kBurst = 10;
  std::size_t received = 0;
  for (std::size_t burst = 0; burst < kFrames / kBurst; ++burst) {
    for (std::size_t i = 0; i < kBurst; ++i) {
      const Bytes frame = Eth(kXhMac, kEth0Mac).ipv4("198.18.0.2", "198.18.0.1").udp(53, 40000)
                              .payload(marker(burst * kBurst + i)).build();
      std::span<std::uint8_t> slot = tx.slot();
      ASSERT_GE(slot.size(), frame.size()) << "ring full at frame " << burst * kBurst + i;
      std::copy(frame.begin(), frame.end(), slot.begin());
      tx.commit(static_cast<std::uint32_t>(frame.size()));
    }
    EXPECT_EQ(tx.pending(), kBurst);
    tx.kick();
    EXPECT_EQ(tx.pending(), 0u);
    for (std::size_t i = 0; i < kBurst; ++i) {
      const auto frame = xh_->receive([](const Bytes& f) { return contains(f, "#"); });
      ASSERT_TRUE(frame) << "frame " << received << " not received";
      ASSERT_TRUE(contains(*frame, marker(received))) << "frame " << received << " out of order";
      ++received;
    }
  }
  EXPECT_EQ(tx.ring_full(), 0u);
  EXPECT_EQ(tx.kick_errors(), 0u);
  EXPECT_EQ(tx.wrong_format(), 0u);
}

TEST_F(PacketRingNetns, AFullTxRingRefusesASlotUntilSent) {
  PacketTx tx(ifindex("eth0"), kSmallRing);
  const Bytes frame = Eth(kXhMac, kEth0Mac).ipv4("198.18.0.2", "198.18.0.1").udp(53, 40000).payload("#q#").build();
  for (std::uint32_t i = 0; i < kSmallRing.frame_count; ++i) {
    std::span<std::uint8_t> slot = tx.slot();
    ASSERT_FALSE(slot.empty());
    std::copy(frame.begin(), frame.end(), slot.begin());
    tx.commit(static_cast<std::uint32_t>(frame.size()));
  }
  EXPECT_TRUE(tx.slot().empty());
  EXPECT_EQ(tx.ring_full(), 1u);
  tx.kick();
  for (std::uint32_t i = 0; i < kSmallRing.frame_count; ++i)
    ASSERT_TRUE(xh_->receive([](const Bytes& f) { return contains(f, "#q#"); })) << "frame " << i;
  // Sent frames' slots come back once their buffers are freed.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (tx.slot().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(tx.slot().empty());
}

} // namespace
} // namespace xdpfwd::ingress::afpacket
