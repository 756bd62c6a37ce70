// Every rewrite is checked against a full, independent recomputation of every checksum
// (frames::ref_verify), over many random packets of both families and all protocols.
#include "frames.hpp"
#include "nat.hpp"
#include "packet_view.hpp"

#include <gtest/gtest.h>

#include <random>

namespace pkt = xdpfwd::ingress::packet;
namespace nat = xdpfwd::ingress::packet::nat;
using frames::Builder;
using frames::Bytes;
using pkt::IpAddr;

namespace {

IpAddr random_addr(std::mt19937_64& rng, int version) {
  IpAddr a;
  a.version = static_cast<std::uint8_t>(version);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a.bytes[i] = static_cast<std::uint8_t>(rng());
  }
  return a;
}

std::string to_text(const IpAddr& a) {
  char buf[64];
  inet_ntop(a.version == 4 ? AF_INET : AF_INET6, a.bytes.data(), buf, sizeof buf);
  return buf;
}

enum class Kind { Tcp, Udp, UdpZero, Icmp };

Builder random_packet(std::mt19937_64& rng, int version, Kind kind) {
  Builder b;
  b.ipv4(to_text(random_addr(rng, version)), to_text(random_addr(rng, version)));
  if (rng() % 4 == 0) {
    b.vlan(static_cast<std::uint16_t>(rng() & 0x0FFF));
  }
  if (version == 4 && rng() % 4 == 0) {
    b.ipv4_options(Bytes{1, 1, 1, 0});
  }
  if (version == 6 && rng() % 3 == 0) {
    b.ext({.type = 0, .len = 8 * (1 + rng() % 3)});
    if (rng() % 2) {
      b.ext({.type = 44}); // atomic fragment header
    }
    b.ext({.type = 60, .len = 8});
  }
  b.ttl(static_cast<std::uint8_t>(rng()));
  const auto sport = static_cast<std::uint16_t>(rng());
  const auto dport = static_cast<std::uint16_t>(rng());
  switch (kind) {
  case Kind::Tcp: b.tcp(sport, dport, pkt::kTcpAck, rng() % 2 ? Bytes(12, 1) : Bytes{}); break;
  case Kind::Udp: b.udp(sport, dport); break;
  case Kind::UdpZero: // "no checksum" exists on IPv4 only
    b.udp(sport, dport);
    if (version == 4) {
      b.udp_checksum_zero();
    }
    break;
  case Kind::Icmp: b.icmp(version == 4 ? 8 : 128, 0, sport, dport); break;
  }
  b.payload_size(rng() % 300, static_cast<std::uint8_t>(rng()));
  return b;
}

void expect_all_checksums_ok(const Bytes& f, const char* what) {
  const auto r = frames::ref_verify(f);
  EXPECT_TRUE(r.ipv4_header) << what;
  EXPECT_TRUE(r.l4) << what;
  EXPECT_TRUE(r.inner_ipv4_header) << what;
  EXPECT_TRUE(r.inner_l4) << what;
}

} // namespace

TEST(Nat, RandomRewritesKeepEveryChecksumExact) {
  std::mt19937_64 rng(2024);
  for (int iter = 0; iter < 20000; ++iter) {
    const int version = iter % 2 ? 6 : 4;
    const auto kind = static_cast<Kind>(rng() % 4);
    Bytes f = random_packet(rng, version, kind).build();
    pkt::PacketView v;
    ASSERT_EQ(pkt::parse_frame(f, v), pkt::ParseStatus::Ok);
    expect_all_checksums_ok(f, "as built");
    const std::uint16_t udp_field_before = frames::get16(f.data() + v.l4_off + 6);

    for (int op = 0; op < 4; ++op) {
      const IpAddr a = random_addr(rng, version);
      const auto port = static_cast<std::uint16_t>(rng());
      switch (rng() % 5) {
      case 0:
        ASSERT_TRUE(nat::set_source(v, a));
        EXPECT_EQ(v.source(), a);
        break;
      case 1:
        ASSERT_TRUE(nat::set_destination(v, a));
        EXPECT_EQ(v.destination(), a);
        break;
      case 2:
        ASSERT_TRUE(nat::set_source_port(v, port));
        if (kind == Kind::Icmp) {
          EXPECT_EQ(frames::get16(f.data() + v.l4_off + 4), port);
          EXPECT_EQ(v.icmp_id, port);
        } else {
          EXPECT_EQ(frames::get16(f.data() + v.l4_off), port);
          EXPECT_EQ(v.src_port, port);
        }
        break;
      case 3:
        ASSERT_TRUE(nat::set_destination_port(v, port));
        if (kind == Kind::Icmp) {
          EXPECT_EQ(v.icmp_id, port);
        } else {
          EXPECT_EQ(frames::get16(f.data() + v.l4_off + 2), port);
          EXPECT_EQ(v.dst_port, port);
        }
        break;
      case 4: {
        const std::uint8_t ttl = v.ttl;
        EXPECT_EQ(nat::decrement_ttl(v), ttl > 1);
        EXPECT_EQ(f[v.l3_off + (version == 4 ? 8 : 7)], ttl > 1 ? ttl - 1 : ttl);
        break;
      }
      }
      expect_all_checksums_ok(f, "after rewrite");
      if (::testing::Test::HasFailure()) {
        FAIL() << "iteration " << iter << " version " << version << " kind " << static_cast<int>(kind);
      }
    }
    if (kind == Kind::UdpZero && version == 4) {
      EXPECT_EQ(udp_field_before, 0);
      EXPECT_EQ(frames::get16(f.data() + v.l4_off + 6), 0); // "no checksum" stays so
    }
    // The view still describes the frame.
    pkt::PacketView again;
    ASSERT_EQ(pkt::parse_frame(f, again), pkt::ParseStatus::Ok);
    EXPECT_EQ(again.src_port, v.src_port);
    EXPECT_EQ(again.dst_port, v.dst_port);
    EXPECT_EQ(again.icmp_id, v.icmp_id);
    EXPECT_EQ(again.ttl, v.ttl);
  }
}

// The detector works: a rewrite that skipped the checksum update would be caught.
TEST(Nat, OracleCatchesAMissedUpdate) {
  Bytes f = Builder{}.tcp(1000, 80, pkt::kTcpAck).payload_size(20).build();
  pkt::PacketView v;
  ASSERT_EQ(pkt::parse_frame(f, v), pkt::ParseStatus::Ok);
  f[v.l4_off + 1] ^= 1; // a port changed behind the checksums' back
  EXPECT_FALSE(frames::ref_verify(f).l4);
  f[v.l4_off + 1] ^= 1;
  f[v.src_addr_off() + 3] ^= 1;
  const auto r = frames::ref_verify(f);
  EXPECT_FALSE(r.ipv4_header);
  EXPECT_FALSE(r.l4);
}

TEST(Nat, RefusesWhatItCannotDo) {
  Bytes f = Builder{}.tcp(1000, 80, pkt::kTcpAck).build();
  const Bytes before = f;
  pkt::PacketView v;
  ASSERT_EQ(pkt::parse_frame(f, v), pkt::ParseStatus::Ok);
  EXPECT_FALSE(nat::set_source(v, frames::ip("fd00::1")));
  EXPECT_FALSE(nat::set_destination(v, frames::ip("fd00::1")));
  EXPECT_EQ(f, before);

  Bytes later = Builder{}.ipv4_fragment(false, 1480).raw(6, Bytes(20, 0)).build();
  ASSERT_EQ(pkt::parse_frame(later, v), pkt::ParseStatus::Ok);
  EXPECT_FALSE(nat::set_source_port(v, 1));
  EXPECT_TRUE(nat::set_source(v, frames::ip("10.0.0.1")));
  EXPECT_TRUE(frames::ref_verify(later).ipv4_header);

  Bytes unreach = Builder{}.icmp(3, 1).build();
  ASSERT_EQ(pkt::parse_frame(unreach, v), pkt::ParseStatus::Ok);
  EXPECT_FALSE(nat::set_source_port(v, 1)); // ICMP but not echo

  Bytes gre = Builder{}.raw(47, Bytes(8, 0)).build();
  ASSERT_EQ(pkt::parse_frame(gre, v), pkt::ParseStatus::Ok);
  EXPECT_FALSE(nat::set_destination_port(v, 1));
  EXPECT_TRUE(nat::set_destination(v, frames::ip("10.0.0.2")));

  Bytes low_ttl = Builder{}.ttl(1).udp(1, 2).build();
  const Bytes low_before = low_ttl;
  ASSERT_EQ(pkt::parse_frame(low_ttl, v), pkt::ParseStatus::Ok);
  EXPECT_FALSE(nat::decrement_ttl(v));
  EXPECT_EQ(low_ttl, low_before);
}

TEST(Nat, Macs) {
  Bytes f = Builder{}.udp(1, 2).build();
  pkt::PacketView v;
  ASSERT_EQ(pkt::parse_frame(f, v), pkt::ParseStatus::Ok);
  nat::set_macs(v, {1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12});
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 12), (Bytes{7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6}));
}

// Fragments translated one by one reassemble into a packet whose L4 checksum is right.
TEST(Nat, FragmentsReassembleConsistently) {
  std::mt19937_64 rng(77);
  for (int iter = 0; iter < 2000; ++iter) {
    const bool udp = iter % 2;
    Builder b = Builder{}.ipv4(to_text(random_addr(rng, 4)), to_text(random_addr(rng, 4)));
    if (udp) {
      b.udp(static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng()));
    } else {
      b.tcp(static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng()), pkt::kTcpAck);
    }
    const Bytes whole = b.payload_size(40 + rng() % 200, static_cast<std::uint8_t>(rng())).ip_packet();
    // Split the L4 data after `cut` bytes (multiple of 8, past the L4 header).
    const std::size_t l4_total = whole.size() - 20;
    const std::size_t cut = 24 + 8 * (rng() % ((l4_total - 24) / 8));
    auto fragment = [&](std::size_t from, std::size_t to, bool more) {
      Bytes f = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00};
      f.insert(f.end(), whole.begin(), whole.begin() + 20);
      f.insert(f.end(), whole.begin() + 20 + static_cast<std::ptrdiff_t>(from), whole.begin() + 20 + static_cast<std::ptrdiff_t>(to));
      frames::set16(f.data() + 14 + 2, static_cast<std::uint16_t>(20 + to - from));
      frames::set16(f.data() + 14 + 6, static_cast<std::uint16_t>((more ? 0x2000 : 0) | from / 8));
      frames::set16(f.data() + 14 + 10, 0);
      frames::set16(f.data() + 14 + 10, static_cast<std::uint16_t>(~frames::ref_fold(frames::ref_sum(f.data() + 14, 20))));
      return f;
    };
    Bytes first = fragment(0, cut, true);
    Bytes second = fragment(cut, l4_total, false);
    const IpAddr src = random_addr(rng, 4);
    const IpAddr dst = random_addr(rng, 4);
    const auto port = static_cast<std::uint16_t>(rng());
    pkt::PacketView v1;
    pkt::PacketView v2;
    ASSERT_EQ(pkt::parse_frame(first, v1), pkt::ParseStatus::Ok);
    ASSERT_EQ(pkt::parse_frame(second, v2), pkt::ParseStatus::Ok);
    ASSERT_TRUE(v1.has_l4);
    ASSERT_FALSE(v2.has_l4);
    for (pkt::PacketView* v : {&v1, &v2}) {
      ASSERT_TRUE(nat::set_source(*v, src));
      ASSERT_TRUE(nat::set_destination(*v, dst));
    }
    ASSERT_TRUE(nat::set_destination_port(v1, port));
    EXPECT_TRUE(frames::ref_verify(first).ipv4_header);
    EXPECT_TRUE(frames::ref_verify(second).ipv4_header);
    // Reassemble: the first fragment's header, both data parts.
    Bytes re(first.begin(), first.end());
    re.insert(re.end(), second.begin() + 34, second.end());
    frames::set16(re.data() + 14 + 2, static_cast<std::uint16_t>(20 + l4_total));
    frames::set16(re.data() + 14 + 6, 0);
    EXPECT_TRUE(frames::ref_verify(re).l4) << iter;
  }
}

// ICMP errors: an error reaching the service IP about a reply (service -> client) is
// translated towards the replica: outer destination and inner source become the replica's,
// inner destination the ingress's overlay address/port (client_ip: nat).
TEST(Nat, IcmpErrorTranslationFixed) {
  const Bytes inner = Builder{}.ipv4("198.18.0.10", "198.51.100.7").tcp(443, 40000, pkt::kTcpAck).payload_size(16).ip_packet();
  Bytes f = Builder{}.ipv4("192.0.2.1", "198.18.0.10").icmp_error(3, 4, inner, 1400).build();
  expect_all_checksums_ok(f, "as built");
  pkt::PacketView v;
  ASSERT_EQ(pkt::parse_frame(f, v), pkt::ParseStatus::Ok);
  const nat::IcmpErrorRewrite rw{.outer_source = frames::ip("10.201.0.1"),
                                 .outer_destination = frames::ip("10.201.0.11"),
                                 .inner_source = frames::ip("10.201.0.11"),
                                 .inner_destination = frames::ip("10.201.0.1"),
                                 .inner_source_port = 8443,
                                 .inner_destination_port = 61000};
  ASSERT_EQ(nat::translate_icmp_error(v, rw), nat::IcmpTranslateStatus::Ok);
  expect_all_checksums_ok(f, "translated");
  EXPECT_EQ(v.source(), frames::ip("10.201.0.1"));
  EXPECT_EQ(v.destination(), frames::ip("10.201.0.11"));
  pkt::InnerView in;
  ASSERT_EQ(pkt::parse_icmp_error_inner(v, in), pkt::ParseStatus::Ok);
  EXPECT_EQ(IpAddr::from_bytes(4, f.data() + in.src_addr_off()), frames::ip("10.201.0.11"));
  EXPECT_EQ(IpAddr::from_bytes(4, f.data() + in.dst_addr_off()), frames::ip("10.201.0.1"));
  EXPECT_EQ(in.src_port, 8443);
  EXPECT_EQ(in.dst_port, 61000);
  EXPECT_EQ(frames::get16(f.data() + v.l4_off + 6), 1400); // next-hop MTU untouched
}

TEST(Nat, IcmpErrorTranslationRandom) {
  std::mt19937_64 rng(4242);
  for (int iter = 0; iter < 5000; ++iter) {
    const int version = iter % 2 ? 6 : 4;
    const auto kind = static_cast<Kind>(rng() % 4);
    const Bytes inner = random_packet(rng, version, kind).ip_packet();
    const std::uint8_t type = version == 4 ? std::array<std::uint8_t, 3>{3, 11, 12}[rng() % 3]
                                           : static_cast<std::uint8_t>(1 + rng() % 4);
    const std::string outer_src = to_text(random_addr(rng, version));
    const std::string outer_dst = to_text(random_addr(rng, version));
    Bytes complete = Builder{}.ipv4(outer_src, outer_dst).icmp_error(type, 0, inner, 1280).build();

    nat::IcmpErrorRewrite rw;
    if (rng() % 2) rw.outer_source = random_addr(rng, version);
    if (rng() % 2) rw.outer_destination = random_addr(rng, version);
    if (rng() % 2) rw.inner_source = random_addr(rng, version);
    if (rng() % 2) rw.inner_destination = random_addr(rng, version);
    if (rng() % 2) rw.inner_source_port = static_cast<std::uint16_t>(rng());
    if (rng() % 2) rw.inner_destination_port = static_cast<std::uint16_t>(rng());

    pkt::PacketView v;
    ASSERT_EQ(pkt::parse_frame(complete, v), pkt::ParseStatus::Ok);
    ASSERT_EQ(nat::translate_icmp_error(v, rw), nat::IcmpTranslateStatus::Ok);
    expect_all_checksums_ok(complete, "complete inner");

    // The same error with the embedded packet cut (as routers send it): outer checksums exact,
    // and every inner byte present identical to the complete translation.
    pkt::InnerView in;
    ASSERT_EQ(pkt::parse_icmp_error_inner(v, in), pkt::ParseStatus::Ok);
    const std::size_t inner_hdr = in.l4_off - in.l3_off;
    // Even lengths: a checksum field is either wholly there (and updated) or not at all.
    const std::size_t keep = std::min(inner.size(), inner_hdr + 8 + 2 * (rng() % 12));
    Bytes cut = Builder{}.ipv4(outer_src, outer_dst).icmp_error(type, 0, Bytes(inner.begin(), inner.begin() + static_cast<std::ptrdiff_t>(keep)), 1280).build();
    pkt::PacketView vc;
    ASSERT_EQ(pkt::parse_frame(cut, vc), pkt::ParseStatus::Ok);
    ASSERT_EQ(nat::translate_icmp_error(vc, rw), nat::IcmpTranslateStatus::Ok);
    const auto r = frames::ref_verify(cut);
    EXPECT_TRUE(r.ipv4_header && r.l4 && r.inner_ipv4_header) << iter;
    const std::size_t inner_start = vc.l4_off + 8;
    EXPECT_TRUE(std::equal(cut.begin() + static_cast<std::ptrdiff_t>(inner_start), cut.end(),
                           complete.begin() + static_cast<std::ptrdiff_t>(inner_start)))
        << iter;
    if (::testing::Test::HasFailure()) {
      FAIL() << "iteration " << iter << " version " << version << " kind " << static_cast<int>(kind);
    }
  }
}

TEST(Nat, IcmpErrorTranslationRefusals) {
  pkt::PacketView v;
  Bytes echo = Builder{}.icmp(8, 0, 1, 1).build();
  ASSERT_EQ(pkt::parse_frame(echo, v), pkt::ParseStatus::Ok);
  EXPECT_EQ(nat::translate_icmp_error(v, {}), nat::IcmpTranslateStatus::NotIcmpError);

  const Bytes gre_inner = Builder{}.ipv4("198.18.0.10", "198.51.100.7").raw(47, Bytes(8, 0)).ip_packet();
  Bytes about_gre = Builder{}.ipv4("192.0.2.1", "198.18.0.10").icmp_error(3, 3, gre_inner).build();
  const Bytes before = about_gre;
  ASSERT_EQ(pkt::parse_frame(about_gre, v), pkt::ParseStatus::Ok);
  EXPECT_EQ(nat::translate_icmp_error(v, {.inner_source = frames::ip("10.0.0.1"), .inner_source_port = 5}),
            nat::IcmpTranslateStatus::NoInnerPorts);
  EXPECT_EQ(nat::translate_icmp_error(v, {.outer_destination = frames::ip("fd00::1")}),
            nat::IcmpTranslateStatus::FamilyMismatch);
  EXPECT_EQ(about_gre, before); // untouched on refusal
  EXPECT_EQ(nat::translate_icmp_error(v, {.inner_source = frames::ip("10.0.0.1")}), nat::IcmpTranslateStatus::Ok);
  expect_all_checksums_ok(about_gre, "gre inner");

  Bytes bad_inner = Builder{}.ipv4("192.0.2.1", "198.18.0.10").icmp_error(3, 3, Bytes(10, 0x45)).build();
  ASSERT_EQ(pkt::parse_frame(bad_inner, v), pkt::ParseStatus::Ok);
  EXPECT_EQ(nat::translate_icmp_error(v, {}), nat::IcmpTranslateStatus::BadInner);
}
