// The ingress netns's XDP programs (bpf/ingress_xsk.bpf.c): xdpfwd_ingress_client on eth0 (native
// mode) and xdpfwd_ingress_overlay on ovl0 (native on a veth, else generic), loaded from the
// embedded skeleton, with their maps filled from here; with the AF_PACKET fallback, also their tc
// ingress twins. Owning handle: movable, not copyable.
//
// Attaching replaces whatever XDP program the interface has in that mode (atomically, with
// XDP_FLAGS_REPLACE against the program found there) and remembers it; destruction (or detach_all)
// puts that program back, or detaches ours where there was none. On eth0 the daemon's
// pass-through program is what comes back, which matters: a veth delivers frames the host
// XDP-redirects into it only while its receiving end runs an XDP program. If the ingress dies
// without the destructor, the client program stays attached; its XSKMAP entries vanish with the
// sockets, so every frame falls back to XDP_PASS, and the next run replaces it.
#pragma once

#include "ingress_abi.h"
#include "xdpfwd/unique_fd.hpp"

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

struct ingress_xsk_bpf;

namespace xdpfwd::ingress::xsk {

static_assert(sizeof(xdpfwd_ingress_ip_key) == 16);
static_assert(sizeof(xdpfwd_ingress_flag) == 4);
static_assert(sizeof(xdpfwd_ingress_overlay_config) == 12);

using IngressCounters = std::array<std::uint64_t, XDPFWD_INGRESS_COUNTERS>;
// "client_redirected", "overlay_reply", ...: the names operators see.
std::string_view ingress_counter_name(int counter);

// The key of local_service_ips / local_overlay_ips: IPv4 as IPv4-mapped IPv6.
xdpfwd_ingress_ip_key ingress_ip_key(const boost::asio::ip::address& address);

class IngressXdp {
public:
  // Opens and loads the object (nothing attached yet); throws std::system_error.
  IngressXdp();
  IngressXdp(IngressXdp&&) noexcept;
  IngressXdp& operator=(IngressXdp&&) noexcept;
  IngressXdp(const IngressXdp&) = delete;
  IngressXdp& operator=(const IngressXdp&) = delete;
  ~IngressXdp();

  // Interfaces of the calling thread's network namespace. Throw std::system_error
  // ("attach xdpfwd_ingress_client to eth0 in native mode: ...").
  void attach_client(int ifindex);
  // Also records the interface's MAC in overlay_config: transit frames must be addressed to it.
  void attach_overlay(int ifindex);
  // The AF_PACKET fallback's tc ingress programs (a clsact qdisc is created where there is none).
  // Throw std::system_error ("attach xdpfwd_ingress_client_tc to eth0 (tc ingress): ...").
  void attach_client_tc(int ifindex);
  void attach_overlay_tc(int ifindex);
  // Restores what attach_* replaced and removes the tc programs; never throws (failures are logged).
  void detach_all() noexcept;
  // Puts back each of our programs that is no longer attached (someone removed or replaced it
  // by hand: the ingress would receive nothing); returns how many. Failures are logged.
  std::size_t restore_removed() noexcept;

  void add_service_ip(const boost::asio::ip::address& address);
  void remove_service_ip(const boost::asio::ip::address& address);
  void add_overlay_ip(const boost::asio::ip::address& address);
  void remove_overlay_ip(const boost::asio::ip::address& address);
  void add_stack_tcp_port(std::uint16_t port);
  void remove_stack_tcp_port(std::uint16_t port);
  // Replies to ports (and ICMP echo ids) in [min, max] are redirected; min > max: none.
  void set_nat_port_range(std::uint16_t min, std::uint16_t max);
  xdpfwd_ingress_overlay_config overlay_config() const;
  void set_overlay_config(const xdpfwd_ingress_overlay_config& config);

  // XSKMAPs for XskSocket (key: rx queue).
  int client_xsks_fd() const;
  int overlay_xsks_fd() const;
  int client_prog_fd() const;
  int overlay_prog_fd() const;
  int client_tc_prog_fd() const;
  int overlay_tc_prog_fd() const;
  // Summed over CPUs.
  IngressCounters counters() const;

private:
  struct Attachment {
    int ifindex;
    std::uint32_t mode; // XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE
    int prog_fd;        // ours, owned by the skeleton
    std::uint32_t prog_id;
    const char* prog_name;
    UniqueFd previous;  // what was attached before; empty: nothing
  };
  struct TcAttachment {
    int ifindex;
    const char* prog_name;
    bool created_qdisc; // removed with the program then
  };
  // Our filter's place in the clsact ingress hook.
  static constexpr std::uint32_t kTcHandle = 0x78;
  static constexpr std::uint32_t kTcPriority = 1;
  struct SkeletonDeleter {
    void operator()(ingress_xsk_bpf* skeleton) const;
  };

  void attach(int ifindex, int prog_fd, const char* prog_name, std::uint32_t mode);
  void attach_tc(int ifindex, int prog_fd, const char* prog_name);
  void update_flag_map(int map_fd, const void* key, bool present, const std::string& what);

  std::unique_ptr<ingress_xsk_bpf, SkeletonDeleter> skeleton_;
  std::vector<Attachment> attachments_;
  std::vector<TcAttachment> tc_attachments_;
};

} // namespace xdpfwd::ingress::xsk
