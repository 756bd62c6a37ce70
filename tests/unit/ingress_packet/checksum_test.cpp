#include "checksum.hpp"
#include "frames.hpp"
#include "packet_view.hpp"

#include <gtest/gtest.h>

#include <random>

namespace pkt = xdpfwd::ingress::packet;
namespace csum = xdpfwd::ingress::packet::csum;
using frames::Builder;
using frames::Bytes;

namespace {

Bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) {
    x = static_cast<std::uint8_t>(rng());
  }
  return b;
}

} // namespace

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
  const Bytes data = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(csum::fold(csum::add(0, data)), 0xddf2);
  EXPECT_EQ(csum::compute(data), 0x220d);
}

TEST(Checksum, MatchesReferenceAtEveryLengthAndAlignment) {
  std::mt19937_64 rng(7);
  const Bytes buf = random_bytes(rng, 2100);
  for (std::size_t len = 0; len < 2048; len += (len < 80 ? 1 : 37)) {
    for (std::size_t start = 0; start < 8; ++start) {
      const std::uint8_t* p = buf.data() + start;
      EXPECT_EQ(csum::fold(csum::add(0, p, len)), frames::ref_fold(frames::ref_sum(p, len)))
          << "len " << len << " start " << start;
    }
  }
}

TEST(Checksum, AllOnesDataDoesNotOverflow) {
  const Bytes ones(65536, 0xFF);
  EXPECT_EQ(csum::fold(csum::add(0, ones)), frames::ref_fold(frames::ref_sum(ones.data(), ones.size())));
}

TEST(Checksum, PseudoHeaders) {
  std::mt19937_64 rng(8);
  for (int i = 0; i < 1000; ++i) {
    const Bytes a = random_bytes(rng, 32);
    const auto len = static_cast<std::uint32_t>(rng() % 70000);
    const auto proto = static_cast<std::uint8_t>(rng());
    EXPECT_EQ(csum::fold(csum::pseudo_v4(a.data(), a.data() + 4, proto, len & 0xFFFF)),
              frames::ref_fold(frames::ref_pseudo(a.data(), a.data() + 4, 4, proto, len & 0xFFFF)));
    EXPECT_EQ(csum::fold(csum::pseudo_v6(a.data(), a.data() + 16, proto, len)),
              frames::ref_fold(frames::ref_pseudo(a.data(), a.data() + 16, 6, proto, len)));
  }
}

// Incremental updates against a full recomputation of the changed data.
TEST(Checksum, IncrementalUpdatesMatchRecomputation) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 20000; ++i) {
    Bytes data = random_bytes(rng, 64);
    data[0] = data[1] = 0; // checksum field at 0
    frames::set16(data.data(), csum::compute(data));
    const std::size_t at = 2 + 2 * (rng() % 8); // word boundary, inside the data
    const std::size_t width = std::array<std::size_t, 3>{2, 4, 16}[rng() % 3];
    const Bytes repl = random_bytes(rng, width);
    std::uint16_t c = frames::get16(data.data());
    if (width == 2) {
      c = csum::update16(c, frames::get16(data.data() + at), frames::get16(repl.data()));
    } else if (width == 4) {
      c = csum::update32(c, data.data() + at, repl.data());
    } else {
      c = csum::update128(c, data.data() + at, repl.data());
    }
    std::copy(repl.begin(), repl.end(), data.begin() + static_cast<std::ptrdiff_t>(at));
    EXPECT_TRUE(frames::same_checksum(c, frames::ref_checksum_with_field_zero(data.data(), data.size(), 0, 0)));
    frames::set16(data.data(), c);
    EXPECT_TRUE(csum::verifies(csum::add(0, data)));
  }
}

TEST(Checksum, Ipv4HeaderEveryBitFlipDetected) {
  Bytes f = Builder{}.ipv4_options(Bytes{1, 1, 1, 0}).udp(1, 53).build();
  pkt::PacketView v;
  ASSERT_EQ(pkt::parse_frame(f, v), pkt::ParseStatus::Ok);
  ASSERT_TRUE(csum::ipv4_header_ok(v));
  for (std::size_t byte = 14; byte < 14 + 24; ++byte) {
    for (int b = 0; b < 8; ++b) {
      f[byte] ^= static_cast<std::uint8_t>(1 << b);
      EXPECT_FALSE(csum::ipv4_header_ok(v)) << byte << ":" << b;
      f[byte] ^= static_cast<std::uint8_t>(1 << b);
    }
  }
  f[14 + 10] ^= 0x5A;
  EXPECT_FALSE(csum::ipv4_header_ok(v));
  csum::set_ipv4_header(v);
  EXPECT_TRUE(csum::ipv4_header_ok(v));
  EXPECT_TRUE(frames::ref_verify(f).ipv4_header);
}

TEST(Checksum, L4VerifyAndRecompute) {
  const std::vector<Bytes> samples = {
      Builder{}.tcp(1, 80, pkt::kTcpAck).payload_size(33).build(),
      Builder{}.udp(1, 53).payload_size(7).build(),
      Builder{}.icmp(8, 0, 5, 6).payload_size(13).build(),
      Builder{}.ipv6("2001:db8::1", "fd00:18::10").tcp(1, 80, pkt::kTcpSyn).payload_size(1).build(),
      Builder{}.ipv6("2001:db8::1", "fd00:18::10").ext({.type = 60}).udp(1, 53).payload_size(100).build(),
      Builder{}.ipv6("2001:db8::1", "fd00:18::10").icmp(128, 0, 5, 6).payload_size(56).build(),
  };
  for (Bytes f : samples) {
    pkt::PacketView v;
    ASSERT_EQ(pkt::parse_frame(f, v), pkt::ParseStatus::Ok);
    EXPECT_TRUE(csum::l4_ok(v));
    // A flipped payload byte, or a wrong field, is detected.
    f.back() ^= 0x01;
    EXPECT_FALSE(csum::l4_ok(v));
    f.back() ^= 0x01;
    f[v.l4_checksum_off()] ^= 0x80;
    EXPECT_FALSE(csum::l4_ok(v));
    EXPECT_FALSE(frames::ref_verify(f).l4);
    csum::set_l4(v);
    EXPECT_TRUE(csum::l4_ok(v));
    EXPECT_TRUE(frames::ref_verify(f).l4);
  }
}

TEST(Checksum, UdpZeroChecksumOnlyOnIpv4) {
  Bytes f4 = Builder{}.udp(1, 53).payload_size(9).udp_checksum_zero().build();
  Bytes f6 = Builder{}.ipv6("2001:db8::1", "fd00:18::10").udp(1, 53).payload_size(9).udp_checksum_zero().build();
  pkt::PacketView v;
  ASSERT_EQ(pkt::parse_frame(f4, v), pkt::ParseStatus::Ok);
  EXPECT_TRUE(csum::l4_ok(v));
  ASSERT_EQ(pkt::parse_frame(f6, v), pkt::ParseStatus::Ok);
  EXPECT_FALSE(csum::l4_ok(v));
}
