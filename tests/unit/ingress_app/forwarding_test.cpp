// The ingress forwarding core (Forwarding) driven with crafted frames: client frames in through
// client_frame(), the replicas' answers (built as a replica's kernel would send them) through
// overlay_frame(). Every output is checked byte by byte where it matters (MACs, addresses, ports,
// ICMP fields) and every checksum is recomputed by the independent oracle of frames.hpp.
//
// Forwarding reads the replicas' MACs from a NeighbourCache, which follows the kernel's neighbour
// table: each test unshares a fresh network namespace (never touching the one it started in),
// creates a veth "ovl0" there with the ingress's overlay addresses and permanent neighbour entries
// for the replicas, and builds the cache on it. The namespace dies with the test's process or at
// the next test's unshare, so nothing is left behind even when a test fails.
#include "forwarding.hpp"
#include "frames.hpp"
#include "neighbour_cache.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace config = xdpfwd::config;
namespace pkt = xdpfwd::ingress::packet;
using frames::Builder;
using frames::Bytes;
using xdpfwd::ingress::Action;
using xdpfwd::ingress::Forwarding;
using xdpfwd::ingress::ForwardDrop;
using xdpfwd::ingress::IngressLinks;
using xdpfwd::ingress::NeighbourCache;
using Mac = pkt::nat::Mac;
using Timestamp = Forwarding::Timestamp;

// ---- addresses of the test topology ----

constexpr const char* kServiceV4 = "198.18.0.10";
constexpr const char* kServiceV6 = "fd00:18::10";
constexpr const char* kClientV4 = "198.19.1.7";
constexpr const char* kClientV6 = "fd00:19::7";
constexpr const char* kOverlayV4 = "10.201.0.1";
constexpr const char* kOverlayV6 = "fd00:201::1";
constexpr std::uint32_t kOverlayMtu = 1450;

constexpr Mac kClientMac{0x02, 0xc1, 0x00, 0x00, 0x00, 0x01};  // the ingress's eth0
constexpr Mac kOverlayMac{0x02, 0x0e, 0x00, 0x00, 0x00, 0x01}; // the ingress's ovl0
constexpr Mac kGatewayMac{0x02, 0x9a, 0x00, 0x00, 0x00, 0x01}; // the host's end of eth0

// Replicas with a permanent neighbour entry on ovl0 (see ForwardingTest::SetUp).
const std::map<std::string, Mac> kReplicaMacs = {
    {"10.201.0.11", {0x02, 0x00, 0x00, 0x00, 0x00, 0x11}},
    {"10.201.0.12", {0x02, 0x00, 0x00, 0x00, 0x00, 0x12}},
    {"10.201.0.13", {0x02, 0x00, 0x00, 0x00, 0x00, 0x13}},
    {"fd00:201::11", {0x02, 0x00, 0x00, 0x00, 0x06, 0x11}},
    {"fd00:201::12", {0x02, 0x00, 0x00, 0x00, 0x06, 0x12}},
    {"fd00:201::13", {0x02, 0x00, 0x00, 0x00, 0x06, 0x13}},
};
// A replica the kernel knows nothing about.
constexpr const char* kUnresolvedReplica = "10.201.0.14";

constexpr std::uint16_t kNatFirst = 20000, kNatLast = 59999; // balance::PortRange defaults

// ---- small helpers ----

std::string str(const pkt::IpAddr& a) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.version == 4 ? AF_INET : AF_INET6, a.bytes.data(), text, sizeof text);
  return text;
}

std::string str(const Mac& mac) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return text;
}

Bytes with_macs(Bytes frame, const Mac& dst, const Mac& src) {
  std::memcpy(frame.data(), dst.data(), 6);
  std::memcpy(frame.data() + 6, src.data(), 6);
  return frame;
}

// A frame as the host's veth delivers it to eth0.
Bytes from_client(const Builder& builder) { return with_macs(builder.build(), kClientMac, kGatewayMac); }
// A frame as a replica sends it on the overlay.
Bytes from_replica(const Builder& builder, const std::string& replica) {
  return with_macs(builder.build(), kOverlayMac, kReplicaMacs.at(replica));
}

// Sets DF in an IPv4 frame (no VLAN) and fixes the header checksum with the reference sum.
Bytes with_df(Bytes frame) {
  std::uint8_t* ip = frame.data() + 14;
  ip[6] |= 0x40;
  frames::set16(ip + 10, 0);
  frames::set16(ip + 10, static_cast<std::uint16_t>(~frames::ref_fold(frames::ref_sum(ip, (ip[0] & 0x0F) * 4u))));
  return frame;
}

// The frame's fields, read with the oracle's own header walk (not the library's parser).
struct Parsed {
  Bytes f;
  frames::RefLayout l;

  Mac dst_mac() const { return {f[0], f[1], f[2], f[3], f[4], f[5]}; }
  Mac src_mac() const { return {f[6], f[7], f[8], f[9], f[10], f[11]}; }
  std::uint16_t ethertype() const { return frames::get16(&f[12]); }
  std::string src() const { return str(pkt::IpAddr::from_bytes(l.version, &f[l.l3 + (l.version == 4 ? 12 : 8)])); }
  std::string dst() const { return str(pkt::IpAddr::from_bytes(l.version, &f[l.l3 + (l.version == 4 ? 16 : 24)])); }
  std::uint16_t sport() const { return frames::get16(&f[l.l4]); }
  std::uint16_t dport() const { return frames::get16(&f[l.l4 + 2]); }
  std::uint8_t icmp_type() const { return f[l.l4]; }
  std::uint8_t icmp_code() const { return f[l.l4 + 1]; }
  std::uint16_t icmp_id() const { return frames::get16(&f[l.l4 + 4]); }
  std::uint32_t ip_len() const {
    return l.version == 4 ? frames::get16(&f[l.l3 + 2]) : 40u + frames::get16(&f[l.l3 + 4]);
  }
  Bytes ip_packet() const { return Bytes(f.begin() + static_cast<long>(l.l3), f.begin() + static_cast<long>(l.end)); }
  // The packet an ICMP error embeds.
  Parsed inner() const {
    Parsed in;
    in.f = f;
    in.l = frames::ref_layout(f.data(), l.l4 + 8, l.end);
    return in;
  }
};

Parsed parse(const Bytes& frame) { return Parsed{frame, frames::ref_layout(frame.data(), 14, frame.size())}; }

// Every checksum of the frame, recomputed from scratch.
::testing::AssertionResult checksums_ok(const Bytes& frame) {
  const frames::RefChecks c = frames::ref_verify(frame);
  if (c.ipv4_header && c.l4 && c.inner_ipv4_header && c.inner_l4) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "ipv4_header " << c.ipv4_header << ", l4 " << c.l4 << ", inner_ipv4_header "
                                       << c.inner_ipv4_header << ", inner_l4 " << c.inner_l4;
}

// ---- config ----

config::Replica replica(const std::string& address, std::uint32_t weight = 1) {
  return config::Replica{.address = boost::asio::ip::make_address(address), .weight = weight};
}

config::Service service(std::vector<config::Replica> replicas, config::ClientIp client_ip = config::ClientIp::Nat) {
  config::Service s;
  s.name = "waf-a";
  s.lb = config::LbRule::Maglev;
  s.client_ip = client_ip;
  s.replicas = std::move(replicas);
  return s;
}

config::Ingress ingress(config::Service svc) {
  config::Ingress in;
  in.name = "waf";
  in.service_ips = {boost::asio::ip::make_address(kServiceV4), boost::asio::ip::make_address(kServiceV6)};
  in.overlay.vni = 4101;
  in.overlay.address = boost::asio::ip::make_network_v4("10.201.0.1/24");
  in.overlay.address6 = boost::asio::ip::make_network_v6("fd00:201::1/64");
  in.services.push_back(std::move(svc));
  return in;
}

std::vector<config::Replica> v4_replicas() { return {replica("10.201.0.11"), replica("10.201.0.12")}; }
std::vector<config::Replica> v6_replicas() { return {replica("fd00:201::11"), replica("fd00:201::12")}; }

// ---- the private network namespace ----

ino_t netns_inode() {
  struct stat st {};
  if (::stat("/proc/self/ns/net", &st) != 0) return 0;
  return st.st_ino;
}

// The namespace the test process started in: never configured by these tests.
ino_t original_netns() {
  static const ino_t inode = netns_inode();
  return inode;
}

// Runs `ip -batch -` with the given commands; only ever inside a namespace this process made.
::testing::AssertionResult ip_batch(const std::vector<std::string>& commands) {
  if (netns_inode() == original_netns()) return ::testing::AssertionFailure() << "refusing to run ip in the original netns";
  FILE* ip = ::popen("ip -batch - 2>&1", "w");
  if (ip == nullptr) return ::testing::AssertionFailure() << "popen ip: " << std::strerror(errno);
  for (const auto& command : commands) std::fprintf(ip, "%s\n", command.c_str());
  const int status = ::pclose(ip);
  if (status != 0) return ::testing::AssertionFailure() << "ip -batch failed (" << status << ")";
  return ::testing::AssertionSuccess();
}

// What `ip neigh show` says about one address on ovl0 (all states), "" when there is no entry.
std::string kernel_neighbour(const std::string& address) {
  if (netns_inode() == original_netns()) return "refusing to run ip in the original netns";
  const std::string command = "ip neigh show to " + address + " dev ovl0 nud all 2>&1";
  FILE* ip = ::popen(command.c_str(), "r");
  if (ip == nullptr) return "popen failed";
  std::string out;
  char chunk[256];
  while (std::fgets(chunk, sizeof chunk, ip) != nullptr) out += chunk;
  ::pclose(ip);
  return out;
}

// What client_frame()/overlay_frame() made of a frame.
struct Out {
  Action action;
  Bytes frame;
  Parsed p() const { return parse(frame); }
};

class ForwardingTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: unshares a network namespace and configures it";
    const ino_t started_in = original_netns();
    const ino_t before = netns_inode();
    ASSERT_NE(before, 0u);
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
    const ino_t now = netns_inode();
    ASSERT_NE(now, before) << "unshare did not give a new network namespace";
    ASSERT_NE(now, started_in);

    std::vector<std::string> commands = {
        "link add ovl0 type veth peer name ovl0p",
        "link set ovl0 address " + str(kOverlayMac),
        "link set ovl0 up",
        "link set ovl0p up",
        "addr add 10.201.0.1/24 dev ovl0",
        "addr add fd00:201::1/64 dev ovl0 nodad",
    };
    for (const auto& [address, mac] : kReplicaMacs)
      commands.push_back("neigh add " + address + " lladdr " + str(mac) + " dev ovl0 nud permanent");
    ASSERT_TRUE(ip_batch(commands));
    ifindex_ = static_cast<int>(::if_nametoindex("ovl0"));
    ASSERT_GT(ifindex_, 0);
    neighbours_ = std::make_unique<NeighbourCache>(ifindex_);
  }

  std::unique_ptr<Forwarding> make(const config::Ingress& in) {
    return std::make_unique<Forwarding>(in, IngressLinks{kClientMac, kOverlayMac, kOverlayMtu}, *neighbours_);
  }

  // The frame in a UMEM-sized buffer, as the data path hands it over.
  static Out run(Forwarding& fwd, const Bytes& frame, bool from_client, Timestamp now) {
    std::vector<std::uint8_t> umem(4096, 0xEE);
    std::memcpy(umem.data(), frame.data(), frame.size());
    auto length = static_cast<std::uint32_t>(frame.size());
    const Action action = from_client ? fwd.client_frame(umem, length, now) : fwd.overlay_frame(umem, length, now);
    return {action, Bytes(umem.begin(), umem.begin() + length)};
  }
  Out client(Forwarding& fwd, const Bytes& frame) { return run(fwd, frame, true, now_); }
  Out overlay(Forwarding& fwd, const Bytes& frame) { return run(fwd, frame, false, now_); }

  // Checks a frame that went ToOverlay with client_ip nat: source = the overlay address with a
  // NAT port, destination = a replica (returned) at its MAC, destination port kept.
  std::string expect_natted(const Out& out, const char* overlay, std::uint16_t service_port) {
    EXPECT_EQ(out.action, Action::ToOverlay);
    const Parsed p = out.p();
    EXPECT_EQ(p.src(), overlay);
    EXPECT_TRUE(kReplicaMacs.contains(p.dst())) << p.dst();
    if (kReplicaMacs.contains(p.dst())) {
      EXPECT_EQ(str(p.dst_mac()), str(kReplicaMacs.at(p.dst())));
    }
    EXPECT_EQ(str(p.src_mac()), str(kOverlayMac));
    EXPECT_GE(p.sport(), kNatFirst);
    EXPECT_LE(p.sport(), kNatLast);
    EXPECT_EQ(p.dport(), service_port);
    EXPECT_TRUE(checksums_ok(out.frame));
    return p.dst();
  }

  int ifindex_ = 0;
  std::unique_ptr<NeighbourCache> neighbours_;
  Timestamp now_ = std::chrono::seconds(1000);
};

// Checks a frame that went ToClient: from the service to the client, MACs towards the gateway.
void expect_to_client(const Out& out, const char* service_ip, std::uint16_t service_port,
                      const char* client_ip, std::uint16_t client_port) {
  EXPECT_EQ(out.action, Action::ToClient);
  const Parsed p = out.p();
  EXPECT_EQ(p.src(), service_ip);
  EXPECT_EQ(p.dst(), client_ip);
  EXPECT_EQ(p.sport(), service_port);
  EXPECT_EQ(p.dport(), client_port);
  EXPECT_EQ(str(p.src_mac()), str(kClientMac));
  EXPECT_EQ(str(p.dst_mac()), str(kGatewayMac));
  EXPECT_TRUE(checksums_ok(out.frame));
}

// ================= client_ip nat, IPv4 =================

TEST_F(ForwardingTest, UdpV4NatRoundTrip) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Bytes request = from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(40, 1));
  const Out forwarded = client(*fwd, request);
  const std::string chosen = expect_natted(forwarded, kOverlayV4, 53);
  const std::uint16_t nat_port = forwarded.p().sport();
  // The payload is untouched and the length kept.
  EXPECT_EQ(forwarded.frame.size(), request.size());
  EXPECT_TRUE(std::equal(request.end() - 40, request.end(), forwarded.frame.end() - 40));

  const Bytes answer = from_replica(Builder().ipv4(chosen, kOverlayV4).udp(53, nat_port).payload_size(60, 3), chosen);
  const Out back = overlay(*fwd, answer);
  expect_to_client(back, kServiceV4, 53, kClientV4, 40001);
  EXPECT_TRUE(std::equal(answer.end() - 60, answer.end(), back.frame.end() - 60));

  const auto status = fwd->status();
  EXPECT_EQ(status["ingress"], "waf");
  EXPECT_EQ(status["accepted"], 1);
  EXPECT_EQ(status["to_overlay"], 1);
  EXPECT_EQ(status["to_client"], 1);
  EXPECT_TRUE(status["drops"].empty()) << status["drops"].dump();
  EXPECT_EQ(status["services"][0]["flows"], 1);
  EXPECT_EQ(status["services"][0]["flows_created"], 1);
  EXPECT_EQ(fwd->counters().to_overlay, 1u);
  EXPECT_EQ(fwd->counters().to_client, 1u);
}

TEST_F(ForwardingTest, TcpV4NatRoundTrip) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Out syn = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).tcp(51000, 443, pkt::kTcpSyn)));
  const std::string chosen = expect_natted(syn, kOverlayV4, 443);
  const std::uint16_t nat_port = syn.p().sport();
  EXPECT_EQ(syn.frame[syn.p().l.l4 + 13], pkt::kTcpSyn);

  const Out synack = overlay(
      *fwd, from_replica(Builder().ipv4(chosen, kOverlayV4).tcp(443, nat_port, pkt::kTcpSyn | pkt::kTcpAck), chosen));
  expect_to_client(synack, kServiceV4, 443, kClientV4, 51000);
  EXPECT_EQ(synack.frame[synack.p().l.l4 + 13], pkt::kTcpSyn | pkt::kTcpAck);

  const Out data = client(
      *fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).tcp(51000, 443, pkt::kTcpAck | pkt::kTcpPsh).payload_size(100)));
  EXPECT_EQ(expect_natted(data, kOverlayV4, 443), chosen);
  EXPECT_EQ(data.p().sport(), nat_port);

  const auto status = fwd->status();
  EXPECT_EQ(status["accepted"], 2);
  EXPECT_EQ(status["to_overlay"], 2);
  EXPECT_EQ(status["to_client"], 1);
  EXPECT_EQ(status["services"][0]["flows"], 1);
  EXPECT_TRUE(status["drops"].empty()) << status["drops"].dump();
}

TEST_F(ForwardingTest, FlowKeepsItsReplicaAndFlowsSpreadOverReplicas) {
  auto fwd = make(ingress(service(v4_replicas())));
  std::string first_replica;
  std::uint16_t first_port = 0;
  for (std::uint8_t i = 0; i < 5; ++i) {
    const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(20, i)));
    const std::string chosen = expect_natted(out, kOverlayV4, 53);
    if (i == 0) {
      first_replica = chosen;
      first_port = out.p().sport();
    }
    EXPECT_EQ(chosen, first_replica) << "packet " << int(i);
    EXPECT_EQ(out.p().sport(), first_port) << "packet " << int(i);
  }

  std::map<std::string, int> per_replica;
  std::set<std::pair<std::string, std::uint16_t>> replies; // what each flow's answers arrive as
  for (std::uint16_t port = 30000; port < 30064; ++port) {
    const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(port, 53).payload_size(20)));
    const std::string chosen = expect_natted(out, kOverlayV4, 53);
    ++per_replica[chosen];
    replies.insert({chosen, out.p().sport()});
  }
  EXPECT_EQ(per_replica.size(), 2u);
  for (const auto& [address, count] : per_replica) EXPECT_GE(count, 16) << address;
  EXPECT_EQ(replies.size(), 64u) << "two flows share a replica and a NAT port";
  EXPECT_EQ(replies.count({first_replica, first_port}), 0u);

  const auto status = fwd->status();
  EXPECT_EQ(status["services"][0]["flows"], 65);
  EXPECT_EQ(status["services"][0]["flows_created"], 65);
  EXPECT_EQ(status["to_overlay"], 69);
}

// ================= client_ip nat, IPv6 =================

TEST_F(ForwardingTest, UdpAndTcpV6NatRoundTrip) {
  auto fwd = make(ingress(service(v6_replicas())));

  const Bytes request = from_client(Builder().ipv6(kClientV6, kServiceV6).udp(40001, 53).payload_size(40, 2));
  const Out forwarded = client(*fwd, request);
  const std::string chosen = expect_natted(forwarded, kOverlayV6, 53);
  EXPECT_EQ(forwarded.p().ethertype(), 0x86DD);
  EXPECT_EQ(forwarded.frame[forwarded.p().l.l3 + 7], 64) << "hop limit";
  const Out back = overlay(
      *fwd, from_replica(Builder().ipv6(chosen, kOverlayV6).udp(53, forwarded.p().sport()).payload_size(30), chosen));
  expect_to_client(back, kServiceV6, 53, kClientV6, 40001);

  const Out syn = client(*fwd, from_client(Builder().ipv6(kClientV6, kServiceV6).tcp(51000, 443, pkt::kTcpSyn)));
  const std::string tcp_replica = expect_natted(syn, kOverlayV6, 443);
  const Out synack = overlay(*fwd, from_replica(Builder().ipv6(tcp_replica, kOverlayV6)
                                                    .tcp(443, syn.p().sport(), pkt::kTcpSyn | pkt::kTcpAck),
                                                tcp_replica));
  expect_to_client(synack, kServiceV6, 443, kClientV6, 51000);

  const auto status = fwd->status();
  EXPECT_EQ(status["to_overlay"], 2);
  EXPECT_EQ(status["to_client"], 2);
  EXPECT_TRUE(status["drops"].empty()) << status["drops"].dump();
}

// One service with replicas of both families: each family's flows go to replicas of their family.
TEST_F(ForwardingTest, MixedFamilyReplicasServeEachFamily) {
  auto fwd = make(ingress(service(
      {replica("10.201.0.11"), replica("fd00:201::11"), replica("10.201.0.12"), replica("fd00:201::12")})));
  for (std::uint16_t port = 30000; port < 30016; ++port) {
    for (bool v6 : {false, true}) {
      Builder b;
      if (v6) b.ipv6(kClientV6, kServiceV6); else b.ipv4(kClientV4, kServiceV4);
      const Out out = client(*fwd, from_client(b.udp(port, 53).payload_size(10)));
      ASSERT_EQ(out.action, Action::ToOverlay) << fwd->status()["drops"].dump();
      const std::string chosen = expect_natted(out, v6 ? kOverlayV6 : kOverlayV4, 53);
      EXPECT_EQ(chosen.find(':') != std::string::npos, v6) << chosen;
    }
  }
  EXPECT_TRUE(fwd->status()["drops"].empty()) << fwd->status()["drops"].dump();
}

// A replica behind a veth with TX checksum offload leaves the TCP/UDP checksum to hardware: the
// field holds only the folded pseudo-header sum. The client must get a complete checksum; a
// checksum that is merely wrong stays wrong (the inspector does not launder corruption).
Bytes with_checksum_field(Bytes frame, std::optional<std::uint16_t> value = std::nullopt) {
  const frames::RefLayout l = frames::ref_layout(frame.data(), 14, frame.size());
  const std::size_t field = l.l4 + (l.proto == pkt::kProtoTcp ? 16 : 6);
  const std::uint16_t partial = frames::ref_fold(frames::ref_pseudo(
      frame.data() + l.l3 + 12, frame.data() + l.l3 + 16, 4, l.proto, static_cast<std::uint32_t>(l.end - l.l4)));
  const std::uint16_t stored = value.value_or(partial);
  frame[field] = static_cast<std::uint8_t>(stored >> 8);
  frame[field + 1] = static_cast<std::uint8_t>(stored);
  return frame;
}

TEST_F(ForwardingTest, PartialChecksumsOfReplicasAreCompletedOthersLeftAlone) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Out forwarded = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).tcp(40002, 80, pkt::kTcpSyn)));
  const std::string chosen = expect_natted(forwarded, kOverlayV4, 80);
  const std::uint16_t nat_port = forwarded.p().sport();
  const Bytes answer = from_replica(
      Builder().ipv4(chosen, kOverlayV4).tcp(80, nat_port, pkt::kTcpSyn | pkt::kTcpAck).payload_size(20, 7), chosen);

  const Out completed = overlay(*fwd, with_checksum_field(answer));
  ASSERT_EQ(completed.action, Action::ToClient);
  EXPECT_TRUE(checksums_ok(completed.frame)) << "the partial checksum was completed";
  EXPECT_EQ(fwd->status()["checksums_completed"], 1);

  const Out wrong = overlay(*fwd, with_checksum_field(answer, 0x1234));
  ASSERT_EQ(wrong.action, Action::ToClient);
  EXPECT_FALSE(frames::ref_verify(wrong.frame).l4) << "a wrong checksum stays wrong";
  EXPECT_EQ(fwd->status()["checksums_completed"], 1);

  const Out complete = overlay(*fwd, answer);
  EXPECT_TRUE(checksums_ok(complete.frame)) << "a complete checksum is updated, not recomputed";
  EXPECT_EQ(fwd->status()["checksums_completed"], 1);
}

// A client behind a veth with TX offload (on the same machine) sends partial checksums too: the
// replica gets them complete, after NAT (nat) or the destination rewrite (preserve).
TEST_F(ForwardingTest, PartialChecksumsOfClientsAreCompleted) {
  for (const auto client_ip : {config::ClientIp::Nat, config::ClientIp::Preserve}) {
    const std::vector<std::pair<std::vector<config::Replica>, Builder>> cases = {
        {v4_replicas(), Builder().ipv4(kClientV4, kServiceV4).tcp(40003, 80, pkt::kTcpSyn)},
        {v6_replicas(), Builder().ipv6(kClientV6, kServiceV6).udp(40004, 53).payload_size(30)}};
    for (auto [replicas, builder] : cases) {
      auto fwd = make(ingress(service(replicas, client_ip)));
      const Out out = client(*fwd, from_client(builder.l4_checksum_partial()));
      ASSERT_EQ(out.action, Action::ToOverlay) << fwd->status()["drops"].dump();
      EXPECT_TRUE(checksums_ok(out.frame));
      EXPECT_EQ(fwd->status()["checksums_completed"], 1);
    }
  }
}

// ================= client_ip preserve =================

TEST_F(ForwardingTest, PreserveKeepsTheClientSourceV4) {
  auto fwd = make(ingress(service(v4_replicas(), config::ClientIp::Preserve)));
  const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(16)));
  ASSERT_EQ(out.action, Action::ToOverlay);
  const Parsed p = out.p();
  EXPECT_EQ(p.src(), kClientV4);
  EXPECT_EQ(p.sport(), 40001);
  EXPECT_EQ(p.dport(), 53);
  ASSERT_TRUE(kReplicaMacs.contains(p.dst())) << p.dst();
  EXPECT_EQ(str(p.dst_mac()), str(kReplicaMacs.at(p.dst())));
  EXPECT_EQ(str(p.src_mac()), str(kOverlayMac));
  EXPECT_TRUE(checksums_ok(out.frame));

  // The replica answers the client directly (routed via the ingress's overlay address).
  const Out back = overlay(*fwd, from_replica(Builder().ipv4(p.dst(), kClientV4).udp(53, 40001).payload_size(16), p.dst()));
  expect_to_client(back, kServiceV4, 53, kClientV4, 40001);
  EXPECT_EQ(fwd->status()["services"][0]["client_ip"], "preserve");
}

TEST_F(ForwardingTest, PreserveKeepsTheClientSourceV6) {
  auto fwd = make(ingress(service(v6_replicas(), config::ClientIp::Preserve)));
  const Out out = client(*fwd, from_client(Builder().ipv6(kClientV6, kServiceV6).tcp(51000, 443, pkt::kTcpSyn)));
  ASSERT_EQ(out.action, Action::ToOverlay);
  const Parsed p = out.p();
  EXPECT_EQ(p.src(), kClientV6);
  EXPECT_EQ(p.sport(), 51000);
  ASSERT_TRUE(kReplicaMacs.contains(p.dst())) << p.dst();
  EXPECT_EQ(str(p.dst_mac()), str(kReplicaMacs.at(p.dst())));
  EXPECT_TRUE(checksums_ok(out.frame));

  const Out back = overlay(
      *fwd, from_replica(Builder().ipv6(p.dst(), kClientV6).tcp(443, 51000, pkt::kTcpSyn | pkt::kTcpAck), p.dst()));
  expect_to_client(back, kServiceV6, 443, kClientV6, 51000);
}

// ================= ICMP echo =================

TEST_F(ForwardingTest, IcmpEchoV4ThroughNat) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).icmp(8, 0, 0x1234, 7).payload_size(56)));
  ASSERT_EQ(out.action, Action::ToOverlay);
  const Parsed p = out.p();
  EXPECT_EQ(p.src(), kOverlayV4);
  ASSERT_TRUE(kReplicaMacs.contains(p.dst())) << p.dst();
  EXPECT_EQ(str(p.dst_mac()), str(kReplicaMacs.at(p.dst())));
  EXPECT_EQ(p.icmp_type(), 8);
  const std::uint16_t nat_id = p.icmp_id();
  EXPECT_GE(nat_id, kNatFirst);
  EXPECT_LE(nat_id, kNatLast);
  EXPECT_EQ(frames::get16(&p.f[p.l.l4 + 6]), 7) << "sequence";
  EXPECT_TRUE(checksums_ok(out.frame));

  const Out back =
      overlay(*fwd, from_replica(Builder().ipv4(p.dst(), kOverlayV4).icmp(0, 0, nat_id, 7).payload_size(56), p.dst()));
  ASSERT_EQ(back.action, Action::ToClient);
  const Parsed r = back.p();
  EXPECT_EQ(r.src(), kServiceV4);
  EXPECT_EQ(r.dst(), kClientV4);
  EXPECT_EQ(r.icmp_type(), 0);
  EXPECT_EQ(r.icmp_id(), 0x1234);
  EXPECT_EQ(frames::get16(&r.f[r.l.l4 + 6]), 7);
  EXPECT_EQ(str(r.src_mac()), str(kClientMac));
  EXPECT_EQ(str(r.dst_mac()), str(kGatewayMac));
  EXPECT_TRUE(checksums_ok(back.frame));
}

TEST_F(ForwardingTest, IcmpEchoV6ThroughNat) {
  auto fwd = make(ingress(service(v6_replicas())));
  const Out out = client(*fwd, from_client(Builder().ipv6(kClientV6, kServiceV6).icmp(128, 0, 0x4321, 1).payload_size(56)));
  ASSERT_EQ(out.action, Action::ToOverlay);
  const Parsed p = out.p();
  EXPECT_EQ(p.src(), kOverlayV6);
  ASSERT_TRUE(kReplicaMacs.contains(p.dst())) << p.dst();
  EXPECT_EQ(str(p.dst_mac()), str(kReplicaMacs.at(p.dst())));
  EXPECT_EQ(p.icmp_type(), 128);
  const std::uint16_t nat_id = p.icmp_id();
  EXPECT_GE(nat_id, kNatFirst);
  EXPECT_LE(nat_id, kNatLast);
  EXPECT_TRUE(checksums_ok(out.frame));

  const Out back =
      overlay(*fwd, from_replica(Builder().ipv6(p.dst(), kOverlayV6).icmp(129, 0, nat_id, 1).payload_size(56), p.dst()));
  ASSERT_EQ(back.action, Action::ToClient);
  const Parsed r = back.p();
  EXPECT_EQ(r.src(), kServiceV6);
  EXPECT_EQ(r.dst(), kClientV6);
  EXPECT_EQ(r.icmp_type(), 129);
  EXPECT_EQ(r.icmp_id(), 0x4321);
  EXPECT_EQ(str(r.dst_mac()), str(kGatewayMac));
  EXPECT_TRUE(checksums_ok(back.frame));
}

// ================= larger than the overlay MTU =================

TEST_F(ForwardingTest, TooBigV4WithDfIsAnsweredWithFragNeeded) {
  auto fwd = make(ingress(service(v4_replicas())));
  // Exactly the overlay MTU still goes.
  const Out fits = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40002, 53).payload_size(kOverlayMtu - 28)));
  expect_natted(fits, kOverlayV4, 53);

  const Bytes big = with_df(from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(1472)));
  ASSERT_EQ(parse(big).ip_len(), 1500u);
  const Out out = client(*fwd, big);
  ASSERT_EQ(out.action, Action::ToClient);
  const Parsed p = out.p();
  EXPECT_EQ(out.frame.size(), 14u + 20 + 8 + 28);
  EXPECT_EQ(p.ethertype(), 0x0800);
  EXPECT_EQ(str(p.src_mac()), str(kClientMac));
  EXPECT_EQ(str(p.dst_mac()), str(kGatewayMac));
  EXPECT_EQ(p.l.proto, 1);
  EXPECT_EQ(p.ip_len(), 56u);
  EXPECT_GT(p.f[p.l.l3 + 8], 0) << "ttl";
  EXPECT_EQ(p.src(), kServiceV4);
  EXPECT_EQ(p.dst(), kClientV4);
  EXPECT_EQ(p.icmp_type(), 3);
  EXPECT_EQ(p.icmp_code(), 4);
  EXPECT_EQ(frames::get16(&p.f[p.l.l4 + 4]), 0);
  EXPECT_EQ(frames::get16(&p.f[p.l.l4 + 6]), kOverlayMtu) << "next-hop MTU";
  const Bytes original = parse(big).ip_packet();
  EXPECT_EQ(Bytes(p.f.begin() + static_cast<long>(p.l.l4) + 8, p.f.end()), Bytes(original.begin(), original.begin() + 28))
      << "quotes the IP header and 8 bytes";
  EXPECT_TRUE(checksums_ok(out.frame));

  const auto status = fwd->status();
  EXPECT_EQ(status["too_big_answered"], 1);
  EXPECT_EQ(status["to_overlay"], 1);
  EXPECT_EQ(status["to_client"], 1) << "the ICMP answer is a frame to the client too";
  EXPECT_TRUE(status["drops"].empty()) << status["drops"].dump();
}

// IPv4 options are part of the header the answer quotes (RFC 792: header + 8 bytes).
TEST_F(ForwardingTest, TooBigV4WithOptionsAndTcpQuotesTheWholeHeader) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Bytes big = with_df(from_client(Builder()
                                            .ipv4(kClientV4, kServiceV4)
                                            .ipv4_options({1, 1, 1, 0}) // NOP NOP NOP EOL
                                            .tcp(51000, 443, pkt::kTcpAck | pkt::kTcpPsh)
                                            .payload_size(1460)));
  ASSERT_EQ(parse(big).ip_len(), 24u + 20 + 1460);
  const Out out = client(*fwd, big);
  ASSERT_EQ(out.action, Action::ToClient);
  const Parsed p = out.p();
  EXPECT_EQ(p.ip_len(), 20u + 8 + 24 + 8);
  EXPECT_EQ(out.frame.size(), 14u + 20 + 8 + 32);
  EXPECT_EQ(p.src(), kServiceV4);
  EXPECT_EQ(p.dst(), kClientV4);
  EXPECT_EQ(p.icmp_type(), 3);
  EXPECT_EQ(p.icmp_code(), 4);
  EXPECT_EQ(frames::get16(&p.f[p.l.l4 + 6]), kOverlayMtu);
  const Bytes original = parse(big).ip_packet();
  EXPECT_EQ(Bytes(p.f.begin() + static_cast<long>(p.l.l4) + 8, p.f.end()), Bytes(original.begin(), original.begin() + 32));
  EXPECT_TRUE(checksums_ok(out.frame));
}

TEST_F(ForwardingTest, TooBigV4WithoutDfIsDropped) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(1472)));
  EXPECT_EQ(out.action, Action::Drop);
  const auto status = fwd->status();
  EXPECT_EQ(status["drops"]["too_big"], 1);
  EXPECT_EQ(status["too_big_answered"], 0);
  EXPECT_EQ(status["to_overlay"], 0);
  // Smaller packets of the flow still go.
  expect_natted(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(100))),
                kOverlayV4, 53);
}

TEST_F(ForwardingTest, TooBigV6IsAnsweredWithPacketTooBig) {
  auto fwd = make(ingress(service(v6_replicas())));
  const Bytes big = from_client(Builder().ipv6(kClientV6, kServiceV6).udp(40001, 53).payload_size(1452));
  ASSERT_EQ(parse(big).ip_len(), 1500u);
  const Out out = client(*fwd, big);
  ASSERT_EQ(out.action, Action::ToClient);
  const Parsed p = out.p();
  EXPECT_EQ(out.frame.size(), 14u + 1280) << "as much as fits in the IPv6 minimum MTU";
  EXPECT_EQ(p.ethertype(), 0x86DD);
  EXPECT_EQ(str(p.src_mac()), str(kClientMac));
  EXPECT_EQ(str(p.dst_mac()), str(kGatewayMac));
  EXPECT_EQ(p.l.proto, 58);
  EXPECT_EQ(p.ip_len(), 1280u);
  EXPECT_GT(p.f[p.l.l3 + 7], 0) << "hop limit";
  EXPECT_EQ(p.src(), kServiceV6);
  EXPECT_EQ(p.dst(), kClientV6);
  EXPECT_EQ(p.icmp_type(), 2);
  EXPECT_EQ(p.icmp_code(), 0);
  EXPECT_EQ(frames::get16(&p.f[p.l.l4 + 4]) << 16 | frames::get16(&p.f[p.l.l4 + 6]), kOverlayMtu);
  const Bytes original = parse(big).ip_packet();
  EXPECT_EQ(Bytes(p.f.begin() + static_cast<long>(p.l.l4) + 8, p.f.end()),
            Bytes(original.begin(), original.begin() + 1280 - 48));
  EXPECT_TRUE(checksums_ok(out.frame));
  EXPECT_EQ(fwd->status()["too_big_answered"], 1);
}

// ================= ICMP errors from the overlay =================

TEST_F(ForwardingTest, ReplicaPortUnreachableV4IsTranslatedToTheClient) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Bytes request = from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(20));
  const Out forwarded = client(*fwd, request);
  const std::string chosen = expect_natted(forwarded, kOverlayV4, 53);

  // The replica's kernel quotes the whole (small) datagram it got.
  const Out back = overlay(*fwd, from_replica(Builder().ipv4(chosen, kOverlayV4).icmp_error(3, 3, forwarded.p().ip_packet()), chosen));
  ASSERT_EQ(back.action, Action::ToClient);
  const Parsed p = back.p();
  EXPECT_EQ(p.src(), kServiceV4);
  EXPECT_EQ(p.dst(), kClientV4);
  EXPECT_EQ(p.icmp_type(), 3);
  EXPECT_EQ(p.icmp_code(), 3);
  EXPECT_EQ(str(p.src_mac()), str(kClientMac));
  EXPECT_EQ(str(p.dst_mac()), str(kGatewayMac));
  const Parsed in = p.inner();
  EXPECT_EQ(in.src(), kClientV4);
  EXPECT_EQ(in.dst(), kServiceV4);
  EXPECT_EQ(in.sport(), 40001);
  EXPECT_EQ(in.dport(), 53);
  EXPECT_EQ(in.ip_packet(), parse(request).ip_packet()) << "the client's own datagram, as it sent it";
  EXPECT_TRUE(checksums_ok(back.frame)); // outer IPv4 + ICMP, inner IPv4 header and UDP
  EXPECT_EQ(fwd->status()["to_client"], 1);
}

TEST_F(ForwardingTest, RouterFragNeededAboutTcpV4IsTranslatedToTheClient) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Bytes syn = from_client(Builder().ipv4(kClientV4, kServiceV4).tcp(51000, 443, pkt::kTcpSyn));
  const Out forwarded = client(*fwd, syn);
  const std::string chosen = expect_natted(forwarded, kOverlayV4, 443);

  // A router on the overlay quotes the IP header and 8 bytes (RFC 792); rest = next-hop MTU.
  const Bytes natted = forwarded.p().ip_packet();
  const Bytes quote(natted.begin(), natted.begin() + 28);
  const Out back = overlay(
      *fwd, from_replica(Builder().ipv4("10.201.0.254", kOverlayV4).icmp_error(3, 4, quote, 1400), chosen));
  ASSERT_EQ(back.action, Action::ToClient);
  const Parsed p = back.p();
  EXPECT_EQ(p.src(), kServiceV4);
  EXPECT_EQ(p.dst(), kClientV4);
  EXPECT_EQ(p.icmp_type(), 3);
  EXPECT_EQ(p.icmp_code(), 4);
  EXPECT_EQ(frames::get16(&p.f[p.l.l4 + 6]), 1400) << "MTU kept";
  const Parsed in = p.inner();
  EXPECT_EQ(in.src(), kClientV4);
  EXPECT_EQ(in.dst(), kServiceV4);
  EXPECT_EQ(in.sport(), 51000);
  EXPECT_EQ(in.dport(), 443);
  const Bytes original = parse(syn).ip_packet();
  EXPECT_EQ(in.ip_packet(), Bytes(original.begin(), original.begin() + 28));
  EXPECT_TRUE(checksums_ok(back.frame));
}

TEST_F(ForwardingTest, ReplicaPortUnreachableV6IsTranslatedToTheClient) {
  auto fwd = make(ingress(service(v6_replicas())));
  const Bytes request = from_client(Builder().ipv6(kClientV6, kServiceV6).udp(40001, 53).payload_size(20));
  const Out forwarded = client(*fwd, request);
  const std::string chosen = expect_natted(forwarded, kOverlayV6, 53);

  const Out back = overlay(*fwd, from_replica(Builder().ipv6(chosen, kOverlayV6).icmp_error(1, 4, forwarded.p().ip_packet()), chosen));
  ASSERT_EQ(back.action, Action::ToClient);
  const Parsed p = back.p();
  EXPECT_EQ(p.src(), kServiceV6);
  EXPECT_EQ(p.dst(), kClientV6);
  EXPECT_EQ(p.icmp_type(), 1);
  EXPECT_EQ(p.icmp_code(), 4);
  const Parsed in = p.inner();
  EXPECT_EQ(in.src(), kClientV6);
  EXPECT_EQ(in.dst(), kServiceV6);
  EXPECT_EQ(in.sport(), 40001);
  EXPECT_EQ(in.dport(), 53);
  EXPECT_EQ(in.ip_packet(), parse(request).ip_packet());
  EXPECT_TRUE(checksums_ok(back.frame)); // outer ICMPv6 (pseudo-header), inner UDP
}

TEST_F(ForwardingTest, ReplicaErrorAboutEchoV4IsTranslatedToTheClient) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Bytes request = from_client(Builder().ipv4(kClientV4, kServiceV4).icmp(8, 0, 0x1234, 9).payload_size(8));
  const Out forwarded = client(*fwd, request);
  ASSERT_EQ(forwarded.action, Action::ToOverlay);
  const std::string chosen = forwarded.p().dst();
  const Out back =
      overlay(*fwd, from_replica(Builder().ipv4(chosen, kOverlayV4).icmp_error(3, 13, forwarded.p().ip_packet()), chosen));
  ASSERT_EQ(back.action, Action::ToClient);
  const Parsed in = back.p().inner();
  EXPECT_EQ(in.src(), kClientV4);
  EXPECT_EQ(in.dst(), kServiceV4);
  EXPECT_EQ(in.icmp_id(), 0x1234);
  EXPECT_EQ(in.ip_packet(), parse(request).ip_packet());
  EXPECT_TRUE(checksums_ok(back.frame));
}

// ================= flow expiry =================

TEST_F(ForwardingTest, ExpiredFlowsAreForgotten) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Out first = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53)));
  const std::string chosen = expect_natted(first, kOverlayV4, 53);
  fwd->expire(now_ + 29s);
  EXPECT_EQ(fwd->status()["services"][0]["flows"], 1) << "UDP flows live 30 s";
  now_ += 31s;
  fwd->expire(now_);
  EXPECT_EQ(fwd->status()["services"][0]["flows"], 0);
  EXPECT_EQ(overlay(*fwd, from_replica(Builder().ipv4(chosen, kOverlayV4).udp(53, first.p().sport()), chosen)).action,
            Action::Drop);
  EXPECT_EQ(fwd->status()["drops"]["unknown_reply"], 1);
  expect_natted(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53))), kOverlayV4, 53);
  EXPECT_EQ(fwd->status()["services"][0]["flows_created"], 2);
}

// ================= drops =================

TEST_F(ForwardingTest, OverlayFramesWithoutAFlowAreDropped) {
  auto fwd = make(ingress(service(v4_replicas())));
  EXPECT_EQ(overlay(*fwd, from_replica(Builder().ipv4("10.201.0.11", kOverlayV4).udp(53, 20000).payload_size(8), "10.201.0.11")).action,
            Action::Drop);
  // An error about a packet the ingress never sent.
  const Bytes never_sent = Builder().ipv4(kOverlayV4, "10.201.0.11").udp(20001, 53).payload_size(8).ip_packet();
  EXPECT_EQ(overlay(*fwd, from_replica(Builder().ipv4("10.201.0.11", kOverlayV4).icmp_error(3, 3, never_sent), "10.201.0.11")).action,
            Action::Drop);
  // Not IP at all.
  Bytes arp = from_replica(Builder().ipv4("10.201.0.11", kOverlayV4).udp(53, 20000), "10.201.0.11");
  arp[12] = 0x08, arp[13] = 0x06;
  EXPECT_EQ(overlay(*fwd, arp).action, Action::Drop);
  // An ICMP error whose quote is cut inside its IP header.
  const Bytes cut(never_sent.begin(), never_sent.begin() + 12);
  EXPECT_EQ(overlay(*fwd, from_replica(Builder().ipv4("10.201.0.11", kOverlayV4).icmp_error(3, 3, cut), "10.201.0.11")).action,
            Action::Drop);

  const auto status = fwd->status();
  EXPECT_EQ(status["drops"]["unknown_reply"], 2) << status["drops"].dump();
  EXPECT_EQ(status["drops"]["bad_overlay_frame"], 1) << status["drops"].dump();
  EXPECT_EQ(status["drops"]["icmp_untranslatable"], 1) << status["drops"].dump();
  EXPECT_EQ(status["to_client"], 0);
}

TEST_F(ForwardingTest, FrameToAnotherAddressIsNotServiceIp) {
  auto fwd = make(ingress(service(v4_replicas())));
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, "198.18.0.99").udp(40001, 53))).action, Action::Drop);
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv6(kClientV6, "fd00:18::99").udp(40001, 53))).action, Action::Drop);
  const auto status = fwd->status();
  EXPECT_EQ(status["drops"]["not_service_ip"], 2) << status["drops"].dump();
  EXPECT_EQ(status["drops"].size(), 1u) << status["drops"].dump();
  EXPECT_EQ(status["accepted"], 2) << "conforming, but not ours";
  EXPECT_EQ(status["services"][0]["flows"], 0);
}

TEST_F(ForwardingTest, ConformityDropsAreCountedByReason) {
  config::Ingress in = ingress(service(v4_replicas()));
  in.inspect.allow = {config::AllowRule{.protocol = config::Protocol::Tcp, .ports = {80, 443}},
                      config::AllowRule{.protocol = config::Protocol::Udp, .ports = {53}},
                      config::AllowRule{.protocol = config::Protocol::Icmp, .ports = {}}};
  in.inspect.deny_sources = {config::Cidr{boost::asio::ip::make_network_v4("198.19.66.0/24")}};
  auto fwd = make(in);

  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 54))).action, Action::Drop);
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).tcp(51000, 22, pkt::kTcpSyn))).action, Action::Drop);
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).raw(132, Bytes(16, 0)))).action, Action::Drop);
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4("198.19.66.5", kServiceV4).udp(40001, 53))).action, Action::Drop);
  Bytes corrupt = from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(8));
  corrupt[14 + 20 + 6] ^= 0x01;
  EXPECT_EQ(client(*fwd, corrupt).action, Action::Drop);
  expect_natted(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53))), kOverlayV4, 53);

  const auto status = fwd->status();
  const auto& drops = status["drops"];
  EXPECT_EQ(drops["port_not_allowed"], 2) << drops.dump();
  EXPECT_EQ(drops["proto_not_allowed"], 1) << drops.dump();
  EXPECT_EQ(drops["denied_source"], 1) << drops.dump();
  EXPECT_EQ(drops["bad_checksum"], 1) << drops.dump();
  EXPECT_EQ(drops.size(), 4u) << drops.dump();
  EXPECT_EQ(status["accepted"], 1);
  EXPECT_EQ(status["to_overlay"], 1);
  EXPECT_EQ(status["services"][0]["flows"], 1);
}

// ================= neighbours =================

// A frame for a replica whose MAC is unknown is held (the data path keeps it until the MAC is
// known or gives up, counting no_neighbour), and the kernel is asked to resolve the replica.
TEST_F(ForwardingTest, UnresolvedReplicaHoldsTheFrameAndAsksTheKernel) {
  auto fwd = make(ingress(service({replica(kUnresolvedReplica)})));
  // Taken after make(): configure() asked inside it, and the once-a-second limit counts from then.
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(fwd->status()["services"][0]["replicas"][0]["resolved"], false);
  // configure() asked the kernel already: it holds an (incomplete) entry now.
  EXPECT_NE(kernel_neighbour(kUnresolvedReplica), "");
  ASSERT_TRUE(ip_batch({std::string("neigh del ") + kUnresolvedReplica + " dev ovl0"}));
  ASSERT_EQ(kernel_neighbour(kUnresolvedReplica), "");
  // NeighbourCache::resolve asks at most once a second per address.
  std::this_thread::sleep_until(asked + 1100ms);

  const Bytes request = from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(8));
  const Out held = client(*fwd, request);
  EXPECT_EQ(held.action, Action::Hold);
  EXPECT_EQ(held.p().dst(), kUnresolvedReplica) << "a held frame is NAT'ed already, only its MAC is missing";
  EXPECT_FALSE(fwd->replica_mac(fwd->held_for()).has_value());
  EXPECT_NE(kernel_neighbour(kUnresolvedReplica), "") << "holding did not ask the kernel to resolve the replica";
  fwd->count_drop(ForwardDrop::NoNeighbour); // what the data path does when it gives up

  // The kernel learns the MAC; its event reaches the cache, and the forwarder reads it.
  ASSERT_TRUE(ip_batch({std::string("neigh replace ") + kUnresolvedReplica + " lladdr 02:00:00:00:00:14 dev ovl0 nud permanent"}));
  neighbours_->process_events();
  fwd->refresh_neighbours();
  ASSERT_TRUE(fwd->replica_mac(fwd->held_for()).has_value()) << "the held frame's replica is resolved now";
  const Out out = client(*fwd, request);
  ASSERT_EQ(out.action, Action::ToOverlay);
  EXPECT_EQ(out.p().dst(), kUnresolvedReplica);
  EXPECT_EQ(str(out.p().dst_mac()), "02:00:00:00:00:14");
  EXPECT_TRUE(checksums_ok(out.frame));
  const auto status = fwd->status();
  EXPECT_EQ(status["services"][0]["replicas"][0]["resolved"], true);
  EXPECT_EQ(status["drops"]["no_neighbour"], 1);
  EXPECT_EQ(status["to_overlay"], 1);
}

TEST_F(ForwardingTest, NeighbourCacheFollowsTheKernelTable) {
  EXPECT_EQ(neighbours_->lookup(boost::asio::ip::make_address("10.201.0.11")),
            std::optional<xdpfwd::MacAddress>(xdpfwd::MacAddress{0x02, 0, 0, 0, 0, 0x11}));
  EXPECT_EQ(neighbours_->lookup(boost::asio::ip::make_address("fd00:201::12")),
            std::optional<xdpfwd::MacAddress>(xdpfwd::MacAddress{0x02, 0, 0, 0, 0x06, 0x12}));
  EXPECT_FALSE(neighbours_->lookup(boost::asio::ip::make_address(kUnresolvedReplica)));
  ASSERT_TRUE(ip_batch({"neigh del 10.201.0.11 dev ovl0", "neigh replace fd00:201::12 lladdr 02:00:00:00:16:12 dev ovl0 nud permanent"}));
  neighbours_->process_events();
  EXPECT_FALSE(neighbours_->lookup(boost::asio::ip::make_address("10.201.0.11")));
  EXPECT_EQ(neighbours_->lookup(boost::asio::ip::make_address("fd00:201::12")),
            std::optional<xdpfwd::MacAddress>(xdpfwd::MacAddress{0x02, 0, 0, 0, 0x16, 0x12}));
}

// ================= configure() =================

struct FlowPlace {
  std::string replica;
  std::uint16_t nat_port = 0;
};

TEST_F(ForwardingTest, ConfigureAddingAReplicaKeepsFlows) {
  auto fwd = make(ingress(service(v4_replicas())));
  std::vector<FlowPlace> flows;
  for (std::uint16_t port = 31000; port < 31032; ++port) {
    const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(port, 53)));
    flows.push_back({expect_natted(out, kOverlayV4, 53), out.p().sport()});
  }
  fwd->configure(ingress(service({replica("10.201.0.11"), replica("10.201.0.12"), replica("10.201.0.13")})));
  for (std::uint16_t i = 0; i < flows.size(); ++i) {
    const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(31000 + i, 53)));
    EXPECT_EQ(expect_natted(out, kOverlayV4, 53), flows[i].replica) << "flow " << i;
    EXPECT_EQ(out.p().sport(), flows[i].nat_port) << "flow " << i;
  }
  int on_new = 0;
  for (std::uint16_t port = 32000; port < 32064; ++port)
    on_new += expect_natted(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(port, 53))), kOverlayV4, 53) ==
              "10.201.0.13";
  EXPECT_GT(on_new, 0) << "the new replica gets new flows";

  const auto status = fwd->status();
  EXPECT_EQ(status["services"][0]["flows_moved"], 0);
  EXPECT_EQ(status["services"][0]["flows"], 32 + 64);
  ASSERT_EQ(status["services"][0]["replicas"].size(), 3u);
  for (const auto& r : status["services"][0]["replicas"]) EXPECT_EQ(r["resolved"], true) << r.dump();
}

TEST_F(ForwardingTest, ConfigureRemovingAReplicaMovesItsFlows) {
  auto fwd = make(ingress(service(v4_replicas())));
  std::vector<FlowPlace> flows;
  for (std::uint16_t port = 31000; port < 31032; ++port) {
    const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(port, 53)));
    flows.push_back({expect_natted(out, kOverlayV4, 53), out.p().sport()});
  }
  const auto on_removed = std::count_if(flows.begin(), flows.end(), [](const FlowPlace& f) { return f.replica == "10.201.0.12"; });
  ASSERT_GT(on_removed, 0);
  ASSERT_LT(on_removed, 32);

  fwd->configure(ingress(service({replica("10.201.0.11")})));
  std::optional<std::uint16_t> moved_flow;
  std::uint16_t moved_new_port = 0;
  for (std::uint16_t i = 0; i < flows.size(); ++i) {
    const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(31000 + i, 53)));
    EXPECT_EQ(expect_natted(out, kOverlayV4, 53), "10.201.0.11") << "flow " << i;
    if (flows[i].replica == "10.201.0.11") {
      EXPECT_EQ(out.p().sport(), flows[i].nat_port) << "flow " << i << " stays as it was";
    } else if (!moved_flow) {
      moved_flow = i;
      moved_new_port = out.p().sport();
    }
  }
  ASSERT_TRUE(moved_flow);
  // The removed replica's answers are not the flow's any more; the new replica's are.
  EXPECT_EQ(overlay(*fwd, from_replica(Builder().ipv4("10.201.0.12", kOverlayV4).udp(53, flows[*moved_flow].nat_port),
                                      "10.201.0.12")).action,
            Action::Drop);
  expect_to_client(overlay(*fwd, from_replica(Builder().ipv4("10.201.0.11", kOverlayV4).udp(53, moved_new_port), "10.201.0.11")),
                   kServiceV4, 53, kClientV4, static_cast<std::uint16_t>(31000 + *moved_flow));

  const auto status = fwd->status();
  EXPECT_EQ(status["services"][0]["flows_moved"], on_removed);
  EXPECT_EQ(status["services"][0]["flows"], 32);
  EXPECT_EQ(status["services"][0]["replicas"].size(), 1u);
  EXPECT_EQ(status["drops"]["unknown_reply"], 1);
}

// ================= bugs =================

// A client's ICMP error about an answer it got (port unreachable, or frag-needed from the client's
// path: PMTU discovery for the reply direction) quotes {service IP:port -> client:port}. The
// conformity check accepts it on purpose (conformity.hpp: "keeps path MTU discovery working");
// the replica can use it only if the quoted packet is translated to what the replica sent.
TEST_F(ForwardingTest, ClientIcmpErrorIsTranslatedForTheReplica) {
  auto fwd = make(ingress(service(v4_replicas())));
  const Out forwarded = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53).payload_size(8)));
  const std::string chosen = expect_natted(forwarded, kOverlayV4, 53);
  const std::uint16_t nat_port = forwarded.p().sport();

  // The answer as the client received it, and the client's port unreachable about it.
  const Bytes answer = Builder().ipv4(kServiceV4, kClientV4).udp(53, 40001).payload_size(8).ip_packet();
  const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).icmp_error(3, 3, answer)));
  ASSERT_EQ(out.action, Action::ToOverlay);
  const Parsed p = out.p();
  EXPECT_EQ(p.src(), kOverlayV4);
  EXPECT_EQ(p.dst(), chosen);
  EXPECT_EQ(str(p.dst_mac()), str(kReplicaMacs.at(chosen)));
  const Parsed in = p.inner();
  EXPECT_EQ(in.src(), chosen) << "the quoted answer must be the replica's own";
  EXPECT_EQ(in.dst(), kOverlayV4);
  EXPECT_EQ(in.sport(), 53);
  EXPECT_EQ(in.dport(), nat_port);
  EXPECT_TRUE(checksums_ok(out.frame));
  EXPECT_EQ(fwd->status()["services"][0]["flows"], 1) << "an error must not open a flow of its own";
}

// The overlay address of a running ingress changes: new flows are NAT'ed to the new address, so
// their answers come back to it.
TEST_F(ForwardingTest, ConfigureWithANewOverlayAddressNatsToIt) {
  auto fwd = make(ingress(service(v4_replicas())));
  config::Ingress changed = ingress(service(v4_replicas()));
  changed.overlay.address = boost::asio::ip::make_network_v4("10.201.0.2/24");
  fwd->configure(changed);
  const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53)));
  const std::string chosen = expect_natted(out, "10.201.0.2", 53);
  const Out back = overlay(*fwd, from_replica(Builder().ipv4(chosen, "10.201.0.2").udp(53, out.p().sport()), chosen));
  expect_to_client(back, kServiceV4, 53, kClientV4, 40001);
}

// status() feeds metrics counters: a reload must not set them back to zero.
TEST_F(ForwardingTest, ConfigureKeepsTheCounters) {
  auto fwd = make(ingress(service(v4_replicas())));
  config::Ingress in = ingress(service(v4_replicas()));
  in.inspect.allow = {config::AllowRule{.protocol = config::Protocol::Udp, .ports = {53}}};
  fwd->configure(in);
  expect_natted(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 53))), kOverlayV4, 53);
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40001, 54))).action, Action::Drop);
  fwd->configure(in);
  const auto status = fwd->status();
  EXPECT_EQ(status["to_overlay"], 1);
  EXPECT_EQ(status["accepted"], 1);
  EXPECT_EQ(status["drops"]["port_not_allowed"], 1) << status["drops"].dump();
}

} // namespace

// ================= several services: the DNS query name picks the service =================

// A DNS query for name (type A, RD set) with an EDNS OPT record, as dig sends it.
Bytes dns_query(const std::string& name, std::uint16_t id = 0x1234) {
  Bytes query = {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
  std::size_t start = 0;
  while (start < name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    query.push_back(static_cast<std::uint8_t>(dot - start));
    query.insert(query.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  const Bytes tail = {0, 0, 1, 0, 1, /* OPT */ 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
  query.insert(query.end(), tail.begin(), tail.end());
  return query;
}

config::Ingress two_services(const std::string& unknown_domain = "reject") {
  config::Service a = service({replica("10.201.0.11"), replica("fd00:201::11")});
  a.name = "svc-a";
  a.domains = {"a.example.test", "*.a.example.test"};
  config::Service b = service({replica("10.201.0.12"), replica("fd00:201::12")});
  b.name = "svc-b";
  b.domains = {"b.example.test"};
  config::Ingress in = ingress(a);
  in.services.push_back(b);
  in.domain_routing.tls_ports = {443};
  in.domain_routing.dns_ports = {53};
  in.domain_routing.unknown_domain = unknown_domain;
  return in;
}

TEST_F(ForwardingTest, DnsQueryNamePicksTheServiceAndRepliesComeBack) {
  auto fwd = make(two_services());
  // One client socket asks for names of both services: each query goes by its own name.
  const Out to_a = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40053, 53).payload(dns_query("x.A.example.test"))));
  EXPECT_EQ(expect_natted(to_a, kOverlayV4, 53), "10.201.0.11");
  const Out to_b = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40053, 53).payload(dns_query("b.example.test"))));
  EXPECT_EQ(expect_natted(to_b, kOverlayV4, 53), "10.201.0.12");
  const Out to_b6 = client(*fwd, from_client(Builder().ipv6(kClientV6, kServiceV6).udp(40053, 53).payload(dns_query("b.example.test."))));
  EXPECT_EQ(expect_natted(to_b6, kOverlayV6, 53), "fd00:201::12");

  for (const auto& [out, replica_address] : {std::pair{&to_a, "10.201.0.11"}, std::pair{&to_b, "10.201.0.12"}}) {
    const Bytes answer = from_replica(
        Builder().ipv4(replica_address, kOverlayV4).udp(53, out->p().sport()).payload_size(30, 7), replica_address);
    expect_to_client(overlay(*fwd, answer), kServiceV4, 53, kClientV4, 40053);
  }
  const auto status = fwd->status();
  EXPECT_EQ(status["services"][0]["dns_routed"], 1);
  EXPECT_EQ(status["services"][1]["dns_routed"], 2);
  EXPECT_EQ(status["services"][0]["flows"], 1);
  EXPECT_EQ(status["services"][1]["flows"], 2);
  EXPECT_TRUE(status["drops"].empty()) << status["drops"].dump();
}

// The REFUSED answer: from the service IP and port to the client, same ID and question, no
// other record, every checksum right.
void expect_refused(const Out& out, const char* service_ip, const char* client_ip, const Bytes& query) {
  expect_to_client(out, service_ip, 53, client_ip, 40054);
  const Parsed p = out.p();
  const std::size_t dns = p.l.l4 + 8;
  ASSERT_GE(out.frame.size(), dns + 12);
  EXPECT_EQ(out.frame.size(), p.l.end);
  EXPECT_EQ(frames::get16(&out.frame[dns]), 0x1234);             // ID
  EXPECT_EQ(out.frame[dns + 2], 0x81);                           // QR, opcode QUERY, RD
  EXPECT_EQ(out.frame[dns + 3] & 0x0F, 5);                       // REFUSED
  EXPECT_EQ(frames::get16(&out.frame[dns + 4]), 1);              // QDCOUNT
  EXPECT_EQ(frames::get16(&out.frame[dns + 10]), 0);             // ARCOUNT: the OPT is gone
  EXPECT_EQ(out.frame.size() - dns, query.size() - 11);          // the question only
  EXPECT_TRUE(std::equal(query.begin() + 12, query.end() - 11, out.frame.begin() + static_cast<long>(dns) + 12));
  EXPECT_EQ(frames::get16(&out.frame[p.l.l4 + 4]), out.frame.size() - p.l.l4); // UDP length
  EXPECT_EQ(p.ip_len(), p.l.end - p.l.l3);
}

TEST_F(ForwardingTest, DnsQueryForAnUnknownNameIsRefusedInPlace) {
  auto fwd = make(two_services());
  const Bytes query = dns_query("c.example.test");
  const Out v4 = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40054, 53).payload(query)));
  expect_refused(v4, kServiceV4, kClientV4, query);
  EXPECT_EQ(v4.p().l.l4, 14u + 20u);
  // IPv4 options are not echoed back.
  const Out options = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).ipv4_options({1, 1, 1, 0})
                                                   .udp(40054, 53).payload(query)));
  expect_refused(options, kServiceV4, kClientV4, query);
  EXPECT_EQ(options.p().l.l4, 14u + 20u);
  const Out v6 = client(*fwd, from_client(Builder().ipv6(kClientV6, kServiceV6).udp(40054, 53).payload(query)));
  expect_refused(v6, kServiceV6, kClientV6, query);
  // No name at all (the root) and reject: refused too.
  expect_refused(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40054, 53).payload(dns_query("")))),
                 kServiceV4, kClientV4, dns_query(""));

  const auto status = fwd->status();
  EXPECT_EQ(status["dns_refused"], 4);
  EXPECT_EQ(status["to_client"], 4);
  EXPECT_EQ(status["services"][0]["flows"], 0);
  EXPECT_EQ(status["services"][1]["flows"], 0);
}

TEST_F(ForwardingTest, UnknownNameTakesTheUnknownDomainService) {
  auto fwd = make(two_services("svc-b"));
  const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40055, 53).payload(dns_query("c.example.test"))));
  EXPECT_EQ(expect_natted(out, kOverlayV4, 53), "10.201.0.12");
  // Ports without a domain go there as well.
  const Out other = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40055, 7).payload_size(20)));
  EXPECT_EQ(expect_natted(other, kOverlayV4, 7), "10.201.0.12");
  EXPECT_EQ(fwd->status()["dns_refused"], 0);
}

TEST_F(ForwardingTest, MalformedDnsAndPortsWithoutADomainAreDropped) {
  auto fwd = make(two_services());
  Bytes response = dns_query("a.example.test");
  response[2] |= 0x80; // QR: a response is never routed
  for (const Bytes& payload : {Bytes{1, 2, 3}, response, Bytes(40, 0xff)})
    EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40056, 53).payload(payload))).action,
              Action::Drop);
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40056, 7).payload_size(20))).action,
            Action::Drop);
  EXPECT_EQ(client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).tcp(40056, 22, pkt::kTcpSyn))).action,
            Action::Drop);
  const auto status = fwd->status();
  EXPECT_EQ(status["drops"]["bad_dns"], 3);
  EXPECT_EQ(status["drops"]["no_domain_port"], 2);
}

TEST_F(ForwardingTest, OneServiceKeepsThePacketPathForEveryPort) {
  config::Ingress in = ingress(service(v4_replicas()));
  in.domain_routing.tls_ports = {443};
  in.domain_routing.dns_ports = {53};
  auto fwd = make(in);
  // Not even a DNS query is read: any payload to port 53 is forwarded.
  const Out out = client(*fwd, from_client(Builder().ipv4(kClientV4, kServiceV4).udp(40057, 53).payload({1, 2, 3})));
  expect_natted(out, kOverlayV4, 53);
}

// max_flows is the ingress's, shared equally by its services (at least 4,096 each): memory does
// not grow with the number of services. A changed share starts the service's table afresh.
TEST_F(ForwardingTest, MaxFlowsIsSharedByTheServices) {
  auto capacities = [](const Forwarding& fwd) {
    std::vector<std::uint64_t> out;
    const nlohmann::json status = fwd.status();
    for (const auto& service : status["services"]) out.push_back(service["flow_capacity"]);
    return out;
  };
  config::Ingress one = ingress(service(v4_replicas()));
  EXPECT_EQ(capacities(*make(one)), std::vector<std::uint64_t>{262144});
  config::Ingress two = two_services();
  two.max_flows = 65536;
  auto fwd = make(two);
  EXPECT_EQ(capacities(*fwd), (std::vector<std::uint64_t>{32768, 32768}));
  two.max_flows = 4096;
  fwd->configure(two);
  EXPECT_EQ(capacities(*fwd), (std::vector<std::uint64_t>{4096, 4096}));
}
