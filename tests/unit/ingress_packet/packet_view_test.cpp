#include "frames.hpp"
#include "packet_view.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace pkt = xdpfwd::ingress::packet;
using frames::Builder;
using frames::Bytes;
using pkt::ParseStatus;

namespace {

ParseStatus parse(Bytes& f, pkt::PacketView& v) { return pkt::parse_frame(f, v); }

bool is_truncation(ParseStatus s) {
  const std::string name(pkt::parse_status_name(s));
  return name.rfind("truncated", 0) == 0;
}

} // namespace

TEST(PacketView, Ipv4Tcp) {
  Bytes f = Builder{}.ipv4("198.51.100.7", "198.18.0.10").tcp(40000, 443, pkt::kTcpSyn).payload_size(10).build();
  pkt::PacketView v;
  ASSERT_EQ(parse(f, v), ParseStatus::Ok);
  EXPECT_EQ(v.ethertype, pkt::kEthertypeIpv4);
  EXPECT_FALSE(v.has_vlan);
  EXPECT_EQ(v.ip_version, 4);
  EXPECT_EQ(v.l3_off, 14u);
  EXPECT_EQ(v.l4_off, 34u);
  EXPECT_EQ(v.payload_off, 54u);
  EXPECT_EQ(v.l3_end, 64u);
  EXPECT_EQ(v.payload_len(), 10u);
  EXPECT_EQ(v.l4_proto, pkt::kProtoTcp);
  EXPECT_EQ(v.src_port, 40000);
  EXPECT_EQ(v.dst_port, 443);
  EXPECT_EQ(v.tcp_flags, pkt::kTcpSyn);
  EXPECT_EQ(v.ttl, 64);
  EXPECT_TRUE(v.has_l4);
  EXPECT_FALSE(v.is_fragment);
  EXPECT_EQ(v.source(), frames::ip("198.51.100.7"));
  EXPECT_EQ(v.destination(), frames::ip("198.18.0.10"));
  EXPECT_EQ(v.l4_checksum_off(), 34u + 16);
}

TEST(PacketView, TcpOptionsMovePayload) {
  Bytes f = Builder{}.tcp(1, 80, pkt::kTcpAck, Bytes(12, 1)).payload_size(3).build();
  pkt::PacketView v;
  ASSERT_EQ(parse(f, v), ParseStatus::Ok);
  EXPECT_EQ(v.payload_off, v.l4_off + 32);
  EXPECT_EQ(v.payload_len(), 3u);
}

TEST(PacketView, VlanTag) {
  Bytes f = Builder{}.vlan(0x0123).udp(5353, 53).payload_size(4).build();
  pkt::PacketView v;
  ASSERT_EQ(parse(f, v), ParseStatus::Ok);
  EXPECT_TRUE(v.has_vlan);
  EXPECT_EQ(v.vlan_tci, 0x0123);
  EXPECT_EQ(v.l3_off, 18u);
  EXPECT_EQ(v.dst_port, 53);
  EXPECT_EQ(v.udp_len, 12);
}

TEST(PacketView, EthernetPaddingIsNotPartOfThePacket) {
  Bytes f = Builder{}.udp(1, 53).pad_to(60).build(); // 42 bytes of headers, padded
  pkt::PacketView v;
  ASSERT_EQ(parse(f, v), ParseStatus::Ok);
  EXPECT_EQ(v.frame_len, 60u);
  EXPECT_EQ(v.l3_end, 42u);
  EXPECT_EQ(v.l4_len(), 8u);
}

TEST(PacketView, Ipv6UdpWithExtensionHeaders) {
  Bytes f = Builder{}
                .ipv6("2001:db8::1", "fd00:18::10")
                .ext({.type = pkt::kProtoIpv6HopByHop, .len = 8})
                .ext({.type = pkt::kProtoIpv6DestOpts, .len = 16})
                .udp(1000, 53)
                .payload_size(20)
                .build();
  pkt::PacketView v;
  ASSERT_EQ(parse(f, v), ParseStatus::Ok);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.l4_off, 14u + 40 + 8 + 16);
  EXPECT_EQ(v.l4_proto, pkt::kProtoUdp);
  EXPECT_EQ(v.dst_port, 53);
  EXPECT_EQ(v.source(), frames::ip("2001:db8::1"));
  EXPECT_EQ(v.destination(), frames::ip("fd00:18::10"));
}

TEST(PacketView, Ipv6Fragments) {
  pkt::PacketView v;
  Bytes first = Builder{}.ipv6("2001:db8::1", "fd00:18::10").ext({.type = 44, .more = true}).udp(1, 53).payload_size(16).build();
  ASSERT_EQ(parse(first, v), ParseStatus::Ok);
  EXPECT_TRUE(v.is_fragment);
  EXPECT_TRUE(v.has_ipv6_frag_header);
  EXPECT_TRUE(v.more_fragments);
  EXPECT_EQ(v.frag_offset, 0);
  EXPECT_EQ(v.frag_id, 0x01020304u);
  EXPECT_TRUE(v.has_l4);
  EXPECT_EQ(v.dst_port, 53);

  Bytes later = Builder{}.ipv6("2001:db8::1", "fd00:18::10").ext({.type = 44, .frag_offset = 24}).raw(17, Bytes(30, 9)).build();
  ASSERT_EQ(parse(later, v), ParseStatus::Ok);
  EXPECT_TRUE(v.is_fragment);
  EXPECT_FALSE(v.more_fragments);
  EXPECT_EQ(v.frag_offset, 24);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.l4_proto, pkt::kProtoUdp);
  EXPECT_EQ(v.l4_checksum_off(), 0u);

  Bytes atomic = Builder{}.ipv6("2001:db8::1", "fd00:18::10").ext({.type = 44}).tcp(1, 80, pkt::kTcpAck).build();
  ASSERT_EQ(parse(atomic, v), ParseStatus::Ok);
  EXPECT_FALSE(v.is_fragment); // RFC 6946
  EXPECT_TRUE(v.has_ipv6_frag_header);
  EXPECT_TRUE(v.has_l4);
}

TEST(PacketView, Ipv4Fragments) {
  pkt::PacketView v;
  Bytes first = Builder{}.ipv4_fragment(true, 0, 77).tcp(1, 80, pkt::kTcpAck).payload_size(4).build();
  ASSERT_EQ(parse(first, v), ParseStatus::Ok);
  EXPECT_TRUE(v.is_fragment);
  EXPECT_TRUE(v.has_l4);
  EXPECT_EQ(v.frag_id, 77u);
  Bytes later = Builder{}.ipv4_fragment(false, 1480).raw(6, Bytes(20, 0)).build();
  ASSERT_EQ(parse(later, v), ParseStatus::Ok);
  EXPECT_TRUE(v.is_fragment);
  EXPECT_EQ(v.frag_offset, 1480);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.src_port, 0);
}

TEST(PacketView, IcmpEchoId) {
  pkt::PacketView v;
  Bytes f4 = Builder{}.icmp(8, 0, 0xBEEF, 1).build();
  ASSERT_EQ(parse(f4, v), ParseStatus::Ok);
  EXPECT_TRUE(v.is_icmp());
  EXPECT_TRUE(v.icmp_echo);
  EXPECT_EQ(v.icmp_id, 0xBEEF);
  Bytes f6 = Builder{}.ipv6("2001:db8::1", "fd00:18::10").icmp(128, 0, 0xCAFE, 1).build();
  ASSERT_EQ(parse(f6, v), ParseStatus::Ok);
  EXPECT_TRUE(v.is_icmp());
  EXPECT_TRUE(v.icmp_echo);
  EXPECT_EQ(v.icmp_id, 0xCAFE);
  Bytes unreach = Builder{}.icmp(3, 4).build();
  ASSERT_EQ(parse(unreach, v), ParseStatus::Ok);
  EXPECT_FALSE(v.icmp_echo);
  EXPECT_EQ(v.icmp_type, 3);
  EXPECT_EQ(v.icmp_code, 4);
}

TEST(PacketView, IcmpErrorInner) {
  const Bytes inner = Builder{}.ipv4("198.18.0.10", "198.51.100.7").tcp(443, 40000, pkt::kTcpAck).payload_size(100).ip_packet();
  Bytes f = Builder{}.ipv4("192.0.2.1", "198.18.0.10").icmp_error(3, 4, Bytes(inner.begin(), inner.begin() + 28), 1400).build();
  pkt::PacketView v;
  ASSERT_EQ(parse(f, v), ParseStatus::Ok);
  pkt::InnerView in;
  ASSERT_EQ(pkt::parse_icmp_error_inner(v, in), ParseStatus::Ok);
  EXPECT_EQ(in.ip_version, 4);
  EXPECT_EQ(in.l4_proto, pkt::kProtoTcp);
  EXPECT_TRUE(in.has_l4);
  EXPECT_EQ(in.src_port, 443);
  EXPECT_EQ(in.dst_port, 40000);
  EXPECT_EQ(in.l3_off, v.l4_off + 8);

  Bytes cut = Builder{}.ipv4("192.0.2.1", "198.18.0.10").icmp_error(3, 4, Bytes(inner.begin(), inner.begin() + 24)).build();
  ASSERT_EQ(parse(cut, v), ParseStatus::Ok);
  EXPECT_EQ(pkt::parse_icmp_error_inner(v, in), ParseStatus::TruncatedL4);

  const Bytes inner6 = Builder{}.ipv6("fd00:18::10", "2001:db8::1").udp(53, 5353).payload_size(50).ip_packet();
  Bytes f6 = Builder{}.ipv6("2001:db8::ff", "fd00:18::10").icmp_error(2, 0, inner6, 1280).build();
  ASSERT_EQ(parse(f6, v), ParseStatus::Ok);
  ASSERT_EQ(pkt::parse_icmp_error_inner(v, in), ParseStatus::Ok);
  EXPECT_EQ(in.ip_version, 6);
  EXPECT_EQ(in.src_port, 53);
}

TEST(PacketView, StructuralErrors) {
  pkt::PacketView v;
  Bytes arp = Builder{}.ethertype(0x0806).build();
  EXPECT_EQ(parse(arp, v), ParseStatus::UnsupportedEthertype);

  Bytes qinq = Builder{}.vlan(1, 0x88A8).vlan(2).udp(1, 53).build();
  EXPECT_EQ(parse(qinq, v), ParseStatus::TooManyVlanTags);

  Bytes f = Builder{}.udp(1, 53).build();
  f[14] = 0x55; // version 5
  EXPECT_EQ(parse(f, v), ParseStatus::BadIpv4Version);
  f[14] = 0x44; // IHL 4
  EXPECT_EQ(parse(f, v), ParseStatus::BadIpv4HeaderLength);
  f[14] = 0x45;
  f[16] = 0;
  f[17] = 19; // total length < IHL * 4
  EXPECT_EQ(parse(f, v), ParseStatus::BadIpv4TotalLength);
  f[17] = 200; // total length past the frame
  EXPECT_EQ(parse(f, v), ParseStatus::TruncatedIpv4);

  Bytes f6 = Builder{}.ipv6("2001:db8::1", "fd00:18::10").udp(1, 53).build();
  f6[14] = 0x40;
  EXPECT_EQ(parse(f6, v), ParseStatus::BadIpv6Version);

  Bytes doff = Builder{}.tcp(1, 80, pkt::kTcpAck).build();
  doff[14 + 20 + 12] = 4 << 4;
  EXPECT_EQ(parse(doff, v), ParseStatus::BadTcpDataOffset);
  doff[14 + 20 + 12] = 15 << 4; // 60 bytes, only 20 there
  EXPECT_EQ(parse(doff, v), ParseStatus::BadTcpDataOffset);
}

TEST(PacketView, Ipv6ExtensionChainBounds) {
  pkt::PacketView v;
  Builder at_limit;
  at_limit.ipv6("2001:db8::1", "fd00:18::10");
  for (int i = 0; i < pkt::kMaxIpv6ExtHeaders; ++i) {
    at_limit.ext({.type = pkt::kProtoIpv6DestOpts});
  }
  Bytes ok = at_limit.udp(1, 53).build();
  EXPECT_EQ(parse(ok, v), ParseStatus::Ok);
  Bytes too_long = at_limit.ext({.type = pkt::kProtoIpv6DestOpts}).udp(1, 53).build();
  EXPECT_EQ(parse(too_long, v), ParseStatus::TooManyIpv6ExtHeaders);

  Bytes hbh_late = Builder{}
                       .ipv6("2001:db8::1", "fd00:18::10")
                       .ext({.type = pkt::kProtoIpv6DestOpts})
                       .ext({.type = pkt::kProtoIpv6HopByHop})
                       .udp(1, 53)
                       .build();
  EXPECT_EQ(parse(hbh_late, v), ParseStatus::BadIpv6ExtHeader);
  Bytes two_frag = Builder{}.ipv6("2001:db8::1", "fd00:18::10").ext({.type = 44}).ext({.type = 44}).udp(1, 53).build();
  EXPECT_EQ(parse(two_frag, v), ParseStatus::BadIpv6ExtHeader);
  // An unknown next header ends the walk: parsed as "other protocol".
  Bytes ah = Builder{}.ipv6("2001:db8::1", "fd00:18::10").raw(51, Bytes(24, 0)).build();
  ASSERT_EQ(parse(ah, v), ParseStatus::Ok);
  EXPECT_EQ(v.l4_proto, 51);
  EXPECT_FALSE(v.has_l4);
}

// Every prefix of a valid frame is refused with a truncation status, and never read past.
// (Each prefix is its own heap buffer of exactly that size, so a sanitizer build catches any
// overread.)
TEST(PacketView, TruncatedAtEveryLength) {
  const Bytes inner = Builder{}.ipv4("198.18.0.10", "198.51.100.7").udp(53, 40000).payload_size(8).ip_packet();
  const std::vector<Bytes> samples = {
      Builder{}.tcp(1000, 80, pkt::kTcpAck, Bytes(8, 1)).payload_size(5).build(),
      Builder{}.vlan(7).ipv4_options(Bytes{1, 1, 1, 0}).udp(1000, 53).payload_size(3).build(),
      Builder{}
          .ipv6("2001:db8::1", "fd00:18::10")
          .ext({.type = pkt::kProtoIpv6HopByHop, .len = 16})
          .ext({.type = 44, .more = true})
          .tcp(1, 443, pkt::kTcpSyn)
          .payload_size(8)
          .build(),
      Builder{}.ipv6("2001:db8::1", "fd00:18::10").icmp(128, 0, 1, 1).build(),
      Builder{}.ipv4("192.0.2.1", "198.18.0.10").icmp_error(3, 4, inner).build(),
  };
  for (const Bytes& full : samples) {
    pkt::PacketView v;
    Bytes whole = full;
    ASSERT_EQ(parse(whole, v), ParseStatus::Ok);
    for (std::size_t len = 0; len < full.size(); ++len) {
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      cut.shrink_to_fit();
      const ParseStatus s = pkt::parse_frame(cut, v);
      EXPECT_TRUE(is_truncation(s)) << "length " << len << ": " << pkt::parse_status_name(s);
    }
  }
}

// The same prefixes, now with the IP length fields shortened to match each cut: the parser
// must then bound itself by the IP lengths and still never reach past the buffer.
TEST(PacketView, ShortenedIpLengthsNeverOverread) {
  const Bytes full = Builder{}
                         .ipv6("2001:db8::1", "fd00:18::10")
                         .ext({.type = pkt::kProtoIpv6DestOpts, .len = 24})
                         .tcp(1, 443, pkt::kTcpAck, Bytes(4, 1))
                         .build();
  for (std::size_t len = 14 + 40; len < full.size(); ++len) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    cut.shrink_to_fit();
    frames::set16(cut.data() + 14 + 4, static_cast<std::uint16_t>(len - 14 - 40));
    pkt::PacketView v;
    const ParseStatus s = pkt::parse_frame(cut, v);
    EXPECT_NE(s, ParseStatus::Ok) << len;
  }
}

// Random garbage and random mutations of valid frames: no crash, and an Ok view lies in bounds.
TEST(PacketView, RandomMutationsStayInBounds) {
  std::mt19937_64 rng(1234);
  const std::vector<Bytes> seeds = {
      Builder{}.tcp(1000, 80, pkt::kTcpAck).payload_size(20).build(),
      Builder{}.ipv6("2001:db8::1", "fd00:18::10").ext({.type = 0}).ext({.type = 44, .more = true}).udp(1, 53).payload_size(9).build(),
      Builder{}.ipv4("192.0.2.1", "198.18.0.10")
          .icmp_error(3, 4, Builder{}.ipv4("198.18.0.10", "198.51.100.7").tcp(1, 2, pkt::kTcpAck).ip_packet())
          .build(),
  };
  int ok = 0;
  for (int i = 0; i < 200000; ++i) {
    Bytes f = seeds[i % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      f[rng() % f.size()] = static_cast<std::uint8_t>(rng());
    }
    f.resize(rng() % (f.size() + 1));
    f.shrink_to_fit();
    pkt::PacketView v;
    if (pkt::parse_frame(f, v) == ParseStatus::Ok) {
      ++ok;
      ASSERT_LE(v.l3_end, f.size());
      ASSERT_LE(v.l4_off, v.l3_end);
      ASSERT_LE(v.payload_off, v.l3_end);
      if (v.is_icmp() && v.has_l4 && pkt::is_icmp_error(v.ip_version, v.icmp_type)) {
        pkt::InnerView in;
        if (pkt::parse_icmp_error_inner(v, in) == ParseStatus::Ok) {
          ASSERT_LE(in.l4_off, in.end);
        }
      }
    }
  }
  EXPECT_GT(ok, 0);
}

TEST(PacketView, StatusNames) {
  EXPECT_EQ(pkt::parse_status_name(ParseStatus::Ok), "ok");
  EXPECT_EQ(pkt::parse_status_name(ParseStatus::TruncatedL4), "truncated_l4");
  EXPECT_EQ(pkt::parse_status_name(ParseStatus::BadTcpDataOffset), "bad_tcp_data_offset");
  EXPECT_EQ(pkt::parse_status_name(static_cast<ParseStatus>(200)), "unknown");
}
