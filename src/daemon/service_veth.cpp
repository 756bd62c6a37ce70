#include "service_veth.hpp"

#include "ingress_pass_bpf.skel.h"
#include "xdpfwd/netns.hpp"
#include "xdpfwd/system_error.hpp"

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace xdpfwd {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::make_address;

// The ingress's default gateway: a fixed link-local next hop whose MAC is pinned to the host end
// of the veth, so replies reach the host's stack without any address on the host side.
const address kGateway4 = make_address("169.254.1.1");
const address kGateway6 = make_address("fe80::1");

int host_prefix(const address& ip) { return ip.is_v4() ? 32 : 128; }

void attach_pass_program(int ifindex, const std::string& where) {
  std::unique_ptr<ingress_pass_bpf, decltype(&ingress_pass_bpf__destroy)> skeleton(
      ingress_pass_bpf__open_and_load(), &ingress_pass_bpf__destroy);
  if (!skeleton) throw_errno("load the ingress XDP program for " + where);
  // The attachment holds the program: it lives as long as the interface, not the skeleton.
  check_libbpf(bpf_xdp_attach(ifindex, bpf_program__fd(skeleton->progs.xdpfwd_ingress_pass), XDP_FLAGS_DRV_MODE, nullptr),
               "attach the ingress XDP program to " + where);
}

// IPv6 forwarding is one switch for the whole host, except since Linux 6.17, which has a
// per-interface force_forwarding. Older kernels need net.ipv6.conf.all.forwarding=1 from the
// operator for IPv6 replies; xdpfwd does not turn the whole host into a router by itself.
void enable_ipv6_forwarding_from(const std::string& veth, const std::string& ingress) {
  try {
    write_sysctl("net/ipv6/conf/" + veth + "/force_forwarding", "1");
  } catch (const std::system_error& error) {
    if (error.code().value() != ENOENT) throw;
    spdlog::warn("ingress {}: this kernel has no net.ipv6.conf.{}.force_forwarding (Linux < 6.17): IPv6 replies "
                 "leave the ingress only if net.ipv6.conf.all.forwarding=1",
                 ingress, veth);
  }
}

} // namespace

ServiceVeth plumb_service_veth(Netlink& host, Netlink& inside, int netns_fd, const std::string& veth,
                               const std::string& inner, const config::Ingress& ingress) {
  const LinkInfo host_end = host.link(veth);
  host.set_up(host_end);
  // Replies of the ingress leave through the host's stack: forwarding only for what arrives on
  // this veth (IPv4 checks the input device), not for the whole host.
  write_sysctl("net/ipv4/conf/" + veth + "/forwarding", "1");
  enable_ipv6_forwarding_from(veth, ingress.name);
  for (const auto& ip : ingress.service_ips) host.add_route(host_end, ip, host_prefix(ip));

  const LinkInfo ingress_end = inside.link(inner);
  // IPv6 service IPs and the fe80::1 gateway need IPv6 there (Docker turns it off in containers
  // whose networks have none).
  run_in_netns(netns_fd, [&] { write_sysctl("net/ipv6/conf/" + inner + "/disable_ipv6", "0"); });
  inside.set_up(ingress_end);
  for (const auto& ip : ingress.service_ips) inside.add_address(ingress_end, ip, host_prefix(ip));
  inside.add_permanent_neighbor(ingress_end, kGateway4, host_end.mac);
  inside.add_route(ingress_end, make_address("0.0.0.0"), 0, kGateway4);
  inside.add_permanent_neighbor(ingress_end, kGateway6, host_end.mac);
  inside.add_route(ingress_end, make_address("::"), 0, kGateway6);
  run_in_netns(netns_fd, [&] { attach_pass_program(ingress_end.ifindex, "ingress " + ingress.name + " " + inner); });
  return {host_end, ingress_end};
}

} // namespace xdpfwd
