// Test tier with real frames: each test moves the test process into a fresh, private network
// namespace (unshare(CLONE_NEWNET)), so nothing it creates is visible from, or touches, the root
// namespace, plus a second one for the replica side (see Lab); both go away with the test's
// last socket.
#pragma once

#include "packet_builder.hpp"
#include "xdpfwd/system_error.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace xdpfwd::testing {

inline constexpr auto kWait = std::chrono::seconds(5); // only how long a failing test hangs

inline constexpr Mac kXhMac = {0x02, 0, 0, 0, 0x00, 0x01};
inline constexpr Mac kEth0Mac = {0x02, 0, 0, 0, 0x00, 0x02};
inline constexpr Mac kOvlMac = {0x02, 0, 0, 0, 0x01, 0x01};
inline constexpr Mac kRepMac = {0x02, 0, 0, 0, 0x01, 0x0b};
inline constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline ino_t netns_inode() {
  struct stat info {};
  if (::stat("/proc/thread-self/ns/net", &info) < 0) throw_errno("stat /proc/thread-self/ns/net");
  return info.st_ino;
}

// The namespace the test binary started in, taken before any test runs.
inline const ino_t kStartNetns = netns_inode();

inline void sh(const std::string& command) {
  if (const int status = std::system(command.c_str()); status != 0)
    throw std::runtime_error("command failed (" + std::to_string(status) + "): " + command);
}

inline void write_proc_sys(const std::string& key, const std::string& value) {
  sh("echo " + value + " > /proc/sys/" + key);
}

inline UniqueFd open_current_netns() {
  // Not close-on-exec: `ip ... netns /proc/self/fd/N` names it in the ip child.
  UniqueFd fd(::open("/proc/thread-self/ns/net", O_RDONLY));
  if (!fd) throw_errno("open /proc/thread-self/ns/net");
  return fd;
}

inline void enter_netns(int fd) {
  if (::setns(fd, CLONE_NEWNET) < 0) throw_errno("setns");
}

// The lab's two private namespaces: the ingress side (where the test thread stays) and the
// replica side behind a VXLAN over a veth underlay (a real UDP path, unlike two VXLAN devices of
// one namespace, which bypass the encapsulation and the receiving device's XDP).
struct Lab {
  UniqueFd ingress_ns;
  UniqueFd replica_ns;

  template <typename Fn>
  auto in_replica(Fn&& fn) const {
    enter_netns(replica_ns.get());
    struct Back {
      int fd;
      ~Back() { ::setns(fd, CLONE_NEWNET); }
    } back{ingress_ns.get()};
    return fn();
  }
};

// Moves the calling (main) thread into fresh private network namespaces with the lab topology;
// they go away with the Lab and the test's last socket.
//   ingress netns: xh0 ==veth== eth0 198.18.0.2/24 (+ service IPs 198.18.0.10, fd00:18::10)
//                  ovl0 VXLAN 42: 10.201.0.1/24 fd00:201::1/64, underlay u0 198.18.99.1/24
//   replica netns: u1 198.18.99.2/24, rep0 VXLAN 42 (no address: raw frames only)
inline Lab enter_private_netns_with_lab() {
  Lab lab;
  if (::unshare(CLONE_NEWNET) < 0) throw_errno("unshare(CLONE_NEWNET)");
  if (netns_inode() == kStartNetns) throw std::runtime_error("still in the starting network namespace");
  lab.ingress_ns = open_current_netns();
  if (::unshare(CLONE_NEWNET) < 0) throw_errno("unshare(CLONE_NEWNET)");
  if (netns_inode() == kStartNetns) throw std::runtime_error("still in the starting network namespace");
  lab.replica_ns = open_current_netns();

  // Replica side.
  sh("ip link set lo up");
  sh("ip link add u1 type veth peer name u0 && ip link set u0 netns /proc/self/fd/" +
     std::to_string(lab.ingress_ns.get()));
  sh("ip addr add 198.18.99.2/24 dev u1 && ip link set u1 up");
  sh("ip link add rep0 address 02:00:00:00:01:0b mtu 1450 type vxlan id 42 dstport 4789 local 198.18.99.2 dev u1");
  write_proc_sys("net/ipv6/conf/rep0/disable_ipv6", "1");
  sh("bridge fdb append 00:00:00:00:00:00 dev rep0 dst 198.18.99.1");
  sh("ip link set rep0 up");

  enter_netns(lab.ingress_ns.get());
  sh("ip link set lo up");
  sh("ip addr add 198.18.99.1/24 dev u0 && ip link set u0 up");
  sh("ip link add xh0 address 02:00:00:00:00:01 type veth peer name eth0 address 02:00:00:00:00:02");
  write_proc_sys("net/ipv6/conf/xh0/disable_ipv6", "1");
  sh("ip addr add 198.18.0.2/24 dev eth0 && ip addr add 198.18.0.10/32 dev eth0");
  sh("ip addr add fd00:18::2/64 dev eth0 nodad && ip addr add fd00:18::10/128 dev eth0 nodad");
  sh("ip neigh add 198.18.0.1 lladdr 02:00:00:00:00:01 dev eth0 && "
     "ip neigh add fd00:18::1 lladdr 02:00:00:00:00:01 dev eth0");
  sh("ip link add ovl0 address 02:00:00:00:01:01 mtu 1450 type vxlan id 42 dstport 4789 local 198.18.99.1 dev u0");
  sh("bridge fdb append 00:00:00:00:00:00 dev ovl0 dst 198.18.99.2");
  sh("ip addr add 10.201.0.1/24 dev ovl0 && ip addr add fd00:201::1/64 dev ovl0 nodad");
  sh("ip link set xh0 up && ip link set eth0 up && ip link set ovl0 up");
  return lab;
}

inline int ifindex(const std::string& name) {
  const unsigned index = ::if_nametoindex(name.c_str());
  if (index == 0) throw_errno("if_nametoindex " + name);
  return static_cast<int>(index);
}

inline bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd entry{fd, POLLIN, 0};
  return ::poll(&entry, 1, static_cast<int>(timeout.count())) > 0;
}

// Raw frames in and out of one interface, incoming ones only on receive.
class PacketSocket {
public:
  explicit PacketSocket(const std::string& ifname) : fd_(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL))) {
    if (!fd_) throw_errno("packet socket");
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = ifindex(ifname);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) < 0) throw_errno("bind to " + ifname);
    const int buffer = 16 << 20;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof(buffer));
  }

  int fd() const { return fd_.get(); }

  void send(const Bytes& frame) {
    if (::send(fd_.get(), frame.data(), frame.size(), 0) != static_cast<ssize_t>(frame.size())) throw_errno("send a frame");
  }

  // The next incoming frame that satisfies match, waiting up to timeout.
  std::optional<Bytes> receive(const std::function<bool(const Bytes&)>& match,
                               std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Bytes buffer(65536);
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait_readable(fd_.get(), left)) return std::nullopt;
      sockaddr_ll from{};
      socklen_t from_size = sizeof(from);
      const ssize_t size =
          ::recvfrom(fd_.get(), buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_size);
      if (size < 0) throw_errno("receive a frame");
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      Bytes frame(buffer.begin(), buffer.begin() + size);
      if (match(frame)) return frame;
    }
  }

private:
  UniqueFd fd_;
};

// A kernel UDP socket: what the stack delivers.
class UdpSocket {
public:
  UdpSocket(const std::string& address, std::uint16_t port) {
    const bool v6 = address.find(':') != std::string::npos;
    fd_.reset(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd_) throw_errno("udp socket");
    sockaddr_storage storage{};
    socklen_t size;
    if (v6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(port);
      ::inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr);
      size = sizeof(*sin6);
    } else {
      auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(port);
      ::inet_pton(AF_INET, address.c_str(), &sin->sin_addr);
      size = sizeof(*sin);
    }
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&storage), size) < 0) throw_errno("bind udp " + address);
  }

  std::optional<std::string> receive(std::chrono::milliseconds timeout = kWait) {
    if (!wait_readable(fd_.get(), timeout)) return std::nullopt;
    char buffer[2048];
    const ssize_t size = ::recv(fd_.get(), buffer, sizeof(buffer), 0);
    if (size < 0) throw_errno("udp receive");
    return std::string(buffer, static_cast<std::size_t>(size));
  }

private:
  UniqueFd fd_;
};

inline bool contains(const Bytes& frame, std::string_view marker) {
  return std::search(frame.begin(), frame.end(), marker.begin(), marker.end()) != frame.end();
}

} // namespace xdpfwd::testing
