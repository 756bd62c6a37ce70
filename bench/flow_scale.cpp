// xdpfwd-bench-flows: how the inspector's forwarding cost and memory grow with the flows in its
// table and with the services behind one ingress (issue #7, item 5). In process, on the real
// forwarding code (Forwarding: conformity check, flow table, balancer, rewrite), without the
// AF_XDP sockets, so that only the table's growth shows:
//
//   xdpfwd-bench-flows [--flows N]... [--services S]... [--seconds S]
//
// For each S and N: one ingress with S services (the last takes every flow: domain routing's
// unknown_domain, so that a reply is matched after S-1 other services' tables), each with a
// table of 1,048,576 flows (S = 1) or 131,072 (S > 1; larger N are skipped), client_ip preserve
// (no NAT port limit).
// N UDP flows are created (fill), then client frames of random established flows and their
// replicas' replies are forwarded for --seconds each. Prints
//   RESULT row=flows services=S flows=N fill_ns=… client_ns=… reply_ns=… rss_kib=…
// ns per frame, rss_kib: the process's resident memory with the tables filled.
// Needs root: it works in a network namespace of its own (a veth ovl0 with permanent neighbours
// for the replicas), which disappears with the process.
#include "forwarding.hpp"
#include "neighbour_cache.hpp"
#include "xdpfwd/netlink.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace xdpfwd;
using namespace xdpfwd::ingress;
using Clock = std::chrono::steady_clock;

// Each service's flow table: 1,048,576 flows with one service, 131,072 each with more (100 such
// tables take about 2 GiB; the flows go to one of them anyway).
std::uint32_t table_per_service(std::size_t services) { return services == 1 ? 1048576 : 131072; }
const packet::nat::Mac kClientMac{0x02, 0, 0, 0, 0, 0x01};   // eth0, as the host addressed it
const packet::nat::Mac kGatewayMac{0x02, 0, 0, 0, 0, 0x02};  // the host veth
constexpr std::size_t kMaxServices = 100;
// Service i's two replicas: 10.230.0.(2i + 2) and 10.230.0.(2i + 3).
std::string replica_address(std::size_t service, int which) {
  return "10.230.0." + std::to_string(2 * service + 2 + static_cast<std::size_t>(which));
}
constexpr std::uint8_t kServiceIp[4] = {198, 19, 255, 1};
constexpr std::uint16_t kServicePort = 5353;

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
    status.ignore(4096, '\n');
  }
  return 0;
}

// A private network namespace with ovl0 (a veth) and the replicas as permanent neighbours.
int private_overlay() {
  if (::unshare(CLONE_NEWNET) != 0) throw std::system_error(errno, std::generic_category(), "unshare(CLONE_NEWNET)");
  const UniqueFd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  Netlink netlink = Netlink::open();
  netlink.create_veth("ovl0", "ovl0p", self.get());
  const LinkInfo overlay = netlink.link("ovl0");
  netlink.set_up(netlink.link("lo"));
  netlink.set_up(overlay);
  netlink.set_up(netlink.link("ovl0p"));
  netlink.add_address(overlay, boost::asio::ip::make_address("10.230.0.1"), 24);
  for (std::size_t service = 0; service < kMaxServices; ++service)
    for (int which : {0, 1}) {
      const auto last = static_cast<std::uint8_t>(2 * service + 2 + static_cast<std::size_t>(which));
      netlink.add_permanent_neighbor(overlay, boost::asio::ip::make_address(replica_address(service, which)),
                                     {0x02, 0, 0, 0, 0x01, last});
    }
  return overlay.ifindex;
}

config::Ingress make_ingress(std::size_t services) {
  config::Ingress ingress;
  ingress.name = "bench";
  ingress.service_ips = {boost::asio::ip::make_address("198.19.255.1")};
  ingress.overlay.vni = 4199;
  ingress.overlay.address = boost::asio::ip::make_network_v4("10.230.0.1/24");
  ingress.max_flows = static_cast<std::uint32_t>(table_per_service(services) * services);
  for (std::size_t i = 0; i < services; ++i) {
    config::Service service;
    service.name = "s" + std::to_string(i);
    service.domains = {"s" + std::to_string(i) + ".example.test"};
    service.client_ip = config::ClientIp::Preserve;
    for (int which : {0, 1})
      service.replicas.push_back({.address = boost::asio::ip::make_address(replica_address(i, which)), .weight = 1});
    ingress.services.push_back(std::move(service));
  }
  if (services > 1) {
    ingress.domain_routing.dns_ports = {53};
    ingress.domain_routing.unknown_domain = ingress.services.back().name;
  }
  return ingress;
}

std::uint16_t ip_checksum(const std::uint8_t* header) {
  std::uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<std::uint32_t>(header[i] << 8 | header[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// 60-byte UDP/IPv4 frames; flow i comes from 198.18.(i >> 12).(i >> 4 & 0xff):(10000 + i % 16).
// The UDP checksum is 0 ("none", valid on IPv4): building a frame costs the same for every flow.
class Frames {
public:
  static constexpr std::uint32_t kLength = 60;

  // Client frame of flow i in buffer.
  static void client(std::uint8_t* buffer, std::uint32_t flow) {
    build(buffer, kClientMac, kGatewayMac, client_ip(flow), kServiceIp, client_port(flow), kServicePort);
  }
  // The reply of replica r to flow i (client_ip preserve: to the client's own address and port).
  static void reply(std::uint8_t* buffer, std::uint32_t flow, std::uint8_t replica_last_octet) {
    const std::uint8_t replica[4] = {10, 230, 0, replica_last_octet};
    build(buffer, {0x02, 0, 0, 0, 0x01, replica_last_octet}, {}, replica, client_ip(flow).data(), kServicePort,
          client_port(flow));
  }

private:
  static std::array<std::uint8_t, 4> client_ip(std::uint32_t flow) {
    return {198, 18, static_cast<std::uint8_t>(flow >> 12), static_cast<std::uint8_t>(flow >> 4)};
  }
  static std::uint16_t client_port(std::uint32_t flow) { return static_cast<std::uint16_t>(10000 + flow % 16); }
  static void build(std::uint8_t* f, const packet::nat::Mac& dst_mac, const packet::nat::Mac& src_mac,
                    const std::array<std::uint8_t, 4>& src, const std::uint8_t* dst, std::uint16_t sport,
                    std::uint16_t dport) {
    build(f, dst_mac, src_mac, src.data(), dst, sport, dport);
  }
  static void build(std::uint8_t* f, const packet::nat::Mac& dst_mac, const packet::nat::Mac& src_mac,
                    const std::uint8_t* src, const std::uint8_t* dst, std::uint16_t sport, std::uint16_t dport) {
    std::memset(f, 0, kLength);
    std::memcpy(f, dst_mac.data(), 6);
    std::memcpy(f + 6, src_mac.data(), 6);
    f[12] = 0x08;
    std::uint8_t* ip = f + 14;
    ip[0] = 0x45;
    ip[3] = 46; // total length: 20 + 8 + 18
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dst, 4);
    const std::uint16_t checksum = ip_checksum(ip);
    ip[10] = static_cast<std::uint8_t>(checksum >> 8);
    ip[11] = static_cast<std::uint8_t>(checksum);
    std::uint8_t* udp = ip + 20;
    udp[0] = static_cast<std::uint8_t>(sport >> 8);
    udp[1] = static_cast<std::uint8_t>(sport);
    udp[2] = static_cast<std::uint8_t>(dport >> 8);
    udp[3] = static_cast<std::uint8_t>(dport);
    udp[5] = 26;
  }
};

struct XorShift {
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};

struct Result {
  double fill_ns = 0, client_ns = 0, reply_ns = 0;
  long rss_kib = 0;
};

Result measure(NeighbourCache& neighbours, std::size_t services, std::uint32_t flows, double seconds) {
  Forwarding forwarding(make_ingress(services), IngressLinks{kClientMac, {0x02, 0, 0, 0, 0, 0x03}, 1450}, neighbours);
  std::vector<std::uint8_t> buffer(2048);
  std::vector<std::uint8_t> replica_of(flows); // last octet of the replica each flow went to
  // The data path reads the clock once per batch: so does this.
  auto now = [] { return std::chrono::duration_cast<balance::Timestamp>(Clock::now().time_since_epoch()); };
  auto forward = [&](bool from_client, balance::Timestamp at) {
    std::uint32_t length = Frames::kLength;
    return from_client ? forwarding.client_frame(buffer, length, at) : forwarding.overlay_frame(buffer, length, at);
  };

  Result result;
  auto begin = Clock::now();
  balance::Timestamp at = now();
  for (std::uint32_t flow = 0; flow < flows; ++flow) {
    if (flow % 64 == 0) at = now();
    Frames::client(buffer.data(), flow);
    if (forward(true, at) != Action::ToOverlay) throw std::runtime_error("flow " + std::to_string(flow) + " not forwarded: " +
                                                                    forwarding.status()["drops"].dump());
    replica_of[flow] = buffer[14 + 19]; // the rewritten destination's last octet
  }
  result.fill_ns = std::chrono::duration<double, std::nano>(Clock::now() - begin).count() / flows;
  result.rss_kib = rss_kib();

  for (const bool from_client : {true, false}) {
    XorShift random;
    std::uint64_t frames = 0;
    begin = Clock::now();
    const auto until = begin + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
      at = now();
      for (int i = 0; i < 64; ++i, ++frames) {
        const auto flow = static_cast<std::uint32_t>(random.next() % flows);
        if (from_client) Frames::client(buffer.data(), flow);
        else Frames::reply(buffer.data(), flow, replica_of[flow]);
        const Action action = forward(from_client, at);
        if (action != (from_client ? Action::ToOverlay : Action::ToClient))
          throw std::runtime_error(std::string(from_client ? "client" : "reply") + " frame of flow " +
                                   std::to_string(flow) + " not forwarded: " + forwarding.status()["drops"].dump());
      }
    }
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - begin).count() / static_cast<double>(frames);
    (from_client ? result.client_ns : result.reply_ns) = ns;
  }
  return result;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::uint32_t> flow_counts;
  std::vector<std::size_t> service_counts;
  double seconds = 1.0;
  try {
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string flag = argv[i];
      if (flag == "--flows") flow_counts.push_back(static_cast<std::uint32_t>(std::stoul(argv[i + 1])));
      else if (flag == "--services") service_counts.push_back(std::stoul(argv[i + 1]));
      else if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
      else throw std::invalid_argument("unknown option " + flag);
    }
    if (flow_counts.empty()) flow_counts = {1000, 100000, 1000000};
    if (service_counts.empty()) service_counts = {1, kMaxServices};
    for (const std::size_t services : service_counts)
      if (services == 0 || services > kMaxServices) throw std::invalid_argument("--services: 1 .. 100");
    for (const std::uint32_t flows : flow_counts)
      if (flows == 0 || flows > table_per_service(1)) throw std::invalid_argument("--flows: 1 .. 1048576");

    NeighbourCache neighbours(private_overlay());
    for (const std::size_t services : service_counts) {
      for (const std::uint32_t flows : flow_counts) {
        if (flows > table_per_service(services)) continue; // more than the service's share
        const Result r = measure(neighbours, services, flows, seconds);
        std::printf("RESULT row=flows services=%zu flows=%u fill_ns=%.1f client_ns=%.1f reply_ns=%.1f rss_kib=%ld\n",
                    services, flows, r.fill_ns, r.client_ns, r.reply_ns, r.rss_kib);
        std::fflush(stdout);
      }
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "xdpfwd-bench-flows: %s\n", error.what());
    return 1;
  }
}
