// Differential test of the host XDP program (bpf/xdpfwd.bpf.c): a million random and mutated
// frames go through the loaded program with BPF_PROG_TEST_RUN and through a user-space
// reference of the same rules; verdicts, output frames and counters must be identical, and no
// frame whose destination is not a service IP may ever be redirected.
//
// The reference below is written from the contract (the header comment of xdpfwd.bpf.c and
// xdpfwd_abi.h), not from the BPF code:
//   - Ethernet, then up to XDPFWD_MAX_VLAN_DEPTH tags (TPID 0x8100 or 0x88a8); a header or tag
//     cut short: pass, l2_truncated; a tag beyond the depth: pass, vlan_too_deep;
//   - IPv4 / IPv6 fixed header cut short: pass, l3_truncated; other EtherTypes: pass;
//   - an IPv6 destination that is IPv4-mapped: pass (never a service, never counted);
//   - a destination that is not a service IP: pass, nothing counted;
//   - a service IP with an inconsistent header (version, IHL, options or total/payload length
//     against the bytes after the header's start): drop, counted by reason and for the service;
//   - the service's ingress ifindex missing from the devmap: drop, redirect_errors;
//   - otherwise redirect: VLAN tags removed, the service's MACs, the innermost EtherType; the
//     service's packets + 1 and bytes + the frame's length as received.
// A dropped or passed frame leaves the program as it came in.
//
// Reproducible: the seed is printed; XDPFWD_DIFF_SEED=<n> replays a run and XDPFWD_DIFF_FRAMES=<n>
// changes its length (default 1,000,000). Needs root, like xdp_program_test (and, like it, runs in
// a network namespace of its own for the devmap's ifindexes).
#include "packet_builder.hpp"
#include "xdpfwd_abi.h"
#include "xdpfwd_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <sys/stat.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace xdpfwd::testing {
namespace {

// --- the process's own network namespace (see xdp_program_test.cpp) --------------------------

bool g_private_netns = false;
int g_lo = 0;
int g_veth = 0;

std::uint64_t netns_inode() {
  struct stat info {};
  return ::stat("/proc/thread-self/ns/net", &info) < 0 ? 0 : info.st_ino;
}

class PrivateNetnsEnvironment : public ::testing::Environment {
public:
  void SetUp() override {
    const std::uint64_t before = netns_inode();
    ASSERT_NE(before, 0u);
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno) << " (run as root)";
    ASSERT_NE(netns_inode(), before) << "still in the original network namespace";
    g_private_netns = true;
    g_lo = static_cast<int>(::if_nametoindex("lo"));
    ASSERT_NE(g_lo, 0);
    ASSERT_EQ(std::system("ip link add xdt0 type veth peer name xdt1 >/dev/null 2>&1"), 0);
    g_veth = static_cast<int>(::if_nametoindex("xdt0"));
    ASSERT_NE(g_veth, 0);
  }
};

const auto* const g_environment = ::testing::AddGlobalTestEnvironment(new PrivateNetnsEnvironment);

// --- the services --------------------------------------------------------------------------------

struct ServiceIp {
  Bytes address; // 4 or 16 bytes
  std::uint32_t stats_index;
  Mac dst_mac;
  Mac src_mac;
  int ifindex; // 0: an ifindex that is not in the devmap
};

std::vector<ServiceIp> make_services() {
  const auto v4 = [](const char* text) { const auto a = ipv4_address(text); return Bytes(a.begin(), a.end()); };
  const auto v6 = [](const char* text) { const auto a = ipv6_address(text); return Bytes(a.begin(), a.end()); };
  return {
      {v4("198.18.0.10"), 0, {2, 0x1e, 0, 0, 1, 1}, {2, 0x40, 0, 0, 1, 2}, g_lo},
      {v4("198.18.0.11"), 1, {2, 0x1e, 0, 0, 2, 1}, {2, 0x40, 0, 0, 2, 2}, g_veth},
      {v4("198.18.0.12"), 2, {2, 0x1e, 0, 0, 3, 1}, {2, 0x40, 0, 0, 3, 2}, 0}, // ingress veth gone
      {v4("0.0.0.0"), 3, {2, 0x1e, 0, 0, 4, 1}, {2, 0x40, 0, 0, 4, 2}, g_lo},  // key ::ffff:0.0.0.0
      {v6("fd00:18::10"), 10, {2, 0x1e, 0, 0, 5, 1}, {2, 0x40, 0, 0, 5, 2}, g_veth},
      {v6("fd00:18::11"), 11, {2, 0x1e, 0, 0, 6, 1}, {2, 0x40, 0, 0, 6, 2}, g_lo},
      {v6("fd00:18::12"), 12, {2, 0x1e, 0, 0, 7, 1}, {2, 0x40, 0, 0, 7, 2}, 0},
      {v6("::"), 13, {2, 0x1e, 0, 0, 8, 1}, {2, 0x40, 0, 0, 8, 2}, g_veth},
  };
}

// The services map key of an address: IPv4 stored IPv4-mapped.
std::array<std::uint8_t, 16> key_of(const Bytes& address) {
  std::array<std::uint8_t, 16> key{};
  if (address.size() == 4) {
    key[10] = key[11] = 0xff;
    std::memcpy(key.data() + 12, address.data(), 4);
  } else {
    std::memcpy(key.data(), address.data(), 16);
  }
  return key;
}

// --- the reference -------------------------------------------------------------------------------

struct ServiceCounters {
  std::uint64_t packets = 0, bytes = 0, redirect_errors = 0, malformed = 0;
  bool operator==(const ServiceCounters&) const = default;
};
using Malformed = std::array<std::uint64_t, XDPFWD_MALFORMED_REASONS>;

struct Expected {
  std::uint32_t verdict = XDP_PASS;
  Bytes out;                 // the frame leaving the program
  int malformed_reason = -1; // counted in "malformed", -1: none
  const ServiceIp* service = nullptr; // the destination, when it is a service IP
  std::string why;           // for failure messages
};

class Reference {
public:
  Reference(const std::vector<ServiceIp>& services, const std::vector<int>& devmap) : devmap_(devmap) {
    for (const auto& service : services) by_key_[key_of(service.address)] = &service;
  }

  Expected run(const Bytes& in) const {
    Expected e;
    e.out = in;
    const std::size_t n = in.size();
    const auto be16 = [&](std::size_t at) { return static_cast<std::uint16_t>(in[at] << 8 | in[at + 1]); };
    if (n < 14) return pass(e, XDPFWD_MALFORMED_L2_TRUNCATED, "ethernet cut short");
    std::size_t at = 14;
    std::uint16_t type = be16(12);
    int tags = 0;
    while (is_tag(type)) {
      if (tags == XDPFWD_MAX_VLAN_DEPTH) return pass(e, XDPFWD_MALFORMED_VLAN_TOO_DEEP, "vlan too deep");
      if (n < at + 4) return pass(e, XDPFWD_MALFORMED_L2_TRUNCATED, "vlan tag cut short");
      type = be16(at + 2);
      at += 4;
      ++tags;
    }
    std::array<std::uint8_t, 16> key{};
    if (type == 0x0800) {
      if (n < at + 20) return pass(e, XDPFWD_MALFORMED_L3_TRUNCATED, "ipv4 cut short");
      key = key_of(Bytes(in.begin() + static_cast<long>(at + 16), in.begin() + static_cast<long>(at + 20)));
    } else if (type == 0x86dd) {
      if (n < at + 40) return pass(e, XDPFWD_MALFORMED_L3_TRUNCATED, "ipv6 cut short");
      std::memcpy(key.data(), in.data() + at + 24, 16);
      static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::memcmp(key.data(), kMapped, 12) == 0) return pass(e, -1, "ipv4-mapped ipv6 destination");
    } else {
      return pass(e, -1, "not ip");
    }
    const auto found = by_key_.find(key);
    if (found == by_key_.end()) return pass(e, -1, "not a service");
    e.service = found->second;

    const std::size_t available = n - at;
    if (type == 0x0800) {
      const std::size_t version = in[at] >> 4, header = (in[at] & 0x0f) * 4u, total = be16(at + 2);
      if (version != 4 || header < 20 || header > available) return drop(e, XDPFWD_MALFORMED_IPV4_HEADER, "ipv4 header");
      if (total < header || total > available) return drop(e, XDPFWD_MALFORMED_IPV4_LENGTH, "ipv4 total length");
    } else {
      if (in[at] >> 4 != 6) return drop(e, XDPFWD_MALFORMED_IPV6_HEADER, "ipv6 version");
      if (40u + be16(at + 4) > available) return drop(e, XDPFWD_MALFORMED_IPV6_LENGTH, "ipv6 payload length");
    }
    bool present = false;
    for (const int ifindex : devmap_) present = present || (ifindex != 0 && ifindex == e.service->ifindex);
    if (!present) {
      e.verdict = XDP_DROP;
      e.why = "redirect error";
      return e;
    }
    e.verdict = XDP_REDIRECT;
    e.why = "redirect";
    e.out.assign(e.service->dst_mac.begin(), e.service->dst_mac.end());
    e.out.insert(e.out.end(), e.service->src_mac.begin(), e.service->src_mac.end());
    e.out.push_back(static_cast<std::uint8_t>(type >> 8));
    e.out.push_back(static_cast<std::uint8_t>(type));
    e.out.insert(e.out.end(), in.begin() + static_cast<long>(at), in.end());
    return e;
  }

  // Applies an expectation to counters, as the program should have.
  static void count(const Expected& e, std::size_t frame_len, std::map<std::uint32_t, ServiceCounters>& services,
                    Malformed& malformed) {
    if (e.malformed_reason >= 0) malformed[static_cast<std::size_t>(e.malformed_reason)] += 1;
    if (!e.service) return;
    ServiceCounters& c = services[e.service->stats_index];
    if (e.verdict == XDP_REDIRECT) {
      c.packets += 1;
      c.bytes += frame_len;
    } else if (e.malformed_reason >= 0) {
      c.malformed += 1;
    } else if (e.verdict == XDP_DROP) {
      c.redirect_errors += 1;
    }
  }

private:
  static bool is_tag(std::uint16_t type) { return type == 0x8100 || type == 0x88a8; }
  static Expected& pass(Expected& e, int reason, const char* why) {
    e.verdict = XDP_PASS;
    e.malformed_reason = reason;
    e.why = why;
    return e;
  }
  static Expected& drop(Expected& e, int reason, const char* why) {
    e.verdict = XDP_DROP;
    e.malformed_reason = reason;
    e.why = why;
    return e;
  }

  std::map<std::array<std::uint8_t, 16>, const ServiceIp*> by_key_;
  std::vector<int> devmap_;
};

// --- frames -----------------------------------------------------------------------------------------

class FrameSource {
public:
  explicit FrameSource(std::uint64_t seed) : rng_(seed) {
    for (int i = 0; i < 4000; ++i) templates_.push_back(make_template());
  }

  Bytes next() {
    switch (pick(16)) {
    case 0: return random_frame();
    case 1:
    case 2:
    case 3: return templates_[pick(templates_.size())];
    default: return mutate(templates_[pick(templates_.size())]);
    }
  }

private:
  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  std::uint8_t byte() { return static_cast<std::uint8_t>(rng_()); }

  const char* destination_v4() {
    static const char* const kAddresses[] = {"198.18.0.10", "198.18.0.11", "198.18.0.12", "0.0.0.0",
                                             "198.18.0.13", "198.18.0.1",  "255.255.255.255", "10.0.0.10"};
    return kAddresses[pick(std::size(kAddresses))];
  }
  const char* destination_v6() {
    static const char* const kAddresses[] = {
        "fd00:18::10", "fd00:18::11", "fd00:18::12", "::", "fd00:18::13", "ff02::1",
        "::ffff:198.18.0.10", // IPv4-mapped form of a service: must pass
        "::ffff:0.0.0.0", "::198.18.0.10", "fd00:18::10:0"};
    return kAddresses[pick(std::size(kAddresses))];
  }

  // A valid frame: 0-3 VLAN tags of either TPID, IPv4 (options) or IPv6 (extension headers), a
  // transport, a payload, sometimes Ethernet padding or trailing bytes.
  Bytes make_template() {
    const Mac dst = {0x02, 0x4e, 0, 0, 0, byte()}, src = {0x02, 0xc1, 0, 0, 0, byte()};
    PacketBuilder packet(dst, src);
    const std::size_t tags = pick(10) < 6 ? 0 : pick(4);
    for (std::size_t i = 0; i < tags; ++i)
      packet.vlan(static_cast<std::uint16_t>(pick(4096)), pick(2) ? kEtherTypeVlan : kEtherTypeQinQ);
    const bool ipv6 = pick(2) == 1;
    Bytes payload(pick(8) == 0 ? pick(1200) : pick(64));
    for (auto& b : payload) b = byte();
    if (ipv6) {
      packet.ipv6(pick(2) ? "fd00:18::1" : "2001:db8::7", destination_v6());
    } else {
      packet.ipv4(pick(2) ? "198.18.0.1" : "203.0.113.5", destination_v4());
      if (pick(4) == 0) {
        Bytes options(4 * (1 + pick(10)));
        for (auto& b : options) b = pick(2) ? 1 : byte();
        packet.ipv4_options(options);
      }
      if (pick(8) == 0) packet.ipv4_frag(static_cast<std::uint16_t>(pick(65536)));
    }
    switch (pick(4)) {
    case 0: packet.udp(static_cast<std::uint16_t>(pick(65536)), 53); break;
    case 1: packet.tcp(static_cast<std::uint16_t>(pick(65536)), 443); break;
    case 2: packet.icmp_echo(1, 2); break;
    default: break;
    }
    if (ipv6 && pick(3) == 0) {
      // Extension headers (hop-by-hop, routing, fragment, destination options) before UDP: the
      // program must not walk them (the destination is in the fixed header).
      Bytes chain;
      const std::size_t count = 1 + pick(3);
      static const std::uint8_t kKinds[] = {0, 43, 44, 60};
      std::uint8_t first = kKinds[pick(4)];
      std::uint8_t kind = first;
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t next = i + 1 == count ? kProtoUdp : kKinds[1 + pick(3)];
        const std::size_t length = kind == 44 ? 8 : 8 * (1 + pick(3));
        Bytes header(length, 0);
        header[0] = next;
        header[1] = kind == 44 ? 0 : static_cast<std::uint8_t>(length / 8 - 1);
        for (std::size_t j = 2; j < length; ++j) header[j] = pick(2) ? 0 : byte();
        chain.insert(chain.end(), header.begin(), header.end());
        kind = next;
      }
      const Bytes udp = {0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00};
      chain.insert(chain.end(), udp.begin(), udp.end());
      chain.insert(chain.end(), payload.begin(), payload.end());
      packet.ip_protocol(first).payload(chain);
    } else {
      packet.payload(payload);
    }
    if (pick(4) == 0) packet.pad_to(60 + pick(40));
    Bytes frame = packet.build();
    if (pick(10) == 0) frame.resize(frame.size() + 1 + pick(16), byte()); // trailing bytes
    return frame;
  }

  Bytes random_frame() {
    Bytes frame(pick(4) == 0 ? 14 + pick(20) : 14 + pick(200));
    for (auto& b : frame) b = byte();
    // An EtherType worth parsing more often than chance would give.
    static const std::uint16_t kTypes[] = {0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806};
    if (pick(2) == 0) {
      const std::uint16_t type = kTypes[pick(std::size(kTypes))];
      frame[12] = static_cast<std::uint8_t>(type >> 8);
      frame[13] = static_cast<std::uint8_t>(type);
    }
    return frame;
  }

  // Where the L3 header of a template starts (first non-tag EtherType), for aimed mutations.
  static std::size_t l3_offset(const Bytes& frame) {
    std::size_t at = 12;
    while (at + 2 <= frame.size() && (frame[at] == 0x81 || frame[at] == 0x88) &&
           (frame[at + 1] == 0x00 || frame[at + 1] == 0xa8))
      at += 4;
    return at + 2;
  }

  Bytes mutate(Bytes frame) {
    const std::size_t l3 = l3_offset(frame);
    const std::size_t rounds = 1 + pick(3);
    for (std::size_t round = 0; round < rounds; ++round) {
      switch (pick(8)) {
      case 0: // truncate anywhere from the L3 header on (the test run needs 14 bytes)
        frame.resize(std::max<std::size_t>(14, std::min(frame.size(), l3 + pick(60)) - (pick(2) ? 0 : pick(8))));
        break;
      case 1: { // flip bits in the headers
        const std::size_t flips = 1 + pick(4);
        for (std::size_t i = 0; i < flips; ++i) {
          const std::size_t at = pick(std::min<std::size_t>(frame.size(), l3 + 48));
          frame[at] ^= static_cast<std::uint8_t>(1u << pick(8));
        }
        break;
      }
      case 2: // version / IHL byte
        if (l3 < frame.size()) frame[l3] = byte();
        break;
      case 3: // IPv4 total length or IPv6 payload length
        if (l3 + 6 <= frame.size()) {
          const std::size_t at = l3 + (pick(2) ? 2 : 4);
          const std::uint16_t value = pick(2) ? static_cast<std::uint16_t>(pick(65536))
                                              : static_cast<std::uint16_t>(frame.size() - l3 + pick(9) - 4);
          frame[at] = static_cast<std::uint8_t>(value >> 8);
          frame[at + 1] = static_cast<std::uint8_t>(value);
        }
        break;
      case 4: { // one more or one less VLAN tag
        const std::uint16_t tpid = pick(2) ? 0x8100 : 0x88a8;
        if (pick(2)) {
          const Bytes tag = {static_cast<std::uint8_t>(tpid >> 8), static_cast<std::uint8_t>(tpid), byte(), byte()};
          frame.insert(frame.begin() + 12, tag.begin(), tag.end());
        } else if (l3 > 14 && frame.size() >= 18) {
          frame.erase(frame.begin() + 12, frame.begin() + 16);
        }
        break;
      }
      case 5: // the EtherType
        if (l3 >= 2 && l3 <= frame.size()) {
          static const std::uint16_t kTypes[] = {0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x88cc};
          const std::uint16_t type = kTypes[pick(std::size(kTypes))];
          frame[l3 - 2] = static_cast<std::uint8_t>(type >> 8);
          frame[l3 - 1] = static_cast<std::uint8_t>(type);
        }
        break;
      case 6: // random bytes anywhere
        for (std::size_t i = 0, k = 1 + pick(6); i < k; ++i) frame[pick(frame.size())] = byte();
        break;
      default: // grow or shrink the tail
        if (pick(2)) frame.resize(frame.size() + 1 + pick(32), byte());
        else frame.resize(std::max<std::size_t>(14, frame.size() - std::min(frame.size(), 1 + pick(32))));
        break;
      }
    }
    return frame;
  }

  std::mt19937_64 rng_;
  std::vector<Bytes> templates_;
};

std::string hex(const Bytes& bytes) {
  std::string out;
  char buffer[4];
  for (const auto b : bytes) {
    std::snprintf(buffer, sizeof buffer, "%02x", b);
    out += buffer;
  }
  return out;
}

const char* verdict_name(std::uint32_t verdict) {
  switch (verdict) {
  case XDP_ABORTED: return "XDP_ABORTED";
  case XDP_DROP: return "XDP_DROP";
  case XDP_PASS: return "XDP_PASS";
  case XDP_TX: return "XDP_TX";
  case XDP_REDIRECT: return "XDP_REDIRECT";
  default: return "?";
  }
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 0) : fallback;
}

struct SkeletonDeleter {
  void operator()(xdpfwd_bpf* skeleton) const { xdpfwd_bpf__destroy(skeleton); }
};

// --- the test ----------------------------------------------------------------------------------------

class XdpDifferentialTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(g_private_netns) << "the test environment did not set up its network namespace";
    services_ = make_services();
    skeleton_.reset(xdpfwd_bpf__open_and_load());
    ASSERT_TRUE(skeleton_) << "open and load xdpfwd_bpf: " << std::strerror(errno);
    for (const auto& service : services_) {
      const auto key = key_of(service.address);
      xdpfwd_service_key map_key{};
      std::memcpy(map_key.addr, key.data(), key.size());
      xdpfwd_service_value value{};
      value.ifindex = service.ifindex == 0 ? 999'999u : static_cast<__u32>(service.ifindex);
      value.stats_index = service.stats_index;
      std::memcpy(value.dst_mac, service.dst_mac.data(), 6);
      std::memcpy(value.src_mac, service.src_mac.data(), 6);
      ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skeleton_->maps.services), &map_key, &value, BPF_NOEXIST), 0);
    }
    for (const int ifindex : {g_lo, g_veth}) {
      __u32 key = static_cast<__u32>(ifindex);
      bpf_devmap_val value{};
      value.ifindex = key;
      ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skeleton_->maps.ingress_devs), &key, &value, BPF_ANY), 0);
      devmap_.push_back(ifindex);
    }
    cpus_ = libbpf_num_possible_cpus();
    ASSERT_GT(cpus_, 0);
  }

  std::map<std::uint32_t, ServiceCounters> read_services() {
    std::map<std::uint32_t, ServiceCounters> out;
    std::vector<xdpfwd_service_stats> per_cpu(static_cast<std::size_t>(cpus_));
    for (const auto& service : services_) {
      const __u32 key = service.stats_index;
      EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.service_stats), &key, per_cpu.data()), 0);
      ServiceCounters& c = out[key];
      for (const auto& cpu : per_cpu) {
        c.packets += cpu.packets;
        c.bytes += cpu.bytes;
        c.redirect_errors += cpu.redirect_errors;
        c.malformed += cpu.malformed;
      }
    }
    return out;
  }

  Malformed read_malformed() {
    Malformed out{};
    std::vector<__u64> per_cpu(static_cast<std::size_t>(cpus_));
    for (__u32 reason = 0; reason < out.size(); ++reason) {
      EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.malformed), &reason, per_cpu.data()), 0);
      for (const auto value : per_cpu) out[reason] += value;
    }
    return out;
  }

  std::vector<ServiceIp> services_;
  std::vector<int> devmap_;
  int cpus_ = 0;
  std::unique_ptr<xdpfwd_bpf, SkeletonDeleter> skeleton_;
};

TEST_F(XdpDifferentialTest, ProgramAgreesWithTheReferenceOnAMillionFrames) {
  const std::uint64_t seed = env_number("XDPFWD_DIFF_SEED", std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32));
  const std::uint64_t frames = env_number("XDPFWD_DIFF_FRAMES", 1'000'000);
  std::printf("xdp differential test: seed %llu, %llu frames (replay: XDPFWD_DIFF_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(frames),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  RecordProperty("seed", std::to_string(seed));

  const Reference reference(services_, devmap_);
  FrameSource source(seed);
  const int prog = bpf_program__fd(skeleton_->progs.xdpfwd_xdp);
  const auto started = std::chrono::steady_clock::now();

  std::map<std::uint32_t, ServiceCounters> expected_services = read_services();
  Malformed expected_malformed = read_malformed();
  std::map<std::string, std::uint64_t> outcomes; // reference's reason → frames, for the log
  std::vector<Bytes> batch;
  constexpr std::size_t kBatch = 4096; // counters are compared after every batch
  Bytes out(4096);
  int mismatches = 0;
  std::uint64_t redirects = 0;

  for (std::uint64_t i = 0; i < frames && mismatches < 10; ++i) {
    Bytes in = source.next();
    const Expected expected = reference.run(in);
    ++outcomes[expected.why];

    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
                .data_size_in = static_cast<__u32>(in.size()), .data_size_out = static_cast<__u32>(out.size()),
                .repeat = 1);
    const int error = bpf_prog_test_run_opts(prog, &opts);
    ASSERT_EQ(error, 0) << "frame " << i << " (" << in.size() << " bytes): " << std::strerror(-error);
    const Bytes actual(out.begin(), out.begin() + opts.data_size_out);

    if (opts.retval == XDP_REDIRECT) {
      ++redirects;
      // The safety property on its own: a redirected frame was addressed to a service IP.
      ASSERT_NE(expected.service, nullptr) << "seed " << seed << " frame " << i
                                           << ": redirected a frame not addressed to a service: " << hex(in);
    }
    if (opts.retval != expected.verdict || actual != expected.out) {
      ++mismatches;
      ADD_FAILURE() << "seed " << seed << " frame " << i << ": program " << verdict_name(opts.retval)
                    << ", reference " << verdict_name(expected.verdict) << " (" << expected.why << ")\n  in:  "
                    << hex(in) << "\n  out: " << hex(actual) << "\n  expected out: " << hex(expected.out);
    }
    Reference::count(expected, in.size(), expected_services, expected_malformed);
    batch.push_back(std::move(in));

    if (batch.size() == kBatch || i + 1 == frames) {
      const auto services = read_services();
      const auto malformed = read_malformed();
      if (services != expected_services || malformed != expected_malformed) {
        // Find the frame: run the batch again one frame at a time, comparing the counters' deltas.
        std::ostringstream where;
        for (const Bytes& frame : batch) {
          const auto services_before = read_services();
          const auto malformed_before = read_malformed();
          LIBBPF_OPTS(bpf_test_run_opts, again, .data_in = frame.data(), .data_out = out.data(),
                      .data_size_in = static_cast<__u32>(frame.size()),
                      .data_size_out = static_cast<__u32>(out.size()), .repeat = 1);
          ASSERT_EQ(bpf_prog_test_run_opts(prog, &again), 0);
          auto want_services = services_before;
          auto want_malformed = malformed_before;
          Reference::count(reference.run(frame), frame.size(), want_services, want_malformed);
          if (read_services() != want_services || read_malformed() != want_malformed) {
            where << "first frame whose counters differ: " << hex(frame) << " (" << reference.run(frame).why << ")";
            break;
          }
        }
        FAIL() << "seed " << seed << ": counters differ from the reference after frame " << i << "; " << where.str();
      }
      batch.clear();
    }
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("xdp differential test: %llu frames in %.1f s, %llu redirected; reference outcomes:\n",
              static_cast<unsigned long long>(frames), seconds, static_cast<unsigned long long>(redirects));
  for (const auto& [why, count] : outcomes)
    std::printf("  %-30s %llu\n", why.c_str(), static_cast<unsigned long long>(count));
  EXPECT_EQ(mismatches, 0) << "seed " << seed;
  // Every rule was exercised, or the run proves little.
  // (Frames under 14 bytes cannot be run: BPF_PROG_TEST_RUN refuses them with EINVAL.)
  if (frames >= 100'000) {
    for (const char* why : {"redirect", "redirect error", "not a service", "not ip", "ipv4-mapped ipv6 destination",
                            "vlan tag cut short", "vlan too deep", "ipv4 cut short", "ipv6 cut short", "ipv4 header",
                            "ipv4 total length", "ipv6 version", "ipv6 payload length"}) {
      EXPECT_GT(outcomes[why], 0u) << why;
    }
  }
}

} // namespace
} // namespace xdpfwd::testing
