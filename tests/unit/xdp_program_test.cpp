// The host XDP program (bpf/xdpfwd.bpf.c) run through BPF_PROG_TEST_RUN: verdicts, output
// frames and counters. Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for unshare).
//
// The whole test process first moves into a network namespace of its own (unshare), because a
// devmap entry needs an interface that exists in the namespace of the process updating the map:
// there it uses `lo` and a veth pair it creates, and nothing is created in, attached to or sent
// through the root namespace. The namespace and its devices vanish with the process.
//
// Redirect targets: in every case the devmap holds only the ifindex the frame should go to, so a
// redirect to any other key would fail and show up as XDP_DROP and a redirect error.
#include "ingress_pass_bpf.skel.h"
#include "packet_builder.hpp"
#include "xdpfwd_abi.h"
#include "xdpfwd_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace xdpfwd::testing {
namespace {

constexpr const char* kVethHost = "xft0"; // plays the host side of an ingress veth
constexpr const char* kVethIngress = "xft1"; // plays eth0 in the ingress netns
constexpr const char* kVethClient = "xft2"; // plays a client's link, for generic mode
constexpr const char* kVethNic = "xft3"; // plays the host NIC, for generic mode

// Set by the environment once the process is in its own network namespace.
struct Lab {
  bool private_netns = false;
  int lo = 0;
  int veth_host = 0;
  int veth_ingress = 0;
  int veth_client = 0;
  int veth_nic = 0;
};
Lab g_lab;

std::string errno_text(int error) { return std::strerror(error < 0 ? -error : error); }

std::uint64_t netns_inode() {
  struct stat info {};
  if (::stat("/proc/thread-self/ns/net", &info) < 0) return 0;
  return info.st_ino;
}

// Runs `ip` only after the environment proved the process left the root namespace.
int run_ip(const std::string& arguments) {
  if (!g_lab.private_netns) return -1;
  return std::system(("ip " + arguments + " >/dev/null 2>&1").c_str());
}

class PrivateNetnsEnvironment : public ::testing::Environment {
public:
  void SetUp() override {
    const std::uint64_t before = netns_inode();
    ASSERT_NE(before, 0u);
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << errno_text(errno) << " (run as root)";
    const std::uint64_t after = netns_inode();
    ASSERT_NE(after, 0u);
    ASSERT_NE(after, before) << "still in the original network namespace";
    g_lab.private_netns = true;

    g_lab.lo = static_cast<int>(::if_nametoindex("lo"));
    ASSERT_NE(g_lab.lo, 0);
    ASSERT_EQ(run_ip(std::string("link add ") + kVethHost + " type veth peer name " + kVethIngress), 0);
    g_lab.veth_host = static_cast<int>(::if_nametoindex(kVethHost));
    g_lab.veth_ingress = static_cast<int>(::if_nametoindex(kVethIngress));
    ASSERT_NE(g_lab.veth_host, 0);
    ASSERT_NE(g_lab.veth_ingress, 0);
    ASSERT_EQ(run_ip(std::string("link add ") + kVethClient + " type veth peer name " + kVethNic), 0);
    g_lab.veth_client = static_cast<int>(::if_nametoindex(kVethClient));
    g_lab.veth_nic = static_cast<int>(::if_nametoindex(kVethNic));
    ASSERT_NE(g_lab.veth_client, 0);
    ASSERT_NE(g_lab.veth_nic, 0);
  }
  void TearDown() override {
    if (g_lab.veth_host != 0) run_ip(std::string("link del ") + kVethHost);
    if (g_lab.veth_client != 0) run_ip(std::string("link del ") + kVethClient);
  }
};

const auto* const g_environment = ::testing::AddGlobalTestEnvironment(new PrivateNetnsEnvironment);

// --- the services of the fixture -------------------------------------------------------------

const Mac kClientMac = {0x02, 0xc1, 0x00, 0x00, 0x00, 0x01};
const Mac kNicMac = {0x02, 0x4e, 0x00, 0x00, 0x00, 0x01};

struct Service {
  const char* address;
  bool ipv6;
  std::uint32_t stats_index;
  Mac dst_mac; // ingress side of the veth
  Mac src_mac; // host side
  int Lab::*device;

  int ifindex() const { return g_lab.*device; }
  xdpfwd_service_key key() const {
    xdpfwd_service_key key{};
    if (ipv6) {
      const auto bytes = ipv6_address(address);
      std::memcpy(key.addr, bytes.data(), bytes.size());
    } else {
      const auto bytes = ipv4_address(address);
      key.addr[10] = 0xff;
      key.addr[11] = 0xff;
      std::memcpy(key.addr + 12, bytes.data(), bytes.size());
    }
    return key;
  }
  xdpfwd_service_value value() const {
    xdpfwd_service_value value{};
    value.ifindex = static_cast<__u32>(ifindex());
    value.stats_index = stats_index;
    std::memcpy(value.dst_mac, dst_mac.data(), dst_mac.size());
    std::memcpy(value.src_mac, src_mac.data(), src_mac.size());
    return value;
  }
};

const Service kServiceV4{"198.18.0.10", false, 3, {0x02, 0x1e, 0, 0, 0x0a, 0x01}, {0x02, 0x40, 0, 0, 0x0a, 0x02},
                         &Lab::lo};
const Service kServiceV6{"fd00:18::10", true, 7, {0x02, 0x1e, 0, 0, 0x0b, 0x01}, {0x02, 0x40, 0, 0, 0x0b, 0x02},
                         &Lab::veth_host};
constexpr const char* kClientV4 = "198.18.0.1";
constexpr const char* kClientV6 = "fd00:18::1";
constexpr const char* kOtherV4 = "198.18.0.99"; // not a service: the host's own traffic
constexpr const char* kOtherV6 = "fd00:18::99";

PacketBuilder udp_to(const Service& service) {
  auto packet = Eth(kNicMac, kClientMac);
  if (service.ipv6)
    packet.ipv6(kClientV6, service.address);
  else
    packet.ipv4(kClientV4, service.address);
  return std::move(packet.udp(40000, 53).payload("xdpfwd test payload"));
}

// What the ingress veth should receive: the service's MACs, no VLAN tags, the rest unchanged.
Bytes rewritten(const Bytes& in, std::size_t vlan_tags, const Service& service) {
  Bytes out(service.dst_mac.begin(), service.dst_mac.end());
  out.insert(out.end(), service.src_mac.begin(), service.src_mac.end());
  out.insert(out.end(), in.begin() + static_cast<long>(12 + vlan_tags * kVlanTagLen), in.end());
  return out;
}

struct Counters {
  std::uint64_t packets = 0, bytes = 0, redirect_errors = 0, malformed = 0;
  bool operator==(const Counters& other) const {
    return packets == other.packets && bytes == other.bytes && redirect_errors == other.redirect_errors &&
           malformed == other.malformed;
  }
};
std::ostream& operator<<(std::ostream& out, const Counters& c) {
  return out << "{packets " << c.packets << ", bytes " << c.bytes << ", redirect_errors " << c.redirect_errors
             << ", malformed " << c.malformed << "}";
}
using Malformed = std::array<std::uint64_t, XDPFWD_MALFORMED_REASONS>;

Malformed only(int reason) {
  Malformed counts{};
  counts[static_cast<std::size_t>(reason)] = 1;
  return counts;
}

struct RunResult {
  int error = 0; // of bpf_prog_test_run_opts: 0 or -errno
  std::uint32_t verdict = 0;
  Bytes out;
};

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

struct SkeletonDeleter {
  void operator()(xdpfwd_bpf* skeleton) const { xdpfwd_bpf__destroy(skeleton); }
};

class XdpProgramTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(g_lab.private_netns) << "the test environment did not set up its network namespace";
    skeleton_.reset(xdpfwd_bpf__open_and_load());
    ASSERT_TRUE(skeleton_) << "open and load xdpfwd_bpf: " << errno_text(errno);
    for (const Service* service : {&kServiceV4, &kServiceV6}) {
      const auto key = service->key();
      const auto value = service->value();
      ASSERT_EQ(bpf_map_update_elem(map_fd(skeleton_->maps.services), &key, &value, BPF_NOEXIST), 0)
          << service->address << ": " << errno_text(errno);
    }
  }

  // A fresh skeleton: empty counters, the fixture's services, an empty devmap.
  void reload() {
    skeleton_.reset();
    SetUp();
  }

  static int map_fd(const bpf_map* map) { return bpf_map__fd(map); }
  int prog_fd() const { return bpf_program__fd(skeleton_->progs.xdpfwd_xdp); }

  // Leaves exactly one entry (or none, for ifindex 0) in ingress_devs.
  void only_ingress_dev(int ifindex) {
    const int fd = map_fd(skeleton_->maps.ingress_devs);
    __u32 key = 0;
    while (bpf_map_get_next_key(fd, nullptr, &key) == 0) ASSERT_EQ(bpf_map_delete_elem(fd, &key), 0);
    if (ifindex == 0) return;
    key = static_cast<__u32>(ifindex);
    bpf_devmap_val value{};
    value.ifindex = key;
    ASSERT_EQ(bpf_map_update_elem(fd, &key, &value, BPF_ANY), 0) << "ifindex " << ifindex << ": " << errno_text(errno);
  }

  RunResult run(const Bytes& in) {
    RunResult result;
    result.out.resize(in.size());
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = result.out.data(),
                .data_size_in = static_cast<__u32>(in.size()), .data_size_out = static_cast<__u32>(in.size()),
                .repeat = 1);
    result.error = bpf_prog_test_run_opts(prog_fd(), &opts);
    result.verdict = opts.retval;
    result.out.resize(result.error == 0 ? opts.data_size_out : 0);
    return result;
  }

  Counters counters(const Service& service) {
    Counters sum;
    const int cpus = libbpf_num_possible_cpus();
    std::vector<xdpfwd_service_stats> per_cpu(static_cast<std::size_t>(cpus));
    const __u32 key = service.stats_index;
    EXPECT_EQ(bpf_map_lookup_elem(map_fd(skeleton_->maps.service_stats), &key, per_cpu.data()), 0);
    for (const auto& cpu : per_cpu) {
      sum.packets += cpu.packets;
      sum.bytes += cpu.bytes;
      sum.redirect_errors += cpu.redirect_errors;
      sum.malformed += cpu.malformed;
    }
    return sum;
  }

  Malformed malformed() {
    Malformed sum{};
    const int cpus = libbpf_num_possible_cpus();
    std::vector<__u64> per_cpu(static_cast<std::size_t>(cpus));
    for (__u32 reason = 0; reason < sum.size(); ++reason) {
      EXPECT_EQ(bpf_map_lookup_elem(map_fd(skeleton_->maps.malformed), &reason, per_cpu.data()), 0);
      for (const auto value : per_cpu) sum[reason] += value;
    }
    return sum;
  }

  // Counters of both services, untouched by the frames of a test that must not count.
  void expect_services_untouched() {
    EXPECT_EQ(counters(kServiceV4), Counters{});
    EXPECT_EQ(counters(kServiceV6), Counters{});
  }

  // The frame goes to the service's ingress veth, rewritten, and is counted once.
  void expect_redirect(const Bytes& in, std::size_t vlan_tags, const Service& service) {
    only_ingress_dev(service.ifindex());
    const RunResult result = run(in);
    ASSERT_EQ(result.error, 0) << errno_text(result.error);
    EXPECT_STREQ(verdict_name(result.verdict), "XDP_REDIRECT");
    EXPECT_EQ(result.out, rewritten(in, vlan_tags, service));
    EXPECT_EQ(counters(service), (Counters{1, in.size(), 0, 0}));
    EXPECT_EQ(malformed(), Malformed{});
  }

  // The frame goes to the stack as received; nothing is counted but `counted` (if any).
  void expect_pass(const Bytes& in, const Malformed& counted = {}) {
    only_ingress_dev(kServiceV4.ifindex());
    const RunResult result = run(in);
    ASSERT_EQ(result.error, 0) << errno_text(result.error);
    EXPECT_STREQ(verdict_name(result.verdict), "XDP_PASS");
    EXPECT_EQ(result.out, in);
    EXPECT_EQ(malformed(), counted);
    expect_services_untouched();
  }

  // A malformed frame to a service IP: dropped (untouched) and counted for the service and reason.
  void expect_malformed_drop(const Bytes& in, const Service& service, int reason) {
    only_ingress_dev(service.ifindex());
    const RunResult result = run(in);
    ASSERT_EQ(result.error, 0) << errno_text(result.error);
    EXPECT_STREQ(verdict_name(result.verdict), "XDP_DROP");
    EXPECT_EQ(result.out, in);
    EXPECT_EQ(counters(service), (Counters{0, 0, 0, 1}));
    EXPECT_EQ(malformed(), only(reason));
  }

  std::unique_ptr<xdpfwd_bpf, SkeletonDeleter> skeleton_;
};

// --- hits --------------------------------------------------------------------------------------

TEST_F(XdpProgramTest, Ipv4HitIsRedirectedWithTheServiceMacs) {
  const Bytes in = udp_to(kServiceV4).build();
  expect_redirect(in, 0, kServiceV4);
  // The same frame built with the service's MACs: only the Ethernet addresses changed.
  const Bytes expected = Eth(kServiceV4.dst_mac, kServiceV4.src_mac)
                             .ipv4(kClientV4, kServiceV4.address)
                             .udp(40000, 53)
                             .payload("xdpfwd test payload")
                             .build();
  EXPECT_EQ(rewritten(in, 0, kServiceV4), expected);
}

TEST_F(XdpProgramTest, Ipv6HitIsRedirectedWithTheServiceMacs) {
  expect_redirect(udp_to(kServiceV6).build(), 0, kServiceV6);
}

TEST_F(XdpProgramTest, TcpAndIcmpHitsAreRedirected) {
  expect_redirect(Eth(kNicMac, kClientMac).ipv4(kClientV4, kServiceV4.address).tcp(40000, 443).build(), 0,
                  kServiceV4);
  reload();
  expect_redirect(Eth(kNicMac, kClientMac).ipv6(kClientV6, kServiceV6.address).icmp_echo(1, 1).build(), 0,
                  kServiceV6);
}

TEST_F(XdpProgramTest, Vlan8021QTagIsStripped) {
  expect_redirect(udp_to(kServiceV4).vlan(100).build(), 1, kServiceV4);
}

TEST_F(XdpProgramTest, Vlan8021QTagIsStrippedIpv6) {
  expect_redirect(udp_to(kServiceV6).vlan(4094, kEtherTypeVlan, 5).build(), 1, kServiceV6);
}

TEST_F(XdpProgramTest, QinQ8021adTagsAreStripped) {
  const Bytes in = udp_to(kServiceV4).vlan(200, kEtherTypeQinQ).vlan(100).build();
  expect_redirect(in, 2, kServiceV4);
  // Spelled out: the inner EtherType directly after the MACs, then the IPv4 header.
  const RunResult again = run(in);
  ASSERT_EQ(again.out.size(), in.size() - 2 * kVlanTagLen);
  EXPECT_EQ(again.out[12], 0x08);
  EXPECT_EQ(again.out[13], 0x00);
  EXPECT_EQ(again.out[14], 0x45);
}

TEST_F(XdpProgramTest, QinQ8021adTagsAreStrippedIpv6) {
  expect_redirect(udp_to(kServiceV6).vlan(200, kEtherTypeQinQ).vlan(100).build(), 2, kServiceV6);
}

TEST_F(XdpProgramTest, DoubleTagged8100Over8100IsStripped) {
  expect_redirect(udp_to(kServiceV4).vlan(200).vlan(100).build(), 2, kServiceV4);
}

TEST_F(XdpProgramTest, Ipv4WithOptionsIsRedirected) {
  // Record Route (7) with room for two addresses, then End of Options (padding to IHL 8).
  const Bytes options = {7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0};
  auto packet = udp_to(kServiceV4).ipv4_options(options);
  const Bytes in = packet.build();
  ASSERT_EQ(in[kEthHeaderLen] & 0x0f, 8);
  expect_redirect(in, 0, kServiceV4);
}

TEST_F(XdpProgramTest, Ipv4WithMaximumOptionsBehindQinQIsRedirected) {
  const Bytes options(40, 1); // 40 bytes of No Operation: IHL 15
  const Bytes in = udp_to(kServiceV4).vlan(1, kEtherTypeQinQ).vlan(2).ipv4_options(options).build();
  ASSERT_EQ(in[kEthHeaderLen + 2 * kVlanTagLen] & 0x0f, 15);
  expect_redirect(in, 2, kServiceV4);
}

TEST_F(XdpProgramTest, MinimumFrameWithEthernetPaddingIsRedirected) {
  auto packet = udp_to(kServiceV4).payload("hi").pad_to(kEthMinFrameLen);
  const Bytes in = packet.build();
  ASSERT_EQ(in.size(), kEthMinFrameLen);
  ASSERT_LT(packet.headers_length() + 2, in.size()); // IPv4 total length < frame: padding follows
  expect_redirect(in, 0, kServiceV4);
}

TEST_F(XdpProgramTest, PaddedTaggedFrameIsRedirectedWithItsPadding) {
  const Bytes in = udp_to(kServiceV4).vlan(7).payload("").pad_to(kEthMinFrameLen + 8).build();
  expect_redirect(in, 1, kServiceV4);
}

TEST_F(XdpProgramTest, Ipv6WithTrailingBytesIsRedirected) {
  Bytes in = udp_to(kServiceV6).build();
  in.resize(in.size() + 6, 0);
  expect_redirect(in, 0, kServiceV6);
}

// Conformity beyond header consistency belongs to the ingress inspector: none of these is dropped.
TEST_F(XdpProgramTest, FragmentsTtlAndChecksumsAreNotPoliced) {
  const std::vector<Bytes> frames = {
      udp_to(kServiceV4).ipv4_frag(0x2000).build(), // first fragment (MF)
      udp_to(kServiceV4).ipv4_frag(0x0010).build(), // last fragment, offset 128
      udp_to(kServiceV4).ipv4_frag(0x4000 | 0x2000 | 5).build(), // DF with MF and an offset
      udp_to(kServiceV4).ttl(0).build(),
      udp_to(kServiceV4).ipv4_checksum(0xdead).transport_checksum(0xbeef).build(),
      udp_to(kServiceV4).ip_protocol(253).build(),
      udp_to(kServiceV4).ipv4_total_length(kIpv4HeaderLen).build(), // no payload: shorter than the frame
  };
  for (std::size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    only_ingress_dev(kServiceV4.ifindex());
    const RunResult result = run(frames[i]);
    ASSERT_EQ(result.error, 0);
    EXPECT_STREQ(verdict_name(result.verdict), "XDP_REDIRECT");
    EXPECT_EQ(result.out, rewritten(frames[i], 0, kServiceV4));
  }
  EXPECT_EQ(counters(kServiceV4).packets, frames.size());
  EXPECT_EQ(counters(kServiceV4).malformed, 0u);
  EXPECT_EQ(malformed(), Malformed{});
}

TEST_F(XdpProgramTest, Ipv6ExtensionHeadersAndZeroPayloadLengthAreNotPoliced) {
  // Fragment header as next header, and a payload length of 0 (jumbogram-style).
  const Bytes fragment = udp_to(kServiceV6).ip_protocol(44).ttl(0).build();
  const Bytes zero_length = udp_to(kServiceV6).ipv6_payload_length(0).build();
  expect_redirect(fragment, 0, kServiceV6);
  reload();
  expect_redirect(zero_length, 0, kServiceV6);
}

TEST_F(XdpProgramTest, EachServiceGoesToItsOwnIngressDevice) {
  ASSERT_NE(kServiceV4.ifindex(), kServiceV6.ifindex());
  // Both devices present: each frame is counted for its service only, and no error.
  only_ingress_dev(kServiceV4.ifindex());
  const __u32 key = static_cast<__u32>(kServiceV6.ifindex());
  bpf_devmap_val value{};
  value.ifindex = key;
  ASSERT_EQ(bpf_map_update_elem(map_fd(skeleton_->maps.ingress_devs), &key, &value, BPF_ANY), 0);
  const Bytes v4 = udp_to(kServiceV4).build();
  const Bytes v6 = udp_to(kServiceV6).build();
  EXPECT_EQ(run(v4).verdict, XDP_REDIRECT);
  EXPECT_EQ(run(v6).verdict, XDP_REDIRECT);
  EXPECT_EQ(run(v6).verdict, XDP_REDIRECT);
  EXPECT_EQ(counters(kServiceV4), (Counters{1, v4.size(), 0, 0}));
  EXPECT_EQ(counters(kServiceV6), (Counters{2, 2 * v6.size(), 0, 0}));
}

// --- redirect errors ---------------------------------------------------------------------------

TEST_F(XdpProgramTest, MissingIngressDeviceIsARedirectErrorAndDrops) {
  for (const Service* service : {&kServiceV4, &kServiceV6}) {
    SCOPED_TRACE(service->address);
    reload();
    const Service& other = service == &kServiceV4 ? kServiceV6 : kServiceV4;
    only_ingress_dev(other.ifindex()); // the devmap holds another service's device only
    const Bytes in = udp_to(*service).vlan(100).build();
    const RunResult result = run(in);
    ASSERT_EQ(result.error, 0);
    EXPECT_STREQ(verdict_name(result.verdict), "XDP_DROP");
    EXPECT_EQ(result.out, in); // decided before the frame is touched
    EXPECT_EQ(counters(*service), (Counters{0, 0, 1, 0}));
    EXPECT_EQ(counters(other), Counters{});
  }
  only_ingress_dev(0); // empty devmap
  EXPECT_EQ(run(udp_to(kServiceV6).build()).verdict, XDP_DROP);
  EXPECT_EQ(counters(kServiceV6), (Counters{0, 0, 2, 0}));
  EXPECT_EQ(malformed(), Malformed{});
}

// --- misses and other traffic: untouched -------------------------------------------------------

TEST_F(XdpProgramTest, Ipv4MissPassesUntouched) {
  expect_pass(Eth(kNicMac, kClientMac).ipv4(kClientV4, kOtherV4).udp(40000, 53).payload("x").build());
  expect_pass(Eth(kNicMac, kClientMac).vlan(100).ipv4(kServiceV4.address, kOtherV4).tcp(1, 2).build());
}

TEST_F(XdpProgramTest, Ipv6MissPassesUntouched) {
  expect_pass(Eth(kNicMac, kClientMac).ipv6(kClientV6, kOtherV6).udp(40000, 53).payload("x").build());
  expect_pass(Eth(kNicMac, kClientMac).vlan(2, kEtherTypeQinQ).vlan(3).ipv6(kServiceV6.address, kOtherV6).build());
}

TEST_F(XdpProgramTest, Ipv4MappedIpv6DestinationIsNotTheIpv4Service) {
  expect_pass(Eth(kNicMac, kClientMac).ipv6(kClientV6, "::ffff:198.18.0.10").udp(1, 2).build());
}

TEST_F(XdpProgramTest, NonIpFramesPassUntouched) {
  // LLDP, and bytes that look like an IPv4 header to a service IP behind an unknown EtherType.
  expect_pass(Eth({0x01, 0x80, 0xc2, 0, 0, 0x0e}, kClientMac).ether_type(kEtherTypeLldp).payload(Bytes(46, 0x5a)).build());
  Bytes ip_like = udp_to(kServiceV4).build();
  ip_like[12] = 0x88;
  ip_like[13] = 0xb5; // local experimental EtherType
  expect_pass(ip_like);
}

TEST_F(XdpProgramTest, ArpForAServiceIpPassesToTheHost) {
  const Mac broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  expect_pass(
      Eth(broadcast, kClientMac).arp_request(kClientMac, kClientV4, kServiceV4.address).pad_to(kEthMinFrameLen).build());
  expect_pass(Eth(broadcast, kClientMac).vlan(100).arp_request(kClientMac, kClientV4, kServiceV4.address).build());
}

TEST_F(XdpProgramTest, MoreVlanTagsThanSupportedPassAndAreCounted) {
  expect_pass(udp_to(kServiceV4).vlan(1, kEtherTypeQinQ).vlan(2).vlan(3).build(),
              only(XDPFWD_MALFORMED_VLAN_TOO_DEEP));
}

// --- malformed frames to a service IP: dropped and counted -------------------------------------

TEST_F(XdpProgramTest, Ipv4TotalLengthBeyondTheFrameIsDropped) {
  auto packet = udp_to(kServiceV4);
  const Bytes in = packet.ipv4_total_length(static_cast<std::uint16_t>(packet.build().size() - kEthHeaderLen + 1)).build();
  expect_malformed_drop(in, kServiceV4, XDPFWD_MALFORMED_IPV4_LENGTH);
}

TEST_F(XdpProgramTest, Ipv4TotalLengthShorterThanItsHeaderIsDropped) {
  const Bytes in = udp_to(kServiceV4).ipv4_options(Bytes(8, 1)).ipv4_total_length(kIpv4HeaderLen + 4).build();
  expect_malformed_drop(in, kServiceV4, XDPFWD_MALFORMED_IPV4_LENGTH);
}

TEST_F(XdpProgramTest, Ipv4IhlBelowFiveIsDropped) {
  for (std::uint8_t ihl = 0; ihl < 5; ++ihl) {
    SCOPED_TRACE("IHL " + std::to_string(ihl));
    reload();
    expect_malformed_drop(udp_to(kServiceV4).ipv4_ihl(ihl).build(), kServiceV4, XDPFWD_MALFORMED_IPV4_HEADER);
  }
}

TEST_F(XdpProgramTest, Ipv4WrongVersionIsDropped) {
  expect_malformed_drop(udp_to(kServiceV4).vlan(9).ipv4_version(6).build(), kServiceV4, XDPFWD_MALFORMED_IPV4_HEADER);
}

TEST_F(XdpProgramTest, Ipv4OptionsBeyondTheFrameAreDropped) {
  // IHL 15 claims 40 bytes of options; the frame ends after 8 of them.
  auto packet = Eth(kNicMac, kClientMac).ipv4(kClientV4, kServiceV4.address).ipv4_options(Bytes(8, 1)).ipv4_ihl(15);
  expect_malformed_drop(packet.build(), kServiceV4, XDPFWD_MALFORMED_IPV4_HEADER);
}

TEST_F(XdpProgramTest, Ipv6PayloadLengthBeyondTheFrameIsDropped) {
  auto packet = udp_to(kServiceV6).vlan(5);
  const auto length = static_cast<std::uint16_t>(packet.build().size() - packet.l3_offset() - kIpv6HeaderLen + 1);
  expect_malformed_drop(packet.ipv6_payload_length(length).build(), kServiceV6, XDPFWD_MALFORMED_IPV6_LENGTH);
}

TEST_F(XdpProgramTest, Ipv6WrongVersionIsDropped) {
  expect_malformed_drop(udp_to(kServiceV6).ipv6_version(4).build(), kServiceV6, XDPFWD_MALFORMED_IPV6_HEADER);
}

TEST_F(XdpProgramTest, MalformedFramesToOtherAddressesPassUncounted) {
  const auto to_other_v4 = [] { return Eth(kNicMac, kClientMac).ipv4(kClientV4, kOtherV4).udp(1, 2).payload("x"); };
  expect_pass(to_other_v4().ipv4_ihl(3).build());
  expect_pass(to_other_v4().ipv4_total_length(1500).build());
  expect_pass(Eth(kNicMac, kClientMac).ipv6(kClientV6, kOtherV6).ipv6_payload_length(1000).build());
}

// --- truncation at every header boundary -------------------------------------------------------

struct TruncationCase {
  const char* name;
  PacketBuilder packet;
  const Service* service; // nullptr: addressed to no service
};

TEST_F(XdpProgramTest, TruncationAtEveryLengthNeverRedirects) {
  const auto to = [](const char* dst, bool ipv6) {
    auto packet = Eth(kNicMac, kClientMac);
    if (ipv6)
      packet.ipv6(kClientV6, dst);
    else
      packet.ipv4(kClientV4, dst);
    return packet;
  };
  std::vector<TruncationCase> cases = {
      {"ipv4", udp_to(kServiceV4), &kServiceV4},
      {"ipv4 802.1Q", udp_to(kServiceV4).vlan(10), &kServiceV4},
      {"ipv4 QinQ", udp_to(kServiceV4).vlan(20, kEtherTypeQinQ).vlan(10), &kServiceV4},
      {"ipv4 options", udp_to(kServiceV4).ipv4_options(Bytes(12, 1)), &kServiceV4},
      {"ipv4 QinQ options", udp_to(kServiceV4).vlan(20, kEtherTypeQinQ).vlan(10).ipv4_options(Bytes(40, 1)),
       &kServiceV4},
      {"ipv6", udp_to(kServiceV6), &kServiceV6},
      {"ipv6 802.1Q", udp_to(kServiceV6).vlan(10), &kServiceV6},
      {"ipv6 QinQ", udp_to(kServiceV6).vlan(20, kEtherTypeQinQ).vlan(10), &kServiceV6},
      {"ipv6 8100+8100", udp_to(kServiceV6).vlan(20).vlan(10), &kServiceV6},
      {"ipv4 miss QinQ options", to(kOtherV4, false).vlan(20, kEtherTypeQinQ).vlan(10).ipv4_options(Bytes(4, 1)).udp(1, 2).payload("x"), nullptr},
      {"ipv6 miss 802.1Q", to(kOtherV6, true).vlan(10).udp(1, 2).payload("x"), nullptr},
  };
  for (auto& test : cases) {
    const Bytes full = test.packet.build();
    const std::size_t l3 = test.packet.l3_offset();
    const bool ipv6 = full[l3 - 2] == 0x86;
    const std::size_t fixed_end = l3 + (ipv6 ? kIpv6HeaderLen : kIpv4HeaderLen);
    const std::size_t ip_header_end = test.packet.l4_offset();
    ASSERT_LT(test.packet.headers_length(), full.size()) << test.name << ": needs a payload";
    if (test.service != nullptr) only_ingress_dev(test.service->ifindex()); // a redirect would succeed

    for (std::size_t cut = 0; cut <= test.packet.headers_length(); ++cut) {
      SCOPED_TRACE(std::string(test.name) + ", cut at " + std::to_string(cut) + " of " + std::to_string(full.size()));
      const Bytes in(full.begin(), full.begin() + static_cast<long>(cut));
      const Malformed malformed_before = malformed();
      const Counters service_before = test.service ? counters(*test.service) : Counters{};
      const RunResult result = run(in);

      Malformed expected_malformed = malformed_before;
      Counters expected_service = service_before;
      if (cut < kEthHeaderLen) {
        // The kernel refuses to run XDP on less than an Ethernet header.
        EXPECT_EQ(result.error, -EINVAL);
      } else {
        ASSERT_EQ(result.error, 0) << errno_text(result.error);
        EXPECT_NE(result.verdict, XDP_REDIRECT);
        EXPECT_EQ(result.out, in);
        int reason = -1;
        bool dropped = false;
        if (cut < l3) {
          reason = XDPFWD_MALFORMED_L2_TRUNCATED;
        } else if (cut < fixed_end) {
          reason = XDPFWD_MALFORMED_L3_TRUNCATED;
        } else if (test.service != nullptr) {
          dropped = true;
          reason = ipv6 ? XDPFWD_MALFORMED_IPV6_LENGTH
                   : cut < ip_header_end ? XDPFWD_MALFORMED_IPV4_HEADER
                                         : XDPFWD_MALFORMED_IPV4_LENGTH;
          expected_service.malformed += 1;
        }
        EXPECT_STREQ(verdict_name(result.verdict), dropped ? "XDP_DROP" : "XDP_PASS");
        if (reason >= 0) expected_malformed[static_cast<std::size_t>(reason)] += 1;
      }
      EXPECT_EQ(malformed(), expected_malformed);
      if (test.service != nullptr) {
        EXPECT_EQ(counters(*test.service), expected_service);
      }
    }
    // And whole, the frame is forwarded (or, for no service, passed).
    const RunResult whole = run(full);
    ASSERT_EQ(whole.error, 0);
    EXPECT_STREQ(verdict_name(whole.verdict), test.service ? "XDP_REDIRECT" : "XDP_PASS") << test.name;
  }
}

// --- real traffic: a redirect into a veth ------------------------------------------------------

struct IngressPassDeleter {
  void operator()(ingress_pass_bpf* skeleton) const { ingress_pass_bpf__destroy(skeleton); }
};

class FdCloser {
public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }

private:
  int fd_;
};

class XdpAttachment {
public:
  XdpAttachment(int ifindex, int prog_fd, __u32 mode) : ifindex_(ifindex), mode_(mode) {
    error_ = bpf_xdp_attach(ifindex, prog_fd, mode, nullptr);
  }
  ~XdpAttachment() {
    if (error_ == 0) bpf_xdp_detach(ifindex_, mode_, nullptr);
  }
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;
  int error() const { return error_; }

private:
  int ifindex_;
  __u32 mode_;
  int error_;
};

// Links brought up for a test and down again after it.
class LinksUp {
public:
  explicit LinksUp(std::vector<std::string> names) : names_(std::move(names)) {
    for (const auto& name : names_) ok_ = ok_ && run_ip("link set " + name + " up") == 0;
  }
  ~LinksUp() {
    for (const auto& name : names_) run_ip("link set " + name + " down");
  }
  LinksUp(const LinksUp&) = delete;
  LinksUp& operator=(const LinksUp&) = delete;
  bool ok() const { return ok_; }

private:
  std::vector<std::string> names_;
  bool ok_ = true;
};

// A packet socket that sees the frames received on one interface.
int capture_socket(int ifindex) {
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return -errno;
  sockaddr_ll where{};
  where.sll_family = AF_PACKET;
  where.sll_protocol = htons(ETH_P_ALL);
  where.sll_ifindex = ifindex;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&where), sizeof(where)) < 0) {
    const int error = errno;
    ::close(fd);
    return -error;
  }
  return fd;
}

// Awaits a received frame equal to expected (a link coming up also sends IPv6 neighbour
// discovery: other frames are skipped).
bool await_frame(int fd, const Bytes& expected) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, 100) <= 0) continue;
    Bytes frame(2048);
    sockaddr_ll from{};
    socklen_t from_len = sizeof(from);
    const ssize_t size =
        ::recvfrom(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (size < 0) return false;
    if (from.sll_pkttype == PACKET_OUTGOING) continue;
    frame.resize(static_cast<std::size_t>(size));
    if (frame == expected) return true;
  }
  return false;
}

// Real traffic between veths in the test's own namespace: xdpfwd attached in `mode` to a veth
// playing the NIC; a hit and a miss sent from its peer. The hit arrives at the other end of the
// ingress veth (which runs ingress_pass, as an ingress netns's eth0 does) with its tags stripped
// and the service's MACs; the miss reaches the "host" untouched.
class XdpRealTrafficTest : public XdpProgramTest {
protected:
  void expect_hit_redirected_and_miss_passed(__u32 mode, const Bytes& hit, std::size_t vlan_tags,
                                             const Service& service) {
    ASSERT_TRUE(g_lab.private_netns);
    ASSERT_EQ(service.ifindex(), g_lab.veth_host) << "the service's ingress must be " << kVethHost;
    std::unique_ptr<ingress_pass_bpf, IngressPassDeleter> pass(ingress_pass_bpf__open_and_load());
    ASSERT_TRUE(pass) << errno_text(errno);
    const XdpAttachment ingress(g_lab.veth_ingress, bpf_program__fd(pass->progs.xdpfwd_ingress_pass),
                                XDP_FLAGS_DRV_MODE);
    ASSERT_EQ(ingress.error(), 0) << errno_text(ingress.error());
    const XdpAttachment nic(g_lab.veth_nic, prog_fd(), mode);
    ASSERT_EQ(nic.error(), 0) << errno_text(nic.error());
    const LinksUp links({kVethHost, kVethIngress, kVethClient, kVethNic});
    ASSERT_TRUE(links.ok());
    only_ingress_dev(service.ifindex());

    const FdCloser to_ingress(capture_socket(g_lab.veth_ingress));
    const FdCloser to_host(capture_socket(g_lab.veth_nic));
    const FdCloser sender(capture_socket(g_lab.veth_client));
    ASSERT_GE(to_ingress.get(), 0) << errno_text(to_ingress.get());
    ASSERT_GE(to_host.get(), 0) << errno_text(to_host.get());
    ASSERT_GE(sender.get(), 0) << errno_text(sender.get());

    // Untagged: a packet socket would see a received tag out of band, not in the bytes.
    const Bytes miss = Eth(kNicMac, kClientMac).ipv4(kClientV4, kOtherV4).udp(1, 2).payload("miss").build();
    for (const Bytes* frame : {&hit, &miss})
      ASSERT_EQ(::send(sender.get(), frame->data(), frame->size(), 0), static_cast<ssize_t>(frame->size()))
          << errno_text(errno);

    EXPECT_TRUE(await_frame(to_ingress.get(), rewritten(hit, vlan_tags, service)))
        << "the redirected frame did not arrive on " << kVethIngress;
    EXPECT_TRUE(await_frame(to_host.get(), miss)) << "the miss did not reach " << kVethNic;
    EXPECT_EQ(counters(service), (Counters{1, hit.size(), 0, 0}));
  }
};

// Native (driver) mode, as on a NIC with XDP support: a QinQ-tagged IPv6 frame.
TEST_F(XdpRealTrafficTest, NativeModeRedirectsRealTraffic) {
  expect_hit_redirected_and_miss_passed(
      XDP_FLAGS_DRV_MODE, udp_to(kServiceV6).vlan(300, kEtherTypeQinQ).vlan(30).payload("native mode").build(), 2,
      kServiceV6);
}

// Generic (SKB) mode, the fallback for NICs without native XDP: a tagged IPv4 frame.
TEST_F(XdpRealTrafficTest, GenericModeRedirectsRealTraffic) {
  // The IPv4 service's ingress is the veth for this test.
  Service service = kServiceV4;
  service.device = &Lab::veth_host;
  const auto key = service.key();
  const auto value = service.value();
  ASSERT_EQ(bpf_map_update_elem(map_fd(skeleton_->maps.services), &key, &value, BPF_EXIST), 0);
  expect_hit_redirected_and_miss_passed(XDP_FLAGS_SKB_MODE, udp_to(service).vlan(42).payload("generic mode").build(),
                                        1, service);
}

} // namespace
} // namespace xdpfwd::testing
